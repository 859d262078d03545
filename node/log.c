#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

#include "timefmt.h"

static _Atomic int current_level = JV_LOG_INFO;

void jv_log_set_level(jv_log_level level)
{
    atomic_store(&current_level, (int)level);
}

jv_log_level jv_log_get_level(void)
{
    return (jv_log_level)atomic_load(&current_level);
}

jv_err jv_log_parse_level(const char *s, jv_log_level *out)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, names[i]) == 0) {
            *out = (jv_log_level)i;
            return JV_OK;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = JV_LOG_WARN;
        return JV_OK;
    }
    return JV_EINVAL;
}

void jv_log(jv_log_level level, const char *component, const char *fmt, ...)
{
    static const char *tags[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};
    if ((int)level < atomic_load(&current_level))
        return;
    char line[2048];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    jv_rfc3339((uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000, line,
               sizeof(line));
    size_t n = strlen(line);
    int k = snprintf(line + n, sizeof(line) - n, " %s %s: ", tags[level],
                     component);
    if (k > 0)
        n += (size_t)k;
    size_t start = n;
    va_list ap;
    va_start(ap, fmt);
    k = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    if (k > 0)
        n +=
            (size_t)k < sizeof(line) - n - 1 ? (size_t)k : sizeof(line) - n - 2;
    for (size_t i = start; i < n; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}
