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
#include "test.h"

enum { PROBE_PEER_ISN = 5000000, PROBE_SEG = 100, PROBE_APP_BYTES = 5000 };

struct probe {
    struct harness_tun_tcp tcp; /* the connection; its application a loopback pair */
    /* What the stack sent, counted from mark_probes on: probes (one byte of data or a FIN alone)
     * and pure ACKs acknowledging at least want_ack. */
    uint32_t want_ack;
    int probes, acks_after_probe, pure_acks;
    uv_write_t write_req;
};

static void probe_send(struct harness_tun *t, const uint8_t *pkt, size_t len)
{
    struct probe *p = t->arg;
    const uint8_t *tcp = pkt + 20;
    size_t doff = (size_t)(tcp[12] >> 4) * 4;
    size_t payload = len - 20 - doff;
    uint8_t flags = tcp[13];
    uint32_t ack = v2s_get_be32(tcp + 8);
    if (getenv("PROBE_TRACE"))
        fprintf(stderr, "t=%u flags %02x seq %u ack %u len %zu\n", p->tcp.tun.now_ms, flags, v2s_get_be32(tcp + 4),
                ack, payload);
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
static void probe_segment(struct probe *p, uint8_t flags, uint32_t seq, uint16_t wnd, size_t n)
{
    uint8_t pkt[1500], data[PROBE_SEG];
    memset(data, 'y', sizeof(data));
    size_t len = harness_tun_tcp4(pkt, sizeof(pkt), &p->tcp.peer, 7, &p->tcp.us, p->tcp.sport, flags, seq,
                                  p->tcp.syn_seq + 1, wnd, NULL, 0, data, n);
    ASSERT(len > 0);
    harness_tun_inject(&p->tcp.tun, pkt, len);
}

TEST_IMPL(stack_probe_acks)
{
    static struct probe p;
    static char app_data[PROBE_APP_BYTES];
    memset(&p, 0, sizeof(p));
    /* The handshake (MSS only: no window scaling, so the window field is the window). */
    const struct harness_tun_tcp_config cfg = {.seed = 5, .port = 7, .isn = PROBE_PEER_ISN, .wnd = 65535, .mss = 1400};
    harness_tun_tcp_open(&p.tcp, &cfg, probe_send, &p);

    /* The server sends data and shuts its window; the application then writes, which lwIP must
     * hold: the persist timer starts. */
    uint32_t seq = PROBE_PEER_ISN + 1;
    probe_segment(&p, 0x18, seq, 0, PROBE_SEG);
    seq += PROBE_SEG;
    memset(app_data, 'a', sizeof(app_data));
    uv_buf_t buf = uv_buf_init(app_data, sizeof(app_data));
    ASSERT_EQ(uv_write(&p.write_req, (uv_stream_t *)&p.tcp.app.client, &buf, 1, probe_written), 0);
    harness_tun_advance(&p.tcp.tun, 300);

    /* More data from the server, window still shut; the stack acknowledges it at once or on its
     * delayed-ACK timer, and that ACK is lost: from here on the server hears of this data only
     * through what the persist timer sends. */
    p.want_ack = seq + PROBE_SEG;
    p.pure_acks = p.probes = p.acks_after_probe = 0;
    probe_segment(&p, 0x18, seq, 0, PROBE_SEG);
    seq += PROBE_SEG;
    harness_tun_advance(&p.tcp.tun, 40);
    ASSERT_EQ(p.pure_acks, 1);
    p.pure_acks = p.probes = p.acks_after_probe = 0;

    /* Twenty seconds of persist timer (lwIP's backoff on our 50 ms ticks: probes 0.15, 0.3, 0.6,
     * 1.2, 2.4, 4.8 s apart, then every 6 s), each probe followed by a pure ACK of everything
     * received. */
    harness_tun_advance(&p.tcp.tun, 20000);
    ASSERT(p.probes >= 5);
    ASSERT_EQ(p.acks_after_probe, p.probes);

    /* Closing the stack resets the connection and must leave no handle open. */
    harness_tun_tcp_close(&p.tcp);
    ASSERT_EQ(p.tcp.app.done, 1);
    return 0;
}
