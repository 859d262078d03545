/*
 * wire.h - the messages peers exchange (inside keyring.h's frames).
 *
 *   message = format (1 byte) | payload
 *     format 0: payload is the msgpack body
 *     format 1: payload is the body compressed with zstd (used when the
 *               body is larger than the caller's threshold and compression
 *               actually saves bytes)
 *   body = [type, from (bin 32), from_addr (str), have (vv), batches, more,
 *           budget]
 *     type      1 SYNC (request), 2 SYNC_REPLY
 *     from      the sender's replica id
 *     from_addr the address the sender listens on for peers ("" if none)
 *     have      the sender's version vector, counting batches it holds
 *               aside as well as applied ones: "do not send me these"
 *     batches   array of [body (bin), sig (bin 64)]: signed batches exactly
 *               as their origin made them
 *     more      reply: the responder had more the requester lacks
 *     budget    request: how many bytes of batches the reply may carry
 *
 * Decoding is strict (crdt/mp.h): every count is bounded by the bytes left
 * and by the limits below; a zstd payload is refused if its declared or
 * actual size exceeds max_plain. A decoded message borrows from the buffer
 * it was decoded from (or from `scratch` when decompressed).
 */
#ifndef JV_WIRE_H
#define JV_WIRE_H

#include "vv.h"

#define JV_WIRE_MAX_BATCHES 65536
#define JV_WIRE_MAX_ADDR    512

typedef enum {
    JV_MSG_SYNC = 1,
    JV_MSG_SYNC_REPLY = 2,
} jv_msg_type;

typedef struct {
    const uint8_t *body;
    size_t len;
    const uint8_t *sig; /* JV_SIG_LEN */
} jv_wire_batch;

typedef struct {
    jv_msg_type type;
    jv_id from;
    jv_str from_addr;
    jv_vv have;
    jv_wire_batch *batches; /* allocated by decode; borrowed on encode */
    size_t nbatches;
    bool more;
    uint64_t budget;
} jv_msg;

void jv_msg_init(jv_msg *m);
void jv_msg_fini(jv_msg *m); /* frees what decode allocated */

/* Appends the message to out, compressing with zstd when the body is over
 * compress_min bytes and that makes it smaller. *raw_len (may be NULL)
 * receives the uncompressed body size. */
jv_err jv_msg_encode(const jv_msg *m, size_t compress_min, jv_buf *out,
                     size_t *raw_len);

/* Decodes p[0..n) into out (initialised by the caller; replaced on
 * success, untouched on failure). A compressed payload is inflated into
 * scratch, never beyond max_plain bytes (JV_ETOOBIG). */
jv_err jv_msg_decode(const uint8_t *p, size_t n, size_t max_plain,
                     jv_buf *scratch, jv_msg *out);

/* The encoded size of one batch inside a message's array, for budgeting. */
size_t jv_wire_batch_cost(size_t body_len);

#endif
