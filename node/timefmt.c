/*
 * timefmt.c - times as the API, the logs and replication print and parse
 * them.
 */
#include "timefmt.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void jv_rfc3339(uint64_t ms, char *out, size_t outlen)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    char base[32];
    gmtime_r(&secs, &tm);
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, outlen, "%s.%03uZ", base, (unsigned)(ms % 1000));
}

static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if ((*p)[i] < '0' || (*p)[i] > '9')
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

jv_err jv_parse_time(const char *s, uint64_t *ms)
{
    const char *p = s;
    if (*p >= '0' && *p <= '9' && !strchr(s, '-') && !strchr(s, 'T')) {
        char *end;
        unsigned long long v = strtoull(s, &end, 10);
        if (*end || v > (uint64_t)INT64_MAX)
            return JV_EINVAL;
        *ms = v;
        return JV_OK;
    }
    int Y, M, D, h, m, sec, frac = 0, off = 0;
    if (digits(&p, 4, &Y) || *p++ != '-' || digits(&p, 2, &M) || *p++ != '-' ||
        digits(&p, 2, &D) || (*p != 'T' && *p != 't' && *p != ' '))
        return JV_EINVAL;
    p++;
    if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &m) || *p++ != ':' ||
        digits(&p, 2, &sec))
        return JV_EINVAL;
    if (*p == '.') {
        p++;
        int n = 0, scale = 100;
        while (*p >= '0' && *p <= '9') {
            if (n++ < 3) {
                frac += (*p - '0') * scale;
                scale /= 10;
            }
            p++;
        }
        if (n == 0)
            return JV_EINVAL;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om))
            return JV_EINVAL;
        off = sign * (oh * 60 + om);
    } else {
        return JV_EINVAL;
    }
    if (*p || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 ||
        sec > 60 || Y < 1970)
        return JV_EINVAL;
    struct tm tm = {.tm_year = Y - 1900,
                    .tm_mon = M - 1,
                    .tm_mday = D,
                    .tm_hour = h,
                    .tm_min = m,
                    .tm_sec = sec};
    int64_t t = (int64_t)timegm(&tm) - (int64_t)off * 60;
    if (t < 0)
        return JV_EINVAL;
    *ms = (uint64_t)t * 1000 + (uint64_t)frac;
    return JV_OK;
}
