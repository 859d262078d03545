/*
 * watch.h - change streams: GET /v1/watch, Server-Sent Events of what the
 * node applies (docs/api.md has the wire format).
 *
 *   node's loop              decode thread            streams' loop
 *   -----------              -------------            -------------
 *   commit done:             reads batches after      (its own thread and
 *   jv_watch_kick ---------> the last it decoded      libuv loop)
 *                            (own read connection),
 *                            renders each op once --> ring of recent events
 *   jv_watch_peer/job -----> places node events       (bounded: count and
 *   (queued)                 after them           --> bytes)
 *                            catch-up jobs: a
 *   GET /v1/watch: first --> resumed stream's     --> each stream pulls from
 *   job, then the answer     events from the log      its own position and
 *   (200: the connection                               writes its socket
 *   is handed over) ------------------------------->
 *
 * Both threads run 10 nice steps below the node: on a busy machine the
 * writers come first.
 *
 * A cursor is a position in the log in apply order: the batch's rowid
 * (storage/changes.h keeps rowids from ever being reused) and how many of
 * its operations were delivered, so a resume is exact:
 *
 *   cursor = rowid << 26 | k << 13 | j
 *     k: ops of that batch delivered (1..4096), JV_CURSOR_END when all
 *     j: live node events (peer reachable, backup...) after that position
 *
 * Each event is decoded once, in the decode thread; a stream only copies
 * text. A stream holds at most one piece (JV_HTTP_CHUNK) of output; a
 * client that reads too slowly falls off the ring and is told so (event
 * "lagged" with its cursor) and disconnected.
 * Nothing a stream does ever waits: the writer and the other streams go
 * on.
 *
 * Threading: every function here runs on the node's loop thread.
 */
#ifndef JV_WATCH_H
#define JV_WATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "http.h"
#include "types.h"

typedef struct jv_watch jv_watch;
struct jv_node;
struct api_ctx;

#define JV_CURSOR_ROW_SHIFT 26
#define JV_CURSOR_K_SHIFT   13
#define JV_CURSOR_END       4097u
#define JV_CURSOR_MAX_ROWID ((INT64_C(1) << (63 - JV_CURSOR_ROW_SHIFT)) - 1)

/* Kinds of events (bit masks for filters). */
enum {
    JV_WATCH_COUNTER = 1,
    JV_WATCH_AUDIT = 2,
    JV_WATCH_CONFIG = 4,
    JV_WATCH_ARCHIVE = 8,
    JV_WATCH_NODE = 16,
    JV_WATCH_ALL = 31,
};

#define JV_WATCH_MAX_PREFIX 1024

/* What a stream asked for: kinds, key prefix, and where to start. */
typedef struct {
    unsigned kinds;
    char prefix[JV_WATCH_MAX_PREFIX + 1];
    size_t prefix_len;
    bool has_cursor;
    uint64_t cursor;
} jv_watch_query;

/* Parses a cursor (a decimal number whose k part is at most
 * JV_CURSOR_END). JV_EINVAL otherwise. Pure. */
jv_err jv_watch_cursor_parse(jv_str s, uint64_t *out);

/* Parses the query string (kind, prefix, cursor) and the Last-Event-ID
 * header (may be empty; it wins over ?cursor=). JV_EINVAL with a reason
 * in why for anything malformed. Pure. */
jv_err jv_watch_query_parse(jv_str query, jv_str last_event_id,
                            jv_watch_query *q, char *why, size_t whylen);

/* Opens the watch's own read connection to n's database and starts its
 * thread. */
jv_err jv_watch_start(struct jv_node *n, jv_watch **out);

/* The log may have grown (after every commit). */
void jv_watch_kick(jv_watch *w);

/* Live node events (not replayed on resume). addr and id may be NULL. */
void jv_watch_peer(jv_watch *w, const char *addr, const jv_id *id,
                   bool reachable);
/* Backup or verify progress: what is "backup" or "verify", state
 * "running", "done" or "failed"; done and total are counts (0 when not
 * known). */
void jv_watch_job(jv_watch *w, const char *what, const char *state,
                  uint64_t done, uint64_t total);

/* The limits of the session API (jv_node_api_limits) as they apply to
 * streams: at most max_conns/2 open, max_conns_per_addr from one client
 * address, the send timeout. At start and on a reload. Accepts NULL. */
void jv_watch_set_limits(jv_watch *w, const jv_http_opts *ho);

/* Open streams. Accepts NULL. */
size_t jv_watch_streams(const jv_watch *w);

/* Ends every stream promptly (each gets its last piece), stops the thread
 * and closes the connection; the watch is freed once its last stream has
 * ended. Accepts NULL. */
void jv_watch_stop(jv_watch *w);

/* GET /v1/watch (api.c's route table). */
void api_watch(struct api_ctx *c);

#endif
