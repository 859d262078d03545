/*
 * bundle_test.c - air-gapped sites: nodes that never connect (no peer
 * lines) converge through bundles carried as files with jarvisctl.
 *
 *   - A and B, carried both ways several times with random writes of
 *     every kind in between, sealed under the cluster key and to the
 *     reader, by --since and by --for; then a concurrent archive add and
 *     remove of one key (add wins) and concurrent config sets (one LWW
 *     winner): their exports end identical;
 *   - applying a bundle twice changes nothing;
 *   - two peers whose link is gone: --for works from what one learnt of
 *     the other over the network, and carries exactly what it lacks;
 *   - a chain A -> B -> C: A's batches reach C through B's bundle, checked
 *     there against A's signature (C's own verify passes, exports equal);
 *   - refusals, each leaving C's export unchanged: a truncated bundle, a
 *     flipped byte, a bundle sealed to another node, one made by a node C
 *     does not trust; inspect reports what it sees without applying.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nettest.h"

static jv_cluster C;
static jv_rng R;

enum {
    A,
    B,
    CC,
    D
};

static char path_buf[8][700];
static unsigned path_next;

/* A file name under the cluster's root. */
static const char *file(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static const char *file(const char *fmt, ...)
{
    char name[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    char *p = path_buf[path_next++ % 8];
    snprintf(p, sizeof path_buf[0], "%s/%s", C.root, name);
    return p;
}

/* jarvisctl on node i with the arguments a[] (NULL-ended), which must
 * exit with `want` and, if must_say, say it; stdout (malloc'd) into out
 * if not NULL. */
static void ctl_v(size_t i, int want, char **out, const char *must_say,
                  const char *const *a)
{
    size_t n = 0;
    while (a[n])
        n++;
    NT_CHECK(&C, n <= 10);
    jv_proc_result r;
#define ARG(k) (n > (k) ? a[k] : NULL)
    NT_OK(&C,
          jv_cluster_ctl(&C, i, &r, ARG(0), ARG(1), ARG(2), ARG(3), ARG(4),
                         ARG(5), ARG(6), ARG(7), ARG(8), ARG(9), (char *)NULL));
#undef ARG
    if (r.status != want ||
        (must_say && !strstr(r.err, must_say) && !strstr(r.out, must_say))) {
        char why[1200];
        int st = r.status;
        snprintf(why, sizeof why, "%.500s | %.500s", r.out, r.err);
        jv_proc_result_fini(&r);
        NT_FAIL(&C, "jarvisctl %s %s on node %zu: exit %d, not %d (%s)", a[0],
                n > 1 ? a[1] : "", i, st, want, why);
    }
    if (out) {
        *out = r.out;
        r.out = NULL;
    }
    jv_proc_result_fini(&r);
}

#define CTL(i, want, out, say, ...) \
    ctl_v((i), (want), (out), (say), (const char *const[]){__VA_ARGS__, NULL})

/* Makes a bundle on `from` (selection sel, and its argument unless NULL;
 * sealed to `to_node` or under the cluster key) and applies it on
 * to_node; returns the apply summary. */
static json_t *carry(size_t from, size_t to_node, const char *sel,
                     const char *sel_arg, bool sealed_to, const char *name)
{
    const char *f = file("%s", name);
    const char *a[10] = {"bundle", "create", "-o", f, sel};
    size_t n = 5;
    if (sel_arg)
        a[n++] = sel_arg;
    if (sealed_to) {
        a[n++] = "--to";
        a[n++] = C.node[to_node].id;
    }
    a[n] = NULL;
    ctl_v(from, 0, NULL, NULL, a);
    char *out;
    CTL(to_node, 0, &out, NULL, "--json", "bundle", "apply", f);
    json_t *s = json_loads(out, 0, NULL);
    free(out);
    NT_CHECK(&C, s != NULL);
    NT_CHECK(&C, json_integer_value(
                     json_object_get(s, "refused_bad_signature")) == 0);
    return s;
}

static json_int_t field(const json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

static char *export_of(size_t i, size_t *len)
{
    char *e;
    NT_OK(&C, jv_cluster_export(&C, i, &e, len));
    return e;
}

static void put(size_t i, const char *method, const char *path,
                const char *body, long want)
{
    json_decref(nt_req(&C, i, want, method, body, "%s", path));
}

/* Both ways, A <-> B: B's vector file for the first, --for afterwards
 * (each node learnt the other's vector from its bundle). */
static void exchange(int round, bool both_wrote)
{
    json_t *s;
    if (round == 0) {
        const char *v = file("b-vector.json");
        CTL(B, 0, NULL, NULL, "bundle", "vector", "-o", v);
        s = carry(A, B, "--since", v, false, "ab0.bundle");
    } else {
        s = carry(A, B, "--for", C.node[B].id, round % 2, "ab.bundle");
    }
    NT_CHECK(&C, field(s, "applied") > 0);
    NT_CHECK(&C, field(s, "held_gap") == 0 && field(s, "held_untrusted") == 0);
    json_decref(s);
    s = carry(B, A, "--for", C.node[A].id, round % 2 == 0, "ba.bundle");
    NT_CHECK(&C, field(s, "applied") > 0 || !both_wrote);
    NT_CHECK(&C, field(s, "held_gap") == 0 && field(s, "held_untrusted") == 0);
    json_decref(s);
}

static char *read_bytes(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    NT_CHECK(&C, f != NULL);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    NT_CHECK(&C, p && fread(p, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return p;
}

static void write_bytes(const char *path, const char *p, size_t len)
{
    FILE *f = fopen(path, "wb");
    NT_CHECK(&C, f && fwrite(p, 1, len, f) == len);
    fclose(f);
}

/* Node i refuses the bundle (exit 1, saying `say`) and its export is
 * unchanged. */
static void refused(size_t i, const char *f, const char *say)
{
    size_t l0, l1;
    char *e0 = export_of(i, &l0);
    CTL(i, 1, NULL, say, "bundle", "apply", f);
    char *e1 = export_of(i, &l1);
    NT_CHECK(&C, l0 == l1 && !memcmp(e0, e1, l0));
    free(e0);
    free(e1);
}

/* The summary's line for origin `id`. */
static json_t *origin_in(json_t *s, const char *id)
{
    size_t k;
    json_t *o;
    json_array_foreach(json_object_get(s, "origins"), k, o)
    {
        if (!strcmp(json_string_value(json_object_get(o, "origin")), id))
            return o;
    }
    return NULL;
}

static json_t *inspect(size_t i, const char *f)
{
    char *out;
    CTL(i, 0, &out, NULL, "--json", "bundle", "inspect", f);
    json_t *j = json_loads(out, 0, NULL);
    free(out);
    NT_CHECK(&C, j != NULL);
    return j;
}

static void chain_and_refusals(void)
{
    nt_expect e = {0};
    nt_random_writes(&C, A, &R, 20, &e);
    /* A -> B sealed to B; B -> C under the cluster key, by C's vector. */
    json_decref(carry(A, B, "--for", C.node[B].id, true, "chain1.bundle"));
    const char *v = file("c-vector.json");
    CTL(CC, 0, NULL, NULL, "bundle", "vector", "-o", v);
    json_t *s = carry(B, CC, "--since", v, false, "chain2.bundle");
    /* Read by people: its time in local time, as every table shows times
     * (docs/cli.md, "Output"), not the RFC 3339 of --json. */
    char *human;
    CTL(CC, 0, &human, NULL, "bundle", "inspect", file("chain2.bundle"));
    const char *at = strstr(human, "made at     ");
    NT_CHECK(&C, at && strlen(at) > 24 && at[12 + 4] == '-' &&
                     at[12 + 10] == ' ' && at[12 + 19] == ' ');
    free(human);
    json_t *oa = origin_in(s, C.node[A].id);
    NT_CHECK(&C, oa && field(oa, "applied") > 0);
    NT_CHECK(&C, field(s, "held_gap") == 0 && field(s, "held_untrusted") == 0);
    json_decref(s);
    /* C's own batches back to both; then all three agree, and C's log
     * (A's batches included) passes its own signature check. */
    json_decref(carry(CC, A, "--all", NULL, true, "c2a.bundle"));
    json_decref(carry(CC, B, "--for", C.node[B].id, false, "c2b.bundle"));
    size_t abc[] = {A, B, CC};
    nt_converge(&C, abc, 3, nt_ms(20000));
    json_t *ver = nt_req(&C, CC, 200, "POST", NULL, "/v1/verify");
    NT_CHECK(&C, json_is_true(json_object_get(ver, "ok")) &&
                     field(ver, "bad_signatures") == 0);
    json_decref(ver);

    /* Inspect: everything is there already. */
    const char *chain2 = file("chain2.bundle");
    json_t *in = inspect(CC, chain2);
    NT_CHECK(&C, json_is_true(json_object_get(in, "would_apply")));
    NT_CHECK(&C, !strcmp(json_string_value(json_object_get(in, "maker")),
                         C.node[B].id));
    oa = origin_in(in, C.node[A].id);
    NT_CHECK(&C, oa && field(oa, "batches") > 0 && field(oa, "new_here") == 0);
    json_decref(in);

    /* Refusals: nothing applied, export unchanged. */
    size_t len;
    char *bytes = read_bytes(chain2, &len);
    const char *cut = file("cut.bundle"), *flip = file("flip.bundle");
    write_bytes(cut, bytes, len - 100);
    refused(CC, cut, "truncated");
    bytes[len / 2] ^= 0x01;
    write_bytes(flip, bytes, len);
    refused(CC, flip, "signature");
    write_bytes(flip, "not a bundle at all, just some text.............", 48);
    refused(CC, flip, "not a Jarvis bundle");
    free(bytes);
    /* The error line names the command (docs/cli.md, "Exit codes"). */
    refused(CC, file("chain1.bundle"),
            "jarvisctl: bundle apply: the bundle is sealed to another node");

    /* D is no longer trusted by C: its bundle is refused whole, and
     * inspect says why. */
    CTL(CC, 0, NULL, NULL, "trust", "rm", C.node[D].id);
    const char *fd = file("d.bundle");
    CTL(D, 0, NULL, NULL, "bundle", "create", "-o", fd, "--all");
    refused(CC, fd, "does not trust");
    in = inspect(CC, fd);
    NT_CHECK(&C, json_is_false(json_object_get(in, "maker_trusted")) &&
                     json_is_false(json_object_get(in, "would_apply")) &&
                     json_is_true(json_object_get(in, "signature_valid")));
    NT_CHECK(&C, origin_in(in, C.node[D].id) != NULL);
    json_decref(in);

    /* Roles: a reader may make a bundle only sealed to a node. */
    json_t *k = nt_req(&C, A, 201, "POST",
                       "{\"name\":\"r\",\"role\":\"reader\"}", "/v1/keys");
    const char *rk = json_string_value(json_object_get(k, "key"));
    const char *fr = file("reader.bundle");
    CTL(A, 3, NULL, "admin", "--api-key", rk, "bundle", "create", "-o", fr,
        "--all");
    CTL(A, 0, NULL, NULL, "--api-key", rk, "bundle", "create", "-o", fr,
        "--all", "--to", C.node[B].id);
    CTL(A, 3, NULL, NULL, "--api-key", rk, "bundle", "apply", fr);
    json_decref(k);
}

static void test_air_gap(void **state)
{
    (void)state;
    jv_cluster_opts o = {.n = 4, .no_peers = true};
    o.seed = jv_rng_next(&R);
    NT_OK(&C, jv_cluster_init(&C, &o));
    NT_OK(&C, jv_cluster_start_all(&C));
    nt_expect ea = {0}, eb = {0};

    for (int round = 0; round < 4; round++) {
        nt_random_writes(&C, A, &R, 15, &ea);
        nt_random_writes(&C, B, &R, 15, &eb);
        exchange(round, true);
    }
    size_t ab[] = {A, B};
    nt_converge(&C, ab, 2, nt_ms(20000));

    /* Concurrent: A removes the key B adds again; both set one config
     * key. */
    put(A, "PUT", "/v1/archive/shared/k", "{\"value\":\"first\"}", 200);
    exchange(1, false);
    put(A, "DELETE", "/v1/archive/shared/k", NULL, 204);
    put(B, "PUT", "/v1/archive/shared/k", "{\"value\":\"again\"}", 200);
    put(A, "PUT", "/v1/config/site/mode", "{\"value\":\"from-a\"}", 200);
    put(B, "PUT", "/v1/config/site/mode", "{\"value\":\"from-b\"}", 200);
    exchange(2, true);
    nt_converge(&C, ab, 2, nt_ms(20000));
    for (size_t k = 0; k < 2; k++) {
        json_t *v = nt_req(&C, ab[k], 200, "GET", NULL, "/v1/archive/shared/k");
        NT_CHECK(&C, !strcmp(json_string_value(json_object_get(v, "value")),
                             "again"));
        json_decref(v);
    }

    /* Twice: nothing new, nothing changed. */
    size_t l0, l1;
    char *e0 = export_of(A, &l0);
    json_t *s = carry(B, A, "--all", NULL, false, "again.bundle");
    NT_CHECK(&C, field(s, "applied") == 0 && field(s, "already_present") > 0);
    json_decref(s);
    char *e1 = export_of(A, &l1);
    NT_CHECK(&C, l0 == l1 && !memcmp(e0, e1, l0));
    free(e0);
    free(e1);
    char *out;
    CTL(A, 0, &out, NULL, "--json", "bundle", "apply", file("again.bundle"));
    s = json_loads(out, 0, NULL);
    free(out);
    NT_CHECK(&C, s && field(s, "applied") == 0);
    json_decref(s);
    /* Every write of both arrived exactly once on both. */
    nt_expect tot = {.audits = ea.audits + eb.audits};
    for (int k = 0; k < NT_COUNTERS; k++)
        tot.counter[k] = ea.counter[k] + eb.counter[k];
    nt_check_expect(&C, A, &tot);
    nt_check_expect(&C, B, &tot);
    json_t *ca = nt_req(&C, A, 200, "GET", NULL, "/v1/config/site/mode");
    json_t *cb = nt_req(&C, B, 200, "GET", NULL, "/v1/config/site/mode");
    NT_CHECK(&C, json_equal(ca, cb));
    json_decref(ca);
    json_decref(cb);

    chain_and_refusals();
}

/* Two peers that lose their link: what A learnt of B over the network is
 * enough for `--for B`, and the bundle holds exactly what B lacks. */
static void test_for_from_network(void **state)
{
    (void)state;
    static char *const fast[] = {"--sync-interval", "300", NULL};
    jv_cluster_opts o = {.n = 2, .flags = fast};
    o.seed = jv_rng_next(&R);
    NT_OK(&C, jv_cluster_init(&C, &o));
    NT_OK(&C, jv_cluster_start_all(&C));
    nt_expect e = {0};
    nt_random_writes(&C, A, &R, 10, &e);
    nt_random_writes(&C, B, &R, 10, &e);
    size_t ab[] = {A, B};
    nt_converge(&C, ab, 2, nt_ms(30000));
    /* B has told A, in a message of its own, that it holds everything. */
    const char *f0 = file("told.bundle");
    double t0 = jv_cluster_now_ms();
    for (json_int_t n = -1; n != 0;) {
        if (n >= 0) {
            if (jv_cluster_now_ms() - t0 > nt_ms(30000))
                NT_FAIL(&C, "B never told A it holds all: %lld batches",
                        (long long)n);
            jv_cluster_sleep_ms(100);
        }
        char *out;
        CTL(A, 0, NULL, NULL, "bundle", "create", "-o", f0, "--for",
            C.node[B].id);
        CTL(A, 0, &out, NULL, "--json", "bundle", "inspect", f0);
        json_t *in = json_loads(out, 0, NULL);
        free(out);
        n = field(in, "batches");
        json_decref(in);
    }

    /* The link goes: each forgets the other as a peer. */
    CTL(A, 0, NULL, NULL, "peers", "rm", C.node[B].listen);
    CTL(B, 0, NULL, NULL, "peers", "rm", C.node[A].listen);
    nt_random_writes(&C, A, &R, 10, &e);
    const char *f = file("net.bundle");
    CTL(A, 0, NULL, NULL, "bundle", "create", "-o", f, "--for", C.node[B].id);
    char *out;
    CTL(B, 0, &out, NULL, "--json", "bundle", "apply", f);
    json_t *s = json_loads(out, 0, NULL);
    free(out);
    NT_CHECK(&C, s != NULL);
    char *txt = json_dumps(s, JSON_COMPACT);
    printf("--for from the network: %s\n", txt);
    free(txt);
    /* What B lacked, and not what B held when it last spoke to A: at most
     * the two audit entries of the cut itself, written after. */
    NT_CHECK(&C, field(s, "applied") > 0);
    NT_CHECK(&C, field(s, "already_present") <= 2);
    json_decref(s);
    /* B's own audit entry of the cut may not have reached A: back the
     * other way, by what B learnt of A over the network too. */
    json_decref(carry(B, A, "--for", C.node[A].id, false, "back.bundle"));
    nt_converge(&C, ab, 2, nt_ms(20000));
    nt_check_expect(&C, A, &e);
    nt_check_expect(&C, B, &e);
}

static int teardown(void **state)
{
    (void)state;
    jv_cluster_fini(&C);
    return 0;
}

int main(void)
{
    jv_rng_seed(&R, jv_test_seed());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_air_gap, teardown),
        cmocka_unit_test_teardown(test_for_from_network, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
