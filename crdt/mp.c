#include "mp.h"

#include <string.h>

static int buf_write(void *data, const char *p, size_t n)
{
    return jv_buf_append(data, p, n) == JV_OK ? 0 : -1;
}

void jv_mpw_init(jv_mpw *w, jv_buf *buf)
{
    w->buf = buf;
    msgpack_packer_init(&w->pk, buf, buf_write);
}

void jv_mpw_array(jv_mpw *w, uint32_t n)
{
    msgpack_pack_array(&w->pk, n);
}

void jv_mpw_u64(jv_mpw *w, uint64_t v)
{
    msgpack_pack_uint64(&w->pk, v);
}

size_t jv_mp_u64_len(uint64_t v)
{
    return v < 0x80          ? 1
           : v <= UINT8_MAX  ? 2
           : v <= UINT16_MAX ? 3
           : v <= UINT32_MAX ? 5
                             : 9;
}

size_t jv_mp_array_len(uint32_t n)
{
    return n < 16 ? 1 : n <= UINT16_MAX ? 3 : 5;
}

void jv_mpw_bool(jv_mpw *w, bool v)
{
    if (v)
        msgpack_pack_true(&w->pk);
    else
        msgpack_pack_false(&w->pk);
}

void jv_mpw_nil(jv_mpw *w)
{
    msgpack_pack_nil(&w->pk);
}

void jv_mpw_str(jv_mpw *w, const char *p, size_t n)
{
    msgpack_pack_str(&w->pk, n);
    msgpack_pack_str_body(&w->pk, p, n);
}

void jv_mpw_jstr(jv_mpw *w, jv_str s)
{
    jv_mpw_str(w, s.p, s.n);
}

void jv_mpw_bin(jv_mpw *w, const void *p, size_t n)
{
    msgpack_pack_bin(&w->pk, n);
    msgpack_pack_bin_body(&w->pk, p, n);
}

void jv_mpw_id(jv_mpw *w, const jv_id *id)
{
    jv_mpw_bin(w, id->b, JV_ID_LEN);
}

void jv_mpw_dot(jv_mpw *w, const jv_dot *d)
{
    jv_mpw_array(w, 2);
    jv_mpw_id(w, &d->id);
    jv_mpw_u64(w, d->n);
}

jv_err jv_mpw_err(const jv_mpw *w)
{
    return jv_buf_err(w->buf);
}

void jv_mpr_init(jv_mpr *r, const void *buf, size_t len)
{
    r->p = buf;
    r->end = r->p + len;
}

size_t jv_mpr_left(const jv_mpr *r)
{
    return (size_t)(r->end - r->p);
}

jv_err jv_mpr_end(const jv_mpr *r)
{
    return r->p == r->end ? JV_OK : JV_ETRAILING;
}

/* Big-endian unsigned of n bytes at r->p, advancing. */
static jv_err take_be(jv_mpr *r, size_t n, uint64_t *v)
{
    if (jv_mpr_left(r) < n)
        return JV_ETRUNC;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++)
        x = x << 8 | r->p[i];
    r->p += n;
    *v = x;
    return JV_OK;
}

static jv_err take_byte(jv_mpr *r, uint8_t *b)
{
    if (r->p == r->end)
        return JV_ETRUNC;
    *b = *r->p++;
    return JV_OK;
}

jv_err jv_mpr_array(jv_mpr *r, uint32_t *n, uint32_t max)
{
    const uint8_t *start = r->p;
    uint8_t t;
    uint64_t v;
    jv_err err = take_byte(r, &t);
    if (err)
        return err;
    if ((t & 0xf0) == 0x90) {
        v = t & 0x0f;
    } else if (t == 0xdc) {
        if ((err = take_be(r, 2, &v)))
            goto fail;
        if (v < 16) {
            err = JV_ENONCANON;
            goto fail;
        }
    } else if (t == 0xdd) {
        if ((err = take_be(r, 4, &v)))
            goto fail;
        if (v <= 0xffff) {
            err = JV_ENONCANON;
            goto fail;
        }
    } else {
        err = JV_ETYPE;
        goto fail;
    }
    if (v > max) {
        err = JV_ETOOBIG;
        goto fail;
    }
    if (v > jv_mpr_left(r)) {
        err = JV_ETRUNC;
        goto fail;
    }
    *n = (uint32_t)v;
    return JV_OK;
fail:
    r->p = start;
    return err;
}

jv_err jv_mpr_array_n(jv_mpr *r, uint32_t n)
{
    uint32_t got;
    jv_err err = jv_mpr_array(r, &got, UINT32_MAX);
    if (err)
        return err;
    return got == n ? JV_OK : JV_ETYPE;
}

jv_err jv_mpr_u64(jv_mpr *r, uint64_t *v)
{
    uint8_t t;
    uint64_t x;
    jv_err err = take_byte(r, &t);
    if (err)
        return err;
    if (t <= 0x7f) {
        *v = t;
        return JV_OK;
    }
    static const struct {
        uint8_t tag;
        uint8_t len;
        uint64_t min;
    } fmt[] = {
        {0xcc, 1, 0x80},
        {0xcd, 2, 0x100},
        {0xce, 4, 0x10000},
        {0xcf, 8, 0x100000000ull},
    };
    for (size_t i = 0; i < sizeof(fmt) / sizeof(fmt[0]); i++) {
        if (t != fmt[i].tag)
            continue;
        if ((err = take_be(r, fmt[i].len, &x)))
            return err;
        if (x < fmt[i].min)
            return JV_ENONCANON;
        *v = x;
        return JV_OK;
    }
    return JV_ETYPE;
}

jv_err jv_mpr_bool(jv_mpr *r, bool *v)
{
    if (r->p == r->end)
        return JV_ETRUNC;
    if (*r->p != 0xc2 && *r->p != 0xc3)
        return JV_ETYPE;
    *v = *r->p++ == 0xc3;
    return JV_OK;
}

jv_err jv_mpr_nil(jv_mpr *r)
{
    if (r->p == r->end)
        return JV_ETRUNC;
    if (*r->p != 0xc0)
        return JV_ETYPE;
    r->p++;
    return JV_OK;
}

bool jv_mpr_is_nil(const jv_mpr *r)
{
    return r->p < r->end && *r->p == 0xc0;
}

/* Reads a str or bin header whose minimal forms are given; body length
 * checked against what remains and against max. */
static jv_err take_blob(jv_mpr *r, bool str, const uint8_t **p, size_t *n,
                        size_t max)
{
    const uint8_t *start = r->p;
    uint8_t t;
    uint64_t len;
    jv_err err = take_byte(r, &t);
    if (err)
        return err;
    if (str && (t & 0xe0) == 0xa0) {
        len = t & 0x1f;
    } else if (t == (str ? 0xd9 : 0xc4)) {
        if ((err = take_be(r, 1, &len)))
            goto fail;
        if (str && len < 32) {
            err = JV_ENONCANON;
            goto fail;
        }
    } else if (t == (str ? 0xda : 0xc5)) {
        if ((err = take_be(r, 2, &len)))
            goto fail;
        if (len <= 0xff) {
            err = JV_ENONCANON;
            goto fail;
        }
    } else if (t == (str ? 0xdb : 0xc6)) {
        if ((err = take_be(r, 4, &len)))
            goto fail;
        if (len <= 0xffff) {
            err = JV_ENONCANON;
            goto fail;
        }
    } else {
        err = JV_ETYPE;
        goto fail;
    }
    if (len > max) {
        err = JV_ETOOBIG;
        goto fail;
    }
    if (len > jv_mpr_left(r)) {
        err = JV_ETRUNC;
        goto fail;
    }
    *p = r->p;
    *n = (size_t)len;
    r->p += len;
    return JV_OK;
fail:
    r->p = start;
    return err;
}

jv_err jv_mpr_str(jv_mpr *r, jv_str *s, size_t maxlen)
{
    const uint8_t *p;
    size_t n;
    jv_err err = take_blob(r, true, &p, &n, maxlen);
    if (err)
        return err;
    s->p = (const char *)p;
    s->n = n;
    return JV_OK;
}

jv_err jv_mpr_bin(jv_mpr *r, const uint8_t **p, size_t *n, size_t maxlen)
{
    return take_blob(r, false, p, n, maxlen);
}

jv_err jv_mpr_bin_fixed(jv_mpr *r, void *out, size_t n)
{
    const uint8_t *start = r->p, *p;
    size_t got;
    jv_err err = take_blob(r, false, &p, &got, n);
    if (err)
        return err;
    if (got != n) {
        r->p = start;
        return JV_ETYPE;
    }
    memcpy(out, p, n);
    return JV_OK;
}

jv_err jv_mpr_id(jv_mpr *r, jv_id *id)
{
    return jv_mpr_bin_fixed(r, id->b, JV_ID_LEN);
}

jv_err jv_mpr_dot(jv_mpr *r, jv_dot *d)
{
    jv_dot tmp;
    jv_err err;
    if ((err = jv_mpr_array_n(r, 2)) || (err = jv_mpr_id(r, &tmp.id)) ||
        (err = jv_mpr_u64(r, &tmp.n)))
        return err;
    if (tmp.n == 0)
        return JV_EDECODE;
    *d = tmp;
    return JV_OK;
}

jv_err jv_mpr_skip(jv_mpr *r, unsigned depth)
{
    if (r->p == r->end)
        return JV_ETRUNC;
    uint8_t t = *r->p;
    jv_err err;
    if (t == 0xc0 || t == 0xc2 || t == 0xc3) {
        r->p++;
        return JV_OK;
    }
    if (t <= 0x7f || (t >= 0xcc && t <= 0xcf)) {
        uint64_t v;
        return jv_mpr_u64(r, &v);
    }
    if ((t & 0xe0) == 0xa0 || (t >= 0xd9 && t <= 0xdb)) {
        jv_str s;
        return jv_mpr_str(r, &s, SIZE_MAX);
    }
    if (t >= 0xc4 && t <= 0xc6) {
        const uint8_t *p;
        size_t n;
        return jv_mpr_bin(r, &p, &n, SIZE_MAX);
    }
    if ((t & 0xf0) == 0x90 || t == 0xdc || t == 0xdd) {
        uint32_t n;
        if (depth == 0)
            return JV_ETOOBIG;
        if ((err = jv_mpr_array(r, &n, UINT32_MAX)))
            return err;
        for (uint32_t i = 0; i < n; i++)
            if ((err = jv_mpr_skip(r, depth - 1)))
                return err;
        return JV_OK;
    }
    return JV_ETYPE;
}
