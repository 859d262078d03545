/*
 * identity_test.c - what a peer says about itself must be proven, against
 * real nodes (docs/protocol.md, "Who may speak").
 *
 * Two nodes A and B of a cluster set up as docs/operations.md says. The
 * test holds the cluster key, as a node removed from the cluster still
 * does, and talks to the nodes' peer listeners with a socket of its own,
 * building every message itself (wire.h) with key pairs it makes: one it
 * puts on the trust list (`trusted`), one it trusts and then removes
 * (`removed`, the removed node).
 *
 *   message                                      answer          counted as
 *   from B, vector {A: 2^40, B: 2^40}, not       refused (proof) bad_signature
 *     signed by B (the forged-vector attack)
 *   a trusted node's pull                        A's batches     -
 *   the same frame again                         refused (stale) stale
 *   that message to B                            refused (to) wrong_recipient
 *   stamped two minutes ago                      refused (stale) stale
 *   the removed node's pull, properly signed     refused         untrusted
 *   a vector with more of A's log than A has     refused (claim)
 * claim_beyond_own
 *
 * A refusal carries no vector and no batches. While the forged-vector
 * attack runs over and over, a write on A still reaches B in the normal
 * time, and A's /v1/peers still shows what B really lacks. (Before
 * messages were signed, the same attack made A believe B held everything:
 * `lacks_from_us` 0, `we_lack` 2^41, and B got nothing of A's while it
 * lasted.)
 */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "batch.h"
#include "keyring.h"
#include "nettest.h"
#include "wire.h"

#define MAX_MESSAGE (8u << 20) /* jarvisd's default --max-message */
#define HUGE_SEQ    (1ull << 40)

static jv_cluster C;
static jv_rng R;
static jv_keyring ring;
static jv_id id_of[2]; /* A, B */
static jv_keypair trusted, removed;
static nng_socket sock[2];
static uint64_t last_stamp;

/* What a node answered. */
typedef struct {
    bool answered;
    jv_refusal refused;
    size_t nbatches;
    size_t nhave;
    uint64_t have_self; /* the answering node's own entry in its vector */
} answer;

static uint64_t stamp_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t us = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
    last_stamp = us > last_stamp ? us : last_stamp + 1;
    return last_stamp;
}

static nng_socket dial(size_t i)
{
    nng_socket s;
    assert_int_equal(nng_req0_open(&s), 0);
    assert_int_equal(
        nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE), 0);
    assert_int_equal(nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 5000), 0);
    assert_int_equal(nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 5000), 0);
    assert_int_equal(nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, 1u << 24), 0);
    assert_int_equal(nng_dial(s, C.node[i].listen, NULL, 0), 0);
    return s;
}

/* A sealed SYNC naming `from`, to `to`, signed by `signer` (whose key
 * need not be from's: then the signature is a forgery). */
static void make_frame(jv_buf *frame, const jv_keypair *signer,
                       const jv_id *from, const jv_id *to, uint64_t stamp,
                       const jv_vv *have, uint64_t budget)
{
    jv_msg m, dec;
    jv_buf raw, scratch;
    jv_msg_init(&m);
    jv_msg_init(&dec);
    jv_buf_init(&raw);
    jv_buf_init(&scratch);
    m.type = JV_MSG_SYNC;
    m.from = *from;
    m.to = *to;
    m.stamp = stamp;
    m.from_addr = jv_str_c("");
    m.budget = budget;
    if (have)
        assert_int_equal(jv_vv_copy(&m.have, have), JV_OK);
    if (jv_id_eq(&signer->pk, from)) {
        assert_int_equal(jv_msg_encode(&m, signer, SIZE_MAX, &raw, NULL),
                         JV_OK);
    } else {
        /* The hash the message must be signed over, from a first
         * encoding, then the signer's signature of it in its place. */
        assert_int_equal(jv_msg_encode(&m, NULL, SIZE_MAX, &raw, NULL), JV_OK);
        assert_int_equal(
            jv_msg_decode(raw.data, raw.len, MAX_MESSAGE, &scratch, &dec),
            JV_OK);
        jv_batch_sign(dec.hash, signer, m.sig);
        jv_buf_reset(&raw);
        assert_int_equal(jv_msg_encode(&m, NULL, SIZE_MAX, &raw, NULL), JV_OK);
    }
    jv_buf_init(frame);
    assert_int_equal(jv_seal(&ring, raw.data, raw.len, frame), JV_OK);
    jv_msg_fini(&m);
    jv_msg_fini(&dec);
    jv_buf_fini(&raw);
    jv_buf_fini(&scratch);
}

/* Sends a frame to node i and reads its answer, which must be a proven
 * reply from node i, bound to `from` and to the request's stamp. */
static answer send_frame(size_t i, const jv_buf *frame, const jv_id *from,
                         uint64_t stamp)
{
    answer a = {0};
    char *rep = NULL;
    size_t replen = 0;
    int rv = nng_send(sock[i], frame->data, frame->len, 0);
    if (rv != 0)
        NT_FAIL(&C, "nng_send: %s", nng_strerror(rv));
    rv = nng_recv(sock[i], &rep, &replen, NNG_FLAG_ALLOC);
    if (rv == NNG_ETIMEDOUT)
        return a;
    if (rv != 0)
        NT_FAIL(&C, "nng_recv: %s", nng_strerror(rv));
    jv_buf plain, scratch;
    jv_msg m;
    jv_buf_init(&plain);
    jv_buf_init(&scratch);
    jv_msg_init(&m);
    assert_int_equal(jv_open(&ring, (uint8_t *)rep, replen, &plain), JV_OK);
    assert_int_equal(
        jv_msg_decode(plain.data, plain.len, MAX_MESSAGE, &scratch, &m), JV_OK);
    assert_int_equal(m.type, JV_MSG_SYNC_REPLY);
    NT_CHECK(&C, jv_id_eq(&m.from, &id_of[i]));
    NT_CHECK(&C, jv_msg_verify(&m) == JV_OK);
    NT_CHECK(&C, jv_id_eq(&m.to, from));
    NT_CHECK(&C, m.echo == stamp);
    a.answered = true;
    a.refused = m.refused;
    a.nbatches = m.nbatches;
    a.nhave = m.have.n;
    a.have_self = jv_vv_get(&m.have, &id_of[i]);
    jv_msg_fini(&m);
    jv_buf_fini(&plain);
    jv_buf_fini(&scratch);
    nng_free(rep, replen);
    return a;
}

/* One request to node i, signed by `signer` in the name of `from`. */
static answer ask(size_t i, const jv_keypair *signer, const jv_id *from,
                  const jv_vv *have, uint64_t budget)
{
    jv_buf frame;
    uint64_t stamp = stamp_now();
    make_frame(&frame, signer, from, &id_of[i], stamp, have, budget);
    answer a = send_frame(i, &frame, from, stamp);
    jv_buf_fini(&frame);
    return a;
}

static double refused(size_t i, const char *reason)
{
    char s[128];
    snprintf(s, sizeof s, "jarvis_repl_refused_messages_total{reason=\"%s\"}",
             reason);
    return nt_metric(&C, i, s);
}

/* A refusal for `why`, carrying nothing, counted once under `reason`. */
static void expect_refusal(const answer *a, jv_refusal why, size_t i,
                           const char *reason, double before)
{
    if (!a->answered)
        NT_FAIL(&C, "no answer where a refusal (%d) belongs", (int)why);
    if (a->refused != why)
        NT_FAIL(&C, "refusal %d, expected %d", (int)a->refused, (int)why);
    NT_CHECK(&C, a->nbatches == 0 && a->nhave == 0);
    double now = refused(i, reason);
    if (now != before + 1)
        NT_FAIL(&C, "%s went from %.0f to %.0f", reason, before, now);
}

static void trust(const jv_keypair *kp, bool yes)
{
    char hex[JV_ID_HEX], body[200];
    jv_id_hex(&kp->pk, hex);
    if (yes) {
        snprintf(body, sizeof body, "{\"node_id\":\"%s\"}", hex);
        json_decref(nt_req(&C, 0, 200, "POST", body, "/v1/trust"));
    } else {
        json_decref(nt_req(&C, 0, 204, "DELETE", NULL, "/v1/trust/%s", hex));
    }
}

static void setup_cluster(void)
{
    jv_cluster_opts o = {.n = 2};
    char msg[256];
    o.seed = jv_rng_next(&R);
    NT_OK(&C, jv_cluster_init(&C, &o));
    NT_OK(&C, jv_cluster_start_all(&C));
    assert_int_equal(jv_keyring_load(C.key_file, &ring, msg, sizeof msg),
                     JV_OK);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(jv_id_from_hex(C.node[i].id, 64, &id_of[i]), JV_OK);
        sock[i] = dial(i);
    }
    assert_int_equal(jv_keypair_generate(&trusted), JV_OK);
    assert_int_equal(jv_keypair_generate(&removed), JV_OK);
    trust(&trusted, true);
    /* The removed node: trusted once, then removed as docs/operations.md
     * says. It keeps its node key and the cluster key. */
    trust(&removed, true);
    trust(&removed, false);
    nt_converge(&C, NULL, 0, nt_ms(20000));
}

static int64_t counter_on(size_t i, const char *name)
{
    jv_http_resp resp;
    char path[128];
    int64_t total = -1;
    snprintf(path, sizeof path, "/v1/counters/%s", name);
    NT_OK(&C, jv_cluster_http(&C, i, "GET", path, NULL, &resp));
    if (resp.status == 200) {
        json_t *j = json_loads(resp.body, 0, NULL);
        total = json_integer_value(json_object_get(j, "total"));
        json_decref(j);
    }
    jv_http_resp_fini(&resp);
    return total;
}

/* The forged-vector attack: in B's name, to A, "B holds everything". */
static void forge(void)
{
    jv_vv claim;
    jv_vv_init(&claim);
    assert_int_equal(jv_vv_set(&claim, &id_of[0], HUGE_SEQ), JV_OK);
    assert_int_equal(jv_vv_set(&claim, &id_of[1], HUGE_SEQ), JV_OK);
    answer a = ask(0, &removed, &id_of[1], &claim, 0);
    NT_CHECK(&C, a.answered && a.refused == JV_REFUSED_PROOF);
    NT_CHECK(&C, a.nbatches == 0 && a.nhave == 0);
    jv_vv_fini(&claim);
}

static void test_forged_vector(void **state)
{
    (void)state;
    setup_cluster();
    double bad0 = refused(0, "bad_signature");
    unsigned sent = 0;
    /* The attack runs for a while before the write... */
    for (int k = 0; k < 50; k++, sent++)
        forge();
    NT_CHECK(&C, refused(0, "bad_signature") == bad0 + sent);

    /* ... and on, between every look at B, until the write is there. */
    json_decref(nt_req(&C, 0, 200, "POST", "{\"by\":7}",
                       "/v1/counters/under-attack/increment"));
    double t0 = jv_cluster_now_ms(), took = -1;
    while (jv_cluster_now_ms() - t0 < nt_ms(10000)) {
        forge();
        sent++;
        if (counter_on(1, "under-attack") == 7) {
            took = jv_cluster_now_ms() - t0;
            break;
        }
        jv_cluster_sleep_ms(5);
    }
    if (took < 0)
        NT_FAIL(&C, "the write on A did not reach B while the attack ran");
    printf("write on A reached B in %.0f ms while %u forged vectors were "
           "sent\n",
           took, sent);
    /* Pushes take milliseconds; anti-entropy alone a second or two. */
    NT_CHECK(&C, took < nt_ms(3000));
    NT_CHECK(&C, refused(0, "bad_signature") == bad0 + sent);

    /* A still knows what B lacks: nothing now, and B does not hold 2^40
     * of anything. */
    for (int k = 0; k < 5; k++)
        forge();
    json_t *p = nt_peer(&C, 0, C.node[1].listen);
    NT_CHECK(&C, p != NULL);
    json_int_t we_lack = json_integer_value(json_object_get(p, "we_lack"));
    NT_CHECK(&C, we_lack >= 0 && we_lack < 1000);
    json_decref(p);
    /* And a second write goes through as quickly, the attack still on. */
    json_decref(nt_req(&C, 0, 200, "POST", "{\"by\":5}",
                       "/v1/counters/under-attack/increment"));
    t0 = jv_cluster_now_ms();
    while (counter_on(1, "under-attack") != 12) {
        forge();
        if (jv_cluster_now_ms() - t0 > nt_ms(3000))
            NT_FAIL(&C, "the second write did not reach B in time");
        jv_cluster_sleep_ms(5);
    }
    nt_converge(&C, NULL, 0, nt_ms(10000));
}

static void test_replay_and_strangers(void **state)
{
    (void)state;
    jv_vv none;
    jv_buf frame;
    jv_vv_init(&none);
    setup_cluster();
    json_decref(nt_req(&C, 0, 200, "POST", "{}", "/v1/counters/x/increment"));

    /* A trusted node's pull gets A's batches (the control: the same
     * request from anyone else must get none). */
    uint64_t stamp = stamp_now();
    make_frame(&frame, &trusted, &trusted.pk, &id_of[0], stamp, &none,
               MAX_MESSAGE / 2);
    answer a = send_frame(0, &frame, &trusted.pk, stamp);
    NT_CHECK(&C, a.answered && a.refused == JV_REFUSED_NONE);
    NT_CHECK(&C, a.nbatches > 0 && a.have_self > 0);
    uint64_t a_has = a.have_self;

    /* The very same frame again: a replay. */
    double before = refused(0, "stale");
    a = send_frame(0, &frame, &trusted.pk, stamp);
    expect_refusal(&a, JV_REFUSED_STALE, 0, "stale", before);
    jv_buf_fini(&frame);

    /* Replayed to another node than the one it was made for. */
    stamp = stamp_now();
    make_frame(&frame, &trusted, &trusted.pk, &id_of[0], stamp, &none,
               MAX_MESSAGE / 2);
    before = refused(1, "wrong_recipient");
    a = send_frame(1, &frame, &trusted.pk, stamp);
    expect_refusal(&a, JV_REFUSED_RECIPIENT, 1, "wrong_recipient", before);
    jv_buf_fini(&frame);

    /* Made two minutes ago (beyond --max-clock-skew) and never sent. */
    stamp = stamp_now() - 120ull * 1000 * 1000;
    make_frame(&frame, &trusted, &trusted.pk, &id_of[0], stamp, &none,
               MAX_MESSAGE / 2);
    before = refused(0, "stale");
    a = send_frame(0, &frame, &trusted.pk, stamp);
    expect_refusal(&a, JV_REFUSED_STALE, 0, "stale", before);
    jv_buf_fini(&frame);

    /* The removed node holds the cluster key and its own node key, and
     * signs properly: it gets no batches, and no vector. */
    before = refused(0, "untrusted");
    a = ask(0, &removed, &removed.pk, &none, MAX_MESSAGE / 2);
    expect_refusal(&a, JV_REFUSED_UNTRUSTED, 0, "untrusted", before);

    /* A trusted node claiming more of A's own log than A has. */
    jv_vv claim;
    jv_vv_init(&claim);
    assert_int_equal(jv_vv_set(&claim, &id_of[0], a_has + 1000), JV_OK);
    before = refused(0, "claim_beyond_own");
    a = ask(0, &trusted, &trusted.pk, &claim, MAX_MESSAGE / 2);
    expect_refusal(&a, JV_REFUSED_CLAIM, 0, "claim_beyond_own", before);
    jv_vv_fini(&claim);

    /* After all that, the trusted node's honest pull still works. */
    a = ask(0, &trusted, &trusted.pk, &none, MAX_MESSAGE / 2);
    NT_CHECK(&C, a.answered && a.refused == JV_REFUSED_NONE && a.nbatches > 0);
    /* And so does the cluster. */
    json_decref(nt_req(&C, 0, 200, "POST", "{}", "/v1/counters/x/increment"));
    nt_converge(&C, NULL, 0, nt_ms(10000));
    NT_CHECK(&C, counter_on(1, "x") == 2);
    jv_vv_fini(&none);
}

static int teardown(void **state)
{
    (void)state;
    nng_close(sock[0]);
    nng_close(sock[1]);
    jv_keyring_wipe(&ring);
    jv_keypair_wipe(&trusted);
    jv_keypair_wipe(&removed);
    jv_cluster_fini(&C);
    return 0;
}

int main(void)
{
    jv_rng_seed(&R, jv_test_seed());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_forged_vector, teardown),
        cmocka_unit_test_teardown(test_replay_and_strangers, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
