/*
 * backup.h - online backup, offline restore, and verification.
 */
#ifndef JV_BACKUP_H
#define JV_BACKUP_H

#include <stdatomic.h>

#include "store.h"

/* How far a long job (backup, verify) has come: the thread that runs it
 * stores the figures, any other thread may read them (jv_progress_get) to
 * show them. total is stored before done moves, done never passes total,
 * and neither goes back; both stay 0 while the total is not known yet.
 * The unit is the job's (see each function). Zero it (jv_progress_init or
 * a zeroed allocation) before the job starts. */
typedef struct {
    _Atomic uint64_t done;
    _Atomic uint64_t total;
} jv_progress;

static inline void jv_progress_init(jv_progress *p)
{
    atomic_init(&p->done, 0);
    atomic_init(&p->total, 0);
}

/* done first: a total read after it is at least the one done was counted
 * against, so *done <= *total. Any thread. */
static inline void jv_progress_get(jv_progress *p, uint64_t *done,
                                   uint64_t *total)
{
    *done = atomic_load(&p->done);
    *total = atomic_load(&p->total);
}

/* Copies a consistent snapshot of the database to dest with SQLite's
 * backup API while other connections keep writing (WAL: the copy reads one
 * snapshot and does not block the writer). Writes a temporary of its own
 * next to dest (O_EXCL, mode 0600), syncs it and links it into place;
 * JV_EEXIST if dest exists (also when another backup got there first).
 * Removes nothing it did not create. The caller decides where dest may
 * be. Blocks on disk I/O: call off the event loop. */
jv_err jv_store_backup(jv_store *st, const char *dest);
/* The same, reporting pages copied out of the snapshot's pages in p (NULL:
 * none). The copy goes in steps of a bounded number of pages, all from the
 * one read snapshot the function holds throughout (so writers on other
 * connections neither block it nor make it start over). */
jv_err jv_store_backup_progress(jv_store *st, const char *dest, jv_progress *p);

/* Replaces the database at db_path with the backup at src. The node must
 * not be running on db_path (the caller holds the data dir's lock). The
 * backup is checked first (opens as a Jarvis database, integrity check,
 * full verification); a failing backup changes nothing. The old database
 * and its -wal/-shm files are replaced atomically (rename). The restored
 * database is marked (JV_META_RESTORED, "1" unless prepare sets it). If
 * prepare is not NULL it runs on the checked, marked copy before it is
 * installed (the node's succession, node/datadir.h); a failure there
 * changes nothing. Credentials: an API
 * key revoked in the database being replaced stays revoked (read from it
 * in the restore's transaction), and every session ends. msg receives a
 * one-line reason on failure, and on success a warning when the replaced
 * database could not be read (its revocations are not carried), else "". */
typedef jv_err (*jv_restore_fn)(jv_store *copy, void *arg, char *msg,
                                size_t msglen);
jv_err jv_store_restore(const char *src, const char *db_path,
                        jv_restore_fn prepare, void *arg, char *msg,
                        size_t msglen);

typedef struct {
    bool integrity_ok;       /* PRAGMA integrity_check said "ok" */
    char integrity_msg[256]; /* its first complaint otherwise */
    uint64_t batches;        /* batches checked */
    uint64_t ops;
    uint64_t origins;
    uint64_t bad_signatures; /* batches whose signature does not verify */
    uint64_t bad_links;      /* chain breaks: gaps, overlaps, wrong prev */
    uint64_t bad_encodings;  /* bodies that do not decode strictly */
    bool vv_matches;         /* version vector equals the log's heads */
    bool state_matches;      /* materialized state equals a replay */
    char state_msg[256];     /* the first difference found */
    /* Bounded history (snapshot.h): with a base, the log is checked from
     * the cut on and the replay starts from the base. */
    bool base;          /* there is a base */
    bool base_ok;       /* its digest, signature, maker's trust,
                           encoding and vector (= the cut) check */
    char base_msg[160]; /* why not */
    uint64_t base_bytes;
    uint64_t compacted; /* batches at or below the cut not yet
                           deleted (skipped) */
} jv_verify_report;

/* Checks everything: PRAGMA integrity_check; the base, if any (digest,
 * its maker's signature and trust, strict encoding, its vector against the
 * cut); every batch of the log after the cut re-verified (strict decode,
 * signature, chain from the cut, or from the first batch of its origin);
 * the version vector against the log's heads (or the cut); and the
 * materialized state of every kind against the base joined with a replay
 * of the retained log into a scratch database.
 * Returns JV_OK when the checks ran (read the report), or why they could
 * not. Blocking, potentially long: off the event loop. */
jv_err jv_store_verify(jv_store *st, jv_verify_report *r);
/* The same, reporting steps in p (NULL: none): one for the integrity check
 * (with the base's), one per batch of the log (checked and queued for the
 * replay), one per table of materialized state compared with the replay.
 * The total is known (counted in the verification's snapshot) before the
 * first step ends; if the log cannot even be counted, p stays at 0 of 0. */
jv_err jv_store_verify_progress(jv_store *st, jv_verify_report *r,
                                jv_progress *p);
bool jv_verify_ok(const jv_verify_report *r);

#endif
