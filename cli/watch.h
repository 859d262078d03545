/*
 * watch.h - following a node's change stream (GET /v1/watch) for
 * `jarvisctl watch` and `audit tail --follow`.
 *
 * jvc_watch_run() reads events as they come and hands each one to the
 * caller. When the stream ends (the node restarted, the connection broke,
 * stalled past three missed heartbeats, or the node said "lagged") it
 * connects again, with backoff from 1 to 30 s while the node cannot be
 * reached, rate limits or cannot serve (said once on stderr, and once
 * when it answers again), and resumes from the last event's cursor:
 * nothing is lost or shown twice. When the node answers that the cursor
 * expired, the caller's expired() is told (to read the state again), and
 * the stream goes on from the node's present cursor. SIGINT or SIGTERM
 * end it with JVC_EXIT_OK.
 */
#ifndef JVC_WATCH_H
#define JVC_WATCH_H

#include <jansson.h>
#include <stdbool.h>

#include "cli.h"

typedef struct {
    const char *id;    /* the event's cursor ("" for none) */
    const char *event; /* counter, audit, config, archive, node */
    const char *data;  /* one line of JSON */
    json_t *json;      /* data parsed (NULL if it is not JSON) */
} jvc_watch_event;

typedef struct {
    const char *who;    /* for messages: "watch", "audit tail" */
    const char *kinds;  /* ?kind= (NULL: all) */
    const char *prefix; /* ?prefix= (NULL: none) */
    char cursor[32];    /* where to start ("": now); then the last seen */
    /* An event; a non-zero exit code ends the watch with it. */
    int (*on_event)(void *arg, const jvc_watch_event *e);
    /* Told once the stream started (the first hello), may be NULL. */
    int (*on_start)(void *arg, const char *cursor);
    /* The cursor expired: changes were missed (may be NULL). */
    int (*on_expired)(void *arg);
    void *arg;
    bool started; /* internal: on_start was called */
} jvc_watch;

/* Sleeps s seconds unless SIGINT or SIGTERM came (then false, at once).
 * For callbacks that retry on their own. */
bool jvc_watch_pause(long s);

/* Follows until SIGINT or SIGTERM (JVC_EXIT_OK), or until a callback or
 * an answer that retrying cannot mend (401, 403, 400) ends it. */
int jvc_watch_run(jvc_client *c, jvc_watch *w);

#endif
