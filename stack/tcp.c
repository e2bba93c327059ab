/* TCP through the tunnel: opening a connection from the tunnel address, the connection object's
 * life, and the start of the bridge that relays it to an application's uv_tcp_t.
 *
 * The bridge is six files, one job each, and each says at its top what it guarantees and why:
 *   tcp.c         opening (SYN and first-flight retransmissions, below), the list of every
 *                 connection, lwIP's error callback, tunnel down and writable;
 *   tcp_recv.c    tunnel to application: backpressure (the window opens only as the application
 *                 takes the bytes) and the memory small segments cost;
 *   tcp_send.c    application to tunnel: backpressure from lwIP's send buffer and the tunnel;
 *   tcp_close.c   FINs and resets passed through, and closes paced (at most so many FINs in
 *                 flight);
 *   tcp_budget.c  memory held for applications: each connection's budget and fair share, the
 *                 worst case for N connections, what is given back under pressure;
 *   tcp_listen.c  listening in the tunnel (-R): what lwIP accepts becomes a connection like
 *                 ours (stack_tcp_adopt(), below), and the bounds on half-open handshakes.
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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "base/log.h"
#include "lwip/priv/tcp_priv.h" /* TCP_SLOW_INTERVAL, tcp_rexmit_rto() */
#include "lwip/sys.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "stack/tcp_internal.h"
#include "stack/lwip_pin.h" /* lwIP internals: see there */

enum {
    STACK_TCP_RTO_MIN_MS = 200,
    STACK_TCP_RTO_JITTER_MS = 150,
    STACK_TCP_SYN_RTO_MS = 1000,
    /* Keepalives on every connection through the tunnel (see stack_tcp_keepalive_start()). */
    STACK_TCP_KEEP_IDLE_MS = 120 * 1000,
    STACK_TCP_KEEP_INTVL_MS = 15 * 1000,
    STACK_TCP_KEEP_CNT = 8,
};

static void stack_tcp_link(struct stack_tcp *c)
{
    struct stack *s = c->s;
    s->n_conns++;
    v2s_list_push_front(&s->conns, &c->node);
    stack_tcp_probe_look_start(s);
}

void stack_tcp_unlink(struct stack_tcp *c)
{
    stack_tcp_set_budget(c, 0);
    c->s->n_conns--;
    stack_tcp_trim(c->s);
    v2s_list_remove(&c->node);
    v2s_list_remove(&c->ride_node);
    v2s_list_remove(&c->refill_node);
    if (v2s_list_empty(&c->s->conns))
        stack_tcp_probe_look_stop(c->s);
}

/* --- opening --- */

static void stack_tcp_connect_timeout(void *arg);
static void stack_tcp_syn_timer(void *arg);

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

/* The first retransmission timeout, from the handshake (see "Retransmission timing" at the top):
 * rtt is its round trip in lwIP's timer ticks, or -1 when a SYN or SYN-ACK was resent (Karn: no
 * sample; 1 s as RFC 6298 says, and the jitter). lwIP keeps its estimator in timer ticks: sa is
 * 8 * SRTT, sv is 4 * RTTVAR and rto = sa / 8 + sv. */
static void stack_tcp_rto_seed(struct tcp_pcb *pcb, int32_t rtt)
{
    uint32_t jitter = stack_random() % (STACK_TCP_RTO_JITTER_MS / TCP_SLOW_INTERVAL + 1);
    if (rtt < 0) {
        uint32_t rto = STACK_TCP_SYN_RTO_MS / TCP_SLOW_INTERVAL + jitter;
        pcb->sa = 0;
        pcb->sv = (s16_t)rto;
        pcb->rto = (s16_t)rto;
    } else {
        uint32_t r = (uint32_t)rtt;
        if (r > 0x7FF)
            r = 0x7FF; /* a sample of minutes: 8 * SRTT must still fit an s16 */
        uint32_t var4 = 2 * r; /* RTTVAR = R / 2 */
        uint32_t floor = STACK_TCP_RTO_MIN_MS / TCP_SLOW_INTERVAL;
        if (var4 < floor)
            var4 = floor;
        pcb->sa = (s16_t)(r << 3);
        pcb->sv = (s16_t)(var4 + jitter);
        pcb->rto = (s16_t)(r + var4 + jitter);
    }
    /* lwIP leaves the handshake's retransmission count in place and would time it against the
     * first data ACK; the data starts afresh. */
    pcb->nrtx = 0;
    pcb->rttest = 0;
}

/* Runs while lwIP handles the SYN-ACK. */
static void stack_tcp_rto_from_handshake(struct stack_tcp *c, struct tcp_pcb *pcb)
{
    if (c->syn_tries > 1)
        stack_tcp_rto_seed(pcb, -1);
    else
        stack_tcp_rto_seed(pcb, (int32_t)((sys_now() - c->syn_sent_ms) / TCP_SLOW_INTERVAL));
}

/* --- the first flight (see "Retransmission timing" at the top) --- */

static void stack_tcp_flight_timer(void *arg);

static void stack_tcp_flight_arm(struct stack_tcp *c)
{
    sys_timeout(c->flight_ms + stack_random() % (c->flight_ms / 4 + 1), stack_tcp_flight_timer, c);
}

/* The first flight is over: lwIP's own timer, from its estimate, from now on. */
void stack_tcp_flight_stop(struct stack_tcp *c)
{
    if (!c->flight)
        return;
    c->flight = 0;
    sys_untimeout(stack_tcp_flight_timer, c);
    if (c->pcb) {
        c->pcb->rto = (s16_t)((c->pcb->sa >> 3) + c->pcb->sv);
        c->pcb->rtime = c->pcb->unacked ? 0 : -1; /* lwIP's own rule: no timer with nothing to resend */
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
        pcb->rtime = pcb->unacked ? 0 : -1;
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

/* An application's own keepalives stop at our end of its loopback connection, so the far end
 * going away unheard is ours to notice. That happens when its reset is lost: a peer that reset
 * answers later segments with resets of its own, but a client that only receives has nothing to
 * send, and resets that answer our older ACKs fall below our window and are ignored (RFC 5961),
 * so the connection would stay open forever (the fault harness's reset scenario, seeds 5008 and
 * 5030, hung for its whole 600 s). After STACK_TCP_KEEP_IDLE_MS without a segment from the peer,
 * lwIP sends a keepalive every STACK_TCP_KEEP_INTVL_MS; a live peer acknowledges it, a peer
 * that reset answers it with a reset we accept, and one that stays silent through
 * STACK_TCP_KEEP_CNT of them is given up (the application sees a reset). They also keep the
 * state of idle connections alive in NATs and firewalls on the VPN side. */
static void stack_tcp_keepalive_start(struct tcp_pcb *pcb)
{
    ip_set_option(pcb, SOF_KEEPALIVE);
    pcb->keep_idle = STACK_TCP_KEEP_IDLE_MS;
    pcb->keep_intvl = STACK_TCP_KEEP_INTVL_MS;
    pcb->keep_cnt = STACK_TCP_KEEP_CNT;
}

static err_t stack_tcp_on_connected(void *arg, struct tcp_pcb *pcb, err_t err)
{
    struct stack_tcp *c = arg;
    (void)err; /* lwIP always passes ERR_OK here */
    stack_tcp_connect_timers_stop(c);
    stack_tcp_rto_from_handshake(c, pcb);
    stack_tcp_flight_start(c, pcb);
    if (c->syn_tries == 1) /* an answer to the one SYN: a round-trip sample */
        c->rtt_us = (uint32_t)(stack_now_us() - c->syn_sent_us);
    stack_tcp_budget_start(c, pcb);
    stack_tcp_keepalive_start(pcb);
    c->state = STACK_TCP_CONNECTED;
    c->connect_cb(c->arg, c, 0);
    /* The bridge may have given up at once (out of memory); c lives on until its app handle
     * closes, so the flag can still be read. */
    if (c->aborted)
        return ERR_ABRT;
    if (c->state == STACK_TCP_BRIDGED)
        stack_tcp_ack_ride_start(c);
    return ERR_OK;
}

/* A random local port (lwIP's own count up by one). lwIP binds a port for every destination and
 * keeps it through TIME_WAIT (2 * TCP_MSL, two minutes), so an application that opens and closes
 * first 137 connections a second holds every port of the range in TIME_WAIT. When every try is
 * taken, the port of the oldest connection in TIME_WAIT is taken from it, as lwIP itself does
 * (tcp_kill_timewait()) when it has no memory for a pcb; should the new connection go to the same
 * peer and port, its ISN (RFC 6528, stack/sys.c) has moved on with the clock since. Left to lwIP
 * (tcp_connect() with no port), its search walked all 16,384 ports against every pcb, some 10^8
 * steps, and the connect failed anyway (stack_input_ports_in_time_wait). */
void stack_tcp_bind_port(struct tcp_pcb *pcb, const ip_addr_t *any)
{
    for (int i = 0; i < STACK_PORT_TRIES; i++) {
        if (tcp_bind(pcb, any, stack_random_port()) == ERR_OK)
            return;
    }
    struct tcp_pcb *oldest = NULL;
    for (struct tcp_pcb *tw = tcp_tw_pcbs; tw; tw = tw->next) {
        if (tw->local_port >= STACK_PORT_FIRST &&
            (!oldest || (u32_t)(tcp_ticks - tw->tmr) >= (u32_t)(tcp_ticks - oldest->tmr)))
            oldest = tw;
    }
    if (oldest) {
        u16_t port = oldest->local_port;
        tcp_abort(oldest); /* in TIME_WAIT: freed without a reset or a callback */
        /* Fails only when a listener's connections share the port: then lwIP picks. */
        tcp_bind(pcb, any, port);
    }
}

/* Whether a TCP peer can have the address ip: besides what is no host at all
 * (stack_addr_no_host()), multicast and the limited broadcast are no TCP peer (RFC 1122
 * 4.2.3.10). lwIP would send the SYNs into the tunnel all the same, and the caller learnt
 * nothing until its connect timeout. */
static int stack_tcp_peer_possible(const ip_addr_t *ip)
{
    if (stack_addr_no_host(ip))
        return 0;
    if (IP_IS_V6(ip))
        return !ip6_addr_ismulticast(ip_2_ip6(ip));
    const ip4_addr_t *a = ip_2_ip4(ip);
    return !ip4_addr_ismulticast(a) && lwip_ntohl(ip4_addr_get_u32(a)) != 0xFFFFFFFFUL;
}

int stack_tcp_connect(struct stack *s, const struct v2s_addr *dst, uint16_t port, unsigned timeout_ms,
                      stack_tcp_connect_cb cb, void *arg, struct stack_tcp **out)
{
    if (!s->up || s->closing)
        return UV_ENETDOWN;
    if (!stack_has_family(s, dst->family))
        return UV_ENETUNREACH;
    ip_addr_t ip;
    stack_addr_to_lwip(dst, &ip);
    if (!stack_tcp_peer_possible(&ip))
        return UV_ENETUNREACH; /* as for 127.0.0.1, and as Linux answers for multicast */
    struct stack_tcp *c = calloc(1, sizeof(*c));
    if (!c)
        return UV_ENOMEM;
    struct tcp_pcb *pcb = tcp_new_ip_type(IP_GET_TYPE(&ip));
    if (!pcb) {
        free(c);
        return UV_ENOMEM;
    }
    c->s = s;
    v2s_list_init(&c->node);
    v2s_list_init(&c->flush_node);
    v2s_list_init(&c->fin_node);
    v2s_list_init(&c->ride_node);
    v2s_list_init(&c->refill_node);
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
    c->syn_sent_us = stack_now_us();
    c->syn_tries = 1;
    /* A tunnel that is between sessions (the OpenVPN client reconnecting) refuses packets while
     * the stack is still up, to keep connections across a quick reconnect; a new connection then
     * fails at once, as "no route", rather than wait out its connect timeout. lwIP itself
     * ignores the SYN's send error. */
    s->send_failed = 0;
    stack_tcp_bind_port(pcb, IP_IS_V6(&ip) ? IP6_ADDR_ANY : IP4_ADDR_ANY);
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
    stack_tcp_free_rxq(c); /* what an accepted connection's peer sent before its bridge */
    stack_tcp_unlink(c);
    free(c->rxq);
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

void stack_tcp_remote(const struct stack_tcp *c, struct v2s_addr *addr, uint16_t *port)
{
    *addr = c->dst;
    *port = c->dport;
}

/* A connection a listener's handshake has just completed (tcp_listen.c calls this from lwIP's
 * accept callback, before lwIP hands over any data the handshake's ACK carried): set up as a
 * connection of ours is once its SYN-ACK arrived, so the bridge, budgets and fair shares, paced
 * closes, keepalives and loss recovery (recovery.c works on every pcb) apply alike, and the
 * short path's window rule too (rtt_us: the SYN-ACK's round trip, as tcp_listen.c timed it).
 * Two differences. The retransmission timeout starts from lwIP's own sample of the SYN-ACK, in
 * its ticks (what ours from the SYN is rounded to as well), and the first flight is lwIP's to
 * resend: the peer has completed the handshake itself, so nothing suggests it may not have
 * taken the connection. And the window: lwIP set the whole window (4 MiB) as announced when
 * window scaling was agreed in the SYN, though the SYN-ACK's window field, never scaled,
 * offered at most 64 KiB; left so, lwIP would announce the rest with its next ACK whatever the
 * budget, so the announced edge is put back where the SYN-ACK put it. */
struct stack_tcp *stack_tcp_adopt(struct stack *s, struct tcp_pcb *pcb, uint32_t rtt_us)
{
    struct stack_tcp *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->s = s;
    v2s_list_init(&c->node);
    v2s_list_init(&c->flush_node);
    v2s_list_init(&c->fin_node);
    v2s_list_init(&c->ride_node);
    v2s_list_init(&c->refill_node);
    c->pcb = pcb;
    stack_addr_from_lwip(&pcb->remote_ip, &c->dst);
    c->dport = pcb->remote_port;
    c->sport = pcb->local_port;
    c->state = STACK_TCP_CONNECTED;
    c->rtt_us = rtt_us;
    tcp_arg(pcb, c);
    tcp_err(pcb, stack_tcp_on_error);
    tcp_recv(pcb, stack_tcp_on_recv);
    tcp_sent(pcb, stack_tcp_on_sent);
    tcp_nagle_disable(pcb);
    stack_tcp_rto_seed(pcb, pcb->rttest && pcb->nrtx == 0 ? (int32_t)(tcp_ticks - pcb->rttest) : -1);
    uint32_t offered = pcb->rcv_nxt + (pcb->rcv_ann_wnd < 0xFFFF ? pcb->rcv_ann_wnd : 0xFFFF);
    if (TCP_SEQ_GT(pcb->rcv_ann_right_edge, offered))
        pcb->rcv_ann_right_edge = offered;
    stack_tcp_budget_start(c, pcb);
    stack_tcp_keepalive_start(pcb);
    stack_tcp_link(c);
    return c;
}

int stack_tcp_icmp_error(struct stack *s, const struct v2s_addr *src, const struct v2s_addr *dst,
                         uint16_t sport, uint16_t dport, uint32_t seq, int status)
{
    struct v2s_list *n;
    V2S_LIST_FOREACH(n, &s->conns) {
        struct stack_tcp *c = V2S_LIST_ENTRY(n, struct stack_tcp, node);
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
        /* Reset (or the tunnel lost) between connect or accept and here. */
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
    /* What the peer sent before the bridge goes first; its FIN, if it came, after it. */
    stack_tcp_deliver_held(c);
    if (c->remote_fin)
        stack_tcp_maybe_shutdown_app(c);
}

/* The tunnel is gone for good (the stack closes) or came back with another address: every
 * connection using it ends. A bridged one without a pcb is done with the tunnel (both FINs
 * through, tcp_close.c let go of the pcb) and only hands its last bytes and the end of the stream
 * to a slow application, so it finishes as it would have, unless the stack itself is closing.
 * Reset, it dropped those bytes, and the application saw a reset for a transfer that had
 * completed (stack_bridge_readdress_after_close). */
void stack_tcp_abort_all(struct stack *s, int family)
{
    struct v2s_list *n, *next;
    V2S_LIST_FOREACH_SAFE(n, next, &s->conns) {
        struct stack_tcp *c = V2S_LIST_ENTRY(n, struct stack_tcp, node);
        if (family && c->dst.family != family)
            continue;
        if (c->state == STACK_TCP_CONNECTING)
            stack_tcp_fail(c, UV_ENETDOWN);
        else if (c->state == STACK_TCP_BRIDGED && (c->pcb || s->closing))
            stack_tcp_end(c, 1);
        else if (c->state == STACK_TCP_CONNECTED)
            stack_tcp_release_pcb(c, 1);
    }
}

void stack_tcp_tunnel_back(struct stack *s)
{
    struct v2s_list *n;
    /* Only sends, which call nothing back: the walk is safe. */
    V2S_LIST_FOREACH(n, &s->conns) {
        struct stack_tcp *c = V2S_LIST_ENTRY(n, struct stack_tcp, node);
        if (c->state != STACK_TCP_CONNECTING || !c->pcb || c->pcb->state != SYN_SENT)
            continue;
        sys_untimeout(stack_tcp_syn_timer, c);
        stack_tcp_syn_timer(c); /* the SYN now, the next one after the usual backoff */
    }
}

void stack_tcp_resume_all(struct stack *s)
{
    struct v2s_list *n;
    V2S_LIST_FOREACH(n, &s->conns)
        stack_tcp_read_start(V2S_LIST_ENTRY(n, struct stack_tcp, node));
}
