/*
 * faultvfs.c - see faultvfs.h. A file of the shim is the shim's header
 * followed by the real VFS's file; every method passes through after
 * asking fault_hit() whether this call is the one to fail.
 */
#define _GNU_SOURCE /* O_TMPFILE */
#include "faultvfs.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

enum {
    OFF,
    IO,
    MEM
};

static _Atomic int armed = OFF;
static _Atomic long target;  /* the call that fails first (1-based) */
static _Atomic bool persist; /* and every later one */
static _Atomic bool fail_full;
static _Atomic long calls, failed;

static sqlite3_vfs *real_vfs;
static sqlite3_vfs fault_vfs;
static sqlite3_mem_methods real_mem;

/* Counts one call of kind `kind` and says whether it must fail. */
static bool fault_hit(int kind)
{
    if (atomic_load(&armed) != kind)
        return false;
    long k = atomic_fetch_add(&calls, 1) + 1;
    long t = atomic_load(&target);
    if (k == t || (atomic_load(&persist) && k > t)) {
        atomic_fetch_add(&failed, 1);
        return true;
    }
    return false;
}

/* -- files ---------------------------------------------------------------- */

typedef struct {
    sqlite3_file base;
    sqlite3_file *real; /* follows this header in the same allocation */
} fault_file;

#define REAL(f) (((fault_file *)(f))->real)

static int f_close(sqlite3_file *f)
{
    /* Never fails: SQLite must be able to let go of a file. */
    return REAL(f)->pMethods->xClose(REAL(f));
}

static int f_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
    if (fault_hit(IO))
        return SQLITE_IOERR_READ;
    return REAL(f)->pMethods->xRead(REAL(f), p, n, off);
}

static int f_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
    if (fault_hit(IO))
        return atomic_load(&fail_full) ? SQLITE_FULL : SQLITE_IOERR_WRITE;
    return REAL(f)->pMethods->xWrite(REAL(f), p, n, off);
}

static int f_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    if (fault_hit(IO))
        return SQLITE_IOERR_TRUNCATE;
    return REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int f_sync(sqlite3_file *f, int flags)
{
    if (fault_hit(IO))
        return SQLITE_IOERR_FSYNC;
    return REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int f_size(sqlite3_file *f, sqlite3_int64 *size)
{
    if (fault_hit(IO))
        return SQLITE_IOERR_FSTAT;
    return REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int f_lock(sqlite3_file *f, int level)
{
    if (fault_hit(IO))
        return SQLITE_IOERR_LOCK;
    return REAL(f)->pMethods->xLock(REAL(f), level);
}

static int f_unlock(sqlite3_file *f, int level)
{
    return REAL(f)->pMethods->xUnlock(REAL(f), level);
}

static int f_reserved(sqlite3_file *f, int *out)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int f_control(sqlite3_file *f, int op, void *arg)
{
    return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int f_sector(sqlite3_file *f)
{
    return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int f_device(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int f_shm_map(sqlite3_file *f, int pg, int pgsz, int extend,
                     void volatile **pp)
{
    if (fault_hit(IO))
        return SQLITE_IOERR_SHMMAP;
    return REAL(f)->pMethods->xShmMap(REAL(f), pg, pgsz, extend, pp);
}

static int f_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
    return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}

static void f_shm_barrier(sqlite3_file *f)
{
    REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int f_shm_unmap(sqlite3_file *f, int del)
{
    return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static int f_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
    return REAL(f)->pMethods->xFetch(REAL(f), off, n, pp);
}

static int f_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

static const sqlite3_io_methods fault_io = {
    .iVersion = 3,
    .xClose = f_close,
    .xRead = f_read,
    .xWrite = f_write,
    .xTruncate = f_truncate,
    .xSync = f_sync,
    .xFileSize = f_size,
    .xLock = f_lock,
    .xUnlock = f_unlock,
    .xCheckReservedLock = f_reserved,
    .xFileControl = f_control,
    .xSectorSize = f_sector,
    .xDeviceCharacteristics = f_device,
    .xShmMap = f_shm_map,
    .xShmLock = f_shm_lock,
    .xShmBarrier = f_shm_barrier,
    .xShmUnmap = f_shm_unmap,
    .xFetch = f_fetch,
    .xUnfetch = f_unfetch,
};

/* -- the VFS -------------------------------------------------------------- */

static int v_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f,
                  int flags, int *out_flags)
{
    (void)vfs;
    fault_file *ff = (fault_file *)f;
    ff->base.pMethods = NULL; /* SQLite closes only what opened */
    ff->real = (sqlite3_file *)(ff + 1);
    if (fault_hit(IO))
        return SQLITE_CANTOPEN;
    int rc = real_vfs->xOpen(real_vfs, name, ff->real, flags, out_flags);
    if (ff->real->pMethods)
        ff->base.pMethods = &fault_io;
    return rc;
}

static int v_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    (void)vfs;
    if (fault_hit(IO))
        return SQLITE_IOERR_DELETE;
    return real_vfs->xDelete(real_vfs, name, sync_dir);
}

static int v_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    (void)vfs;
    return real_vfs->xAccess(real_vfs, name, flags, out);
}

static int v_fullpath(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    (void)vfs;
    return real_vfs->xFullPathname(real_vfs, name, n, out);
}

static void *v_dlopen(sqlite3_vfs *vfs, const char *name)
{
    (void)vfs;
    return real_vfs->xDlOpen(real_vfs, name);
}

static void v_dlerror(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    real_vfs->xDlError(real_vfs, n, out);
}

static void (*v_dlsym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
    (void)vfs;
    return real_vfs->xDlSym(real_vfs, h, sym);
}

static void v_dlclose(sqlite3_vfs *vfs, void *h)
{
    (void)vfs;
    real_vfs->xDlClose(real_vfs, h);
}

static int v_random(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return real_vfs->xRandomness(real_vfs, n, out);
}

static int v_sleep(sqlite3_vfs *vfs, int us)
{
    (void)vfs;
    return real_vfs->xSleep(real_vfs, us);
}

static int v_time(sqlite3_vfs *vfs, double *out)
{
    (void)vfs;
    return real_vfs->xCurrentTime(real_vfs, out);
}

static int v_lasterr(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return real_vfs->xGetLastError(real_vfs, n, out);
}

static int v_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
    (void)vfs;
    return real_vfs->xCurrentTimeInt64(real_vfs, out);
}

/* -- the storage code's own file calls ------------------------------------ */

/* Backup and restore also copy, sync, link and rename files themselves.
 * The test program is linked with --wrap for these calls, which reroutes
 * the calls of the (static) storage library here; SQLite's own calls go
 * through the VFS above and are not seen twice. */
int __real_open(const char *path, int flags, ...);
ssize_t __real_read(int fd, void *p, size_t n);
ssize_t __real_write(int fd, const void *p, size_t n);
int __real_fsync(int fd);
int __real_link(const char *from, const char *to);
int __real_rename(const char *from, const char *to);

int __wrap_open(const char *path, int flags, ...);
ssize_t __wrap_read(int fd, void *p, size_t n);
ssize_t __wrap_write(int fd, const void *p, size_t n);
int __wrap_fsync(int fd);
int __wrap_link(const char *from, const char *to);
int __wrap_rename(const char *from, const char *to);

int __wrap_open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    if (fault_hit(IO)) {
        errno = EIO;
        return -1;
    }
    return __real_open(path, flags, mode);
}

ssize_t __wrap_read(int fd, void *p, size_t n)
{
    if (fault_hit(IO)) {
        errno = EIO;
        return -1;
    }
    return __real_read(fd, p, n);
}

ssize_t __wrap_write(int fd, const void *p, size_t n)
{
    if (fault_hit(IO)) {
        errno = atomic_load(&fail_full) ? ENOSPC : EIO;
        return -1;
    }
    return __real_write(fd, p, n);
}

int __wrap_fsync(int fd)
{
    if (fault_hit(IO)) {
        errno = EIO;
        return -1;
    }
    return __real_fsync(fd);
}

int __wrap_link(const char *from, const char *to)
{
    if (fault_hit(IO)) {
        errno = EIO;
        return -1;
    }
    return __real_link(from, to);
}

int __wrap_rename(const char *from, const char *to)
{
    if (fault_hit(IO)) {
        errno = EIO;
        return -1;
    }
    return __real_rename(from, to);
}

/* -- memory --------------------------------------------------------------- */

static void *m_malloc(int n)
{
    if (fault_hit(MEM))
        return NULL;
    return real_mem.xMalloc(n);
}

static void *m_realloc(void *p, int n)
{
    if (fault_hit(MEM))
        return NULL;
    return real_mem.xRealloc(p, n);
}

/* -- control -------------------------------------------------------------- */

bool jv_fault_install(void)
{
    sqlite3_mem_methods m;
    if (sqlite3_config(SQLITE_CONFIG_GETMALLOC, &real_mem) != SQLITE_OK)
        return false;
    m = real_mem;
    m.xMalloc = m_malloc;
    m.xRealloc = m_realloc;
    if (sqlite3_config(SQLITE_CONFIG_MALLOC, &m) != SQLITE_OK)
        return false;
    /* sqlite3_vfs_find() initialises SQLite: after the allocator. */
    if (!(real_vfs = sqlite3_vfs_find(NULL)))
        return false;
    fault_vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)sizeof(fault_file) + real_vfs->szOsFile,
        .mxPathname = real_vfs->mxPathname,
        .zName = "jvfault",
        .xOpen = v_open,
        .xDelete = v_delete,
        .xAccess = v_access,
        .xFullPathname = v_fullpath,
        .xDlOpen = v_dlopen,
        .xDlError = v_dlerror,
        .xDlSym = v_dlsym,
        .xDlClose = v_dlclose,
        .xRandomness = v_random,
        .xSleep = v_sleep,
        .xCurrentTime = v_time,
        .xGetLastError = v_lasterr,
        .xCurrentTimeInt64 = v_time64,
    };
    return sqlite3_vfs_register(&fault_vfs, 1) == SQLITE_OK;
}

static void arm(int kind, long n, jv_fault_mode mode, bool full)
{
    atomic_store(&armed, OFF);
    atomic_store(&calls, 0);
    atomic_store(&failed, 0);
    atomic_store(&target, n);
    atomic_store(&persist, mode == JV_FAULT_PERSIST);
    atomic_store(&fail_full, full);
    atomic_store(&armed, kind);
}

void jv_fault_io_arm(long n, jv_fault_mode mode, bool full)
{
    arm(IO, n, mode, full);
}

void jv_fault_mem_arm(long n, jv_fault_mode mode)
{
    arm(MEM, n, mode, false);
}

void jv_fault_disarm(void)
{
    atomic_store(&armed, OFF);
}

void jv_fault_real_default(bool real)
{
    sqlite3_vfs_register(real ? real_vfs : &fault_vfs, 1);
}

long jv_fault_calls(void)
{
    return atomic_load(&calls);
}

long jv_fault_failed(void)
{
    return atomic_load(&failed);
}
