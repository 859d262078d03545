/*
 * trustview.h - everything the trust list decides, read from the store at
 * once and kept in memory.
 *
 * The event loop checks a peer's trust on every message and lists the
 * trust entries for its admin answers; it asks this view instead of the
 * database. The writer thread reads a new view after a job that applied
 * a trust entry or a succession (jv_store_trust_gen moved), and the loop
 * swaps it in before that job's requests hear back, so the view is never
 * behind a write the loop has acknowledged.
 *
 * A view is immutable once read: any thread may read it, one owner frees
 * it.
 */
#ifndef JV_TRUSTVIEW_H
#define JV_TRUSTVIEW_H

#include "query.h"
#include "store.h"

typedef struct jv_trustview jv_trustview;

/* Reads the view in one read snapshot of st. Any thread that owns st. */
jv_err jv_trustview_read(jv_store *st, jv_trustview **out);
void jv_trustview_free(jv_trustview *v);

/* jv_store_is_trusted's answer for id, as of the read. */
bool jv_trustview_trusted(const jv_trustview *v, const jv_id *id);

/* id's own entry of the trust list (its name borrowed from v), or NULL
 * when it has none. */
const jv_trust_row *jv_trustview_entry(const jv_trustview *v, const jv_id *id);

/* Calls cb for each entry of the trust list, by node id, as
 * jv_store_trust_list does; stops at the first error cb returns. */
jv_err jv_trustview_each(const jv_trustview *v, jv_trust_cb cb, void *arg);

/* Entries of the trust list. */
size_t jv_trustview_entries(const jv_trustview *v);

#endif
