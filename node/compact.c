/*
 * compact.c - the node's compaction rounds (compact.h).
 */
#include "compact.h"

#include <inttypes.h>
#include <string.h>

#include "alloc.h"
#include "hlc.h"
#include "log.h"
#include "repl.h"
#include "snapshot.h"

typedef struct {
    jv_vv frontier;
    uint64_t max_hlc;
    jv_keypair kp;
    jv_compact_stats stats;
    char msg[256];
} round_job;

jv_err jv_compact_declare(jv_metrics *m)
{
    static const struct {
        const char *name;
        jv_metric_type type;
        const char *help;
    } fams[] = {
        {"jarvis_compactions_total", JV_METRIC_COUNTER,
         "compaction rounds that recorded a new base, and those that failed"},
        {"jarvis_log_compacted_batches_total", JV_METRIC_COUNTER,
         "batches deleted from the log after being folded into the base"},
        {"jarvis_base_bytes", JV_METRIC_GAUGE,
         "size of the base snapshot's encoding (0: none yet)"},
        {"jarvis_snapshots_installed_total", JV_METRIC_COUNTER,
         "snapshots received from peers and joined into the state"},
        {"jarvis_snapshots_refused_total", JV_METRIC_COUNTER,
         "snapshots received from peers and refused, by reason"},
        {"jarvis_snapshots_sent_total", JV_METRIC_COUNTER,
         "snapshots sent to peers that lacked compacted batches"},
        {"jarvis_snapshots_disagreeing_total", JV_METRIC_COUNTER,
         "snapshots whose digest a second trusted peer contradicted at the "
         "same vector"},
    };
    for (size_t i = 0; i < sizeof(fams) / sizeof(fams[0]); i++) {
        jv_err err = jv_metrics_declare(m, fams[i].name, fams[i].type,
                                        fams[i].help, NULL, 0);
        if (err && err != JV_EEXIST)
            return err;
    }
    return JV_OK;
}

static jv_err round_run(jv_store *st, void *arg)
{
    round_job *j = arg;
    jv_err err =
        jv_store_compact(st, &j->kp, &j->frontier, j->max_hlc, &j->stats);
    if (err)
        snprintf(j->msg, sizeof(j->msg), "%s", jv_store_errmsg(st));
    return err;
}

static void round_done(jv_node *n, jv_err err, void *arg)
{
    round_job *j = arg;
    n->compacting = false;
    if (err == JV_EBUSY) {
        jv_debug("storage", "compaction: %s (next round)", j->msg);
    } else if (err && err != JV_ECLOSED) {
        jv_metrics_add(n->metrics, "jarvis_compactions_total",
                       "result=\"failed\"", 1);
        jv_warn("storage", "compaction failed: %s: %s", jv_strerror(err),
                j->msg);
    }
    if (j->stats.built) {
        jv_metrics_add(n->metrics, "jarvis_compactions_total",
                       "result=\"built\"", 1);
        jv_metrics_set(n->metrics, "jarvis_base_bytes", NULL,
                       (double)j->stats.base_bytes);
        jv_info("storage",
                "compacted: %" PRIu64 " batches folded into the base (%" PRIu64
                " bytes), %" PRIu64 " deleted",
                j->stats.folded, j->stats.base_bytes, j->stats.deleted);
    }
    jv_metrics_add(n->metrics, "jarvis_log_compacted_batches_total", NULL,
                   (double)j->stats.deleted);
    jv_keypair_wipe(&j->kp);
    jv_vv_fini(&j->frontier);
    jv_free(j);
}

void jv_compact_tick(jv_node *n)
{
    if (n->compacting || n->stopping || !n->repl)
        return;
    round_job *j = jv_calloc(1, sizeof(*j));
    if (!j)
        return;
    jv_vv_init(&j->frontier);
    uint64_t horizon = n->cfg->peer_horizon_s * 1000;
    if (!jv_repl_frontier(n->repl, horizon, &j->frontier, NULL)) {
        jv_vv_fini(&j->frontier);
        jv_free(j);
        return;
    }
    uint64_t now = jv_now_ms(), keep = n->cfg->log_retention_s * 1000;
    j->max_hlc = now > keep ? jv_hlc_make(now - keep, UINT16_MAX) : 0;
    j->kp = n->origin;
    if (jv_node_offloop(n, round_run, round_done, j) != JV_OK) {
        jv_keypair_wipe(&j->kp);
        jv_vv_fini(&j->frontier);
        jv_free(j);
        return;
    }
    n->compacting = true;
}
