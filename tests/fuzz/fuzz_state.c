/*
 * fuzz_state.c - the CRDT states' canonical encodings. The first byte picks
 * the type; a state the decoder accepts must encode back to exactly the
 * same bytes.
 */
#include <string.h>

#include "audit.h"
#include "fuzz.h"
#include "gcounter.h"
#include "lww.h"
#include "orset.h"
#include "testutil.h"
#include "vv.h"

enum {
    T_VV,
    T_GC,
    T_PN,
    T_AUDIT,
    T_LWW,
    T_ORSET,
    T_COUNT
};

static void same(const jv_buf *out, const uint8_t *p, size_t n)
{
    JV_FUZZ_CHECK(out->len == n && memcmp(out->data, p, n) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    jv_buf out;
    jv_buf_init(&out);
    switch (data[0] % T_COUNT) {
    case T_VV: {
        jv_vv v;
        jv_mpr r;
        jv_mpw w;
        jv_vv_init(&v);
        jv_mpr_init(&r, p, n);
        if (jv_vv_decode(&r, &v) == JV_OK && jv_mpr_end(&r) == JV_OK) {
            jv_mpw_init(&w, &out);
            jv_vv_encode(&v, &w);
            JV_FUZZ_CHECK(jv_mpw_err(&w) == JV_OK);
            same(&out, p, n);
        }
        jv_vv_fini(&v);
        break;
    }
    case T_GC: {
        jv_gcounter c;
        jv_gcounter_init(&c);
        if (jv_gcounter_decode(p, n, &c) == JV_OK) {
            JV_FUZZ_CHECK(jv_gcounter_encode(&c, &out) == JV_OK);
            same(&out, p, n);
        }
        jv_gcounter_fini(&c);
        break;
    }
    case T_PN: {
        jv_pncounter c;
        jv_pncounter_init(&c);
        if (jv_pncounter_decode(p, n, &c) == JV_OK) {
            JV_FUZZ_CHECK(jv_pncounter_encode(&c, &out) == JV_OK);
            same(&out, p, n);
        }
        jv_pncounter_fini(&c);
        break;
    }
    case T_AUDIT: {
        jv_audit s;
        jv_audit_init(&s);
        if (jv_audit_decode(p, n, &s) == JV_OK) {
            JV_FUZZ_CHECK(jv_audit_encode(&s, &out) == JV_OK);
            same(&out, p, n);
        }
        jv_audit_fini(&s);
        break;
    }
    case T_LWW: {
        jv_lwwmap m;
        jv_lwwmap_init(&m);
        if (jv_lwwmap_decode(p, n, &m) == JV_OK) {
            JV_FUZZ_CHECK(jv_lwwmap_encode(&m, &out) == JV_OK);
            same(&out, p, n);
        }
        jv_lwwmap_fini(&m);
        break;
    }
    default: {
        jv_orset s;
        jv_orset_init(&s);
        if (jv_orset_decode(p, n, &s) == JV_OK) {
            JV_FUZZ_CHECK(jv_orset_encode(&s, &out) == JV_OK);
            same(&out, p, n);
        }
        jv_orset_fini(&s);
        break;
    }
    }
    jv_buf_fini(&out);
    return 0;
}

/* A seed: the type byte, then the state's encoding. */
static size_t tagged(jv_buf *seed, int type, const jv_buf *enc)
{
    uint8_t t = (uint8_t)type;
    jv_buf_append(seed, &t, 1);
    jv_buf_append(seed, enc->data, enc->len);
    return jv_buf_err(seed) ? 0 : 1;
}

size_t jv_fuzz_seeds(jv_buf *seeds, size_t max)
{
    jv_id a = jv_test_id(1), b = jv_test_id(2), c = jv_test_id(3);
    jv_buf enc;
    jv_mpw w;
    size_t n = 0;
    if (max < T_COUNT)
        return 0;
    jv_buf_init(&enc);

    jv_vv v;
    jv_vv_init(&v);
    jv_vv_set(&v, &a, 7);
    jv_vv_set(&v, &b, 300);
    jv_mpw_init(&w, &enc);
    jv_vv_encode(&v, &w);
    n += tagged(&seeds[n], T_VV, &enc);
    jv_vv_fini(&v);

    jv_gcounter g, gd;
    jv_gcounter_init(&g);
    jv_gcounter_init(&gd);
    jv_gcounter_inc(&g, &a, 5, &gd);
    jv_gcounter_inc(&g, &c, 70000, &gd);
    jv_buf_reset(&enc);
    jv_gcounter_encode(&g, &enc);
    n += tagged(&seeds[n], T_GC, &enc);
    jv_gcounter_fini(&g);
    jv_gcounter_fini(&gd);

    jv_pncounter pn, pnd;
    jv_pncounter_init(&pn);
    jv_pncounter_init(&pnd);
    jv_pncounter_add(&pn, &a, 9, &pnd);
    jv_pncounter_add(&pn, &b, -4, &pnd);
    jv_buf_reset(&enc);
    jv_pncounter_encode(&pn, &enc);
    n += tagged(&seeds[n], T_PN, &enc);
    jv_pncounter_fini(&pn);
    jv_pncounter_fini(&pnd);

    jv_audit au, aud;
    jv_audit_init(&au);
    jv_audit_init(&aud);
    jv_dot d1 = {a, 1}, d2 = {b, 4};
    jv_audit_append(&au, &d1, 1000, jv_str_c("admin"), jv_str_c("deploy"),
                    jv_str_c("web-1"), jv_str_c("v2"), &aud);
    jv_audit_append(&au, &d2, 1001, jv_str_c("ci"), jv_str_c("key.create"),
                    jv_str_c(""), jv_str_c("x"), &aud);
    jv_buf_reset(&enc);
    jv_audit_encode(&au, &enc);
    n += tagged(&seeds[n], T_AUDIT, &enc);
    jv_audit_fini(&au);
    jv_audit_fini(&aud);

    jv_lwwmap m, md;
    jv_lwwmap_init(&m);
    jv_lwwmap_init(&md);
    jv_lwwmap_set(&m, jv_str_c("db/url"), "\"pg\"", 4, 10, &a, &md);
    jv_lwwmap_set(&m, jv_str_c("feature/x"), "true", 4, 11, &b, &md);
    jv_buf_reset(&enc);
    jv_lwwmap_encode(&m, &enc);
    n += tagged(&seeds[n], T_LWW, &enc);
    jv_lwwmap_fini(&m);
    jv_lwwmap_fini(&md);

    jv_orset s, sd;
    jv_orset_init(&s);
    jv_orset_init(&sd);
    jv_orset_add(&s, &a, jv_str_c("r/1"), "1", 1, 5, &sd, NULL);
    jv_orset_add(&s, &a, jv_str_c("r/2"), "2", 1, 6, &sd, NULL);
    jv_orset_remove(&s, jv_str_c("r/1"), &sd);
    jv_orset_add(&s, &b, jv_str_c("r/2"), "3", 1, 7, &sd, NULL);
    jv_buf_reset(&enc);
    jv_orset_encode(&s, &enc);
    n += tagged(&seeds[n], T_ORSET, &enc);
    jv_orset_fini(&s);
    jv_orset_fini(&sd);

    jv_buf_fini(&enc);
    return n;
}
