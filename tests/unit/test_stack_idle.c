/* Idle connections and lwIP's TCP timers (stack/timers.c): while no connection has anything on
 * them, the 25 ms tick that walks every connection stops, and it runs again as soon as data moves;
 * a retransmission, a keepalive and the end of TIME_WAIT still come when they are due after an
 * idle spell. The real stack and lwIP behind the fake tunnel of harness_tun.h, on its virtual
 * clock; the test plays the servers' TCP by hand (a handshake with MSS only), and a loopback pair
 * is each connection's application. lwIP's timers stamp every pcb they pass with the number of
 * their round (pcb->last_timer), which is how the test sees a walk. */
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <uv.h>

#include "base/bytes.h"
#include "harness_tun.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "stack/lwip_pin.h"
#include "stack/stack.h"
#include "stack/tcp.h"
#include "test.h"
#include "tunnel/settings.h"

enum {
    IDLE_CONNS = 8,
    IDLE_PEER_ISN = 3000000,
    IDLE_SEG = 100,
    IDLE_PORT = 80,
    IDLE_MARKS = 64,
    /* lwIP's limits as the stack sets them (stack/tcp.c, lwIP's TCP_MSL): a keepalive after 120 s
     * without a segment from the peer; TIME_WAIT for 2 * 60 s. */
    IDLE_KEEPALIVE_MS = 120 * 1000,
    IDLE_TIME_WAIT_MS = 120 * 1000,
    /* How late stack/timers.c may be: deadlines rounded up to a second, plus one 50 ms tick. */
    IDLE_SLACK_MS = 1000 + 2 * TCP_SLOW_INTERVAL,
};

struct idle_conn {
    struct harness_tun_app app;
    struct stack_tcp *c;
    uint16_t sport;          /* the stack's port */
    uint32_t snd_max;        /* past the highest sequence number the stack sent */
    uint32_t peer_seq;       /* the peer's next sequence number */
    uint32_t acked;          /* the highest acknowledgement number the stack sent */
    uint32_t last_in;        /* when the peer last sent a segment */
    uint32_t sent_at;        /* when new data or a FIN last left */
    uint32_t resent_at;      /* when the first resend since sent_at left */
    int resends, keepalives, fins; /* resends of what was sent last; FINs sent, not resent */
    uint32_t keepalive_at;   /* when the last keepalive left */
    uv_write_t write_req;
    uv_shutdown_t shutdown_req;
};

struct idle {
    struct harness_tun tun;
    struct v2s_addr us, peer;
    struct idle_conn conns[IDLE_CONNS];
    size_t n_conns;
    uint16_t syn_sport;      /* the last SYN */
    uint32_t syn_seq;
    /* Every pcb's last_timer at the last look. */
    const struct tcp_pcb *marked[IDLE_MARKS];
    u8_t mark[IDLE_MARKS];
    size_t n_marks;
    int wakeups; /* times timeouts were due in the last idle_advance() */
};

static struct idle_conn *idle_conn_of(struct idle *d, uint16_t sport)
{
    for (size_t i = 0; i < d->n_conns; i++)
        if (d->conns[i].sport == sport)
            return &d->conns[i];
    return NULL;
}

static void idle_send(struct harness_tun *t, const uint8_t *pkt, size_t len)
{
    struct idle *d = t->arg;
    if (len < 40 || pkt[0] != 0x45 || pkt[9] != 6)
        return;
    const uint8_t *tcp = pkt + 20;
    size_t doff = (size_t)(tcp[12] >> 4) * 4;
    uint32_t payload = (uint32_t)(len - 20 - doff);
    uint8_t flags = tcp[13];
    uint32_t seq = v2s_get_be32(tcp + 4), ack = v2s_get_be32(tcp + 8);
    if (flags == 0x02) {
        d->syn_sport = v2s_get_be16(tcp);
        d->syn_seq = seq;
        return;
    }
    struct idle_conn *k = idle_conn_of(d, v2s_get_be16(tcp));
    if (!k)
        return;
    if ((flags & 0x10) && ack - k->acked < 0x80000000u)
        k->acked = ack;
    uint32_t seg_len = payload + (flags & 0x01 ? 1 : 0);
    if (seg_len > 0) {
        if (seq - k->snd_max >= 0x80000000u) {
            if (k->resends++ == 0)
                k->resent_at = t->now_ms;
        } else {
            k->snd_max = seq + seg_len;
            k->sent_at = t->now_ms;
            k->resends = 0;
            k->fins += flags & 0x01;
        }
    } else if (flags == 0x10 && seq == k->snd_max - 1) {
        /* lwIP's keepalive: a pure ACK one below the next sequence number */
        k->keepalives++;
        k->keepalive_at = t->now_ms;
    }
}

/* The peer sends one segment on k (n bytes of data), acknowledging all the stack sent. */
static void idle_segment(struct idle *d, struct idle_conn *k, uint8_t flags, size_t n)
{
    static const uint8_t mss[4] = {2, 4, 0x05, 0x78};
    uint8_t pkt[1500], data[IDLE_SEG];
    memset(data, 'i', sizeof(data));
    int syn = (flags & 0x02) != 0;
    size_t len = harness_tun_tcp4(pkt, sizeof(pkt), &d->peer, IDLE_PORT, &d->us, k->sport, flags,
                                  syn ? IDLE_PEER_ISN : k->peer_seq, k->snd_max, 65535, syn ? mss : NULL,
                                  syn ? sizeof(mss) : 0, data, n);
    ASSERT(len > 0);
    k->peer_seq = (syn ? IDLE_PEER_ISN : k->peer_seq) + (uint32_t)n + (flags & 0x03 ? 1 : 0);
    k->last_in = d->tun.now_ms;
    harness_tun_inject(&d->tun, pkt, len);
}

/* Opens one more connection through the stack and completes its handshake. */
static struct idle_conn *idle_open(struct idle *d)
{
    ASSERT(d->n_conns < IDLE_CONNS);
    struct idle_conn *k = &d->conns[d->n_conns];
    ASSERT_EQ(harness_tun_app_open(&d->tun, &k->app), 0);
    d->syn_sport = 0;
    ASSERT_EQ(harness_tun_app_connect(&k->app, &d->peer, IDLE_PORT, &k->c), 0);
    harness_tun_settle(&d->tun);
    ASSERT(d->syn_sport != 0);
    k->sport = d->syn_sport;
    k->snd_max = d->syn_seq + 1;
    d->n_conns++;
    idle_segment(d, k, 0x12, 0);
    harness_tun_settle(&d->tun);
    ASSERT_EQ(k->app.status, 0);
    ASSERT_EQ(k->acked, IDLE_PEER_ISN + 1);
    return k;
}

/* 1 when lwIP's TCP timers passed any connection since the last look. */
static int idle_walked(struct idle *d)
{
    const struct tcp_pcb *marked[IDLE_MARKS];
    u8_t mark[IDLE_MARKS];
    size_t n = 0;
    int walked = 0;
    for (const struct tcp_pcb *pcb = tcp_active_pcbs; pcb && n < IDLE_MARKS; pcb = pcb->next, n++) {
        for (size_t i = 0; i < d->n_marks; i++)
            if (d->marked[i] == pcb && d->mark[i] != pcb->last_timer)
                walked = 1;
        marked[n] = pcb;
        mark[n] = pcb->last_timer;
    }
    memcpy(d->marked, marked, n * sizeof(marked[0]));
    memcpy(d->mark, mark, n);
    d->n_marks = n;
    return walked;
}

/* Moves the clock on by ms as harness_tun_advance() does, one timeout at a time, and returns at how
 * many of those times lwIP's TCP timers walked the connections (d->wakeups: at how many times
 * anything was due, which is when the loop would wake). */
static int idle_advance(struct idle *d, uint32_t ms)
{
    struct harness_tun *t = &d->tun;
    uint32_t end = t->now_ms + ms;
    int walks = 0;
    idle_walked(d);
    d->wakeups = 0;
    for (;;) {
        uint32_t sleep = sys_timeouts_sleeptime();
        if (sleep == SYS_TIMEOUTS_SLEEPTIME_INFINITE || sleep > end - t->now_ms) {
            t->now_ms = end;
        } else {
            t->now_ms += sleep;
            d->wakeups++;
        }
        sys_check_timeouts();
        harness_tun_settle(t);
        walks += idle_walked(d);
        if (t->now_ms == end)
            return walks;
    }
}

/* Moves the clock on to at (a time still ahead). */
static void idle_advance_to(struct idle *d, uint32_t at)
{
    ASSERT(at - d->tun.now_ms < 0x80000000u);
    idle_advance(d, at - d->tun.now_ms);
}

static void idle_written(uv_write_t *req, int status)
{
    (void)req;
    ASSERT_EQ(status, 0);
}

/* The application of k writes n bytes, which the stack sends at once. */
static void idle_app_write(struct idle *d, struct idle_conn *k, size_t n)
{
    static char data[IDLE_SEG];
    memset(data, 'a', sizeof(data));
    ASSERT(n <= sizeof(data));
    uv_buf_t buf = uv_buf_init(data, (unsigned)n);
    uint32_t before = k->snd_max;
    ASSERT_EQ(uv_write(&k->write_req, (uv_stream_t *)&k->app.client, &buf, 1, idle_written), 0);
    harness_tun_settle(&d->tun);
    ASSERT_EQ(k->snd_max - before, n);
}

static void idle_up(struct idle *d, uint64_t seed)
{
    memset(d, 0, sizeof(*d));
    const struct harness_tun_config cfg = {.addr4 = "10.8.0.2", .seed = seed};
    ASSERT_EQ(harness_tun_up(&d->tun, &cfg, idle_send, d), 0);
    ASSERT_EQ(v2s_addr_parse(&d->us, "10.8.0.2"), 0);
    ASSERT_EQ(v2s_addr_parse(&d->peer, "10.9.0.1"), 0);
}

static void idle_down(struct idle *d)
{
    for (size_t i = 0; i < d->n_conns; i++)
        harness_tun_app_close(&d->conns[i].app);
    ASSERT_EQ(harness_tun_down(&d->tun), 0);
    for (size_t i = 0; i < d->n_conns; i++)
        harness_tun_app_free(&d->conns[i].app);
}

static int idle_time_wait_pcbs(uint16_t port)
{
    int n = 0;
    for (const struct tcp_pcb *pcb = tcp_tw_pcbs; pcb; pcb = pcb->next)
        n += pcb->local_port == port;
    return n;
}

TEST_IMPL(stack_idle_tick_stops)
{
    static struct idle d;
    idle_up(&d, 11);
    for (int i = 0; i < IDLE_CONNS; i++)
        idle_open(&d);
    /* The handshakes' timers run out (tcp.c's first flight: a few hundred ms). */
    idle_advance(&d, 2000);

    /* Forty seconds of idle connections: lwIP's timers never walk them (on a tick that ran while
     * connections existed, they did 1,600 times), and the loop wakes only for lwIP's IP
     * reassembly and neighbour timers, once a second (tcp_send.c's look for zero-window probes
     * also stops: every 50 ms, it walked them too). */
    ASSERT_EQ(idle_advance(&d, 40000), 0);
    ASSERT(d.wakeups <= 40 + 2);
    ASSERT(sys_timeouts_sleeptime() > TCP_TMR_INTERVAL);

    /* Data from a peer: the tick runs again at once (its ACK may be a delayed one), then stops
     * once that is sent. */
    struct idle_conn *k = &d.conns[3];
    idle_segment(&d, k, 0x18, IDLE_SEG);
    ASSERT(sys_timeouts_sleeptime() <= TCP_TMR_INTERVAL);
    ASSERT(idle_advance(&d, TCP_TMR_INTERVAL) >= 1);
    idle_advance(&d, 1000);
    ASSERT_EQ(k->acked, k->peer_seq);
    ASSERT_EQ(idle_advance(&d, 30000), 0);

    /* Data from an application: every 25 ms while it is unacknowledged, not once it is. */
    k = &d.conns[5];
    idle_app_write(&d, k, IDLE_SEG);
    ASSERT(sys_timeouts_sleeptime() <= TCP_TMR_INTERVAL);
    ASSERT(idle_advance(&d, 100) >= 3);
    idle_segment(&d, k, 0x10, 0);
    idle_advance(&d, 1000);
    ASSERT_EQ(k->resends, 0);
    ASSERT_EQ(idle_advance(&d, 30000), 0);

    idle_down(&d);
    return 0;
}

TEST_IMPL(stack_idle_timers_on_time)
{
    static struct idle d;
    idle_up(&d, 12);
    struct idle_conn *rexmit = idle_open(&d), *kept = idle_open(&d), *quiet = idle_open(&d),
                     *closed = idle_open(&d), *busy = idle_open(&d);
    idle_advance(&d, 2000);

    /* One connection busy for a second (its data unacknowledged, resent), the others idle, their
     * retransmission timers left running by tcp.c's first flight; then everything idle. */
    idle_app_write(&d, busy, IDLE_SEG);
    idle_advance(&d, 1000);
    ASSERT(busy->resends >= 1);
    idle_segment(&d, busy, 0x10, 0);
    idle_advance(&d, 27000);

    /* A retransmission after the idle spell: after the retransmission timeout (from the handshake:
     * 200 ms to 350 ms), not at the next tick as if the timer had counted through the idle spell
     * or the busy second, and not never. */
    idle_app_write(&d, rexmit, IDLE_SEG);
    idle_advance(&d, 2000);
    ASSERT(rexmit->resends >= 1);
    ASSERT(rexmit->resent_at - rexmit->sent_at >= 200 - TCP_SLOW_INTERVAL);
    ASSERT(rexmit->resent_at - rexmit->sent_at <= 350 + 2 * TCP_SLOW_INTERVAL);
    idle_segment(&d, rexmit, 0x10, 0);
    idle_advance(&d, 30000);

    /* A segment in after an idle minute: the next keepalive is due 120 s after it, not after the
     * handshake (the clock the pcb was stamped with was brought up to date first). */
    idle_segment(&d, kept, 0x18, IDLE_SEG);
    uint32_t kept_in = kept->last_in;
    idle_advance(&d, 5000);

    /* The end of TIME_WAIT after an idle spell: the application closes, the peer acknowledges the
     * FIN and sends its own, the stack acknowledges that and waits 120 s. */
    ASSERT_EQ(uv_shutdown(&closed->shutdown_req, (uv_stream_t *)&closed->app.client, NULL), 0);
    idle_advance(&d, 1000);
    ASSERT_EQ(closed->fins, 1);
    idle_segment(&d, closed, 0x11, 0);
    ASSERT_EQ(closed->acked, closed->peer_seq);
    ASSERT_EQ(idle_time_wait_pcbs(closed->sport), 1);
    uint32_t closed_at = closed->last_in;

    /* The quiet connection's keepalive: 120 s after its handshake; the peer answers it. */
    ASSERT_EQ(quiet->keepalives, 0);
    idle_advance_to(&d, quiet->last_in + IDLE_KEEPALIVE_MS - 100);
    ASSERT_EQ(quiet->keepalives, 0);
    idle_advance(&d, 100 + IDLE_SLACK_MS);
    ASSERT_EQ(quiet->keepalives, 1);
    idle_segment(&d, quiet, 0x10, 0);

    idle_advance_to(&d, kept_in + IDLE_KEEPALIVE_MS - 100);
    ASSERT_EQ(kept->keepalives, 0);
    idle_advance(&d, 100 + IDLE_SLACK_MS);
    ASSERT_EQ(kept->keepalives, 1);

    idle_advance_to(&d, closed_at + IDLE_TIME_WAIT_MS - 100);
    ASSERT_EQ(idle_time_wait_pcbs(closed->sport), 1);
    idle_advance(&d, 100 + IDLE_SLACK_MS);
    ASSERT_EQ(idle_time_wait_pcbs(closed->sport), 0);

    /* The quiet connection's peer answered: its next keepalive is 120 s after that answer. */
    ASSERT_EQ(quiet->keepalives, 1);

    idle_down(&d);
    return 0;
}

TEST_IMPL(stack_idle_first_send_after_flight)
{
    static struct idle d;
    idle_up(&d, 13);
    /* busy's data is never acknowledged, so the tick runs all along; quiet's first flight (tcp.c)
     * ends meanwhile with nothing in flight. */
    struct idle_conn *quiet = idle_open(&d), *busy = idle_open(&d);
    idle_app_write(&d, busy, IDLE_SEG);
    idle_advance(&d, 2000);
    ASSERT(busy->resends >= 1);

    /* quiet's first data after that: resent after its retransmission timeout (200 ms to 350 ms
     * from the handshake), not at the next tick as if its timer had counted the 2 s with nothing
     * to resend. */
    idle_app_write(&d, quiet, IDLE_SEG);
    idle_advance(&d, 1000);
    ASSERT(quiet->resends >= 1);
    ASSERT(quiet->resent_at - quiet->sent_at >= 200 - TCP_SLOW_INTERVAL);

    idle_down(&d);
    return 0;
}

/* The SYNs of a connection still opening, counted. */
struct idle_syns {
    struct harness_tun tun;
    int syns;
};

static void idle_count_syn(struct harness_tun *t, const uint8_t *pkt, size_t len)
{
    struct idle_syns *d = t->arg;
    if (len >= 40 && pkt[0] == 0x45 && pkt[9] == 6 && pkt[20 + 13] == 0x02)
        d->syns++;
}

/* A connect while the server is gone (its SYNs lost), then the tunnel back after a reconnect with
 * the same address: the SYN goes again at once, not at its next retransmission (1 s doubled per
 * SYN), which the lab saw come 6 s after the tunnel was back for a -L connection made during
 * the outage. */
TEST_IMPL(stack_idle_syn_after_reconnect)
{
    static struct idle_syns d;
    static struct harness_tun_app app;
    memset(&d, 0, sizeof(d));
    const struct harness_tun_config cfg = {.addr4 = "10.8.0.2", .seed = 17};
    ASSERT_EQ(harness_tun_up(&d.tun, &cfg, idle_count_syn, &d), 0);
    struct v2s_addr peer;
    ASSERT_EQ(v2s_addr_parse(&peer, "10.9.0.1"), 0);
    ASSERT_EQ(harness_tun_app_open(&d.tun, &app), 0);
    struct stack_tcp *c;
    ASSERT_EQ(harness_tun_app_connect(&app, &peer, IDLE_PORT, &c), 0);
    harness_tun_settle(&d.tun);
    ASSERT_EQ(d.syns, 1);
    harness_tun_advance(&d.tun, 1600); /* the second SYN within 1.25 s, the third not before 3 s */
    ASSERT_EQ(d.syns, 2);

    struct harness_tun_config again = {.addr4 = "10.8.0.2"};
    ASSERT_EQ(harness_tun_again(&d.tun, &again), 0);
    ASSERT_EQ(d.syns, 3);
    ASSERT_EQ(app.status, 1); /* still opening */

    stack_tcp_cancel(c);
    uv_close((uv_handle_t *)app.accepted, NULL); /* never bridged */
    harness_tun_app_close(&app);
    ASSERT_EQ(harness_tun_down(&d.tun), 0);
    harness_tun_app_free(&app);
    return 0;
}
