#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "batch.h"
#include "datadir.h"
#include "store.h"
#include "wire.h"

typedef enum {
    T_STR,
    T_U64,
    T_SIZE,
    T_BOOL,
    T_LEVEL,
    T_SYNC,
    T_LIST
} opt_type;

typedef struct {
    const char *name; /* flag without dashes, config key */
    opt_type type;
    size_t off;
    const char *arg; /* placeholder in --help */
    const char *help;
    uint64_t min, max; /* T_U64 and T_SIZE: the accepted range */
} opt;

#define KiB     1024ull
#define MiB     (1024ull * 1024)
#define GiB     (1024ull * 1024 * 1024)
#define DAY_MS  86400000ull
#define HOUR_MS 3600000ull

#define OFF(f) offsetof(jv_config, f)

/* One table drives flags, config keys, environment names and --help. */
static const opt opts[] = {
    {"data-dir", T_STR, OFF(data_dir), "DIR",
     "data directory (created if missing)\n"
     "default: /var/lib/jarvis as root, else ~/.local/share/jarvis",
     0, 0},

    {"api-listen", T_STR, OFF(api_listen), "ADDR",
     "session API address: HOST:PORT, unix:/PATH, or off\n"
     "default: 127.0.0.1:7410",
     0, 0},

    {"listen", T_STR, OFF(listen), "ADDR",
     "peer address (tcp://HOST:PORT, ipc:///PATH, off)\n"
     "default: tcp://0.0.0.0:7411 with a cluster key, else off",
     0, 0},

    {"peer", T_LIST, OFF(peers), "ADDR",
     "a peer to replicate with (repeatable; all sources are joined)", 0, 0},

    {"trust", T_LIST, OFF(trust), "NODE_ID",
     "a node whose batches to accept, added to the replicated trust\n"
     "list at start (repeatable; all sources are joined)",
     0, 0},

    {"backup-dir", T_STR, OFF(backup_dir), "DIR",
     "the only directory POST /v1/backup writes into (created 0700)\n"
     "default: DATA_DIR/backups",
     0, 0},

    {"cluster-key-file", T_STR, OFF(cluster_key_file), "FILE",
     "cluster keyring: one hex key per line, the first used to send", 0, 0},

    {"insecure", T_BOOL, OFF(insecure), NULL,
     "allow a non-loopback peer listener without a cluster key", 0, 0},

    {"insecure-api", T_BOOL, OFF(insecure_api), NULL,
     "allow a session API on a non-loopback address (bearer keys then\n"
     "cross the network in plain text: put TLS in front, see\n"
     "docs/operations.md)",
     0, 0},

    {"name", T_STR, OFF(name), "NAME",
     "node name shown to operators\n"
     "default: the host name",
     0, 0},

    {"log-level", T_LEVEL, OFF(log_level), "LEVEL",
     "debug, info, warn or error; default: info", 0, 0},

    {"sync", T_SYNC, OFF(sync), "MODE",
     "durability of commits: normal (survives a process crash),\n"
     "full (also power loss) or extra; default: normal",
     0, 0},

    {"rate-limit", T_U64, OFF(rate_limit), "N",
     "requests per second per API key, 0 = no limit; default: 1000", 0,
     1000000},
    {"rate-burst", T_U64, OFF(rate_burst), "N",
     "requests a key may make at once; default: 2000", 0, 10000000},
    {"max-body", T_SIZE, OFF(max_body), "BYTES",
     "largest request body (k, M suffixes allowed); default: 1M", KiB,
     256 * MiB},
    {"max-bundle", T_SIZE, OFF(max_bundle), "BYTES",
     "largest bundle POST /v1/bundles accepts (its own limit, in place of "
     "max-body); default: 256M",
     KiB, 4096ull * MiB},
    {"session-ttl", T_U64, OFF(session_ttl), "SECONDS",
     "default session lifetime; default: 3600", 1, 604800},
    {"max-clock-skew", T_U64, OFF(max_skew_ms), "MS",
     "remote clock stamps further ahead are refused; default: 60000", 100,
     DAY_MS},
    {"log-retention", T_U64, OFF(log_retention_s), "SECONDS",
     "batches every trusted peer holds are folded into the base snapshot\n"
     "and deleted once older than this; 0: as soon as all hold them;\n"
     "default: 21600 (6 hours)",
     0, 3650ull * 86400},
    {"peer-horizon", T_U64, OFF(peer_horizon_s), "SECONDS",
     "a trusted peer silent this long stops holding compaction back\n"
     "(it needs a snapshot when it returns); default: 259200 (3 days)",
     1, 3650ull * 86400},
    {"sync-interval", T_U64, OFF(sync_interval_ms), "MS",
     "anti-entropy period; default: 1000", 10, HOUR_MS},
    {"fanout", T_U64, OFF(fanout), "N",
     "peers each new batch is pushed to at once; 0: none, anti-entropy\n"
     "only; default: 3",
     0, 1000},
    {"max-message", T_SIZE, OFF(max_message), "BYTES",
     "largest peer message (k, M suffixes allowed); default: 8M",
     2ull * JV_BATCH_MAX_BYTES, GiB},
    {"peer-timeout", T_U64, OFF(peer_timeout_ms), "MS",
     "how long one exchange with a peer may take; default: 10000", 10, HOUR_MS},
    {"max-conns", T_U64, OFF(max_conns), "N",
     "session API connections at once; over it, the oldest idle one is\n"
     "closed to admit a new one; 0: auto, 16384 or what the open-file\n"
     "limit allows; default: 0",
     0, 1000000},
    {"max-conns-per-addr", T_U64, OFF(max_conns_per_addr), "N",
     "connections from one client address (its oldest idle one is closed\n"
     "to admit another); 0: auto, half of max-conns; default: 0",
     0, 1000000},
    {"idle-timeout", T_U64, OFF(idle_timeout_ms), "MS",
     "keep-alive connections idle this long are closed; default: 60000", 100,
     DAY_MS},
    {"idle-timeout-busy", T_U64, OFF(idle_busy_ms), "MS",
     "the same once three quarters of max-conns are open; default: 5000", 100,
     DAY_MS},
    {"header-timeout", T_U64, OFF(header_timeout_ms), "MS",
     "a request's head must arrive within this from its first byte\n"
     "(slow clients get 408); default: 10000",
     100, HOUR_MS},
    {"request-timeout", T_U64, OFF(request_timeout_ms), "MS",
     "a whole request, body included; default: 10000", 100, HOUR_MS},
    {"send-timeout", T_U64, OFF(send_timeout_ms), "MS",
     "a client that takes none of an answer's pending bytes this long\n"
     "is disconnected; default: 30000",
     100, HOUR_MS},
    {"stream-buffer", T_SIZE, OFF(stream_buffer), "BYTES",
     "memory for streamed answers (lists, export) of all clients\n"
     "together; default: 32M",
     MiB, 4 * GiB},
    {"read-cache", T_SIZE, OFF(read_cache), "BYTES",
     "answers to single-key reads (counter, config or archive key)\n"
     "kept while nothing of their kind is written; 0: off; default: 4M",
     0, GiB},
    {"test-faults", T_BOOL, OFF(test_faults), NULL,
     "enable fault injection through the API (for tests only)", 0, 0},
    {"test-clock-offset-ms", T_STR, OFF(test_clock_offset), "MS",
     "run with the wall clock shifted by MS (may be negative; tests only,\n"
     "needs --test-faults); default: 0",
     0, 0},
};

#define NOPTS (sizeof(opts) / sizeof(opts[0]))

/* Read when present, so that a packaged node and `jarvisd` typed by hand
 * find the same settings; set at build time (JV_DEFAULT_CONFIG in CMake). */
#ifndef JV_DEFAULT_CONFIG
#define JV_DEFAULT_CONFIG "/etc/jarvis/jarvisd.conf"
#endif

static void msgf(char *msg, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void msgf(char *msg, size_t len, const char *fmt, ...)
{
    va_list ap;
    if (!msg || !len)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, len, fmt, ap);
    va_end(ap);
}

static const opt *find_opt(const char *name, size_t len)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (strlen(opts[i].name) == len &&
            strncmp(opts[i].name, name, len) == 0)
            return &opts[i];
    return NULL;
}

static jv_err parse_u64(const char *s, bool size, uint64_t *out)
{
    char *end;
    if (!*s || *s == '-')
        return JV_EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return JV_EINVAL;
    uint64_t mul = 1;
    if (size && *end) {
        switch (*end) {
        case 'k':
        case 'K':
            mul = 1024;
            break;
        case 'M':
        case 'm':
            mul = 1024 * 1024;
            break;
        case 'G':
        case 'g':
            mul = 1024 * 1024 * 1024;
            break;
        default:
            return JV_EINVAL;
        }
        end++;
    }
    if (*end || v > UINT64_MAX / mul)
        return JV_EINVAL;
    *out = v * mul;
    return JV_OK;
}

/* " (from MIN to MAX)" for a numeric option, "" otherwise. */
static const char *range_of(const opt *o, char *buf, size_t len)
{
    if (o->type != T_U64 && o->type != T_SIZE)
        return "";
    snprintf(buf, len, " (an integer from %llu to %llu%s)",
             (unsigned long long)o->min, (unsigned long long)o->max,
             o->type == T_SIZE ? " bytes, k/M/G suffixes allowed" : "");
    return buf;
}

static jv_err set_value(jv_config *c, const opt *o, const char *val)
{
    void *field = (char *)c + o->off;
    jv_err err = JV_OK;
    switch (o->type) {
    case T_STR: {
        char **s = field, *d = jv_strndup(val, strlen(val));
        if (!d)
            return JV_ENOMEM;
        jv_free(*s);
        *s = d;
        break;
    }
    case T_LIST: {
        jv_strlist *l = field;
        for (size_t i = 0; i < l->n; i++)
            if (strcmp(l->v[i], val) == 0)
                return JV_OK;
        char *d = jv_strndup(val, strlen(val));
        char **v = d ? jv_reallocarray(l->v, l->n + 1, sizeof(char *)) : NULL;
        if (!v) {
            jv_free(d);
            return JV_ENOMEM;
        }
        l->v = v;
        v[l->n++] = d;
        break;
    }
    case T_U64:
    case T_SIZE: {
        uint64_t v;
        err = parse_u64(val, o->type == T_SIZE, &v);
        if (!err && (v < o->min || v > o->max))
            err = JV_EINVAL;
        if (!err)
            *(uint64_t *)field = v;
        break;
    }
    case T_BOOL:
        if (!strcmp(val, "true") || !strcmp(val, "1") || !strcmp(val, "yes"))
            *(bool *)field = true;
        else if (!strcmp(val, "false") || !strcmp(val, "0") ||
                 !strcmp(val, "no"))
            *(bool *)field = false;
        else
            err = JV_EINVAL;
        break;
    case T_LEVEL:
        err = jv_log_parse_level(val, field);
        break;
    case T_SYNC:
        if (!strcmp(val, "normal"))
            *(jv_sync *)field = JV_SYNC_NORMAL;
        else if (!strcmp(val, "full"))
            *(jv_sync *)field = JV_SYNC_FULL;
        else if (!strcmp(val, "extra"))
            *(jv_sync *)field = JV_SYNC_EXTRA;
        else
            err = JV_EINVAL;
        break;
    }
    return err;
}

static jv_err set_defaults(jv_config *c)
{
    char buf[PATH_MAX], host[256];
    memset(c, 0, sizeof(*c));
    c->log_level = JV_LOG_INFO;
    c->sync = JV_SYNC_NORMAL;
    c->rate_limit = 1000;
    c->rate_burst = 2000;
    c->max_body = 1024 * 1024;
    c->max_bundle = 256ull * 1024 * 1024;
    c->session_ttl = 3600;
    c->max_skew_ms = 60000;
    c->log_retention_s = 6 * 3600;
    c->peer_horizon_s = 3 * 86400;
    c->sync_interval_ms = 1000;
    c->fanout = 3;
    c->max_message = 8 * 1024 * 1024;
    c->peer_timeout_ms = 10000;
    c->idle_timeout_ms = 60000;
    c->idle_busy_ms = 5000;
    c->header_timeout_ms = 10000;
    c->request_timeout_ms = 10000;
    c->send_timeout_ms = 30000;
    c->stream_buffer = 32 * MiB;
    c->read_cache = 4 * MiB;
    if (jv_datadir_default(buf, sizeof(buf)) != JV_OK)
        return JV_ETOOBIG;
    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "jarvis");
    host[sizeof(host) - 1] = '\0';
    c->data_dir = jv_strndup(buf, strlen(buf));
    c->api_listen = jv_strndup("127.0.0.1:7410", 14);
    c->listen = jv_strndup("auto", 4);
    c->name = jv_strndup(host, strlen(host));
    if (!c->data_dir || !c->api_listen || !c->listen || !c->name)
        return JV_ENOMEM;
    return JV_OK;
}

static void env_name(const char *name, char *out, size_t len)
{
    size_t j = (size_t)snprintf(out, len, "JARVIS_");
    for (const char *p = name; *p && j + 1 < len; p++)
        out[j++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    out[j] = '\0';
}

static jv_err load_env(jv_config *c, char *msg, size_t msglen)
{
    char name[64];
    for (size_t i = 0; i < NOPTS; i++) {
        env_name(opts[i].name, name, sizeof(name));
        const char *v = getenv(name);
        if (!v || !*v)
            continue;
        if (opts[i].type == T_LIST) {
            /* JARVIS_PEER and JARVIS_TRUST may list several,
             * comma-separated. */
            char *copy = jv_strndup(v, strlen(v)), *save = NULL;
            if (!copy)
                return JV_ENOMEM;
            for (char *t = strtok_r(copy, ", ", &save); t;
                 t = strtok_r(NULL, ", ", &save)) {
                if (set_value(c, &opts[i], t) != JV_OK) {
                    jv_free(copy);
                    return JV_ENOMEM;
                }
            }
            jv_free(copy);
            continue;
        }
        if (set_value(c, &opts[i], v) != JV_OK) {
            char r[96];
            msgf(msg, msglen, "bad value for %s: '%s'%s", name, v,
                 range_of(&opts[i], r, sizeof(r)));
            return JV_EINVAL;
        }
    }
    return JV_OK;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

static jv_err load_file(jv_config *c, const char *path, char *msg,
                        size_t msglen)
{
    char line[4096], where[PATH_MAX + 32];
    unsigned lineno = 0;
    jv_err err = JV_OK;
    FILE *f = fopen(path, "r");
    if (!f) {
        msgf(msg, msglen, "cannot read config file %s: %s", path,
             strerror(errno));
        return JV_EIO;
    }
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        snprintf(where, sizeof(where), "%s:%u", path, lineno);
        if (!strchr(line, '\n') && !feof(f)) {
            msgf(msg, msglen, "%s: line too long", where);
            err = JV_EINVAL;
            break;
        }
        char *s = trim(line);
        if (!*s || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            msgf(msg, msglen, "%s: expected 'key = value', got '%s'", where, s);
            err = JV_EINVAL;
            break;
        }
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        size_t vl = strlen(val);
        if (vl >= 2 && val[0] == '"' && val[vl - 1] == '"') {
            val[vl - 1] = '\0';
            val++;
        }
        const opt *o = find_opt(key, strlen(key));
        if (!o) {
            msgf(msg, msglen, "%s: unknown setting '%s'", where, key);
            err = JV_EINVAL;
            break;
        }
        if ((err = set_value(c, o, val))) {
            char r[96];
            msgf(msg, msglen, "%s: bad value for %s: '%s'%s", where, key, val,
                 range_of(o, r, sizeof(r)));
            err = JV_EINVAL;
            break;
        }
    }
    fclose(f);
    return err;
}

void jv_config_usage(FILE *f)
{
    fprintf(
        f,
        "Usage: jarvisd [OPTIONS]\n"
        "\n"
        "Runs a Jarvis node: replicated metrics, audit log, configuration "
        "and\narchive, served on a local session API.\n"
        "\n"
        "Settings come from flags, then the config file, then environment\n"
        "variables (JARVIS_ and the flag's name in capitals, e.g.\n"
        "JARVIS_API_LISTEN), then defaults. Config file lines are\n"
        "'name = value' with the flag's name (api-listen = ...).\n"
        "\n"
        "Options:\n"
        "  --config FILE           read settings from FILE (JARVIS_CONFIG);\n"
        "                          '' reads none; default: " JV_DEFAULT_CONFIG
        "\n                          if it exists\n");
    for (size_t i = 0; i < NOPTS; i++) {
        char left[64];
        snprintf(left, sizeof(left), "--%s%s%s", opts[i].name,
                 opts[i].arg ? " " : "", opts[i].arg ? opts[i].arg : "");
        const char *h = opts[i].help;
        fprintf(f, "  %-22s  ", left);
        for (; *h; h++) {
            fputc(*h, f);
            if (*h == '\n')
                fprintf(f, "  %-22s  ", "");
        }
        if (opts[i].type == T_U64 || opts[i].type == T_SIZE)
            fprintf(f, "\n  %-22s  range: %llu to %llu", "",
                    (unsigned long long)opts[i].min,
                    (unsigned long long)opts[i].max);
        fputc('\n', f);
    }
    fprintf(f, "  %-22s  %s\n  %-22s  %s\n", "-h, --help", "show this help",
            "--version",
            "print the version, peer protocol and data dir schema");
}

/* A session API address only this host can reach: a Unix socket or a
 * loopback address. */
static bool api_local_only(const char *addr)
{
    char host[64];
    struct in_addr a4;
    if (!strncmp(addr, "unix:", 5))
        return true;
    const char *colon = strrchr(addr, ':');
    if (!colon || (size_t)(colon - addr) >= sizeof(host))
        return false;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    if (!strcmp(host, "localhost") || !strcmp(host, "[::1]"))
        return true;
    return inet_pton(AF_INET, host, &a4) == 1 &&
           (ntohl(a4.s_addr) >> 24) == 127;
}

jv_err jv_config_load(jv_config *c, int argc, char **argv, FILE *out,
                      jv_config_action *action, char *msg, size_t msglen)
{
    const char *config_path = getenv("JARVIS_CONFIG");
    jv_err err;

    *action = JV_CONFIG_RUN;
    if ((err = set_defaults(c))) {
        msgf(msg, msglen, "out of memory");
        return err;
    }
    c->argc = argc;
    c->argv = argv;
    /* First pass: --help, --version and --config decide what to read. */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            jv_config_usage(out);
            *action = JV_CONFIG_HELP;
            return JV_OK;
        }
        if (!strcmp(argv[i], "--version")) {
            /* What decides an upgrade (docs/operations.md): who it can
             * talk to, and what its data dir becomes on first start. */
            fprintf(out, "jarvisd %s (peer protocol %d, data dir schema %d)\n",
                    JV_VERSION, JV_WIRE_VERSION, JV_STORE_SCHEMA_VERSION);
            *action = JV_CONFIG_VERSION;
            return JV_OK;
        }
        if (!strcmp(argv[i], "--config")) {
            if (i + 1 >= argc) {
                msgf(msg, msglen, "--config needs a value");
                return JV_EINVAL;
            }
            config_path = argv[++i];
        } else if (!strncmp(argv[i], "--config=", 9)) {
            config_path = argv[i] + 9;
        }
    }
    if ((err = load_env(c, msg, msglen)))
        return err;
    /* Only the default may be absent: a file asked for must be there. */
    if (!config_path && access(JV_DEFAULT_CONFIG, F_OK) == 0)
        config_path = JV_DEFAULT_CONFIG;
    if (config_path && *config_path) {
        if ((err = load_file(c, config_path, msg, msglen)))
            return err;
        c->config_path = jv_strndup(config_path, strlen(config_path));
        if (!c->config_path)
            return JV_ENOMEM;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        if (!strcmp(a, "--config")) {
            i++;
            continue;
        }
        if (!strncmp(a, "--config=", 9))
            continue;
        if (strncmp(a, "--", 2) != 0) {
            msgf(msg, msglen, "unexpected argument '%s' (see --help)", a);
            return JV_EINVAL;
        }
        a += 2;
        const char *eq = strchr(a, '=');
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
        const opt *o = find_opt(a, nlen);
        if (!o) {
            msgf(msg, msglen, "unknown option '%s' (see --help)", argv[i]);
            return JV_EINVAL;
        }
        if (eq) {
            val = eq + 1;
        } else if (o->type == T_BOOL) {
            val = "true";
        } else {
            if (i + 1 >= argc) {
                msgf(msg, msglen, "--%s needs a value", o->name);
                return JV_EINVAL;
            }
            val = argv[++i];
        }
        if ((err = set_value(c, o, val))) {
            char r[96];
            msgf(msg, msglen, "bad value for --%s: '%s'%s", o->name, val,
                 range_of(o, r, sizeof(r)));
            return err == JV_ENOMEM ? err : JV_EINVAL;
        }
    }
    if (c->rate_limit && c->rate_burst == 0)
        c->rate_burst = c->rate_limit;
    if (c->test_clock_offset) {
        char *end = NULL;
        long long v = strtoll(c->test_clock_offset, &end, 10);
        if (!c->test_faults || end == c->test_clock_offset || *end ||
            v < -(long long)(DAY_MS * 365) || v > (long long)(DAY_MS * 365)) {
            msgf(msg, msglen,
                 "--test-clock-offset-ms needs --test-faults and a number "
                 "of milliseconds within a year either way");
            return JV_EINVAL;
        }
        c->test_clock_offset_ms = v;
    }
    if (strcmp(c->api_listen, "off") != 0 && !c->insecure_api &&
        !api_local_only(c->api_listen)) {
        msgf(msg, msglen,
             "refusing to serve the session API on %s: bearer keys would "
             "cross the network in plain text; listen on loopback and put a "
             "TLS proxy in front (docs/operations.md), or give --insecure-api",
             c->api_listen);
        return JV_EINVAL;
    }
    return JV_OK;
}

void jv_config_fini(jv_config *c)
{
    if (!c)
        return;
    jv_free(c->data_dir);
    jv_free(c->api_listen);
    jv_free(c->listen);
    jv_free(c->name);
    jv_free(c->config_path);
    jv_free(c->cluster_key_file);
    jv_free(c->backup_dir);
    jv_free(c->test_clock_offset);
    jv_strlist *lists[] = {&c->peers, &c->trust};
    for (size_t k = 0; k < 2; k++) {
        for (size_t i = 0; i < lists[k]->n; i++)
            jv_free(lists[k]->v[i]);
        jv_free(lists[k]->v);
    }
    memset(c, 0, sizeof(*c));
}

jv_err jv_config_reload(jv_config *c, const jv_config *running, char *msg,
                        size_t msglen)
{
    jv_config_action action;
    const char *path = running->config_path ? running->config_path : "";
    size_t len = strlen("--config=") + strlen(path) + 1;
    char *arg = jv_malloc(len);
    /* The command line again, with --config naming the file read at start
     * (the last --config wins): not one that appeared since, such as the
     * default file created after a start without it. */
    int argc = running->argc > 0 ? running->argc : 1;
    char **argv = jv_calloc((size_t)argc + 2, sizeof(char *));
    jv_err err = JV_ENOMEM;
    memset(c, 0, sizeof(*c));
    if (!arg || !argv) {
        msgf(msg, msglen, "out of memory");
        goto out;
    }
    snprintf(arg, len, "--config=%s", path);
    static char prog[] = "jarvisd";
    argv[0] = prog;
    for (int i = 0; i < running->argc; i++)
        argv[i] = running->argv[i];
    argv[argc] = arg;
    err = jv_config_load(c, argc + 1, argv, stderr, &action, msg, msglen);
    c->argc = running->argc;
    c->argv = running->argv;
    if (!err && action != JV_CONFIG_RUN) {
        msgf(msg, msglen, "the command line asks for no node");
        err = JV_EINVAL;
    }
out:
    jv_free(arg);
    jv_free(argv);
    return err;
}
