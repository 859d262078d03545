/*
 * fuzz_bundle.c - bundle files and their payloads. The first byte picks:
 * a whole bundle (head, signature, seal, opened by the cluster key ring
 * and by the recipient's key), or a payload given directly to the strict
 * decoder (the part a forged seal would otherwise hide from mutations).
 * Seeds include bundles carrying a snapshot (payload 2) besides batches.
 */
#include <sodium.h>
#include <string.h>

#include "bundle.h"
#include "fuzz.h"
#include "hlc.h"

static const char ring_text[] =
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n";

static void keys(jv_keyring *ring, jv_keypair *maker, jv_keypair *reader)
{
    char msg[64];
    uint8_t seed[crypto_sign_SEEDBYTES];
    JV_FUZZ_CHECK(jv_keyring_parse(ring_text, sizeof(ring_text) - 1, ring, msg,
                                   sizeof(msg)) == JV_OK);
    memset(seed, 1, sizeof(seed));
    crypto_sign_seed_keypair(maker->pk.b, maker->sk, seed);
    memset(seed, 2, sizeof(seed));
    crypto_sign_seed_keypair(reader->pk.b, reader->sk, seed);
}

/* What an accepted payload must satisfy. */
static void check_content(const jv_bundle_content *c, size_t len)
{
    JV_FUZZ_CHECK(c->n <= JV_BUNDLE_MAX_BATCHES);
    if (c->has_snap) {
        JV_FUZZ_CHECK(c->snap.len > 0 && c->snap.len <= JV_BUNDLE_MAX_SNAP &&
                      c->snap.len < len);
        JV_FUZZ_CHECK(c->snap.made_ms <= JV_INT_MAX);
        /* The encoding lies inside the payload (borrowed). */
        (void)c->snap.enc[0];
        (void)c->snap.enc[c->snap.len - 1];
    }
    for (size_t i = 0; i < c->n; i++) {
        const jv_bundle_batch *b = &c->batches[i];
        JV_FUZZ_CHECK(b->len <= JV_BATCH_MAX_BYTES && b->len < len);
        JV_FUZZ_CHECK(b->h.last_seq >= b->h.first_seq);
        if (i)
            JV_FUZZ_CHECK(memcmp(c->batches[i - 1].h.origin.b, b->h.origin.b,
                                 JV_ID_LEN) < 0 ||
                          b->h.first_seq > c->batches[i - 1].h.last_seq);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jv_keyring ring;
    jv_keypair maker, reader;
    jv_bundle_head h;
    jv_bundle_content c;
    jv_buf plain;
    if (size == 0)
        return 0;
    if (data[0] & 1) {
        if (jv_bundle_decode(data + 1, size - 1, &c) == JV_OK) {
            check_content(&c, size - 1);
            jv_bundle_content_fini(&c);
        }
        return 0;
    }
    keys(&ring, &maker, &reader);
    jv_buf_init(&plain);
    if (jv_bundle_parse_head(data + 1, size - 1, &h) == JV_OK) {
        JV_FUZZ_CHECK(JV_BUNDLE_HEAD_LEN + h.sealed_len + JV_BUNDLE_SIG_LEN ==
                      size - 1);
        (void)jv_bundle_verify(data + 1, size - 1, &h);
        const jv_keypair *kp =
            h.seal == JV_BUNDLE_SEAL_RECIPIENT ? &reader : &maker;
        if (jv_bundle_open(data + 1, size - 1, &h, &ring, kp, 1u << 20,
                           &plain) == JV_OK &&
            jv_bundle_decode(plain.data, plain.len, &c) == JV_OK) {
            check_content(&c, plain.len);
            jv_bundle_content_fini(&c);
        }
    }
    jv_buf_fini(&plain);
    jv_keyring_wipe(&ring);
    jv_keypair_wipe(&maker);
    jv_keypair_wipe(&reader);
    return 0;
}

/* Two signed batches of one origin, chained. */
static void add_batches(jv_bundle_builder *b, const jv_keypair *kp)
{
    uint8_t prev[JV_HASH_LEN] = {0}, sig[JV_SIG_LEN];
    for (uint64_t k = 0; k < 2; k++) {
        jv_op op;
        memset(&op, 0, sizeof(op));
        op.kind = JV_OP_CONFIG;
        op.config.key = jv_str_c("site/mode");
        op.config.value = jv_str_c("\"ship\"");
        op.config.stamp = jv_hlc_make(1500 + k, 0);
        jv_batch bt = {.origin = kp->pk,
                       .first_seq = k + 1,
                       .hlc = jv_hlc_make(1500 + k, 0),
                       .ops = &op,
                       .nops = 1};
        memcpy(bt.prev, prev, sizeof(prev));
        jv_buf body;
        jv_buf_init(&body);
        JV_FUZZ_CHECK(jv_batch_encode(&bt, &body) == JV_OK);
        jv_batch_hash(body.data, body.len, prev);
        jv_batch_sign(prev, kp, sig);
        JV_FUZZ_CHECK(jv_bundle_builder_add(b, body.data, body.len, sig) ==
                      JV_OK);
        jv_buf_fini(&body);
    }
}

/* A small snapshot as snapshot.h encodes one (a vector of one origin),
 * its digest and its maker's signature, as a base's envelope holds them.
 * The bundle's decoder leaves the encoding to the store; it is real here
 * so that a mutation starts from what a node sends. */
static void make_snap(const jv_keypair *kp, jv_buf *enc, jv_bundle_snap *s)
{
    static const char domain[] = "jarvis/snapshot/v1";
    uint8_t row[1 + JV_ID_LEN + 8 + JV_HASH_LEN],
        msg[sizeof(domain) - 1 + JV_HASH_LEN];
    memset(row, 0, sizeof(row));
    row[0] = 1; /* vv: origin, seq, hash */
    memcpy(row + 1, kp->pk.b, JV_ID_LEN);
    row[1 + JV_ID_LEN + 7] = 2;
    memset(row + 1 + JV_ID_LEN + 8, 0xab, JV_HASH_LEN);
    JV_FUZZ_CHECK(jv_buf_append(enc, "JVSNAP\x01", 7) == JV_OK &&
                  jv_buf_append(enc, row, sizeof(row)) == JV_OK &&
                  jv_buf_append(enc, "", 1) == JV_OK);
    memset(s, 0, sizeof(*s));
    s->maker = kp->pk;
    s->made_ms = 1700000000000ull;
    crypto_generichash(s->digest, JV_HASH_LEN, enc->data, enc->len, NULL, 0);
    memcpy(msg, domain, sizeof(domain) - 1);
    memcpy(msg + sizeof(domain) - 1, s->digest, JV_HASH_LEN);
    crypto_sign_detached(s->sig, NULL, msg, sizeof(msg), kp->sk);
    s->enc = enc->data;
    s->len = enc->len;
}

size_t jv_fuzz_seeds(jv_buf *seeds, size_t max)
{
    jv_keyring ring;
    jv_keypair maker, reader;
    jv_vv against, mine;
    jv_bundle_builder b;
    size_t n = 0;
    jv_buf snap_enc;
    jv_bundle_snap snap;
    if (max < 8)
        return 0;
    jv_buf_init(&snap_enc);
    keys(&ring, &maker, &reader);
    jv_vv_init(&against);
    jv_vv_init(&mine);
    jv_vv_set(&mine, &maker.pk, 2);
    jv_bundle_builder_init(&b);
    add_batches(&b, &maker);
    make_snap(&maker, &snap_enc, &snap);
    /* Seals 1 and 2 with batches only, then again after the snapshot. */
    for (int round = 0; round < 4; round++) {
        int seal = 1 + round % 2;
        if (round == 2)
            JV_FUZZ_CHECK(jv_bundle_builder_snap(&b, &snap) == JV_OK);
        jv_bundle_head h;
        memset(&h, 0, sizeof(h));
        h.seal = (uint8_t)seal;
        h.created_ms = 1700000000000ull;
        h.recipient = reader.pk;
        if (seal == 2) {
            h.flags = JV_BUNDLE_F_TARGET;
            h.target = reader.pk;
        }
        jv_buf file, plain;
        jv_buf_init(&file);
        jv_buf_init(&plain);
        JV_FUZZ_CHECK(jv_bundle_make(&b, &against, &mine, &h, &ring, &maker,
                                     &file) == JV_OK);
        uint8_t mode = 0;
        jv_buf_append(&seeds[n], &mode, 1);
        jv_buf_append(&seeds[n++], file.data, file.len);
        /* The payload alone, for the decoder. */
        jv_bundle_head got;
        JV_FUZZ_CHECK(jv_bundle_parse_head(file.data, file.len, &got) == JV_OK);
        JV_FUZZ_CHECK(jv_bundle_verify(file.data, file.len, &got) == JV_OK);
        JV_FUZZ_CHECK(jv_bundle_open(file.data, file.len, &got, &ring,
                                     seal == 2 ? &reader : &maker, 1u << 20,
                                     &plain) == JV_OK);
        jv_bundle_content c;
        JV_FUZZ_CHECK(jv_bundle_decode(plain.data, plain.len, &c) == JV_OK);
        JV_FUZZ_CHECK(c.has_snap == (round >= 2) && c.n == 2);
        JV_FUZZ_CHECK(!c.has_snap ||
                      (c.snap.len == snap.len &&
                       !memcmp(c.snap.enc, snap.enc, snap.len) &&
                       !memcmp(c.snap.sig, snap.sig, JV_SIG_LEN)));
        jv_bundle_content_fini(&c);
        mode = 1;
        jv_buf_append(&seeds[n], &mode, 1);
        jv_buf_append(&seeds[n++], plain.data, plain.len);
        jv_buf_fini(&file);
        jv_buf_fini(&plain);
    }
    jv_bundle_builder_fini(&b);
    jv_buf_fini(&snap_enc);
    jv_vv_fini(&against);
    jv_vv_fini(&mine);
    jv_keyring_wipe(&ring);
    jv_keypair_wipe(&maker);
    jv_keypair_wipe(&reader);
    return n;
}
