/* relay: forwards UDP datagrams and TCP streams to an upstream address, holding every packet or
 * chunk for a fixed one-way delay in each direction. The bench puts it between a VPN client and
 * its server to give the path a round-trip time, because this kernel has no netem.
 *
 *   relay [-d ONE_WAY_MS] [-b GATHER_US] [-u LISTEN=UPSTREAM]... [-t LISTEN=UPSTREAM]...
 *         addresses are IPv4 ADDR:PORT; -u relays UDP, -t relays TCP; -b: after a wakeup that
 *         found work, sleep GATHER_US so that the next one finds a batch (default 0)
 *
 * One thread, one epoll loop. The delay is the same for every packet, so release times grow with
 * arrival times and a FIFO ring per direction is a sorted queue: only its head needs a timer. UDP
 * goes through recvmmsg into ring slots and out with sendmmsg, 64 at a time; each client address
 * gets its own connected upstream socket. A TCP connection gets an upstream connection and a queue
 * of timed chunks per direction; reading stops while a queue holds RELAY_TCP_MAX_QUEUED bytes, so
 * TCP backpressure crosses the relay. With -d 0 nothing waits for a timer.
 *
 * What a relay costs is mostly the kernel's: every datagram crosses the UDP stack twice. Runs of
 * datagrams of one size to one peer therefore leave as one UDP GSO message, and -b trades a little
 * delay under load (none for a lone datagram) for fewer, fuller wakeups. RELAY_NO_GSO=1 in the
 * environment turns GSO off.
 *
 * SIGUSR1 prints counters to stderr; SIGINT / SIGTERM print them and exit 0. */
#define _GNU_SOURCE
#include "relay.h"

uint64_t relay_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int relay_parse_addr(const char *s, struct sockaddr_in *sa)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof(host))
        return -EINVAL;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port <= 0 || port > 65535)
        return -EINVAL;
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
        return -EINVAL;
    return 0;
}

void relay_sockbufs(int fd)
{
    int v = RELAY_SOCKBUF;
    /* FORCE goes past net.core.[rw]mem_max when we are root; the plain one is the fallback. */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) < 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)) < 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
}

int relay_epoll_add(struct relay *r, int fd, uint32_t events, struct relay_ev *ev)
{
    struct epoll_event e = {.events = events, .data.ptr = ev};
    return epoll_ctl(r->ep, EPOLL_CTL_ADD, fd, &e) < 0 ? -errno : 0;
}

void relay_epoll_mod(struct relay *r, int fd, uint32_t events, struct relay_ev *ev)
{
    struct epoll_event e = {.events = events, .data.ptr = ev};
    epoll_ctl(r->ep, EPOLL_CTL_MOD, fd, &e);
}

/* ---------------------------------------------------------------- loop */

static void relay_flush_all(struct relay *r, uint64_t now)
{
    for (int i = 0; i < r->n_udp; i++) {
        relay_udp_flush(r, r->udp[i], &r->udp[i]->up, now);
        relay_udp_flush(r, r->udp[i], &r->udp[i]->down, now);
    }
    struct relay_tcp_conn *c = r->conns;
    while (c) {
        struct relay_tcp_conn *next = c->next;
        if (relay_tcp_flush(r, c, 0, now) == 0 && relay_tcp_flush(r, c, 1, now) == 0)
            relay_tcp_update_events(r, c);
        c = next;
    }
}

/* Arms the timer for the earliest release time still waiting, if any. */
static void relay_arm_timer(struct relay *r)
{
    uint64_t next = 0;
#define RELAY_CONSIDER(t) do { if ((t) && (!next || (t) < next)) next = (t); } while (0)
    for (int i = 0; i < r->n_udp; i++) {
        struct relay_udp_ring *qs[2] = {&r->udp[i]->up, &r->udp[i]->down};
        for (int k = 0; k < 2; k++)
            if (!qs[k]->blocked && qs[k]->head != qs[k]->tail)
                RELAY_CONSIDER(relay_ring_at(qs[k], qs[k]->head)->due_ns);
    }
    for (struct relay_tcp_conn *c = r->conns; c; c = c->next)
        for (int d = 0; d < 2; d++)
            if (c->dir[d].head && !c->dir[d].dst_wait)
                RELAY_CONSIDER(c->dir[d].head->due_ns);
#undef RELAY_CONSIDER
    if (next == r->armed_ns)
        return;
    struct itimerspec its = {0};
    if (next) {
        its.it_value.tv_sec = (time_t)(next / 1000000000u);
        its.it_value.tv_nsec = (long)(next % 1000000000u);
    }
    timerfd_settime(r->tfd, TFD_TIMER_ABSTIME, &its, NULL);
    r->armed_ns = next;
}

static void relay_print_stats(const struct relay *r)
{
    for (int i = 0; i < r->n_udp; i++) {
        const struct relay_udp *u = r->udp[i];
        fprintf(stderr,
                "relay: udp %d: sent up %llu down %llu (%llu GSO messages); dropped: queue full %llu/%llu, send error "
                "%llu/%llu, too big %llu, no session %llu\n",
                i, (unsigned long long)u->up.sent, (unsigned long long)u->down.sent,
                (unsigned long long)(u->up.gso_msgs + u->down.gso_msgs),
                (unsigned long long)u->up.dropped_full, (unsigned long long)u->down.dropped_full,
                (unsigned long long)u->up.dropped_err, (unsigned long long)u->down.dropped_err,
                (unsigned long long)u->dropped_big, (unsigned long long)u->dropped_nosession);
    }
    unsigned long long live = 0;
    for (const struct relay_tcp_conn *c = r->conns; c; c = c->next)
        live += c->bytes[0] + c->bytes[1];
    fprintf(stderr, "relay: tcp: %llu accepted, %llu bytes relayed\n",
            (unsigned long long)r->tcp_accepted, (unsigned long long)(r->tcp_bytes + live));
}

static int relay_run(struct relay *r)
{
    struct epoll_event events[RELAY_MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(r->ep, events, RELAY_MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("relay: epoll_wait");
            return 1;
        }
        uint64_t now = relay_now_ns();
        for (int i = 0; i < n; i++) {
            struct relay_ev *ev = events[i].data.ptr;
            uint32_t e = events[i].events;
            switch (ev->kind) {
            case RELAY_K_UDP_LISTEN: {
                struct relay_udp *u = ev->obj;
                if (e & EPOLLOUT)
                    relay_udp_writable(r, u, &u->down, u->fd, &u->ev, now);
                if (e & EPOLLIN)
                    relay_udp_read(r, u, u->fd, &u->up, -1, now);
                break;
            }
            case RELAY_K_UDP_UPSTREAM: {
                struct relay_udp *u = ev->obj;
                struct relay_udp_session *s = &u->sessions[ev->side];
                if (e & EPOLLOUT)
                    relay_udp_writable(r, u, &u->up, s->fd, &s->ev, now);
                if (e & (EPOLLIN | EPOLLERR))
                    relay_udp_read(r, u, s->fd, &u->down, ev->side, now);
                break;
            }
            case RELAY_K_TCP_LISTEN:
                relay_tcp_accept(r, ev->obj);
                break;
            case RELAY_K_TCP_CONN:
                relay_tcp_event(r, ev->obj, ev->side, e, now);
                break;
            case RELAY_K_TIMER: {
                uint64_t ticks;
                if (read(r->tfd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
                    perror("relay: timerfd");
                r->armed_ns = 0;
                break;
            }
            case RELAY_K_SIGNAL: {
                struct signalfd_siginfo si;
                if (read(r->sfd, &si, sizeof(si)) != sizeof(si))
                    break;
                relay_print_stats(r);
                if (si.ssi_signo != SIGUSR1)
                    return 0;
                break;
            }
            }
        }
        /* one clock read per wakeup: release what is due, then sleep until the next release */
        relay_flush_all(r, relay_now_ns());
        relay_arm_timer(r);
        if (r->batch_ns && n > 0) {
            struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)r->batch_ns};
            nanosleep(&ts, NULL);
        }
    }
}

static void relay_usage(void)
{
    fprintf(stderr, "usage: relay [-d ONE_WAY_MS] [-b GATHER_US] [-u LISTEN=UPSTREAM]... [-t LISTEN=UPSTREAM]...\n"
                    "  addresses are IPv4 ADDR:PORT; -u relays UDP, -t relays TCP\n");
}

int main(int argc, char **argv)
{
    struct relay r = {0};
    int opt;
    double delay_ms = 0;
    while ((opt = getopt(argc, argv, "b:d:u:t:h")) != -1) {
        struct sockaddr_in l, up;
        char *eq = optarg ? strchr(optarg, '=') : NULL;
        switch (opt) {
        case 'b':
            r.batch_ns = (uint64_t)strtoul(optarg, NULL, 10) * 1000u;
            break;
        case 'd':
            delay_ms = strtod(optarg, NULL);
            if (delay_ms < 0 || delay_ms > 10000) {
                relay_usage();
                return 1;
            }
            break;
        case 'u':
        case 't':
            if (!eq || (*eq = '\0', relay_parse_addr(optarg, &l) < 0) || relay_parse_addr(eq + 1, &up) < 0) {
                fprintf(stderr, "relay: bad address pair %s\n", optarg);
                return 1;
            }
            if ((opt == 'u' ? r.n_udp : r.n_tcp) >= RELAY_MAX_LISTENERS) {
                fprintf(stderr, "relay: at most %d of each\n", RELAY_MAX_LISTENERS);
                return 1;
            }
            if (opt == 'u') {
                struct relay_udp *u = calloc(1, sizeof(*u));
                if (!u)
                    return 1;
                u->listen = l;
                u->upstream = up;
                r.udp[r.n_udp++] = u;
            } else {
                struct relay_tcp *t = calloc(1, sizeof(*t));
                if (!t)
                    return 1;
                t->listen = l;
                t->upstream = up;
                r.tcp[r.n_tcp++] = t;
            }
            break;
        default:
            relay_usage();
            return opt == 'h' ? 0 : 1;
        }
    }
    if (optind != argc || r.n_udp + r.n_tcp == 0) {
        relay_usage();
        return 1;
    }
    r.delay_ns = (uint64_t)(delay_ms * 1e6);
    r.gso = getenv("RELAY_NO_GSO") == NULL;
    signal(SIGPIPE, SIG_IGN);

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGUSR1);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    r.ep = epoll_create1(EPOLL_CLOEXEC);
    r.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    r.sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (r.ep < 0 || r.tfd < 0 || r.sfd < 0) {
        perror("relay: setup");
        return 1;
    }
    r.tev = (struct relay_ev){.kind = RELAY_K_TIMER};
    r.sev = (struct relay_ev){.kind = RELAY_K_SIGNAL};
    relay_epoll_add(&r, r.tfd, EPOLLIN, &r.tev);
    relay_epoll_add(&r, r.sfd, EPOLLIN, &r.sev);
    for (int i = 0; i < r.n_udp; i++) {
        int rc = relay_udp_open(&r, r.udp[i]);
        if (rc < 0) {
            fprintf(stderr, "relay: udp listener %d: %s\n", i, strerror(-rc));
            return 1;
        }
    }
    for (int i = 0; i < r.n_tcp; i++) {
        int rc = relay_tcp_open(&r, r.tcp[i]);
        if (rc < 0) {
            fprintf(stderr, "relay: tcp listener %d: %s\n", i, strerror(-rc));
            return 1;
        }
    }
    fprintf(stderr, "relay: %d udp, %d tcp listeners, one-way delay %.3f ms\n", r.n_udp, r.n_tcp, delay_ms);
    return relay_run(&r);
}
