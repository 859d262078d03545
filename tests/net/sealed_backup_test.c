/*
 * sealed_backup_test.c - encrypted backups through a real node and
 * jarvisctl:
 *
 *   - `backup --encrypt-to KEY.pub` writes a backup that `backup-open
 *     --key KEY` opens and `restore` restores: the node's export is the
 *     same as when the backup was taken;
 *   - a passphrase backup opens with that passphrase only;
 *   - a wrong key, a wrong passphrase, a flipped byte and a truncated
 *     file are refused, and the output file is never created;
 *   - the secret key is refused where the public one belongs;
 *   - `jarvisd restore` (through jarvisctl) opens one itself with --key or
 *     --passphrase-file; without one, with a wrong one, or a damaged file,
 *     it refuses and the data dir is unchanged, and no opened copy is
 *     left in it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <unistd.h>

#include "nettest.h"

static jv_cluster C;
static jv_rng R;

static char *path_in_root(const char *name)
{
    static char bufs[16][700];
    static unsigned next;
    char *p = bufs[next++ % 16];
    snprintf(p, sizeof bufs[0], "%s/%s", C.root, name);
    return p;
}

/* jarvisctl on node 0: must exit `want`, and say `say` if not NULL;
 * stdout (malloc'd) into out if not NULL. */
static void ctl(int want, const char *say, char **out, const char *a0,
                const char *a1, const char *a2, const char *a3, const char *a4,
                const char *a5, const char *a6)
{
    jv_proc_result r;
    NT_OK(&C,
          jv_cluster_ctl(&C, 0, &r, a0, a1, a2, a3, a4, a5, a6, (char *)NULL));
    if (r.status != want ||
        (say && !strstr(r.err, say) && !strstr(r.out, say))) {
        char why[1100];
        int st = r.status;
        snprintf(why, sizeof why, "%.500s | %.500s", r.out, r.err);
        jv_proc_result_fini(&r);
        NT_FAIL(&C, "jarvisctl %s: exit %d, not %d (%s)", a0, st, want, why);
    }
    if (out) {
        *out = r.out;
        r.out = NULL;
    }
    jv_proc_result_fini(&r);
}

/* `backup NAME` with an encryption option; the path the node wrote. */
static char *backup(const char *name, const char *opt, const char *arg)
{
    char *out;
    ctl(0, NULL, &out, "--json", "backup", name, opt, arg, NULL, NULL);
    json_t *j = json_loads(out, 0, NULL);
    free(out);
    NT_CHECK(&C, j != NULL);
    NT_CHECK(&C, json_is_string(json_object_get(j, "encrypted")));
    char *p = strdup(json_string_value(json_object_get(j, "path")));
    json_decref(j);
    return p;
}

static void write_text(const char *path, const char *text, size_t n)
{
    FILE *f = fopen(path, "wb");
    NT_CHECK(&C, f && fwrite(text, 1, n, f) == n);
    fclose(f);
}

static char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    NT_CHECK(&C, f != NULL);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc(*n + 1);
    NT_CHECK(&C, p && fread(p, 1, *n, f) == *n);
    fclose(f);
    return p;
}

/* backup-open refuses, saying `say`, and creates nothing. */
static void refused(const char *file, const char *how, const char *arg,
                    const char *say)
{
    const char *out = path_in_root("never.db");
    ctl(1, say, NULL, "backup-open", file, "-o", out, how, arg, NULL);
    NT_CHECK(&C, access(out, F_OK) != 0);
}

static void test_sealed_backups(void **state)
{
    (void)state;
    jv_cluster_opts o = {.n = 1, .no_peers = true};
    o.seed = jv_rng_next(&R);
    NT_OK(&C, jv_cluster_init(&C, &o));
    NT_OK(&C, jv_cluster_start_all(&C));
    nt_expect e = {0};
    nt_random_writes(&C, 0, &R, 30, &e);

    const char *key = path_in_root("bk"), *pub = path_in_root("bk.pub");
    const char *other = path_in_root("other");
    ctl(0, NULL, NULL, "backup-key", "-o", key, NULL, NULL, NULL, NULL);
    ctl(0, NULL, NULL, "backup-key", "-o", other, NULL, NULL, NULL, NULL);
    ctl(1, "exists", NULL, "backup-key", "-o", key, NULL, NULL, NULL, NULL);
    /* The secret where the public key belongs: refused, nothing sent. */
    ctl(1, "secret key", NULL, "backup", "never.enc", "--encrypt-to", key, NULL,
        NULL, NULL);

    size_t elen;
    char *before;
    NT_OK(&C, jv_cluster_export(&C, 0, &before, &elen));
    char *enc = backup("b1.enc", "--encrypt-to", pub);
    const char *pass = path_in_root("pass"), *bad = path_in_root("bad");
    write_text(pass, "a long passphrase\n", 18);
    write_text(bad, "a long passphrasE\n", 18);
    char *penc = backup("b2.enc", "--passphrase-file", pass);

    /* Opens with the right key and passphrase only. */
    ctl(0, "intact", NULL, "backup-open", enc, "--key", key, NULL, NULL, NULL);
    ctl(0, "opens with this passphrase", NULL, "backup-open", penc,
        "--passphrase-file", pass, NULL, NULL, NULL);
    refused(enc, "--key", other, "wrong key");
    refused(penc, "--passphrase-file", bad, "wrong key or passphrase");
    refused(enc, "--key", pub, "public key");
    refused(enc, "--passphrase-file", pass, "other way");

    /* Damaged: a flipped byte, a cut. */
    size_t n;
    char *bytes = read_all(enc, &n);
    const char *flip = path_in_root("flip.enc"), *cut = path_in_root("cut.enc");
    bytes[n / 2] ^= 0x04;
    write_text(flip, bytes, n);
    refused(flip, "--key", key, "damaged");
    bytes[n / 2] ^= 0x04;
    write_text(cut, bytes, n - 40);
    refused(cut, "--key", key, "");
    free(bytes);

    /* Opened and restored: the export of the backup's moment. */
    nt_random_writes(&C, 0, &R, 10, &e);
    const char *plain = path_in_root("restored.db");
    ctl(0, NULL, NULL, "backup-open", enc, "--key", key, "-o", plain, NULL);
    NT_CHECK(&C, jv_cluster_stop(&C, 0) == 0);
    ctl(0, NULL, NULL, "restore", plain, "--data-dir", C.node[0].t.dir, NULL,
        NULL, NULL);
    /* Reading the backup left no SQLite files next to it. */
    char side[760];
    snprintf(side, sizeof side, "%s-wal", plain);
    NT_CHECK(&C, access(side, F_OK) != 0);
    snprintf(side, sizeof side, "%s-shm", plain);
    NT_CHECK(&C, access(side, F_OK) != 0);
    NT_OK(&C, jv_cluster_start(&C, 0));
    size_t alen;
    char *after;
    NT_OK(&C, jv_cluster_export(&C, 0, &after, &alen));
    /* The restore's own audit entry apart (it signs under a new origin). */
    NT_CHECK(&C, nt_export_same_but_restores(before, elen, after, alen));
    NT_CHECK(&C, alen > elen);
    free(after);

    /* jarvisd restore opens it itself; refusals change nothing. */
    nt_random_writes(&C, 0, &R, 10, &e);
    size_t mlen;
    char *moved;
    NT_OK(&C, jv_cluster_export(&C, 0, &moved, &mlen));
    NT_CHECK(&C, jv_cluster_stop(&C, 0) == 0);
    const char *dir = C.node[0].t.dir;
    ctl(2, "encrypted backup", NULL, "restore", enc, "--data-dir", dir, NULL,
        NULL, NULL);
    ctl(1, "wrong key or passphrase", NULL, "restore", penc, "--data-dir", dir,
        "--passphrase-file", bad, NULL);
    ctl(1, "damaged", NULL, "restore", flip, "--data-dir", dir, "--key", key,
        NULL);
    ctl(1, "public key", NULL, "restore", enc, "--data-dir", dir, "--key", pub,
        NULL);
    NT_OK(&C, jv_cluster_start(&C, 0));
    NT_OK(&C, jv_cluster_export(&C, 0, &after, &alen));
    NT_CHECK(&C, alen == mlen && !memcmp(moved, after, mlen));
    free(after);
    free(moved);
    NT_CHECK(&C, jv_cluster_stop(&C, 0) == 0);
    char *said;
    ctl(0, "opened the encrypted backup", &said, "restore", enc, "--data-dir",
        dir, "--key", key, NULL);
    /* It names the backup it was given, not its opened copy. */
    NT_CHECK(&C, strstr(said, enc) && !strstr(said, "restore-opened"));
    free(said);
    char opened[700];
    const char *const left[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) { /* nothing plain left behind */
        snprintf(opened, sizeof opened, "%s/restore-opened.db%s", dir, left[i]);
        NT_CHECK(&C, access(opened, F_OK) != 0);
    }
    NT_OK(&C, jv_cluster_start(&C, 0));
    NT_OK(&C, jv_cluster_export(&C, 0, &after, &alen));
    NT_CHECK(&C, nt_export_same_but_restores(before, elen, after, alen));
    free(before);
    free(after);
    free(enc);
    free(penc);
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
        cmocka_unit_test_teardown(test_sealed_backups, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
