#include "output.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "cli.h"

void jvc_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("jarvisctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int jvc_oom(void)
{
    jvc_err("out of memory");
    return JVC_EXIT_FAIL;
}

char *jvc_strf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *s = jv_malloc((size_t)n + 1);
    if (s == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

int jvc_print_json(const json_t *v)
{
    /* JSON_ENCODE_ANY: a config value may be a bare string or number. */
    if (json_dumpf(v, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY) != 0 ||
        fputc('\n', stdout) == EOF) {
        jvc_err("cannot write to standard output");
        return JVC_EXIT_FAIL;
    }
    return JVC_EXIT_OK;
}

int jvc_finish_stdout(int rc)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        jvc_err("cannot write to standard output");
        return rc == JVC_EXIT_OK ? JVC_EXIT_FAIL : rc;
    }
    return rc;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool digits(const char **p, int n, int64_t *out)
{
    int64_t v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static bool expect(const char **p, char c)
{
    if (**p != c)
        return false;
    (*p)++;
    return true;
}

bool jvc_time_parse(const char *s, int64_t *ms)
{
    int64_t y, mo, d, h, mi, sec, frac = 0;
    const char *p = s;
    if (s == NULL || !digits(&p, 4, &y) || !expect(&p, '-') ||
        !digits(&p, 2, &mo) || !expect(&p, '-') || !digits(&p, 2, &d))
        return false;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return false;
    p++;
    if (!digits(&p, 2, &h) || !expect(&p, ':') || !digits(&p, 2, &mi) ||
        !expect(&p, ':') || !digits(&p, 2, &sec))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return false;
    if (*p == '.') {
        p++;
        int n = 0;
        while (isdigit((unsigned char)*p)) {
            if (n < 3)
                frac = frac * 10 + (*p - '0');
            n++;
            p++;
        }
        if (n == 0)
            return false;
        for (; n < 3; n++)
            frac *= 10;
    }
    int64_t offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        int64_t oh, om;
        p++;
        if (!digits(&p, 2, &oh) || !expect(&p, ':') || !digits(&p, 2, &om) ||
            oh > 23 || om > 59)
            return false;
        offset_min = sign * (oh * 60 + om);
    } else {
        return false;
    }
    if (*p != '\0')
        return false;
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 +
                   sec - offset_min * 60;
    *ms = secs * 1000 + frac;
    return true;
}

static void split_ms(int64_t ms, time_t *secs, int *rem)
{
    int64_t s = ms / 1000, r = ms % 1000;
    if (r < 0) {
        r += 1000;
        s -= 1;
    }
    *secs = (time_t)s;
    *rem = (int)r;
}

void jvc_time_rfc3339(int64_t ms, char *out, size_t outlen)
{
    time_t secs;
    int rem;
    struct tm tm;
    split_ms(ms, &secs, &rem);
    if (gmtime_r(&secs, &tm) == NULL) {
        snprintf(out, outlen, "%" PRId64, ms);
        return;
    }
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, outlen, "%s.%03dZ", base, rem);
}

void jvc_time_local(int64_t ms, char *out, size_t outlen)
{
    time_t secs;
    int rem;
    struct tm tm;
    split_ms(ms, &secs, &rem);
    if (localtime_r(&secs, &tm) == NULL ||
        strftime(out, outlen, "%Y-%m-%d %H:%M:%S %Z", &tm) == 0)
        snprintf(out, outlen, "%" PRId64, ms);
}

static size_t utf8_len(unsigned char c);

/* Drops a UTF-8 sequence cut short at the end of s (a copy truncated to a
 * buffer), which would show as garbage or swallow what follows. */
static void utf8_trim_cut(char *s)
{
    size_t n = strlen(s), i = n;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xc0) == 0x80)
        i--;
    if (i > 0 && (unsigned char)s[i - 1] >= 0xc0 &&
        n - (i - 1) < utf8_len((unsigned char)s[i - 1]))
        s[i - 1] = '\0';
}

const char *jvc_time_human(const json_t *v, char *out, size_t outlen)
{
    int64_t ms;
    if (!json_is_string(v)) {
        snprintf(out, outlen, "-");
        return out;
    }
    if (jvc_time_parse(json_string_value(v), &ms))
        jvc_time_local(ms, out, outlen);
    else if (outlen > 0) {
        /* Not a time: shown as it is, but not cut inside a character. */
        snprintf(out, outlen, "%s", json_string_value(v));
        utf8_trim_cut(out);
    }
    return out;
}

bool jvc_time_arg(const char *s, int64_t now_ms, int64_t *ms)
{
    size_t n = strlen(s);
    if (n == 0)
        return false;
    size_t i = 0;
    while (i < n && isdigit((unsigned char)s[i]))
        i++;
    if (i == n && n <= 15) { /* all digits: ms since the epoch */
        *ms = strtoll(s, NULL, 10);
        return true;
    }
    if (i > 0 && i == n - 1 && i <= 9) { /* a duration: digits + unit */
        int64_t v = strtoll(s, NULL, 10), unit;
        switch (s[n - 1]) {
        case 's':
            unit = 1000;
            break;
        case 'm':
            unit = 60 * 1000;
            break;
        case 'h':
            unit = 3600 * 1000;
            break;
        case 'd':
            unit = 86400 * 1000;
            break;
        default:
            return false;
        }
        *ms = now_ms - v * unit;
        return true;
    }
    return jvc_time_parse(s, ms);
}

void jvc_bytes_human(uint64_t n, char *out, size_t outlen)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
    if (n < 1024) {
        snprintf(out, outlen, "%" PRIu64 " B", n);
        return;
    }
    double v = (double)n;
    size_t u = 0;
    v /= 1024.0;
    while (v >= 1024.0 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1024.0;
        u++;
    }
    snprintf(out, outlen, "%.1f %s", v, units[u]);
}

void jvc_duration_human(int64_t s, char *out, size_t outlen)
{
    if (s < 0)
        s = 0;
    int64_t d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60, sec = s % 60;
    if (d > 0)
        snprintf(out, outlen, "%" PRId64 "d %" PRId64 "h %" PRId64 "m", d, h,
                 m);
    else if (h > 0)
        snprintf(out, outlen, "%" PRId64 "h %" PRId64 "m %" PRId64 "s", h, m,
                 sec);
    else if (m > 0)
        snprintf(out, outlen, "%" PRId64 "m %" PRId64 "s", m, sec);
    else
        snprintf(out, outlen, "%" PRId64 "s", sec);
}

const char *jvc_short_id(const char *id, char *out, size_t outlen)
{
    if (id == NULL)
        id = "-";
    snprintf(out, outlen, "%.*s", JVC_SHORT_ID, id);
    return out;
}

char *jvc_json_compact(const json_t *v)
{
    /* jansson allocates with its own allocator: copy into ours so that
     * callers free every string of this module the same way. */
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s == NULL)
        return NULL;
    char *copy = jv_strndup(s, strlen(s));
    free(s);
    return copy;
}

json_t *jvc_value_arg(const char *s, bool as_string)
{
    json_t *v = as_string ? NULL : json_loads(s, JSON_DECODE_ANY, NULL);
    return v != NULL ? v : json_string(s);
}

const char *jvc_str(const json_t *obj, const char *key, const char *def)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : def;
}

const char *jvc_int_text(const json_t *obj, const char *key, char *out,
                         size_t outlen)
{
    const json_t *v = json_object_get(obj, key);
    if (json_is_integer(v))
        snprintf(out, outlen, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v))
        snprintf(out, outlen, "%g", json_real_value(v));
    else
        snprintf(out, outlen, "-");
    return out;
}

/* Length of the UTF-8 sequence starting with byte c (1 for invalid). */
static size_t utf8_len(unsigned char c)
{
    if (c >= 0xf0 && c < 0xf8)
        return 4;
    if (c >= 0xe0)
        return c < 0xf0 ? 3 : 1;
    if (c >= 0xc0)
        return 2;
    return 1;
}

size_t jvc_display_width(const char *s)
{
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xc0) != 0x80)
            w++;
    return w;
}

/* U+202A..U+202E (embeddings, overrides) and U+2066..U+2069 (isolates)
 * as UTF-8: e2 80 aa..ae and e2 81 a6..a9. A terminal obeys them and
 * shows the text around them reordered, so a name could make a table say
 * something it does not hold. */
static bool is_bidi_control(const unsigned char *p, size_t avail)
{
    if (avail < 3 || p[0] != 0xe2)
        return false;
    return (p[1] == 0x80 && p[2] >= 0xaa && p[2] <= 0xae) ||
           (p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9);
}

/* The low byte of the code point of a sequence is_bidi_control() took. */
static unsigned bidi_low(const unsigned char *p)
{
    return ((unsigned)(p[1] & 0x3f) << 6 | (p[2] & 0x3f)) & 0xff;
}

char *jvc_sanitize(const char *s, size_t max_chars)
{
    size_t len = strlen(s);
    /* Worst case every byte becomes a 4-byte escape (two bytes a 6-byte
     * one), plus "..." and NUL. */
    if (len > (SIZE_MAX - 8) / 4)
        return NULL;
    char *out = jv_malloc(len * 4 + 8);
    if (out == NULL)
        return NULL;
    size_t o = 0, chars = 0, i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (max_chars > 0 && chars == max_chars) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (c < 0x20 || c == 0x7f) {
            const char *esc = c == '\n' ? "\\n" : c == '\t' ? "\\t" : NULL;
            if (esc != NULL) {
                memcpy(out + o, esc, 2);
                o += 2;
            } else {
                o += (size_t)snprintf(out + o, 5, "\\x%02x", c);
            }
            i++;
        } else if (c == 0xc2 && i + 1 < len &&
                   (unsigned char)s[i + 1] >= 0x80 &&
                   (unsigned char)s[i + 1] <= 0x9f) {
            /* U+0080..U+009F: C1 controls, which some terminals obey. */
            o += (size_t)snprintf(out + o, 7, "\\u%04x",
                                  (unsigned char)s[i + 1]);
            i += 2;
        } else if (is_bidi_control((const unsigned char *)s + i, len - i)) {
            /* Three bytes in, six out: within the worst case above. */
            o += (size_t)snprintf(out + o, 7, "\\u20%02x",
                                  bidi_low((const unsigned char *)s + i));
            i += 3;
        } else {
            size_t n = utf8_len(c);
            if (i + n > len)
                n = len - i;
            memcpy(out + o, s + i, n);
            o += n;
            i += n;
        }
        chars++;
    }
    out[o] = '\0';
    return out;
}
