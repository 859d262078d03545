/*
 * datadir.h - a node's data directory.
 *
 *   <dir>/node.key      Ed25519 secret key, 64 raw bytes, mode 0600
 *   <dir>/node.id       the public key (replica id) in hex, for humans
 *   <dir>/origin.key    after a restore: the Ed25519 secret key this node
 *                       signs its batches with (its origin), mode 0600;
 *                       without it the origin is node.key's
 *   <dir>/jarvis.db     the SQLite database (+ -wal, -shm)
 *   <dir>/admin.key     the first admin API key, mode 0600 (created once;
 *                       the operator may delete it after storing it)
 *   <dir>/jarvisd.lock  held (flock) by the running node; holds its pid
 *   <dir>/api.addr      the API address the running node bound
 *   <dir>/backups/      where POST /v1/backup writes (--backup-dir)
 *
 * Shared by jarvisd (first start) and `jarvisd init`. Blocking file I/O;
 * call before the loop starts or off the loop.
 */
#ifndef JV_DATADIR_H
#define JV_DATADIR_H

#include <stdbool.h>

#include "batch.h"
#include "store.h"

#define JV_DATADIR_DB       "jarvis.db"
#define JV_DATADIR_KEY      "node.key"
#define JV_DATADIR_ID       "node.id"
#define JV_DATADIR_ORIGIN   "origin.key"
#define JV_DATADIR_ADMINKEY "admin.key"
#define JV_DATADIR_LOCK     "jarvisd.lock"
#define JV_DATADIR_APIADDR  "api.addr"

typedef struct {
    bool created_identity;  /* node.key was made now */
    bool created_admin_key; /* admin.key was made now */
    char admin_key_path[4096];
} jv_datadir_info;

/* The default data directory: $JARVIS_DATA_DIR, else /var/lib/jarvis for
 * root, else $XDG_DATA_HOME/jarvis or ~/.local/share/jarvis. Writes a
 * NUL-terminated path into out. */
jv_err jv_datadir_default(char *out, size_t outlen);

/* Joins dir and name into out. JV_ETOOBIG if it does not fit. */
jv_err jv_datadir_path(const char *dir, const char *name, char *out,
                       size_t outlen);

/* Makes dir ready: creates it (mode 0700) when missing, the identity when
 * missing, the database (migrating it if older) bound to that identity,
 * and, the first time, an admin API key stored hashed in the database
 * with its key.create audit entry and written once to admin.key (0600).
 * Later calls change nothing and report nothing created. kp receives the
 * node's key pair (wipe it with jv_keypair_wipe), origin (if not NULL) the
 * key its batches are signed with (jv_datadir_origin); st, if not NULL,
 * receives the open store (writer connection, opts as given). msg gets a
 * one-line reason on failure (a key file that is unreadable, damaged or
 * too open: JV_EPERM / JV_ECORRUPT; a database refused by jv_store_open). */
jv_err jv_datadir_prepare(const char *dir, const jv_store_opts *opts,
                          jv_keypair *kp, jv_keypair *origin, jv_store **st,
                          jv_datadir_info *info, char *msg, size_t msglen);

/* The key this node signs its batches with: origin.key, else the node's
 * own (node). A pending origin.key.new (a restore that stopped before its
 * end) is kept if db_self, the database's recorded origin (NULL if
 * unknown), is its, else removed. */
jv_err jv_datadir_origin(const char *dir, const jv_id *db_self,
                         const jv_keypair *node, jv_keypair *out, char *msg,
                         size_t msglen);

/* `jarvisd restore`: replaces the database with the backup src (checked
 * first, storage/backup.h) under a new origin. The node never signs under
 * its current origin again: it may have signed batches after the backup
 * that only its peers hold now. Instead a new origin key is made
 * (origin.key), and its first batch is a succession signed by the current
 * origin's key (batch.h), which peers accept because they trust that one:
 * the node writes at once, whatever its peers' state, and its old
 * origin's later batches come back to it as any origin's do. Needs
 * node.key (JV_ENOTFOUND). A failure changes nothing. */
jv_err jv_datadir_restore(const char *dir, const char *src, char *msg,
                          size_t msglen);

/* Offline recovery of admin access (`jarvisd admin-key`): makes a new
 * admin API key named "admin-<id>", stored hashed with its key.create
 * audit entry, and writes it to <dir>/admin.key (0600, replacing that
 * file); path receives that file's path. The caller holds the lock (the
 * node is stopped). JV_ENOTFOUND if dir has no identity. */
jv_err jv_datadir_new_admin_key(const char *dir, char *path, size_t pathlen,
                                char *msg, size_t msglen);

/* The directory backups go into: `configured`, else <dir>/backups;
 * created (mode 0700) if missing, its parent must exist. out receives it
 * resolved (realpath: no symlink, no ..). */
jv_err jv_datadir_backup_dir(const char *dir, const char *configured, char *out,
                             size_t outlen, char *msg, size_t msglen);

/* Takes the data dir's lock (non-blocking flock) and writes our pid in it.
 * JV_EBUSY when another process holds it; msg names that pid. *fd keeps
 * the lock until jv_datadir_unlock(). */
jv_err jv_datadir_lock(const char *dir, int *fd, char *msg, size_t msglen);
void jv_datadir_unlock(int fd);
/* True if a process holds the lock (pid returned when known). */
bool jv_datadir_locked(const char *dir, long *pid);

/* A new API key: the text shown once ("jvk_<id>_<secret>"), its public id
 * ("k_<12 hex>") and the hash to store. */
typedef struct {
    char text[96];
    char id[24];
    uint8_t hash[32];
} jv_api_secret;

jv_err jv_api_secret_new(const char *kind, jv_api_secret *out);
/* Splits a presented credential "jv?_<id>_<secret>" into its id and the
 * hash of its secret. JV_EINVAL if it is not of that form. kind is 'k'
 * (API key) or 's' (session token). */
jv_err jv_api_secret_parse(jv_str text, char *kind, char id[24],
                           uint8_t hash[32]);

#endif
