/* The OpenVPN transport's UDP link (tunnel/openvpn/transport.c) on a real loop, with a plain
 * loopback UDP socket as the server: datagrams that trickle in are handed over as each arrives;
 * in a bulk download the socket is read once per period, everything that waits at once, in
 * order; once the burst is over, datagrams are again handed over as each arrives. Sending: runs
 * of equal datagrams leave as short UDP GSO messages, or singly where the kernel refuses GSO.
 * The TCP link with a loopback TCP server: in a bulk download the drain timer, not the poll,
 * reads what is below the raised low-water mark. The send queue's ceiling, with a TCP server
 * that reads nothing. */
#define _GNU_SOURCE /* unshare, CLONE_NEWNET */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "tunnel/openvpn/transport.h"
#include "test.h"
#include "uvtest.h"

enum { OTT_MAX = 256, OTT_BIG = 1400, OTT_SMALL = 100 };

enum ott_phase { OTT_OTHER, OTT_POLL };

struct ott {
    uv_loop_t loop;
    uv_prepare_t prepare;
    uv_check_t check;
    struct ovpn_transport *t;
    int server;            /* the test's UDP socket, connected to the transport's once known */
    int connected, failed;
    unsigned iter;         /* loop iterations (prepare callbacks) */
    enum ott_phase phase;  /* OTT_POLL from prepare to check: callbacks of the poll phase */
    unsigned packets;
    uint32_t seq[OTT_MAX];
    size_t len[OTT_MAX];
    unsigned at_iter[OTT_MAX];
    enum ott_phase at_phase[OTT_MAX];
    uint32_t burst_after;  /* when this packet arrives, burst_count more are sent at once */
    unsigned burst_count;
    unsigned want;         /* packets ott_wait waits for */
    int quiet;
    struct sockaddr_in local; /* the transport's address */
};

static void ott_prepare(uv_prepare_t *p)
{
    struct ott *o = p->data;
    o->iter++;
    o->phase = OTT_POLL;
}

static void ott_check(uv_check_t *c)
{
    ((struct ott *)c->data)->phase = OTT_OTHER;
}

static void ott_connected(void *arg)
{
    ((struct ott *)arg)->connected = 1;
}

/* A datagram of len bytes (>= 4) that starts with seq. */
static void ott_send(struct ott *o, uint32_t seq, size_t len)
{
    uint8_t pkt[OTT_BIG];
    memset(pkt, (int)(seq & 0xff), len);
    memcpy(pkt, &seq, 4);
    ASSERT_EQ(send(o->server, pkt, len, 0), (ssize_t)len);
}

static void ott_packet(void *arg, uint8_t *pkt, size_t len)
{
    struct ott *o = arg;
    ASSERT(len >= 4);
    ASSERT(o->packets < OTT_MAX);
    uint32_t seq;
    memcpy(&seq, pkt, 4);
    o->seq[o->packets] = seq;
    o->len[o->packets] = len;
    o->at_iter[o->packets] = o->iter;
    o->at_phase[o->packets] = o->phase;
    o->packets++;
    if (o->burst_count && seq == o->burst_after) {
        for (unsigned i = 1; i <= o->burst_count; i++)
            ott_send(o, seq + i, OTT_BIG);
        o->burst_count = 0;
    }
}

static void ott_writable(void *arg)
{
    (void)arg;
}

static void ott_failed(void *arg, int status, const char *why)
{
    (void)status;
    (void)why;
    ((struct ott *)arg)->failed = 1;
}

static int ott_got(void *arg)
{
    struct ott *o = arg;
    return o->packets >= o->want;
}

static void ott_quiet(uv_timer_t *timer)
{
    ((struct ott *)timer->data)->quiet = 1;
}

static void ott_open(struct ott *o)
{
    ASSERT_EQ(uv_loop_init(&o->loop), 0);
    uv_prepare_init(&o->loop, &o->prepare);
    uv_check_init(&o->loop, &o->check);
    o->prepare.data = o->check.data = o;
    uv_prepare_start(&o->prepare, ott_prepare);
    uv_check_start(&o->check, ott_check);
    o->server = socket(AF_INET, SOCK_DGRAM, 0);
    ASSERT(o->server >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    ASSERT_EQ(bind(o->server, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ASSERT_EQ(getsockname(o->server, (struct sockaddr *)&sa, &sl), 0);
    struct ovpn_transport_events ev = {
        .connected = ott_connected, .packet = ott_packet, .writable = ott_writable, .failed = ott_failed, .arg = o};
    ASSERT_EQ(ovpn_transport_open(&o->t, &o->loop, (struct sockaddr *)&sa, OVPN_PROTO_UDP, &ev), 0);
    ASSERT(uvtest_run_until(&o->loop, &o->connected, 1000));
    /* The transport's address, from a packet it sends. */
    static const uint8_t hello[] = {0x38, 1, 2, 3};
    ASSERT_EQ(ovpn_transport_send(o->t, hello, sizeof(hello)), 0);
    uint8_t buf[16];
    struct sockaddr_in from;
    socklen_t fl = sizeof(from);
    ssize_t n = -1;
    for (int i = 0; i < 1000 && n < 0; i++) {
        uv_run(&o->loop, UV_RUN_NOWAIT);
        n = recvfrom(o->server, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
        if (n < 0)
            usleep(1000);
    }
    ASSERT_EQ(n, (ssize_t)sizeof(hello));
    ASSERT_EQ(connect(o->server, (struct sockaddr *)&from, fl), 0);
    o->local = from;
}

static void ott_close(struct ott *o)
{
    ovpn_transport_close(o->t);
    uv_close((uv_handle_t *)&o->prepare, NULL);
    uv_close((uv_handle_t *)&o->check, NULL);
    uvtest_loop_finish(&o->loop);
    close(o->server);
}

/* Runs the loop until want packets in all arrived. */
static void ott_wait(struct ott *o, unsigned want)
{
    o->want = want;
    if (!uvtest_run_until_fn(&o->loop, ott_got, o, 2000))
        TEST_FAIL_AT("%u of %u packets arrived", o->packets, want);
}

TEST_IMPL(ovpn_transport_udp_coalesce)
{
    struct ott o = {0};
    ott_open(&o);

    /* A trickle (2 KB in one go) is handed over from the poll phase, as it arrives. */
    for (uint32_t i = 0; i < 20; i++)
        ott_send(&o, i, OTT_SMALL);
    ott_wait(&o, 20);
    for (unsigned i = 0; i < 20; i++)
        ASSERT_EQ(o.at_phase[i], OTT_POLL);

    /* A bulk rate (12 x 1400 bytes within a millisecond) and, right behind it, 100 more
     * datagrams: libuv alone reads at most 32 per wakeup; coalescing reads them all in one
     * period, from the drain timer. */
    o.burst_after = 31;
    o.burst_count = 100;
    for (uint32_t i = 20; i < 32; i++)
        ott_send(&o, i, OTT_BIG);
    ott_wait(&o, 132);
    for (unsigned i = 0; i < 132; i++) {
        ASSERT_EQ(o.seq[i], i);
        ASSERT_EQ(o.len[i], i < 20 ? OTT_SMALL : OTT_BIG);
    }
    for (unsigned i = 32; i < 132; i++)
        if (o.at_iter[i] != o.at_iter[32])
            TEST_FAIL_AT("packet %u arrived in loop iteration %u, packet 32 in %u", i, o.at_iter[i], o.at_iter[32]);
    for (unsigned i = 32; i < 132; i++)
        ASSERT_EQ(o.at_phase[i], OTT_OTHER);

    /* A few quiet periods later, a datagram is handed over from the poll phase again. */
    uv_timer_t quiet;
    uv_timer_init(&o.loop, &quiet);
    quiet.data = &o;
    uv_timer_start(&quiet, ott_quiet, 10, 0);
    ASSERT(uvtest_run_until(&o.loop, &o.quiet, 1000));
    uv_close((uv_handle_t *)&quiet, NULL);
    ott_send(&o, 132, OTT_SMALL);
    ott_wait(&o, 133);
    ASSERT_EQ(o.seq[132], 132);
    ASSERT_EQ(o.at_phase[132], OTT_POLL);
    ASSERT_EQ(o.failed, 0);
    ott_close(&o);
    return 0;
}

#ifndef UDP_GRO
#define UDP_GRO 104 /* linux/udp.h, 5.0+ */
#endif

/* The transport's own socket: the descriptor bound to its address. */
static int ott_transport_fd(const struct ott *o)
{
    for (int fd = 3; fd < 1024; fd++) {
        struct sockaddr_in sa;
        socklen_t sl = sizeof(sa);
        if (fd != o->server && getsockname(fd, (struct sockaddr *)&sa, &sl) == 0 && sl == sizeof(sa) &&
            sa.sin_family == AF_INET && sa.sin_port == o->local.sin_port)
            return fd;
    }
    return -1;
}

/* Reads what the server got for the datagrams of ott_send_run() through a UDP_GRO socket, which
 * keeps a GSO message whole: checks each datagram's bytes and order, and returns how many
 * datagrams the largest message carried (0 on a failed check). */
static unsigned ott_read_runs(struct ott *o, uint32_t first, unsigned count, size_t len)
{
    unsigned most = 0, got = 0;
    static uint8_t buf[65536]; /* a GSO message up to the largest datagram; not on the stack */
    for (int tries = 0; got < count && tries < 2000;) {
        union {
            char b[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } ctl;
        struct iovec iov = {buf, sizeof(buf)};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof(ctl.b)};
        ssize_t n = recvmsg(o->server, &m, MSG_DONTWAIT);
        if (n < 0) {
            uv_run(&o->loop, UV_RUN_NOWAIT);
            usleep(1000);
            tries++;
            continue;
        }
        size_t seg = (size_t)n;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm))
            if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
                int v;
                memcpy(&v, CMSG_DATA(cm), sizeof(v));
                seg = (size_t)v;
            }
        unsigned in_msg = 0;
        for (size_t off = 0; off < (size_t)n; off += seg, in_msg++, got++) {
            size_t dl = (size_t)n - off < seg ? (size_t)n - off : seg;
            uint32_t seq;
            memcpy(&seq, buf + off, 4);
            if (dl != len || seq != first + got)
                return 0;
            for (size_t k = 4; k < dl; k++)
                if (buf[off + k] != (uint8_t)(seq & 0xff))
                    return 0;
        }
        if (in_msg > most)
            most = in_msg;
    }
    return got == count ? most : 0;
}

/* count datagrams of len bytes, seq first on, in one loop iteration (one flush). */
static void ott_send_run(struct ott *o, uint32_t first, unsigned count, size_t len)
{
    static uint8_t pkt[65536]; /* up to the largest datagram; not on the stack */
    for (unsigned i = 0; i < count; i++) {
        uint32_t seq = first + i;
        memset(pkt, (int)(seq & 0xff), len);
        memcpy(pkt, &seq, 4);
        ASSERT_EQ(ovpn_transport_send(o->t, pkt, len), 0);
    }
}

/* A run of equal datagrams gathered in one loop iteration leaves as UDP GSO messages of at most 4
 * datagrams each (the server sees a burst per message; longer bursts slowed a single-threaded
 * OpenVPN 2.4 server). Where the kernel refuses UDP_SEGMENT (here: a socket without UDP
 * checksums), the datagrams go singly and none is lost. */
TEST_IMPL(ovpn_transport_udp_gso)
{
    struct ott o = {0};
    ott_open(&o);
    int on = 1;
    if (setsockopt(o.server, SOL_UDP, UDP_GRO, &on, sizeof(on)) < 0) {
        ott_close(&o);
        return 0; /* a kernel without UDP GRO (before 5.0) cannot show the messages */
    }
    ott_send_run(&o, 0, 10, OTT_BIG);
    unsigned most = ott_read_runs(&o, 0, 10, OTT_BIG);
    if (most < 2 || most > 4)
        TEST_FAIL_AT("largest message carried %u datagrams, want 2 to 4 (0: lost or out of order)", most);

    int fd = ott_transport_fd(&o);
    ASSERT(fd >= 0);
    ASSERT_EQ(setsockopt(fd, SOL_SOCKET, SO_NO_CHECK, &on, sizeof(on)), 0);
    ott_send_run(&o, 10, 10, OTT_BIG);
    ASSERT_EQ(ott_read_runs(&o, 10, 10, OTT_BIG), 1);
    ott_send_run(&o, 20, 10, OTT_BIG);
    ASSERT_EQ(ott_read_runs(&o, 20, 10, OTT_BIG), 1);
    ASSERT_EQ(o.failed, 0);
    ott_close(&o);
    return 0;
}

/* A run of equal datagrams that the kernel takes one by one but not as one GSO message: it
 * refuses the message with EMSGSIZE when the run's datagrams are larger than the route's MTU
 * (Linux 6.13+; before, EINVAL; they leave singly, in IP fragments) or, as here on the loopback,
 * when the run together exceeds a datagram's 65507 bytes. Every datagram still arrives, intact
 * and in order, run after run. */
TEST_IMPL(ovpn_transport_udp_gso_msgsize)
{
    struct ott o = {0};
    ott_open(&o);
    enum { LEN = 16380 }; /* 4 x 16380 + 8 > 65515, one fits */
    int size = 1 << 20;
    ASSERT_EQ(setsockopt(o.server, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)), 0);
    for (uint32_t first = 0; first < 12; first += 4) {
        ott_send_run(&o, first, 4, LEN);
        if (ott_read_runs(&o, first, 4, LEN) != 1)
            TEST_FAIL_AT("datagrams %u-%u of %u bytes lost or out of order", first, first + 3, LEN);
    }
    ASSERT_EQ(o.failed, 0);
    ott_close(&o);
    return 0;
}

/* The TCP link: the test's server is a loopback TCP socket that writes framed packets. */
enum { OTT_TCP_BIG = 1400, OTT_TCP_BURST = 15 };

static void ott_tcp_write(int fd, uint32_t seq, unsigned count)
{
    uint8_t buf[OTT_TCP_BURST * (2 + OTT_TCP_BIG)];
    size_t off = 0;
    for (unsigned i = 0; i < count; i++) {
        buf[off] = OTT_TCP_BIG >> 8;
        buf[off + 1] = OTT_TCP_BIG & 0xff;
        memset(buf + off + 2, 0x5a, OTT_TCP_BIG);
        uint32_t s = seq + i;
        memcpy(buf + off + 2, &s, 4);
        off += 2 + OTT_TCP_BIG;
    }
    ASSERT_EQ(send(fd, buf, off, 0), (ssize_t)off);
}

/* A loopback TCP listener, the server of the TCP link's tests; its address in sa. */
static int ott_tcp_listen(struct sockaddr_in *sa)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT(lfd >= 0);
    *sa = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(*sa);
    ASSERT_EQ(bind(lfd, (struct sockaddr *)sa, sizeof(*sa)), 0);
    ASSERT_EQ(listen(lfd, 1), 0);
    ASSERT_EQ(getsockname(lfd, (struct sockaddr *)sa, &sl), 0);
    return lfd;
}

struct ott_tcp {
    struct ott o;
    int conn;           /* the accepted connection */
    uint32_t next;      /* the first packet of the next burst */
    uint32_t burst_at;  /* once this packet arrived, the prepare handle sends a burst */
    int burst_due;
};

static void ott_tcp_packet(void *arg, uint8_t *pkt, size_t len)
{
    struct ott_tcp *c = arg;
    ott_packet(&c->o, pkt, len);
    uint32_t seq;
    memcpy(&seq, pkt, 4);
    /* The first burst goes out while the bulk's read is handed over (before the transport
     * raises the mark), the second from the prepare handle after the timer read the first. */
    if (seq == 29) {
        ott_tcp_write(c->conn, 30, OTT_TCP_BURST);
        c->next = 45;
    } else if (seq == c->burst_at) {
        c->burst_due = 1;
    }
}

/* Sends a due burst before the loop polls: had the transport lowered its low-water mark in the
 * timer that read the previous one, the poll would hand this one over. */
static void ott_tcp_prepare(uv_prepare_t *p)
{
    struct ott_tcp *c = p->data;
    ott_prepare(p);
    if (c->burst_due) {
        c->burst_due = 0;
        ott_tcp_write(c->conn, c->next, OTT_TCP_BURST);
        c->next += OTT_TCP_BURST;
    }
}

/* A bulk download on the TCP link raises the socket's low-water mark to 64 KiB: bursts of
 * 21 KB that follow are read by the drain timer, not by the poll, and the mark stays up while
 * each period brings more than 16 KiB. (With a 16 KiB mark, or with the mark lowered once a
 * period brought less than the mark, the poll read the second burst.) */
TEST_IMPL(ovpn_transport_tcp_coalesce)
{
    struct ott_tcp c = {0};
    struct ott *o = &c.o;
    ASSERT_EQ(uv_loop_init(&o->loop), 0);
    uv_prepare_init(&o->loop, &o->prepare);
    uv_check_init(&o->loop, &o->check);
    o->prepare.data = o->check.data = &c;
    uv_prepare_start(&o->prepare, ott_tcp_prepare);
    uv_check_start(&o->check, ott_check);
    struct sockaddr_in sa;
    int lfd = ott_tcp_listen(&sa);
    struct ovpn_transport_events ev = {
        .connected = ott_connected, .packet = ott_tcp_packet, .writable = ott_writable, .failed = ott_failed, .arg = &c};
    ASSERT_EQ(ovpn_transport_open(&o->t, &o->loop, (struct sockaddr *)&sa, OVPN_PROTO_TCP, &ev), 0);
    ASSERT(uvtest_run_until(&o->loop, &o->connected, 1000));
    c.conn = accept(lfd, NULL, NULL);
    ASSERT(c.conn >= 0);

    /* 42 KB at once: a bulk rate. Its last packet sends the first burst, the first burst's last
     * the second. */
    ott_tcp_write(c.conn, 0, 15);
    ott_tcp_write(c.conn, 15, 15);
    c.burst_at = 44;
    ott_wait(o, 45);
    ott_wait(o, 60);
    for (unsigned i = 0; i < 60; i++)
        ASSERT_EQ(o->seq[i], i);
    for (unsigned i = 30; i < 60; i++)
        if (o->at_phase[i] != OTT_OTHER)
            TEST_FAIL_AT("packet %u was read by the poll, not by the drain timer", i);
    ASSERT_EQ(o->failed, 0);
    ovpn_transport_close(o->t);
    uv_close((uv_handle_t *)&o->prepare, NULL);
    uv_close((uv_handle_t *)&o->check, NULL);
    uvtest_loop_finish(&o->loop);
    close(c.conn);
    close(lfd);
    return 0;
}

/* The TCP link's framing: each packet behind its big-endian u16 length, however the stream is cut
 * into reads. A regression guard: the server's stream cut at every byte (inside a length too),
 * a largest (65535-byte) packet cut in the middle of its length, and then a zero length, which
 * OpenVPN never sends: the link fails with EPROTO and hands nothing more over. */
enum { OTT_FRAMES_CAP = 8, OTT_FRAMES_MAX = 65535 };

struct ott_frames {
    uv_loop_t loop;
    struct ovpn_transport *t;
    int connected, failed, status;
    int conn;    /* the server's end */
    int tfd;     /* the transport's socket */
    unsigned got;
    size_t len[OTT_FRAMES_CAP];
    int intact[OTT_FRAMES_CAP]; /* the bytes are the pattern of ott_frames_put */
    unsigned want;
};

/* Packet k's bytes: its length in every byte's low bits, plus k and the byte's offset. */
static uint8_t ott_frames_byte(unsigned k, size_t len, size_t i)
{
    return (uint8_t)(len * 7 + k * 31 + i);
}

static size_t ott_frames_put(uint8_t *out, unsigned k, size_t len)
{
    out[0] = (uint8_t)(len >> 8);
    out[1] = (uint8_t)len;
    for (size_t i = 0; i < len; i++)
        out[2 + i] = ott_frames_byte(k, len, i);
    return 2 + len;
}

static void ott_frames_packet(void *arg, uint8_t *pkt, size_t len)
{
    struct ott_frames *f = arg;
    ASSERT(f->got < OTT_FRAMES_CAP);
    f->len[f->got] = len;
    f->intact[f->got] = 1;
    for (size_t i = 0; i < len; i++)
        if (pkt[i] != ott_frames_byte(f->got % 3, len, i))
            f->intact[f->got] = 0;
    f->got++;
}

static void ott_frames_failed(void *arg, int status, const char *why)
{
    struct ott_frames *f = arg;
    (void)why;
    f->failed = 1;
    f->status = status;
}

static void ott_frames_connected(void *arg)
{
    ((struct ott_frames *)arg)->connected = 1;
}

static int ott_frames_got(void *arg)
{
    struct ott_frames *f = arg;
    return f->got >= f->want;
}

/* Nothing waits in the transport's socket: it read what was sent. */
static int ott_frames_read(void *arg)
{
    struct ott_frames *f = arg;
    int n = -1;
    return ioctl(f->tfd, FIONREAD, &n) == 0 && n == 0;
}

/* Sends n bytes, and (if settle) runs the loop until the transport read them. */
static void ott_frames_send(struct ott_frames *f, const uint8_t *p, size_t n, int settle)
{
    size_t off = 0;
    while (off < n) {
        ssize_t w = send(f->conn, p + off, n - off, MSG_DONTWAIT);
        if (w < 0) {
            ASSERT(errno == EAGAIN);
            uv_run(&f->loop, UV_RUN_NOWAIT);
            continue;
        }
        off += (size_t)w;
    }
    if (settle && !uvtest_run_until_fn(&f->loop, ott_frames_read, f, 2000))
        TEST_FAIL_AT("the transport did not read %zu bytes", n);
}

TEST_IMPL(ovpn_transport_tcp_frames)
{
    struct ott_frames f = {0};
    ASSERT_EQ(uv_loop_init(&f.loop), 0);
    struct sockaddr_in sa;
    int lfd = ott_tcp_listen(&sa);
    struct ovpn_transport_events ev = {.connected = ott_frames_connected,
                                       .packet = ott_frames_packet,
                                       .writable = ott_writable,
                                       .failed = ott_frames_failed,
                                       .arg = &f};
    ASSERT_EQ(ovpn_transport_open(&f.t, &f.loop, (struct sockaddr *)&sa, OVPN_PROTO_TCP, &ev), 0);
    ASSERT(uvtest_run_until(&f.loop, &f.connected, 1000));
    f.conn = accept(lfd, NULL, NULL);
    ASSERT(f.conn >= 0);
    struct sockaddr_in peer;
    socklen_t pl = sizeof(peer);
    ASSERT_EQ(getpeername(f.conn, (struct sockaddr *)&peer, &pl), 0);
    f.tfd = -1;
    for (int fd = 3; fd < 1024 && f.tfd < 0; fd++) {
        struct sockaddr_in me;
        socklen_t ml = sizeof(me);
        if (fd != f.conn && getsockname(fd, (struct sockaddr *)&me, &ml) == 0 && ml == sizeof(me) &&
            me.sin_family == AF_INET && me.sin_port == peer.sin_port)
            f.tfd = fd;
    }
    ASSERT(f.tfd >= 0);

    /* Three packets (1, 300 and 256 bytes: a length with a zero low byte), the stream cut once
     * at every offset. */
    static const size_t lens[3] = {1, 300, 256};
    static uint8_t stream[2 * OTT_FRAMES_MAX + 8];
    size_t total = 0;
    for (unsigned k = 0; k < 3; k++)
        total += ott_frames_put(stream + total, k, lens[k]);
    for (size_t cut = 1; cut < total; cut++) {
        f.got = 0;
        ott_frames_send(&f, stream, cut, 1);
        ott_frames_send(&f, stream + cut, total - cut, 0);
        f.want = 3;
        if (!uvtest_run_until_fn(&f.loop, ott_frames_got, &f, 2000))
            TEST_FAIL_AT("cut at %zu: %u of 3 packets", cut, f.got);
        for (unsigned k = 0; k < 3; k++)
            if (f.len[k] != lens[k] || !f.intact[k])
                TEST_FAIL_AT("cut at %zu: packet %u is %zu bytes (want %zu), intact %d", cut, k, f.len[k], lens[k],
                             f.intact[k]);
    }

    /* The largest packet and a 1-byte one, cut between the bytes of the first length and in the
     * middle of the packet. */
    f.got = 0;
    total = ott_frames_put(stream, 0, OTT_FRAMES_MAX);
    total += ott_frames_put(stream + total, 1, 1);
    ott_frames_send(&f, stream, 1, 1);
    ott_frames_send(&f, stream + 1, 40000, 1);
    ott_frames_send(&f, stream + 40001, total - 40001, 0);
    f.want = 2;
    ASSERT(uvtest_run_until_fn(&f.loop, ott_frames_got, &f, 2000));
    ASSERT_EQ(f.len[0], OTT_FRAMES_MAX);
    ASSERT(f.intact[0]);
    ASSERT_EQ(f.len[1], 1);
    ASSERT(f.intact[1]);
    ASSERT_EQ(f.failed, 0);

    /* A zero length, then a good packet: the link fails; nothing more is handed over. */
    f.got = 0;
    stream[0] = stream[1] = 0;
    total = 2 + ott_frames_put(stream + 2, 0, 5);
    ott_frames_send(&f, stream, total, 0);
    ASSERT(uvtest_run_until(&f.loop, &f.failed, 2000));
    ASSERT_EQ(f.status, UV_EPROTO);
    ASSERT_EQ(f.got, 0);

    ovpn_transport_close(f.t);
    uvtest_loop_finish(&f.loop);
    close(f.conn);
    close(lfd);
    return 0;
}

/* The send queue has a ceiling. A server that reads nothing (a thin uplink under OpenVPN over TCP)
 * while packets keep coming that take no notice of "congested" (UDP and ICMP answers): past 16
 * MiB waiting, each packet is refused with UV_ENOBUFS and the link carries on; once the server
 * reads again the link takes packets again. Before, the queue took all 64 MiB offered. */
static void ott_queue_drain(struct ott *o, int conn, size_t *drained)
{
    uint8_t buf[65536];
    ssize_t n;
    while ((n = recv(conn, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
        *drained += (size_t)n;
    uv_run(&o->loop, UV_RUN_NOWAIT);
}

TEST_IMPL(ovpn_transport_queue_cap)
{
    struct ott o = {0};
    ASSERT_EQ(uv_loop_init(&o.loop), 0);
    struct sockaddr_in sa;
    int lfd = ott_tcp_listen(&sa);
    struct ovpn_transport_events ev = {
        .connected = ott_connected, .packet = ott_packet, .writable = ott_writable, .failed = ott_failed, .arg = &o};
    ASSERT_EQ(ovpn_transport_open(&o.t, &o.loop, (struct sockaddr *)&sa, OVPN_PROTO_TCP, &ev), 0);
    ASSERT(uvtest_run_until(&o.loop, &o.connected, 1000));
    int conn = accept(lfd, NULL, NULL);
    ASSERT(conn >= 0);

    static uint8_t pkt[OTT_BIG];
    memset(pkt, 0x5a, sizeof(pkt));
    size_t offered = 0, first_refused_at = 0;
    unsigned refused = 0, sent = 0;
    for (unsigned i = 0; offered < 64u * 1024 * 1024; i++, sent++) {
        int rc = ovpn_transport_send(o.t, pkt, sizeof(pkt));
        if (rc == UV_ENOBUFS) {
            if (!refused++)
                first_refused_at = offered;
        } else if (rc < 0) {
            TEST_FAIL_AT("send %u: %s", i, uv_strerror(rc));
        }
        offered += sizeof(pkt);
        if (i % 64 == 0)
            uv_run(&o.loop, UV_RUN_NOWAIT);
    }
    if (refused == 0)
        TEST_FAIL_AT("all %zu MiB offered were queued; none refused", offered >> 20);
    ASSERT(first_refused_at >= 16u * 1024 * 1024); /* never below the ceiling */
    ASSERT_EQ(o.failed, 0);

    /* The server reads everything: the link takes packets again and carries what it kept. */
    size_t drained = 0, want = (size_t)(sent - refused) * (2 + sizeof(pkt)); /* each behind its length */
    for (int i = 0; i < 20000 && drained < want; i++)
        ott_queue_drain(&o, conn, &drained);
    ASSERT_EQ(drained, want);
    ASSERT_EQ(ovpn_transport_send(o.t, pkt, sizeof(pkt)), 0);
    ASSERT_EQ(o.failed, 0);
    ovpn_transport_close(o.t);
    uvtest_loop_finish(&o.loop);
    close(conn);
    close(lfd);
    return 0;
}

/* The close sends the last datagrams (the client's explicit-exit-notify) while libuv's send queue
 * holds others: a link behind a saturated uplink, here a veth whose qdisc (tbf at 1 kbit) holds
 * what the socket sent until the test lets it go, so that the socket's buffer is full and
 * datagrams wait in libuv's queue. Round 0: the qdisc lets go before the close, the socket has
 * room again, and the last datagram goes ahead of the queue the close cancels. Round 1: it lets
 * go only after the close, and the last datagram goes once the socket has room. Before, the close
 * sent nothing while libuv's queue was not empty, so both were lost. Needs root (a network
 * namespace of the test's own, ip and tc); skipped without. */
enum { OTT_LAST_LEN = 77, OTT_LAST_BYTE = 0xee };

static int ott_sh(const char *cmd)
{
    int rc = system(cmd);
    return rc == 0 ? 0 : -1;
}

/* Whether the capture socket on the veth's far end saw the last datagram within ms. */
static int ott_saw_last(int cap, unsigned ms)
{
    uint8_t buf[2048];
    for (unsigned waited = 0; waited <= ms; waited++) {
        ssize_t n;
        while ((n = recv(cap, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
            if (n == 20 + 8 + OTT_LAST_LEN && buf[n - 1] == OTT_LAST_BYTE)
                return 1;
        }
        usleep(1000);
    }
    return 0;
}

TEST_IMPL(ovpn_transport_udp_close_sends_last)
{
    if (geteuid() != 0 || unshare(CLONE_NEWNET) != 0 ||
        ott_sh("ip link set lo up && ip link add v2sa type veth peer name v2sb && ip link set v2sa up && "
               "ip link set v2sb up && ip addr add 10.9.0.1/24 dev v2sa && "
               "ip neigh add 10.9.0.3 lladdr 02:00:00:00:00:03 dev v2sa") != 0) {
        fprintf(stderr, "skipped: needs root, a network namespace, ip and tc\n");
        return 0;
    }
    int cap = socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_IP));
    ASSERT(cap >= 0);
    int big = 256 * 1024 * 1024;
    ASSERT_EQ(setsockopt(cap, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big)), 0);
    struct sockaddr_ll ll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP),
                             .sll_ifindex = (int)if_nametoindex("v2sb")};
    ASSERT(ll.sll_ifindex > 0);
    ASSERT_EQ(bind(cap, (struct sockaddr *)&ll, sizeof(ll)), 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(9)};
    ASSERT_EQ(inet_pton(AF_INET, "10.9.0.3", &sa.sin_addr), 1);

    for (int round = 0; round < 2; round++) {
        if (ott_sh("tc qdisc replace dev v2sa root tbf rate 1kbit burst 2000 limit 200000000") != 0) {
            fprintf(stderr, "skipped: no tbf qdisc\n");
            close(cap);
            return 0;
        }
        struct ott o = {0};
        ASSERT_EQ(uv_loop_init(&o.loop), 0);
        struct ovpn_transport_events ev = {
            .connected = ott_connected, .packet = ott_packet, .writable = ott_writable, .failed = ott_failed, .arg = &o};
        ASSERT_EQ(ovpn_transport_open(&o.t, &o.loop, (struct sockaddr *)&sa, OVPN_PROTO_UDP, &ev), 0);
        ASSERT(uvtest_run_until(&o.loop, &o.connected, 1000));
        /* Until the socket's buffer is full and libuv's queue holds a MiB (the send says 1). */
        static uint8_t pkt[OTT_BIG];
        memset(pkt, 0x11, sizeof(pkt));
        int rc = 0;
        for (unsigned i = 0; i < 200000 && rc != 1; i++) {
            rc = ovpn_transport_send(o.t, pkt, sizeof(pkt));
            ASSERT(rc >= 0);
            if (i % 64 == 0)
                uv_run(&o.loop, UV_RUN_NOWAIT);
        }
        if (rc != 1)
            TEST_FAIL_AT("round %d: the socket took everything; no queue to test", round);
        while (recv(cap, pkt, sizeof(pkt), MSG_DONTWAIT) > 0) {
        }
        if (round == 0)
            ASSERT_EQ(ott_sh("tc qdisc replace dev v2sa root pfifo limit 100000"), 0);
        uint8_t last[OTT_LAST_LEN];
        memset(last, OTT_LAST_BYTE, sizeof(last));
        ASSERT(ovpn_transport_send(o.t, last, sizeof(last)) >= 0);
        ovpn_transport_close(o.t);
        if (round == 1)
            ASSERT_EQ(ott_sh("tc qdisc replace dev v2sa root pfifo limit 100000"), 0);
        uvtest_loop_finish(&o.loop);
        if (!ott_saw_last(cap, 5000))
            TEST_FAIL_AT("round %d: the last datagram never left", round);
    }
    close(cap);
    return 0;
}
