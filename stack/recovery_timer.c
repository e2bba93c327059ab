/* The timers of SACK loss recovery (recovery.c's opening comment says what the whole does):
 * the recovery timer, in recovery, and the tail loss probe, outside it. Both resend what no ACK
 * will show lost, before lwIP's retransmission timer would, which waits 200 ms at least and then
 * resends the whole window from the hole. One lwIP timeout per connection serves both, set only
 * while data is unacknowledged, so idle connections cost nothing. */
#include <stdint.h>

#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "stack/internal.h" /* stack_now_us(), stack_tcp_output() */
#include "stack/lwip_hooks.h"
#include "stack/lwip_pin.h" /* lwIP internals: see there */
#include "stack/recovery_internal.h"

/* For the log at exit: resends by the recovery timer, lwIP retransmission timeouts seen on
 * connections with SACK, and tail loss probes. */
static unsigned long recovery_timer_resends, recovery_timeouts, recovery_tail_probes;

static void recovery_timer(void *arg);

/* The recovery timer. recovery_lost_resend() needs SACKs of what left after a resend; when the
 * resend was lost and nothing new could follow it (the window full, or the upload at its end),
 * none come, and the segment waited for lwIP's retransmission timer (150 ms at least, then
 * backed off), which resends the whole window from the hole, SACKed data included. The
 * openconnect upload with cwnd pinned at 250-300 KB (burst losses of 5-20 % in ocserv's socket)
 * spent 80 % of its time in such waits and crawled at 11-22 MiB/s. As RFC 8985 (RACK-TLP): once
 * a round trip and a quarter (its reordering window), plus a millisecond for the timer's
 * granularity, passed since the latest resend or ACK in recovery, every segment sent before that
 * and still neither acknowledged nor SACKed is lost (SEG_LOST), resends included, and the holes
 * go again at once, in order, as the window allows (one at least). Each firing doubles the next
 * wait, up to 64 times; lwIP's retransmission timer, which these resends do not restart, stays
 * the last resort (a peer gone for good). Pinned at 300 KB, the upload then ran at 1.50-1.54 of
 * ocproxy's rate against 0.53-1.41 without, with 10-15 timer resends and 0-1 timeouts per three
 * uploads; unpinned, one timer resend in three.
 * All the holes, not the oldest alone: when a burst took the whole tail of the window, nothing
 * above it is SACKed, so no ACK marks any of it lost, and the data in the network counted the
 * tail and left no room for new data either. Resending the oldest hole alone then moved the
 * upload by one segment per firing (stack_recovery_timer_tail). The likeliest cause of an
 * openconnect upload of the bench that crawled at 1.8 MiB/s (7 MiB in 4 s) in one of 562 runs:
 * its run had 797 timer resends, against about one in three uploads otherwise. */
/* At least 10 ms, as the tail loss probe's wait (below): on two cores with four busy processes the
 * ACK path stalls for a few milliseconds while one of them is off the CPU, and the round trip
 * sample (0.2-2.5 ms) does not show it. With a floor of 2 ms the timer fired in 12 of 33 uploads
 * of the openconnect bench (four quick runs of a debug build), after 2.1-6.3 ms of silence (15 ms
 * once), with nothing waiting in our end of the socketpair; it declared the whole flight lost
 * (115-230 KB) and resent 50-130 segments, and in 6 of the 10 uploads whose counters were
 * logged the peer DSACKed those resends (the originals had arrived). Outside a round where
 * everything was slow, the uploads with a firing ran at 58-107 MiB/s against 95-130 for the 18
 * without (the 58 went on to lwIP's retransmission timeout). With this floor, 4 firings in 18
 * uploads, 1 DSACKed. A true loss now waits up to 8 ms more, under 1 % of an upload that takes
 * 1.1 s; a spurious firing sent a whole window twice into a VPN server's socket already at its
 * limit. */
enum {
    RECOVERY_WAIT_MIN_US = 10000,
    RECOVERY_WAIT_UNKNOWN_US = 20000, /* before the first round trip sample */
    RECOVERY_WAIT_MAX_SHIFT = 6,
};

/* The tail loss probe's wait outside recovery (recovery_tail_probe()): RFC 8985's PTO, two round
 * trips but at least 10 ms, as Linux has it (a receiver that delays its ACKs acknowledges at least
 * every second segment at once). */
enum { RECOVERY_PTO_MIN_US = 10000 };

static uint64_t recovery_pto_us(const struct recovery *r)
{
    uint64_t pto = r->rtt_known ? 2U * (uint64_t)r->rtt_us : RECOVERY_WAIT_UNKNOWN_US;
    return pto < RECOVERY_PTO_MIN_US ? RECOVERY_PTO_MIN_US : pto;
}

static uint64_t recovery_wait_us(const struct recovery *r)
{
    uint64_t wait = r->rtt_known ? (uint64_t)r->rtt_us + r->rtt_us / 4 + 1000 : RECOVERY_WAIT_UNKNOWN_US;
    if (wait < RECOVERY_WAIT_MIN_US)
        wait = RECOVERY_WAIT_MIN_US;
    return wait << (r->fired < RECOVERY_WAIT_MAX_SHIFT ? r->fired : RECOVERY_WAIT_MAX_SHIFT);
}

void recovery_heard(struct recovery *r, const struct tcp_pcb *pcb, uint64_t now)
{
    r->heard_us = now;
    r->heard_nxt = pcb->snd_nxt;
}

/* Sets the timer for its wait from r->heard_us: the recovery timer's in recovery, the tail loss
 * probe's outside it. One set for the probe's longer wait is moved earlier when recovery begins. */
void recovery_timer_arm(struct recovery *r, uint64_t now)
{
    uint64_t due = r->heard_us + (r->active ? recovery_wait_us(r) : recovery_pto_us(r));
    if (r->armed) {
        if (r->due_us <= due)
            return;
        sys_untimeout(recovery_timer, r);
    }
    sys_timeout(due > now ? (u32_t)((due - now + 999) / 1000) : 0, recovery_timer, r);
    r->armed = 1;
    r->due_us = due;
}

/* The recovery timer ran out (above): every segment sent before r->heard_nxt and neither
 * acknowledged nor SACKed is lost. */
static void recovery_mark_overdue(struct tcp_pcb *pcb, struct recovery *r)
{
    for (struct tcp_seg *seg = pcb->unacked; seg; seg = seg->next) {
        uint32_t start = seg_seq(seg);
        if (TCP_SEQ_GEQ(start, r->heard_nxt))
            break;
        if (TCP_SEQ_LT(start, pcb->lastack) || (seg->flags & (SEG_SACKED | SEG_RESENT | SEG_LOST)))
            continue;
        seg->flags |= SEG_LOST;
        if (TCP_SEQ_GEQ(start, r->point))
            r->point = pcb->snd_nxt; /* sent after the episode began: it runs until this is back */
    }
}

/* The tail loss probe (RFC 8985's TLP), outside recovery: nothing has been heard for a PTO
 * (recovery_pto_us()) while two segments or more are unacknowledged, so the whole tail of the
 * window, or all of it, was lost, and no ACK will come to show it; lwIP's retransmission timer
 * would wait 200 ms at least and then resend the whole window from the hole. The last segment
 * sent that is not SACKed goes again instead (when only the last one or two arrived, the SACK
 * that says so is too little to show the holes below lost, and nothing more comes either); the
 * peer SACKs it, which shows everything before it and neither acknowledged nor SACKed lost
 * (recovery_probe_answered()), and SACK recovery takes over. One probe
 * per silence; lwIP's timer stays the last resort. A single segment in flight is left to lwIP's
 * timer (the peer may be delaying its ACK), and so is a connection without a round trip sample
 * yet. Why: in the openconnect upload of the bench (ocserv's socket overflowing in bursts), 5 of
 * 28 uploads of 128 MiB had lwIP retransmission timeouts outside recovery (a debug build's log):
 * 18-202 KB in flight and nothing heard for 100-120 ms before the timer, once with only the
 * window's last segment SACKed; a timeout costs ~0.2 s of an upload that takes 1.1-1.2 s. */
static void recovery_tail_probe(struct recovery *r, struct tcp_pcb *pcb, uint64_t now)
{
    if (now - r->heard_us < recovery_pto_us(r)) {
        recovery_timer_arm(r, now); /* an ACK came since it was set */
        return;
    }
    if (r->tlp_out || !r->rtt_known || !pcb->unacked->next ||
        (pcb->unsent && TCP_SEQ_LT(seg_seq(pcb->unsent), pcb->snd_nxt)))
        return;
    struct tcp_seg **link = NULL;
    for (struct tcp_seg **at = &pcb->unacked; *at; at = &(*at)->next)
        if (!((*at)->flags & (SEG_SACKED | SEG_RESENT)))
            link = at;
    if (!link)
        return;
    struct tcp_seg *last = *link;
    uint32_t start = seg_seq(last), end = start + TCP_TCPLEN(last);
    if (TCP_SEQ_LT(start, pcb->lastack) || last->p->ref != 1 || end - pcb->lastack > pcb->snd_wnd)
        return;
    *link = last->next; /* out of unacked, into unsent: lwIP sends it as the window allows */
    last->flags = (u8_t)((last->flags | SEG_RESENT) & ~SEG_LOST);
    recovery_requeue(pcb, last);
    if (pcb->cwnd < end - pcb->lastack)
        pcb->cwnd = (tcpwnd_size_t)(end - pcb->lastack);
    pcb->rttest = 0; /* Karn: no RTT sample across a retransmission */
    r->probe_us = 0;
    r->tlp_out = 1;
    r->tlp_start = start;
    r->tlp_end = end;
    recovery_tail_probes++;
    stack_tcp_output(pcb);
}

/* The peer SACKed the tail loss probe: what was sent before it, at least a PTO earlier, and is
 * neither acknowledged nor SACKed is lost. */
void recovery_probe_answered(struct tcp_pcb *pcb, struct recovery *r, uint32_t ackno)
{
    for (struct tcp_seg *seg = pcb->unacked; seg; seg = seg->next) {
        uint32_t start = seg_seq(seg);
        if (TCP_SEQ_GEQ(start, r->tlp_start))
            break;
        if (TCP_SEQ_GEQ(start, ackno) && !(seg->flags & (SEG_SACKED | SEG_RESENT)))
            seg->flags |= SEG_LOST;
    }
    r->tlp_out = 0;
}

static void recovery_timer(void *arg)
{
    struct recovery *r = arg;
    struct tcp_pcb *pcb = r->pcb;
    r->armed = 0;
    if ((pcb->flags & TF_RTO) || !pcb->unacked)
        return;
    uint64_t now = stack_now_us();
    if (!r->active) {
        recovery_tail_probe(r, pcb, now);
        return;
    }
    if (now - r->heard_us < recovery_wait_us(r)) {
        recovery_timer_arm(r, now); /* an ACK came since it was set */
        return;
    }
    recovery_lost_resend(pcb, r, pcb->lastack, pcb->snd_nxt);
    recovery_mark_overdue(pcb, r);
    r->probe_us = 0;
    /* A resend that could not leave yet (the peer's window) still waits in pcb->unsent. */
    if (!pcb->unsent || TCP_SEQ_GEQ(seg_seq(pcb->unsent), pcb->snd_nxt)) {
        uint32_t sacked_total = 0;
        for (struct tcp_seg *seg = pcb->unacked; seg; seg = seg->next)
            if ((seg->flags & SEG_SACKED) && TCP_SEQ_GT(seg_seq(seg) + TCP_TCPLEN(seg), pcb->lastack))
                sacked_total += TCP_TCPLEN(seg);
        int lost_waiting = 0;
        uint32_t pipe = recovery_pipe(pcb, pcb->lastack, sacked_total, &lost_waiting);
        int sent = lost_waiting ? recovery_resend(pcb, r, pcb->lastack, sacked_total, pipe, pcb->snd_wnd) : 0;
        if (sent) {
            recovery_timer_resends += (unsigned long)sent;
            stack_tcp_output(pcb);
        }
    }
    recovery_heard(r, pcb, now);
    r->fired++;
    recovery_timer_arm(r, now);
}

void recovery_timer_stop(struct recovery *r)
{
    if (r->armed)
        sys_untimeout(recovery_timer, r);
    r->armed = 0;
}

void recovery_count_timeout(void)
{
    recovery_timeouts++;
}

void stack_recovery_timer_stats(unsigned long *timer_resends, unsigned long *timeouts, unsigned long *tail_probes)
{
    *timer_resends = recovery_timer_resends;
    *timeouts = recovery_timeouts;
    *tail_probes = recovery_tail_probes;
}
