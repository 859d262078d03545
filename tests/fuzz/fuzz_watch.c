/*
 * fuzz_watch.c - GET /v1/watch's query string and Last-Event-ID (node/
 * watch.h): any bytes give a clear error or a query within its bounds; a
 * cursor accepted is canonical (printing it gives the same text back).
 *
 * Input: the query string, then '\n', then the Last-Event-ID header (the
 * rest); a single part is also tried as a cursor on its own.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fuzz.h"
#include "watch.h"

static void check_cursor(const char *p, size_t n)
{
    uint64_t c;
    char back[32];
    if (jv_watch_cursor_parse((jv_str){p, n}, &c) != JV_OK)
        return;
    int len = snprintf(back, sizeof(back), "%" PRIu64, c);
    JV_FUZZ_CHECK((size_t)len == n && memcmp(back, p, n) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    const char *nl = memchr(p, '\n', size);
    jv_str query = {p, nl ? (size_t)(nl - p) : size};
    jv_str lei = {nl ? nl + 1 : "", nl ? size - query.n - 1 : 0};
    jv_watch_query q;
    char why[256] = "";
    check_cursor(p, size);
    check_cursor(lei.p, lei.n);
    jv_err err = jv_watch_query_parse(query, lei, &q, why, sizeof(why));
    if (err) { /* refused with a reason (or out of memory) */
        JV_FUZZ_CHECK(err == JV_ENOMEM || (err == JV_EINVAL && why[0]));
        return 0;
    }
    JV_FUZZ_CHECK(q.kinds != 0 && (q.kinds & ~(unsigned)JV_WATCH_ALL) == 0);
    JV_FUZZ_CHECK(q.prefix_len <= JV_WATCH_MAX_PREFIX);
    if (q.has_cursor) {
        char back[32];
        snprintf(back, sizeof(back), "%" PRIu64, q.cursor);
        uint64_t again;
        JV_FUZZ_CHECK(jv_watch_cursor_parse(jv_str_c(back), &again) == JV_OK &&
                      again == q.cursor);
    }
    return 0;
}

size_t jv_fuzz_seeds(jv_buf *seeds, size_t max)
{
    static const char *const s[] = {
        "kind=counter,config&prefix=web.&cursor=134225920\n",
        "kind=node\n268443648",
        "prefix=a%2Fb&kind=audit,archive\n",
        "cursor=0\n",
        "\n301998080",
    };
    size_t n = 0;
    for (; n < max && n < sizeof(s) / sizeof(s[0]); n++)
        jv_buf_append(&seeds[n], s[n], strlen(s[n]));
    return n;
}
