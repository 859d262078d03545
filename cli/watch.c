#include "watch.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "client.h"
#include "output.h"

#define BACKOFF_MAX 30 /* seconds */
#define IDLE_S      45 /* three heartbeats missed */

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

typedef struct {
    jvc_watch *w;
    jv_buf text; /* bytes not yet split into events */
    char id[32], event[32];
    jv_buf data;
    int rc;       /* a callback's exit code */
    bool started; /* hello seen on this connection */
    bool lagged;  /* the node cut us off: reconnect at once */
    bool down;    /* said that the node is not answering */
    char lag_cursor[32];
} conn_state;

static bool want_stop(void *arg)
{
    (void)arg;
    return stop_requested != 0;
}

/* One complete event (fields collected). false to end the transfer. */
static bool dispatch(conn_state *s)
{
    jvc_watch *w = s->w;
    jv_buf_append(&s->data, "", 1);
    const char *data = jv_buf_err(&s->data) ? "" : (const char *)s->data.data;
    json_t *j = json_loads(data, JSON_DECODE_ANY, NULL);
    bool go = true;
    if (!strcmp(s->event, "hello")) {
        if (!w->cursor[0])
            snprintf(w->cursor, sizeof w->cursor, "%s", s->id);
        if (s->down)
            jvc_err("%s: the node answers again; following on", w->who);
        s->down = false;
        if (!w->started && w->on_start)
            s->rc = w->on_start(w->arg, w->cursor);
        w->started = true;
        s->started = true;
    } else if (!strcmp(s->event, "lagged")) {
        s->lagged = true;
        snprintf(s->lag_cursor, sizeof s->lag_cursor, "%s",
                 jvc_str(j, "cursor", ""));
    } else if (s->event[0]) {
        jvc_watch_event e = {s->id, s->event, data, j};
        s->rc = w->on_event(w->arg, &e);
        if (s->id[0])
            snprintf(w->cursor, sizeof w->cursor, "%s", s->id);
    }
    json_decref(j);
    if (s->rc != JVC_EXIT_OK)
        go = false;
    s->id[0] = s->event[0] = '\0';
    jv_buf_reset(&s->data);
    return go;
}

static void field(conn_state *s, const char *line, size_t n)
{
    const char *colon = memchr(line, ':', n);
    size_t nl = colon ? (size_t)(colon - line) : n;
    const char *v = colon ? colon + 1 : line + n;
    if (v < line + n && *v == ' ')
        v++;
    int vl = (int)(line + n - v);
    if (nl == 2 && !memcmp(line, "id", 2))
        snprintf(s->id, sizeof s->id, "%.*s", vl, v);
    else if (nl == 5 && !memcmp(line, "event", 5))
        snprintf(s->event, sizeof s->event, "%.*s", vl, v);
    else if (nl == 4 && !memcmp(line, "data", 4))
        jv_buf_append(&s->data, v, (size_t)vl);
}

static bool sink(void *arg, const char *p, size_t n)
{
    conn_state *s = arg;
    if (jv_buf_append(&s->text, p, n) != JV_OK) {
        s->rc = jvc_oom();
        return false;
    }
    size_t at = 0;
    char *t = (char *)s->text.data;
    for (;;) {
        char *nl = memchr(t + at, '\n', s->text.len - at);
        if (!nl)
            break;
        size_t len = (size_t)(nl - (t + at));
        if (len && t[at + len - 1] == '\r')
            len--;
        if (len == 0) {
            if ((s->event[0] || s->data.len) && !dispatch(s))
                return false;
        } else {
            field(s, t + at, len);
        }
        at = (size_t)(nl - t) + 1;
    }
    memmove(t, t + at, s->text.len - at);
    s->text.len -= at;
    return !stop_requested;
}

static char *watch_path(const jvc_watch *w)
{
    jv_buf b;
    jv_buf_init(&b);
    jv_buf_append(&b, "/v1/watch", 9);
    if (w->kinds)
        jvc_query_add(&b, "kind", w->kinds);
    if (w->prefix)
        jvc_query_add(&b, "prefix", w->prefix);
    jv_buf_append(&b, "", 1);
    if (jv_buf_err(&b)) {
        jv_buf_fini(&b);
        return NULL;
    }
    return (char *)b.data;
}

static void pause_s(long s)
{
    struct timespec ts = {s, 0};
    while (!stop_requested && nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

bool jvc_watch_pause(long s)
{
    pause_s(s);
    return !stop_requested;
}

/* What one connection ended with. */
enum {
    END_RETRY,
    END_AGAIN,
    END_NOW,
    END_STOP
};

static int one_connection(jvc_client *c, jvc_watch *w, const char *path,
                          conn_state *s, char *why, size_t whylen, long *wait_s)
{
    jvc_resp r = {0};
    jvc_stream_opts o = {sink, want_stop, s, IDLE_S,
                         w->cursor[0] ? w->cursor : NULL};
    int rc = jvc_http_stream(c, path, &o, &r);
    *wait_s = -1;
    if (stop_requested || s->rc != JVC_EXIT_OK) {
        jvc_resp_fini(&r);
        return END_STOP;
    }
    if (rc == JVC_EXIT_UNREACHABLE) {
        snprintf(why, whylen, "cannot reach the node: %s", jvc_client_error(c));
        return s->started ? END_AGAIN : END_RETRY;
    }
    if (rc != JVC_EXIT_OK) {
        s->rc = rc;
        return END_STOP;
    }
    if (r.status == 200) {
        jvc_resp_fini(&r);
        if (s->lagged && s->lag_cursor[0])
            snprintf(w->cursor, sizeof w->cursor, "%s", s->lag_cursor);
        snprintf(why, whylen, "the node ended the stream");
        return END_AGAIN;
    }
    if (r.status == 410) {
        const char *now = jvc_str(r.json, "cursor", "");
        jvc_err("%s: the node's log no longer holds the changes after cursor "
                "%s: some were missed; reading the state again and "
                "following from the present",
                w->who, w->cursor);
        snprintf(w->cursor, sizeof w->cursor, "%s", now);
        jvc_resp_fini(&r);
        if (w->on_expired && (s->rc = w->on_expired(w->arg)) != JVC_EXIT_OK)
            return END_STOP;
        return END_NOW;
    }
    if (r.status == 429 || r.status >= 500) {
        snprintf(why, whylen, "%s (HTTP %ld)",
                 r.status == 429 ? "rate limited" : "the node cannot serve",
                 r.status);
        *wait_s = r.retry_after;
        jvc_resp_fini(&r);
        return END_RETRY;
    }
    s->rc = jvc_fail(c, w->who, &r);
    jvc_resp_fini(&r);
    return END_STOP;
}

int jvc_watch_run(jvc_client *c, jvc_watch *w)
{
    struct sigaction sa;
    long backoff = 0;
    char why[512];
    char *path = watch_path(w);
    conn_state s;
    if (!path)
        return jvc_oom();
    memset(&s, 0, sizeof s);
    s.w = w;
    jv_buf_init(&s.text);
    jv_buf_init(&s.data);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    jvc_client_quiet(c, true);
    fflush(stdout);
    while (!stop_requested) {
        long wait_s;
        s.lagged = false;
        s.started = false;
        jv_buf_reset(&s.text);
        jv_buf_reset(&s.data);
        s.id[0] = s.event[0] = '\0';
        int end = one_connection(c, w, path, &s, why, sizeof why, &wait_s);
        if (end == END_STOP)
            break;
        if (s.started)
            backoff = 0;
        if (end == END_NOW || (end == END_AGAIN && s.started))
            continue; /* at once: the stream was fine until now */
        backoff = backoff ? backoff * 2 : 1;
        if (backoff > BACKOFF_MAX)
            backoff = BACKOFF_MAX;
        if (!s.down)
            jvc_err("%s: %s; retrying until it answers", w->who, why);
        s.down = true;
        pause_s(wait_s >= 1 ? (wait_s < BACKOFF_MAX ? wait_s : BACKOFF_MAX)
                            : backoff);
    }
    jv_free(path);
    jv_buf_fini(&s.text);
    jv_buf_fini(&s.data);
    fflush(stdout);
    return stop_requested ? JVC_EXIT_OK : s.rc;
}
