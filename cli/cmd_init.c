/*
 * cmd_init.c - the offline commands, which need no running node:
 * init DIR, restore FILE (on a data directory), cluster-key.
 *
 * Both take the data dir's lock (the one jarvisd holds while it runs) for
 * their whole work, so that they refuse while a node runs there and no
 * node can start in the middle.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "args.h"
#include "backup.h"
#include "batch.h"
#include "client.h"
#include "datadir.h"
#include "keyring.h"
#include "output.h"
#include "store.h"

#define PATH_CAP 4096

/* Makes dir (0700) if missing and takes its lock. */
static int lock_dir(const char *what, const char *dir, int *fd)
{
    char msg[256] = "";
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        jvc_err("%s: cannot create %s: %s", what, dir, strerror(errno));
        return JVC_EXIT_FAIL;
    }
    jv_err e = jv_datadir_lock(dir, fd, msg, sizeof msg);
    if (e == JV_EBUSY) {
        jvc_err("%s: a node is running on %s (%s)", what, dir, msg);
        fprintf(stderr, "hint: stop it first (systemctl stop jarvisd, or "
                        "send it SIGTERM), then try again\n");
        return JVC_EXIT_FAIL;
    }
    if (e != JV_OK) {
        jvc_err("%s: cannot lock %s: %s", what, dir,
                msg[0] ? msg : jv_strerror(e));
        return JVC_EXIT_FAIL;
    }
    return JVC_EXIT_OK;
}

static int run_init(jvc_ctx *ctx, int argc, char **argv)
{
    char *pos[1];
    char msg[256] = "", id[JV_ID_HEX];
    int npos, rc, fd = -1;
    jv_keypair kp;
    jv_datadir_info info;
    jv_store_opts o;
    memset(&kp, 0, sizeof kp);
    memset(&info, 0, sizeof info);
    if ((rc = jvc_parse_args(ctx->cmd, argc, argv, NULL, 0, pos, 1, 1,
                             &npos)) != 0)
        return rc;
    const char *dir = pos[0];
    if ((rc = lock_dir("init", dir, &fd)) != JVC_EXIT_OK)
        return rc;
    jv_store_opts_default(&o);
    o.create = true;
    jv_err e = jv_datadir_prepare(dir, &o, &kp, NULL, &info, msg, sizeof msg);
    if (e != JV_OK) {
        jvc_err("init: cannot prepare %s: %s", dir,
                msg[0] ? msg : jv_strerror(e));
        rc = JVC_EXIT_FAIL;
        goto out;
    }
    jv_id_hex(&kp.pk, id);
    if (ctx->g->json) {
        json_t *j = json_pack(
            "{s:s,s:s,s:b,s:b,s:s?}", "data_dir", dir, "node_id", id,
            "created_identity", info.created_identity, "created_admin_key",
            info.created_admin_key, "admin_key_path",
            info.created_admin_key ? info.admin_key_path : NULL);
        rc = j ? jvc_print_json(j) : jvc_oom();
        json_decref(j);
        goto out;
    }
    printf("data dir   %s\n", dir);
    printf("node id    %s%s\n", id,
           info.created_identity ? " (new)" : " (existing)");
    if (info.created_admin_key)
        printf("admin key  written to %s (mode 0600); store it safely\n",
               info.admin_key_path);
    else
        printf("admin key  made earlier; not shown again\n");
out:
    jv_keypair_wipe(&kp);
    if (fd >= 0)
        jv_datadir_unlock(fd);
    return rc;
}

const jvc_cmd jvc_cmd_init = {
    .group = "init",
    .args = "DIR",
    .summary = "Prepare a data dir (identity, database, admin key) without "
               "starting a node",
    .help = "Creates DIR (mode 0700) if needed, the node's Ed25519 identity\n"
            "(node.key, node.id), its database, and the first admin API key,\n"
            "written once to DIR/admin.key (mode 0600). Running it again on\n"
            "a prepared dir changes nothing. Refuses while a node runs on\n"
            "DIR. Needs no node and no credential.\n",
    .run = run_init,
};

/* The replica id recorded in the database at path ("" if unknown). */
static void db_owner(const char *path, char out[JV_ID_HEX])
{
    jv_store_opts o;
    jv_store *st = NULL;
    jv_id id;
    out[0] = '\0';
    jv_store_opts_default(&o);
    o.readonly = true;
    if (jv_store_open(path, &o, &st, NULL, 0) == JV_OK &&
        jv_store_get_self(st, &id) == JV_OK)
        jv_id_hex(&id, out);
    jv_store_close(st);
}

static int run_restore(jvc_ctx *ctx, int argc, char **argv)
{
    char *pos[1];
    char dir[PATH_CAP], db[PATH_CAP], msg[256] = "";
    char backup_owner[JV_ID_HEX], dir_owner[JV_ID_HEX];
    int npos, rc, fd = -1;
    bool force = false;
    const jvc_opt opts[] = {{"force", 0, NULL, &force}};
    if ((rc = jvc_parse_args(ctx->cmd, argc, argv, opts, 1, pos, 1, 1,
                             &npos)) != 0)
        return rc;
    const char *src = pos[0];
    if (!jvc_data_dir(ctx->g, dir, sizeof dir))
        return JVC_EXIT_USAGE;
    if (jv_datadir_path(dir, JV_DATADIR_DB, db, sizeof db) != JV_OK)
        return jvc_usage_error(ctx->cmd, "data dir path too long");
    struct stat sb;
    if (stat(src, &sb) != 0) {
        jvc_err("restore: cannot read %s: %s", src, strerror(errno));
        return JVC_EXIT_USAGE;
    }
    if ((rc = lock_dir("restore", dir, &fd)) != JVC_EXIT_OK)
        return rc;
    /* A backup of another node would leave a data dir whose key and
     * database disagree: the node would refuse to start. */
    db_owner(src, backup_owner);
    db_owner(db, dir_owner);
    if (!force && backup_owner[0] && dir_owner[0] &&
        strcmp(backup_owner, dir_owner) != 0) {
        jvc_err("restore: %s is a backup of node %.12s..., but %s belongs to "
                "node %.12s...; pass --force to restore it anyway",
                src, backup_owner, dir, dir_owner);
        rc = JVC_EXIT_FAIL;
        goto out;
    }
    jv_err e = jv_store_restore(src, db, msg, sizeof msg);
    if (e != JV_OK) {
        jvc_err("restore: %s: %s; the data dir is unchanged", src,
                msg[0] ? msg : jv_strerror(e));
        rc = JVC_EXIT_FAIL;
        goto out;
    }
    /* A restore that succeeded may still have something to say (keys
     * whose revocation it could not carry). */
    if (msg[0])
        jvc_err("warning: %s", msg);
    if (ctx->g->json) {
        json_t *j = json_pack("{s:s,s:s,s:s}", "data_dir", dir, "database", db,
                              "restored_from", src);
        rc = j ? jvc_print_json(j) : jvc_oom();
        json_decref(j);
    } else {
        printf("restored %s from %s; start the node again\n", db, src);
    }
out:
    if (fd >= 0)
        jv_datadir_unlock(fd);
    return rc;
}

const jvc_cmd jvc_cmd_restore = {
    .group = "restore",
    .args = "FILE [--data-dir DIR] [--force]",
    .summary = "Replace a stopped node's database with a backup",
    .help = "Options:\n"
            "  --data-dir DIR  the data dir to restore into (default:\n"
            "                  $JARVIS_DATA_DIR, else the default data dir)\n"
            "  --force         restore a backup made by another node\n"
            "\n"
            "Offline: refuses while a node runs on the data dir. FILE is\n"
            "checked first (a Jarvis database, integrity, signatures, state\n"
            "equals replay); a bad backup changes nothing. The old database\n"
            "is replaced atomically. A node started on a restored database\n"
            "accepts writes again once it has caught up with every peer.\n",
    .run = run_restore,
};

/* A new cluster key: one line of 64 hex digits, to a new file of mode 0600
 * or to stdout. */
static int run_cluster_key(jvc_ctx *ctx, int argc, char **argv)
{
    const char *out = NULL;
    char *pos[1], hex[2 * JV_KEY_LEN + 1];
    int npos, rc, fd;
    const jvc_opt opts[] = {{"output", 'o', &out, NULL}};
    if ((rc = jvc_parse_args(ctx->cmd, argc, argv, opts, 1, pos, 0, 0,
                             &npos)) != 0)
        return rc;
    if (jv_keyring_generate_hex(hex) != JV_OK) {
        jvc_err("cluster-key: cannot make a random key");
        return JVC_EXIT_FAIL;
    }
    if (!out) {
        printf("%s\n", hex);
        return JVC_EXIT_OK;
    }
    fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        jvc_err("cluster-key: cannot create %s: %s", out, strerror(errno));
        if (errno == EEXIST)
            fprintf(stderr,
                    "hint: to rotate keys, add the new key as a second line "
                    "of the existing file (docs/operations.md)\n");
        return JVC_EXIT_FAIL;
    }
    char text[128];
    int n = snprintf(text, sizeof text,
                     "# Jarvis cluster key: the first line seals, every line "
                     "opens\n%s\n",
                     hex);
    bool ok = write(fd, text, (size_t)n) == n && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok) {
        jvc_err("cluster-key: cannot write %s: %s", out, strerror(errno));
        unlink(out);
        return JVC_EXIT_FAIL;
    }
    printf("wrote a new cluster key to %s (mode 0600); give every node the "
           "same file with --cluster-key-file\n",
           out);
    return JVC_EXIT_OK;
}

const jvc_cmd jvc_cmd_cluster_key = {
    .group = "cluster-key",
    .args = "[-o FILE]",
    .summary = "Make a new cluster key (offline)",
    .help = "  -o, --output FILE  write it to a new file of mode 0600 instead\n"
            "                     of printing it\n"
            "\n"
            "Every node of a cluster gets the same key file\n"
            "(jarvisd --cluster-key-file); peer traffic is encrypted and\n"
            "authenticated with it (XChaCha20-Poly1305).\n",
    .run = run_cluster_key,
};
