#define _GNU_SOURCE
#include "sse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int grow(char **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 4096;
    while (c < need)
        c *= 2;
    char *n = realloc(*p, c);
    if (!n)
        return -1;
    *p = n;
    *cap = c;
    return 0;
}

/* Reads what is there (waiting at most ms): 1 got bytes, 0 timeout, -1
 * closed or failed. */
static int fill(jv_sse *s, int ms)
{
    struct pollfd pfd = {s->fd, POLLIN, 0};
    int r = poll(&pfd, 1, ms < 0 ? 0 : ms);
    if (r == 0)
        return 0;
    if (r < 0)
        return errno == EINTR ? 0 : -1;
    if (grow(&s->raw, &s->raw_cap, s->raw_len + 65536))
        return -1;
    ssize_t n = read(s->fd, s->raw + s->raw_len, 65536);
    if (n <= 0) {
        s->closed = true;
        return -1;
    }
    s->raw_len += (size_t)n;
    return 1;
}

static void consume_raw(jv_sse *s, size_t n)
{
    memmove(s->raw, s->raw + n, s->raw_len - n);
    s->raw_len -= n;
}

static int text_add(jv_sse *s, const char *p, size_t n)
{
    if (grow(&s->text, &s->text_cap, s->text_len + n + 1))
        return -1;
    memcpy(s->text + s->text_len, p, n);
    s->text_len += n;
    s->text[s->text_len] = '\0';
    return 0;
}

/* Moves de-chunked bytes from raw to text. */
static int dechunk(jv_sse *s)
{
    if (!s->chunked) {
        int r = text_add(s, s->raw, s->raw_len);
        s->raw_len = 0;
        return r;
    }
    for (;;) {
        if (s->chunk_left) {
            size_t n = s->raw_len < s->chunk_left ? s->raw_len : s->chunk_left;
            if (!n)
                return 0;
            if (text_add(s, s->raw, n))
                return -1;
            consume_raw(s, n);
            s->chunk_left -= n;
            if (!s->chunk_left)
                s->in_chunk_crlf = true;
            continue;
        }
        if (s->in_chunk_crlf) {
            if (s->raw_len < 2)
                return 0;
            consume_raw(s, 2);
            s->in_chunk_crlf = false;
        }
        char *eol = memchr(s->raw, '\n', s->raw_len);
        if (!eol)
            return 0;
        size_t size = strtoul(s->raw, NULL, 16);
        consume_raw(s, (size_t)(eol - s->raw) + 1);
        if (size == 0) {
            s->closed = true; /* last chunk */
            return 0;
        }
        s->chunk_left = size;
    }
}

static int connect_to(const char *base_url, int rcvbuf)
{
    char host[64];
    int port;
    if (sscanf(base_url, "http://%63[^:]:%d", host, &port) != 2)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
        connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int read_head(jv_sse *s, int timeout_ms)
{
    double end = now_ms() + timeout_ms;
    char *hend;
    while (!(hend = s->raw_len ? strstr(s->raw, "\r\n\r\n") : NULL)) {
        if (now_ms() > end || fill(s, (int)(end - now_ms())) < 0)
            return -1;
        s->raw[s->raw_len] = '\0';
    }
    *hend = '\0';
    if (sscanf(s->raw, "HTTP/1.%*d %d", &s->status) != 1)
        return -1;
    s->chunked = strcasestr(s->raw, "transfer-encoding: chunked") != NULL;
    const char *cl = strcasestr(s->raw, "content-length:");
    size_t len = cl ? strtoul(cl + 15, NULL, 10) : 0;
    consume_raw(s, (size_t)(hend - s->raw) + 4);
    if (s->status == 200)
        return 0;
    while (s->raw_len < len && now_ms() < end)
        if (fill(s, (int)(end - now_ms())) < 0)
            break;
    s->body = calloc(1, s->raw_len + 1);
    if (s->body)
        memcpy(s->body, s->raw, s->raw_len);
    return 0;
}

int jv_sse_open(jv_sse *s, const char *base_url, const char *path,
                const char *token, const char *last_event_id, int rcvbuf,
                int timeout_ms)
{
    char req[4096];
    memset(s, 0, sizeof(*s));
    s->fd = connect_to(base_url, rcvbuf);
    if (s->fd < 0)
        return -1;
    int n = snprintf(
        req, sizeof(req),
        "GET %s HTTP/1.1\r\nHost: test\r\n"
        "Accept: text/event-stream\r\n%s%s%s%s%s%s\r\n",
        path, token ? "Authorization: Bearer " : "", token ? token : "",
        token ? "\r\n" : "", last_event_id ? "Last-Event-ID: " : "",
        last_event_id ? last_event_id : "", last_event_id ? "\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof(req) || write(s->fd, req, (size_t)n) != n)
        return -1;
    if (grow(&s->raw, &s->raw_cap, 65536 + 1))
        return -1;
    return read_head(s, timeout_ms);
}

static void field(jv_sse_event *ev, const char *line, size_t n)
{
    const char *colon = memchr(line, ':', n);
    size_t nl = colon ? (size_t)(colon - line) : n;
    const char *v = colon ? colon + 1 : line + n;
    if (v < line + n && *v == ' ')
        v++;
    size_t vl = (size_t)(line + n - v);
    if (nl == 0) {
        ev->comment = true;
        return;
    }
    if (nl == 2 && !memcmp(line, "id", 2))
        snprintf(ev->id, sizeof(ev->id), "%.*s", (int)vl, v);
    else if (nl == 5 && !memcmp(line, "event", 5))
        snprintf(ev->event, sizeof(ev->event), "%.*s", (int)vl, v);
    else if (nl == 4 && !memcmp(line, "data", 4)) {
        free(ev->data);
        ev->data = strndup(v, vl);
    }
}

/* An event (or a comment) complete in text: parsed and removed. */
static bool take_event(jv_sse *s, jv_sse_event *ev)
{
    char *end = s->text_len ? strstr(s->text, "\n\n") : NULL;
    if (!end)
        return false;
    memset(ev, 0, sizeof(*ev));
    bool any = false;
    for (char *line = s->text; line < end + 1;) {
        char *nl = memchr(line, '\n', (size_t)(end + 1 - line));
        field(ev, line, (size_t)(nl - line));
        any = true;
        line = nl + 1;
    }
    (void)any;
    if (ev->id[0] || ev->event[0] || ev->data)
        ev->comment = false;
    if (!ev->data)
        ev->data = strdup("");
    size_t used = (size_t)(end - s->text) + 2;
    memmove(s->text, s->text + used, s->text_len - used + 1);
    s->text_len -= used;
    return true;
}

int jv_sse_next(jv_sse *s, jv_sse_event *ev, int timeout_ms)
{
    double end = now_ms() + timeout_ms;
    for (;;) {
        if (dechunk(s))
            return -1;
        /* "retry: 2000" alone ends at the hello's blank line. */
        if (take_event(s, ev))
            return 1;
        if (s->closed)
            return -1;
        double left = end - now_ms();
        if (left <= 0)
            return 0;
        int r = fill(s, (int)left);
        if (r < 0) { /* closed: what came before it still counts */
            if (dechunk(s) == 0 && take_event(s, ev))
                return 1;
            return -1;
        }
    }
}

void jv_sse_event_fini(jv_sse_event *ev)
{
    free(ev->data);
    ev->data = NULL;
}

void jv_sse_close(jv_sse *s)
{
    if (s->fd > 0)
        close(s->fd);
    s->fd = -1;
    free(s->raw);
    free(s->text);
    free(s->body);
    s->raw = s->text = s->body = NULL;
}
