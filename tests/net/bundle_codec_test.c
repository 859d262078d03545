/* bundle_codec_test.c - bundle files in one process (net/bundle.c): made,
 * checked and opened under both seals; what cannot be made (no cluster
 * key, an unknown seal, a recipient that is not a key) and what cannot be
 * opened (a length that does not add up, a payload beyond the caller's
 * bound, another node's bundle) is refused; a snapshot goes in payload 2
 * and comes out whole, and a bundle without one stays payload 1. The
 * whole way between nodes, with jarvisctl, is bundle_test.c (and
 * bundle_compact_test.c with snapshots). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "bundle.h"
#include "keyring.h"

static const char *KEY =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

static jv_keyring ring_of(const char *hex)
{
    char text[128], msg[128];
    jv_keyring r;
    memset(&r, 0, sizeof(r));
    snprintf(text, sizeof(text), "%s\n", hex);
    assert_int_equal(jv_keyring_parse(text, strlen(text), &r, msg, sizeof(msg)),
                     JV_OK);
    return r;
}

/* An empty bundle sealed with seal (recipient: to), appended to out. */
static jv_err make(uint8_t seal, const jv_id *to, const jv_keyring *ring,
                   const jv_keypair *kp, jv_buf *out)
{
    jv_bundle_builder b;
    jv_vv against, mine;
    jv_bundle_head h;
    memset(&h, 0, sizeof(h));
    h.seal = seal;
    h.created_ms = 1000;
    if (to)
        h.recipient = *to;
    jv_bundle_builder_init(&b);
    jv_vv_init(&against);
    jv_vv_init(&mine);
    jv_err err = jv_bundle_make(&b, &against, &mine, &h, ring, kp, out);
    jv_vv_fini(&against);
    jv_vv_fini(&mine);
    jv_bundle_builder_fini(&b);
    return err;
}

/* Parses, verifies, opens and decodes; returns the first failure. */
static jv_err read_all(const jv_buf *f, const jv_keyring *ring,
                       const jv_keypair *kp, size_t max_plain)
{
    jv_bundle_head h;
    jv_bundle_content c;
    jv_buf plain;
    jv_err err;
    memset(&c, 0, sizeof(c));
    jv_buf_init(&plain);
    if (!(err = jv_bundle_parse_head(f->data, f->len, &h)) &&
        !(err = jv_bundle_verify(f->data, f->len, &h)) &&
        !(err = jv_bundle_open(f->data, f->len, &h, ring, kp, max_plain,
                               &plain)) &&
        !(err = jv_bundle_decode(plain.data, plain.len, &c)))
        assert_int_equal(c.n, 0);
    jv_bundle_content_fini(&c);
    jv_buf_fini(&plain);
    return err;
}

static void test_both_seals(void **state)
{
    (void)state;
    jv_keypair me, other;
    assert_int_equal(jv_keypair_generate(&me), JV_OK);
    assert_int_equal(jv_keypair_generate(&other), JV_OK);
    jv_keyring ring = ring_of(KEY), none;
    memset(&none, 0, sizeof(none));
    jv_buf f;
    jv_buf_init(&f);

    assert_int_equal(make(JV_BUNDLE_SEAL_CLUSTER, NULL, &ring, &me, &f), JV_OK);
    assert_int_equal(read_all(&f, &ring, NULL, 1 << 20), JV_OK);
    assert_int_equal(read_all(&f, &none, &me, 1 << 20), JV_ENOTFOUND);
    /* The payload is bigger than a one-byte bound. */
    assert_int_equal(read_all(&f, &ring, NULL, 1), JV_ETOOBIG);

    jv_buf_reset(&f);
    assert_int_equal(make(JV_BUNDLE_SEAL_RECIPIENT, &other.pk, NULL, &me, &f),
                     JV_OK);
    assert_int_equal(read_all(&f, NULL, &other, 1 << 20), JV_OK);
    assert_int_equal(read_all(&f, &ring, &me, 1 << 20), JV_ENOTFOUND);

    /* Lengths that do not add up, past the head's own check. */
    jv_bundle_head h;
    jv_buf plain;
    jv_buf_init(&plain);
    assert_int_equal(jv_bundle_parse_head(f.data, f.len, &h), JV_OK);
    assert_int_equal(jv_bundle_verify(f.data, f.len - 1, &h), JV_EINVAL);
    assert_int_equal(
        jv_bundle_open(f.data, f.len + 1, &h, NULL, &other, 1 << 20, &plain),
        JV_EINVAL);
    assert_int_equal(plain.len, 0);
    jv_bundle_content_fini(NULL);
    jv_buf_fini(&plain);
    jv_buf_fini(&f);
    jv_keypair_wipe(&me);
    jv_keypair_wipe(&other);
}

static void test_cannot_make(void **state)
{
    (void)state;
    jv_keypair me;
    assert_int_equal(jv_keypair_generate(&me), JV_OK);
    jv_keyring none;
    memset(&none, 0, sizeof(none));
    jv_id not_a_key;
    memset(not_a_key.b, 0xff, sizeof(not_a_key.b));
    jv_buf f;
    jv_buf_init(&f);
    assert_int_equal(make(JV_BUNDLE_SEAL_CLUSTER, NULL, &none, &me, &f),
                     JV_ENOTFOUND);
    assert_int_equal(make(JV_BUNDLE_SEAL_CLUSTER, NULL, NULL, &me, &f),
                     JV_ENOTFOUND);
    assert_int_equal(make(9, NULL, NULL, &me, &f), JV_EINVAL);
    assert_int_equal(make(JV_BUNDLE_SEAL_RECIPIENT, &not_a_key, NULL, &me, &f),
                     JV_EINVAL);
    assert_int_equal(f.len, 0); /* nothing appended */
    jv_buf_fini(&f);
    jv_keypair_wipe(&me);
}

/* The opened payload of a cluster-sealed bundle from b. */
static void payload_of(jv_bundle_builder *b, const jv_keyring *ring,
                       const jv_keypair *kp, jv_buf *plain)
{
    jv_vv against, mine;
    jv_bundle_head h;
    jv_buf f;
    memset(&h, 0, sizeof(h));
    h.seal = JV_BUNDLE_SEAL_CLUSTER;
    jv_vv_init(&against);
    jv_vv_init(&mine);
    jv_buf_init(&f);
    assert_int_equal(jv_bundle_make(b, &against, &mine, &h, ring, kp, &f),
                     JV_OK);
    assert_int_equal(jv_bundle_parse_head(f.data, f.len, &h), JV_OK);
    assert_int_equal(
        jv_bundle_open(f.data, f.len, &h, ring, kp, 1 << 20, plain), JV_OK);
    jv_buf_fini(&f);
    jv_vv_fini(&against);
    jv_vv_fini(&mine);
}

static void test_snapshot_section(void **state)
{
    (void)state;
    jv_keypair me;
    assert_int_equal(jv_keypair_generate(&me), JV_OK);
    jv_keyring ring = ring_of(KEY);
    jv_bundle_builder b;
    jv_bundle_content c;
    jv_buf plain;
    jv_buf_init(&plain);
    jv_bundle_builder_init(&b);

    /* Without a snapshot: payload 1, exactly as before snapshots. */
    payload_of(&b, &ring, &me, &plain);
    assert_int_equal(plain.data[0], 0x94);
    assert_int_equal(plain.data[1], 1);
    assert_int_equal(jv_bundle_decode(plain.data, plain.len, &c), JV_OK);
    assert_false(c.has_snap);
    jv_bundle_content_fini(&c);

    /* With one: payload 2, the envelope and encoding as given. */
    static const uint8_t enc[] = "JVSNAP\x01 not checked here";
    jv_bundle_snap s, empty, big;
    memset(&s, 0, sizeof(s));
    s.maker = me.pk;
    s.made_ms = 12345;
    memset(s.digest, 7, sizeof(s.digest));
    memset(s.sig, 9, sizeof(s.sig));
    s.enc = enc;
    s.len = sizeof(enc);
    empty = s;
    empty.len = 0;
    big = s;
    big.len = (size_t)JV_BUNDLE_MAX_SNAP + 1;
    assert_int_equal(jv_bundle_builder_snap(&b, &empty), JV_EINVAL);
    assert_int_equal(jv_bundle_builder_snap(&b, &big), JV_ETOOBIG);
    assert_int_equal(jv_bundle_builder_snap(&b, &s), JV_OK);
    jv_buf_reset(&plain);
    payload_of(&b, &ring, &me, &plain);
    assert_int_equal(plain.data[0], 0x95);
    assert_int_equal(plain.data[1], 2);
    assert_int_equal(jv_bundle_decode(plain.data, plain.len, &c), JV_OK);
    assert_true(c.has_snap);
    assert_true(jv_id_eq(&c.snap.maker, &me.pk));
    assert_int_equal(c.snap.made_ms, 12345);
    assert_memory_equal(c.snap.digest, s.digest, sizeof(s.digest));
    assert_memory_equal(c.snap.sig, s.sig, sizeof(s.sig));
    assert_int_equal(c.snap.len, sizeof(enc));
    assert_memory_equal(c.snap.enc, enc, sizeof(enc));
    assert_int_equal(c.n, 0);
    jv_bundle_content_fini(&c);

    /* Versions and lengths that do not agree; a version yet unknown. */
    plain.data[1] = 1;
    assert_int_equal(jv_bundle_decode(plain.data, plain.len, &c), JV_EDECODE);
    plain.data[1] = 3;
    assert_int_equal(jv_bundle_decode(plain.data, plain.len, &c), JV_EVERSION);
    plain.data[1] = 2;
    assert_int_not_equal(jv_bundle_decode(plain.data, plain.len - 1, &c),
                         JV_OK);

    jv_bundle_builder_fini(&b);
    jv_buf_fini(&plain);
    jv_keypair_wipe(&me);
}

int main(void)
{
    assert_true(sodium_init() >= 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_both_seals),
        cmocka_unit_test(test_cannot_make),
        cmocka_unit_test(test_snapshot_section),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
