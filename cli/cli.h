/*
 * cli.h - jarvisctl's command plumbing: exit codes, global flags, the
 * command table's entry type, and the per-run context handed to commands.
 *
 * Layout (like wireguard-tools): one file per command group (cmd_*.c), each
 * exporting jvc_cmd descriptors that cli.c lists in its one command table.
 * A command is "GROUP [SUB]": `counters ls`, `status`. cli.c strips the
 * global flags from anywhere on the line (before "--"), finds the command,
 * and hands the rest of the arguments to its run function, which parses
 * them with jvc_parse_args() (args.h).
 *
 * Everything here runs on the main thread; jarvisctl has no other.
 */
#ifndef JVC_CLI_H
#define JVC_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Exit codes, documented in docs/cli.md. `diff` uses 0 for identical and 1
 * for "differences found", as diff(1) does. */
enum {
    JVC_EXIT_OK = 0,
    JVC_EXIT_FAIL = 1,        /* the node refused or failed the operation */
    JVC_EXIT_USAGE = 2,       /* bad arguments, unknown command */
    JVC_EXIT_AUTH = 3,        /* 401/403, or no credential found */
    JVC_EXIT_UNREACHABLE = 4, /* connection refused, timeout, DNS */
};

#define JVC_MAX_NODES 2 /* `diff --node A --node B` */

/* Global flags, valid before or after the command. Strings borrow argv. */
typedef struct {
    const char *nodes[JVC_MAX_NODES]; /* --node, in the order given */
    size_t n_nodes;
    const char *api_key;  /* --api-key */
    const char *key_file; /* --key-file */
    const char *data_dir; /* --data-dir */
    bool json;            /* --json */
    long timeout_s;       /* --timeout, default 10 */
} jvc_globals;

typedef struct jvc_client jvc_client;
typedef struct jvc_cmd jvc_cmd;

typedef struct {
    const jvc_globals *g;
    const jvc_cmd *cmd;
    jvc_client *client; /* made by jvc_ctx_client(), freed by cli.c */
} jvc_ctx;

/* One command. `name` is NULL for one-word commands (`status`). */
struct jvc_cmd {
    const char *group;
    const char *name;
    const char *args;    /* synopsis of its own arguments, "" if none */
    const char *summary; /* one line */
    const char *help;    /* options and details for --help; may be NULL */
    /* argv[0] is the first argument after the command words. Returns an
     * exit code; errors are already printed on stderr. */
    int (*run)(jvc_ctx *ctx, int argc, char **argv);
};

/* The client for the node the global flags select (made on first use).
 * Returns an exit code: on failure (no credential: JVC_EXIT_AUTH, a bad
 * --node: JVC_EXIT_USAGE) the reason is printed and *out is NULL. */
int jvc_ctx_client(jvc_ctx *ctx, jvc_client **out);

/* Prints "usage: jarvisctl GROUP SUB ARGS" and a hint to stderr, returns
 * JVC_EXIT_USAGE. fmt (may be NULL) says what was wrong. */
int jvc_usage_error(const jvc_cmd *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prints a node's peers as a table (cmd_peers.c; status uses it too).
 * false on ENOMEM. */
bool jvc_print_peers(json_t *peers);

/* jarvisctl's entry point; returns the process exit code. */
int jvc_main(int argc, char **argv);

/* The commands, one descriptor each (defined in cmd_*.c). */
extern const jvc_cmd jvc_cmd_status, jvc_cmd_health, jvc_cmd_backup,
    jvc_cmd_verify, jvc_cmd_export;
extern const jvc_cmd jvc_cmd_counters_ls, jvc_cmd_counters_get,
    jvc_cmd_counters_incr;
extern const jvc_cmd jvc_cmd_audit_tail, jvc_cmd_audit_query, jvc_cmd_audit_add;
extern const jvc_cmd jvc_cmd_config_ls, jvc_cmd_config_get, jvc_cmd_config_set;
extern const jvc_cmd jvc_cmd_archive_ls, jvc_cmd_archive_get,
    jvc_cmd_archive_add, jvc_cmd_archive_rm;
extern const jvc_cmd jvc_cmd_keys_create, jvc_cmd_keys_ls, jvc_cmd_keys_revoke;
extern const jvc_cmd jvc_cmd_sessions_ls, jvc_cmd_sessions_revoke;
extern const jvc_cmd jvc_cmd_peers_ls, jvc_cmd_peers_add, jvc_cmd_peers_rm;
extern const jvc_cmd jvc_cmd_diff;
extern const jvc_cmd jvc_cmd_init, jvc_cmd_restore, jvc_cmd_cluster_key;
extern const jvc_cmd jvc_cmd_cluster_key_add, jvc_cmd_cluster_key_promote,
    jvc_cmd_cluster_key_retire, jvc_cmd_members;
extern const jvc_cmd jvc_cmd_trust_ls, jvc_cmd_trust_add, jvc_cmd_trust_rm;
extern const jvc_cmd jvc_cmd_bundle_create, jvc_cmd_bundle_vector,
    jvc_cmd_bundle_apply, jvc_cmd_bundle_inspect;
extern const jvc_cmd jvc_cmd_backup_key, jvc_cmd_backup_open;
extern const jvc_cmd jvc_cmd_watch, jvc_cmd_dev_cluster;
/* Adds "encrypt_to" (from the public key file `to`) or "passphrase" (the
 * first line of the file `pass`) to a backup request body
 * (cmd_backup_seal.c). Returns an exit code, the reason printed. */
int jvc_backup_seal_args(const jvc_cmd *cmd, const char *to, const char *pass,
                         json_t *body);

#endif
