/*
 * err.h - the one error type of the whole project.
 *
 * Every function that can fail returns jv_err: JV_OK (0) on success, a
 * negative code otherwise. Codes of the storage, network, event-loop and
 * msgpack libraries are translated into these at the edge of the module
 * that calls them.
 */
#ifndef JV_ERR_H
#define JV_ERR_H

/* One table gives both the enum and jv_strerror(). */
#define JV_ERR_MAP(X)                                                   \
    X(OK, 0, "success")                                                 \
    X(ENOMEM, -1, "out of memory")                                      \
    X(EINVAL, -2, "invalid argument")                                   \
    X(EDECODE, -3, "malformed encoding")                                \
    X(ETRUNC, -4, "truncated input")                                    \
    X(ETOOBIG, -5, "input exceeds a size limit")                        \
    X(ETYPE, -6, "wrong type in encoding")                              \
    X(ETRAILING, -7, "trailing bytes after the encoding")               \
    X(ENONCANON, -8, "encoding is not canonical")                       \
    X(ESKEW, -9, "clock stamp too far in the future")                   \
    X(ESIG, -10, "bad signature")                                       \
    X(ELINK, -11, "batch does not link to its origin's previous batch") \
    X(EGAP, -12, "batch leaves a gap in its origin's sequence")         \
    X(EDUP, -13, "already applied")                                     \
    X(EUNTRUSTED, -14, "origin is not trusted")                         \
    X(ENOTFOUND, -15, "not found")                                      \
    X(EEXIST, -16, "already exists")                                    \
    X(EIO, -17, "input/output error")                                   \
    X(ESTORAGE, -18, "storage error")                                   \
    X(ECORRUPT, -19, "data is damaged")                                 \
    X(EFOREIGN, -20, "not a Jarvis database")                           \
    X(EVERSION, -21, "made by a newer version of Jarvis")               \
    X(EBUSY, -22, "resource busy")                                      \
    X(ENET, -23, "network error")                                       \
    X(ETIMEDOUT, -24, "timed out")                                      \
    X(ECRYPTO, -25, "decryption failed or unknown key")                 \
    X(EPERM, -26, "permission denied")                                  \
    X(EAUTH, -27, "authentication failed")                              \
    X(ELIMIT, -28, "rate limit exceeded")                               \
    X(ECLOSED, -29, "closed")                                           \
    X(EOVERFLOW, -30, "value overflow")                                 \
    X(ESTATE, -31, "operation not valid in this state")                 \
    X(EEQUIVOCATE, -32, "origin signed two different batches for one sequence")

typedef enum {
#define JV_ERR_ENUM(name, code, text) JV_##name = (code),
    JV_ERR_MAP(JV_ERR_ENUM)
#undef JV_ERR_ENUM
} jv_err;

/* A static, never-NULL description of err. Any thread. */
const char *jv_strerror(jv_err err);

/* The symbolic name ("EGAP"), for logs and metrics labels. Any thread. */
const char *jv_errname(jv_err err);

#endif
