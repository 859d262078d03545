/*
 * fault_test.c - storage under failing disks and failing memory.
 *
 * Six operations: a local commit, an apply of peer batches (one of which
 * releases a held batch), an apply of a batch that is held aside, a
 * backup, a restore and a migration (opening a database of schema version
 * 0). Each runs from the same starting files
 * again and again, with the N-th I/O call failing (faultvfs.h: once with
 * SQLITE_IOERR_*, once with SQLITE_FULL on writes, and from the N-th call
 * on), then with the N-th SQLite allocation failing (once, and from then
 * on), then with the N-th allocation of ours failing (crdt/alloc.h), for N
 * = 1, 2, ... until the operation runs through without an injected failure:
 * so every I/O call and allocation of the operation has failed once.
 *
 * After each failure, with injection off:
 *   - the state seen on the same connection is the state before or the
 *     state after the operation (never half of it);
 *   - where it is the state before, the same operation on the same
 *     connection succeeds (the node carries on after a failed commit);
 *   - closed and reopened through the real default VFS, the database passes
 *     PRAGMA integrity_check and jv_store_verify, and holds exactly the
 *     state after the operation (nothing acknowledged lost, nothing twice).
 * A crash is a failure of the program; a leak fails the sanitizer build.
 *
 * JV_FAULT_OPS=commit,apply,... runs some operations only.
 */
#define _GNU_SOURCE /* asprintf */
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "backup.h"
#include "faultvfs.h"
#include "hlc.h"
#include "storetest.h"
#include "testutil.h"

static const uint8_t zero[JV_HASH_LEN];

typedef struct {
    char *dir;
    char *base;    /* the starting database (closed: no WAL) */
    char *db;      /* the copy an operation runs on */
    char *bak;     /* backup destination */
    char *src;     /* a backup of a later state, for restore */
    jv_store *st;  /* open on db, for commit, apply and backup */
    jv_keypair me; /* the store's own key */
    jv_keypair a;  /* a remote origin */
    st_batch peer[3];
    st_batch ahead;       /* origin a's batch 5: held for the gap at 4 */
    char *before, *after; /* exports around the operation */
} fx;

/* -- files ---------------------------------------------------------------- */

static void copy_db(const char *from, const char *to)
{
    size_t n;
    uint8_t *p = st_read_file(from, &n);
    static const char *const sfx[] = {"-wal", "-shm", "-journal", ".tmp",
                                      ".restore"};
    for (size_t i = 0; i < sizeof(sfx) / sizeof(*sfx); i++) {
        char side[4096];
        snprintf(side, sizeof(side), "%s%s", to, sfx[i]);
        unlink(side);
    }
    st_write_file(to, p, n);
    free(p);
}

static bool exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static bool exists_sfx(const char *path, const char *sfx)
{
    char p[4096];
    snprintf(p, sizeof(p), "%s%s", path, sfx);
    return exists(p);
}

static jv_store *open_plain(const char *path)
{
    jv_store_opts o;
    jv_store_opts_default(&o);
    return st_open_opts(path, &o);
}

static void assert_verified(jv_store *st)
{
    jv_verify_report r;
    jv_err err = jv_store_verify(st, &r);
    if (err)
        fail_msg("verify: %s (%s)", jv_errname(err), jv_store_errmsg(st));
    if (!jv_verify_ok(&r))
        fail_msg("verify: integrity %s, sig %llu link %llu enc %llu vv %d "
                 "state %d %s",
                 r.integrity_msg, (unsigned long long)r.bad_signatures,
                 (unsigned long long)r.bad_links,
                 (unsigned long long)r.bad_encodings, r.vv_matches,
                 r.state_matches, r.state_msg);
}

/* PRAGMA integrity_check on a raw connection of the real default VFS. */
static void assert_integrity(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL),
                     SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "ok");
    sqlite3_finalize(s);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* Reopens path through the real VFS: integrity, verify, and the state. */
static bool deep_checks = true;

static char *reopen_checked(const char *path)
{
    jv_fault_real_default(true);
    assert_integrity(path);
    jv_store *st = open_plain(path);
    if (deep_checks)
        assert_verified(st);
    char *s = st_export(st, true);
    jv_store_close(st);
    jv_fault_real_default(false);
    return s;
}

static bool is_restored(jv_store *st)
{
    char v[8];
    size_t len;
    return jv_store_meta_get(st, JV_META_RESTORED, v, sizeof(v), &len) == JV_OK;
}

/* -- the starting state --------------------------------------------------- */

static jv_op op_counter(const char *name, uint64_t p)
{
    jv_op op = {.kind = JV_OP_COUNTER};
    op.counter.name = jv_str_c(name);
    op.counter.p = p;
    return op;
}

static jv_err commit_some(jv_store *st, const jv_keypair *kp, uint64_t ms)
{
    jv_intent in[6] = {
        st_counter("hits", 3),
        st_audit(ms, "admin", "put", "doc/1", "{\"n\":1}"),
        st_config("mode", "\"fast\"", jv_hlc_make(ms, 0)),
        st_add("doc/1", "{\"n\":1}", jv_hlc_make(ms, 0)),
        st_add("doc/2", "\"two\"", jv_hlc_make(ms, 0)),
        st_rm("doc/0"),
    };
    jv_write_group g = {.intents = in, .n = 6};
    jv_commit_info ci;
    jv_err err = jv_store_commit_local(st, kp, jv_hlc_make(ms, 0), &g, 1, &ci);
    if (!err && g.result)
        fail_msg("group refused: %s", jv_errname(g.result));
    return err;
}

static int group_setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    f->dir = st_mkdtemp();
    f->base = st_path(f->dir, "base.db");
    f->db = st_path(f->dir, "node.db");
    f->bak = st_path(f->dir, "node.bak");
    f->src = st_path(f->dir, "later.bak");
    st_keypair(&f->me, 70);
    st_keypair(&f->a, 71);
    /* Origin a: batches 1, 2, 3; 1 and 3 are in the base (3 held for the
     * gap), 2 is what the apply brings, and it releases 3. */
    const uint8_t *prev = zero;
    for (int i = 0; i < 3; i++) {
        jv_op op = op_counter("peer", (uint64_t)i + 1);
        st_batch_make(&f->peer[i], &f->a, (uint64_t)i + 1, prev,
                      jv_hlc_make(900 + (uint64_t)i, 0), &op, 1);
        prev = f->peer[i].hash;
    }
    jv_op op5 = op_counter("peer", 5);
    uint8_t somewhere[JV_HASH_LEN];
    memset(somewhere, 0x44, sizeof(somewhere));
    st_batch_make(&f->ahead, &f->a, 5, somewhere, jv_hlc_make(905, 0), &op5, 1);
    jv_store *st = st_open(f->base);
    assert_int_equal(jv_store_set_self(st, &f->me.pk), JV_OK);
    jv_intent pre[2] = {st_add("doc/0", "\"zero\"", jv_hlc_make(500, 0)),
                        st_trust(&f->a.pk, true, jv_hlc_make(500, 0), "a")};
    assert_int_equal(st_commit(st, &f->me, jv_hlc_make(500, 0), pre, 2, NULL),
                     JV_OK);
    assert_int_equal(st_apply1(st, &f->peer[0], 0), JV_OK);
    assert_int_equal(st_apply1(st, &f->peer[2], 0), JV_EGAP);
    jv_store_close(st);
    /* The backup a restore installs: the base and one more commit. */
    copy_db(f->base, f->db);
    st = open_plain(f->db);
    assert_int_equal(commit_some(st, &f->me, 800), JV_OK);
    assert_int_equal(jv_store_backup(st, f->src), JV_OK);
    jv_store_close(st);
    *state = f;
    return 0;
}

static int group_teardown(void **state)
{
    fx *f = *state;
    for (int i = 0; i < 3; i++)
        st_batch_fini(&f->peer[i]);
    st_batch_fini(&f->ahead);
    st_rmdir(f->dir);
    free(f->base);
    free(f->db);
    free(f->bak);
    free(f->src);
    free(f);
    return 0;
}

/* -- the operations ------------------------------------------------------- */

/* An operation: prepare() sets up db from the base with injection off,
 * run() is the operation under injection, state() describes the outcome
 * as an export (the store's, or the file's), retry() runs it again
 * without injection, final() reads the files after everything. */
typedef struct {
    const char *name;
    void (*prepare)(fx *f);
    jv_err (*run)(fx *f);
    char *(*state)(fx *f);
    char *(*final)(fx *f);
    long mem_points; /* allocation failure points tried by default */
} op_def;

static void prep_store(fx *f)
{
    jv_store_close(f->st); /* left open by a failed check */
    copy_db(f->base, f->db);
    f->st = open_plain(f->db);
}

/* What is committed, as another connection (the node's reader) sees it.
 * The operation's own connection may still hold a transaction it could not
 * roll back without memory; the next write on it rolls that back first. */
static char *state_store(fx *f)
{
    jv_fault_real_default(true);
    jv_store *st = open_plain(f->db);
    char *s = st_export(st, true);
    jv_store_close(st);
    jv_fault_real_default(false);
    return s;
}

static char *final_store(fx *f)
{
    jv_store_close(f->st);
    f->st = NULL;
    return reopen_checked(f->db);
}

static jv_err run_commit(fx *f)
{
    return commit_some(f->st, &f->me, 1000);
}

static jv_err run_apply(fx *f)
{
    jv_store_batch sb = st_sb(&f->peer[1]);
    jv_err res = JV_OK;
    jv_apply_stats s;
    jv_err err =
        jv_store_apply(f->st, &sb, 1, JV_APPLY_REQUIRE_TRUST, &res, &s);
    if (!err) {
        assert_int_equal(res, JV_OK);
        assert_int_equal(s.released, 1);
    }
    return err;
}

/* A batch that is held aside (a gap): the held area's bounds are read,
 * expired rows deleted, the batch and its origin recorded, or nothing. */
static jv_err run_hold(fx *f)
{
    jv_store_batch sb = st_sb(&f->ahead);
    jv_err res = JV_OK;
    jv_err err =
        jv_store_apply(f->st, &sb, 1, JV_APPLY_REQUIRE_TRUST, &res, NULL);
    if (!err)
        assert_int_equal(res, JV_EGAP);
    return err;
}

static void prep_backup(fx *f)
{
    prep_store(f);
    unlink(f->bak);
}

static jv_err run_backup(fx *f)
{
    return jv_store_backup(f->st, f->bak);
}

/* The source's state, and whether a backup exists: a backup that exists
 * is whole (opens, verifies, equals the source). Nothing is left behind
 * by a failed one. */
static char *state_backup(fx *f)
{
    char *s = state_store(f);
    if (!exists(f->bak)) {
        assert_false(exists_sfx(f->bak, ".tmp"));
        return s;
    }
    char *copy = reopen_checked(f->bak);
    assert_string_equal(copy, s);
    free(copy);
    char *r = NULL;
    assert_true(asprintf(&r, "%s\nbackup present\n", s) > 0);
    free(s);
    return r;
}

static char *final_backup(fx *f)
{
    char *s = state_backup(f);
    jv_store_close(f->st);
    f->st = NULL;
    char *src = reopen_checked(f->db);
    assert_non_null(strstr(s, src));
    free(src);
    return s;
}

static void prep_restore(fx *f)
{
    copy_db(f->base, f->db);
}

static jv_err run_restore(fx *f)
{
    char msg[512] = "";
    jv_err err = jv_store_restore(f->src, f->db, NULL, NULL, msg, sizeof(msg));
    if (err)
        assert_true(msg[0] != '\0');
    return err;
}

/* The target's state: the old database, or the backup marked restored.
 * A failed restore leaves no copy behind. */
static char *state_restore(fx *f)
{
    jv_store *st = open_plain(f->db);
    char *s = st_export(st, true);
    bool restored = is_restored(st);
    jv_store_close(st);
    char *r = NULL;
    assert_true(asprintf(&r, "%s\nrestored %d\n", s, restored) > 0);
    free(s);
    return r;
}

static char *final_restore(fx *f)
{
    assert_false(exists_sfx(f->db, ".restore"));
    char *s = reopen_checked(f->db);
    jv_store *st = open_plain(f->db);
    char *r = NULL;
    assert_true(asprintf(&r, "%s\nrestored %d\n", s, is_restored(st)) > 0);
    jv_store_close(st);
    free(s);
    return r;
}

/* A database of ours at schema version 0 (no tables yet). */
static void prep_migrate(fx *f)
{
    sqlite3 *db = NULL;
    unlink(f->db);
    copy_db(f->base, f->db); /* clears the side files */
    unlink(f->db);
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA application_id = 1246910035",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static jv_err run_migrate(fx *f)
{
    jv_store_opts o;
    jv_store_opts_default(&o);
    char msg[512] = "";
    jv_err err = jv_store_open(f->db, &o, &f->st, msg, sizeof(msg));
    if (err) {
        assert_null(f->st);
        assert_true(msg[0] != '\0');
    }
    return err;
}

static int64_t raw_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    int64_t v = -1;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

/* The file's schema: version 0 and empty, or the whole current schema. */
static char *state_migrate(fx *f)
{
    jv_store_close(f->st);
    f->st = NULL;
    int64_t v = raw_int(f->db, "PRAGMA user_version");
    int64_t n = raw_int(f->db, "SELECT count(*) FROM sqlite_schema");
    if (v == 0)
        assert_int_equal(n, 0);
    else
        assert_int_equal(v, JV_STORE_SCHEMA_VERSION);
    char *r = NULL;
    assert_true(asprintf(&r, "version %lld\n", (long long)v) > 0);
    return r;
}

static char *final_migrate(fx *f)
{
    char *s = state_migrate(f);
    char *e = reopen_checked(f->db);
    char *r = NULL;
    assert_true(asprintf(&r, "%s%s", s, e) > 0);
    free(s);
    free(e);
    return r;
}

static const op_def ops[] = {
    {"commit", prep_store, run_commit, state_store, final_store, 1000},
    {"apply", prep_store, run_apply, state_store, final_store, 1000},
    /* About 470 allocations: every third (the sanitizer build is slow). */
    {"hold", prep_store, run_hold, state_store, final_store, 200},
    {"backup", prep_backup, run_backup, state_backup, final_backup, 1000},
    /* Restore opens, verifies (a scratch database with the whole schema)
     * and closes: about 10,000 SQLite allocations, a migration about
     * 5,000. JV_FAULT_ALL=1 tries every one. */
    {"restore", prep_restore, run_restore, state_restore, final_restore, 200},
    {"migrate", prep_migrate, run_migrate, state_migrate, final_migrate, 300},
};

/* -- the loops ------------------------------------------------------------ */

typedef enum {
    IO_ONCE,
    IO_ONCE_FULL,
    IO_PERSIST,
    MEM_ONCE,
    MEM_PERSIST,
    JV_MEM_PERSIST,
} fault_kind;

static const char *const kind_name[] = {
    "I/O error once",  "disk full once",    "I/O error from N on",
    "SQLite OOM once", "SQLite OOM from N", "jv_alloc OOM from N",
};

static void arm(fault_kind k, long n)
{
    switch (k) {
    case IO_ONCE:
        jv_fault_io_arm(n, JV_FAULT_ONCE, false);
        break;
    case IO_ONCE_FULL:
        jv_fault_io_arm(n, JV_FAULT_ONCE, true);
        break;
    case IO_PERSIST:
        jv_fault_io_arm(n, JV_FAULT_PERSIST, false);
        break;
    case MEM_ONCE:
        jv_fault_mem_arm(n, JV_FAULT_ONCE);
        break;
    case MEM_PERSIST:
        jv_fault_mem_arm(n, JV_FAULT_PERSIST);
        break;
    case JV_MEM_PERSIST:
        jv_alloc_fail_after(n - 1);
        break;
    }
}

/* Disarms; returns how many failures were injected. */
static long disarm(fault_kind k)
{
    if (k == JV_MEM_PERSIST) {
        long got = jv_alloc_failed_count();
        jv_alloc_fail_reset();
        return got;
    }
    jv_fault_disarm();
    return jv_fault_failed();
}

/* The exports before and after op, from a run without injection. */
static void reference(fx *f, const op_def *op)
{
    deep_checks = true;
    op->prepare(f);
    f->before = op->state(f);
    jv_err err = op->run(f);
    if (err)
        fail_msg("%s without injection: %s", op->name, jv_errname(err));
    f->after = op->state(f);
    assert_string_not_equal(f->before, f->after);
    char *fin = op->final(f);
    assert_string_equal(fin, f->after);
    free(fin);
}

/* How many calls of kind k the operation makes: armed, never failing. */
static long count_calls(fx *f, const op_def *op, fault_kind k)
{
    if (k == JV_MEM_PERSIST)
        return -1; /* crdt/alloc.h counts failures only */
    op->prepare(f);
    arm(k, LONG_MAX);
    jv_err err = op->run(f);
    disarm(k);
    long n = jv_fault_calls();
    assert_int_equal(err, JV_OK);
    free(op->final(f));
    return n;
}

static bool selected(const char *name)
{
    const char *sel = getenv("JV_FAULT_OPS");
    return !sel || !*sel || strstr(sel, name);
}

/* The allocation loops make every allocation fail in turn when the
 * operation makes up to op->mem_points; beyond, every k-th (and the last
 * ones), unless JV_FAULT_ALL is set. The I/O loops always take every
 * call. */
typedef struct {
    long calls;  /* calls the operation makes (-1: unknown) */
    long tried;  /* values of N tried */
    long points; /* ... at which something failed */
    long errors; /* ... and the operation reported an error */
    long stride;
} loop_stats;

/* One N: the operation with its N-th call failing, and every check. */
static bool one_point(fx *f, const op_def *op, fault_kind k, long n,
                      loop_stats *ls)
{
    op->prepare(f);
    arm(k, n);
    jv_err err = op->run(f);
    long hit = disarm(k);
    ls->tried++;
    if (!hit) {
        if (err)
            fail_msg("%s failed without injection: %s", op->name,
                     jv_errname(err));
        char *fin = op->final(f);
        assert_string_equal(fin, f->after);
        free(fin);
        return false;
    }
    ls->points++;
    char *now = op->state(f);
    bool was_before = strcmp(now, f->before) == 0;
    if (!was_before && strcmp(now, f->after) != 0) {
        fprintf(stderr, "now:\n%s\nbefore:\n%s\nafter:\n%s\n", now, f->before,
                f->after);
        fail_msg("%s, %s at %ld (%s): neither the state before nor after",
                 op->name, kind_name[k], n, jv_errname(err));
    }
    if (err)
        ls->errors++;
    else if (was_before)
        fail_msg("%s, %s at %ld: success reported, nothing done", op->name,
                 kind_name[k], n);
    free(now);
    if (was_before) {
        /* The same connection carries on (restore and migration have
         * none: they run again on the files). */
        err = op->run(f);
        if (err)
            fail_msg("%s, %s at %ld: retry failed: %s (%s)", op->name,
                     kind_name[k], n, jv_errname(err),
                     f->st ? jv_store_errmsg(f->st) : "");
    }
    char *fin = op->final(f);
    if (strcmp(fin, f->after) != 0) {
        fprintf(stderr, "reopened:\n%s\nexpected:\n%s\n", fin, f->after);
        fail_msg("%s, %s at %ld: not the state after once reopened", op->name,
                 kind_name[k], n);
    }
    free(fin);
    return true;
}

static void loop(fx *f, const op_def *op, fault_kind k, loop_stats *ls)
{
    const char *all = getenv("JV_FAULT_ALL");
    memset(ls, 0, sizeof(*ls));
    ls->calls = count_calls(f, op, k);
    ls->stride = 1;
    if (k >= MEM_ONCE && ls->calls > op->mem_points && !(all && *all))
        ls->stride = (ls->calls + op->mem_points - 1) / op->mem_points;
    /* Full verification for the I/O errors; for allocation failures the
     * export against the verified reference (and integrity_check). */
    deep_checks = k < MEM_ONCE;
    long n = 1;
    while (one_point(f, op, k, n, ls)) {
        if (n > 1000000)
            fail_msg("%s: no end to the calls", op->name);
        n += n + ls->stride <= ls->calls ? ls->stride : 1;
    }
    /* Every I/O call failed once: the run without a failure came right
     * after the last call. (SQLite's allocation count may move by a few
     * between runs: its caches and lookaside depend on what ran before.) */
    if (k < MEM_ONCE)
        assert_int_equal(n, ls->calls + 1);
}

static void test_op(void **state, const op_def *op)
{
    fx *f = *state;
    if (!selected(op->name))
        skip();
    reference(f, op);
    for (fault_kind k = IO_ONCE; k <= JV_MEM_PERSIST; k++) {
        struct timespec t0, t1;
        loop_stats ls;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        loop(f, op, k, &ls);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        printf("  %-8s %-20s calls %5ld, N tried %5ld (every %ld), failure "
               "points %5ld, errors reported %5ld (%.2f s)\n",
               op->name, kind_name[k], ls.calls, ls.tried, ls.stride, ls.points,
               ls.errors,
               (double)(t1.tv_sec - t0.tv_sec) +
                   (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
        fflush(stdout);
        assert_true(ls.points > 0);
        assert_true(ls.errors > 0);
    }
    free(f->before);
    free(f->after);
    f->before = f->after = NULL;
}

static void test_commit(void **state)
{
    test_op(state, &ops[0]);
}

static void test_apply(void **state)
{
    test_op(state, &ops[1]);
}

static void test_hold(void **state)
{
    test_op(state, &ops[2]);
}

static void test_backup(void **state)
{
    test_op(state, &ops[3]);
}

static void test_restore(void **state)
{
    test_op(state, &ops[4]);
}

static void test_migrate(void **state)
{
    test_op(state, &ops[5]);
}

int main(void)
{
    /* What is tested is what the storage code does when a call fails, not
     * the disk: on a tmpfs the hundreds of fsyncs of the backup and
     * restore loops cost nothing. */
    if (!getenv("TMPDIR") && access("/dev/shm", W_OK) == 0)
        setenv("TMPDIR", "/dev/shm", 1);
    /* Before anything initialises SQLite. */
    if (!jv_fault_install()) {
        fprintf(stderr, "cannot install the fault VFS and allocator\n");
        return 1;
    }
    jv_test_seed();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commit),  cmocka_unit_test(test_apply),
        cmocka_unit_test(test_hold),    cmocka_unit_test(test_backup),
        cmocka_unit_test(test_restore), cmocka_unit_test(test_migrate),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
