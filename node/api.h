/*
 * api.h - the session API: routes, authentication, handlers (docs/api.md).
 *
 * jv_api_handle() is the HTTP server's handler: it matches the route,
 * checks credentials, role and rate limit, parses the JSON body and calls
 * the route's handler. Reads are answered at once from the reader
 * connection; writes become intents handed to the writer thread and are
 * answered from its completion, after the commit.
 *
 * Loop thread only.
 */
#ifndef JV_API_H
#define JV_API_H

#include "node.h"

/* The HTTP handler; arg is the jv_node. */
void jv_api_handle(void *arg, jv_http_req *req);

/* Frees the API's per-node caches (at the node's end). */
void jv_api_free(jv_node *n);

/* Declares the API's metric families in the node's registry. */
jv_err jv_api_declare_metrics(jv_metrics *m);

#endif
