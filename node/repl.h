/*
 * repl.h - replication: peers, push-pull anti-entropy, relay, trust.
 *
 * Every exchange is one request and its reply (wire.h), sealed with the
 * cluster keyring and signed with the sender's node key; only a proven
 * message from a trusted node is served or believed (docs/protocol.md,
 * "Who may speak"). There are two kinds:
 *
 *   push  A -> B  SYNC   {A's have-vector, the batches B lacks as far as A
 *                         knows (bounded), budget 0}
 *         B -> A  REPLY  {B's have-vector from before it applies them}
 *   pull  A -> B  SYNC   {A's have-vector, budget}
 *         B -> A  REPLY  {B's have-vector, the batches A lacks by A's
 *                         vector (bounded by the budget), more}
 *
 * Both sides apply what they received (after checking each batch against
 * the origin's key, chain and trust, on the writer thread) and update what
 * they know of the other's vector. A pull whose reply has `more` set goes
 * on at once, after the received batches are applied, with one peer at a
 * time, so a node that was away for hours catches up in bounded chunks;
 * a pull that finds the peer lacking something pushes it right after.
 *
 * When: a new local commit, or newly applied remote batches, are pushed
 * (never to the peer they came from) to the first `fanout` peers of a
 * fixed random order, reachable ones first; then, per origin, a peer
 * whose reply shows it held the pushed batches already is pushed no more
 * of that origin, and a peer that had to pull an origin's batches is
 * pushed them from then on (Plumtree's prune and graft). Pushes settle
 * into a spanning structure rather than flood, and a write spreads in a
 * few hops. Every interval one random peer is pulled from
 * (anti-entropy), which fills whatever the pushes missed. A peer that fails is
 * retried with exponential backoff and jitter; each peer has its own socket and
 * at most one exchange at a time, so a slow one delays no other.
 * docs/protocol.md has the whole protocol.
 *
 * Loop thread only.
 */
#ifndef JV_REPL_H
#define JV_REPL_H

#include <jansson.h>

#include "keyring.h"
#include "node.h"
#include "repl_host.h"

typedef struct jv_repl jv_repl;

typedef struct {
    const char *listen;     /* address to listen on, or NULL for none */
    const jv_keyring *ring; /* NULL or empty: plaintext frames */
    uint64_t fanout;
    uint64_t interval_ms;
    uint64_t max_message;
    uint64_t timeout_ms; /* one exchange */
    uint64_t backoff_min_ms;
    uint64_t backoff_max_ms;
} jv_repl_opts;

/* Starts the transport (and its listener) through host (repl_host.h),
 * which it owns from now on, also when it fails. bound receives the
 * listening address actually bound ("" if none). */
jv_err jv_repl_start(jv_node *n, const jv_repl_host *host,
                     const jv_repl_opts *o, jv_repl **out, char *bound,
                     size_t boundlen, char *msg, size_t msglen);

/* Adds a peer to dial (JV_EEXIST if known, JV_EINVAL if the address is not
 * tcp:// or ipc://) / forgets one (JV_ENOTFOUND). */
jv_err jv_repl_peer_add(jv_repl *r, const char *addr);
jv_err jv_repl_peer_remove(jv_repl *r, const char *addr);
bool jv_repl_has_peer(const jv_repl *r, const char *addr);

/* After each writer job, before its requests hear back (writer.h): this
 * node's entry rises to own_seq (set when the job changed nothing but
 * this node's log) and the applied vector to vv (read after the job;
 * NULL: not read, or the read failed; the writer reads it after its next
 * job then). local: the job committed operations of this node, which are
 * pushed. */
void jv_repl_committed(jv_repl *r, const jv_vv *vv, uint64_t own_seq,
                       bool local);
/* Pushes what this node's vector holds beyond its peers' (after a
 * bundle's import, say). */
void jv_repl_spread(jv_repl *r);

/* Peers as docs/api.md's GET /v1/peers describes them. */
json_t *jv_repl_peers_json(jv_repl *r);
/* This node and every peer as docs/api.md's GET /v1/cluster describes
 * them; NULL on ENOMEM. */
json_t *jv_repl_members_json(jv_repl *r);
/* 0..100 and a reason, for GET /v1/health. */
int jv_repl_health(jv_repl *r, char *why, size_t whylen);
/* How long this node has reached none of its peers (ms); 0 while it
 * reaches one, or has none. */
uint64_t jv_repl_isolated_ms(const jv_repl *r);
/* held: the held area's counts, read off the loop with the figures (NULL:
 * they could not be read; their series keep their last values). */
void jv_repl_update_metrics(jv_repl *r, const jv_held_counts *held);
/* True once every peer completed an exchange that left nothing to pull
 * (a restored node's health waits for this). */
bool jv_repl_caught_up(const jv_repl *r);
/* How many peers (of *of) it has caught up with so far. */
size_t jv_repl_caught_up_n(const jv_repl *r, size_t *of);
size_t jv_repl_npeers(const jv_repl *r);

/* New fanout, anti-entropy period and exchange timeout (a settings
 * reload), used from the next push, pull and exchange on. */
void jv_repl_set_tuning(jv_repl *r, uint64_t fanout, uint64_t interval_ms,
                        uint64_t timeout_ms);

/* This node's clock against its trusted peers', measured from the stamps
 * of its requests and their (signed) replies, refusals included. */
typedef struct {
    size_t peers;      /* peers measured in the last minute (0: unknown) */
    int64_t offset_ms; /* this clock minus the median of theirs */
    int64_t ahead_ms;  /* the next stamp minus their clocks' time */
    bool skewed; /* either beyond --max-clock-skew: local writes refused */
} jv_repl_clock;
void jv_repl_clock_get(jv_repl *r, jv_repl_clock *out);

/* Raises out to the version vector the node `id` last sent in a message
 * of its own (signed, so proven), kept in memory since this node started
 * (also after the peer is removed). false when there is none (or memory
 * ran out). */
bool jv_repl_said(const jv_repl *r, const jv_id *id, jv_vv *out);

/* The stable frontier (docs/protocol.md): per origin, what every trusted
 * node (but this one) has proven it holds, by the vectors of its own
 * signed messages since this node started (jv_repl_said). A trusted node
 * silent for longer than horizon_ms (counted from this node's start at
 * most) is left out: it is "behind the horizon". false when there is no
 * frontier: a trusted node within the horizon has not spoken yet, or no
 * trusted node within it has (then nobody else holds this node's own
 * batches). behind (may be NULL): trusted nodes left out. */
bool jv_repl_frontier(jv_repl *r, uint64_t horizon_ms, jv_vv *out,
                      size_t *behind);
/* Peers silent past the horizon of the last jv_repl_frontier call. */
size_t jv_repl_behind_horizon(const jv_repl *r);

/* How long batches took from their origin's commit to their apply here
 * (this clock minus the batch's stamp, so clock offsets show in it), over
 * the last JV_REPL_DELAY_SAMPLES batches applied from peers. */
#define JV_REPL_DELAY_SAMPLES 512
typedef struct {
    size_t samples; /* 0: nothing applied from a peer yet */
    uint64_t p50_ms, p99_ms, max_ms;
} jv_repl_delay;
void jv_repl_delay_get(const jv_repl *r, jv_repl_delay *out);

/* Replaces the cluster keyring (a reload): what is sent from now on is
 * sealed with ring->k[0], and every key of ring opens. */
void jv_repl_set_keyring(jv_repl *r, const jv_keyring *ring);

/* Stops exchanges, waits for the writer to finish applying what was
 * received, closes the transport, then done(arg). */
void jv_repl_stop(jv_repl *r, void (*done)(void *), void *arg);

/* Test faults (jarvisd --test-faults): block all traffic with a peer
 * address or node id (hex) / unblock everything; kill the listener as
 * nng #1518 would. */
jv_err jv_repl_block(jv_repl *r, const char *what);
void jv_repl_unblock_all(jv_repl *r);
void jv_repl_kill_listener(jv_repl *r);
/* Test faults: snapshots sent from now on are "none" (as made), "flip"
 * (a byte changed), "untrusted" (re-signed by a key nobody trusts) or
 * "truncate" (cut short, and said to be). JV_EINVAL for another mode. */
jv_err jv_repl_snap_fault(jv_repl *r, const char *mode);
/* The mode set by jv_repl_snap_fault ("none" unless one was set): bundles
 * made from now on carry their snapshot faulted alike. */
const char *jv_repl_snap_fault_mode(const jv_repl *r);

#endif
