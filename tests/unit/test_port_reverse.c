/* Listening in the tunnel (stack/tcp_listen.c) and the -R forward on it (port/reverse.c): the real
 * stack and lwIP behind the fake tunnel of harness_tun.h, the test playing the VPN side's TCP by
 * hand, and plain loopback sockets as the services the forward reaches. A SYN to a forwarded
 * port is accepted and bytes go both ways; what the peer sends before the bridge starts is held,
 * not lost, and not acknowledged beyond the window it was offered; a SYN to another port is reset;
 * a closed listener resets new SYNs while its connection keeps relaying; a destination that
 * refuses resets the tunnel side with a log line; the cap resets one connection too many; a
 * listener on an address stays there when the tunnel's address changes, one on every address
 * follows it; a SYN flood holds at most the backlog; and no handle is left. SOCKS5 BIND listens
 * the same way, and is tested here too. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "base/bytes.h"
#include "base/conn_limit.h"
#include "base/log.h"
#include "harness_tun.h"
#include "port/reverse.h"
#include "route/direct.h"
#include "route/outbound.h"
#include "route/router.h"
#include "socks/server.h"
#include "stack/stack.h"
#include "stack/tcp.h"
#include "stack/tcp_internal.h" /* rtt_us */
#include "test.h"
#include "tunnel/settings.h"
#include "uvtest.h"

enum {
    RP_MAX_SEGS = 512,
    RP_PEER_ISN = 5000000,
    RP_RCV_SCALE = 7, /* the stack's TCP_RCV_SCALE (lwipopts.h) */
};

/* A segment the stack sent toward the VPN. */
struct rp_seg {
    uint32_t src, dst; /* IPv4, network order as bytes */
    uint16_t sport, dport;
    uint8_t flags;
    uint32_t seq, ack;
    uint16_t wnd;
    size_t n; /* payload bytes */
};

struct rp {
    struct harness_tun tun;
    struct v2s_addr us, peer;
    struct rp_seg segs[RP_MAX_SEGS];
    size_t n_segs;
    /* Payload the stack sent, in order, per peer port (the test's connections use ports
     * 40000 + i, i < 8). */
    uint8_t rx[8][8192];
    size_t n_rx[8];
    uint32_t rx_next[8]; /* the next sequence number expected; 0: not known yet */
    int closed;
};

static void rp_send_cb(struct harness_tun *t, const uint8_t *pkt, size_t len)
{
    struct rp *r = t->arg;
    if (len < 40 || pkt[0] != 0x45 || pkt[9] != 6 || r->n_segs == RP_MAX_SEGS)
        return;
    const uint8_t *tcp = pkt + 20;
    size_t doff = (size_t)(tcp[12] >> 4) * 4;
    struct rp_seg *s = &r->segs[r->n_segs++];
    memcpy(&s->src, pkt + 12, 4);
    memcpy(&s->dst, pkt + 16, 4);
    s->sport = v2s_get_be16(tcp);
    s->dport = v2s_get_be16(tcp + 2);
    s->seq = v2s_get_be32(tcp + 4);
    s->ack = v2s_get_be32(tcp + 8);
    s->flags = tcp[13];
    s->wnd = v2s_get_be16(tcp + 14);
    s->n = len - 20 - doff;
    unsigned i = (unsigned)(s->dport - 40000);
    if (i < 8) {
        if (s->flags & 0x02)
            r->rx_next[i] = s->seq + 1;
        else if (s->n && s->seq == r->rx_next[i] && r->n_rx[i] + s->n <= sizeof(r->rx[i])) {
            memcpy(r->rx[i] + r->n_rx[i], tcp + doff, s->n);
            r->n_rx[i] += s->n;
            r->rx_next[i] += (uint32_t)s->n;
        }
    }
}

/* The last segment the stack sent to peer port pport (from us:uport, 0: any) with all of flags
 * set, or NULL. */
static const struct rp_seg *rp_last(const struct rp *r, uint16_t pport, uint16_t uport, uint8_t flags)
{
    for (size_t i = r->n_segs; i-- > 0;) {
        const struct rp_seg *s = &r->segs[i];
        if (s->dport == pport && (!uport || s->sport == uport) && (s->flags & flags) == flags)
            return s;
    }
    return NULL;
}

/* One segment from the peer (peer:pport -> to:uport) into the stack; the loop is not run. */
static void rp_segment(struct rp *r, const struct v2s_addr *to, uint16_t pport, uint16_t uport, uint8_t flags,
                       uint32_t seq, uint32_t ack, const uint8_t *opts, size_t optlen, const void *data, size_t n)
{
    uint8_t pkt[2048];
    size_t len = harness_tun_tcp4(pkt, sizeof(pkt), &r->peer, pport, to, uport, flags, seq, ack, 65535, opts,
                                  optlen, data, n);
    ASSERT(len > 0);
    stack_input(r->tun.stack, pkt, len);
}

/* A SYN (MSS 1360, window scale 0 from our side, so the stack scales its windows) from peer port
 * pport; returns the SYN-ACK's sequence number + 1, or asserts there was a reset instead when
 * expect_rst. */
static uint32_t rp_syn(struct rp *r, const struct v2s_addr *to, uint16_t pport, uint16_t uport, int expect_rst)
{
    static const uint8_t opts[8] = {2, 4, 0x05, 0x50, 1, 3, 3, 0};
    size_t before = r->n_segs;
    rp_segment(r, to, pport, uport, 0x02, RP_PEER_ISN, 0, opts, sizeof(opts), NULL, 0);
    harness_tun_settle(&r->tun);
    ASSERT(r->n_segs > before);
    const struct rp_seg *s = &r->segs[r->n_segs - 1];
    ASSERT_EQ(s->dport, pport);
    if (expect_rst) {
        ASSERT_EQ(s->flags & 0x04, 0x04);
        ASSERT_EQ(s->ack, RP_PEER_ISN + 1);
        return 0;
    }
    ASSERT_EQ(s->flags, 0x12);
    ASSERT_EQ(s->ack, RP_PEER_ISN + 1);
    return s->seq + 1;
}

static void rp_up(struct rp *r)
{
    memset(r, 0, sizeof(*r));
    v2s_log_level = V2S_LOG_INFO; /* the forward's lines (each test runs in its own process) */
    const struct harness_tun_config cfg = {.addr4 = "10.8.0.2", .seed = 11};
    ASSERT_EQ(harness_tun_up(&r->tun, &cfg, rp_send_cb, r), 0);
    ASSERT_EQ(v2s_addr_parse(&r->us, "10.8.0.2"), 0);
    ASSERT_EQ(v2s_addr_parse(&r->peer, "10.9.0.1"), 0);
}

static void rp_closed(void *arg)
{
    ((struct rp *)arg)->closed++;
}

/* A forward from the tunnel's port uport (every address; listen names one otherwise) to
 * 127.0.0.1:port. */
static struct port_reverse *rp_forward(struct rp *r, const char *listen, uint16_t uport, const char *host,
                                       uint16_t port, unsigned max_conns)
{
    struct port_reverse_config cfg = {
        .loop = &r->tun.loop,
        .stack = r->tun.stack,
        .connect_timeout_ms = 3000,
        .max_conns = max_conns,
        .host = host,
        .port = port,
    };
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(uport)};
    ASSERT_EQ(inet_pton(AF_INET, listen ? listen : "0.0.0.0", &sin.sin_addr), 1);
    struct port_reverse *pr = NULL;
    ASSERT_EQ(port_reverse_new(&pr, &cfg, (const struct sockaddr *)&sin), 0);
    return pr;
}

/* Runs the loop until the stack has sent peer port i at least n payload bytes. */
static int rp_rx_has(void *arg)
{
    struct rp *r = ((struct rp **)arg)[0];
    size_t *want = ((size_t **)arg)[1];
    return r->n_rx[want[0]] >= want[1];
}

static void rp_wait_rx(struct rp *r, unsigned i, size_t n)
{
    size_t want[2] = {i, n};
    void *arg[2] = {r, want};
    uvtest_run_until_fn(&r->tun.loop, rp_rx_has, arg, 3000);
    ASSERT_EQ(r->n_rx[i], n);
}

/* rp_up, and a service on loopback for forwards to reach: its listener, its port in *port. */
static int rp_up_service(struct rp *r, uint16_t *port)
{
    rp_up(r);
    return uvtest_listen(port);
}

/* Closes the service's listener l and takes the tunnel down (harness_tun_down: nothing left). */
static void rp_down(struct rp *r, int l)
{
    close(l);
    ASSERT_EQ(harness_tun_down(&r->tun), 0);
}

/* Runs the loop n rounds of at most 1 ms, for what is under way to finish. */
static void rp_spin(struct rp *r, int n)
{
    for (int i = 0; i < n; i++)
        uvtest_run_until(&r->tun.loop, &r->closed, 1);
}

/* Runs the loop (1000 rounds at most) until the stack has sent peer port pport, from us:uport, a
 * segment with all of flags set; returns the last such, or NULL. */
static const struct rp_seg *rp_wait_seg(struct rp *r, uint16_t pport, uint16_t uport, uint8_t flags)
{
    for (int i = 0; i < 1000 && !rp_last(r, pport, uport, flags); i++)
        uvtest_run_until(&r->tun.loop, &r->closed, 1);
    return rp_last(r, pport, uport, flags);
}

/* The service's side of the forward's next connection, accepted on its listener l. */
static int rp_accept(struct rp *r, int l)
{
    int svc = uvtest_accept(&r->tun.loop, l, 3000);
    ASSERT(svc >= 0);
    return svc;
}

/* A bare ACK from the peer (peer:pport -> us:uport) at sequence number seq. */
static void rp_ack(struct rp *r, uint16_t pport, uint16_t uport, uint32_t seq, uint32_t ack)
{
    rp_segment(r, &r->us, pport, uport, 0x10, seq, ack, NULL, 0, NULL, 0);
}

/* A connection from peer port pport to us:uport: the handshake, then the peer's first segment
 * (flags, with n bytes of data); returns the acknowledgement number the peer sends. */
static uint32_t rp_open(struct rp *r, uint16_t pport, uint16_t uport, uint8_t flags, const void *data, size_t n)
{
    uint32_t ack = rp_syn(r, &r->us, pport, uport, 0);
    rp_segment(r, &r->us, pport, uport, flags, RP_PEER_ISN + 1, ack, NULL, 0, data, n);
    return ack;
}

TEST_IMPL(port_reverse_relay)
{
    static struct rp r;
    uint8_t buf[64];
    int end;
    uint16_t port;
    int l = rp_up_service(&r, &port);
    struct port_reverse *pr = rp_forward(&r, NULL, 8022, "127.0.0.1", port, 0);

    /* The handshake, then data and the peer's FIN in the same loop iteration: the forward's
     * connect to the service has not completed, so the bridge has not started. */
    uint32_t ack = rp_syn(&r, &r.us, 40000, 8022, 0);
    uvtest_log_begin();
    rp_ack(&r, 40000, 8022, RP_PEER_ISN + 1, ack);
    rp_segment(&r, &r.us, 40000, 8022, 0x18, RP_PEER_ISN + 1, ack, NULL, 0, "hello ", 6);
    rp_segment(&r, &r.us, 40000, 8022, 0x18, RP_PEER_ISN + 7, ack, NULL, 0, "tunnel", 6);
    int svc = rp_accept(&r, l);
    ASSERT_EQ(uvtest_recv(&r.tun.loop, svc, buf, 12, &end, 3000), 12);
    ASSERT_MEM_EQ(buf, "hello tunnel", 12);

    /* The other way, then the service half-closes: the peer gets the bytes and a FIN. */
    uvtest_send(&r.tun.loop, svc, "from the laptop", 15);
    rp_wait_rx(&r, 0, 15);
    ASSERT_MEM_EQ(r.rx[0], "from the laptop", 15);
    shutdown(svc, SHUT_WR);
    const struct rp_seg *fin = rp_wait_seg(&r, 40000, 8022, 0x01);
    ASSERT(fin != NULL);
    /* The peer acknowledges, sends one more line and its own FIN: the service reads both. */
    rp_segment(&r, &r.us, 40000, 8022, 0x19, RP_PEER_ISN + 13, fin->seq + 1, NULL, 0, "bye", 3);
    harness_tun_settle(&r.tun);
    ASSERT_EQ(uvtest_recv(&r.tun.loop, svc, buf, 3, &end, 3000), 3);
    ASSERT_MEM_EQ(buf, "bye", 3);
    ASSERT_EQ(uvtest_wait_end(&r.tun.loop, svc, NULL, 3000), 1);
    close(svc);
    rp_spin(&r, 200);
    const char *log = uvtest_log_end();
    ASSERT(strstr(log, "10.9.0.1:40000 -> 127.0.0.1:") != NULL);
    ASSERT(strstr(log, "(remote forward *:8022) open") != NULL);
    ASSERT(strstr(log, "(remote forward *:8022) closed (15 bytes up, 15 down)") != NULL);

    port_reverse_close(pr, rp_closed, &r);
    uvtest_run_until(&r.tun.loop, &r.closed, 1000);
    ASSERT_EQ(r.closed, 1);
    rp_down(&r, l);
    return 0;
}

/* Nothing listens: lwIP answers a SYN with a reset, and so does a closed listener, while the
 * connection it accepted keeps relaying. */
TEST_IMPL(port_reverse_close_with_relay)
{
    static struct rp r;
    uint8_t buf[64];
    int end;
    uint16_t port;
    int l = rp_up_service(&r, &port);
    rp_syn(&r, &r.us, 40001, 8023, 1); /* no listener yet */
    struct port_reverse *pr = rp_forward(&r, NULL, 8022, "127.0.0.1", port, 0);
    rp_syn(&r, &r.us, 40001, 8023, 1); /* another port */

    uint32_t ack = rp_open(&r, 40000, 8022, 0x10, NULL, 0);
    harness_tun_settle(&r.tun);
    int svc = rp_accept(&r, l);
    uvtest_send(&r.tun.loop, svc, "one", 3);
    rp_wait_rx(&r, 0, 3);

    port_reverse_close(pr, rp_closed, &r);
    harness_tun_settle(&r.tun);
    rp_syn(&r, &r.us, 40002, 8022, 1);
    ASSERT_EQ(r.closed, 0); /* its relay goes on */
    rp_segment(&r, &r.us, 40000, 8022, 0x18, RP_PEER_ISN + 1, ack + 3, NULL, 0, "still", 5);
    harness_tun_settle(&r.tun);
    ASSERT_EQ(uvtest_recv(&r.tun.loop, svc, buf, 5, &end, 3000), 5);
    ASSERT_MEM_EQ(buf, "still", 5);
    uvtest_send(&r.tun.loop, svc, "two", 3);
    rp_wait_rx(&r, 0, 6);
    ASSERT_MEM_EQ(r.rx[0], "onetwo", 6);
    /* And a listener opens again on the same port while that connection is open. */
    struct port_reverse *again = rp_forward(&r, NULL, 8022, "127.0.0.1", port, 0);
    port_reverse_close(again, rp_closed, &r);
    ASSERT_EQ(r.closed, 1);

    /* The service resets: so does the tunnel side, and the closed forward is freed. */
    struct linger lg = {1, 0};
    setsockopt(svc, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(svc);
    for (int i = 0; i < 3000 && r.closed < 2; i++)
        uvtest_run_until(&r.tun.loop, &r.closed, 1);
    ASSERT_EQ(r.closed, 2);
    ASSERT(rp_last(&r, 40000, 8022, 0x04) != NULL);
    rp_down(&r, l);
    return 0;
}

/* A destination that refuses: the tunnel side is reset and one line names the forward. One
 * connection past the cap is reset too, and the cap says so. */
TEST_IMPL(port_reverse_refused)
{
    static struct rp r;
    rp_up(&r);
    uvtest_log_begin();
    struct port_reverse *pr = rp_forward(&r, NULL, 8022, "localhost", uvtest_closed_port(), 1);
    uint32_t ack = rp_syn(&r, &r.us, 40000, 8022, 0);
    uint32_t ack2 = rp_syn(&r, &r.us, 40001, 8022, 0);
    /* Both handshakes complete in one loop iteration, so the first is still resolving when the
     * second one arrives, over the cap of 1. */
    rp_segment(&r, &r.us, 40000, 8022, 0x18, RP_PEER_ISN + 1, ack, NULL, 0, "x", 1);
    rp_ack(&r, 40001, 8022, RP_PEER_ISN + 1, ack2);
    harness_tun_settle(&r.tun);
    ASSERT(rp_last(&r, 40001, 8022, 0x04) != NULL);
    for (int i = 0; i < 3000 && !rp_last(&r, 40000, 8022, 0x04); i++)
        uvtest_run_until(&r.tun.loop, &r.closed, 1);
    ASSERT(rp_last(&r, 40000, 8022, 0x04) != NULL);
    const char *log = uvtest_log_end();
    ASSERT(strstr(log, "10.9.0.1:40000 -> localhost:") != NULL);
    ASSERT(strstr(log, "connection refused (remote forward *:8022, connection reset)") != NULL);
    ASSERT(strstr(log, "remote forward *:8022: 1 connections, its cap (--listener-max-connections)") != NULL);
    port_reverse_close(pr, rp_closed, &r);
    uvtest_run_until(&r.tun.loop, &r.closed, 1000);
    ASSERT_EQ(r.closed, 1);
    ASSERT_EQ(harness_tun_down(&r.tun), 0);
    return 0;
}

/* The stack alone: a connection accepted and bridged only much later. What the peer sent meanwhile
 * (more than fits one window update, and its FIN) waits in the stack and reaches the application
 * whole; the windows the stack announced never offered more than its starting budget. */
struct held {
    struct rp r;
    struct stack_tcp *c;
    int accepted;
    struct harness_tun_app app;
};

static int held_accept(void *arg, struct stack_tcp *c)
{
    struct held *h = arg;
    h->c = c;
    h->accepted++;
    return 0;
}

static void held_done(void *arg, int reset, uint64_t up, uint64_t down)
{
    struct held *h = arg;
    h->app.done = 1 + reset;
    (void)up;
    (void)down;
}

TEST_IMPL(stack_listen_held_until_bridged)
{
    static struct held h;
    struct rp *r = &h.r;
    rp_up(r);
    memset(&h.app, 0, sizeof(h.app));
    struct stack_tcp_listener *lst;
    ASSERT_EQ(stack_tcp_listen(r->tun.stack, &r->us, 9000, held_accept, &h, &lst), 0);
    uint32_t ack = rp_syn(r, &r->us, 40000, 9000, 0);
    const struct rp_seg *synack = rp_last(r, 40000, 9000, 0x12);
    ASSERT(synack->wnd <= 0xFFFF);
    rp_segment(r, &r->us, 40000, 9000, 0x10, RP_PEER_ISN + 1, ack, NULL, 0, NULL, 0);
    harness_tun_settle(&r->tun);
    ASSERT_EQ(h.accepted, 1);
    struct v2s_addr a;
    uint16_t p;
    stack_tcp_remote(h.c, &a, &p);
    ASSERT(v2s_addr_equal(&a, &r->peer) && p == 40000);

    /* 100 segments of 1,000 bytes over a second, no application yet: every ACK offers at most the
     * 128 KiB budget, the right edge never moves past it, and nothing is refused. */
    static uint8_t data[100000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 7 + i / 251);
    uint32_t seq = RP_PEER_ISN + 1;
    for (size_t off = 0; off < sizeof(data); off += 1000, seq += 1000) {
        rp_segment(r, &r->us, 40000, 9000, 0x18, seq, ack, NULL, 0, data + off, 1000);
        harness_tun_advance(&r->tun, 10);
    }
    rp_segment(r, &r->us, 40000, 9000, 0x11, seq, ack, NULL, 0, NULL, 0);
    harness_tun_advance(&r->tun, 200);
    uint32_t edge_max = 0;
    for (size_t i = 0; i < r->n_segs; i++) {
        const struct rp_seg *s = &r->segs[i];
        if (s->dport != 40000 || (s->flags & 0x02))
            continue;
        uint32_t edge = s->ack + ((uint32_t)s->wnd << RP_RCV_SCALE) - (RP_PEER_ISN + 1);
        if (edge > edge_max)
            edge_max = edge;
    }
    ASSERT(edge_max >= sizeof(data));
    ASSERT(edge_max <= 128 * 1024);
    const struct rp_seg *last = rp_last(r, 40000, 9000, 0x10);
    ASSERT_EQ(last->ack, seq + 1); /* everything and the FIN acknowledged */

    /* Now the application: it gets every byte, then the FIN. */
    ASSERT_EQ(harness_tun_app_open(&r->tun, &h.app), 0);
    stack_tcp_bridge_start(h.c, h.app.accepted, NULL, 0, "held", held_done, &h);
    uv_os_fd_t fd;
    ASSERT_EQ(uv_fileno((uv_handle_t *)&h.app.client, &fd), 0);
    static uint8_t got[sizeof(data)];
    int end;
    ASSERT_EQ(uvtest_recv(&r->tun.loop, fd, got, sizeof(got), &end, 3000), sizeof(got));
    ASSERT_MEM_EQ(got, data, sizeof(data));
    ASSERT_EQ(uvtest_wait_end(&r->tun.loop, fd, NULL, 3000), 1);
    /* The window opened again as the application took the bytes (its answer carries it). */
    ASSERT_EQ(write(fd, "ok", 2), 2);
    rp_wait_rx(r, 0, 2);
    last = rp_last(r, 40000, 9000, 0x18);
    ASSERT(last->ack + ((uint32_t)last->wnd << RP_RCV_SCALE) - (RP_PEER_ISN + 1) > edge_max);

    stack_tcp_listen_close(lst);
    harness_tun_app_close(&h.app);
    ASSERT_EQ(harness_tun_down(&r->tun), 0);
    ASSERT(h.app.done != 0);
    harness_tun_app_free(&h.app);
    return 0;
}

/* A listener on 10.8.0.2 stays there when the tunnel comes back as 10.8.0.3 (and accepts again
 * once it is 10.8.0.2 again); one on every address listens on the new one. A connection refused
 * from the accept callback is reset. */
static int refuse_accept(void *arg, struct stack_tcp *c)
{
    (void)c;
    (*(int *)arg)++;
    return UV_EBUSY;
}

static void rp_tunnel_as(struct rp *r, const char *addr)
{
    struct tunnel_settings ts;
    tunnel_settings_init(&ts);
    ASSERT_EQ(v2s_addr_parse(&ts.addr4, addr), 0);
    ts.prefix4 = 24;
    ts.mtu = 1400;
    stack_tunnel_down(r->tun.stack);
    ASSERT_EQ(stack_tunnel_up(r->tun.stack, &ts), 0);
    tunnel_settings_free(&ts);
}

TEST_IMPL(stack_listen_address_change)
{
    static struct held h;
    struct rp *r = &h.r;
    rp_up(r);
    int refused = 0;
    struct stack_tcp_listener *one, *every;
    ASSERT_EQ(stack_tcp_listen(r->tun.stack, &r->us, 9000, held_accept, &h, &one), 0);
    ASSERT_EQ(stack_tcp_listen(r->tun.stack, NULL, 9001, refuse_accept, &refused, &every), 0);
    ASSERT_EQ(stack_tcp_listen(r->tun.stack, &r->us, 9000, held_accept, &h, &(struct stack_tcp_listener *){0}),
              UV_EADDRINUSE);

    struct v2s_addr other;
    ASSERT_EQ(v2s_addr_parse(&other, "10.8.0.3"), 0);
    rp_tunnel_as(r, "10.8.0.3");
    rp_syn(r, &other, 40000, 9000, 1);
    uint32_t ack = rp_syn(r, &other, 40001, 9001, 0);
    rp_segment(r, &other, 40001, 9001, 0x10, RP_PEER_ISN + 1, ack, NULL, 0, NULL, 0);
    harness_tun_settle(&r->tun);
    ASSERT_EQ(refused, 1);
    ASSERT(rp_last(r, 40001, 9001, 0x04) != NULL);

    rp_tunnel_as(r, "10.8.0.2");
    ack = rp_syn(r, &r->us, 40002, 9000, 0);
    rp_segment(r, &r->us, 40002, 9000, 0x10, RP_PEER_ISN + 1, ack, NULL, 0, NULL, 0);
    harness_tun_settle(&r->tun);
    ASSERT_EQ(h.accepted, 1);
    stack_tcp_cancel(h.c);
    harness_tun_settle(&r->tun);
    ASSERT(rp_last(r, 40002, 9000, 0x04) != NULL);

    stack_tcp_listen_close(one);
    stack_tcp_listen_close(every);
    ASSERT_EQ(harness_tun_down(&r->tun), 0);
    return 0;
}

/* A SYN flood: 100 SYNs from forged ports, none of them completing. The listener answers as many
 * as its backlog of half-open handshakes (64), drops the rest unanswered, and once lwIP gives the
 * half-open ones up (20 s) a new SYN is answered again. */
TEST_IMPL(stack_listen_syn_backlog)
{
    static struct held h;
    struct rp *r = &h.r;
    rp_up(r);
    struct stack_tcp_listener *lst;
    ASSERT_EQ(stack_tcp_listen(r->tun.stack, NULL, 9000, held_accept, &h, &lst), 0);
    static const uint8_t mss[4] = {2, 4, 0x05, 0x50};
    for (uint16_t i = 0; i < 100; i++)
        rp_segment(r, &r->us, (uint16_t)(20000 + i), 9000, 0x02, RP_PEER_ISN, 0, mss, sizeof(mss), NULL, 0);
    harness_tun_settle(&r->tun);
    unsigned synacks = 0, answered_late = 0;
    for (size_t i = 0; i < r->n_segs; i++) {
        if (r->segs[i].flags == 0x12) {
            synacks++;
            answered_late += r->segs[i].dport >= 20064;
        }
    }
    ASSERT_EQ(synacks, 64);
    ASSERT_EQ(answered_late, 0);
    harness_tun_advance(&r->tun, 21000);
    r->n_segs = 0;
    uint32_t ack = rp_syn(r, &r->us, 40000, 9000, 0);
    rp_segment(r, &r->us, 40000, 9000, 0x10, RP_PEER_ISN + 1, ack, NULL, 0, NULL, 0);
    harness_tun_settle(&r->tun);
    ASSERT_EQ(h.accepted, 1);
    stack_tcp_cancel(h.c);
    stack_tcp_listen_close(lst);
    ASSERT_EQ(harness_tun_down(&r->tun), 0);
    return 0;
}

/* A peer whose SYN announces an MSS of 1 byte: lwIP took it, and what the application sent back
 * left one byte a segment (CVE-2019-11479's cost). It is raised to the floor of 48, as Linux
 * does: every segment but the last carries 48 bytes, and the bytes arrive in order. */
TEST_IMPL(stack_listen_mss_floor)
{
    static struct held h;
    struct rp *r = &h.r;
    rp_up(r);
    memset(&h.app, 0, sizeof(h.app));
    struct stack_tcp_listener *lst;
    ASSERT_EQ(stack_tcp_listen(r->tun.stack, &r->us, 9000, held_accept, &h, &lst), 0);
    static const uint8_t opts[8] = {2, 4, 0, 1, 1, 3, 3, 0};
    rp_segment(r, &r->us, 40000, 9000, 0x02, RP_PEER_ISN, 0, opts, sizeof(opts), NULL, 0);
    harness_tun_settle(&r->tun);
    const struct rp_seg *synack = rp_last(r, 40000, 9000, 0x12);
    ASSERT(synack != NULL);
    uint32_t ack = synack->seq + 1;
    rp_ack(r, 40000, 9000, RP_PEER_ISN + 1, ack);
    harness_tun_settle(&r->tun);
    ASSERT_EQ(h.accepted, 1);
    ASSERT_EQ(harness_tun_app_open(&r->tun, &h.app), 0);
    stack_tcp_bridge_start(h.c, h.app.accepted, NULL, 0, "held", held_done, &h);

    enum { N = 400 };
    static uint8_t data[N];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 7 + i / 251);
    uv_os_fd_t fd;
    ASSERT_EQ(uv_fileno((uv_handle_t *)&h.app.client, &fd), 0);
    ASSERT_EQ(write(fd, data, sizeof(data)), (ssize_t)sizeof(data));
    for (int i = 0; i < 1000 && r->n_rx[0] < N; i++) {
        harness_tun_advance(&r->tun, 5);
        rp_ack(r, 40000, 9000, RP_PEER_ISN + 1, r->rx_next[0]);
    }
    ASSERT_EQ(r->n_rx[0], N);
    ASSERT_MEM_EQ(r->rx[0], data, N);
    size_t segs = 0, shorter = 0;
    for (size_t i = 0; i < r->n_segs; i++) {
        if (r->segs[i].dport == 40000 && r->segs[i].n > 0) {
            segs++;
            shorter += r->segs[i].n < 48;
        }
    }
    ASSERT(shorter <= 1);
    ASSERT(segs <= (N + 47) / 48);

    stack_tcp_listen_close(lst);
    harness_tun_app_close(&h.app);
    ASSERT_EQ(harness_tun_down(&r->tun), 0);
    ASSERT(h.app.done != 0);
    harness_tun_app_free(&h.app);
    return 0;
}

/* The handshake's round trip of an accepted connection, in microseconds (stack/tcp_listen.c): from
 * the SYN-ACK to the ACK that completes the handshake, as tcp_budget.c needs it to hold a short
 * path's window at the tunnel's room. None (0) when the SYN-ACK went more than once, whether the
 * peer repeated its SYN or lwIP's timer resent it: the ACK may answer either copy (Karn). */
static struct stack_tcp *rtt_accept(struct held *h, uint16_t pport, uint32_t wait_ms, int repeat_syn)
{
    struct rp *r = &h->r;
    static const uint8_t opts[8] = {2, 4, 0x05, 0x50, 1, 3, 3, 0};
    int before = h->accepted;
    size_t synacks = 0;
    uint32_t ack = rp_syn(r, &r->us, pport, 9000, 0);
    if (repeat_syn) {
        harness_tun_advance(&r->tun, wait_ms / 2);
        rp_segment(r, &r->us, pport, 9000, 0x02, RP_PEER_ISN, 0, opts, sizeof(opts), NULL, 0);
        harness_tun_settle(&r->tun);
        harness_tun_advance(&r->tun, wait_ms - wait_ms / 2);
    } else {
        harness_tun_advance(&r->tun, wait_ms);
    }
    for (size_t i = 0; i < r->n_segs; i++)
        synacks += r->segs[i].dport == pport && r->segs[i].flags == 0x12;
    ASSERT_EQ(synacks, repeat_syn || wait_ms > 3000 ? 2 : 1);
    rp_ack(r, pport, 9000, RP_PEER_ISN + 1, ack);
    harness_tun_settle(&r->tun);
    ASSERT_EQ(h->accepted, before + 1);
    return h->c;
}

TEST_IMPL(stack_listen_handshake_rtt)
{
    static struct held h;
    struct rp *r = &h.r;
    rp_up(r);
    struct stack_tcp_listener *lst;
    ASSERT_EQ(stack_tcp_listen(r->tun.stack, &r->us, 9000, held_accept, &h, &lst), 0);
    /* The test's clock moves in milliseconds: the sample is the wait, to the microsecond. */
    static const struct {
        uint16_t port;
        uint32_t wait_ms;
        int repeat_syn;
        uint32_t want_us;
    } cases[] = {
        {40000, 7, 0, 7000},
        {40001, 250, 0, 250000},
        {40002, 20, 1, 0},   /* the peer repeated its SYN, so the SYN-ACK went twice: no sample */
        {40003, 3500, 0, 0}, /* lwIP's retransmission timer resent the SYN-ACK (after 3 s): none */
        {40004, 2, 0, 2000}, /* and the next handshake is timed again */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct stack_tcp *c = rtt_accept(&h, cases[i].port, cases[i].wait_ms, cases[i].repeat_syn);
        ASSERT_EQ(c->rtt_us, cases[i].want_us);
        stack_tcp_cancel(c);
    }
    stack_tcp_listen_close(lst);
    ASSERT_EQ(harness_tun_down(&r->tun), 0);
    return 0;
}

/* The peer resets before the forward has reached the service: the service's connection, once
 * made, is reset too, and the relay logged as closed by reset. */
TEST_IMPL(port_reverse_reset_before_bridge)
{
    static struct rp r;
    uint16_t port;
    int l = rp_up_service(&r, &port);
    uvtest_log_begin();
    struct port_reverse *pr = rp_forward(&r, NULL, 8022, "127.0.0.1", port, 0);
    rp_open(&r, 40000, 8022, 0x18, "lost", 4);
    rp_segment(&r, &r.us, 40000, 8022, 0x04, RP_PEER_ISN + 5, 0, NULL, 0, NULL, 0);
    int svc = rp_accept(&r, l);
    ASSERT_EQ(uvtest_wait_end(&r.tun.loop, svc, NULL, 3000), -ECONNRESET);
    close(svc);
    rp_spin(&r, 200);
    const char *log = uvtest_log_end();
    ASSERT(strstr(log, "(remote forward *:8022) closed by reset (0 bytes up, 0 down)") != NULL);
    port_reverse_close(pr, rp_closed, &r);
    ASSERT_EQ(r.closed, 1);
    rp_down(&r, l);
    return 0;
}

/* A request-then-answer peer (`printf req | nc -N`): its request and FIN arrive together, before
 * the forward has reached the service. The service reads the request and the end of it, only then
 * answers and closes: the peer gets the whole answer and a FIN, and the relay ends cleanly. Then
 * the other way round: a service that greets, writes a burst and closes at once (before the peer
 * said anything) loses none of it. Regression guards. */
TEST_IMPL(port_reverse_half_close_early)
{
    static struct rp r;
    static uint8_t burst[6000];
    uint8_t buf[64];
    int end;
    uint16_t port;
    int l = rp_up_service(&r, &port);
    uvtest_log_begin();
    struct port_reverse *pr = rp_forward(&r, NULL, 8022, "127.0.0.1", port, 0);

    rp_open(&r, 40000, 8022, 0x19, "GET /", 5);
    int svc = rp_accept(&r, l);
    ASSERT_EQ(uvtest_recv(&r.tun.loop, svc, buf, sizeof(buf), &end, 3000), 5);
    ASSERT_MEM_EQ(buf, "GET /", 5);
    ASSERT_EQ(end, 1);
    uvtest_send(&r.tun.loop, svc, "200 OK", 6);
    close(svc);
    const struct rp_seg *fin = rp_wait_seg(&r, 40000, 8022, 0x01);
    ASSERT(fin != NULL);
    ASSERT(rp_last(&r, 40000, 8022, 0x04) == NULL);
    ASSERT_EQ(r.n_rx[0], 6);
    ASSERT_MEM_EQ(r.rx[0], "200 OK", 6);
    ASSERT_EQ(fin->ack, RP_PEER_ISN + 7); /* the request and its FIN */
    rp_ack(&r, 40000, 8022, RP_PEER_ISN + 7, fin->seq + 1);
    rp_spin(&r, 200);

    /* The service speaks first and closes at once. */
    for (size_t i = 0; i < sizeof(burst); i++)
        burst[i] = (uint8_t)(i * 13 + 1);
    rp_open(&r, 40001, 8022, 0x10, NULL, 0);
    svc = rp_accept(&r, l);
    uvtest_send(&r.tun.loop, svc, burst, sizeof(burst));
    close(svc);
    /* The peer acknowledges what it got (the stack's first window is a few segments). */
    for (int i = 0; i < 1000 && !rp_last(&r, 40001, 8022, 0x01); i++) {
        if (r.n_rx[1])
            rp_ack(&r, 40001, 8022, RP_PEER_ISN + 1, r.rx_next[1]);
        uvtest_run_until(&r.tun.loop, &r.closed, 1);
    }
    fin = rp_last(&r, 40001, 8022, 0x01);
    ASSERT(fin != NULL);
    ASSERT(rp_last(&r, 40001, 8022, 0x04) == NULL);
    ASSERT_EQ(r.n_rx[1], sizeof(burst));
    ASSERT_MEM_EQ(r.rx[1], burst, sizeof(burst));
    rp_segment(&r, &r.us, 40001, 8022, 0x11, RP_PEER_ISN + 1, fin->seq + 1, NULL, 0, NULL, 0);
    rp_spin(&r, 200);
    const char *log = uvtest_log_end();
    ASSERT(strstr(log, "(remote forward *:8022) closed (5 bytes up, 6 down)") != NULL);
    ASSERT(strstr(log, "(remote forward *:8022) closed (0 bytes up, 6000 down)") != NULL);
    port_reverse_close(pr, rp_closed, &r);
    ASSERT_EQ(r.closed, 1);
    rp_down(&r, l);
    return 0;
}

/* The service does not answer within the connect timeout (here 0: the timer fires before the
 * connect can complete): the tunnel side is reset, the line says "timed out", and the forward
 * closes with nothing left (ASan: the connect's callback runs after the timeout closed it). A
 * close while connections are still opening resets them as well. Regression guards. */
TEST_IMPL(port_reverse_connect_timeout)
{
    static struct rp r;
    uint16_t port;
    int l = rp_up_service(&r, &port);
    struct port_reverse_config cfg = {
        .loop = &r.tun.loop,
        .stack = r.tun.stack,
        .connect_timeout_ms = 0,
        .host = "127.0.0.1",
        .port = port,
    };
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(8022)};
    struct port_reverse *pr = NULL;
    ASSERT_EQ(port_reverse_new(&pr, &cfg, (const struct sockaddr *)&sin), 0);
    uvtest_log_begin();
    uint32_t ack = rp_open(&r, 40000, 8022, 0x18, "x", 1);
    rp_wait_seg(&r, 40000, 8022, 0x04);
    ASSERT(rp_last(&r, 40000, 8022, 0x04) != NULL);
    const char *log = uvtest_log_end();
    ASSERT(strstr(log, "connection timed out (remote forward *:8022, connection reset)") != NULL);
    port_reverse_close(pr, rp_closed, &r);
    uvtest_run_until(&r.tun.loop, &r.closed, 1000);
    ASSERT_EQ(r.closed, 1);

    /* Connections still opening when the forward closes: reset, and the forward freed once their
     * handles are closed. One by name (resolving), one by address (connecting). */
    pr = rp_forward(&r, NULL, 8023, "localhost", port, 0);
    struct port_reverse *pr2 = rp_forward(&r, NULL, 8024, "127.0.0.1", port, 0);
    ack = rp_syn(&r, &r.us, 40001, 8023, 0);
    uint32_t ack2 = rp_syn(&r, &r.us, 40002, 8024, 0);
    rp_ack(&r, 40001, 8023, RP_PEER_ISN + 1, ack);
    rp_ack(&r, 40002, 8024, RP_PEER_ISN + 1, ack2);
    port_reverse_close(pr, rp_closed, &r);
    port_reverse_close(pr2, rp_closed, &r);
    for (int i = 0; i < 3000 && r.closed < 3; i++)
        uvtest_run_until(&r.tun.loop, &r.closed, 1);
    ASSERT_EQ(r.closed, 3);
    harness_tun_settle(&r.tun);
    ASSERT(rp_last(&r, 40001, 8023, 0x04) != NULL);
    ASSERT(rp_last(&r, 40002, 8024, 0x04) != NULL);
    rp_down(&r, l);
    return 0;
}

/* The service writes and resets at once (a crash, an abort with SO_LINGER 0): the reset and the
 * bytes reach vpn2socks together, and libuv ends such a stream with UV_EOF rather than the error
 * (uv__stream_io(): a short read and POLLHUP end it without another read). The peer must see a
 * reset, not a FIN that says the answer was complete; the relay is logged as ended by reset. */
TEST_IMPL(port_reverse_service_reset_after_data)
{
    static struct rp r;
    uint16_t port;
    int l = rp_up_service(&r, &port);
    uvtest_log_begin();
    struct port_reverse *pr = rp_forward(&r, NULL, 8022, "127.0.0.1", port, 0);
    rp_open(&r, 40000, 8022, 0x10, NULL, 0);
    int svc = rp_accept(&r, l);
    /* The bridge is up (it answered), then the service writes and resets. */
    uvtest_send(&r.tun.loop, svc, "one", 3);
    rp_wait_rx(&r, 0, 3);
    rp_ack(&r, 40000, 8022, RP_PEER_ISN + 1, r.rx_next[0]);
    harness_tun_settle(&r.tun);
    ASSERT_EQ(send(svc, "partial answ", 12, 0), 12);
    struct linger lg = {1, 0};
    ASSERT_EQ(setsockopt(svc, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    close(svc);
    for (int i = 0; i < 1000 && !rp_last(&r, 40000, 8022, 0x04) && !rp_last(&r, 40000, 8022, 0x01); i++) {
        rp_ack(&r, 40000, 8022, RP_PEER_ISN + 1, r.rx_next[0]);
        uvtest_run_until(&r.tun.loop, &r.closed, 1);
    }
    rp_spin(&r, 200);
    const char *log = uvtest_log_end();
    ASSERT(rp_last(&r, 40000, 8022, 0x01) == NULL);
    ASSERT(rp_last(&r, 40000, 8022, 0x04) != NULL);
    ASSERT(strstr(log, "(remote forward *:8022) closed by reset") != NULL);
    port_reverse_close(pr, rp_closed, &r);
    ASSERT_EQ(r.closed, 1);
    rp_down(&r, l);
    return 0;
}

/* The other order: the service answers, sends its FIN, and then closes with the peer's request
 * unread, so its kernel resets as well, all before vpn2socks reads. read() gives the answer and
 * the end (the FIN came first), and so must the relay: the peer gets the whole answer and a FIN
 * before anything else (the socket's error, EPIPE, must not turn it into a reset that could drop
 * the answer). A regression guard for v2s_eof_or_error() (base/uvstream.h); it never failed. */
TEST_IMPL(port_reverse_service_fin_then_reset)
{
    static struct rp r;
    uint16_t port;
    int l = rp_up_service(&r, &port);
    struct port_reverse *pr = rp_forward(&r, NULL, 8022, "127.0.0.1", port, 0);
    rp_open(&r, 40000, 8022, 0x18, "req", 3);
    int svc = rp_accept(&r, l);
    char peek[4];
    for (int i = 0; i < 3000 && recv(svc, peek, 3, MSG_PEEK | MSG_DONTWAIT) < 3; i++)
        uvtest_run_until(&r.tun.loop, &r.closed, 1);
    ASSERT_EQ(recv(svc, peek, 3, MSG_PEEK | MSG_DONTWAIT), 3); /* there, and left unread */
    ASSERT_EQ(send(svc, "answer", 6, 0), 6);
    ASSERT_EQ(shutdown(svc, SHUT_WR), 0);
    close(svc);
    for (int i = 0; i < 1000 && !rp_last(&r, 40000, 8022, 0x04) && !rp_last(&r, 40000, 8022, 0x01); i++)
        uvtest_run_until(&r.tun.loop, &r.closed, 1);
    const struct rp_seg *fin = rp_last(&r, 40000, 8022, 0x01);
    ASSERT(fin != NULL);
    ASSERT(rp_last(&r, 40000, 8022, 0x04) == NULL);
    ASSERT_EQ(r.n_rx[0], 6);
    ASSERT_MEM_EQ(r.rx[0], "answer", 6);
    port_reverse_close(pr, rp_closed, &r);
    rp_spin(&r, 200);
    rp_down(&r, l);
    return 0;
}

/* The tunnel goes down (an OpenVPN reconnect) while the forward is still reaching the service:
 * the service's connection, once made, is reset, the relay logged as ended by reset, and the
 * forward still takes connections once the tunnel is back. A regression guard; it never failed. */
TEST_IMPL(port_reverse_tunnel_down_opening)
{
    static struct rp r;
    uint16_t port;
    int l = rp_up_service(&r, &port);
    uvtest_log_begin();
    struct port_reverse *pr = rp_forward(&r, NULL, 8022, "127.0.0.1", port, 0);
    rp_open(&r, 40000, 8022, 0x18, "lost", 4);
    rp_tunnel_as(&r, "10.8.0.2"); /* down and up again, before the loop ran */
    int svc = rp_accept(&r, l);
    ASSERT_EQ(uvtest_wait_end(&r.tun.loop, svc, NULL, 3000), -ECONNRESET);
    close(svc);
    rp_spin(&r, 200);
    const char *log = uvtest_log_end();
    ASSERT(strstr(log, "(remote forward *:8022) closed by reset (0 bytes up, 0 down)") != NULL);
    rp_open(&r, 40001, 8022, 0x18, "again", 5);
    svc = rp_accept(&r, l);
    uint8_t buf[8];
    int end;
    ASSERT_EQ(uvtest_recv(&r.tun.loop, svc, buf, 5, &end, 3000), 5);
    ASSERT_MEM_EQ(buf, "again", 5);
    /* That relay goes on past the forward's close; the stack's close ends it, and the forward. */
    port_reverse_close(pr, rp_closed, &r);
    ASSERT_EQ(r.closed, 0);
    close(svc);
    rp_down(&r, l);
    ASSERT_EQ(r.closed, 1);
    return 0;
}

/* --- SOCKS5 BIND (socks/bind.c behind socks/server.c), which listens in the tunnel too --- */

/* A BIND request for dst:0 on a new connection to the SOCKS listener; returns the fd and the
 * first reply (10 bytes) in rep. */
static int rp_socks_bind(struct rp *r, uint16_t socks_port, const char *dst, uint8_t rep[10])
{
    int fd = uvtest_connect(socks_port);
    uint8_t req[13] = {5, 1, 0, 5, 2, 0, 1};
    struct v2s_addr a;
    ASSERT_EQ(v2s_addr_parse(&a, dst), 0);
    memcpy(req + 7, a.bytes, 4);
    uvtest_send(&r->tun.loop, fd, req, sizeof(req));
    uint8_t m[2];
    int end;
    ASSERT_EQ(uvtest_recv(&r->tun.loop, fd, m, 2, &end, 3000), 2);
    ASSERT_EQ(uvtest_recv(&r->tun.loop, fd, rep, 10, &end, 3000), 10);
    return fd;
}

/* The first reply names the tunnel's address and a random dynamic port; a connection from
 * another address than DST.ADDR is reset; the one from DST.ADDR gets the second reply naming it,
 * bytes pass both ways, and the port takes no second connection. A peer that never comes gets
 * "TTL expired" after the connect timeout; a DST.ADDR the router keeps out of the tunnel, "not
 * allowed"; SOCKS4's BIND is refused. */
TEST_IMPL(socks_bind_relay)
{
    static struct rp r;
    uint8_t rep[10], buf[64];
    int end;
    rp_up(&r);
    struct router router;
    router_init(&router);
    struct outbound *direct = NULL;
    ASSERT_EQ(direct_new(&direct, &r.tun.loop), 0);
    struct socks_server_config cfg = {
        .loop = &r.tun.loop,
        .out = direct,
        .connect_timeout_ms = 500,
        .handshake_timeout_ms = 3000,
        .stack = r.tun.stack,
        .router = &router,
    };
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct socks_server *srv = NULL;
    ASSERT_EQ(socks_server_new(&srv, &cfg, (const struct sockaddr *)&sin), 0);
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    ASSERT_EQ(socks_server_local(srv, (struct sockaddr *)&ss, &sl), 0);
    uint16_t socks_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);

    uvtest_log_begin();
    int fd = rp_socks_bind(&r, socks_port, "10.9.0.1", rep);
    ASSERT_MEM_EQ(rep, "\x05\x00\x00\x01\x0a\x08\x00\x02", 8); /* the tunnel's address */
    uint16_t port = v2s_get_be16(rep + 8);
    ASSERT(port >= 49152);
    /* From another host of the VPN: reset once its handshake completes (lwIP asks only then). */
    struct v2s_addr peer = r.peer;
    ASSERT_EQ(v2s_addr_parse(&r.peer, "10.9.0.5"), 0);
    rp_open(&r, 40001, port, 0x10, NULL, 0);
    harness_tun_settle(&r.tun);
    ASSERT(rp_last(&r, 40001, port, 0x04) != NULL);
    r.peer = peer;
    /* From DST.ADDR: the second reply, then bytes both ways. */
    uint32_t ack = rp_open(&r, 40000, port, 0x10, NULL, 0);
    rp_segment(&r, &r.us, 40000, port, 0x18, RP_PEER_ISN + 1, ack, NULL, 0, "from the server", 15);
    harness_tun_settle(&r.tun);
    ASSERT_EQ(uvtest_recv(&r.tun.loop, fd, rep, 10, &end, 3000), 10);
    ASSERT_MEM_EQ(rep, "\x05\x00\x00\x01\x0a\x09\x00\x01\x9c\x40", 10); /* 10.9.0.1:40000 */
    ASSERT_EQ(uvtest_recv(&r.tun.loop, fd, buf, 15, &end, 3000), 15);
    ASSERT_MEM_EQ(buf, "from the server", 15);
    uvtest_send(&r.tun.loop, fd, "from the client", 15);
    rp_wait_rx(&r, 0, 15);
    ASSERT_MEM_EQ(r.rx[0], "from the client", 15);
    /* The port is closed after its one connection. */
    rp_syn(&r, &r.us, 40002, port, 1);
    /* The client resets: so does the peer's side, and the relay logs its end. */
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
    for (int i = 0; i < 2000 && !rp_last(&r, 40000, port, 0x04); i++)
        uvtest_run_until(&r.tun.loop, &r.closed, 1);
    ASSERT(rp_last(&r, 40000, port, 0x04) != NULL);

    /* Nobody connects within the connect timeout. */
    fd = rp_socks_bind(&r, socks_port, "0.0.0.0", rep);
    ASSERT_EQ(rep[1], 0);
    ASSERT_EQ(uvtest_recv(&r.tun.loop, fd, rep, 10, &end, 3000), 10);
    ASSERT_EQ(rep[1], 6);
    ASSERT_EQ(uvtest_wait_end(&r.tun.loop, fd, NULL, 3000), 1);
    close(fd);
    /* An address the router sends elsewhere. */
    struct v2s_cidr ex;
    ASSERT_EQ(v2s_cidr_parse(&ex, "10.9.0.0/16", 0), 0);
    ASSERT_EQ(router_add_user(&router, &ex, ROUTER_DIRECT), 0);
    fd = rp_socks_bind(&r, socks_port, "10.9.0.1", rep);
    ASSERT_EQ(rep[1], 2);
    ASSERT_EQ(uvtest_wait_end(&r.tun.loop, fd, NULL, 3000), 1);
    close(fd);
    /* SOCKS4's BIND is refused (91), SOCKS5's is served. */
    fd = uvtest_connect(socks_port);
    uvtest_send(&r.tun.loop, fd, "\x04\x02\x00\x00\x0a\x09\x00\x01\x00", 9);
    ASSERT_EQ(uvtest_recv(&r.tun.loop, fd, rep, 8, &end, 3000), 8);
    ASSERT_EQ(rep[1], 0x5B);
    close(fd);
    const char *log = uvtest_log_end();
    ASSERT(strstr(log, "a connection from 10.9.0.5:40001 to the BIND port reset") != NULL);
    ASSERT(strstr(log, "<- 10.9.0.1:40000 (BIND, tunnel) closed by reset (15 bytes up, 15 down)") != NULL);

    int done = 0;
    socks_server_close(srv, rp_closed, &r);
    outbound_close(direct, rp_closed, &r);
    uvtest_run_until(&r.tun.loop, &done, 200);
    ASSERT_EQ(r.closed, 2);
    router_free(&router);
    ASSERT_EQ(harness_tun_down(&r.tun), 0);
    return 0;
}

/* A BIND client that half-closes while it waits (it has nothing more to send: what it sent is for
 * the peer) still gets the second reply and the peer's bytes, and the peer gets its early bytes
 * and then its FIN. Failed before the fix: the end of stream ended the BIND at once, and the
 * peer's SYN to its port was answered with a reset (rp_syn(): flags 0x14, not a SYN-ACK). */
/* A SOCKS listener on 127.0.0.1 with BIND in r's tunnel (no router: every address may connect
 * back) and a connect timeout of 3 s; returns it, its port in *port, its outbound in *direct. */
static struct socks_server *rp_socks_server(struct rp *r, struct outbound **direct, uint16_t *port)
{
    ASSERT_EQ(direct_new(direct, &r->tun.loop), 0);
    struct socks_server_config cfg = {
        .loop = &r->tun.loop,
        .out = *direct,
        .connect_timeout_ms = 3000,
        .handshake_timeout_ms = 3000,
        .stack = r->tun.stack,
    };
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct socks_server *srv = NULL;
    ASSERT_EQ(socks_server_new(&srv, &cfg, (const struct sockaddr *)&sin), 0);
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    ASSERT_EQ(socks_server_local(srv, (struct sockaddr *)&ss, &sl), 0);
    *port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return srv;
}

/* Closes what rp_socks_server() opened, after a moment for the last callbacks, and checks that
 * both close callbacks ran and the tunnel stayed up. */
static void rp_socks_server_close(struct rp *r, struct socks_server *srv, struct outbound *direct)
{
    int done = 0;
    uvtest_run_until(&r->tun.loop, &done, 100);
    socks_server_close(srv, rp_closed, r);
    outbound_close(direct, rp_closed, r);
    uvtest_run_until(&r->tun.loop, &done, 200);
    ASSERT_EQ(r->closed, 2);
    ASSERT_EQ(harness_tun_down(&r->tun), 0);
}

TEST_IMPL(socks_bind_half_close)
{
    static struct rp r;
    uint8_t rep[10], buf[64];
    int end;
    rp_up(&r);
    struct outbound *direct = NULL;
    uint16_t socks_port;
    struct socks_server *srv = rp_socks_server(&r, &direct, &socks_port);

    int fd = rp_socks_bind(&r, socks_port, "10.9.0.1", rep);
    ASSERT_EQ(rep[1], 0);
    uint16_t port = v2s_get_be16(rep + 8);
    uvtest_send(&r.tun.loop, fd, "early", 5);
    ASSERT_EQ(shutdown(fd, SHUT_WR), 0);
    int never = 0;
    uvtest_run_until(&r.tun.loop, &never, 50);

    uint32_t ack = rp_open(&r, 40000, port, 0x10, NULL, 0);
    rp_segment(&r, &r.us, 40000, port, 0x18, RP_PEER_ISN + 1, ack, NULL, 0, "from the server", 15);
    harness_tun_settle(&r.tun);
    size_t got = uvtest_recv(&r.tun.loop, fd, rep, 10, &end, 3000);
    ASSERT_ROW(got == 10 && rep[1] == 0, "second reply: %zu bytes, end %d", got, end);
    ASSERT_MEM_EQ(rep, "\x05\x00\x00\x01\x0a\x09\x00\x01\x9c\x40", 10); /* 10.9.0.1:40000 */
    ASSERT_EQ(uvtest_recv(&r.tun.loop, fd, buf, 15, &end, 3000), 15);
    ASSERT_MEM_EQ(buf, "from the server", 15);
    rp_wait_rx(&r, 0, 5);
    ASSERT_MEM_EQ(r.rx[0], "early", 5);
    for (int i = 0; i < 1000 && !rp_last(&r, 40000, port, 0x01); i++)
        uvtest_run_until(&r.tun.loop, &never, 1);
    const struct rp_seg *fin = rp_last(&r, 40000, port, 0x01);
    ASSERT(fin != NULL);
    /* The peer's FIN ends it: the client reads its end. */
    rp_segment(&r, &r.us, 40000, port, 0x11, RP_PEER_ISN + 16, fin->seq + 1, NULL, 0, NULL, 0);
    harness_tun_settle(&r.tun);
    ASSERT_EQ(uvtest_wait_end(&r.tun.loop, fd, NULL, 3000), 1);
    close(fd);

    rp_socks_server_close(&r, srv, direct);
    return 0;
}

/* A BIND client that sends more than the 64 KiB the listener keeps for the peer before it comes
 * (70000 bytes here) is read no further until the peer came: it still gets the second reply, and
 * the peer its bytes in order. Failed before the fix: past 64 KiB the client was closed, its BIND
 * with it, and the peer's SYN was reset (rp_syn(): flags 0x14, not a SYN-ACK). */
TEST_IMPL(socks_bind_early_bound)
{
    static struct rp r;
    static uint8_t up[70000];
    uint8_t rep[10];
    int end;
    rp_up(&r);
    struct outbound *direct = NULL;
    uint16_t socks_port;
    struct socks_server *srv = rp_socks_server(&r, &direct, &socks_port);

    int fd = rp_socks_bind(&r, socks_port, "10.9.0.1", rep);
    ASSERT_EQ(rep[1], 0);
    uint16_t port = v2s_get_be16(rep + 8);
    for (size_t i = 0; i < sizeof(up); i++)
        up[i] = (uint8_t)(i * 7 + i / 251);
    uvtest_send(&r.tun.loop, fd, up, sizeof(up));
    int never = 0;
    uvtest_run_until(&r.tun.loop, &never, 50);

    rp_open(&r, 40000, port, 0x10, NULL, 0);
    harness_tun_settle(&r.tun);
    size_t got = uvtest_recv(&r.tun.loop, fd, rep, 10, &end, 3000);
    ASSERT_ROW(got == 10 && rep[1] == 0, "second reply: %zu bytes, end %d", got, end);
    /* The peer's first bytes are the client's first, in order (its initial window's worth: the
     * test does not acknowledge them). */
    size_t want[2] = {0, 2000};
    void *arg[2] = {&r, want};
    ASSERT(uvtest_run_until_fn(&r.tun.loop, rp_rx_has, arg, 3000));
    ASSERT_MEM_EQ(r.rx[0], up, r.n_rx[0]);
    /* The peer resets: so does the client's side. */
    rp_segment(&r, &r.us, 40000, port, 0x04, RP_PEER_ISN + 1, 0, NULL, 0, NULL, 0);
    harness_tun_settle(&r.tun);
    ASSERT(uvtest_wait_end(&r.tun.loop, fd, NULL, 3000) != 0);
    close(fd);

    rp_socks_server_close(&r, srv, direct);
    return 0;
}

/* A BIND for ::ffff:10.9.0.1 (ATYP 4: an IPv4 host as a dual-stack client names it) listens on
 * the tunnel's IPv4 address and takes the connection from 10.9.0.1. Failed before the fix: the
 * request was refused with 3 ("the tunnel has no IPv6 address"), and with one it would have
 * waited for a peer from an IPv6 address no host of an IPv4 tunnel has. The second reply names
 * the peer as the client named it, ::ffff:10.9.0.1 (ATYP 4); it said 10.9.0.1 (ATYP 1) before
 * the later fix, unlike the UDP relay's answers. */
TEST_IMPL(socks_bind_mapped_v4)
{
    static struct rp r;
    uint8_t rep[22], m[2];
    int end;
    rp_up(&r);
    struct outbound *direct = NULL;
    uint16_t socks_port;
    struct socks_server *srv = rp_socks_server(&r, &direct, &socks_port);

    static const uint8_t req[] = {5, 1, 0, 5, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 9, 0, 1, 0, 0};
    int fd = uvtest_connect(socks_port);
    uvtest_send(&r.tun.loop, fd, req, sizeof(req));
    ASSERT_EQ(uvtest_recv(&r.tun.loop, fd, m, 2, &end, 3000), 2);
    ASSERT_EQ(uvtest_recv(&r.tun.loop, fd, rep, 10, &end, 3000), 10);
    ASSERT_ROW(rep[1] == 0, "first reply %u", rep[1]);
    ASSERT_MEM_EQ(rep, "\x05\x00\x00\x01\x0a\x08\x00\x02", 8); /* the tunnel's address */
    uint16_t port = v2s_get_be16(rep + 8);
    rp_open(&r, 40000, port, 0x10, NULL, 0);
    harness_tun_settle(&r.tun);
    ASSERT_EQ(uvtest_recv(&r.tun.loop, fd, rep, 22, &end, 3000), 22);
    ASSERT_MEM_EQ(rep, "\x05\x00\x00\x04" "\0\0\0\0\0\0\0\0\0\0\xff\xff\x0a\x09\x00\x01" "\x9c\x40",
                  22); /* ::ffff:10.9.0.1:40000 */
    uvtest_send(&r.tun.loop, fd, "up", 2);
    rp_wait_rx(&r, 0, 2);
    ASSERT_MEM_EQ(r.rx[0], "up", 2);
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
    for (int i = 0; i < 2000 && !rp_last(&r, 40000, port, 0x04); i++)
        uvtest_run_until(&r.tun.loop, &r.closed, 1);
    ASSERT(rp_last(&r, 40000, port, 0x04) != NULL);

    rp_socks_server_close(&r, srv, direct);
    return 0;
}
