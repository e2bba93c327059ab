/* Loss recovery from SACK for the data lwIP sends into the tunnel (uploads).
 *
 * lwIP 2.1 sends SACK-permitted and SACK blocks as a receiver, but as a sender it ignores them:
 * after three duplicate ACKs it resends one segment, and a second loss in the same window waits
 * for the retransmission timer, which then resends the whole window. A burst that overflows the
 * VPN server's socket loses tens of segments at once, so an upload stalled for seconds after each.
 *
 * This file takes over fast recovery for connections whose peer sends SACK, in the spirit of
 * RFC 6675, from lwIP's input hook (LWIP_HOOK_TCP_INPACKET_PCB, see lwip_hooks.h), which sees each
 * segment before lwIP processes it:
 *   - SACK blocks mark the segments of pcb->unacked they cover (a spare bit in tcp_seg.flags);
 *   - a segment is lost once more than two segments' worth of data above it is SACKed;
 *   - on the first loss: ssthresh = half the data in flight, but not below the pipe the
 *     connection is known to fill (recovery_cut()), recovery lasts until everything sent before
 *     it is acknowledged (the recovery point);
 *   - during recovery, lost segments are moved back to pcb->unsent (in sequence order, as
 *     lwIP's own tcp_rexmit() does) while the estimated data in the network ("pipe": not SACKed
 *     and not lost, plus what we resent) stays under ssthresh, and cwnd is set so that lwIP's
 *     sequence-relative window check lets those segments, and new data within the same budget,
 *     go out; lwIP calls tcp_output() itself once it has processed the segment;
 *   - lwIP's own duplicate-ACK counter is kept at zero so that it never starts its fast
 *     retransmit beside ours.
 *   - a resent segment is lost again once more than two segments' worth of what was sent after
 *     it is SACKed (recovery_lost_resend()); it is then resent once more.
 *   - a short recovery timer (recovery_timer.c, RFC 8985's reordering timer): when no ACK has
 *     come for a round trip and a quarter (10 ms at least) since the latest resend or ACK in
 *     recovery, what was sent before it and is still neither acknowledged nor SACKed is lost,
 *     and the holes go again at once rather than at lwIP's retransmission timeout; outside
 *     recovery, the same timer sends RFC 8985's tail loss probe after two round trips of
 *     silence.
 * If lwIP's retransmission timer fires all the same (TF_RTO: nothing came back at all), this code
 * stands aside until that ends, but for one thing: what the peer SACKed is not sent again
 * (recovery_rto_skip_sacked()).
 * A peer that throws away data it SACKed (reneging, recovery_renege()) has it resent at once.
 * Connections without SACK keep lwIP's behaviour.
 *
 * One more loss is repaired here: a peer that repeats its SYN-ACK after we sent data never got
 * our handshake ACK (a Linux server does this while its accept queue is full, and drops what we
 * sent after it too). lwIP answers such a SYN-ACK with a pure ACK and leaves the data to its
 * retransmission timer, which may be seconds away; we resend the data at once instead, since the
 * segment that completes the handshake may as well carry the request.
 *
 * lwIP habits undone here as well (the last one, a FIN split with its segment, below).
 *   - Its pure ACKs carry snd_nxt as their sequence number, even when snd_nxt is past the right
 *     edge of the peer's window: after a zero-window probe (lwIP moves snd_nxt past the probed
 *     byte) or a retransmission timeout (snd_nxt stays where it was). A Linux peer accepts a
 *     segment only if it starts inside its receive window (at exactly rcv_nxt when the window is
 *     closed), so it drops those ACKs whole, acknowledgment included, and answers each with a
 *     duplicate ACK. An echo server that was blocked writing to us (its window closed because it
 *     stopped reading) then never learned that we had its data: it resent the same segment on
 *     its backoff forever, we ACKed each copy in vain, and neither side moved again (28 to 41 of
 *     100 parallel 1 MiB echoes through the lab's OpenVPN server). So a pure ACK leaves with the
 *     sequence number Linux would use (tcp_acceptable_seq): snd_nxt, or the right edge of the
 *     peer's window if that is lower. This is lwIP's output hook, which sees every segment
 *     before its checksum is computed.
 *   - Its fast retransmit moves the first unacknowledged segment to pcb->unsent; if the window
 *     does not let it go and the retransmission timer then fires, pcb->unacked is put in front
 *     of pcb->unsent and that segment ends up behind later ones. lwIP sends unsent strictly from
 *     the head, so the connection stalls for good with the oldest byte never resent (seen with
 *     the persist timer probing a 1 KiB window with the segment after the missing one). The
 *     same happens to segments this file moves. So whenever pcb->unsent starts with resent data,
 *     the resent part is put back in order before lwIP looks at an incoming segment. */
#include <stdint.h>
#include <stdlib.h>

#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "stack/internal.h" /* stack_now_us(), stack_tcp_output() */
#include "stack/lwip_hooks.h"
#include "stack/lwip_pin.h" /* lwIP internals: see there */
#include "stack/recovery_internal.h"

/* TCP option kind of SACK blocks (RFC 2018); lwIP names only SACK-permitted. */
#define TCP_OPT_SACK 5

/* How much a loss may cut the window: the rate-derived floor (recovery_cut()). */
enum {
    RECOVERY_QUEUE_US = 750,         /* Q, the queueing allowed on top of the minimum RTT */
    RECOVERY_BW_INTERVAL_US = 4000,  /* the delivery rate over intervals of 4 ms at least... */
    RECOVERY_BW_SAMPLES = 10,        /* ...is the maximum over the last 10 to 20 of them */
    RECOVERY_RTT_EPOCH_US = 2000000  /* the minimum RTT over the last 2 to 4 seconds */
};

/* For the log at exit: how often recovery ran, what it resent, and how many of those resends
 * were lost again. */
static unsigned long recovery_episodes, recovery_resent, recovery_lost_resends;
/* Resends at once because the peer repeated its SYN-ACK. */
static unsigned long recovery_synack_resends;

static uint8_t ext_id;
static int ext_id_valid;

static void recovery_destroyed(u8_t id, void *data)
{
    (void)id;
    struct recovery *r = data;
    recovery_timer_stop(r);
    free(r);
}

static const struct tcp_ext_arg_callbacks recovery_callbacks = {
    .destroy = recovery_destroyed,
    .passive_open = NULL,
};

void stack_recovery_init(void)
{
    if (!ext_id_valid) {
        ext_id = tcp_ext_arg_alloc_id();
        ext_id_valid = 1;
    }
}

void stack_recovery_stats(unsigned long *episodes, unsigned long *resent, unsigned long *lost_resends,
                          unsigned long *synack_resends)
{
    *episodes = recovery_episodes;
    *resent = recovery_resent;
    *lost_resends = recovery_lost_resends;
    *synack_resends = recovery_synack_resends;
}

static struct recovery *recovery_of(struct tcp_pcb *pcb, int create)
{
    struct recovery *r = tcp_ext_arg_get(pcb, ext_id);
    if (r || !create)
        return r;
    r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->pcb = pcb;
    tcp_ext_arg_set_callbacks(pcb, ext_id, &recovery_callbacks);
    tcp_ext_arg_set(pcb, ext_id, r);
    return r;
}

/* Reads the SACK blocks of the segment's options into left/right; returns how many. The options
 * may be split between the header's pbuf (opt1len bytes) and opt2. */
static int parse_sack(const struct tcp_hdr *hdr, u16_t optlen, u16_t opt1len, const u8_t *opt2,
                      uint32_t *left, uint32_t *right, int max)
{
    const u8_t *opt1 = (const u8_t *)hdr + TCP_HLEN;
#define OPT(i) ((i) < opt1len ? opt1[(i)] : opt2[(i) - opt1len])
    int n = 0;
    u16_t i = 0;
    if (!opt2)
        opt1len = optlen;
    while (i < optlen) {
        u8_t kind = OPT(i);
        if (kind == LWIP_TCP_OPT_EOL)
            break;
        if (kind == LWIP_TCP_OPT_NOP) {
            i++;
            continue;
        }
        if (i + 1 >= optlen)
            break;
        u8_t len = OPT(i + 1);
        if (len < 2 || i + len > optlen)
            break;
        if (kind == TCP_OPT_SACK) {
            for (u16_t b = i + 2; b + 8 <= i + len && n < max; b += 8) {
                uint32_t l = 0, r = 0;
                for (int k = 0; k < 4; k++) {
                    l = l << 8 | OPT(b + k);
                    r = r << 8 | OPT(b + 4 + k);
                }
                left[n] = l;
                right[n] = r;
                n++;
            }
        }
        i = (u16_t)(i + len);
    }
#undef OPT
    return n;
}

/* Whether one of the n SACK blocks covers [start, end) whole. */
static int sack_covers(uint32_t start, uint32_t end, const uint32_t *left, const uint32_t *right, int n)
{
    for (int b = 0; b < n; b++)
        if (TCP_SEQ_GEQ(start, left[b]) && TCP_SEQ_LEQ(end, right[b]) && TCP_SEQ_LT(left[b], right[b]))
            return 1;
    return 0;
}

/* Moves seg (already unlinked from unacked) into unsent, keeping unsent in sequence order. */
void recovery_requeue(struct tcp_pcb *pcb, struct tcp_seg *seg)
{
    struct tcp_seg **at = &pcb->unsent;
    while (*at && TCP_SEQ_LT(seg_seq(*at), seg_seq(seg)))
        at = &(*at)->next;
    seg->next = *at;
    *at = seg;
#if TCP_OVERSIZE
    if (!seg->next)
        pcb->unsent_oversize = 0; /* lwIP must not append new data to a resent segment's pbuf */
#endif
}

/* Puts pcb->unsent back in sequence order. lwIP keeps it sorted as long as only new data and its
 * own retransmissions go there; but a segment this file moved there and that could not be sent
 * yet ends up behind later ones when lwIP's retransmission timer puts pcb->unacked in front of
 * pcb->unsent, and lwIP sends unsent strictly from the head: with the oldest byte out of order,
 * the connection stalls. Segments out of place are taken out and put back in order. */
static void recovery_sort_unsent(struct tcp_pcb *pcb)
{
    struct tcp_seg **link = &pcb->unsent;
    uint32_t last = 0;
    int first = 1, moved = 0;
    while (*link) {
        struct tcp_seg *seg = *link;
        if (!first && TCP_SEQ_LT(seg_seq(seg), last)) {
            *link = seg->next;
            recovery_requeue(pcb, seg);
            moved = 1;
            continue;
        }
        if (TCP_SEQ_GEQ(seg_seq(seg), pcb->snd_nxt))
            break; /* new data from here on: lwIP appended it in order */
        last = seg_seq(seg);
        first = 0;
        link = &seg->next;
    }
#if TCP_OVERSIZE
    if (moved)
        pcb->unsent_oversize = 0;
#else
    (void)moved;
#endif
}

/* The peer sent its SYN-ACK again (see the top): everything unacknowledged goes back to unsent,
 * and lwIP's tcp_output() after this segment sends it, its ACK flag answering the SYN-ACK. The
 * retransmission count is left alone: the peer asked for this, no timer ran out. */
static void recovery_repeated_synack(struct tcp_pcb *pcb, const struct tcp_hdr *hdr)
{
    if ((pcb->state != ESTABLISHED && pcb->state != FIN_WAIT_1) || !pcb->unacked ||
        hdr->seqno + 1 != pcb->rcv_nxt || hdr->ackno != pcb->lastack)
        return;
    if (tcp_rexmit_rto_prepare(pcb) == ERR_OK) {
        pcb->rtime = 0;
        recovery_synack_resends++;
    }
}

/* A peer whose receive window is open but smaller than our next segment (a Linux receiver under
 * memory pressure, with a thousand connections at once): lwIP sends only whole queued segments,
 * so it waits for its persist timer (150 ms and more) to cut the head down to the window, sends
 * that, and waits again once it is acknowledged: an echo at a thousand connections crawled at two
 * segments per probe. Linux cuts to the window at once; so do we, when this ACK acknowledges
 * everything in flight and leaves a window of at least STACK_RECOVERY_MIN_SPLIT bytes (smaller
 * ones are the persist timer's, against silly windows). lwIP's tcp_output() after the segment
 * then sends the cut piece. */
enum { STACK_RECOVERY_MIN_SPLIT = 512 };

static void recovery_fit_window(struct tcp_pcb *pcb, const struct tcp_hdr *hdr)
{
    struct tcp_seg *head = pcb->unsent;
    if (!head || hdr->ackno != pcb->snd_nxt || seg_seq(head) != hdr->ackno)
        return;
    uint32_t wnd = (pcb->flags & TF_WND_SCALE) ? (uint32_t)SND_WND_SCALE(pcb, (uint32_t)hdr->wnd) : hdr->wnd;
    if (wnd >= STACK_RECOVERY_MIN_SPLIT && wnd < head->len)
        tcp_split_unsent_seg(pcb, (u16_t)wnd);
}

/* The connection's delivery rate: the bytes cumulatively acknowledged over an interval of at
 * least RECOVERY_BW_INTERVAL_US and one minimum RTT, outside loss recovery (where the cumulative
 * ACK stands still and then jumps over what was SACKed earlier). Not per round trip: ACKs reach
 * us in bursts (four processes take turns on two cores), and one burst made a per-round sample
 * of ~1 ms two or three times the real rate; the floor then kept the window far above where
 * ocserv drops, 11-15 % of the datagrams were lost and the upload fell to 0.79x ocproxy. */
static void recovery_rate_sample(struct recovery *r, uint32_t ackno, uint64_t now)
{
    if (r->active) {
        r->bw_on = 0;
        return;
    }
    if (!r->bw_on) {
        r->bw_on = 1;
        r->bw_ack = ackno;
        r->bw_t0_us = now;
        return;
    }
    uint64_t elapsed = now - r->bw_t0_us;
    if (elapsed < RECOVERY_BW_INTERVAL_US || elapsed < LWIP_MAX(r->min_rtt[0], r->min_rtt[1]))
        return;
    uint64_t bw = (uint64_t)(ackno - r->bw_ack) * 1000000u / elapsed;
    if (bw > r->bw[0])
        r->bw[0] = bw;
    if (++r->bw_samples >= RECOVERY_BW_SAMPLES) {
        r->bw[1] = r->bw[0];
        r->bw[0] = 0;
        r->bw_samples = 0;
    }
    r->bw_ack = ackno;
    r->bw_t0_us = now;
}

/* The minimum RTT over the last 2 to 4 seconds, from each round trip sample at now. */
static void recovery_min_rtt(struct recovery *r, uint32_t rtt_us, uint64_t now)
{
    if (now - r->rtt_epoch_us >= RECOVERY_RTT_EPOCH_US) {
        r->min_rtt[1] = r->min_rtt[0];
        r->min_rtt[0] = 0;
        r->rtt_epoch_us = now;
    }
    if (rtt_us && (!r->min_rtt[0] || rtt_us < r->min_rtt[0]))
        r->min_rtt[0] = rtt_us;
}

/* ssthresh after a loss, with basis the data the cut applies to (what was in flight, or the
 * ssthresh being cut once more): half of it, as RFC 5681 has it, but not less than the pipe the
 * connection is known to fill, bw_max x (min_rtt + Q), and never more than basis itself: a loss
 * only ever lowers the window.
 *
 * Why: the openconnect upload overflows ocserv's UDP socket (about 90 datagrams) at 96 to
 * 129 KB in flight, and each halving then takes ~50 round trips of lwIP's 1 MSS per round to
 * undo, while the delivery rate measured against what is in flight was 89-91 MB/s at 32-96 KB
 * and 111-115 MB/s at 112-176 KB: the halved window leaves the path idle half the time. A
 * fixed floor of 128 KiB gave 1.52-1.69x ocproxy's upload against 1.29-1.49x (kernel TUN
 * 0.84-0.88x against 0.73-0.78x); but a fixed floor is no congestion control on a slow path.
 * This floor is the connection's own pipe: on that path bw_max was 111-191 MB/s (mean 137) and
 * min_rtt 0.1-0.13 ms, which makes ~120 KB, about what is in flight at the loss. On a
 * 10 Mbit/s x 20 ms path it is 1.25 KB/ms x 20.75 ms = 26 KB, below half of a full pipe (the
 * window at a loss is the pipe and the buffer), so it changes nothing there; a path whose buffer
 * is shallower than its pipe keeps its pipe full, as BBR would. Both estimators are windowed
 * maxima/minima of measured samples, never of the window itself, so the floor cannot feed itself
 * (a floor that added the largest ACK burst did: 540 KB, collapse).
 *
 * Q, 0.75 ms: here RTT samples are 0.4-1.6 ms against a minimum near 0.1 ms, the queueing being
 * mostly four processes (application, vpn2socks, openconnect, ocserv) taking turns on two cores;
 * what a runnable process waits for its turn is of the order of a scheduler slice (Linux's
 * sched_base_slice: 0.75 ms, scaled by the number of CPUs, 1.5 ms on two). So Q is of that order,
 * and the value was chosen by measurement: without Q the floor would be the bare pipe of an idle
 * machine, below flight/2 here. With 1 ms
 * the floor came to ~150 KB, above where ocserv drops, and the upload was 1.39x ocproxy (mean of
 * five runs; main 1.27x in the same rounds); with 0.75 ms 1.14-1.64x (mean 1.47 of six, above
 * main in each of three rounds; main 1.06-1.38x, mean 1.27 of ten), kernel TUN 0.77-1.01x (mean
 * 0.88; main 0.71), with 2-9 % of the datagrams lost (main 0.2-2.7 %) and the same CPU per GiB. */
static uint32_t recovery_cut(const struct tcp_pcb *pcb, const struct recovery *r, uint32_t basis)
{
    uint32_t cut = LWIP_MAX(basis / 2, 2U * pcb->mss);
    uint64_t bw = LWIP_MAX(r->bw[0], r->bw[1]);
    uint32_t rtt = r->min_rtt[1];
    if (r->min_rtt[0] && (!rtt || r->min_rtt[0] < rtt))
        rtt = r->min_rtt[0];
    if (bw && rtt) {
        uint64_t pipe = bw * (rtt + RECOVERY_QUEUE_US) / 1000000u;
        if (pipe > cut)
            cut = pipe < basis ? (uint32_t)pipe : basis;
    }
    return LWIP_MAX(cut, 2U * pcb->mss);
}

/* More than two segments' worth of what left after the latest resend is SACKed, so every
 * resent segment still neither acknowledged nor SACKed was lost again (the segments after it
 * arrived; RFC 8985's view of a lost retransmission, with the resend's order in place of its
 * time). Without this, such a segment waits for lwIP's retransmission timer, at least 150 ms,
 * which then resends the whole window from the hole (go-back-N) and restarts from one segment.
 * Four 128 MiB uploads of the openconnect bench (an overflowing ocserv socket drops bursts)
 * had 3 such timeouts, all in recovery, each with about 400 KB in flight; with this, none (33
 * segments resent again instead). Over three alternating A/Bs (20 uploads before, 30 with
 * this) the upload's rate against ocproxy's in the same round went from 1.23 to 1.35 on
 * average, its lowest from 0.88 to 1.12. Here the segment is only made a candidate again
 * (pass 3 resends it), and the loss of a retransmission counts as a second congestion signal:
 * ssthresh halves once more and the episode runs until what is sent now is acknowledged. The
 * recovery timer declares every resend before `below` lost this way too. */
void recovery_lost_resend(struct tcp_pcb *pcb, struct recovery *r, uint32_t ackno, uint32_t below)
{
    int lost = 0;
    for (struct tcp_seg *seg = pcb->unacked; seg; seg = seg->next) {
        uint32_t start = seg_seq(seg);
        if (TCP_SEQ_GEQ(start, below))
            break;
        if (TCP_SEQ_LT(start, ackno) || !(seg->flags & SEG_RESENT) || (seg->flags & SEG_SACKED))
            continue;
        seg->flags &= (u8_t)~SEG_RESENT;
        lost++;
    }
    if (!lost)
        return;
    recovery_lost_resends += (unsigned long)lost;
    r->resent = 0;
    r->point = pcb->snd_nxt;
    pcb->ssthresh = recovery_cut(pcb, r, pcb->ssthresh);
}

/* lwIP's retransmission timer fired: it put every unacknowledged segment back in front of
 * pcb->unsent and sends them all again from the hole as its window opens, SACKed or not (1 MB
 * at a time in the openconnect upload, into a VPN server's socket that had just overflowed).
 * SACKed segments are taken out of unsent again, into unacked as if sent (RFC 6675 and Linux
 * keep SACK information across a timeout): the cumulative ACK frees them once the holes before
 * them are filled, and only the holes go again. Not while lwIP's persist timer runs: the window
 * was closed when the timeout put everything in unsent, and that timer asserts that nothing is in
 * flight, so a segment put in unacked then aborted the process at its next tick (the peer's
 * answer to a window probe SACKs; stack_recovery_zero_window). The segments stay in unsent until
 * something is sent again, which stops that timer, and the next ACK takes them out. */
static void recovery_rto_skip_sacked(struct tcp_pcb *pcb, uint32_t ackno, const uint32_t *left,
                                     const uint32_t *right, int nblocks)
{
    int persist = pcb->persist_backoff > 0;
    struct tcp_seg **link = &pcb->unsent;
    while (*link && TCP_SEQ_LT(seg_seq(*link), pcb->snd_nxt)) {
        struct tcp_seg *seg = *link;
        uint32_t start = seg_seq(seg), end = start + TCP_TCPLEN(seg);
        if (sack_covers(start, end, left, right, nblocks))
            seg->flags |= SEG_SACKED;
        seg->flags &= (u8_t)~SEG_LOST; /* lwIP resends it now */
        if (persist || !(seg->flags & SEG_SACKED) || TCP_SEQ_LEQ(end, ackno) || TCP_SEQ_GT(end, pcb->snd_nxt)) {
            link = &seg->next;
            continue;
        }
        *link = seg->next;
        struct tcp_seg **at = &pcb->unacked;
        while (*at && TCP_SEQ_LT(seg_seq(*at), start))
            at = &(*at)->next;
        seg->next = *at;
        *at = seg;
    }
#if TCP_OVERSIZE
    if (!pcb->unsent)
        pcb->unsent_oversize = 0;
#endif
}

/* The segment of queue (sorted) that holds the byte at ackno, if any. */
static struct tcp_seg *recovery_seg_at(struct tcp_seg *queue, uint32_t ackno)
{
    for (struct tcp_seg *seg = queue; seg && TCP_SEQ_LEQ(seg_seq(seg), ackno); seg = seg->next)
        if (TCP_SEQ_GT(seg_seq(seg) + TCP_TCPLEN(seg), ackno))
            return seg;
    return NULL;
}

/* The peer reneged: RFC 2018 lets a receiver short of memory throw away data it SACKed (Linux's
 * tcp_prune_ofo_queue() does, under memory pressure), and the cumulative ACK then stops at data
 * marked SACKed, which a peer that still held it would have acknowledged. SACKed segments are
 * never resent here, and after lwIP's retransmission timeout they are kept out of its resends
 * (recovery_rto_skip_sacked()): each of them waited for a timeout of its own, 225 ms for the
 * first in the unit test and more with each backoff. So every mark the blocks of this ACK do not
 * repeat is dropped, and what it was on is lost: resent as the window allows, at once (during
 * lwIP's timeout, put back in unsent, where lwIP resends from). Returns whether it reneged. */
static int recovery_renege(struct tcp_pcb *pcb, struct recovery *r, uint32_t ackno, const uint32_t *left,
                           const uint32_t *right, int nblocks)
{
    const struct tcp_seg *at = recovery_seg_at(pcb->unacked, ackno);
    if (!at && pcb->unsent && TCP_SEQ_LT(seg_seq(pcb->unsent), pcb->snd_nxt))
        at = recovery_seg_at(pcb->unsent, ackno);
    if (!at || !(at->flags & SEG_SACKED))
        return 0;
    int rto = (pcb->flags & TF_RTO) != 0;
    for (struct tcp_seg **link = &pcb->unacked; *link;) {
        struct tcp_seg *seg = *link;
        uint32_t start = seg_seq(seg), end = start + TCP_TCPLEN(seg);
        if (!(seg->flags & SEG_SACKED) || sack_covers(start, end, left, right, nblocks)) {
            link = &seg->next;
            continue;
        }
        /* A resend of it the peer had is gone as well: none is in the network. */
        seg->flags &= (u8_t)~(SEG_SACKED | SEG_RESENT);
        if (rto && seg->p->ref == 1) {
            *link = seg->next;
            recovery_requeue(pcb, seg);
            continue;
        }
        seg->flags |= SEG_LOST;
        link = &seg->next;
    }
    for (struct tcp_seg *seg = pcb->unsent; seg && TCP_SEQ_LT(seg_seq(seg), pcb->snd_nxt); seg = seg->next) {
        uint32_t start = seg_seq(seg), end = start + TCP_TCPLEN(seg);
        if (!sack_covers(start, end, left, right, nblocks))
            seg->flags &= (u8_t)~SEG_SACKED;
    }
    if (r && r->active)
        r->point = pcb->snd_nxt; /* the episode runs until what the peer threw away is back */
    return 1;
}

/* A round trip sample when the timed segment is acknowledged or SACKed. */
static void recovery_rtt_sample(struct recovery *r, uint32_t ackno, const uint32_t *left, const uint32_t *right,
                                int nblocks, uint64_t now)
{
    int done = TCP_SEQ_GEQ(ackno, r->probe_end);
    for (int b = 0; b < nblocks && !done; b++)
        done = TCP_SEQ_LT(left[b], r->probe_end) && TCP_SEQ_GEQ(right[b], r->probe_end);
    if (!done)
        return;
    r->rtt_us = (uint32_t)(now - r->probe_us);
    r->rtt_known = 1;
    r->probe_us = 0;
    recovery_min_rtt(r, r->rtt_us, now);
}

/* Is this segment (above the cumulative ACK, not SACKed) lost? Declared so by the recovery timer,
 * or more than two segments' worth of data above it is SACKed (sacked_above). */
static int recovery_is_lost(const struct tcp_pcb *pcb, const struct tcp_seg *seg, uint32_t sacked_above)
{
    return (seg->flags & SEG_LOST) || sacked_above > 2U * pcb->mss;
}

/* The pipe: the data still in the network (above ackno, neither SACKed nor lost, plus what was
 * resent); *lost_waiting: whether a lost segment waits to be resent. */
uint32_t recovery_pipe(const struct tcp_pcb *pcb, uint32_t ackno, uint32_t sacked_total, int *lost_waiting)
{
    uint32_t sacked_below = 0, pipe = 0;
    for (const struct tcp_seg *seg = pcb->unacked; seg; seg = seg->next) {
        uint32_t start = seg_seq(seg), end = start + TCP_TCPLEN(seg);
        if (TCP_SEQ_LEQ(end, ackno))
            continue;
        if (seg->flags & SEG_SACKED) {
            sacked_below += end - start;
            continue;
        }
        int lost = TCP_SEQ_GEQ(start, ackno) && recovery_is_lost(pcb, seg, sacked_total - sacked_below);
        if (!lost || (seg->flags & SEG_RESENT))
            pipe += end - start;
        else
            *lost_waiting = 1;
    }
    return pipe;
}

/* lwIP sends a segment when seqno - lastack + len <= min(cwnd, snd_wnd): cwnd opens over
 * everything outstanding, plus new data for whatever the pipe leaves of ssthresh. */
static void recovery_open_cwnd(struct tcp_pcb *pcb, uint32_t ackno, uint32_t pipe)
{
    uint32_t room = pipe < pcb->ssthresh ? pcb->ssthresh - pipe : 0;
    pcb->cwnd = (tcpwnd_size_t)(pcb->snd_nxt - ackno + room);
}

/* Resends lost segments in order while the pipe stays under ssthresh; one always goes, so that
 * every ACK in recovery, and every firing of its timer, moves something. Only what the peer's
 * window takes right now: a segment left waiting in pcb->unsent below snd_nxt would be put
 * behind later ones if lwIP's retransmission timer then moved pcb->unacked in front of
 * pcb->unsent, and a connection whose oldest byte is out of order there stalls. Then cwnd is
 * set for lwIP's tcp_output() to send them. Returns how many went. */
int recovery_resend(struct tcp_pcb *pcb, struct recovery *r, uint32_t ackno, uint32_t sacked_total,
                           uint32_t pipe, uint32_t peer_wnd)
{
    int sent = 0;
    uint32_t sacked_below = 0;
    struct tcp_seg **link = &pcb->unacked;
    while (*link) {
        struct tcp_seg *seg = *link;
        uint32_t start = seg_seq(seg), len = TCP_TCPLEN(seg);
        int skip = TCP_SEQ_LT(start, ackno) || (seg->flags & (SEG_SACKED | SEG_RESENT)) || seg->p->ref != 1;
        if (TCP_SEQ_GT(start + len, ackno) && (seg->flags & SEG_SACKED))
            sacked_below += len;
        if (skip) {
            link = &seg->next;
            continue;
        }
        /* What the timer declared lost is a prefix of what is neither SACKed nor resent, and so
         * is what the SACKs declare lost: the first segment that is neither ends both. */
        if (!recovery_is_lost(pcb, seg, sacked_total - sacked_below))
            break;
        if ((sent && pipe + len > pcb->ssthresh) || start - ackno + len > peer_wnd)
            break;
        *link = seg->next; /* out of unacked, into unsent */
        seg->flags = (u8_t)((seg->flags | SEG_RESENT) & ~SEG_LOST);
        recovery_requeue(pcb, seg);
        pipe += len;
        sent++;
    }
    recovery_resent += (unsigned long)sent;
    if (sent) {
        r->resent = 1;
        r->mark = pcb->snd_nxt; /* what lwIP sends after these segments starts here */
        pcb->rttest = 0;        /* Karn: no RTT sample across a retransmission */
        r->probe_us = 0;
    }
    recovery_open_cwnd(pcb, ackno, pipe);
    return sent;
}

err_t stack_recovery_input(struct tcp_pcb *pcb, const struct tcp_hdr *hdr, u16_t optlen, u16_t opt1len,
                           const u8_t *opt2)
{
    if ((TCPH_FLAGS(hdr) & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN)) == (TCP_SYN | TCP_ACK)) {
        recovery_repeated_synack(pcb, hdr);
        return ERR_OK;
    }
    if (pcb->state < ESTABLISHED || pcb->state == TIME_WAIT || !(TCPH_FLAGS(hdr) & TCP_ACK) ||
        (TCPH_FLAGS(hdr) & (TCP_RST | TCP_SYN)))
        return ERR_OK;
    if (pcb->unsent && TCP_SEQ_LT(seg_seq(pcb->unsent), pcb->snd_nxt))
        recovery_sort_unsent(pcb);
    if (pcb->state == ESTABLISHED || pcb->state == CLOSE_WAIT || pcb->state == FIN_WAIT_1)
        recovery_fit_window(pcb, hdr);
    if (!(pcb->flags & TF_SACK))
        return ERR_OK;
    uint32_t ackno = hdr->ackno; /* tcp_input() already converted the header to host order */
    struct recovery *r = recovery_of(pcb, pcb->unacked != NULL);
    int active = r && r->active;
    if (TCP_SEQ_GT(ackno, pcb->snd_nxt) || TCP_SEQ_LT(ackno, pcb->lastack))
        return ERR_OK; /* not an acceptable ACK: lwIP deals with it */
    uint32_t left[LWIP_TCP_MAX_SACK_NUM + 1], right[LWIP_TCP_MAX_SACK_NUM + 1];
    int nblocks = parse_sack(hdr, optlen, opt1len, opt2, left, right, LWIP_TCP_MAX_SACK_NUM + 1);
    uint64_t now = r ? stack_now_us() : 0; /* one clock read per segment */
    if (r && r->probe_us)
        recovery_rtt_sample(r, ackno, left, right, nblocks, now);
    int reneged = recovery_renege(pcb, r, ackno, left, right, nblocks);
    if (pcb->flags & TF_RTO) {
        /* The retransmission timer fired: lwIP resends everything from lastack; ours is over. */
        if (r) {
            if (!r->in_rto)
                recovery_count_timeout();
            r->in_rto = 1;
            r->probe_us = 0;
            r->bw_on = 0;
            r->active = 0;
            r->tlp_out = 0;
        }
        recovery_rto_skip_sacked(pcb, ackno, left, right, nblocks);
        return ERR_OK;
    }
    if (r) {
        r->in_rto = 0;
        recovery_rate_sample(r, ackno, now);
    }
    if (r) {
        /* In recovery, the recovery timer's wait counts from here; outside it, the tail loss
         * probe's, which is armed while data is unacknowledged. */
        recovery_heard(r, pcb, now);
        r->fired = 0;
        if (!r->armed && pcb->unacked)
            recovery_timer_arm(r, now);
        if (r->tlp_out && TCP_SEQ_GEQ(ackno, r->tlp_end))
            r->tlp_out = 0;
    }
    if (active && TCP_SEQ_GEQ(ackno, r->point)) {
        /* Everything sent before the loss is acknowledged: continue from the halved window. */
        r->active = 0;
        pcb->cwnd = pcb->ssthresh;
        pcb->dupacks = 0;
        return ERR_OK;
    }

    if (nblocks == 0 && !active && !reneged)
        return ERR_OK;

    /* Pass 1: mark what the blocks cover; count SACKed bytes above the cumulative ACK, and those
     * sent after the latest resend. */
    uint32_t sacked_total = 0, sacked_after_mark = 0;
    for (struct tcp_seg *seg = pcb->unacked; seg; seg = seg->next) {
        uint32_t start = seg_seq(seg), end = start + TCP_TCPLEN(seg);
        if (TCP_SEQ_LEQ(end, ackno))
            continue;
        if (!(seg->flags & SEG_SACKED) && sack_covers(start, end, left, right, nblocks))
            seg->flags |= SEG_SACKED;
        if (seg->flags & SEG_SACKED) {
            sacked_total += end - start;
            if (active && r->resent && TCP_SEQ_GEQ(start, r->mark))
                sacked_after_mark += end - start;
        }
    }
    /* From here on, duplicate ACKs are ours to count. */
    pcb->dupacks = 0;
    if (!active && r && r->tlp_out && sack_covers(r->tlp_start, r->tlp_end, left, right, nblocks))
        recovery_probe_answered(pcb, r, ackno);

    uint32_t threshold = 2U * pcb->mss;
    if (sacked_after_mark > threshold)
        recovery_lost_resend(pcb, r, ackno, r->mark);

    /* Pass 2: the pipe, and whether a lost segment is waiting to be resent. */
    int lost_waiting = 0;
    uint32_t pipe = recovery_pipe(pcb, ackno, sacked_total, &lost_waiting);
    if (!active) {
        if (!lost_waiting)
            return ERR_OK;
        if (!r && !(r = recovery_of(pcb, 1)))
            return ERR_OK;
        r->active = 1;
        r->resent = 0;
        r->tlp_out = 0;
        r->point = pcb->snd_nxt;
        recovery_episodes++;
        if (pcb->flags & TF_INFR) {
            /* lwIP began its own fast retransmit before the SACKs showed more: it already
             * halved ssthresh and resent the first segment; the floor still applies. */
            tcp_clear_flags(pcb, TF_INFR);
            uint32_t flight = pcb->snd_nxt - pcb->lastack;
            pcb->ssthresh = LWIP_MAX(pcb->ssthresh, LWIP_MIN(recovery_cut(pcb, r, flight), flight));
        } else {
            pcb->ssthresh = recovery_cut(pcb, r, pcb->snd_nxt - pcb->lastack);
        }
    }

    /* Pass 3: resend what is lost, as the window (as this ACK advertises it) allows. */
    uint32_t peer_wnd = (pcb->flags & TF_WND_SCALE) ? (uint32_t)SND_WND_SCALE(pcb, (uint32_t)hdr->wnd) : hdr->wnd;
    if (lost_waiting && recovery_resend(pcb, r, ackno, sacked_total, pipe, peer_wnd)) {
        pcb->rtime = 0;
        /* The timer's wait counts from this resend even when a timer of an earlier episode is
         * still set: that one re-arms itself from here rather than declaring it lost at once. */
        recovery_heard(r, pcb, stack_now_us());
        recovery_timer_arm(r, r->heard_us);
    } else {
        recovery_open_cwnd(pcb, ackno, pipe);
    }
    return ERR_OK;
}

/* lwIP 2.1.3's persist timer splits the head of unsent to fit a small window
 * (tcp_split_unsent_seg()) and ORs the flags of the first part with what it had: a FIN stays on
 * the first part as well as going to the second. The peer then sees the stream end early and
 * the rest arrive after the FIN, a transfer cut short (found by the fault harness,
 * stack_faults_fin_split). A data segment about to leave with a FIN while a later segment waits
 * behind it in unsent is such a first part: its FIN is taken off, for good. */
static void recovery_fin_split(struct tcp_hdr *hdr, const struct tcp_pcb *pcb)
{
    for (const struct tcp_seg *seg = pcb->unsent; seg; seg = seg->next) {
        if (seg->tcphdr != hdr)
            continue;
        if (seg->next && TCP_SEQ_GT(seg_seq(seg->next), seg_seq(seg)))
            TCPH_UNSET_FLAG(hdr, TCP_FIN);
        return;
    }
}

u32_t *stack_recovery_output(struct pbuf *p, struct tcp_hdr *hdr, const struct tcp_pcb *pcb, u32_t *opts)
{
    if (pcb && (TCPH_FLAGS(hdr) & TCP_FIN) && p->tot_len > TCPH_HDRLEN_BYTES(hdr))
        recovery_fin_split(hdr, pcb);
    if (pcb && ext_id_valid && p->tot_len > TCPH_HDRLEN_BYTES(hdr)) {
        /* New data, when none is timed: the next round trip sample (see struct recovery). */
        struct recovery *r = tcp_ext_arg_get(pcb, ext_id);
        uint32_t seq = lwip_ntohl(hdr->seqno);
        if (r && seq == pcb->lastack && pcb->snd_nxt == pcb->lastack && !(pcb->flags & TF_RTO)) {
            /* The first segment after everything was acknowledged: the tail loss probe's wait
             * counts from here. */
            recovery_heard(r, pcb, stack_now_us());
            recovery_timer_arm(r, r->heard_us);
        }
        if (r && !r->probe_us && TCP_SEQ_GEQ(seq, pcb->snd_nxt) && !(pcb->flags & TF_RTO)) {
            r->probe_end = seq + (uint32_t)(p->tot_len - TCPH_HDRLEN_BYTES(hdr));
            r->probe_us = stack_now_us();
            if (!r->probe_us)
                r->probe_us = 1;
        }
    }
    /* Only lwIP's pure ACKs (tcp_send_empty_ack: flags ACK alone, no data, seqno snd_nxt); a
     * keepalive (snd_nxt - 1), a probe (data), a RST or FIN keep theirs. */
    if (!pcb || TCPH_FLAGS(hdr) != TCP_ACK || p->tot_len != TCPH_HDRLEN_BYTES(hdr) ||
        hdr->seqno != lwip_htonl(pcb->snd_nxt))
        return opts;
    u32_t edge = pcb->lastack + pcb->snd_wnd;
    if (TCP_SEQ_GT(pcb->snd_nxt, edge))
        hdr->seqno = lwip_htonl(edge);
    return opts;
}
