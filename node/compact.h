/*
 * compact.h - bounded history for a running node (storage/snapshot.h):
 * every COMPACT_EVERY_MS, the stable frontier from the trusted peers'
 * proven vectors (repl.h, jv_repl_frontier) and, when there is one, a
 * compaction round on libuv's thread pool with a connection of its own:
 * batches every trusted peer holds, older than --log-retention, are folded
 * into the signed base and deleted in small transactions. One round at a
 * time. docs/protocol.md, "Bounded history".
 *
 * Loop thread only.
 */
#ifndef JV_COMPACT_H
#define JV_COMPACT_H

#include "node.h"

#define COMPACT_EVERY_MS 2000

/* Declares the metrics of compaction and snapshots. */
jv_err jv_compact_declare(jv_metrics *m);
/* Starts a round if none runs and there is a frontier. */
void jv_compact_tick(jv_node *n);

#endif
