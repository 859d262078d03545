/*
 * jsonout.h - the API's answers as JSON text, byte for byte what jansson's
 * json_dumpb(v, JSON_COMPACT | JSON_ENCODE_ANY) writes, at a fraction of
 * its cost.
 *
 * jansson's dump keeps a table of the containers it is inside (to catch
 * cycles: a key formatted with snprintf and a hash insert per object and
 * array) and walks every string character by character through its UTF-8
 * decoder. That was 14 % of the node's CPU for a counter read. Here,
 * strings of printable ASCII with nothing to escape (nearly all of an
 * answer) and integers are written directly; anything else (a real, a
 * string that needs an escape or holds other bytes) is written by jansson
 * itself, so the text stays identical, including for values jansson
 * refuses (a string that is not valid UTF-8). One difference: for such a
 * key jansson writes what it escaped of it, with no closing quote, and
 * goes on (broken text); this refuses it.
 *
 * The values the node builds have no cycles (jansson's table catches them;
 * this would recurse until the stack ran out): only trees go here.
 */
#ifndef JV_JSONOUT_H
#define JV_JSONOUT_H

#include <jansson.h>

#include "types.h"

/* Appends v to out. JV_EINVAL when jansson would refuse to write v (out may
 * then hold part of it); JV_ENOMEM when out could not grow. */
jv_err jv_json_write(jv_buf *out, json_t *v);

#endif
