/* netbench: the bench's server and clients, in C so that neither side of a comparison pays for an
 * interpreter.
 *
 *   netbench serve ADDR PORT [FILE]
 *       HTTP/1.1, one request per connection, epoll:
 *         GET /hello        a 64-byte answer (latency)
 *         GET /file[?bytes=N] FILE (or its first N bytes), with sendfile (bulk download)
 *         PUT /sink[?sha256] reads Content-Length bytes, answers "BYTES SHA256HEX\n" (or "BYTES -")
 *         GET /stats        "open N accepted N\n"
 *       A connection that sends nothing is held open until the peer closes it (idle scale test).
 *   netbench latency [--socks HOST:PORT] HOST PORT COUNT
 *       COUNT sequential requests for /hello, each on a new connection (through a SOCKS5 CONNECT
 *       when --socks is given); per request, the time from connect() to the answer's first byte.
 *       Prints "n N fail N p50 MS p90 MS p99 MS mean MS max MS connected-p50 MS greeting-p50 MS
 *       rest-p50 MS": connected-p50 is the median time until the connection to the target stood
 *       (connect(), or the SOCKS reply); greeting-p50 the median of the SOCKS5 greeting's round
 *       trip (from connect() returning to the method choice; 0 without --socks), which every SOCKS5
 *       client waits for before it can ask for a target; rest-p50 the median of each request's
 *       time less its greeting.
 *   netbench greet-serve ADDR PORT
 *       The least a SOCKS5 server can do: one connection at a time, blocking, it reads the 3-byte
 *       greeting, writes the method choice and waits for the client to close.
 *   netbench greet HOST PORT COUNT
 *       COUNT sequential connections to a SOCKS5 server; per connection, the time from connect()
 *       returning to the method choice. Prints "n N fail N p50 MS p90 MS". Against greet-serve it
 *       gives the round trip itself (two wakeups over loopback); against a proxy, that plus what
 *       the proxy adds.
 *   netbench hold [--socks HOST:PORT] [--parallel K] HOST PORT COUNT
 *       Opens COUNT connections (K at a time, default 200) and keeps them open and idle. Prints
 *       "opened N failed N seconds S" once all are open or failed, then waits for standard input to
 *       close (or SIGTERM) and closes them.
 * Addresses are IPv4. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

enum {
    NB_REQ_MAX = 8192,
    NB_SINK_BUF = 1024 * 1024,
    NB_FILE_CHUNK = 4 * 1024 * 1024,
    NB_MAX_EVENTS = 256,
    NB_HOLD_TIMEOUT_S = 300,
};

static double nb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int nb_parse_addr(const char *host, const char *port, struct sockaddr_in *sa)
{
    char *end;
    long p = strtol(port, &end, 10);
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    if (*end || p <= 0 || p > 65535 || inet_pton(AF_INET, host, &sa->sin_addr) != 1)
        return -EINVAL;
    sa->sin_port = htons((uint16_t)p);
    return 0;
}

static int nb_parse_hostport(const char *s, struct sockaddr_in *sa)
{
    char buf[64];
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, s, (size_t)(colon - s));
    buf[colon - s] = '\0';
    return nb_parse_addr(buf, colon + 1, sa);
}

/* So that 10,000 connections fit: the soft limit up to the hard one. */
static void nb_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* ---------------------------------------------------------------- server */

enum nb_conn_state {
    NB_READ_REQUEST, /* also: an idle connection that never sends one */
    NB_READ_BODY,
    NB_SEND_HEAD,    /* then the file, when there is one */
    NB_SEND_FILE,
    NB_DRAIN,        /* answered and shut down for writing: wait for the peer's EOF */
};

struct nb_conn {
    int fd;
    enum nb_conn_state state;
    char req[NB_REQ_MAX];
    size_t req_len;
    char out[512];
    size_t out_len, out_off;
    int send_file; /* the file follows the head, up to file_end */
    off_t file_off;
    uint64_t file_end;
    uint64_t body_left, body_bytes;
    EVP_MD_CTX *sha;
};

struct nb_server {
    int ep, lfd, file_fd;
    uint64_t file_size;
    uint8_t *sink_buf;
    long open, accepted;
};

static void nb_conn_close(struct nb_server *s, struct nb_conn *c)
{
    close(c->fd);
    if (c->sha)
        EVP_MD_CTX_free(c->sha);
    free(c);
    s->open--;
}

static void nb_conn_want(struct nb_server *s, struct nb_conn *c, uint32_t events)
{
    struct epoll_event e = {.events = events, .data.ptr = c};
    epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &e);
}

static void nb_conn_answer(struct nb_server *s, struct nb_conn *c, const char *status, const char *body)
{
    size_t blen = strlen(body);
    int n = snprintf(c->out, sizeof(c->out),
                     "HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     status, blen, body);
    c->out_len = n > 0 && (size_t)n < sizeof(c->out) ? (size_t)n : 0;
    c->out_off = 0;
    c->state = NB_SEND_HEAD;
    nb_conn_want(s, c, EPOLLOUT);
}

static const char *nb_header(const char *req, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = strstr(req, "\r\n"); p && p[2] != '\r'; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':') {
            const char *v = p + 3 + n;
            while (*v == ' ')
                v++;
            return v;
        }
    }
    return NULL;
}

static void nb_sink_done(struct nb_server *s, struct nb_conn *c)
{
    char body[128];
    if (c->sha) {
        uint8_t md[32];
        unsigned len = 0;
        char hex[65];
        EVP_DigestFinal_ex(c->sha, md, &len);
        for (unsigned i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", md[i]);
        snprintf(body, sizeof(body), "%llu %s\n", (unsigned long long)c->body_bytes, hex);
    } else {
        snprintf(body, sizeof(body), "%llu -\n", (unsigned long long)c->body_bytes);
    }
    nb_conn_answer(s, c, "200 OK", body);
}

static void nb_sink_take(struct nb_conn *c, const uint8_t *p, size_t n)
{
    if (n > c->body_left)
        n = (size_t)c->body_left;
    if (c->sha)
        EVP_DigestUpdate(c->sha, p, n);
    c->body_left -= n;
    c->body_bytes += n;
}

/* A whole request head is in c->req: decide what to send. */
static void nb_conn_request(struct nb_server *s, struct nb_conn *c, size_t head_len)
{
    char method[8], path[256];
    if (sscanf(c->req, "%7s %255s", method, path) != 2) {
        nb_conn_answer(s, c, "400 Bad Request", "bad request\n");
        return;
    }
    if (strcmp(method, "GET") == 0 && strcmp(path, "/hello") == 0) {
        nb_conn_answer(s, c, "200 OK", "hello from the vpn2socks bench, a small answer for latency\n");
    } else if (strcmp(method, "GET") == 0 && strcmp(path, "/stats") == 0) {
        char body[96];
        snprintf(body, sizeof(body), "open %ld accepted %ld\n", s->open, s->accepted);
        nb_conn_answer(s, c, "200 OK", body);
    } else if (strcmp(method, "GET") == 0 && strncmp(path, "/file", 5) == 0 && s->file_fd >= 0) {
        const char *q = strstr(path, "?bytes=");
        c->file_end = s->file_size;
        if (q && strtoull(q + 7, NULL, 10) < s->file_size)
            c->file_end = strtoull(q + 7, NULL, 10);
        int n = snprintf(c->out, sizeof(c->out),
                         "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                         "Content-Length: %llu\r\nConnection: close\r\n\r\n",
                         (unsigned long long)c->file_end);
        c->out_len = (size_t)n;
        c->out_off = 0;
        c->send_file = 1;
        c->file_off = 0;
        c->state = NB_SEND_HEAD;
        nb_conn_want(s, c, EPOLLOUT);
    } else if ((strcmp(method, "PUT") == 0 || strcmp(method, "POST") == 0) &&
               strncmp(path, "/sink", 5) == 0) {
        const char *cl = nb_header(c->req, "Content-Length");
        if (!cl) {
            nb_conn_answer(s, c, "411 Length Required", "Content-Length needed\n");
            return;
        }
        c->body_left = strtoull(cl, NULL, 10);
        c->body_bytes = 0;
        if (strstr(path, "sha256")) {
            c->sha = EVP_MD_CTX_new();
            if (c->sha)
                EVP_DigestInit_ex(c->sha, EVP_sha256(), NULL);
        }
        const char *expect = nb_header(c->req, "Expect");
        if (expect && strncasecmp(expect, "100-continue", 12) == 0) {
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            /* the socket's send buffer is empty at this point: a short write cannot happen */
            if (write(c->fd, cont, sizeof(cont) - 1) < 0) {
                nb_conn_close(s, c);
                return;
            }
        }
        nb_sink_take(c, (const uint8_t *)c->req + head_len, c->req_len - head_len);
        c->state = NB_READ_BODY;
        if (c->body_left == 0)
            nb_sink_done(s, c);
    } else {
        nb_conn_answer(s, c, "404 Not Found", "not found\n");
    }
}

static void nb_conn_readable(struct nb_server *s, struct nb_conn *c)
{
    for (;;) {
        ssize_t n;
        if (c->state == NB_READ_REQUEST) {
            n = read(c->fd, c->req + c->req_len, sizeof(c->req) - 1 - c->req_len);
            if (n > 0) {
                c->req_len += (size_t)n;
                c->req[c->req_len] = '\0';
                char *end = strstr(c->req, "\r\n\r\n");
                if (end) {
                    nb_conn_request(s, c, (size_t)(end + 4 - c->req));
                    return;
                }
                if (c->req_len == sizeof(c->req) - 1) {
                    nb_conn_close(s, c);
                    return;
                }
                continue;
            }
        } else if (c->state == NB_READ_BODY) {
            n = read(c->fd, s->sink_buf, NB_SINK_BUF);
            if (n > 0) {
                nb_sink_take(c, s->sink_buf, (size_t)n);
                if (c->body_left == 0) {
                    nb_sink_done(s, c);
                    return;
                }
                continue;
            }
        } else { /* NB_DRAIN, or anything unexpected */
            n = read(c->fd, s->sink_buf, NB_SINK_BUF);
            if (n > 0)
                continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        nb_conn_close(s, c); /* EOF or error */
        return;
    }
}

static void nb_conn_writable(struct nb_server *s, struct nb_conn *c)
{
    while (c->state == NB_SEND_HEAD && c->out_off < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            nb_conn_close(s, c);
            return;
        }
        c->out_off += (size_t)n;
    }
    if (c->state == NB_SEND_HEAD && c->send_file)
        c->state = NB_SEND_FILE;
    while (c->state == NB_SEND_FILE && (uint64_t)c->file_off < c->file_end) {
        size_t left = (size_t)(c->file_end - (uint64_t)c->file_off);
        ssize_t n = sendfile(c->fd, s->file_fd, &c->file_off, left < NB_FILE_CHUNK ? left : NB_FILE_CHUNK);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            nb_conn_close(s, c);
            return;
        }
        if (n == 0)
            break;
    }
    shutdown(c->fd, SHUT_WR);
    c->state = NB_DRAIN;
    nb_conn_want(s, c, EPOLLIN);
}

static void nb_server_accept(struct nb_server *s)
{
    for (;;) {
        int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                fprintf(stderr, "netbench serve: accept: %s\n", strerror(errno));
            return;
        }
        struct nb_conn *c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->fd = fd;
        c->state = NB_READ_REQUEST;
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &e) < 0) {
            close(fd);
            free(c);
            continue;
        }
        s->open++;
        s->accepted++;
    }
}

static int nb_serve(int argc, char **argv)
{
    struct nb_server s = {.file_fd = -1};
    struct sockaddr_in sa;
    if (argc < 2 || argc > 3 || nb_parse_addr(argv[0], argv[1], &sa) < 0) {
        fprintf(stderr, "usage: netbench serve ADDR PORT [FILE]\n");
        return 1;
    }
    if (argc == 3) {
        struct stat st;
        s.file_fd = open(argv[2], O_RDONLY | O_CLOEXEC);
        if (s.file_fd < 0 || fstat(s.file_fd, &st) < 0) {
            perror(argv[2]);
            return 1;
        }
        s.file_size = (uint64_t)st.st_size;
    }
    nb_raise_nofile();
    s.sink_buf = malloc(NB_SINK_BUF);
    s.ep = epoll_create1(EPOLL_CLOEXEC);
    s.lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(s.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (!s.sink_buf || s.ep < 0 || s.lfd < 0 || bind(s.lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(s.lfd, 65535) < 0) {
        perror("netbench serve");
        return 1;
    }
    struct epoll_event le = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(s.ep, EPOLL_CTL_ADD, s.lfd, &le);
    fprintf(stderr, "netbench: serving on %s:%s\n", argv[0], argv[1]);
    struct epoll_event events[NB_MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(s.ep, events, NB_MAX_EVENTS, -1);
        if (n < 0 && errno != EINTR) {
            perror("epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            struct nb_conn *c = events[i].data.ptr;
            if (!c) {
                nb_server_accept(&s);
                continue;
            }
            /* a connection closed earlier in this batch cannot appear again: each fd once */
            if (events[i].events & EPOLLOUT)
                nb_conn_writable(&s, c);
            else if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                nb_conn_readable(&s, c);
        }
    }
}

/* ---------------------------------------------------------------- SOCKS5 */

/* The SOCKS5 request for CONNECT to an IPv4 address: 10 bytes. */
static void nb_socks_request(uint8_t out[10], const struct sockaddr_in *target)
{
    out[0] = 5; /* version */
    out[1] = 1; /* CONNECT */
    out[2] = 0;
    out[3] = 1; /* IPv4 */
    memcpy(out + 4, &target->sin_addr, 4);
    memcpy(out + 8, &target->sin_port, 2);
}

static int nb_read_full(int fd, uint8_t *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return 0;
}

/* ---------------------------------------------------------------- latency */

static int nb_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One request: connect (through SOCKS when proxy is set), GET /hello, time to the first byte in
 * seconds, then the rest of the answer. Returns a negative value on failure. *connected: when the
 * connection to the target stood (connect() returned, or the SOCKS reply came), from the start;
 * *greet_s: how long the answer to the SOCKS5 greeting took (0 without a proxy). */
static double nb_one_request(const struct sockaddr_in *proxy, const struct sockaddr_in *target,
                             double *connected, double *greet_s)
{
    static const char get[] = "GET /hello HTTP/1.1\r\nHost: bench\r\nUser-Agent: netbench\r\n\r\n";
    double t0 = nb_now(), ttfb = -1;
    uint8_t buf[4096];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    const struct sockaddr_in *first = proxy ? proxy : target;
    *greet_s = 0;
    if (connect(fd, (const struct sockaddr *)first, sizeof(*first)) < 0)
        goto out;
    if (proxy) {
        /* as a client like curl does it: greeting, method choice, request, reply */
        static const uint8_t greeting[3] = {5, 1, 0};
        uint8_t req[10], rep[10];
        nb_socks_request(req, target);
        double tg = nb_now();
        if (write(fd, greeting, 3) != 3 || nb_read_full(fd, rep, 2) < 0 || rep[0] != 5 || rep[1] != 0)
            goto out;
        *greet_s = nb_now() - tg;
        if (write(fd, req, 10) != 10 || nb_read_full(fd, rep, 10) < 0 || rep[1] != 0 || rep[3] != 1)
            goto out;
    }
    *connected = nb_now() - t0;
    if (write(fd, get, sizeof(get) - 1) != (ssize_t)(sizeof(get) - 1))
        goto out;
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0)
        goto out;
    double t1 = nb_now();
    int ok = n >= 12 && memcmp(buf, "HTTP/1.1 200", 12) == 0;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        ;
    if (ok && n == 0)
        ttfb = t1 - t0;
out:
    close(fd);
    return ttfb;
}

static int nb_latency(int argc, char **argv)
{
    struct sockaddr_in proxy, target;
    int use_proxy = 0;
    if (argc >= 2 && strcmp(argv[0], "--socks") == 0) {
        if (nb_parse_hostport(argv[1], &proxy) < 0)
            goto usage;
        use_proxy = 1;
        argc -= 2;
        argv += 2;
    }
    if (argc != 3 || nb_parse_addr(argv[0], argv[1], &target) < 0)
        goto usage;
    long count = strtol(argv[2], NULL, 10);
    if (count <= 0)
        goto usage;
    double *t = calloc((size_t)count, sizeof(double));
    double *hs = calloc((size_t)count, sizeof(double));
    double *gs = calloc((size_t)count, sizeof(double));
    double *rest = calloc((size_t)count, sizeof(double));
    if (!t || !hs || !gs || !rest)
        return 1;
    double h = 0, g = 0;
    /* a few unmeasured requests first: ARP, route and allocator warm-up on both sides */
    for (int i = 0; i < 10; i++)
        nb_one_request(use_proxy ? &proxy : NULL, &target, &h, &g);
    long ok = 0, fail = 0;
    double sum = 0;
    for (long i = 0; i < count; i++) {
        double d = nb_one_request(use_proxy ? &proxy : NULL, &target, &h, &g);
        if (d < 0) {
            fail++;
            continue;
        }
        hs[ok] = h;
        gs[ok] = g;
        rest[ok] = d - g;
        t[ok++] = d;
        sum += d;
    }
    if (ok == 0) {
        printf("n 0 fail %ld\n", fail);
        return 1;
    }
    qsort(t, (size_t)ok, sizeof(double), nb_cmp_double);
    qsort(hs, (size_t)ok, sizeof(double), nb_cmp_double);
    qsort(gs, (size_t)ok, sizeof(double), nb_cmp_double);
    qsort(rest, (size_t)ok, sizeof(double), nb_cmp_double);
#define NB_PCT(a, p) ((a)[(long)((double)(ok - 1) * (p) + 0.5)] * 1e3)
    printf("n %ld fail %ld p50 %.3f p90 %.3f p99 %.3f mean %.3f max %.3f", ok, fail, NB_PCT(t, 0.50),
           NB_PCT(t, 0.90), NB_PCT(t, 0.99), sum / (double)ok * 1e3, t[ok - 1] * 1e3);
    printf(" connected-p50 %.3f greeting-p50 %.3f rest-p50 %.3f\n", NB_PCT(hs, 0.50), NB_PCT(gs, 0.50),
           NB_PCT(rest, 0.50));
#undef NB_PCT
    free(t);
    free(hs);
    free(gs);
    free(rest);
    return fail ? 1 : 0;
usage:
    fprintf(stderr, "usage: netbench latency [--socks HOST:PORT] HOST PORT COUNT\n");
    return 1;
}

/* ---------------------------------------------------------------- greet, greet-serve */

static int nb_greet_serve(int argc, char **argv)
{
    struct sockaddr_in sa;
    if (argc != 2 || nb_parse_addr(argv[0], argv[1], &sa) < 0) {
        fprintf(stderr, "usage: netbench greet-serve ADDR PORT\n");
        return 1;
    }
    int one = 1, ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(ls, (const struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(ls, 128) < 0) {
        perror("netbench greet-serve");
        return 1;
    }
    for (;;) {
        int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        uint8_t buf[64];
        static const uint8_t choice[2] = {5, 0};
        if (nb_read_full(fd, buf, 3) == 0 && write(fd, choice, 2) == 2)
            while (read(fd, buf, sizeof(buf)) > 0)
                ;
        close(fd);
    }
}

static int nb_greet(int argc, char **argv)
{
    struct sockaddr_in sa;
    long count = argc == 3 ? strtol(argv[2], NULL, 10) : 0;
    if (count <= 0 || nb_parse_addr(argv[0], argv[1], &sa) < 0) {
        fprintf(stderr, "usage: netbench greet HOST PORT COUNT\n");
        return 1;
    }
    double *t = calloc((size_t)count, sizeof(double));
    if (!t)
        return 1;
    long ok = 0, fail = 0;
    for (long i = 0; i < count; i++) {
        static const uint8_t greeting[3] = {5, 1, 0};
        uint8_t rep[2];
        int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
            connect(fd, (const struct sockaddr *)&sa, sizeof(sa)) < 0) {
            fail++;
            if (fd >= 0)
                close(fd);
            continue;
        }
        double t0 = nb_now();
        if (write(fd, greeting, 3) == 3 && nb_read_full(fd, rep, 2) == 0 && rep[0] == 5 && rep[1] == 0)
            t[ok++] = nb_now() - t0;
        else
            fail++;
        close(fd);
    }
    if (ok == 0) {
        printf("n 0 fail %ld\n", fail);
        free(t);
        return 1;
    }
    qsort(t, (size_t)ok, sizeof(double), nb_cmp_double);
    printf("n %ld fail %ld p50 %.3f p90 %.3f\n", ok, fail, t[(ok - 1) / 2] * 1e3, t[(ok - 1) * 9 / 10] * 1e3);
    free(t);
    return fail ? 1 : 0;
}

/* ---------------------------------------------------------------- hold */

enum nb_hold_state {
    NB_H_CONNECTING,
    NB_H_METHOD,   /* greeting sent, waiting for the method choice */
    NB_H_REPLY,    /* request sent, waiting for the 10-byte reply */
    NB_H_OPEN,
    NB_H_FAILED,
};

struct nb_hold_conn {
    int fd;
    enum nb_hold_state state;
    uint8_t got;
    uint8_t buf[10];
};

struct nb_hold {
    int ep;
    int use_proxy;
    struct sockaddr_in proxy, target;
    struct nb_hold_conn *conns;
    long count, started, open, failed, inflight;
};

static void nb_hold_fail(struct nb_hold *h, struct nb_hold_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->state = NB_H_FAILED;
    h->failed++;
    h->inflight--;
}

static void nb_hold_opened(struct nb_hold *h, struct nb_hold_conn *c)
{
    c->state = NB_H_OPEN;
    h->open++;
    h->inflight--;
    /* idle from now on: no events wanted (EPOLLHUP/ERR are still reported, and counted) */
    struct epoll_event e = {.events = 0, .data.ptr = c};
    epoll_ctl(h->ep, EPOLL_CTL_MOD, c->fd, &e);
}

static void nb_hold_start(struct nb_hold *h)
{
    struct nb_hold_conn *c = &h->conns[h->started++];
    h->inflight++;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        fprintf(stderr, "netbench hold: socket: %s\n", strerror(errno));
        nb_hold_fail(h, c);
        return;
    }
    const struct sockaddr_in *to = h->use_proxy ? &h->proxy : &h->target;
    if (connect(c->fd, (const struct sockaddr *)to, sizeof(*to)) < 0 && errno != EINPROGRESS) {
        nb_hold_fail(h, c);
        return;
    }
    c->state = NB_H_CONNECTING;
    struct epoll_event e = {.events = EPOLLOUT, .data.ptr = c};
    epoll_ctl(h->ep, EPOLL_CTL_ADD, c->fd, &e);
}

static void nb_hold_event(struct nb_hold *h, struct nb_hold_conn *c, uint32_t events)
{
    if (c->state == NB_H_OPEN) {
        if (events & (EPOLLHUP | EPOLLERR)) { /* the far end gave up on an idle connection */
            close(c->fd);
            c->fd = -1;
            c->state = NB_H_FAILED;
            h->open--;
            h->failed++;
        }
        return;
    }
    if (c->state == NB_H_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err || (events & EPOLLERR)) {
            nb_hold_fail(h, c);
            return;
        }
        if (!h->use_proxy) {
            nb_hold_opened(h, c);
            return;
        }
        static const uint8_t greeting[3] = {5, 1, 0};
        if (write(c->fd, greeting, 3) != 3) {
            nb_hold_fail(h, c);
            return;
        }
        c->state = NB_H_METHOD;
        c->got = 0;
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(h->ep, EPOLL_CTL_MOD, c->fd, &e);
        return;
    }
    size_t want = c->state == NB_H_METHOD ? 2 : 10;
    ssize_t n = read(c->fd, c->buf + c->got, want - c->got);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n <= 0) {
        nb_hold_fail(h, c);
        return;
    }
    c->got += (uint8_t)n;
    if (c->got < want)
        return;
    if (c->state == NB_H_METHOD) {
        uint8_t req[10];
        if (c->buf[0] != 5 || c->buf[1] != 0) {
            nb_hold_fail(h, c);
            return;
        }
        nb_socks_request(req, &h->target);
        if (write(c->fd, req, 10) != 10) {
            nb_hold_fail(h, c);
            return;
        }
        c->state = NB_H_REPLY;
        c->got = 0;
        return;
    }
    if (c->buf[1] != 0) {
        nb_hold_fail(h, c);
        return;
    }
    nb_hold_opened(h, c);
}

static int nb_hold_run(int argc, char **argv)
{
    struct nb_hold h = {0};
    long parallel = 200;
    while (argc >= 2 && strncmp(argv[0], "--", 2) == 0) {
        if (strcmp(argv[0], "--socks") == 0) {
            if (nb_parse_hostport(argv[1], &h.proxy) < 0)
                goto usage;
            h.use_proxy = 1;
        } else if (strcmp(argv[0], "--parallel") == 0) {
            parallel = strtol(argv[1], NULL, 10);
        } else {
            goto usage;
        }
        argc -= 2;
        argv += 2;
    }
    if (argc != 3 || nb_parse_addr(argv[0], argv[1], &h.target) < 0 || parallel <= 0)
        goto usage;
    h.count = strtol(argv[2], NULL, 10);
    if (h.count <= 0)
        goto usage;
    nb_raise_nofile();
    h.conns = calloc((size_t)h.count, sizeof(*h.conns));
    h.ep = epoll_create1(EPOLL_CLOEXEC);
    if (!h.conns || h.ep < 0)
        return 1;
    struct epoll_event events[NB_MAX_EVENTS];
    double t0 = nb_now();
    while (h.open + h.failed < h.count) {
        while (h.started < h.count && h.inflight < parallel)
            nb_hold_start(&h);
        int n = epoll_wait(h.ep, events, NB_MAX_EVENTS, 1000);
        for (int i = 0; i < n; i++)
            nb_hold_event(&h, events[i].data.ptr, events[i].events);
        if (nb_now() - t0 > NB_HOLD_TIMEOUT_S) {
            fprintf(stderr, "netbench hold: gave up after %d s\n", NB_HOLD_TIMEOUT_S);
            break;
        }
    }
    double t1 = nb_now();
    printf("opened %ld failed %ld seconds %.3f\n", h.open, h.failed, t1 - t0);
    fflush(stdout);
    /* hold until standard input closes or a signal ends us; count idle connections that drop */
    signal(SIGTERM, SIG_DFL);
    struct pollfd pin = {.fd = 0, .events = POLLIN};
    for (;;) {
        int n = epoll_wait(h.ep, events, NB_MAX_EVENTS, 0);
        for (int i = 0; i < n; i++)
            nb_hold_event(&h, events[i].data.ptr, events[i].events);
        if (poll(&pin, 1, 200) > 0) {
            char b[64];
            if (read(0, b, sizeof(b)) <= 0)
                break;
        }
    }
    fprintf(stderr, "netbench hold: closing %ld connections (%ld failed in total)\n", h.open, h.failed);
    for (long i = 0; i < h.count; i++)
        if (h.conns[i].fd >= 0 && h.conns[i].state != NB_H_FAILED)
            close(h.conns[i].fd);
    free(h.conns);
    return 0;
usage:
    fprintf(stderr, "usage: netbench hold [--socks HOST:PORT] [--parallel K] HOST PORT COUNT\n");
    return 1;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 2 && strcmp(argv[1], "serve") == 0)
        return nb_serve(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "latency") == 0)
        return nb_latency(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "hold") == 0)
        return nb_hold_run(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "greet") == 0)
        return nb_greet(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "greet-serve") == 0)
        return nb_greet_serve(argc - 2, argv + 2);
    fprintf(stderr, "usage: netbench serve|latency|hold|greet|greet-serve ... (see the comment at the top of "
                    "netbench.c)\n");
    return 1;
}
