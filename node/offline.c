/*
 * offline.c - jarvisd's subcommands (offline.h).
 *
 * One table, one entry per subcommand; each parses its own options. They
 * share the data dir lookup (--data-dir, else the daemon's default) and
 * the lock: a subcommand refuses to run while a node holds it.
 */
#include "offline.h"

#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "datadir.h"

typedef struct {
    const char *name;
    const char *args;    /* for the usage line */
    const char *summary; /* one line */
    int (*run)(const char *dir, FILE *out, FILE *err);
} subcmd;

static int run_admin_key(const char *dir, FILE *out, FILE *err);

static const subcmd subcmds[] = {
    {"admin-key", "[--data-dir DIR]",
     "make a new admin API key for a stopped node and write it to\n"
     "DIR/admin.key (0600); for when no admin key works any more",
     run_admin_key},
};

#define NSUBCMDS (sizeof(subcmds) / sizeof(subcmds[0]))

static int run_admin_key(const char *dir, FILE *out, FILE *err)
{
    char path[PATH_MAX], msg[512] = "";
    jv_err e =
        jv_datadir_new_admin_key(dir, path, sizeof(path), msg, sizeof(msg));
    if (e) {
        fprintf(err, "jarvisd admin-key: %s\n", msg[0] ? msg : jv_strerror(e));
        return 1;
    }
    fprintf(out,
            "admin key  written to %s (mode 0600); store it safely\n"
            "           the node's other keys are unchanged: once it runs, "
            "revoke those\n           you no longer trust (jarvisctl keys "
            "ls, keys revoke)\n",
            path);
    return 0;
}

static void usage_one(FILE *f, const subcmd *c)
{
    fprintf(f, "  jarvisd %s %s\n", c->name, c->args);
    fprintf(f, "      ");
    for (const char *p = c->summary; *p; p++) {
        fputc(*p, f);
        if (*p == '\n')
            fprintf(f, "      ");
    }
    fputc('\n', f);
}

void jv_offline_usage(FILE *f)
{
    fprintf(f, "\nSubcommands (on a stopped node's data dir):\n");
    for (size_t i = 0; i < NSUBCMDS; i++)
        usage_one(f, &subcmds[i]);
}

/* --data-dir DIR / --data-dir=DIR / -h; dir gets the data dir. Returns
 * -1 to go on, else an exit status. */
static int parse(const subcmd *c, int argc, char **argv, char *dir,
                 size_t dirlen, FILE *out, FILE *err)
{
    const char *d = NULL;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fprintf(out, "Usage:\n");
            usage_one(out, c);
            return 0;
        }
        if (!strcmp(argv[i], "--data-dir") && i + 1 < argc) {
            d = argv[++i];
        } else if (!strncmp(argv[i], "--data-dir=", 11)) {
            d = argv[i] + 11;
        } else {
            fprintf(err,
                    "jarvisd %s: unexpected argument '%s'\nusage: "
                    "jarvisd %s %s\n",
                    c->name, argv[i], c->name, c->args);
            return 2;
        }
    }
    if (d && !*d) {
        fprintf(err, "jarvisd %s: --data-dir is empty\n", c->name);
        return 2;
    }
    if (d ? (size_t)snprintf(dir, dirlen, "%s", d) >= dirlen
          : jv_datadir_default(dir, dirlen) != JV_OK) {
        fprintf(err, "jarvisd %s: data dir path too long\n", c->name);
        return 2;
    }
    return -1;
}

int jv_offline_main(int argc, char **argv, FILE *out, FILE *err)
{
    const subcmd *c = NULL;
    char dir[PATH_MAX], msg[512] = "";
    int fd = -1, rc;
    if (argc < 2)
        return -1;
    for (size_t i = 0; i < NSUBCMDS && !c; i++)
        if (!strcmp(argv[1], subcmds[i].name))
            c = &subcmds[i];
    if (!c)
        return -1;
    if ((rc = parse(c, argc, argv, dir, sizeof(dir), out, err)) >= 0)
        return rc;
    /* Subcommands work on an existing data dir: taking the lock must not
     * create one. */
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        fprintf(err, "jarvisd %s: no data dir at %s\n", c->name, dir);
        return 1;
    }
    /* The lock also keeps a node from starting while we work. */
    jv_err e = jv_datadir_lock(dir, &fd, msg, sizeof(msg));
    if (e == JV_EBUSY) {
        fprintf(err,
                "jarvisd %s: %s; stop it first (this works on a stopped "
                "node only)\n",
                c->name, msg);
        return 1;
    }
    if (e) {
        fprintf(err, "jarvisd %s: %s\n", c->name, msg);
        return 1;
    }
    rc = c->run(dir, out, err);
    jv_datadir_unlock(fd);
    return rc;
}
