#include "hlc.h"

void jv_hlc_init(jv_hlc *c, uint64_t max_skew_ms)
{
    c->last = 0;
    c->max_skew_ms = max_skew_ms;
}

void jv_hlc_seed(jv_hlc *c, uint64_t stamp)
{
    if (stamp > c->last)
        c->last = stamp;
}

jv_err jv_hlc_now(jv_hlc *c, uint64_t wall_ms, uint64_t *out)
{
    if (wall_ms > JV_HLC_MAX_MS)
        return JV_EOVERFLOW;
    uint64_t next = jv_hlc_make(wall_ms, 0);
    if (next <= c->last) {
        /* The wall clock stalled or stepped back: count on from the last
         * stamp. A full logical counter carries into the millisecond part,
         * so the stamp stays ahead of everything seen. */
        if (c->last == UINT64_MAX)
            return JV_EOVERFLOW;
        next = c->last + 1;
    }
    c->last = next;
    *out = next;
    return JV_OK;
}

jv_err jv_hlc_check(const jv_hlc *c, uint64_t wall_ms, uint64_t remote)
{
    /* Saturate: a huge skew bound means "accept everything". */
    uint64_t limit = wall_ms > UINT64_MAX - c->max_skew_ms
                         ? UINT64_MAX
                         : wall_ms + c->max_skew_ms;
    return jv_hlc_ms(remote) > limit ? JV_ESKEW : JV_OK;
}

jv_err jv_hlc_observe(jv_hlc *c, uint64_t wall_ms, uint64_t remote)
{
    jv_err err = jv_hlc_check(c, wall_ms, remote);
    if (err)
        return err;
    if (remote > c->last)
        c->last = remote;
    return JV_OK;
}
