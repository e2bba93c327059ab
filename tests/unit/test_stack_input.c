/* Hostile or unlucky segments from the tunnel against the stack's TCP (stack/, lwIP behind the
 * fake tunnel of harness_tun.h): the test plays the server by hand and checks what a user would,
 * that the process lives on and the bytes arrive. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <uv.h>

#include "base/bytes.h"
#include "harness_tun.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"
#include "stack/dnstcp.h"
#include "stack/internal.h"
#include "stack/lwip_pin.h"
#include "stack/stack.h"
#include "stack/tcp.h"
#include "stack/tcp_internal.h"
#include "test.h"

enum { INPUT_PEER_ISN = 7000000 };

struct input {
    struct harness_tun_tcp tcp;
    int probes;          /* one-byte segments the stack sent */
    uint32_t probe_seq;  /* the last one's sequence number */
    int data_segs;       /* segments with more than one byte */
    int resets;          /* segments with RST */
    uint32_t sent_end;   /* the highest sequence number past data the stack sent */
    uint32_t ends[64];   /* ends of the data segments sent since input_ack_each() last ran */
    unsigned n_ends;
    uv_write_t write_req;
    uv_shutdown_t shutdown_req;
};

static void input_send(struct harness_tun *t, const uint8_t *pkt, size_t len)
{
    struct input *in = t->arg;
    const uint8_t *tcp = pkt + 20;
    size_t doff = (size_t)(tcp[12] >> 4) * 4;
    size_t payload = len - 20 - doff;
    if (getenv("INPUT_TRACE"))
        fprintf(stderr, "t=%u flags %02x seq %u ack %u len %zu\n", in->tcp.tun.now_ms, tcp[13],
                v2s_get_be32(tcp + 4), v2s_get_be32(tcp + 8), payload);
    if (tcp[13] & 0x04)
        in->resets++;
    uint32_t end = v2s_get_be32(tcp + 4) + (uint32_t)payload;
    if (payload > 0 && (int32_t)(end - in->sent_end) > 0)
        in->sent_end = end;
    if (payload > 0 && in->n_ends < 64)
        in->ends[in->n_ends++] = end;
    if (payload == 1) {
        in->probes++;
        in->probe_seq = v2s_get_be32(tcp + 4);
    } else if (payload > 1) {
        in->data_segs++;
    }
}

static void input_written(uv_write_t *req, int status)
{
    (void)req;
    ASSERT_EQ(status, 0);
}

/* One segment from the server (window field wnd, n bytes of data), run through the stack. */
static void input_segment(struct input *in, uint8_t flags, uint32_t seq, uint32_t ack, uint16_t wnd, size_t n)
{
    uint8_t pkt[1500], data[100];
    memset(data, 'y', sizeof(data));
    size_t len = harness_tun_tcp4(pkt, sizeof(pkt), &in->tcp.peer, 7, &in->tcp.us, in->tcp.sport, flags, seq, ack,
                                  wnd, NULL, 0, data, n);
    ASSERT(len > 0);
    harness_tun_inject(&in->tcp.tun, pkt, len);
}

/* A server whose window is shut while the application writes one byte: lwIP's persist timer
 * sends that byte as a probe, and a server that has room by then takes it and acknowledges it
 * (its window update was lost, or it still says 0). The ACK frees the one-byte segment, the last
 * unsent one, while the persist timer still runs; lwIP 2.1.3's next slow tick then asserts
 * ("persist ticking with empty send buffer") and the whole process aborted. */
TEST_IMPL(stack_input_probe_byte_acked)
{
    static struct input in;
    memset(&in, 0, sizeof(in));
    const struct harness_tun_tcp_config cfg = {.seed = 9, .port = 7, .isn = INPUT_PEER_ISN, .wnd = 65535, .mss = 1400};
    harness_tun_tcp_open(&in.tcp, &cfg, input_send, &in);
    uint32_t seq = INPUT_PEER_ISN + 1, our = in.tcp.syn_seq + 1;

    /* The server sends data and shuts its window. */
    input_segment(&in, 0x18, seq, our, 0, 100);
    seq += 100;
    harness_tun_advance(&in.tcp.tun, 100);

    /* One byte from the application: held, the persist timer probes with it. */
    static char one[1] = {'a'};
    uv_buf_t buf = uv_buf_init(one, 1);
    ASSERT_EQ(uv_write(&in.write_req, (uv_stream_t *)&in.tcp.app.client, &buf, 1, input_written), 0);
    harness_tun_advance(&in.tcp.tun, 400);
    ASSERT(in.probes >= 1);
    ASSERT_EQ(in.probe_seq, our);

    /* The server took the probe's byte: it acknowledges it, window still shut. */
    input_segment(&in, 0x10, seq, our + 1, 0, 0);
    harness_tun_advance(&in.tcp.tun, 2000);

    /* Still alive: the server opens its window and more data flows. */
    input_segment(&in, 0x10, seq, our + 1, 65535, 0);
    static char more[1000];
    memset(more, 'b', sizeof(more));
    buf = uv_buf_init(more, sizeof(more));
    ASSERT_EQ(uv_write(&in.write_req, (uv_stream_t *)&in.tcp.app.client, &buf, 1, input_written), 0);
    harness_tun_advance(&in.tcp.tun, 200);
    ASSERT(in.data_segs >= 1);

    harness_tun_tcp_close(&in.tcp);
    ASSERT_EQ(in.tcp.app.done, 1);
    return 0;
}

/* The peer's window stays shut from the handshake on (its SYN-ACK's window field is 0) while the
 * application writes, then opens a little (100 bytes). lwIP sizes the segments tcp_write() makes
 * to half the largest window the peer has offered, but to the full MSS while that is 0 or 1, so
 * the first write made a full segment and the next, after the window opened, found the last
 * unsent segment larger than its new size: an lwIP assertion ("mss_local is too small") that
 * aborted the process. The bytes must arrive whole once the window opens. */
TEST_IMPL(stack_input_window_opens_small)
{
    static struct input in;
    memset(&in, 0, sizeof(in));
    const struct harness_tun_tcp_config cfg = {.seed = 15, .port = 7, .isn = INPUT_PEER_ISN, .wnd = 0, .mss = 1400};
    harness_tun_tcp_open(&in.tcp, &cfg, input_send, &in);
    uint32_t seq = INPUT_PEER_ISN + 1, our = in.tcp.syn_seq + 1;
    in.sent_end = our;

    static char first[2000], second[300];
    memset(first, 'a', sizeof(first));
    memset(second, 'b', sizeof(second));
    uv_buf_t buf = uv_buf_init(first, sizeof(first));
    ASSERT_EQ(uv_write(&in.write_req, (uv_stream_t *)&in.tcp.app.client, &buf, 1, input_written), 0);
    harness_tun_advance(&in.tcp.tun, 100);
    ASSERT_EQ(in.data_segs, 0);

    /* A window of 100 bytes, then more from the application. */
    input_segment(&in, 0x10, seq, our, 100, 0);
    harness_tun_advance(&in.tcp.tun, 100);
    static uv_write_t second_req;
    buf = uv_buf_init(second, sizeof(second));
    ASSERT_EQ(uv_write(&second_req, (uv_stream_t *)&in.tcp.app.client, &buf, 1, input_written), 0);
    harness_tun_advance(&in.tcp.tun, 100);

    /* The window opens wide: everything goes, acknowledged as it comes. */
    input_segment(&in, 0x10, seq, our, 65535, 0);
    uint32_t acked = 0;
    for (int i = 0; i < 100 && acked < sizeof(first) + sizeof(second); i++) {
        harness_tun_advance(&in.tcp.tun, 100);
        acked = in.sent_end - our;
        input_segment(&in, 0x10, seq, in.sent_end, 65535, 0);
    }
    ASSERT_EQ(acked, sizeof(first) + sizeof(second));

    harness_tun_tcp_close(&in.tcp);
    return 0;
}

/* The data segments the stack sent since the last call, acknowledged one by one (each ACK grows
 * the congestion window, as from a real receiver), with the window field wnd. */
static void input_ack_each(struct input *in, uint32_t seq, uint16_t wnd)
{
    uint32_t ends[64];
    unsigned n = in->n_ends;
    memcpy(ends, in->ends, n * sizeof(ends[0]));
    in->n_ends = 0;
    for (unsigned i = 0; i < n; i++)
        input_segment(in, 0x10, seq, ends[i], wnd, 0);
}

/* A peer announcing an MSS of 1 byte: lwIP's tcp_write() takes a write whole or not at all, and
 * the stack handed it up to 64 KiB at once, which at one byte a segment needs more segments than
 * lwIP queues (TCP_SND_QUEUELEN, 11,491): refused every time, nothing in flight, so no ACK ever
 * came to try again, and the upload hung for good. The bytes must all arrive, if slowly. Since
 * stack.c raises such an MSS to 48, a tiny window is what still makes one-byte segments
 * (stack_input_window_tiny). */
TEST_IMPL(stack_input_mss_tiny)
{
    static struct input in;
    memset(&in, 0, sizeof(in));
    const struct harness_tun_tcp_config cfg = {.seed = 17, .port = 7, .isn = INPUT_PEER_ISN, .wnd = 65535, .mss = 1};
    harness_tun_tcp_open(&in.tcp, &cfg, input_send, &in);
    uint32_t seq = INPUT_PEER_ISN + 1, our = in.tcp.syn_seq + 1;
    in.sent_end = our;

    enum { TINY_BYTES = 12000 };
    static char data[TINY_BYTES];
    memset(data, 'a', sizeof(data));
    uv_buf_t buf = uv_buf_init(data, sizeof(data));
    ASSERT_EQ(uv_write(&in.write_req, (uv_stream_t *)&in.tcp.app.client, &buf, 1, input_written), 0);
    for (int i = 0; i < 20000 && in.sent_end - our < TINY_BYTES; i++) {
        harness_tun_advance(&in.tcp.tun, 5);
        input_ack_each(&in, seq, 65535);
    }
    ASSERT_EQ(in.sent_end - our, TINY_BYTES);

    harness_tun_tcp_close(&in.tcp);
    return 0;
}

/* The same for a peer whose window never passes 2 bytes (no scaling): lwIP makes segments of half
 * the largest window offered, one byte, whatever the MSS (which stack.c raises to 48), so a write
 * of 12,000 bytes needs more segments than lwIP queues, as a tiny MSS did before that floor. */
TEST_IMPL(stack_input_window_tiny)
{
    static struct input in;
    memset(&in, 0, sizeof(in));
    const struct harness_tun_tcp_config cfg = {.seed = 29, .port = 7, .isn = INPUT_PEER_ISN, .wnd = 2, .mss = 1400};
    harness_tun_tcp_open(&in.tcp, &cfg, input_send, &in);
    uint32_t seq = INPUT_PEER_ISN + 1, our = in.tcp.syn_seq + 1;
    in.sent_end = our;

    enum { TINY_BYTES = 12000 };
    static char data[TINY_BYTES];
    memset(data, 'w', sizeof(data));
    uv_buf_t buf = uv_buf_init(data, sizeof(data));
    ASSERT_EQ(uv_write(&in.write_req, (uv_stream_t *)&in.tcp.app.client, &buf, 1, input_written), 0);
    for (int i = 0; i < 20000 && in.sent_end - our < TINY_BYTES; i++) {
        harness_tun_advance(&in.tcp.tun, 5);
        input_ack_each(&in, seq, 2);
    }
    ASSERT_EQ(in.sent_end - our, TINY_BYTES);

    harness_tun_tcp_close(&in.tcp);
    return 0;
}

/* lwIP's active pcbs (the test runs one stack per process). */
static int input_active_pcbs(void)
{
    int n = 0;
    for (const struct tcp_pcb *pcb = tcp_active_pcbs; pcb; pcb = pcb->next)
        n++;
    return n;
}

/* A server that shuts its window, and once the application has written and closed, sends its own
 * FIN before acknowledging ours: the connection is in CLOSING with the data and our FIN unsent,
 * both ends have closed, and the bridge is over (the pcb left to lwIP to finish). If the server
 * then answers every zero-window probe and never opens its window, lwIP 2.1.3 keeps that pcb
 * forever (a probe answered never counts against it, and CLOSING has no timeout of its own),
 * with its unsent data and a TCP tick 40 times a second; a peer could pile up such connections
 * past any cap on open ones. As lwIP ends LAST_ACK, and as Linux gives up on an orphan's probes
 * after about two minutes, it is reset 2 * TCP_MSL after the close. */
TEST_IMPL(stack_input_closing_zero_window)
{
    static struct input in;
    memset(&in, 0, sizeof(in));
    const struct harness_tun_tcp_config cfg = {.seed = 11, .port = 7, .isn = INPUT_PEER_ISN, .wnd = 65535, .mss = 1400};
    harness_tun_tcp_open(&in.tcp, &cfg, input_send, &in);
    uint32_t seq = INPUT_PEER_ISN + 1, our = in.tcp.syn_seq + 1;

    /* The server sends a request and shuts its window. */
    input_segment(&in, 0x18, seq, our, 0, 100);
    seq += 100;
    harness_tun_advance(&in.tcp.tun, 100);

    /* The application answers and closes its side: data and FIN wait behind the shut window. */
    static char answer[1000];
    memset(answer, 'a', sizeof(answer));
    uv_buf_t buf = uv_buf_init(answer, sizeof(answer));
    ASSERT_EQ(uv_write(&in.write_req, (uv_stream_t *)&in.tcp.app.client, &buf, 1, input_written), 0);
    ASSERT_EQ(uv_shutdown(&in.shutdown_req, (uv_stream_t *)&in.tcp.app.client, NULL), 0);
    harness_tun_advance(&in.tcp.tun, 100);

    /* The server's FIN, nothing of ours acknowledged: CLOSING, both ends closed. */
    input_segment(&in, 0x11, seq, our, 0, 0);
    seq += 1;
    harness_tun_advance(&in.tcp.tun, 200);
    ASSERT_EQ(in.tcp.app.done, 1);
    ASSERT_EQ(input_active_pcbs(), 1);

    /* Ten minutes of a server that answers each probe, window still shut. */
    int answered = 0;
    for (int i = 0; i < 600 * 10; i++) {
        int before = in.probes;
        harness_tun_advance(&in.tcp.tun, 100);
        if (in.probes != before && in.resets == 0) {
            input_segment(&in, 0x10, seq, our, 0, 0);
            answered++;
        }
    }
    ASSERT(answered >= 10);
    ASSERT_EQ(in.resets, 1);
    ASSERT_EQ(input_active_pcbs(), 0);

    harness_tun_tcp_close(&in.tcp);
    return 0;
}

/* --- every local port held by a connection in TIME_WAIT --- */

struct input_tw {
    struct harness_tun tun;
    uint32_t syn_seq; /* the last SYN the stack sent */
    uint16_t syn_sport;
    int syns;
    int status;       /* the stack connection's, once known */
};

static void input_tw_send(struct harness_tun *t, const uint8_t *pkt, size_t len)
{
    struct input_tw *w = t->arg;
    if (len < 40 || pkt[9] != 6)
        return;
    const uint8_t *tcp = pkt + 20;
    if (tcp[13] & 0x02) {
        w->syns++;
        w->syn_seq = v2s_get_be32(tcp + 4);
        w->syn_sport = v2s_get_be16(tcp);
    }
}

static void input_tw_connected(void *arg, struct stack_tcp *c, int status)
{
    struct input_tw *w = arg;
    (void)c;
    w->status = status;
}

static void input_tw_dns_answer(void *arg, int status, const uint8_t *msg, size_t len)
{
    struct input_tw *w = arg;
    (void)msg;
    (void)len;
    w->status = status;
}

/* One segment from peer:80 to us:port, run through the stack. */
static void input_tw_segment(struct input_tw *w, const struct v2s_addr *peer, const struct v2s_addr *us,
                             uint16_t port, uint8_t flags, uint32_t seq, uint32_t ack)
{
    uint8_t pkt[128];
    size_t len = harness_tun_tcp4(pkt, sizeof(pkt), peer, 80, us, port, flags, seq, ack, 65535, NULL, 0, NULL, 0);
    ASSERT(len > 0);
    harness_tun_inject(&w->tun, pkt, len);
}

/* An application that opens and closes connections faster than TIME_WAIT (2 * TCP_MSL, two
 * minutes) lets them go: 137 a second hold every port the stack draws from (49152-65535), each
 * in TIME_WAIT on our side (we closed first). Every random draw then fails, and lwIP's own search
 * for a free port walked all 16,384 ports against every pcb (some 10^8 steps, the loop stalled
 * for it) and found none: the connect failed (UV_ENOBUFS) until the oldest expired. A port held
 * only in TIME_WAIT is taken from the oldest such connection, as lwIP itself does when it has no
 * memory for a pcb; DNS over TCP binds the same way. */
TEST_IMPL(stack_input_ports_in_time_wait)
{
    static struct input_tw w;
    memset(&w, 0, sizeof(w));
    const struct harness_tun_config cfg = {.addr4 = "10.8.0.2", .seed = 13};
    ASSERT_EQ(harness_tun_up(&w.tun, &cfg, input_tw_send, &w), 0);
    struct v2s_addr us, peer;
    ASSERT_EQ(v2s_addr_parse(&us, "10.8.0.2"), 0);
    ASSERT_EQ(v2s_addr_parse(&peer, "10.9.0.1"), 0);
    ip_addr_t peer_ip;
    IP_ADDR4(&peer_ip, 10, 9, 0, 1);

    /* Every port of the range: connected, closed by us first, the peer's FIN after: TIME_WAIT. */
    for (uint32_t port = STACK_PORT_FIRST; port <= 65535; port++) {
        struct tcp_pcb *pcb = tcp_new_ip_type(IPADDR_TYPE_V4);
        ASSERT(pcb != NULL);
        ASSERT_EQ(tcp_bind(pcb, IP4_ADDR_ANY, (u16_t)port), ERR_OK);
        int syns = w.syns;
        ASSERT_EQ(tcp_connect(pcb, &peer_ip, 80, NULL), ERR_OK);
        ASSERT_EQ(w.syns, syns + 1);
        uint32_t iss = w.syn_seq;
        input_tw_segment(&w, &peer, &us, (uint16_t)port, 0x12, 1000, iss + 1);
        ASSERT_EQ(pcb->state, ESTABLISHED);
        ASSERT_EQ(tcp_close(pcb), ERR_OK);
        input_tw_segment(&w, &peer, &us, (uint16_t)port, 0x11, 1001, iss + 2);
    }
    int tw = 0;
    for (const struct tcp_pcb *pcb = tcp_tw_pcbs; pcb; pcb = pcb->next)
        tw++;
    ASSERT_EQ(tw, 65536 - STACK_PORT_FIRST);

    /* DNS over TCP (a truncated answer's retry) still opens too, from a port of the range. */
    static const uint8_t query[12] = {0x12, 0x34, 0x01, 0x00, 0, 1};
    struct dnstcp *q = NULL;
    int syns = w.syns;
    ASSERT_EQ(dnstcp_ask(w.tun.stack, &peer, query, sizeof(query), input_tw_dns_answer, &w, &q), 0);
    ASSERT_EQ(w.syns, syns + 1);
    ASSERT(w.syn_sport >= STACK_PORT_FIRST);
    dnstcp_cancel(q);

    /* A new connection still opens, from a port of the range. */
    struct stack_tcp *c = NULL;
    w.status = 1;
    syns = w.syns;
    ASSERT_EQ(stack_tcp_connect(w.tun.stack, &peer, 443, 60000, input_tw_connected, &w, &c), 0);
    ASSERT_EQ(w.syns, syns + 1);
    ASSERT(w.syn_sport >= STACK_PORT_FIRST);
    stack_tcp_cancel(c);
    ASSERT_EQ(w.status, 1);
    ASSERT_EQ(harness_tun_down(&w.tun), 0);
    return 0;
}

/* --- destinations that cannot be a TCP peer --- */

static int input_nohost_sent;

static void input_nohost_send(struct harness_tun *t, const uint8_t *pkt, size_t len)
{
    (void)t;
    (void)pkt;
    (void)len;
    input_nohost_sent++;
}

static void input_nohost_connected(void *arg, struct stack_tcp *c, int status)
{
    (void)c;
    *(int *)arg = status;
}

/* A connection asked for an address no host behind the VPN can have (the unspecified address,
 * IPv6's loopback, multicast, the limited broadcast) failed only after the connect timeout (20 s
 * by default: a SOCKS client got reply 6, "TTL expired"), while its SYNs went to the VPN server;
 * 127.0.0.1 already failed at once (lwIP routes no loopback address), so ::1 and 127.0.0.1 were
 * answered differently. Now each fails at once, as "no route" (UV_ENETUNREACH, SOCKS reply 3),
 * and sends nothing; a host's address still connects. */
TEST_IMPL(stack_input_connect_no_host)
{
    static struct harness_tun t;
    memset(&t, 0, sizeof(t));
    const struct harness_tun_config cfg = {.addr4 = "10.8.0.2", .addr6 = "fd00::2", .seed = 17};
    ASSERT_EQ(harness_tun_up(&t, &cfg, input_nohost_send, NULL), 0);
    static const char *const no_host[] = {
        "0.0.0.0", "0.1.2.3", "127.0.0.1", "224.0.0.1", "239.255.255.250", "255.255.255.255",
        "::", "::1", "ff02::1", "ff05::1:3",
    };
    for (size_t i = 0; i < ARRAY_SIZE(no_host); i++) {
        struct v2s_addr dst;
        struct stack_tcp *c = NULL;
        int status = 1;
        ASSERT_EQ(v2s_addr_parse(&dst, no_host[i]), 0);
        int sent = input_nohost_sent;
        int rc = stack_tcp_connect(t.stack, &dst, 80, 60000, input_nohost_connected, &status, &c);
        ASSERT_ROW(rc == UV_ENETUNREACH, "%s: %d", no_host[i], rc);
        ASSERT_ROW(input_nohost_sent == sent, "%s: a packet was sent", no_host[i]);
        ASSERT_EQ(status, 1);
    }
    static const char *const hosts[] = {"10.9.0.1", "fd00:99::1", "169.254.1.1", "240.0.0.1"};
    for (size_t i = 0; i < ARRAY_SIZE(hosts); i++) {
        struct v2s_addr dst;
        struct stack_tcp *c = NULL;
        int status = 1;
        ASSERT_EQ(v2s_addr_parse(&dst, hosts[i]), 0);
        int sent = input_nohost_sent;
        ASSERT_EQ(stack_tcp_connect(t.stack, &dst, 80, 60000, input_nohost_connected, &status, &c), 0);
        ASSERT_ROW(input_nohost_sent == sent + 1, "%s: no SYN", hosts[i]);
        stack_tcp_cancel(c);
        ASSERT_EQ(status, 1);
    }
    ASSERT_EQ(harness_tun_down(&t), 0);
    return 0;
}

/* --- an MSS option after the handshake --- */

/* The largest payload of a data segment the stack sent, and the IP fragments it sent (a segment
 * larger than the tunnel's MTU). */
static size_t input_mss_largest, input_mss_fragments;

static void input_mss_send(struct harness_tun *t, const uint8_t *pkt, size_t len)
{
    if (v2s_get_be16(pkt + 6) & 0x3FFF) {
        input_mss_fragments++;
        return;
    }
    input_send(t, pkt, len);
    const uint8_t *tcp = pkt + 20;
    size_t payload = len - 20 - (size_t)(tcp[12] >> 4) * 4;
    if (payload > input_mss_largest)
        input_mss_largest = payload;
}

/* lwIP 2.1.3 takes an MSS option from any segment, not only the SYN-ACK, and before it checks
 * the segment, so a peer (or anyone who knows the ports) that put one on an ACK set the
 * connection's MSS: 64 while a segment of the old size waited unsent aborted the process at the
 * next write (lwIP's "mss_local is too small", seen with random packets), and 1460 gave
 * segments larger than the tunnel's MTU (1400), sent in IP fragments. The option counts on SYNs
 * only (RFC 9293 3.7.1): the upload arrives in segments of the handshake's MSS, whatever the ACKs
 * say. */
TEST_IMPL(stack_input_mss_after_handshake)
{
    static struct input in;
    memset(&in, 0, sizeof(in));
    const struct harness_tun_tcp_config cfg = {.seed = 19, .port = 7, .isn = INPUT_PEER_ISN, .wnd = 65535, .mss = 1200};
    harness_tun_tcp_open(&in.tcp, &cfg, input_mss_send, &in);
    uint32_t seq = INPUT_PEER_ISN + 1, our = in.tcp.syn_seq + 1;
    in.sent_end = our;

    /* The application writes 5000 bytes at a time, so that lwIP makes segments after each ACK. */
    enum { MSS_BYTES = 200000, MSS_CHUNK = 5000 };
    static char data[MSS_BYTES];
    static uv_write_t reqs[MSS_BYTES / MSS_CHUNK];
    memset(data, 'm', sizeof(data));
    size_t written = 0;
    static const uint16_t mss_opts[] = {64, 1460, 1};
    for (int i = 0; i < 2000 && in.sent_end - our < MSS_BYTES; i++) {
        if (written < MSS_BYTES && in.sent_end - our >= written) {
            uv_buf_t buf = uv_buf_init(data + written, MSS_CHUNK);
            ASSERT_EQ(uv_write(&reqs[written / MSS_CHUNK], (uv_stream_t *)&in.tcp.app.client, &buf, 1, input_written),
                      0);
            written += MSS_CHUNK;
        }
        harness_tun_advance(&in.tcp.tun, 5);
        uint32_t ends[64];
        unsigned n = in.n_ends;
        memcpy(ends, in.ends, n * sizeof(ends[0]));
        in.n_ends = 0;
        for (unsigned k = 0; k < n; k++) {
            uint8_t opt[4] = {2, 4, 0, 0}, pkt[128];
            v2s_put_be16(opt + 2, mss_opts[(i + k) % ARRAY_SIZE(mss_opts)]);
            size_t len = harness_tun_tcp4(pkt, sizeof(pkt), &in.tcp.peer, 7, &in.tcp.us, in.tcp.sport, 0x10, seq,
                                          ends[k], 65535, opt, sizeof(opt), NULL, 0);
            harness_tun_inject(&in.tcp.tun, pkt, len);
        }
    }
    ASSERT_EQ(input_mss_fragments, 0);
    ASSERT_EQ(in.sent_end - our, MSS_BYTES);
    ASSERT(input_mss_largest <= 1200);
    ASSERT(input_mss_largest >= 1100);
    harness_tun_tcp_close(&in.tcp);
    return 0;
}

/* --- a tiny MSS in the SYN-ACK --- */

/* What the server got: the bytes in order, the data segments, and those shorter than the floor. */
enum { FLOOR_BYTES = 20000 };
static uint8_t floor_got[FLOOR_BYTES];
static size_t floor_n_got, floor_segs, floor_short;

static void input_floor_send(struct harness_tun *t, const uint8_t *pkt, size_t len)
{
    struct input *in = t->arg;
    input_send(t, pkt, len);
    const uint8_t *tcp = pkt + 20;
    size_t doff = (size_t)(tcp[12] >> 4) * 4, n = len - 20 - doff;
    if (n == 0)
        return;
    floor_segs++;
    if (n < STACK_TCP_MSS_FLOOR)
        floor_short++;
    uint32_t off = v2s_get_be32(tcp + 4) - (in->tcp.syn_seq + 1);
    if (off == floor_n_got && floor_n_got + n <= sizeof(floor_got)) {
        memcpy(floor_got + floor_n_got, tcp + doff, n);
        floor_n_got += n;
    }
}

/* A server (or anything on the VPN side that answers a connect) announcing an MSS of 8 bytes in
 * its SYN-ACK: lwIP took it as it came, and an upload left in segments of 8 bytes, 2,500 packets
 * for 20 KB (CVE-2019-11479's cost, which Linux bounds with tcp_min_snd_mss). The MSS is raised to
 * the floor of 48, as Linux does: every segment but the last carries 48 bytes, and the bytes
 * arrive whole and in order. */
TEST_IMPL(stack_input_mss_floor)
{
    static struct input in;
    memset(&in, 0, sizeof(in));
    const struct harness_tun_tcp_config cfg = {.seed = 23, .port = 7, .isn = INPUT_PEER_ISN, .wnd = 65535, .mss = 8};
    harness_tun_tcp_open(&in.tcp, &cfg, input_floor_send, &in);
    uint32_t seq = INPUT_PEER_ISN + 1;
    in.sent_end = in.tcp.syn_seq + 1;

    static uint8_t data[FLOOR_BYTES];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 7 + i / 251);
    uv_buf_t buf = uv_buf_init((char *)data, sizeof(data));
    ASSERT_EQ(uv_write(&in.write_req, (uv_stream_t *)&in.tcp.app.client, &buf, 1, input_written), 0);
    for (int i = 0; i < 20000 && floor_n_got < FLOOR_BYTES; i++) {
        harness_tun_advance(&in.tcp.tun, 5);
        input_ack_each(&in, seq, 65535);
    }
    ASSERT_EQ(floor_n_got, FLOOR_BYTES);
    ASSERT_MEM_EQ(floor_got, data, FLOOR_BYTES);
    ASSERT(floor_short <= 1);
    ASSERT(floor_segs <= (FLOOR_BYTES + STACK_TCP_MSS_FLOOR - 1) / STACK_TCP_MSS_FLOOR);
    harness_tun_tcp_close(&in.tcp);
    return 0;
}

/* What the stack last acknowledged, and how many segments it sent (input_ack_check). */
static uint32_t ackchk_ack;
static int ackchk_sent;

static void input_ackchk_send(struct harness_tun *t, const uint8_t *pkt, size_t len)
{
    input_send(t, pkt, len);
    const uint8_t *tcp = pkt + 20;
    if (tcp[13] & 0x10)
        ackchk_ack = v2s_get_be32(tcp + 8);
    ackchk_sent++;
}

/* Segments whose ACK field no real peer of this connection sends, each carrying 100 bytes at the
 * right sequence number: one acknowledging data never sent (RFC 9293 3.10.7.4: "send an ACK, drop
 * the segment"), one acknowledging data from further back than the peer's largest window
 * (RFC 5961 5.2: dropped and answered with an ACK), one without the ACK flag (RFC 9293: dropped).
 * lwIP 2.1.3 answered the first two with an ACK and then delivered their data anyway, and took
 * the third's, so anyone who guessed the ports and a sequence number inside our 4 MiB receive
 * window could put bytes into the stream the application reads, whatever ACK field they wrote.
 * None of the three may move what the stack acknowledges; the real segment after them is taken. */
TEST_IMPL(stack_input_ack_unacceptable)
{
    static struct input in;
    memset(&in, 0, sizeof(in));
    ackchk_ack = 0;
    ackchk_sent = 0;
    const struct harness_tun_tcp_config cfg = {.seed = 29, .port = 7, .isn = INPUT_PEER_ISN, .wnd = 65535, .mss = 1400};
    harness_tun_tcp_open(&in.tcp, &cfg, input_ackchk_send, &in);
    uint32_t seq = INPUT_PEER_ISN + 1, our = in.tcp.syn_seq + 1;

    /* Data never sent: an ACK answers it at once, and says the 100 bytes were not taken. */
    int sent = ackchk_sent;
    input_segment(&in, 0x18, seq, our + 100000, 65535, 100);
    ASSERT(ackchk_sent > sent);
    ASSERT_EQ(ackchk_ack, seq);
    harness_tun_advance(&in.tcp.tun, 500);
    ASSERT_EQ(ackchk_ack, seq);

    /* Far behind anything the peer could still acknowledge. */
    sent = ackchk_sent;
    input_segment(&in, 0x18, seq, our - 200000, 65535, 100);
    ASSERT(ackchk_sent > sent);
    ASSERT_EQ(ackchk_ack, seq);
    harness_tun_advance(&in.tcp.tun, 500);
    ASSERT_EQ(ackchk_ack, seq);

    /* No ACK flag at all. */
    input_segment(&in, 0x08, seq, 0, 65535, 100);
    harness_tun_advance(&in.tcp.tun, 500);
    ASSERT_EQ(ackchk_ack, seq);

    /* The real segment is taken and acknowledged. */
    input_segment(&in, 0x18, seq, our, 65535, 100);
    harness_tun_advance(&in.tcp.tun, 500);
    ASSERT_EQ(ackchk_ack, seq + 100);
    ASSERT_EQ(in.resets, 0);

    harness_tun_tcp_close(&in.tcp);
    return 0;
}

/* A fragment past the end of a fragmented IPv4 segment (after the one without "more fragments")
 * joins it in lwIP 2.1.3 (see stack_udp_length_ok()), the checksum still right when its first
 * two bytes make up for the length the pseudo-header gains: anyone who guessed the segment's
 * identification put 8 bytes of their own into the stream after the server's. The segment is
 * dropped, as its IP length says less than what arrived; the server's resend is taken. */
TEST_IMPL(stack_input_fragment_past_end)
{
    static struct input in;
    memset(&in, 0, sizeof(in));
    ackchk_ack = 0;
    ackchk_sent = 0;
    const struct harness_tun_tcp_config cfg = {.seed = 31, .port = 7, .isn = INPUT_PEER_ISN, .wnd = 65535, .mss = 1400};
    harness_tun_tcp_open(&in.tcp, &cfg, input_ackchk_send, &in);
    uint32_t seq = INPUT_PEER_ISN + 1, our = in.tcp.syn_seq + 1;
    uint8_t data[28], pkt[128], longer[128], frag[128];
    memset(data, 'z', sizeof(data));
    size_t len = harness_tun_tcp4(pkt, sizeof(pkt), &in.tcp.peer, 7, &in.tcp.us, in.tcp.sport, 0x18, seq, our,
                                  65535, NULL, 0, data, 20);
    data[20] = 0xFF, data[21] = 0xF7;
    memset(data + 22, 0, 6);
    size_t llen = harness_tun_tcp4(longer, sizeof(longer), &in.tcp.peer, 7, &in.tcp.us, in.tcp.sport, 0x18, seq,
                                   our, 65535, NULL, 0, data, 28);
    ASSERT(len == 60 && llen == 68);
    size_t flen = harness_tun_fragment4(frag, sizeof(frag), pkt, len, 0, 24);
    harness_tun_inject(&in.tcp.tun, frag, flen);
    flen = harness_tun_fragment4(frag, sizeof(frag), longer, llen, 40, 8);
    v2s_put_be16(frag + 6, (uint16_t)(40 / 8 | 0x2000));
    v2s_put_be16(frag + 10, 0);
    v2s_put_be16(frag + 10, harness_tun_fold(harness_tun_sum(0, frag, 20)));
    harness_tun_inject(&in.tcp.tun, frag, flen);
    flen = harness_tun_fragment4(frag, sizeof(frag), pkt, len, 24, 16);
    harness_tun_inject(&in.tcp.tun, frag, flen);
    harness_tun_advance(&in.tcp.tun, 500);
    ASSERT_ROW(ackchk_ack == 0 || ackchk_ack == seq, "acknowledged %u bytes", (unsigned)(ackchk_ack - seq));
    /* The resend, whole, is taken. */
    harness_tun_inject(&in.tcp.tun, pkt, len);
    harness_tun_advance(&in.tcp.tun, 500);
    ASSERT_EQ(ackchk_ack, seq + 20);
    ASSERT_EQ(in.resets, 0);
    harness_tun_tcp_close(&in.tcp);
    return 0;
}

/* Flags and fields lwIP 2.1.3 already answers as RFC 5961 and RFC 7323 say, kept that way: a RST
 * and a SYN inside the receive window but not at its left edge get a challenge ACK and leave the
 * connection be; a window scale of 200 in the SYN-ACK is taken as 14 (a shift of 200 would be
 * undefined, which the sanitizer build would report); a segment with the right ports and numbers
 * but to an address that is not ours is not taken. The real segment after them is. */
TEST_IMPL(stack_input_hostile_flags)
{
    static struct input in;
    memset(&in, 0, sizeof(in));
    ackchk_ack = 0;
    ackchk_sent = 0;
    const struct harness_tun_tcp_config cfg = {
        .seed = 31, .port = 7, .isn = INPUT_PEER_ISN, .wnd = 65535, .mss = 1400, .scaled = 1, .wscale = 200};
    harness_tun_tcp_open(&in.tcp, &cfg, input_ackchk_send, &in);
    uint32_t seq = INPUT_PEER_ISN + 1, our = in.tcp.syn_seq + 1;
    ASSERT_EQ(in.tcp.c->pcb->snd_scale, 14);

    int sent = ackchk_sent;
    input_segment(&in, 0x04, seq + 1000, our, 1, 0);
    harness_tun_settle(&in.tcp.tun);
    ASSERT(ackchk_sent > sent);
    ASSERT_EQ(ackchk_ack, seq);
    ASSERT(in.tcp.c->pcb != NULL);

    sent = ackchk_sent;
    input_segment(&in, 0x02, seq + 1000, 0, 1, 0);
    harness_tun_settle(&in.tcp.tun);
    ASSERT(ackchk_sent > sent);
    ASSERT_EQ(ackchk_ack, seq);
    ASSERT(in.tcp.c->pcb != NULL);
    ASSERT_EQ(in.tcp.c->pcb->state, ESTABLISHED);

    uint8_t pkt[1500], data[100];
    memset(data, 'x', sizeof(data));
    struct v2s_addr other = in.tcp.us;
    other.bytes[3] ^= 0x40;
    size_t len = harness_tun_tcp4(pkt, sizeof(pkt), &in.tcp.peer, 7, &other, in.tcp.sport, 0x18, seq, our, 1, NULL,
                                  0, data, sizeof(data));
    ASSERT(len > 0);
    harness_tun_inject(&in.tcp.tun, pkt, len);
    harness_tun_advance(&in.tcp.tun, 500);
    ASSERT_EQ(ackchk_ack, seq);

    input_segment(&in, 0x18, seq, our, 1, 100);
    harness_tun_advance(&in.tcp.tun, 500);
    ASSERT_EQ(ackchk_ack, seq + 100);
    ASSERT_EQ(in.resets, 0);
    ASSERT_EQ(in.tcp.app.done, 0);

    harness_tun_tcp_close(&in.tcp);
    return 0;
}

/* A flood of forged RSTs and SYNs inside the window, and of segments whose ACK field acknowledges
 * data never sent: each would get a challenge ACK (RFC 5961), and lwIP 2.1.3 sent one for every
 * segment. RFC 5961 7 asks for a limit: about 1000 a second (a budget drawn between 500 and 1499),
 * so 3000 forged segments within one second get at most 1499 ACKs and the connection lives on;
 * a second later a forged RST is answered again, and the real data is taken. */
TEST_IMPL(stack_input_challenge_ack_limit)
{
    static struct input in;
    memset(&in, 0, sizeof(in));
    ackchk_ack = 0;
    ackchk_sent = 0;
    const struct harness_tun_tcp_config cfg = {
        .seed = 37, .port = 7, .isn = INPUT_PEER_ISN, .wnd = 65535, .mss = 1400, .scaled = 1, .wscale = 7};
    harness_tun_tcp_open(&in.tcp, &cfg, input_ackchk_send, &in);
    uint32_t seq = INPUT_PEER_ISN + 1, our = in.tcp.syn_seq + 1;

    int sent = ackchk_sent;
    for (int i = 0; i < 3000; i++) {
        switch (i % 3) {
        case 0: input_segment(&in, 0x04, seq + 1000 + (uint32_t)i, our, 1, 0); break;
        case 1: input_segment(&in, 0x02, seq + 1000, 0, 1, 0); break;
        default: input_segment(&in, 0x10, seq, our + 5000, 1, 0); break;
        }
    }
    int answered = ackchk_sent - sent;
    ASSERT(in.tcp.c->pcb != NULL);
    ASSERT_EQ(in.tcp.c->pcb->state, ESTABLISHED);
    ASSERT(answered >= 500);
    ASSERT(answered <= 1499);

    harness_tun_advance(&in.tcp.tun, 1000);
    sent = ackchk_sent;
    input_segment(&in, 0x04, seq + 1000, our, 1, 0);
    ASSERT_EQ(ackchk_sent - sent, 1);
    ASSERT_EQ(ackchk_ack, seq);

    input_segment(&in, 0x18, seq, our, 1, 100);
    harness_tun_advance(&in.tcp.tun, 500);
    ASSERT_EQ(ackchk_ack, seq + 100);
    ASSERT_EQ(in.resets, 0);
    ASSERT_EQ(in.tcp.app.done, 0);
    harness_tun_tcp_close(&in.tcp);
    return 0;
}
