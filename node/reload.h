/*
 * reload.h - SIGHUP: the settings read again and applied where that needs
 * no restart.
 *
 * The settings are loaded exactly as at start (jv_config_reload): the same
 * command line, which still wins over the file, the config file the node
 * started with, read again, and the same environment, below the file.
 * They are compared with the settings in use, and what changed is applied
 * on the loop thread:
 * log level, name, rate limits, session lifetime, the session API's
 * limits (for new connections and requests), fanout, sync interval, peer
 * timeout, the cluster key file's name, peers (only the configured ones:
 * a peer added through the API stays) and trust lines (a new line
 * bootstraps its id as at start; a removed one changes nothing). A
 * setting that needs a restart keeps its running value, is logged
 * ("api-listen changed: restart to apply") and listed as restart_needed.
 * A file that does not load, or a peer or trust line the node cannot
 * take, changes nothing: the error is logged and kept for the status.
 *
 * docs/operations.md, "Reloading settings", has the table. Loop thread
 * only.
 */
#ifndef JV_RELOAD_H
#define JV_RELOAD_H

#include <jansson.h>

#include "node.h"

/* Reads and applies the settings again; then n->cfg is the new settings
 * (the previous ones freed when a reload made them). */
void jv_reload_settings(jv_node *n);

/* The cluster key file, read again after the settings (node.c): keys
 * that changed name "cluster-key-file" among what the last reload
 * applied; a file that does not load (error) is its error, unless the
 * settings failed first. */
void jv_reload_keys(jv_node *n, bool changed, const char *error);

/* GET /v1/status's "reload": {"at", "changed", "restart_needed", "error"}
 * of the last reload, or JSON null before any. */
json_t *jv_reload_json(const jv_node *n);

/* Frees the reload state and the settings a reload made (jv_node_fini). */
void jv_reload_free(jv_node *n);

#endif
