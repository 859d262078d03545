#include "apitest.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>

#include <cmocka.h>

#define MAX_EXTRA 48
#define MAX_LEFT  32

/* Temporary directories (and the node running in each), so that what a
 * failed assertion skipped is removed when the program exits: cmocka jumps
 * out of the test past api_cleanup(). */
static struct {
    pid_t pid; /* a jarvisd child of ours, 0 if none */
    char path[512];
} left[MAX_LEFT];

static void remove_left(void)
{
    for (size_t i = 0; i < MAX_LEFT; i++) {
        if (left[i].path[0] == '\0')
            continue;
        /* Only a child not reaped yet is killed: a pid of ours. */
        if (left[i].pid > 0 && waitpid(left[i].pid, NULL, WNOHANG) == 0) {
            kill(left[i].pid, SIGKILL);
            waitpid(left[i].pid, NULL, 0);
        }
        jv_test_rmtree(left[i].path);
        left[i].path[0] = '\0';
    }
}

/* Records path (and the pid running there); pid -1 forgets path. */
static void track(const char *path, pid_t pid)
{
    static bool registered;
    size_t free_slot = MAX_LEFT;
    if (!registered) {
        atexit(remove_left);
        registered = true;
    }
    for (size_t i = 0; i < MAX_LEFT; i++) {
        if (strcmp(left[i].path, path) == 0) {
            if (pid < 0)
                left[i].path[0] = '\0';
            else
                left[i].pid = pid;
            return;
        }
        if (left[i].path[0] == '\0' && free_slot == MAX_LEFT)
            free_slot = i;
    }
    if (pid >= 0 && free_slot < MAX_LEFT) {
        snprintf(left[free_slot].path, sizeof left[free_slot].path, "%s", path);
        left[free_slot].pid = pid;
    }
}

void api_tmpdir(const char *prefix, char *out, size_t outlen)
{
    assert_int_equal(jv_test_tmpdir(prefix, out, outlen), 0);
    track(out, 0);
}

/* --listen off --name apitest, then the test's own arguments. */
static void node_args(char *const extra[], char **out)
{
    size_t k = 0;
    out[k++] = (char *)"--listen";
    out[k++] = (char *)"off";
    out[k++] = (char *)"--name";
    out[k++] = (char *)"apitest";
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        assert_true(k < MAX_EXTRA - 1);
        out[k++] = extra[i];
    }
    out[k] = NULL;
}

static void open_admin_session(api_node *a)
{
    json_t *body = json_pack("{s:s}", "api_key", a->node.admin_key);
    jv_http_resp r;
    assert_non_null(body);
    assert_int_equal(
        jv_http_json(&a->http, "POST", "/v1/sessions", NULL, body, &r), 0);
    json_decref(body);
    if (r.status != 201 || r.json == NULL) {
        print_error("cannot open an admin session: %ld %s\n", r.status, r.body);
        jv_http_resp_fini(&r);
        fail();
    }
    snprintf(a->admin_token, sizeof a->admin_token, "%s",
             api_str(r.json, "token"));
    jv_http_resp_fini(&r);
    assert_true(strncmp(a->admin_token, "jvs_", 4) == 0);
}

/* After a start: the client for the new address, the node id. */
static void connect_node(api_node *a)
{
    char path[700];
    jv_http_client_fini(&a->http);
    assert_int_equal(jv_http_client_init(&a->http, a->node.url), 0);
    snprintf(path, sizeof path, "%s/node.id", a->node.dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%79s", a->node_id), 1);
    fclose(f);
    assert_int_equal(strlen(a->node_id), 64);
}

void api_start(api_node *a, char *const extra[])
{
    char *args[MAX_EXTRA];
    memset(a, 0, sizeof *a);
    node_args(extra, args);
    int rc = jv_test_node_start(&a->node, args);
    if (a->node.root[0])
        track(a->node.root, rc == 0 ? a->node.proc.pid : 0);
    if (rc != 0)
        fail_msg("jarvisd did not start");
    connect_node(a);
    open_admin_session(a);
}

void api_prepare(api_node *a)
{
    memset(a, 0, sizeof *a);
    assert_int_equal(jv_test_node_prepare(&a->node), 0);
    track(a->node.root, 0);
}

void api_restart(api_node *a, char *const extra[])
{
    char *args[MAX_EXTRA];
    node_args(extra, args);
    int rc = jv_test_node_restart(&a->node, args);
    track(a->node.root, rc == 0 ? a->node.proc.pid : 0);
    if (rc != 0)
        fail_msg("jarvisd did not restart");
    connect_node(a);
    if (a->admin_token[0] != '\0') {
        jv_http_resp r;
        API_REQ(a, &r, "GET", "/v1/status", a->admin_token, NULL);
        if (r.status != 200)
            a->admin_token[0] = '\0';
        jv_http_resp_fini(&r);
    }
    if (a->admin_token[0] == '\0')
        open_admin_session(a);
}

int api_stop(api_node *a)
{
    jv_http_client_fini(&a->http);
    return jv_test_node_stop(&a->node);
}

void api_cleanup(api_node *a)
{
    jv_http_client_fini(&a->http);
    jv_test_node_cleanup(&a->node);
    track(a->node.root, -1);
}

/* -- requests ------------------------------------------------------------- */

static void show(const char *file, int line, const char *method,
                 const char *path, const char *body, const jv_http_resp *r)
{
    size_t blen = body ? strlen(body) : 0;
    print_error("%s:%d: %s %.300s%s body %.300s%s\n  -> %ld %s%.2000s\n", file,
                line, method, path, strlen(path) > 300 ? "..." : "",
                body ? body : "(none)", blen > 300 ? "..." : "", r->status,
                r->error, r->body ? r->body : "");
}

void api_req_at(const char *file, int line, api_node *a, jv_http_resp *r,
                const char *method, const char *path, const char *cred,
                const char *body)
{
    if (jv_http_do(&a->http, method, path, cred, body, body ? strlen(body) : 0,
                   r) != 0) {
        show(file, line, method, path, body, r);
        jv_http_resp_fini(r);
        jv_test_node_dump_log(&a->node);
        _fail(file, line);
    }
}

json_t *api_ok_at(const char *file, int line, api_node *a, int status,
                  const char *method, const char *path, const char *cred,
                  const char *body)
{
    jv_http_resp r;
    char type[128];
    api_req_at(file, line, a, &r, method, path, cred, body);
    bool ok = r.status == status;
    if (ok && status == 204) {
        ok = r.body_len == 0;
    } else if (ok) {
        ok = r.json != NULL &&
             jv_http_resp_header(&r, "Content-Type", type, sizeof type) &&
             strcmp(type, "application/json") == 0;
    }
    if (!ok) {
        print_error("expected %d with a JSON body\n", status);
        show(file, line, method, path, body, &r);
        jv_http_resp_fini(&r);
        _fail(file, line);
    }
    json_t *j = r.json ? json_incref(r.json) : NULL;
    jv_http_resp_fini(&r);
    return j;
}

size_t api_dechunk(char *body, size_t len)
{
    size_t in = 0, out = 0;
    for (;;) {
        char *end;
        if (in >= len)
            return SIZE_MAX;
        unsigned long long n = strtoull(body + in, &end, 16);
        size_t line = (size_t)(end - (body + in));
        if (line == 0 || in + line + 2 > len || memcmp(end, "\r\n", 2) != 0)
            return SIZE_MAX;
        in += line + 2;
        if (n == 0)
            return in + 2 == len && memcmp(body + in, "\r\n", 2) == 0
                       ? out
                       : SIZE_MAX;
        if (n > len - in || len - in - n < 2 ||
            memcmp(body + in + n, "\r\n", 2) != 0)
            return SIZE_MAX;
        memmove(body + out, body + in, n);
        out += n;
        in += n + 2;
    }
}

void api_check_error_at(const char *file, int line, const jv_http_resp *r,
                        int status, const char *code)
{
    char type[128];
    const json_t *e = r->json ? json_object_get(r->json, "error") : NULL;
    const json_t *m = e ? json_object_get(e, "message") : NULL;
    const char *why = NULL;
    if (r->status != status)
        why = "status";
    else if (!jv_http_resp_header(r, "Content-Type", type, sizeof type) ||
             strcmp(type, "application/json") != 0)
        why = "Content-Type";
    else if (!json_is_object(r->json) || json_object_size(r->json) != 1 ||
             !json_is_object(e) ||
             json_object_size(e) != (status == 403 ? 3u : 2u))
        why = "body shape";
    else if (status == 403 && !json_is_string(json_object_get(
                                  e, "required_role"))) /* names the role */
        why = "required_role";
    else if (strcmp(api_str(e, "code"), code) != 0)
        why = "code";
    else if (!json_is_string(m) || json_string_length(m) == 0)
        why = "message";
    if (why != NULL) {
        print_error("%s:%d: expected %d %s, wrong %s: %ld %.2000s\n", file,
                    line, status, code, why, r->status, r->body ? r->body : "");
        _fail(file, line);
    }
}

void api_err_at(const char *file, int line, api_node *a, bool unchanged,
                int status, const char *code, const char *method,
                const char *path, const char *cred, const char *body)
{
    size_t before_len = 0, after_len = 0;
    char *before = unchanged ? api_export(a, &before_len) : NULL;
    jv_http_resp r;
    api_req_at(file, line, a, &r, method, path, cred, body);
    char type[128];
    const json_t *e = r.json ? json_object_get(r.json, "error") : NULL;
    bool ok = r.status == status && e != NULL &&
              strcmp(api_str(e, "code"), code) == 0 &&
              jv_http_resp_header(&r, "Content-Type", type, sizeof type);
    if (!ok)
        show(file, line, method, path, body, &r);
    api_check_error_at(file, line, &r, status, code);
    jv_http_resp_fini(&r);
    if (unchanged) {
        char *after = api_export(a, &after_len);
        if (before_len != after_len || memcmp(before, after, after_len)) {
            print_error("%s:%d: %s %s was refused with %d but changed the "
                        "export\n",
                        file, line, method, path, status);
            free(before);
            free(after);
            _fail(file, line);
        }
        free(after);
    }
    free(before);
}

char *api_export(api_node *a, size_t *len)
{
    jv_http_resp r;
    API_REQ(a, &r, "GET", "/v1/export", a->admin_token, NULL);
    if (r.status != 200 || r.json == NULL) {
        print_error("export: %ld %.500s\n", r.status, r.body);
        jv_http_resp_fini(&r);
        fail();
    }
    char *bytes = r.body;
    *len = r.body_len;
    r.body = NULL;
    jv_http_resp_fini(&r);
    return bytes;
}

void api_key(api_node *a, const char *name, const char *role, char *key,
             char *id)
{
    json_t *j =
        API_OK(a, 201, "POST", "/v1/keys", a->admin_token,
               api_fmt("{\"name\":\"%s\",\"role\":\"%s\"}", name, role));
    snprintf(key, 160, "%s", api_str(j, "key"));
    if (id != NULL)
        snprintf(id, 32, "%s", api_str(j, "id"));
    json_decref(j);
    assert_true(strncmp(key, "jvk_", 4) == 0);
}

void api_session(api_node *a, const char *key, int ttl, char *token, char *id)
{
    const char *body =
        ttl > 0 ? api_fmt("{\"api_key\":\"%s\",\"ttl_seconds\":%d}", key, ttl)
                : api_fmt("{\"api_key\":\"%s\"}", key);
    json_t *j = API_OK(a, 201, "POST", "/v1/sessions", NULL, body);
    snprintf(token, 160, "%s", api_str(j, "token"));
    if (id != NULL)
        snprintf(id, 32, "%s", api_str(j, "id"));
    json_decref(j);
    assert_true(strncmp(token, "jvs_", 4) == 0);
}

/* -- small things --------------------------------------------------------- */

static char fmt_bufs[8][4096];
static unsigned fmt_next;

const char *api_fmt(const char *fmt, ...)
{
    char *b = fmt_bufs[fmt_next++ % 8];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b, sizeof fmt_bufs[0], fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof fmt_bufs[0]);
    return b;
}

const char *api_esc(const char *s, bool keep_slash)
{
    char *e = jv_http_escape(s, strlen(s), keep_slash);
    assert_non_null(e);
    char *b = fmt_bufs[fmt_next++ % 8];
    assert_true(strlen(e) < sizeof fmt_bufs[0]);
    memcpy(b, e, strlen(e) + 1);
    free(e);
    return b;
}

const char *api_str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

json_int_t api_int_at(const char *file, int line, const json_t *obj,
                      const char *key)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v)) {
        char *t = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
        print_error("%s:%d: '%s' is not an integer in %.1000s\n", file, line,
                    key, t ? t : "(null)");
        free(t);
        _fail(file, line);
    }
    return json_integer_value(v);
}

void api_fields_at(const char *file, int line, const json_t *obj, ...)
{
    va_list ap;
    size_t n = 0;
    const char *name, *missing = NULL;
    va_start(ap, obj);
    while ((name = va_arg(ap, const char *)) != NULL) {
        n++;
        if (!missing && json_object_get(obj, name) == NULL)
            missing = name;
    }
    va_end(ap);
    if (json_is_object(obj) && !missing && json_object_size(obj) == n)
        return;
    char *t = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    print_error("%s:%d: expected %zu fields%s%s in %.1000s\n", file, line, n,
                missing ? ", missing " : "", missing ? missing : "",
                t ? t : "(null)");
    free(t);
    _fail(file, line);
}

bool api_parse_time(const char *s, uint64_t *ms)
{
    int Y, M, D, h, m, sec, frac, used = 0;
    if (strlen(s) != 24 || s[4] != '-' || s[7] != '-' || s[10] != 'T' ||
        s[13] != ':' || s[16] != ':' || s[19] != '.' || s[23] != 'Z')
        return false;
    for (int i = 0; i < 23; i++)
        if (i != 4 && i != 7 && i != 10 && i != 13 && i != 16 && i != 19 &&
            (s[i] < '0' || s[i] > '9'))
            return false;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &Y, &M, &D, &h, &m, &sec,
               &frac, &used) != 7 ||
        used != 24 || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 ||
        sec > 60)
        return false;
    struct tm tm = {.tm_year = Y - 1900,
                    .tm_mon = M - 1,
                    .tm_mday = D,
                    .tm_hour = h,
                    .tm_min = m,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    if (t < 0)
        return false;
    *ms = (uint64_t)t * 1000 + (uint64_t)frac;
    return true;
}

void api_format_time(uint64_t ms, char *out)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    char base[32];
    gmtime_r(&secs, &tm);
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 32, "%.19s.%03uZ", base, (unsigned)(ms % 1000));
}

uint64_t api_now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

void api_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

double api_metric(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *line = text; line && *line;) {
        const char *end = strchr(line, '\n');
        if (strncmp(line, series, n) == 0 && line[n] == ' ') {
            char *stop;
            double v = strtod(line + n + 1, &stop);
            return stop == line + n + 1 ? -1 : v;
        }
        line = end ? end + 1 : NULL;
    }
    return 0;
}
