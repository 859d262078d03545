/* bseal_test.c - encrypted backup files (net/bseal.c): both modes round
 * trip at every size around the chunk boundary; a wrong key or passphrase
 * is refused with nothing written; a flipped byte anywhere, a truncation
 * anywhere and trailing bytes are refused; so are keys of no mode, forged
 * passphrase limits, and descriptors that cannot be read or written. */
#define _GNU_SOURCE /* memfd_create */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bseal.h"
#include "testutil.h"

/* An anonymous file holding n bytes of p. */
static int mem_fd(const uint8_t *p, size_t n)
{
    int fd = memfd_create("bseal", 0);
    assert_true(fd >= 0);
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, p + done, n - done);
        assert_true(w > 0);
        done += (size_t)w;
    }
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    return fd;
}

static uint8_t *fd_bytes(int fd, size_t *n)
{
    off_t end = lseek(fd, 0, SEEK_END);
    assert_true(end >= 0);
    uint8_t *p = malloc((size_t)end + 1);
    assert_non_null(p);
    assert_int_equal(pread(fd, p, (size_t)end, 0), end);
    *n = (size_t)end;
    return p;
}

static jv_err seal(const uint8_t *plain, size_t n, const jv_bseal_key *k,
                   uint8_t **out, size_t *outlen)
{
    int in = mem_fd(plain, n), o = memfd_create("sealed", 0);
    jv_err err = jv_bseal_encrypt(in, o, k);
    *out = fd_bytes(o, outlen);
    close(in);
    close(o);
    return err;
}

/* Opens sealed bytes; *written says how much reached the output. */
static jv_err unseal(const uint8_t *s, size_t n, const jv_bseal_key *k,
                     uint8_t **plain, size_t *plen)
{
    int in = mem_fd(s, n), o = memfd_create("plain", 0);
    jv_err err = jv_bseal_decrypt(in, o, k);
    *plain = fd_bytes(o, plen);
    close(in);
    close(o);
    return err;
}

static void keys(jv_bseal_key *enc, jv_bseal_key *dec)
{
    memset(enc, 0, sizeof(*enc));
    memset(dec, 0, sizeof(*dec));
    enc->mode = dec->mode = JV_BSEAL_MODE_KEY;
    jv_bseal_keygen(dec->pk, dec->sk);
    memcpy(enc->pk, dec->pk, JV_BSEAL_KEY_LEN);
}

static void test_round_trip(void **state)
{
    (void)state;
    static const size_t sizes[] = {0,
                                   1,
                                   JV_BSEAL_CHUNK - 1,
                                   JV_BSEAL_CHUNK,
                                   JV_BSEAL_CHUNK + 1,
                                   3 * JV_BSEAL_CHUNK + 17};
    jv_bseal_key enc, dec;
    keys(&enc, &dec);
    jv_bseal_key pass = {.mode = JV_BSEAL_MODE_PASS};
    strcpy(pass.pass, "correct horse battery staple");
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t n = sizes[i];
        uint8_t *plain = malloc(n + 1);
        randombytes_buf(plain, n);
        for (int mode = 0; mode < 2; mode++) {
            uint8_t *s, *back;
            size_t slen, blen;
            assert_int_equal(seal(plain, n, mode ? &pass : &enc, &s, &slen),
                             JV_OK);
            assert_true(jv_bseal_is_sealed(s, slen));
            assert_int_equal(unseal(s, slen, mode ? &pass : &dec, &back, &blen),
                             JV_OK);
            assert_int_equal(blen, n);
            assert_memory_equal(back, plain, n);
            free(s);
            free(back);
        }
        free(plain);
    }
}

static void test_wrong_key(void **state)
{
    (void)state;
    jv_bseal_key enc, dec, other_enc, other;
    keys(&enc, &dec);
    keys(&other_enc, &other);
    uint8_t plain[1000], *s, *back;
    size_t slen, blen;
    randombytes_buf(plain, sizeof(plain));
    assert_int_equal(seal(plain, sizeof(plain), &enc, &s, &slen), JV_OK);
    assert_int_equal(unseal(s, slen, &other, &back, &blen), JV_ECRYPTO);
    assert_int_equal(blen, 0);
    free(back);
    jv_bseal_key pass = {.mode = JV_BSEAL_MODE_PASS};
    strcpy(pass.pass, "secret");
    assert_int_equal(unseal(s, slen, &pass, &back, &blen), JV_EPERM);
    assert_int_equal(blen, 0);
    free(back);
    free(s);
    assert_int_equal(seal(plain, sizeof(plain), &pass, &s, &slen), JV_OK);
    strcpy(pass.pass, "Secret");
    assert_int_equal(unseal(s, slen, &pass, &back, &blen), JV_ECRYPTO);
    assert_int_equal(blen, 0);
    free(back);
    free(s);
}

static void test_damage(void **state)
{
    (void)state;
    jv_bseal_key enc, dec;
    keys(&enc, &dec);
    size_t n = 2 * JV_BSEAL_CHUNK + 100;
    uint8_t *plain = malloc(n), *s, *back;
    size_t slen, blen;
    randombytes_buf(plain, n);
    assert_int_equal(seal(plain, n, &enc, &s, &slen), JV_OK);
    /* Every byte of the head and stream header, then a sample of the
     * rest: each flip is refused. */
    for (size_t at = 0; at < slen; at += at < 200 ? 1 : 997) {
        s[at] ^= 0x20;
        jv_err err = unseal(s, slen, &dec, &back, &blen);
        assert_true(err != JV_OK);
        free(back);
        s[at] ^= 0x20;
    }
    /* Cut anywhere (chunk boundaries included): refused. */
    size_t cuts[] = {
        0,          5,       120, 200, slen - JV_BSEAL_CHUNK - 17 - 100 - 17,
        slen - 117, slen - 1};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        jv_err err = unseal(s, cuts[i], &dec, &back, &blen);
        assert_true(err == JV_ETRUNC || err == JV_EDECODE ||
                    err == JV_ECORRUPT);
        free(back);
    }
    /* Trailing bytes: past a full last chunk they are seen as such;
     * otherwise they make the last chunk fail. */
    uint8_t *longer = malloc(slen + 1);
    memcpy(longer, s, slen);
    longer[slen] = 0;
    jv_err err = unseal(longer, slen + 1, &dec, &back, &blen);
    assert_true(err == JV_ETRAILING || err == JV_ECORRUPT);
    free(back);
    free(longer);
    free(s);
    free(plain);
}

static void test_key_file(void **state)
{
    (void)state;
    uint8_t k[JV_BSEAL_KEY_LEN];
    const char ok[] = "# jarvis backup key\n\n  "
                      "000102030405060708090a0b0c0d0e0f"
                      "101112131415161718191a1b1c1d1e1f \n";
    assert_int_equal(jv_bseal_parse_key(ok, strlen(ok), k), JV_OK);
    assert_int_equal(k[31], 0x1f);
    assert_int_equal(jv_bseal_parse_key("# none\n", 7, k), JV_EINVAL);
    assert_int_equal(jv_bseal_parse_key("abcd\n", 5, k), JV_EINVAL);
}

/* A key of no known mode, or a passphrase mode without a passphrase:
 * refused before anything is written. */
static void test_bad_key_refused(void **state)
{
    (void)state;
    uint8_t plain[10] = {0}, *s;
    size_t slen;
    jv_bseal_key none = {.mode = 7};
    jv_bseal_key empty = {.mode = JV_BSEAL_MODE_PASS};
    assert_int_equal(seal(plain, sizeof(plain), &none, &s, &slen), JV_EINVAL);
    assert_int_equal(slen, 0);
    free(s);
    assert_int_equal(seal(plain, sizeof(plain), &empty, &s, &slen), JV_EINVAL);
    assert_int_equal(slen, 0);
    free(s);
}

/* The passphrase head's work limits are bounded: a forged head asking for
 * more (or less) than the sensible range is refused before any hashing. */
static void test_forged_limits(void **state)
{
    (void)state;
    jv_bseal_key pass = {.mode = JV_BSEAL_MODE_PASS};
    strcpy(pass.pass, "secret");
    uint8_t plain[100], *s, *back;
    size_t slen, blen;
    randombytes_buf(plain, sizeof(plain));
    assert_int_equal(seal(plain, sizeof(plain), &pass, &s, &slen), JV_OK);
    size_t ops = 9 + crypto_pwhash_SALTBYTES, mem = ops + 8;
    uint8_t save[16];
    memcpy(save, s + ops, 16);
    memset(s + ops, 0xff, 8); /* ops limit 2^64 - 1 */
    assert_int_equal(unseal(s, slen, &pass, &back, &blen), JV_EDECODE);
    assert_int_equal(blen, 0);
    free(back);
    memcpy(s + ops, save, 16);
    memset(s + mem, 0, 8); /* memory limit 0 */
    assert_int_equal(unseal(s, slen, &pass, &back, &blen), JV_EDECODE);
    free(back);
    memcpy(s + ops, save, 16);
    assert_int_equal(unseal(s, slen, &pass, &back, &blen), JV_OK);
    assert_memory_equal(back, plain, sizeof(plain));
    free(back);
    free(s);
}

/* A descriptor that cannot be read from or written to is an I/O error,
 * on either side of either direction. */
static void test_io_errors(void **state)
{
    (void)state;
    jv_bseal_key enc, dec;
    keys(&enc, &dec);
    uint8_t plain[100], *s;
    size_t slen;
    randombytes_buf(plain, sizeof(plain));
    assert_int_equal(seal(plain, sizeof(plain), &enc, &s, &slen), JV_OK);
    int rd = open("/dev/null", O_RDONLY), wr = open("/dev/null", O_WRONLY);
    assert_true(rd >= 0 && wr >= 0);
    int in = mem_fd(plain, sizeof(plain));
    assert_int_equal(jv_bseal_encrypt(in, rd, &enc), JV_EIO);
    assert_int_equal(jv_bseal_encrypt(wr, wr, &enc), JV_EIO);
    close(in);
    in = mem_fd(s, slen);
    assert_int_equal(jv_bseal_decrypt(in, rd, &dec), JV_EIO);
    assert_int_equal(jv_bseal_decrypt(wr, wr, &dec), JV_EIO);
    close(in);
    /* Cut inside the head, after its mode byte. */
    uint8_t *back;
    size_t blen;
    assert_int_equal(unseal(s, 50, &dec, &back, &blen), JV_ETRUNC);
    free(back);
    close(rd);
    close(wr);
    free(s);
}

int main(void)
{
    assert_true(sodium_init() >= 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_damage),
        cmocka_unit_test(test_key_file),
        cmocka_unit_test(test_bad_key_refused),
        cmocka_unit_test(test_forged_limits),
        cmocka_unit_test(test_io_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
