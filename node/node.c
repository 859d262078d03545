#include "node.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sodium.h>
#include <unistd.h>

#include "alloc.h"
#include "api.h"
#include "compact.h"
#include "datadir.h"
#include "local.h"
#include "log.h"
#include "query.h"
#include "rcache.h"
#include "reload.h"
#include "repl.h"
#include "transport.h"
#include "watch.h"
#include "wire.h"

#define TICK_MS         1000
#define PURGE_EVERY_MS  (10 * 60 * 1000)
#define SESSION_KEEP_MS (24 * 3600 * 1000ull)

/* A clock shifted on purpose (tests only, jv_clock_test_offset). */
static _Atomic int64_t clock_offset_ms;

uint64_t jv_now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    uint64_t ms = (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
    int64_t off = clock_offset_ms;
    return off < 0 && (uint64_t)-off > ms ? 0 : ms + (uint64_t)off;
}

void jv_clock_test_offset(int64_t ms)
{
    clock_offset_ms = ms;
    jv_store_test_clock_offset(ms);
}

static void fmt(char *msg, size_t len, const char *f, ...)
    __attribute__((format(printf, 3, 4)));
static void fmt(char *msg, size_t len, const char *f, ...)
{
    va_list ap;
    if (!msg || !len)
        return;
    va_start(ap, f);
    vsnprintf(msg, len, f, ap);
    va_end(ap);
}

static const double commit_buckets[] = {0.0001, 0.00025, 0.0005, 0.001,
                                        0.0025, 0.005,   0.01,   0.025,
                                        0.05,   0.1,     0.5,    2.0};
static const double size_buckets[] = {1,   2,   4,   8,    16,   32,  64,
                                      128, 256, 512, 1024, 2048, 4096};

static jv_err declare_metrics(jv_metrics *m)
{
    jv_err err;
    if ((err = jv_api_declare_metrics(m)))
        return err;
    struct {
        const char *name;
        jv_metric_type type;
        const char *help;
        const double *b;
        size_t nb;
    } fams[] = {
        {"jarvis_ops_applied_total", JV_METRIC_COUNTER,
         "operations applied, by origin (local writes or remote batches)", NULL,
         0},
        {"jarvis_writes_total", JV_METRIC_COUNTER,
         "local write requests committed, by outcome", NULL, 0},
        {"jarvis_batch_ops", JV_METRIC_HISTOGRAM, "operations per local batch",
         size_buckets, sizeof(size_buckets) / sizeof(size_buckets[0])},
        {"jarvis_commit_requests", JV_METRIC_HISTOGRAM,
         "write requests committed together (group commit)", size_buckets,
         sizeof(size_buckets) / sizeof(size_buckets[0])},
        {"jarvis_commit_seconds", JV_METRIC_HISTOGRAM,
         "duration of a commit on the writer thread", commit_buckets,
         sizeof(commit_buckets) / sizeof(commit_buckets[0])},
        {"jarvis_commit_errors_total", JV_METRIC_COUNTER,
         "commits that failed in storage", NULL, 0},
        {"jarvis_database_bytes", JV_METRIC_GAUGE,
         "database size, main file and write-ahead log", NULL, 0},
        {"jarvis_log_batches", JV_METRIC_GAUGE, "batches in the log", NULL, 0},
        {"jarvis_held_batches", JV_METRIC_GAUGE,
         "batches held aside (gap or untrusted origin)", NULL, 0},
        {"jarvis_sessions", JV_METRIC_GAUGE, "live sessions", NULL, 0},
        {"jarvis_resident_bytes", JV_METRIC_GAUGE, "resident memory", NULL, 0},
        {"jarvis_api_connections", JV_METRIC_GAUGE, "open API connections",
         NULL, 0},
        {"jarvis_api_connections_closed_total", JV_METRIC_COUNTER,
         "API connections closed by the limits: reason evicted (the oldest "
         "idle, to admit a new one), refused (nothing to evict), timeout "
         "(header, request or send deadline)",
         NULL, 0},
        {"jarvis_uptime_seconds", JV_METRIC_GAUGE, "seconds since start", NULL,
         0},
        {"jarvis_read_cache_lookups_total", JV_METRIC_COUNTER,
         "single-key reads looked up in the read cache: result hit (answered "
         "from memory) or miss (read from the database)",
         NULL, 0},
        {"jarvis_read_cache_bytes", JV_METRIC_GAUGE,
         "memory held by the read cache", NULL, 0},
        {"jarvis_build_info", JV_METRIC_GAUGE,
         "1, labelled with this build's version and wire protocol and the "
         "versions of the libraries it runs on",
         NULL, 0},
        {"process_cpu_seconds_total", JV_METRIC_COUNTER,
         "user and system CPU time spent", NULL, 0},
        {"process_open_fds", JV_METRIC_GAUGE, "open file descriptors", NULL, 0},
        {"process_max_fds", JV_METRIC_GAUGE,
         "the limit of open file descriptors", NULL, 0},
        {"process_resident_memory_bytes", JV_METRIC_GAUGE, "resident memory",
         NULL, 0},
        {"process_virtual_memory_bytes", JV_METRIC_GAUGE, "virtual memory",
         NULL, 0},
        {"process_start_time_seconds", JV_METRIC_GAUGE,
         "start time of the process since the Unix epoch", NULL, 0},
    };
    for (size_t i = 0; i < sizeof(fams) / sizeof(fams[0]); i++)
        if ((err = jv_metrics_declare(m, fams[i].name, fams[i].type,
                                      fams[i].help, fams[i].b, fams[i].nb)))
            return err;
    char info[384], v[4][64];
    jv_metrics_escape(JV_VERSION, v[0], sizeof v[0]);
    jv_metrics_escape(jv_store_sqlite_version(), v[1], sizeof v[1]);
    jv_metrics_escape(jv_transport_nng_version(), v[2], sizeof v[2]);
    jv_metrics_escape(sodium_version_string(), v[3], sizeof v[3]);
    snprintf(info, sizeof info,
             "version=\"%s\",protocol=\"%d\",sqlite=\"%s\",nng=\"%s\","
             "libsodium=\"%s\"",
             v[0], JV_WIRE_VERSION, v[1], v[2], v[3]);
    jv_metrics_set(m, "jarvis_build_info", info, 1);
    return JV_OK;
}

static void on_job(void *arg, const jv_writer_job *j)
{
    jv_node *n = arg;
    uint64_t now = jv_now_ms();
    /* Before any answer of the job goes out (read-your-writes). */
    jv_rcache_moved(n->rcache, j->changes & JV_RC_ALL);
    if (j->err) {
        n->last_commit_err = j->err;
        n->last_commit_err_ms = now;
        jv_metrics_add(n->metrics, "jarvis_commit_errors_total", NULL, 1);
        jv_error("storage", "commit failed: %s", jv_strerror(j->err));
    } else {
        n->last_commit_ms = now;
    }
    jv_metrics_observe(n->metrics, "jarvis_commit_seconds", NULL,
                       (double)j->commit_ns / 1e9);
    if (j->groups) {
        jv_metrics_observe(n->metrics, "jarvis_commit_requests", NULL,
                           (double)j->groups);
        jv_metrics_add(n->metrics, "jarvis_writes_total", "outcome=\"ok\"",
                       (double)(j->groups - j->groups_failed));
        if (j->groups_failed)
            jv_metrics_add(n->metrics, "jarvis_writes_total",
                           "outcome=\"refused\"", (double)j->groups_failed);
    }
    if (j->trust) {
        jv_trustview_free(n->trust);
        n->trust = j->trust;
    }
    /* The next job reads it again: on_tick makes one if none comes. */
    if (j->read_err) {
        jv_error("storage", "cannot read the store after a commit: %s",
                 jv_strerror(j->read_err));
        n->refresh_due = true;
    }
    if (n->repl)
        jv_repl_committed(n->repl, j->vv, j->own_seq, j->nops && !j->err);
    jv_watch_kick(n->watch);
    if (j->nops && !j->err) {
        jv_metrics_add(n->metrics, "jarvis_ops_applied_total",
                       "origin=\"local\"", (double)j->nops);
        for (size_t b = 0; b < j->nbatches; b++)
            jv_metrics_observe(n->metrics, "jarvis_batch_ops", NULL,
                               (double)j->nops / (double)j->nbatches);
    }
    if (j->remote_ops)
        jv_metrics_add(n->metrics, "jarvis_ops_applied_total",
                       "origin=\"remote\"", (double)j->remote_ops);
    /* Peers' cluster keys and revocations count from the commit that
     * applied them: the writer read them after it (taking them is
     * idempotent, so a partly failed job may bring them too). */
    if (j->ckeys) {
        jv_err err = jv_auth_ckeys_take(n->auth, j->ckeys);
        if (err) {
            jv_error("auth", "cannot take the cluster keys: %s",
                     jv_strerror(err));
            n->refresh_due = true; /* read and taken again (on_tick) */
        }
        jv_auth_ckeys_free(j->ckeys);
    }
}

/* -- off-loop jobs -------------------------------------------------------- */

typedef struct {
    uv_work_t work;
    jv_node *node;
    jv_offloop_fn fn;
    jv_offloop_done done;
    void *arg;
    jv_err err;
    bool changes; /* the data (jv_node_offloop_change) */
} offloop_job;

static void offloop_work(uv_work_t *w)
{
    offloop_job *j = w->data;
    jv_store_opts o;
    jv_store *st = NULL;
    char msg[256];
    jv_store_opts_default(&o);
    o.sync = j->node->sync;
    o.checked = true;
    j->err = jv_store_open(j->node->db_path, &o, &st, msg, sizeof(msg));
    if (j->err) {
        jv_warn("storage", "cannot open a connection for a job: %s", msg);
        return;
    }
    j->err = j->fn(st, j->arg);
    jv_store_close(st);
}

static void refresh_done(jv_write_req *r)
{
    jv_free(r);
}

/* A job of the thread pool changed the data on a connection of its own
 * (a snapshot installed): a job at the writer reads the trust list and
 * the vector again for the loop (writer.h) and re-checks held batches,
 * whatever came of the pool's job (it may fail after its commit). */
static void refresh_after_change(jv_node *n)
{
    if (n->stopping || !n->writer)
        return;
    jv_write_req *r = jv_calloc(1, sizeof(*r));
    n->refresh_due = !r; /* on_tick tries again */
    if (!r)
        return;
    r->apply_flags = JV_APPLY_REQUIRE_TRUST | JV_APPLY_RECHECK;
    r->reread_trust = true;
    r->done = refresh_done;
    jv_writer_submit(n->writer, r);
}

static void offloop_after(uv_work_t *w, int status)
{
    offloop_job *j = w->data;
    jv_node *n = j->node;
    n->offloop--;
    if (j->changes) {
        n->changing--;
        jv_rcache_moved(n->rcache, JV_RC_ALL);
        refresh_after_change(n);
    }
    j->done(n, status == UV_ECANCELED ? JV_ECLOSED : j->err, j->arg);
    jv_free(j);
}

static jv_err offloop(jv_node *n, jv_offloop_fn fn, jv_offloop_done done,
                      void *arg, bool changes)
{
    if (n->stopping)
        return JV_ECLOSED;
    offloop_job *j = jv_calloc(1, sizeof(*j));
    if (!j)
        return JV_ENOMEM;
    j->node = n;
    j->fn = fn;
    j->done = done;
    j->arg = arg;
    j->changes = changes;
    j->work.data = j;
    if (uv_queue_work(n->loop, &j->work, offloop_work, offloop_after) != 0) {
        jv_free(j);
        return JV_ESTATE;
    }
    n->offloop++;
    if (changes)
        n->changing++;
    return JV_OK;
}

jv_err jv_node_offloop(jv_node *n, jv_offloop_fn fn, jv_offloop_done done,
                       void *arg)
{
    return offloop(n, fn, done, arg, false);
}

jv_err jv_node_offloop_change(jv_node *n, jv_offloop_fn fn,
                              jv_offloop_done done, void *arg)
{
    return offloop(n, fn, done, arg, true);
}

/* -- checkpoints ---------------------------------------------------------- */

/* The writer commits without checkpointing (a checkpoint fsyncs the
 * database, the worst latency a commit could have); this copies the
 * write-ahead log back on the thread pool, on a connection of its own,
 * without blocking the writer. */
#define CHECKPOINT_MS 250

static void ckpt_work(uv_work_t *w)
{
    jv_node *n = w->data;
    if (jv_store_checkpoint(n->cst, NULL, NULL) != JV_OK)
        jv_warn("storage", "checkpoint failed: %s", jv_store_errmsg(n->cst));
}

static void ckpt_after(uv_work_t *w, int status)
{
    jv_node *n = w->data;
    (void)status;
    n->ckpt_running = false;
}

static void on_ckpt_timer(uv_timer_t *t)
{
    jv_node *n = t->data;
    if (n->ckpt_running || n->stopping)
        return;
    n->ckpt_work.data = n;
    if (uv_queue_work(n->loop, &n->ckpt_work, ckpt_work, ckpt_after) == 0)
        n->ckpt_running = true;
}

/* -- housekeeping --------------------------------------------------------- */

typedef struct {
    jv_write_req wr;
    uint64_t cutoff;
} purge_req;

static jv_err purge_sessions(jv_store *st, void *arg)
{
    purge_req *p = arg;
    return jv_store_session_purge(st, p->cutoff);
}

static void purge_done(jv_write_req *r)
{
    if (r->err || r->group.result)
        jv_warn("api", "purging old sessions failed: %s",
                jv_strerror(r->err ? r->err : r->group.result));
    jv_free(r->arg);
}

static jv_err clear_restored(jv_store *st, void *arg)
{
    (void)arg;
    return jv_store_meta_set(st, JV_META_RESTORED, "", 0);
}

static void caught_up_done(jv_write_req *r)
{
    if (r->err || r->group.result)
        jv_warn("node", "cannot clear the restored mark: %s",
                jv_strerror(r->err ? r->err : r->group.result));
    jv_free(r);
}

/* A restored node has caught up once it has pulled from every peer what
 * its old origin had published after the backup was taken. */
static void caught_up(jv_node *n)
{
    jv_write_req *r = jv_calloc(1, sizeof(*r));
    n->catching_up = false;
    jv_info("node", "caught up with every peer after the restore");
    if (!r)
        return;
    r->group.local = clear_restored;
    r->done = caught_up_done;
    r->arg = r;
    jv_writer_submit(n->writer, r);
}

static void on_tick(uv_timer_t *t)
{
    jv_node *n = t->data;
    uint64_t now = jv_now_ms();
    if (now - n->window_start_ms >= 60000) {
        n->api_errors_last = n->api_errors_window;
        n->api_errors_window = 0;
        n->window_start_ms = now;
    }
    jv_auth_sweep(n->auth, now);
    if (n->refresh_due)
        refresh_after_change(n);
    if (n->catching_up && n->repl && jv_repl_caught_up(n->repl))
        caught_up(n);
    if (n->ticks % (COMPACT_EVERY_MS / TICK_MS) == 0)
        jv_compact_tick(n);
    static const uint64_t every = PURGE_EVERY_MS / TICK_MS;
    if (++n->ticks % every == 0 && !n->stopping) {
        purge_req *p = jv_calloc(1, sizeof(*p));
        if (!p)
            return;
        p->cutoff = now > SESSION_KEEP_MS ? now - SESSION_KEEP_MS : 0;
        p->wr.group.local = purge_sessions;
        p->wr.group.local_arg = p;
        p->wr.done = purge_done;
        p->wr.arg = p;
        jv_writer_submit(n->writer, &p->wr);
    }
}

/* -- stop ----------------------------------------------------------------- */

static void on_closed(uv_handle_t *h)
{
    jv_node *n = h->data;
    n->closing--;
}

static void close_handle(jv_node *n, uv_handle_t *h)
{
    if (uv_is_closing(h))
        return;
    n->closing++;
    uv_close(h, on_closed);
}

static void on_readers_stopped(void *arg)
{
    jv_node *n = arg;
    n->closing--;
}

static void stop_readers(jv_node *n, jv_readers **rd)
{
    if (!*rd)
        return;
    n->closing++;
    jv_readers_stop(*rd, on_readers_stopped, n);
    *rd = NULL;
}

static void on_writer_stopped(void *arg)
{
    jv_node *n = arg;
    n->writer = NULL;
    stop_readers(n, &n->readers);
    stop_readers(n, &n->sync_readers);
    jv_store_close(n->wst);
    jv_store_close(n->rst);
    /* Last: closing the last connection checkpoints the whole log. */
    jv_store_close(n->cst);
    n->wst = n->rst = n->cst = NULL;
    close_handle(n, (uv_handle_t *)&n->ckpt_timer);
    close_handle(n, (uv_handle_t *)&n->sigterm);
    close_handle(n, (uv_handle_t *)&n->sigint);
    close_handle(n, (uv_handle_t *)&n->sighup);
    close_handle(n, (uv_handle_t *)&n->tick);
    jv_info("node", "stopped");
}

static void on_http_closed(void *arg)
{
    jv_node *n = arg;
    n->http = NULL;
    if (n->writer)
        jv_writer_stop(n->writer, on_writer_stopped, n);
    else
        on_writer_stopped(n);
}

/* Polls until nothing is in flight, then closes in order: API, writer,
 * database, the loop's own handles. An answer is in flight until it is
 * written out: closing its connection earlier would cut it short. */
static void on_drain(uv_timer_t *t)
{
    jv_node *n = t->data;
    size_t inflight = n->http ? jv_http_inflight(n->http) : 0;
    size_t writing = n->http ? jv_http_writing(n->http) : 0;
    size_t pending = n->writer ? jv_writer_pending(n->writer) : 0;
    if (inflight || writing || pending || n->offloop || n->ckpt_running ||
        jv_readers_pending(n->readers) || jv_readers_pending(n->sync_readers))
        return;
    uv_timer_stop(t);
    if (n->http)
        jv_http_server_close(n->http, on_http_closed, n);
    else
        on_http_closed(n);
}

static void on_repl_stopped(void *arg)
{
    jv_node *n = arg;
    n->repl = NULL;
    uv_timer_stop(&n->tick);
    uv_timer_start(&n->tick, on_drain, 0, 10);
}

void jv_node_stop(jv_node *n)
{
    if (n->stopping)
        return;
    n->stopping = true;
    jv_info("node", "stopping: finishing %zu requests in flight",
            n->http ? jv_http_inflight(n->http) : 0);
    if (n->http)
        jv_http_stop_accepting(n->http);
    jv_watch_stop(n->watch); /* streams end now: nothing waits for them */
    n->watch = NULL;
    if (n->api_addr_path[0])
        unlink(n->api_addr_path);
    uv_timer_stop(&n->tick);
    n->tick.data = n;
    /* Peers first: what they sent is applied before the writer stops. */
    if (n->repl)
        jv_repl_stop(n->repl, on_repl_stopped, n);
    else
        on_repl_stopped(n);
}

/* SIGHUP: read the cluster key file again (key rotation without a
 * restart). A file that does not load leaves the keys in use as they
 * were. */
static void on_reload(uv_signal_t *s, int signum)
{
    jv_node *n = s->data;
    jv_keyring ring;
    char msg[256];
    (void)signum;
    jv_reload_settings(n);
    if (!n->cfg->cluster_key_file || !n->repl) {
        jv_info("node", "SIGHUP: no cluster key file to reload");
        return;
    }
    if (jv_keyring_load(n->cfg->cluster_key_file, &ring, msg, sizeof(msg))) {
        jv_error("node", "SIGHUP: keeping the cluster keys in use: %s", msg);
        jv_reload_keys(n, false, msg);
        return;
    }
    char keys[128], was[128];
    jv_keyring_describe(&ring, keys, sizeof(keys));
    jv_keyring_describe(&n->ring, was, sizeof(was));
    jv_reload_keys(n, strcmp(keys, was) != 0, NULL);
    jv_repl_set_keyring(n->repl, &ring);
    jv_keyring_wipe(&n->ring);
    n->ring = ring;
    jv_keyring_wipe(&ring);
    jv_info("node", "SIGHUP: reloaded %zu cluster key(s); cluster keys: %s",
            n->ring.n, keys);
}

static void on_signal(uv_signal_t *s, int signum)
{
    jv_node *n = s->data;
    if (n->stopping) {
        /* A second signal: everything acknowledged is committed already. */
        jv_warn("node", "second %s: exiting now", strsignal(signum));
        _exit(1);
    }
    jv_info("node", "%s received", strsignal(signum));
    jv_node_stop(n);
}

/* -- start ---------------------------------------------------------------- */

static jv_err write_api_addr(jv_node *n)
{
    char tmp[PATH_MAX + 8], line[300];
    int len = snprintf(line, sizeof(line), "%s%s\n",
                       strncmp(n->api_bound, "unix:", 5) ? "http://" : "",
                       n->api_bound);
    snprintf(tmp, sizeof(tmp), "%s.tmp", n->api_addr_path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return JV_EIO;
    bool ok = write(fd, line, (size_t)len) == len;
    close(fd);
    if (!ok || rename(tmp, n->api_addr_path) != 0) {
        unlink(tmp);
        return JV_EIO;
    }
    return JV_OK;
}

/* Loopback and Unix-socket peer addresses need no cluster key. The host
 * must be an address literal in 127.0.0.0/8, [::1] or "localhost": a
 * prefix test would let a name such as 127.0.0.1.example.net through,
 * which resolves wherever its owner likes. */
static bool local_only(const char *addr)
{
    char host[64];
    struct in_addr a4;
    if (!strncmp(addr, "ipc://", 6))
        return true;
    if (strncmp(addr, "tcp://", 6) != 0)
        return false;
    const char *h = addr + 6, *colon = strrchr(h, ':');
    if (!colon || (size_t)(colon - h) >= sizeof(host))
        return false;
    memcpy(host, h, (size_t)(colon - h));
    host[colon - h] = '\0';
    if (!strcmp(host, "localhost") || !strcmp(host, "[::1]"))
        return true;
    return inet_pton(AF_INET, host, &a4) == 1 &&
           (ntohl(a4.s_addr) >> 24) == 127;
}

/* Change streams hold connections the HTTP server handed over. */
static size_t node_streams(void *arg)
{
    jv_node *n = arg;
    return jv_watch_streams(n->watch);
}

/* File descriptors kept aside from API connections: the database's
 * connections and files, peer sockets, jobs, logs. */
#define FD_RESERVE     256
#define AUTO_MAX_CONNS 16384

/* The session API's limits from the configuration, sized to the process's
 * open-file limit (raised to its hard limit by main()). */
void jv_node_api_limits(const jv_config *cfg, jv_http_opts *ho)
{
    struct rlimit rl;
    uint64_t fit = AUTO_MAX_CONNS;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        fit = rl.rlim_cur > FD_RESERVE + 16 ? rl.rlim_cur - FD_RESERVE : 16;
    uint64_t max = cfg->max_conns
                       ? cfg->max_conns
                       : (fit < AUTO_MAX_CONNS ? fit : AUTO_MAX_CONNS);
    if (max > fit) {
        jv_warn("api",
                "max-conns %" PRIu64 " is more than the open-file limit "
                "allows; using %" PRIu64 " (raise ulimit -n / LimitNOFILE)",
                max, fit);
        max = fit;
    }
    ho->max_conns = (unsigned)max;
    ho->max_conns_per_addr =
        (unsigned)(cfg->max_conns_per_addr ? cfg->max_conns_per_addr
                                           : (max + 1) / 2);
    ho->max_body = cfg->max_body;
    ho->big_body_path = "/v1/bundles";
    ho->max_big_body = (size_t)cfg->max_bundle;
    ho->idle_timeout_ms = cfg->idle_timeout_ms;
    ho->idle_busy_ms = cfg->idle_busy_ms;
    ho->header_timeout_ms = cfg->header_timeout_ms;
    ho->request_timeout_ms = cfg->request_timeout_ms;
    ho->send_timeout_ms = cfg->send_timeout_ms;
    ho->stream_buffer = (size_t)cfg->stream_buffer;
}

bool jv_node_api_peer(const jv_node *n, const char *addr)
{
    for (size_t i = 0; i < n->api_peers.n; i++)
        if (strcmp(n->api_peers.v[i], addr) == 0)
            return true;
    return false;
}

jv_err jv_node_api_peer_set(jv_node *n, const char *addr, bool api)
{
    jv_strlist *l = &n->api_peers;
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->v[i], addr) != 0)
            continue;
        if (!api) {
            jv_free(l->v[i]);
            l->v[i] = l->v[--l->n];
        }
        return JV_OK;
    }
    if (!api)
        return JV_OK;
    char **v = jv_reallocarray(l->v, l->n + 1, sizeof(*v));
    if (!v)
        return JV_ENOMEM;
    l->v = v;
    if (!(l->v[l->n] = jv_strndup(addr, strlen(addr))))
        return JV_ENOMEM;
    l->n++;
    return JV_OK;
}

static void api_peers_free(jv_node *n)
{
    for (size_t i = 0; i < n->api_peers.n; i++)
        jv_free(n->api_peers.v[i]);
    jv_free(n->api_peers.v);
    n->api_peers = (jv_strlist){NULL, 0};
}

static jv_err load_peer(void *arg, const jv_peer_row *p)
{
    jv_node *n = arg;
    char addr[600];
    snprintf(addr, sizeof(addr), "%.*s", (int)p->addr.n, p->addr.p);
    jv_err err = jv_repl_peer_add(n->repl, addr);
    if (err && err != JV_EEXIST)
        jv_warn("repl", "ignoring stored peer %s: %s", addr, jv_strerror(err));
    else if (jv_str_eq(p->source, jv_str_c("api")))
        return jv_node_api_peer_set(n, addr, true);
    return JV_OK;
}

static void trusted_at_start(jv_write_req *r)
{
    if (r->err || r->group.result)
        jv_error("node", "cannot add the configured trust entries: %s",
                 jv_strerror(r->err ? r->err : r->group.result));
    jv_free(r->arg);
}

typedef struct {
    jv_write_req wr;
    jv_intent *in;
} trust_boot;

/* Puts the configured node ids on the replicated trust list, as a
 * bootstrap only: an id with a trust decision already (added or removed,
 * here or replicated from any node) is left alone, so that a `trust rm`
 * stays removed on a node whose configuration still lists the id. The
 * entry is stamped 1, the oldest stamp there is: any explicit decision
 * (trust add or rm, on any node, before or after) wins over it, also one
 * that reaches this node only later. */
jv_err jv_node_trust_bootstrap(jv_node *n, const jv_strlist *l, char *msg,
                               size_t msglen)
{
    size_t k = 0;
    if (!l->n)
        return JV_OK;
    trust_boot *b = jv_calloc(1, sizeof(*b) + l->n * sizeof(jv_intent));
    if (!b)
        return JV_ENOMEM;
    b->in = (jv_intent *)(b + 1);
    for (size_t i = 0; i < l->n; i++) {
        jv_id id;
        if (jv_id_from_hex(l->v[i], strlen(l->v[i]), &id)) {
            snprintf(msg, msglen, "--trust %s: not a node id (64 hex digits)",
                     l->v[i]);
            jv_free(b);
            return JV_EINVAL;
        }
        if (jv_trustview_trusted(n->trust, &id))
            continue;
        if (jv_trustview_entry(n->trust, &id)) {
            jv_info("node",
                    "not trusting node %.16s although configured: it was "
                    "removed from the trust list (jarvisctl trust add to "
                    "trust it again)",
                    l->v[i]);
            continue;
        }
        jv_intent *in = &b->in[k++];
        in->op.kind = JV_OP_TRUST;
        in->op.trust.node = id;
        in->op.trust.trusted = true;
        in->op.trust.name = jv_str_c("");
        in->op.trust.stamp = 1;
        jv_info("node", "trusting node %.16s (configured)", l->v[i]);
    }
    if (!k) {
        jv_free(b);
        return JV_OK;
    }
    b->wr.group.intents = b->in;
    b->wr.group.n = k;
    b->wr.done = trusted_at_start;
    b->wr.arg = b;
    jv_writer_submit(n->writer, &b->wr);
    return JV_OK;
}

static jv_err start_replication(jv_node *n, char *msg, size_t msglen)
{
    const jv_config *cfg = n->cfg;
    const char *listen = NULL;
    jv_repl_opts ro;
    uint8_t flag[JV_ID_LEN];
    size_t flaglen;
    jv_err err;

    if (cfg->cluster_key_file &&
        (err = jv_keyring_load(cfg->cluster_key_file, &n->ring, msg, msglen)))
        return err;
    if (n->ring.n) {
        char keys[128];
        jv_keyring_describe(&n->ring, keys, sizeof(keys));
        jv_info("node", "cluster keys: %s", keys);
    }
    if (!strcmp(cfg->listen, "auto"))
        listen = n->ring.n ? "tcp://0.0.0.0:7411" : NULL;
    else if (strcmp(cfg->listen, "off") != 0)
        listen = cfg->listen;
    if (listen && !n->ring.n && !cfg->insecure && !local_only(listen)) {
        snprintf(msg, msglen,
                 "refusing to listen for peers on %s without a cluster key: "
                 "give --cluster-key-file (see docs/operations.md), or "
                 "--insecure to accept unencrypted peers",
                 listen);
        return JV_EPERM;
    }
    if (!n->ring.n && (listen || cfg->peers.n))
        jv_warn("repl", "no cluster key: peer traffic is neither encrypted "
                        "nor authenticated");
    memset(&ro, 0, sizeof(ro));
    ro.listen = listen;
    ro.ring = &n->ring;
    ro.fanout = cfg->fanout;
    ro.interval_ms = cfg->sync_interval_ms;
    ro.max_message = cfg->max_message;
    ro.timeout_ms = cfg->peer_timeout_ms;
    ro.backoff_min_ms = 250;
    ro.backoff_max_ms = 30000;
    jv_repl_host host;
    if ((err = jv_repl_host_node(n, &host))) {
        fmt(msg, msglen, "out of memory");
        return err;
    }
    if ((err = jv_repl_start(n, &host, &ro, &n->repl, n->peer_bound,
                             sizeof(n->peer_bound), msg, msglen)))
        return err;
    if (n->peer_bound[0])
        jv_info("repl", "listening for peers on %s", n->peer_bound);

    /* Peers: the stored ones and the configured ones (stored for next
     * time, so that all of them survive a restart). */
    for (size_t i = 0; i < cfg->peers.n; i++) {
        jv_peer_row row = {.addr = jv_str_c(cfg->peers.v[i]),
                           .added_ms = jv_now_ms(),
                           .source = jv_str_c("config")};
        if ((err = jv_transport_addr_check(cfg->peers.v[i]))) {
            snprintf(msg, msglen, "--peer %s: not a tcp:// or ipc:// address",
                     cfg->peers.v[i]);
            return err;
        }
        if ((err = jv_store_peer_add(n->rst, &row)))
            jv_warn("repl", "cannot store peer %s: %s", cfg->peers.v[i],
                    jv_store_errmsg(n->rst));
    }
    if ((err = jv_store_peer_list(n->rst, load_peer, n))) {
        fmt(msg, msglen, "cannot load the stored peers: %s",
            jv_store_errmsg(n->rst));
        return err;
    }
    for (size_t i = 0; i < cfg->peers.n; i++)
        jv_repl_peer_add(n->repl, cfg->peers.v[i]);

    if (jv_store_meta_get(n->rst, JV_META_RESTORED, flag, sizeof(flag),
                          &flaglen) == JV_OK &&
        flaglen == JV_ID_LEN) {
        memcpy(n->restored_from.b, flag, JV_ID_LEN);
        n->catching_up = jv_repl_npeers(n->repl) > 0;
        if (n->catching_up) {
            char hex[JV_ID_HEX];
            jv_id_hex(&n->origin.pk, hex);
            jv_warn("node",
                    "restored from a backup: writing under the new origin "
                    "%.16s; catching up with every peer on what the old one "
                    "published",
                    hex);
        }
    }
    return jv_node_trust_bootstrap(n, &n->cfg->trust, msg, msglen);
}

/* Takes the data dir: its lock, identity, database (writer, reader and
 * checkpointer connections) and backup dir; seeds the clock from the log. */
static jv_err open_data(jv_node *n, const jv_config *cfg, char *msg,
                        size_t msglen)
{
    jv_store_opts o;
    jv_datadir_info info;
    jv_store_stats stats;
    jv_err err;

    jv_store_opts_default(&o);
    o.sync = cfg->sync;
    o.manual_checkpoint = true;
    /* The lock comes first: two starts on one data dir must not both
     * create an identity or an admin key. */
    if ((err = jv_datadir_lock(n->data_dir, &n->lockfd, msg, msglen)) ||
        (err = jv_datadir_prepare(n->data_dir, &o, &n->kp, &n->origin, &n->wst,
                                  &info, msg, msglen)) ||
        (err =
             jv_datadir_backup_dir(n->data_dir, cfg->backup_dir, n->backup_dir,
                                   sizeof(n->backup_dir), msg, msglen)))
        return err;
    jv_id_hex(&n->kp.pk, n->self_hex);
    if (info.created_identity)
        jv_info("node", "created identity %s", n->self_hex);
    if (info.created_admin_key || access(info.admin_key_path, F_OK) == 0)
        jv_info("node", "%s admin API key: %s (mode 0600)",
                info.created_admin_key ? "created the" : "the",
                info.admin_key_path);
    /* The reader and the checkpointer: the writer's open checked the
     * file already. */
    o.create = false;
    o.manual_checkpoint = false;
    o.checked = true;
    if ((err = jv_store_open(n->db_path, &o, &n->rst, msg, msglen)) ||
        (err = jv_store_open(n->db_path, &o, &n->cst, msg, msglen)))
        return err;

    jv_hlc_init(&n->hlc, cfg->max_skew_ms);
    /* Batches stamped beyond the bound wait aside until they are not. */
    jv_store_set_max_skew(n->wst, cfg->max_skew_ms);
    jv_store_set_max_skew(n->rst, cfg->max_skew_ms);
    if ((err = jv_store_stats_get(n->rst, &stats))) {
        fmt(msg, msglen, "cannot read %s: %s", n->db_path,
            jv_store_errmsg(n->rst));
        return err;
    }
    jv_hlc_seed(&n->hlc, stats.max_hlc);
    return JV_OK;
}

/* The writer's bits of change are the cache's kinds: on_job passes them
 * on as they are. */
_Static_assert(JV_CHANGES_COUNTERS == 1u << JV_RC_COUNTER &&
                   JV_CHANGES_CONFIG == 1u << JV_RC_CONFIG &&
                   JV_CHANGES_ARCHIVE == 1u << JV_RC_ARCHIVE,
               "writer changes and read cache kinds differ");

/* No write of kind queued or committing, no job changing the data: what a
 * reader reads of kind now stays true until the next jv_rcache_moved() of
 * it. */
static bool data_quiet(void *arg, unsigned kind)
{
    const jv_node *n = arg;
    return n->writer && jv_writer_pending_changes(n->writer, 1u << kind) == 0 &&
           n->changing == 0;
}

/* Credentials, metrics, the writer thread and the read cache. */
static jv_err start_services(jv_node *n, const jv_config *cfg, char *msg,
                             size_t msglen)
{
    jv_err err;
    n->auth = jv_auth_new(cfg->rate_limit, cfg->rate_burst);
    n->metrics = jv_metrics_new();
    if (!n->auth || !n->metrics || declare_metrics(n->metrics) != JV_OK ||
        jv_compact_declare(n->metrics) != JV_OK) {
        fmt(msg, msglen, "out of memory");
        return JV_ENOMEM;
    }
    if ((err = jv_auth_load(n->auth, n->rst, jv_now_ms()))) {
        fmt(msg, msglen, "cannot load API keys: %s", jv_store_errmsg(n->rst));
        return err;
    }
    if ((err = jv_rcache_new(cfg->read_cache, data_quiet, n, &n->rcache))) {
        fmt(msg, msglen, "out of memory for the read cache");
        return err;
    }
    if ((err = jv_trustview_read(n->rst, &n->trust))) {
        fmt(msg, msglen, "cannot read the trust list: %s",
            jv_store_errmsg(n->rst));
        return err;
    }
    if ((err = jv_writer_start(n->loop, n->wst, &n->origin, &n->hlc,
                               &n->writer))) {
        fmt(msg, msglen, "cannot start the writer thread");
        return err;
    }
    jv_writer_observe(n->writer, on_job, n);
    return JV_OK;
}

/* Signals and timers: from here on the loop owns handles. */
static void start_handles(jv_node *n)
{
    uv_loop_t *loop = n->loop;
    uv_signal_init(loop, &n->sigterm);
    uv_signal_init(loop, &n->sigint);
    uv_signal_init(loop, &n->sighup);
    n->sigterm.data = n->sigint.data = n->sighup.data = n;
    uv_signal_start(&n->sigterm, on_signal, SIGTERM);
    uv_signal_start(&n->sigint, on_signal, SIGINT);
    uv_signal_start(&n->sighup, on_reload, SIGHUP);
    uv_timer_init(loop, &n->tick);
    n->tick.data = n;
    uv_timer_start(&n->tick, on_tick, TICK_MS, TICK_MS);
    uv_timer_init(loop, &n->ckpt_timer);
    n->ckpt_timer.data = n;
    uv_timer_start(&n->ckpt_timer, on_ckpt_timer, CHECKPOINT_MS, CHECKPOINT_MS);
}

/* The session API's listener, and api.addr for jarvisctl to find it. */
static jv_err start_api(jv_node *n, const jv_config *cfg, char *msg,
                        size_t msglen)
{
    jv_err err;
    jv_http_opts ho;
    if (strcmp(cfg->api_listen, "off") == 0)
        return JV_OK;
    jv_http_opts_default(&ho);
    jv_node_api_limits(cfg, &ho);
    ho.handed_over = node_streams;
    ho.handed_over_arg = n;
    if ((err = jv_http_server_new(n->loop, &ho, jv_api_handle, n, &n->http))) {
        fmt(msg, msglen, "cannot start the API server");
        return err;
    }
    if ((err = jv_http_listen(n->http, cfg->api_listen, n->api_bound,
                              sizeof(n->api_bound)))) {
        fmt(msg, msglen, "cannot listen on %s: %s", cfg->api_listen,
            err == JV_EBUSY ? "address in use" : jv_strerror(err));
        return err;
    }
    if (write_api_addr(n) != JV_OK)
        jv_warn("node", "cannot write %s: %s", n->api_addr_path,
                strerror(errno));
    jv_info("api",
            "listening on %s (at most %u connections, %u per client "
            "address)",
            n->api_bound, ho.max_conns, ho.max_conns_per_addr);
    return JV_OK;
}

/* The reader pools: API reads on READERS_API threads; a peer's catch-up
 * (selection and compression) on one thread of its own, so that however
 * much it reads it never delays an API read. */
#define READERS_API 2

static jv_err start_readers(jv_node *n, const jv_config *cfg, char *msg,
                            size_t msglen)
{
    jv_err err =
        jv_readers_new(n->loop, "readers", n->db_path, cfg->sync,
                       cfg->max_skew_ms, READERS_API, &n->readers, msg, msglen);
    if (!err)
        err =
            jv_readers_new(n->loop, "sync-readers", n->db_path, cfg->sync,
                           cfg->max_skew_ms, 1, &n->sync_readers, msg, msglen);
    return err;
}

jv_err jv_node_start(jv_node *n, uv_loop_t *loop, const jv_config *cfg,
                     char *msg, size_t msglen)
{
    jv_err err;

    memset(n, 0, sizeof(*n));
    n->loop = loop;
    n->cfg = cfg;
    n->sync = cfg->sync;
    n->lockfd = -1;
    if (cfg->test_clock_offset_ms) {
        jv_clock_test_offset(cfg->test_clock_offset_ms);
        jv_warn("node", "test fault: the clock runs %lld ms off",
                (long long)cfg->test_clock_offset_ms);
    }
    n->started_ms = n->window_start_ms = jv_now_ms();
    snprintf(n->data_dir, sizeof(n->data_dir), "%s", cfg->data_dir);
    if (jv_datadir_path(n->data_dir, JV_DATADIR_DB, n->db_path,
                        sizeof(n->db_path)) ||
        jv_datadir_path(n->data_dir, JV_DATADIR_APIADDR, n->api_addr_path,
                        sizeof(n->api_addr_path))) {
        fmt(msg, msglen, "data dir path too long: %s", cfg->data_dir);
        return JV_ETOOBIG;
    }
    if ((err = open_data(n, cfg, msg, msglen)) ||
        (err = start_services(n, cfg, msg, msglen)))
        goto fail;
    start_handles(n);
    if (jv_watch_start(n, &n->watch) != JV_OK)
        jv_warn("watch", "change streams are off: GET /v1/watch answers 503");
    if ((err = start_readers(n, cfg, msg, msglen)) ||
        (err = start_replication(n, msg, msglen)) ||
        (err = start_api(n, cfg, msg, msglen))) {
        /* The loop owns handles now: stop through the normal path. */
        n->exit_code = 1;
        jv_node_stop(n);
        return err;
    }
    /* From here on the loop reads no store: the connection of its
     * start-up goes (docs/architecture.md, "Threads and ownership"). */
    jv_store_close(n->rst);
    n->rst = NULL;
    jv_info("node", "node %s (%s) started, data in %s", n->self_hex, cfg->name,
            n->data_dir);
    return JV_OK;

fail:
    jv_store_close(n->cst);
    jv_store_close(n->rst);
    jv_store_close(n->wst);
    n->cst = n->rst = n->wst = NULL;
    jv_auth_free(n->auth);
    jv_metrics_free(n->metrics);
    jv_rcache_free(n->rcache);
    jv_trustview_free(n->trust);
    api_peers_free(n);
    n->trust = NULL;
    n->auth = NULL;
    n->metrics = NULL;
    n->rcache = NULL;
    jv_datadir_unlock(n->lockfd);
    n->lockfd = -1;
    jv_keypair_wipe(&n->kp);
    jv_keypair_wipe(&n->origin);
    jv_keyring_wipe(&n->ring);
    return err;
}

void jv_node_fini(jv_node *n)
{
    jv_keyring_wipe(&n->ring);
    jv_api_free(n);
    jv_auth_free(n->auth);
    jv_metrics_free(n->metrics);
    jv_rcache_free(n->rcache);
    jv_trustview_free(n->trust);
    api_peers_free(n);
    n->trust = NULL;
    n->auth = NULL;
    n->metrics = NULL;
    n->rcache = NULL;
    jv_datadir_unlock(n->lockfd);
    n->lockfd = -1;
    jv_keypair_wipe(&n->kp);
    jv_keypair_wipe(&n->origin);
    jv_reload_free(n);
}
