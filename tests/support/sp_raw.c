/*
 * sp_raw.c - see sp_raw.h.
 */
#include "sp_raw.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int dial(const char *url)
{
    int port = 0;
    if (sscanf(url, "tcp://127.0.0.1:%d", &port) != 1 || port <= 0 ||
        port > 65535) {
        errno = EINVAL;
        return -1;
    }
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* "\0SP\0", the protocol (REQ0 = 0x30), two zeros; the answer must be
 * the same with REP0 (0x31). */
static bool handshake(int fd, int timeout_ms)
{
    static const uint8_t hello[8] = {0, 'S', 'P', 0, 0, 0x30, 0, 0};
    uint8_t peer[8];
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    return send(fd, hello, 8, MSG_NOSIGNAL) == 8 &&
           poll(&pf, 1, timeout_ms) == 1 &&
           recv(fd, peer, 8, MSG_WAITALL) == 8 && peer[1] == 'S' &&
           peer[2] == 'P' && peer[5] == 0x31;
}

/* Whether the other side closes fd within timeout_ms (what it sends
 * meanwhile is read and dropped). */
static bool closed_within(int fd, int timeout_ms)
{
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    double t0 = mono_ms();
    while (mono_ms() - t0 < timeout_ms) {
        uint8_t sink[4096];
        if (poll(&pf, 1, 50) != 1)
            continue;
        ssize_t got = recv(fd, sink, sizeof sink, 0);
        if (got == 0 || (got < 0 && errno == ECONNRESET))
            return true;
    }
    return false;
}

int jv_sp_send_cut(const char *url, size_t claimed, const uint8_t *body,
                   size_t n, int timeout_ms)
{
    int fd = dial(url);
    if (fd < 0)
        return -1;
    if (!handshake(fd, timeout_ms)) {
        close(fd);
        return -1;
    }
    /* The length (big-endian) counts the 4-byte request id after it. */
    uint8_t head[12];
    uint64_t len = (uint64_t)claimed;
    for (int k = 0; k < 8; k++)
        head[k] = (uint8_t)(len >> (56 - 8 * k));
    memcpy(head + 8, (const uint8_t[4]){0x80, 0, 0, 1}, 4);
    int rc = 0;
    if (send(fd, head, sizeof head, MSG_NOSIGNAL) != (ssize_t)sizeof head)
        rc = errno == EPIPE || errno == ECONNRESET ? 1 : -1;
    else {
        /* Never blocks: a listener that neither reads nor cuts must fail
         * the check, not hang it. It may have cut already. */
        if (n > 0)
            (void)send(fd, body, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        rc = closed_within(fd, timeout_ms) ? 1 : 0;
    }
    close(fd);
    return rc;
}
