/*
 * http.h - the session API's HTTP/1.1 server, on the node's libuv loop.
 *
 * Parsing is http-parser's (Debian's libhttp-parser); this module owns the
 * connections: listening (TCP or a Unix socket), keep-alive, pipelined
 * requests answered in order, bounded headers and bodies, timeouts, and a
 * graceful stop. It knows nothing of routes or JSON beyond its own errors.
 *
 * A complete request is handed to the handler on the loop thread. The
 * handler answers it exactly once with jv_http_respond(), at once or later
 * (after a commit, say); until then the connection reads nothing more, so
 * pipelined requests are answered in order. A request whose client went
 * away is still answered by the handler: the response is dropped and the
 * request freed.
 *
 * Errors the server answers itself, with a JSON body
 * {"error":{"code":...,"message":...}} and Connection: close:
 *   400 malformed request       408 request not complete in time
 *   413 body over max_body      431 headers over max_header_bytes
 * "Expect: 100-continue" is honoured (413 at once when the declared length
 * is over the bound, "100 Continue" otherwise).
 *
 * Threading: everything here runs on the loop thread. The process must
 * ignore SIGPIPE: libuv writes with write(2), so a client that resets its
 * connection while an answer is being written would otherwise kill it.
 */
#ifndef JV_HTTP_H
#define JV_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "types.h"

typedef struct jv_http_server jv_http_server;
typedef struct jv_http_req jv_http_req;

/*
 * Connection limits. A connection is "waiting" while it has not handed us a
 * complete request head: idle between requests, or still sending headers.
 * Waiting connections form a list, oldest first. When a new connection
 * would pass max_conns_per_addr (per client IP address; Unix sockets are
 * not counted per address) or max_conns, the oldest waiting connection
 * (of that address, for the first) is closed to admit it; when none is
 * waiting, the new connection is closed at once. So one client holding
 * thousands of idle or slow connections cannot shut others out: it loses
 * its own oldest connections instead. At or past three quarters of
 * max_conns the server is "busy": idle connections get idle_busy_ms
 * instead of idle_timeout_ms, and those idle longer are closed as new
 * connections arrive.
 */
typedef struct {
    size_t max_body;             /* default 1 MiB */
    const char *big_body_path;   /* paths starting with this (bundles) */
    size_t max_big_body;         /* ... take bodies up to this instead */
    size_t max_header_bytes;     /* request line + headers; default 16 KiB */
    unsigned max_conns;          /* default 4096 */
    unsigned max_conns_per_addr; /* default 2048 */
    uint64_t idle_timeout_ms;    /* keep-alive idle; default 60000 */
    uint64_t idle_busy_ms;       /* idle when busy; default 5000 */
    uint64_t header_timeout_ms;  /* first byte to end of headers; 10000 */
    uint64_t request_timeout_ms; /* first byte to full body; default 10000 */
    uint64_t send_timeout_ms;    /* one write not taken by the client:
                                    the connection is closed; 30000 */
    size_t stream_buffer;        /* bytes of streamed answers held in
                                    memory at once, all connections;
                                    default 32 MiB */
    /* Connections handed over by jv_http_detach() and still open, which
     * count against max_conns (they hold descriptors); called on the
     * loop thread. NULL: none. jv_http_set_limits() keeps the one in use
     * when given NULL. */
    size_t (*handed_over)(void *arg);
    void *handed_over_arg;
} jv_http_opts;

/* Called on the loop thread for every complete request. */
typedef void (*jv_http_handler)(void *arg, jv_http_req *req);

void jv_http_opts_default(jv_http_opts *o);

jv_err jv_http_server_new(uv_loop_t *loop, const jv_http_opts *o,
                          jv_http_handler handler, void *arg,
                          jv_http_server **out);

/* Replaces the limits (a settings reload). Each applies from its next
 * check on: a new connection, a new request head or body, a deadline
 * set from now on, the stream budget at once; nothing open is closed for
 * it. JV_EINVAL (nothing changed) for options jv_http_server_new()
 * would refuse. Loop thread. */
jv_err jv_http_set_limits(jv_http_server *s, const jv_http_opts *o);

/* Starts listening on addr: "127.0.0.1:7410", "[::1]:7410", "0.0.0.0:0" or
 * "unix:/path/api.sock" (a stale socket file is replaced; the file gets
 * mode 0660). Port 0 picks a free port. bound (if not NULL) receives the
 * address actually bound, in the same syntax. Several listeners may be
 * started. */
jv_err jv_http_listen(jv_http_server *s, const char *addr, char *bound,
                      size_t boundlen);

/* Stops accepting new connections (closes the listeners) and closes idle
 * keep-alive connections; requests in flight continue and their
 * connections close after their response. */
void jv_http_stop_accepting(jv_http_server *s);

/* Requests handed to the handler and not yet answered. */
size_t jv_http_inflight(const jv_http_server *s);
/* Answers given but not yet all written to their connections (a large
 * body, a streamed answer, a client that reads slowly). Each ends written
 * or with its connection closed (at the latest when the client has taken
 * nothing for send_timeout_ms). */
size_t jv_http_writing(const jv_http_server *s);
/* Open connections, with those handed over (jv_http_detach). */
size_t jv_http_conns(const jv_http_server *s);

/* Closes every connection (dropping unanswered requests' connections; the
 * requests themselves stay valid until answered, and answers not written
 * yet are cut short) and every listener, then calls done(arg) once all
 * libuv handles are closed. The server is freed when its last request is
 * answered after that, or at once if none is pending. Call
 * jv_http_stop_accepting() and wait for jv_http_inflight() and
 * jv_http_writing() to reach 0 first for a graceful stop. */
void jv_http_server_close(jv_http_server *s, void (*done)(void *), void *arg);

/* -- request accessors (valid until the request is answered) -------------- */

/* "GET", "POST", ... (http-parser's names). */
const char *jv_http_method(const jv_http_req *r);
/* Path of the request target, still percent-encoded, without the query. */
jv_str jv_http_path(const jv_http_req *r);
/* Query string without '?', still percent-encoded; empty when none. */
jv_str jv_http_query(const jv_http_req *r);
/* The first header of that name (case-insensitive); empty when absent. */
jv_str jv_http_header(const jv_http_req *r, const char *name);
const uint8_t *jv_http_body(const jv_http_req *r, size_t *len);
/* The client's address ("127.0.0.1:50312", "unix"). */
const char *jv_http_remote(const jv_http_req *r);
/* uv_hrtime() when the request's first byte arrived. */
uint64_t jv_http_start_ns(const jv_http_req *r);

/* Answers the request: status line, Content-Type (if not NULL),
 * Content-Length, Connection, then `headers` verbatim (each line ending in
 * "\r\n"; may be NULL), then the body (copied). Frees the request.
 * Exactly once per request. */
void jv_http_respond(jv_http_req *r, int status, const char *content_type,
                     const char *headers, const void *body, size_t len);

/* -- streamed answers ------------------------------------------------------
 *
 * A large answer is produced piece by piece as the client reads it: the
 * server calls pull() whenever the connection can take more, and pull()
 * appends the next piece (about JV_HTTP_CHUNK bytes, one item more at
 * most). An answer that ends within its first piece goes out with a
 * Content-Length, exactly like jv_http_respond(); a longer one with
 * "Transfer-Encoding: chunked" (HTTP/1.1) or delimited by closing the
 * connection (HTTP/1.0). The memory of a streamed answer is one piece per
 * connection; past the first piece, the pieces held by all connections
 * together are bounded by stream_buffer, beyond which streams wait for
 * others to drain (holding nothing meanwhile). A client
 * that takes nothing of a piece for send_timeout_ms is disconnected. */
#define JV_HTTP_CHUNK 16384

/* Room for a chunk-size line: 8 hex digits and CRLF (leading zeros are
 * allowed, RFC 9112 7.1), filled in once the piece's length is known. */
#define JV_HTTP_CHUNK_HEAD 10
/* Writes the chunk-size line of a piece of n bytes (n < 4 GiB). */
void jv_http_chunk_line(char out[JV_HTTP_CHUNK_HEAD], size_t n);

typedef struct jv_http_stream jv_http_stream;

typedef enum {
    JV_HTTP_MORE,  /* appended; call again when there is room */
    JV_HTTP_WAIT,  /* nothing more now: jv_http_stream_resume() later */
    JV_HTTP_END,   /* appended the last bytes (maybe none) */
    JV_HTTP_ABORT, /* failed: the connection is closed, answer cut short */
} jv_http_pull;

/* Called on the loop thread; appends to out (never resets it). st is valid
 * until end() has been called. */
typedef jv_http_pull (*jv_http_pull_fn)(void *arg, jv_http_stream *st,
                                        jv_buf *out);
/* Called exactly once on the loop thread when the answer is over: complete
 * (all of it written) or not (client gone, aborted, server closed). Frees
 * arg as the caller needs; pull() is not called after it. */
typedef void (*jv_http_end_fn)(void *arg, bool complete);

/* Answers the request with a body produced by pull(). Frees the request.
 * end() may run before this returns. */
void jv_http_respond_stream(jv_http_req *r, int status,
                            const char *content_type, const char *headers,
                            jv_http_pull_fn pull, jv_http_end_fn end,
                            void *arg);
/* Hands the connection over to answer the request elsewhere (change
 * streams, served by their own loop): head gets the answer's status line
 * and headers, for a body of unknown length (chunked when chunked comes
 * back true, else ended by closing) and "Connection: close"; fd a
 * duplicate of the socket (close-on-exec), is_unix whether it is a Unix
 * socket. The server then closes its own descriptor and forgets the
 * connection (opts.handed_over counts it from then on); the new owner
 * writes head first and closes fd when the answer ends. Frees the
 * request. On an error (the client is gone: JV_ECLOSED; no descriptor:
 * JV_ENET; JV_ENOMEM) the connection is closed and fd is -1. */
jv_err jv_http_detach(jv_http_req *r, int status, const char *content_type,
                      const char *headers, jv_buf *head, int *fd, bool *is_unix,
                      bool *chunked);

/* After pull() returned JV_HTTP_WAIT: there is more to pull now. Loop
 * thread only, never from inside pull(); a no-op when the stream is not
 * waiting. */
void jv_http_stream_resume(jv_http_stream *st);

/* What the limits did since the server started. */
typedef struct {
    uint64_t evicted;   /* waiting connections closed to admit new ones */
    uint64_t refused;   /* new connections closed: nothing to evict */
    uint64_t timed_out; /* closed by a header, request or send deadline */
} jv_http_stats;
void jv_http_stats_get(const jv_http_server *s, jv_http_stats *out);

/* Percent-decodes s into out, replacing its contents (NUL-terminated, the
 * NUL not counted in out->len; "+" stays "+"). JV_EINVAL on a bad escape or
 * a decoded NUL byte. */
jv_err jv_http_unescape(jv_str s, jv_buf *out);

/* Finds `name` in a query string and percent-decodes its value into out
 * as jv_http_unescape() does, but "+" means space here. The first match
 * wins; keys are compared decoded. JV_ENOTFOUND when absent (out is left
 * alone). */
jv_err jv_http_query_param(jv_str query, const char *name, jv_buf *out);

/* Reason phrase for a status code ("Not Found"). */
const char *jv_http_reason(int status);

#endif
