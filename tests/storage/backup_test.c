/*
 * backup_test.c - online backup while another connection keeps committing,
 * restore, refusal of damaged backups (target untouched), and what
 * verification detects: a changed body byte, a bad signature, a deleted log
 * row, a changed materialized row.
 */
#define _GNU_SOURCE /* memrchr */
#include <pthread.h>
#include <sched.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup.h"
#include "hlc.h"
#include "local.h"
#include "storetest.h"
#include "testutil.h"

typedef struct {
    char *dir;
    char *db;
    jv_keypair kp;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    f->dir = st_mkdtemp();
    f->db = st_path(f->dir, "node.db");
    st_keypair(&f->kp, 50);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    st_rmdir(f->dir);
    free(f->db);
    free(f);
    return 0;
}

/* One commit of a few kinds of writes, numbered i. */
static void write_some(jv_store *st, const jv_keypair *kp, int i)
{
    char key[32], val[48], name[16];
    snprintf(key, sizeof(key), "doc/%05d", i % 500);
    snprintf(val, sizeof(val), "{\"n\":%d}", i);
    snprintf(name, sizeof(name), "c%d", i % 7);
    jv_intent in[4] = {
        st_counter(name, i % 3 ? 1 : -1),
        st_audit((uint64_t)i, "writer", "put", key, val),
        st_add(key, val, jv_hlc_make(1000 + (uint64_t)i, 0)),
        st_config(name, val, jv_hlc_make(1000 + (uint64_t)i, 0)),
    };
    jv_write_group g = {.intents = in, .n = 4};
    jv_commit_info ci;
    if (jv_store_commit_local(st, kp, jv_hlc_make(1000 + (uint64_t)i, 0), &g, 1,
                              &ci))
        fail_msg("commit: %s", jv_store_errmsg(st));
}

static void fill(const char *path, const jv_keypair *kp, int n)
{
    jv_store *st = st_open(path);
    assert_int_equal(jv_store_set_self(st, &kp->pk), JV_OK);
    for (int i = 0; i < n; i++)
        write_some(st, kp, i);
    jv_store_close(st);
}

static void check_verified(jv_store *st)
{
    jv_verify_report r;
    assert_int_equal(jv_store_verify(st, &r), JV_OK);
    if (!jv_verify_ok(&r))
        fail_msg("verify: integrity %s, sig %llu link %llu enc %llu vv %d "
                 "state %d %s",
                 r.integrity_msg, (unsigned long long)r.bad_signatures,
                 (unsigned long long)r.bad_links,
                 (unsigned long long)r.bad_encodings, r.vv_matches,
                 r.state_matches, r.state_msg);
}

typedef struct {
    const char *path;
    const jv_keypair *kp;
    atomic_int commits;
    atomic_bool stop;
    int failed;
} writer_arg;

static void *writer(void *p)
{
    writer_arg *w = p;
    jv_store_opts o;
    jv_store *st = NULL;
    char msg[256];
    jv_store_opts_default(&o);
    if (jv_store_open(w->path, &o, &st, msg, sizeof(msg))) {
        w->failed = 1;
        return NULL;
    }
    for (int i = 1000; !atomic_load(&w->stop) && i < 100000; i++) {
        char key[32], val[48];
        snprintf(key, sizeof(key), "live/%06d", i);
        snprintf(val, sizeof(val), "{\"i\":%d}", i);
        jv_intent in[2] = {st_add(key, val, jv_hlc_make(5000 + (uint64_t)i, 0)),
                           st_counter("live", 1)};
        jv_write_group g = {.intents = in, .n = 2};
        jv_commit_info ci;
        if (jv_store_commit_local(st, w->kp, jv_hlc_make(5000 + (uint64_t)i, 0),
                                  &g, 1, &ci) != JV_OK ||
            g.result != JV_OK) {
            w->failed = 2;
            break;
        }
        atomic_fetch_add(&w->commits, 1);
    }
    jv_store_close(st);
    return NULL;
}

static void test_backup_while_writing(void **state)
{
    fx *f = *state;
    fill(f->db, &f->kp, 200);
    writer_arg w = {.path = f->db, .kp = &f->kp};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, writer, &w), 0);
    jv_store_opts o;
    jv_store_opts_default(&o);
    jv_store *reader = st_open_opts(f->db, &o);
    while (atomic_load(&w.commits) < 50 && !w.failed)
        usleep(1000);
    char *dest[3];
    int seen[3];
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof(name), "backup-%d.db", i);
        dest[i] = st_path(f->dir, name);
        seen[i] = atomic_load(&w.commits);
        assert_int_equal(jv_store_backup(reader, dest[i]), JV_OK);
        /* The next backup starts from a state the writer has moved on
         * from (a commit after this one began). */
        for (int k = 0;
             k < 30000 && !w.failed && atomic_load(&w.commits) <= seen[i]; k++)
            usleep(1000);
        assert_true(atomic_load(&w.commits) > seen[i]);
    }
    int before_stop = atomic_load(&w.commits);
    atomic_store(&w.stop, true);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(w.failed, 0);
    printf("  writer: %d commits, %d during the backups\n",
           atomic_load(&w.commits), before_stop - seen[0]);
    assert_true(before_stop > seen[0]); /* it kept writing meanwhile */

    /* An existing destination is never replaced. */
    size_t n0, n1;
    uint8_t *b0 = st_read_file(dest[0], &n0);
    assert_int_equal(jv_store_backup(reader, dest[0]), JV_EEXIST);
    uint8_t *b1 = st_read_file(dest[0], &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(b0, b1, n0);
    free(b0);
    free(b1);
    jv_store_close(reader);

    jv_store *live = st_open_opts(f->db, &o);
    jv_vv vlive;
    jv_vv_init(&vlive);
    assert_int_equal(jv_store_vv(live, &vlive), JV_OK);
    for (int i = 0; i < 3; i++) {
        jv_store *bk = st_open_opts(dest[i], &o);
        check_verified(bk);
        jv_vv vb;
        jv_vv_init(&vb);
        assert_int_equal(jv_store_vv(bk, &vb), JV_OK);
        uint64_t seq = jv_vv_get(&vb, &f->kp.pk);
        /* A snapshot: at least what was committed before it started, at
         * most what the writer ended with. */
        assert_true(seq >= 200 * 3 + (uint64_t)seen[i] * 2);
        assert_true(seq <= jv_vv_get(&vlive, &f->kp.pk));
        jv_vv_fini(&vb);
        jv_store_close(bk);
    }
    jv_vv_fini(&vlive);
    jv_store_close(live);
    for (int i = 0; i < 3; i++)
        free(dest[i]);
}

static void test_restore(void **state)
{
    fx *f = *state;
    fill(f->db, &f->kp, 50);
    char *bk = st_path(f->dir, "bk.db");
    jv_store *st = st_open(f->db);
    assert_int_equal(jv_store_backup(st, bk), JV_OK);
    char *saved = st_export(st, true);
    /* Writes after the backup, and a WAL left behind: kill -9 style, the
     * store is closed with its WAL still there by keeping a second
     * connection's snapshot... simply write more and close. */
    for (int i = 50; i < 80; i++)
        write_some(st, &f->kp, i);
    char *later = st_export(st, true);
    assert_string_not_equal(saved, later);
    jv_store_close(st);

    char msg[256] = "";
    assert_int_equal(jv_store_restore(bk, f->db, NULL, NULL, msg, sizeof(msg)),
                     JV_OK);
    st = st_open(f->db);
    char *now = st_export(st, true);
    assert_string_equal(saved, now);
    check_verified(st);
    /* Marked, so that the node fences its writes until caught up; the
     * backup's own file is not. */
    char mark[4];
    size_t marklen = 0;
    assert_int_equal(
        jv_store_meta_get(st, JV_META_RESTORED, mark, sizeof(mark), &marklen),
        JV_OK);
    assert_true(marklen > 0);
    jv_store *orig = st_open(bk);
    assert_int_equal(
        jv_store_meta_get(orig, JV_META_RESTORED, mark, sizeof(mark), &marklen),
        JV_ENOTFOUND);
    jv_store_close(orig);
    write_some(st, &f->kp, 50); /* the restored node carries on */
    jv_store_close(st);
    /* Restoring onto a path with nothing there creates it. */
    char *fresh = st_path(f->dir, "fresh.db");
    assert_int_equal(jv_store_restore(bk, fresh, NULL, NULL, msg, sizeof(msg)),
                     JV_OK);
    st = st_open(fresh);
    char *again = st_export(st, true);
    assert_string_equal(saved, again);
    jv_store_close(st);
    free(fresh);
    free(again);
    free(saved);
    free(later);
    free(now);
    free(bk);
}

static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("%s: %s", sql, err);
    sqlite3_close(db);
}

/* Flips one byte of a stored batch body (a text byte of its last op, so
 * that it still decodes). */
static void flip_body_byte(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT rowid, body FROM batch "
                                        "ORDER BY rowid LIMIT 1 OFFSET 3",
                                        -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int64_t rowid = sqlite3_column_int64(s, 0);
    int n = sqlite3_column_bytes(s, 1);
    uint8_t *body = malloc((size_t)n);
    memcpy(body, sqlite3_column_blob(s, 1), (size_t)n);
    sqlite3_finalize(s);
    /* The last op is a config set [2, key, value, stamp]: its value is
     * JSON text ending in '}'. */
    uint8_t *brace = memrchr(body, '}', (size_t)n);
    assert_non_null(brace);
    *brace = ']';
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "UPDATE batch SET body = ?1 "
                                        "WHERE rowid = ?2",
                                        -1, &s, NULL),
                     SQLITE_OK);
    sqlite3_bind_blob(s, 1, body, n, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, rowid);
    assert_int_equal(sqlite3_step(s), SQLITE_DONE);
    sqlite3_finalize(s);
    sqlite3_close(db);
    free(body);
}

static jv_verify_report verify_file(const char *path)
{
    jv_store_opts o;
    jv_store_opts_default(&o);
    jv_store *st = st_open_opts(path, &o);
    jv_verify_report r;
    assert_int_equal(jv_store_verify(st, &r), JV_OK);
    jv_store_close(st);
    printf("  %s: integrity %s, %llu batches, sig %llu link %llu enc %llu, "
           "vv %d, state %d %s\n",
           strrchr(path, '/') + 1, r.integrity_msg,
           (unsigned long long)r.batches, (unsigned long long)r.bad_signatures,
           (unsigned long long)r.bad_links, (unsigned long long)r.bad_encodings,
           r.vv_matches, r.state_matches, r.state_msg);
    return r;
}

static char *copy_of(fx *f, const char *name)
{
    size_t n;
    uint8_t *p = st_read_file(f->db, &n);
    char *path = st_path(f->dir, name);
    st_write_file(path, p, n);
    free(p);
    return path;
}

static void test_verify_detects_tampering(void **state)
{
    fx *f = *state;
    fill(f->db, &f->kp, 20);
    jv_verify_report r = verify_file(f->db);
    assert_true(jv_verify_ok(&r));
    assert_int_equal(r.batches, 20);
    assert_int_equal(r.ops, 20 * 4 - 0);
    assert_int_equal(r.origins, 1);

    char *p = copy_of(f, "body.db");
    flip_body_byte(p);
    r = verify_file(p);
    assert_false(jv_verify_ok(&r));
    assert_int_equal(r.bad_signatures, 1);
    assert_true(r.bad_links >= 1); /* the next batch links to the old hash */
    free(p);

    p = copy_of(f, "sig.db");
    raw_exec(p, "UPDATE batch SET sig = zeroblob(64) WHERE rowid = 7");
    r = verify_file(p);
    assert_false(jv_verify_ok(&r));
    assert_int_equal(r.bad_signatures, 1);
    assert_int_equal(r.bad_links, 0);
    assert_true(r.state_matches);
    free(p);

    p = copy_of(f, "gap.db");
    raw_exec(p, "DELETE FROM batch WHERE rowid = 5");
    r = verify_file(p);
    assert_false(jv_verify_ok(&r));
    assert_int_equal(r.bad_links, 1);
    assert_false(r.state_matches); /* the replay stops at the gap */
    free(p);

    p = copy_of(f, "head.db");
    raw_exec(p, "DELETE FROM batch WHERE rowid = (SELECT max(rowid) FROM "
                "batch)");
    r = verify_file(p);
    assert_false(r.vv_matches);
    free(p);

    p = copy_of(f, "state.db");
    raw_exec(p, "UPDATE counter SET p = p + 1 WHERE name = 'c3'");
    r = verify_file(p);
    assert_false(jv_verify_ok(&r));
    assert_false(r.state_matches);
    assert_non_null(strstr(r.state_msg, "counter"));
    assert_non_null(strstr(r.state_msg, "'c3'"));
    assert_int_equal(r.bad_signatures + r.bad_links + r.bad_encodings, 0);
    free(p);

    /* An index that no longer matches its table: quick_check at open does
     * not look, integrity_check in verify does. */
    p = copy_of(f, "index.db");
    raw_exec(p, "PRAGMA writable_schema = ON;"
                "UPDATE sqlite_schema SET sql = "
                "'CREATE UNIQUE INDEX batch_hash ON batch(sig)' "
                "WHERE name = 'batch_hash';"
                "PRAGMA writable_schema = OFF");
    r = verify_file(p);
    assert_false(r.integrity_ok);
    assert_false(jv_verify_ok(&r));
    assert_non_null(strstr(r.integrity_msg, "batch_hash"));
    assert_true(r.state_matches);
    free(p);

    /* Another type: a share stored as a real. */
    p = copy_of(f, "type.db");
    raw_exec(p, "UPDATE counter SET p = p + 0.5 WHERE name = 'c2'");
    r = verify_file(p);
    assert_false(r.state_matches);
    assert_non_null(strstr(r.state_msg, "'c2'"));
    assert_non_null(strstr(r.state_msg, "2.5")); /* shown as it is stored */
    free(p);

    p = copy_of(f, "extra.db");
    raw_exec(p,
             "INSERT INTO archive_span(replica, hi) VALUES (zeroblob(32), 0);"
             "INSERT INTO archive_entry VALUES ((SELECT max(span) FROM "
             "archive_span) << 40 | 1, 'zzz', 1, '1')");
    r = verify_file(p);
    assert_false(r.state_matches);
    assert_non_null(strstr(r.state_msg, "archive"));
    free(p);
}

static void test_damaged_backup_refused(void **state)
{
    fx *f = *state;
    fill(f->db, &f->kp, 120);
    jv_store *st = st_open(f->db);
    char *bk = st_path(f->dir, "bk.db");
    assert_int_equal(jv_store_backup(st, bk), JV_OK);
    jv_store_close(st);
    size_t n0, n;
    uint8_t *target = st_read_file(f->db, &n0);

    /* 1: a changed materialized row (passes integrity_check). */
    char *bad = st_path(f->dir, "bad.db");
    uint8_t *p = st_read_file(bk, &n);
    st_write_file(bad, p, n);
    raw_exec(bad, "UPDATE config SET value = '\"forged\"' WHERE key = 'c1'");
    char msg[512] = "";
    assert_int_equal(jv_store_restore(bad, f->db, NULL, NULL, msg, sizeof(msg)),
                     JV_ECORRUPT);
    printf("  refused: %s\n", msg);
    assert_non_null(strstr(msg, "config"));

    /* 2: damaged pages. */
    size_t page = (size_t)p[16] << 8 | p[17];
    memset(p + 3 * page, 0xee, page);
    st_write_file(bad, p, n);
    assert_int_equal(jv_store_restore(bad, f->db, NULL, NULL, msg, sizeof(msg)),
                     JV_ECORRUPT);
    printf("  refused: %s\n", msg);

    /* 3: not a database at all, and a missing file. */
    st_write_file(bad, "hello, world\n", 13);
    assert_int_equal(jv_store_restore(bad, f->db, NULL, NULL, msg, sizeof(msg)),
                     JV_EFOREIGN);
    printf("  refused: %s\n", msg);
    char *missing = st_path(f->dir, "missing.db");
    assert_int_equal(
        jv_store_restore(missing, f->db, NULL, NULL, msg, sizeof(msg)),
        JV_ENOTFOUND);

    size_t n1;
    uint8_t *after = st_read_file(f->db, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(target, after, n0);
    /* No leftovers next to the target. */
    char *tmp = st_path(f->dir, "node.db.restore");
    assert_int_equal(access(tmp, F_OK), -1);
    free(tmp);
    free(missing);
    free(after);
    free(target);
    free(p);
    free(bad);
    free(bk);
}

static void put_key(jv_store *st, const char *id, uint8_t tag)
{
    uint8_t hash[JV_TOKEN_HASH_LEN];
    memset(hash, tag, sizeof(hash));
    jv_key_row k = {.id = jv_str_c(id),
                    .name = jv_str_c(id),
                    .role = jv_str_c("admin"),
                    .hash = hash,
                    .created_ms = 1000};
    assert_int_equal(jv_store_key_insert(st, &k), JV_OK);
}

static void put_session(jv_store *st, const char *id, const char *key_id,
                        uint8_t tag)
{
    uint8_t hash[JV_TOKEN_HASH_LEN];
    memset(hash, tag, sizeof(hash));
    jv_session_row r = {.id = jv_str_c(id),
                        .key_id = jv_str_c(key_id),
                        .role = jv_str_c("admin"),
                        .token_hash = hash,
                        .created_ms = 1000,
                        .expires_ms = UINT64_MAX / 2};
    assert_int_equal(jv_store_session_insert(st, &r), JV_OK);
}

static jv_err get_revoked(void *arg, const jv_key_row *k)
{
    *(uint64_t *)arg = k->revoked_ms;
    return JV_OK;
}

static uint64_t key_revoked_ms(jv_store *st, const char *id)
{
    uint64_t ms = 42;
    assert_int_equal(jv_store_key_get(st, jv_str_c(id), get_revoked, &ms),
                     JV_OK);
    return ms;
}

static jv_err count_session(void *arg, const jv_session_row *r)
{
    (void)r;
    (*(int *)arg)++;
    return JV_OK;
}

/* A key revoked after the backup was taken stays revoked once the backup
 * is restored (revocation time kept); keys active in both stay active;
 * no session outlives a restore. */
static void test_restore_keeps_revocations(void **state)
{
    fx *f = *state;
    char *backup = st_path(f->dir, "creds.db");
    fill(f->db, &f->kp, 3);
    jv_store *st = st_open(f->db);
    put_key(st, "k_revoked", 1);
    put_key(st, "k_kept", 2);
    put_session(st, "s_live", "k_kept", 3);
    put_session(st, "s_of_revoked", "k_revoked", 4);
    assert_int_equal(jv_store_backup(st, backup), JV_OK);
    /* After the backup: one key revoked (with its sessions). */
    assert_int_equal(jv_store_key_revoke(st, jv_str_c("k_revoked"), 777000),
                     JV_OK);
    jv_store_close(st);

    char msg[256] = "";
    assert_int_equal(
        jv_store_restore(backup, f->db, NULL, NULL, msg, sizeof(msg)), JV_OK);
    assert_string_equal(msg, "");
    st = st_open(f->db);
    assert_int_equal(key_revoked_ms(st, "k_revoked"), 777000);
    assert_int_equal(key_revoked_ms(st, "k_kept"), 0);
    int live = 0;
    assert_int_equal(jv_store_session_list(st, 2000, count_session, &live),
                     JV_OK);
    assert_int_equal(live, 0);
    check_verified(st);
    jv_store_close(st);

    /* Restored onto a damaged database: it ends the sessions, says that
     * it could not carry the keys' revocations, and still restores. */
    st_write_file(f->db, "not a database at all, not even close", 37);
    msg[0] = '\0';
    assert_int_equal(
        jv_store_restore(backup, f->db, NULL, NULL, msg, sizeof(msg)), JV_OK);
    assert_non_null(strstr(msg, "could not be read"));
    st = st_open(f->db);
    assert_int_equal(key_revoked_ms(st, "k_revoked"), 0);
    live = 0;
    assert_int_equal(jv_store_session_list(st, 2000, count_session, &live),
                     JV_OK);
    assert_int_equal(live, 0);
    jv_store_close(st);
    free(backup);
}

/* A database with a pending WAL is a live one, not a backup: copying its
 * main file alone would lose the WAL's commits. Refused (the target not
 * created), and accepted once closed; no message buffer is needed. */
static void test_live_source_refused(void **state)
{
    fx *f = *state;
    fill(f->db, &f->kp, 5);
    jv_store_opts o;
    jv_store_opts_default(&o);
    o.manual_checkpoint = true;
    jv_store *st = st_open_opts(f->db, &o);
    write_some(st, &f->kp, 5);
    char *saved = st_export(st, true);
    char *target = st_path(f->dir, "target.db");
    char msg[256] = "";
    assert_int_equal(
        jv_store_restore(f->db, target, NULL, NULL, msg, sizeof(msg)),
        JV_EINVAL);
    printf("  refused: %s\n", msg);
    assert_non_null(strstr(msg, "pending WAL"));
    assert_int_equal(jv_store_restore(f->db, target, NULL, NULL, NULL, 0),
                     JV_EINVAL);
    assert_int_equal(access(target, F_OK), -1);
    jv_store_close(st);

    assert_int_equal(jv_store_restore(f->db, target, NULL, NULL, NULL, 0),
                     JV_OK);
    st = st_open(target);
    char *now = st_export(st, true);
    assert_string_equal(saved, now);
    jv_store_close(st);
    free(now);
    free(saved);
    free(target);
}

/* A backup to a bare file name lands in the working directory (the
 * directory synced is "."), and never replaces what is there. */
static void test_backup_relative_path(void **state)
{
    fx *f = *state;
    fill(f->db, &f->kp, 3);
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(f->dir), 0);
    jv_store *st = st_open(f->db);
    jv_err first = jv_store_backup(st, "rel.bak");
    jv_err second = jv_store_backup(st, "rel.bak");
    char *saved = st_export(st, true);
    jv_store_close(st);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(first, JV_OK);
    assert_int_equal(second, JV_EEXIST);
    char *bk = st_path(f->dir, "rel.bak");
    st = st_open(bk);
    char *copy = st_export(st, true);
    assert_string_equal(saved, copy);
    jv_store_close(st);
    free(copy);
    free(saved);
    free(bk);
}

/* -- progress --------------------------------------------------------------
 */

/* Reads a job's progress over and over while it runs on another thread,
 * checking each reading against the one before: total fixed once known,
 * done never past it nor back, nothing done before the total is known. */
typedef struct {
    jv_progress *p;
    atomic_bool stop;
    uint64_t total, done, readings, distinct;
    char why[160];
} sampler;

static void *sample(void *arg)
{
    sampler *s = arg;
    for (;;) {
        bool last = atomic_load(&s->stop);
        uint64_t done, total;
        jv_progress_get(s->p, &done, &total);
        s->readings++;
        if (!s->why[0] && done > total)
            snprintf(s->why, sizeof(s->why), "done %llu > total %llu",
                     (unsigned long long)done, (unsigned long long)total);
        if (!s->why[0] && s->total && total != s->total)
            snprintf(s->why, sizeof(s->why), "total %llu then %llu",
                     (unsigned long long)s->total, (unsigned long long)total);
        if (!s->why[0] && done < s->done)
            snprintf(s->why, sizeof(s->why), "done %llu then %llu",
                     (unsigned long long)s->done, (unsigned long long)done);
        if (done != s->done)
            s->distinct++;
        s->done = done;
        s->total = total;
        if (last)
            return NULL;
        sched_yield();
    }
}

static void sampler_start(sampler *s, jv_progress *p, pthread_t *t)
{
    memset(s, 0, sizeof(*s));
    jv_progress_init(p);
    s->p = p;
    assert_int_equal(pthread_create(t, NULL, sample, s), 0);
}

static void sampler_stop(sampler *s, pthread_t t)
{
    atomic_store(&s->stop, true);
    assert_int_equal(pthread_join(t, NULL), 0);
    if (s->why[0])
        fail_msg("progress: %s", s->why);
}

/* Large enough for several backup steps (storage/backup.c copies 128
 * pages a step): about 2,000 pages. */
static void fill_big(const char *path, const jv_keypair *kp)
{
    char detail[3001];
    memset(detail, 'x', sizeof(detail) - 1);
    detail[sizeof(detail) - 1] = '\0';
    jv_store *st = st_open(path);
    assert_int_equal(jv_store_set_self(st, &kp->pk), JV_OK);
    for (int i = 0; i < 1000; i++) {
        char target[32];
        snprintf(target, sizeof(target), "t%05d", i);
        jv_intent in = st_audit((uint64_t)i + 1, "a", "big", target, detail);
        jv_write_group g = {.intents = &in, .n = 1};
        jv_commit_info ci;
        if (jv_store_commit_local(st, kp, jv_hlc_make(1000 + (uint64_t)i, 0),
                                  &g, 1, &ci))
            fail_msg("commit: %s", jv_store_errmsg(st));
    }
    jv_store_close(st);
}

static int64_t page_count(const char *path)
{
    sqlite3 *db;
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA page_count", -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return n;
}

/* Backup: pages copied of the snapshot's pages, ending at done == total
 * == the copy's page count, in several steps. Verify: steps, ending at
 * done == total, one per batch of the log and a few more. */
static void test_progress(void **state)
{
    fx *f = *state;
    fill_big(f->db, &f->kp);
    jv_store *st = st_open(f->db);
    jv_progress p;
    sampler s;
    pthread_t t;

    char *bk = st_path(f->dir, "progress.bak");
    sampler_start(&s, &p, &t);
    jv_err err = jv_store_backup_progress(st, bk, &p);
    sampler_stop(&s, t);
    assert_int_equal(err, JV_OK);
    uint64_t done, total;
    jv_progress_get(&p, &done, &total);
    printf("  backup: %llu pages, %llu readings, %llu distinct\n",
           (unsigned long long)total, (unsigned long long)s.readings,
           (unsigned long long)s.distinct);
    assert_int_equal(done, total);
    assert_int_equal((int64_t)total, page_count(bk));
    assert_true(total > 3 * 128);    /* several steps */
    assert_int_equal(s.done, total); /* the last reading, after the end */

    jv_verify_report r;
    sampler_start(&s, &p, &t);
    err = jv_store_verify_progress(st, &r, &p);
    sampler_stop(&s, t);
    assert_int_equal(err, JV_OK);
    assert_true(jv_verify_ok(&r));
    jv_progress_get(&p, &done, &total);
    printf("  verify: %llu steps for %llu batches, %llu readings, %llu "
           "distinct\n",
           (unsigned long long)total, (unsigned long long)r.batches,
           (unsigned long long)s.readings, (unsigned long long)s.distinct);
    assert_int_equal(r.batches, 1000);
    assert_int_equal(done, total);
    /* The integrity check, each batch, each table compared. */
    assert_true(total >= r.batches + 2 && total <= r.batches + 64);

    /* No progress asked for: the same results. */
    char *bk2 = st_path(f->dir, "progress2.bak");
    assert_int_equal(jv_store_backup(st, bk2), JV_OK);
    assert_int_equal(page_count(bk2), page_count(bk));
    check_verified(st);
    jv_store_close(st);
    free(bk);
    free(bk2);
}

int main(void)
{
    jv_test_seed();
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_backup_while_writing),      T(test_restore),
        T(test_restore_keeps_revocations), T(test_verify_detects_tampering),
        T(test_damaged_backup_refused),    T(test_live_source_refused),
        T(test_backup_relative_path),      T(test_progress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
