/*
 * limits_test.c - what net/ refuses at its edges, and that a refusal
 * changes nothing: key files over the size limit, frames too large to
 * seal, messages the encoder must not send (its peers would drop them),
 * and callers that want no message.
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "keyring.h"
#include "testutil.h"
#include "wire.h"

static const char *KEY_A =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
static const char *KEY_B =
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf";

static jv_keyring ring_of(const char *text)
{
    jv_keyring r;
    char msg[128];
    memset(&r, 0, sizeof(r));
    assert_int_equal(jv_keyring_parse(text, strlen(text), &r, msg, sizeof(msg)),
                     JV_OK);
    return r;
}

static void write_file(const char *path, const char *text, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    assert_int_equal(close(fd), 0);
}

/* A key file over 64 KiB is refused by its size, whatever it holds, and
 * the ring in use stays. */
static void test_keyfile_too_large(void **state)
{
    (void)state;
    char dir[] = "/tmp/jv_limits_XXXXXX", path[64], msg[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/cluster.key", dir);

    size_t n = 65536 + 1;
    char *text = malloc(n);
    assert_non_null(text);
    /* Valid lines all the way, comments padding past the limit. */
    memset(text, '#', n);
    memcpy(text, KEY_A, 64);
    text[64] = '\n';
    text[n - 1] = '\n';
    write_file(path, text, n);

    char two[160];
    snprintf(two, sizeof(two), "%s\n%s\n", KEY_B, KEY_A);
    jv_keyring r = ring_of(two);
    msg[0] = '\0';
    assert_int_equal(jv_keyring_load(path, &r, msg, sizeof(msg)), JV_EINVAL);
    if (!strstr(msg, "larger than 65536 bytes") || !strstr(msg, path))
        fail_msg("message \"%s\" does not say why", msg);
    assert_int_equal(r.n, 2);
    char id[9], want[9];
    jv_keyring r_b = ring_of(two);
    jv_keyring_id_hex(&r, 0, id);
    jv_keyring_id_hex(&r_b, 0, want);
    assert_string_equal(id, want);

    /* At the limit exactly, it loads. */
    write_file(path, text, n - 1);
    assert_int_equal(jv_keyring_load(path, &r, msg, sizeof(msg)), JV_OK);
    assert_int_equal(r.n, 1);

    free(text);
    unlink(path);
    rmdir(dir);
    jv_keyring_wipe(&r);
    jv_keyring_wipe(&r_b);
}

/* Callers that want no message (msg NULL) get the same verdicts. */
static void test_no_message_wanted(void **state)
{
    (void)state;
    jv_keyring r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(
        jv_keyring_load("/nonexistent/jv/cluster.key", &r, NULL, 0),
        JV_ENOTFOUND);
    assert_int_equal(jv_keyring_parse("not a key\n", 10, &r, NULL, 0),
                     JV_EINVAL);
    char msg[1] = {'x'};
    assert_int_equal(jv_keyring_parse("not a key\n", 10, &r, msg, 0),
                     JV_EINVAL);
    assert_int_equal(msg[0], 'x'); /* a zero-length buffer is not written */
    assert_int_equal(r.n, 0);
}

/* A key index past the ring names no key. */
static void test_id_out_of_range(void **state)
{
    (void)state;
    jv_keyring r = ring_of(KEY_A);
    char id[9];
    jv_keyring_id_hex(&r, 0, id);
    assert_int_equal(strlen(id), 8);
    memset(id, 'z', sizeof(id));
    jv_keyring_id_hex(&r, 1, id);
    assert_string_equal(id, "");
    jv_keyring_id_hex(&r, JV_KEYRING_MAX, id);
    assert_string_equal(id, "");
    jv_keyring_wipe(&r);
}

/* A message too large to frame is refused before anything is written;
 * the buffer keeps what it had. The sizes are refused by length alone. */
static void test_seal_too_large(void **state)
{
    (void)state;
    jv_keyring r = ring_of(KEY_A);
    jv_buf out;
    jv_buf_init(&out);
    assert_int_equal(jv_buf_append(&out, "kept", 4), JV_OK);
    static const uint8_t one = 1;
    assert_int_equal(jv_seal(NULL, &one, SIZE_MAX, &out), JV_ETOOBIG);
    assert_int_equal(
        jv_seal(&r, &one,
                crypto_aead_xchacha20poly1305_ietf_MESSAGEBYTES_MAX + 1, &out),
        JV_ETOOBIG);
    assert_int_equal(jv_seal(&r, &one, SIZE_MAX - JV_SEAL_OVERHEAD + 1, &out),
                     JV_ETOOBIG);
    assert_int_equal(out.len, 4);
    assert_memory_equal(out.data, "kept", 4);
    /* And what fits still seals and opens. */
    assert_int_equal(jv_seal(&r, &one, 1, &out), JV_OK);
    assert_int_equal(out.len, 4 + 1 + JV_SEAL_OVERHEAD);
    jv_buf plain;
    jv_buf_init(&plain);
    assert_int_equal(jv_open(&r, out.data + 4, out.len - 4, &plain), JV_OK);
    assert_int_equal(plain.len, 1);
    assert_int_equal(plain.data[0], 1);
    jv_buf_fini(&plain);
    jv_buf_fini(&out);
    jv_keyring_wipe(&r);
}

/* The encoder refuses what every decoder would drop: batches announced
 * but not given, a body missing, a signature missing. Nothing is
 * appended. */
static void test_encode_refuses_incomplete_batches(void **state)
{
    (void)state;
    static const uint8_t body[16] = {1, 2, 3}, sig[JV_SIG_LEN] = {9};
    jv_msg m;
    jv_buf out;
    jv_msg_init(&m);
    jv_buf_init(&out);
    m.type = JV_MSG_SYNC;
    m.from = jv_test_id(1);

    m.nbatches = 1;
    m.batches = NULL;
    assert_int_equal(jv_msg_encode(&m, NULL, 0, &out, NULL), JV_EINVAL);
    jv_wire_batch b = {.body = NULL, .len = sizeof(body), .sig = sig};
    m.batches = &b;
    assert_int_equal(jv_msg_encode(&m, NULL, 0, &out, NULL), JV_EINVAL);
    b.body = body;
    b.sig = NULL;
    assert_int_equal(jv_msg_encode(&m, NULL, 0, &out, NULL), JV_EINVAL);
    assert_int_equal(out.len, 0);

    /* Complete, it encodes and decodes to the same batch. */
    b.sig = sig;
    size_t raw = 0;
    assert_int_equal(jv_msg_encode(&m, NULL, 0, &out, &raw), JV_OK);
    assert_true(raw > sizeof(body));
    jv_msg d;
    jv_buf scratch;
    jv_msg_init(&d);
    jv_buf_init(&scratch);
    assert_int_equal(jv_msg_decode(out.data, out.len, 1 << 20, &scratch, &d),
                     JV_OK);
    assert_int_equal(d.nbatches, 1);
    assert_int_equal(d.batches[0].len, sizeof(body));
    assert_memory_equal(d.batches[0].body, body, sizeof(body));
    assert_memory_equal(d.batches[0].sig, sig, JV_SIG_LEN);
    jv_msg_fini(&d);
    jv_msg_fini(NULL); /* accepted, like free(NULL) */
    jv_buf_fini(&scratch);
    jv_buf_fini(&out);
    m.batches = NULL; /* borrowed: not the message's to free */
    m.nbatches = 0;
    jv_msg_fini(&m);
}

/* Runs op with the n-th allocation failing, for n = 0, 1, ... until it
 * needs no more than n: op returns true once it succeeded without an
 * injected failure. Returns how many allocations were tried. */
static long each_allocation(bool (*op)(void *), void *arg)
{
    for (long n = 0; n < 10000; n++) {
        jv_alloc_fail_after(n);
        bool done = op(arg);
        long failed = jv_alloc_failed_count();
        jv_alloc_fail_reset();
        if (done && failed == 0)
            return n;
    }
    fail_msg("still allocating after 10000 allocations");
    return -1;
}

typedef struct {
    jv_msg *m;
    jv_buf *frame; /* a good encoding, for the decode case */
} wire_case;

/* Encoding: JV_ENOMEM leaves the buffer's earlier content as it was. */
static bool encode_once(void *arg)
{
    wire_case *c = arg;
    jv_buf out;
    jv_buf_init(&out);
    jv_err err = jv_buf_append(&out, "kept", 4);
    if (err != JV_OK) { /* the injected failure came first */
        assert_int_equal(err, JV_ENOMEM);
        jv_buf_fini(&out);
        return false;
    }
    err = jv_msg_encode(c->m, NULL, 0, &out, NULL);
    bool ok = err == JV_OK;
    if (!ok) {
        assert_int_equal(err, JV_ENOMEM);
        assert_int_equal(out.len, 4);
    }
    assert_memory_equal(out.data, "kept", 4);
    jv_buf_fini(&out);
    return ok;
}

/* Decoding: JV_ENOMEM leaves the message as it was (empty here). */
static bool decode_once(void *arg)
{
    wire_case *c = arg;
    jv_msg d;
    jv_buf scratch;
    jv_msg_init(&d);
    jv_buf_init(&scratch);
    jv_err err =
        jv_msg_decode(c->frame->data, c->frame->len, 1 << 20, &scratch, &d);
    bool ok = err == JV_OK;
    if (ok) {
        assert_int_equal(d.nbatches, c->m->nbatches);
        for (size_t i = 0; i < d.nbatches; i++)
            assert_memory_equal(d.batches[i].body, c->m->batches[i].body,
                                c->m->batches[i].len);
    } else {
        assert_int_equal(err, JV_ENOMEM);
        assert_int_equal(d.nbatches, 0);
        assert_null(d.batches);
    }
    jv_msg_fini(&d);
    jv_buf_fini(&scratch);
    return ok;
}

/* Out of memory at any allocation, encode and decode answer JV_ENOMEM and
 * change nothing; with memory, the same calls succeed. Compressed bodies
 * (zstd), so that the inflate path runs too. */
static void test_wire_out_of_memory(void **state)
{
    (void)state;
    static uint8_t bodies[3][2000], sig[JV_SIG_LEN];
    jv_wire_batch b[3];
    for (int i = 0; i < 3; i++) {
        memset(bodies[i], 'a' + i, sizeof(bodies[i]));
        b[i] = (jv_wire_batch){bodies[i], sizeof(bodies[i]), sig};
    }
    jv_msg m;
    jv_msg_init(&m);
    m.type = JV_MSG_SYNC_REPLY;
    m.from = jv_test_id(2);
    m.batches = b;
    m.nbatches = 3;
    assert_int_equal(jv_vv_set(&m.have, &m.from, 7), JV_OK);
    jv_buf frame;
    jv_buf_init(&frame);
    assert_int_equal(jv_msg_encode(&m, NULL, 0, &frame, NULL), JV_OK);
    assert_true(frame.len < 3 * 2000); /* compressed */
    wire_case c = {&m, &frame};
    assert_true(each_allocation(encode_once, &c) > 0);
    assert_true(each_allocation(decode_once, &c) > 0);
    jv_buf_fini(&frame);
    m.batches = NULL;
    m.nbatches = 0;
    jv_msg_fini(&m);
}

typedef struct {
    const char *path;
    const jv_keyring *ring;
} key_case;

/* Loading: JV_ENOMEM says so and keeps the ring in use. */
static bool load_once(void *arg)
{
    key_case *c = arg;
    jv_keyring r = *c->ring;
    char msg[256] = "";
    jv_err err = jv_keyring_load(c->path, &r, msg, sizeof(msg));
    bool ok = err == JV_OK;
    if (ok) {
        assert_int_equal(r.n, 1);
    } else {
        assert_int_equal(err, JV_ENOMEM);
        assert_non_null(strstr(msg, "out of memory"));
        assert_memory_equal(&r, c->ring, sizeof(r));
    }
    jv_keyring_wipe(&r);
    return ok;
}

/* Sealing and opening: JV_ENOMEM, nothing appended / nothing opened. */
static bool seal_open_once(void *arg)
{
    key_case *c = arg;
    jv_buf frame, plain;
    jv_buf_init(&frame);
    jv_buf_init(&plain);
    jv_err err = jv_seal(c->ring, (const uint8_t *)"hello", 5, &frame);
    if (err == JV_OK)
        err = jv_open(c->ring, frame.data, frame.len, &plain);
    bool ok = err == JV_OK;
    if (ok) {
        assert_int_equal(plain.len, 5);
        assert_memory_equal(plain.data, "hello", 5);
    } else {
        assert_int_equal(err, JV_ENOMEM);
        assert_int_equal(plain.len, 0);
    }
    jv_buf_fini(&frame);
    jv_buf_fini(&plain);
    return ok;
}

static void test_keyring_out_of_memory(void **state)
{
    (void)state;
    char dir[] = "/tmp/jv_limits_XXXXXX", path[64], text[80];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/cluster.key", dir);
    snprintf(text, sizeof(text), "%s\n", KEY_A);
    write_file(path, text, strlen(text));
    jv_keyring in_use = ring_of(KEY_B);
    key_case c = {path, &in_use};
    assert_true(each_allocation(load_once, &c) > 0);
    assert_true(each_allocation(seal_open_once, &c) > 0);
    jv_keyring_wipe(&in_use);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keyfile_too_large),
        cmocka_unit_test(test_no_message_wanted),
        cmocka_unit_test(test_id_out_of_range),
        cmocka_unit_test(test_seal_too_large),
        cmocka_unit_test(test_encode_refuses_incomplete_batches),
        cmocka_unit_test(test_wire_out_of_memory),
        cmocka_unit_test(test_keyring_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
