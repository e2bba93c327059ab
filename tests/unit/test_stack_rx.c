/* The bridge's receive path (stack/tcp_recv.c): the segments of one loop iteration reach the
 * application in as few writes as possible. The real stack and lwIP behind the fake tunnel of
 * harness_tun.h, the test playing the server's TCP by hand; a loopback socket is the bridged
 * application, with TCP_NODELAY (as the listeners' sockets have it) so that every write of the
 * bridge leaves as a segment of its own, which the application's end counts (TCP_INFO). */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

#include <uv.h>

#include "harness_tun.h"
#include "stack/stack.h"
#include "test.h"
#include "uvtest.h"

enum { RX_PEER_ISN = 5000000, RX_SEG = 1000, RX_SEGS = 30 };

/* One segment from the peer into the stack, not yet through the loop; its bytes are seq's low
 * byte, so that what arrives can be checked. */
static void rx_segment(struct harness_tun_tcp *r, uint8_t flags, uint32_t seq, size_t n)
{
    uint8_t pkt[1500], data[RX_SEG];
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)(seq + i);
    size_t len = harness_tun_tcp4(pkt, sizeof(pkt), &r->peer, 80, &r->us, r->sport, flags, seq, r->syn_seq + 1,
                                  65535, NULL, 0, data, n);
    ASSERT(len > 0);
    stack_input(r->tun.stack, pkt, len);
}

/* The kernel's struct tcp_info goes on past glibc's copy of it, to the segment counts. */
struct rx_tcp_info {
    struct tcp_info glibc;
    uint64_t pacing_rate, max_pacing_rate, bytes_acked, bytes_received;
    uint32_t segs_out, segs_in;
};

static uint32_t rx_segs_in(int fd)
{
    struct rx_tcp_info ti;
    socklen_t sl = sizeof(ti);
    memset(&ti, 0, sizeof(ti));
    ASSERT_EQ(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &sl), 0);
    ASSERT(sl >= sizeof(ti));
    return ti.segs_in;
}

/* 30 segments of 1000 bytes taken in within one loop iteration (a coalesced read from the
 * server) go to the application in one write, not one per 16 segments. (30 KB: a larger write
 * to a socket whose peer offered a 64 KB window leaves in two segments, as Linux pushes at half
 * the window.) */
TEST_IMPL(stack_tcp_rx_batch_one_write)
{
    static struct harness_tun_tcp r;
    const struct harness_tun_tcp_config cfg = {.seed = 5, .port = 80, .isn = RX_PEER_ISN, .wnd = 65535, .mss = 1400};
    harness_tun_tcp_open(&r, &cfg, NULL, NULL);
    ASSERT(r.app.accepted != NULL);
    /* The application's socket has room for the whole batch, and sends each write at once. */
    ASSERT_EQ(uv_tcp_nodelay(r.app.accepted, 1), 0);
    int sndbuf = 1024 * 1024;
    ASSERT_EQ(uv_send_buffer_size((uv_handle_t *)r.app.accepted, &sndbuf), 0);
    uv_os_fd_t fd;
    ASSERT_EQ(uv_fileno((uv_handle_t *)&r.app.client, &fd), 0);
    /* The client end is read here, not by libuv. */
    uv_read_stop((uv_stream_t *)&r.app.client);
    uint32_t segs0 = rx_segs_in(fd);

    uint32_t seq = RX_PEER_ISN + 1;
    for (int i = 0; i < RX_SEGS; i++, seq += RX_SEG)
        rx_segment(&r, 0x10, seq, RX_SEG);
    harness_tun_settle(&r.tun);

    static uint8_t got[RX_SEGS * RX_SEG];
    int end;
    ASSERT_EQ(uvtest_recv(&r.tun.loop, fd, got, sizeof(got), &end, 1000), sizeof(got));
    for (size_t i = 0; i < sizeof(got); i++)
        if (got[i] != (uint8_t)(RX_PEER_ISN + 1 + i))
            TEST_FAIL_AT("byte %zu is %u", i, got[i]);
    uint32_t writes = rx_segs_in(fd) - segs0;
    if (writes != 1)
        TEST_FAIL_AT("the batch reached the application in %u segments (writes)", writes);

    harness_tun_tcp_close(&r);
    ASSERT_EQ(r.app.done, 1);
    return 0;
}
