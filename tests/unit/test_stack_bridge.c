/* The TCP bridge between an application's socket and lwIP (stack/tcp*.c) at its edges: what the
 * peer sent reaching the application whole when the tunnel's address changes after a clean close,
 * and the memory segments of a few hundred bytes cost while the application has not taken them.
 * The real stack and lwIP behind the fake tunnel of harness_tun.h, the test playing the server's
 * TCP by hand; a loopback socket is the bridged application, whose client end the test reads. */
#include <string.h>
#include <sys/socket.h>

#include <uv.h>

#include "harness_tun.h"
#include "lwip/pbuf.h"
#include "lwip/tcp.h"
#include "stack/stack.h"
#include "stack/tcp_internal.h"
#include "test.h"
#include "tunnel/settings.h"
#include "uvtest.h"

enum { BR_PEER_ISN = 3000000 };

/* One segment from the peer (ACK set, acknowledging up to ack), into the stack but not yet
 * through the loop; its bytes are the low byte of their sequence number. */
static void br_segment(struct harness_tun_tcp *r, uint8_t flags, uint32_t seq, uint32_t ack, size_t n)
{
    uint8_t pkt[1500], data[1400];
    ASSERT(n <= sizeof(data));
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)(seq + i);
    size_t len =
        harness_tun_tcp4(pkt, sizeof(pkt), &r->peer, 80, &r->us, r->sport, flags, seq, ack, 65535, NULL, 0, data, n);
    ASSERT(len > 0);
    stack_input(r->tun.stack, pkt, len);
}

/* Reads n bytes at the application and checks them; with want_end, waits for the end of its
 * input too. Returns how the input ended (uvtest_recv: 0 still open, 1 EOF, -errno reset). */
static int br_read_all(struct harness_tun_tcp *r, size_t n, int want_end)
{
    static uint8_t got[256 * 1024];
    ASSERT(n < sizeof(got));
    uv_os_fd_t fd;
    ASSERT_EQ(uv_fileno((uv_handle_t *)&r->app.client, &fd), 0);
    int end = 0;
    size_t k = uvtest_recv(&r->tun.loop, fd, got, n, &end, 2000);
    if (k != n)
        TEST_FAIL_AT("the application got %zu of %zu bytes (its input ended %d)", k, n, end);
    for (size_t i = 0; i < n; i++)
        if (got[i] != (uint8_t)(BR_PEER_ISN + 1 + i))
            TEST_FAIL_AT("byte %zu is %u", i, got[i]);
    if (end == 0 && want_end)
        end = uvtest_wait_end(&r->tun.loop, fd, NULL, 2000);
    return end;
}

/* Both ends closed cleanly (the application half-closed first, then the server sent its last
 * bytes and its FIN), and the tunnel comes back from a reconnect with another address before the
 * application has all of those bytes: the connections using the tunnel are reset, but lwIP is
 * done with this one, so its bytes and the end of the stream still reach the application.
 * Before, stack_tcp_abort_all() reset every bridged connection, this one included: the bytes
 * held for the application were dropped and it saw a reset instead of the end of a download that
 * had completed (a slow reader holds up to its window for as long as it takes). */
TEST_IMPL(stack_bridge_readdress_after_close)
{
    static struct harness_tun_tcp r;
    const struct harness_tun_tcp_config cfg = {.seed = 41, .port = 80, .isn = BR_PEER_ISN, .wnd = 65535, .mss = 1400};
    harness_tun_tcp_open(&r, &cfg, NULL, NULL);
    struct stack_tcp *c = r.c;
    ASSERT(c != NULL);

    /* The application is done sending: the bridge passes its FIN on. */
    uv_os_fd_t fd;
    ASSERT_EQ(uv_fileno((uv_handle_t *)&r.app.client, &fd), 0);
    ASSERT_EQ(shutdown(fd, SHUT_WR), 0);
    for (int i = 0; i < 20 && !c->tx_shut; i++)
        harness_tun_advance(&r.tun, 5);
    ASSERT(c->tx_shut);

    /* The server acknowledges our FIN, sends 20 KB and its own FIN, all in one read from the
     * tunnel; then the tunnel is up again with another address, before the loop hands the
     * bytes to the application. */
    const size_t seg = 1000, n = 20;
    uint32_t seq = BR_PEER_ISN + 1, ack = r.syn_seq + 2;
    for (size_t i = 0; i < n; i++, seq += (uint32_t)seg)
        br_segment(&r, 0x10, seq, ack, seg);
    br_segment(&r, 0x11, seq, ack, 0);
    ASSERT(c->remote_fin);
    struct tunnel_settings ts;
    tunnel_settings_init(&ts);
    ASSERT_EQ(v2s_addr_parse(&ts.addr4, "10.8.0.3"), 0);
    ts.prefix4 = 24;
    ts.mtu = 1400;
    ASSERT_EQ(stack_tunnel_up(r.tun.stack, &ts), 0);
    tunnel_settings_free(&ts);

    ASSERT_EQ(br_read_all(&r, n * seg, 1), 1);
    harness_tun_settle(&r.tun);
    ASSERT_EQ(r.app.done, 1);
    harness_tun_tcp_close(&r);
    return 0;
}

/* Segments of 257 to 512 bytes are small (tcp_recv.c's STACK_TCP_SMALL) and are copied into the
 * buffer of small segments, as 1-256 byte ones are. Before, a buffer was started at 256 bytes
 * when the one before was not there or full, so one of 300 bytes did not fit, was kept as it came
 * and left the new buffer empty behind it: every such segment cost an empty 256-byte buffer too
 * (and an empty descriptor in the write), twice the memory it should, and none was copied. */
TEST_IMPL(stack_bridge_rx_small_segments)
{
    static struct harness_tun_tcp r;
    const struct harness_tun_tcp_config cfg = {.seed = 43, .port = 80, .isn = BR_PEER_ISN, .wnd = 65535, .mss = 1400};
    harness_tun_tcp_open(&r, &cfg, NULL, NULL);
    struct stack_tcp *c = r.c;
    ASSERT(c != NULL);

    /* 30 segments of 300 bytes in one read from the tunnel, held until the loop runs: copied
     * into 5 buffers of 512 to 8192 bytes (before: 60, half of them empty, which held 2.7 times
     * what was received, counted as tcp_recv.c counts its buffers). */
    const size_t seg = 300, n = 30;
    uint32_t seq = BR_PEER_ISN + 1;
    for (size_t i = 0; i < n; i++, seq += (uint32_t)seg)
        br_segment(&r, 0x10, seq, r.syn_seq + 1, seg);
    unsigned empty = 0;
    for (unsigned i = 0; i < c->n_rxq; i++)
        if (c->rxq[i].p->tot_len == 0)
            empty++;
    if (empty || c->n_rxq > 8 || c->held > 2 * n * seg)
        TEST_FAIL_AT("%zu bytes in %u buffers (%u empty) held for %zu bytes received", c->held, c->n_rxq, empty,
                     n * seg);

    ASSERT_EQ(br_read_all(&r, n * seg, 0), 0);
    harness_tun_tcp_close(&r);
    return 0;
}
