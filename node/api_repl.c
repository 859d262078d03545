/*
 * api_repl.c - peers, the trust list, and the test-only fault switch.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "api_int.h"
#include "local.h"
#include "log.h"
#include "repl.h"
#include "transport.h"

static const char *cap0(api_ctx *c)
{
    return c->cap[0].len ? (const char *)c->cap[0].data : "";
}

void api_peers_list(api_ctx *c)
{
    api_reply(c, 200,
              json_pack("{s:o}", "peers", jv_repl_peers_json(c->node->repl)));
}

void api_cluster(api_ctx *c)
{
    json_t *m = jv_repl_members_json(c->node->repl);
    if (!m) {
        api_fail(c, JV_ENOMEM, "cluster");
        return;
    }
    api_reply(c, 200, m);
}

typedef struct {
    char addr[600];
    uint64_t now_ms;
    bool add;
} peer_change;

static jv_err store_peer(jv_store *st, void *arg)
{
    peer_change *p = arg;
    if (!p->add)
        return jv_store_peer_remove(st, jv_str_c(p->addr));
    jv_peer_row row = {.addr = jv_str_c(p->addr),
                       .added_ms = p->now_ms,
                       .source = jv_str_c("api")};
    return jv_store_peer_add(st, &row);
}

static void peer_changed(jv_write_req *w)
{
    api_ctx *c = w->arg;
    peer_change *p = c->extra;
    if (!api_write_ok(c))
        return;
    /* As the store now holds it: a reload keeps what the API added. The
     * change committed, so it stands even if this fails (a reload may
     * then drop a configured peer the API also added). */
    jv_err err = jv_node_api_peer_set(c->node, p->addr, p->add);
    if (err)
        jv_warn("repl", "peer %s: cannot note that the API added it: %s",
                p->addr, jv_strerror(err));
    if (p->add) {
        err = jv_repl_peer_add(c->node->repl, p->addr);
        if (err && err != JV_EEXIST) {
            api_fail(c, err, "peer");
            return;
        }
        api_reply(c, 201, json_pack("{s:s}", "address", p->addr));
        return;
    }
    jv_repl_peer_remove(c->node->repl, p->addr);
    api_reply_empty(c, 204);
}

static void change_peer(api_ctx *c, const char *addr, bool add)
{
    peer_change *p = jv_calloc(1, sizeof(*p));
    jv_intent *in = api_intents(c, 1);
    if (!p || !in) {
        jv_free(p);
        api_fail(c, JV_ENOMEM, "peer");
        return;
    }
    c->extra = p;
    c->extra_free = jv_free;
    snprintf(p->addr, sizeof(p->addr), "%s", addr);
    p->now_ms = jv_now_ms();
    p->add = add;
    if (api_audit_intent(c, in, add ? "peer.add" : "peer.remove", addr,
                         add ? "dialled from now on" : "no longer dialled")) {
        api_fail(c, JV_ENOMEM, "peer");
        return;
    }
    c->wr.group.local = store_peer;
    c->wr.group.local_arg = p;
    api_submit(c, peer_changed);
}

void api_peer_add(api_ctx *c)
{
    jv_str addr;
    if (!c->body) {
        api_error(c, 400, "invalid_json", "a JSON object body is required");
        return;
    }
    if (api_field_str(c, "addr", true, 7, 512, &addr))
        return;
    char a[600];
    snprintf(a, sizeof(a), "%.*s", (int)addr.n, addr.p);
    if (jv_transport_addr_check(a) != JV_OK) {
        api_error(c, 400, "invalid_field",
                  "addr must be tcp://HOST:PORT or ipc:///PATH");
        return;
    }
    if (jv_repl_has_peer(c->node->repl, a)) {
        api_error(c, 409, "conflict", "peer %s is known already", a);
        return;
    }
    change_peer(c, a, true);
}

void api_peer_remove(api_ctx *c)
{
    const char *addr = cap0(c);
    if (!jv_repl_has_peer(c->node->repl, addr)) {
        api_error(c, 404, "not_found", "no peer %s", addr);
        return;
    }
    change_peer(c, addr, false);
}

/* -- trust ---------------------------------------------------------------- */

static jv_err add_trust(void *arg, const jv_trust_row *t)
{
    json_array_append_new(arg, json_pack("{s:o,s:b,s:o,s:o,s:I,s:o}", "node_id",
                                         api_id(&t->node), "trusted",
                                         t->trusted, "name", api_jstr(t->name),
                                         "set_by", api_id(&t->set_by), "stamp",
                                         (json_int_t)t->stamp, "set_at",
                                         api_time(jv_hlc_ms(t->stamp))));
    return JV_OK;
}

void api_trust_list(api_ctx *c)
{
    json_t *arr = json_array();
    jv_err err = jv_trustview_each(c->node->trust, add_trust, arr);
    if (err) {
        json_decref(arr);
        api_fail_msg(c, err, "trust", NULL);
        return;
    }
    api_reply(c, 200,
              json_pack("{s:s,s:o}", "self", c->node->self_hex, "trust", arr));
}

static void trust_done(jv_write_req *w)
{
    api_ctx *c = w->arg;
    if (!api_write_ok(c))
        return;
    const jv_intent *in = &c->intents[0];
    if (!in->op.trust.trusted) {
        api_reply_empty(c, 204);
        return;
    }
    api_reply(c, 200,
              json_pack("{s:o,s:b,s:o,s:s,s:I}", "node_id",
                        api_id(&in->op.trust.node), "trusted", 1, "name",
                        api_jstr(in->op.trust.name), "set_by",
                        c->node->self_hex, "stamp",
                        (json_int_t)in->op.trust.stamp));
}

/* A trust change that gives no name keeps the one the node has: a name
 * outlives `trust rm` and a later `trust add` without --name. */
static int keep_name(api_ctx *c, const jv_id *id, jv_str *name)
{
    const jv_trust_row *t = jv_trustview_entry(c->node->trust, id);
    if (name->n || !t || !t->name.n)
        return 0;
    char *copy = jv_strndup(t->name.p, t->name.n);
    if (!copy || !api_own(c, copy)) {
        api_fail(c, JV_ENOMEM, "trust");
        return -1;
    }
    *name = (jv_str){copy, t->name.n};
    return 0;
}

static void set_trust(api_ctx *c, const char *hex, jv_str name, bool trusted)
{
    jv_id id;
    if (jv_id_from_hex(hex, strlen(hex), &id) != JV_OK) {
        api_error(c, 400, "invalid_field",
                  "a node id is 64 hex digits (jarvisctl status shows it)");
        return;
    }
    if (keep_name(c, &id, &name))
        return;
    if (!trusted && (jv_id_eq(&id, &c->node->kp.pk) ||
                     jv_id_eq(&id, &c->node->origin.pk))) {
        api_error(c, 400, "invalid_field", "a node always trusts itself");
        return;
    }
    jv_intent *in = api_intents(c, 2);
    if (!in) {
        api_fail(c, JV_ENOMEM, "trust");
        return;
    }
    in[0].op.kind = JV_OP_TRUST;
    in[0].op.trust.node = id;
    in[0].op.trust.trusted = trusted;
    in[0].op.trust.name = name;
    in[0].op.trust.stamp = api_stamp(c);
    char detail[96];
    snprintf(detail, sizeof(detail), "%s%.*s",
             trusted ? "trusted as " : "no longer trusted",
             trusted ? (int)name.n : 0, name.p);
    if (api_audit_intent(c, &in[1], trusted ? "trust.add" : "trust.remove", hex,
                         detail)) {
        api_fail(c, JV_ENOMEM, "trust");
        return;
    }
    api_submit(c, trust_done);
}

void api_trust_add(api_ctx *c)
{
    jv_str id, name;
    if (!c->body) {
        api_error(c, 400, "invalid_json", "a JSON object body is required");
        return;
    }
    if (api_field_str(c, "node_id", true, 64, 64, &id) ||
        api_field_str(c, "name", false, 0, JV_OP_MAX_NAME, &name))
        return;
    char hex[JV_ID_HEX];
    snprintf(hex, sizeof(hex), "%.*s", (int)id.n, id.p);
    set_trust(c, hex, name, true);
}

void api_trust_remove(api_ctx *c)
{
    set_trust(c, cap0(c), (jv_str){"", 0}, false);
}

/* -- test faults ---------------------------------------------------------- */

void api_faults(api_ctx *c)
{
    jv_repl *r = c->node->repl;
    json_t *b = c->body; /* routed only with --test-faults (api.c) */
    json_t *block = b ? json_object_get(b, "block") : NULL;
    if (b && json_is_true(json_object_get(b, "unblock_all")))
        jv_repl_unblock_all(r);
    if (block) {
        size_t i;
        json_t *v;
        if (!json_is_array(block)) {
            api_error(c, 400, "invalid_field", "block must be an array");
            return;
        }
        json_array_foreach(block, i, v)
        {
            if (!json_is_string(v) ||
                jv_repl_block(r, json_string_value(v)) != JV_OK) {
                api_error(c, 400, "invalid_field",
                          "block: addresses or node ids, at most 32");
                return;
            }
        }
    }
    if (b && json_is_true(json_object_get(b, "kill_listener")))
        jv_repl_kill_listener(r);
    const char *sf =
        b ? json_string_value(json_object_get(b, "snapshot")) : NULL;
    if (sf && jv_repl_snap_fault(r, sf) != JV_OK) {
        api_error(c, 400, "invalid_field",
                  "snapshot: none, flip, untrusted or truncate");
        return;
    }
    json_t *off = b ? json_object_get(b, "clock_offset_ms") : NULL;
    if (off) {
        /* A clock set wrong, or set right, while the node runs. */
        json_int_t ms = json_integer_value(off);
        if (!json_is_integer(off) || ms < -31536000000 || ms > 31536000000) {
            api_error(c, 400, "invalid_field",
                      "clock_offset_ms: milliseconds within a year");
            return;
        }
        jv_clock_test_offset((int64_t)ms);
        jv_warn("api", "test fault: the clock runs %lld ms off", (long long)ms);
    }
    api_reply_empty(c, 204);
}
