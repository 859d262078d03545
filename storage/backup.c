/*
 * backup.c - online backup, restore, and the deep verification.
 *
 * Backup copies one snapshot through SQLite's backup API into a temporary
 * of its own (dest.<random>.tmp, made with O_EXCL, mode 0600), syncs it
 * and links it into place (so an existing dest is never replaced, and two
 * backups to one dest leave one: the other gets JV_EEXIST). It deletes
 * only what it made. Restore never touches the target before the backup has
 * passed a full verification: the backup is copied next to the target, opened
 * and verified there, and only then renamed over it.
 *
 * Verification replays the log into a scratch database (a temporary file:
 * a large state does not fit in memory) through jv_store_apply, then walks
 * every materialized table of both databases in primary-key order and
 * reports the first row that differs. Nothing here holds more than one
 * replay chunk in memory.
 */
#define _GNU_SOURCE /* renameat2 */
#include "backup.h"
#include "snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "apply.h"
#include "query.h"
#include "store_int.h"

/* path + suffix, NUL-terminated, from jv_malloc. */
static char *path_with(const char *path, const char *suffix)
{
    size_t a = strlen(path), b = strlen(suffix);
    char *p = jv_malloc(a + b + 1);
    if (p) {
        memcpy(p, path, a);
        memcpy(p + a, suffix, b + 1);
    }
    return p;
}

static int fsync_path(const char *path, bool dir)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | (dir ? O_DIRECTORY : 0));
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Syncs the directory holding path, so that a rename or link survives a
 * power loss. */
static int fsync_dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return fsync_path(".", true);
    if (slash == path)
        return fsync_path("/", true);
    char *dir = jv_strndup(path, (size_t)(slash - path));
    if (!dir)
        return -1;
    int rc = fsync_path(dir, true);
    jv_free(dir);
    return rc;
}

static void unlink_db(const char *path)
{
    static const char *const sfx[] = {"-wal", "-shm", "-journal"};
    unlink(path);
    for (size_t i = 0; i < sizeof(sfx) / sizeof(*sfx); i++) {
        char *p = path_with(path, sfx[i]);
        if (p)
            unlink(p);
        jv_free(p);
    }
}

/* -- backup --------------------------------------------------------------- */

/* A new, empty file next to dest with a name nobody else uses
 * (dest.<random>.tmp), made with O_EXCL and mode 0600: the copy never
 * writes through a file or a link that was there before. */
static char *make_tmp(jv_store *st, const char *dest, jv_err *err)
{
    for (int attempt = 0; attempt < 16; attempt++) {
        uint8_t rnd[8];
        char sfx[2 * sizeof(rnd) + 6];
        randombytes_buf(rnd, sizeof(rnd));
        sfx[0] = '.';
        jv_hex(rnd, sizeof(rnd), sfx + 1);
        memcpy(sfx + 1 + 2 * sizeof(rnd), ".tmp", 5);
        char *tmp = path_with(dest, sfx);
        if (!tmp) {
            *err = jv__fail(st, JV_ENOMEM, "backup: out of memory");
            return NULL;
        }
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                      0600);
        if (fd >= 0) {
            /* 0600 whatever the umask. */
            if (fchmod(fd, 0600) != 0 || close(fd) != 0) {
                *err = jv__fail(st, JV_EIO, "backup: %s: %s", tmp,
                                strerror(errno));
                unlink(tmp);
                jv_free(tmp);
                return NULL;
            }
            return tmp;
        }
        int e = errno;
        jv_free(tmp);
        if (e != EEXIST) {
            *err = jv__fail(st, JV_EIO, "backup: temporary next to %s: %s",
                            dest, strerror(e));
            return NULL;
        }
    }
    *err =
        jv__fail(st, JV_EIO, "backup: no free temporary name next to %s", dest);
    return NULL;
}

/* Removes our temporary and the journal SQLite may have made beside it:
 * names derived from the unique temporary only. */
static void unlink_tmp(const char *tmp)
{
    unlink_db(tmp);
}

/* Moves the finished copy into place without ever replacing dest. */
static jv_err publish(jv_store *st, const char *tmp, const char *dest)
{
    /* link() refuses an existing dest (a file, a link, anything)
     * atomically; where the file system has no hard links, a rename that
     * refuses to replace. */
    if (link(tmp, dest) == 0) {
        unlink(tmp);
        return JV_OK;
    }
    if (errno == EEXIST)
        return jv__fail(st, JV_EEXIST, "backup: %s already exists", dest);
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dest, RENAME_NOREPLACE) == 0)
        return JV_OK;
    if (errno == EEXIST)
        return jv__fail(st, JV_EEXIST, "backup: %s already exists", dest);
    return jv__fail(st, JV_EIO, "backup: cannot move %s to %s: %s", tmp, dest,
                    strerror(errno));
}

/* Pages per backup step: small enough that the progress moves (128 pages
 * of 4 KiB: half a MiB), large enough that steps cost nothing extra. */
#define BACKUP_STEP_PAGES 128

/* Raises the total (it never goes back: done stays below it). */
static void progress_total(jv_progress *p, uint64_t total)
{
    if (p && total > atomic_load(&p->total))
        atomic_store(&p->total, total);
}

/* Moves done forward to `done`, never past the total. */
static void progress_set(jv_progress *p, uint64_t done)
{
    if (!p)
        return;
    uint64_t total = atomic_load(&p->total);
    if (done > total)
        done = total;
    if (done > atomic_load(&p->done))
        atomic_store(&p->done, done);
}

static void progress_add(jv_progress *p, uint64_t n)
{
    if (p)
        progress_set(p, atomic_load(&p->done) + n);
}

/* Starts a read transaction on st unless one is open (*own then says to
 * end it): every step of the copy reads this one snapshot, so the copy is
 * consistent, and a write on another connection between two steps does
 * not make SQLite start the copy over. In WAL mode writers carry on. */
static jv_err read_snapshot(jv_store *st, bool *own)
{
    *own = false;
    if (!sqlite3_get_autocommit(st->db))
        return JV_OK;
    int rc = sqlite3_exec(st->db, "BEGIN", NULL, NULL, NULL);
    if (rc == SQLITE_OK) {
        /* BEGIN is deferred: the first read takes the snapshot. */
        rc = sqlite3_exec(st->db, "SELECT count(*) FROM sqlite_master", NULL,
                          NULL, NULL);
        if (rc != SQLITE_OK)
            sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK)
        return jv__sqlerr(st, rc, "backup: read snapshot");
    *own = true;
    return JV_OK;
}

/* Copies every page of st's snapshot into dst, BACKUP_STEP_PAGES at a
 * time, counting pages in p. */
static jv_err copy_pages(jv_store *st, sqlite3 *dst, jv_progress *p)
{
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", st->db, "main");
    int rc;
    if (!b)
        return jv__fail(st, jv__rc_err(sqlite3_errcode(dst)), "backup: %s",
                        sqlite3_errmsg(dst));
    do {
        rc = sqlite3_backup_step(b, BACKUP_STEP_PAGES);
        /* Known once the first step has read the source. */
        int total = sqlite3_backup_pagecount(b);
        int left = sqlite3_backup_remaining(b);
        if (total > 0 && left >= 0 && left <= total) {
            progress_total(p, (uint64_t)total);
            progress_set(p, (uint64_t)(total - left));
        }
    } while (rc == SQLITE_OK);
    int frc = sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE || frc != SQLITE_OK)
        return jv__fail(st, jv__rc_err(rc != SQLITE_DONE ? rc : frc),
                        "backup: copy failed: %s", sqlite3_errmsg(dst));
    return JV_OK;
}

jv_err jv_store_backup(jv_store *st, const char *dest)
{
    return jv_store_backup_progress(st, dest, NULL);
}

jv_err jv_store_backup_progress(jv_store *st, const char *dest, jv_progress *p)
{
    sqlite3 *dst = NULL;
    char *tmp = NULL;
    struct stat sb;
    bool own_tx = false;
    jv_err err = JV_OK;
    int rc;

    if (lstat(dest, &sb) == 0)
        return jv__fail(st, JV_EEXIST, "backup: %s already exists", dest);
    if (!(tmp = make_tmp(st, dest, &err)))
        return err;
    rc = sqlite3_open_v2(tmp, &dst,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL);
    if (rc != SQLITE_OK) {
        err = jv__fail(st, jv__rc_err(rc), "backup: %s: %s", tmp,
                       dst ? sqlite3_errmsg(dst) : sqlite3_errstr(rc));
        goto fail;
    }
    if ((err = read_snapshot(st, &own_tx)))
        goto fail;
    err = copy_pages(st, dst, p);
    if (own_tx)
        sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
    if (err)
        goto fail;
    rc = sqlite3_close(dst);
    dst = NULL;
    if (rc != SQLITE_OK) {
        err = jv__fail(st, JV_EIO, "backup: closing %s failed", tmp);
        goto fail;
    }
    if (fsync_path(tmp, false) != 0) {
        err = jv__fail(st, JV_EIO, "backup: sync %s: %s", tmp, strerror(errno));
        goto fail;
    }
    if ((err = publish(st, tmp, dest)))
        goto fail;
    if (fsync_dir_of(dest) != 0)
        err = jv__fail(st, JV_EIO, "backup: sync directory of %s: %s", dest,
                       strerror(errno));
    goto out;
fail:
    sqlite3_close(dst);
    unlink_tmp(tmp);
out:
    jv_free(tmp);
    return err;
}

/* -- verification --------------------------------------------------------- */

/* Batches copied out of the log, waiting to be replayed in one
 * transaction. */
typedef struct {
    jv_buf bytes; /* bodies, signatures and hashes back to back */
    size_t *off;  /* start of each entry in bytes */
    size_t *len;  /* body length of each entry */
    size_t n, cap;
} replay_chunk;

#define REPLAY_MAX_BATCHES 1024
#define REPLAY_MAX_BYTES   (8u << 20)

typedef struct {
    jv_store *st;
    jv_store *scratch;
    jv_verify_report *r;
    replay_chunk chunk;
    /* chain state of the origin being read */
    bool have_origin;
    jv_id origin;
    uint64_t next_seq;
    uint8_t prev[JV_HASH_LEN];
    /* log heads, by origin, for the version vector check */
    jv_vv_entry *heads;
    uint8_t (*head_hash)[JV_HASH_LEN];
    size_t nheads, capheads;
    /* the cut, by origin (snapshot.h) */
    jv_id *cut_id;
    uint64_t *cut_seq;
    uint8_t (*cut_hash)[JV_HASH_LEN];
    size_t ncut;
    uint64_t skip_upto; /* the current origin's cut */
    jv_err err;         /* a failure that stops verification */
    jv_progress *p;     /* steps (backup.h), or NULL */
} verify_ctx;

static jv_err replay_flush(verify_ctx *v)
{
    replay_chunk *c = &v->chunk;
    jv_store_batch *sb = NULL;
    jv_batch *bt = NULL;
    jv_err *res = NULL;
    size_t decoded = 0;
    jv_err err = JV_OK;
    if (c->n == 0)
        return JV_OK;
    sb = jv_calloc(c->n, sizeof(*sb));
    bt = jv_calloc(c->n, sizeof(*bt));
    res = jv_calloc(c->n, sizeof(*res));
    if (!sb || !bt || !res) {
        err = jv__fail(v->st, JV_ENOMEM, "verify: out of memory");
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < c->n; i++) {
        const uint8_t *p = c->bytes.data + c->off[i];
        /* Only bodies that decoded strictly were queued. */
        if (jv_batch_decode(p, c->len[i], &bt[k]) != JV_OK)
            continue;
        sb[k].body = p;
        sb[k].len = c->len[i];
        sb[k].sig = p + c->len[i];
        sb[k].hash = p + c->len[i] + JV_SIG_LEN;
        sb[k].batch = &bt[k];
        k++;
    }
    decoded = k;
    if (k && (err = jv_store_apply(v->scratch, sb, k, 0, res, NULL)))
        err = jv__fail(v->st, err, "verify: replay failed: %s",
                       jv_store_errmsg(v->scratch));
out:
    for (size_t i = 0; i < decoded; i++)
        jv_batch_fini(&bt[i]);
    jv_free(sb);
    jv_free(bt);
    jv_free(res);
    c->n = 0;
    jv_buf_reset(&c->bytes);
    return err;
}

static jv_err replay_queue(verify_ctx *v, const jv_log_row *row,
                           const uint8_t hash[JV_HASH_LEN])
{
    replay_chunk *c = &v->chunk;
    jv_err err;
    if (c->n == REPLAY_MAX_BATCHES ||
        (c->n && c->bytes.len + row->len > REPLAY_MAX_BYTES))
        if ((err = replay_flush(v)))
            return err;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        size_t *o = jv_reallocarray(c->off, cap, sizeof(*o));
        if (o)
            c->off = o;
        size_t *l = o ? jv_reallocarray(c->len, cap, sizeof(*l)) : NULL;
        if (!l)
            return jv__fail(v->st, JV_ENOMEM, "verify: out of memory");
        c->len = l;
        c->cap = cap;
    }
    c->off[c->n] = c->bytes.len;
    c->len[c->n] = row->len;
    jv_buf_append(&c->bytes, row->body, row->len);
    jv_buf_append(&c->bytes, row->sig, JV_SIG_LEN);
    jv_buf_append(&c->bytes, hash, JV_HASH_LEN);
    if (jv_buf_err(&c->bytes))
        return jv__fail(v->st, JV_ENOMEM, "verify: out of memory");
    c->n++;
    return JV_OK;
}

static jv_err head_push(verify_ctx *v, const jv_id *origin)
{
    if (v->nheads == v->capheads) {
        size_t cap = v->capheads ? v->capheads * 2 : 16;
        jv_vv_entry *h = jv_reallocarray(v->heads, cap, sizeof(*h));
        if (h)
            v->heads = h;
        uint8_t(*hh)[JV_HASH_LEN] =
            h ? jv_reallocarray(v->head_hash, cap, JV_HASH_LEN) : NULL;
        if (!hh)
            return jv__fail(v->st, JV_ENOMEM, "verify: out of memory");
        v->head_hash = hh;
        v->capheads = cap;
    }
    v->heads[v->nheads].id = *origin;
    v->heads[v->nheads].seq = 0;
    memset(v->head_hash[v->nheads], 0, JV_HASH_LEN);
    v->nheads++;
    return JV_OK;
}

/* Checks one stored batch (encoding, signature, chain) and queues it for
 * replay. Problems are counted in the report; only failures to run the
 * check stop the scan. */
static jv_err check_batch(void *arg, const jv_log_row *row)
{
    static const uint8_t zero[JV_HASH_LEN];
    verify_ctx *v = arg;
    jv_verify_report *r = v->r;
    uint8_t hash[JV_HASH_LEN];
    jv_batch_head h;
    jv_batch b;
    jv_err err;

    if (!v->have_origin || !jv_id_eq(&v->origin, &row->origin)) {
        if ((err = head_push(v, &row->origin)))
            return err;
        v->have_origin = true;
        v->origin = row->origin;
        v->next_seq = 1;
        v->skip_upto = 0;
        memcpy(v->prev, zero, JV_HASH_LEN);
        for (size_t i = 0; i < v->ncut; i++) {
            if (jv_id_eq(&v->cut_id[i], &row->origin)) {
                v->skip_upto = v->cut_seq[i];
                v->next_seq = v->cut_seq[i] + 1;
                memcpy(v->prev, v->cut_hash[i], JV_HASH_LEN);
                v->heads[v->nheads - 1].seq = v->cut_seq[i];
                memcpy(v->head_hash[v->nheads - 1], v->cut_hash[i],
                       JV_HASH_LEN);
            }
        }
        r->origins++;
    }
    /* Covered by the base, waiting to be deleted. */
    if (row->last_seq <= v->skip_upto) {
        r->compacted++;
        return JV_OK;
    }
    r->batches++;
    jv_batch_hash(row->body, row->len, hash);
    if (jv_batch_verify_sig(hash, row->sig, &row->origin) != JV_OK)
        r->bad_signatures++;
    bool head_ok = jv_batch_peek(row->body, row->len, &h) == JV_OK;
    bool decoded = head_ok && jv_batch_decode(row->body, row->len, &b) == JV_OK;
    if (!decoded || memcmp(hash, row->hash, JV_HASH_LEN) != 0 ||
        !jv_id_eq(&h.origin, &row->origin) || h.first_seq != row->first_seq ||
        h.last_seq != row->last_seq || h.hlc != row->hlc)
        r->bad_encodings++;
    if (decoded) {
        r->ops += b.nops;
        jv_batch_fini(&b);
    }
    /* The chain, from the stored columns and the body's prev link. */
    if (row->first_seq != v->next_seq || !head_ok ||
        memcmp(h.prev, v->prev, JV_HASH_LEN) != 0)
        r->bad_links++;
    v->next_seq = row->last_seq + 1;
    memcpy(v->prev, hash, JV_HASH_LEN);
    v->heads[v->nheads - 1].seq = row->last_seq;
    memcpy(v->head_hash[v->nheads - 1], row->hash, JV_HASH_LEN);
    if (decoded)
        return replay_queue(v, row, hash);
    return JV_OK;
}

/* check_batch, one step. */
static jv_err verify_batch(void *arg, const jv_log_row *row)
{
    verify_ctx *v = arg;
    jv_err err = check_batch(v, row);
    progress_add(v->p, 1);
    return err;
}

static const char sql_vv_all[] = "SELECT origin, seq, hash FROM vv "
                                 "ORDER BY origin";

/* The version vector must list exactly the log's heads. */
static jv_err check_vv(verify_ctx *v)
{
    jv_store *st = v->st;
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_vv_all, &err);
    if (!s)
        return err;
    size_t i = 0, rows = 0, from_cut = 0;
    bool ok = true;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        jv_id id;
        rows++;
        if (jv__col_id(st, s, 0, &id) != JV_OK) {
            ok = false;
            break;
        }
        /* The log's head, or the cut for an origin with no batch after
         * it. Both lists are sorted by origin. */
        const uint8_t *want = NULL;
        uint64_t seq = 0;
        if (i < v->nheads && jv_id_eq(&id, &v->heads[i].id)) {
            want = v->head_hash[i];
            seq = v->heads[i].seq;
            i++;
        } else {
            for (size_t c = 0; c < v->ncut; c++)
                if (jv_id_eq(&id, &v->cut_id[c])) {
                    want = v->cut_hash[c];
                    seq = v->cut_seq[c];
                    from_cut++;
                }
        }
        if (!want || jv__col_u64(s, 1) != seq ||
            sqlite3_column_bytes(s, 2) != JV_HASH_LEN ||
            memcmp(sqlite3_column_blob(s, 2), want, JV_HASH_LEN) != 0) {
            ok = false;
            break;
        }
    }
    /* Every cut origin is in the vector, as a head or as itself. */
    size_t cut_in_heads = 0;
    for (size_t c = 0; ok && c < v->ncut; c++)
        for (size_t h = 0; h < v->nheads; h++)
            if (jv_id_eq(&v->cut_id[c], &v->heads[h].id))
                cut_in_heads++;
    ok = ok && rows == i + from_cut && cut_in_heads + from_cut == v->ncut;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        err = jv__sqlerr(st, rc, "verify: read version vector");
        jv__reset(s);
        return err;
    }
    jv__reset(s);
    v->r->vv_matches = ok && i == v->nheads;
    (void)rows;
    return JV_OK;
}

/* The materialized tables, each read in primary-key order. */
static const struct {
    const char *name;
    const char *sql;
} state_tables[] = {
    {"counter", "SELECT name, replica, p, n FROM counter ORDER BY name, "
                "replica"},
    {"audit", "SELECT time_ms, origin, seq, actor, action, target, detail "
              "FROM audit ORDER BY time_ms, origin, seq"},
    {"audit_minute", "SELECT field, value, minute FROM audit_minute ORDER BY "
                     "field, value, minute"},
    {"config", "SELECT key, value, stamp, replica FROM config ORDER BY key"},
    {"archive", "SELECT key, replica, n, stamp, value FROM archive ORDER BY "
                "key, replica, n"},
    {"ctx", "SELECT replica, seq FROM ctx ORDER BY replica"},
    {"ctx_cloud", "SELECT replica, n FROM ctx_cloud ORDER BY replica, n"},
    {"trust", "SELECT node, trusted, stamp, set_by, name FROM trust ORDER BY "
              "node"},
    {"succession", "SELECT old, new, last_seq, time_ms, sig FROM succession "
                   "ORDER BY old"},
    {"cluster_key", "SELECT id, name, role, hash, created_ms, created_by, "
                    "origin FROM cluster_key ORDER BY id"},
    {"cluster_key_revoked", "SELECT id, revoked_ms, revoked_by, origin FROM "
                            "cluster_key_revoked ORDER BY id"},
    {"vv", "SELECT origin, seq, hash FROM vv ORDER BY origin"},
};

static bool value_eq(sqlite3_stmt *a, sqlite3_stmt *b, int i)
{
    int t = sqlite3_column_type(a, i);
    if (t != sqlite3_column_type(b, i))
        return false;
    switch (t) {
    case SQLITE_NULL:
        return true;
    case SQLITE_INTEGER:
        return sqlite3_column_int64(a, i) == sqlite3_column_int64(b, i);
    case SQLITE_FLOAT:
        return sqlite3_column_double(a, i) == sqlite3_column_double(b, i);
    default: {
        const void *pa = sqlite3_column_blob(a, i);
        const void *pb = sqlite3_column_blob(b, i);
        int na = sqlite3_column_bytes(a, i), nb = sqlite3_column_bytes(b, i);
        return na == nb && (na == 0 || memcmp(pa, pb, (size_t)na) == 0);
    }
    }
}

/* A short rendering of a row's first columns, for the report. */
static void describe_row(sqlite3_stmt *s, char *out, size_t cap)
{
    size_t used = 0;
    int n = sqlite3_column_count(s);
    out[0] = '\0';
    for (int i = 0; i < n && i < 4 && used + 1 < cap; i++) {
        char cell[48];
        int t = sqlite3_column_type(s, i);
        if (t == SQLITE_INTEGER) {
            snprintf(cell, sizeof(cell), "%lld",
                     (long long)sqlite3_column_int64(s, i));
        } else if (t == SQLITE_FLOAT) {
            snprintf(cell, sizeof(cell), "%.17g", sqlite3_column_double(s, i));
        } else if (t == SQLITE_TEXT) {
            snprintf(cell, sizeof(cell), "'%.24s'",
                     (const char *)sqlite3_column_text(s, i));
        } else if (t == SQLITE_BLOB) {
            const uint8_t *p = sqlite3_column_blob(s, i);
            size_t len = (size_t)sqlite3_column_bytes(s, i);
            char hex[17];
            jv_hex(p ? p : (const uint8_t *)"", len < 8 ? len : 8, hex);
            snprintf(cell, sizeof(cell), "x'%s%s'", hex, len > 8 ? ".." : "");
        } else {
            snprintf(cell, sizeof(cell), "NULL");
        }
        int w = snprintf(out + used, cap - used, "%s%s", i ? ", " : "", cell);
        if (w < 0)
            break;
        used += (size_t)w < cap - used ? (size_t)w : cap - used - 1;
    }
}

/* Walks one table in both databases side by side; the first difference
 * goes into the report. */
static jv_err compare_table(verify_ctx *v, size_t t, bool *same)
{
    sqlite3_stmt *a = NULL, *b = NULL;
    jv_err err = JV_OK;
    int ra, rb;
    *same = true;
    if ((ra = sqlite3_prepare_v2(v->st->db, state_tables[t].sql, -1, &a,
                                 NULL)) != SQLITE_OK) {
        err = jv__sqlerr(v->st, ra, "verify: read state");
        goto out;
    }
    if ((rb = sqlite3_prepare_v2(v->scratch->db, state_tables[t].sql, -1, &b,
                                 NULL)) != SQLITE_OK) {
        err = jv__fail(v->st, jv__rc_err(rb), "verify: read replay: %s",
                       sqlite3_errmsg(v->scratch->db));
        goto out;
    }
    for (uint64_t row = 1;; row++) {
        ra = sqlite3_step(a);
        rb = sqlite3_step(b);
        if (ra != SQLITE_ROW && ra != SQLITE_DONE) {
            err = jv__sqlerr(v->st, ra, "verify: read state");
            goto out;
        }
        if (rb != SQLITE_ROW && rb != SQLITE_DONE) {
            err = jv__fail(v->st, jv__rc_err(rb), "verify: read replay: %s",
                           sqlite3_errmsg(v->scratch->db));
            goto out;
        }
        if (ra == SQLITE_DONE && rb == SQLITE_DONE)
            goto out;
        char da[120] = "", db[120] = "";
        if (ra == SQLITE_ROW)
            describe_row(a, da, sizeof(da));
        if (rb == SQLITE_ROW)
            describe_row(b, db, sizeof(db));
        bool eq = ra == SQLITE_ROW && rb == SQLITE_ROW;
        for (int i = 0; eq && i < sqlite3_column_count(a); i++)
            eq = value_eq(a, b, i);
        if (!eq) {
            /* Composed at full length, then cut to the report's size. */
            char m[2 * sizeof(da) + 96];
            *same = false;
            snprintf(m, sizeof(m), "%s, row %llu: stored (%s), replayed (%s)",
                     state_tables[t].name, (unsigned long long)row,
                     ra == SQLITE_ROW ? da : "none",
                     rb == SQLITE_ROW ? db : "none");
            size_t len = strnlen(m, sizeof(v->r->state_msg) - 1);
            memcpy(v->r->state_msg, m, len);
            v->r->state_msg[len] = '\0';
            goto out;
        }
    }
out:
    sqlite3_finalize(a);
    sqlite3_finalize(b);
    return err;
}

static jv_err integrity(jv_store *st, jv_verify_report *r)
{
    sqlite3_stmt *s = NULL;
    jv_err err = JV_OK;
    int rc =
        sqlite3_prepare_v2(st->db, "PRAGMA integrity_check(1)", -1, &s, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const char *m = (const char *)sqlite3_column_text(s, 0);
        r->integrity_ok = m && strcmp(m, "ok") == 0;
        snprintf(r->integrity_msg, sizeof(r->integrity_msg), "%s",
                 m ? m : "no answer");
        /* One line: SQLite's report may span several. */
        for (char *c = r->integrity_msg; *c; c++)
            if (*c == '\n')
                *c = ' ';
    } else if ((rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB) {
        r->integrity_ok = false;
        snprintf(r->integrity_msg, sizeof(r->integrity_msg), "%s",
                 sqlite3_errmsg(st->db));
    } else {
        err = jv__sqlerr(st, rc, "verify: integrity_check");
    }
    sqlite3_finalize(s);
    return err;
}

/* A scratch database in TMPDIR, empty, for the replay. */
static jv_err scratch_open(jv_store *st, char **path, jv_store **out)
{
    const char *dir = getenv("TMPDIR");
    char msg[256];
    jv_err err;
    *path = path_with(dir && *dir ? dir : "/tmp", "/jarvis-verify-XXXXXX");
    if (!*path)
        return jv__fail(st, JV_ENOMEM, "verify: out of memory");
    int fd = mkstemp(*path);
    if (fd < 0) {
        err = jv__fail(st, JV_EIO, "verify: scratch file %s: %s", *path,
                       strerror(errno));
        jv_free(*path);
        *path = NULL;
        return err;
    }
    close(fd);
    jv_store_opts o;
    jv_store_opts_default(&o);
    o.create = true;
    o.cache_kib = 2048;
    if ((err = jv_store_open(*path, &o, out, msg, sizeof(msg))))
        return jv__fail(st, err, "verify: scratch database: %s", msg);
    /* Thrown away afterwards: no reason to sync it. */
    sqlite3_exec((*out)->db, "PRAGMA synchronous = OFF", NULL, NULL, NULL);
    return JV_OK;
}

static const char sql_cut_rows[] =
    "SELECT origin, seq, hash FROM cut ORDER BY origin";

static jv_err load_cut(verify_ctx *v)
{
    jv_store *st = v->st;
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_cut_rows, &err);
    if (!s)
        return err;
    int rc;
    size_t cap = 0;
    err = JV_OK;
    while (!err && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (v->ncut == cap) {
            cap = cap ? cap * 2 : 16;
            jv_id *i = jv_reallocarray(v->cut_id, cap, sizeof(*i));
            if (i)
                v->cut_id = i;
            uint64_t *q = i ? jv_reallocarray(v->cut_seq, cap, 8) : NULL;
            if (q)
                v->cut_seq = q;
            uint8_t(*h)[JV_HASH_LEN] =
                q ? jv_reallocarray(v->cut_hash, cap, JV_HASH_LEN) : NULL;
            if (!h) {
                err = jv__fail(st, JV_ENOMEM, "verify: out of memory");
                break;
            }
            v->cut_hash = h;
        }
        if ((err = jv__col_id(st, s, 0, &v->cut_id[v->ncut])))
            break;
        v->cut_seq[v->ncut] = jv__col_u64(s, 1);
        if (sqlite3_column_bytes(s, 2) == JV_HASH_LEN)
            memcpy(v->cut_hash[v->ncut], sqlite3_column_blob(s, 2),
                   JV_HASH_LEN);
        else
            memset(v->cut_hash[v->ncut], 0, JV_HASH_LEN);
        v->ncut++;
    }
    if (!err && rc != SQLITE_DONE)
        err = jv__sqlerr(st, rc, "verify: read cut");
    jv__reset(s);
    return err;
}

/* The scratch's vector (the base's F after loading it) equals the cut. */
static bool scratch_vv_is_cut(verify_ctx *v)
{
    sqlite3_stmt *s = NULL;
    size_t i = 0;
    bool ok = true;
    if (sqlite3_prepare_v2(v->scratch->db, sql_vv_all, -1, &s, NULL) !=
        SQLITE_OK)
        return false;
    while (ok && sqlite3_step(s) == SQLITE_ROW) {
        ok =
            i < v->ncut && sqlite3_column_bytes(s, 0) == JV_ID_LEN &&
            memcmp(sqlite3_column_blob(s, 0), v->cut_id[i].b, JV_ID_LEN) == 0 &&
            (uint64_t)sqlite3_column_int64(s, 1) == v->cut_seq[i] &&
            sqlite3_column_bytes(s, 2) == JV_HASH_LEN &&
            memcmp(sqlite3_column_blob(s, 2), v->cut_hash[i], JV_HASH_LEN) == 0;
        i++;
    }
    sqlite3_finalize(s);
    return ok && i == v->ncut;
}

/* The base: digest, signature, its maker's trust, encoding, and its
 * vector against the cut; loaded into the scratch when it checks. */
static jv_err check_base(verify_ctx *v)
{
    jv_verify_report *r = v->r;
    jv_snap_info info;
    uint8_t digest[JV_HASH_LEN];
    bool trusted = false;
    jv_buf enc;
    jv_err err;
    jv_buf_init(&enc);
    if ((err = load_cut(v)))
        goto out;
    err = jv_store_base_get(v->st, &info, &enc);
    if (err == JV_ENOTFOUND) {
        err = JV_OK;
        r->base = v->ncut > 0;
        snprintf(r->base_msg, sizeof(r->base_msg), "%s",
                 r->base ? "a cut without a base" : "");
        goto out;
    }
    if (err)
        goto out;
    r->base = true;
    r->base_bytes = enc.len;
    jv_snap_digest(enc.data, enc.len, digest);
    if (enc.len != info.bytes || memcmp(digest, info.digest, JV_HASH_LEN)) {
        snprintf(r->base_msg, sizeof(r->base_msg),
                 "base: digest does not match its encoding");
        goto out;
    }
    if (jv_snap_verify_sig(digest, info.sig, &info.maker) != JV_OK) {
        snprintf(r->base_msg, sizeof(r->base_msg), "base: bad signature");
        goto out;
    }
    if ((err = jv_store_is_trusted(v->st, &info.maker, &trusted)))
        goto out;
    if (!trusted) {
        snprintf(r->base_msg, sizeof(r->base_msg),
                 "base: its maker is not trusted");
        goto out;
    }
    if (jv_snap_check(enc.data, enc.len, NULL, r->base_msg,
                      sizeof(r->base_msg)) != JV_OK)
        goto out;
    if ((err = jv_store_snap_join(v->scratch, enc.data, enc.len))) {
        err = jv__fail(v->st, err, "verify: load base: %s",
                       jv_store_errmsg(v->scratch));
        goto out;
    }
    if (!scratch_vv_is_cut(v)) {
        snprintf(r->base_msg, sizeof(r->base_msg),
                 "base: its vector is not the cut");
        goto out;
    }
    r->base_ok = true;
out:
    jv_buf_fini(&enc);
    return err;
}

static const char sql_read_begin[] = "BEGIN";
static const char sql_read_end[] = "COMMIT";
static const char sql_log_count[] = "SELECT count(*) FROM batch";

#define N_STATE_TABLES (sizeof(state_tables) / sizeof(*state_tables))

/* The verification's steps (backup.h), counted in its snapshot, before
 * the first step ends. A log that cannot be counted (a damaged file: the
 * checks will say what) leaves the progress at 0 of 0. */
static void verify_total(verify_ctx *v)
{
    sqlite3_stmt *s = NULL;
    if (!v->p)
        return;
    if (sqlite3_prepare_v2(v->st->db, sql_log_count, -1, &s, NULL) ==
            SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW && sqlite3_column_int64(s, 0) >= 0)
        progress_total(v->p, 1 + (uint64_t)sqlite3_column_int64(s, 0) +
                                 N_STATE_TABLES);
    sqlite3_finalize(s);
}

jv_err jv_store_verify(jv_store *st, jv_verify_report *r)
{
    return jv_store_verify_progress(st, r, NULL);
}

jv_err jv_store_verify_progress(jv_store *st, jv_verify_report *r,
                                jv_progress *p)
{
    verify_ctx v;
    char *scratch_path = NULL;
    bool own_tx = false;
    jv_err err;

    memset(r, 0, sizeof(*r));
    memset(&v, 0, sizeof(v));
    v.st = st;
    v.r = r;
    v.p = p;
    jv_buf_init(&v.chunk.bytes);

    if ((err = scratch_open(st, &scratch_path, &v.scratch)))
        goto out;
    /* One read snapshot for everything, while writers carry on. */
    if (sqlite3_get_autocommit(st->db)) {
        if ((err = jv__exec(st, sql_read_begin)))
            goto out;
        own_tx = true;
    }
    verify_total(&v);
    if ((err = integrity(st, r)))
        goto out;
    if ((err = check_base(&v)))
        goto out;
    progress_add(p, 1);
    err = jv_store_log_scan(st, verify_batch, &v);
    if (!err)
        err = replay_flush(&v);
    if (err)
        goto out;
    if ((err = check_vv(&v)))
        goto out;
    r->state_matches = true;
    for (size_t t = 0; t < N_STATE_TABLES; t++) {
        bool same;
        if ((err = compare_table(&v, t, &same)))
            goto out;
        progress_add(p, 1);
        if (!same) {
            r->state_matches = false;
            break;
        }
    }
    /* Ran to its end (a difference stops the comparison early). */
    if (p)
        progress_set(p, atomic_load(&p->total));
out:
    if (own_tx)
        jv__exec(st, sql_read_end);
    jv_store_close(v.scratch);
    if (scratch_path) {
        unlink_db(scratch_path);
        jv_free(scratch_path);
    }
    jv_buf_fini(&v.chunk.bytes);
    jv_free(v.chunk.off);
    jv_free(v.chunk.len);
    jv_free(v.heads);
    jv_free(v.head_hash);
    jv_free(v.cut_id);
    jv_free(v.cut_seq);
    jv_free(v.cut_hash);
    return err;
}

bool jv_verify_ok(const jv_verify_report *r)
{
    return r->integrity_ok && r->bad_signatures == 0 && r->bad_links == 0 &&
           r->bad_encodings == 0 && r->vv_matches && r->state_matches &&
           (!r->base || r->base_ok);
}

/* -- restore -------------------------------------------------------------- */

static jv_err copy_file(const char *src, const char *dst, char *msg,
                        size_t msglen)
{
    uint8_t buf[1 << 16];
    jv_err err = JV_OK;
    int in = open(src, O_RDONLY | O_CLOEXEC);
    int out = -1;
    if (in < 0) {
        err = errno == ENOENT ? JV_ENOTFOUND : JV_EIO;
        snprintf(msg, msglen, "%s: %s", src, strerror(errno));
        goto done;
    }
    /* dst was removed just before: a file or link there now is not
     * ours to write through. */
    out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) {
        err = JV_EIO;
        snprintf(msg, msglen, "%s: %s", dst, strerror(errno));
        goto done;
    }
    for (;;) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n == 0)
            break;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            err = JV_EIO;
            snprintf(msg, msglen, "%s: %s", src, strerror(errno));
            goto done;
        }
        for (ssize_t w = 0; w < n;) {
            ssize_t k = write(out, buf + w, (size_t)(n - w));
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0) {
                err = JV_EIO;
                snprintf(msg, msglen, "%s: %s", dst, strerror(errno));
                goto done;
            }
            w += k;
        }
    }
    if (fsync(out) != 0) {
        err = JV_EIO;
        snprintf(msg, msglen, "%s: %s", dst, strerror(errno));
    }
done:
    if (in >= 0)
        close(in);
    if (out >= 0 && close(out) != 0 && !err) {
        err = JV_EIO;
        snprintf(msg, msglen, "%s: %s", dst, strerror(errno));
    }
    return err;
}

/* Folds the target's WAL into its main file when the target opens as a
 * database, so that removing the WAL loses nothing should the rename not
 * happen. A damaged target is replaced whatever this finds. */
static void checkpoint_target(const char *path)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK)
        sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    sqlite3_close(db);
}

/* Credentials of the database a restore replaces. A key revoked there
 * stays revoked in the restored copy (with its revocation time), whatever
 * the backup says; sessions are short-lived and may have been purged from
 * the replaced database after their revocation, so none survives a
 * restore. */
static const char sql_carry_keys[] =
    "UPDATE main.api_key SET revoked_ms = (SELECT o.revoked_ms FROM "
    "old.api_key o WHERE o.id = api_key.id) WHERE revoked_ms = 0 AND id IN "
    "(SELECT id FROM old.api_key WHERE revoked_ms != 0)";
static const char sql_end_sessions[] =
    "UPDATE main.session SET revoked_ms = ?1 WHERE revoked_ms = 0";

/* Attaches the replaced database as "old" (outside any transaction, as
 * SQLite requires). False when there is none or it cannot be attached. */
static bool attach_old(jv_store *st, const char *old_path)
{
    sqlite3_stmt *s = NULL;
    struct stat sb;
    bool ok = false;
    /* ATTACH would create a missing file. */
    if (stat(old_path, &sb) != 0 || !S_ISREG(sb.st_mode))
        return false;
    if (sqlite3_prepare_v2(st->db, "ATTACH ?1 AS old", -1, &s, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_text(s, 1, old_path, -1, SQLITE_STATIC);
        ok = sqlite3_step(s) == SQLITE_DONE;
    }
    sqlite3_finalize(s);
    return ok;
}

/* Inside the restore's transaction on the copy. *carried: the key
 * revocations of the attached database were carried over. */
static jv_err carry_revocations(jv_store *st, bool attached, bool *carried)
{
    sqlite3_stmt *s = NULL;
    jv_err err = JV_OK;
    int rc;
    *carried = false;
    if (attached) {
        rc = sqlite3_exec(st->db, sql_carry_keys, NULL, NULL, NULL);
        *carried = rc == SQLITE_OK;
        /* A damaged or foreign file has nothing to carry; only a failure
         * of the copy itself stops the restore. */
        if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_CORRUPT &&
            (rc & 0xff) != SQLITE_NOTADB && (rc & 0xff) != SQLITE_ERROR)
            return jv__sqlerr(st, rc, "restore: carry key revocations");
    }
    rc = sqlite3_prepare_v2(st->db, sql_end_sessions, -1, &s, NULL);
    if (rc == SQLITE_OK) {
        jv__bind_u64(s, 1, jv__now_ms(st));
        rc = sqlite3_step(s);
    }
    if (rc != SQLITE_DONE)
        err = jv__sqlerr(st, rc, "restore: end sessions");
    sqlite3_finalize(s);
    return err;
}

/* Carries the replaced database's revocations and marks the copy
 * restored, in one transaction. */
static jv_err finish_copy(jv_store *st, const char *db_path, bool *carried,
                          char *msg, size_t msglen)
{
    jv__tx tx;
    bool attached = attach_old(st, db_path);
    jv_err err = jv__tx_begin(st, &tx);
    if (err)
        goto out;
    /* The node that opens it reports that it is catching up until it has
     * fetched from its peers what it published after this backup. */
    if ((err = carry_revocations(st, attached, carried)) ||
        (err = jv_store_meta_set(st, JV_META_RESTORED, "1", 1))) {
        jv__tx_rollback(st, &tx);
        goto out;
    }
    err = jv__tx_commit(st, &tx);
out:
    if (err)
        snprintf(msg, msglen, "restore: cannot prepare the copy: %s",
                 jv_store_errmsg(st));
    if (attached)
        sqlite3_exec(st->db, "DETACH old", NULL, NULL, NULL);
    return err;
}

/* Opens the copy tmp of backup src and checks it in full: the exact bytes
 * that restore will install. */
static jv_err open_verified(const char *src, const char *tmp, jv_store **st,
                            char *msg, size_t msglen)
{
    jv_store_opts o;
    jv_verify_report rep;
    jv_err err;
    jv_store_opts_default(&o);
    if ((err = jv_store_open(tmp, &o, st, msg, msglen))) {
        char why[256];
        snprintf(why, sizeof(why), "%s", msg);
        snprintf(msg, msglen, "restore: backup %s refused: %s", src, why);
        return err;
    }
    if ((err = jv_store_verify(*st, &rep))) {
        snprintf(msg, msglen, "restore: cannot verify %s: %s", src,
                 jv_store_errmsg(*st));
        return err;
    }
    if (!jv_verify_ok(&rep)) {
        snprintf(msg, msglen,
                 "restore: backup %s fails verification (integrity: %s; "
                 "bad signatures %llu, links %llu, encodings %llu; version "
                 "vector %s; state %s%s)",
                 src, rep.integrity_msg, (unsigned long long)rep.bad_signatures,
                 (unsigned long long)rep.bad_links,
                 (unsigned long long)rep.bad_encodings,
                 rep.vv_matches ? "ok" : "differs",
                 rep.state_matches ? "ok" : "differs: ",
                 rep.state_matches ? "" : rep.state_msg);
        return JV_ECORRUPT;
    }
    return JV_OK;
}

/* Moves the closed, verified copy tmp over db_path, durably. *renamed
 * says whether the copy took db_path's place (then, whatever the result,
 * it must not be removed). */
static jv_err install_copy(const char *tmp, const char *db_path, bool *renamed,
                           char *msg, size_t msglen)
{
    char *tgt_wal = NULL, *tgt_shm = NULL, *aside = NULL;
    struct stat sb;
    bool moved = false;
    jv_err err = JV_EIO;
    if (!(tgt_wal = path_with(db_path, "-wal")) ||
        !(tgt_shm = path_with(db_path, "-shm")) ||
        !(aside = path_with(db_path, "-wal.replaced"))) {
        err = JV_ENOMEM;
        snprintf(msg, msglen, "restore: out of memory");
        goto out;
    }
    if (fsync_path(tmp, false) != 0) {
        snprintf(msg, msglen, "restore: sync %s: %s", tmp, strerror(errno));
        goto out;
    }
    /* The old WAL must not outlive its database: replayed onto the new
     * file it would corrupt it. It is moved aside rather than deleted, so
     * that a failed rename below leaves the old database whole even when
     * its checkpoint failed. */
    if (stat(db_path, &sb) == 0)
        checkpoint_target(db_path);
    if (rename(tgt_wal, aside) == 0)
        moved = true;
    else if (errno != ENOENT) {
        snprintf(msg, msglen, "restore: cannot move %s's WAL aside: %s",
                 db_path, strerror(errno));
        goto out;
    }
    if (unlink(tgt_shm) != 0 && errno != ENOENT) {
        snprintf(msg, msglen, "restore: cannot remove %s: %s", tgt_shm,
                 strerror(errno));
        goto out;
    }
    if (rename(tmp, db_path) != 0) {
        snprintf(msg, msglen, "restore: rename %s to %s: %s", tmp, db_path,
                 strerror(errno));
        goto out;
    }
    *renamed = true;
    if (moved)
        unlink(aside);
    moved = false;
    if (fsync_dir_of(db_path) != 0) {
        snprintf(msg, msglen, "restore: sync directory of %s: %s", db_path,
                 strerror(errno));
        goto out;
    }
    err = JV_OK;
out:
    if (moved && rename(aside, tgt_wal) != 0)
        snprintf(msg, msglen, "restore: %s's WAL is left at %s: %s", db_path,
                 aside, strerror(errno));
    jv_free(tgt_wal);
    jv_free(tgt_shm);
    jv_free(aside);
    return err;
}

/* Makes the marked copy one file and closes it: its WAL (which holds at
 * least the restored mark) does not move with it, and the checkpoint that
 * jv_store_close() runs cannot report a failure. */
static jv_err close_copy(jv_store **st, const char *tmp, const char *tmp_wal,
                         char *msg, size_t msglen)
{
    struct stat sb;
    int rc = sqlite3_wal_checkpoint_v2((*st)->db, NULL,
                                       SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    if (rc != SQLITE_OK) {
        jv_err err = jv__sqlerr(*st, rc, "checkpoint");
        snprintf(msg, msglen, "restore: cannot checkpoint %s: %s", tmp,
                 jv_store_errmsg(*st));
        return err;
    }
    jv_store_close(*st);
    *st = NULL;
    if (stat(tmp_wal, &sb) == 0 && sb.st_size > 0) {
        snprintf(msg, msglen, "restore: %s kept a WAL after closing", tmp);
        return JV_EIO;
    }
    return JV_OK;
}

jv_err jv_store_restore(const char *src, const char *db_path,
                        jv_restore_fn prepare, void *arg, char *msg,
                        size_t msglen)
{
    char scratch_msg[256];
    char *tmp = NULL, *tmp_wal = NULL, *src_wal = NULL;
    jv_store *st = NULL;
    struct stat sb;
    bool carried = false, renamed = false;
    jv_err err;

    if (!msg || !msglen) {
        msg = scratch_msg;
        msglen = sizeof(scratch_msg);
    }
    msg[0] = '\0';
    if (!(tmp = path_with(db_path, ".restore")) ||
        !(tmp_wal = path_with(db_path, ".restore-wal")) ||
        !(src_wal = path_with(src, "-wal"))) {
        err = JV_ENOMEM;
        snprintf(msg, msglen, "restore: out of memory");
        goto out;
    }
    /* A backup is one self-contained file; a database with a pending WAL
     * is a live one, and copying its main file alone would lose data. */
    if (stat(src_wal, &sb) == 0 && sb.st_size > 0) {
        err = JV_EINVAL;
        snprintf(msg, msglen,
                 "restore: %s has a pending WAL: it is a live database, "
                 "not a backup",
                 src);
        goto out;
    }
    unlink_db(tmp);
    if ((err = copy_file(src, tmp, msg, msglen)))
        goto fail;
    /* Check the exact bytes that will be installed. */
    if ((err = open_verified(src, tmp, &st, msg, msglen)))
        goto fail;
    if ((err = finish_copy(st, db_path, &carried, msg, msglen)))
        goto fail;
    if (prepare && (err = prepare(st, arg, msg, msglen)))
        goto fail;
    if ((err = close_copy(&st, tmp, tmp_wal, msg, msglen)))
        goto fail;
    if ((err = install_copy(tmp, db_path, &renamed, msg, msglen)))
        goto fail;
    if (!carried)
        snprintf(msg, msglen,
                 "the replaced database could not be read: API keys revoked "
                 "after the backup was taken are active again; check "
                 "`jarvisctl keys ls`");
    err = JV_OK;
    goto out;
fail:
    jv_store_close(st);
    if (tmp && !renamed)
        unlink_db(tmp);
out:
    jv_free(tmp);
    jv_free(tmp_wal);
    jv_free(src_wal);
    return err;
}
