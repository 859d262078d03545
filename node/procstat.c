#include "procstat.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* /proc/stat's "btime": when the machine booted, in epoch seconds. */
static jv_err boot_time(uint64_t *out)
{
    char line[256];
    jv_err err = JV_EIO;
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return JV_EIO;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "btime %lu", (unsigned long *)out) == 1) {
            err = JV_OK;
            break;
        }
    fclose(f);
    return err;
}

static uint64_t count_fds(void)
{
    uint64_t n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    if (!d)
        return 0;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n > 0 ? n - 1 : 0; /* the directory's own descriptor */
}

/* Fields 14-15 (utime, stime), 22 (starttime), 23 (vsize), 24 (rss) of
 * /proc/self/stat. The command name (field 2) may hold spaces and
 * parentheses, so parsing starts after its last ')'. */
static jv_err read_stat(jv_procstat *out)
{
    char buf[1024];
    unsigned long utime, stime, vsize;
    unsigned long long start;
    long rss;
    size_t len;
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f)
        return JV_EIO;
    len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    const char *p = strrchr(buf, ')');
    if (!p ||
        sscanf(p + 1,
               " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d"
               " %*d %*d %*d %*d %llu %lu %ld",
               &utime, &stime, &start, &vsize, &rss) != 5)
        return JV_EIO;
    long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    uint64_t boot;
    if (tick <= 0 || page <= 0 || boot_time(&boot))
        return JV_EIO;
    out->cpu_seconds = (double)(utime + stime) / (double)tick;
    out->start_time = (double)boot + (double)start / (double)tick;
    out->virtual_bytes = vsize;
    out->resident_bytes = (uint64_t)(rss > 0 ? rss : 0) * (uint64_t)page;
    return JV_OK;
}

jv_err jv_procstat_get(jv_procstat *out)
{
    struct rlimit rl;
    memset(out, 0, sizeof(*out));
    if (read_stat(out)) {
        memset(out, 0, sizeof(*out));
        return JV_EIO;
    }
    out->open_fds = count_fds();
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        out->max_fds = rl.rlim_cur;
    return JV_OK;
}
