/*
 * offline.c - jarvisd's subcommands (offline.h).
 *
 * One table, one entry per subcommand; the options are shared (--data-dir,
 * --json, --force where it applies) and parsed once. Every subcommand takes
 * the data dir's lock for its whole work: it refuses to run while a node
 * (or another subcommand) holds it, and no node can start in the middle.
 */
#include "offline.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <sodium.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup.h"
#include "bseal.h"
#include "datadir.h"
#include "store.h"

typedef struct {
    char dir[PATH_MAX];
    const char *arg;   /* the positional argument, if any */
    const char *shown; /* restore: the backup as named, if arg is its copy */
    bool json, force;
    const char *key_file, *pass_file; /* to open an encrypted backup */
} sub_args;

typedef struct {
    const char *name;
    const char *args;    /* for the usage line */
    const char *summary; /* one or more lines */
    bool creates;        /* makes the data dir (and parents) if missing */
    bool takes_force;    /* and --key, --passphrase-file */
    int npos; /* positionals: 0 none, 1 optional DIR, 2 required FILE */
    int (*run)(const sub_args *a, FILE *out, FILE *err);
} subcmd;

static int run_init(const sub_args *a, FILE *out, FILE *err);
static int run_restore(const sub_args *a, FILE *out, FILE *err);
static int run_restore_any(const sub_args *a, FILE *out, FILE *err);
static int run_admin_key(const sub_args *a, FILE *out, FILE *err);

enum {
    POS_NONE,
    POS_DIR,
    POS_FILE
};

static const subcmd subcmds[] = {
    {"init", "[DIR | --data-dir DIR] [--json]",
     "prepare a data dir without starting a node: creates DIR and its\n"
     "missing parents (mode 0700), the identity, the database and the\n"
     "first admin API key, written once to DIR/admin.key (0600); again\n"
     "on a prepared dir it changes nothing",
     true, false, POS_DIR, run_init},
    {"restore",
     "FILE [--data-dir DIR] [--force] [--json]\n"
     "                [--key KEYFILE | --passphrase-file FILE]",
     "replace a stopped node's database with the backup FILE, checked\n"
     "first (a bad one changes nothing); --force takes a backup made\n"
     "by another node; an encrypted backup is opened with the secret\n"
     "key of jarvisctl backup-key, or the passphrase on the first line\n"
     "of FILE (a wrong key or a damaged file changes nothing)",
     true, true, POS_FILE, run_restore_any},
    {"admin-key", "[--data-dir DIR]",
     "make a new admin API key for a stopped node and write it to\n"
     "DIR/admin.key (0600); for when no admin key works any more",
     false, false, POS_NONE, run_admin_key},
};

#define NSUBCMDS (sizeof(subcmds) / sizeof(subcmds[0]))

static int print_json(json_t *j, FILE *out, FILE *err)
{
    if (!j || json_dumpf(j, out, JSON_INDENT(2)) != 0) {
        json_decref(j);
        fprintf(err, "jarvisd: out of memory\n");
        return 1;
    }
    fputc('\n', out);
    json_decref(j);
    return 0;
}

static int run_init(const sub_args *a, FILE *out, FILE *err)
{
    char msg[512] = "", id[JV_ID_HEX];
    jv_keypair kp;
    jv_datadir_info info;
    jv_store_opts o;
    int rc = 0;
    memset(&kp, 0, sizeof(kp));
    memset(&info, 0, sizeof(info));
    jv_store_opts_default(&o);
    o.create = true;
    jv_err e = jv_datadir_prepare(a->dir, &o, &kp, NULL, NULL, &info, msg,
                                  sizeof(msg));
    if (e) {
        fprintf(err, "jarvisd init: cannot prepare %s: %s\n", a->dir,
                msg[0] ? msg : jv_strerror(e));
        rc = 1;
        goto out;
    }
    jv_id_hex(&kp.pk, id);
    if (a->json) {
        rc = print_json(
            json_pack("{s:s,s:s,s:b,s:b,s:s?}", "data_dir", a->dir, "node_id",
                      id, "created_identity", info.created_identity,
                      "created_admin_key", info.created_admin_key,
                      "admin_key_path",
                      info.created_admin_key ? info.admin_key_path : NULL),
            out, err);
        goto out;
    }
    fprintf(out, "data dir   %s\n", a->dir);
    fprintf(out, "node id    %s%s\n", id,
            info.created_identity ? " (new)" : " (existing)");
    if (info.created_admin_key)
        fprintf(out, "admin key  written to %s (mode 0600); store it safely\n",
                info.admin_key_path);
    else
        fprintf(out, "admin key  made earlier; not shown again\n");
out:
    jv_keypair_wipe(&kp);
    return rc;
}

/* The replica id recorded in the database at path ("" if unknown).
 * A read-only connection to a WAL database makes its -wal and -shm files
 * and cannot remove them when it closes: those it made here are removed
 * (the WAL empty, as it wrote nothing), so that a restore leaves no files
 * next to the backup or in the data dir. */
static void db_owner(const char *path, char out[JV_ID_HEX])
{
    jv_store_opts o;
    jv_store *st = NULL;
    jv_id id;
    char wal[PATH_MAX], shm[PATH_MAX];
    struct stat sb;
    bool ours =
        (size_t)snprintf(wal, sizeof(wal), "%s-wal", path) < sizeof(wal) &&
        (size_t)snprintf(shm, sizeof(shm), "%s-shm", path) < sizeof(shm) &&
        access(wal, F_OK) != 0 && access(shm, F_OK) != 0;
    out[0] = '\0';
    jv_store_opts_default(&o);
    o.readonly = true;
    if (jv_store_open(path, &o, &st, NULL, 0) == JV_OK &&
        jv_store_get_self(st, &id) == JV_OK)
        jv_id_hex(&id, out);
    jv_store_close(st);
    if (ours && stat(wal, &sb) == 0 && sb.st_size == 0) {
        unlink(wal);
        unlink(shm);
    }
}

/* Whether the database at path names hex as one of this node's earlier
 * origins (a backup from before a restore is the node's own). */
static bool db_own_origin(const char *path, const char *hex)
{
    jv_store_opts o;
    jv_store *st = NULL;
    uint8_t own[JV_OWN_ORIGINS_MAX * JV_ID_LEN];
    size_t len = 0;
    bool yes = false;
    char h[JV_ID_HEX];
    jv_store_opts_default(&o);
    o.readonly = true;
    if (jv_store_open(path, &o, &st, NULL, 0) == JV_OK &&
        jv_store_meta_get(st, JV_META_OWN_ORIGINS, own, sizeof(own), &len) ==
            JV_OK)
        for (size_t i = 0; i + JV_ID_LEN <= len && i < sizeof(own);
             i += JV_ID_LEN) {
            jv_id id;
            memcpy(id.b, own + i, JV_ID_LEN);
            jv_id_hex(&id, h);
            yes |= strcmp(h, hex) == 0;
        }
    jv_store_close(st);
    return yes;
}

static int run_restore(const sub_args *a, FILE *out, FILE *err)
{
    char db[PATH_MAX], msg[512] = "";
    char backup_owner[JV_ID_HEX], dir_owner[JV_ID_HEX];
    const char *from = a->shown ? a->shown : a->arg;
    if (jv_datadir_path(a->dir, JV_DATADIR_DB, db, sizeof(db)) != JV_OK) {
        fprintf(err, "jarvisd restore: data dir path too long\n");
        return 2;
    }
    /* A backup of another node would leave a data dir whose key and
     * database disagree: the node would refuse to start. */
    db_owner(a->arg, backup_owner);
    db_owner(db, dir_owner);
    if (!a->force && backup_owner[0] && dir_owner[0] &&
        strcmp(backup_owner, dir_owner) != 0 &&
        !db_own_origin(db, backup_owner)) {
        fprintf(err,
                "jarvisd restore: %s is a backup of node %.12s..., but %s "
                "belongs to node %.12s...; pass --force to restore it "
                "anyway\n",
                from, backup_owner, a->dir, dir_owner);
        return 1;
    }
    jv_err e = jv_datadir_restore(a->dir, a->arg, msg, sizeof(msg));
    if (e) {
        fprintf(err, "jarvisd restore: %s: %s; the data dir is unchanged\n",
                from, msg[0] ? msg : jv_strerror(e));
        return 1;
    }
    /* A restore that succeeded may still have something to say (keys
     * whose revocation it could not carry). */
    if (msg[0])
        fprintf(err, "jarvisd restore: warning: %s\n", msg);
    if (a->json)
        return print_json(json_pack("{s:s,s:s,s:s}", "data_dir", a->dir,
                                    "database", db, "restored_from", from),
                          out, err);
    fprintf(out,
            "restored %s from %s under a new origin (it carries on for the "
            "old one); start the node again\n",
            db, from);
    return 0;
}

static bool sealed(const char *path)
{
    uint8_t head[16];
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(head, 1, sizeof(head), f) : 0;
    if (f)
        fclose(f);
    return jv_bseal_is_sealed(head, n);
}

/* An encrypted backup is opened into a file of the data dir (mode 0600,
 * only once all of it verified), restored like a plain one, and removed
 * whatever happens. */
static int run_restore_any(const sub_args *a, FILE *out, FILE *err)
{
    char opened[PATH_MAX + 32], why[PATH_MAX + 128];
    jv_bseal_key k;
    if (!a->key_file && !a->pass_file) {
        if (!sealed(a->arg))
            return run_restore(a, out, err);
        fprintf(err,
                "jarvisd restore: %s is an encrypted backup: give --key "
                "KEYFILE or --passphrase-file FILE\n",
                a->arg);
        return 2;
    }
    snprintf(opened, sizeof(opened), "%s/restore-opened.db", a->dir);
    unlink(opened); /* left by a restore that was killed: ours (locked) */
    jv_err e =
        jv_bseal_open_key(a->key_file, a->pass_file, &k, why, sizeof(why));
    if (!e)
        e = jv_bseal_open_file(a->arg, opened, &k, why, sizeof(why));
    jv_bseal_key_wipe(&k);
    if (e) {
        fprintf(err, "jarvisd restore: %s; the data dir is unchanged\n", why);
        return 1;
    }
    if (!a->json)
        fprintf(out, "opened the encrypted backup %s\n", a->arg);
    sub_args b = *a;
    b.arg = opened;
    b.shown = a->arg;
    int rc = run_restore(&b, out, err);
    unlink(opened);
    return rc;
}

static int run_admin_key(const sub_args *a, FILE *out, FILE *err)
{
    char path[PATH_MAX], msg[512] = "";
    jv_err e =
        jv_datadir_new_admin_key(a->dir, path, sizeof(path), msg, sizeof(msg));
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

static int usage_error(const subcmd *c, FILE *err, const char *what,
                       const char *arg)
{
    fprintf(err, "jarvisd %s: %s%s%s%s\nusage: jarvisd %s %s\n", c->name, what,
            arg ? " '" : "", arg ? arg : "", arg ? "'" : "", c->name, c->args);
    return 2;
}

/* One option at argv[*i]: 1 taken, 0 not an option of ours, else an exit
 * status + 2 (so that 0 and 1 stay free). */
static int parse_opt(const subcmd *c, int argc, char **argv, int *i,
                     sub_args *a, const char **d, FILE *out, FILE *err)
{
    const char *s = argv[*i];
    if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
        fprintf(out, "Usage:\n");
        usage_one(out, c);
        return 2;
    }
    if (!strcmp(s, "--json")) {
        a->json = true;
    } else if (c->takes_force && !strcmp(s, "--force")) {
        a->force = true;
    } else if (c->takes_force &&
               (!strcmp(s, "--key") || !strcmp(s, "--passphrase-file"))) {
        if (*i + 1 >= argc || !*argv[*i + 1])
            return 2 + usage_error(c, err, "a file is needed after", s);
        if (a->key_file || a->pass_file)
            return 2 + usage_error(c, err,
                                   "give --key or --passphrase-file, not both",
                                   NULL);
        *(s[2] == 'k' ? &a->key_file : &a->pass_file) = argv[++*i];
    } else if (!strcmp(s, "--data-dir")) {
        if (*i + 1 >= argc)
            return 2 + usage_error(c, err, "--data-dir needs a value", NULL);
        *d = argv[++*i];
    } else if (!strncmp(s, "--data-dir=", 11)) {
        *d = s + 11;
    } else if (s[0] == '-' && s[1]) {
        return 2 + usage_error(c, err, "unknown option", s);
    } else {
        return 0;
    }
    return 1;
}

/* Fills a from argv. Returns -1 to go on, else an exit status. */
static int parse(const subcmd *c, int argc, char **argv, sub_args *a, FILE *out,
                 FILE *err)
{
    const char *d = NULL, *pos = NULL;
    for (int i = 2; i < argc; i++) {
        int r = parse_opt(c, argc, argv, &i, a, &d, out, err);
        if (r >= 2)
            return r - 2;
        if (r == 1)
            continue;
        if (c->npos == POS_NONE || pos)
            return usage_error(c, err, "unexpected argument", argv[i]);
        pos = argv[i];
    }
    if (c->npos == POS_FILE) {
        if (!pos || !*pos)
            return usage_error(c, err, "which backup file?", NULL);
        a->arg = pos;
    } else if (pos) {
        if (d)
            return usage_error(c, err, "give DIR or --data-dir, not both",
                               NULL);
        d = pos;
    }
    if (d && !*d)
        return usage_error(c, err, "the data dir is empty", NULL);
    if (d ? (size_t)snprintf(a->dir, sizeof(a->dir), "%s", d) >= sizeof(a->dir)
          : jv_datadir_default(a->dir, sizeof(a->dir)) != JV_OK) {
        fprintf(err, "jarvisd %s: data dir path too long\n", c->name);
        return 2;
    }
    return -1;
}

/* mkdir -p dir: every directory made here gets mode 0700 (the parents
 * too: a data dir's parent made for it is no one else's business). */
static int make_dirs(const char *name, const char *dir, FILE *err)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s", dir);
    for (char *p = tmp + 1;; p++) {
        if (*p != '/' && *p)
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST) {
            fprintf(err, "jarvisd %s: cannot create %s: %s\n", name, tmp,
                    strerror(errno));
            return 1;
        }
        *p = c;
        if (!c)
            break;
    }
    return 0;
}

/* Checks (or, for init and restore, makes) the data dir and the file to
 * restore. Returns -1 to go on, else an exit status. */
static int check_paths(const subcmd *c, const sub_args *a, FILE *err)
{
    struct stat sb;
    if (a->arg && stat(a->arg, &sb) != 0) {
        fprintf(err, "jarvisd %s: cannot read %s: %s\n", c->name, a->arg,
                strerror(errno));
        return 2;
    }
    if (c->creates && make_dirs(c->name, a->dir, err) != 0)
        return 1;
    if (stat(a->dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        fprintf(err, "jarvisd %s: no data dir at %s%s\n", c->name, a->dir,
                stat(a->dir, &sb) == 0 ? " (not a directory)" : "");
        return 1;
    }
    return -1;
}

int jv_offline_main(int argc, char **argv, FILE *out, FILE *err)
{
    const subcmd *c = NULL;
    char msg[512] = "";
    sub_args a;
    int fd = -1, rc;
    if (argc < 2)
        return -1;
    for (size_t i = 0; i < NSUBCMDS && !c; i++)
        if (!strcmp(argv[1], subcmds[i].name))
            c = &subcmds[i];
    if (!c)
        return -1;
    memset(&a, 0, sizeof(a));
    if ((rc = parse(c, argc, argv, &a, out, err)) >= 0)
        return rc;
    if ((rc = check_paths(c, &a, err)) >= 0)
        return rc;
    if (sodium_init() < 0) {
        fprintf(err, "jarvisd %s: libsodium failed to initialise\n", c->name);
        return 1;
    }
    /* The lock also keeps a node from starting while we work. */
    jv_err e = jv_datadir_lock(a.dir, &fd, msg, sizeof(msg));
    if (e == JV_EBUSY) {
        fprintf(err,
                "jarvisd %s: a node is running on %s (%s); stop it first "
                "(systemctl stop jarvisd, or send it SIGTERM): this works "
                "on a stopped node only\n",
                c->name, a.dir, msg);
        return 1;
    }
    if (e) {
        fprintf(err, "jarvisd %s: cannot lock %s: %s\n", c->name, a.dir, msg);
        return 1;
    }
    rc = c->run(&a, out, err);
    jv_datadir_unlock(fd);
    return rc;
}
