/* The scripted peer's TCP. Each transfer of the script has one connection, found by the peer's
 * port; it lives from the stack's SYN to the end of the run (never forgotten, so a late
 * retransmission is still answered). The peer's timers (its retransmission, its zero-window
 * probes, SYN-ACK repeats, its reader's pause, its server's accept() calls) run only when the
 * harness calls harness_peer_run_timers(), in virtual time. */
#include "harness_peer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness_rand.h"

enum {
    HP_FIN = 0x01,
    HP_SYN = 0x02,
    HP_RST = 0x04,
    HP_PSH = 0x08,
    HP_ACK = 0x10,
};

enum {
    HP_OPT_EOL = 0,
    HP_OPT_NOP = 1,
    HP_OPT_MSS = 2,
    HP_OPT_WS = 3,
    HP_OPT_SACK_PERM = 4,
    HP_OPT_SACK = 5,
    HP_OPT_TS = 8,
};

/* Timer limits, as in Linux: RTO between 200 ms and 60 s (Linux: 120 s), first RTO and first
 * SYN-ACK repeat after 1 s, five SYN-ACK repeats at most, zero-window probes backing off from
 * 200 ms to 30 s. */
enum {
    HP_RTO_MIN = 200,
    HP_RTO_INIT = 1000,
    HP_RTO_MAX = 60000,
    HP_SYNACK_RETRIES = 5,
    HP_PERSIST_MIN = 200,
    HP_PERSIST_MAX = 30000,
    HP_CWND_MAX = 1024 * 1024,
    HP_PKT_MAX = 1600,
};

enum harness_peer_state {
    HP_LISTEN,   /* no SYN yet */
    HP_SYN_RCVD, /* SYN-ACK sent */
    HP_OPEN,     /* handshake done; FINs are tracked by flags */
    HP_RESET,    /* the peer reset it: everything is answered with RST */
    HP_ABORTED,  /* the stack reset it */
};

static const char *const harness_peer_state_names[] = {"LISTEN", "SYN_RCVD", "OPEN", "RESET (by peer)",
                                                       "ABORTED (by stack)"};

/* Out-of-order data, kept in sequence order. */
struct harness_peer_seg {
    struct harness_peer_seg *next;
    uint32_t seq, len;
    uint8_t data[];
};

struct harness_peer_conn {
    const struct harness_transfer *x;
    struct harness_rand rand;
    enum harness_peer_state state;
    uint16_t sport;       /* the stack's port */
    uint32_t client_addr; /* the stack's address, host order */
    uint16_t snd_mss;     /* most payload per segment, before options */
    int wscale_ok;        /* both SYNs carried the window scale option */
    int snd_ws, rcv_ws;   /* window scale shifts: the stack's windows, ours */
    int sack, ts;
    uint32_t ts_recent;

    /* Sending: offsets in the stream are seq - (iss + 1). */
    uint32_t iss, snd_una, snd_nxt, snd_max, snd_wnd, wl1, wl2;
    uint64_t stream_len; /* bytes the peer has to send so far */
    int fin_queued, fin_sent, fin_acked;
    uint8_t *echo; /* echo: the whole stream, as received */
    uint32_t cwnd, ssthresh;
    unsigned dupacks;
    uint32_t srtt, rttvar, rto;
    int rtt_valid, rtt_timing;
    uint32_t rtt_seq, rtt_start;
    int rto_armed;
    uint32_t rto_due;
    unsigned backoff;
    int persist_armed;
    uint32_t persist_due, persist_ivl;
    int synack_armed;
    uint32_t synack_due, synack_ms; /* synack_ms: when the last SYN-ACK left */
    unsigned synack_sent;

    /* Receiving. */
    uint32_t irs, rcv_nxt, rcv_adv; /* rcv_adv: the right edge announced, never moved left */
    uint32_t rcv_wup;               /* rcv_nxt when the window was last announced (Linux's name) */
    uint32_t rcv_buf;               /* the buffer the window is computed from */
    uint32_t snd_buf;               /* echo: see harness_peer_config */
    uint8_t *rbuf;                  /* in order, not yet taken by the peer's reader */
    uint32_t rlen, rcap;            /* rcap may exceed rcv_buf: see harness_peer_append() */
    uint64_t received, consumed;
    struct harness_peer_seg *ooo;
    uint32_t ooo_last; /* start of the latest out-of-order segment: the first SACK block */
    int ooo_fin;
    uint32_t ooo_fin_seq;
    int fin_received;
    uint64_t after_fin; /* bytes the stack sent past its own FIN */
    long mismatch;
    int paused, pause_done;
    uint32_t resume_at;
    int ack_now;

    /* The accept queue. */
    unsigned drops_left;
    int accepted, queued;
    uint64_t ticket;

    unsigned handshake_drops, retransmits, timeouts, probes, syn_drops, out_of_window;
    int reset_sent, reset_received;
};

struct harness_peer {
    struct harness_peer_config cfg;
    struct harness_peer_conn *conns;
    size_t n;
    uint16_t ip_id;
    unsigned n_queued;
    uint64_t next_ticket;
    int accept_armed;
    uint32_t accept_due;
    uint64_t bad_packets;
};

/* A segment from the stack, parsed. */
struct harness_peer_in {
    uint32_t src;
    uint16_t sport, dport;
    uint32_t seq, ack;
    uint8_t flags;
    uint16_t wnd;
    const uint8_t *data;
    uint32_t len;
    int mss, ws, sack_perm, has_ts;
    uint32_t tsval;
};

/* --- sequence numbers wrap --- */

static int harness_seq_lt(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) < 0;
}

static int harness_seq_leq(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) <= 0;
}

/* --- packets --- */

static void harness_put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void harness_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint16_t harness_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t harness_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The Internet checksum's running sum (RFC 1071), folded by harness_csum_finish(). */
static uint32_t harness_csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
    for (; len > 1; p += 2, len -= 2)
        sum += (uint32_t)(p[0] << 8 | p[1]);
    if (len)
        sum += (uint32_t)p[0] << 8;
    return sum;
}

static uint16_t harness_csum_finish(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xFFFF) + (sum >> 16);
    return (uint16_t)~sum;
}

static uint32_t harness_tcp_pseudo(const uint8_t *ip, size_t tcp_len)
{
    uint32_t sum = harness_csum_add(0, ip + 12, 8);
    return sum + 6 + (uint32_t)tcp_len;
}

/* Builds and sends one segment from the peer's port sport to the stack's dst:dport. */
static void harness_peer_build(struct harness_peer *p, uint16_t sport, uint32_t dst, uint16_t dport,
                               uint32_t seq, uint32_t ack, uint8_t flags, uint16_t wnd,
                               const uint8_t *opts, size_t optlen, const uint8_t *data, size_t len)
{
    uint8_t pkt[HP_PKT_MAX];
    size_t tcp_len = 20 + optlen + len, total = 20 + tcp_len;
    if (optlen % 4 != 0 || optlen > 40 || total > sizeof(pkt))
        abort(); /* a peer bug: never send what does not fit the tunnel's MTU */
    memset(pkt, 0, 40);
    pkt[0] = 0x45;
    harness_put16(pkt + 2, (uint32_t)total);
    harness_put16(pkt + 4, p->ip_id++);
    pkt[6] = 0x40; /* don't fragment */
    pkt[8] = 64;
    pkt[9] = 6;
    harness_put32(pkt + 12, p->cfg.addr);
    harness_put32(pkt + 16, dst);
    harness_put16(pkt + 10, harness_csum_finish(harness_csum_add(0, pkt, 20)));
    uint8_t *t = pkt + 20;
    harness_put16(t, sport);
    harness_put16(t + 2, dport);
    harness_put32(t + 4, seq);
    harness_put32(t + 8, ack);
    t[12] = (uint8_t)((20 + optlen) / 4 << 4);
    t[13] = flags;
    harness_put16(t + 14, wnd);
    if (optlen)
        memcpy(t + 20, opts, optlen);
    if (len)
        memcpy(t + 20 + optlen, data, len);
    uint32_t sum = harness_tcp_pseudo(pkt, tcp_len);
    harness_put16(t + 16, harness_csum_finish(harness_csum_add(sum, t, tcp_len)));
    p->cfg.send(p->cfg.arg, pkt, total);
}

/* The answer to a segment for a connection the peer does not have (RFC 793, "reset generation"). */
static void harness_peer_reply_rst(struct harness_peer *p, const struct harness_peer_in *in)
{
    if (in->flags & HP_RST)
        return;
    if (in->flags & HP_ACK) {
        harness_peer_build(p, in->dport, in->src, in->sport, in->ack, 0, HP_RST, 0, NULL, 0, NULL, 0);
    } else {
        uint32_t ack = in->seq + in->len + ((in->flags & HP_SYN) ? 1 : 0) + ((in->flags & HP_FIN) ? 1 : 0);
        harness_peer_build(p, in->dport, in->src, in->sport, 0, ack, HP_RST | HP_ACK, 0, NULL, 0, NULL, 0);
    }
}

/* --- the receive window --- */

/* The window field to announce now. The right edge never moves left; it moves right only by a
 * full segment or more (a receiver's silly window avoidance), and rounding to the scale goes up,
 * so that what was announced stays announced. */
static uint16_t harness_peer_window(struct harness_peer_conn *c)
{
    uint32_t rcv_buf = c->rcv_buf;
    uint32_t space = c->rlen < rcv_buf ? rcv_buf - c->rlen : 0;
    uint32_t max_wnd = 0xFFFFU << c->rcv_ws;
    if (space > max_wnd)
        space = max_wnd;
    uint32_t right = c->rcv_nxt + space;
    uint32_t wnd = harness_seq_lt(c->rcv_nxt, c->rcv_adv) ? c->rcv_adv - c->rcv_nxt : 0;
    if (harness_seq_lt(c->rcv_adv, right) && (right - c->rcv_adv >= c->snd_mss || space >= rcv_buf / 2))
        wnd = space;
    uint32_t field = (wnd + (1U << c->rcv_ws) - 1) >> c->rcv_ws;
    if (field > 0xFFFF)
        field = 0xFFFF;
    uint32_t edge = c->rcv_nxt + (field << c->rcv_ws);
    if (harness_seq_lt(c->rcv_adv, edge))
        c->rcv_adv = edge;
    c->rcv_wup = c->rcv_nxt;
    return (uint16_t)field;
}

/* --- options --- */

/* The options of a segment other than SYN-ACK: timestamps, and SACK blocks while data is
 * missing (the block holding the latest out-of-order segment first, RFC 2018). */
static size_t harness_peer_options(const struct harness_peer_conn *c, uint32_t now, int with_sack, uint8_t *o)
{
    size_t n = 0;
    if (c->ts) {
        o[n++] = HP_OPT_NOP;
        o[n++] = HP_OPT_NOP;
        o[n++] = HP_OPT_TS;
        o[n++] = 10;
        harness_put32(o + n, now);
        harness_put32(o + n + 4, c->ts_recent);
        n += 8;
    }
    if (!with_sack || !c->sack || !c->ooo)
        return n;
    uint32_t left[8], right[8];
    int nb = 0;
    for (const struct harness_peer_seg *s = c->ooo; s; s = s->next) {
        if (nb > 0 && harness_seq_leq(s->seq, right[nb - 1])) {
            if (harness_seq_lt(right[nb - 1], s->seq + s->len))
                right[nb - 1] = s->seq + s->len;
        } else if (nb < 8) {
            left[nb] = s->seq;
            right[nb] = s->seq + s->len;
            nb++;
        }
    }
    int max = c->ts ? 3 : 4, first = 0;
    for (int i = 0; i < nb; i++)
        if (harness_seq_leq(left[i], c->ooo_last) && harness_seq_lt(c->ooo_last, right[i]))
            first = i;
    int count = nb < max ? nb : max;
    o[n++] = HP_OPT_NOP;
    o[n++] = HP_OPT_NOP;
    o[n++] = HP_OPT_SACK;
    o[n++] = (uint8_t)(2 + 8 * count);
    for (int k = 0, i = first; k < count; k++, i = (i + 1) % nb) {
        harness_put32(o + n, left[i]);
        harness_put32(o + n + 4, right[i]);
        n += 8;
    }
    return n;
}

static void harness_peer_send_synack(struct harness_peer *p, struct harness_peer_conn *c, uint32_t now)
{
    uint8_t o[40];
    size_t n = 0;
    o[n++] = HP_OPT_MSS;
    o[n++] = 4;
    harness_put16(o + n, p->cfg.mss);
    n += 2;
    if (c->sack && c->ts) {
        o[n++] = HP_OPT_SACK_PERM;
        o[n++] = 2;
    } else if (c->sack) {
        o[n++] = HP_OPT_NOP;
        o[n++] = HP_OPT_NOP;
        o[n++] = HP_OPT_SACK_PERM;
        o[n++] = 2;
    } else if (c->ts) {
        o[n++] = HP_OPT_NOP;
        o[n++] = HP_OPT_NOP;
    }
    if (c->ts) {
        o[n++] = HP_OPT_TS;
        o[n++] = 10;
        harness_put32(o + n, now);
        harness_put32(o + n + 4, c->ts_recent);
        n += 8;
    }
    if (c->wscale_ok) {
        o[n++] = HP_OPT_NOP;
        o[n++] = HP_OPT_WS;
        o[n++] = 3;
        o[n++] = (uint8_t)p->cfg.wscale;
    }
    /* The window of a SYN is never scaled; what it announces may be sent at once. */
    uint32_t wnd = c->rcv_buf;
    if (wnd > 0xFFFF)
        wnd = 0xFFFF;
    if (harness_seq_lt(c->rcv_adv, c->rcv_nxt + wnd))
        c->rcv_adv = c->rcv_nxt + wnd;
    harness_peer_build(p, c->x->port, c->client_addr, c->sport, c->iss, c->rcv_nxt, HP_SYN | HP_ACK,
                       (uint16_t)wnd, o, n, NULL, 0);
    c->synack_sent++;
    c->synack_ms = now;
}

/* --- sending --- */

static void harness_peer_ack(struct harness_peer *p, struct harness_peer_conn *c, uint32_t now)
{
    uint8_t o[40];
    size_t n = harness_peer_options(c, now, 1, o);
    harness_peer_build(p, c->x->port, c->client_addr, c->sport, c->snd_max, c->rcv_nxt, HP_ACK,
                       harness_peer_window(c), o, n, NULL, 0);
    c->ack_now = 0;
}

/* The byte at stream offset off of what the peer sends. */
static void harness_peer_stream(const struct harness_peer_conn *c, uint64_t off, uint8_t *buf, size_t len)
{
    if (c->x->kind == HARNESS_ECHO)
        memcpy(buf, c->echo + off, len);
    else
        harness_pattern_fill(~c->x->key, off, buf, len);
    uint64_t bad = (uint64_t)c->x->corrupt_at - 1;
    if (c->x->corrupt_at && bad >= off && bad < off + len)
        buf[bad - off] ^= 0x5A;
}

static void harness_peer_arm_rto(struct harness_peer_conn *c, uint32_t now)
{
    uint64_t rto = (uint64_t)c->rto << (c->backoff < 10 ? c->backoff : 10);
    c->rto_armed = 1;
    c->rto_due = now + (uint32_t)(rto > HP_RTO_MAX ? HP_RTO_MAX : rto);
}

/* Sends one segment starting at seq: data within len bytes of the stream (and the FIN when it
 * is next); returns the sequence space it used. */
static uint32_t harness_peer_send_at(struct harness_peer *p, struct harness_peer_conn *c, uint32_t now,
                                     uint32_t seq, uint32_t len)
{
    uint8_t o[40], data[HP_PKT_MAX];
    size_t optlen = harness_peer_options(c, now, 1, o);
    uint64_t off = seq - (c->iss + 1);
    uint32_t max = (uint32_t)(c->snd_mss - optlen);
    if (len > max)
        len = max;
    if (off + len > c->stream_len)
        len = off < c->stream_len ? (uint32_t)(c->stream_len - off) : 0;
    uint8_t flags = HP_ACK;
    if (len > 0) {
        harness_peer_stream(c, off, data, len);
        flags |= HP_PSH;
    }
    if (c->fin_queued && off + len == c->stream_len)
        flags |= HP_FIN;
    if (len == 0 && !(flags & HP_FIN))
        return 0;
    harness_peer_build(p, c->x->port, c->client_addr, c->sport, seq, c->rcv_nxt, flags, harness_peer_window(c),
                       o, optlen, data, len);
    c->ack_now = 0;
    if (harness_seq_lt(seq, c->snd_max))
        c->retransmits++;
    if (flags & HP_FIN)
        c->fin_sent = 1;
    uint32_t used = len + ((flags & HP_FIN) ? 1 : 0);
    /* A resend of a full segment from snd_una can carry bytes never sent before (the stream grew
     * since): they are sent now, so the stack may acknowledge them. */
    if (harness_seq_lt(c->snd_max, seq + used))
        c->snd_max = seq + used;
    return used;
}

/* Sends what the window and the congestion window allow. */
static void harness_peer_output(struct harness_peer *p, struct harness_peer_conn *c, uint32_t now)
{
    if (c->state != HP_OPEN || !c->accepted)
        return;
    uint32_t wnd = c->snd_wnd < c->cwnd ? c->snd_wnd : c->cwnd;
    for (;;) {
        uint64_t off = c->snd_nxt - (c->iss + 1);
        int fin_next = c->fin_queued && off == c->stream_len;
        if (off > c->stream_len || (off == c->stream_len && !fin_next))
            break;
        uint32_t flight = c->snd_nxt - c->snd_una;
        uint32_t room = wnd > flight ? wnd - flight : 0;
        if (!fin_next && room == 0)
            break;
        int fresh = c->snd_nxt == c->snd_max;
        uint32_t used = harness_peer_send_at(p, c, now, c->snd_nxt, room);
        if (used == 0)
            break;
        if (fresh && !c->rtt_timing) {
            c->rtt_timing = 1;
            c->rtt_seq = c->snd_nxt + used;
            c->rtt_start = now;
        }
        c->snd_nxt += used;
        if (harness_seq_lt(c->snd_max, c->snd_nxt))
            c->snd_max = c->snd_nxt;
        if (!c->rto_armed)
            harness_peer_arm_rto(c, now);
    }
    /* A closed window with data waiting and nothing in flight: only probes will learn when it
     * opens, because the stack's window update may be lost. */
    uint64_t off = c->snd_nxt - (c->iss + 1);
    if (c->snd_wnd == 0 && off < c->stream_len && c->snd_una == c->snd_max && !c->persist_armed) {
        c->persist_armed = 1;
        c->persist_ivl = HP_PERSIST_MIN;
        c->persist_due = now + c->persist_ivl;
    }
}

static void harness_peer_reset(struct harness_peer *p, struct harness_peer_conn *c)
{
    harness_peer_build(p, c->x->port, c->client_addr, c->sport, c->snd_max, c->rcv_nxt, HP_RST | HP_ACK, 0,
                       NULL, 0, NULL, 0);
    c->state = HP_RESET;
    c->reset_sent = 1;
    c->rto_armed = c->persist_armed = c->synack_armed = 0;
}

/* The script's reset, once the connection has moved enough bytes. */
static void harness_peer_maybe_reset(struct harness_peer *p, struct harness_peer_conn *c)
{
    const struct harness_transfer *x = c->x;
    if (!x->reset_after || c->state != HP_OPEN)
        return;
    uint64_t sent = c->snd_max - (c->iss + 1);
    uint64_t moved = x->kind == HARNESS_DOWNLOAD ? sent : c->received;
    if (moved >= x->reset_after)
        harness_peer_reset(p, c);
}

/* --- receiving --- */

/* What the stack should send on this connection in all. */
static uint64_t harness_peer_expected(const struct harness_transfer *x)
{
    return x->kind == HARNESS_DOWNLOAD ? x->request_len : x->len;
}

/* The peer's reader: takes everything in order (unless paused or not yet accepted), checks it,
 * and makes the answer the script asks for. */
static void harness_peer_consume(struct harness_peer_conn *c, uint32_t now)
{
    const struct harness_transfer *x = c->x;
    if (!c->accepted || c->paused)
        return;
    uint32_t take = c->rlen;
    if (x->kind == HARNESS_ECHO && c->snd_buf) {
        /* An echo server blocked writing stops reading: what it has sent and not had
         * acknowledged fills its send buffer. */
        uint64_t unacked = c->stream_len - (uint32_t)(c->snd_una - (c->iss + 1));
        uint64_t room = unacked < c->snd_buf ? c->snd_buf - unacked : 0;
        if (take > room)
            take = (uint32_t)room;
    }
    if (take > 0) {
        uint64_t expected = harness_peer_expected(x);
        if (c->mismatch < 0) {
            if (c->consumed + take > expected) {
                c->mismatch = (long)expected;
            } else {
                long bad = harness_pattern_check(x->key, c->consumed, c->rbuf, take);
                if (bad >= 0)
                    c->mismatch = (long)c->consumed + bad;
            }
        }
        if (x->kind == HARNESS_ECHO && c->consumed + take <= x->len) {
            memcpy(c->echo + c->consumed, c->rbuf, take);
            c->stream_len += take;
        }
        c->consumed += take;
        c->rlen -= take;
        memmove(c->rbuf, c->rbuf + take, c->rlen);
        c->ack_now = 1; /* the window opened */
    }
    if (c->rlen > 0)
        return; /* FIN and the script's pause wait for the reader */
    /* A connection the script resets never gets the peer's FIN, and a download's answer stops
     * at the reset point: the application must not be able to finish cleanly. */
    if (x->kind == HARNESS_DOWNLOAD && c->consumed >= x->request_len && !c->stream_len) {
        c->stream_len = x->reset_after && x->reset_after < x->len ? x->reset_after : x->len;
        c->fin_queued = !x->reset_after;
    }
    if (x->kind != HARNESS_DOWNLOAD && c->fin_received && !x->reset_after)
        c->fin_queued = 1;
    if (x->pause_ms && !c->pause_done && c->consumed >= x->pause_after) {
        c->paused = 1;
        c->pause_done = 1;
        c->resume_at = now + x->pause_ms;
    }
}

static void harness_peer_ooo_insert(struct harness_peer_conn *c, uint32_t seq, const uint8_t *data, uint32_t len)
{
    struct harness_peer_seg *s = malloc(sizeof(*s) + len);
    if (!s)
        abort();
    s->seq = seq;
    s->len = len;
    memcpy(s->data, data, len);
    struct harness_peer_seg **at = &c->ooo;
    while (*at && harness_seq_lt((*at)->seq, seq))
        at = &(*at)->next;
    s->next = *at;
    *at = s;
    c->ooo_last = seq;
}

/* Takes data into the receive buffer. What the window announced is taken whatever the buffer
 * holds: rounding a scaled window up (so as never to shrink it) can announce a little more than
 * the buffer has room for, as in Linux. */
static void harness_peer_append(struct harness_peer_conn *c, const uint8_t *data, uint32_t len)
{
    if (c->rlen + len > c->rcap) {
        uint32_t cap = c->rcap * 2 > c->rlen + len ? c->rcap * 2 : c->rlen + len;
        uint8_t *b = realloc(c->rbuf, cap);
        if (!b)
            abort();
        c->rbuf = b;
        c->rcap = cap;
    }
    memcpy(c->rbuf + c->rlen, data, len);
    c->rlen += len;
    c->rcv_nxt += len;
    c->received += len;
}

/* Moves out-of-order data that is now in order into the receive buffer. */
static void harness_peer_ooo_pull(struct harness_peer_conn *c)
{
    struct harness_peer_seg **at = &c->ooo;
    while (*at && harness_seq_leq((*at)->seq, c->rcv_nxt)) {
        struct harness_peer_seg *s = *at;
        uint32_t end = s->seq + s->len;
        if (harness_seq_lt(c->rcv_nxt, end)) {
            uint32_t skip = c->rcv_nxt - s->seq;
            harness_peer_append(c, s->data + skip, s->len - skip);
        }
        *at = s->next;
        free(s);
        at = &c->ooo; /* an earlier-starting segment may now reach further */
    }
    if (c->ooo_fin && c->ooo_fin_seq == c->rcv_nxt && !c->ooo) {
        c->fin_received = 1;
        c->rcv_nxt++;
        c->ooo_fin = 0;
    }
}

static void harness_peer_data(struct harness_peer_conn *c, const struct harness_peer_in *in)
{
    uint32_t seq = in->seq, n = in->len;
    const uint8_t *d = in->data;
    int fin = (in->flags & HP_FIN) != 0;
    if (n == 0 && !fin) {
        /* A window probe below the window, or a probe into a closed one: answer it. */
        if (seq != c->rcv_nxt)
            c->ack_now = 1;
        return;
    }
    c->ack_now = 1;
    if (c->fin_received && harness_seq_lt(c->rcv_nxt - 1, seq + n)) {
        /* Data past the FIN the stack sent: its stream ended early, and these bytes are lost
         * (a TCP ignores them). A stack bug: counted and reported. */
        c->after_fin += seq + n - (c->rcv_nxt - 1);
        return;
    }
    if (harness_seq_lt(seq, c->rcv_nxt)) {
        uint32_t skip = c->rcv_nxt - seq;
        if (skip > n || (skip == n && c->fin_received)) {
            return; /* old: a retransmission of what we have */
        }
        d += skip;
        n -= skip;
        seq = c->rcv_nxt;
    }
    if (harness_seq_lt(c->rcv_adv, seq + n)) {
        n = harness_seq_lt(seq, c->rcv_adv) ? c->rcv_adv - seq : 0;
        fin = 0; /* the FIN lies beyond the window */
    }
    if (n == 0 && !fin)
        return;
    if (seq == c->rcv_nxt) {
        harness_peer_append(c, d, n);
        if (fin && !c->fin_received) {
            c->fin_received = 1;
            c->rcv_nxt++;
        }
        harness_peer_ooo_pull(c);
    } else {
        if (n > 0)
            harness_peer_ooo_insert(c, seq, d, n);
        if (fin) {
            c->ooo_fin = 1;
            c->ooo_fin_seq = seq + n;
        }
    }
}

static void harness_peer_rtt_sample(struct harness_peer_conn *c, uint32_t rtt)
{
    if (!c->rtt_valid) {
        c->srtt = rtt;
        c->rttvar = rtt / 2;
        c->rtt_valid = 1;
    } else {
        uint32_t err = c->srtt > rtt ? c->srtt - rtt : rtt - c->srtt;
        c->rttvar = (3 * c->rttvar + err) / 4;
        c->srtt = (7 * c->srtt + rtt) / 8;
    }
    uint32_t rto = c->srtt + (4 * c->rttvar > 10 ? 4 * c->rttvar : 10);
    c->rto = rto < HP_RTO_MIN ? HP_RTO_MIN : rto > HP_RTO_MAX ? HP_RTO_MAX : rto;
}

static void harness_peer_on_ack(struct harness_peer *p, struct harness_peer_conn *c, uint32_t now,
                                const struct harness_peer_in *in)
{
    uint32_t ack = in->ack;
    uint32_t wnd = (uint32_t)in->wnd << c->snd_ws;
    if (harness_seq_lt(c->snd_max, ack)) {
        c->ack_now = 1; /* acknowledges what we never sent */
        return;
    }
    if (harness_seq_lt(c->snd_una, ack)) {
        uint32_t acked = ack - c->snd_una;
        c->snd_una = ack;
        if (harness_seq_lt(c->snd_nxt, ack))
            c->snd_nxt = ack;
        c->dupacks = 0;
        c->backoff = 0;
        if (c->rtt_timing && harness_seq_leq(c->rtt_seq, ack)) {
            c->rtt_timing = 0;
            harness_peer_rtt_sample(c, now - c->rtt_start);
        }
        if (c->cwnd < c->ssthresh)
            c->cwnd += acked < c->snd_mss ? acked : c->snd_mss;
        else
            c->cwnd += c->snd_mss * c->snd_mss / c->cwnd + 1;
        if (c->cwnd > HP_CWND_MAX)
            c->cwnd = HP_CWND_MAX;
        if (c->fin_sent && ack == c->snd_max && c->fin_queued &&
            c->snd_max == c->iss + 1 + (uint32_t)c->stream_len + 1)
            c->fin_acked = 1;
        if (c->snd_una == c->snd_max)
            c->rto_armed = 0;
        else
            harness_peer_arm_rto(c, now);
    } else if (ack == c->snd_una && in->len == 0 && !(in->flags & (HP_FIN | HP_SYN)) && c->snd_una != c->snd_max &&
               wnd == c->snd_wnd) {
        if (++c->dupacks == 3) {
            /* Fast retransmit: the first unacknowledged segment, once. */
            uint32_t flight = c->snd_max - c->snd_una;
            c->ssthresh = flight / 2 > 2U * c->snd_mss ? flight / 2 : 2U * c->snd_mss;
            c->cwnd = c->ssthresh;
            c->rtt_timing = 0;
            harness_peer_send_at(p, c, now, c->snd_una, c->snd_mss);
        }
    }
    if (harness_seq_lt(c->wl1, in->seq) || (c->wl1 == in->seq && harness_seq_leq(c->wl2, ack))) {
        c->snd_wnd = wnd;
        c->wl1 = in->seq;
        c->wl2 = ack;
    }
    if (c->snd_wnd > 0)
        c->persist_armed = 0;
}

/* --- the handshake and the accept queue --- */

static int harness_peer_queue_full(const struct harness_peer *p)
{
    return p->cfg.backlog && p->n_queued >= p->cfg.backlog;
}

static void harness_peer_on_syn(struct harness_peer *p, struct harness_peer_conn *c, uint32_t now,
                                const struct harness_peer_in *in)
{
    if (harness_peer_queue_full(p)) {
        /* Linux drops a SYN while the listener's accept queue is full. */
        c->syn_drops++;
        return;
    }
    c->state = HP_SYN_RCVD;
    c->sport = in->sport;
    c->client_addr = in->src;
    c->irs = in->seq;
    c->rcv_nxt = in->seq + 1;
    c->rcv_adv = c->rcv_nxt;
    c->rcv_wup = c->rcv_nxt;
    c->iss = (uint32_t)harness_rand_next(&c->rand);
    c->snd_una = c->iss;
    c->snd_nxt = c->snd_max = c->iss + 1;
    c->snd_wnd = in->wnd; /* a SYN's window is never scaled */
    c->wl1 = in->seq;
    c->wl2 = c->iss;
    uint16_t mss = in->mss > 0 ? (uint16_t)in->mss : 536;
    c->snd_mss = mss < p->cfg.mss ? mss : p->cfg.mss;
    c->wscale_ok = in->ws >= 0 && p->cfg.wscale >= 0;
    c->snd_ws = c->wscale_ok ? (in->ws > 14 ? 14 : in->ws) : 0;
    c->rcv_ws = c->wscale_ok ? (p->cfg.wscale > 14 ? 14 : p->cfg.wscale) : 0;
    c->sack = in->sack_perm && p->cfg.sack;
    c->ts = in->has_ts && p->cfg.timestamps;
    c->ts_recent = in->tsval;
    c->rcv_buf = p->cfg.rcv_buf;
    c->snd_buf = p->cfg.snd_buf;
    c->rcap = c->rcv_buf + (1U << c->rcv_ws);
    c->rbuf = malloc(c->rcap);
    if (!c->rbuf)
        abort();
    if (c->x->kind == HARNESS_ECHO) {
        c->echo = malloc(c->x->len ? c->x->len : 1);
        if (!c->echo)
            abort();
    }
    c->cwnd = 10U * c->snd_mss;
    c->ssthresh = UINT32_MAX;
    c->rto = HP_RTO_INIT;
    c->drops_left = c->x->accept_drops;
    harness_peer_send_synack(p, c, now);
    /* With SYN cookies the server keeps no state, so it repeats nothing. */
    if (p->cfg.accept_mode == HARNESS_ACCEPT_SYNACK || (!c->drops_left && !p->cfg.backlog)) {
        c->synack_armed = 1;
        c->synack_due = now + HP_RTO_INIT;
    }
}

static void harness_peer_arm_accept(struct harness_peer *p, uint32_t now)
{
    if (!p->accept_armed && p->n_queued > 0) {
        p->accept_armed = 1;
        p->accept_due = now + p->cfg.accept_interval_ms;
    }
}

/* The segment that completes the handshake (an ACK of our SYN). 0 when it was dropped. */
static int harness_peer_establish(struct harness_peer *p, struct harness_peer_conn *c, uint32_t now,
                                  const struct harness_peer_in *in)
{
    if (c->drops_left > 0 || harness_peer_queue_full(p)) {
        /* Accept queue full: Linux drops the ACK (and any data with it) and keeps the request. */
        if (c->drops_left > 0)
            c->drops_left--;
        c->handshake_drops++;
        return 0;
    }
    c->state = HP_OPEN;
    c->snd_una = c->iss + 1;
    /* The handshake gives the first round-trip sample, as in Linux, unless a SYN-ACK was
     * repeated (Karn) or the queue held the connection back. */
    if (c->synack_sent == 1 && c->handshake_drops == 0)
        harness_peer_rtt_sample(c, now - c->synack_ms);
    c->synack_armed = 0;
    c->rto_armed = 0;
    c->snd_wnd = (uint32_t)in->wnd << c->snd_ws;
    c->wl1 = in->seq;
    c->wl2 = in->ack;
    if (p->cfg.backlog) {
        c->queued = 1;
        c->ticket = p->next_ticket++;
        p->n_queued++;
        harness_peer_arm_accept(p, now);
    } else {
        c->accepted = 1;
    }
    return 1;
}

/* --- input --- */

static int harness_peer_parse(struct harness_peer *p, const uint8_t *pkt, size_t len, struct harness_peer_in *in)
{
    if (len < 20 || pkt[0] >> 4 != 4)
        return -1;
    size_t ihl = (size_t)(pkt[0] & 0x0F) * 4, total = harness_get16(pkt + 2);
    if (ihl < 20 || total > len || total < ihl + 20)
        return -1;
    if (harness_csum_finish(harness_csum_add(0, pkt, ihl)) != 0)
        return -1;
    if (pkt[9] != 6 || harness_get32(pkt + 16) != p->cfg.addr)
        return 1; /* not for the peer's TCP: ignored */
    const uint8_t *t = pkt + ihl;
    size_t tcp_len = total - ihl;
    if (harness_csum_finish(harness_csum_add(harness_tcp_pseudo(pkt, tcp_len), t, tcp_len)) != 0)
        return -1;
    size_t doff = (size_t)(t[12] >> 4) * 4;
    if (doff < 20 || doff > tcp_len)
        return -1;
    memset(in, 0, sizeof(*in));
    in->src = harness_get32(pkt + 12);
    in->sport = harness_get16(t);
    in->dport = harness_get16(t + 2);
    in->seq = harness_get32(t + 4);
    in->ack = harness_get32(t + 8);
    in->flags = t[13];
    in->wnd = harness_get16(t + 14);
    in->data = t + doff;
    in->len = (uint32_t)(tcp_len - doff);
    in->ws = -1;
    for (size_t i = 20; i < doff;) {
        uint8_t kind = t[i];
        if (kind == HP_OPT_EOL)
            break;
        if (kind == HP_OPT_NOP) {
            i++;
            continue;
        }
        if (i + 1 >= doff || t[i + 1] < 2 || i + t[i + 1] > doff)
            return -1;
        uint8_t olen = t[i + 1];
        if (kind == HP_OPT_MSS && olen == 4)
            in->mss = harness_get16(t + i + 2);
        else if (kind == HP_OPT_WS && olen == 3)
            in->ws = t[i + 2];
        else if (kind == HP_OPT_SACK_PERM && olen == 2)
            in->sack_perm = 1;
        else if (kind == HP_OPT_TS && olen == 10) {
            in->has_ts = 1;
            in->tsval = harness_get32(t + i + 2);
        }
        i += olen;
    }
    return 0;
}

static struct harness_peer_conn *harness_peer_find(struct harness_peer *p, uint16_t port)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->conns[i].x->port == port)
            return &p->conns[i];
    return NULL;
}

/* After anything happened on c: the reader, the sender, the script's reset, the ACK. */
static void harness_peer_after(struct harness_peer *p, struct harness_peer_conn *c, uint32_t now)
{
    if (c->state != HP_OPEN)
        return;
    harness_peer_consume(c, now);
    harness_peer_output(p, c, now);
    harness_peer_maybe_reset(p, c);
    if (c->state == HP_OPEN && c->ack_now)
        harness_peer_ack(p, c, now);
}

void harness_peer_input(struct harness_peer *p, uint32_t now, const uint8_t *pkt, size_t len)
{
    struct harness_peer_in in;
    int rc = harness_peer_parse(p, pkt, len, &in);
    if (rc < 0) {
        p->bad_packets++;
        return;
    }
    if (rc > 0)
        return;
    struct harness_peer_conn *c = harness_peer_find(p, in.dport);
    if (!c || (c->state != HP_LISTEN && c->sport != in.sport)) {
        harness_peer_reply_rst(p, &in);
        return;
    }
    switch (c->state) {
    case HP_LISTEN:
        if ((in.flags & (HP_SYN | HP_ACK | HP_RST)) == HP_SYN)
            harness_peer_on_syn(p, c, now, &in);
        else
            harness_peer_reply_rst(p, &in);
        return;
    case HP_RESET:
    case HP_ABORTED:
        harness_peer_reply_rst(p, &in);
        return;
    case HP_SYN_RCVD:
        if (in.flags & HP_RST) {
            c->state = HP_ABORTED;
            c->reset_received = 1;
            c->synack_armed = 0;
            return;
        }
        if ((in.flags & (HP_SYN | HP_ACK)) == HP_SYN) {
            harness_peer_send_synack(p, c, now); /* our SYN-ACK was lost */
            return;
        }
        if (!(in.flags & HP_ACK))
            return;
        if (in.ack != c->iss + 1) {
            harness_peer_reply_rst(p, &in);
            return;
        }
        if (!harness_peer_establish(p, c, now, &in))
            return;
        break;
    case HP_OPEN:
        break;
    }
    if (in.flags & HP_RST) {
        if (harness_seq_leq(c->rcv_nxt, in.seq) && harness_seq_leq(in.seq, c->rcv_adv)) {
            c->state = HP_ABORTED;
            c->reset_received = 1;
            c->rto_armed = c->persist_armed = 0;
        }
        return;
    }
    uint32_t end = in.seq + in.len + ((in.flags & (HP_SYN | HP_FIN)) ? 1 : 0);
    if (harness_seq_lt(end, c->rcv_wup) || harness_seq_lt(c->rcv_adv, in.seq)) {
        /* Linux's tcp_sequence(): a segment outside the receive window is dropped whole, its
         * ACK field too, and answered with an ACK. */
        c->out_of_window++;
        harness_peer_ack(p, c, now);
        return;
    }
    if (in.flags & HP_SYN) {
        c->ack_now = 1;
    } else {
        if (c->ts && in.has_ts && harness_seq_leq(in.seq, c->rcv_nxt))
            c->ts_recent = in.tsval;
        if (in.flags & HP_ACK)
            harness_peer_on_ack(p, c, now, &in);
        harness_peer_data(c, &in);
    }
    harness_peer_after(p, c, now);
}

/* --- timers --- */

static void harness_peer_earliest(int armed, uint32_t due, int *any, uint32_t *best)
{
    if (armed && (!*any || harness_seq_lt(due, *best))) {
        *best = due;
        *any = 1;
    }
}

int harness_peer_next(const struct harness_peer *p, uint32_t *due)
{
    int any = 0;
    uint32_t best = 0;
    harness_peer_earliest(p->accept_armed, p->accept_due, &any, &best);
    for (size_t i = 0; i < p->n; i++) {
        const struct harness_peer_conn *c = &p->conns[i];
        harness_peer_earliest(c->rto_armed, c->rto_due, &any, &best);
        harness_peer_earliest(c->persist_armed, c->persist_due, &any, &best);
        harness_peer_earliest(c->synack_armed, c->synack_due, &any, &best);
        harness_peer_earliest(c->paused, c->resume_at, &any, &best);
    }
    *due = best;
    return any;
}

static void harness_peer_timeout(struct harness_peer *p, struct harness_peer_conn *c, uint32_t now)
{
    /* Go back N: everything from the oldest unacknowledged byte is sent again. */
    uint32_t flight = c->snd_max - c->snd_una;
    c->timeouts++;
    c->backoff++;
    c->ssthresh = flight / 2 > 2U * c->snd_mss ? flight / 2 : 2U * c->snd_mss;
    c->cwnd = c->snd_mss;
    c->snd_nxt = c->snd_una;
    c->rtt_timing = 0;
    c->dupacks = 0;
    c->rto_armed = 0;
    harness_peer_output(p, c, now);
    if (!c->rto_armed && c->snd_una != c->snd_max) {
        /* The window is closed; keep the timer for the next try. */
        harness_peer_arm_rto(c, now);
    }
}

void harness_peer_run_timers(struct harness_peer *p, uint32_t now)
{
    if (p->accept_armed && harness_seq_leq(p->accept_due, now)) {
        /* The server's accept(): the oldest connection leaves the queue. */
        p->accept_armed = 0;
        struct harness_peer_conn *first = NULL;
        for (size_t i = 0; i < p->n; i++)
            if (p->conns[i].queued && (!first || p->conns[i].ticket < first->ticket))
                first = &p->conns[i];
        if (first) {
            first->queued = 0;
            first->accepted = 1;
            p->n_queued--;
            harness_peer_after(p, first, now);
        }
        harness_peer_arm_accept(p, now);
    }
    for (size_t i = 0; i < p->n; i++) {
        struct harness_peer_conn *c = &p->conns[i];
        if (c->synack_armed && harness_seq_leq(c->synack_due, now)) {
            if (c->state == HP_SYN_RCVD && c->synack_sent <= HP_SYNACK_RETRIES) {
                harness_peer_send_synack(p, c, now);
                c->synack_due = now + (HP_RTO_INIT << (c->synack_sent - 1));
            } else {
                c->synack_armed = 0;
            }
        }
        if (c->rto_armed && harness_seq_leq(c->rto_due, now))
            harness_peer_timeout(p, c, now);
        if (c->persist_armed && harness_seq_leq(c->persist_due, now)) {
            /* A zero-window probe: an old sequence number, which any TCP answers with an ACK
             * that carries its current window. */
            c->probes++;
            harness_peer_build(p, c->x->port, c->client_addr, c->sport, c->snd_una - 1, c->rcv_nxt, HP_ACK,
                               harness_peer_window(c), NULL, 0, NULL, 0);
            c->persist_ivl = c->persist_ivl * 2 > HP_PERSIST_MAX ? HP_PERSIST_MAX : c->persist_ivl * 2;
            c->persist_due = now + c->persist_ivl;
        }
        if (c->paused && harness_seq_leq(c->resume_at, now)) {
            c->paused = 0;
            harness_peer_after(p, c, now);
        }
    }
}

/* --- life and reports --- */

struct harness_peer *harness_peer_new(const struct harness_peer_config *cfg, const struct harness_transfer *xfers,
                                      size_t n)
{
    struct harness_peer *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->cfg = *cfg;
    p->n = n;
    p->conns = calloc(n ? n : 1, sizeof(*p->conns));
    if (!p->conns) {
        free(p);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        p->conns[i].x = &xfers[i];
        p->conns[i].mismatch = -1;
        harness_rand_init(&p->conns[i].rand, cfg->seed, 0x70656572ULL << 16 | xfers[i].port);
    }
    return p;
}

void harness_peer_free(struct harness_peer *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++) {
        struct harness_peer_conn *c = &p->conns[i];
        while (c->ooo) {
            struct harness_peer_seg *s = c->ooo;
            c->ooo = s->next;
            free(s);
        }
        free(c->rbuf);
        free(c->echo);
    }
    free(p->conns);
    free(p);
}

void harness_peer_status(const struct harness_peer *p, size_t i, struct harness_peer_status *st)
{
    const struct harness_peer_conn *c = &p->conns[i];
    memset(st, 0, sizeof(*st));
    st->known = c->state != HP_LISTEN;
    st->state = harness_peer_state_names[c->state];
    st->received = c->received;
    st->consumed = c->consumed;
    st->mismatch = c->mismatch;
    if (st->known && c->state != HP_SYN_RCVD) {
        uint64_t sent = c->snd_max - (c->iss + 1), acked = c->snd_una - (c->iss + 1);
        st->sent = sent < c->stream_len ? sent : c->stream_len;
        st->acked = acked < c->stream_len ? acked : c->stream_len;
    }
    st->fin_received = c->fin_received;
    st->after_fin = c->after_fin;
    st->fin_sent = c->fin_sent;
    st->fin_acked = c->fin_acked;
    st->reset_sent = c->reset_sent;
    st->reset_received = c->reset_received;
}

void harness_peer_describe(const struct harness_peer *p, size_t i, uint32_t now, char *buf, size_t cap)
{
    const struct harness_peer_conn *c = &p->conns[i];
    struct harness_peer_status st;
    harness_peer_status(p, i, &st);
    if (!st.known) {
        snprintf(buf, cap, "peer: no SYN yet (%u SYNs dropped: accept queue full)", c->syn_drops);
        return;
    }
    char rto[32] = "-", persist[32] = "-";
    if (c->rto_armed)
        snprintf(rto, sizeof(rto), "in %d ms", (int)(c->rto_due - now));
    if (c->persist_armed)
        snprintf(persist, sizeof(persist), "in %d ms", (int)(c->persist_due - now));
    snprintf(buf, cap,
             "peer: %s%s%s; from stack %llu B in order (%llu taken%s), FIN %s%s, %s out of order; "
             "to stack %llu B sent, %llu acked of %llu, FIN %s; snd_wnd %u, cwnd %u, our window %u; "
             "RTO %u ms (next %s), probe next %s; %u retransmits, %u timeouts, %u probes, "
             "%u handshake ACKs dropped, %u SYNs dropped, %u SYN-ACKs sent, %u segments outside our window; "
             "first bad byte at %ld",
             st.state, c->queued ? " (in the accept queue)" : "", c->paused ? " (reader paused)" : "",
             (unsigned long long)c->received, (unsigned long long)c->consumed,
             c->mismatch >= 0 ? ", MISMATCH" : "", c->fin_received ? "received" : "not received",
             c->after_fin ? " (AND DATA AFTER IT)" : "", c->ooo ? "data" : "nothing", (unsigned long long)st.sent, (unsigned long long)st.acked,
             (unsigned long long)c->stream_len,
             c->fin_acked ? "acked" : c->fin_sent ? "sent" : c->fin_queued ? "queued" : "not yet",
             c->snd_wnd, c->cwnd, c->rcv_adv - c->rcv_nxt, c->rto, rto, persist, c->retransmits, c->timeouts,
             c->probes, c->handshake_drops, c->syn_drops, c->synack_sent, c->out_of_window, c->mismatch);
}

uint64_t harness_peer_bad_packets(const struct harness_peer *p)
{
    return p->bad_packets;
}
