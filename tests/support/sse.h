/*
 * sse.h - a small blocking Server-Sent Events client for tests and
 * benchmarks of GET /v1/watch (docs/api.md "Change streams").
 *
 * One plain TCP connection per stream (no libcurl: tests need to stop
 * reading on purpose, and to shrink the socket's receive buffer). The
 * answer's chunked framing is undone as bytes arrive; events are split at
 * blank lines and their id, event and data fields kept.
 *
 * Threads: a stream belongs to one thread.
 */
#ifndef JV_SSE_H
#define JV_SSE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char id[32];    /* "" when the event had no id line */
    char event[32]; /* "" when none ("message") */
    char *data;     /* NUL-terminated, malloc'd; "" when none */
    bool comment;   /* a comment only (": ping") */
} jv_sse_event;

typedef struct {
    int fd;
    int status; /* the answer's status */
    char *body; /* a non-200 answer's body (NUL-terminated), else NULL */
    bool chunked;
    bool closed; /* the server ended the stream */
    /* Bytes read but not yet parsed, raw and de-chunked. */
    char *raw;
    size_t raw_len, raw_cap;
    size_t chunk_left; /* bytes of the current chunk still to come */
    bool in_chunk_crlf;
    char *text;
    size_t text_len, text_cap;
} jv_sse;

/* Connects to base_url ("http://127.0.0.1:port"), sends GET path with the
 * bearer token (NULL: none) and Last-Event-ID (NULL: none), and reads the
 * answer's head (and the whole body of a non-200 answer). rcvbuf > 0
 * sets SO_RCVBUF before connecting. 0 when an answer came (see status),
 * -1 otherwise. */
int jv_sse_open(jv_sse *s, const char *base_url, const char *path,
                const char *token, const char *last_event_id, int rcvbuf,
                int timeout_ms);
/* The next event or comment, waiting at most timeout_ms: 1 with ev filled
 * (release with jv_sse_event_fini), 0 on timeout, -1 when the stream
 * ended (s->closed) or failed. */
int jv_sse_next(jv_sse *s, jv_sse_event *ev, int timeout_ms);
void jv_sse_event_fini(jv_sse_event *ev);
void jv_sse_close(jv_sse *s); /* accepts a zeroed stream */

#endif
