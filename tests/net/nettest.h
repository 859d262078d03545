/*
 * nettest.h - what the multi-node tests share on top of
 * tests/support/cluster.h: cmocka assertions that print the cluster's
 * failure and every node's log, requests that must get a given status,
 * and random writes of every kind with the totals they should add up to.
 */
#ifndef JV_NETTEST_H
#define JV_NETTEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "cluster.h"
#include "testutil.h"

/* Fails the test unless rc == 0, printing c->err and the nodes' logs. */
#define NT_OK(c, rc) nt_ok((c), (rc), #rc, __FILE__, __LINE__)
void nt_ok(jv_cluster *c, int rc, const char *what, const char *file, int line);
/* Fails the test with a message, printing the nodes' logs. */
#define NT_FAIL(c, ...) nt_fail((c), __FILE__, __LINE__, __VA_ARGS__)
void nt_fail(jv_cluster *c, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5), noreturn));
#define NT_CHECK(c, cond)                                  \
    do {                                                   \
        if (!(cond))                                       \
            nt_fail((c), __FILE__, __LINE__, "%s", #cond); \
    } while (0)

/* A request to node i that must answer `status`; the parsed JSON body
 * (NULL when it has none). printf-style path. */
json_t *nt_req(jv_cluster *c, size_t i, long status, const char *method,
               const char *body, const char *pathfmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Totals the random writes must lead to, for checks beyond "equal". */
#define NT_COUNTERS 5
typedef struct {
    int64_t counter[NT_COUNTERS]; /* expected total of counter c<i> */
    uint64_t audits;              /* entries with action "nt.write" */
    unsigned writes;              /* writes that committed an operation */
} nt_expect;

/* n random writes on node i: counters (up and down), audit entries,
 * config sets, archive adds and removes, and mixed POST /v1/batch. */
void nt_random_writes(jv_cluster *c, size_t i, jv_rng *rng, unsigned n,
                      nt_expect *e);
/* Checks node i's counters and audit entries against e. */
void nt_check_expect(jv_cluster *c, size_t i, const nt_expect *e);

/* Converged within timeout_ms (NULL: every running node), else fail. */
void nt_converge(jv_cluster *c, const size_t *which, size_t n, int timeout_ms);

/* One series of node i's /metrics (see jv_cluster_metric); fails if the
 * node does not answer. */
double nt_metric(jv_cluster *c, size_t i, const char *series);

/* Node i's entry for peer address addr in GET /v1/peers (a new
 * reference), or NULL. */
json_t *nt_peer(jv_cluster *c, size_t i, const char *addr);

/* Whether two exports are equal once the audit entries every restore
 * records (action node.restore, docs/operations.md) are left out. */
bool nt_export_same_but_restores(const char *a, size_t alen, const char *b,
                                 size_t blen);

/* Milliseconds scaled for slower builds: JV_TIME_SCALE (a factor, e.g. 3
 * under the sanitizers, set by the tests' CMake) times ms. */
int nt_ms(int ms);

#endif
