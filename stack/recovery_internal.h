/* Shared by the two files of SACK loss recovery only: recovery.c (SACK, the episode, what is
 * resent, the window) and recovery_timer.c (the recovery timer and the tail loss probe, which
 * resend what no ACK will show lost). recovery.c's opening comment says what the whole does. */
#ifndef VPN2SOCKS_STACK_RECOVERY_INTERNAL_H
#define VPN2SOCKS_STACK_RECOVERY_INTERNAL_H

#include <stdint.h>

#include "lwip/priv/tcp_priv.h"

/* Spare bits of tcp_seg.flags (lwIP uses 0x01-0x10). SEG_LOST: declared lost by the recovery
 * timer and not resent since. */
#define SEG_LOST 0x20U
#define SEG_SACKED 0x40U
#define SEG_RESENT 0x80U



/* Per-connection state, allocated at the first ACK of data sent (for the round trip samples)
 * and freed with the pcb. */
struct recovery {
    struct tcp_pcb *pcb;
    int active;
    int resent;        /* this episode resent something... */
    uint32_t point;    /* snd_nxt when the episode began */
    uint32_t mark;     /* ...and this was snd_nxt at its latest resend: what starts there left
                        * after every resent segment */
    /* Round trip, in microseconds (lwIP's own estimate counts 50 ms ticks; the openconnect
     * bench's round trip is a few milliseconds): one segment of new data timed at a time, as
     * lwIP's rttest, none across a resend (Karn). */
    uint32_t rtt_us;   /* the latest sample (RACK's rtt) */
    int rtt_known;
    uint32_t probe_end; /* the timed segment's end... */
    uint64_t probe_us;  /* ...and when it left; 0: none timed */
    /* The recovery timer (recovery_timer()). */
    uint64_t heard_us;  /* the latest resend, or ACK in recovery... */
    uint32_t heard_nxt; /* ...and snd_nxt then: what was sent before it */
    unsigned fired;     /* timer resends since then: the wait doubles with each */
    int armed;
    /* The tail loss probe outside recovery (recovery_tail_probe()): the segment resent, while
     * its answer is awaited. */
    int tlp_out;
    uint32_t tlp_start, tlp_end;
    uint64_t due_us; /* when the timer, while armed, comes due */
    int in_rto;         /* TF_RTO seen (for the count of timeouts) */
    /* Delivery rate in bytes per second, as two halves of a windowed maximum; samples in the
     * current half; the interval being measured (bw_on), from bw_ack at bw_t0_us. */
    uint64_t bw[2];
    unsigned bw_samples;
    int bw_on;
    uint32_t bw_ack;
    uint64_t bw_t0_us;
    /* Minimum RTT in microseconds, as two halves of a windowed minimum (0: no sample), and when
     * the current half began. */
    uint32_t min_rtt[2];
    uint64_t rtt_epoch_us;
};

static inline uint32_t seg_seq(const struct tcp_seg *seg)
{
    return lwip_ntohl(seg->tcphdr->seqno);
}

/* recovery.c, for the timer's resends. */
void recovery_requeue(struct tcp_pcb *pcb, struct tcp_seg *seg);
void recovery_lost_resend(struct tcp_pcb *pcb, struct recovery *r, uint32_t ackno, uint32_t below);
uint32_t recovery_pipe(const struct tcp_pcb *pcb, uint32_t ackno, uint32_t sacked_total, int *lost_waiting);
int recovery_resend(struct tcp_pcb *pcb, struct recovery *r, uint32_t ackno, uint32_t sacked_total,
                    uint32_t pipe, uint32_t peer_wnd);

/* recovery_timer.c. */
/* Something was heard, or resent: the timer's wait counts from now, for what was sent before. */
void recovery_heard(struct recovery *r, const struct tcp_pcb *pcb, uint64_t now);
/* Sets the timer for its wait from r->heard_us (see there). */
void recovery_timer_arm(struct recovery *r, uint64_t now);
/* Stops the timer if set (the connection is going). */
void recovery_timer_stop(struct recovery *r);
/* The peer SACKed the tail loss probe (see there). */
void recovery_probe_answered(struct tcp_pcb *pcb, struct recovery *r, uint32_t ackno);
/* lwIP's retransmission timer fired on a connection with SACK (for the count at exit). */
void recovery_count_timeout(void);

#endif
