/*
 * http.c - the session API's HTTP/1.1 server (contract in http.h).
 */
#include "http.h"

#include <stdbool.h>
#include <string.h>

#include <http_parser.h>

static int hexval(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Replaces out's contents with s decoded, NUL-terminated (the NUL is not
 * counted in out->len); `plus` turns '+' into a space (query strings). */
static jv_err unescape(jv_str s, bool plus, jv_buf *out)
{
    size_t k = 0;
    jv_buf_reset(out);
    if (jv_buf_reserve(out, s.n + 1))
        return JV_ENOMEM;
    for (size_t i = 0; i < s.n; i++) {
        int ch = (unsigned char)s.p[i];
        if (ch == '%') {
            int hi = i + 2 < s.n ? hexval((unsigned char)s.p[i + 1]) : -1;
            int lo = i + 2 < s.n ? hexval((unsigned char)s.p[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                goto bad;
            ch = hi << 4 | lo;
            i += 2;
        } else if (ch == '+' && plus) {
            ch = ' ';
        }
        /* A NUL would cut the C string short of what was checked. */
        if (ch == 0)
            goto bad;
        out->data[k++] = (uint8_t)ch;
    }
    out->data[k] = '\0';
    out->len = k;
    return JV_OK;
bad:
    out->data[0] = '\0';
    out->len = 0;
    return JV_EINVAL;
}

jv_err jv_http_unescape(jv_str s, jv_buf *out)
{
    if (!out)
        return JV_EINVAL;
    return unescape(s, false, out);
}

/* Whether a query key, decoded ('+' as space), is `name`; decoded on the
 * fly so that out is left alone unless the key matches. A key that does
 * not decode matches nothing. */
static bool key_is(jv_str key, const char *name, size_t nlen)
{
    size_t j = 0;
    for (size_t i = 0; i < key.n; i++, j++) {
        int ch = (unsigned char)key.p[i];
        if (ch == '%') {
            int hi = i + 2 < key.n ? hexval((unsigned char)key.p[i + 1]) : -1;
            int lo = i + 2 < key.n ? hexval((unsigned char)key.p[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return false;
            ch = hi << 4 | lo;
            i += 2;
        } else if (ch == '+') {
            ch = ' ';
        }
        if (ch == 0 || j == nlen || ch != (unsigned char)name[j])
            return false;
    }
    return j == nlen;
}

jv_err jv_http_query_param(jv_str query, const char *name, jv_buf *out)
{
    size_t nlen, i = 0;
    if (!name || !out)
        return JV_EINVAL;
    nlen = strlen(name);
    while (i < query.n) {
        const char *seg = query.p + i, *eq;
        size_t end = i, slen;
        while (end < query.n && query.p[end] != '&')
            end++;
        slen = end - i;
        i = end + 1;
        eq = memchr(seg, '=', slen);
        jv_str key = {seg, eq ? (size_t)(eq - seg) : slen};
        if (!key_is(key, name, nlen))
            continue;
        jv_str val = {eq ? eq + 1 : seg + slen, eq ? slen - key.n - 1 : 0};
        return unescape(val, true, out);
    }
    return JV_ENOTFOUND;
}

const char *jv_http_reason(int status)
{
    /* http-parser's table of registered codes and phrases. */
    switch (status) {
#define JV_HTTP_REASON(num, name, string) \
    case num:                             \
        return #string;
        HTTP_STATUS_MAP(JV_HTTP_REASON)
#undef JV_HTTP_REASON
    default:
        return "Unknown";
    }
}
