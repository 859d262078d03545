/*
 * ddir.h - what jarvisctl knows of a node's data directory: where the
 * default one is, and the names of the files a client reads there (the
 * admin key, the address the running node bound, the lock that says it
 * runs). Nothing else: the data dir belongs to jarvisd, and jarvisctl
 * links none of its code (`jarvisd init|restore` do the offline work).
 *
 * The names and the default must stay those of node/datadir.h;
 * tests/cli/ddir_test.c checks that they do.
 */
#ifndef JVC_DDIR_H
#define JVC_DDIR_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define JVC_DDIR_ADMINKEY "admin.key"
#define JVC_DDIR_APIADDR  "api.addr"
#define JVC_DDIR_LOCK     "jarvisd.lock"

/* $JARVIS_DATA_DIR, else /var/lib/jarvis for root, else
 * $XDG_DATA_HOME/jarvis or ~/.local/share/jarvis. JV_ETOOBIG if it does
 * not fit in out. */
jv_err jvc_ddir_default(char *out, size_t outlen);

/* Joins dir and name into out. JV_ETOOBIG if it does not fit. */
jv_err jvc_ddir_path(const char *dir, const char *name, char *out,
                     size_t outlen);

/* True if a process (a node, or jarvisd doing offline work) holds the
 * data dir's lock. */
bool jvc_ddir_locked(const char *dir);

#endif
