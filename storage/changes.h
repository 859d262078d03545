/*
 * changes.h - the signed log in the order it was applied, for change
 * streams (node/watch.h).
 *
 * Every batch row has a rowid that grows with each insert: the order in
 * which this node applied the batches, which keeps each origin's order.
 * Migration 6 makes that order safe to hand out as a cursor: the largest
 * rowid ever deleted is kept (meta 'batch_deleted_max'), and a batch never
 * gets a rowid at or below it. So a position p is still complete when
 * p >= deleted_max: every batch after it is still in the log.
 *
 * Blocking (disk reads); any thread that owns the connection.
 */
#ifndef JV_CHANGES_H
#define JV_CHANGES_H

#include "query.h"

typedef struct {
    int64_t rowid;
    jv_id origin;
    uint64_t first_seq;
    uint64_t hlc;
    const uint8_t *body; /* valid during the callback */
    size_t len;
} jv_change_row;

/* Return JV_OK to go on, anything else stops the scan and is returned
 * (JV_ECLOSED stops it without an error). */
typedef jv_err (*jv_change_cb)(void *arg, const jv_change_row *r);

/* The newest rowid (0 when the log is empty and nothing was deleted) and
 * the largest rowid ever deleted (0 when none). newest >= deleted_max. */
jv_err jv_changes_bounds(jv_store *st, int64_t *newest, int64_t *deleted_max);

/* Batches with rowid >= from, in rowid order, at most limit of them. */
jv_err jv_changes_from(jv_store *st, int64_t from, size_t limit,
                       jv_change_cb cb, void *arg);

/* The origin's batches whose first_seq is below before_seq, newest first,
 * at most limit of them. */
jv_err jv_changes_origin_before(jv_store *st, const jv_id *origin,
                                uint64_t before_seq, size_t limit,
                                jv_change_cb cb, void *arg);

/* A read transaction around several calls (one snapshot of the log). */
jv_err jv_changes_begin(jv_store *st);
void jv_changes_end(jv_store *st);

#endif
