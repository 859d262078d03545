/*
 * security_test.c - hostile peer messages against a real node.
 *
 * The test talks to the node's peer listener with an nng REQ socket of
 * its own and builds every message itself: frames sealed with the cluster
 * key (keyring.h), SYNC messages (wire.h) signed by a node key of its own
 * that the node trusts (so that the messages are read at all; what is
 * refused before that is in identity_test.c), and batches signed with key
 * pairs it makes (batch.h), one of which it puts on the node's trust list
 * so that it can also send valid batches. Each hostile message must be
 * answered or dropped as docs/protocol.md says, counted in /metrics under
 * its reason, and leave the replicated state (`jarvisctl export`) as it
 * was; after each, the node still serves: /health answers and a write
 * goes through.
 *
 *   message                          answer   counted as
 *   valid batch                      reply    batches{applied}
 *   the same batch again             reply    batches{duplicate}
 *   forged signature                 reply    batches{refused_bad_signature}
 *   tampered body                    reply    batches{refused_bad_signature}
 *   wrong prev hash                  reply    batches{refused_broken_link}
 *   stamp an hour ahead              reply    batches{held_clock_skew}, held
 *                                             (not applied) until in bounds
 *   untrusted origin                 reply    batches{held_untrusted}, held
 *                                             until `jarvisctl trust add`
 *   another cluster key              none     refused{unknown_key}
 *   our key id, another key          none     refused{bad_tag}
 *   plaintext to a keyed node        none     refused{key_mismatch}
 *   sealed frame cut short           none     refused{bad_tag}
 *   shorter than a frame header      none     refused{malformed}
 *   sealed, message cut short        none     refused{malformed}
 *   the same two, 96 KiB (opened     none     refused{malformed},
 *   off the loop)                             refused{bad_tag}
 *   zstd body, no message (any       none     refused{malformed}
 *   zstd body is inflated off the
 *   loop)
 *   zstd body over --max-message     none     refused{too_big}
 *   frame just over --max-message    none     refused{too_big}
 *   frame far over it                none     nng drops the connection
 */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zstd.h>

#include <cmocka.h>

#include "batch.h"
#include "hlc.h"
#include "keyring.h"
#include "nettest.h"
#include "sp_raw.h"
#include "wire.h"

#define MAX_MESSAGE (8u << 20) /* jarvisd's default --max-message */

static jv_cluster C;
static jv_rng R;
static jv_keyring ring;     /* the cluster's */
static nng_socket sock;     /* ours, to the node's peer listener */
static jv_keypair sender;   /* the id our messages claim */
static jv_keypair origin;   /* trusted by the node: valid batches */
static jv_keypair stranger; /* never trusted until the end */
static uint8_t last_hash[JV_HASH_LEN];
static uint64_t next_seq = 1;
static jv_id node_id;
static uint64_t last_stamp;

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A fresh message stamp: wall clock microseconds, strictly increasing. */
static uint64_t stamp_now(void)
{
    uint64_t us = wall_ms() * 1000;
    last_stamp = us > last_stamp ? us : last_stamp + 1;
    return last_stamp;
}

/* A signed-by-`signer` batch of one counter op, claiming `from`. */
static void make_batch(jv_buf *body, uint8_t sig[JV_SIG_LEN],
                       const jv_keypair *from, const jv_keypair *signer,
                       uint64_t first_seq, const uint8_t prev[JV_HASH_LEN],
                       uint64_t hlc_ms, const char *name, uint64_t p)
{
    jv_op op;
    jv_batch b;
    uint8_t hash[JV_HASH_LEN];
    memset(&op, 0, sizeof op);
    memset(&b, 0, sizeof b);
    op.kind = JV_OP_COUNTER;
    op.counter.name = jv_str_c(name);
    op.counter.p = p;
    b.origin = from->pk;
    b.first_seq = first_seq;
    memcpy(b.prev, prev, JV_HASH_LEN);
    b.hlc = jv_hlc_make(hlc_ms, 0);
    b.ops = &op;
    b.nops = 1;
    jv_buf_init(body);
    assert_int_equal(jv_batch_encode(&b, body), JV_OK);
    jv_batch_hash(body->data, body->len, hash);
    jv_batch_sign(hash, signer, sig);
}

/* The raw message (format byte + msgpack + signature) of a SYNC carrying
 * batches, from `sender` to the node. */
static void make_msg(jv_buf *raw, const jv_buf *bodies, uint8_t (*sigs)[64],
                     size_t n)
{
    jv_msg m;
    jv_wire_batch wb[4];
    assert_true(n <= 4);
    jv_msg_init(&m);
    m.type = JV_MSG_SYNC;
    m.from = sender.pk;
    m.to = node_id;
    m.stamp = stamp_now();
    m.from_addr = jv_str_c("");
    m.budget = 0; /* a reply without batches */
    for (size_t i = 0; i < n; i++) {
        wb[i].body = bodies[i].data;
        wb[i].len = bodies[i].len;
        wb[i].sig = sigs[i];
    }
    m.batches = wb;
    m.nbatches = n;
    jv_buf_init(raw);
    assert_int_equal(jv_msg_encode(&m, &sender, SIZE_MAX, raw, NULL), JV_OK);
    jv_msg_fini(&m);
}

static void seal(const jv_keyring *k, const jv_buf *raw, jv_buf *frame)
{
    jv_buf_init(frame);
    assert_int_equal(jv_seal(k, raw->data, raw->len, frame), JV_OK);
}

/* A REQ socket dialled to the node that never resends by itself. */
static nng_socket dial_node(void)
{
    nng_socket s;
    assert_int_equal(nng_req0_open(&s), 0);
    assert_int_equal(
        nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE), 0);
    /* How long a dropped message is waited for; answers come in
     * milliseconds, even under the sanitizers. */
    assert_int_equal(nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 2000), 0);
    assert_int_equal(nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 5000), 0);
    assert_int_equal(nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, 1u << 24), 0);
    assert_int_equal(nng_dial(s, C.node[0].listen, NULL, 0), 0);
    return s;
}

/* The last notice the node answered with (keyring.h). */
static jv_notice notice;

/* Sends a frame: 0 if the node dropped it, 1 if it answered (then
 * the answer is checked: a sealed SYNC_REPLY from the node), 2 if it
 * answered with a notice (kept in `notice`). */
static int send_frame(const uint8_t *p, size_t n)
{
    char *rep = NULL;
    size_t replen = 0;
    int rv = nng_send(sock, (void *)(uintptr_t)p, n, 0);
    if (rv != 0)
        NT_FAIL(&C, "nng_send: %s", nng_strerror(rv));
    rv = nng_recv(sock, &rep, &replen, NNG_FLAG_ALLOC);
    if (rv == NNG_ETIMEDOUT || rv == NNG_ECLOSED || rv == NNG_ECONNRESET)
        return 0;
    if (rv != 0)
        NT_FAIL(&C, "nng_recv: %s", nng_strerror(rv));
    if (jv_notice_parse((uint8_t *)rep, replen, &notice) != JV_ENOTFOUND) {
        assert_int_equal(jv_notice_parse((uint8_t *)rep, replen, &notice),
                         JV_OK);
        nng_free(rep, replen);
        return 2;
    }
    jv_buf plain, scratch;
    jv_msg m;
    jv_buf_init(&plain);
    jv_buf_init(&scratch);
    jv_msg_init(&m);
    assert_int_equal(jv_open(&ring, (uint8_t *)rep, replen, &plain), JV_OK);
    assert_int_equal(
        jv_msg_decode(plain.data, plain.len, MAX_MESSAGE, &scratch, &m), JV_OK);
    assert_int_equal(m.type, JV_MSG_SYNC_REPLY);
    /* A proven answer, not a refusal. */
    assert_int_equal(jv_msg_verify(&m), JV_OK);
    assert_int_equal(m.refused, JV_REFUSED_NONE);
    char hex[JV_ID_HEX];
    jv_id_hex(&m.from, hex);
    assert_string_equal(hex, C.node[0].id);
    jv_msg_fini(&m);
    jv_buf_fini(&plain);
    jv_buf_fini(&scratch);
    nng_free(rep, replen);
    return 1;
}

static bool send_batches(const jv_buf *bodies, uint8_t (*sigs)[64], size_t n)
{
    jv_buf raw, frame;
    make_msg(&raw, bodies, sigs, n);
    seal(&ring, &raw, &frame);
    bool answered = send_frame(frame.data, frame.len) == 1;
    jv_buf_fini(&raw);
    jv_buf_fini(&frame);
    return answered;
}

static char *export_now(size_t *len)
{
    char *e;
    NT_OK(&C, jv_cluster_export(&C, 0, &e, len));
    return e;
}

/* Waits until `series` has grown by exactly `by` from `before` (and does
 * not go on growing for a moment). */
static void expect_count(const char *series, double before, double by)
{
    double t0 = jv_cluster_now_ms(), v = 0;
    while ((v = nt_metric(&C, 0, series)) < before + by &&
           jv_cluster_now_ms() - t0 < nt_ms(10000))
        jv_cluster_sleep_ms(20);
    jv_cluster_sleep_ms(nt_ms(150));
    v = nt_metric(&C, 0, series);
    if (v != before + by)
        NT_FAIL(&C, "%s went from %.0f to %.0f, not by %.0f", series, before, v,
                by);
}

/* Still serving: /health answers and a write goes through. */
static void still_serving(void)
{
    json_t *h = nt_req(&C, 0, 200, "GET", NULL, "/health");
    json_decref(h);
    json_decref(
        nt_req(&C, 0, 200, "POST", "{}", "/v1/counters/alive/increment"));
}

/* One hostile message: sent, answered or not as expected, counted, state
 * unchanged, node serving. */
typedef enum {
    DROPPED,
    ANSWERED,
    NOTICED /* answered with an unsealed notice (keyring.h) */
} fate;

static void hostile(const char *what, const uint8_t *frame, size_t len, fate f,
                    const char *series)
{
    size_t l0, l1;
    char *e0 = export_now(&l0);
    double before = nt_metric(&C, 0, series);
    static const char *const fname[] = {"dropped", "answered", "noticed"};
    int got = send_frame(frame, len);
    if (got != (int)f)
        NT_FAIL(&C, "%s: %s, should be %s", what, fname[got], fname[f]);
    expect_count(series, before, 1);
    char *e1 = export_now(&l1);
    if (l0 != l1 || memcmp(e0, e1, l0) != 0)
        NT_FAIL(&C, "%s changed the replicated state", what);
    free(e0);
    free(e1);
    printf("%-34s %-8s counted in %s\n", what, fname[got], series);
    still_serving();
}

/* hostile() with the frame of a zstd payload of body[0..n), sealed. */
static void hostile_zstd(const char *what, const jv_keyring *k,
                         const uint8_t *body, size_t n, const char *series)
{
    size_t bound = ZSTD_compressBound(n);
    uint8_t *z = malloc(bound + 1);
    assert_non_null(z);
    z[0] = 1; /* format: zstd */
    size_t zn = ZSTD_compress(z + 1, bound, body, n, 3);
    assert_false(ZSTD_isError(zn));
    jv_buf raw, frame;
    jv_buf_init(&raw);
    assert_int_equal(jv_buf_append(&raw, z, zn + 1), JV_OK);
    seal(k, &raw, &frame);
    hostile(what, frame.data, frame.len, DROPPED, series);
    jv_buf_fini(&frame);
    jv_buf_fini(&raw);
    free(z);
}

static void hostile_batch(const char *what, const jv_buf *body,
                          uint8_t sig[JV_SIG_LEN], const char *series)
{
    jv_buf raw, frame;
    uint8_t sigs[1][64];
    memcpy(sigs[0], sig, JV_SIG_LEN);
    make_msg(&raw, body, sigs, 1);
    seal(&ring, &raw, &frame);
    hostile(what, frame.data, frame.len, ANSWERED, series);
    jv_buf_fini(&raw);
    jv_buf_fini(&frame);
}

/* The next batch of `origin`, chained, applied. */
static void valid_batch(const char *name, uint64_t p)
{
    jv_buf body;
    uint8_t sigs[1][64];
    double before =
        nt_metric(&C, 0, "jarvis_repl_batches_total{result=\"applied\"}");
    make_batch(&body, sigs[0], &origin, &origin, next_seq, last_hash, wall_ms(),
               name, p);
    NT_CHECK(&C, send_batches(&body, sigs, 1));
    expect_count("jarvis_repl_batches_total{result=\"applied\"}", before, 1);
    jv_batch_hash(body.data, body.len, last_hash);
    next_seq++;
    jv_buf_fini(&body);
}

static void setup_node(void)
{
    jv_cluster_opts o = {.n = 1};
    char msg[256], body[200], hex[JV_ID_HEX];
    o.seed = jv_rng_next(&R);
    NT_OK(&C, jv_cluster_init(&C, &o));
    NT_OK(&C, jv_cluster_start_all(&C));
    assert_int_equal(jv_keyring_load(C.key_file, &ring, msg, sizeof msg),
                     JV_OK);
    assert_int_equal(jv_keypair_generate(&sender), JV_OK);
    assert_int_equal(jv_keypair_generate(&origin), JV_OK);
    assert_int_equal(jv_keypair_generate(&stranger), JV_OK);
    jv_id_hex(&origin.pk, hex);
    snprintf(body, sizeof body, "{\"node_id\":\"%s\",\"name\":\"test\"}", hex);
    json_decref(nt_req(&C, 0, 200, "POST", body, "/v1/trust"));
    /* The node key our messages are signed with, trusted as a node is. */
    jv_id_hex(&sender.pk, hex);
    snprintf(body, sizeof body, "{\"node_id\":\"%s\",\"name\":\"peer\"}", hex);
    json_decref(nt_req(&C, 0, 200, "POST", body, "/v1/trust"));
    assert_int_equal(jv_id_from_hex(C.node[0].id, 64, &node_id), JV_OK);
    memset(last_hash, 0, sizeof last_hash);
    next_seq = 1;

    sock = dial_node();
}

static void test_hostile_batches(void **state)
{
    (void)state;
    jv_buf body;
    uint8_t sig[JV_SIG_LEN];
    setup_node();

    /* A valid batch applies; the same bytes again are a duplicate. */
    make_batch(&body, sig, &origin, &origin, 1, last_hash, wall_ms(),
               "sec/valid", 5);
    uint8_t sigs[1][64];
    memcpy(sigs[0], sig, JV_SIG_LEN);
    double applied0 =
        nt_metric(&C, 0, "jarvis_repl_batches_total{result=\"applied\"}");
    NT_CHECK(&C, send_batches(&body, sigs, 1));
    expect_count("jarvis_repl_batches_total{result=\"applied\"}", applied0, 1);
    jv_batch_hash(body.data, body.len, last_hash);
    next_seq = 2;
    json_t *cnt = nt_req(&C, 0, 200, "GET", NULL, "/v1/counters/sec%%2Fvalid");
    NT_CHECK(&C, json_integer_value(json_object_get(cnt, "total")) == 5);
    json_decref(cnt);
    hostile_batch("replayed batch", &body, sig,
                  "jarvis_repl_batches_total{result=\"duplicate\"}");
    jv_buf_fini(&body);

    /* Claims the trusted origin, signed by another key. */
    jv_keypair other;
    assert_int_equal(jv_keypair_generate(&other), JV_OK);
    make_batch(&body, sig, &origin, &other, next_seq, last_hash, wall_ms(),
               "sec/forged", 1000);
    hostile_batch("forged signature", &body, sig,
                  "jarvis_repl_batches_total{result=\"refused_bad_"
                  "signature\"}");
    jv_buf_fini(&body);
    jv_keypair_wipe(&other);

    /* Validly signed, then one byte of the counter's name changed. */
    make_batch(&body, sig, &origin, &origin, next_seq, last_hash, wall_ms(),
               "sec/tampered", 7);
    uint8_t *at = NULL;
    for (size_t k = 0; k + 8 <= body.len && !at; k++)
        if (memcmp(body.data + k, "tampered", 8) == 0)
            at = body.data + k;
    NT_CHECK(&C, at != NULL);
    at[0] = 'T';
    hostile_batch("tampered batch", &body, sig,
                  "jarvis_repl_batches_total{result=\"refused_bad_"
                  "signature\"}");
    jv_buf_fini(&body);

    /* Signed, but not chained onto the origin's last batch. */
    uint8_t wrong[JV_HASH_LEN];
    memcpy(wrong, last_hash, JV_HASH_LEN);
    wrong[3] ^= 0x40;
    make_batch(&body, sig, &origin, &origin, next_seq, wrong, wall_ms(),
               "sec/unchained", 9);
    hostile_batch("batch off the origin's chain", &body, sig,
                  "jarvis_repl_batches_total{result=\"refused_broken_"
                  "link\"}");
    jv_buf_fini(&body);

    /* Stamped an hour ahead (--max-clock-skew is a minute): held aside,
     * not applied (docs/protocol.md, Clocks). */
    make_batch(&body, sig, &origin, &origin, next_seq, last_hash,
               wall_ms() + 3600 * 1000, "sec/future", 11);
    hostile_batch("stamp an hour ahead", &body, sig,
                  "jarvis_repl_batches_total{result=\"held_clock_"
                  "skew\"}");
    NT_CHECK(&C, nt_metric(&C, 0,
                           "jarvis_held_batches_by_reason{reason="
                           "\"clock_skew\"}") == 1);
    jv_buf_fini(&body);

    /* The origin's chain still goes on after all that. */
    valid_batch("sec/valid", 8);
    cnt = nt_req(&C, 0, 200, "GET", NULL, "/v1/counters/sec%%2Fvalid");
    NT_CHECK(&C, json_integer_value(json_object_get(cnt, "total")) == 8);
    json_decref(cnt);

    /* An origin nobody trusts: held aside, not applied... */
    make_batch(&body, sig, &stranger, &stranger, 1, (uint8_t[32]){0}, wall_ms(),
               "sec/stranger", 3);
    hostile_batch("batch from an untrusted origin", &body, sig,
                  "jarvis_repl_batches_total{result=\"held_untrusted\"}");
    jv_buf_fini(&body);
    json_t *st = nt_req(&C, 0, 200, "GET", NULL, "/v1/status");
    NT_CHECK(&C, json_integer_value(json_object_get(st, "held_batches")) == 1);
    json_decref(st);
    json_decref(
        nt_req(&C, 0, 404, "GET", NULL, "/v1/counters/sec%%2Fstranger"));
    /* ... until an operator trusts it: then applied at once. */
    char hex[JV_ID_HEX];
    jv_id_hex(&stranger.pk, hex);
    jv_proc_result r;
    NT_OK(&C, jv_cluster_ctl(&C, 0, &r, "trust", "add", hex, (char *)NULL));
    NT_CHECK(&C, r.status == 0);
    jv_proc_result_fini(&r);
    cnt = nt_req(&C, 0, 200, "GET", NULL, "/v1/counters/sec%%2Fstranger");
    NT_CHECK(&C, json_integer_value(json_object_get(cnt, "total")) == 3);
    json_decref(cnt);
    st = nt_req(&C, 0, 200, "GET", NULL, "/v1/status");
    NT_CHECK(&C, json_integer_value(json_object_get(st, "held_batches")) == 0);
    json_decref(st);
    still_serving();
}

static void test_hostile_frames(void **state)
{
    (void)state;
    jv_buf body, raw, frame;
    uint8_t sigs[1][64];
    char msg[128];
    setup_node();
    /* A valid message to wrap in broken frames: were any of them
     * accepted, its batch would apply and the export would change. */
    make_batch(&body, sigs[0], &origin, &origin, 1, last_hash, wall_ms(),
               "sec/frames", 1);
    make_msg(&raw, &body, sigs, 1);

    /* Sealed under a key the node does not hold. */
    jv_keyring wrong;
    char hexkey[2 * JV_KEY_LEN + 1];
    assert_int_equal(jv_keyring_generate_hex(hexkey), JV_OK);
    assert_int_equal(
        jv_keyring_parse(hexkey, strlen(hexkey), &wrong, msg, sizeof msg),
        JV_OK);
    seal(&wrong, &raw, &frame);
    hostile("message under a wrong cluster key", frame.data, frame.len, NOTICED,
            "jarvis_repl_refused_messages_total{reason=\"unknown_key\"}");
    jv_buf_fini(&frame);
    /* Told which keys it accepts: their fingerprints, nothing more. */
    char fp[9];
    jv_keyring_id_hex(&ring, 0, fp);
    assert_int_equal(notice.kind, JV_NOTICE_KEY);
    assert_int_equal(notice.nids, ring.n);
    assert_string_equal(notice.ids[0], fp);

    /* Another protocol version (the version field rewritten in a valid
     * message): told ours, counted, never decoded further. */
    jv_buf v3;
    jv_buf_init(&v3);
    jv_buf_append(&v3, raw.data, raw.len);
    assert_int_equal(v3.data[0], 0); /* format: plain */
    assert_int_equal(v3.data[2], JV_WIRE_VERSION);
    v3.data[2] = JV_WIRE_VERSION + 1;
    seal(&ring, &v3, &frame);
    hostile("message of another protocol version", frame.data, frame.len,
            NOTICED, "jarvis_repl_refused_messages_total{reason=\"version\"}");
    assert_int_equal(notice.kind, JV_NOTICE_VERSION);
    assert_int_equal(notice.version, JV_WIRE_VERSION);
    jv_buf_fini(&frame);
    jv_buf_fini(&v3);

    /* The node's key id on a frame sealed with another key. */
    memcpy(wrong.k[0].id, ring.k[0].id, JV_KEY_ID_LEN);
    seal(&wrong, &raw, &frame);
    hostile("forged key id", frame.data, frame.len, DROPPED,
            "jarvis_repl_refused_messages_total{reason=\"bad_tag\"}");
    jv_buf_fini(&frame);
    jv_keyring_wipe(&wrong);

    seal(NULL, &raw, &frame);
    hostile("plaintext to a keyed node", frame.data, frame.len, NOTICED,
            "jarvis_repl_refused_messages_total{reason=\"key_mismatch\"}");
    jv_buf_fini(&frame);

    /* Truncated three ways. */
    seal(&ring, &raw, &frame);
    hostile("sealed frame cut in half", frame.data, frame.len / 2, DROPPED,
            "jarvis_repl_refused_messages_total{reason=\"bad_tag\"}");
    hostile("shorter than a frame header", frame.data, 10, DROPPED,
            "jarvis_repl_refused_messages_total{reason=\"malformed\"}");
    jv_buf_fini(&frame);
    jv_buf cut;
    jv_buf_init(&cut);
    jv_buf_append(&cut, raw.data, raw.len - 40);
    seal(&ring, &cut, &frame);
    hostile("sealed message cut short", frame.data, frame.len, DROPPED,
            "jarvis_repl_refused_messages_total{reason=\"malformed\"}");
    jv_buf_fini(&frame);
    jv_buf_fini(&cut);

    /* The same, 96 KiB long: opened off the loop (64 KiB and more), and
     * refused as on it. */
    jv_buf junk;
    jv_buf_init(&junk);
    assert_int_equal(jv_buf_reserve(&junk, 96 * 1024), JV_OK);
    junk.data[0] = 0; /* format: plain */
    for (size_t i = 1; i < 96 * 1024; i++)
        junk.data[i] = (uint8_t)(i * 131 + 7);
    junk.len = 96 * 1024;
    seal(&ring, &junk, &frame);
    hostile("96 KiB sealed, no message", frame.data, frame.len, DROPPED,
            "jarvis_repl_refused_messages_total{reason=\"malformed\"}");
    hostile("96 KiB sealed frame cut short", frame.data, frame.len - 100,
            DROPPED, "jarvis_repl_refused_messages_total{reason=\"bad_tag\"}");
    jv_buf_fini(&frame);
    jv_buf_fini(&junk);

    /* A small zstd body that is no message: inflated off the loop like
     * any compressed one, and refused as on it. */
    uint8_t words[4096];
    for (size_t i = 0; i < sizeof(words); i++)
        words[i] = (uint8_t) "jarvis "[i % 7];
    hostile_zstd("small zstd body, no message", &ring, words, sizeof(words),
                 "jarvis_repl_refused_messages_total{reason=\"malformed\"}");

    /* Oversized: a zstd body that inflates past --max-message, a frame
     * just over it, and one far over it. */
    size_t plain = MAX_MESSAGE + 1024;
    uint8_t *zeros = calloc(1, plain);
    assert_non_null(zeros);
    hostile_zstd("zstd body over --max-message", &ring, zeros, plain,
                 "jarvis_repl_refused_messages_total{reason=\"too_big\"}");

    size_t over = MAX_MESSAGE + JV_SEAL_OVERHEAD + 1;
    uint8_t *big = realloc(zeros, 2 * (size_t)MAX_MESSAGE + 4096);
    assert_non_null(big);
    memset(big, 0x01, 2 * (size_t)MAX_MESSAGE + 4096);
    hostile("frame just over --max-message", big, over, DROPPED,
            "jarvis_repl_refused_messages_total{reason=\"too_big\"}");

    /* Far over: nng's own limit cuts the connection on the length
     * header, before the body is read into memory; nothing reaches the
     * node's code to count. */
    size_t l0, l1;
    char *e0 = export_now(&l0);
    /* By hand over TCP (sp_raw.h): closing an nng socket whose
     * connection was cut can hang in nng 1.5.2. */
    NT_CHECK(&C,
             jv_sp_send_cut(C.node[0].listen, 2 * (size_t)MAX_MESSAGE + 4096,
                            big, 65536, nt_ms(5000)) == 1);
    char *e1 = export_now(&l1);
    NT_CHECK(&C, l0 == l1 && memcmp(e0, e1, l0) == 0);
    free(e0);
    free(e1);
    free(big);
    printf("%-34s %-8s by nng (connection closed)\n", "frame far over it",
           "dropped");
    still_serving();

    /* And the valid message itself, sealed properly, is applied (made
     * again: the node takes only fresh messages). */
    jv_buf_fini(&raw);
    make_msg(&raw, &body, sigs, 1);
    seal(&ring, &raw, &frame);
    double applied0 =
        nt_metric(&C, 0, "jarvis_repl_batches_total{result=\"applied\"}");
    NT_CHECK(&C, send_frame(frame.data, frame.len) == 1);
    expect_count("jarvis_repl_batches_total{result=\"applied\"}", applied0, 1);
    jv_buf_fini(&frame);
    jv_buf_fini(&raw);
    jv_buf_fini(&body);
}

static bool log_has(const char *needle)
{
    char line[2048];
    bool found = false;
    FILE *f = fopen(C.node[0].t.log, "r");
    while (f != NULL && !found && fgets(line, sizeof line, f) != NULL)
        found = strstr(line, needle) != NULL;
    if (f != NULL)
        fclose(f);
    return found;
}

/* A peer that is only a REP socket of ours, added to the node's peers:
 * the node's requests come to it. */
static nng_socket fake_peer(char *addr, size_t addrlen)
{
    nng_socket rep;
    nng_listener l;
    int port = 0;
    char body[128];
    assert_int_equal(nng_rep0_open(&rep), 0);
    assert_int_equal(nng_socket_set_ms(rep, NNG_OPT_RECVTIMEO, 20000), 0);
    assert_int_equal(nng_listener_create(&l, rep, "tcp://127.0.0.1:0"), 0);
    assert_int_equal(nng_listener_start(l, 0), 0);
    assert_int_equal(nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port), 0);
    snprintf(addr, addrlen, "tcp://127.0.0.1:%d", port);
    snprintf(body, sizeof body, "{\"addr\":\"%s\"}", addr);
    json_decref(nt_req(&C, 0, 201, "POST", body, "/v1/peers"));
    return rep;
}

/* The node's side of a notice: a peer of another protocol version (a REP
 * socket of ours answering the node's request with a version notice) is
 * shown as "incompatible version 5" in its peer entry, logged, and named
 * in the health report; never taken for a plain timeout. */
static void test_version_notice_shown(void **state)
{
    (void)state;
    char addr[64], *req = NULL;
    size_t reqlen = 0;
    setup_node();
    nng_socket rep = fake_peer(addr, sizeof addr);

    /* Its first request (sealed under the cluster key): answered with a
     * notice naming version 5, newer than this node's. */
    assert_int_equal(nng_recv(rep, &req, &reqlen, NNG_FLAG_ALLOC), 0);
    assert_int_equal(((uint8_t *)req)[0], 0x01);
    nng_free(req, reqlen);
    jv_buf n;
    jv_buf_init(&n);
    assert_int_equal(jv_notice_version(JV_WIRE_VERSION + 1, &n), JV_OK);
    assert_int_equal(nng_send(rep, n.data, n.len, 0), 0);
    jv_buf_fini(&n);

    double t0 = jv_cluster_now_ms();
    for (;;) {
        json_t *p = nt_peer(&C, 0, addr);
        const char *st = json_string_value(json_object_get(p, "state"));
        bool shown =
            st && strcmp(st, "incompatible version 5") == 0 &&
            json_integer_value(json_object_get(p, "protocol_version")) == 5;
        json_decref(p);
        if (shown)
            break;
        if (jv_cluster_now_ms() - t0 > nt_ms(5000))
            NT_FAIL(&C, "a version notice is not shown (state %s)",
                    st ? st : "-");
        jv_cluster_sleep_ms(20);
    }
    NT_CHECK(&C, log_has("incompatible version 5: it speaks protocol "
                         "version 5, this node 4"));
    json_t *h = nt_req(&C, 0, 200, "GET", NULL, "/v1/health");
    const char *why = json_string_value(json_object_get(
        json_object_get(json_object_get(h, "components"), "replication"),
        "reason"));
    NT_CHECK(&C, why && strstr(why, "incompatible version 5") != NULL);
    json_decref(h);
    printf("a peer of protocol version 5 shown as such in %.0f ms\n",
           jv_cluster_now_ms() - t0);
    nng_close(rep);
}

/* The request that follows a notice, opened and decoded. */
static void next_request(nng_socket rep, jv_buf *plain, jv_msg *m)
{
    char *req = NULL;
    size_t reqlen = 0;
    jv_buf scratch;
    jv_buf_init(&scratch);
    assert_int_equal(nng_recv(rep, &req, &reqlen, NNG_FLAG_ALLOC), 0);
    assert_int_equal(jv_open(&ring, (uint8_t *)req, reqlen, plain), JV_OK);
    assert_int_equal(
        jv_msg_decode(plain->data, plain->len, 8u << 20, &scratch, m), JV_OK);
    nng_free(req, reqlen);
    jv_buf_fini(&scratch);
}

/* A peer of an older version (a cluster being upgraded): its notice
 * makes the node ask again at once in that version, whose body it reads:
 * whole vectors in version 2, no entries by place in version 3. */
static void older_spoken(unsigned version)
{
    char addr[64], line[64];
    jv_buf plain, n;
    jv_msg m;
    setup_node();
    jv_buf_init(&plain);
    jv_buf_init(&n);
    jv_msg_init(&m);
    nng_socket rep = fake_peer(addr, sizeof addr);

    next_request(rep, &plain, &m);
    assert_int_equal(m.version, JV_WIRE_VERSION);
    double t0 = jv_cluster_now_ms();
    assert_int_equal(jv_notice_version(version, &n), JV_OK);
    assert_int_equal(nng_send(rep, n.data, n.len, 0), 0);
    next_request(rep, &plain, &m);
    assert_int_equal(m.version, version);
    assert_int_equal(m.nrefs, 0);
    if (version == 2)
        assert_int_equal(m.base, 0);
    assert_true(m.stamp > 0);
    snprintf(line, sizeof line, "speaks protocol version %u: talking that",
             version);
    NT_CHECK(&C, log_has(line));
    snprintf(line, sizeof line, "incompatible version %u", version);
    NT_CHECK(&C, !log_has(line));
    printf("asked again in version %u %.0f ms after its notice\n", version,
           jv_cluster_now_ms() - t0);
    jv_msg_fini(&m);
    jv_buf_fini(&plain);
    jv_buf_fini(&n);
    nng_close(rep);
}

static void test_version_2_spoken(void **state)
{
    (void)state;
    older_spoken(2);
}

static void test_version_3_spoken(void **state)
{
    (void)state;
    older_spoken(3);
}

static int teardown(void **state)
{
    (void)state;
    nng_close(sock);
    jv_keyring_wipe(&ring);
    jv_keypair_wipe(&sender);
    jv_keypair_wipe(&origin);
    jv_keypair_wipe(&stranger);
    jv_cluster_fini(&C);
    return 0;
}

int main(void)
{
    jv_rng_seed(&R, jv_test_seed());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_hostile_batches, teardown),
        cmocka_unit_test_teardown(test_hostile_frames, teardown),
        cmocka_unit_test_teardown(test_version_notice_shown, teardown),
        cmocka_unit_test_teardown(test_version_2_spoken, teardown),
        cmocka_unit_test_teardown(test_version_3_spoken, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
