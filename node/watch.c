#include "watch.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "alloc.h"
#include "api_int.h"
#include "changes.h"
#include "hlc.h"
#include "log.h"
#include "node.h"
#include "timefmt.h"

#define RING_EVENTS  32768u      /* power of two */
#define RING_BYTES   (16u << 20) /* text held by the ring */
#define OUT_BYTES    (16u << 20) /* decoded, not yet taken by the loop */
#define LIVE_PAGE    128         /* batches per read of the live path */
#define CATCHUP_PAGE 64          /* batches per read of a catch-up job */
#define CATCHUP_TEXT (64u << 10) /* text per catch-up job */
#define PING_MS      15000       /* heartbeat on an idle stream */
#define TIMER_MS     1000 /* pings and send timeouts are checked this often */
/* New events wake the streams this long after they arrive: under load
 * each stream then writes pieces of many events at once (fewer wakeups
 * and system calls for the node and its clients), idle a change shows
 * within this delay. */
#define FLUSH_MS 20
/* At a stop, streams get this long to take their last piece. */
#define GRACE_MS 1000
/* The streams' threads run this much below the rest of the node: on a
 * busy machine writes and reads come first, streams take what is left
 * and a stream that falls behind is cut off with its cursor. */
#define WATCH_NICE   10
#define ADDR_BUCKETS 256
#define BACK_BATCHES 512 /* a counter's previous share: how far back */
#define DMAP_BUCKETS 4096u
#define DMAP_MAX     (1u << 17) /* entries before the map starts over */
#define K_MASK       ((UINT64_C(1) << 13) - 1)

/* -- cursors and queries (pure) ------------------------------------------ */

static uint64_t cur_make(int64_t rowid, uint64_t k)
{
    return (uint64_t)rowid << JV_CURSOR_ROW_SHIFT | k << JV_CURSOR_K_SHIFT;
}

static uint64_t cur_end(int64_t rowid)
{
    return cur_make(rowid, JV_CURSOR_END);
}

static int64_t cur_rowid(uint64_t c)
{
    return (int64_t)(c >> JV_CURSOR_ROW_SHIFT);
}

/* Ops of the cursor's batch already delivered; JV_CURSOR_END for all. */
static uint64_t cur_k(uint64_t c)
{
    uint64_t k = (c >> JV_CURSOR_K_SHIFT) & K_MASK;
    return k > JV_CURSOR_END ? JV_CURSOR_END : k;
}

jv_err jv_watch_cursor_parse(jv_str s, uint64_t *out)
{
    uint64_t v = 0;
    if (s.n == 0 || s.n > 20)
        return JV_EINVAL;
    for (size_t i = 0; i < s.n; i++) {
        unsigned d = (unsigned char)s.p[i] - '0';
        if (d > 9 || (i == 0 && d == 0 && s.n > 1))
            return JV_EINVAL;
        if (v > (UINT64_MAX - d) / 10)
            return JV_EINVAL;
        v = v * 10 + d;
    }
    if (cur_rowid(v) > JV_CURSOR_MAX_ROWID || v > INT64_MAX)
        return JV_EINVAL;
    *out = v;
    return JV_OK;
}

static const struct {
    const char *name;
    unsigned bit;
} kind_names[] = {
    {"counter", JV_WATCH_COUNTER}, {"audit", JV_WATCH_AUDIT},
    {"config", JV_WATCH_CONFIG},   {"archive", JV_WATCH_ARCHIVE},
    {"node", JV_WATCH_NODE},
};

static const char *kind_name(unsigned bit)
{
    for (size_t i = 0; i < sizeof(kind_names) / sizeof(kind_names[0]); i++)
        if (kind_names[i].bit == bit)
            return kind_names[i].name;
    return "node";
}

static jv_err parse_kinds(jv_str v, unsigned *out, char *why, size_t whylen)
{
    unsigned kinds = 0;
    size_t at = 0;
    while (at <= v.n) {
        size_t end = at;
        while (end < v.n && v.p[end] != ',')
            end++;
        jv_str one = {v.p + at, end - at};
        unsigned bit = 0;
        for (size_t i = 0; i < sizeof(kind_names) / sizeof(kind_names[0]); i++)
            if (jv_str_eq(one, jv_str_c(kind_names[i].name)))
                bit = kind_names[i].bit;
        if (!bit) {
            snprintf(why, whylen,
                     "kind must be a comma-separated list of counter, audit, "
                     "config, archive, node");
            return JV_EINVAL;
        }
        kinds |= bit;
        at = end + 1;
    }
    *out = kinds;
    return JV_OK;
}

jv_err jv_watch_query_parse(jv_str query, jv_str last_event_id,
                            jv_watch_query *q, char *why, size_t whylen)
{
    jv_buf b;
    jv_err err = JV_OK, e;
    jv_buf_init(&b);
    memset(q, 0, sizeof(*q));
    q->kinds = JV_WATCH_ALL;
    if ((e = jv_http_query_param(query, "kind", &b)) == JV_OK) {
        if ((err = parse_kinds((jv_str){(const char *)b.data, b.len}, &q->kinds,
                               why, whylen)))
            goto out;
    } else if (e != JV_ENOTFOUND) {
        snprintf(why, whylen, "bad percent-encoding in kind");
        err = JV_EINVAL;
        goto out;
    }
    if ((e = jv_http_query_param(query, "prefix", &b)) == JV_OK) {
        if (b.len > JV_WATCH_MAX_PREFIX) {
            snprintf(why, whylen, "prefix is longer than %d bytes",
                     JV_WATCH_MAX_PREFIX);
            err = JV_EINVAL;
            goto out;
        }
        if (b.len)
            memcpy(q->prefix, b.data, b.len);
        q->prefix_len = b.len;
    } else if (e != JV_ENOTFOUND) {
        snprintf(why, whylen, "bad percent-encoding in prefix");
        err = JV_EINVAL;
        goto out;
    }
    jv_str cur = last_event_id;
    if (!cur.n) {
        e = jv_http_query_param(query, "cursor", &b);
        if (e != JV_OK && e != JV_ENOTFOUND) {
            snprintf(why, whylen, "bad percent-encoding in cursor");
            err = JV_EINVAL;
            goto out;
        }
        if (e == JV_OK)
            cur = (jv_str){b.len ? (const char *)b.data : "", b.len};
        else
            cur.p = NULL;
    }
    if (cur.p) {
        if ((err = jv_watch_cursor_parse(cur, &q->cursor))) {
            snprintf(why, whylen,
                     "cursor must be an id of an earlier event (a decimal "
                     "number)");
            goto out;
        }
        q->has_cursor = true;
    }
out:
    if (!err && jv_buf_err(&b))
        err = JV_ENOMEM;
    jv_buf_fini(&b);
    return err;
}

static bool matches(unsigned kinds, const char *prefix, size_t plen,
                    unsigned kind, const char *key, size_t keylen)
{
    if (!(kinds & kind))
        return false;
    if (kind == JV_WATCH_NODE || !plen)
        return true;
    return keylen >= plen && memcmp(key, prefix, plen) == 0;
}

/* -- rendering ------------------------------------------------------------ */

static void put(jv_buf *b, const char *s)
{
    jv_buf_append(b, s, strlen(s));
}

static void put_u64(jv_buf *b, uint64_t v)
{
    char t[24];
    int n = snprintf(t, sizeof(t), "%" PRIu64, v);
    jv_buf_append(b, t, (size_t)n);
}

/* A JSON string. The text is valid UTF-8 (the batch decoder checked it);
 * control characters are escaped, so the data line stays one line. */
static void put_jstr(jv_buf *b, const char *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t from = 0;
    jv_buf_append(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        jv_buf_append(b, p + from, i - from);
        char esc[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
        if (ch == '"' || ch == '\\') {
            esc[1] = (char)ch;
            jv_buf_append(b, esc, 2);
        } else {
            jv_buf_append(b, esc, 6);
        }
        from = i + 1;
    }
    jv_buf_append(b, p + from, n - from);
    jv_buf_append(b, "\"", 1);
}

static void put_field(jv_buf *b, const char *name, jv_str v)
{
    put(b, ",\"");
    put(b, name);
    put(b, "\":");
    put_jstr(b, v.p, v.n);
}

/* A stored value is JSON text (one line once compacted); text that does
 * not parse goes as a string, as GET /v1/config shows it. */
static void put_value(jv_buf *b, jv_str v)
{
    json_error_t e;
    json_t *j = json_loadb(v.p, v.n, JSON_DECODE_ANY, &e);
    char *t = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    if (t)
        put(b, t);
    else
        put_jstr(b, v.p, v.n);
    free(t);
    if (j)
        json_decref(j);
}

/* id, event and the start of data with the fields every event has. */
static void put_head(jv_buf *b, uint64_t cursor, unsigned kind,
                     const jv_id *origin, uint64_t seq, uint64_t ms)
{
    char hex[JV_ID_HEX], t[40];
    jv_id_hex(origin, hex);
    jv_rfc3339(ms, t, sizeof(t));
    put(b, "id: ");
    put_u64(b, cursor);
    put(b, "\nevent: ");
    put(b, kind_name(kind));
    put(b, "\ndata: {\"kind\":\"");
    put(b, kind_name(kind));
    put(b, "\",\"cursor\":\"");
    put_u64(b, cursor);
    put(b, "\",\"origin\":\"");
    put(b, hex);
    put(b, "\",\"seq\":");
    put_u64(b, seq);
    put(b, ",\"time\":\"");
    put(b, t);
    put(b, "\"");
}

static void put_tail(jv_buf *b)
{
    put(b, "}\n\n");
}

/* -- a counter's previous share (for "delta") ---------------------------- */

typedef struct dent {
    struct dent *next;
    jv_id origin;
    uint64_t p, n;
    size_t len;
    char name[];
} dent;

struct dorigin;

typedef struct {
    dent **b;
    size_t count;
    struct dorigin *origins; /* what scans learned, per origin */
    size_t generation;       /* counts the times the map started over */
} dmap;

static size_t dmap_hash(const jv_id *o, jv_str name)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < 8; i++)
        h = (h ^ o->b[i]) * 1099511628211ull;
    for (size_t i = 0; i < name.n; i++)
        h = (h ^ (unsigned char)name.p[i]) * 1099511628211ull;
    return (size_t)(h % DMAP_BUCKETS);
}

static void origins_free(dmap *m);

static void dmap_clear(dmap *m)
{
    for (size_t i = 0; m->b && i < DMAP_BUCKETS; i++)
        while (m->b[i]) {
            dent *e = m->b[i];
            m->b[i] = e->next;
            jv_free(e);
        }
    m->count = 0;
    m->generation++;
    origins_free(m); /* what they knew is gone with the entries */
}

static void dmap_fini(dmap *m)
{
    dmap_clear(m);
    jv_free(m->b);
    m->b = NULL;
}

static dent *dmap_get(dmap *m, const jv_id *o, jv_str name)
{
    if (!m->b)
        return NULL;
    for (dent *e = m->b[dmap_hash(o, name)]; e; e = e->next)
        if (e->len == name.n && !memcmp(e->name, name.p, name.n) &&
            !memcmp(&e->origin, o, sizeof(*o)))
            return e;
    return NULL;
}

static void dmap_set(dmap *m, const jv_id *o, jv_str name, uint64_t p,
                     uint64_t n)
{
    dent *e = dmap_get(m, o, name);
    if (!e) {
        if (!m->b && !(m->b = jv_calloc(DMAP_BUCKETS, sizeof(*m->b))))
            return;
        if (m->count >= DMAP_MAX)
            dmap_clear(m); /* bounded memory: later misses search the log */
        if (!(e = jv_malloc(sizeof(*e) + name.n)))
            return;
        size_t h = dmap_hash(o, name);
        e->origin = *o;
        e->len = name.n;
        if (name.n)
            memcpy(e->name, name.p, name.n);
        e->next = m->b[h];
        m->b[h] = e;
        m->count++;
    }
    e->p = p;
    e->n = n;
}

/* What a backward scan learned of one origin: complete means the map
 * holds every counter this origin ever changed (a miss is 0); failed,
 * that a scan gave up (later misses are unknown, not scanned again). */
typedef struct dorigin {
    struct dorigin *next;
    jv_id origin;
    bool complete, failed;
} dorigin;

static void origins_free(dmap *m)
{
    while (m->origins) {
        dorigin *d = m->origins;
        m->origins = d->next;
        jv_free(d);
    }
}

typedef struct {
    dmap *m;
    size_t seen;
    bool reached_first, lost;
    uint64_t oldest_first;
} back_scan;

static jv_err back_row(void *arg, const jv_change_row *r)
{
    back_scan *s = arg;
    jv_batch b;
    s->seen++;
    s->oldest_first = r->first_seq;
    if (jv_batch_decode(r->body, r->len, &b) != JV_OK) {
        s->lost = true; /* compacted away: unknown from here on */
        return JV_ECLOSED;
    }
    if (r->first_seq == 1)
        s->reached_first = true;
    /* Newest first: the first share seen of a name is its latest. */
    for (uint32_t i = b.nops; i-- > 0;) {
        const jv_op *op = &b.ops[i];
        if (op->kind == JV_OP_COUNTER &&
            !dmap_get(s->m, &b.origin, op->counter.name))
            dmap_set(s->m, &b.origin, op->counter.name, op->counter.p,
                     op->counter.n);
    }
    jv_batch_fini(&b);
    return JV_OK;
}

static dorigin *origin_of(dmap *m, const jv_id *o)
{
    for (dorigin *d = m->origins; d; d = d->next)
        if (!memcmp(&d->origin, o, sizeof(*o)))
            return d;
    dorigin *d = jv_calloc(1, sizeof(*d));
    if (d) {
        d->origin = *o;
        d->next = m->origins;
        m->origins = d;
    }
    return d;
}

/* The origin's shares of name before its batch starting at first_seq:
 * from the map, else learned by one scan of the origin's earlier batches
 * (which fills the map for every name it meets). false when not known
 * (no longer in the log, or too far back). */
static bool prev_share(jv_store *st, dmap *m, const jv_id *o, jv_str name,
                       uint64_t first_seq, uint64_t *p, uint64_t *n)
{
    dent *e = dmap_get(m, o, name);
    dorigin *d = e ? NULL : origin_of(m, o);
    *p = *n = 0;
    if (!e && d && !d->complete && !d->failed) {
        back_scan s = {m, 0, first_seq == 1, false, first_seq};
        size_t gen = m->generation;
        while (!s.reached_first && !s.lost && s.seen < BACK_BATCHES) {
            size_t before = s.seen;
            if (jv_changes_origin_before(st, o, s.oldest_first, 128, back_row,
                                         &s) != JV_OK ||
                s.seen == before)
                break;
        }
        if (gen != m->generation) /* the map started over meanwhile */
            return false;
        d->complete = s.reached_first && !s.lost;
        d->failed = !d->complete;
        e = dmap_get(m, o, name);
    }
    if (e) {
        *p = e->p;
        *n = e->n;
        return true;
    }
    return d && d->complete;
}

/* -- events of one batch -------------------------------------------------- */

typedef struct {
    jv_store *st;
    dmap *map;
    unsigned kinds;
    const char *prefix;
    size_t prefix_len;
} dctx;

/* The key an op is filtered by, and its kind bit (0: no event). */
static unsigned op_kind(const jv_op *op, jv_str *key)
{
    switch (op->kind) {
    case JV_OP_COUNTER:
        *key = op->counter.name;
        return JV_WATCH_COUNTER;
    case JV_OP_AUDIT:
        *key = op->audit.target;
        return JV_WATCH_AUDIT;
    case JV_OP_CONFIG:
        *key = op->config.key;
        return JV_WATCH_CONFIG;
    case JV_OP_ARCHIVE_ADD:
        *key = op->add.key;
        return JV_WATCH_ARCHIVE;
    case JV_OP_ARCHIVE_RM:
        *key = op->rm.key;
        return JV_WATCH_ARCHIVE;
    case JV_OP_TRUST:
        *key = op->trust.name;
        return JV_WATCH_NODE;
    default:
        *key = (jv_str){"", 0};
        return 0;
    }
}

/* Appends the event of op i of b (from row r) to out. want: whether it
 * is sent (a counter op that is not still moves the map). */
static void render_op(dctx *d, const jv_change_row *r, const jv_batch *b,
                      uint32_t i, bool want, jv_buf *out)
{
    const jv_op *op = &b->ops[i];
    uint64_t cursor = cur_make(r->rowid, (uint64_t)i + 1);
    uint64_t seq = b->first_seq + i, ms = jv_hlc_ms(b->hlc);
    jv_str key;
    unsigned kind = op_kind(op, &key);
    if (op->kind == JV_OP_COUNTER) {
        uint64_t pp = 0, pn = 0;
        bool known =
            want && prev_share(d->st, d->map, &b->origin, op->counter.name,
                               b->first_seq, &pp, &pn);
        dmap_set(d->map, &b->origin, op->counter.name, op->counter.p,
                 op->counter.n);
        if (!want)
            return;
        put_head(out, cursor, kind, &b->origin, seq, ms);
        put_field(out, "name", op->counter.name);
        put(out, ",\"delta\":");
        if (known && op->counter.p >= pp && op->counter.n >= pn) {
            int64_t delta =
                (int64_t)(op->counter.p - pp) - (int64_t)(op->counter.n - pn);
            char t[24];
            int len = snprintf(t, sizeof(t), "%" PRId64, delta);
            jv_buf_append(out, t, (size_t)len);
        } else {
            put(out, "null");
        }
        put(out, ",\"p\":");
        put_u64(out, op->counter.p);
        put(out, ",\"n\":");
        put_u64(out, op->counter.n);
        put_tail(out);
        return;
    }
    if (!want || !kind)
        return;
    switch (op->kind) {
    case JV_OP_AUDIT:
        put_head(out, cursor, kind, &b->origin, seq, op->audit.time_ms);
        put_field(out, "actor", op->audit.actor);
        put_field(out, "action", op->audit.action);
        put_field(out, "target", op->audit.target);
        put_field(out, "detail", op->audit.detail);
        break;
    case JV_OP_CONFIG:
        put_head(out, cursor, kind, &b->origin, seq,
                 jv_hlc_ms(op->config.stamp));
        put_field(out, "key", op->config.key);
        put(out, ",\"value\":");
        put_value(out, op->config.value);
        break;
    case JV_OP_ARCHIVE_ADD:
        put_head(out, cursor, kind, &b->origin, seq, jv_hlc_ms(op->add.stamp));
        put_field(out, "key", op->add.key);
        put(out, ",\"op\":\"add\",\"value\":");
        put_value(out, op->add.value);
        break;
    case JV_OP_ARCHIVE_RM:
        put_head(out, cursor, kind, &b->origin, seq, ms);
        put_field(out, "key", op->rm.key);
        put(out, ",\"op\":\"remove\"");
        break;
    default: { /* JV_OP_TRUST */
        char hex[JV_ID_HEX];
        jv_id_hex(&op->trust.node, hex);
        put_head(out, cursor, kind, &b->origin, seq,
                 jv_hlc_ms(op->trust.stamp));
        put(out, ",\"event\":\"trust_changed\",\"peer\":\"");
        put(out, hex);
        put(out, "\",\"trusted\":");
        put(out, op->trust.trusted ? "true" : "false");
        put_field(out, "name", op->trust.name);
        break;
    }
    }
    put_tail(out);
}

/* -- the ring of recent events (streams' loop) --------------------------- */

typedef struct wev {
    struct wev *next; /* while handed from the thread to the loop */
    uint64_t cursor;
    unsigned kind;
    size_t keylen, len;
    char *key, *text;
    char data[]; /* key, then text */
} wev;

static wev *wev_new(uint64_t cursor, unsigned kind, jv_str key,
                    const jv_buf *text)
{
    wev *e = jv_malloc(sizeof(*e) + key.n + text->len);
    if (!e)
        return NULL;
    e->next = NULL;
    e->cursor = cursor;
    e->kind = kind;
    e->keylen = key.n;
    e->len = text->len;
    e->key = e->data;
    e->text = e->data + key.n;
    if (key.n)
        memcpy(e->key, key.p, key.n);
    if (text->len)
        memcpy(e->text, text->data, text->len);
    return e;
}

typedef struct watcher watcher;

/* A catch-up job: a resumed stream's events read from the log. */
typedef struct cjob {
    struct cjob *next;
    watcher *wt;
    uint64_t from;
    bool first;
    bool from_now; /* a stream without a cursor: just where "now" is */
    /* Out. */
    jv_buf text;
    uint64_t pos;    /* position after the events read */
    uint64_t newest; /* the log's newest position */
    bool at_end;     /* nothing after pos when read */
    bool expired;
    jv_err err;
} cjob;

enum {
    W_CATCHUP,
    W_RING
};

struct watcher {
    jv_watch *w;
    watcher *prev, *next;
    api_ctx *c; /* until the first catch-up job answers */
    unsigned kinds;
    char prefix[JV_WATCH_MAX_PREFIX + 1];
    size_t prefix_len;
    int mode;
    uint64_t pos; /* everything up to here was considered */
    uint64_t at;  /* ring mode: the next ring entry */
    uint64_t hello_id, hello_now;
    bool hello_sent, ping_due, ending, lagged, dead, streaming;
    cjob *job; /* running (owned by the thread meanwhile) */
    jv_buf pending;
    size_t pending_off;
    bool catchup_done;
    dmap map; /* catch-up: shares seen, for deltas */
    uint64_t last_out_ms;

    /* The connection, on the streams' loop once handed over. */
    union {
        uv_handle_t h;
        uv_stream_t s;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } io;
    int fd;
    bool is_unix, chunked;
    bool listed;         /* in the streams' list */
    bool writing;        /* a piece is being written */
    bool waiting;        /* pull() said WAIT: resume() writes again */
    bool last_piece;     /* the piece being written ends the answer */
    bool closing;        /* uv_close() called */
    uint64_t send_since; /* when the piece being written was handed over */
    jv_buf head;         /* the answer's head, written with the first piece */
    jv_buf piece;
    uv_write_t wreq;
    watcher *anext; /* handed over, not yet adopted */
    char ip[64];    /* the client's address, "" for a Unix socket */
};

/* Streams from one client address (they no longer count in the HTTP
 * server's own per-address limit once handed over). */
typedef struct waddr {
    struct waddr *next;
    size_t count;
    char ip[64];
} waddr;

/* A node event made on the node's loop, placed by the decode thread. */
typedef struct nev {
    struct nev *next;
    char event[24];
    jv_id origin; /* the node's key when it happened */
    uint64_t ms;
    jv_buf text;
} nev;

struct jv_watch {
    jv_node *node;
    jv_store *st;     /* the thread's */
    uv_async_t async; /* node's loop: first answers, the streams' exit */
    unsigned handles; /* open libuv handles on the node's loop */
    bool stopping;    /* node's loop */
    /* Limits (jv_watch_set_limits: the node's loop, read anywhere). */
    atomic_size_t max_streams, max_per_addr;
    _Atomic uint64_t send_timeout_ms;

    /* The streams' loop and thread. */
    uv_loop_t loop;
    bool loop_ready;
    uv_async_t fan_async;
    uv_timer_t timer;
    uv_timer_t flush; /* streams resumed together, FLUSH_MS after news */
    uv_timer_t grace; /* at a stop: the last pieces' deadline */
    bool flush_armed;
    unsigned fan_handles;
    bool fan_stopping;
    pthread_t fan_thread;
    bool fan_started;
    char rbuf[4096]; /* what clients send on a stream: dropped */

    /* The streams' loop only. */
    wev **ring;
    uint64_t base, head; /* entries [base, head) */
    size_t ring_bytes;
    uint64_t covers_from; /* every event after this is in the ring (or will
                             be, once decoded) */
    uint64_t last;        /* the newest position in the ring */
    watcher *watchers;
    size_t nwatchers;

    /* Shared, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool kicked, quit;
    /* Commits made while nobody watched, not yet skipped: the thread is
     * not woken for them (two wake-ups and a query per commit, for
     * nothing), but skips them before it next does anything, so a stream
     * that starts later finds the ring starting after them. */
    bool idle_commits;
    wev *out_head, *out_tail;
    size_t out_bytes;
    cjob *jobs, *jobs_tail;
    cjob *done;       /* for the streams' loop */
    cjob *done_first; /* for the node's loop: the answer's status */
    watcher *adopt;   /* handed over to the streams' loop */
    nev *nevs, *nevs_tail;
    bool fan_quit, fan_exited;
    waddr *addrs[ADDR_BUCKETS];
    pthread_t thread;
    bool thread_started;

    atomic_size_t active; /* streams open or being opened (with none,
                             nothing is decoded) */

    /* The thread's. */
    int64_t decoded;    /* last rowid decoded for the ring */
    uint64_t node_last; /* the last node event's cursor */
    dmap live;
};

static uint64_t ring_lower_bound(const jv_watch *w, uint64_t pos)
{
    uint64_t lo = w->base, hi = w->head;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (w->ring[mid & (RING_EVENTS - 1)]->cursor <= pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void ring_drop(jv_watch *w)
{
    wev *e = w->ring[w->base & (RING_EVENTS - 1)];
    w->covers_from = e->cursor;
    w->ring_bytes -= e->len;
    jv_free(e);
    w->base++;
}

static void ring_push(jv_watch *w, wev *e)
{
    while (w->head - w->base >= RING_EVENTS ||
           (w->head > w->base && w->ring_bytes + e->len > RING_BYTES))
        ring_drop(w);
    w->ring[w->head++ & (RING_EVENTS - 1)] = e;
    w->ring_bytes += e->len;
    w->last = e->cursor;
}

/* -- the watch thread ------------------------------------------------------ */

typedef struct {
    jv_watch *w;
    wev *head, *tail;
    size_t bytes;
    int64_t last;
    jv_buf text;
    jv_err err;
} live_page;

static jv_err live_row(void *arg, const jv_change_row *r)
{
    live_page *lp = arg;
    jv_batch b;
    dctx d = {lp->w->st, &lp->w->live, JV_WATCH_ALL, NULL, 0};
    lp->last = r->rowid;
    if (jv_batch_decode(r->body, r->len, &b) != JV_OK)
        return JV_OK; /* not ours to judge: the log's bodies were verified */
    for (uint32_t i = 0; i < b.nops; i++) {
        jv_str key;
        unsigned kind = op_kind(&b.ops[i], &key);
        jv_buf_reset(&lp->text);
        render_op(&d, r, &b, i, true, &lp->text);
        if (!kind || !lp->text.len)
            continue;
        wev *e = jv_buf_err(&lp->text)
                     ? NULL
                     : wev_new(cur_make(r->rowid, (uint64_t)i + 1), kind, key,
                               &lp->text);
        if (!e) {
            lp->err = JV_ENOMEM;
            break;
        }
        if (lp->tail)
            lp->tail->next = e;
        else
            lp->head = e;
        lp->tail = e;
        lp->bytes += e->len;
    }
    jv_batch_fini(&b);
    return lp->err;
}

/* Decodes what was committed since the last time, a page at a time,
 * handing each page to the loop. Waits while the loop has not taken
 * OUT_BYTES. */
/* Nobody watches: the ring need not hold what was committed. A marker
 * (kind 0) tells the loop that the ring starts over after it. False when
 * that could not be done (decoded stays: to be tried again). */
static bool skip_live(jv_watch *w)
{
    int64_t newest, dmax;
    if (jv_changes_bounds(w->st, &newest, &dmax) != JV_OK)
        return false;
    if (newest <= w->decoded)
        return true;
    jv_buf none;
    jv_buf_init(&none);
    wev *e = wev_new(cur_end(newest), 0, (jv_str){"", 0}, &none);
    if (!e)
        return false;
    w->decoded = newest;
    dmap_clear(&w->live); /* shares moved on without us */
    pthread_mutex_lock(&w->mu);
    if (w->out_tail)
        w->out_tail->next = e;
    else
        w->out_head = e;
    w->out_tail = e;
    uv_async_send(&w->fan_async);
    pthread_mutex_unlock(&w->mu);
    return true;
}

static void run_live(jv_watch *w)
{
    if (atomic_load(&w->active) == 0) {
        skip_live(w);
        return;
    }
    for (;;) {
        live_page lp = {w, NULL, NULL, 0, w->decoded, {0}, JV_OK};
        jv_buf_init(&lp.text);
        jv_err err =
            jv_changes_from(w->st, w->decoded + 1, LIVE_PAGE, live_row, &lp);
        jv_buf_fini(&lp.text);
        if (err || lp.err)
            jv_warn("watch", "cannot read the log for change streams: %s",
                    jv_strerror(err ? err : lp.err));
        bool more = lp.last > w->decoded && !err && !lp.err;
        w->decoded = lp.last;
        pthread_mutex_lock(&w->mu);
        if (lp.head) {
            if (w->out_tail)
                w->out_tail->next = lp.head;
            else
                w->out_head = lp.head;
            w->out_tail = lp.tail;
            w->out_bytes += lp.bytes;
            uv_async_send(&w->fan_async);
        }
        while (w->out_bytes > OUT_BYTES && !w->quit)
            pthread_cond_wait(&w->cv, &w->mu);
        bool quit = w->quit;
        pthread_mutex_unlock(&w->mu);
        if (!more || quit)
            return;
    }
}

typedef struct {
    cjob *j;
    dctx d;
    int64_t first_row;
    uint64_t first_k;
    size_t rows;
    bool full;
} job_scan;

static jv_err job_row(void *arg, const jv_change_row *r)
{
    job_scan *s = arg;
    cjob *j = s->j;
    jv_batch b;
    s->rows++;
    if (jv_batch_decode(r->body, r->len, &b) != JV_OK) {
        j->expired = true; /* its body went: the position is lost */
        return JV_ECLOSED;
    }
    uint32_t from = r->rowid == s->first_row ? (uint32_t)s->first_k : 0;
    for (uint32_t i = from; i < b.nops; i++) {
        jv_str key;
        unsigned kind = op_kind(&b.ops[i], &key);
        bool want = kind && matches(s->d.kinds, s->d.prefix, s->d.prefix_len,
                                    kind, key.p, key.n);
        render_op(&s->d, r, &b, i, want, &j->text);
    }
    jv_batch_fini(&b);
    j->pos = cur_end(r->rowid);
    if (jv_buf_err(&j->text))
        return JV_ENOMEM;
    if (j->text.len >= CATCHUP_TEXT) {
        s->full = true;
        return JV_ECLOSED;
    }
    return JV_OK;
}

static void run_job(jv_watch *w, cjob *j)
{
    watcher *wt = j->wt;
    int64_t newest, dmax;
    job_scan s = {j,
                  {w->st, &wt->map, wt->kinds, wt->prefix, wt->prefix_len},
                  cur_rowid(j->from),
                  cur_k(j->from),
                  0,
                  false};
    j->pos = j->from;
    if ((j->err = jv_changes_begin(w->st)))
        return;
    if ((j->err = jv_changes_bounds(w->st, &newest, &dmax)))
        goto out;
    j->newest = cur_end(newest);
    /* Node events placed after the log's newest batch are before "now". */
    if (w->node_last > j->newest && cur_rowid(w->node_last) == newest)
        j->newest = w->node_last;
    if (j->from_now) {
        j->pos = j->newest;
        j->at_end = true;
        goto out;
    }
    /* Complete only if no batch after the position was deleted. */
    if (s.first_row < dmax ||
        (s.first_row == dmax && dmax && s.first_k < JV_CURSOR_END) ||
        s.first_row > newest) {
        j->expired = true;
        goto out;
    }
    int64_t from = s.first_k >= JV_CURSOR_END ? s.first_row + 1 : s.first_row;
    j->err = jv_changes_from(w->st, from, CATCHUP_PAGE, job_row, &s);
    j->at_end = !j->err && !j->expired && !s.full && s.rows < CATCHUP_PAGE;
out:
    jv_changes_end(w->st);
}

static void lower_priority(void)
{
#ifdef __linux__
    /* Linux keeps a nice value per thread; ours starts at the node's. */
    id_t tid = (id_t)syscall(SYS_gettid);
    errno = 0;
    int now = getpriority(PRIO_PROCESS, tid);
    if (errno == 0)
        (void)setpriority(PRIO_PROCESS, tid,
                          now + WATCH_NICE > 19 ? 19 : now + WATCH_NICE);
#endif
}

static void nevs_free(nev *list)
{
    while (list) {
        nev *e = list;
        list = e->next;
        jv_buf_fini(&e->text);
        jv_free(e);
    }
}

/* A node event as event text at the next position: after everything
 * decoded, so that a stream that started at the log's newest position
 * ("now") sees every node event made after it started. NULL when
 * nobody watches or the batch's node event numbers ran out. */
static wev *node_event(jv_watch *w, const nev *ev)
{
    uint64_t floor = cur_end(w->decoded);
    uint64_t cursor = (w->node_last > floor ? w->node_last : floor) + 1;
    if (cursor - floor > K_MASK || atomic_load(&w->active) == 0)
        return NULL;
    jv_buf t;
    jv_buf_init(&t);
    put_head(&t, cursor, JV_WATCH_NODE, &ev->origin, 0, ev->ms);
    put(&t, ",\"event\":\"");
    put(&t, ev->event);
    put(&t, "\"");
    jv_buf_append(&t, ev->text.data, ev->text.len);
    put_tail(&t);
    wev *e = jv_buf_err(&t)
                 ? NULL
                 : wev_new(cursor, JV_WATCH_NODE, (jv_str){"", 0}, &t);
    jv_buf_fini(&t);
    if (e)
        w->node_last = cursor;
    return e;
}

static void run_node_events(jv_watch *w, nev *list)
{
    wev *head = NULL, *tail = NULL;
    size_t bytes = 0;
    for (nev *ev = list; ev; ev = ev->next) {
        wev *e = node_event(w, ev);
        if (!e)
            continue;
        if (tail)
            tail->next = e;
        else
            head = e;
        tail = e;
        bytes += e->len;
    }
    nevs_free(list);
    if (!head)
        return;
    pthread_mutex_lock(&w->mu);
    if (w->out_tail)
        w->out_tail->next = head;
    else
        w->out_head = head;
    w->out_tail = tail;
    w->out_bytes += bytes;
    uv_async_send(&w->fan_async);
    pthread_mutex_unlock(&w->mu);
}

static void *thread_main(void *arg)
{
    jv_watch *w = arg;
    lower_priority();
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->kicked && !w->nevs && !w->jobs && !w->quit)
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->quit)
            break;
        if (w->idle_commits) {
            w->idle_commits = false;
            pthread_mutex_unlock(&w->mu);
            bool skipped = skip_live(w);
            pthread_mutex_lock(&w->mu);
            if (!skipped)
                w->idle_commits = true; /* again at the next wake-up */
        }
        if (w->kicked || w->nevs) {
            nev *list = w->nevs;
            w->nevs = w->nevs_tail = NULL;
            w->kicked = false;
            pthread_mutex_unlock(&w->mu);
            run_live(w);
            run_node_events(w, list);
            pthread_mutex_lock(&w->mu);
            continue; /* the live path first: it serves every stream */
        }
        cjob *j = w->jobs;
        w->jobs = j->next;
        if (!w->jobs)
            w->jobs_tail = NULL;
        pthread_mutex_unlock(&w->mu);
        run_job(w, j);
        pthread_mutex_lock(&w->mu);
        if (j->first) {
            j->next = w->done_first;
            w->done_first = j;
            uv_async_send(&w->async);
        } else {
            j->next = w->done;
            w->done = j;
            uv_async_send(&w->fan_async);
        }
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* -- streams --------------------------------------------------------------
 *
 * A stream starts on the node's loop (the route, its first catch-up job,
 * the answer's status) and, once its answer is 200, its connection is
 * handed over (jv_http_detach) to the streams' own loop and thread, at a
 * lower priority (WATCH_NICE): fanning every change out to many clients
 * never takes the node's loop, and on a busy machine it takes only what
 * the writers leave. The ring and the listed streams belong to that
 * loop. */

static void watch_maybe_free(jv_watch *w);
static void fan_maybe_exit(jv_watch *w);

static size_t addr_bucket(const char *ip)
{
    size_t h = 5381;
    for (const char *p = ip; *p; p++)
        h = h * 33 + (unsigned char)*p;
    return h % ADDR_BUCKETS;
}

/* Counts a stream from ip, unless that address has max already. */
static bool addr_take(jv_watch *w, const char *ip, size_t max)
{
    bool ok = true;
    waddr **b = &w->addrs[addr_bucket(ip)], *a;
    pthread_mutex_lock(&w->mu);
    for (a = *b; a && strcmp(a->ip, ip) != 0; a = a->next)
        ;
    if (!a && (a = jv_calloc(1, sizeof(*a))) != NULL) {
        snprintf(a->ip, sizeof(a->ip), "%s", ip);
        a->next = *b;
        *b = a;
    }
    if (!a || a->count >= max)
        ok = false;
    else
        a->count++;
    pthread_mutex_unlock(&w->mu);
    return ok;
}

/* Any thread: the stream from ip is gone. */
static void addr_release(jv_watch *w, const char *ip)
{
    waddr **p = &w->addrs[addr_bucket(ip)];
    pthread_mutex_lock(&w->mu);
    while (*p && strcmp((*p)->ip, ip) != 0)
        p = &(*p)->next;
    waddr *a = *p;
    if (a && --a->count == 0) {
        *p = a->next;
        jv_free(a);
    }
    pthread_mutex_unlock(&w->mu);
}

/* Frees a stream that is not listed (it never reached the streams'
 * loop), or unlists and frees it there. */
static void watcher_free(watcher *wt)
{
    jv_watch *w = wt->w;
    if (wt->listed) {
        if (wt->prev)
            wt->prev->next = wt->next;
        else
            w->watchers = wt->next;
        if (wt->next)
            wt->next->prev = wt->prev;
        w->nwatchers--;
    }
    if (wt->fd >= 0)
        close(wt->fd);
    if (wt->ip[0])
        addr_release(w, wt->ip);
    atomic_fetch_sub(&w->active, 1);
    jv_buf_fini(&wt->pending);
    jv_buf_fini(&wt->head);
    jv_buf_fini(&wt->piece);
    dmap_fini(&wt->map);
    bool listed = wt->listed;
    jv_free(wt);
    if (listed)
        fan_maybe_exit(w);
}

static void job_free(cjob *j)
{
    jv_buf_fini(&j->text);
    jv_free(j);
}

/* Hands a catch-up job to the thread. */
static bool job_submit_as(watcher *wt, bool first, bool from_now)
{
    jv_watch *w = wt->w;
    cjob *j = jv_calloc(1, sizeof(*j));
    if (!j)
        return false;
    jv_buf_init(&j->text);
    j->wt = wt;
    j->from = wt->pos;
    j->first = first;
    j->from_now = from_now;
    wt->job = j;
    pthread_mutex_lock(&w->mu);
    if (w->jobs_tail)
        w->jobs_tail->next = j;
    else
        w->jobs = j;
    w->jobs_tail = j;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return true;
}

/* Ring mode from pos on, when the ring covers it. */
static bool try_join(watcher *wt)
{
    jv_watch *w = wt->w;
    if (wt->pos < w->covers_from)
        return false;
    wt->mode = W_RING;
    wt->at = ring_lower_bound(w, wt->pos);
    return true;
}

static void put_hello(watcher *wt, jv_buf *out)
{
    put(out, "retry: 2000\nid: ");
    put_u64(out, wt->hello_id);
    put(out, "\nevent: hello\ndata: {\"cursor\":\"");
    put_u64(out, wt->hello_now);
    put(out, "\",\"node\":\"");
    put(out, wt->w->node->self_hex);
    put(out, "\"}\n\n");
}

static jv_http_pull end_lagged(watcher *wt, jv_buf *out)
{
    put(out, "event: lagged\ndata: {\"cursor\":\"");
    put_u64(out, wt->pos);
    put(out, "\"}\n\n");
    wt->ending = true;
    return JV_HTTP_END;
}

/* One step of a catch-up: pending text, then the next job. */
static jv_http_pull pull_catchup(watcher *wt, jv_buf *out)
{
    size_t left = wt->pending.len - wt->pending_off;
    if (left) {
        size_t n = left < JV_HTTP_CHUNK ? left : JV_HTTP_CHUNK;
        jv_buf_append(out, wt->pending.data + wt->pending_off, n);
        wt->pending_off += n;
        return JV_HTTP_MORE;
    }
    jv_buf_reset(&wt->pending);
    wt->pending_off = 0;
    if (wt->catchup_done && try_join(wt))
        return JV_HTTP_MORE;
    if (!wt->job && !job_submit_as(wt, false, false))
        return JV_HTTP_ABORT;
    return JV_HTTP_WAIT;
}

/* Fills the piece in one call: with 200 streams at full write speed, a
 * call per event was millions of calls a second. */
static jv_http_pull pull_ring(watcher *wt, jv_buf *out)
{
    jv_watch *w = wt->w;
    size_t start = out->len;
    if (wt->at < w->base)
        return end_lagged(wt, out);
    while (wt->at < w->head) {
        const wev *e = w->ring[wt->at++ & (RING_EVENTS - 1)];
        if (e->cursor <= wt->pos)
            continue;
        wt->pos = e->cursor;
        if (!matches(wt->kinds, wt->prefix, wt->prefix_len, e->kind, e->key,
                     e->keylen))
            continue;
        jv_buf_append(out, e->text, e->len);
        if (out->len - start >= JV_HTTP_CHUNK)
            return JV_HTTP_MORE;
    }
    return out->len > start ? JV_HTTP_MORE : JV_HTTP_WAIT;
}

static jv_http_pull on_pull(watcher *wt, jv_buf *out)
{
    jv_http_pull r;
    size_t before = out->len;
    if (!wt->hello_sent) {
        wt->hello_sent = true;
        put_hello(wt, out);
    }
    if (wt->ending)
        return wt->lagged ? end_lagged(wt, out) : JV_HTTP_END;
    if (wt->ping_due) {
        wt->ping_due = false;
        put(out, ": ping\n\n");
    }
    r = wt->mode == W_CATCHUP ? pull_catchup(wt, out) : pull_ring(wt, out);
    if (out->len > before)
        wt->last_out_ms = uv_now(&wt->w->loop);
    return r;
}

/* -- writing a stream (streams' loop) -------------------------------------- */

static void on_io_closed(uv_handle_t *h)
{
    watcher *wt = h->data;
    if (wt->job)
        wt->dead = true; /* freed when the thread hands the job back */
    else
        watcher_free(wt);
}

static void fan_close(watcher *wt)
{
    if (wt->closing)
        return;
    wt->closing = true;
    uv_close(&wt->io.h, on_io_closed);
}

/* A client that takes nothing: a reset, so that the kernel does not
 * keep trying to deliver what we wrote. */
static void fan_reset(watcher *wt)
{
    if (wt->closing)
        return;
    if (wt->is_unix || uv_tcp_close_reset(&wt->io.tcp, on_io_closed) != 0) {
        fan_close(wt);
        return;
    }
    wt->closing = true;
}

static void fan_next(watcher *wt);

static void on_written(uv_write_t *req, int status)
{
    watcher *wt = req->data;
    wt->writing = false;
    if (status < 0 || wt->last_piece)
        fan_close(wt);
    else
        fan_next(wt);
}

/* Frames what pull() added after body (chunked: the size line reserved
 * there); false when there was nothing. */
static bool fan_frame(watcher *wt, jv_buf *o, size_t body, jv_http_pull r)
{
    size_t hdr = wt->chunked ? JV_HTTP_CHUNK_HEAD : 0;
    size_t n = o->len - body - hdr;
    if (wt->chunked) {
        if (n) {
            jv_http_chunk_line((char *)o->data + body, n);
            put(o, "\r\n");
        } else {
            o->len = body;
        }
        if (r == JV_HTTP_END)
            put(o, "0\r\n\r\n");
    }
    return o->len > 0;
}

/* The next piece, when none is being written: the head before the
 * first. */
static void fan_next(watcher *wt)
{
    jv_buf *o = &wt->piece;
    jv_http_pull r = JV_HTTP_MORE;
    if (wt->writing || wt->closing)
        return;
    wt->waiting = false;
    jv_buf_reset(o);
    jv_buf_append(o, wt->head.data, wt->head.len);
    jv_buf_fini(&wt->head);
    size_t body = o->len;
    if (wt->chunked)
        jv_buf_append(o, "0000000000", JV_HTTP_CHUNK_HEAD);
    while (r == JV_HTTP_MORE && o->len - body < JV_HTTP_CHUNK)
        r = on_pull(wt, o);
    if (jv_buf_err(o) || r == JV_HTTP_ABORT) {
        fan_close(wt);
        return;
    }
    if (!fan_frame(wt, o, body, r)) {
        if (r == JV_HTTP_END) {
            fan_close(wt);
            return;
        }
        wt->waiting = true;
        jv_buf_fini(o); /* an idle stream holds no piece */
        return;
    }
    uv_buf_t b = uv_buf_init((char *)o->data, (unsigned)o->len);
    wt->wreq.data = wt;
    if (uv_write(&wt->wreq, &wt->io.s, &b, 1, on_written) != 0) {
        fan_close(wt);
        return;
    }
    wt->writing = true;
    wt->last_piece = r == JV_HTTP_END;
    wt->send_since = uv_now(&wt->w->loop);
}

static void resume(watcher *wt)
{
    if (wt->waiting)
        fan_next(wt);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    watcher *wt = h->data;
    (void)suggested;
    *buf = uv_buf_init(wt->w->rbuf, sizeof(wt->w->rbuf));
}

/* A stream's client has nothing to say: its bytes are dropped, its
 * close (or a reset) ends the stream. */
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    if (nread < 0)
        fan_close(st->data);
}

/* A stream whose answer is 200 arrives on the streams' loop. */
static void fan_adopt(watcher *wt)
{
    jv_watch *w = wt->w;
    int rc = wt->is_unix ? uv_pipe_init(&w->loop, &wt->io.pipe, 0)
                         : uv_tcp_init(&w->loop, &wt->io.tcp);
    if (rc != 0) {
        watcher_free(wt);
        return;
    }
    wt->io.h.data = wt;
    wt->listed = true;
    wt->next = w->watchers;
    if (w->watchers)
        w->watchers->prev = wt;
    w->watchers = wt;
    w->nwatchers++;
    rc = wt->is_unix ? uv_pipe_open(&wt->io.pipe, wt->fd)
                     : uv_tcp_open(&wt->io.tcp, wt->fd);
    if (rc == 0)
        wt->fd = -1; /* the handle's now */
    if (rc != 0 || w->fan_stopping ||
        uv_read_start(&wt->io.s, on_alloc, on_read) != 0) {
        fan_close(wt);
        return;
    }
    if (wt->hello_now < w->last)
        wt->hello_now = w->last;
    if (wt->catchup_done && !wt->pending.len)
        try_join(wt);
    wt->last_out_ms = uv_now(&w->loop);
    fan_next(wt);
}

/* -- answers and jobs --------------------------------------------------------
 */

static void reply_expired(api_ctx *c, uint64_t newest)
{
    char now[24];
    snprintf(now, sizeof(now), "%" PRIu64, newest);
    json_t *o = json_pack(
        "{s:{s:s,s:s},s:s}", "error", "code", "cursor_expired", "message",
        "the log no longer holds the changes after this cursor: read the "
        "state again, then watch from the cursor given here",
        "cursor", now);
    api_reply(c, 410, o);
}

/* Node's loop: the answer to a stream's first job decides its status;
 * a 200 hands the connection to the streams' loop. */
static void job_done_first(cjob *j)
{
    watcher *wt = j->wt;
    jv_watch *w = wt->w;
    api_ctx *c = wt->c;
    wt->job = NULL;
    wt->c = NULL;
    if (j->err || j->expired || w->stopping) {
        if (j->err)
            api_fail(c, j->err, "read the log");
        else if (j->expired)
            reply_expired(c, j->newest);
        else
            api_error(c, 503, "unavailable", "the node is stopping");
        job_free(j);
        watcher_free(wt);
        return;
    }
    wt->hello_now = j->newest;
    if (j->from_now)
        wt->hello_id = j->pos;
    wt->pos = j->pos;
    jv_buf_append(&wt->pending, j->text.data, j->text.len);
    wt->catchup_done = j->at_end;
    job_free(j);
    if (api_detach(c, 200, "text/event-stream",
                   "Cache-Control: no-store\r\n"
                   "X-Accel-Buffering: no\r\n",
                   &wt->head, &wt->fd, &wt->is_unix, &wt->chunked) != JV_OK ||
        jv_buf_err(&wt->pending)) {
        watcher_free(wt);
        return;
    }
    pthread_mutex_lock(&w->mu);
    wt->anext = w->adopt;
    w->adopt = wt;
    uv_async_send(&w->fan_async);
    pthread_mutex_unlock(&w->mu);
}

/* Streams' loop: a catch-up job came back from the thread. */
static void job_done(cjob *j)
{
    watcher *wt = j->wt;
    wt->job = NULL;
    if (wt->dead) {
        job_free(j);
        watcher_free(wt);
        return;
    }
    if (j->err || j->expired) {
        wt->ending = true;
        wt->lagged = j->expired;
    } else {
        wt->pos = j->pos;
        jv_buf_append(&wt->pending, j->text.data, j->text.len);
        wt->catchup_done = j->at_end;
        if (j->at_end && !wt->pending.len)
            try_join(wt);
    }
    job_free(j);
    resume(wt);
}

/* The ring starts over after cursor (the thread skipped decoding while
 * no stream was open). A stream that joined meanwhile reads the skipped
 * part from the log. */
static void ring_restart(jv_watch *w, uint64_t cursor)
{
    if (cursor <= w->last)
        return;
    while (w->base < w->head)
        ring_drop(w);
    w->covers_from = w->last = cursor;
    for (watcher *wt = w->watchers; wt; wt = wt->next)
        if (wt->mode == W_RING && wt->pos < cursor) {
            wt->mode = W_CATCHUP;
            wt->catchup_done = false;
        }
}

static void on_flush(uv_timer_t *t)
{
    jv_watch *w = t->data;
    w->flush_armed = false;
    /* Catch-ups too: a restart of the ring may have made some. */
    for (watcher *wt = w->watchers; wt; wt = wt->next)
        resume(wt);
}

static void take_events(jv_watch *w, wev *list)
{
    bool grew = list != NULL;
    while (list) {
        wev *e = list;
        list = e->next;
        if (!e->kind) { /* skipped while nobody watched */
            ring_restart(w, e->cursor);
            jv_free(e);
            continue;
        }
        if (e->cursor <= w->last) { /* cannot happen: rowids grow */
            jv_free(e);
            continue;
        }
        ring_push(w, e);
    }
    if (grew && !w->flush_armed && !w->fan_stopping) {
        w->flush_armed = true;
        uv_timer_start(&w->flush, on_flush, FLUSH_MS, 0);
    }
}

static void on_grace(uv_timer_t *t)
{
    jv_watch *w = t->data;
    for (watcher *wt = w->watchers; wt; wt = wt->next)
        fan_reset(wt);
}

/* Streams' loop, told to stop: every stream gets its last piece, those
 * that cannot take it within GRACE_MS are closed. */
static void fan_stop(jv_watch *w)
{
    if (w->fan_stopping)
        return;
    w->fan_stopping = true;
    uv_timer_stop(&w->timer);
    uv_timer_stop(&w->flush);
    /* The decode thread is gone: jobs asked for since end their streams. */
    pthread_mutex_lock(&w->mu);
    cjob *left = w->jobs;
    w->jobs = w->jobs_tail = NULL;
    pthread_mutex_unlock(&w->mu);
    while (left) {
        cjob *j = left;
        left = j->next;
        j->err = JV_ECLOSED;
        job_done(j);
    }
    for (watcher *wt = w->watchers; wt; wt = wt->next) {
        wt->ending = true;
        resume(wt);
    }
    uv_timer_start(&w->grace, on_grace, GRACE_MS, 0);
    fan_maybe_exit(w);
}

static void on_fan_async(uv_async_t *h)
{
    jv_watch *w = h->data;
    pthread_mutex_lock(&w->mu);
    wev *list = w->out_head;
    cjob *done = w->done;
    watcher *adopt = w->adopt;
    bool quit = w->fan_quit;
    w->out_head = w->out_tail = NULL;
    w->out_bytes = 0;
    w->done = NULL;
    w->adopt = NULL;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    take_events(w, list);
    while (done) {
        cjob *j = done;
        done = j->next;
        job_done(j);
    }
    while (adopt) {
        watcher *wt = adopt;
        adopt = wt->anext;
        fan_adopt(wt);
    }
    if (quit)
        fan_stop(w);
}

static void on_timer(uv_timer_t *t)
{
    jv_watch *w = t->data;
    uint64_t now = uv_now(&w->loop), timeout = atomic_load(&w->send_timeout_ms);
    for (watcher *wt = w->watchers; wt; wt = wt->next) {
        /* A client that takes nothing of a piece for the send timeout. */
        if (wt->writing && now - wt->send_since >= timeout) {
            fan_reset(wt);
        } else if (now - wt->last_out_ms >= PING_MS) {
            wt->ping_due = true;
            resume(wt);
        }
    }
}

static void on_fan_closed(uv_handle_t *h)
{
    jv_watch *w = h->data;
    w->fan_handles--;
}

/* Once stopping and the last stream is gone, the loop's own handles
 * close and its thread ends. */
static void fan_maybe_exit(jv_watch *w)
{
    if (!w->fan_stopping || w->nwatchers || w->fan_handles < 4 ||
        uv_is_closing((uv_handle_t *)&w->fan_async))
        return;
    uv_close((uv_handle_t *)&w->fan_async, on_fan_closed);
    uv_close((uv_handle_t *)&w->timer, on_fan_closed);
    uv_close((uv_handle_t *)&w->flush, on_fan_closed);
    uv_close((uv_handle_t *)&w->grace, on_fan_closed);
}

static void *fan_main(void *arg)
{
    jv_watch *w = arg;
    lower_priority();
    uv_run(&w->loop, UV_RUN_DEFAULT);
    pthread_mutex_lock(&w->mu);
    w->fan_exited = true;
    uv_async_send(&w->async);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* -- node events (node's loop) -----------------------------------------------
 */

static void queue_node_event(jv_watch *w, jv_buf *text, const char *event)
{
    if (!w || w->stopping || atomic_load(&w->active) == 0)
        return;
    nev *e = jv_calloc(1, sizeof(*e));
    if (!e || jv_buf_err(text)) {
        jv_free(e);
        return;
    }
    snprintf(e->event, sizeof(e->event), "%s", event);
    e->origin = w->node->kp.pk;
    e->ms = jv_now_ms();
    e->text = *text; /* taken */
    jv_buf_init(text);
    pthread_mutex_lock(&w->mu);
    if (w->nevs_tail)
        w->nevs_tail->next = e;
    else
        w->nevs = e;
    w->nevs_tail = e;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void jv_watch_peer(jv_watch *w, const char *addr, const jv_id *id,
                   bool reachable)
{
    jv_buf b;
    jv_buf_init(&b);
    if (id) {
        char hex[JV_ID_HEX];
        jv_id_hex(id, hex);
        put(&b, ",\"peer\":\"");
        put(&b, hex);
        put(&b, "\"");
    }
    if (addr)
        put_field(&b, "addr", jv_str_c(addr));
    queue_node_event(w, &b, reachable ? "peer_reachable" : "peer_unreachable");
    jv_buf_fini(&b);
}

void jv_watch_job(jv_watch *w, const char *what, const char *state,
                  uint64_t done, uint64_t total)
{
    jv_buf b;
    jv_buf_init(&b);
    put_field(&b, "state", jv_str_c(state));
    put(&b, ",\"done\":");
    put_u64(&b, done);
    put(&b, ",\"total\":");
    put_u64(&b, total);
    queue_node_event(w, &b, what);
    jv_buf_fini(&b);
}

void jv_watch_kick(jv_watch *w)
{
    if (!w || w->stopping)
        return;
    /* Under mu: a stream counts itself active before it queues its first
     * job (under mu), so commits marked idle here are skipped before that
     * job runs, never after. */
    pthread_mutex_lock(&w->mu);
    if (atomic_load(&w->active) == 0) {
        w->idle_commits = true;
    } else {
        w->kicked = true;
        pthread_cond_signal(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
}

size_t jv_watch_streams(const jv_watch *w)
{
    return w ? atomic_load(&w->active) : 0;
}

/* -- the route --------------------------------------------------------------
 */

/* "127.0.0.1:50312" -> "127.0.0.1", "[::1]:7" -> "[::1]"; "" for a Unix
 * socket (not counted per address, as in the HTTP server). */
static void client_ip(const char *remote, char *out, size_t cap)
{
    const char *colon = strrchr(remote, ':');
    out[0] = 0;
    if (!colon || !strcmp(remote, "unix"))
        return;
    snprintf(out, cap, "%.*s", (int)(colon - remote), remote);
}

void jv_watch_set_limits(jv_watch *w, const jv_http_opts *ho)
{
    if (!w)
        return;
    /* Streams never idle out: at most half as many as connections. */
    atomic_store(&w->max_streams, ho->max_conns / 2 ? ho->max_conns / 2 : 1);
    atomic_store(&w->max_per_addr,
                 ho->max_conns_per_addr ? ho->max_conns_per_addr : 1);
    atomic_store(&w->send_timeout_ms, ho->send_timeout_ms);
}

void api_watch(api_ctx *c)
{
    jv_watch *w = c->node->watch;
    jv_watch_query q;
    char why[256];
    if (jv_watch_query_parse(jv_http_query(c->req),
                             jv_http_header(c->req, "Last-Event-ID"), &q, why,
                             sizeof(why)) != JV_OK) {
        api_error(c, 400, "invalid_query", "%s", why);
        return;
    }
    if (!w || w->stopping) {
        api_error(c, 503, "unavailable", "change streams are not running");
        return;
    }
    size_t open = atomic_load(&w->active);
    if (open >= atomic_load(&w->max_streams)) {
        api_error(c, 503, "too_many_streams",
                  "%zu change streams are open, the most this node serves",
                  open);
        return;
    }
    char ip[64];
    client_ip(jv_http_remote(c->req), ip, sizeof(ip));
    if (ip[0] && !addr_take(w, ip, atomic_load(&w->max_per_addr))) {
        api_error(c, 503, "too_many_streams",
                  "this client address has the most change streams one "
                  "address may open (max-conns-per-addr)");
        return;
    }
    watcher *wt = jv_calloc(1, sizeof(*wt));
    if (!wt) {
        if (ip[0])
            addr_release(w, ip);
        api_fail(c, JV_ENOMEM, "watch");
        return;
    }
    memcpy(wt->ip, ip, sizeof(ip));
    atomic_fetch_add(&w->active, 1);
    wt->w = w;
    wt->fd = -1;
    wt->kinds = q.kinds;
    memcpy(wt->prefix, q.prefix, q.prefix_len);
    wt->prefix_len = q.prefix_len;
    jv_buf_init(&wt->pending);
    jv_buf_init(&wt->head);
    jv_buf_init(&wt->piece);
    wt->pos = wt->hello_id = q.cursor;
    /* The thread says where "now" is (the ring may lag the log, or hold
     * nothing while nobody watched), or reads what the cursor missed. */
    wt->mode = W_CATCHUP;
    wt->c = c;
    if (!job_submit_as(wt, true, !q.has_cursor)) {
        wt->c = NULL;
        watcher_free(wt);
        api_fail(c, JV_ENOMEM, "watch");
    }
}

/* -- start and stop ----------------------------------------------------------
 */

static void on_handle_closed(uv_handle_t *h)
{
    jv_watch *w = h->data;
    w->handles--;
    watch_maybe_free(w);
}

/* Node's loop: first answers; the streams' thread has ended. */
static void on_async(uv_async_t *h)
{
    jv_watch *w = h->data;
    pthread_mutex_lock(&w->mu);
    cjob *done = w->done_first;
    bool exited = w->fan_exited;
    w->done_first = NULL;
    pthread_mutex_unlock(&w->mu);
    while (done) {
        cjob *j = done;
        done = j->next;
        job_done_first(j);
    }
    if (exited && w->fan_started) {
        pthread_join(w->fan_thread, NULL);
        w->fan_started = false;
        uv_close((uv_handle_t *)&w->async, on_handle_closed);
    }
}

static void watch_maybe_free(jv_watch *w)
{
    if (!w->stopping || w->handles)
        return;
    while (w->base < w->head)
        ring_drop(w);
    if (w->loop_ready)
        uv_loop_close(&w->loop);
    jv_free(w->ring);
    dmap_fini(&w->live);
    for (size_t i = 0; i < ADDR_BUCKETS; i++)
        for (waddr *a = w->addrs[i], *next; a; a = next) {
            next = a->next;
            jv_free(a);
        }
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    jv_free(w);
}

static jv_err fan_init(jv_watch *w)
{
    if (uv_loop_init(&w->loop) != 0)
        return JV_ENOMEM;
    w->loop_ready = true;
    uv_async_init(&w->loop, &w->fan_async, on_fan_async);
    uv_timer_init(&w->loop, &w->timer);
    uv_timer_init(&w->loop, &w->flush);
    uv_timer_init(&w->loop, &w->grace);
    w->fan_async.data = w->timer.data = w->flush.data = w->grace.data = w;
    w->fan_handles = 4;
    uv_timer_start(&w->timer, on_timer, TIMER_MS, TIMER_MS);
    return JV_OK;
}

jv_err jv_watch_start(jv_node *n, jv_watch **out)
{
    jv_store_opts o;
    char msg[256];
    int64_t newest = 0, dmax = 0;
    jv_err err;
    jv_http_opts ho;
    jv_watch *w = jv_calloc(1, sizeof(*w));
    if (!w)
        return JV_ENOMEM;
    w->node = n;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    jv_http_opts_default(&ho);
    jv_node_api_limits(n->cfg, &ho);
    jv_watch_set_limits(w, &ho);
    jv_store_opts_default(&o);
    o.readonly = true;
    o.checked = true;
    o.cache_kib = 2048;
    if (!(w->ring = jv_calloc(RING_EVENTS, sizeof(*w->ring)))) {
        err = JV_ENOMEM;
        goto fail;
    }
    if ((err = jv_store_open(n->db_path, &o, &w->st, msg, sizeof(msg)))) {
        jv_error("watch", "cannot open the database for change streams: %s",
                 msg);
        goto fail;
    }
    if ((err = jv_changes_bounds(w->st, &newest, &dmax)))
        goto fail;
    w->decoded = newest;
    w->covers_from = w->last = cur_end(newest);
    if ((err = fan_init(w)))
        goto fail;
    /* The streams' thread touches async only once told to stop. */
    if (pthread_create(&w->fan_thread, NULL, fan_main, w) != 0) {
        err = JV_ESTATE;
        goto fail;
    }
    w->fan_started = true;
    uv_async_init(n->loop, &w->async, on_async);
    w->async.data = w;
    w->handles = 1;
    if (pthread_create(&w->thread, NULL, thread_main, w) != 0) {
        jv_watch_stop(w);
        return JV_ESTATE;
    }
    w->thread_started = true;
    *out = w;
    return JV_OK;
fail:
    jv_store_close(w->st);
    if (w->loop_ready) { /* its handles close on a run of its loop */
        w->fan_quit = true;
        on_fan_async(&w->fan_async);
        uv_run(&w->loop, UV_RUN_DEFAULT);
        uv_loop_close(&w->loop);
    }
    jv_free(w->ring);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    jv_free(w);
    return err;
}

/* Node's loop: the decode thread ends; first jobs are answered 503;
 * the streams' loop ends its streams and then itself, and the watch is
 * freed once its thread is joined (on_async). */
void jv_watch_stop(jv_watch *w)
{
    if (!w || w->stopping)
        return;
    w->stopping = true;
    pthread_mutex_lock(&w->mu);
    w->quit = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (w->thread_started)
        pthread_join(w->thread, NULL);
    w->thread_started = false;
    jv_store_close(w->st);
    w->st = NULL;
    pthread_mutex_lock(&w->mu);
    cjob *pending = w->jobs, *first = w->done_first;
    w->jobs = w->jobs_tail = NULL;
    w->done_first = NULL;
    for (cjob *j = pending, *next; j; j = next) {
        next = j->next;
        j->err = JV_ECLOSED;
        if (j->first) {
            j->next = first;
            first = j;
        } else { /* the streams' loop ends that stream */
            j->next = w->done;
            w->done = j;
        }
    }
    nev *nevs = w->nevs;
    w->nevs = w->nevs_tail = NULL;
    w->fan_quit = true;
    uv_async_send(&w->fan_async);
    pthread_mutex_unlock(&w->mu);
    nevs_free(nevs);
    while (first) {
        cjob *j = first;
        first = j->next;
        job_done_first(j);
    }
}
