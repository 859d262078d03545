/*
 * credential_test.c - the cluster key as the systemd unit hands it over
 * (LoadCredential=): a file of mode 0400 that the service's user reads
 * through an ACL entry, so that its mode shows 0440 (net/keyring.c).
 * Accepted when the ACL names our own user only; any other grant is
 * still refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "keyring.h"
#include "proc.h"

static const char *KEY =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";

enum {
    OWNER = 0x01,
    USER = 0x02,
    GROUP_OWNER = 0x04,
    GROUP = 0x08,
    MASK = 0x10,
    OTHER = 0x20
};

typedef struct {
    uint16_t tag, perm;
    uint32_t id;
} acl_entry;

static char dir[512];

static void put_le(unsigned char *p, uint32_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Writes the key as systemd writes a credential (0600, write, 0400), then
 * sets the access ACL; false if the file system has no ACLs. */
static bool write_key(const char *path, const acl_entry *acl, size_t n)
{
    unsigned char x[4 + 8 * 8];
    unlink(path);
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, KEY, strlen(KEY)), (ssize_t)strlen(KEY));
    assert_int_equal(fchmod(fd, 0400), 0);
    put_le(x, 2, 4);
    for (size_t i = 0; i < n; i++) {
        put_le(x + 4 + 8 * i, acl[i].tag, 2);
        put_le(x + 6 + 8 * i, acl[i].perm, 2);
        put_le(x + 8 + 8 * i, acl[i].id, 4);
    }
    int rc = fsetxattr(fd, "system.posix_acl_access", x, 4 + 8 * n, 0);
    int err = errno;
    close(fd);
    if (rc != 0 && err == EOPNOTSUPP)
        return false;
    assert_int_equal(rc, 0);
    return true;
}

static jv_err load(const char *path, char *msg, size_t len)
{
    jv_keyring ring;
    jv_err err = jv_keyring_load(path, &ring, msg, len);
    if (err == JV_OK)
        assert_int_equal(ring.n, 1);
    jv_keyring_wipe(&ring);
    return err;
}

static void test_credential_acl(void **state)
{
    (void)state;
    char path[600], msg[256];
    struct stat st;
    snprintf(path, sizeof path, "%s/cluster.key", dir);
    const uint32_t me = geteuid(), none = UINT32_MAX;

    /* What systemd makes: owner r, our user r, mask r. */
    acl_entry cred[] = {{OWNER, 4, none},
                        {USER, 4, me},
                        {GROUP_OWNER, 0, none},
                        {MASK, 4, none},
                        {OTHER, 0, none}};
    if (!write_key(path, cred, 5))
        skip();
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0440);
    if (load(path, msg, sizeof msg) != JV_OK)
        fail_msg("a credential of our own user is refused: %s", msg);

    /* Another user named in the ACL may read it: refused. */
    acl_entry other_user[] = {{OWNER, 4, none},
                              {USER, 4, me + 1},
                              {GROUP_OWNER, 0, none},
                              {MASK, 4, none},
                              {OTHER, 0, none}};
    assert_true(write_key(path, other_user, 5));
    assert_int_equal(load(path, msg, sizeof msg), JV_EPERM);
    assert_non_null(strstr(msg, "group or others"));

    /* A group named in the ACL, or the file's group, may read it. */
    acl_entry group[] = {{OWNER, 4, none},       {USER, 4, me},
                         {GROUP_OWNER, 0, none}, {GROUP, 4, 1234},
                         {MASK, 4, none},        {OTHER, 0, none}};
    assert_true(write_key(path, group, 6));
    assert_int_equal(load(path, msg, sizeof msg), JV_EPERM);
    acl_entry group_owner[] = {
        {OWNER, 4, none}, {GROUP_OWNER, 4, none}, {OTHER, 0, none}};
    assert_true(write_key(path, group_owner, 3));
    assert_int_equal(load(path, msg, sizeof msg), JV_EPERM);
    unlink(path);
}

static void test_plain_modes_unchanged(void **state)
{
    (void)state;
    char path[600], msg[256];
    snprintf(path, sizeof path, "%s/plain.key", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(KEY, f);
    fclose(f);
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(load(path, msg, sizeof msg), JV_OK);
    const mode_t refused[] = {0640, 0604, 0440, 0660};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        assert_int_equal(chmod(path, refused[i]), 0);
        assert_int_equal(load(path, msg, sizeof msg), JV_EPERM);
    }
    unlink(path);
}

int main(void)
{
    if (jv_test_tmpdir("jarvis-cred", dir, sizeof dir) != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_credential_acl),
        cmocka_unit_test(test_plain_modes_unchanged),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    jv_test_rmtree(dir);
    return rc;
}
