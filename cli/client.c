#include "client.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"
#include "args.h"
#include "ddir.h"
#include "output.h"

#define DEFAULT_NODE  "http://127.0.0.1:7410"
#define MAX_KEY_BYTES 4096 /* a key file larger than this is not a key */
#define PAGE_LIMIT    "1000"

struct jvc_client {
    CURL *curl;
    char *base;        /* "http://127.0.0.1:7410", no trailing slash */
    char *unix_path;   /* socket path for unix: nodes, else NULL */
    char *display;     /* what the user knows the node as */
    char *auth;        /* "Authorization: Bearer ..." (secret) */
    char *cred_source; /* where the credential came from, for messages */
    char *cred_dir;    /* the data dir whose admin.key it is, else NULL */
    long timeout_s;
    bool quiet; /* unreachable: no message (the caller retries) */
    char errbuf[CURL_ERROR_SIZE];
};

void jvc_client_quiet(jvc_client *c, bool quiet)
{
    c->quiet = quiet;
}

const char *jvc_client_error(const jvc_client *c)
{
    return c->errbuf;
}

/* Frees a string that held a secret, wiping it first. */
static void free_secret(char *s)
{
    if (s == NULL)
        return;
    explicit_bzero(s, strlen(s));
    jv_free(s);
}

bool jvc_data_dir(const jvc_globals *g, char *out, size_t outlen)
{
    if (g->data_dir != NULL) {
        if ((size_t)snprintf(out, outlen, "%s", g->data_dir) >= outlen) {
            jvc_err("--data-dir: path too long");
            return false;
        }
        return true;
    }
    jv_err e = jvc_ddir_default(out, outlen);
    if (e != JV_OK) {
        jvc_err("cannot find the default data directory (%s); pass "
                "--data-dir DIR or set JARVIS_DATA_DIR",
                jv_strerror(e));
        return false;
    }
    return true;
}

/* Reads a small text file (a key, an address) into a jv_malloc'd string
 * without surrounding white space. NULL with errno set on failure
 * (EFBIG: too large, ENODATA: empty). */
static char *read_small_file(const char *path)
{
    char *buf = NULL;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && S_ISDIR(sb.st_mode)) {
        errno = EISDIR;
        goto fail;
    }
    buf = jv_malloc(MAX_KEY_BYTES + 1);
    if (buf == NULL) {
        errno = ENOMEM;
        goto fail;
    }
    size_t n = fread(buf, 1, MAX_KEY_BYTES + 1, f);
    if (ferror(f)) {
        errno = EIO;
        goto fail;
    }
    if (n > MAX_KEY_BYTES) {
        errno = EFBIG;
        goto fail;
    }
    buf[n] = '\0';
    while (n > 0 && isspace((unsigned char)buf[n - 1]))
        buf[--n] = '\0';
    size_t start = 0;
    while (isspace((unsigned char)buf[start]))
        start++;
    if (buf[start] == '\0') {
        errno = ENODATA;
        goto fail;
    }
    memmove(buf, buf + start, n - start + 1);
    fclose(f);
    return buf;
fail:
    if (buf != NULL) {
        int saved = errno;
        explicit_bzero(buf, MAX_KEY_BYTES + 1);
        errno = saved;
    }
    jv_free(buf);
    fclose(f);
    return NULL;
}

static const char *file_error(void)
{
    return errno == ENODATA  ? "the file is empty"
           : errno == EISDIR ? "it is a directory, not a key file"
           : errno == EFBIG  ? "the file is too large to be a key"
                             : strerror(errno);
}

/* Picks the credential; see client.h for the order. */
static int resolve_credential(const jvc_globals *g, jvc_client *c)
{
    const char *env = getenv("JARVIS_API_KEY");
    char path[4096];
    if (g->api_key != NULL) {
        jvc_err("warning: --api-key is visible to other users in process "
                "listings; prefer JARVIS_API_KEY or --key-file");
        c->auth = jvc_strf("Authorization: Bearer %s", g->api_key);
        c->cred_source = jvc_strf("--api-key");
    } else if (env != NULL && *env != '\0') {
        c->auth = jvc_strf("Authorization: Bearer %s", env);
        c->cred_source = jvc_strf("JARVIS_API_KEY");
    } else {
        const char *file = g->key_file;
        if (file == NULL) {
            char dir[4096];
            if (!jvc_data_dir(g, dir, sizeof dir))
                return JVC_EXIT_AUTH;
            if (jvc_ddir_path(dir, JVC_DDIR_ADMINKEY, path, sizeof path) !=
                JV_OK) {
                jvc_err("data directory path too long: %s", dir);
                return JVC_EXIT_USAGE;
            }
            file = path;
            c->cred_dir = jvc_strf("%s", dir);
            if (c->cred_dir == NULL)
                return jvc_oom();
        }
        char *key = read_small_file(file);
        if (key == NULL && errno == ENOMEM)
            return jvc_oom();
        if (key == NULL && g->key_file != NULL) {
            jvc_err("cannot read the key file %s: %s", file, file_error());
            return JVC_EXIT_AUTH;
        }
        if (key == NULL) {
            jvc_err("no credential found: no --api-key, JARVIS_API_KEY is "
                    "not set, no --key-file, and the default key file %s "
                    "cannot be read (%s)",
                    file, file_error());
            fprintf(stderr,
                    "hint: pass --key-file FILE, set JARVIS_API_KEY, or "
                    "--data-dir DIR for a node whose data dir holds "
                    "admin.key\n");
            return JVC_EXIT_AUTH;
        }
        c->auth = jvc_strf("Authorization: Bearer %s", key);
        c->cred_source = jvc_strf("%s", file);
        free_secret(key);
    }
    if (c->auth == NULL || c->cred_source == NULL)
        return jvc_oom();
    /* A stray newline in a key would end the header early and smuggle
     * another one into the request. */
    for (const char *p = c->auth; *p; p++)
        if (!isprint((unsigned char)*p)) {
            jvc_err("the credential from %s is not a valid key: it holds a "
                    "control character",
                    c->cred_source);
            return JVC_EXIT_AUTH;
        }
    return JVC_EXIT_OK;
}

/* Turns what the user or api.addr says into a base URL. */
/* Checks the HOST[:PORT] part of an http(s) address (after the scheme,
 * up to the first '/'): a host name or IPv4 address, or an IPv6 address in
 * brackets, and a port of 1 to 65535. */
static bool valid_authority(const char *a, size_t len, const char **why)
{
    const char *end = a + len, *colon = NULL;
    *why = "expected HOST:PORT, e.g. 127.0.0.1:7410 or [::1]:7410";
    if (len > 0 && a[0] == '[') {
        const char *close = memchr(a, ']', len);
        if (close == NULL || close == a + 1)
            return false;
        for (const char *p = a + 1; p < close; p++)
            if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
                return false;
        if (close + 1 < end && close[1] != ':')
            return false;
        colon = close + 1 < end ? close + 1 : NULL;
    } else {
        for (const char *p = a; p < end; p++) {
            if (*p == ':' && colon != NULL) {
                *why = "an IPv6 address goes in brackets: [::1]:7410";
                return false;
            }
            if (*p == ':')
                colon = p;
            else if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' &&
                     *p != '_')
                return false;
        }
        if ((colon ? colon : end) == a) {
            *why = "the host is missing";
            return false;
        }
    }
    if (colon == NULL)
        return true;
    long port = 0;
    const char *p = colon + 1;
    for (; p < end && isdigit((unsigned char)*p) && port <= 65535; p++)
        port = port * 10 + (*p - '0');
    if (p != end || p == colon + 1 || port < 1 || port > 65535) {
        *why = "the port must be a number from 1 to 65535";
        return false;
    }
    return true;
}

static int set_node(jvc_client *c, const char *node, const char *origin)
{
    size_t n = strlen(node);
    while (n > 0 && node[n - 1] == '/')
        n--;
    if (n == 0) {
        jvc_err("%s: empty node address", origin);
        return jvc_usage_error(NULL, NULL);
    }
    c->display = jv_strndup(node, n);
    if (c->display == NULL)
        return jvc_oom();
    if (strncmp(node, "unix:", 5) == 0) {
        const char *p = c->display + 5;
        if (strncmp(p, "//", 2) == 0)
            p += 2; /* unix:///run/api.sock */
        if (*p != '/') {
            jvc_err("%s: '%s': a Unix socket address needs an absolute "
                    "path (unix:/run/jarvis/api.sock)",
                    origin, node);
            return jvc_usage_error(NULL, NULL);
        }
        c->unix_path = jvc_strf("%s", p);
        c->base = jvc_strf("http://localhost");
    } else if (strstr(c->display, "://") != NULL) {
        if (strncmp(c->display, "http://", 7) != 0 &&
            strncmp(c->display, "https://", 8) != 0) {
            jvc_err("%s: '%s': only http://, https:// and unix: addresses "
                    "are supported",
                    origin, node);
            return jvc_usage_error(NULL, NULL);
        }
        c->base = jvc_strf("%s", c->display);
    } else {
        c->base = jvc_strf("http://%s", c->display);
    }
    if (c->base == NULL ||
        (strncmp(node, "unix:", 5) == 0 && c->unix_path == NULL))
        return jvc_oom();
    if (c->unix_path == NULL) {
        const char *host = strstr(c->base, "://") + 3, *why;
        size_t hlen = strcspn(host, "/");
        if (!valid_authority(host, hlen, &why)) {
            jvc_err("%s: '%s' is not a node address: %s", origin, node, why);
            return jvc_usage_error(NULL, NULL);
        }
    }
    return JVC_EXIT_OK;
}

static int resolve_node(const jvc_globals *g, const char *node, jvc_client *c)
{
    if (node != NULL)
        return set_node(c, node, "--node");
    const char *env = getenv("JARVIS_NODE");
    if (env != NULL && *env != '\0')
        return set_node(c, env, "JARVIS_NODE");
    /* The running node records where it listens; a missing file just means
     * the default address. jvc_ddir_default() failing is no error here:
     * the credential lookup reports it if it matters. */
    char dir[4096], path[4096];
    bool have_dir =
        g->data_dir != NULL
            ? snprintf(dir, sizeof dir, "%s", g->data_dir) < (int)sizeof dir
            : jvc_ddir_default(dir, sizeof dir) == JV_OK;
    if (have_dir &&
        jvc_ddir_path(dir, JVC_DDIR_APIADDR, path, sizeof path) == JV_OK) {
        char *addr = read_small_file(path);
        if (addr != NULL) {
            int rc = set_node(c, addr, path);
            jv_free(addr);
            return rc;
        }
    }
    return set_node(c, DEFAULT_NODE, "default");
}

/* A key read from a data dir's admin.key goes only to the node running on
 * that data dir, at the address it recorded (api.addr): never to a
 * default address or anything else that happens to listen, where it
 * would hand the admin key to whoever that is. */
static int check_dir_credential(jvc_client *c)
{
    char path[4096];
    char *addr = NULL;
    int rc = JVC_EXIT_UNREACHABLE;
    jvc_client rec = {0};
    if (c->cred_dir == NULL)
        return JVC_EXIT_OK;
    if (!jvc_ddir_locked(c->cred_dir) ||
        jvc_ddir_path(c->cred_dir, JVC_DDIR_APIADDR, path, sizeof path) !=
            JV_OK ||
        (addr = read_small_file(path)) == NULL) {
        jvc_err("node not running (%s)", c->cred_dir);
        fprintf(stderr,
                "hint: the admin key of a data dir is sent only to the node "
                "running on it; start it, or name another node with --node "
                "and its key with --key-file or JARVIS_API_KEY\n");
        goto out;
    }
    if ((rc = set_node(&rec, addr, path)) != JVC_EXIT_OK)
        goto out;
    bool same =
        strcmp(rec.base, c->base) == 0 &&
        (rec.unix_path == NULL) == (c->unix_path == NULL) &&
        (rec.unix_path == NULL || strcmp(rec.unix_path, c->unix_path) == 0);
    if (!same) {
        jvc_err("the admin key of %s goes only to the node running there "
                "(%s), not to %s",
                c->cred_dir, rec.display, c->display);
        fprintf(stderr,
                "hint: to send it elsewhere anyway, name it: "
                "--key-file %s/%s\n",
                c->cred_dir, JVC_DDIR_ADMINKEY);
        rc = JVC_EXIT_USAGE;
    }
out:
    jv_free(addr);
    jv_free(rec.base);
    jv_free(rec.unix_path);
    jv_free(rec.display);
    return rc;
}

int jvc_client_new(const jvc_globals *g, const char *node, jvc_client **out)
{
    int rc;
    *out = NULL;
    jvc_client *c = jv_calloc(1, sizeof *c);
    if (c == NULL)
        return jvc_oom();
    c->timeout_s = g->timeout_s;
    if ((rc = resolve_node(g, node, c)) != JVC_EXIT_OK)
        goto fail;
    if ((rc = resolve_credential(g, c)) != JVC_EXIT_OK ||
        (rc = check_dir_credential(c)) != JVC_EXIT_OK)
        goto fail;
    c->curl = curl_easy_init();
    if (c->curl == NULL) {
        rc = jvc_oom();
        goto fail;
    }
    *out = c;
    return JVC_EXIT_OK;
fail:
    jvc_client_free(c);
    return rc;
}

void jvc_client_free(jvc_client *c)
{
    if (c == NULL)
        return;
    if (c->curl != NULL)
        curl_easy_cleanup(c->curl);
    free_secret(c->auth);
    jv_free(c->cred_source);
    jv_free(c->cred_dir);
    jv_free(c->base);
    jv_free(c->unix_path);
    jv_free(c->display);
    jv_free(c);
}

const char *jvc_client_url(const jvc_client *c)
{
    return c->display;
}

void jvc_resp_fini(jvc_resp *r)
{
    jv_free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    jv_buf *b = arg;
    if (jv_buf_append(b, p, size * n) != JV_OK)
        return 0; /* makes curl fail with CURLE_WRITE_ERROR */
    return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    jvc_resp *r = arg;
    size_t len = size * n;
    static const char name[] = "retry-after:";
    if (len > sizeof name - 1 && strncasecmp(p, name, sizeof name - 1) == 0) {
        char tmp[32];
        size_t vlen = len - (sizeof name - 1);
        if (vlen >= sizeof tmp)
            vlen = sizeof tmp - 1;
        memcpy(tmp, p + sizeof name - 1, vlen);
        tmp[vlen] = '\0';
        r->retry_after = strtol(tmp, NULL, 10);
    }
    return len;
}

static void wipe_slist(struct curl_slist *l)
{
    for (struct curl_slist *i = l; i != NULL; i = i->next)
        explicit_bzero(i->data, strlen(i->data));
    curl_slist_free_all(l);
}

static int unreachable(jvc_client *c, CURLcode cc)
{
    const char *why = c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc);
    if (c->quiet) {
        if (!c->errbuf[0])
            snprintf(c->errbuf, sizeof c->errbuf, "%s", why);
        return JVC_EXIT_UNREACHABLE;
    }
    if (cc == CURLE_COULDNT_CONNECT && c->unix_path != NULL)
        jvc_err("cannot reach the node at %s: cannot connect to the Unix "
                "socket %s",
                c->display, c->unix_path);
    else if (cc == CURLE_OPERATION_TIMEDOUT)
        jvc_err("the node at %s did not answer within %ld s (%s)", c->display,
                c->timeout_s, why);
    else
        jvc_err("cannot reach the node at %s: %s", c->display, why);
    fprintf(stderr, "hint: check that jarvisd is running and listening "
                    "there; choose the node with --node URL or "
                    "JARVIS_NODE\n");
    return JVC_EXIT_UNREACHABLE;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
                       curl_off_t ultotal, curl_off_t ulnow)
{
    const jvc_progress *p = arg;
    (void)dltotal;
    (void)dlnow;
    p->fn(p->arg, (uint64_t)ulnow, (uint64_t)ultotal);
    return 0;
}

/* One request with a body of any type (payload NULL: none). */
static int http_do(jvc_client *c, const char *method, const char *path,
                   const char *payload, size_t plen, const char *ctype,
                   const jvc_progress *progress, jvc_resp *r)
{
    int rc = JVC_EXIT_FAIL;
    struct curl_slist *hdrs = NULL, *tmp;
    char *url = NULL;
    jvc_progress pcopy;
    jv_buf buf;
    jv_buf_init(&buf);
    memset(r, 0, sizeof *r);
    r->retry_after = -1;

    url = jvc_strf("%s%s", c->base, path);
    if (url == NULL)
        goto oom;
    /* Expect: off, since curl would otherwise wait for 100-continue on
     * bodies over 1 KiB; the node answers at once anyway. */
    const char *fixed[] = {"Accept: application/json", "Expect:", ctype};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        if (fixed[i] == NULL)
            continue;
        if ((tmp = curl_slist_append(hdrs, fixed[i])) == NULL)
            goto oom;
        hdrs = tmp;
    }
    if ((tmp = curl_slist_append(hdrs, c->auth)) == NULL)
        goto oom;
    hdrs = tmp;

    CURL *h = c->curl;
    /* Reset keeps the connection cache: one keep-alive connection serves a
     * paged listing or a --follow loop. */
    curl_easy_reset(h);
    c->errbuf[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    /* Keys may contain "." and ".." segments; they are names, not paths. */
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, c->timeout_s);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, c->timeout_s);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &buf);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    if (c->unix_path != NULL)
        curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, c->unix_path);
    if (payload != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)plen);
    }
    if (progress != NULL) {
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        pcopy = *progress; /* curl wants a mutable pointer */
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, &pcopy);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    }
    if (strcmp(method, "GET") != 0)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "POST") == 0 && payload == NULL)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");

    CURLcode cc = curl_easy_perform(h);
    if (cc == CURLE_WRITE_ERROR || cc == CURLE_OUT_OF_MEMORY)
        goto oom;
    if (cc != CURLE_OK) {
        rc = unreachable(c, cc);
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    if (jv_buf_append(&buf, "", 1) != JV_OK)
        goto oom;
    r->len = buf.len - 1;
    r->body = (char *)buf.data; /* ownership moves to r */
    jv_buf_init(&buf);
    if (r->len > 0)
        r->json = json_loadb(r->body, r->len, JSON_DECODE_ANY, NULL);
    rc = JVC_EXIT_OK;
    goto out;
oom:
    rc = jvc_oom();
out:
    wipe_slist(hdrs);
    jv_free(url);
    jv_buf_fini(&buf);
    return rc;
}

typedef struct {
    CURL *h;
    const jvc_stream_opts *o;
    jv_buf body; /* a non-200 answer */
    bool stopped;
} stream_state;

static size_t on_stream(char *p, size_t size, size_t n, void *arg)
{
    stream_state *s = arg;
    long status = 0;
    curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200)
        return on_body(p, size, n, &s->body);
    if (!s->o->sink(s->o->arg, p, size * n)) {
        s->stopped = true;
        return 0;
    }
    return size * n;
}

static int on_stream_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
                              curl_off_t ultotal, curl_off_t ulnow)
{
    stream_state *s = arg;
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    if (s->o->stop && s->o->stop(s->o->arg)) {
        s->stopped = true;
        return 1;
    }
    return 0;
}

int jvc_http_stream(jvc_client *c, const char *path, const jvc_stream_opts *o,
                    jvc_resp *r)
{
    int rc = JVC_EXIT_FAIL;
    struct curl_slist *hdrs = NULL, *tmp;
    char *url = jvc_strf("%s%s", c->base, path), *lei = NULL;
    stream_state s = {c->curl, o, {0}, false};
    jv_buf_init(&s.body);
    memset(r, 0, sizeof *r);
    r->retry_after = -1;
    if (o->last_event_id &&
        !(lei = jvc_strf("Last-Event-ID: %s", o->last_event_id)))
        goto oom;
    const char *fixed[] = {"Accept: text/event-stream", c->auth, lei};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        if (fixed[i] == NULL)
            continue;
        if ((tmp = curl_slist_append(hdrs, fixed[i])) == NULL)
            goto oom;
        hdrs = tmp;
    }
    if (url == NULL)
        goto oom;
    CURL *h = c->curl;
    curl_easy_reset(h);
    c->errbuf[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, c->timeout_s);
    /* Heartbeats come every 15 s: a quieter stream is a dead one. */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, o->idle_s);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_stream);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_stream_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &s);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    if (c->unix_path != NULL)
        curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, c->unix_path);
    CURLcode cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    if (s.stopped) {
        rc = JVC_EXIT_OK;
        goto out;
    }
    if (cc == CURLE_OUT_OF_MEMORY || jv_buf_err(&s.body))
        goto oom;
    if (cc != CURLE_OK && (r->status == 200 || r->status == 0)) {
        rc = unreachable(c, cc);
        goto out;
    }
    if (jv_buf_append(&s.body, "", 1) != JV_OK)
        goto oom;
    r->len = s.body.len - 1;
    r->body = (char *)s.body.data;
    jv_buf_init(&s.body);
    if (r->len > 0)
        r->json = json_loadb(r->body, r->len, JSON_DECODE_ANY, NULL);
    rc = JVC_EXIT_OK;
    goto out;
oom:
    rc = jvc_oom();
out:
    wipe_slist(hdrs);
    jv_free(url);
    jv_free(lei);
    jv_buf_fini(&s.body);
    return rc;
}

int jvc_http(jvc_client *c, const char *method, const char *path,
             const json_t *body, jvc_resp *r)
{
    char *payload = NULL;
    if (body != NULL && (payload = json_dumps(body, JSON_COMPACT)) == NULL) {
        memset(r, 0, sizeof *r);
        return jvc_oom();
    }
    int rc = http_do(c, method, path, payload, payload ? strlen(payload) : 0,
                     body ? "Content-Type: application/json" : NULL, NULL, r);
    free(payload); /* jansson's allocation */
    return rc;
}

int jvc_http_bytes(jvc_client *c, const char *method, const char *path,
                   const void *data, size_t len, const jvc_progress *progress,
                   jvc_resp *r)
{
    return http_do(c, method, path, data, len,
                   "Content-Type: application/octet-stream", progress, r);
}

int jvc_fail(const jvc_client *c, const char *what, const jvc_resp *r)
{
    const json_t *err = json_object_get(r->json, "error");
    const char *code = jvc_str(err, "code", NULL);
    const char *msg = jvc_str(err, "message", NULL);
    if (code == NULL) {
        jvc_err("%s: the node at %s answered HTTP %ld without a Jarvis error "
                "body; is that address a Jarvis node?",
                what, c->display, r->status);
        return r->status == 401 || r->status == 403 ? JVC_EXIT_AUTH
                                                    : JVC_EXIT_FAIL;
    }
    jvc_err("%s: %s (HTTP %ld, %s)", what, msg ? msg : code, r->status, code);
    switch (r->status) {
    case 401:
        fprintf(stderr,
                "hint: the node refused the credential from %s; check that "
                "the key exists and is not revoked (choose one with "
                "--key-file, JARVIS_API_KEY or --api-key)\n",
                c->cred_source);
        return JVC_EXIT_AUTH;
    case 403: {
        /* The node names the role the route needs. */
        const char *need = jvc_str(err, "required_role", NULL);
        fprintf(stderr,
                "hint: the key from %s has a role that may not do this; "
                "use a key with the %s role\n",
                c->cred_source, need ? need : "a higher");
        return JVC_EXIT_AUTH;
    }
    case 429:
        if (r->retry_after >= 0)
            fprintf(stderr, "hint: rate limited; retry in %ld s\n",
                    r->retry_after);
        break;
    case 503:
        fprintf(stderr, "hint: the node cannot serve this right now; retry "
                        "later and check its log\n");
        break;
    default:
        break;
    }
    return JVC_EXIT_FAIL;
}

int jvc_call(jvc_client *c, const char *what, const char *method,
             const char *path, const json_t *body, jvc_resp *r)
{
    int rc = jvc_http(c, method, path, body, r);
    if (rc != JVC_EXIT_OK)
        return rc;
    if (r->status < 200 || r->status > 299)
        return jvc_fail(c, what, r);
    if (r->status != 204 && r->json == NULL) {
        jvc_err("%s: the node at %s answered HTTP %ld with a body that is "
                "not JSON; is that address a Jarvis node?",
                what, c->display, r->status);
        return JVC_EXIT_FAIL;
    }
    return JVC_EXIT_OK;
}

char *jvc_escape(const char *s, bool keep_slash)
{
    char *e = curl_easy_escape(NULL, s, 0);
    if (e == NULL)
        return NULL;
    char *out = jv_malloc(strlen(e) + 1);
    if (out != NULL) {
        size_t o = 0;
        for (const char *p = e; *p; p++) {
            if (keep_slash && strncmp(p, "%2F", 3) == 0) {
                out[o++] = '/';
                p += 2;
            } else {
                out[o++] = *p;
            }
        }
        out[o] = '\0';
    }
    curl_free(e);
    return out;
}

void jvc_query_add(jv_buf *b, const char *name, const char *value)
{
    char *e = jvc_escape(value, false);
    if (e == NULL) {
        b->err = JV_ENOMEM;
        return;
    }
    bool first = b->len == 0 || memchr(b->data, '?', b->len) == NULL;
    jv_buf_append(b, first ? "?" : "&", 1);
    jv_buf_append(b, name, strlen(name));
    jv_buf_append(b, "=", 1);
    jv_buf_append(b, e, strlen(e));
    jv_free(e);
}

int jvc_get_all(jvc_client *c, const char *what, const char *path,
                const char *field, size_t max, json_t **out)
{
    int rc = JVC_EXIT_FAIL;
    char *cursor = NULL;
    jvc_resp r = {0};
    jv_buf url;
    jv_buf_init(&url);
    json_t *all = json_array();
    if (all == NULL)
        return jvc_oom();
    for (;;) {
        jv_buf_reset(&url);
        jv_buf_append(&url, path, strlen(path));
        jvc_query_add(&url, "limit", PAGE_LIMIT);
        if (cursor != NULL)
            jvc_query_add(&url, "cursor", cursor);
        jv_buf_append(&url, "", 1);
        if (jv_buf_err(&url) != JV_OK) {
            rc = jvc_oom();
            goto out;
        }
        jvc_resp_fini(&r);
        rc = jvc_call(c, what, "GET", (const char *)url.data, NULL, &r);
        if (rc != JVC_EXIT_OK)
            goto out;
        json_t *items = json_object_get(r.json, field);
        if (!json_is_array(items)) {
            jvc_err("%s: the node's answer has no \"%s\" list", what, field);
            rc = JVC_EXIT_FAIL;
            goto out;
        }
        size_t i;
        json_t *it;
        json_array_foreach(items, i, it)
        {
            if (max > 0 && json_array_size(all) >= max)
                break;
            if (json_array_append(all, it) != 0) {
                rc = jvc_oom();
                goto out;
            }
        }
        const char *next = jvc_str(r.json, "next_cursor", NULL);
        if (next == NULL || (max > 0 && json_array_size(all) >= max))
            break;
        jv_free(cursor);
        if ((cursor = jvc_strf("%s", next)) == NULL) {
            rc = jvc_oom();
            goto out;
        }
    }
    *out = all;
    all = NULL;
    rc = JVC_EXIT_OK;
out:
    json_decref(all);
    jvc_resp_fini(&r);
    jv_buf_fini(&url);
    jv_free(cursor);
    return rc;
}

int jvc_list_prefixed(jvc_ctx *ctx, int argc, char **argv, const char *route,
                      const char *field, json_t **list, const char **prefix)
{
    jvc_client *c;
    char *pos[1], what[64];
    int npos, rc;
    jv_buf path;
    *list = NULL;
    *prefix = NULL;
    const jvc_opt opts[] = {{"prefix", 'p', prefix, NULL}};
    if ((rc = jvc_parse_args(ctx->cmd, argc, argv, opts, 1, pos, 0, 0,
                             &npos)) != 0 ||
        (rc = jvc_ctx_client(ctx, &c)) != 0)
        return rc;
    jv_buf_init(&path);
    jv_buf_append(&path, route, strlen(route));
    if (*prefix != NULL)
        jvc_query_add(&path, "prefix", *prefix);
    jv_buf_append(&path, "", 1);
    if (jv_buf_err(&path) != JV_OK) {
        rc = jvc_oom();
        goto out;
    }
    snprintf(what, sizeof what, "%s ls", ctx->cmd->group);
    json_t *items = NULL;
    if ((rc = jvc_get_all(c, what, (const char *)path.data, field, 0,
                          &items)) != 0)
        goto out;
    if (ctx->g->json) {
        json_t *o = json_pack("{s:o}", field, items);
        rc = o ? jvc_print_json(o) : jvc_oom();
        json_decref(o);
        goto out;
    }
    *list = items;
out:
    jv_buf_fini(&path);
    return rc;
}

int jvc_revoke(jvc_ctx *ctx, const char *route, const char *id_arg,
               const char *query, const char *noun, const char *suffix)
{
    jvc_client *c;
    jvc_resp r = {0};
    char *id = NULL, *path = NULL, *what = NULL;
    int rc;
    if ((rc = jvc_ctx_client(ctx, &c)) != 0)
        return rc;
    if ((id = jvc_escape(id_arg, false)) == NULL ||
        (path = jvc_strf("%s/%s%s", route, id, query ? query : "")) == NULL ||
        (what = jvc_strf("%s %s %s", ctx->cmd->group, ctx->cmd->name,
                         id_arg)) == NULL) {
        rc = jvc_oom();
        goto out;
    }
    if ((rc = jvc_call(c, what, "DELETE", path, NULL, &r)) != 0)
        goto out;
    if (ctx->g->json) {
        json_t *o = json_pack("{s:s,s:b}", "id", id_arg, "revoked", 1);
        rc = o ? jvc_print_json(o) : jvc_oom();
        json_decref(o);
    } else {
        printf("revoked %s %s%s\n", noun, id_arg, suffix);
    }
out:
    jvc_resp_fini(&r);
    jv_free(id);
    jv_free(path);
    jv_free(what);
    return rc;
}

int jvc_revoke_by_id(jvc_ctx *ctx, int argc, char **argv, const char *route,
                     const char *noun, const char *suffix)
{
    char *pos[1];
    int npos, rc;
    if ((rc = jvc_parse_args(ctx->cmd, argc, argv, NULL, 0, pos, 1, 1,
                             &npos)) != 0)
        return rc;
    return jvc_revoke(ctx, route, pos[0], NULL, noun, suffix);
}

int jvc_show(jvc_ctx *ctx, int argc, char **argv, const char *path, jvc_resp *r,
             bool *printed)
{
    jvc_client *c;
    char *pos[1], what[64];
    int npos, rc;
    *printed = false;
    if ((rc = jvc_parse_args(ctx->cmd, argc, argv, NULL, 0, pos, 0, 0,
                             &npos)) != 0 ||
        (rc = jvc_ctx_client(ctx, &c)) != 0)
        return rc;
    snprintf(what, sizeof what, "%s%s%s", ctx->cmd->group,
             ctx->cmd->name ? " " : "", ctx->cmd->name ? ctx->cmd->name : "");
    if ((rc = jvc_call(c, what, "GET", path, NULL, r)) != 0)
        return rc;
    if (ctx->g->json) {
        *printed = true;
        return jvc_print_json(r->json);
    }
    return JVC_EXIT_OK;
}
