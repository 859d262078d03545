#include "types.h"

#include <string.h>

#include "alloc.h"

int jv_id_cmp(const jv_id *a, const jv_id *b)
{
    return memcmp(a->b, b->b, JV_ID_LEN);
}

bool jv_id_eq(const jv_id *a, const jv_id *b)
{
    return memcmp(a->b, b->b, JV_ID_LEN) == 0;
}

bool jv_id_is_zero(const jv_id *id)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < JV_ID_LEN; i++)
        acc |= id->b[i];
    return acc == 0;
}

void jv_hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

jv_err jv_unhex(const char *s, size_t slen, uint8_t *out, size_t n)
{
    if (slen != 2 * n)
        return JV_EINVAL;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return JV_EINVAL;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return JV_OK;
}

void jv_id_hex(const jv_id *id, char out[JV_ID_HEX])
{
    jv_hex(id->b, JV_ID_LEN, out);
}

jv_err jv_id_from_hex(const char *s, size_t n, jv_id *out)
{
    jv_id tmp;
    jv_err err = jv_unhex(s, n, tmp.b, JV_ID_LEN);
    if (err == JV_OK)
        *out = tmp;
    return err;
}

int jv_dot_cmp(const jv_dot *a, const jv_dot *b)
{
    int c = jv_id_cmp(&a->id, &b->id);
    if (c)
        return c;
    return (a->n > b->n) - (a->n < b->n);
}

jv_str jv_str_c(const char *s)
{
    jv_str r = {s, s ? strlen(s) : 0};
    return r;
}

bool jv_str_eq(jv_str a, jv_str b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

int jv_str_cmp(jv_str a, jv_str b)
{
    size_t m = a.n < b.n ? a.n : b.n;
    int c = m ? memcmp(a.p, b.p, m) : 0;
    if (c)
        return c;
    return (a.n > b.n) - (a.n < b.n);
}

/* True when the 8 bytes at p are ASCII and none is NUL. */
static bool ascii8(const uint8_t *p)
{
    const uint64_t high = 0x8080808080808080u, ones = 0x0101010101010101u;
    uint64_t w;
    memcpy(&w, p, sizeof(w));
    /* With no high bit set, w - ones sets a high bit if and only if a
     * byte is 0 (the lowest 0 byte becomes 0xff). */
    return (w & high) == 0 && ((w - ones) & high) == 0;
}

bool jv_str_valid_utf8(jv_str s)
{
    const uint8_t *p = (const uint8_t *)s.p, *end = p + s.n;
    while (p < end) {
        /* Most text is ASCII: a word at a time (every decoded operation's
         * texts pass here, a tenth of a remote apply). */
        if (end - p >= 8 && ascii8(p)) {
            p += 8;
            continue;
        }
        uint8_t c = *p;
        size_t len;
        uint32_t cp, min;
        if (c == 0)
            return false;
        if (c < 0x80) {
            p++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if ((size_t)(end - p) < len)
            return false;
        for (size_t i = 1; i < len; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        p += len;
    }
    return true;
}

size_t jv_utf8_cut(jv_str s, size_t max)
{
    if (s.n <= max)
        return s.n;
    size_t n = max;
    /* Back off continuation bytes to the start of the cut sequence. */
    while (n > 0 && ((uint8_t)s.p[n] & 0xc0) == 0x80)
        n--;
    return n;
}

void jv_buf_init(jv_buf *b)
{
    memset(b, 0, sizeof(*b));
}

void jv_buf_fini(jv_buf *b)
{
    if (!b)
        return;
    jv_free(b->data);
    memset(b, 0, sizeof(*b));
}

void jv_buf_reset(jv_buf *b)
{
    b->len = 0;
    b->err = 0;
}

jv_err jv_buf_reserve(jv_buf *b, size_t extra)
{
    if (b->err)
        return JV_ENOMEM;
    if (extra > SIZE_MAX - b->len) {
        b->err = 1;
        return JV_ENOMEM;
    }
    size_t need = b->len + extra;
    if (need <= b->cap)
        return JV_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *d = jv_realloc(b->data, cap);
    if (!d) {
        b->err = 1;
        return JV_ENOMEM;
    }
    b->data = d;
    b->cap = cap;
    return JV_OK;
}

jv_err jv_buf_append(jv_buf *b, const void *p, size_t n)
{
    jv_err err = jv_buf_reserve(b, n);
    if (err)
        return err;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return JV_OK;
}

jv_err jv_buf_err(const jv_buf *b)
{
    return b->err ? JV_ENOMEM : JV_OK;
}
