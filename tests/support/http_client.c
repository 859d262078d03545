#define _GNU_SOURCE /* strcasestr */
#include "http_client.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_MS 10000L

/* A growing, NUL-terminated byte buffer. */
typedef struct {
    char *p;
    size_t len, cap;
    bool failed;
} sbuf;

static void sbuf_add(sbuf *b, const void *data, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* Hands the buffer's bytes over (an empty string when none). */
static char *sbuf_take(sbuf *b)
{
    if (b->p == NULL || b->failed) {
        free(b->p);
        memset(b, 0, sizeof *b);
        return calloc(1, 1);
    }
    char *p = b->p;
    memset(b, 0, sizeof *b);
    return p;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    sbuf_add(arg, data, size * n);
    return ((sbuf *)arg)->failed ? 0 : size * n;
}

/* libcurl reports the header lines of every answer it reads (a "100
 * Continue" first, say): a status line starts the block over. */
static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    sbuf *b = arg;
    if (size * n >= 5 && strncmp(data, "HTTP/", 5) == 0)
        b->len = 0;
    sbuf_add(b, data, size * n);
    return b->failed ? 0 : size * n;
}

/* Notes that bytes of the request went out. libcurl resends a request
 * whose reused connection died before any answer on a fresh connection,
 * so a failed connect does not prove that nothing was sent. */
static int on_debug(CURL *h, curl_infotype type, char *data, size_t size,
                    void *arg)
{
    (void)h;
    (void)data;
    (void)size;
    if (type == CURLINFO_HEADER_OUT || type == CURLINFO_DATA_OUT)
        *(bool *)arg = true;
    return 0;
}

int jv_http_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

void jv_http_global_fini(void)
{
    curl_global_cleanup();
}

int jv_http_client_init(jv_http_client *c, const char *base_url)
{
    memset(c, 0, sizeof *c);
    size_t n = strlen(base_url);
    while (n > 0 && base_url[n - 1] == '/')
        n--;
    if (n >= sizeof c->base)
        return -1;
    memcpy(c->base, base_url, n);
    c->base[n] = '\0';
    c->timeout_ms = DEFAULT_TIMEOUT_MS;
    c->curl = curl_easy_init();
    return c->curl ? 0 : -1;
}

void jv_http_client_fini(jv_http_client *c)
{
    if (c->curl)
        curl_easy_cleanup(c->curl);
    c->curl = NULL;
}

static void resp_finish(jv_http_resp *r, sbuf *body, sbuf *head)
{
    r->body_len = body->failed ? 0 : body->len;
    r->body = sbuf_take(body);
    r->headers = sbuf_take(head);
    if (r->status != 0 && r->body_len > 0)
        r->json = json_loadb(r->body, r->body_len, JSON_DECODE_ANY, NULL);
}

int jv_http_do(jv_http_client *c, const char *method, const char *path,
               const char *bearer, const char *body, size_t len,
               jv_http_resp *r)
{
    CURL *h = c->curl;
    sbuf rb = {0}, hb = {0};
    struct curl_slist *hdrs = NULL;
    char url[8192], auth[1024];
    memset(r, 0, sizeof *r);
    if ((size_t)snprintf(url, sizeof url, "%s%s", c->base, path) >=
        sizeof url) {
        snprintf(r->error, sizeof r->error, "URL too long");
        resp_finish(r, &rb, &hb);
        return -1;
    }
    /* A reset keeps the connection cache: the next request reuses the
     * kept-alive connection. */
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &rb);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &hb);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    if (body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    }
    /* Every body goes at once, without waiting for "100 Continue". */
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (bearer != NULL) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", bearer);
        hdrs = curl_slist_append(hdrs, auth);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    bool sent = false;
    curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
    curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, on_debug);
    curl_easy_setopt(h, CURLOPT_DEBUGDATA, &sent);
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(hdrs);
    r->transport = (int)rc;
    if (rc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    } else {
        snprintf(r->error, sizeof r->error, "%s", curl_easy_strerror(rc));
        r->not_sent = rc == CURLE_COULDNT_CONNECT && !sent;
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    resp_finish(r, &rb, &hb);
    return rc == CURLE_OK ? 0 : -1;
}

int jv_http_json(jv_http_client *c, const char *method, const char *path,
                 const char *bearer, const json_t *body, jv_http_resp *r)
{
    if (body == NULL)
        return jv_http_do(c, method, path, bearer, NULL, 0, r);
    char *text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text == NULL) {
        memset(r, 0, sizeof *r);
        snprintf(r->error, sizeof r->error, "cannot encode the body");
        r->body = calloc(1, 1);
        r->headers = calloc(1, 1);
        return -1;
    }
    int rc = jv_http_do(c, method, path, bearer, text, strlen(text), r);
    free(text);
    return rc;
}

/* -- raw requests --------------------------------------------------------- */

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "http://HOST:PORT" (IPv4 only: test nodes listen on 127.0.0.1). */
static int parse_base(const char *base, struct sockaddr_in *sa)
{
    char host[64];
    unsigned port;
    const char *p = strncmp(base, "http://", 7) == 0 ? base + 7 : base;
    const char *colon = strrchr(p, ':');
    if (colon == NULL || (size_t)(colon - p) >= sizeof host)
        return -1;
    memcpy(host, p, (size_t)(colon - p));
    host[colon - p] = '\0';
    if (sscanf(colon + 1, "%u", &port) != 1 || port == 0 || port > 65535)
        return -1;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

/* Where the header block of the answer in b ends (after the blank line),
 * or 0 when it has not all arrived. */
static size_t head_end(const sbuf *b)
{
    const char *e = b->p ? strstr(b->p, "\r\n\r\n") : NULL;
    return e ? (size_t)(e - b->p) + 4 : 0;
}

int jv_http_raw(const char *base_url, const void *req, size_t len,
                int timeout_ms, jv_http_resp *r)
{
    struct sockaddr_in sa;
    sbuf in = {0}, body = {0}, head = {0};
    long long deadline = mono_ms() + timeout_ms;
    int fd = -1, ret = -1;
    memset(r, 0, sizeof *r);
    if (parse_base(base_url, &sa) != 0) {
        snprintf(r->error, sizeof r->error, "bad base URL %s", base_url);
        goto out;
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        snprintf(r->error, sizeof r->error, "connect: %s", strerror(errno));
        r->not_sent = true;
        goto out;
    }
    /* Send everything (the server may answer and close early: then what
     * it answered is read below). */
    for (size_t off = 0; off < len;) {
        ssize_t n = send(fd, (const char *)req + off, len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    size_t hend = 0, want = (size_t)-1;
    for (;;) {
        long long left = deadline - mono_ms();
        if (left <= 0) {
            snprintf(r->error, sizeof r->error, "timed out");
            break;
        }
        struct pollfd p = {fd, POLLIN, 0};
        int k = poll(&p, 1, (int)left);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            continue;
        char tmp[4096];
        ssize_t n = recv(fd, tmp, sizeof tmp, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* closed (or reset) by the server */
        sbuf_add(&in, tmp, (size_t)n);
        if (!hend && (hend = head_end(&in)) != 0) {
            const char *cl = strcasestr(in.p, "\r\ncontent-length:");
            if (cl != NULL && cl < in.p + hend)
                want = hend + strtoul(cl + 17, NULL, 10);
        }
        if (hend && in.len >= want)
            break;
    }
    hend = head_end(&in);
    int status = 0;
    if (hend && sscanf(in.p, "HTTP/1.%*d %d", &status) == 1) {
        r->status = status;
        r->error[0] = '\0';
        /* The header lines, without the status line. */
        const char *first = strstr(in.p, "\r\n") + 2;
        sbuf_add(&head, first, (size_t)(in.p + hend - first));
        size_t blen = in.len - hend;
        if (want != (size_t)-1 && blen > want - hend)
            blen = want - hend;
        sbuf_add(&body, in.p + hend, blen);
        ret = 0;
    } else if (!r->error[0]) {
        snprintf(r->error, sizeof r->error, "no HTTP answer");
    }
out:
    if (fd >= 0)
        close(fd);
    free(in.p);
    resp_finish(r, &body, &head);
    return ret;
}

const char *jv_http_resp_header(const jv_http_resp *r, const char *name,
                                char *out, size_t outlen)
{
    size_t n = strlen(name);
    const char *line = r->headers;
    while (line != NULL && *line) {
        const char *end = strstr(line, "\r\n");
        size_t ll = end ? (size_t)(end - line) : strlen(line);
        if (ll > n && line[n] == ':' && strncasecmp(line, name, n) == 0) {
            const char *v = line + n + 1, *ve = line + ll;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            if ((size_t)(ve - v) >= outlen)
                return NULL;
            memcpy(out, v, (size_t)(ve - v));
            out[ve - v] = '\0';
            return out;
        }
        line = end ? end + 2 : NULL;
    }
    return NULL;
}

void jv_http_resp_fini(jv_http_resp *r)
{
    free(r->body);
    free(r->headers);
    if (r->json)
        json_decref(r->json);
    memset(r, 0, sizeof *r);
}

char *jv_http_escape(const char *s, size_t n, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = malloc(3 * n + 1), *o = out;
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
            (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' ||
            ch == '~' || (ch == '/' && keep_slash)) {
            *o++ = (char)ch;
        } else {
            *o++ = '%';
            *o++ = hex[ch >> 4];
            *o++ = hex[ch & 15];
        }
    }
    *o = '\0';
    return out;
}
