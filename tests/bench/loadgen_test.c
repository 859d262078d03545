/*
 * loadgen_test.c - bench/loadgen.c against a server of this test whose
 * answers are slow, fast, or cut: the figures clients_bench.sh prints are
 * only as good as the generator's accounting.
 *
 *   - a server slower than the schedule: every request due is sent and
 *     answered, and latency counts from when each was due (a generator
 *     timing from the send would see the server's 20 ms);
 *   - a fast server: as many answers as requests due, at send latency;
 *   - a connection cut after three answers: the request in flight is an
 *     error (and, being a write, unsure), the rest of the window's
 *     requests are errors too, none is lost from the count; the same for
 *     a connection closed while idle, with nothing in flight;
 *   - closed loop: one request at a time, back to back;
 *   - the requests carry the method, path, token and body asked for.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stddef.h>
#include <cmocka.h>

typedef struct {
    int lfd, port;
    unsigned delay_ms;   /* before each answer */
    unsigned cut_after;  /* close a connection after this many; 0: never */
    unsigned idle_after; /* ... the same, right after answering the last */
    pthread_t thread, conn_threads[16];
    atomic_uint posts, gets, bad, conns;
} server;

typedef struct {
    server *s;
    int fd;
} conn_arg;

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* One request from fd into buf: 1, or 0 at end of stream. */
static int read_request(int fd, char *buf, size_t cap, size_t *have)
{
    for (;;) {
        buf[*have] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end) {
            size_t head = (size_t)(end - buf) + 4;
            char *cl = strstr(buf, "Content-Length: ");
            size_t body = cl && cl < end ? strtoul(cl + 16, NULL, 10) : 0;
            if (*have >= head + body)
                return (int)(head + body);
        }
        if (*have + 1 >= cap)
            return 0;
        ssize_t n = read(fd, buf + *have, cap - 1 - *have);
        if (n <= 0)
            return 0;
        *have += (size_t)n;
    }
}

static void *serve_conn(void *p)
{
    conn_arg *a = p;
    server *s = a->s;
    char buf[8192];
    size_t have = 0;
    unsigned answered = 0;
    int len;
    while ((len = read_request(a->fd, buf, sizeof buf, &have)) > 0) {
        char saved = buf[len];
        buf[len] = '\0';
        if (strncmp(buf, "POST /w HTTP/1.1\r\n", 18) == 0 &&
            strstr(buf, "Authorization: Bearer tok\r\n") &&
            strstr(buf, "\r\n\r\n{\"by\":1}"))
            atomic_fetch_add(&s->posts, 1);
        else if (strncmp(buf, "GET /r HTTP/1.1\r\n", 17) == 0 &&
                 strstr(buf, "Authorization: Bearer tok\r\n"))
            atomic_fetch_add(&s->gets, 1);
        else
            atomic_fetch_add(&s->bad, 1);
        buf[len] = saved;
        memmove(buf, buf + len, have - (size_t)len);
        have -= (size_t)len;
        if (s->cut_after && answered == s->cut_after)
            break;
        if (s->delay_ms)
            sleep_ms(s->delay_ms);
        static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                                 "\r\nok";
        if (write(a->fd, ok, sizeof ok - 1) != (ssize_t)(sizeof ok - 1))
            break;
        answered++;
        if (s->idle_after && answered == s->idle_after)
            break;
    }
    close(a->fd);
    free(a);
    return NULL;
}

static void *serve(void *p)
{
    server *s = p;
    for (;;) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            return NULL;
        unsigned i = atomic_load(&s->conns);
        conn_arg *a = malloc(sizeof *a);
        if (i == 16 || !a) {
            free(a);
            close(fd);
            continue;
        }
        *a = (conn_arg){s, fd};
        if (pthread_create(&s->conn_threads[i], NULL, serve_conn, a) != 0) {
            free(a);
            close(fd);
            continue;
        }
        atomic_fetch_add(&s->conns, 1);
    }
}

static void server_start(server *s, unsigned delay_ms, unsigned cut_after,
                         unsigned idle_after)
{
    memset(s, 0, sizeof *s);
    s->delay_ms = delay_ms;
    s->cut_after = cut_after;
    s->idle_after = idle_after;
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->lfd, 64), 0);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &alen), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void server_stop(server *s)
{
    shutdown(s->lfd, SHUT_RDWR);
    pthread_join(s->thread, NULL);
    close(s->lfd);
    /* loadgen has exited: its connections are closed, so these end. */
    for (unsigned i = 0; i < atomic_load(&s->conns); i++)
        pthread_join(s->conn_threads[i], NULL);
}

typedef struct {
    unsigned long wok, wbad, rok, rbad, err, unsure;
    double p50, p99, p999, rps;
} figures;

/* Runs loadgen against s with the arguments given; its last line. */
static figures run(server *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static figures run(server *s, const char *fmt, ...)
{
    const char *dir = getenv("JV_BIN_DIR");
    char args[512], cmd[1024], line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd,
             "%s/loadgen http://127.0.0.1:%d --auth tok --read-path /r "
             "--write-path /w --seed 7 %s",
             dir ? dir : ".", s->port, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    figures f;
    int got = 0;
    while (fgets(line, sizeof line, p)) {
        fputs(line, stdout);
        if (sscanf(line, "loadgen: %lu %lu %lu %lu %lu %lu %lf %lf %lf %lf",
                   &f.wok, &f.wbad, &f.rok, &f.rbad, &f.err, &f.unsure, &f.p50,
                   &f.p99, &f.p999, &f.rps) == 10)
            got = 1;
    }
    assert_int_equal(pclose(p), 0);
    assert_true(got);
    return f;
}

static void test_slow_server_is_charged(void **state)
{
    (void)state;
    server s;
    server_start(&s, 20, 0, 0);
    /* 100 requests due over 1 s, answered one per 20 ms: the k-th is
     * answered about 10 k ms after it was due. */
    figures f = run(&s, "--conns 1 --rate 100 --secs 1 --writes 0");
    server_stop(&s);
    assert_int_equal(f.rok, 100);
    assert_int_equal(f.wok + f.wbad + f.rbad + f.err + f.unsure, 0);
    assert_int_equal(atomic_load(&s.gets), 100);
    assert_true(f.p50 > 300);
    assert_true(f.p99 > 800);
}

static void test_fast_server(void **state)
{
    (void)state;
    server s;
    server_start(&s, 0, 0, 0);
    figures f = run(&s, "--conns 4 --rate 100 --secs 1 --writes 50");
    server_stop(&s);
    assert_int_equal(f.wok + f.rok, 400);
    assert_int_equal(f.wbad + f.rbad + f.err + f.unsure, 0);
    assert_int_equal(atomic_load(&s.posts), f.wok);
    assert_int_equal(atomic_load(&s.gets), f.rok);
    assert_int_equal(atomic_load(&s.bad), 0);
    assert_int_equal(atomic_load(&s.conns), 4);
    /* Both kinds were drawn (400 draws at even odds). */
    assert_true(f.wok > 100 && f.rok > 100);
    /* Answered at once: nothing near a 10 ms period is charged. */
    assert_true(f.p50 < 100);
}

static void test_cut_connection(void **state)
{
    (void)state;
    server s;
    server_start(&s, 0, 3, 0);
    figures f = run(&s, "--conns 1 --rate 100 --secs 1 --writes 100");
    server_stop(&s);
    /* Three answered; the fourth sent and cut (perhaps applied); the 96
     * left in the window never sent. */
    assert_int_equal(f.wok, 3);
    assert_int_equal(f.unsure, 1);
    assert_int_equal(f.err, 97);
    assert_int_equal(f.rok + f.wbad + f.rbad, 0);
    assert_int_equal(atomic_load(&s.posts), 4);
}

static void test_idle_close(void **state)
{
    (void)state;
    server s;
    server_start(&s, 0, 0, 3);
    figures f = run(&s, "--conns 1 --rate 100 --secs 1 --writes 100");
    server_stop(&s);
    /* Closed while idle, its fourth request scheduled: that one and the
     * 96 after it are unanswered, none of them sent. */
    assert_int_equal(f.wok, 3);
    assert_int_equal(f.unsure, 0);
    assert_int_equal(f.err, 97);
    assert_int_equal(atomic_load(&s.posts), 3);
}

static void test_closed_loop(void **state)
{
    (void)state;
    server s;
    server_start(&s, 10, 0, 0);
    figures f = run(&s, "--conns 1 --rate 0 --secs 1 --writes 0");
    server_stop(&s);
    /* One at a time, each answered in 10 ms or more. */
    assert_true(f.rok >= 20 && f.rok <= 101);
    assert_int_equal(atomic_load(&s.gets), f.rok);
    assert_true(f.p50 >= 10);
    assert_int_equal(f.err, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slow_server_is_charged),
        cmocka_unit_test(test_fast_server),
        cmocka_unit_test(test_cut_connection),
        cmocka_unit_test(test_idle_close),
        cmocka_unit_test(test_closed_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
