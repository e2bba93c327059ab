/* lwIP's tcp_output() without its walk of the whole unacknowledged queue.
 *
 * Before it sends, lwIP 2.1.3's tcp_output() finds the last segment of pcb->unacked by walking
 * the queue from its head, and it runs after every segment lwIP takes in: during an upload, once
 * per ACK from the peer, over every segment in flight. Against an OpenVPN 2.4.12 server (mbed
 * TLS), whose kernel acknowledges every second segment (~300 ACKs per MiB), that walk was 77 % of
 * tcp_output()'s samples and 4.9 % of vpn2socks's CPU in a 12 s UDP AES-256-GCM upload (perf);
 * with this file tcp_output() fell from 6.3 % to 1.7 % of the samples, and the client's CPU per
 * GiB uploaded from 5.03-5.49 s to 5.06-5.18 in alternating runs (bench/run.sh --quick, 1 GiB
 * transfers of 10 s; the machine's noise is of that order, the profile is the firmer figure).
 *
 * cmake/lwip.cmake compiles every lwIP file but tcp_out.c with tcp_output renamed to
 * stack_tcp_output, so lwIP's calls and ours come here; this calls lwIP's own tcp_output() with
 * pcb->unacked pointing, for the length of the call, at the last segment the queue had when we
 * last saw it. lwIP then walks from there (the segments it sent since, if any) and appends its new
 * segments behind the true end, as it would have from the head. Nothing else in tcp_output()
 * reads pcb->unacked but to compare it with NULL, except the path that slots a resent segment
 * in before the end, which is never taken here: only while no unsent segment lies below snd_nxt.
 *
 * The remembered segment (a few pcbs at a time) must still be on this pcb's unacked queue:
 * - it is alive: stack_mem_free() (sys.c), through which lwIP frees every segment and pcb, makes
 *   us forget a segment or pcb it frees, so no pointer here is ever stale;
 * - it is on the queue, not on unsent: a segment goes back to unsent only to be resent (lwIP's
 *   retransmission timer, its fast retransmit, recovery.c), which leaves it below snd_nxt on
 *   unsent, or rewinds snd_nxt below its end until it was resent. So we use it only while
 *   snd_nxt is still its end and the first unsent segment starts at or above snd_nxt; otherwise
 *   the queue is walked once, as lwIP would have. */
#include <stdint.h>
#include <stdlib.h>

#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"
#include "stack/internal.h"
#include "stack/lwip_pin.h" /* lwIP internals: see there */

enum {
    /* pcbs remembered at once; another upload beside them costs its walks as before. */
    STACK_TCP_TAILS = 4,
};

struct stack_tcp_tail {
    const struct tcp_pcb *pcb;
    struct tcp_seg *seg; /* the last segment of pcb->unacked when last seen */
    u32_t end;           /* its sequence number plus its length */
};

static struct stack_tcp_tail tails[STACK_TCP_TAILS];
static unsigned tails_next;
static int tails_verify;

void stack_tcp_output_verify(int on)
{
    tails_verify = on;
}

void stack_tcp_output_freed(const void *p, size_t len)
{
    for (unsigned i = 0; i < STACK_TCP_TAILS; i++) {
        struct stack_tcp_tail *t = &tails[i];
        uintptr_t at = (uintptr_t)p;
        if (t->pcb && ((uintptr_t)t->pcb - at < len || (uintptr_t)t->seg - at < len))
            t->pcb = NULL;
    }
}

static u32_t stack_tcp_seg_end(const struct tcp_seg *seg)
{
    return lwip_ntohl(seg->tcphdr->seqno) + TCP_TCPLEN(seg);
}

static struct stack_tcp_tail *stack_tcp_tail_of(const struct tcp_pcb *pcb)
{
    for (unsigned i = 0; i < STACK_TCP_TAILS; i++)
        if (tails[i].pcb == pcb)
            return &tails[i];
    struct stack_tcp_tail *t = &tails[tails_next];
    tails_next = (tails_next + 1) % STACK_TCP_TAILS;
    t->pcb = NULL;
    return t;
}

/* Tests: the remembered segment is on the queue (an abort otherwise, which the test sees). */
static void stack_tcp_tail_check(const struct tcp_pcb *pcb, const struct tcp_seg *tail)
{
    const struct tcp_seg *s = pcb->unacked;
    while (s && s != tail)
        s = s->next;
    if (s != tail)
        abort();
}

err_t stack_tcp_output(struct tcp_pcb *pcb)
{
    /* (lwIP asserts that no listening pcb, a shorter struct, ever gets here.) */
    if (pcb->state == LISTEN || tcp_input_pcb == pcb)
        return tcp_output(pcb);
    struct tcp_seg *unsent = pcb->unsent, *head = pcb->unacked;
    /* lwIP walks only when it is about to send behind unacknowledged data. */
    if (!unsent || !head)
        return tcp_output(pcb);
    u32_t wnd = LWIP_MIN(pcb->snd_wnd, pcb->cwnd);
    u32_t first = lwip_ntohl(unsent->tcphdr->seqno);
    /* The first segment does not fit the window (lwIP returns before its walk), or a resent one
     * waits (it may go in before the end of the queue). */
    if (first - pcb->lastack + unsent->len > wnd || TCP_SEQ_LT(first, pcb->snd_nxt))
        return tcp_output(pcb);

    struct stack_tcp_tail *t = stack_tcp_tail_of(pcb);
    struct tcp_seg *tail;
    if (t->pcb == pcb && t->end == pcb->snd_nxt) {
        tail = t->seg;
        if (tails_verify)
            stack_tcp_tail_check(pcb, tail);
    } else {
        for (tail = head; tail->next; tail = tail->next)
            ;
    }
    pcb->unacked = tail;
    err_t e = tcp_output(pcb);
    pcb->unacked = head;
    /* What it sent went behind tail; nothing it does frees a segment of unacked. */
    while (tail->next)
        tail = tail->next;
    t->pcb = pcb;
    t->seg = tail;
    t->end = stack_tcp_seg_end(tail);
    return e;
}
