/* keyring_test.c - cluster key frames and key files (net/keyring.c). */
#include <setjmp.h>
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

#include "keyring.h"
#include "testutil.h"

static const char *KEY_A =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
static const char *KEY_B =
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf";
static const char *KEY_C =
    "F0E1D2C3B4A5968778695A4B3C2D1E0F00112233445566778899AABBCCDDEEFF";

/* A ring from the given hex keys, first one primary. */
static jv_keyring ring_of(const char *k1, const char *k2)
{
    char text[256];
    char msg[128];
    jv_keyring r;
    memset(&r, 0, sizeof(r));
    snprintf(text, sizeof(text), "%s\n%s\n", k1, k2 ? k2 : "");
    assert_int_equal(jv_keyring_parse(text, strlen(text), &r, msg, sizeof(msg)),
                     JV_OK);
    return r;
}

static void seal(const jv_keyring *r, const char *text, jv_buf *frame)
{
    jv_buf_reset(frame);
    assert_int_equal(jv_seal(r, (const uint8_t *)text, strlen(text), frame),
                     JV_OK);
}

static jv_err open_as(const jv_keyring *r, const jv_buf *frame, jv_buf *out)
{
    return jv_open(r, frame->data, frame->len, out);
}

static void assert_opens_to(const jv_keyring *r, const jv_buf *frame,
                            const char *text)
{
    jv_buf out;
    jv_buf_init(&out);
    assert_int_equal(open_as(r, frame, &out), JV_OK);
    assert_int_equal(out.len, strlen(text));
    assert_memory_equal(out.data, text, out.len);
    jv_buf_fini(&out);
}

static void test_round_trip(void **state)
{
    (void)state;
    jv_keyring r = ring_of(KEY_A, NULL);
    jv_buf frame, again, out;
    jv_rng rng;
    jv_buf_init(&frame);
    jv_buf_init(&again);
    jv_buf_init(&out);
    jv_rng_seed(&rng, jv_test_seed());

    static const size_t sizes[] = {0, 1, 15, 16, 17, 1000, 70000};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint8_t *msg = malloc(sizes[i] + 1);
        jv_rng_bytes(&rng, msg, sizes[i]);
        jv_buf_reset(&frame);
        jv_buf_reset(&again);
        assert_int_equal(jv_seal(&r, msg, sizes[i], &frame), JV_OK);
        assert_int_equal(frame.len, sizes[i] + JV_SEAL_OVERHEAD);
        assert_int_equal(frame.data[0], 0x01);
        assert_memory_equal(frame.data + 1, r.k[0].id, JV_KEY_ID_LEN);
        /* Random nonces: the same message never seals to the same bytes. */
        assert_int_equal(jv_seal(&r, msg, sizes[i], &again), JV_OK);
        assert_int_equal(again.len, frame.len);
        assert_memory_not_equal(again.data + JV_SEAL_HEADER - 24,
                                frame.data + JV_SEAL_HEADER - 24, 24);
        assert_int_equal(jv_open(&r, frame.data, frame.len, &out), JV_OK);
        assert_int_equal(out.len, sizes[i]);
        if (sizes[i])
            assert_memory_equal(out.data, msg, sizes[i]);
        free(msg);
    }

    /* jv_seal appends: what the buffer held stays in front. */
    jv_buf_reset(&frame);
    assert_int_equal(jv_buf_append(&frame, "xy", 2), JV_OK);
    assert_int_equal(jv_seal(&r, (const uint8_t *)"hello", 5, &frame), JV_OK);
    assert_memory_equal(frame.data, "xy", 2);
    assert_int_equal(jv_open(&r, frame.data + 2, frame.len - 2, &out), JV_OK);
    assert_int_equal(out.len, 5);

    jv_buf_fini(&frame);
    jv_buf_fini(&again);
    jv_buf_fini(&out);
    jv_keyring_wipe(&r);
}

static void test_plaintext(void **state)
{
    (void)state;
    jv_keyring keyed = ring_of(KEY_A, NULL), empty;
    jv_buf frame, out;
    memset(&empty, 0, sizeof(empty));
    jv_buf_init(&frame);
    jv_buf_init(&out);

    /* Without keys (NULL or an empty ring) frames are plaintext. */
    seal(NULL, "plain", &frame);
    assert_int_equal(frame.len, 6);
    assert_int_equal(frame.data[0], 0x00);
    assert_opens_to(NULL, &frame, "plain");
    assert_opens_to(&empty, &frame, "plain");
    seal(&empty, "plain", &frame);
    assert_int_equal(frame.data[0], 0x00);

    /* Mismatch either way is refused. */
    assert_int_equal(open_as(&keyed, &frame, &out), JV_EPERM);
    seal(&keyed, "sealed", &frame);
    assert_int_equal(open_as(NULL, &frame, &out), JV_EPERM);
    assert_int_equal(open_as(&empty, &frame, &out), JV_EPERM);

    /* Nothing at all, or an unknown type. */
    assert_int_equal(jv_open(&keyed, NULL, 0, &out), JV_EDECODE);
    assert_int_equal(jv_open(NULL, (const uint8_t *)"\x02xx", 3, &out),
                     JV_EDECODE);
    assert_int_equal(jv_open(&keyed, (const uint8_t *)"\xffxx", 3, &out),
                     JV_EDECODE);

    jv_buf_fini(&frame);
    jv_buf_fini(&out);
    jv_keyring_wipe(&keyed);
}

/* memberlist's procedure: add the new key second everywhere, make it first
 * everywhere, remove the old one. At every step, nodes at neighbouring
 * stages must understand each other both ways. */
static void test_rotation(void **state)
{
    (void)state;
    jv_keyring stage[4] = {
        ring_of(KEY_A, NULL),  /* [old] */
        ring_of(KEY_A, KEY_B), /* [old, new] */
        ring_of(KEY_B, KEY_A), /* [new, old] */
        ring_of(KEY_B, NULL),  /* [new] */
    };
    jv_buf frame, out;
    jv_buf_init(&frame);
    jv_buf_init(&out);

    for (int s = 0; s < 3; s++) {
        seal(&stage[s], "forward", &frame);
        assert_opens_to(&stage[s + 1], &frame, "forward");
        seal(&stage[s + 1], "back", &frame);
        assert_opens_to(&stage[s], &frame, "back");
    }
    /* A node that dropped the old key refuses what it seals, by key id;
     * and one that never had the new key refuses the new. */
    seal(&stage[0], "old", &frame);
    assert_int_equal(open_as(&stage[3], &frame, &out), JV_ENOTFOUND);
    seal(&stage[3], "new", &frame);
    assert_int_equal(open_as(&stage[0], &frame, &out), JV_ENOTFOUND);
    seal(&stage[2], "new", &frame);
    assert_int_equal(open_as(&stage[0], &frame, &out), JV_ENOTFOUND);

    jv_buf_fini(&frame);
    jv_buf_fini(&out);
    for (int s = 0; s < 4; s++)
        jv_keyring_wipe(&stage[s]);
}

static void test_tamper(void **state)
{
    (void)state;
    jv_keyring r = ring_of(KEY_A, NULL), both = ring_of(KEY_A, KEY_B);
    jv_buf frame, bad, out;
    jv_buf_init(&frame);
    jv_buf_init(&bad);
    jv_buf_init(&out);
    seal(&r, "the quick brown fox jumps over the lazy dog", &frame);

    for (size_t i = 0; i < frame.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            jv_buf_reset(&bad);
            jv_buf_append(&bad, frame.data, frame.len);
            bad.data[i] ^= (uint8_t)(1u << bit);
            jv_err err = open_as(&r, &bad, &out);
            if (i == 0)
                /* 0x00 is plaintext (refused on a keyed node). */
                assert_true(err == JV_EDECODE || err == JV_EPERM);
            else if (i < 1 + JV_KEY_ID_LEN)
                assert_int_equal(err, JV_ENOTFOUND);
            else
                assert_int_equal(err, JV_ECRYPTO);
            assert_int_equal(out.len, 0);
        }
    }

    /* An id forged to name another key of the ring: found, but the tag
     * does not verify. */
    jv_buf_reset(&bad);
    jv_buf_append(&bad, frame.data, frame.len);
    memcpy(bad.data + 1, both.k[1].id, JV_KEY_ID_LEN);
    assert_int_equal(open_as(&both, &bad, &out), JV_ECRYPTO);
    /* Unchanged, it opens with the two-key ring as well. */
    assert_opens_to(&both, &frame,
                    "the quick brown fox jumps over the lazy dog");

    jv_buf_fini(&frame);
    jv_buf_fini(&bad);
    jv_buf_fini(&out);
    jv_keyring_wipe(&r);
    jv_keyring_wipe(&both);
}

static void test_truncated(void **state)
{
    (void)state;
    jv_keyring r = ring_of(KEY_A, NULL);
    jv_buf frame, out;
    jv_buf_init(&frame);
    jv_buf_init(&out);
    seal(&r, "twelve bytes", &frame);
    for (size_t n = 0; n < frame.len; n++) {
        jv_err err = jv_open(&r, frame.data, n, &out);
        assert_int_equal(err, n < JV_SEAL_OVERHEAD ? JV_EDECODE : JV_ECRYPTO);
    }
    /* An empty message seals to exactly the overhead, and opens. */
    seal(&r, "", &frame);
    assert_int_equal(frame.len, JV_SEAL_OVERHEAD);
    assert_opens_to(&r, &frame, "");
    jv_buf_fini(&frame);
    jv_buf_fini(&out);
    jv_keyring_wipe(&r);
}

static jv_err parse(const char *text, jv_keyring *r, char *msg, size_t n)
{
    return jv_keyring_parse(text, strlen(text), r, msg, n);
}

static void assert_parse_fails(const char *text, const char *needle)
{
    jv_keyring r, before;
    char msg[160] = "";
    memset(&r, 0x5a, sizeof(r));
    before = r;
    assert_int_equal(parse(text, &r, msg, sizeof(msg)), JV_EINVAL);
    if (!strstr(msg, needle))
        fail_msg("message \"%s\" lacks \"%s\"", msg, needle);
    /* A failed parse leaves the ring as it was. */
    assert_memory_equal(&r, &before, sizeof(r));
}

static void test_parse(void **state)
{
    (void)state;
    jv_keyring r;
    char msg[160], text[2048], hex[9];
    memset(&r, 0, sizeof(r));

    snprintf(text, sizeof(text),
             "# cluster key, primary first\n"
             "\n"
             "  %s  \r\n"
             "\t# the previous one, kept while rotating\n"
             "%s\n"
             "%s",
             KEY_B, KEY_A, KEY_C);
    assert_int_equal(parse(text, &r, msg, sizeof(msg)), JV_OK);
    assert_int_equal(r.n, 3);
    jv_keyring ab = ring_of(KEY_B, KEY_A);
    assert_memory_equal(r.k[0].key, ab.k[0].key, JV_KEY_LEN);
    assert_memory_equal(r.k[1].key, ab.k[1].key, JV_KEY_LEN);
    assert_int_equal(r.k[2].key[0], 0xf0); /* upper-case hex */

    /* The key id is BLAKE2b-256("jarvis/key-id" || key), first 4 bytes. */
    uint8_t h[32];
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof(h));
    crypto_generichash_update(&st, (const uint8_t *)"jarvis/key-id", 13);
    crypto_generichash_update(&st, r.k[0].key, JV_KEY_LEN);
    crypto_generichash_final(&st, h, sizeof(h));
    assert_memory_equal(r.k[0].id, h, JV_KEY_ID_LEN);
    jv_keyring_id_hex(&r, 0, hex);
    char want[9];
    jv_hex(h, 4, want);
    assert_string_equal(hex, want);

    /* Errors carry the line number. */
    snprintf(text, sizeof(text), "# c\n%s\n%.63sg\n", KEY_A, KEY_B);
    assert_parse_fails(text, "line 3");
    snprintf(text, sizeof(text), "%.63s\n", KEY_A);
    assert_parse_fails(text, "line 1");
    snprintf(text, sizeof(text), "\n%s0\n", KEY_A);
    assert_parse_fails(text, "line 2");
    snprintf(text, sizeof(text), "%s # primary\n", KEY_A);
    assert_parse_fails(text, "line 1");
    snprintf(text, sizeof(text), "%s\n%s\n\n%s\n", KEY_A, KEY_B, KEY_A);
    assert_parse_fails(text, "line 4");
    assert_parse_fails(text, "duplicate");
    assert_parse_fails("", "no key");
    assert_parse_fails("# only a comment\n\n", "no key");

    /* At most JV_KEYRING_MAX keys. */
    size_t len = 0;
    for (int i = 0; i <= JV_KEYRING_MAX; i++) {
        char k[2 * JV_KEY_LEN + 1];
        assert_int_equal(jv_keyring_generate_hex(k), JV_OK);
        assert_int_equal(strlen(k), 2 * JV_KEY_LEN);
        len += (size_t)snprintf(text + len, sizeof(text) - len, "%s\n", k);
        if (i == JV_KEYRING_MAX - 1) {
            assert_int_equal(parse(text, &r, msg, sizeof(msg)), JV_OK);
            assert_int_equal(r.n, JV_KEYRING_MAX);
        }
    }
    char needle[32];
    snprintf(needle, sizeof(needle), "line %d", JV_KEYRING_MAX + 1);
    assert_parse_fails(text, needle);

    /* A NUL inside the text is not a key either. */
    snprintf(text, sizeof(text), "%s\n", KEY_A);
    text[10] = '\0';
    assert_int_equal(jv_keyring_parse(text, 65, &r, msg, sizeof(msg)),
                     JV_EINVAL);

    jv_keyring_wipe(&r);
    jv_keyring_wipe(&ab);
}

static void test_generate_and_wipe(void **state)
{
    (void)state;
    char a[2 * JV_KEY_LEN + 1], b[2 * JV_KEY_LEN + 1], msg[128];
    jv_keyring r, zero;
    assert_int_equal(jv_keyring_generate_hex(a), JV_OK);
    assert_int_equal(jv_keyring_generate_hex(b), JV_OK);
    assert_string_not_equal(a, b);
    assert_int_equal(parse(a, &r, msg, sizeof(msg)), JV_OK);
    assert_int_equal(r.n, 1);
    jv_keyring_wipe(&r);
    memset(&zero, 0, sizeof(zero));
    assert_memory_equal(&r, &zero, sizeof(r));
    jv_keyring_wipe(NULL);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

/* Notices carry key ids (fingerprints) or a version, strictly parsed;
 * describe names the fingerprints, never a key. */
static void test_notices(void **state)
{
    (void)state;
    jv_keyring r;
    jv_buf b;
    jv_notice n;
    char msg[128], text[256], id0[9], id1[9], hex[2][65];
    jv_buf_init(&b);
    assert_int_equal(jv_keyring_generate_hex(hex[0]), JV_OK);
    assert_int_equal(jv_keyring_generate_hex(hex[1]), JV_OK);
    snprintf(text, sizeof text, "# comment\n%s\n%s\n", hex[0], hex[1]);
    assert_int_equal(jv_keyring_parse(text, strlen(text), &r, msg, sizeof msg),
                     JV_OK);
    jv_keyring_id_hex(&r, 0, id0);
    jv_keyring_id_hex(&r, 1, id1);

    assert_int_equal(jv_notice_key(&r, &b), JV_OK);
    assert_int_equal(b.len, 3 + 2 * JV_KEY_ID_LEN);
    assert_int_equal(jv_notice_parse(b.data, b.len, &n), JV_OK);
    assert_int_equal(n.kind, JV_NOTICE_KEY);
    assert_int_equal(n.nids, 2);
    assert_string_equal(n.ids[0], id0);
    assert_string_equal(n.ids[1], id1);
    /* A notice is no frame to open, and a short one is refused. */
    jv_buf plain;
    jv_buf_init(&plain);
    assert_int_equal(jv_open(&r, b.data, b.len, &plain), JV_EDECODE);
    jv_buf_fini(&plain);
    assert_int_equal(jv_notice_parse(b.data, b.len - 1, &n), JV_EDECODE);
    assert_int_equal(jv_notice_key(NULL, &b), JV_OK);
    assert_int_equal(jv_notice_parse(b.data, b.len, &n), JV_OK);
    assert_int_equal(n.nids, 0);

    assert_int_equal(jv_notice_version(3, &b), JV_OK);
    assert_int_equal(jv_notice_parse(b.data, b.len, &n), JV_OK);
    assert_int_equal(n.kind, JV_NOTICE_VERSION);
    assert_int_equal(n.version, 3);
    uint8_t sealed = 0x01;
    assert_int_equal(jv_notice_parse(&sealed, 1, &n), JV_ENOTFOUND);

    jv_keyring_describe(&r, text, sizeof text);
    snprintf(msg, sizeof msg, "send %s, accept %s %s", id0, id0, id1);
    assert_string_equal(text, msg);
    assert_null(strstr(text, hex[0]));
    jv_keyring_describe(NULL, text, sizeof text);
    assert_string_equal(text, "none: plaintext");

    /* The fingerprint a frame names is the sender's key id. */
    assert_int_equal(jv_seal(&r, (const uint8_t *)"x", 1, &b), JV_OK);
    assert_true(jv_frame_key_hex(b.data + (b.len - 1 - JV_SEAL_OVERHEAD),
                                 1 + JV_SEAL_OVERHEAD, text));
    assert_string_equal(text, id0);
    jv_buf_fini(&b);
    jv_keyring_wipe(&r);
}

static void test_load(void **state)
{
    (void)state;
    char dir[] = "/tmp/jv_keyring_XXXXXX", path[64], text[256], msg[512];
    jv_keyring r;
    memset(&r, 0, sizeof(r));
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/cluster.key", dir);
    snprintf(text, sizeof(text), "# test\n%s\n%s\n", KEY_A, KEY_B);

    static const mode_t refused[] = {0644, 0640, 0604, 0620, 0602, 0660};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        write_file(path, text, refused[i]);
        msg[0] = '\0';
        assert_int_equal(jv_keyring_load(path, &r, msg, sizeof(msg)), JV_EPERM);
        if (!strstr(msg, "chmod 600"))
            fail_msg("message \"%s\" lacks the remedy", msg);
        assert_int_equal(r.n, 0);
    }
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(jv_keyring_load(path, &r, msg, sizeof(msg)), JV_OK);
    assert_int_equal(r.n, 2);
    assert_int_equal(chmod(path, 0400), 0);
    assert_int_equal(jv_keyring_load(path, &r, msg, sizeof(msg)), JV_OK);

    /* Parse errors keep their line, prefixed with the file. */
    write_file(path, "# x\n\nnot a key\n", 0600);
    assert_int_equal(jv_keyring_load(path, &r, msg, sizeof(msg)), JV_EINVAL);
    assert_non_null(strstr(msg, "line 3"));
    assert_non_null(strstr(msg, path));
    assert_int_equal(r.n, 2); /* untouched */

    unlink(path);
    assert_int_equal(jv_keyring_load(path, &r, msg, sizeof(msg)), JV_ENOTFOUND);
    /* A directory is not a key file, whatever its mode. */
    assert_int_equal(jv_keyring_load(dir, &r, msg, sizeof(msg)), JV_EINVAL);

    rmdir(dir);
    jv_keyring_wipe(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_plaintext),
        cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_tamper),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_generate_and_wipe),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_notices),
    };
    jv_test_seed();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
