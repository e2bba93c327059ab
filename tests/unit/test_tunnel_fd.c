/* The packet-fd tunnel (tunnel/fd.c) on a real loop, with the VPN client's end of an AF_UNIX
 * datagram socketpair (what openconnect --script-tun hands over) on the test's side: what one
 * loop iteration sends leaves together, boundaries and order kept; a full peer queues, never
 * drops; one wakeup drains what a default-buffered peer can have queued; the reader runs as
 * SCHED_BATCH. */
/* SCHED_BATCH is a GNU extension. */
#define _GNU_SOURCE

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "base/log.h"
#include "tunnel/fd.h"
#include "tunnel/settings.h"
#include "test.h"
#include "uvtest.h"

enum { FDT_MAX_PACKETS = 8192 };

struct fdt {
    uv_loop_t loop;
    int sv[2]; /* sv[0] is the tunnel's, sv[1] the VPN client's */
    struct tunnel *t;
    int ups, downs, writables;
    enum tunnel_down_reason reason; /* of the last down */
    int close_at;                   /* >= 0: the packet callback closes the tunnel at this seq */
    int closed;                     /* the close callback ran */
    unsigned packets;
    uint32_t seq[FDT_MAX_PACKETS]; /* the first four bytes of each packet that came in */
    size_t len[FDT_MAX_PACKETS];
};

static void fdt_up(void *arg, const struct tunnel_settings *ts)
{
    (void)ts;
    ((struct fdt *)arg)->ups++;
}

static uint32_t fdt_seq_of(const uint8_t *pkt)
{
    uint32_t seq;
    memcpy(&seq, pkt, 4);
    return seq;
}

static void fdt_closed(struct tunnel *t);

static void fdt_packet(void *arg, const uint8_t *pkt, size_t len)
{
    struct fdt *f = arg;
    if (f->packets < FDT_MAX_PACKETS) {
        uint32_t seq = 0;
        memcpy(&seq, pkt, len < 4 ? len : 4);
        f->seq[f->packets] = seq;
        f->len[f->packets] = len;
    }
    f->packets++;
    if (f->close_at >= 0 && len >= 4 && (int)fdt_seq_of(pkt) == f->close_at)
        tunnel_close(f->t, fdt_closed);
}

static void fdt_writable(void *arg)
{
    ((struct fdt *)arg)->writables++;
}

static void fdt_down(void *arg, enum tunnel_down_reason reason, const char *why)
{
    (void)why;
    ((struct fdt *)arg)->downs++;
    ((struct fdt *)arg)->reason = reason;
}

static int fdt_close_count;

static void fdt_closed(struct tunnel *t)
{
    (void)t;
    fdt_close_count++;
}

static void fdt_open(struct fdt *f)
{
    f->close_at = -1;
    ASSERT_EQ(uv_loop_init(&f->loop), 0);
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, f->sv), 0);
    struct tunnel_events ev = {
        .up = fdt_up, .packet = fdt_packet, .writable = fdt_writable, .down = fdt_down, .arg = f};
    struct tunnel_settings ts;
    tunnel_settings_init(&ts);
    ts.mtu = 1400;
    ASSERT_EQ(tunnel_fd_new(&f->t, &f->loop, f->sv[0], &ts, &ev), 0);
    tunnel_settings_free(&ts);
    ASSERT_EQ(tunnel_start(f->t), 0);
    ASSERT_EQ(f->ups, 1);
}

static void fdt_close(struct fdt *f)
{
    tunnel_close(f->t, fdt_closed);
    uvtest_loop_finish(&f->loop);
    close(f->sv[1]);
}

/* A packet of len bytes (>= 4) whose first four bytes are seq and the rest seq's low byte. */
static void fdt_make(uint8_t *pkt, size_t len, uint32_t seq)
{
    memset(pkt, (int)(seq & 0xff), len);
    memcpy(pkt, &seq, 4);
}

/* Reads one datagram from the VPN client's end; checks it is packet seq of len bytes. */
static void fdt_expect(struct fdt *f, uint32_t seq, size_t len)
{
    uint8_t buf[2048], want[2048];
    ssize_t n = recv(f->sv[1], buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0)
        TEST_FAIL_AT("packet %u: recv: %s", seq, strerror(errno));
    ASSERT_EQ(n, (ssize_t)len);
    fdt_make(want, len, seq);
    ASSERT(memcmp(buf, want, len) == 0);
}

/* Reads packets 0 to n - 1, each of len bytes, in order at the VPN client's end (running the loop
 * while it waits), and then finds nothing more there. */
static void fdt_drain_in_order(struct fdt *f, uint32_t n_pkts, size_t len)
{
    uint8_t pkt[2048];
    for (uint32_t i = 0; i < n_pkts; i++) {
        uint8_t buf[2048];
        ssize_t n;
        while ((n = recv(f->sv[1], buf, sizeof(buf), MSG_DONTWAIT)) < 0 && errno == EAGAIN)
            uv_run(&f->loop, UV_RUN_NOWAIT);
        ASSERT_EQ(n, (ssize_t)len);
        uint32_t seq;
        memcpy(&seq, buf, 4);
        if (seq != i)
            TEST_FAIL_AT("datagram %u carries packet %u", i, seq);
    }
    ASSERT(recv(f->sv[1], pkt, sizeof(pkt), MSG_DONTWAIT) < 0 && errno == EAGAIN);
}

/* What one loop iteration sends (the stack's ACKs for a batch of segments, a burst of segments)
 * leaves once the iteration's callbacks ran, together, each packet its own datagram, in order. */
TEST_IMPL(tunnel_fd_send_batch)
{
    struct fdt f = {0};
    fdt_open(&f);
    uint8_t pkt[2048];
    for (uint32_t i = 0; i < 60; i++) {
        fdt_make(pkt, 20 + i * 13, i);
        ASSERT_EQ(tunnel_send(f.t, pkt, 20 + i * 13), 0);
    }
    /* Nothing left yet: the packets are gathered until the loop's turn. */
    ASSERT(recv(f.sv[1], pkt, sizeof(pkt), MSG_DONTWAIT) < 0 && errno == EAGAIN);
    uv_run(&f.loop, UV_RUN_NOWAIT);
    for (uint32_t i = 0; i < 60; i++)
        fdt_expect(&f, i, 20 + i * 13);
    ASSERT(recv(f.sv[1], pkt, sizeof(pkt), MSG_DONTWAIT) < 0 && errno == EAGAIN);
    /* A packet sent from a later iteration leaves too. */
    fdt_make(pkt, 40, 7);
    ASSERT_EQ(tunnel_send(f.t, pkt, 40), 0);
    uv_run(&f.loop, UV_RUN_NOWAIT);
    fdt_expect(&f, 7, 40);
    struct tunnel_stats st;
    tunnel_get_stats(f.t, &st);
    ASSERT_EQ(st.packets_out, 61);
    ASSERT_EQ(f.downs, 0);
    fdt_close(&f);
    return 0;
}

/* The VPN client stops reading: the packets the socket cannot take are queued, in order, none
 * dropped; tunnel_send says "full" above the high mark, and writable comes once the client read
 * enough. Every packet then arrives exactly once, in the order sent. */
TEST_IMPL(tunnel_fd_send_backpressure)
{
    struct fdt f = {0};
    fdt_open(&f);
    uint8_t pkt[1400];
    uint32_t sent = 0;
    int full = 0;
    while (!full) {
        ASSERT(sent < FDT_MAX_PACKETS);
        fdt_make(pkt, sizeof(pkt), sent);
        int rc = tunnel_send(f.t, pkt, sizeof(pkt));
        ASSERT(rc == 0 || rc == 1);
        full = rc == 1;
        sent++;
        if (sent % 50 == 0)
            uv_run(&f.loop, UV_RUN_NOWAIT); /* flushes what this "iteration" gathered */
    }
    uv_run(&f.loop, UV_RUN_NOWAIT);
    /* More than 4 MiB went out or waits: far more than the socket alone holds. */
    ASSERT((size_t)sent * sizeof(pkt) > 4u * 1024 * 1024);
    ASSERT_EQ(f.writables, 0);
    fdt_drain_in_order(&f, sent, sizeof(pkt));
    ASSERT_EQ(f.writables, 1);
    ASSERT_EQ(f.downs, 0);
    fdt_close(&f);
    return 0;
}

/* openconnect stops reading its DTLS socket while a write to us fails, and its end of the pair
 * holds 93 packets of 1400 bytes at the default SO_SNDBUF: one wakeup must take all that can be
 * queued (here 120 small packets), in order, boundaries kept. */
TEST_IMPL(tunnel_fd_read_drains)
{
    struct fdt f = {0};
    fdt_open(&f);
    uint8_t pkt[256];
    for (uint32_t i = 0; i < 120; i++) {
        fdt_make(pkt, 40 + i, i);
        ASSERT_EQ(send(f.sv[1], pkt, 40 + i, 0), (ssize_t)(40 + i));
    }
    uv_run(&f.loop, UV_RUN_NOWAIT); /* one poll phase, one wakeup of the tunnel */
    ASSERT_EQ(f.packets, 120);
    for (uint32_t i = 0; i < 120; i++) {
        ASSERT_EQ(f.seq[i], i);
        ASSERT_EQ(f.len[i], 40 + i);
    }
    fdt_close(&f);
    return 0;
}

/* The loop's thread reads a socket's packets as SCHED_BATCH from the start (tunnel/fd.c,
 * "Scheduling"): woken by the VPN client's writes, it does not preempt the client. */
TEST_IMPL(tunnel_fd_sched_batch)
{
    /* From the ordinary policy, whatever the runner was started with (the switch leaves other
     * policies alone); any process may go back to it from SCHED_BATCH. */
    struct sched_param sp = {.sched_priority = 0};
    if (sched_getscheduler(0) == SCHED_BATCH)
        ASSERT_EQ(sched_setscheduler(0, SCHED_OTHER, &sp), 0);
    ASSERT_EQ(sched_getscheduler(0), SCHED_OTHER);
    struct fdt f = {0};
    fdt_open(&f);
    ASSERT_EQ(sched_getscheduler(0), SCHED_BATCH);
    fdt_close(&f);
    return 0;
}

/* The stack closes the tunnel from inside the packet callback, in the middle of a recvmmsg batch
 * (the application quits on what a packet said): no packet after it is handed over, the close
 * callback runs once when the loop closed the handles, and nothing touches the freed tunnel
 * (ASan). A regression guard. */
TEST_IMPL(tunnel_fd_close_in_packet)
{
    struct fdt f = {0};
    fdt_open(&f);
    uint8_t pkt[256];
    for (uint32_t i = 0; i < 10; i++) {
        fdt_make(pkt, 100, i);
        ASSERT_EQ(send(f.sv[1], pkt, 100, 0), 100);
    }
    /* Gathered but not yet sent: leaves with the close if the fd takes it. */
    fdt_make(pkt, 60, 99);
    ASSERT_EQ(tunnel_send(f.t, pkt, 60), 0);
    f.close_at = 3;
    fdt_close_count = 0;
    uv_run(&f.loop, UV_RUN_NOWAIT);
    ASSERT_EQ(f.packets, 4);
    for (uint32_t i = 0; i < 4; i++)
        ASSERT_EQ(f.seq[i], i);
    uvtest_loop_finish(&f.loop);
    ASSERT_EQ(fdt_close_count, 1);
    ASSERT_EQ(f.downs, 0);
    fdt_expect(&f, 99, 60);
    close(f.sv[1]);
    return 0;
}

/* The VPN client goes away (its end of the datagram pair closed; no EOF on a datagram socket):
 * the next write fails with ECONNREFUSED, which is the tunnel closed, not an error, and sends
 * fail from then on. A regression guard. */
TEST_IMPL(tunnel_fd_peer_gone)
{
    struct fdt f = {0};
    fdt_open(&f);
    close(f.sv[1]);
    uint8_t pkt[100];
    fdt_make(pkt, sizeof(pkt), 1);
    ASSERT_EQ(tunnel_send(f.t, pkt, sizeof(pkt)), 0);
    uv_run(&f.loop, UV_RUN_NOWAIT);
    ASSERT_EQ(f.downs, 1);
    ASSERT_EQ(f.reason, TUNNEL_DOWN_CLOSED);
    ASSERT_EQ(tunnel_send(f.t, pkt, sizeof(pkt)), -ENETDOWN);
    struct tunnel_stats st;
    tunnel_get_stats(f.t, &st);
    ASSERT_EQ(st.state, TUNNEL_STATE_DOWN);
    tunnel_close(f.t, fdt_closed);
    uvtest_loop_finish(&f.loop);
    return 0;
}

/* The VPN client stops reading for long (openconnect retrying its connection to the server reads
 * nothing from the pair for up to its --reconnect-timeout, 300 s) while packets keep coming that
 * take no notice of "full" (UDP forwards, DNS, ICMP answers): the queue stops at a cap rather
 * than grow with all of them, each packet past it refused (-ENOBUFS) and one line says so. Once
 * the client reads again, what was taken arrives, in order, and sends are taken again. */
TEST_IMPL(tunnel_fd_queue_cap)
{
    static struct fdt f;
    fdt_open(&f);
    uint8_t pkt[1400];
    uint32_t taken = 0, tried = 0;
    int refused = 0;
    v2s_log_level = V2S_LOG_INFO; /* the line once it reads again (each test runs in its own process) */
    uvtest_log_begin();
    /* 64 MiB offered, 50 packets per loop iteration, as a busy stack would. */
    for (; tried < 48000; tried++) {
        fdt_make(pkt, sizeof(pkt), taken);
        int rc = tunnel_send(f.t, pkt, sizeof(pkt));
        if (rc == -ENOBUFS) {
            refused++;
        } else {
            ASSERT(rc == 0 || rc == 1);
            taken++;
        }
        if (tried % 50 == 0)
            uv_run(&f.loop, UV_RUN_NOWAIT);
    }
    uv_run(&f.loop, UV_RUN_NOWAIT);
    const char *log = uvtest_log_end();
    ASSERT(refused > 0);
    /* What the socket holds and the queue: far less than the 64 MiB offered. */
    ASSERT((size_t)taken * sizeof(pkt) < 24u * 1024 * 1024);
    ASSERT(strstr(log, "packet fd: the VPN client is not reading") != NULL);
    ASSERT_EQ(f.downs, 0);
    /* Counted for /metrics too (vpn2socks_tunnel_packets_refused_total): the one line says only
     * that it began, and its total comes only if the client reads again. */
    struct tunnel_stats st;
    tunnel_get_stats(f.t, &st);
    ASSERT_EQ(st.packets_refused, (uint64_t)refused);
    ASSERT_EQ(st.packets_out, (uint64_t)taken);

    uvtest_log_begin();
    fdt_drain_in_order(&f, taken, sizeof(pkt));
    ASSERT_EQ(f.writables, 1);
    log = uvtest_log_end();
    ASSERT(strstr(log, "packets to it were dropped") != NULL);
    fdt_make(pkt, sizeof(pkt), 7);
    ASSERT_EQ(tunnel_send(f.t, pkt, sizeof(pkt)), 0);
    uv_run(&f.loop, UV_RUN_NOWAIT);
    fdt_expect(&f, 7, sizeof(pkt));
    fdt_close(&f);
    return 0;
}

/* A datagram longer than any IP packet (an AF_UNIX datagram may be ~200 KiB) is dropped with one
 * line, and the packets around it arrive: its first 65535 bytes, all a read slot holds, went to
 * the stack as a packet. */
TEST_IMPL(tunnel_fd_oversized_datagram)
{
    static struct fdt f;
    static uint8_t big[70000];
    fdt_open(&f);
    uint8_t pkt[100];
    v2s_log_level = V2S_LOG_INFO;
    uvtest_log_begin();
    fdt_make(pkt, sizeof(pkt), 1);
    ASSERT_EQ(send(f.sv[1], pkt, sizeof(pkt), 0), (ssize_t)sizeof(pkt));
    fdt_make(big, sizeof(big), 9);
    ASSERT_EQ(send(f.sv[1], big, sizeof(big), 0), (ssize_t)sizeof(big));
    ASSERT_EQ(send(f.sv[1], big, sizeof(big), 0), (ssize_t)sizeof(big));
    fdt_make(pkt, sizeof(pkt), 2);
    ASSERT_EQ(send(f.sv[1], pkt, sizeof(pkt), 0), (ssize_t)sizeof(pkt));
    uv_run(&f.loop, UV_RUN_NOWAIT);
    const char *log = uvtest_log_end();
    ASSERT_EQ(f.packets, 2);
    ASSERT_EQ(f.seq[0], 1);
    ASSERT_EQ(f.seq[1], 2);
    ASSERT_EQ(f.downs, 0);
    const char *line = strstr(log, "packet fd: a datagram longer than 65535 bytes");
    ASSERT(line != NULL);
    ASSERT(strstr(line + 1, "packet fd: a datagram longer") == NULL); /* one line for both */
    fdt_close(&f);
    return 0;
}

/* openconnect's end of the pair is a datagram socket, where an empty datagram is just that, not
 * the end: the tunnel stays up and the packets around it arrive in order. On a seqpacket socket
 * a 0-byte read is the end, and the tunnel goes down as closed. A regression guard. */
TEST_IMPL(tunnel_fd_empty_datagram)
{
    struct fdt f = {0};
    fdt_open(&f);
    uint8_t pkt[100];
    fdt_make(pkt, sizeof(pkt), 1);
    ASSERT_EQ(send(f.sv[1], pkt, sizeof(pkt), 0), (ssize_t)sizeof(pkt));
    ASSERT_EQ(send(f.sv[1], pkt, 0, 0), 0);
    fdt_make(pkt, sizeof(pkt), 2);
    ASSERT_EQ(send(f.sv[1], pkt, sizeof(pkt), 0), (ssize_t)sizeof(pkt));
    uv_run(&f.loop, UV_RUN_NOWAIT);
    ASSERT_EQ(f.packets, 2);
    ASSERT_EQ(f.seq[0], 1);
    ASSERT_EQ(f.seq[1], 2);
    ASSERT_EQ(f.downs, 0);
    fdt_close(&f);

    struct fdt g = {0};
    g.close_at = -1;
    ASSERT_EQ(uv_loop_init(&g.loop), 0);
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, g.sv), 0);
    struct tunnel_events ev = {
        .up = fdt_up, .packet = fdt_packet, .writable = fdt_writable, .down = fdt_down, .arg = &g};
    struct tunnel_settings ts;
    tunnel_settings_init(&ts);
    ASSERT_EQ(tunnel_fd_new(&g.t, &g.loop, g.sv[0], &ts, &ev), 0);
    tunnel_settings_free(&ts);
    ASSERT_EQ(tunnel_start(g.t), 0);
    ASSERT_EQ(send(g.sv[1], pkt, sizeof(pkt), 0), (ssize_t)sizeof(pkt));
    close(g.sv[1]);
    uv_run(&g.loop, UV_RUN_NOWAIT);
    ASSERT_EQ(g.packets, 1);
    ASSERT_EQ(g.downs, 1);
    ASSERT_EQ(g.reason, TUNNEL_DOWN_CLOSED);
    tunnel_close(g.t, fdt_closed);
    uvtest_loop_finish(&g.loop);
    return 0;
}
