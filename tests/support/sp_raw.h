/*
 * sp_raw.h - a REQ peer by hand over TCP, for tests of what an nng
 * listener does with a message too large for it.
 *
 * It speaks the SP protocol's TCP framing itself (the handshake, then a
 * 64-bit length header) rather than through an nng socket: closing an nng
 * socket whose connection the other side cut can hang in nng 1.5.2's
 * nng_close (seen in CI), and an attacker needs no nng either.
 */
#ifndef JV_SP_RAW_H
#define JV_SP_RAW_H

#include <stddef.h>
#include <stdint.h>

/* Connects to url (tcp://127.0.0.1:PORT), shakes hands as REQ0, then sends
 * a length header claiming `claimed` bytes of message (a request id
 * included) followed by the first n of `body`. 1 if the other side closed
 * the connection within timeout_ms, 0 if it kept it open, -1 if it could
 * not connect or shake hands (errno set where it applies). */
int jv_sp_send_cut(const char *url, size_t claimed, const uint8_t *body,
                   size_t n, int timeout_ms);

#endif
