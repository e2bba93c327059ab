/* Memory held for applications, TCP through the tunnel: each connection's budget and its fair
 * share, the window it is allowed to offer, and what is given back under pressure. (What a
 * connection holds is counted as its segments are kept and written: tcp_recv.c.)
 *
 * Fair shares: each connection has a budget, the most it may hold for its application plus what
 * its window still lets the peer send; the part of lwIP's 4 MiB window beyond it is never given
 * back by tcp_recved(). A connection starts with STACK_TCP_WND_START (offered in the handshake's
 * ACK, so no window ever shrinks) and doubles its budget each time its application has taken a
 * whole budget, as Linux grows a receive buffer for a reader that keeps up, while the budgets of
 * all connections together stay within the stack's limit (STACK_RX_HIGH) or the connection is
 * under its fair share (the limit over the number of connections, at least STACK_TCP_WND_MIN).
 * When the budgets pass the limit (many connections growing at once), a connection above its
 * share is cut back to it as its application reads. A budget never falls below what was already
 * offered, and a window is opened again each time the application takes data, so no connection
 * waits on another's memory. Out-of-order data has its own bound per connection
 * (TCP_OOSEQ_MAX_BYTES, TCP_OOSEQ_MAX_PBUFS buffers), and past STACK_MEM_HIGH bytes of lwIP's heap
 * (stack/sys.c counts it) every connection's is given back (the peers resend it). Dropping new
 * data for connections above their share and not reading applications whose connection has more
 * than its share queued were tried and taken out: the drops made the servers back off their
 * retransmissions until 379 of 1,000 echoes stalled.
 *
 * Worst case, then, for N connections: data held for applications plus windows offered is at
 * most max(STACK_RX_HIGH, N * STACK_TCP_WND_START) in payload (each buffer costs at most as
 * much again as its payload once small segments are copied together), plus per connection its
 * out-of-order queue (4.4 MiB, given back under pressure), 4.4 MiB queued to send, one 64 KiB
 * read and 3 KiB of bookkeeping. Measured: 1,000,000 one-byte segments to a client that does
 * not read cost 4.4 MB (lab.memory); the unit test stack_faults_memory_shares holds slow
 * readers under a limit of 256 KiB to 2 MiB to twice that, where without budgets they held 3 to
 * 7 times the limit.
 *
 * Windows on a short path: some tunnels can queue little between the server and us (the
 * packet-fd tunnel: openconnect's end of a socketpair and its DTLS socket, about 192 KiB; struct
 * tunnel's rx_room), and what does not fit is dropped. A window that grows whenever the
 * application keeps up lets the server put megabytes in flight there, most of it then lost
 * (5,700-13,500 packets per 100 MiB through openconnect with 4 MiB windows). On such a tunnel a
 * budget grows freely up to rx_room; past it, only while the window is what holds the rate back:
 * while the rate the application takes data at, times two round trips of the handshake (a window
 * of twice the path's bandwidth-delay product, as Linux sizes its receive buffer), comes to the
 * budget or more. Two things keep that from firing where it should not:
 * - The rate is measured over STACK_TCP_ROOM_PERIOD_US at least. What the path held reaches the
 *   application in one burst when the VPN client catches up, and a rate measured over one budget
 *   then says the window is too small on any short path.
 * - A round trip of STACK_TCP_ROOM_RTT_MIN_US or less never grows it: there the room holds a
 *   round trip at more than the VPN client carries, and the handshake's sample is a few hundred
 *   microseconds of scheduling noise, against which the start of a download (the server's first
 *   flight, taken at 300 MB/s for 10 ms) already looks window-bound.
 * Before both, the window of a 0 ms download through openconnect on an Intel Xeon machine went
 * past the room to 384 KiB in most transfers, which then lost 5,600-10,900 packets per 100 MiB
 * at openconnect's DTLS socket and ran at 62-108 MiB/s; kept at the room they lost 1,500-3,100
 * and ran at 180-216 (bench/RESULTS.md). On a link with a long round trip the windows grow as before,
 * a budget per round trip (30 ms: 192 KiB to 4 MiB in 0.3 s). The round trip is the
 * handshake's, from our SYN, or from our SYN-ACK for a connection a listener accepted (-R,
 * tcp_listen.c), so data sent into a service through such a tunnel is held at the room too; a
 * connection without a sample (its SYN or SYN-ACK was resent) grows as on any other tunnel. */
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "base/heap.h"
#include "base/log.h"
#include "lwip/priv/tcp_priv.h" /* tcp_free_ooseq() */
#include "lwip/tcp.h"
#include "stack/tcp_internal.h"
#include "stack/lwip_pin.h" /* lwIP internals: see there */
#include "tunnel/tunnel.h"

enum {
    STACK_TCP_RECLAIM_MS = 100,
    STACK_TCP_TRIM_BYTES = 32 * 1024 * 1024,
    STACK_TCP_WND_START = 128 * 1024,
    STACK_TCP_WND_MIN = 64 * 1024,
    /* Past a short path's room (see "Windows on a short path"): the shortest time a rate is
     * measured over (a burst of what the path and the application's socket hold, some hundreds
     * of KiB, is a rate of a few tens of MB/s over it), and the shortest round trip that grows
     * the window (192 KiB per millisecond is 196 MB/s). */
    STACK_TCP_ROOM_PERIOD_US = 10 * 1000,
    STACK_TCP_ROOM_RTT_MIN_US = 1000,
};

/* A connection's fair share of the stack's limit (see "Fair shares" at the top). */
static size_t stack_tcp_share(const struct stack *s)
{
    size_t share = s->rx_high / (s->n_conns ? s->n_conns : 1);
    return share < STACK_TCP_WND_MIN ? STACK_TCP_WND_MIN : share;
}

/* Sets c's budget: the most it may hold for its application plus what its window lets the peer
 * send. The rest of lwIP's window is withheld (never given back by tcp_recved()). */
void stack_tcp_set_budget(struct stack_tcp *c, size_t budget)
{
    struct stack *s = c->s;
    s->rx_budgets = s->rx_budgets - c->budget + budget;
    c->budget = budget;
}

/* The handshake is done, and lwIP has opened its whole window (window scaling agreed): offer the
 * peer only the starting budget. Called before the handshake's ACK leaves, so the peer never
 * sees more (a window, once offered, must not shrink). */
void stack_tcp_budget_start(struct stack_tcp *c, struct tcp_pcb *pcb)
{
    size_t full = TCP_WND_MAX(pcb), start = STACK_TCP_WND_START < full ? STACK_TCP_WND_START : full;
    if (pcb->rcv_wnd != full || pcb->rcv_ann_wnd != full)
        start = full; /* not the fresh window expected: leave it alone */
    c->withheld = full - start;
    pcb->rcv_wnd = pcb->rcv_ann_wnd = (tcpwnd_size_t)start;
    stack_tcp_set_budget(c, start);
    c->grow_us = stack_now_us();
}

/* Whether c's budget is at or past the room of a tunnel with little (see "Windows on a short
 * path" at the top), where it grows by the rate the application takes data at. */
static int stack_tcp_past_room(const struct stack_tcp *c)
{
    size_t room = c->s->tunnel->rx_room;
    return room != 0 && c->rtt_us != 0 && c->budget >= room;
}

/* How much of more c's budget may grow by, now being when the application has taken its whole
 * budget since grow_us (and, past a short path's room, STACK_TCP_ROOM_PERIOD_US has passed). */
static size_t stack_tcp_room_growth(const struct stack_tcp *c, size_t more, uint64_t now)
{
    size_t room = c->s->tunnel->rx_room;
    if (room == 0 || c->rtt_us == 0)
        return more;
    if (c->budget < room)
        return c->budget + more > room ? room - c->budget : more;
    if (c->rtt_us <= STACK_TCP_ROOM_RTT_MIN_US)
        return 0;
    /* the rate (since_grow over the time taken) times two round trips, against the budget */
    uint64_t took = now - c->grow_us;
    return (uint64_t)c->since_grow * 2u * c->rtt_us >= (uint64_t)c->budget * took ? more : 0;
}

/* The C allocator keeps what lwIP's buffers gave back, scattered between live ones, so after a
 * burst of load the process stayed at its peak (123 MB after 156 transfers of 1 MiB each way,
 * with 160 bytes left in lwIP's heap). Once the heap has fallen STACK_TCP_TRIM_BYTES below its
 * highest, or the last connection is gone after the heap grew by a megabyte, a connection's end
 * hands the free pages back to the system. (Without the second, a ten-minute soak ended 12 %
 * above where its first round left it, within the allocator's swings between rounds.) */
void stack_tcp_trim(struct stack *s)
{
    size_t in_use = stack_mem_bytes();
    if (s->mem_mark > in_use + STACK_TCP_TRIM_BYTES || (s->n_conns == 0 && s->mem_mark > in_use + (1u << 20))) {
        v2s_heap_trim();
        s->mem_mark = in_use;
    }
}

/* Opens c's window by what its application has taken (withheld) as far as its budget allows,
 * after growing the budget (when the application took a whole budget since it last grew, and
 * the stack's limit has room) or cutting it to its share (when the budgets of all connections
 * are over the limit). A closed window is announced open at once: the peer only probes it. */
void stack_tcp_open_window(struct stack_tcp *c)
{
    struct stack *s = c->s;
    if (!c->pcb)
        return;
    size_t full = TCP_WND_MAX(c->pcb), share = stack_tcp_share(s);
    int grow = c->since_grow >= c->budget && c->budget < full;
    uint64_t now = grow ? stack_now_us() : 0;
    if (grow && stack_tcp_past_room(c) && now - c->grow_us < STACK_TCP_ROOM_PERIOD_US)
        grow = 0; /* past a short path's room: not measured for long enough yet */
    if (grow) {
        size_t more = c->budget < full - c->budget ? c->budget : full - c->budget;
        more = stack_tcp_room_growth(c, more, now);
        if (more && (s->rx_budgets + more <= s->rx_high || c->budget + more <= share))
            stack_tcp_set_budget(c, c->budget + more);
        c->since_grow = 0;
        c->grow_us = now;
    } else if (s->rx_budgets > s->rx_high && c->budget > share) {
        stack_tcp_set_budget(c, share);
        s->withholds++;
    }
    size_t keep = full - c->budget;
    if (c->withheld <= keep)
        return;
    size_t give = c->withheld - keep;
    u32_t before = c->pcb->rcv_ann_wnd;
    c->withheld = keep;
    for (size_t left = give; left > 0;) {
        u16_t step = left > 0xFFFF ? 0xFFFF : (u16_t)left;
        tcp_recved(c->pcb, step);
        left -= step;
    }
    if (before < c->pcb->mss && c->pcb->rcv_ann_wnd > before) {
        tcp_ack_now(c->pcb);
        stack_tcp_output(c->pcb);
    }
}

/* --- memory under pressure (see "Fair shares" at the top) --- */

void stack_tcp_reclaim(struct stack *s)
{
    uint64_t now = uv_now(s->loop);
    if (now - s->reclaim_ms < STACK_TCP_RECLAIM_MS)
        return;
    s->reclaim_ms = now;
    unsigned freed = 0;
    struct v2s_list *n;
    V2S_LIST_FOREACH(n, &s->conns) {
        struct stack_tcp *c = V2S_LIST_ENTRY(n, struct stack_tcp, node);
        if (c->pcb && c->pcb->ooseq) {
            tcp_free_ooseq(c->pcb);
            freed++;
        }
    }
    s->reclaims++;
    v2s_debug("stack: %zu bytes in use, above %u: out-of-order data of %u connections given back",
              stack_mem_bytes(), (unsigned)STACK_MEM_HIGH, freed);
}
