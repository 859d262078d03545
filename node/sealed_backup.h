/*
 * sealed_backup.h - an encrypted backup (net/bseal.h) of a live database.
 */
#ifndef JV_SEALED_BACKUP_H
#define JV_SEALED_BACKUP_H

#include "backup.h"
#include "bseal.h"
#include "store.h"

/* Backs the database up (jv_store_backup) to a temporary file next to
 * dest, seals it under k into another temporary file, syncs it and links
 * it into place as dest; both temporaries are removed whatever happens.
 * JV_EEXIST if dest exists. why receives the reason of a failure. The
 * unencrypted copy exists in dest's directory (the backup dir) only while
 * this runs. Blocking: off the event loop. p (NULL: none) counts the
 * copy's pages (jv_store_backup_progress); the sealing that follows the
 * copy shows as done == total. */
jv_err jv_sealed_backup(jv_store *st, const char *dest, const jv_bseal_key *k,
                        jv_progress *p, char *why, size_t whylen);

#endif
