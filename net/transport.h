/*
 * transport.h - peer messaging over nng (Debian's 1.5.2), bytes only.
 *
 * Inbound: one REP socket listens (tcp:// or ipc://) and serves up to
 * `server_contexts` requests at once through nng contexts. Outbound: one
 * REQ socket per peer, dialled asynchronously (nng reconnects with its own
 * backoff), at most one request outstanding per peer, each with a timeout:
 * a slow or dead peer holds only its own socket, never the others.
 *
 * nng's callbacks run on nng's threads and only queue an event; everything
 * below is delivered on the loop thread through one uv_async_t.
 *
 * Known traps of nng 1.5.2 handled here:
 *   - NNG_OPT_RECVMAXSZ is unlimited by default: it is set on every
 *     socket, listener and dialer before it listens or dials, to
 *     max_message plus room for the SP header (which nng counts); the
 *     exact max_message is then enforced by the transport itself.
 *   - A peer that disconnects in the middle of the SP handshake can leave a
 *     listener (TCP, and ipc:// alike) that accepts nothing more (nng
 *     issue #1518, fixed in 1.6.0). The transport probes its own listener
 *     every probe_interval_ms through a socket of its own (a probe request
 *     is answered by the transport itself); after probe_failures
 *     consecutive failures it closes the listener and creates it again on
 *     the same address.
 *
 * Addresses: "tcp://HOST:PORT" (IPv4, [IPv6] or a name; port 0 picks one
 * when listening) and "ipc:///path". Anything else is JV_EINVAL.
 *
 * Threading: every function on the loop thread.
 */
#ifndef JV_TRANSPORT_H
#define JV_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "types.h"

typedef struct jv_transport jv_transport;
typedef struct jv_tpeer jv_tpeer;
typedef struct jv_inbound jv_inbound;

typedef struct {
    size_t max_message;         /* bytes; default 8 MiB */
    unsigned server_contexts;   /* concurrent inbound requests; default 8 */
    uint64_t probe_interval_ms; /* listener self-check; default 5000; 0 off */
    uint64_t probe_timeout_ms;  /* default 2000 */
    unsigned probe_failures;    /* before re-creating; default 2 */
    uint64_t reconnect_min_ms;  /* nng dialer backoff; default 100 */
    uint64_t reconnect_max_ms;  /* default 5000 */
} jv_transport_opts;

typedef struct {
    /* A request from a peer. Answer it with jv_transport_reply() or
     * jv_transport_drop() (now or later, on the loop thread); msg stays
     * valid until then. */
    void (*on_request)(void *arg, jv_inbound *in, const uint8_t *msg,
                       size_t len);
    /* The outcome of jv_transport_send(): JV_OK with the reply (valid
     * during the call), JV_ETIMEDOUT, JV_ENET or JV_ECLOSED. */
    void (*on_reply)(void *arg, jv_tpeer *p, jv_err err, const uint8_t *msg,
                     size_t len);
    /* The listener was found dead and re-created (err JV_OK), or could not
     * be (err says why; it is tried again at the next probe). May be
     * NULL. */
    void (*on_listener)(void *arg, jv_err err);
    void *arg;
    /* An inbound request of len bytes was dropped unanswered because it
     * is over max_message (one within nng's slack for the SP header; a
     * larger one never gets past nng, which closes its connection). May
     * be NULL. */
    void (*on_oversized)(void *arg, size_t len);
    /* Peer p's connection is up (why NULL), or there is none and why says
     * what connecting gets: "connection refused", "connection closed"
     * (the one it had closed, though its address accepts connections),
     * "connection timed out", "host unreachable"... (a static string).
     * Learned from nng's pipe events and, while there is no connection,
     * from a plain connect() to the address (250 ms after the peer is
     * made if nng has not connected by then, at once when a connection
     * is lost, then as requests are sent, backing off from 1 s to 30 s). Called
     * when it changes, not per retry. A request in flight is not affected: it
     * still ends through on_reply. May be NULL. */
    void (*on_link)(void *arg, jv_tpeer *p, const char *why);
} jv_transport_cbs;

void jv_transport_opts_default(jv_transport_opts *o);
/* The version of the nng library the transport runs on ("1.5.2"). */
const char *jv_transport_nng_version(void);

/* Validates a peer address (syntax only). */
jv_err jv_transport_addr_check(const char *addr);

jv_err jv_transport_new(uv_loop_t *loop, const jv_transport_opts *o,
                        const jv_transport_cbs *cbs, jv_transport **out);

/* Starts listening. bound (if not NULL) receives the address actually
 * bound (the port filled in when 0 was asked). One listener per
 * transport. */
jv_err jv_transport_listen(jv_transport *t, const char *addr, char *bound,
                           size_t boundlen);

/* A peer to send requests to; dialling starts at once, in the background.
 * user is the caller's, returned by jv_tpeer_user(). */
jv_err jv_transport_peer_new(jv_transport *t, const char *addr, void *user,
                             jv_tpeer **out);
void *jv_tpeer_user(const jv_tpeer *p);
const char *jv_tpeer_addr(const jv_tpeer *p);
/* True while a request of this peer is outstanding. */
bool jv_tpeer_busy(const jv_tpeer *p);
/* Takes back the outstanding request if no connection has taken it yet
 * (it waits for one): it is never sent, and its on_reply comes with
 * JV_ECLOSED. False when there is nothing to take back: no request, or
 * one already handed to a connection (that one is on its way; its reply
 * comes as usual). A request that a connection takes while this call
 * runs goes out too, and is answered as usual. Loop thread. */
bool jv_transport_recall(jv_tpeer *p);
/* Frees the peer; an outstanding request is cancelled and its on_reply is
 * not called. Accepts NULL. */
void jv_transport_peer_free(jv_tpeer *p);

/* Sends one request (copied) and waits for the reply up to timeout_ms.
 * JV_EBUSY while the previous one is outstanding; JV_ETOOBIG over
 * max_message. */
jv_err jv_transport_send(jv_tpeer *p, const uint8_t *msg, size_t len,
                         uint64_t timeout_ms);

/* Answers an inbound request (msg copied) / drops it unanswered (the
 * requester times out). Either frees `in`. */
void jv_transport_reply(jv_inbound *in, const uint8_t *msg, size_t len);
void jv_transport_drop(jv_inbound *in);

/* How often the listener was re-created. */
uint64_t jv_transport_listener_restarts(const jv_transport *t);

/* Closes the listener and the probe, answers nothing more, then calls
 * done(arg). Peers must have been freed first. Inbound requests not yet
 * answered are dropped: from this call on, reply/drop on them do nothing,
 * and once done has run their handles are gone. */
void jv_transport_close(jv_transport *t, void (*done)(void *), void *arg);

/* Test fault: closes the listener behind the transport's back, as nng
 * #1518 would leave it, so that tests can watch the probe bring it back.
 * Reachable only through jarvisd --test-faults. */
void jv_transport_fault_kill_listener(jv_transport *t);

#endif
