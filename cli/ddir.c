#include "ddir.h"

#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <unistd.h>

jv_err jvc_ddir_default(char *out, size_t outlen)
{
    const char *env = getenv("JARVIS_DATA_DIR");
    int n;
    if (env && *env) {
        n = snprintf(out, outlen, "%s", env);
    } else if (geteuid() == 0) {
        n = snprintf(out, outlen, "/var/lib/jarvis");
    } else if ((env = getenv("XDG_DATA_HOME")) && *env) {
        n = snprintf(out, outlen, "%s/jarvis", env);
    } else {
        const char *home = getenv("HOME");
        if (!home || !*home) {
            struct passwd *pw = getpwuid(getuid());
            home = pw ? pw->pw_dir : "/tmp";
        }
        n = snprintf(out, outlen, "%s/.local/share/jarvis", home);
    }
    return n < 0 || (size_t)n >= outlen ? JV_ETOOBIG : JV_OK;
}

jv_err jvc_ddir_path(const char *dir, const char *name, char *out,
                     size_t outlen)
{
    int n = snprintf(out, outlen, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= outlen ? JV_ETOOBIG : JV_OK;
}

bool jvc_ddir_locked(const char *dir)
{
    char path[4096];
    bool locked = false;
    if (jvc_ddir_path(dir, JVC_DDIR_LOCK, path, sizeof path) != JV_OK)
        return false;
    int f = open(path, O_RDONLY | O_CLOEXEC);
    if (f < 0)
        return false;
    /* A shared lock fails while the holder has its exclusive one. */
    if (flock(f, LOCK_SH | LOCK_NB) != 0)
        locked = true;
    else
        flock(f, LOCK_UN);
    close(f);
    return locked;
}
