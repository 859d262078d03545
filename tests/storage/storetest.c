#define _GNU_SOURCE /* nftw's FTW_DEPTH and FTW_PHYS */
#include "storetest.h"

#include <ftw.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *st_mkdtemp(void)
{
    const char *tmp = getenv("TMPDIR");
    char *dir = NULL;
    assert_true(asprintf(&dir, "%s/jvst-XXXXXX", tmp && *tmp ? tmp : "/tmp") >
                0);
    assert_non_null(mkdtemp(dir));
    return dir;
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void st_rmdir(char *dir)
{
    if (!dir)
        return;
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

char *st_path(const char *dir, const char *name)
{
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
    return p;
}

jv_store *st_open_opts(const char *path, const jv_store_opts *o)
{
    jv_store *st = NULL;
    char msg[256] = "";
    jv_err err = jv_store_open(path, o, &st, msg, sizeof(msg));
    if (err)
        fail_msg("open %s: %s (%s)", path, jv_errname(err), msg);
    return st;
}

jv_store *st_open(const char *path)
{
    jv_store_opts o;
    jv_store_opts_default(&o);
    o.create = true;
    return st_open_opts(path, &o);
}

void st_batch_make(st_batch *b, const jv_keypair *kp, uint64_t first_seq,
                   const uint8_t prev[JV_HASH_LEN], uint64_t hlc, jv_op *ops,
                   uint32_t nops)
{
    jv_batch in = {
        .origin = kp->pk,
        .first_seq = first_seq,
        .hlc = hlc,
        .ops = ops,
        .nops = nops,
    };
    memcpy(in.prev, prev, JV_HASH_LEN);
    memset(b, 0, sizeof(*b));
    jv_buf_init(&b->body);
    assert_int_equal(jv_batch_encode(&in, &b->body), JV_OK);
    jv_batch_hash(b->body.data, b->body.len, b->hash);
    jv_batch_sign(b->hash, kp, b->sig);
    assert_int_equal(jv_batch_decode(b->body.data, b->body.len, &b->dec),
                     JV_OK);
}

void st_batch_from_row(st_batch *b, const jv_log_row *r)
{
    memset(b, 0, sizeof(*b));
    jv_buf_init(&b->body);
    assert_int_equal(jv_buf_append(&b->body, r->body, r->len), JV_OK);
    memcpy(b->hash, r->hash, JV_HASH_LEN);
    memcpy(b->sig, r->sig, JV_SIG_LEN);
    assert_int_equal(jv_batch_decode(b->body.data, b->body.len, &b->dec),
                     JV_OK);
}

void st_batch_fini(st_batch *b)
{
    jv_batch_fini(&b->dec);
    jv_buf_fini(&b->body);
}

jv_store_batch st_sb(const st_batch *b)
{
    jv_store_batch s = {b->body.data, b->body.len, b->sig, b->hash, &b->dec};
    return s;
}

jv_err st_apply1(jv_store *st, const st_batch *b, unsigned flags)
{
    jv_store_batch sb = st_sb(b);
    jv_err res = JV_OK;
    jv_err err = jv_store_apply(st, &sb, 1, flags, &res, NULL);
    if (err)
        fail_msg("apply: %s (%s)", jv_errname(err), jv_store_errmsg(st));
    return res;
}

/* -- export --------------------------------------------------------------- */

typedef struct {
    jv_buf out;
    char **names;
    size_t nnames;
} exp_ctx;

static void put(exp_ctx *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void put(exp_ctx *x, const char *fmt, ...)
{
    char *line = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&line, fmt, ap);
    va_end(ap);
    assert_true(n >= 0);
    assert_int_equal(jv_buf_append(&x->out, line, (size_t)n), JV_OK);
    free(line);
}

static void put_str(exp_ctx *x, jv_str s)
{
    /* Hex keeps arbitrary bytes on one line. */
    char *h = malloc(2 * s.n + 1);
    assert_non_null(h);
    jv_hex((const uint8_t *)s.p, s.n, h);
    put(x, " %s", s.n ? h : "-");
    free(h);
}

static void put_id(exp_ctx *x, const jv_id *id)
{
    char h[JV_ID_HEX];
    jv_id_hex(id, h);
    put(x, " %.16s", h);
}

static jv_err exp_counter_name(void *arg, const jv_counter_row *r)
{
    exp_ctx *x = arg;
    x->names = realloc(x->names, (x->nnames + 1) * sizeof(*x->names));
    assert_non_null(x->names);
    x->names[x->nnames] = malloc(r->name.n + 1);
    assert_non_null(x->names[x->nnames]);
    memcpy(x->names[x->nnames], r->name.p, r->name.n);
    x->names[x->nnames][r->name.n] = '\0';
    x->nnames++;
    put(x, "counter");
    put_str(x, r->name);
    char total[JV_COUNT_TEXT];
    jv_count_format(&r->total, total);
    put(x, " total=%s\n", total);
    return JV_OK;
}

static jv_err exp_share(void *arg, const jv_counter_share *s)
{
    exp_ctx *x = arg;
    put(x, "  share");
    put_id(x, &s->replica);
    put(x, " p=%" PRIu64 " n=%" PRIu64 "\n", s->p, s->n);
    return JV_OK;
}

static jv_err exp_audit(void *arg, const jv_audit_row *r)
{
    exp_ctx *x = arg;
    put(x, "audit");
    put_id(x, &r->id.id);
    put(x, " %" PRIu64 " t=%" PRIu64, r->id.n, r->time_ms);
    put_str(x, r->actor);
    put_str(x, r->action);
    put_str(x, r->target);
    put_str(x, r->detail);
    put(x, "\n");
    return JV_OK;
}

static jv_err exp_config(void *arg, const jv_config_row *r)
{
    exp_ctx *x = arg;
    put(x, "config");
    put_str(x, r->key);
    put_str(x, r->value);
    put(x, " stamp=%" PRIu64, r->stamp);
    put_id(x, &r->replica);
    put(x, "\n");
    return JV_OK;
}

static jv_err exp_value(void *arg, const jv_archive_value *v)
{
    exp_ctx *x = arg;
    put(x, "archive");
    put_str(x, v->key);
    put_id(x, &v->dot.id);
    put(x, " %" PRIu64 " stamp=%" PRIu64, v->dot.n, v->stamp);
    put_str(x, v->value);
    put(x, "\n");
    return JV_OK;
}

static jv_err exp_cloud(void *arg, const jv_dot *d)
{
    exp_ctx *x = arg;
    put(x, "cloud");
    put_id(x, &d->id);
    put(x, " %" PRIu64 "\n", d->n);
    return JV_OK;
}

static jv_err exp_trust(void *arg, const jv_trust_row *r)
{
    exp_ctx *x = arg;
    put(x, "trust");
    put_id(x, &r->node);
    put(x, " %d stamp=%" PRIu64, r->trusted, r->stamp);
    put_id(x, &r->set_by);
    put_str(x, r->name);
    put(x, "\n");
    return JV_OK;
}

static jv_err exp_log(void *arg, const jv_log_row *r)
{
    exp_ctx *x = arg;
    char h[2 * JV_HASH_LEN + 1];
    jv_hex(r->hash, JV_HASH_LEN, h);
    put(x, "log");
    put_id(x, &r->origin);
    put(x, " %" PRIu64 "-%" PRIu64 " hlc=%" PRIu64 " %s len=%zu\n",
        r->first_seq, r->last_seq, r->hlc, h, r->len);
    return JV_OK;
}

static jv_err exp_held(void *arg, const jv_held_row *r)
{
    exp_ctx *x = arg;
    put(x, "held");
    put_id(x, &r->origin);
    put(x, " %" PRIu64 "-%" PRIu64 " %s len=%zu\n", r->first_seq, r->last_seq,
        jv_errname(r->reason), r->len);
    return JV_OK;
}

static jv_err exp_ckey(void *arg, const jv_ckey_row *k)
{
    exp_ctx *x = arg;
    char hx[2 * JV_OP_KEY_HASH_LEN + 1];
    jv_hex(k->hash, JV_OP_KEY_HASH_LEN, hx);
    put(x, "ckey %.*s %.*s %.*s %s %" PRIu64 " %.*s", (int)k->id.n, k->id.p,
        (int)k->name.n, k->name.p, (int)k->role.n, k->role.p, hx, k->created_ms,
        (int)k->created_by.n, k->created_by.p);
    put_id(x, &k->origin);
    put(x, " revoked=%d %" PRIu64 " %.*s\n", k->revoked, k->revoked_ms,
        (int)k->revoked_by.n, k->revoked_by.p);
    return JV_OK;
}

char *st_export(jv_store *st, bool held)
{
    exp_ctx x = {0};
    jv_vv vv;
    jv_buf_init(&x.out);
    jv_vv_init(&vv);
    jv_str none = {"", 0};
    assert_int_equal(
        jv_store_counter_list(st, none, none, 0, exp_counter_name, &x), JV_OK);
    for (size_t i = 0; i < x.nnames; i++) {
        assert_int_equal(
            jv_store_counter_get(st, jv_str_c(x.names[i]), exp_share, &x),
            JV_OK);
        free(x.names[i]);
    }
    free(x.names);
    assert_int_equal(jv_store_audit_scan(st, exp_audit, &x), JV_OK);
    assert_int_equal(jv_store_config_list(st, none, none, 0, exp_config, &x),
                     JV_OK);
    assert_int_equal(jv_store_archive_values(st, exp_value, &x), JV_OK);
    assert_int_equal(jv_store_archive_context(st, &vv, exp_cloud, &x), JV_OK);
    for (size_t i = 0; i < vv.n; i++) {
        put(&x, "ctx");
        put_id(&x, &vv.v[i].id);
        put(&x, " %" PRIu64 "\n", vv.v[i].seq);
    }
    assert_int_equal(jv_store_trust_list(st, exp_trust, &x), JV_OK);
    assert_int_equal(jv_store_ckey_list(st, exp_ckey, &x), JV_OK);
    assert_int_equal(jv_store_vv(st, &vv), JV_OK);
    for (size_t i = 0; i < vv.n; i++) {
        uint64_t seq;
        uint8_t h[JV_HASH_LEN];
        char hx[2 * JV_HASH_LEN + 1];
        assert_int_equal(jv_store_origin_head(st, &vv.v[i].id, &seq, h), JV_OK);
        assert_int_equal(seq, vv.v[i].seq);
        jv_hex(h, JV_HASH_LEN, hx);
        put(&x, "vv");
        put_id(&x, &vv.v[i].id);
        put(&x, " %" PRIu64 " %s\n", seq, hx);
    }
    assert_int_equal(jv_store_log_scan(st, exp_log, &x), JV_OK);
    if (held)
        assert_int_equal(jv_store_held_list(st, exp_held, &x), JV_OK);
    jv_vv_fini(&vv);
    assert_int_equal(jv_buf_append(&x.out, "", 1), JV_OK);
    char *s = strdup((const char *)x.out.data);
    assert_non_null(s);
    jv_buf_fini(&x.out);
    return s;
}

uint8_t *st_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    uint8_t *p = malloc((size_t)n + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return p;
}

void st_write_file(const char *path, const void *p, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

jv_err st_commit(jv_store *st, const jv_keypair *kp, uint64_t hlc,
                 jv_intent *in, size_t n, jv_commit_info *info)
{
    jv_write_group g = {.intents = in, .n = n};
    jv_commit_info ci;
    jv_err err = jv_store_commit_local(st, kp, hlc, &g, 1, info ? info : &ci);
    if (err)
        fail_msg("commit: %s (%s)", jv_errname(err), jv_store_errmsg(st));
    return g.result;
}

jv_intent st_counter(const char *name, int64_t by)
{
    jv_intent in = {0};
    in.op.kind = JV_OP_COUNTER;
    in.op.counter.name = jv_str_c(name);
    in.by = by;
    return in;
}

jv_intent st_audit(uint64_t time_ms, const char *actor, const char *action,
                   const char *target, const char *detail)
{
    jv_intent in = {0};
    in.op.kind = JV_OP_AUDIT;
    in.op.audit.time_ms = time_ms;
    in.op.audit.actor = jv_str_c(actor);
    in.op.audit.action = jv_str_c(action);
    in.op.audit.target = jv_str_c(target);
    in.op.audit.detail = jv_str_c(detail);
    return in;
}

jv_intent st_config(const char *key, const char *value, uint64_t stamp)
{
    jv_intent in = {0};
    in.op.kind = JV_OP_CONFIG;
    in.op.config.key = jv_str_c(key);
    in.op.config.value = jv_str_c(value);
    in.op.config.stamp = stamp;
    return in;
}

jv_intent st_add(const char *key, const char *value, uint64_t stamp)
{
    jv_intent in = {0};
    in.op.kind = JV_OP_ARCHIVE_ADD;
    in.op.add.key = jv_str_c(key);
    in.op.add.value = jv_str_c(value);
    in.op.add.stamp = stamp;
    return in;
}

jv_intent st_rm(const char *key)
{
    jv_intent in = {0};
    in.op.kind = JV_OP_ARCHIVE_RM;
    in.op.rm.key = jv_str_c(key);
    return in;
}

jv_intent st_trust(const jv_id *node, bool trusted, uint64_t stamp,
                   const char *name)
{
    jv_intent in = {0};
    in.op.kind = JV_OP_TRUST;
    in.op.trust.node = *node;
    in.op.trust.trusted = trusted;
    in.op.trust.stamp = stamp;
    in.op.trust.name = jv_str_c(name);
    return in;
}

void st_keypair(jv_keypair *kp, uint8_t seed)
{
    uint8_t s[crypto_sign_SEEDBYTES];
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
    assert_true(sodium_init() >= 0);
    memset(s, seed, sizeof(s));
    crypto_sign_seed_keypair(pk, sk, s);
    assert_int_equal(jv_keypair_from_secret(kp, sk), JV_OK);
}
