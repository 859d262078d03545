#include "datadir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "apply.h"
#include "backup.h"
#include "hlc.h"
#include "local.h"
#include "query.h"

#define ADMIN_META "admin_key_created"

static void set_msg(char *msg, size_t msglen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_msg(char *msg, size_t msglen, const char *fmt, ...)
{
    va_list ap;
    if (!msg || !msglen)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
}

static uint64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

jv_err jv_datadir_default(char *out, size_t outlen)
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

jv_err jv_datadir_path(const char *dir, const char *name, char *out,
                       size_t outlen)
{
    int n = snprintf(out, outlen, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= outlen ? JV_ETOOBIG : JV_OK;
}

/* mkdir -p, the last component with mode 0700. */
static jv_err make_dirs(const char *dir)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s", dir) >= (int)sizeof(tmp))
        return JV_ETOOBIG;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return JV_EIO;
        *p = '/';
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
        return JV_EIO;
    struct stat sb;
    if (stat(tmp, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return JV_EIO;
    return JV_OK;
}

/* Writes data to path through path.tmp + fsync + rename, mode 0600. */
static jv_err write_private(const char *path, const void *data, size_t len)
{
    char tmp[PATH_MAX];
    jv_err err = JV_EIO;
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return JV_ETOOBIG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return JV_EIO;
    if (fchmod(fd, 0600) != 0 || write(fd, data, len) != (ssize_t)len ||
        fsync(fd) != 0)
        goto out;
    if (close(fd) != 0) {
        fd = -1;
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0)
        goto out;
    err = JV_OK;
out:
    if (fd >= 0)
        close(fd);
    if (err)
        unlink(tmp);
    return err;
}

static jv_err read_identity(const char *path, jv_keypair *kp, char *msg,
                            size_t msglen)
{
    uint8_t sk[64];
    struct stat sb;
    jv_err err = JV_EIO;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        set_msg(msg, msglen, "cannot read %s: %s", path, strerror(errno));
        return errno == EACCES ? JV_EPERM : JV_EIO;
    }
    if (fstat(fd, &sb) != 0)
        goto out;
    if (sb.st_mode & 077) {
        set_msg(msg, msglen, "%s is readable by other users; run: chmod 600 %s",
                path, path);
        err = JV_EPERM;
        goto out;
    }
    if (sb.st_size != 64 || read(fd, sk, 64) != 64) {
        set_msg(msg, msglen, "%s is damaged: expected a 64-byte Ed25519 key",
                path);
        err = JV_ECORRUPT;
        goto out;
    }
    if (jv_keypair_from_secret(kp, sk) != JV_OK) {
        set_msg(msg, msglen, "%s is damaged: its public half does not match",
                path);
        err = JV_ECORRUPT;
        goto out;
    }
    err = JV_OK;
out:
    sodium_memzero(sk, sizeof(sk));
    close(fd);
    return err;
}

static jv_err create_identity(const char *dir, const char *keypath,
                              jv_keypair *kp, char *msg, size_t msglen)
{
    char idpath[PATH_MAX], hex[JV_ID_HEX + 1];
    jv_err err = jv_keypair_generate(kp);
    if (err)
        return err;
    if ((err = write_private(keypath, kp->sk, sizeof(kp->sk)))) {
        set_msg(msg, msglen, "cannot write %s: %s", keypath, strerror(errno));
        jv_keypair_wipe(kp);
        return err;
    }
    jv_id_hex(&kp->pk, hex);
    hex[JV_ID_HEX - 1] = '\n';
    hex[JV_ID_HEX] = '\0';
    if (jv_datadir_path(dir, JV_DATADIR_ID, idpath, sizeof(idpath)) == JV_OK)
        write_private(idpath, hex, JV_ID_HEX);
    return JV_OK;
}

/* The admin key's row, its audit entry and the marker that it exists commit
 * together: a crash leaves either all or none, and the next start then
 * makes a new key (overwriting a stale admin.key file). */
typedef struct {
    const jv_api_secret *secret;
    const char *name;
    uint64_t now_ms;
} admin_ctx;

static jv_err insert_admin(jv_store *st, void *arg)
{
    admin_ctx *a = arg;
    jv_key_row k = {
        .id = jv_str_c(a->secret->id),
        .name = jv_str_c(a->name),
        .role = jv_str_c("admin"),
        .hash = a->secret->hash,
        .created_ms = a->now_ms,
    };
    jv_err err = jv_store_key_insert(st, &k);
    if (err)
        return err;
    return jv_store_meta_set(st, ADMIN_META, "1", 1);
}

/* name NULL: "admin" (the first key); else name + "-" + the key's id.
 * min_hlc: the greatest stamp already in the log (the batch is stamped
 * above it). */
static jv_err create_admin_key(jv_store *st, const jv_keypair *kp,
                               const char *path, const char *name,
                               const char *detail, uint64_t min_hlc, char *msg,
                               size_t msglen)
{
    jv_api_secret secret;
    char kname[72];
    jv_err err = jv_api_secret_new("k", &secret);
    if (err)
        return err;
    if (name)
        snprintf(kname, sizeof(kname), "%s-%s", name, secret.id);
    else
        snprintf(kname, sizeof(kname), "admin");
    char line[sizeof(secret.text) + 1];
    int n = snprintf(line, sizeof(line), "%s\n", secret.text);
    if ((err = write_private(path, line, (size_t)n))) {
        set_msg(msg, msglen, "cannot write %s: %s", path, strerror(errno));
        goto out;
    }

    uint64_t now = wall_ms();
    jv_hlc clock;
    uint64_t stamp;
    jv_hlc_init(&clock, 0);
    jv_hlc_seed(&clock, min_hlc);
    if ((err = jv_hlc_now(&clock, now, &stamp)))
        goto out;
    admin_ctx ctx = {&secret, kname, now};
    char target[64];
    snprintf(target, sizeof(target), "key/%s", secret.id);
    jv_intent audit = {.op = {.kind = JV_OP_AUDIT}};
    audit.op.audit.time_ms = now;
    audit.op.audit.actor = jv_str_c("jarvisd");
    audit.op.audit.action = jv_str_c("key.create");
    audit.op.audit.target = jv_str_c(target);
    audit.op.audit.detail = jv_str_c(detail);
    jv_write_group g = {
        .intents = &audit, .n = 1, .local = insert_admin, .local_arg = &ctx};
    err = jv_store_commit_local(st, kp, stamp, &g, 1, NULL);
    if (err == JV_OK)
        err = g.result;
    if (err)
        set_msg(msg, msglen, "cannot record the admin key: %s",
                jv_store_errmsg(st));
out:
    sodium_memzero(&secret, sizeof(secret));
    sodium_memzero(line, sizeof(line));
    return err;
}

static jv_err count_peer(void *arg, const jv_peer_row *p)
{
    (void)p;
    (*(size_t *)arg)++;
    return JV_OK;
}

/* A database restored by an earlier version (the mark "1") signs under
 * its old origin: it must not before it has caught up with its peers,
 * which this version no longer waits for. Without peers it wrote at once
 * already: the mark goes. */
static jv_err legacy_restored(jv_store *st, const char *dbpath, char *msg,
                              size_t msglen)
{
    uint8_t flag[4];
    size_t flaglen = 0, npeers = 0;
    jv_err err;
    if (jv_store_meta_get(st, JV_META_RESTORED, flag, sizeof(flag), &flaglen) !=
            JV_OK ||
        flaglen != 1)
        return JV_OK;
    if ((err = jv_store_peer_list(st, count_peer, &npeers)))
        return err;
    if (npeers == 0)
        return jv_store_meta_set(st, JV_META_RESTORED, "", 0);
    set_msg(msg, msglen,
            "%s was restored by an earlier version of jarvisd and has not "
            "caught up with its peers yet: run that version until `jarvisctl "
            "health` no longer says so, or restore the backup again with "
            "this one (jarvisd restore)",
            dbpath);
    return JV_ESTATE;
}

jv_err jv_datadir_prepare(const char *dir, const jv_store_opts *opts,
                          jv_keypair *kp, jv_keypair *origin, jv_store **stp,
                          jv_datadir_info *info, char *msg, size_t msglen)
{
    char keypath[PATH_MAX], dbpath[PATH_MAX];
    jv_keypair org;
    jv_id self;
    jv_store *st = NULL;
    jv_store_opts o;
    jv_datadir_info local_info;
    jv_err err;
    uint8_t flag[4];
    size_t flaglen;

    if (!info)
        info = &local_info;
    memset(info, 0, sizeof(*info));
    if (sodium_init() < 0)
        return JV_ESTATE;
    if ((err =
             jv_datadir_path(dir, JV_DATADIR_KEY, keypath, sizeof(keypath))) ||
        (err = jv_datadir_path(dir, JV_DATADIR_DB, dbpath, sizeof(dbpath))) ||
        (err = jv_datadir_path(dir, JV_DATADIR_ADMINKEY, info->admin_key_path,
                               sizeof(info->admin_key_path)))) {
        set_msg(msg, msglen, "data dir path too long: %s", dir);
        return err;
    }
    if ((err = make_dirs(dir))) {
        set_msg(msg, msglen, "cannot create data dir %s: %s", dir,
                strerror(errno));
        return err;
    }
    if (access(keypath, F_OK) == 0) {
        if ((err = read_identity(keypath, kp, msg, msglen)))
            return err;
    } else {
        if ((err = create_identity(dir, keypath, kp, msg, msglen)))
            return err;
        info->created_identity = true;
    }

    if (opts)
        o = *opts;
    else
        jv_store_opts_default(&o);
    o.create = true;
    o.readonly = false;
    /* SQLite would create the file 0644 minus the umask, and its WAL and
     * shared-memory files take the database's mode: made here first, they
     * are all 0600 whatever the umask of the process (jarvisd init). An
     * empty file is a new database to SQLite. */
    int dbfd = open(dbpath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (dbfd >= 0)
        close(dbfd);
    memset(&org, 0, sizeof(org));
    if ((err = jv_store_open(dbpath, &o, &st, msg, msglen)))
        goto fail;
    /* The origin this node signs its batches under: its identity's, or
     * a newer one since a restore. */
    if ((err = jv_datadir_origin(
             dir, jv_store_get_self(st, &self) == JV_OK ? &self : NULL, kp,
             &org, msg, msglen)))
        goto fail;
    if ((err = legacy_restored(st, dbpath, msg, msglen)))
        goto fail;
    if ((err = jv_store_set_self(st, &org.pk))) {
        set_msg(msg, msglen,
                "%s belongs to another node than %s (identity mismatch)",
                dbpath, keypath);
        goto fail;
    }
    err = jv_store_meta_get(st, ADMIN_META, flag, sizeof(flag), &flaglen);
    if (err == JV_ENOTFOUND) {
        if ((err = create_admin_key(st, &org, info->admin_key_path, NULL,
                                    "admin key made at first start (role "
                                    "admin)",
                                    0, msg, msglen)))
            goto fail;
        info->created_admin_key = true;
    } else if (err) {
        set_msg(msg, msglen, "cannot read %s: %s", dbpath, jv_store_errmsg(st));
        goto fail;
    }
    if (stp)
        *stp = st;
    else
        jv_store_close(st);
    if (origin)
        *origin = org;
    jv_keypair_wipe(&org);
    return JV_OK;
fail:
    jv_store_close(st);
    jv_keypair_wipe(kp);
    jv_keypair_wipe(&org);
    return err;
}

jv_err jv_datadir_new_admin_key(const char *dir, char *path, size_t pathlen,
                                char *msg, size_t msglen)
{
    char keypath[PATH_MAX];
    jv_keypair kp, org;
    jv_store *st = NULL;
    jv_datadir_info info;
    jv_store_stats stats;
    jv_err err;

    if (jv_datadir_path(dir, JV_DATADIR_KEY, keypath, sizeof(keypath)) ||
        jv_datadir_path(dir, JV_DATADIR_ADMINKEY, path, pathlen)) {
        set_msg(msg, msglen, "data dir path too long: %s", dir);
        return JV_ETOOBIG;
    }
    /* Recovery, not creation: a missing identity means a wrong path. */
    if (access(keypath, F_OK) != 0) {
        set_msg(msg, msglen, "%s is not a Jarvis data dir (no %s)", dir,
                JV_DATADIR_KEY);
        return JV_ENOTFOUND;
    }
    memset(&org, 0, sizeof(org));
    if ((err =
             jv_datadir_prepare(dir, NULL, &kp, &org, &st, &info, msg, msglen)))
        return err;
    if (info.created_admin_key)
        goto out; /* its first key was never made: that one is new */
    if ((err = jv_store_stats_get(st, &stats))) {
        set_msg(msg, msglen, "cannot read %s: %s", dir, jv_store_errmsg(st));
        goto out;
    }
    err = create_admin_key(st, &org, path, "admin",
                           "admin key made offline by jarvisd admin-key "
                           "(role admin)",
                           stats.max_hlc, msg, msglen);
out:
    jv_store_close(st);
    jv_keypair_wipe(&kp);
    jv_keypair_wipe(&org);
    return err;
}

jv_err jv_datadir_backup_dir(const char *dir, const char *configured, char *out,
                             size_t outlen, char *msg, size_t msglen)
{
    char path[PATH_MAX], real[PATH_MAX];
    struct stat sb;
    if (configured && *configured
            ? (size_t)snprintf(path, sizeof(path), "%s", configured) >=
                  sizeof(path)
            : jv_datadir_path(dir, "backups", path, sizeof(path)) != JV_OK) {
        set_msg(msg, msglen, "backup dir path too long");
        return JV_ETOOBIG;
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        set_msg(msg, msglen, "cannot create backup dir %s: %s", path,
                strerror(errno));
        return JV_EIO;
    }
    if (!realpath(path, real) || stat(real, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        set_msg(msg, msglen, "backup dir %s is not a directory", path);
        return JV_EINVAL;
    }
    if ((size_t)snprintf(out, outlen, "%s", real) >= outlen) {
        set_msg(msg, msglen, "backup dir path too long");
        return JV_ETOOBIG;
    }
    return JV_OK;
}

jv_err jv_datadir_lock(const char *dir, int *fd, char *msg, size_t msglen)
{
    char path[PATH_MAX], pid[32];
    if (jv_datadir_path(dir, JV_DATADIR_LOCK, path, sizeof(path)))
        return JV_ETOOBIG;
    if (make_dirs(dir) != JV_OK) {
        set_msg(msg, msglen, "cannot create data dir %s: %s", dir,
                strerror(errno));
        return JV_EIO;
    }
    int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (f < 0) {
        set_msg(msg, msglen, "cannot open %s: %s", path, strerror(errno));
        return JV_EIO;
    }
    if (flock(f, LOCK_EX | LOCK_NB) != 0) {
        ssize_t n = pread(f, pid, sizeof(pid) - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        set_msg(msg, msglen,
                "another jarvisd (pid %s) is running on data dir %s", pid, dir);
        close(f);
        return JV_EBUSY;
    }
    int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(f, 0) != 0 || pwrite(f, pid, (size_t)n, 0) != n) {
        set_msg(msg, msglen, "cannot write %s: %s", path, strerror(errno));
        close(f);
        return JV_EIO;
    }
    *fd = f;
    return JV_OK;
}

void jv_datadir_unlock(int fd)
{
    if (fd < 0)
        return;
    if (ftruncate(fd, 0) != 0) {
        /* The lock goes with the descriptor; a stale pid is harmless. */
    }
    flock(fd, LOCK_UN);
    close(fd);
}

bool jv_datadir_locked(const char *dir, long *pid)
{
    char path[PATH_MAX], buf[32];
    bool locked = false;
    if (jv_datadir_path(dir, JV_DATADIR_LOCK, path, sizeof(path)))
        return false;
    int f = open(path, O_RDONLY | O_CLOEXEC);
    if (f < 0)
        return false;
    if (flock(f, LOCK_SH | LOCK_NB) != 0) {
        locked = true;
        ssize_t n = pread(f, buf, sizeof(buf) - 1, 0);
        buf[n > 0 ? n : 0] = '\0';
        if (pid)
            *pid = strtol(buf, NULL, 10);
    } else {
        flock(f, LOCK_UN);
    }
    close(f);
    return locked;
}

#define SECRET_BYTES 32

jv_err jv_api_secret_new(const char *kind, jv_api_secret *out)
{
    uint8_t idb[6], sec[SECRET_BYTES];
    char idhex[13], sectext[64];
    if (sodium_init() < 0 || strlen(kind) != 1)
        return JV_EINVAL;
    randombytes_buf(idb, sizeof(idb));
    randombytes_buf(sec, sizeof(sec));
    jv_hex(idb, sizeof(idb), idhex);
    sodium_bin2base64(sectext, sizeof(sectext), sec, sizeof(sec),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    snprintf(out->id, sizeof(out->id), "%s_%s", kind, idhex);
    snprintf(out->text, sizeof(out->text), "jv%s_%s_%s", kind, idhex, sectext);
    crypto_generichash(out->hash, sizeof(out->hash), (const uint8_t *)sectext,
                       strlen(sectext), NULL, 0);
    sodium_memzero(sec, sizeof(sec));
    sodium_memzero(sectext, sizeof(sectext));
    return JV_OK;
}

static bool b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '_';
}

jv_err jv_api_secret_parse(jv_str t, char *kind, char id[24], uint8_t hash[32])
{
    /* jv?_<12 hex>_<43 base64url> */
    const size_t seclen = 43, len = 4 + 12 + 1 + seclen;
    if (t.n != len || t.p[0] != 'j' || t.p[1] != 'v' || t.p[3] != '_' ||
        t.p[16] != '_')
        return JV_EINVAL;
    if (t.p[2] != 'k' && t.p[2] != 's')
        return JV_EINVAL;
    for (size_t i = 4; i < 16; i++)
        if (!((t.p[i] >= '0' && t.p[i] <= '9') ||
              (t.p[i] >= 'a' && t.p[i] <= 'f')))
            return JV_EINVAL;
    for (size_t i = 17; i < len; i++)
        if (!b64url_char(t.p[i]))
            return JV_EINVAL;
    *kind = t.p[2];
    id[0] = t.p[2];
    id[1] = '_';
    memcpy(id + 2, t.p + 4, 12);
    id[14] = '\0';
    crypto_generichash(hash, 32, (const uint8_t *)t.p + 17, seclen, NULL, 0);
    return JV_OK;
}

/* -- origin and succession ------------------------------------------------ */

static jv_err sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return JV_EIO;
    int rc = fsync(fd);
    close(fd);
    return rc == 0 ? JV_OK : JV_EIO;
}

jv_err jv_datadir_origin(const char *dir, const jv_id *db_self,
                         const jv_keypair *node, jv_keypair *out, char *msg,
                         size_t msglen)
{
    char path[PATH_MAX], pending[PATH_MAX];
    jv_keypair next;
    jv_err err;
    if (jv_datadir_path(dir, JV_DATADIR_ORIGIN, path, sizeof(path)) ||
        jv_datadir_path(dir, JV_DATADIR_ORIGIN ".new", pending,
                        sizeof(pending))) {
        set_msg(msg, msglen, "data dir path too long: %s", dir);
        return JV_ETOOBIG;
    }
    /* A restore that stopped half-way: its key belongs to the database
     * only if the restored copy was installed. */
    if (access(pending, F_OK) == 0) {
        if ((err = read_identity(pending, &next, msg, msglen)))
            return err;
        bool installed = db_self && jv_id_eq(db_self, &next.pk);
        jv_keypair_wipe(&next);
        if (installed ? rename(pending, path) != 0 : unlink(pending) != 0) {
            set_msg(msg, msglen, "cannot settle %s: %s", pending,
                    strerror(errno));
            return JV_EIO;
        }
        sync_dir(dir);
    }
    if (access(path, F_OK) == 0)
        return read_identity(path, out, msg, msglen);
    *out = *node;
    return JV_OK;
}

typedef struct {
    const jv_keypair *old, *next;
    const jv_id *node;   /* the node's identity */
    const char *live_db; /* the database being replaced */
} succ_ctx;

/* Applies one batch of the replaced database to the copy. */
static jv_err carry_one(void *arg, const jv_log_row *r)
{
    jv_store *copy = arg;
    jv_batch bt;
    jv_err res, err = jv_batch_decode(r->body, r->len, &bt);
    if (err)
        return JV_OK; /* the replaced database is damaged: nothing to carry */
    jv_store_batch b = {r->body, r->len, r->sig, r->hash, &bt};
    err = jv_store_apply(copy, &b, 1, 0, &res, NULL);
    jv_batch_fini(&bt);
    return err;
}

/* The successions that made `old` this node's origin (the first batch of
 * each of its origins after its identity's), from the database being
 * replaced if it still opens: the copy may predate them, and if the node
 * never ran since, no peer has them either. Without them a peer could
 * not tell that the new origin is this node's. */
static jv_err carry_chain(jv_store *copy, const succ_ctx *c)
{
    jv_store_opts o;
    jv_store *live = NULL;
    jv_id cur = c->old->pk, prev;
    jv_err err = JV_OK;
    jv_store_opts_default(&o);
    o.readonly = true;
    if (access(c->live_db, F_OK) != 0 ||
        jv_store_open(c->live_db, &o, &live, NULL, 0) != JV_OK)
        goto out;
    for (int depth = 0; depth < JV_OWN_ORIGINS_MAX && !err; depth++) {
        if (jv_id_eq(&cur, c->node))
            break;
        err = jv_store_log_after(live, &cur, 0, 1, 1, carry_one, copy);
        if (jv_store_predecessor(live, &cur, &prev) != JV_OK)
            break;
        cur = prev;
    }
out:
    jv_store_close(live);
    return err;
}

/* Whether the copy's origin id is one of this node's: its identity's, one
 * of own (n bytes of ids), or a successor of one of those. */
static bool ours(jv_store *st, jv_id id, const jv_id *node, const uint8_t *own,
                 size_t n)
{
    for (int depth = 0; depth < JV_OWN_ORIGINS_MAX; depth++) {
        if (jv_id_eq(&id, node))
            return true;
        for (size_t i = 0; i + JV_ID_LEN <= n; i += JV_ID_LEN)
            if (memcmp(own + i, id.b, JV_ID_LEN) == 0)
                return true;
        jv_id prev;
        if (jv_store_predecessor(st, &id, &prev) != JV_OK)
            return false;
        id = prev;
    }
    return false;
}

/* On the restored copy, before it is installed: from now on it signs
 * under next, whose first batch carries on for old (signed by old). */
static jv_err succeed(jv_store *st, void *arg, char *msg, size_t msglen)
{
    succ_ctx *c = arg;
    jv_id prev_self;
    jv_store_stats stats;
    uint64_t last = 0, stamp, now = wall_ms();
    uint8_t head[JV_HASH_LEN], own[JV_OWN_ORIGINS_MAX * JV_ID_LEN];
    size_t nown = 0;
    char old_hex[JV_ID_HEX], target[80], detail[256];
    jv_hlc clock;
    jv_err err;

    if ((err = carry_chain(st, c)) ||
        (err = jv_store_get_self(st, &prev_self)) ||
        (err = jv_store_origin_head(st, &c->old->pk, &last, head)) ||
        (err = jv_store_stats_get(st, &stats)))
        goto out;
    /* Its earlier origins stay its own (trusted, never signed again):
     * the backup's, unless it is another node's (--force), and the one
     * it signed under until now. */
    if (jv_store_meta_get(st, JV_META_OWN_ORIGINS, own, sizeof(own), &nown) !=
            JV_OK ||
        nown > sizeof(own) - 2 * JV_ID_LEN)
        nown = 0;
    if (!jv_id_eq(&prev_self, &c->old->pk) &&
        ours(st, prev_self, c->node, own, nown)) {
        memcpy(own + nown, prev_self.b, JV_ID_LEN);
        nown += JV_ID_LEN;
    }
    memcpy(own + nown, c->old->pk.b, JV_ID_LEN);
    if ((err = jv_store_meta_set(st, JV_META_OWN_ORIGINS, own,
                                 nown + JV_ID_LEN)) ||
        (err = jv_store_replace_self(st, &c->next->pk)))
        goto out;
    jv_hlc_init(&clock, 0);
    jv_hlc_seed(&clock, stats.max_hlc);
    if ((err = jv_hlc_now(&clock, now, &stamp)))
        goto out;
    jv_intent in[2];
    memset(in, 0, sizeof(in));
    in[0].op.kind = JV_OP_SUCCESSION;
    in[0].op.succ.old = c->old->pk;
    in[0].op.succ.last_seq = last;
    in[0].op.succ.time_ms = now;
    jv_succession_sign(c->old, &c->next->pk, last, now, in[0].op.succ.sig);
    jv_id_hex(&c->old->pk, old_hex);
    jv_id_hex(&c->next->pk, target + snprintf(target, 8, "origin/"));
    snprintf(detail, sizeof(detail),
             "restored from a backup; carries on for origin %.16s... after "
             "its sequence number %llu",
             old_hex, (unsigned long long)last);
    in[1].op.kind = JV_OP_AUDIT;
    in[1].op.audit.time_ms = now;
    in[1].op.audit.actor = jv_str_c("jarvisd");
    in[1].op.audit.action = jv_str_c("node.restore");
    in[1].op.audit.target = jv_str_c(target);
    in[1].op.audit.detail = jv_str_c(detail);
    jv_write_group g = {.intents = in, .n = 2};
    if ((err = jv_store_commit_local(st, c->next, stamp, &g, 1, NULL)) ||
        (err = g.result))
        goto out;
    err = jv_store_meta_set(st, JV_META_RESTORED, c->old->pk.b, JV_ID_LEN);
out:
    if (err)
        set_msg(msg, msglen, "restore: cannot start the new origin: %s",
                jv_store_errmsg(st));
    return err;
}

/* This node's current origin key, from its key files and what its live
 * database (if it still opens) says it is. */
static jv_err current_origin(const char *dir, const char *db,
                             const jv_keypair *node, jv_keypair *out, char *msg,
                             size_t msglen)
{
    jv_store_opts o;
    jv_store *st = NULL;
    jv_id self;
    bool have = false;
    jv_store_opts_default(&o);
    o.readonly = true;
    if (access(db, F_OK) == 0 && jv_store_open(db, &o, &st, NULL, 0) == JV_OK)
        have = jv_store_get_self(st, &self) == JV_OK;
    jv_store_close(st);
    jv_err err =
        jv_datadir_origin(dir, have ? &self : NULL, node, out, msg, msglen);
    /* A key other than the one the database signs under (origin.key
     * deleted or replaced by hand) would sign a succession for the wrong
     * origin: a second successor of the node's (peers refuse it as an
     * equivocation) or one of a stranger's (nobody trusts it). */
    if (!err && have && !jv_id_eq(&self, &out->pk)) {
        char want[JV_ID_HEX], got[JV_ID_HEX];
        jv_id_hex(&self, want);
        jv_id_hex(&out->pk, got);
        set_msg(msg, msglen,
                "restore refused: %s signs under origin %.16s..., but the "
                "data dir's key (%s, else %s) is %.16s...: put back the %s "
                "that goes with this database, or move the database away",
                db, want, JV_DATADIR_ORIGIN, JV_DATADIR_KEY, got,
                JV_DATADIR_ORIGIN);
        jv_keypair_wipe(out);
        err = JV_EINVAL;
    }
    return err;
}

jv_err jv_datadir_restore(const char *dir, const char *src, char *msg,
                          size_t msglen)
{
    char keypath[PATH_MAX], db[PATH_MAX], path[PATH_MAX], pending[PATH_MAX];
    jv_keypair node, old, next;
    jv_err err;
    memset(&node, 0, sizeof(node));
    memset(&old, 0, sizeof(old));
    memset(&next, 0, sizeof(next));
    if (jv_datadir_path(dir, JV_DATADIR_KEY, keypath, sizeof(keypath)) ||
        jv_datadir_path(dir, JV_DATADIR_DB, db, sizeof(db)) ||
        jv_datadir_path(dir, JV_DATADIR_ORIGIN, path, sizeof(path)) ||
        jv_datadir_path(dir, JV_DATADIR_ORIGIN ".new", pending,
                        sizeof(pending))) {
        set_msg(msg, msglen, "data dir path too long: %s", dir);
        return JV_ETOOBIG;
    }
    /* Only the node's key can hand its standing on to the new origin. */
    if (access(keypath, F_OK) != 0) {
        set_msg(msg, msglen,
                "%s has no %s: a restore needs the node's identity (copy "
                "%s from the node's old data dir, mode 0600) or a new node "
                "(jarvisd init, then trust it)",
                dir, JV_DATADIR_KEY, JV_DATADIR_KEY);
        return JV_ENOTFOUND;
    }
    /* A pending key (a restore stopped before its end) never signed
     * anything that left the replaced database: the origin before it is
     * the one to carry on for. */
    if (unlink(pending) != 0 && errno != ENOENT) {
        set_msg(msg, msglen, "cannot remove %s: %s", pending, strerror(errno));
        return JV_EIO;
    }
    if ((err = read_identity(keypath, &node, msg, msglen)) ||
        (err = current_origin(dir, db, &node, &old, msg, msglen)))
        goto out;
    if ((err = jv_keypair_generate(&next)))
        goto out;
    if ((err = write_private(pending, next.sk, sizeof(next.sk)))) {
        set_msg(msg, msglen, "cannot write %s: %s", pending, strerror(errno));
        goto out;
    }
    succ_ctx c = {&old, &next, &node.pk, db};
    if ((err = jv_store_restore(src, db, succeed, &c, msg, msglen))) {
        unlink(pending);
        goto out;
    }
    /* Installed: the new key goes with it (or at the next start, which
     * settles a pending key the database names). */
    if (rename(pending, path) == 0)
        sync_dir(dir);
out:
    jv_keypair_wipe(&node);
    jv_keypair_wipe(&old);
    jv_keypair_wipe(&next);
    return err;
}
