/* mp_test.c - the canonical msgpack reader and writer (crdt/mp.c), against
 * msgpack-c's own packer and unpacker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "crdt_test.h"
#include "mp.h"

typedef struct {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} packer;

static void pk_init(packer *p)
{
    msgpack_sbuffer_init(&p->sb);
    msgpack_packer_init(&p->pk, &p->sb, msgpack_sbuffer_write);
}

static void pk_reset(packer *p)
{
    msgpack_sbuffer_clear(&p->sb);
}

static void pk_fini(packer *p)
{
    msgpack_sbuffer_destroy(&p->sb);
}

static jv_err read_u64(const void *p, size_t n, uint64_t *v)
{
    jv_mpr r;
    jv_mpr_init(&r, p, n);
    jv_err err = jv_mpr_u64(&r, v);
    if (err == JV_OK)
        err = jv_mpr_end(&r);
    return err;
}

static void test_uints_from_packer(void **state)
{
    (void)state;
    static const struct {
        uint64_t v;
        size_t len;
    } cases[] = {
        {0, 1},          {1, 1},          {0x7f, 1},       {0x80, 2},
        {0xff, 2},       {0x100, 3},      {0xffff, 3},     {0x10000, 5},
        {0xffffffff, 5}, {1ull << 32, 9}, {UINT64_MAX, 9},
    };
    packer p;
    pk_init(&p);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t got = 0;
        pk_reset(&p);
        msgpack_pack_uint64(&p.pk, cases[i].v);
        assert_int_equal(p.sb.size, cases[i].len);
        assert_int_equal(read_u64(p.sb.data, p.sb.size, &got), JV_OK);
        assert_int_equal(got, cases[i].v);
        /* Positive signed values come out in the same, unsigned form. */
        if (cases[i].v <= INT64_MAX) {
            pk_reset(&p);
            msgpack_pack_int64(&p.pk, (int64_t)cases[i].v);
            assert_int_equal(read_u64(p.sb.data, p.sb.size, &got), JV_OK);
            assert_int_equal(got, cases[i].v);
        }
        /* And our writer produces the very same bytes. */
        jv_buf b;
        jv_mpw w;
        jv_buf_init(&b);
        jv_mpw_init(&w, &b);
        jv_mpw_u64(&w, cases[i].v);
        assert_int_equal(b.len, cases[i].len);
        assert_memory_equal(b.data, p.sb.data, b.len);
        jv_buf_fini(&b);
    }
    pk_fini(&p);
}

static void test_uints_refused(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        size_t n;
        jv_err want;
    } cases[] = {
        /* Non-minimal: each value fits a shorter form. */
        {"\xcc\x00", 2, JV_ENONCANON},
        {"\xcc\x7f", 2, JV_ENONCANON},
        {"\xcd\x00\xff", 3, JV_ENONCANON},
        {"\xce\x00\x00\xff\xff", 5, JV_ENONCANON},
        {"\xcf\x00\x00\x00\x00\xff\xff\xff\xff", 9, JV_ENONCANON},
        /* Signed, float, other types. */
        {"\xe0", 1, JV_ETYPE},
        {"\xff", 1, JV_ETYPE},
        {"\xd0\x05", 2, JV_ETYPE},
        {"\xd3\x00\x00\x00\x00\x00\x00\x00\x05", 9, JV_ETYPE},
        {"\xca\x00\x00\x00\x00", 5, JV_ETYPE},
        {"\xcb\x00\x00\x00\x00\x00\x00\x00\x00", 9, JV_ETYPE},
        {"\xc0", 1, JV_ETYPE},
        {"\xc3", 1, JV_ETYPE},
        {"\xa1x", 2, JV_ETYPE},
        /* Truncated. */
        {"", 0, JV_ETRUNC},
        {"\xcc", 1, JV_ETRUNC},
        {"\xcd\x01", 2, JV_ETRUNC},
        {"\xce\x01\x00\x00", 4, JV_ETRUNC},
        {"\xcf\x01\x00\x00\x00\x00\x00\x00", 8, JV_ETRUNC},
        /* Trailing. */
        {"\x05\x05", 2, JV_ETRAILING},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t v = 1234;
        jv_err err = read_u64(cases[i].bytes, cases[i].n, &v);
        if (err != cases[i].want)
            fail_msg("case %zu: %s, want %s", i, jv_errname(err),
                     jv_errname(cases[i].want));
        if (err != JV_ETRAILING)
            assert_int_equal(v, 1234);
    }
    uint64_t v;
    assert_int_equal(read_u64("\xcc\x80", 2, &v), JV_OK);
    assert_int_equal(v, 0x80);
    assert_int_equal(read_u64("\xcd\x01\x00", 3, &v), JV_OK);
    assert_int_equal(v, 0x100);
    assert_int_equal(read_u64("\xce\x00\x01\x00\x00", 5, &v), JV_OK);
    assert_int_equal(v, 0x10000);
    assert_int_equal(read_u64("\xcf\x00\x00\x00\x01\x00\x00\x00\x00", 9, &v),
                     JV_OK);
    assert_int_equal(v, 1ull << 32);
}

static void test_str_boundaries(void **state)
{
    (void)state;
    static const struct {
        size_t len, head;
    } cases[] = {{0, 1},   {1, 1},   {31, 1},    {32, 2},
                 {255, 2}, {256, 3}, {65535, 3}, {65536, 5}};
    char *text = malloc(70000);
    assert_non_null(text);
    for (size_t i = 0; i < 70000; i++)
        text[i] = (char)('a' + i % 26);
    packer p;
    pk_init(&p);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = cases[i].len;
        pk_reset(&p);
        msgpack_pack_str(&p.pk, len);
        msgpack_pack_str_body(&p.pk, text, len);
        assert_int_equal(p.sb.size, cases[i].head + len);
        jv_mpr r;
        jv_str s;
        jv_mpr_init(&r, p.sb.data, p.sb.size);
        assert_int_equal(jv_mpr_str(&r, &s, len), JV_OK);
        assert_int_equal(jv_mpr_end(&r), JV_OK);
        assert_int_equal(s.n, len);
        assert_true(len == 0 || memcmp(s.p, text, len) == 0);
        /* One byte over the caller's bound. */
        if (len) {
            jv_mpr_init(&r, p.sb.data, p.sb.size);
            assert_int_equal(jv_mpr_str(&r, &s, len - 1), JV_ETOOBIG);
        }
        /* Body cut short. */
        if (len) {
            jv_mpr_init(&r, p.sb.data, p.sb.size - 1);
            assert_int_equal(jv_mpr_str(&r, &s, SIZE_MAX), JV_ETRUNC);
        }
        /* A str is not a bin. */
        const uint8_t *bp;
        size_t bn;
        jv_mpr_init(&r, p.sb.data, p.sb.size);
        assert_int_equal(jv_mpr_bin(&r, &bp, &bn, SIZE_MAX), JV_ETYPE);
        /* Our writer agrees byte for byte. */
        jv_buf b;
        jv_mpw w;
        jv_buf_init(&b);
        jv_mpw_init(&w, &b);
        jv_mpw_str(&w, text, len);
        assert_int_equal(b.len, p.sb.size);
        assert_memory_equal(b.data, p.sb.data, b.len);
        jv_buf_fini(&b);
    }
    pk_fini(&p);

    /* Longer headers than needed. */
    static const struct {
        const char *head;
        size_t headlen, len;
    } loose[] = {
        {"\xd9\x00", 2, 0},
        {"\xd9\x1f", 2, 31},
        {"\xda\x00\x05", 3, 5},
        {"\xda\x00\xff", 3, 255},
        {"\xdb\x00\x00\x00\x20", 5, 32},
        {"\xdb\x00\x00\xff\xff", 5, 65535},
    };
    for (size_t i = 0; i < sizeof(loose) / sizeof(loose[0]); i++) {
        jv_buf b;
        jv_buf_init(&b);
        jt_raw(&b, loose[i].head, loose[i].headlen);
        jt_raw(&b, text, loose[i].len);
        jv_mpr r;
        jv_str s;
        jv_mpr_init(&r, b.data, b.len);
        assert_int_equal(jv_mpr_str(&r, &s, SIZE_MAX), JV_ENONCANON);
        jv_buf_fini(&b);
    }
    jv_mpr r;
    jv_str s;
    jv_mpr_init(&r, "\xdb\xff\xff\xff\xff", 5);
    assert_int_equal(jv_mpr_str(&r, &s, SIZE_MAX), JV_ETRUNC);
    jv_mpr_init(&r, "\xdb\xff\xff\xff\xff", 5);
    assert_int_equal(jv_mpr_str(&r, &s, 1 << 20), JV_ETOOBIG);
    jv_mpr_init(&r, "\xd9", 1);
    assert_int_equal(jv_mpr_str(&r, &s, SIZE_MAX), JV_ETRUNC);
    free(text);
}

static void test_bin_boundaries(void **state)
{
    (void)state;
    static const struct {
        size_t len, head;
    } cases[] = {{0, 2},   {1, 2},     {32, 2},    {255, 2},
                 {256, 3}, {65535, 3}, {65536, 5}, {70000, 5}};
    uint8_t *data = malloc(70000);
    assert_non_null(data);
    for (size_t i = 0; i < 70000; i++)
        data[i] = (uint8_t)(i * 7);
    packer p;
    pk_init(&p);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = cases[i].len;
        pk_reset(&p);
        msgpack_pack_bin(&p.pk, len);
        msgpack_pack_bin_body(&p.pk, data, len);
        assert_int_equal(p.sb.size, cases[i].head + len);
        jv_mpr r;
        const uint8_t *bp;
        size_t bn;
        jv_mpr_init(&r, p.sb.data, p.sb.size);
        assert_int_equal(jv_mpr_bin(&r, &bp, &bn, len), JV_OK);
        assert_int_equal(jv_mpr_end(&r), JV_OK);
        assert_int_equal(bn, len);
        assert_true(len == 0 || memcmp(bp, data, len) == 0);
        if (len) {
            jv_mpr_init(&r, p.sb.data, p.sb.size);
            assert_int_equal(jv_mpr_bin(&r, &bp, &bn, len - 1), JV_ETOOBIG);
            jv_mpr_init(&r, p.sb.data, p.sb.size - 1);
            assert_int_equal(jv_mpr_bin(&r, &bp, &bn, len), JV_ETRUNC);
        }
        jv_str s;
        jv_mpr_init(&r, p.sb.data, p.sb.size);
        assert_int_equal(jv_mpr_str(&r, &s, SIZE_MAX), JV_ETYPE);
        jv_buf b;
        jv_mpw w;
        jv_buf_init(&b);
        jv_mpw_init(&w, &b);
        jv_mpw_bin(&w, data, len);
        assert_int_equal(b.len, p.sb.size);
        assert_memory_equal(b.data, p.sb.data, b.len);
        jv_buf_fini(&b);
    }
    pk_fini(&p);

    static const struct {
        const char *head;
        size_t headlen, len;
    } loose[] = {
        {"\xc5\x00\x00", 3, 0},
        {"\xc5\x00\xff", 3, 255},
        {"\xc6\x00\x00\x00\x10", 5, 16},
        {"\xc6\x00\x00\xff\xff", 5, 65535},
    };
    for (size_t i = 0; i < sizeof(loose) / sizeof(loose[0]); i++) {
        jv_buf b;
        jv_buf_init(&b);
        jt_raw(&b, loose[i].head, loose[i].headlen);
        jt_raw(&b, data, loose[i].len);
        jv_mpr r;
        const uint8_t *bp;
        size_t bn;
        jv_mpr_init(&r, b.data, b.len);
        assert_int_equal(jv_mpr_bin(&r, &bp, &bn, SIZE_MAX), JV_ENONCANON);
        jv_buf_fini(&b);
    }

    /* Fixed-size bins: ids. */
    jv_id id, got;
    memset(id.b, 0x5a, sizeof(id.b));
    jv_buf b;
    jv_mpw w;
    jv_mpr r;
    jv_buf_init(&b);
    jv_mpw_init(&w, &b);
    jv_mpw_id(&w, &id);
    jv_mpw_bin(&w, data, 31);
    jv_mpw_bin(&w, data, 33);
    jv_mpr_init(&r, b.data, b.len);
    assert_int_equal(jv_mpr_id(&r, &got), JV_OK);
    assert_true(jv_id_eq(&id, &got));
    assert_int_equal(jv_mpr_id(&r, &got), JV_ETYPE);
    assert_true(jv_id_eq(&id, &got));
    jv_mpr_init(&r, b.data + 34, b.len - 34);
    assert_int_equal(jv_mpr_bin_fixed(&r, got.b, 31), JV_OK);
    assert_int_equal(jv_mpr_id(&r, &got), JV_ETOOBIG);
    jv_buf_fini(&b);
    free(data);
}

static void test_array_boundaries(void **state)
{
    (void)state;
    static const struct {
        uint32_t n;
        size_t head;
    } cases[] = {{0, 1}, {15, 1}, {16, 3}, {65535, 3}, {65536, 5}, {70000, 5}};
    packer p;
    pk_init(&p);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint32_t n = cases[i].n, got;
        pk_reset(&p);
        msgpack_pack_array(&p.pk, n);
        for (uint32_t k = 0; k < n; k++)
            msgpack_pack_nil(&p.pk);
        assert_int_equal(p.sb.size, cases[i].head + n);
        jv_mpr r;
        jv_mpr_init(&r, p.sb.data, p.sb.size);
        assert_int_equal(jv_mpr_array(&r, &got, n), JV_OK);
        assert_int_equal(got, n);
        assert_int_equal(jv_mpr_left(&r), n);
        for (uint32_t k = 0; k < n; k++)
            assert_int_equal(jv_mpr_nil(&r), JV_OK);
        assert_int_equal(jv_mpr_end(&r), JV_OK);
        if (n) {
            /* Over the caller's bound; more than the bytes left. */
            jv_mpr_init(&r, p.sb.data, p.sb.size);
            assert_int_equal(jv_mpr_array(&r, &got, n - 1), JV_ETOOBIG);
            jv_mpr_init(&r, p.sb.data, p.sb.size - 1);
            assert_int_equal(jv_mpr_array(&r, &got, n), JV_ETRUNC);
            jv_mpr_init(&r, p.sb.data, p.sb.size);
            assert_int_equal(jv_mpr_array_n(&r, n - 1), JV_ETYPE);
        }
        jv_buf b;
        jv_mpw w;
        jv_buf_init(&b);
        jv_mpw_init(&w, &b);
        jv_mpw_array(&w, n);
        assert_int_equal(b.len, cases[i].head);
        assert_memory_equal(b.data, p.sb.data, b.len);
        jv_buf_fini(&b);
    }
    pk_fini(&p);

    jv_mpr r;
    uint32_t got = 77;
    static const uint8_t nils[32] = {0};
    static const struct {
        const char *head;
        size_t headlen;
        jv_err want;
    } bad[] = {
        {"\xdc\x00\x00", 3, JV_ENONCANON},
        {"\xdc\x00\x0f", 3, JV_ENONCANON},
        {"\xdd\x00\x00\x00\x01", 5, JV_ENONCANON},
        {"\xdd\x00\x00\xff\xff", 5, JV_ENONCANON},
        {"\x80", 1, JV_ETYPE},
        {"\xde\x00\x10", 3, JV_ETYPE},
        {"\xc0", 1, JV_ETYPE},
        {"\xdc\x00", 2, JV_ETRUNC},
        {"\xdd\x00\x01\x00", 4, JV_ETRUNC},
        {"", 0, JV_ETRUNC},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        jv_buf b;
        jv_buf_init(&b);
        jt_raw(&b, bad[i].head, bad[i].headlen);
        if (bad[i].want != JV_ETRUNC)
            jt_raw(&b, nils, sizeof(nils));
        jv_mpr_init(&r, b.data, b.len);
        jv_err err = jv_mpr_array(&r, &got, UINT32_MAX);
        if (err != bad[i].want)
            fail_msg("case %zu: %s, want %s", i, jv_errname(err),
                     jv_errname(bad[i].want));
        assert_int_equal(got, 77);
        jv_buf_fini(&b);
    }
    /* 2^32-1 elements claimed in five bytes: refused by count, whatever
     * the bound. */
    jv_mpr_init(&r, "\xdd\xff\xff\xff\xff", 5);
    assert_int_equal(jv_mpr_array(&r, &got, UINT32_MAX), JV_ETRUNC);
    jv_mpr_init(&r, "\xdd\xff\xff\xff\xff", 5);
    assert_int_equal(jv_mpr_array(&r, &got, 4096), JV_ETOOBIG);
    assert_int_equal(got, 77);
}

static void test_bool_nil(void **state)
{
    (void)state;
    jv_mpr r;
    bool v = false;
    jv_mpr_init(&r, "\xc3\xc2\xc0\x01", 4);
    assert_false(jv_mpr_is_nil(&r));
    assert_int_equal(jv_mpr_bool(&r, &v), JV_OK);
    assert_true(v);
    assert_int_equal(jv_mpr_nil(&r), JV_ETYPE);
    assert_int_equal(jv_mpr_bool(&r, &v), JV_OK);
    assert_false(v);
    assert_true(jv_mpr_is_nil(&r));
    assert_int_equal(jv_mpr_bool(&r, &v), JV_ETYPE);
    assert_int_equal(jv_mpr_nil(&r), JV_OK);
    assert_int_equal(jv_mpr_end(&r), JV_ETRAILING);
    assert_int_equal(jv_mpr_nil(&r), JV_ETYPE);
    assert_int_equal(jv_mpr_bool(&r, &v), JV_ETYPE);
    uint64_t u;
    assert_int_equal(jv_mpr_u64(&r, &u), JV_OK);
    assert_int_equal(jv_mpr_end(&r), JV_OK);
    assert_false(jv_mpr_is_nil(&r));
    assert_int_equal(jv_mpr_nil(&r), JV_ETRUNC);
    assert_int_equal(jv_mpr_bool(&r, &v), JV_ETRUNC);
}

static void test_dot(void **state)
{
    (void)state;
    jv_dot d = {{{0}}, 300}, got;
    memset(d.id.b, 3, sizeof(d.id.b));
    jv_buf b;
    jv_mpw w;
    jv_mpr r;
    jv_buf_init(&b);
    jv_mpw_init(&w, &b);
    jv_mpw_dot(&w, &d);
    jv_mpr_init(&r, b.data, b.len);
    assert_int_equal(jv_mpr_dot(&r, &got), JV_OK);
    assert_int_equal(jv_dot_cmp(&d, &got), 0);
    assert_int_equal(jv_mpr_end(&r), JV_OK);
    /* A dot counts from 1. */
    d.n = 0;
    jv_buf_reset(&b);
    jv_mpw_dot(&w, &d);
    got.n = 9;
    jv_mpr_init(&r, b.data, b.len);
    assert_int_equal(jv_mpr_dot(&r, &got), JV_EDECODE);
    assert_int_equal(got.n, 9);
    jv_buf_reset(&b);
    jv_mpw_array(&w, 3);
    jv_mpw_id(&w, &d.id);
    jv_mpw_u64(&w, 1);
    jv_mpw_u64(&w, 1);
    jv_mpr_init(&r, b.data, b.len);
    assert_int_equal(jv_mpr_dot(&r, &got), JV_ETYPE);
    jv_buf_fini(&b);
}

static void test_skip(void **state)
{
    (void)state;
    jv_buf b;
    jv_mpw w;
    jv_mpr r;
    jv_buf_init(&b);
    jv_mpw_init(&w, &b);
    jv_mpw_array(&w, 4);
    jv_mpw_u64(&w, 1u << 20);
    jv_mpw_str(&w, "text", 4);
    jv_mpw_array(&w, 3);
    jv_mpw_bool(&w, true);
    jv_mpw_nil(&w);
    jv_mpw_bin(&w, "xy", 2);
    jv_mpw_array(&w, 0);
    jv_mpw_u64(&w, 7);
    jv_mpr_init(&r, b.data, b.len);
    assert_int_equal(jv_mpr_skip(&r, 2), JV_OK);
    uint64_t v;
    assert_int_equal(jv_mpr_u64(&r, &v), JV_OK);
    assert_int_equal(v, 7);
    assert_int_equal(jv_mpr_end(&r), JV_OK);
    /* Too deep for the bound. */
    jv_mpr_init(&r, b.data, b.len);
    assert_int_equal(jv_mpr_skip(&r, 1), JV_ETOOBIG);
    /* Every prefix fails. */
    for (size_t k = 0; k + 1 < b.len; k++) {
        jv_mpr_init(&r, b.data, k);
        assert_int_not_equal(jv_mpr_skip(&r, 8), JV_OK);
    }
    /* Maps, floats, ext, negative ints are never in our formats. */
    static const char *alien[] = {"\x80", "\xca\0\0\0\0", "\xd4\x01\x00",
                                  "\xe0", "\xc1"};
    static const size_t alien_len[] = {1, 5, 3, 1, 1};
    for (size_t i = 0; i < 5; i++) {
        jv_mpr_init(&r, alien[i], alien_len[i]);
        assert_int_equal(jv_mpr_skip(&r, 8), JV_ETYPE);
    }
    /* A non-canonical value inside is refused while skipping too. */
    jv_mpr_init(&r, "\x91\xcc\x01", 3);
    assert_int_equal(jv_mpr_skip(&r, 8), JV_ENONCANON);
    jv_buf_fini(&b);
}

/* Our writer's output is read by msgpack-c's unpacker as what was meant. */
static void test_writer_read_by_msgpack(void **state)
{
    (void)state;
    jv_buf b;
    jv_mpw w;
    jv_buf_init(&b);
    jv_mpw_init(&w, &b);
    jv_mpw_array(&w, 5);
    jv_mpw_u64(&w, 0x1234567890ull);
    jv_mpw_bool(&w, false);
    jv_mpw_nil(&w);
    jv_mpw_jstr(&w, jv_str_c("héllo"));
    jv_mpw_bin(&w, "\0\1\2", 3);
    assert_int_equal(jv_mpw_err(&w), JV_OK);

    msgpack_unpacked u;
    size_t off = 0;
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, (const char *)b.data, b.len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, b.len);
    msgpack_object o = u.data;
    assert_int_equal(o.type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(o.via.array.size, 5);
    msgpack_object *e = o.via.array.ptr;
    assert_int_equal(e[0].type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    assert_int_equal(e[0].via.u64, 0x1234567890ull);
    assert_int_equal(e[1].type, MSGPACK_OBJECT_BOOLEAN);
    assert_false(e[1].via.boolean);
    assert_int_equal(e[2].type, MSGPACK_OBJECT_NIL);
    assert_int_equal(e[3].type, MSGPACK_OBJECT_STR);
    assert_int_equal(e[3].via.str.size, strlen("héllo"));
    assert_memory_equal(e[3].via.str.ptr, "héllo", strlen("héllo"));
    assert_int_equal(e[4].type, MSGPACK_OBJECT_BIN);
    assert_int_equal(e[4].via.bin.size, 3);
    msgpack_unpacked_destroy(&u);
    jv_buf_fini(&b);
}

/* A failed append sticks: later writes are no-ops and the error shows. */
static void test_writer_error_sticks(void **state)
{
    (void)state;
    jv_buf b;
    jv_mpw w;
    jv_buf_init(&b);
    jv_mpw_init(&w, &b);
    jv_alloc_fail_after(0);
    jv_mpw_u64(&w, 1);
    jv_alloc_fail_reset();
    assert_int_equal(jv_mpw_err(&w), JV_ENOMEM);
    jv_mpw_u64(&w, 2);
    jv_mpw_str(&w, "abc", 3);
    assert_int_equal(jv_mpw_err(&w), JV_ENOMEM);
    assert_int_equal(b.len, 0);
    jv_buf_reset(&b);
    jv_mpw_u64(&w, 3);
    assert_int_equal(jv_mpw_err(&w), JV_OK);
    assert_int_equal(b.len, 1);
    jv_buf_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uints_from_packer),
        cmocka_unit_test(test_uints_refused),
        cmocka_unit_test(test_str_boundaries),
        cmocka_unit_test(test_bin_boundaries),
        cmocka_unit_test(test_array_boundaries),
        cmocka_unit_test(test_bool_nil),
        cmocka_unit_test(test_dot),
        cmocka_unit_test(test_skip),
        cmocka_unit_test(test_writer_read_by_msgpack),
        cmocka_unit_test(test_writer_error_sticks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
