/*
 * jarvisd - the Jarvis node daemon. See `jarvisd --help` and docs/.
 */
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "config.h"
#include "log.h"
#include "node.h"
#include "offline.h"
#include "store.h"

/* Each session API connection takes a file descriptor, and the soft limit
 * is often 1024: take what the hard limit allows (the API sizes its
 * connection limits from the result). */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        jv_warn("node", "cannot raise the open-file limit to %llu",
                (unsigned long long)rl.rlim_max);
}

#ifdef JV_SANITIZE
/* nng 1.5.2 leaks a listener's endpoint, with the connections it holds
 * that finished their handshake but were never accepted, when the
 * listener closes (net/transport.c says more at its top). A node stopped
 * while a peer or its own probe is connecting exits with them, and
 * LeakSanitizer then fails the exit. They are libnng's own allocations,
 * out of the node's reach, so its leak reports leave libnng's allocations
 * out; the node's own are still reported, and transport_test checks the
 * transport's use of nng with leak checking untouched. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libnng.so\n";
}
#endif

int main(int argc, char **argv)
{
    jv_config cfg;
    jv_config_action action;
    char msg[512] = "";
    uv_loop_t loop;
    jv_node node;
    int rc = 1;

    /* Whatever the umask we were started with, nothing we create (data
     * dir, database, WAL, backups, keys) is readable by other users. */
    umask(077);
    /* A reader that goes away early (`jarvisd --help | grep -q ...` under
     * pipefail) must not kill us with SIGPIPE: the write fails instead.
     * The node ignores it anyway (below). */
    signal(SIGPIPE, SIG_IGN);
    /* Before any store opens; if it cannot take, only speed suffers. */
    (void)jv_store_process_init();
    /* `jarvisd SUBCOMMAND ...` works on a stopped node's data dir. */
    if ((rc = jv_offline_main(argc, argv, stdout, stderr)) >= 0)
        return rc;
    rc = 1;
    if (jv_config_load(&cfg, argc, argv, stdout, &action, msg, sizeof(msg))) {
        fprintf(stderr, "jarvisd: %s\n", msg);
        jv_config_fini(&cfg);
        return 2;
    }
    if (action != JV_CONFIG_RUN) {
        if (action == JV_CONFIG_HELP)
            jv_offline_usage(stdout);
        jv_config_fini(&cfg);
        return 0;
    }
    jv_log_set_level(cfg.log_level);
    raise_nofile();
    /* A client that goes away mid-write must not kill the node, nor a
     * file-size limit: writes then fail with EFBIG and the commit is
     * refused, like any other storage failure. */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);
    if (sodium_init() < 0) {
        jv_error("node", "libsodium failed to initialise");
        jv_config_fini(&cfg);
        return 1;
    }
    if (uv_loop_init(&loop) != 0) {
        jv_error("node", "cannot create the event loop");
        jv_config_fini(&cfg);
        return 1;
    }
    if (jv_node_start(&node, &loop, &cfg, msg, sizeof(msg)) != JV_OK) {
        jv_error("node", "%s", msg);
        /* A start that failed after the loop took handles stops through
         * the loop; one that failed before has nothing to run. */
        uv_run(&loop, UV_RUN_DEFAULT);
        jv_node_fini(&node);
        uv_loop_close(&loop);
        jv_config_fini(&cfg);
        return 1;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    rc = node.exit_code;
    jv_node_fini(&node);
    if (uv_loop_close(&loop) != 0)
        jv_warn("node", "event loop closed with handles still open");
    jv_config_fini(&cfg);
    return rc;
}
