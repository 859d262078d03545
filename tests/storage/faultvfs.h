/*
 * faultvfs.h - failing disks and failing memory for the storage tests, the
 * way SQLite tests itself:
 *
 *   - a VFS shim over the default one ("jvfault") that counts the I/O calls
 *     of every file it opens (open, delete, read, write, sync, truncate,
 *     file size, lock, shared-memory map and lock) and fails the N-th with
 *     the matching SQLITE_IOERR_* code (a write with SQLITE_FULL on
 *     request), once or from then on;
 *   - the same for the file calls the storage code makes itself (open,
 *     read, write, fsync, link, rename: backup and restore), when the
 *     program is linked with -Wl,--wrap for them (EIO, ENOSPC for a write);
 *   - an SQLite allocator (SQLITE_CONFIG_MALLOC) over the default one that
 *     fails the N-th allocation (or reallocation), once or from then on.
 *
 * jv_fault_install() must run before SQLite initialises (first thing in
 * main). It makes the shim SQLite's default VFS, so every connection goes
 * through it (the store's, a backup's destination, a restore's copy,
 * verify's scratch database); disarmed, it passes everything through
 * untouched. jv_fault_real_default() switches the default back to the real
 * VFS for checks that must not involve the shim at all.
 *
 * Counters are atomic: any thread may do I/O. One arming at a time.
 */
#ifndef JV_FAULTVFS_H
#define JV_FAULTVFS_H

#include <stdbool.h>

typedef enum {
    JV_FAULT_ONCE,    /* only the N-th call fails */
    JV_FAULT_PERSIST, /* the N-th and every later call fail */
} jv_fault_mode;

/* Registers the shim and the allocator; call once, before any SQLite use.
 * Returns false if SQLite was already initialised. */
bool jv_fault_install(void);

/* Fails the n-th (1-based) I/O call from now on; `full` makes a failing
 * write return SQLITE_FULL instead of SQLITE_IOERR_WRITE. Resets the
 * counters. */
void jv_fault_io_arm(long n, jv_fault_mode mode, bool full);
/* Fails the n-th (1-based) SQLite allocation from now on. */
void jv_fault_mem_arm(long n, jv_fault_mode mode);
/* Stops injecting (both kinds); the counters keep their values. */
void jv_fault_disarm(void);

/* Makes the real VFS (true) or the shim (false) SQLite's default for
 * connections opened from now on. */
void jv_fault_real_default(bool real);

/* Calls counted and failures injected since the last arming. */
long jv_fault_calls(void);
long jv_fault_failed(void);

#endif
