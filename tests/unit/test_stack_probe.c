/* Zero-window probes and the pure ACK beside each (tcp_send.c, stack_tcp_probe_acks()): while the
 * peer's window is shut and the application's data waits, every probe lwIP's persist timer sends
 * is followed by a pure ACK for everything received, because a receiver may drop a probe unread
 * (it carries a byte beyond the window), acknowledgement and all. The real stack and lwIP behind
 * the fake tunnel of harness_tun.h; the test plays the server's TCP by hand, shuts its window,
 * sends data whose ACK it then "loses", and counts what the stack sends on the persist timer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <uv.h>

#include "base/bytes.h"
#include "harness_tun.h"
#include "stack/stack.h"
#include "stack/tcp.h"
#include "test.h"

enum { PROBE_PEER_ISN = 5000000, PROBE_SEG = 100, PROBE_APP_BYTES = 5000 };

struct probe {
    struct harness_tun tun;
    struct v2s_addr us, peer;
    uint16_t sport;
    uint32_t syn_seq;
    int syns;
    /* What the stack sent, counted from mark_probes on: probes (one byte of data or a FIN alone)
     * and pure ACKs acknowledging at least want_ack. */
    uint32_t want_ack;
    int probes, acks_after_probe, pure_acks;
    struct harness_tun_app app;
    uv_write_t write_req;
};

static void probe_send(struct harness_tun *t, const uint8_t *pkt, size_t len)
{
    struct probe *p = t->arg;
    if (len < 40 || pkt[0] != 0x45 || pkt[9] != 6)
        return;
    const uint8_t *tcp = pkt + 20;
    size_t doff = (size_t)(tcp[12] >> 4) * 4;
    size_t payload = len - 20 - doff;
    uint8_t flags = tcp[13];
    uint32_t ack = v2s_get_be32(tcp + 8);
    if (getenv("PROBE_TRACE"))
        fprintf(stderr, "t=%u flags %02x seq %u ack %u len %zu\n", p->tun.now_ms, flags, v2s_get_be32(tcp + 4), ack, payload);
    if (flags == 0x02) {
        p->syns++;
        p->sport = v2s_get_be16(tcp);
        p->syn_seq = v2s_get_be32(tcp + 4);
        return;
    }
    if (payload == 1) {
        p->probes++;
    } else if (payload == 0 && flags == 0x10 && ack - p->want_ack < 0x80000000u) {
        p->pure_acks++;
        if (p->probes > 0)
            p->acks_after_probe++;
    }
}

static void probe_written(uv_write_t *req, int status)
{
    (void)req;
    ASSERT_EQ(status, 0);
}

/* One segment from the peer (window field wnd, n bytes of data), run through the stack. */
static void probe_segment(struct probe *p, uint8_t flags, uint32_t seq, uint16_t wnd, const uint8_t *opts,
                          size_t optlen, size_t n)
{
    uint8_t pkt[1500], data[PROBE_SEG];
    memset(data, 'y', sizeof(data));
    size_t len = harness_tun_tcp4(pkt, sizeof(pkt), &p->peer, 7, &p->us, p->sport, flags, seq, p->syn_seq + 1, wnd,
                                  opts, optlen, data, n);
    ASSERT(len > 0);
    harness_tun_inject(&p->tun, pkt, len);
}

TEST_IMPL(stack_probe_acks)
{
    static struct probe p;
    static char app_data[PROBE_APP_BYTES];
    memset(&p, 0, sizeof(p));
    const struct harness_tun_config cfg = {.addr4 = "10.8.0.2", .seed = 5};
    ASSERT_EQ(harness_tun_up(&p.tun, &cfg, probe_send, &p), 0);
    ASSERT_EQ(v2s_addr_parse(&p.us, "10.8.0.2"), 0);
    ASSERT_EQ(v2s_addr_parse(&p.peer, "10.9.0.1"), 0);

    /* The application: a loopback pair, the accepted end bridged. */
    ASSERT_EQ(harness_tun_app_open(&p.tun, &p.app), 0);

    /* The handshake (MSS only: no window scaling, so the window field is the window). */
    struct stack_tcp *c;
    ASSERT_EQ(harness_tun_app_connect(&p.app, &p.peer, 7, &c), 0);
    harness_tun_settle(&p.tun);
    ASSERT_EQ(p.syns, 1);
    static const uint8_t mss[4] = {2, 4, 0x05, 0x78};
    probe_segment(&p, 0x12, PROBE_PEER_ISN, 65535, mss, sizeof(mss), 0);
    harness_tun_settle(&p.tun);
    ASSERT_EQ(p.app.status, 0);

    /* The server sends data and shuts its window; the application then writes, which lwIP must
     * hold: the persist timer starts. */
    uint32_t seq = PROBE_PEER_ISN + 1;
    probe_segment(&p, 0x18, seq, 0, NULL, 0, PROBE_SEG);
    seq += PROBE_SEG;
    memset(app_data, 'a', sizeof(app_data));
    uv_buf_t buf = uv_buf_init(app_data, sizeof(app_data));
    ASSERT_EQ(uv_write(&p.write_req, (uv_stream_t *)&p.app.client, &buf, 1, probe_written), 0);
    harness_tun_advance(&p.tun, 300);

    /* More data from the server, window still shut; the stack acknowledges it at once or on its
     * delayed-ACK timer, and that ACK is lost: from here on the server hears of this data only
     * through what the persist timer sends. */
    p.want_ack = seq + PROBE_SEG;
    p.pure_acks = p.probes = p.acks_after_probe = 0;
    probe_segment(&p, 0x18, seq, 0, NULL, 0, PROBE_SEG);
    seq += PROBE_SEG;
    harness_tun_advance(&p.tun, 40);
    ASSERT_EQ(p.pure_acks, 1);
    p.pure_acks = p.probes = p.acks_after_probe = 0;

    /* Twenty seconds of persist timer (lwIP's backoff on our 50 ms ticks: probes 0.15, 0.3, 0.6,
     * 1.2, 2.4, 4.8 s apart, then every 6 s), each probe followed by a pure ACK of everything
     * received. */
    harness_tun_advance(&p.tun, 20000);
    ASSERT(p.probes >= 5);
    ASSERT_EQ(p.acks_after_probe, p.probes);

    /* Closing the stack resets the connection and must leave no handle open. */
    harness_tun_app_close(&p.app);
    ASSERT_EQ(harness_tun_down(&p.tun), 0);
    ASSERT_EQ(p.app.done, 1);
    harness_tun_app_free(&p.app);
    return 0;
}
