/*
 * api_auth_test.c - who may do what, against a real jarvisd: API keys
 * (create, list, revoke), sessions (create, end, list, revoke, expire, and
 * revoked with their key), each route's minimum role for a reader, a
 * writer and an admin (keys and sessions alike), and the audit entry that
 * every admin action leaves under the acting key's name.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "apitest.h"

static api_node N;

static int setup(void **state)
{
    (void)state;
    api_start(&N, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int st = api_stop(&N);
    api_cleanup(&N);
    return st == 0 ? 0 : -1;
}

/* The time field as ms, checked against the API's format. */
static uint64_t time_of(const json_t *obj, const char *key)
{
    uint64_t ms;
    if (!api_parse_time(api_str(obj, key), &ms))
        fail_msg("'%s' is not an API time: '%s'", key, api_str(obj, key));
    return ms;
}

/* The member of array `field` of obj whose `key` is `value`, or NULL. */
static json_t *find(const json_t *obj, const char *field, const char *key,
                    const char *value)
{
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(obj, field), i, row)
    {
        if (strcmp(api_str(row, key), value) == 0)
            return row;
    }
    return NULL;
}

static int status_of(const char *method, const char *path, const char *cred,
                     const char *body)
{
    jv_http_resp r;
    API_REQ(&N, &r, method, path, cred, body);
    int st = (int)r.status;
    jv_http_resp_fini(&r);
    return st;
}

/* -- keys ----------------------------------------------------------------- */

static void test_keys(void **state)
{
    (void)state;
    uint64_t t0 = api_now_ms();
    json_t *k = API_OK(&N, 201, "POST", "/v1/keys", N.admin_token,
                       "{\"name\":\"ci\",\"role\":\"writer\"}");
    API_FIELDS(k, "id", "name", "role", "scope", "key", "created_at");
    assert_string_equal(api_str(k, "scope"), "node");
    assert_true(strncmp(api_str(k, "id"), "k_", 2) == 0);
    assert_string_equal(api_str(k, "name"), "ci");
    assert_string_equal(api_str(k, "role"), "writer");
    assert_true(strncmp(api_str(k, "key"), "jvk_", 4) == 0);
    uint64_t at = time_of(k, "created_at");
    assert_true(at >= t0 && at <= api_now_ms());
    /* The key works as a credential at once. */
    json_decref(API_OK(&N, 200, "POST", "/v1/counters/keys-c/increment",
                       api_str(k, "key"), NULL));

    /* A taken name: 409, whatever the role. */
    API_ERR(&N, 409, "conflict", "POST", "/v1/keys", N.admin_token,
            "{\"name\":\"ci\",\"role\":\"writer\"}");
    API_ERR(&N, 409, "conflict", "POST", "/v1/keys", N.admin_token,
            "{\"name\":\"ci\",\"role\":\"reader\"}");
    API_ERR(&N, 409, "conflict", "POST", "/v1/keys", N.admin_token,
            "{\"name\":\"admin\",\"role\":\"admin\"}");

    /* The list: every key, never its secret. */
    jv_http_resp r;
    API_REQ(&N, &r, "GET", "/v1/keys", N.admin_token, NULL);
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.body, api_str(k, "key")));
    assert_null(strstr(r.body, N.node.admin_key));
    assert_null(strstr(r.body, "jvk_"));
    API_FIELDS(r.json, "keys");
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(r.json, "keys"), i, row)
    {
        API_FIELDS(row, "id", "name", "role", "scope", "created_at",
                   "revoked_at");
        assert_string_equal(api_str(row, "scope"), "node");
        time_of(row, "created_at");
    }
    json_t *ci = find(r.json, "keys", "name", "ci");
    assert_non_null(ci);
    assert_string_equal(api_str(ci, "id"), api_str(k, "id"));
    assert_string_equal(api_str(ci, "role"), "writer");
    assert_string_equal(api_str(ci, "created_at"), api_str(k, "created_at"));
    assert_true(json_is_null(json_object_get(ci, "revoked_at")));
    json_t *adm = find(r.json, "keys", "name", "admin");
    assert_non_null(adm);
    assert_string_equal(api_str(adm, "role"), "admin");
    assert_true(json_is_null(json_object_get(adm, "revoked_at")));
    jv_http_resp_fini(&r);
    json_decref(k);
}

/* -- sessions ------------------------------------------------------------- */

static void test_sessions(void **state)
{
    (void)state;
    char key[160], key_id[32];
    api_key(&N, "sess-writer", "writer", key, key_id);

    /* The answer, for a chosen ttl and the default (3600 s). */
    uint64_t t0 = api_now_ms();
    json_t *s =
        API_OK(&N, 201, "POST", "/v1/sessions", NULL,
               api_fmt("{\"api_key\":\"%s\",\"ttl_seconds\":120}", key));
    uint64_t t1 = api_now_ms();
    API_FIELDS(s, "id", "token", "role", "key_id", "key_name", "expires_at");
    assert_true(strncmp(api_str(s, "id"), "s_", 2) == 0);
    assert_true(strncmp(api_str(s, "token"), "jvs_", 4) == 0);
    assert_string_equal(api_str(s, "role"), "writer");
    assert_string_equal(api_str(s, "key_id"), key_id);
    assert_string_equal(api_str(s, "key_name"), "sess-writer");
    uint64_t exp = time_of(s, "expires_at");
    assert_true(exp >= t0 + 120000 && exp <= t1 + 120000);
    json_t *d = API_OK(&N, 201, "POST", "/v1/sessions", NULL,
                       api_fmt("{\"api_key\":\"%s\"}", key));
    exp = time_of(d, "expires_at");
    assert_true(exp >= t0 + 3600000 && exp <= api_now_ms() + 3600000);
    json_t *w =
        API_OK(&N, 201, "POST", "/v1/sessions", NULL,
               api_fmt("{\"api_key\":\"%s\",\"ttl_seconds\":604800}", key));
    assert_true(time_of(w, "expires_at") >= t0 + 604800000ull);
    json_decref(w);
    char tok[160], id[32];
    snprintf(tok, sizeof tok, "%s", api_str(s, "token"));
    snprintf(id, sizeof id, "%s", api_str(s, "id"));

    /* The token works with its key's role. */
    json_decref(API_OK(&N, 200, "GET", "/v1/status", tok, NULL));
    json_decref(
        API_OK(&N, 200, "POST", "/v1/counters/sess-c/increment", tok, NULL));
    API_ERR(&N, 403, "forbidden", "GET", "/v1/keys", tok, NULL);

    /* Listed for an admin, without the token. */
    jv_http_resp r;
    API_REQ(&N, &r, "GET", "/v1/sessions", N.admin_token, NULL);
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.body, "jvs_"));
    API_FIELDS(r.json, "sessions");
    json_t *row = find(r.json, "sessions", "id", id);
    assert_non_null(row);
    API_FIELDS(row, "id", "key_id", "key_name", "role", "created_at",
               "expires_at");
    assert_string_equal(api_str(row, "key_id"), key_id);
    assert_string_equal(api_str(row, "key_name"), "sess-writer");
    assert_string_equal(api_str(row, "role"), "writer");
    assert_string_equal(api_str(row, "expires_at"), api_str(s, "expires_at"));
    uint64_t created = time_of(row, "created_at");
    assert_true(created >= t0 && created <= t1);
    jv_http_resp_fini(&r);

    /* DELETE /v1/sessions/current ends the session of the token. */
    assert_null(API_OK(&N, 204, "DELETE", "/v1/sessions/current", tok, NULL));
    API_ERR(&N, 401, "unauthorized", "GET", "/v1/status", tok, NULL);
    API_ERR(&N, 401, "unauthorized", "DELETE", "/v1/sessions/current", tok,
            NULL);
    API_REQ(&N, &r, "GET", "/v1/sessions", N.admin_token, NULL);
    assert_null(find(r.json, "sessions", "id", id));
    assert_non_null(find(r.json, "sessions", "id", api_str(d, "id")));
    jv_http_resp_fini(&r);
    /* Neither the key nor its other sessions are touched. */
    json_decref(API_OK(&N, 200, "GET", "/v1/status", key, NULL));
    json_decref(
        API_OK(&N, 200, "GET", "/v1/status", api_str(d, "token"), NULL));

    /* An admin revokes another session at once; then it is unknown. */
    assert_null(API_OK(&N, 204, "DELETE",
                       api_fmt("/v1/sessions/%s", api_str(d, "id")),
                       N.admin_token, NULL));
    API_ERR(&N, 401, "unauthorized", "GET", "/v1/status", api_str(d, "token"),
            NULL);
    API_ERR(&N, 404, "not_found", "DELETE",
            api_fmt("/v1/sessions/%s", api_str(d, "id")), N.admin_token, NULL);
    API_ERR(&N, 404, "not_found", "DELETE", api_fmt("/v1/sessions/%s", id),
            N.admin_token, NULL);
    json_decref(s);
    json_decref(d);
}

static void test_key_revoke(void **state)
{
    (void)state;
    char key[160], key_id[32], t1[160], t2[160], other[160], other_tok[160];
    api_key(&N, "rv-writer", "writer", key, key_id);
    api_key(&N, "rv-other", "writer", other, NULL);
    api_session(&N, key, 0, t1, NULL);
    api_session(&N, key, 600, t2, NULL);
    api_session(&N, other, 0, other_tok, NULL);
    json_decref(API_OK(&N, 200, "GET", "/v1/status", t1, NULL));

    uint64_t t0 = api_now_ms();
    assert_null(API_OK(&N, 204, "DELETE", api_fmt("/v1/keys/%s", key_id),
                       N.admin_token, NULL));
    /* The key and every session made with it stop working at once... */
    API_ERR(&N, 401, "unauthorized", "GET", "/v1/status", key, NULL);
    API_ERR(&N, 401, "unauthorized", "GET", "/v1/status", t1, NULL);
    API_ERR(&N, 401, "unauthorized", "POST", "/v1/counters/rv/increment", t2,
            NULL);
    API_ERR(&N, 401, "unauthorized", "POST", "/v1/sessions", NULL,
            api_fmt("{\"api_key\":\"%s\"}", key));
    /* ...and no other key's. */
    json_decref(API_OK(&N, 200, "GET", "/v1/status", other, NULL));
    json_decref(API_OK(&N, 200, "GET", "/v1/status", other_tok, NULL));

    json_t *l = API_OK(&N, 200, "GET", "/v1/keys", N.admin_token, NULL);
    json_t *row = find(l, "keys", "id", key_id);
    assert_non_null(row);
    uint64_t rev = time_of(row, "revoked_at");
    assert_true(rev >= t0 && rev <= api_now_ms());
    assert_true(json_is_null(
        json_object_get(find(l, "keys", "name", "rv-other"), "revoked_at")));
    json_decref(l);
    l = API_OK(&N, 200, "GET", "/v1/sessions", N.admin_token, NULL);
    size_t i;
    json_array_foreach(json_object_get(l, "sessions"), i, row)
    {
        assert_string_not_equal(api_str(row, "key_id"), key_id);
    }
    json_decref(l);
    API_ERR(&N, 404, "not_found", "DELETE", api_fmt("/v1/keys/%s", key_id),
            N.admin_token, NULL);
}

/* jarvisd admin-key on node a's data dir: its exit status and output. */
static int admin_key_cmd(api_node *a, jv_proc_result *r)
{
    char bin[600];
    assert_true(jv_bin_path("jarvisd", bin, sizeof bin));
    char *argv[] = {bin, "admin-key", "--data-dir", a->node.dir, NULL};
    assert_int_equal(jv_proc_run(argv, NULL, 30000, r), 0);
    return r->status;
}

static void read_key_file(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(out, (int)cap, f));
    fclose(f);
    out[strcspn(out, "\n")] = '\0';
}

/* The last active admin key cannot be revoked (not even by itself), and a
 * node whose admin keys are all lost gets a new one offline. */
static void test_last_admin_key(void **state)
{
    (void)state;
    api_node M;
    jv_proc_result r;
    char admin_id[32], other[160], other_id[32], path[700], text[200];
    api_start(&M, NULL);
    json_t *l = API_OK(&M, 200, "GET", "/v1/keys", M.admin_token, NULL);
    json_t *row = find(l, "keys", "name", "admin");
    assert_non_null(row);
    snprintf(admin_id, sizeof admin_id, "%s", api_str(row, "id"));
    json_decref(l);

    /* Alone: refused, and nothing changed. */
    API_ERR(&M, 409, "conflict", "DELETE", api_fmt("/v1/keys/%s", admin_id),
            M.admin_token, NULL);
    API_ERR(&M, 409, "conflict", "DELETE", api_fmt("/v1/keys/%s", admin_id),
            M.node.admin_key, NULL);
    json_decref(API_OK(&M, 200, "GET", "/v1/keys", M.admin_token, NULL));
    /* With a second admin key, one of them may go, not both. */
    api_key(&M, "second-admin", "admin", other, other_id);
    assert_null(API_OK(&M, 204, "DELETE", api_fmt("/v1/keys/%s", admin_id),
                       other, NULL));
    /* (The first key's sessions went with it: no export comparison.) */
    API_ERR_ONLY(&M, 409, "conflict", "DELETE",
                 api_fmt("/v1/keys/%s", other_id), other, NULL);
    API_ERR_ONLY(&M, 401, "unauthorized", "GET", "/v1/keys", M.node.admin_key,
                 NULL);
    json_decref(API_OK(&M, 200, "GET", "/v1/keys", other, NULL));

    /* Offline recovery refuses to run beside the node... */
    assert_int_equal(admin_key_cmd(&M, &r), 1);
    assert_non_null(strstr(r.err, "running"));
    jv_proc_result_fini(&r);
    /* ...and makes a working admin key once it is stopped. */
    assert_int_equal(api_stop(&M), 0);
    int rc = admin_key_cmd(&M, &r);
    if (rc != 0)
        fail_msg("jarvisd admin-key: %d: %s", rc, r.err);
    snprintf(path, sizeof path, "%s/admin.key", M.node.dir);
    assert_non_null(strstr(r.out, path));
    jv_proc_result_fini(&r);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    read_key_file(path, text, sizeof text);
    assert_string_not_equal(text, M.node.admin_key);
    api_restart(&M, NULL);
    l = API_OK(&M, 200, "GET", "/v1/keys", text, NULL);
    size_t i, active_admins = 0;
    json_array_foreach(json_object_get(l, "keys"), i, row)
    {
        if (!strcmp(api_str(row, "role"), "admin") &&
            json_is_null(json_object_get(row, "revoked_at")))
            active_admins++;
    }
    assert_int_equal(active_admins, 2);
    json_decref(l);
    /* It is audited like any key made. */
    l = API_OK(&M, 200, "GET", "/v1/audit?action=key.create&limit=1000", text,
               NULL);
    bool seen = false;
    json_array_foreach(json_object_get(l, "entries"), i, row)
    {
        seen |= strstr(api_str(row, "detail"), "jarvisd admin-key") != NULL;
    }
    json_decref(l);
    assert_true(seen);
    assert_int_equal(api_stop(&M), 0);
    /* A data dir that is not one is refused. */
    snprintf(M.node.dir + strlen(M.node.dir),
             sizeof M.node.dir - strlen(M.node.dir), "/nope");
    assert_int_equal(admin_key_cmd(&M, &r), 1);
    assert_non_null(strstr(r.err, "no data dir"));
    jv_proc_result_fini(&r);
    struct stat nb;
    assert_int_equal(stat(M.node.dir, &nb), -1); /* and none was made */
    /* A directory that is not a data dir is refused too. */
    assert_int_equal(mkdir(M.node.dir, 0700), 0);
    assert_int_equal(admin_key_cmd(&M, &r), 1);
    assert_non_null(strstr(r.err, "not a Jarvis data dir"));
    jv_proc_result_fini(&r);
    api_cleanup(&M);
}

static void test_expiry(void **state)
{
    (void)state;
    char key[160];
    api_key(&N, "exp-reader", "reader", key, NULL);
    json_t *s = API_OK(&N, 201, "POST", "/v1/sessions", NULL,
                       api_fmt("{\"api_key\":\"%s\",\"ttl_seconds\":1}", key));
    uint64_t exp = time_of(s, "expires_at");
    const char *tok = api_str(s, "token");
    json_decref(API_OK(&N, 200, "GET", "/v1/status", tok, NULL));
    json_t *l = API_OK(&N, 200, "GET", "/v1/sessions", N.admin_token, NULL);
    assert_non_null(find(l, "sessions", "id", api_str(s, "id")));
    json_decref(l);

    uint64_t now = api_now_ms();
    if (exp + 100 > now)
        api_sleep_ms((long)(exp + 100 - now));
    API_ERR(&N, 401, "unauthorized", "GET", "/v1/status", tok, NULL);
    API_ERR(&N, 401, "unauthorized", "DELETE", "/v1/sessions/current", tok,
            NULL);
    l = API_OK(&N, 200, "GET", "/v1/sessions", N.admin_token, NULL);
    assert_null(find(l, "sessions", "id", api_str(s, "id")));
    json_decref(l);
    /* An expired session is no longer one an admin can revoke. */
    API_ERR(&N, 404, "not_found", "DELETE",
            api_fmt("/v1/sessions/%s", api_str(s, "id")), N.admin_token, NULL);
    /* The key is fine. */
    json_decref(API_OK(&N, 200, "GET", "/v1/status", key, NULL));
    json_decref(s);
}

/* -- roles ---------------------------------------------------------------- */

enum {
    READER = 1,
    WRITER = 2,
    ADMIN = 3
};

typedef struct {
    const char *method, *path, *body;
    int role; /* the least role that may */
} route_case;

/* Every route behind credentials, with bodies and ids that keep an allowed
 * request harmless (an absent id, an invalid body: anything but 401/403
 * shows the role passed, since roles are checked before the body). */
static const route_case cases[] = {
    {"GET", "/v1/health", NULL, READER},
    {"GET", "/v1/status", NULL, READER},
    {"GET", "/v1/counters", NULL, READER},
    {"GET", "/v1/counters/role-c", NULL, READER},
    {"GET", "/v1/audit?limit=1", NULL, READER},
    {"GET", "/v1/config", NULL, READER},
    {"GET", "/v1/config/role-k", NULL, READER},
    {"GET", "/v1/archive", NULL, READER},
    {"GET", "/v1/archive/role-a", NULL, READER},
    {"GET", "/v1/export", NULL, READER},
    {"GET", "/v1/peers", NULL, READER},
    {"GET", "/v1/trust", NULL, READER},
    {"POST", "/v1/counters/role-c/increment", NULL, WRITER},
    {"POST", "/v1/audit", "{\"action\":\"role\"}", WRITER},
    {"PUT", "/v1/config/role-k", "{\"value\":1}", WRITER},
    {"PUT", "/v1/archive/role-a", "{\"value\":1}", WRITER},
    {"DELETE", "/v1/archive/role-absent", NULL, WRITER},
    {"POST", "/v1/batch",
     "{\"ops\":[{\"op\":\"counter.increment\",\"name\":\"role-c\"}]}", WRITER},
    {"GET", "/v1/sessions", NULL, ADMIN},
    {"DELETE", "/v1/sessions/s_000000000000", NULL, ADMIN},
    {"GET", "/v1/keys", NULL, ADMIN},
    {"POST", "/v1/keys", "{}", ADMIN},
    {"DELETE", "/v1/keys/k_000000000000", NULL, ADMIN},
    {"POST", "/v1/backup", "{\"path\":\"relative.db\"}", ADMIN},
    {"POST", "/v1/verify", NULL, ADMIN},
    {"POST", "/v1/peers", "{}", ADMIN},
    {"DELETE", "/v1/peers/tcp%3A%2F%2F127.0.0.1%3A1", NULL, ADMIN},
    {"POST", "/v1/trust", "{}", ADMIN},
    {"DELETE", "/v1/trust/not-a-node-id", NULL, ADMIN},
};

static void test_roles(void **state)
{
    (void)state;
    static const char *const names[] = {NULL, "reader", "writer", "admin"};
    char keys[4][160], toks[4][160];
    for (int role = READER; role <= ADMIN; role++) {
        api_key(&N, api_fmt("role-%s", names[role]), names[role], keys[role],
                NULL);
        api_session(&N, keys[role], 0, toks[role], NULL);
    }
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const route_case *c = &cases[i];
        for (int role = READER; role <= ADMIN; role++) {
            for (int as_session = 0; as_session < 2; as_session++) {
                const char *cred = as_session ? toks[role] : keys[role];
                if (role < c->role) {
                    API_ERR(&N, 403, "forbidden", c->method, c->path, cred,
                            c->body);
                    continue;
                }
                int st = status_of(c->method, c->path, cred, c->body);
                if (st == 401 || st == 403 || st == 0)
                    fail_msg("%s %s as %s (%s): %d, the role may", c->method,
                             c->path, names[role],
                             as_session ? "session" : "key", st);
            }
        }
        /* And nobody without credentials. */
        API_ERR(&N, 401, "unauthorized", c->method, c->path, NULL, c->body);
    }
    /* Any role ends its own session. */
    for (int role = READER; role <= ADMIN; role++) {
        assert_null(API_OK(&N, 204, "DELETE", "/v1/sessions/current",
                           toks[role], NULL));
        API_ERR(&N, 401, "unauthorized", "GET", "/v1/status", toks[role], NULL);
    }
}

/* -- every admin action is audited ---------------------------------------- */

/* The newest entry of `action` by `actor`: checks its target. */
static void audited(const char *actor, const char *action, const char *target)
{
    json_t *j = API_OK(&N, 200, "GET",
                       api_fmt("/v1/audit?actor=%s&action=%s&order=desc&"
                               "limit=1",
                               actor, action),
                       N.admin_token, NULL);
    json_t *e = json_array_get(json_object_get(j, "entries"), 0);
    if (e == NULL)
        fail_msg("no '%s' entry by '%s' in the audit log", action, actor);
    assert_string_equal(api_str(e, "actor"), actor);
    assert_string_equal(api_str(e, "action"), action);
    if (strcmp(api_str(e, "target"), target) != 0)
        fail_msg("'%s' by '%s': target '%s', want '%s'", action, actor,
                 api_str(e, "target"), target);
    json_decref(j);
}

static void test_admin_actions_audited(void **state)
{
    (void)state;
    char ops[160], ops_id[32], ops_tok[160], ops_sid[32];
    api_key(&N, "ops", "admin", ops, ops_id);
    /* Made by the first admin key: actor "admin". */
    audited("admin", "key.create", api_fmt("key/%s", ops_id));

    /* Everything below is done by "ops", as a key or through a session. */
    json_t *k = API_OK(&N, 201, "POST", "/v1/keys", ops,
                       "{\"name\":\"ops-made\",\"role\":\"reader\"}");
    char made_id[32];
    snprintf(made_id, sizeof made_id, "%s", api_str(k, "id"));
    json_decref(k);
    audited("ops", "key.create", api_fmt("key/%s", made_id));
    assert_null(
        API_OK(&N, 204, "DELETE", api_fmt("/v1/keys/%s", made_id), ops, NULL));
    audited("ops", "key.revoke", api_fmt("key/%s", made_id));

    api_session(&N, ops, 0, ops_tok, ops_sid);
    audited("ops", "session.create", api_fmt("session/%s", ops_sid));
    char tok2[160], sid2[32];
    api_session(&N, ops, 0, tok2, sid2);
    assert_null(API_OK(&N, 204, "DELETE", api_fmt("/v1/sessions/%s", sid2),
                       ops_tok, NULL));
    audited("ops", "session.revoke", api_fmt("session/%s", sid2));

    json_decref(API_OK(&N, 200, "PUT", "/v1/config/ops/setting", ops_tok,
                       "{\"value\":{\"on\":true}}"));
    audited("ops", "config.set", "ops/setting");

    char dir[PATH_MAX], path[PATH_MAX + 32];
    assert_non_null(realpath(N.node.dir, dir));
    snprintf(path, sizeof path, "%s/backups/ops.db", dir);
    json_decref(API_OK(&N, 201, "POST", "/v1/backup", ops_tok,
                       "{\"path\":\"ops.db\"}"));
    audited("ops", "backup", path);
    json_decref(API_OK(&N, 200, "POST", "/v1/verify", ops, NULL));
    audited("ops", "verify", "database");

    /* Peers and trust. A peer nobody listens on is only retried. */
    static const char peer[] = "tcp://127.0.0.1:9";
    json_t *p = API_OK(&N, 201, "POST", "/v1/peers", ops,
                       api_fmt("{\"addr\":\"%s\"}", peer));
    API_FIELDS(p, "address");
    assert_string_equal(api_str(p, "address"), peer);
    json_decref(p);
    audited("ops", "peer.add", peer);
    API_ERR(&N, 409, "conflict", "POST", "/v1/peers", ops,
            api_fmt("{\"addr\":\"%s\"}", peer));
    p = API_OK(&N, 200, "GET", "/v1/peers", ops, NULL);
    assert_non_null(find(p, "peers", "address", peer));
    json_decref(p);
    assert_null(API_OK(&N, 204, "DELETE",
                       api_fmt("/v1/peers/%s", api_esc(peer, false)), ops,
                       NULL));
    audited("ops", "peer.remove", peer);
    json_decref(API_OK(&N, 200, "GET", "/v1/peers", ops, NULL));

    static const char other[] =
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    json_t *t = API_OK(&N, 200, "POST", "/v1/trust", ops,
                       api_fmt("{\"node_id\":\"%s\",\"name\":\"lab\"}", other));
    API_FIELDS(t, "node_id", "trusted", "name", "set_by", "stamp");
    assert_string_equal(api_str(t, "node_id"), other);
    assert_true(json_is_true(json_object_get(t, "trusted")));
    assert_string_equal(api_str(t, "name"), "lab");
    assert_string_equal(api_str(t, "set_by"), N.node_id);
    json_decref(t);
    audited("ops", "trust.add", other);
    t = API_OK(&N, 200, "GET", "/v1/trust", ops, NULL);
    json_t *row = find(t, "trust", "node_id", other);
    assert_non_null(row);
    API_FIELDS(row, "node_id", "trusted", "name", "set_by", "stamp", "set_at");
    assert_true(json_is_true(json_object_get(row, "trusted")));
    json_decref(t);
    assert_null(
        API_OK(&N, 204, "DELETE", api_fmt("/v1/trust/%s", other), ops, NULL));
    audited("ops", "trust.remove", other);
    t = API_OK(&N, 200, "GET", "/v1/trust", ops, NULL);
    row = find(t, "trust", "node_id", other);
    assert_true(row == NULL || json_is_false(json_object_get(row, "trusted")));
    json_decref(t);

    /* Ending one's own session is audited too. */
    assert_null(
        API_OK(&N, 204, "DELETE", "/v1/sessions/current", ops_tok, NULL));
    audited("ops", "session.revoke", api_fmt("session/%s", ops_sid));
}

/* -- cluster keys (one node; tests/net/ckeys_test.c has three) ----------- */

static void test_cluster_keys(void **state)
{
    (void)state;
    char ops[160], ops_id[32], rd[160], rd_id[32];
    api_key(&N, "c-ops", "admin", ops, ops_id);
    api_key(&N, "c-reader", "reader", rd, rd_id);
    json_t *k = API_OK(&N, 201, "POST", "/v1/keys", ops,
                       "{\"name\":\"fleet\",\"role\":\"writer\","
                       "\"scope\":\"cluster\"}");
    API_FIELDS(k, "id", "name", "role", "scope", "key", "created_at");
    assert_string_equal(api_str(k, "scope"), "cluster");
    char id[32], key[160];
    snprintf(id, sizeof id, "%s", api_str(k, "id"));
    snprintf(key, sizeof key, "%s", api_str(k, "key"));
    json_decref(k);
    audited("c-ops", "key.create", api_fmt("key/%s", id));
    /* It works at once, with its role and no more. */
    json_decref(
        API_OK(&N, 200, "POST", "/v1/counters/fleet/increment", key, NULL));
    assert_int_equal(status_of("GET", "/v1/keys", key, NULL), 403);
    /* Only admins make cluster keys; bad scopes are refused. */
    API_ERR(&N, 403, "forbidden", "POST", "/v1/keys", rd,
            "{\"name\":\"x\",\"role\":\"admin\",\"scope\":\"cluster\"}");
    API_ERR(&N, 403, "forbidden", "POST", "/v1/keys", key,
            "{\"name\":\"x\",\"role\":\"admin\",\"scope\":\"cluster\"}");
    API_ERR(&N, 400, "invalid_field", "POST", "/v1/keys", ops,
            "{\"name\":\"x\",\"role\":\"admin\",\"scope\":\"world\"}");
    API_ERR(&N, 409, "conflict", "POST", "/v1/keys", ops,
            "{\"name\":\"fleet\",\"role\":\"reader\",\"scope\":\"cluster\"}");
    /* Listed with its scope, who made it and where; never the secret. */
    jv_http_resp r;
    API_REQ(&N, &r, "GET", "/v1/keys", N.admin_token, NULL);
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.body, key));
    json_t *row = find(r.json, "keys", "name", "fleet");
    assert_non_null(row);
    API_FIELDS(row, "id", "name", "role", "scope", "created_at", "created_by",
               "origin", "revoked_at", "revoked_by");
    assert_string_equal(api_str(row, "scope"), "cluster");
    assert_string_equal(api_str(row, "created_by"), "c-ops");
    assert_true(json_is_null(json_object_get(row, "revoked_at")));
    jv_http_resp_fini(&r);
    /* A session made with it ends with it. */
    char tok[160], sid[32];
    api_session(&N, key, 0, tok, sid);
    assert_int_equal(status_of("GET", "/v1/status", tok, NULL), 200);
    /* scope=cluster on a node key, or on what is not a key id: refused. */
    API_ERR(&N, 409, "conflict", "DELETE",
            api_fmt("/v1/keys/%s?scope=cluster", rd_id), ops, NULL);
    API_ERR(&N, 400, "invalid_field", "DELETE", "/v1/keys/nothex?scope=cluster",
            ops, NULL);
    API_ERR(&N, 400, "bad_request", "DELETE",
            api_fmt("/v1/keys/%s?scope=galaxy", id), ops, NULL);
    assert_int_equal(status_of("GET", "/v1/status", rd, NULL), 200);
    /* A reader cannot revoke it. */
    assert_int_equal(status_of("DELETE", api_fmt("/v1/keys/%s", id), rd, NULL),
                     403);
    assert_null(
        API_OK(&N, 204, "DELETE", api_fmt("/v1/keys/%s", id), ops, NULL));
    audited("c-ops", "key.revoke", api_fmt("key/%s", id));
    assert_int_equal(status_of("GET", "/v1/status", key, NULL), 401);
    assert_int_equal(status_of("GET", "/v1/status", tok, NULL), 401);
    API_ERR(&N, 404, "not_found", "DELETE", api_fmt("/v1/keys/%s", id), ops,
            NULL);
    /* Revoking again by scope is harmless; so is revoking an id this node
     * has not seen (the key is revoked when it comes). */
    assert_null(API_OK(&N, 204, "DELETE",
                       api_fmt("/v1/keys/%s?scope=cluster", id), ops, NULL));
    assert_null(API_OK(&N, 204, "DELETE",
                       "/v1/keys/k_0123456789ab?scope=cluster", ops, NULL));
    k = API_OK(&N, 200, "GET", "/v1/keys", N.admin_token, NULL);
    row = find(k, "keys", "name", "fleet");
    assert_false(json_is_null(json_object_get(row, "revoked_at")));
    assert_string_equal(api_str(row, "revoked_by"), "c-ops");
    json_decref(k);
    /* Still revoked after a restart: the cache is rebuilt from the store. */
    assert_int_equal(api_stop(&N), 0);
    api_restart(&N, NULL);
    assert_int_equal(status_of("GET", "/v1/status", key, NULL), 401);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_sessions),
        cmocka_unit_test(test_key_revoke),
        cmocka_unit_test(test_last_admin_key),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_roles),
        cmocka_unit_test(test_admin_actions_audited),
        cmocka_unit_test(test_cluster_keys),
    };
    if (jv_http_global_init() != 0)
        return 1;
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    jv_http_global_fini();
    return rc;
}
