/* Out-of-order data kept as few segments (from the TCP input hook, stack.c).
 *
 * lwIP keeps what arrives past a hole on pcb->ooseq, one tcp_seg per segment received, and for
 * every further out-of-order segment walks that list twice from its head: to find where the
 * segment goes (nearly always the end) and to add up the list against TCP_OOSEQ_MAX_BYTES and
 * TCP_OOSEQ_MAX_PBUFS; when the hole fills it chains each kept segment onto what goes to the
 * application, walking that chain from its start each time. With a loss on a long path (thousands
 * of segments in flight, all kept until the resent one arrives a round trip later) that is
 * quadratic: in an openconnect download at 30 ms RTT those walks (tcp_receive, pbuf_cat) took
 * 62 % of our CPU, the pair to openconnect then filled while we were busy, and openconnect's DTLS
 * socket dropped 2.5 times the kernel TUN's packets (bench/RESULTS.md).
 *
 * So before lwIP takes a segment, neighbours on ooseq that meet end to start are joined into one
 * tcp_seg (their pbufs chained, up to 0xFFFF bytes: a tcp_seg's len and a pbuf's tot_len are 16
 * bits), which keeps the list a few entries per hole; lwIP's limits still count every pbuf, so
 * memory stays bounded as before (and segments below STACK_OOSEQ_JOIN_MIN are left alone). A
 * joined segment changes one thing in lwIP's handling: a segment that starts inside one (a resend
 * of data we hold) makes lwIP cut the joined segment at its start and keep the newcomer, which
 * gives back whatever the joined segment held past the newcomer's end, data already reported in
 * SACK blocks. A segment that brings nothing new is therefore dropped here and answered with an
 * immediate ACK, as lwIP answers any out-of-order segment; its ACK field and window go unread, as
 * for any segment lost on the way (the peer's next carries them). */
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h" /* struct tcp_seg, tcp_seg_free(), TCP_SEQ_*, tcp_ack_now() */
#include "lwip/tcp.h"
#include "stack/internal.h"
#include "stack/lwip_hooks.h"
#include "stack/lwip_pin.h" /* lwIP internals: see there */

/* The most a joined segment holds (16-bit lengths), and the least each part must hold: segments
 * of at least TCP_OOSEQ_MAX_BYTES / TCP_OOSEQ_MAX_PBUFS bytes never reach lwIP's pbuf limit
 * within a window, so lwIP never cuts a joined one for it (which would give back data already
 * SACKed); a stream of small segments is kept as lwIP keeps it. */
enum {
    STACK_OOSEQ_JOIN_MAX = 0xFFFF,
    STACK_OOSEQ_JOIN_MIN = TCP_OOSEQ_MAX_BYTES / TCP_OOSEQ_MAX_PBUFS,
};

static int stack_ooseq_plain(const struct tcp_seg *s)
{
    return !(TCPH_FLAGS(s->tcphdr) & (TCP_SYN | TCP_FIN)) && s->len >= STACK_OOSEQ_JOIN_MIN && s->p &&
           s->p->tot_len == s->len;
}

/* a and its successor b: one segment of data, end to start, with room for both. */
static int stack_ooseq_joinable(const struct tcp_seg *a, const struct tcp_seg *b)
{
    return stack_ooseq_plain(a) && stack_ooseq_plain(b) && a->tcphdr->seqno + a->len == b->tcphdr->seqno &&
           (u32_t)a->len + b->len <= STACK_OOSEQ_JOIN_MAX;
}

int stack_tcp_ooseq_input(struct tcp_pcb *pcb, const struct tcp_hdr *hdr, const struct pbuf *p)
{
    struct tcp_seg *a = pcb->ooseq;
    while (a && a->next) {
        struct tcp_seg *b = a->next;
        if (!stack_ooseq_joinable(a, b)) {
            a = b;
            continue;
        }
        pbuf_cat(a->p, b->p); /* b's pbufs now belong to a */
        a->len = (u16_t)(a->len + b->len);
        a->next = b->next;
        b->p = NULL;
        b->next = NULL;
        tcp_seg_free(b);
    }

    /* Data we already hold in full: nothing for lwIP to keep, only to acknowledge. */
    u32_t len = p->tot_len;
    if (len == 0 || (TCPH_FLAGS(hdr) & (TCP_SYN | TCP_FIN | TCP_RST)))
        return 0;
    u32_t left = hdr->seqno, right = hdr->seqno + len;
    for (const struct tcp_seg *s = pcb->ooseq; s; s = s->next) {
        u32_t sl = s->tcphdr->seqno, sr = sl + s->len;
        if (TCP_SEQ_GEQ(sl, right))
            break; /* the list is in order: nothing further can hold it */
        if (TCP_SEQ_LEQ(sl, left) && TCP_SEQ_LEQ(right, sr)) {
            tcp_ack_now(pcb);
            stack_tcp_output(pcb);
            return 1;
        }
    }
    return 0;
}
