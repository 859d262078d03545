/*
 * fuzz_http.c - the session API's request path: bytes from a client, through
 * the HTTP server (node/http.c: http-parser, header and body bounds) and the
 * router (node/api.c: routes, authentication, JSON bodies, handlers, the
 * writer thread) to an answer. A whole node runs in this process on its own
 * data directory and loop; each input is one client connection that sends
 * the bytes, closes its sending side and reads until the server closes.
 *
 * "@KEY@" in an input stands for the node's admin key, so that seeds (and
 * mutations of them) get past authentication to the handlers.
 *
 * Checks: no crash, leak or undefined behaviour; every answer starts with
 * an HTTP/1.1 status line; the server closes the connection in bounded time
 * (no request hangs it).
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "alloc.h"
#include "config.h"
#include "fuzz.h"
#include "log.h"
#include "node.h"

static struct {
    bool up;
    uv_loop_t loop;
    jv_node node;
    jv_config cfg;
    char dir[256];
    char sock[300];
    char key[256];
} fz;

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* The node is never stopped (the process ends with it); its data
 * directory goes. */
static void remove_dir(void)
{
    nftw(fz.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void start_node(void)
{
    const char *tmp = getenv("TMPDIR");
    char msg[512] = "", listen[320];
    jv_config_action action;
    snprintf(fz.dir, sizeof(fz.dir), "%s/jvfuzz-http-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    JV_FUZZ_CHECK(mkdtemp(fz.dir) != NULL);
    atexit(remove_dir);
    snprintf(fz.sock, sizeof(fz.sock), "%s/api.sock", fz.dir);
    JV_FUZZ_CHECK(strlen(fz.sock) <
                  sizeof(((struct sockaddr_un *)0)->sun_path));
    snprintf(listen, sizeof(listen), "unix:%s", fz.sock);
    char *argv[] = {"jarvisd", "--config",     "",      "--data-dir",
                    fz.dir,    "--api-listen", listen,  "--listen",
                    "off",     "--log-level",  "error", "--rate-limit",
                    "0",       "--max-body",   "64k",   NULL};
    JV_FUZZ_CHECK(jv_config_load(&fz.cfg,
                                 (int)(sizeof(argv) / sizeof(*argv)) - 1, argv,
                                 stderr, &action, msg, sizeof(msg)) == JV_OK);
    jv_log_set_level(fz.cfg.log_level);
    signal(SIGPIPE, SIG_IGN);
    JV_FUZZ_CHECK(sodium_init() >= 0);
    JV_FUZZ_CHECK(uv_loop_init(&fz.loop) == 0);
    if (jv_node_start(&fz.node, &fz.loop, &fz.cfg, msg, sizeof(msg))) {
        fprintf(stderr, "fuzz_http: node: %s\n", msg);
        abort();
    }
    char path[300];
    snprintf(path, sizeof(path), "%s/admin.key", fz.dir);
    FILE *f = fopen(path, "r");
    JV_FUZZ_CHECK(f && fgets(fz.key, sizeof(fz.key), f));
    fclose(f);
    fz.key[strcspn(fz.key, "\r\n")] = '\0';
    fz.up = true;
}

/* The input with every "@KEY@" replaced by the admin key. */
static uint8_t *with_key(const uint8_t *data, size_t size, size_t *len)
{
    size_t klen = strlen(fz.key), cap = size + 1, n = 0;
    for (const uint8_t *p = data;
         (p = memmem(p, size - (size_t)(p - data), "@KEY@", 5)); p += 5)
        cap += klen;
    uint8_t *out = malloc(cap);
    JV_FUZZ_CHECK(out != NULL);
    for (size_t i = 0; i < size;) {
        if (size - i >= 5 && memcmp(data + i, "@KEY@", 5) == 0) {
            memcpy(out + n, fz.key, klen);
            n += klen;
            i += 5;
        } else {
            out[n++] = data[i++];
        }
    }
    *len = n;
    return out;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Runs the node's loop until the connection is closed by the server;
 * returns the bytes it answered. */
static size_t exchange(int fd, const uint8_t *req, size_t len, char *resp,
                       size_t cap)
{
    size_t sent = 0, got = 0;
    bool shut = false;
    uint64_t deadline = now_ms() + 30000;
    for (;;) {
        JV_FUZZ_CHECK(now_ms() < deadline); /* the server hangs */
        uv_run(&fz.loop, UV_RUN_NOWAIT);
        if (sent < len) {
            ssize_t k = send(fd, req + sent, len - sent, MSG_NOSIGNAL);
            if (k > 0)
                sent += (size_t)k;
            else if (k < 0 && errno != EAGAIN && errno != EINTR)
                sent = len; /* the server closed early (413, 431...) */
        }
        if (sent == len && !shut) {
            shutdown(fd, SHUT_WR);
            shut = true;
        }
        char buf[4096];
        ssize_t r = recv(fd, buf, sizeof(buf), 0);
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            return got;
        if (r > 0) {
            size_t k = (size_t)r < cap - got ? (size_t)r : cap - got;
            memcpy(resp + got, buf, k);
            got += k;
            continue;
        }
        /* Nothing to read yet: wait for the loop or the client socket. */
        int t = uv_backend_timeout(&fz.loop);
        struct pollfd p[2] = {{.fd = uv_backend_fd(&fz.loop), .events = POLLIN},
                              {.fd = fd, .events = POLLIN}};
        poll(p, 2, t < 0 || t > 10 ? 10 : t);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fz.up)
        start_node();
    size_t len;
    uint8_t *req = with_key(data, size, &len);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    JV_FUZZ_CHECK(fd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    JV_FUZZ_CHECK(strlen(fz.sock) < sizeof(sa.sun_path));
    memcpy(sa.sun_path, fz.sock, strlen(fz.sock) + 1);
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    JV_FUZZ_CHECK(rc == 0 || errno == EINPROGRESS || errno == EAGAIN);
    static char resp[1 << 16];
    size_t got = exchange(fd, req, len, resp, sizeof(resp));
    close(fd);
    free(req);
    /* Each answer (pipelined requests get several) begins with a status
     * line; the first one at least is checked. */
    if (got)
        JV_FUZZ_CHECK(got >= 12 && memcmp(resp, "HTTP/1.1 ", 9) == 0);
    if (getenv("JV_FUZZ_SHOW")) /* what the node answered, for a look */
        fprintf(stderr, "%.*s\n", got > 12 ? 12 : (int)got, resp);
    return 0;
}

size_t jv_fuzz_seeds(jv_buf *seeds, size_t max)
{
    static const char *const s[] = {
        "GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /v1/status HTTP/1.1\r\nAuthorization: Bearer @KEY@\r\n\r\n",
        "POST /v1/counters/hits/increment HTTP/1.1\r\n"
        "Authorization: Bearer @KEY@\r\nContent-Type: application/json\r\n"
        "Content-Length: 10\r\n\r\n{\"by\": 5}\n",
        "PUT /v1/config/a%2Fb HTTP/1.1\r\nAuthorization: Bearer @KEY@\r\n"
        "Content-Length: 17\r\n\r\n{\"value\": [1,2]}\n",
        "PUT /v1/archive/doc/1 HTTP/1.1\r\nAuthorization: Bearer @KEY@\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
        "7\r\n{\"value\r\n9\r\n\": \"v1\"}\n\r\n0\r\n\r\n",
        "GET /v1/archive?prefix=doc%2F&limit=2 HTTP/1.1\r\n"
        "Authorization: Bearer @KEY@\r\n\r\n"
        "DELETE /v1/archive/doc/1 HTTP/1.1\r\n"
        "Authorization: Bearer @KEY@\r\n\r\n",
        "POST /v1/audit HTTP/1.1\r\nAuthorization: Bearer @KEY@\r\n"
        "Content-Length: 43\r\n\r\n"
        "{\"action\":\"a\",\"target\":\"t\",\"detail\":\"d\"}\n",
        "GET /v1/audit?actor=admin&since=2026-01-01T00:00:00Z&limit=5 "
        "HTTP/1.1\r\nAuthorization: Bearer @KEY@\r\n\r\n",
        "POST /v1/sessions HTTP/1.1\r\nAuthorization: Bearer @KEY@\r\n"
        "Content-Length: 16\r\n\r\n{\"ttl_s\": 60}\n\n\n",
        "POST /v1/batch HTTP/1.1\r\nAuthorization: Bearer @KEY@\r\n"
        "Content-Length: 63\r\n\r\n"
        "{\"ops\":[{\"op\":\"counter\",\"name\":\"c\",\"by\":1},{\"op\":\"x\"}]"
        "}\n",
        "POST /v1/keys HTTP/1.1\r\nAuthorization: Bearer @KEY@\r\n"
        "Expect: 100-continue\r\nContent-Length: 31\r\n\r\n"
        "{\"name\":\"k1\",\"role\":\"reader\"}\n",
        "GET /v1/counters?limit=0&cursor=%zz HTTP/1.1\r\n"
        "Authorization: Bearer jvk_x_y\r\n\r\n",
        "GET /v1/trust HTTP/1.0\r\nAuthorization: Bearer @KEY@\r\n"
        "Connection: keep-alive\r\n\r\n",
        "BREW /coffee HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n",
    };
    size_t n = sizeof(s) / sizeof(*s);
    for (size_t i = 0; i < n && i < max; i++)
        jv_buf_append(&seeds[i], s[i], strlen(s[i]));
    return n < max ? n : max;
}
