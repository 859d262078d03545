/*
 * cluster.h - N real jarvisd processes on loopback, set up exactly as
 * docs/operations.md tells an operator to:
 *
 *   1. jarvisctl cluster-key -o <root>/cluster.key        (once)
 *   2. jarvisctl init <data dir>                          (each node; the
 *      node id is read from what it prints)
 *   3. one configuration file per node: data-dir, listen, cluster-key-file,
 *      a peer line per peer and a trust line per node id; then jarvisd
 *      --config FILE (plus the test's own flags), started.
 *
 * Peer ports are chosen outside the kernel's ephemeral range (so that no
 * outgoing connection of a running node can take one), checked by binding
 * them, and claimed with a lock file under $TMPDIR/jarvis-test-ports whose
 * owner is this process: test programs run in parallel (ctest -j) never
 * pick the same port, and a crashed test's claims are taken back.
 *
 * Everything has a timeout; failures return -1 with the reason in c->err
 * (no assertions here, so that benchmarks can use it too). Every process
 * started is a child that dies with the test (PR_SET_PDEATHSIG), and
 * jv_cluster_fini() kills what still runs and removes every temporary
 * file.
 *
 * Blocking; single-threaded programs only.
 */
#ifndef JV_CLUSTER_H
#define JV_CLUSTER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "proc.h"
#include "testutil.h"

#define JV_CLUSTER_MAX       16
#define JV_CLUSTER_MAX_FLAGS 24

typedef struct {
    jv_test_node t;     /* process, data dir, log, API url, admin key */
    char id[65];        /* node id as `jarvisctl init` printed it */
    int port;           /* peer port on 127.0.0.1 */
    char listen[64];    /* tcp://127.0.0.1:<port> */
    char conf[700];     /* its configuration file */
    char key_file[700]; /* its copy of the cluster key (key_per_node) */
    /* Flags of this node only, appended after the cluster's (NULL-ended);
     * the caller's strings must outlive the cluster. */
    char *flags[JV_CLUSTER_MAX_FLAGS];
} jv_cnode;

typedef struct {
    size_t n;                /* nodes, 1..JV_CLUSTER_MAX */
    bool no_key;             /* no cluster key: plaintext peers (no step 1) */
    bool key_per_node;       /* each node gets its own copy of the key
                                file, as on separate hosts (to rotate) */
    bool no_peers;           /* configuration files without peer lines */
    size_t peers_k;          /* 0: every node lists every node, itself
                                included (the docs' one shared list); else k
                                other nodes picked at random */
    unsigned long long seed; /* for peers_k picks */
    /* Flags given to every node (NULL-ended; NULL for none), e.g.
     * "--sync-interval", "200", "--test-faults". */
    char *const *flags;
} jv_cluster_opts;

typedef struct {
    size_t n;
    jv_cnode node[JV_CLUSTER_MAX];
    char root[512];     /* temporary directory of the cluster */
    char home[600];     /* HOME for jarvisctl */
    char key_file[600]; /* cluster.key ("" without a key) */
    char *flags[JV_CLUSTER_MAX_FLAGS];
    char err[2048]; /* why the last call failed */
} jv_cluster;

/* Steps 1 to 3 without starting anything. -1 with c->err on failure
 * (what was made is still released by jv_cluster_fini). */
int jv_cluster_init(jv_cluster *c, const jv_cluster_opts *o);

/* Replaces node i's key file (key_per_node) with these lines (mode
 * 0600, atomically), then sends it SIGHUP if it runs and waits until its
 * log says the keys were reloaded (20 s). */
int jv_cluster_set_keys(jv_cluster *c, size_t i, const char *const *keys,
                        size_t n);

/* Sends node i SIGHUP if it runs and waits until its log says the keys
 * were reloaded (20 s): the "reload" step after an edit of its key file
 * (C.node[i].key_file with key_per_node). */
int jv_cluster_reload_keys(jv_cluster *c, size_t i);

/* Rewrites node i's configuration file (after changing its peers). The
 * peers are given as node indices; n_peers may be 0. */
int jv_cluster_write_config(jv_cluster *c, size_t i, const size_t *peers,
                            size_t n_peers);

/* jarvisd --config <conf> <cluster flags> <node flags>, waited for until
 * it serves /health (20 s). */
int jv_cluster_start(jv_cluster *c, size_t i);
int jv_cluster_start_all(jv_cluster *c);
/* SIGTERM and wait; returns jarvisd's exit status (0 expected). */
int jv_cluster_stop(jv_cluster *c, size_t i);
/* SIGKILL and reap. */
void jv_cluster_kill(jv_cluster *c, size_t i);
bool jv_cluster_running(const jv_cluster *c, size_t i);

/* Kills what runs, removes every temporary file, releases the ports. */
void jv_cluster_fini(jv_cluster *c);
void jv_cluster_dump_logs(const jv_cluster *c);

/* -- talking to a node ---------------------------------------------------- */

typedef struct {
    long status; /* HTTP status, 0 if no answer */
    char *body;  /* NUL-terminated (malloc'd) */
    size_t len;
} jv_http_resp;

/* One request to node i's API with its admin key; body may be NULL.
 * 0 if an answer came (whatever its status), -1 otherwise. */
int jv_cluster_http(jv_cluster *c, size_t i, const char *method,
                    const char *path, const char *body, jv_http_resp *r);
void jv_http_resp_fini(jv_http_resp *r);

/* GET path answered 200 with JSON: the parsed body, else NULL. */
json_t *jv_cluster_get_json(jv_cluster *c, size_t i, const char *path);

/* The value of one series of GET /metrics, written as Prometheus shows it
 * ("jarvis_repl_batches_total{result=\"duplicate\"}"); 0 if the series is
 * absent, -1 if the node did not answer. */
double jv_cluster_metric(jv_cluster *c, size_t i, const char *series);
/* The sum of every series of a family whose labels contain `match` (NULL:
 * all of them). -1 if the node did not answer. */
double jv_cluster_metric_sum(jv_cluster *c, size_t i, const char *family,
                             const char *match);

/* Runs jarvisctl with the arguments (NULL-ended) against node i
 * (JARVIS_NODE and JARVIS_API_KEY set), at most 60 s. 0 if it ran (see
 * r->status), -1 otherwise. */
int jv_cluster_ctl(jv_cluster *c, size_t i, jv_proc_result *r, ...);
/* `jarvisctl export` of node i: the bytes into *out (malloc'd). */
int jv_cluster_export(jv_cluster *c, size_t i, char **out, size_t *len);

/* Node i's version vector from GET /v1/status (a JSON object), or NULL. */
json_t *jv_cluster_vv(jv_cluster *c, size_t i);

/* Waits until the running nodes among `which` (NULL: all) have equal
 * version vectors, then compares their `jarvisctl export` bytes. 0 when
 * converged within timeout_ms (elapsed_ms, if not NULL, says how long the
 * vectors took), -1 with c->err saying what differs. */
int jv_cluster_wait_converged(jv_cluster *c, const size_t *which, size_t nwhich,
                              int timeout_ms, double *elapsed_ms);

/* A POST /v1/batch body of n operations that do not coalesce: audit
 * entries, sets of distinct config keys (each of which also leaves a
 * config.set audit entry) or, without config, adds of distinct archive
 * keys, and increments of distinct counters, numbered from base; each
 * with a random part so that compression has no easy time. malloc'd;
 * NULL when out of memory. */
char *jv_cluster_batch_body(jv_rng *rng, unsigned long long base, unsigned n,
                            bool config);

/* For programs run by hand (the benchmarks): when JV_BIN_DIR is not set,
 * sets it to the directory of this program, where jarvisd is built too.
 * -1 if neither is known. */
int jv_cluster_bin_dir_default(void);

/* Monotonic milliseconds and a sleep, for tests' own polling. */
double jv_cluster_now_ms(void);
void jv_cluster_sleep_ms(long ms);

#endif
