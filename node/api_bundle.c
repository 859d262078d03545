/*
 * api_bundle.c - bundles for air-gapped sites (net/bundle.h): making one
 * of the batches a node lacks, inspecting one, and applying one as if its
 * batches came from a peer.
 *
 * Everything that reads the whole log or hashes the whole bundle runs on
 * the thread pool (jv_node_offloop); the loop only hands the checked
 * batches to the writer. A bundle is checked whole (maker's signature,
 * maker trusted, seal, strict decode, every batch's origin signature and
 * decode) before any of it reaches the writer, so a refused bundle changes
 * nothing.
 *
 * A target that lacks batches this node compacted (some origin's cut is
 * above its vector) is sent the base snapshot first, exactly as a peer
 * would be (node/repl.c), then the batches after the cut. Applying, the
 * snapshot goes through the store's install (jv_store_snap_install: the
 * replication path's verification and join) before any batch: a refused
 * snapshot refuses the bundle with nothing applied.
 *
 * What a node learnt of another from the bundles it applied (the maker's
 * vector) is kept in <data-dir>/bundle-vectors.json, for `for=NODE_ID`;
 * what it learnt over the network, repl keeps (jv_repl_said).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "api_int.h"
#include "bundle.h"
#include "log.h"
#include "repl.h"
#include "snapshot.h"

_Static_assert(JV_BUNDLE_MAX_SNAP == JV_SNAP_MAX_BYTES,
               "a bundle carries any snapshot a peer would be sent");

typedef struct {
    api_ctx *c;
    jv_node *n;
    bool inspect;
    /* create */
    jv_vv against;
    jv_bundle_head h;
    jv_keyring ring;
    jv_keypair kp;
    jv_buf out;
    size_t nbatches;
    jv_buf snap_enc;     /* the base, when the target lacks compacted ones */
    jv_bundle_snap snap; /* its envelope */
    bool with_snap;
    char snap_fault[16]; /* tests: as repl faults the snapshots it sends */
    /* apply and inspect */
    const uint8_t *data;
    size_t len;
    size_t max_plain;
    jv_buf plain;
    jv_bundle_content content;
    jv_vv have; /* this node's vector before applying */
    bool sig_ok, trusted, can_open;
    /* the snapshot carried: its vector (empty if it does not decode) */
    jv_vv snap_vv;
    bool decoded, snap_decodes, snap_sig_ok, snap_trusted, snap_installed;
    jv_keypair origin; /* signs the base an install records */
    char snap_msg[256];
    int status; /* a refusal: 4xx, code and message */
    const char *code;
    char why[300];
    jv_remote_batch *rb;
    jv_err *pre; /* results decided on the loop (clock skew) */
} bundle_job;

static void job_free(void *p)
{
    bundle_job *j = p;
    if (!j)
        return;
    jv_vv_fini(&j->against);
    jv_vv_fini(&j->have);
    jv_vv_fini(&j->snap_vv);
    jv_keyring_wipe(&j->ring);
    jv_keypair_wipe(&j->kp);
    jv_keypair_wipe(&j->origin);
    jv_buf_fini(&j->out);
    jv_buf_fini(&j->snap_enc);
    jv_buf_fini(&j->plain);
    jv_bundle_content_fini(&j->content);
    jv_free(j->rb);
    jv_free(j->pre);
    jv_free(j);
}

static bundle_job *job_new(api_ctx *c)
{
    bundle_job *j = jv_calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->c = c;
    j->n = c->node;
    jv_vv_init(&j->against);
    jv_vv_init(&j->have);
    jv_vv_init(&j->snap_vv);
    jv_buf_init(&j->out);
    jv_buf_init(&j->snap_enc);
    jv_buf_init(&j->plain);
    c->extra = j;
    c->extra_free = job_free;
    return j;
}

static json_t *vv_json(const jv_vv *vv)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < vv->n; i++) {
        char hex[JV_ID_HEX];
        jv_id_hex(&vv->v[i].id, hex);
        json_object_set_new(o, hex, json_integer((json_int_t)vv->v[i].seq));
    }
    return o;
}

/* {"<node id>": seq, ...} into vv. */
static jv_err vv_from_json(json_t *o, jv_vv *vv)
{
    const char *k;
    json_t *v;
    if (!json_is_object(o) || json_object_size(o) > JV_VV_MAX_ENTRIES)
        return JV_EINVAL;
    json_object_foreach(o, k, v)
    {
        jv_id id;
        if (jv_id_from_hex(k, strlen(k), &id) || !json_is_integer(v) ||
            json_integer_value(v) < 0 ||
            jv_vv_raise(vv, &id, (uint64_t)json_integer_value(v)))
            return JV_EINVAL;
    }
    return JV_OK;
}

/* -- what this node learnt of others ------------------------------------- */

static void learnt_path(const jv_node *n, char *out, size_t len)
{
    snprintf(out, len, "%s/bundle-vectors.json", n->data_dir);
}

static jv_err learnt_get(const jv_node *n, const jv_id *id, jv_vv *vv)
{
    char path[PATH_MAX + 32], hex[JV_ID_HEX];
    learnt_path(n, path, sizeof(path));
    json_t *all = json_load_file(path, 0, NULL);
    jv_id_hex(id, hex);
    json_t *o = all ? json_object_get(all, hex) : NULL;
    jv_err err = o ? vv_from_json(o, vv) : JV_ENOTFOUND;
    json_decref(all);
    return err;
}

/* Raises what is known of id to vv, written atomically. */
static jv_err learnt_put(const jv_node *n, const jv_id *id, const jv_vv *vv)
{
    char path[PATH_MAX + 32], tmp[PATH_MAX + 40], hex[JV_ID_HEX];
    jv_vv merged;
    jv_err err = JV_EIO;
    learnt_path(n, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    json_t *all = json_load_file(path, 0, NULL);
    if (!json_is_object(all)) {
        json_decref(all);
        all = json_object();
    }
    jv_vv_init(&merged);
    jv_id_hex(id, hex);
    json_t *old = json_object_get(all, hex);
    if (old)
        vv_from_json(old, &merged); /* a damaged entry is replaced */
    if (jv_vv_merge(&merged, vv) == JV_OK &&
        json_object_set_new(all, hex, vv_json(&merged)) == 0) {
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd >= 0) {
            bool ok = json_dumpfd(all, fd, JSON_COMPACT) == 0 && fsync(fd) == 0;
            ok = close(fd) == 0 && ok;
            if (ok && rename(tmp, path) == 0)
                err = JV_OK;
            else
                unlink(tmp);
        }
    }
    jv_vv_fini(&merged);
    json_decref(all);
    return err;
}

/* -- create ---------------------------------------------------------------- */

typedef struct {
    bundle_job *j;
    jv_bundle_builder b;
} create_scan;

static jv_err create_row(void *arg, const jv_log_row *r)
{
    create_scan *s = arg;
    s->j->nbatches++;
    return jv_bundle_builder_add(&s->b, r->body, r->len, r->sig);
}

/* Tests (--test-faults): the snapshot faulted as repl faults the ones it
 * sends (jv_repl_snap_fault): a byte flipped, re-signed by a key nobody
 * trusts, or cut short. */
static void snap_tamper(bundle_job *j)
{
    jv_bundle_snap *s = &j->snap;
    if (strcmp(j->snap_fault, "flip") == 0) {
        j->snap_enc.data[j->snap_enc.len / 2] ^= 0x01;
    } else if (strcmp(j->snap_fault, "untrusted") == 0) {
        jv_keypair k;
        if (jv_keypair_generate(&k) == JV_OK) {
            s->maker = k.pk;
            jv_snap_sign(s->digest, &k, s->sig);
            jv_keypair_wipe(&k);
        }
    } else if (strcmp(j->snap_fault, "truncate") == 0 && s->len > 16) {
        s->len -= 9;
    }
}

/* The base, if the target lacks batches at or below the cut of some
 * origin (as repl decides for a peer's pull). */
static jv_err create_snap(jv_store *st, bundle_job *j, const jv_vv *cut)
{
    jv_snap_info info;
    bool behind = false;
    for (size_t i = 0; i < cut->n && !behind; i++)
        behind = cut->v[i].seq > jv_vv_get(&j->against, &cut->v[i].id);
    if (!behind)
        return JV_OK;
    jv_err err = jv_store_base_get(st, &info, &j->snap_enc);
    if (err)
        return err == JV_ENOTFOUND ? JV_OK : err;
    j->snap.maker = info.maker;
    j->snap.made_ms = info.made_ms;
    memcpy(j->snap.digest, info.digest, JV_HASH_LEN);
    memcpy(j->snap.sig, info.sig, JV_SIG_LEN);
    j->snap.enc = j->snap_enc.data;
    j->snap.len = j->snap_enc.len;
    snap_tamper(j);
    j->with_snap = true;
    return JV_OK;
}

/* One read transaction: the vector, the cut, the base and the log agree
 * (a compaction meanwhile cannot leave a gap between base and batches). */
static jv_err create_read(jv_store *st, bundle_job *j, create_scan *s,
                          jv_vv *mine)
{
    jv_vv cut;
    jv_err err;
    jv_vv_init(&cut);
    if ((err = jv_store_read_begin(st)))
        goto out;
    if ((err = jv_store_vv(st, mine)) || (err = jv_store_cut_get(st, &cut)) ||
        (err = create_snap(st, j, &cut)))
        goto end;
    /* By origin (the vector is sorted), then sequence: the order a
     * reader applies them in; with the base, only what follows its cut. */
    for (size_t i = 0; i < mine->n && !err; i++) {
        uint64_t from = jv_vv_get(&j->against, &mine->v[i].id);
        uint64_t c = j->with_snap ? jv_vv_get(&cut, &mine->v[i].id) : 0;
        from = c > from ? c : from;
        if (mine->v[i].seq > from)
            err = jv_store_log_after(st, &mine->v[i].id, from, 0, 0, create_row,
                                     s);
    }
end:
    jv_store_read_end(st);
out:
    jv_vv_fini(&cut);
    return err;
}

static jv_err create_run(jv_store *st, void *arg)
{
    bundle_job *j = arg;
    create_scan s = {.j = j};
    jv_vv mine;
    jv_err err;
    jv_vv_init(&mine);
    jv_bundle_builder_init(&s.b);
    err = create_read(st, j, &s, &mine);
    if (!err && j->with_snap)
        err = jv_bundle_builder_snap(&s.b, &j->snap);
    if (!err)
        err = jv_bundle_make(&s.b, &j->against, &mine, &j->h, &j->ring, &j->kp,
                             &j->out);
    if (err == JV_ESTORAGE || err == JV_EIO)
        snprintf(j->why, sizeof(j->why), "%s", jv_store_errmsg(st));
    jv_bundle_builder_fini(&s.b);
    jv_vv_fini(&mine);
    jv_keypair_wipe(&j->kp);
    return err;
}

static void create_done(jv_node *n, jv_err err, void *arg)
{
    bundle_job *j = arg;
    api_ctx *c = j->c;
    (void)n;
    if (err) {
        api_fail(c, err, "bundle");
        return;
    }
    char hdr[200];
    snprintf(hdr, sizeof(hdr),
             "Content-Disposition: attachment; filename=\"jarvis.bundle\"\r\n"
             "X-Jarvis-Bundle-Batches: %zu\r\n"
             "X-Jarvis-Bundle-Snapshot: %zu\r\n",
             j->nbatches, j->with_snap ? j->snap.len : (size_t)0);
    if (j->with_snap)
        jv_info("bundle",
                "made a bundle of the base snapshot (%zu bytes: its target "
                "lacks batches compacted here) and %zu batches (%zu bytes)",
                j->snap.len, j->nbatches, j->out.len);
    else
        jv_info("bundle", "made a bundle of %zu batches (%zu bytes)",
                j->nbatches, j->out.len);
    api_reply_raw(c, 200, "application/octet-stream", hdr, j->out.data,
                  j->out.len);
}

/* Reads an optional node id parameter; 1: absent, 0: set, -1: answered. */
static int id_param(api_ctx *c, const char *name, jv_buf *buf, jv_id *id)
{
    jv_err err = api_query(c, name, buf);
    if (err == JV_ENOTFOUND)
        return 1;
    if (err)
        return -1;
    if (jv_id_from_hex(api_cstr(buf), buf->len, id)) {
        api_error(c, 400, "invalid_field",
                  "%s must be a node id: 64 hex digits (jarvisctl status "
                  "shows it)",
                  name);
        return -1;
    }
    return 0;
}

/* Which batches: for=, since= or all=1, exactly one. */
static bool create_against(api_ctx *c, bundle_job *j, jv_buf *q)
{
    jv_id id;
    int has_for = id_param(c, "for", q, &id), given = 0;
    if (has_for < 0)
        return false;
    if (has_for == 0) {
        given++;
        j->h.flags |= JV_BUNDLE_F_TARGET;
        j->h.target = id;
        /* What it told us over the network and in its bundles: each
         * is what it held then, proven by its signature. */
        bool from_file = learnt_get(c->node, &id, &j->against) == JV_OK;
        bool from_peer = jv_repl_said(c->node->repl, &id, &j->against);
        if (!from_file && !from_peer) {
            api_error(c, 404, "not_found",
                      "this node knows no vector of %s yet (it learns one "
                      "from each message or bundle that node sends it); use "
                      "since= with a vector file it wrote (jarvisctl bundle "
                      "vector)",
                      api_cstr(q));
            return false;
        }
    }
    jv_err err = api_query(c, "since", q);
    if (err == JV_EINVAL)
        return false;
    if (err == JV_OK) {
        given++;
        json_t *o = json_loadb((const char *)q->data, q->len, 0, NULL);
        json_t *v = json_is_object(o) && json_object_get(o, "version_vector")
                        ? json_object_get(o, "version_vector")
                        : o;
        err = vv_from_json(v, &j->against);
        json_decref(o);
        if (err) {
            api_error(c, 400, "invalid_field",
                      "since must be a version vector: {\"<node id>\": seq, "
                      "...}");
            return false;
        }
    }
    err = api_query(c, "all", q);
    if (err == JV_EINVAL)
        return false;
    if (err == JV_OK) {
        if (strcmp(api_cstr(q), "1") != 0 && strcmp(api_cstr(q), "true")) {
            api_error(c, 400, "invalid_field", "all must be 1");
            return false;
        }
        given++;
    }
    if (given != 1) {
        api_error(c, 400, "invalid_field",
                  "give exactly one of for=NODE_ID, since=VECTOR or all=1");
        return false;
    }
    return true;
}

void api_bundle_create(api_ctx *c)
{
    jv_buf q;
    jv_id to;
    jv_buf_init(&q);
    bundle_job *j = job_new(c);
    if (!j) {
        jv_buf_fini(&q);
        api_fail(c, JV_ENOMEM, "bundle");
        return;
    }
    int has_to = id_param(c, "to", &q, &to);
    if (has_to < 0 || !create_against(c, j, &q))
        goto out;
    if (has_to == 1 && c->who.role < JV_ROLE_ADMIN) {
        api_error(c, 403, "forbidden",
                  "a bundle sealed under the cluster key needs the admin "
                  "role; readers may make one sealed to a node (to=NODE_ID)");
        goto out;
    }
    if (has_to == 0) {
        uint8_t x[crypto_box_PUBLICKEYBYTES];
        if (crypto_sign_ed25519_pk_to_curve25519(x, to.b) != 0) {
            api_error(c, 400, "invalid_field",
                      "to is not a valid node public key");
            goto out;
        }
        j->h.seal = JV_BUNDLE_SEAL_RECIPIENT;
        j->h.recipient = to;
    } else {
        if (c->node->ring.n == 0) {
            api_error(c, 409, "no_cluster_key",
                      "this node has no cluster key to seal with; seal the "
                      "bundle to its reader with to=NODE_ID");
            goto out;
        }
        j->h.seal = JV_BUNDLE_SEAL_CLUSTER;
    }
    j->h.created_ms = jv_now_ms();
    snprintf(j->snap_fault, sizeof(j->snap_fault), "%s",
             jv_repl_snap_fault_mode(c->node->repl));
    j->ring = c->node->ring; /* copied: a reload may replace it meanwhile */
    j->kp = c->node->kp;
    jv_err err = jv_node_offloop(c->node, create_run, create_done, j);
    if (err)
        api_fail(c, err, "bundle");
out:
    jv_buf_fini(&q);
}

/* -- checking a bundle ----------------------------------------------------- */

static jv_err refuse(bundle_job *j, int status, const char *code,
                     const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static jv_err refuse(bundle_job *j, int status, const char *code,
                     const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->why, sizeof(j->why), fmt, ap);
    va_end(ap);
    j->status = status;
    j->code = code;
    return JV_OK; /* the refusal is answered by the done callback */
}

static jv_err check_head(bundle_job *j)
{
    jv_err err = jv_bundle_parse_head(j->data, j->len, &j->h);
    if (err == JV_ETRUNC)
        return refuse(j, 422, "bundle_truncated",
                      "the bundle is truncated (%zu bytes): copy it again",
                      j->len);
    if (err == JV_EVERSION)
        return refuse(j, 422, "bundle_version",
                      "the bundle was made by a newer version of Jarvis");
    if (err)
        return refuse(j, 422, "bundle_malformed",
                      "not a Jarvis bundle, or damaged: %s", jv_strerror(err));
    return JV_OK;
}

/* Every batch: its origin's signature over the exact bytes, and a strict
 * decode, as the writer will check again. */
static jv_err check_batches(bundle_job *j)
{
    for (size_t i = 0; i < j->content.n; i++) {
        const jv_bundle_batch *b = &j->content.batches[i];
        uint8_t hash[JV_HASH_LEN];
        jv_batch dec;
        jv_batch_hash(b->body, b->len, hash);
        jv_err err = jv_batch_verify_sig(hash, b->sig, &b->h.origin);
        if (!err && (err = jv_batch_decode(b->body, b->len, &dec)) == JV_OK)
            jv_batch_fini(&dec);
        if (err) {
            char hex[JV_ID_HEX];
            jv_id_hex(&b->h.origin, hex);
            return refuse(j, 422, "bad_batch",
                          "batch %" PRIu64 "-%" PRIu64 " of %s: %s",
                          b->h.first_seq, b->h.last_seq, hex, jv_strerror(err));
        }
    }
    return JV_OK;
}

/* The snapshot carried: its vector, for the reports. Inspect also says
 * whether it would pass the install's checks; applying, the install
 * itself decides (jv_store_snap_install), before any batch. */
static jv_err check_snap(jv_store *st, bundle_job *j)
{
    const jv_bundle_snap *s = &j->content.snap;
    uint8_t digest[JV_HASH_LEN];
    char maker[JV_ID_HEX], msg[200];
    jv_err err;
    if (!j->content.has_snap)
        return JV_OK;
    j->snap_decodes =
        jv_snap_check(s->enc, s->len, &j->snap_vv, msg, sizeof(msg)) == JV_OK;
    if (!j->snap_decodes)
        jv_vv_clear(&j->snap_vv);
    if (!j->inspect)
        return JV_OK;
    jv_snap_digest(s->enc, s->len, digest);
    j->snap_sig_ok = sodium_memcmp(digest, s->digest, JV_HASH_LEN) == 0 &&
                     jv_snap_verify_sig(digest, s->sig, &s->maker) == JV_OK;
    if ((err = jv_store_is_trusted(st, &s->maker, &j->snap_trusted)))
        return err;
    jv_id_hex(&s->maker, maker);
    if (j->status) /* refused already: the first reason stands */
        return JV_OK;
    if (!j->snap_sig_ok)
        return refuse(j, 422, "bad_snapshot",
                      "the bundle's snapshot does not match its digest and "
                      "signature: tampered with or cut short");
    if (!j->snap_trusted)
        return refuse(j, 422, "untrusted_snapshot_maker",
                      "the bundle's snapshot was made by %s, which this "
                      "node does not trust",
                      maker);
    if (!j->snap_decodes)
        return refuse(j, 422, "bad_snapshot", "the bundle's %s", msg);
    return JV_OK;
}

/* Everything before the writer. Inspect goes on past a bad signature, an
 * untrusted maker or a seal it cannot open, to report them. */
static jv_err check_run(jv_store *st, void *arg)
{
    bundle_job *j = arg;
    char maker[JV_ID_HEX];
    jv_err err;
    if ((err = check_head(j)) || j->status)
        goto out;
    jv_id_hex(&j->h.maker, maker);
    j->sig_ok = jv_bundle_verify(j->data, j->len, &j->h) == JV_OK;
    if ((err = jv_store_is_trusted(st, &j->h.maker, &j->trusted)))
        goto out;
    j->can_open = jv_bundle_can_open(&j->h, &j->ring, &j->kp.pk) == JV_OK;
    if ((err = jv_store_vv(st, &j->have)))
        goto out;
    if (!j->sig_ok) {
        refuse(j, 422, "bad_signature",
               "the bundle does not carry the signature of its maker %s: "
               "it was damaged or tampered with",
               maker);
        goto out;
    }
    if (!j->trusted) {
        refuse(j, 422, "untrusted_maker",
               "the bundle was made by %s, which this node does not trust "
               "(jarvisctl trust add %s, if it should)",
               maker, maker);
        if (!j->inspect)
            goto out;
    }
    if (!j->can_open) {
        refuse(j, 422, "cannot_open",
               j->h.seal == JV_BUNDLE_SEAL_CLUSTER
                   ? "the bundle is sealed under a cluster key this node does "
                     "not hold"
                   : "the bundle is sealed to another node");
        goto out;
    }
    err = jv_bundle_open(j->data, j->len, &j->h, &j->ring, &j->kp, j->max_plain,
                         &j->plain);
    if (err == JV_ETOOBIG) {
        refuse(j, 413, "bundle_too_big",
               "the bundle inflates past %zu bytes (4 x max-bundle)",
               j->max_plain);
        err = JV_OK;
        goto out;
    }
    if (err == JV_ECRYPTO || err == JV_EDECODE || err == JV_ETRAILING) {
        refuse(j, 422, "bad_seal", "the bundle does not open: %s",
               jv_strerror(err));
        err = JV_OK;
        goto out;
    }
    if (err)
        goto out;
    if ((err = jv_bundle_decode(j->plain.data, j->plain.len, &j->content))) {
        if (err == JV_EVERSION)
            refuse(j, 422, "bundle_version",
                   "the bundle's content was made by a newer version of "
                   "Jarvis");
        else
            refuse(j, 422, "bundle_malformed", "the bundle's content: %s",
                   jv_strerror(err));
        err = JV_OK;
        goto out;
    }
    j->decoded = true;
    if ((err = check_batches(j)))
        goto out;
    err = check_snap(st, j);
out:
    jv_keypair_wipe(&j->kp);
    return err;
}

/* Starts the checks on the thread pool; the body stays the request's. */
static void check_start(api_ctx *c, bool inspect, jv_offloop_done done)
{
    bundle_job *j = job_new(c);
    if (!j) {
        api_fail(c, JV_ENOMEM, "bundle");
        return;
    }
    j->inspect = inspect;
    j->data = jv_http_body(c->req, &j->len);
    j->max_plain = (size_t)c->node->cfg->max_bundle * 4;
    j->ring = c->node->ring;
    j->kp = c->node->kp;
    j->origin = c->node->origin;
    jv_err err = jv_node_offloop(c->node, check_run, done, j);
    if (err)
        api_fail(c, err, "bundle");
}

/* -- inspect --------------------------------------------------------------- */

static json_t *head_json(const bundle_job *j)
{
    json_t *o = json_pack(
        "{s:o,s:o,s:o,s:s,s:I}", "maker", api_id(&j->h.maker), "created_at",
        api_time(j->h.created_ms), "target",
        (j->h.flags & JV_BUNDLE_F_TARGET) ? api_id(&j->h.target) : json_null(),
        "sealed",
        j->h.seal == JV_BUNDLE_SEAL_CLUSTER ? "cluster_key" : "recipient",
        "bytes", (json_int_t)j->len);
    if (j->h.seal == JV_BUNDLE_SEAL_CLUSTER) {
        char kid[9];
        sodium_bin2hex(kid, sizeof(kid), j->h.key_id, JV_KEY_ID_LEN);
        json_object_set_new(o, "key_id", json_string(kid));
    } else {
        json_object_set_new(o, "recipient", api_id(&j->h.recipient));
    }
    return o;
}

/* Whether the snapshot covers a batch this node did not have. */
static bool snap_new(const bundle_job *j)
{
    for (size_t i = 0; i < j->snap_vv.n; i++)
        if (j->snap_vv.v[i].seq > jv_vv_get(&j->have, &j->snap_vv.v[i].id))
            return true;
    return false;
}

/* The snapshot carried (null: none). */
static json_t *snap_json(const bundle_job *j)
{
    const jv_bundle_snap *s = &j->content.snap;
    if (!j->content.has_snap)
        return json_null();
    json_t *o = json_pack(
        "{s:o,s:o,s:I,s:o,s:b}", "maker", api_id(&s->maker), "made_at",
        api_time(s->made_ms), "bytes", (json_int_t)s->len, "origins",
        j->snap_decodes ? json_integer((json_int_t)j->snap_vv.n) : json_null(),
        "new_here", snap_new(j));
    if (o && j->inspect) {
        json_object_set_new(o, "signature_valid", json_boolean(j->snap_sig_ok));
        json_object_set_new(o, "maker_trusted", json_boolean(j->snap_trusted));
    }
    return o;
}

/* Batches and operations per origin, and how many are new here. */
static json_t *origins_json(const bundle_job *j, size_t *nbatches)
{
    json_t *arr = json_array();
    size_t i = 0;
    *nbatches = j->content.n;
    while (i < j->content.n) {
        const jv_bundle_batch *b = &j->content.batches[i];
        uint64_t ops = 0, have = jv_vv_get(&j->have, &b->h.origin);
        size_t k = i, fresh = 0;
        for (; k < j->content.n &&
               jv_id_eq(&j->content.batches[k].h.origin, &b->h.origin);
             k++) {
            ops += j->content.batches[k].h.nops;
            fresh += j->content.batches[k].h.last_seq > have;
        }
        json_array_append_new(
            arr, json_pack("{s:o,s:I,s:I,s:I,s:I,s:I}", "origin",
                           api_id(&b->h.origin), "batches", (json_int_t)(k - i),
                           "operations", (json_int_t)ops, "first_seq",
                           (json_int_t)b->h.first_seq, "last_seq",
                           (json_int_t)j->content.batches[k - 1].h.last_seq,
                           "new_here", (json_int_t)fresh));
        i = k;
    }
    return arr;
}

static void inspect_done(jv_node *n, jv_err err, void *arg)
{
    bundle_job *j = arg;
    api_ctx *c = j->c;
    (void)n;
    if (err) {
        api_fail(c, err, "bundle");
        return;
    }
    if (j->status && j->h.version == 0) { /* the head did not parse */
        api_error(c, j->status, j->code, "%s", j->why);
        return;
    }
    json_t *o = head_json(j);
    size_t nb = 0;
    json_object_set_new(o, "signature_valid", json_boolean(j->sig_ok));
    json_object_set_new(o, "maker_trusted", json_boolean(j->trusted));
    json_object_set_new(o, "can_open", json_boolean(j->can_open));
    json_object_set_new(o, "would_apply", json_boolean(j->status == 0));
    json_object_set_new(o, "problem",
                        j->status ? json_string(j->why) : json_null());
    /* What it holds, whenever it opened (an untrusted maker's too). */
    if (j->status == 0 || j->decoded) {
        json_object_set_new(o, "snapshot", snap_json(j));
        json_object_set_new(o, "origins", origins_json(j, &nb));
        json_object_set_new(o, "batches", json_integer((json_int_t)nb));
        json_object_set_new(o, "against", vv_json(&j->content.against));
        json_object_set_new(o, "maker_vector", vv_json(&j->content.maker_vv));
    }
    api_reply(c, 200, o);
}

void api_bundle_inspect(api_ctx *c)
{
    check_start(c, true, inspect_done);
}

/* -- apply ----------------------------------------------------------------- */

typedef struct {
    const char *name;
    jv_err err;
} outcome;

/* The results a batch can have, named as jarvis_repl_batches_total's. */
static const outcome outcomes[] = {
    {"applied", JV_OK},
    {"already_present", JV_EDUP},
    {"held_gap", JV_EGAP},
    {"held_untrusted", JV_EUNTRUSTED},
    {"refused_broken_link", JV_ELINK},
    {"refused_equivocation", JV_EEQUIVOCATE},
    {"dropped_held_full", JV_ETOOBIG},
    {"refused_bad_signature", JV_ESIG},
    {"refused_malformed", JV_EDECODE},
    {"refused_clock_skew", JV_ESKEW},
};
#define NOUTCOMES (sizeof(outcomes) / sizeof(outcomes[0]))

static size_t outcome_of(jv_err e)
{
    for (size_t i = 0; i < NOUTCOMES; i++)
        if (outcomes[i].err == e)
            return i;
    return 8; /* anything else: malformed */
}

static json_t *counts_json(const size_t *cnt)
{
    json_t *o = json_object();
    for (size_t i = 0; i < NOUTCOMES; i++)
        json_object_set_new(o, outcomes[i].name,
                            json_integer((json_int_t)cnt[i]));
    return o;
}

static json_t *summary_json(bundle_job *j)
{
    size_t total[NOUTCOMES] = {0};
    json_t *origins = json_array();
    size_t i = 0;
    while (i < j->content.n) {
        size_t cnt[NOUTCOMES] = {0}, k = i;
        const jv_id *o = &j->content.batches[i].h.origin;
        for (; k < j->content.n && jv_id_eq(&j->content.batches[k].h.origin, o);
             k++) {
            size_t x = outcome_of(j->pre[k]);
            cnt[x]++;
            total[x]++;
        }
        json_t *oj = counts_json(cnt);
        json_object_set_new(oj, "origin", api_id(o));
        json_object_set_new(oj, "batches", json_integer((json_int_t)(k - i)));
        json_array_append_new(origins, oj);
        i = k;
    }
    json_t *s = counts_json(total);
    json_object_set_new(s, "maker", api_id(&j->h.maker));
    json_object_set_new(s, "batches", json_integer((json_int_t)j->content.n));
    json_object_set_new(s, "operations_applied",
                        json_integer((json_int_t)j->c->wr.stats.ops));
    json_object_set_new(s, "origins", origins);
    json_object_set_new(s, "snapshot", snap_json(j));
    return s;
}

static void apply_done(jv_write_req *w)
{
    api_ctx *c = w->arg;
    bundle_job *j = c->extra;
    jv_node *n = c->node;
    if (w->err) {
        api_fail_commit(c);
        return;
    }
    /* The writer's array is dense: its results go back to the batches'
     * slots, beside the ones refused on the loop. */
    uint64_t now = jv_now_ms();
    for (size_t i = 0, at = 0; i < j->content.n; i++) {
        if (j->pre[i])
            continue;
        j->pre[i] = j->rb[at++].result;
        if (j->pre[i] == JV_OK)
            jv_hlc_observe(&n->hlc, now, j->content.batches[i].h.hlc);
    }
    if (learnt_put(n, &j->h.maker, &j->content.maker_vv))
        jv_warn("bundle", "could not record the vector of the bundle's "
                          "maker in the data dir");
    /* The job's observer brought the vector up to date. */
    if ((w->stats.applied || j->snap_installed) && n->repl)
        jv_repl_spread(n->repl);
    json_t *s = summary_json(j);
    jv_info("bundle",
            "applied a bundle of %zu batches: %" PRIu64 " operations new",
            j->content.n, w->stats.ops);
    api_reply(c, 200, s);
}

/* The batches, in one request to the writer (after the snapshot). */
static void apply_batches(jv_node *n, bundle_job *j)
{
    api_ctx *c = j->c;
    size_t nb = j->content.n;
    j->rb = jv_calloc(nb ? nb : 1, sizeof(*j->rb));
    j->pre = jv_calloc(nb ? nb : 1, sizeof(*j->pre));
    if (!j->rb || !j->pre) {
        api_fail(c, JV_ENOMEM, "bundle");
        return;
    }
    /* Batches stamped too far ahead of this node's clock are refused as a
     * peer's would be; the others go to the writer in one request. */
    uint64_t now = jv_now_ms();
    size_t at = 0;
    for (size_t i = 0; i < nb; i++) {
        const jv_bundle_batch *b = &j->content.batches[i];
        if (jv_hlc_check(&n->hlc, now, b->h.hlc)) {
            j->pre[i] = JV_ESKEW;
            continue;
        }
        j->rb[at].body = b->body;
        j->rb[at].len = b->len;
        memcpy(j->rb[at].sig, b->sig, JV_SIG_LEN);
        at++;
    }
    if (at == 0 && !j->snap_installed) { /* nothing for the writer */
        c->wr.arg = c;
        apply_done(&c->wr);
        return;
    }
    c->wr.remote = j->rb;
    c->wr.nremote = at;
    c->wr.apply_flags = JV_APPLY_REQUIRE_TRUST;
    /* After a snapshot, a job all the same, if an empty one: the writer
     * reads the vector and the trust list the snapshot changed, for the
     * loop, before the answer and the pushes (jv_repl_spread). */
    c->wr.reread_trust = j->snap_installed;
    api_submit(c, apply_done);
}

/* The snapshot, through the store's install as replication installs a
 * peer's: digest, signature, trusted maker, strict decode, then the join,
 * in one transaction; any refusal leaves the node as it was. */
static jv_err snap_run(jv_store *st, void *arg)
{
    bundle_job *j = arg;
    const jv_bundle_snap *s = &j->content.snap;
    jv_snap_info info;
    jv_err err;
    memset(&info, 0, sizeof(info));
    info.maker = s->maker;
    info.made_ms = s->made_ms;
    memcpy(info.digest, s->digest, JV_HASH_LEN);
    memcpy(info.sig, s->sig, JV_SIG_LEN);
    info.bytes = s->len;
    /* The base changed under it (a compaction, or a peer's snapshot
     * installed meanwhile): again, on the new one. */
    for (int tries = 0;; tries++) {
        err = jv_store_snap_install(st, &j->origin, s->enc, s->len, &info,
                                    j->snap_msg, sizeof(j->snap_msg));
        if (err != JV_EBUSY || tries == 4)
            break;
    }
    jv_keypair_wipe(&j->origin);
    return err;
}

/* The error code of an install's refusal; NULL: not a refusal. */
static const char *snap_refusal(jv_err err)
{
    switch (err) {
    case JV_EDECODE:
    case JV_ETRUNC:
    case JV_ETOOBIG:
    case JV_EINVAL:
    case JV_ESIG:
        return "bad_snapshot";
    case JV_EUNTRUSTED:
        return "untrusted_snapshot_maker";
    case JV_EEQUIVOCATE:
        return "snapshot_equivocation";
    case JV_EBUSY:
        return "busy";
    default:
        return NULL;
    }
}

static void snap_done(jv_node *n, jv_err err, void *arg)
{
    bundle_job *j = arg;
    api_ctx *c = j->c;
    char maker[JV_ID_HEX];
    const char *code = snap_refusal(err), *msg = j->snap_msg;
    jv_id_hex(&j->content.snap.maker, maker);
    if (err == JV_OK) {
        j->snap_installed = true;
        jv_info("bundle",
                "installed the bundle's snapshot (made by %.16s, %zu bytes, "
                "verified): joined into this node's state",
                maker, j->content.snap.len);
        apply_batches(n, j);
        return;
    }
    if (!code) {
        api_fail(c, err, "bundle");
        return;
    }
    if (strncmp(msg, "snapshot: ", 10) == 0)
        msg += 10;
    jv_warn("bundle", "refused a bundle: its snapshot: %s (nothing applied)",
            msg[0] ? msg : jv_strerror(err));
    api_error(c, err == JV_EBUSY ? 503 : 422, code,
              "the bundle's snapshot (made by %s) is refused: %s; nothing "
              "applied",
              maker, msg[0] ? msg : jv_strerror(err));
}

static void apply_checked(jv_node *n, jv_err err, void *arg)
{
    bundle_job *j = arg;
    api_ctx *c = j->c;
    if (err) {
        api_fail(c, err, "bundle");
        return;
    }
    if (j->status) {
        jv_warn("bundle", "refused a bundle: %s", j->why);
        api_error(c, j->status, j->code, "%s", j->why);
        return;
    }
    if (!j->content.has_snap) {
        apply_batches(n, j);
        return;
    }
    if ((err = jv_node_offloop_change(n, snap_run, snap_done, j)))
        api_fail(c, err, "bundle");
}

void api_bundle_apply(api_ctx *c)
{
    check_start(c, false, apply_checked);
}
