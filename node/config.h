/*
 * config.h - jarvisd's settings, from (highest precedence first) command
 * line flags, the config file, environment variables, and defaults.
 *
 * The config file is --config, else $JARVIS_CONFIG, else the build's default
 * (JV_DEFAULT_CONFIG, /etc/jarvis/jarvisd.conf) when that file exists. An
 * empty name (--config '', JARVIS_CONFIG=) reads none; a file named
 * explicitly that cannot be read is an error.
 *
 * Every setting has one long flag (--api-listen), one config file key (the
 * flag without dashes: api-listen = ...) and one environment variable
 * (JARVIS_API_LISTEN). Lists (peer, trust) are the exception to
 * precedence: the values of all sources are joined. The config file is "key =
 * value" lines, '#' comments, values optionally in double quotes; an unknown
 * key or a bad value is an error naming the file and line.
 */
#ifndef JV_CONFIG_H
#define JV_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "log.h"
#include "store.h"

/* A repeatable setting's values, in the order given, without duplicates. */
typedef struct {
    char **v;
    size_t n;
} jv_strlist;

typedef struct {
    char *data_dir;
    char *api_listen;  /* "127.0.0.1:7410", "unix:/path", "off" */
    char *listen;      /* peer listener; "off" = none */
    char *name;        /* node name shown to operators */
    char *config_path; /* the config file read, if any */
    char *cluster_key_file;
    char *backup_dir; /* NULL: <data_dir>/backups */
    jv_strlist peers; /* peer addresses */
    jv_strlist trust; /* node ids this node trusts from the start */
    jv_log_level log_level;
    jv_sync sync;
    uint64_t rate_limit;       /* requests per second per key; 0 = off */
    uint64_t rate_burst;       /* bucket size */
    uint64_t max_body;         /* bytes */
    uint64_t max_bundle;       /* bytes: the body of POST /v1/bundles */
    uint64_t session_ttl;      /* default session lifetime, seconds */
    uint64_t max_skew_ms;      /* remote HLC stamps refused beyond this */
    uint64_t sync_interval_ms; /* anti-entropy period */
    uint64_t log_retention_s;  /* stable batches kept this long (compact.h) */
    uint64_t peer_horizon_s;   /* silent trusted peers stop holding it */
    uint64_t fanout;           /* peers a new batch is pushed to */
    uint64_t max_message;      /* largest peer message, bytes */
    uint64_t peer_timeout_ms;  /* one exchange with a peer */
    /* Session API limits (http.h); 0 for the two counts: sized at start
     * from the open-file limit. */
    uint64_t max_conns;
    uint64_t max_conns_per_addr;
    uint64_t idle_timeout_ms;
    uint64_t idle_busy_ms;
    uint64_t header_timeout_ms;
    uint64_t request_timeout_ms;
    uint64_t send_timeout_ms;
    uint64_t stream_buffer;
    /* Bytes of single-key answers kept (rcache.h); 0 = off. */
    uint64_t read_cache;
    bool insecure;           /* allow listening without a cluster key */
    bool insecure_api;       /* allow a non-loopback session API */
    bool test_faults;        /* enable POST /v1/debug/faults (tests only) */
    char *test_clock_offset; /* as given (tests only) */
    int64_t test_clock_offset_ms; /* shift of the node's clock (tests only) */
    /* The command line read (the caller's argv, not copied): a reload
     * reads it again so that flags keep their precedence. */
    int argc;
    char **argv;
} jv_config;

typedef enum {
    JV_CONFIG_RUN,     /* start the node */
    JV_CONFIG_HELP,    /* --help was printed */
    JV_CONFIG_VERSION, /* --version was printed */
} jv_config_action;

/* Fills c from argv, the environment and the config file. On a bad flag,
 * value or file, returns JV_EINVAL (or JV_EIO) with a one-line reason in
 * msg; a number outside its option's range (see --help and
 * docs/operations.md) is a bad value. --help and --version print to `out` and
 * set *action. */
jv_err jv_config_load(jv_config *c, int argc, char **argv, FILE *out,
                      jv_config_action *action, char *msg, size_t msglen);
void jv_config_fini(jv_config *c);

/* Loads the settings again as jv_config_load() did for `running`: the same
 * command line and environment (which still win over the file), and the
 * config file `running` read (none if it read none), read again now. The
 * same errors as jv_config_load(); c needs jv_config_fini() either way. */
jv_err jv_config_reload(jv_config *c, const jv_config *running, char *msg,
                        size_t msglen);
void jv_config_usage(FILE *f);

#endif
