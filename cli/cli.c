/*
 * cli.c - jarvisctl's entry: global flags, the command table, help and
 * dispatch. Commands live in cmd_*.c.
 */
#include "cli.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "args.h"
#include "client.h"
#include "output.h"

#define DEFAULT_TIMEOUT_S 10
#define MAX_TIMEOUT_S     86400

/* The one command table, in the order --help lists it. */
// clang-format off
static const jvc_cmd *const commands[] = {
    &jvc_cmd_status,
    &jvc_cmd_health,
    &jvc_cmd_counters_ls,
    &jvc_cmd_counters_get,
    &jvc_cmd_counters_incr,
    &jvc_cmd_audit_tail,
    &jvc_cmd_audit_query,
    &jvc_cmd_audit_add,
    &jvc_cmd_watch,
    &jvc_cmd_dev_cluster,
    &jvc_cmd_config_ls,
    &jvc_cmd_config_get,
    &jvc_cmd_config_set,
    &jvc_cmd_archive_ls,
    &jvc_cmd_archive_get,
    &jvc_cmd_archive_add,
    &jvc_cmd_archive_rm,
    &jvc_cmd_keys_create,
    &jvc_cmd_keys_ls,
    &jvc_cmd_keys_revoke,
    &jvc_cmd_sessions_ls,
    &jvc_cmd_sessions_revoke,
    &jvc_cmd_peers_ls,
    &jvc_cmd_peers_add,
    &jvc_cmd_peers_rm,
    &jvc_cmd_backup,
    &jvc_cmd_verify,
    &jvc_cmd_export,
    &jvc_cmd_diff,
    &jvc_cmd_init,
    &jvc_cmd_restore,
    &jvc_cmd_trust_ls,
    &jvc_cmd_trust_add,
    &jvc_cmd_trust_rm,
    &jvc_cmd_members,
    &jvc_cmd_cluster_key_add,
    &jvc_cmd_cluster_key_promote,
    &jvc_cmd_cluster_key_retire,
    &jvc_cmd_cluster_key,
    &jvc_cmd_bundle_create,
    &jvc_cmd_bundle_vector,
    &jvc_cmd_bundle_apply,
    &jvc_cmd_bundle_inspect,
    &jvc_cmd_backup_key,
    &jvc_cmd_backup_open,
};
// clang-format on
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const char global_help[] =
    "Global options (before or after the command):\n"
    "  --node URL         the node: http://HOST:PORT, HOST:PORT or\n"
    "                     unix:/path/api.sock (default: $JARVIS_NODE, else\n"
    "                     the address in <data-dir>/api.addr, else\n"
    "                     http://127.0.0.1:7410)\n"
    "  --key-file FILE    read the API key from FILE\n"
    "  --api-key KEY      the API key itself (visible in process listings;\n"
    "                     prefer $JARVIS_API_KEY or --key-file)\n"
    "  --data-dir DIR     the node's data dir, for its admin.key and\n"
    "                     api.addr (default: $JARVIS_DATA_DIR, else\n"
    "                     /var/lib/jarvis for root, else\n"
    "                     ~/.local/share/jarvis)\n"
    "  --json             machine-readable JSON output\n"
    "  --timeout SECONDS  give up on the node after this long (default 10)\n"
    "  -h, --help         help for jarvisctl or a command\n"
    "  --version          print jarvisctl's version\n"
    "Credentials: --api-key, else $JARVIS_API_KEY, else --key-file, else\n"
    "<data-dir>/admin.key.\n";

static const char exit_help[] =
    "Exit codes: 0 success, 1 operation failed, 2 usage error,\n"
    "3 authentication or permission refused, 4 node unreachable\n"
    "(diff: 0 identical, 1 differences found).\n";

static bool same(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

static void print_synopsis(FILE *f, const jvc_cmd *c)
{
    fprintf(f, "jarvisctl %s%s%s%s%s", c->group, c->name ? " " : "",
            c->name ? c->name : "", c->args[0] ? " " : "", c->args);
}

static void print_command_list(FILE *f, const char *group)
{
    for (size_t i = 0; i < NCOMMANDS; i++) {
        const jvc_cmd *c = commands[i];
        if (group != NULL && !same(c->group, group))
            continue;
        char words[64];
        snprintf(words, sizeof words, "%s%s%s", c->group, c->name ? " " : "",
                 c->name ? c->name : "");
        fprintf(f, "  %-18s %s\n", words, c->summary);
    }
}

static void help_main(FILE *f)
{
    fputs("usage: jarvisctl [options] COMMAND [SUBCOMMAND] [ARGS]\n\n"
          "Inspects and drives a Jarvis node through its session API.\n\n"
          "Commands:\n",
          f);
    print_command_list(f, NULL);
    fputs("\n", f);
    fputs(global_help, f);
    fputs("\n", f);
    fputs(exit_help, f);
    fputs("\n'jarvisctl COMMAND --help' describes a command.\n", f);
}

static void help_group(FILE *f, const char *group)
{
    fprintf(f, "usage: jarvisctl %s SUBCOMMAND [ARGS]\n\nSubcommands:\n",
            group);
    print_command_list(f, group);
    fprintf(f, "\n'jarvisctl %s SUBCOMMAND --help' describes one.\n", group);
}

static void help_command(FILE *f, const jvc_cmd *c)
{
    fputs("usage: ", f);
    print_synopsis(f, c);
    fprintf(f, "\n\n%s.\n", c->summary);
    if (c->help != NULL)
        fprintf(f, "\n%s", c->help);
    /* A one-word command whose group also has subcommands (cluster-key):
     * name them too. */
    if (c->name == NULL && commands[0] != c) {
        bool subs = false;
        for (size_t i = 0; i < NCOMMANDS && !subs; i++)
            subs = same(commands[i]->group, c->group) && commands[i]->name;
        if (subs) {
            fputs("\nSubcommands:\n", f);
            for (size_t i = 0; i < NCOMMANDS; i++)
                if (same(commands[i]->group, c->group) && commands[i]->name)
                    fprintf(f, "  %-18s %s\n", commands[i]->name,
                            commands[i]->summary);
        }
    }
    fputs("\n", f);
    fputs(global_help, f);
    fputs("\n", f);
    fputs(exit_help, f);
}

int jvc_usage_error(const jvc_cmd *cmd, const char *fmt, ...)
{
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        fputs("jarvisctl: ", stderr);
        if (cmd != NULL)
            fprintf(stderr, "%s%s%s: ", cmd->group, cmd->name ? " " : "",
                    cmd->name ? cmd->name : "");
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
    if (cmd != NULL) {
        fputs("usage: ", stderr);
        print_synopsis(stderr, cmd);
        fprintf(stderr, "\nTry 'jarvisctl %s%s%s --help'.\n", cmd->group,
                cmd->name ? " " : "", cmd->name ? cmd->name : "");
    } else {
        fputs("Try 'jarvisctl --help'.\n", stderr);
    }
    return JVC_EXIT_USAGE;
}

int jvc_ctx_client(jvc_ctx *ctx, jvc_client **out)
{
    if (ctx->client == NULL) {
        int rc = jvc_client_new(ctx->g,
                                ctx->g->n_nodes > 0 ? ctx->g->nodes[0] : NULL,
                                &ctx->client);
        if (rc != JVC_EXIT_OK) {
            *out = NULL;
            return rc;
        }
    }
    *out = ctx->client;
    return JVC_EXIT_OK;
}

typedef struct {
    jvc_globals g;
    bool help, version;
    char **rest; /* what is not a global flag, in order */
    int nrest;
} parsed;

/* Matches "--name VALUE" and "--name=VALUE" at argv[*i]. */
static int take_value(int argc, char **argv, int *i, const char *name,
                      const char **out, bool *matched)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    *matched = false;
    if (strncmp(a, name, n) != 0)
        return JVC_EXIT_OK;
    if (a[n] == '=') {
        *out = a + n + 1;
    } else if (a[n] == '\0') {
        if (*i + 1 >= argc) {
            jvc_err("option '%s' needs a value", name);
            return jvc_usage_error(NULL, NULL);
        }
        *out = argv[++*i];
    } else {
        return JVC_EXIT_OK;
    }
    *matched = true;
    return JVC_EXIT_OK;
}

static int parse_globals(int argc, char **argv, parsed *p)
{
    const char *timeout = NULL;
    p->g.timeout_s = DEFAULT_TIMEOUT_S;
    bool ended = false;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (ended || a[0] != '-') {
            p->rest[p->nrest++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            /* Kept: the command's parser also treats what follows as
             * positionals. */
            ended = true;
            p->rest[p->nrest++] = a;
            continue;
        }
        if (strcmp(a, "--json") == 0) {
            p->g.json = true;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            p->help = true;
            continue;
        }
        if (strcmp(a, "--version") == 0) {
            p->version = true;
            continue;
        }
        const char *node = NULL;
        bool m;
        int rc;
        if ((rc = take_value(argc, argv, &i, "--node", &node, &m)) != 0)
            return rc;
        if (m) {
            if (p->g.n_nodes == JVC_MAX_NODES) {
                jvc_err("--node given more than twice");
                return jvc_usage_error(NULL, NULL);
            }
            p->g.nodes[p->g.n_nodes++] = node;
            continue;
        }
        static const char *const names[] = {"--api-key", "--key-file",
                                            "--data-dir", "--timeout"};
        const char **dest[] = {&p->g.api_key, &p->g.key_file, &p->g.data_dir,
                               &timeout};
        for (size_t k = 0; k < 4 && !m; k++)
            if ((rc = take_value(argc, argv, &i, names[k], dest[k], &m)) != 0)
                return rc;
        if (!m)
            p->rest[p->nrest++] = a; /* the command's own option */
    }
    if (timeout != NULL) {
        long long t;
        if (!jvc_parse_int(timeout, 1, MAX_TIMEOUT_S, &t)) {
            jvc_err("--timeout: '%s' is not a number of seconds between 1 "
                    "and %d",
                    timeout, MAX_TIMEOUT_S);
            return jvc_usage_error(NULL, NULL);
        }
        p->g.timeout_s = (long)t;
    }
    return JVC_EXIT_OK;
}

static bool group_exists(const char *group)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (same(commands[i]->group, group))
            return true;
    return false;
}

/* Finds the command named by words[0..n): "status", "counters ls". Sets
 * *used to the number of words it took; NULL if none matches. */
static const jvc_cmd *find_command(char **words, int n, int *used)
{
    if (n < 1)
        return NULL;
    for (size_t i = 0; i < NCOMMANDS; i++) {
        const jvc_cmd *c = commands[i];
        if (!same(c->group, words[0]))
            continue;
        if (c->name == NULL) {
            *used = 1;
            return c;
        }
        if (n >= 2 && same(c->name, words[1])) {
            *used = 2;
            return c;
        }
    }
    return NULL;
}

static int dispatch(parsed *p)
{
    char **words = p->rest;
    int n = p->nrest;
    bool help = p->help;
    if (n > 0 && same(words[0], "help")) {
        help = true;
        words++;
        n--;
    }
    if (p->version) {
        printf("jarvisctl %s\n", JV_VERSION);
        return JVC_EXIT_OK;
    }
    if (n == 0 || same(words[0], "--")) {
        if (help) {
            help_main(stdout);
            return JVC_EXIT_OK;
        }
        jvc_err("no command given");
        return jvc_usage_error(NULL, NULL);
    }
    int used = 0;
    const jvc_cmd *cmd = find_command(words, n, &used);
    if (cmd == NULL) {
        if (!group_exists(words[0])) {
            if (words[0][0] == '-')
                jvc_err("unknown option '%s'", words[0]);
            else
                jvc_err("unknown command '%s'", words[0]);
            return jvc_usage_error(NULL, NULL);
        }
        if (help) {
            help_group(stdout, words[0]);
            return JVC_EXIT_OK;
        }
        if (n >= 2)
            jvc_err("unknown %s subcommand '%s'", words[0], words[1]);
        else
            jvc_err("%s needs a subcommand", words[0]);
        help_group(stderr, words[0]);
        return JVC_EXIT_USAGE;
    }
    if (help) {
        help_command(stdout, cmd);
        return JVC_EXIT_OK;
    }
    if (p->g.n_nodes > 1 && cmd != &jvc_cmd_diff)
        return jvc_usage_error(cmd, "--node given twice (only diff "
                                    "compares two nodes)");
    jvc_ctx ctx = {.g = &p->g, .cmd = cmd, .client = NULL};
    int rc = cmd->run(&ctx, n - used, words + used);
    jvc_client_free(ctx.client);
    return rc;
}

int jvc_main(int argc, char **argv)
{
    int rc;
    parsed p;
    memset(&p, 0, sizeof p);
    tzset(); /* localtime_r() need not do it */
    p.rest = jv_calloc((size_t)argc + 1, sizeof *p.rest);
    if (p.rest == NULL)
        return jvc_oom();
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        jv_free(p.rest);
        jvc_err("cannot initialise libcurl");
        return JVC_EXIT_FAIL;
    }
    rc = parse_globals(argc, argv, &p);
    if (rc == JVC_EXIT_OK)
        rc = dispatch(&p);
    curl_global_cleanup();
    jv_free(p.rest);
    return jvc_finish_stdout(rc);
}
