/* TCP through the tunnel: opening a connection from the tunnel address, and the bridge that
 * relays it to an application's uv_tcp_t.
 *
 * Backpressure, tunnel to application: every pbuf lwIP hands over is kept until uv_write() has
 * given its bytes to the application socket, and only then is tcp_recved() called. The advertised
 * window therefore bounds what we buffer. Refusing data instead would park it until lwIP's 250 ms
 * timer retries, so we never refuse.
 *
 * Memory, tunnel to application: the window bounds payload, not memory, and a peer sending
 * 1-byte segments makes each byte cost a buffer. So a run of segments of at most STACK_TCP_SMALL
 * bytes is copied together into buffers that double from STACK_TCP_COALESCE_MIN to
 * STACK_TCP_COALESCE_MAX bytes (so a short run wastes little), and only one uv_write() per
 * connection is in flight: what arrives meanwhile waits and goes in the next one, instead of a
 * request and its buffers per batch.
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
 * Backpressure, application to tunnel: reads from the application are sized to tcp_sndbuf() and
 * copied into lwIP at once; reading stops while the send buffer or queue is short, or while the
 * tunnel's own queue is above its high mark, and resumes from the sent callback (or the tunnel's
 * writable event).
 *
 * Closing: a FIN from either side becomes a shutdown of the other side's write direction; the
 * connection ends when both directions are closed. A reset on either side resets the other.
 *
 * Closes are paced. An application that closes thousands of connections at once would otherwise
 * make lwIP send thousands of FINs in one burst; through a datagram tunnel most of them overflow
 * the VPN server's socket buffer and are lost. lwIP then retransmits each lost FIN only after its
 * RTO, which for a connection that never carried data is the initial 3 s, doubling each time, and
 * since the FINs were lost together their retransmissions fire together, in the same timer tick,
 * and are lost again (10,000 closes measured: 3,780 lost, then 2,013, 334, 78 still open after
 * 40 s). So at most STACK_TCP_FIN_WINDOW FINs are in flight; the rest wait, oldest first, and go
 * out as earlier ones are acknowledged. The FIN's own ACK has no lwIP callback (the sent callback
 * counts data bytes only), so the slots are checked once per loop iteration from the pcb state.
 * A slot is given up after STACK_TCP_FIN_SLOT_MS even unacknowledged: a FIN that was lost anyway,
 * or a peer that does not answer, must not hold back the closes of every other connection.
 *
 * Retransmission timing starts from the handshake. lwIP takes no round-trip sample from the SYN,
 * so a connection whose first data is lost retransmits after 1 s, then 2, 4, 8, 16, 32 s; and
 * every connection opened in the same 50 ms timer tick retransmits in the same tick. That is what
 * a Linux server with a full accept queue meets: it drops our handshake ACK and our request (with
 * SYN cookies it does not even repeat its SYN-ACK), and takes a handful of connections per burst
 * of retransmissions. 300 parallel downloads from a server with a listen backlog of 5 left 3 to
 * 153 connections with 0 bytes when curl gave up after 60 s: forty of them retransmitted at
 * 16.214 s and six got in, again at 32.3 s, and the next try was due at 64 s. So the SYN-ACK
 * gives the first sample (RFC 6298: RTO = SRTT + 4 * RTTVAR, at least STACK_TCP_RTO_MIN_MS, as
 * Linux), plus up to STACK_TCP_RTO_JITTER_MS drawn per connection so that connections opened
 * together do not retransmit together; stack/recovery.c also resends at once when the peer
 * repeats its SYN-ACK. The SYN itself is retransmitted by us, not by lwIP, which repeats it every
 * second without backing off and gives up after seven: a burst of connects to a server that
 * drops SYNs while its accept queue is full came back in lockstep, six got in per second, and
 * 17 of 300 failed after 7 s. Ours go after 1, 2, 4, 8... s (as Linux), each a quarter longer
 * at random, until the caller's connect timeout. The first flight of data is ours to resend
 * too, for the same reason: until the peer acknowledges or sends anything it may not have
 * taken the connection at all, and lwIP's retransmissions fall on its 50 ms ticks, so a burst
 * of connections resends in a few bunches that a small accept queue turns away again (the
 * fault harness's accept_burst: 100 connects, a queue of 2 with SYN cookies, connections
 * waiting over a minute). Ours run on the millisecond clock, from the handshake's RTO with a
 * quarter of it at random, doubling; lwIP's timer takes over once the peer has answered. */
#include "stack/tcp.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <uv.h>

#include "base/log.h"
#include "lwip/priv/tcp_priv.h" /* TCP_SLOW_INTERVAL */
#include "lwip/sys.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "stack/internal.h"

enum stack_tcp_state {
    STACK_TCP_CONNECTING, /* SYN sent; connect_cb pending */
    STACK_TCP_CONNECTED,  /* connect_cb ran; waiting for stack_tcp_bridge_start() */
    STACK_TCP_BRIDGED,    /* relaying */
    STACK_TCP_CLOSING,    /* the application handle is closing; freed in its close callback */
};

/* Resume reading the application only once this much send buffer is free, so each read moves a
 * useful amount instead of a few bytes at a time. Segments for the application are gathered
 * until the end of the poll phase (or STACK_TCP_RXQ of them) and written with one writev():
 * one system call and one wakeup of the application per batch, not per segment. */
enum {
    STACK_TCP_RESUME_SNDBUF = 16 * 1024,
    STACK_TCP_RXQ = 16,
    STACK_TCP_SMALL = 512,
    STACK_TCP_COALESCE_MIN = 256,
    STACK_TCP_COALESCE_MAX = 8192,
    /* What a buffer costs beyond its payload, as counted against a connection's share: the pbuf,
     * the IP and TCP headers it keeps, the allocator's own word. An estimate, on the high side. */
    STACK_TCP_PBUF_COST = 128,
    STACK_TCP_RECLAIM_MS = 100,
    STACK_TCP_TRIM_BYTES = 32 * 1024 * 1024,
    STACK_TCP_WND_START = 128 * 1024,
    STACK_TCP_WND_MIN = 64 * 1024,
    STACK_TCP_FIN_WINDOW = 128,
    STACK_TCP_FIN_SLOT_MS = 1000,
    STACK_TCP_RTO_MIN_MS = 200,
    STACK_TCP_RTO_JITTER_MS = 150,
    STACK_TCP_SYN_RTO_MS = 1000,
};

/* Where a connection's FIN is in the pacing of closes. */
enum stack_tcp_fin {
    STACK_TCP_FIN_NONE,    /* not asked for, or out of the pacing's hands */
    STACK_TCP_FIN_WAITING, /* the application closed; on the stack's wait list */
    STACK_TCP_FIN_FLIGHT,  /* sent, holding one of the STACK_TCP_FIN_WINDOW slots */
};

struct stack_tcp {
    struct stack *s;
    struct stack_tcp *next, *prev;
    struct tcp_pcb *pcb; /* NULL once lwIP freed it or we let it go */
    enum stack_tcp_state state;
    struct v2s_addr dst;
    uint16_t dport;
    uint16_t sport;
    stack_tcp_connect_cb connect_cb;
    void *arg;

    uv_tcp_t *app;
    stack_tcp_done_cb done;
    void *done_arg;
    char label[320];
    uint8_t *pending; /* application bytes lwIP could not take yet */
    size_t pending_len;
    size_t pending_off;
    struct stack_tcp_write *writing; /* the one uv_write() to the application in flight */
    struct stack_tcp_rx *rxq; /* received, not yet handed to the application (grown as needed) */
    unsigned n_rxq, cap_rxq;
    uint32_t coalesce_size; /* size of rxq's last entry when it is our buffer of small segments */
    uint32_t coalesce_room; /* and its free bytes */
    size_t held;           /* memory held for the application: rxq and the write in flight */
    size_t budget;         /* held for the application plus offered to the peer, at most */
    size_t withheld;       /* the rest of lwIP's window: not given back by tcp_recved() */
    size_t since_grow;     /* bytes the application took since the budget last grew */
    struct stack_tcp *flush_next, *flush_prev; /* on the stack's list while n_rxq > 0 */
    uv_shutdown_t shutdown_req;
    enum stack_tcp_fin fin;
    struct stack_tcp *fin_next, *fin_prev; /* on the stack's fin_wait or fin_flight list */
    uint64_t fin_sent_ms;
    uint32_t syn_sent_ms; /* sys_now() when the SYN left: the handshake's round-trip sample */
    unsigned syn_tries;   /* SYNs sent */
    unsigned flight : 1;  /* in the first flight: its retransmissions are ours (see the top) */
    uint32_t flight_ms;   /* the first flight's retransmission timeout */
    uint32_t first_ack;   /* lastack and rcv_nxt right after the handshake */
    uint32_t first_rcv;
    uint64_t bytes_up;   /* application -> tunnel */
    uint64_t bytes_down; /* tunnel -> application */
    unsigned reading : 1;
    unsigned app_eof : 1;       /* the application half-closed (or we stopped taking its data) */
    unsigned tx_shut : 1;       /* our FIN is queued in lwIP */
    unsigned remote_fin : 1;    /* the remote end half-closed */
    unsigned app_shut_sent : 1; /* uv_shutdown() issued to the application */
    unsigned app_shut_done : 1;
    unsigned reset : 1;         /* ended by a reset or an error, not by two FINs */
    unsigned aborted : 1;       /* we called tcp_abort(): an lwIP callback must return ERR_ABRT */
};

/* A received buffer and the memory it is counted as (see "Memory" at the top). */
struct stack_tcp_rx {
    struct pbuf *p;
    uint32_t cost;
};

/* The uv_write() to the application, holding the buffers it came from. */
struct stack_tcp_write {
    uv_write_t req;
    struct stack_tcp *c;
    size_t len;
    size_t held;
    unsigned n;
    struct stack_tcp_rx *rx;
};

/* A connection's fair share of the stack's limit (see "Memory" at the top). */
static size_t stack_tcp_share(const struct stack *s)
{
    size_t share = s->rx_high / (s->n_conns ? s->n_conns : 1);
    return share < STACK_TCP_WND_MIN ? STACK_TCP_WND_MIN : share;
}

/* Sets c's budget: the most it may hold for its application plus what its window lets the peer
 * send. The rest of lwIP's window is withheld (never given back by tcp_recved()). */
static void stack_tcp_set_budget(struct stack_tcp *c, size_t budget)
{
    struct stack *s = c->s;
    s->rx_budgets = s->rx_budgets - c->budget + budget;
    c->budget = budget;
}

/* The handshake is done, and lwIP has opened its whole window (window scaling agreed): offer the
 * peer only the starting budget. Called before the handshake's ACK leaves, so the peer never
 * sees more (a window, once offered, must not shrink). */
static void stack_tcp_budget_start(struct stack_tcp *c, struct tcp_pcb *pcb)
{
    size_t full = TCP_WND_MAX(pcb), start = STACK_TCP_WND_START < full ? STACK_TCP_WND_START : full;
    if (pcb->rcv_wnd != full || pcb->rcv_ann_wnd != full)
        start = full; /* not the fresh window expected: leave it alone */
    c->withheld = full - start;
    pcb->rcv_wnd = pcb->rcv_ann_wnd = (tcpwnd_size_t)start;
    stack_tcp_set_budget(c, start);
}

/* Counts memory held for c's application, for c and for the whole stack. */
static void stack_tcp_hold(struct stack_tcp *c, size_t add, size_t sub)
{
    struct stack *s = c->s;
    c->held = c->held + add - sub;
    s->rx_held = s->rx_held + add - sub;
    if (s->rx_held > s->rx_held_peak)
        s->rx_held_peak = s->rx_held;
}

static void stack_tcp_link(struct stack_tcp *c)
{
    struct stack *s = c->s;
    s->n_conns++;
    c->prev = NULL;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
}

/* The C allocator keeps what lwIP's buffers gave back, scattered between live ones, so after a
 * burst of load the process stayed at its peak (123 MB after 156 transfers of 1 MiB each way,
 * with 160 bytes left in lwIP's heap). Once the heap has fallen STACK_TCP_TRIM_BYTES below its
 * highest, or the last connection is gone after the heap grew by a megabyte, a connection's end
 * hands the free pages back to the system. (Without the second, a ten-minute soak ended 12 %
 * above where its first round left it, within the allocator's swings between rounds.) */
static void stack_tcp_trim(struct stack *s)
{
#ifdef __GLIBC__
    size_t in_use = stack_mem_bytes();
    if (s->mem_mark > in_use + STACK_TCP_TRIM_BYTES || (s->n_conns == 0 && s->mem_mark > in_use + (1u << 20))) {
        malloc_trim(0);
        s->mem_mark = in_use;
    }
#else
    (void)s;
#endif
}

static void stack_tcp_unlink(struct stack_tcp *c)
{
    stack_tcp_set_budget(c, 0);
    c->s->n_conns--;
    stack_tcp_trim(c->s);
    if (c->prev)
        c->prev->next = c->next;
    else
        c->s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
}

/* Lets go of the pcb. lwIP rule: clear every callback first, so lwIP never calls back into a
 * connection that is going away; tcp_abort() would otherwise call our err callback. */
static void stack_tcp_flight_stop(struct stack_tcp *c);

static void stack_tcp_release_pcb(struct stack_tcp *c, int abort)
{
    struct tcp_pcb *pcb = c->pcb;
    stack_tcp_flight_stop(c);
    if (!pcb)
        return;
    c->pcb = NULL;
    tcp_arg(pcb, NULL);
    tcp_recv(pcb, NULL);
    tcp_sent(pcb, NULL);
    tcp_err(pcb, NULL);
    if (abort || tcp_close(pcb) != ERR_OK) {
        tcp_abort(pcb);
        c->aborted = 1;
    }
}

/* Once both FINs are through, the tunnel side needs nothing more from us: lwIP finishes the
 * close (TIME_WAIT, LAST_ACK) by itself. Letting go now matters because lwIP frees a TIME_WAIT
 * pcb on its own timer without telling anyone, while the application side may take longer. */
static void stack_tcp_maybe_release(struct stack_tcp *c)
{
    if (c->tx_shut && c->remote_fin)
        stack_tcp_release_pcb(c, 0);
}

/* --- pacing of closes (see "Closes are paced" at the top) --- */

static void stack_tcp_fin_take_slot(struct stack_tcp *c)
{
    struct stack *s = c->s;
    c->fin = STACK_TCP_FIN_FLIGHT;
    c->fin_sent_ms = uv_now(s->loop);
    c->fin_prev = NULL;
    c->fin_next = s->fin_flight;
    if (s->fin_flight)
        s->fin_flight->fin_prev = c;
    s->fin_flight = c;
    s->n_fin_flight++;
}

/* Takes c off whichever pacing list it is on, freeing its slot if it held one. */
static void stack_tcp_fin_forget(struct stack_tcp *c)
{
    struct stack *s = c->s;
    if (c->fin == STACK_TCP_FIN_NONE)
        return;
    if (c->fin_next)
        c->fin_next->fin_prev = c->fin_prev;
    else if (c->fin == STACK_TCP_FIN_WAITING)
        s->fin_wait_tail = c->fin_prev;
    if (c->fin_prev)
        c->fin_prev->fin_next = c->fin_next;
    else if (c->fin == STACK_TCP_FIN_WAITING)
        s->fin_wait_head = c->fin_next;
    else
        s->fin_flight = c->fin_next;
    if (c->fin == STACK_TCP_FIN_FLIGHT)
        s->n_fin_flight--;
    c->fin = STACK_TCP_FIN_NONE;
    c->fin_next = c->fin_prev = NULL;
}

/* Whether c's FIN no longer needs its slot: acknowledged (the pcb left FIN_WAIT_1, CLOSING and
 * LAST_ACK, or we let the pcb go), or sent long enough ago. */
static int stack_tcp_fin_done(const struct stack_tcp *c, uint64_t now)
{
    if (!c->pcb || now - c->fin_sent_ms >= STACK_TCP_FIN_SLOT_MS)
        return 1;
    enum tcp_state st = c->pcb->state;
    return st != FIN_WAIT_1 && st != CLOSING && st != LAST_ACK;
}

static void stack_tcp_send_fin(struct stack_tcp *c);

void stack_tcp_fin_pump(struct stack *s)
{
    if (!s->fin_flight && !s->fin_wait_head)
        return;
    uint64_t now = uv_now(s->loop);
    for (struct stack_tcp *c = s->fin_flight, *next; c; c = next) {
        next = c->fin_next;
        if (stack_tcp_fin_done(c, now))
            stack_tcp_fin_forget(c);
    }
    while (s->fin_wait_head && s->n_fin_flight < STACK_TCP_FIN_WINDOW) {
        struct stack_tcp *c = s->fin_wait_head;
        stack_tcp_fin_forget(c);
        stack_tcp_fin_take_slot(c);
        /* May end the bridge (both directions closed), which takes c off the list again. */
        stack_tcp_send_fin(c);
    }
}

/* --- opening --- */

static void stack_tcp_connect_timeout(void *arg);
static void stack_tcp_syn_timer(void *arg);
static void stack_tcp_flush_unlink(struct stack_tcp *c);

/* The connect's own timers are over (connected, failed or cancelled). */
static void stack_tcp_connect_timers_stop(struct stack_tcp *c)
{
    sys_untimeout(stack_tcp_connect_timeout, c);
    sys_untimeout(stack_tcp_syn_timer, c);
}

/* Arms the next SYN retransmission: 1 s doubled per SYN sent, plus up to a quarter at random. */
static void stack_tcp_syn_timer_arm(struct stack_tcp *c)
{
    unsigned shift = c->syn_tries > 6 ? 6 : c->syn_tries - 1;
    uint32_t base = (uint32_t)STACK_TCP_SYN_RTO_MS << shift;
    sys_timeout(base + stack_random() % (base / 4 + 1), stack_tcp_syn_timer, c);
}

static void stack_tcp_syn_timer(void *arg)
{
    struct stack_tcp *c = arg;
    if (!c->pcb || c->pcb->state != SYN_SENT)
        return;
    /* lwIP puts the SYN back in front of unsent and sends it; its count of retransmissions
     * still ends the attempt at TCP_SYNMAXRTX if the connect timeout is longer than that. */
    tcp_rexmit_rto(c->pcb);
    c->syn_tries++;
    stack_tcp_syn_timer_arm(c);
}

/* Ends a connection that never opened; the connect callback learns why. */
static void stack_tcp_fail(struct stack_tcp *c, int status)
{
    stack_tcp_connect_timers_stop(c);
    stack_tcp_release_pcb(c, 1);
    stack_tcp_unlink(c);
    struct stack *s = c->s;
    stack_tcp_connect_cb cb = c->connect_cb;
    void *arg = c->arg;
    free(c);
    cb(arg, NULL, status);
    stack_maybe_free(s);
}

static void stack_tcp_connect_timeout(void *arg)
{
    stack_tcp_fail(arg, UV_ETIMEDOUT);
}

static void stack_tcp_on_error(void *arg, err_t err);
static err_t stack_tcp_on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err);
static err_t stack_tcp_on_sent(void *arg, struct tcp_pcb *pcb, u16_t len);

/* The first retransmission timeout, from the handshake (see "Retransmission timing" at the top).
 * lwIP keeps its estimator in timer ticks: sa is 8 * SRTT, sv is 4 * RTTVAR and rto = sa / 8 + sv.
 * Runs while lwIP handles the SYN-ACK. */
static void stack_tcp_rto_from_handshake(struct stack_tcp *c, struct tcp_pcb *pcb)
{
    /* Karn: a retransmitted SYN gives no sample: 1 s (RFC 6298) and the jitter. */
    if (c->syn_tries > 1) {
        uint32_t rto = STACK_TCP_SYN_RTO_MS / TCP_SLOW_INTERVAL +
                       stack_random() % (STACK_TCP_RTO_JITTER_MS / TCP_SLOW_INTERVAL + 1);
        pcb->sa = 0;
        pcb->sv = (s16_t)rto;
        pcb->rto = (s16_t)rto;
    } else {
        uint32_t rtt = (sys_now() - c->syn_sent_ms) / TCP_SLOW_INTERVAL;
        if (rtt > 0x7FF)
            rtt = 0x7FF; /* a sample of minutes: 8 * SRTT must still fit an s16 */
        uint32_t var4 = 2 * rtt; /* RTTVAR = R / 2 */
        uint32_t floor = STACK_TCP_RTO_MIN_MS / TCP_SLOW_INTERVAL;
        uint32_t jitter = stack_random() % (STACK_TCP_RTO_JITTER_MS / TCP_SLOW_INTERVAL + 1);
        if (var4 < floor)
            var4 = floor;
        pcb->sa = (s16_t)(rtt << 3);
        pcb->sv = (s16_t)(var4 + jitter);
        pcb->rto = (s16_t)(rtt + var4 + jitter);
    }
    /* lwIP leaves the SYN's retransmission count in place and would time the SYN against the
     * first data ACK; the data starts afresh. */
    pcb->nrtx = 0;
    pcb->rttest = 0;
}

/* --- the first flight (see "Retransmission timing" at the top) --- */

static void stack_tcp_flight_timer(void *arg);

static void stack_tcp_flight_arm(struct stack_tcp *c)
{
    sys_timeout(c->flight_ms + stack_random() % (c->flight_ms / 4 + 1), stack_tcp_flight_timer, c);
}

/* The first flight is over: lwIP's own timer, from its estimate, from now on. */
static void stack_tcp_flight_stop(struct stack_tcp *c)
{
    if (!c->flight)
        return;
    c->flight = 0;
    sys_untimeout(stack_tcp_flight_timer, c);
    if (c->pcb) {
        c->pcb->rto = (s16_t)((c->pcb->sa >> 3) + c->pcb->sv);
        c->pcb->rtime = 0;
    }
}

static void stack_tcp_flight_timer(void *arg)
{
    struct stack_tcp *c = arg;
    struct tcp_pcb *pcb = c->pcb;
    /* Still nothing from the peer, and something to resend: resend it all, back off. */
    if (pcb && pcb->unacked && pcb->lastack == c->first_ack && pcb->rcv_nxt == c->first_rcv &&
        (pcb->state == ESTABLISHED || pcb->state == FIN_WAIT_1) && c->flight_ms < 64 * 1000) {
        tcp_rexmit_rto(pcb);
        c->flight_ms *= 2;
        stack_tcp_flight_arm(c);
        return;
    }
    /* Over (this timer is not armed any more, so no untimeout). */
    c->flight = 0;
    if (pcb) {
        pcb->rto = (s16_t)((pcb->sa >> 3) + pcb->sv);
        pcb->rtime = 0;
    }
}

/* From the handshake on, the first flight's retransmissions are ours; lwIP's timer is held off
 * (0x7FFF ticks) until the peer answers (lwIP itself resets its timeout on the first ACK of
 * data) or stack_tcp_flight_stop(). */
static void stack_tcp_flight_start(struct stack_tcp *c, struct tcp_pcb *pcb)
{
    c->flight = 1;
    c->flight_ms = (uint32_t)pcb->rto * TCP_SLOW_INTERVAL;
    c->first_ack = pcb->lastack;
    c->first_rcv = pcb->rcv_nxt;
    pcb->rto = 0x7FFF;
    stack_tcp_flight_arm(c);
}

static err_t stack_tcp_on_connected(void *arg, struct tcp_pcb *pcb, err_t err)
{
    struct stack_tcp *c = arg;
    (void)err; /* lwIP always passes ERR_OK here */
    stack_tcp_connect_timers_stop(c);
    stack_tcp_rto_from_handshake(c, pcb);
    stack_tcp_flight_start(c, pcb);
    stack_tcp_budget_start(c, pcb);
    c->state = STACK_TCP_CONNECTED;
    c->connect_cb(c->arg, c, 0);
    /* The bridge may have given up at once (out of memory); c lives on until its app handle
     * closes, so the flag can still be read. */
    return c->aborted ? ERR_ABRT : ERR_OK;
}

int stack_tcp_connect(struct stack *s, const struct v2s_addr *dst, uint16_t port, unsigned timeout_ms,
                      stack_tcp_connect_cb cb, void *arg, struct stack_tcp **out)
{
    if (!s->up || s->closing)
        return UV_ENETDOWN;
    if (!stack_has_family(s, dst->family))
        return UV_ENETUNREACH;
    struct stack_tcp *c = calloc(1, sizeof(*c));
    if (!c)
        return UV_ENOMEM;
    ip_addr_t ip;
    stack_addr_to_lwip(dst, &ip);
    struct tcp_pcb *pcb = tcp_new_ip_type(IP_GET_TYPE(&ip));
    if (!pcb) {
        free(c);
        return UV_ENOMEM;
    }
    c->s = s;
    c->pcb = pcb;
    c->dst = *dst;
    c->dport = port;
    c->connect_cb = cb;
    c->arg = arg;
    c->state = STACK_TCP_CONNECTING;
    tcp_arg(pcb, c);
    tcp_err(pcb, stack_tcp_on_error);
    tcp_recv(pcb, stack_tcp_on_recv);
    tcp_sent(pcb, stack_tcp_on_sent);
    /* Many small writes (interactive protocols) should not wait for the ACK of the previous one. */
    tcp_nagle_disable(pcb);
    /* The SYN's retransmissions are ours (stack_tcp_syn_timer): lwIP's timer must not fire
     * before the handshake (0x7FFF ticks is its largest timeout, half an hour). */
    pcb->rto = 0x7FFF;
    c->syn_sent_ms = sys_now();
    c->syn_tries = 1;
    /* A tunnel that is between sessions (the OpenVPN client reconnecting) refuses packets while
     * the stack is still up, to keep connections across a quick reconnect; a new connection then
     * fails at once, as "no route", rather than wait out its connect timeout. lwIP itself
     * ignores the SYN's send error. */
    s->send_failed = 0;
    /* A random local port (lwIP's own count up by one); if every try is taken, lwIP picks one. */
    for (int i = 0; i < STACK_PORT_TRIES; i++) {
        if (tcp_bind(pcb, IP_IS_V6(&ip) ? IP6_ADDR_ANY : IP4_ADDR_ANY, stack_random_port()) == ERR_OK)
            break;
    }
    err_t e = tcp_connect(pcb, &ip, port, stack_tcp_on_connected);
    if (e == ERR_OK && s->send_failed)
        e = ERR_IF;
    if (e != ERR_OK) {
        tcp_arg(pcb, NULL);
        tcp_err(pcb, NULL);
        tcp_abort(pcb);
        free(c);
        return stack_err_to_uv(e);
    }
    c->sport = pcb->local_port;
    stack_tcp_link(c);
    sys_timeout(timeout_ms, stack_tcp_connect_timeout, c);
    stack_tcp_syn_timer_arm(c);
    *out = c;
    return 0;
}

void stack_tcp_cancel(struct stack_tcp *c)
{
    struct stack *s = c->s;
    stack_tcp_connect_timers_stop(c);
    stack_tcp_release_pcb(c, 1);
    stack_tcp_unlink(c);
    free(c);
    stack_maybe_free(s);
}

void stack_tcp_local(const struct stack_tcp *c, struct v2s_addr *addr, uint16_t *port)
{
    memset(addr, 0, sizeof(*addr));
    *port = 0;
    if (c->pcb) {
        stack_addr_from_lwip(&c->pcb->local_ip, addr);
        *port = c->pcb->local_port;
    }
}

int stack_tcp_icmp_error(struct stack *s, const struct v2s_addr *src, const struct v2s_addr *dst,
                         uint16_t sport, uint16_t dport, uint32_t seq, int status)
{
    for (struct stack_tcp *c = s->conns; c; c = c->next) {
        if (c->state != STACK_TCP_CONNECTING || !c->pcb || c->sport != sport || c->dport != dport ||
            !v2s_addr_equal(&c->dst, dst))
            continue;
        struct v2s_addr local;
        stack_addr_from_lwip(&c->pcb->local_ip, &local);
        /* RFC 5927: SND.UNA <= SEG.SEQ < SND.NXT; while opening, that is the SYN's own. */
        if (!v2s_addr_equal(&local, src) || !TCP_SEQ_BETWEEN(seq, c->pcb->lastack, c->pcb->snd_nxt - 1))
            return -1;
        stack_tcp_fail(c, status);
        return 0;
    }
    return -1;
}

/* --- the bridge --- */

static void stack_tcp_app_closed(uv_handle_t *h)
{
    struct stack_tcp *c = h->data;
    struct stack *s = c->s;
    stack_tcp_unlink(c);
    free(c->pending);
    free(c->rxq);
    stack_tcp_done_cb done = c->done;
    void *done_arg = c->done_arg;
    int reset = c->reset;
    uint64_t up = c->bytes_up, down = c->bytes_down;
    free(c);
    if (done)
        done(done_arg, reset, up, down);
    stack_maybe_free(s);
}

static void stack_tcp_free_rxq(struct stack_tcp *c);

/* Ends the bridge. With reset, the application sees a TCP reset (SO_LINGER 0) and the remote end
 * gets one through lwIP; otherwise both FINs have been exchanged already. Pending uv writes are
 * cancelled by uv_close() and free their pbufs before the close callback runs. */
static void stack_tcp_end(struct stack_tcp *c, int reset)
{
    if (c->state == STACK_TCP_CLOSING)
        return;
    c->state = STACK_TCP_CLOSING;
    c->reset = reset ? 1 : 0;
    stack_tcp_fin_forget(c);
    if (c->n_rxq)
        stack_tcp_flush_unlink(c);
    stack_tcp_free_rxq(c);
    stack_tcp_release_pcb(c, reset);
    if (reset) {
        uv_os_fd_t fd;
        if (uv_fileno((uv_handle_t *)c->app, &fd) == 0) {
            struct linger l = {1, 0};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
        }
    }
    uv_close((uv_handle_t *)c->app, stack_tcp_app_closed);
}

/* Both directions closed cleanly: done. */
static void stack_tcp_maybe_finish(struct stack_tcp *c)
{
    if (c->state == STACK_TCP_BRIDGED && c->tx_shut && c->app_shut_done)
        stack_tcp_end(c, 0);
}

static void stack_tcp_read_start(struct stack_tcp *c);

static void stack_tcp_app_shutdown_cb(uv_shutdown_t *req, int status)
{
    struct stack_tcp *c = req->data;
    if (c->state != STACK_TCP_BRIDGED)
        return;
    if (status < 0) {
        stack_tcp_end(c, 1);
        return;
    }
    c->app_shut_done = 1;
    stack_tcp_maybe_finish(c);
}

/* The remote end's FIN reaches the application once every byte before it has. */
static void stack_tcp_maybe_shutdown_app(struct stack_tcp *c)
{
    if (c->state != STACK_TCP_BRIDGED || !c->remote_fin || c->writing || c->n_rxq || c->app_shut_sent)
        return;
    c->app_shut_sent = 1;
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)c->app, stack_tcp_app_shutdown_cb) < 0)
        stack_tcp_end(c, 1);
}

/* Opens c's window by what its application has taken (withheld) as far as its budget allows,
 * after growing the budget (when the application took a whole budget since it last grew, and
 * the stack's limit has room) or cutting it to its share (when the budgets of all connections
 * are over the limit). A closed window is announced open at once: the peer only probes it. */
static void stack_tcp_open_window(struct stack_tcp *c)
{
    struct stack *s = c->s;
    if (!c->pcb)
        return;
    size_t full = TCP_WND_MAX(c->pcb), share = stack_tcp_share(s);
    if (c->since_grow >= c->budget && c->budget < full) {
        size_t more = c->budget < full - c->budget ? c->budget : full - c->budget;
        if (s->rx_budgets + more <= s->rx_high || c->budget + more <= share)
            stack_tcp_set_budget(c, c->budget + more);
        c->since_grow = 0;
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
        tcp_output(c->pcb);
    }
}

/* len bytes are in the application's socket: now, and only now, open the window by as much (within
 * the connection's budget). */
static void stack_tcp_app_wrote(struct stack_tcp *c, size_t len)
{
    c->bytes_down += len;
    c->withheld += len;
    c->since_grow += len;
    stack_tcp_open_window(c);
    stack_tcp_maybe_shutdown_app(c);
}

static int stack_tcp_flush(struct stack_tcp *c);

static void stack_tcp_app_write_cb(uv_write_t *req, int status)
{
    struct stack_tcp_write *w = (struct stack_tcp_write *)req;
    struct stack_tcp *c = w->c;
    size_t len = w->len;
    for (unsigned i = 0; i < w->n; i++)
        pbuf_free(w->rx[i].p);
    stack_tcp_hold(c, 0, w->held);
    free(w->rx);
    free(w);
    c->writing = NULL;
    if (c->state != STACK_TCP_BRIDGED)
        return;
    if (status < 0) {
        v2s_debug("%s: write to application failed: %s", c->label, uv_strerror(status));
        stack_tcp_end(c, 1);
        return;
    }
    stack_tcp_app_wrote(c, len);
    /* What arrived while this write was in flight goes now, in one write. */
    if (c->state == STACK_TCP_BRIDGED && stack_tcp_flush(c) < 0)
        stack_tcp_end(c, 1);
}

static void stack_tcp_flush_unlink(struct stack_tcp *c)
{
    struct stack *s = c->s;
    if (c->flush_prev)
        c->flush_prev->flush_next = c->flush_next;
    else if (s->flushes == c)
        s->flushes = c->flush_next;
    if (c->flush_next)
        c->flush_next->flush_prev = c->flush_prev;
    c->flush_next = c->flush_prev = NULL;
}

static void stack_tcp_free_rxq(struct stack_tcp *c)
{
    for (unsigned i = 0; i < c->n_rxq; i++) {
        stack_tcp_hold(c, 0, c->rxq[i].cost);
        pbuf_free(c->rxq[i].p);
    }
    c->n_rxq = 0;
    c->coalesce_size = c->coalesce_room = 0;
}

/* Writes the gathered segments to the application. Most of the time its socket takes them all at
 * once: then one writev() is the whole cost, the window opens at once, and there is no request
 * to allocate and no completion to wait for (libuv reports even a uv_write() that finished at
 * once only from the next loop iteration, and re-registers the descriptor with epoll for it).
 * What the socket does not take goes into one uv_write(). 0, or a negative uv error with the
 * segments freed. */
static int stack_tcp_flush(struct stack_tcp *c)
{
    if (c->n_rxq == 0)
        return 0;
    stack_tcp_flush_unlink(c);
    if (c->writing)
        return 0; /* its completion writes what gathered meanwhile */
    size_t nbufs = 0, len = 0;
    for (unsigned i = 0; i < c->n_rxq; i++) {
        nbufs += pbuf_clen(c->rxq[i].p);
        len += c->rxq[i].p->tot_len;
    }
    uv_buf_t small[64];
    uv_buf_t *bufs = nbufs <= 64 ? small : malloc(nbufs * sizeof(*bufs));
    if (!bufs) {
        stack_tcp_free_rxq(c);
        return UV_ENOMEM;
    }
    size_t k = 0;
    for (unsigned i = 0; i < c->n_rxq; i++)
        for (struct pbuf *q = c->rxq[i].p; q; q = q->next)
            bufs[k++] = uv_buf_init(q->payload, q->len);
    /* While a uv_write() is queued, uv_try_write() refuses (UV_EAGAIN), which keeps the order. */
    int rc = uv_try_write((uv_stream_t *)c->app, bufs, (unsigned)nbufs);
    size_t done = rc > 0 ? (size_t)rc : 0;
    struct stack_tcp_write *w = NULL;
    if ((rc < 0 && rc != UV_EAGAIN) || done == len || !(w = malloc(sizeof(*w)))) {
        if (bufs != small)
            free(bufs);
        stack_tcp_free_rxq(c);
        if (rc < 0 && rc != UV_EAGAIN)
            return rc;
        if (done < len)
            return UV_ENOMEM;
        stack_tcp_app_wrote(c, len);
        return 0;
    }
    /* The rest: skip the descriptors, and the part of one, that the socket took. */
    size_t first = 0;
    while (done >= bufs[first].len) {
        done -= bufs[first].len;
        first++;
    }
    bufs[first].base += done;
    bufs[first].len -= done;
    /* The window opens for the whole batch when the uv_write() completes; the write takes the
     * array of pbufs with it and rxq starts afresh. */
    w->c = c;
    w->len = len;
    w->held = 0;
    for (unsigned i = 0; i < c->n_rxq; i++)
        w->held += c->rxq[i].cost;
    w->n = c->n_rxq;
    w->rx = c->rxq;
    c->rxq = NULL;
    c->n_rxq = c->cap_rxq = 0;
    c->coalesce_size = c->coalesce_room = 0;
    /* uv_write() copies the descriptors, so bufs may go when it returns. */
    rc = uv_write(&w->req, (uv_stream_t *)c->app, bufs + first, (unsigned)(nbufs - first), stack_tcp_app_write_cb);
    if (bufs != small)
        free(bufs);
    if (rc < 0) {
        for (unsigned i = 0; i < w->n; i++)
            pbuf_free(w->rx[i].p);
        stack_tcp_hold(c, 0, w->held);
        free(w->rx);
        free(w);
        return rc;
    }
    c->writing = w;
    return 0;
}

/* Appends p (consumed) to rxq, counted as cost. 0, or UV_ENOMEM with p freed. */
static int stack_tcp_rxq_push(struct stack_tcp *c, struct pbuf *p, uint32_t cost)
{
    if (c->n_rxq == c->cap_rxq) {
        unsigned cap = c->cap_rxq ? 2 * c->cap_rxq : STACK_TCP_RXQ;
        struct stack_tcp_rx *grown = realloc(c->rxq, cap * sizeof(*grown));
        if (!grown) {
            pbuf_free(p);
            return UV_ENOMEM;
        }
        c->rxq = grown;
        c->cap_rxq = cap;
    }
    c->rxq[c->n_rxq].p = p;
    c->rxq[c->n_rxq].cost = cost;
    c->n_rxq++;
    stack_tcp_hold(c, cost, 0);
    c->coalesce_size = c->coalesce_room = 0;
    return 0;
}

/* Keeps p (consumed) in rxq: a small segment is copied into the buffer of small segments at
 * rxq's end, which is started (or followed by one twice its size, up to the largest) when it
 * has no room. 0, or UV_ENOMEM with p freed. */
static int stack_tcp_rxq_add(struct stack_tcp *c, struct pbuf *p)
{
    if (p->tot_len <= STACK_TCP_SMALL) {
        if (c->coalesce_room < p->tot_len) {
            uint32_t size = c->coalesce_size ? 2 * c->coalesce_size : STACK_TCP_COALESCE_MIN;
            if (size > STACK_TCP_COALESCE_MAX)
                size = STACK_TCP_COALESCE_MAX;
            struct pbuf *q = pbuf_alloc(PBUF_RAW, (u16_t)size, PBUF_RAM);
            if (q && stack_tcp_rxq_push(c, q, size + STACK_TCP_PBUF_COST) == 0) {
                q->len = q->tot_len = 0;
                c->coalesce_size = c->coalesce_room = size;
            }
        }
        if (c->coalesce_room >= p->tot_len) {
            struct pbuf *q = c->rxq[c->n_rxq - 1].p;
            pbuf_copy_partial(p, (uint8_t *)q->payload + q->len, p->tot_len, 0);
            q->len = q->tot_len = (u16_t)(q->len + p->tot_len);
            c->coalesce_room -= p->tot_len;
            pbuf_free(p);
            return 0;
        }
        /* No memory for a buffer: keep p as it is. */
    }
    return stack_tcp_rxq_push(c, p, (uint32_t)(p->tot_len + pbuf_clen(p) * STACK_TCP_PBUF_COST));
}

/* Keeps p (consumed) for the next flush; flushes at once when a batch is full and no write is in
 * flight. 0, or a negative uv error (p and the batch freed). */
static int stack_tcp_deliver(struct stack_tcp *c, struct pbuf *p)
{
    if (c->n_rxq == 0) {
        struct stack *s = c->s;
        c->flush_prev = NULL;
        c->flush_next = s->flushes;
        if (s->flushes)
            s->flushes->flush_prev = c;
        s->flushes = c;
        stack_check_arm(s);
    }
    int rc = stack_tcp_rxq_add(c, p);
    if (rc < 0) {
        stack_tcp_flush_unlink(c);
        stack_tcp_free_rxq(c);
        return rc;
    }
    return c->n_rxq >= STACK_TCP_RXQ && !c->writing ? stack_tcp_flush(c) : 0;
}

void stack_tcp_flush_all(struct stack *s)
{
    while (s->flushes) {
        struct stack_tcp *c = s->flushes;
        if (stack_tcp_flush(c) < 0)
            stack_tcp_end(c, 1);
    }
}

static err_t stack_tcp_on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
    struct stack_tcp *c = arg;
    (void)err; /* lwIP passes ERR_OK for data and FIN */
    if (!p) {
        c->remote_fin = 1;
        stack_tcp_maybe_release(c);
        stack_tcp_maybe_shutdown_app(c);
        return c->aborted ? ERR_ABRT : ERR_OK;
    }
    if (c->state != STACK_TCP_BRIDGED) {
        /* Nobody to give it to (the bridge is closing): take it so lwIP does not retry. */
        tcp_recved(pcb, p->tot_len);
        pbuf_free(p);
        return ERR_OK;
    }
    if (stack_tcp_deliver(c, p) < 0) {
        /* The pcb is aborted inside its own callback, so lwIP must hear ERR_ABRT. */
        stack_tcp_end(c, 1);
        return ERR_ABRT;
    }
    /* A full batch was written at once, which may have ended the bridge. */
    return c->aborted ? ERR_ABRT : ERR_OK;
}

static void stack_tcp_on_error(void *arg, err_t err)
{
    struct stack_tcp *c = arg;
    /* lwIP has already freed the pcb. */
    c->pcb = NULL;
    stack_tcp_flight_stop(c);
    if (c->state == STACK_TCP_CONNECTING) {
        stack_tcp_fail(c, err == ERR_RST ? UV_ECONNREFUSED : err == ERR_ABRT ? UV_ETIMEDOUT
                                                                              : stack_err_to_uv(err));
        return;
    }
    if (c->state == STACK_TCP_CONNECTED) {
        /* The owner is between connect_cb and bridge_start; it finds pcb NULL there. */
        return;
    }
    if (err == ERR_CLSD && c->tx_shut && c->remote_fin) {
        /* Not a failure: the remote end acknowledged our FIN after sending its own (LAST_ACK
         * done) and lwIP freed the pcb. The application side may still be finishing. */
        stack_tcp_maybe_finish(c);
        return;
    }
    v2s_debug("%s: tunnel side %s", c->label, err == ERR_RST ? "reset" : uv_strerror(stack_err_to_uv(err)));
    stack_tcp_end(c, 1);
}

/* Whether lwIP can take a useful amount of application data now. */
static int stack_tcp_can_take(const struct stack_tcp *c)
{
    return c->pcb && !c->s->tunnel_congested && !c->pending && tcp_sndbuf(c->pcb) >= STACK_TCP_RESUME_SNDBUF &&
           tcp_sndqueuelen(c->pcb) < TCP_SNDQUEUELOWAT;
}

/* Copies application bytes into lwIP. Returns how many were taken; stops at ERR_MEM (send buffer
 * or segment queue full) and returns a negative uv error on a hard failure. */
static ssize_t stack_tcp_push(struct stack_tcp *c, const uint8_t *data, size_t len)
{
    size_t off = 0;
    while (off < len && c->pcb) {
        size_t room = tcp_sndbuf(c->pcb);
        if (room == 0)
            break;
        size_t chunk = len - off;
        if (chunk > room)
            chunk = room;
        if (chunk > 0xFFFF)
            chunk = 0xFFFF;
        u8_t flags = TCP_WRITE_FLAG_COPY | (off + chunk < len ? TCP_WRITE_FLAG_MORE : 0);
        err_t e = tcp_write(c->pcb, data + off, (u16_t)chunk, flags);
        if (e == ERR_MEM)
            break;
        if (e != ERR_OK)
            return stack_err_to_uv(e);
        off += chunk;
    }
    if (off > 0 && c->pcb)
        tcp_output(c->pcb);
    c->bytes_up += off;
    return (ssize_t)off;
}

/* Sends our FIN now (the pacing gave it a slot, or it is not needed). */
static void stack_tcp_send_fin(struct stack_tcp *c)
{
    if (c->tx_shut || !c->pcb)
        return;
    c->tx_shut = 1;
    err_t e = tcp_shutdown(c->pcb, 0, 1);
    if (e != ERR_OK) {
        /* Only ERR_CONN (not connected yet) is possible for a bridged pcb: nothing sane is left. */
        v2s_debug("%s: shutdown toward the tunnel failed: %s", c->label, uv_strerror(stack_err_to_uv(e)));
        stack_tcp_end(c, 1);
        return;
    }
    stack_tcp_maybe_release(c);
    stack_tcp_maybe_finish(c);
}

/* The application closed its write direction: our FIN goes out now if a slot is free, else it
 * waits its turn (see "Closes are paced" at the top). */
static void stack_tcp_shut_tx(struct stack_tcp *c)
{
    struct stack *s = c->s;
    if (c->tx_shut || !c->pcb || c->fin != STACK_TCP_FIN_NONE)
        return;
    if (s->n_fin_flight >= STACK_TCP_FIN_WINDOW) {
        c->fin = STACK_TCP_FIN_WAITING;
        c->fin_next = NULL;
        c->fin_prev = s->fin_wait_tail;
        if (s->fin_wait_tail)
            s->fin_wait_tail->fin_next = c;
        else
            s->fin_wait_head = c;
        s->fin_wait_tail = c;
        return;
    }
    stack_tcp_fin_take_slot(c);
    stack_tcp_send_fin(c);
}

static void stack_tcp_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct stack_tcp *c = h->data;
    size_t len = STACK_READ_BUF_SIZE;
    (void)suggested;
    if (c->pcb && tcp_sndbuf(c->pcb) < len)
        len = tcp_sndbuf(c->pcb);
    if (len == 0)
        len = 1; /* never hand libuv an empty buffer: it reports that as ENOBUFS */
    /* One shared buffer: libuv calls alloc, read and read_cb back to back for one handle, and the
     * read callback copies everything out before it returns. */
    *buf = uv_buf_init((char *)c->s->read_buf, (unsigned)len);
}

static void stack_tcp_read_stop(struct stack_tcp *c)
{
    if (c->reading) {
        uv_read_stop((uv_stream_t *)c->app);
        c->reading = 0;
    }
}

static void stack_tcp_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct stack_tcp *c = stream->data;
    if (nread == 0 || c->state != STACK_TCP_BRIDGED)
        return;
    if (nread == UV_EOF) {
        stack_tcp_read_stop(c);
        c->app_eof = 1;
        if (!c->pending)
            stack_tcp_shut_tx(c);
        return;
    }
    if (nread < 0) {
        v2s_debug("%s: application side %s", c->label, uv_strerror((int)nread));
        stack_tcp_end(c, 1);
        return;
    }
    if (!c->pcb) {
        stack_tcp_end(c, 1);
        return;
    }
    ssize_t taken = stack_tcp_push(c, (const uint8_t *)buf->base, (size_t)nread);
    if (taken < 0) {
        stack_tcp_end(c, 1);
        return;
    }
    if (taken < nread) {
        size_t rest = (size_t)(nread - taken);
        c->pending = malloc(rest);
        if (!c->pending) {
            stack_tcp_end(c, 1);
            return;
        }
        memcpy(c->pending, buf->base + taken, rest);
        c->pending_len = rest;
        c->pending_off = 0;
    }
    if (!stack_tcp_can_take(c))
        stack_tcp_read_stop(c);
}

static void stack_tcp_read_start(struct stack_tcp *c)
{
    if (c->reading || c->app_eof || c->state != STACK_TCP_BRIDGED || !stack_tcp_can_take(c))
        return;
    if (uv_read_start((uv_stream_t *)c->app, stack_tcp_alloc_cb, stack_tcp_read_cb) == 0)
        c->reading = 1;
}

/* Moves held-back application bytes into lwIP; once they are all in, reading resumes (or the FIN
 * that waited behind them goes out). */
static int stack_tcp_flush_pending(struct stack_tcp *c)
{
    if (!c->pending)
        return 0;
    ssize_t taken = stack_tcp_push(c, c->pending + c->pending_off, c->pending_len - c->pending_off);
    if (taken < 0)
        return (int)taken;
    c->pending_off += (size_t)taken;
    if (c->pending_off == c->pending_len) {
        free(c->pending);
        c->pending = NULL;
        if (c->app_eof)
            stack_tcp_shut_tx(c);
    }
    return 0;
}

static err_t stack_tcp_on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
    struct stack_tcp *c = arg;
    (void)pcb;
    (void)len;
    if (c->state != STACK_TCP_BRIDGED)
        return ERR_OK;
    if (stack_tcp_flush_pending(c) < 0) {
        stack_tcp_end(c, 1);
        return ERR_ABRT;
    }
    stack_tcp_read_start(c);
    /* The held-back bytes going in may have let our FIN go (stack_tcp_shut_tx), and a FIN that
     * lwIP refuses ends the bridge with tcp_abort() on this very pcb: lwIP must hear ERR_ABRT. */
    return c->aborted ? ERR_ABRT : ERR_OK;
}

void stack_tcp_bridge_start(struct stack_tcp *c, uv_tcp_t *app, const uint8_t *early, size_t n,
                            const char *label, stack_tcp_done_cb done, void *arg)
{
    c->app = app;
    app->data = c;
    c->done = done;
    c->done_arg = arg;
    c->state = STACK_TCP_BRIDGED;
    snprintf(c->label, sizeof(c->label), "%s", label);
    if (!c->pcb) {
        /* Reset between connect and here. */
        stack_tcp_end(c, 1);
        return;
    }
    if (n > 0) {
        ssize_t taken = stack_tcp_push(c, early, n);
        if (taken < 0) {
            stack_tcp_end(c, 1);
            return;
        }
        if ((size_t)taken < n) {
            c->pending = malloc(n - (size_t)taken);
            if (!c->pending) {
                stack_tcp_end(c, 1);
                return;
            }
            memcpy(c->pending, early + taken, n - (size_t)taken);
            c->pending_len = n - (size_t)taken;
        }
    }
    stack_tcp_read_start(c);
    if (c->remote_fin)
        stack_tcp_maybe_shutdown_app(c);
}

void stack_tcp_abort_all(struct stack *s)
{
    struct stack_tcp *c = s->conns, *next;
    for (; c; c = next) {
        next = c->next;
        if (c->state == STACK_TCP_CONNECTING)
            stack_tcp_fail(c, UV_ENETDOWN);
        else if (c->state == STACK_TCP_BRIDGED)
            stack_tcp_end(c, 1);
        else if (c->state == STACK_TCP_CONNECTED)
            stack_tcp_release_pcb(c, 1);
    }
}

void stack_tcp_resume_all(struct stack *s)
{
    for (struct stack_tcp *c = s->conns; c; c = c->next)
        stack_tcp_read_start(c);
}

/* --- memory under pressure (see "Memory" at the top) --- */

void stack_tcp_reclaim(struct stack *s)
{
    uint64_t now = uv_now(s->loop);
    if (now - s->reclaim_ms < STACK_TCP_RECLAIM_MS)
        return;
    s->reclaim_ms = now;
    unsigned freed = 0;
    for (struct stack_tcp *c = s->conns; c; c = c->next) {
        if (c->pcb && c->pcb->ooseq) {
            tcp_free_ooseq(c->pcb);
            freed++;
        }
    }
    s->reclaims++;
    v2s_debug("stack: %zu bytes in use, above %u: out-of-order data of %u connections given back",
              stack_mem_bytes(), (unsigned)STACK_MEM_HIGH, freed);
}
