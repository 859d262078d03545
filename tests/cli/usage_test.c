/*
 * usage_test.c - jarvisctl without a node to talk to: help on every
 * command, usage errors (exit 2), missing credentials (exit 3), an
 * unreachable or silent node (exit 4), node and credential resolution,
 * diff of export files, and the offline init and restore.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctl.h"

static ctl_ctx C;

static int setup(void **state)
{
    (void)state;
    ctl_init(&C);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ctl_fini(&C);
    return 0;
}

/* A TCP port on 127.0.0.1 where nothing listens (bound, then closed). */
static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof a;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_help(void **state)
{
    (void)state;
    jv_proc_result r;
    const char *forms[][2] = {{"--help", NULL}, {"-h", NULL}, {"help", NULL}};
    for (size_t i = 0; i < 3; i++) {
        CTL(&C, &r, forms[i][0]);
        CTL_EXPECT(&r, 0);
        assert_true(ctl_has(r.out, "usage: jarvisctl"));
        assert_true(ctl_has(r.out, "Exit codes"));
        assert_true(ctl_has(r.out, "--node URL"));
        jv_proc_result_fini(&r);
    }
    CTL(&C, &r, "--version");
    CTL_EXPECT(&r, 0);
    assert_string_equal(r.out, "jarvisctl " JV_VERSION "\n");
    jv_proc_result_fini(&r);
}

/* Every command listed by --help has its own --help, exit 0, on stdout;
 * so does every group; and the bash completion offers it. */
static void test_help_every_command(void **state)
{
    (void)state;
    jv_proc_result all, r;
    char path[1024];
    const char *src = getenv("JV_SOURCE_DIR");
    assert_non_null(src);
    snprintf(path, sizeof path, "%s/scripts/jarvisctl.bash-completion", src);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *completion = calloc(1, 65536);
    assert_non_null(completion);
    assert_true(fread(completion, 1, 65535, f) > 0);
    fclose(f);
    CTL(&C, &all, "--help");
    CTL_EXPECT(&all, 0);
    char *list = strstr(all.out, "Commands:\n");
    assert_non_null(list);
    list += strlen("Commands:\n");
    size_t n = 0;
    /* Lines "  group [sub]   summary" up to the blank line. */
    for (char *line = list; *line == ' ';) {
        char *end = strchr(line, '\n');
        assert_non_null(end);
        char words[2][64] = {"", ""};
        int nw = sscanf(line, " %63s %63s", words[0], words[1]);
        assert_true(nw >= 1);
        /* A second word in lower case is a subcommand; the summary starts
         * with a capital letter. */
        bool sub = nw == 2 && words[1][0] >= 'a' && words[1][0] <= 'z';
        if (sub)
            CTL(&C, &r, words[0], words[1], "--help");
        else
            CTL(&C, &r, words[0], "--help");
        CTL_EXPECT(&r, 0);
        char want[160];
        snprintf(want, sizeof want, "usage: jarvisctl %s%s%s", words[0],
                 sub ? " " : "", sub ? words[1] : "");
        assert_true(ctl_has(r.out, want));
        assert_string_equal(r.err, "");
        jv_proc_result_fini(&r);
        if (sub) {
            /* Also in front of the command, and as `help GROUP SUB`. */
            CTL(&C, &r, "--help", words[0], words[1]);
            CTL_EXPECT(&r, 0);
            assert_true(ctl_has(r.out, want));
            jv_proc_result_fini(&r);
            CTL(&C, &r, words[0], "--help");
            CTL_EXPECT(&r, 0);
            assert_true(ctl_has(r.out, "Subcommands:"));
            jv_proc_result_fini(&r);
        }
        /* The bash completion knows the command too. */
        char group_line[96];
        snprintf(group_line, sizeof group_line, "        %s) subs=\"",
                 words[0]);
        char *g = strstr(completion, group_line);
        if (sub) {
            assert_non_null(g);
            char *eol = strchr(g, '\n');
            *eol = '\0';
            assert_true(ctl_has(g, words[1]));
            *eol = '\n';
        } else {
            assert_true(ctl_has(completion, words[0]));
        }
        n++;
        line = end + 1;
    }
    assert_true(n >= 29);
    free(completion);
    jv_proc_result_fini(&all);
}

static void expect_usage(const char *what, jv_proc_result *r)
{
    if (r->status != 2)
        fprintf(stderr, "case: %s\n", what);
    CTL_EXPECT(r, 2);
    assert_string_equal(r->out, "");
    assert_true(ctl_has(r->err, "jarvisctl: "));
    assert_true(ctl_has(r->err, "usage:") || ctl_has(r->err, "Try "));
    jv_proc_result_fini(r);
}

/* Runs jarvisctl with the arguments but the last, which stderr must
 * contain; expects a usage error. */
#define expect_said(c, ...) expect_said_((c), __VA_ARGS__, (char *)NULL)
static void expect_said_(ctl_ctx *c, ...)
{
    char *args[16];
    int n = 0;
    va_list ap;
    va_start(ap, c);
    while (n < 15 && (args[n] = va_arg(ap, char *)) != NULL)
        n++;
    va_end(ap);
    assert_true(n >= 2);
    const char *want = args[--n];
    args[n] = NULL;
    jv_proc_result r;
    char *a[16] = {0};
    for (int i = 0; i < n; i++)
        a[i] = args[i];
    ctl_run(c, &r, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8],
            (char *)NULL);
    if (!ctl_has(r.err, want))
        fprintf(stderr, "expected '%s' in: %s\n", want, r.err);
    assert_true(ctl_has(r.err, want));
    expect_usage(want, &r);
}

static void test_usage_errors(void **state)
{
    (void)state;
    jv_proc_result r;
    /* A credential and a node that would answer nothing: usage errors
     * must be found before any of it is used. */
    C.key = "jvk_unused";
    C.node = "127.0.0.1:1";
    CTL(&C, &r, "--json");
    expect_usage("no command", &r);
    CTL(&C, &r, "frobnicate");
    expect_usage("unknown command", &r);
    CTL(&C, &r, "counters");
    expect_usage("group without subcommand", &r);
    CTL(&C, &r, "counters", "frob");
    expect_usage("unknown subcommand", &r);
    CTL(&C, &r, "counters", "get");
    expect_usage("missing argument", &r);
    CTL(&C, &r, "counters", "get", "a", "b");
    expect_usage("extra argument", &r);
    CTL(&C, &r, "counters", "ls", "--bogus");
    expect_usage("unknown option", &r);
    CTL(&C, &r, "counters", "ls", "--prefix");
    expect_usage("option without value", &r);
    CTL(&C, &r, "counters", "incr", "hits", "0");
    expect_usage("zero increment", &r);
    CTL(&C, &r, "counters", "incr", "hits", "1.5");
    expect_usage("fractional increment", &r);
    CTL(&C, &r, "counters", "incr", "hits", "9007199254740993");
    expect_usage("increment over 2^53", &r);
    CTL(&C, &r, "status", "extra");
    expect_usage("status with an argument", &r);
    CTL(&C, &r, "--timeout", "0", "status");
    expect_usage("zero timeout", &r);
    CTL(&C, &r, "status", "--timeout=abc");
    expect_usage("bad timeout", &r);
    CTL(&C, &r, "status", "--node");
    expect_usage("--node without value", &r);
    CTL(&C, &r, "status", "--node", "a:1", "--node", "b:1");
    expect_usage("two nodes for status", &r);
    CTL(&C, &r, "diff", "--node", "a:1", "--node", "b:1", "--node", "c:1");
    expect_usage("three nodes", &r);
    CTL(&C, &r, "diff", "only-one.json");
    expect_usage("diff of one export", &r);
    CTL(&C, &r, "keys", "create", "ci");
    expect_usage("keys create without role", &r);
    CTL(&C, &r, "keys", "create", "ci", "--role", "god");
    expect_usage("unknown role", &r);
    CTL(&C, &r, "audit", "tail", "-n", "-1");
    expect_usage("negative -n", &r);
    CTL(&C, &r, "audit", "query", "--since", "yesterday");
    expect_usage("bad time", &r);
    CTL(&C, &r, "config", "set", "only-key");
    expect_usage("config set without value", &r);
    CTL(&C, &r, "config", "set", "k\xff", "v");
    expect_usage("invalid UTF-8", &r);
    CTL(&C, &r, "--node", "ftp://example", "status");
    expect_usage("unsupported scheme", &r);
    CTL(&C, &r, "--node", "unix:relative.sock", "status");
    expect_usage("relative socket path", &r);
    expect_said(&C, "--bogus", "unknown option '--bogus'");
    expect_said(&C, "--node", "::::", "status", "in brackets");
    expect_said(&C, "--node", "[::1]:0", "status", "1 to 65535");
    expect_said(&C, "--node", "host:7410x", "status", "1 to 65535");
    expect_said(&C, "--node", "http://:7410", "status", "host is missing");
    /* An empty name or key is this side's mistake, whatever the command. */
    expect_said(&C, "counters", "incr", "", "NAME is empty");
    expect_said(&C, "counters", "get", "", "NAME is empty");
    expect_said(&C, "config", "get", "", "KEY is empty");
    expect_said(&C, "config", "set", "--string", "", "v", "KEY is empty");
    expect_said(&C, "archive", "get", "", "KEY is empty");
    expect_said(&C, "archive", "add", "", "v", "KEY is empty");
    expect_said(&C, "archive", "rm", "", "KEY is empty");
    expect_said(&C, "keys", "revoke", "", "ID is empty");
    expect_said(&C, "keys", "create", "", "--role", "reader", "NAME is empty");
    expect_said(&C, "sessions", "revoke", "", "ID is empty");
    expect_said(&C, "peers", "rm", "", "ADDR is empty");
    expect_said(&C, "trust", "rm", "", "NODE_ID is empty");
    expect_said(&C, "audit", "add", "", "ACTION is empty");
    C.key = NULL;
    C.node = NULL;
}

static void test_unreachable(void **state)
{
    (void)state;
    jv_proc_result r;
    char url[64];
    snprintf(url, sizeof url, "127.0.0.1:%d", free_port());
    C.key = "jvk_unused";

    CTL(&C, &r, "--node", url, "status");
    CTL_EXPECT(&r, 4);
    assert_true(ctl_has(r.err, "cannot reach the node at"));
    assert_true(ctl_has(r.err, url));
    assert_true(ctl_has(r.err, "--node"));
    jv_proc_result_fini(&r);

    /* Every command that talks to a node says so, --json or not. */
    C.node = url;
    const char *cmds[][4] = {{"health", NULL},
                             {"counters", "ls", NULL},
                             {"audit", "tail", NULL},
                             {"config", "get", "k", NULL},
                             {"archive", "rm", "k", NULL},
                             {"keys", "ls", NULL},
                             {"export", NULL}};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        CTL(&C, &r, "--json", cmds[i][0], cmds[i][1], cmds[i][2], cmds[i][3]);
        CTL_EXPECT(&r, 4);
        assert_string_equal(r.out, "");
        jv_proc_result_fini(&r);
    }

    CTL(&C, &r, "--node", "unix:/nonexistent/api.sock", "status");
    CTL_EXPECT(&r, 4);
    assert_true(ctl_has(r.err, "/nonexistent/api.sock"));
    jv_proc_result_fini(&r);

    /* A node that accepts connections but never answers. */
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof a;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(a.sin_port));
    CTL(&C, &r, "--node", url, "--timeout", "1", "status");
    close(fd);
    CTL_EXPECT(&r, 4);
    assert_true(ctl_has(r.err, "did not answer within 1 s"));
    jv_proc_result_fini(&r);
    C.key = NULL;
    C.node = NULL;
}

/* Where the node's address comes from: --node, JARVIS_NODE, the data
 * dir's api.addr, in that order. The error message names the URL used. */
static void test_node_resolution(void **state)
{
    (void)state;
    jv_proc_result r;
    char dir[600], addr[700], a1[64], a2[64], a3[64];
    snprintf(dir, sizeof dir, "%s/data", C.home);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(addr, sizeof addr, "%s/api.addr", dir);
    snprintf(a1, sizeof a1, "http://127.0.0.1:%d", free_port());
    snprintf(a2, sizeof a2, "127.0.0.1:%d", free_port());
    snprintf(a3, sizeof a3, "127.0.0.1:%d", free_port());
    char line[80];
    snprintf(line, sizeof line, "%s\n", a1);
    write_file(addr, line);
    C.key = "jvk_unused";

    CTL(&C, &r, "--data-dir", dir, "status");
    CTL_EXPECT(&r, 4);
    assert_true(ctl_has(r.err, a1));
    jv_proc_result_fini(&r);

    C.data_dir = dir; /* JARVIS_DATA_DIR works the same */
    CTL(&C, &r, "status");
    CTL_EXPECT(&r, 4);
    assert_true(ctl_has(r.err, a1));
    jv_proc_result_fini(&r);

    C.node = a2;
    CTL(&C, &r, "status");
    CTL_EXPECT(&r, 4);
    assert_true(ctl_has(r.err, a2));
    jv_proc_result_fini(&r);

    CTL(&C, &r, "status", "--node", a3);
    CTL_EXPECT(&r, 4);
    assert_true(ctl_has(r.err, a3));
    jv_proc_result_fini(&r);

    unlink(addr);
    jv_test_rmtree(dir);
    C.key = NULL;
    C.node = NULL;
    C.data_dir = NULL;
}

static void test_credentials(void **state)
{
    (void)state;
    jv_proc_result r;
    char url[64], key[700], empty[700], dir[600];
    snprintf(url, sizeof url, "127.0.0.1:%d", free_port());
    C.node = url;

    /* Nothing anywhere: exit 3, saying where it looked. The default data
     * dir is root's /var/lib/jarvis, or one under HOME (ours is empty). */
    struct stat sb;
    bool root = geteuid() == 0;
    if (!root || stat("/var/lib/jarvis/admin.key", &sb) != 0) {
        CTL(&C, &r, "status");
        CTL_EXPECT(&r, 3);
        assert_true(ctl_has(r.err, "no credential found"));
        assert_true(ctl_has(r.err, "JARVIS_API_KEY"));
        assert_true(ctl_has(r.err, "--key-file"));
        assert_true(ctl_has(r.err, root ? "/var/lib/jarvis/admin.key"
                                        : ".local/share/jarvis/admin.key"));
        jv_proc_result_fini(&r);
    }

    snprintf(dir, sizeof dir, "%s/nokey", C.home);
    CTL(&C, &r, "--data-dir", dir, "status");
    CTL_EXPECT(&r, 3);
    assert_true(ctl_has(r.err, "nokey/admin.key"));
    jv_proc_result_fini(&r);

    CTL(&C, &r, "--key-file", "/nonexistent/key", "status");
    CTL_EXPECT(&r, 3);
    assert_true(ctl_has(r.err, "/nonexistent/key"));
    jv_proc_result_fini(&r);

    /* A directory given as the key file: said as such. */
    CTL(&C, &r, "--key-file", C.home, "status");
    CTL_EXPECT(&r, 3);
    assert_true(ctl_has(r.err, "is a directory"));
    jv_proc_result_fini(&r);

    snprintf(empty, sizeof empty, "%s/empty.key", C.home);
    write_file(empty, "\n");
    CTL(&C, &r, "--key-file", empty, "status");
    CTL_EXPECT(&r, 3);
    assert_true(ctl_has(r.err, "empty"));
    jv_proc_result_fini(&r);

    /* A key that would split the Authorization header is refused. */
    C.key = "jvk_a\r\nX-Evil: 1";
    CTL(&C, &r, "status");
    CTL_EXPECT(&r, 3);
    assert_true(ctl_has(r.err, "control character"));
    jv_proc_result_fini(&r);
    C.key = NULL;

    /* A key file is found, so the next failure is the node's absence. */
    snprintf(key, sizeof key, "%s/good.key", C.home);
    write_file(key, "jvk_from_file\n");
    CTL(&C, &r, "--key-file", key, "status");
    CTL_EXPECT(&r, 4);
    assert_false(ctl_has(r.err, "warning"));
    jv_proc_result_fini(&r);

    /* --api-key works and warns that process listings show it. */
    CTL(&C, &r, "--api-key", "jvk_visible", "status");
    CTL_EXPECT(&r, 4);
    assert_true(ctl_has(r.err, "process listings"));
    jv_proc_result_fini(&r);
    C.node = NULL;
}

static const char export_a[] =
    "{\"format\":\"jarvis-export/1\","
    "\"counters\":{\"requests\":{\"aa\":{\"p\":45,\"n\":3}}},"
    "\"audit\":[],\"config\":{\"db/url\":{\"value\":\"x\",\"stamp\":1,"
    "\"replica\":\"aa\"}},\"archive\":{},"
    "\"archive_context\":{\"vector\":{},\"cloud\":[]},\"trust\":{}}";
static const char export_b[] =
    "{\"format\":\"jarvis-export/1\","
    "\"counters\":{\"requests\":{\"aa\":{\"p\":45,\"n\":3}},"
    "\"hits\":{\"bb\":{\"p\":1,\"n\":0}}},"
    "\"audit\":[],\"config\":{\"db/url\":{\"value\":\"y\",\"stamp\":2,"
    "\"replica\":\"bb\"}},\"archive\":{},"
    "\"archive_context\":{\"vector\":{},\"cloud\":[]},\"trust\":{}}";

static void test_diff_files(void **state)
{
    (void)state;
    jv_proc_result r;
    char a[700], a2[700], b[700], junk[700];
    snprintf(a, sizeof a, "%s/a.json", C.home);
    snprintf(a2, sizeof a2, "%s/a2.json", C.home);
    snprintf(b, sizeof b, "%s/b.json", C.home);
    snprintf(junk, sizeof junk, "%s/junk.json", C.home);
    write_file(a, export_a);
    write_file(a2, export_a);
    write_file(b, export_b);
    write_file(junk, "{\"not\":\"an export\"}");

    /* No node and no credential needed for files. */
    CTL(&C, &r, "diff", a, a2);
    CTL_EXPECT(&r, 0);
    assert_string_equal(r.out, "identical\n");
    jv_proc_result_fini(&r);

    CTL(&C, &r, "diff", a, b);
    CTL_EXPECT(&r, 1);
    assert_true(ctl_has(r.out, "counters: 0 only in A, 1 only in B, 0 "
                               "different"));
    assert_true(ctl_has(r.out, "> B only hits: total 1 over 1 replica"));
    assert_true(ctl_has(r.out, "config: 0 only in A, 0 only in B, 1 "
                               "different"));
    assert_true(ctl_has(r.out, "audit: identical"));
    jv_proc_result_fini(&r);

    CTL(&C, &r, "diff", "--json", a, b);
    CTL_EXPECT(&r, 1);
    json_t *j = ctl_json(&r);
    assert_true(json_is_false(json_object_get(j, "identical")));
    json_t *kinds = json_object_get(j, "kinds");
    json_t *hits = json_array_get(
        json_object_get(json_object_get(kinds, "counters"), "only_b"), 0);
    assert_string_equal(json_string_value(json_object_get(hits, "key")),
                        "hits");
    json_t *url = json_array_get(
        json_object_get(json_object_get(kinds, "config"), "different"), 0);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(url, "b"), "value")),
        "y");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "sources"), "a")),
        a);
    json_decref(j);
    jv_proc_result_fini(&r);

    CTL(&C, &r, "diff", a, "/nonexistent/b.json");
    CTL_EXPECT(&r, 2);
    assert_true(ctl_has(r.err, "/nonexistent/b.json"));
    jv_proc_result_fini(&r);

    CTL(&C, &r, "diff", a, junk);
    CTL_EXPECT(&r, 2);
    assert_true(ctl_has(r.err, "not a Jarvis export"));
    jv_proc_result_fini(&r);
}

static void test_init(void **state)
{
    (void)state;
    jv_proc_result r;
    char dir[600], path[700];
    struct stat sb;
    snprintf(dir, sizeof dir, "%s/fresh", C.home);

    CTL(&C, &r, "init", dir, "--json");
    CTL_EXPECT(&r, 0);
    json_t *j = ctl_json(&r);
    assert_true(json_is_true(json_object_get(j, "created_identity")));
    assert_true(json_is_true(json_object_get(j, "created_admin_key")));
    const char *id = json_string_value(json_object_get(j, "node_id"));
    assert_non_null(id);
    assert_int_equal(strlen(id), 64);
    snprintf(path, sizeof path, "%s/admin.key", dir);
    assert_string_equal(json_string_value(json_object_get(j, "admin_key_path")),
                        path);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(stat(dir, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    char first_id[65];
    snprintf(first_id, sizeof first_id, "%s", id);
    json_decref(j);
    jv_proc_result_fini(&r);

    /* Again: nothing new, same identity. */
    CTL(&C, &r, "init", dir);
    CTL_EXPECT(&r, 0);
    assert_true(ctl_has(r.out, first_id));
    assert_true(ctl_has(r.out, "(existing)"));
    assert_true(ctl_has(r.out, "not shown again"));
    jv_proc_result_fini(&r);

    /* Refused while someone holds the data dir's lock. */
    snprintf(path, sizeof path, "%s/jarvisd.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
    CTL(&C, &r, "init", dir);
    CTL_EXPECT(&r, 1);
    assert_true(ctl_has(r.err, "a node is running"));
    jv_proc_result_fini(&r);

    /* restore: refused while locked, whatever the file. */
    snprintf(path, sizeof path, "%s/garbage.db", C.home);
    write_file(path, "not a database");
    CTL(&C, &r, "restore", path, "--data-dir", dir);
    CTL_EXPECT(&r, 1);
    assert_true(ctl_has(r.err, "a node is running"));
    jv_proc_result_fini(&r);
    close(fd);

    /* Unlocked: a file that is no backup is refused, nothing changes. */
    char db[700];
    struct stat before, after;
    snprintf(db, sizeof db, "%s/jarvis.db", dir);
    assert_int_equal(stat(db, &before), 0);
    CTL(&C, &r, "restore", path, "--data-dir", dir);
    CTL_EXPECT(&r, 1);
    assert_true(ctl_has(r.err, "unchanged"));
    jv_proc_result_fini(&r);
    assert_int_equal(stat(db, &after), 0);
    assert_int_equal(before.st_ino, after.st_ino);
    assert_int_equal(before.st_size, after.st_size);

    CTL(&C, &r, "restore", "/nonexistent/backup.db", "--data-dir", dir);
    CTL_EXPECT(&r, 2);
    jv_proc_result_fini(&r);
}

/* cluster-key --json: the key as JSON, or the file it wrote. */
static void test_cluster_key_json(void **state)
{
    (void)state;
    jv_proc_result r;
    char path[700];
    CTL(&C, &r, "cluster-key", "--json");
    CTL_EXPECT(&r, 0);
    json_t *j = ctl_json(&r);
    const char *key = json_string_value(json_object_get(j, "key"));
    assert_non_null(key);
    assert_int_equal(strlen(key), 64);
    json_decref(j);
    jv_proc_result_fini(&r);
    snprintf(path, sizeof path, "%s/cluster.key", C.home);
    CTL(&C, &r, "--json", "cluster-key", "-o", path);
    CTL_EXPECT(&r, 0);
    j = ctl_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "path")), path);
    assert_null(json_object_get(j, "key")); /* the secret stays in the file */
    json_decref(j);
    jv_proc_result_fini(&r);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    /* Refused over an existing file, pointing at the command that edits
     * one, never at a hand edit. */
    CTL(&C, &r, "cluster-key", "-o", path);
    CTL_EXPECT(&r, 1);
    assert_true(ctl_has(r.err, "cluster-key add"));
    jv_proc_result_fini(&r);
}

/* docs/operations.md's example: init DIR whose parents do not exist yet.
 * They are made, mode 0700, by jarvisd init behind the alias. */
static void test_init_parents(void **state)
{
    (void)state;
    jv_proc_result r;
    char top[600], dir[700], key[800];
    struct stat sb;
    snprintf(top, sizeof top, "%s/srv", C.home);
    snprintf(dir, sizeof dir, "%s/jarvis/data", top);
    assert_int_not_equal(stat(top, &sb), 0);
    CTL(&C, &r, "init", dir);
    CTL_EXPECT(&r, 0);
    assert_true(ctl_has(r.out, "(new)"));
    jv_proc_result_fini(&r);
    assert_int_equal(stat(top, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    snprintf(key, sizeof key, "%s/jarvis", top);
    assert_int_equal(stat(key, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    assert_int_equal(stat(dir, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    snprintf(key, sizeof key, "%s/admin.key", dir);
    assert_int_equal(stat(key, &sb), 0);

    /* A parent that is a file: a clear error, exit 1. */
    snprintf(key, sizeof key, "%s/admin.key/sub", dir);
    CTL(&C, &r, "init", key);
    CTL_EXPECT(&r, 1);
    assert_true(ctl_has(r.err, "cannot create"));
    jv_proc_result_fini(&r);

    /* The global --data-dir and --json go through the alias too. */
    snprintf(key, sizeof key, "%s/other/data", top);
    CTL(&C, &r, "--json", "--data-dir", key, "init");
    CTL_EXPECT(&r, 0);
    json_t *j = ctl_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "data_dir")), key);
    json_decref(j);
    jv_proc_result_fini(&r);

    /* jarvisd (found beside jarvisctl) checks the arguments. */
    CTL(&C, &r, "init", "--bogus-flag", dir);
    CTL_EXPECT(&r, 2);
    assert_true(ctl_has(r.err, "unknown option"));
    jv_proc_result_fini(&r);

    /* A jarvisctl with no jarvisd beside it nor on PATH says so. */
    char bin[512], lone[700], cmd[1600];
    assert_true(jv_bin_path("jarvisctl", bin, sizeof bin));
    snprintf(lone, sizeof lone, "%s/lone", C.home);
    assert_int_equal(mkdir(lone, 0700), 0);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s/jarvisctl'", bin, lone);
    assert_int_equal(system(cmd), 0);
    snprintf(key, sizeof key, "%s/jarvisctl", lone);
    char env_home[700];
    snprintf(env_home, sizeof env_home, "HOME=%s", C.home);
    char *argv[] = {key, "init", dir, NULL};
    char *env[] = {env_home, "PATH=/nonexistent", NULL};
    assert_int_equal(jv_proc_run(argv, env, 30000, &r), 0);
    CTL_EXPECT(&r, 1);
    assert_true(ctl_has(r.err, "cannot run jarvisd"));
    jv_proc_result_fini(&r);
}

/* The offline commands are jarvisd's own: run directly, they do what the
 * aliases do. */
static void test_jarvisd_offline(void **state)
{
    (void)state;
    char bin[512], dir[600], backup[700], db[700];
    jv_proc_result r;
    assert_true(jv_bin_path("jarvisd", bin, sizeof bin));
    snprintf(dir, sizeof dir, "%s/direct/a/b", C.home);
    char *init[] = {bin, "init", dir, "--json", NULL};
    char *env[] = {"PATH=/usr/bin:/bin", "JARVIS_CONFIG=", NULL};
    assert_int_equal(jv_proc_run(init, env, 30000, &r), 0);
    CTL_EXPECT(&r, 0);
    json_t *j = ctl_json(&r);
    assert_true(json_is_true(json_object_get(j, "created_identity")));
    json_decref(j);
    jv_proc_result_fini(&r);

    /* restore: a copy of its own database is a valid backup of it. */
    snprintf(db, sizeof db, "%s/jarvis.db", dir);
    snprintf(backup, sizeof backup, "%s/copy.db", C.home);
    char cmd[3200];
    snprintf(cmd, sizeof cmd,
             "sqlite3 '%s' \".backup '%s'\" 2>/dev/null || "
             "cp '%s' '%s'",
             db, backup, db, backup);
    assert_int_equal(system(cmd), 0);
    char *restore[] = {bin, "restore", backup, "--data-dir", dir, NULL};
    assert_int_equal(jv_proc_run(restore, env, 30000, &r), 0);
    CTL_EXPECT(&r, 0);
    assert_true(ctl_has(r.out, "restored"));
    jv_proc_result_fini(&r);

    char *norestore[] = {bin, "restore", "--data-dir", dir, NULL};
    assert_int_equal(jv_proc_run(norestore, env, 30000, &r), 0);
    CTL_EXPECT(&r, 2);
    assert_true(ctl_has(r.err, "which backup file"));
    jv_proc_result_fini(&r);

    /* An empty data dir is a usage error, not the current directory. */
    char *empty[] = {bin, "init", "", NULL};
    assert_int_equal(jv_proc_run(empty, env, 30000, &r), 0);
    CTL_EXPECT(&r, 2);
    jv_proc_result_fini(&r);

    char *help[] = {bin, "--help", NULL};
    assert_int_equal(jv_proc_run(help, env, 30000, &r), 0);
    CTL_EXPECT(&r, 0);
    assert_true(ctl_has(r.out, "jarvisd init"));
    assert_true(ctl_has(r.out, "jarvisd restore FILE"));
    assert_true(ctl_has(r.out, "jarvisd admin-key"));
    jv_proc_result_fini(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_help_every_command),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_unreachable),
        cmocka_unit_test(test_node_resolution),
        cmocka_unit_test(test_credentials),
        cmocka_unit_test(test_diff_files),
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_init_parents),
        cmocka_unit_test(test_cluster_key_json),
        cmocka_unit_test(test_jarvisd_offline),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
