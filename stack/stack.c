/* lwIP on the libuv loop: initialisation, the netif over the tunnel, the timer that runs lwIP's
 * timeouts, and the first look at every packet coming out of the tunnel. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <uv.h>

#include "base/bytes.h"
#include "base/log.h"
#include "lwip/init.h"
#include "lwip/ip.h"
#include "lwip/ip4_frag.h"
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/sys.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "stack/internal.h"
#include "stack/lwip_hooks.h"
#include "stack/lwip_pin.h" /* lwIP internals: see there */
#include "stack/packet.h"
#include "stack/tcp_internal.h"
#include "stack/timers.h"
#include "tunnel/tunnel.h"

/* lwIP has global state, so there is one stack per process. */
static int stack_exists;

/* --- lwIP's TCP input hook --- */

/* The MSS option, before lwIP reads it (in place: lwIP checked the sum before the hook, and the
 * segment is the packet's own, writable; the options lie after the header, opt1len bytes of them,
 * and in a chained pbuf the rest at opt2).
 *
 * Any segment but a SYN in SYN_SENT or LISTEN: the option is turned into NOPs. lwIP 2.1.3's
 * tcp_parseopt() takes it from every segment of a connection, before anything checks the segment
 * (its sequence number included), and as the peer gave it, without the tunnel's MTU
 * (tcp_eff_send_mss() runs on the handshake only). So an ACK carrying an MSS option of 64 (from
 * the peer, or forged by anyone who knows the ports) made the next write abort the process on
 * lwIP's "mss_local is too small" assertion, and one of 1460 made segments larger than the
 * tunnel's MTU, lost for good. RFC 9293 3.7.1 sends the option on SYNs only, so it counts on
 * the SYN-ACK of our connects and on the SYN a listener (-R, SOCKS BIND) takes, nowhere else,
 * not on a SYN repeated once the first was taken (SYN_RCVD) either.
 *
 * The SYN and SYN-ACK: an MSS below STACK_TCP_MSS_FLOOR is raised to it. lwIP takes any MSS
 * from 1 up, and a host on the VPN side that announced 1 or 8 bytes had every upload to it cut
 * into segments of that size, a packet and an lwIP segment for each few bytes of a send buffer
 * of 4 MiB (the CPU and memory cost of CVE-2019-11479, which Linux answered with a floor of its
 * own, tcp_min_snd_mss). The tunnel's MTU still caps it (tcp_eff_send_mss() runs after), and so
 * does the path MTU of an IPv6 packet too big (pmtu.c, never below 1280 - 60). */
static void stack_tcp_options_mss(struct tcp_hdr *hdr, u16_t optlen, u16_t opt1len, const u8_t *opt2, int syn)
{
    u8_t *first = (u8_t *)hdr + TCP_HLEN, *rest = (u8_t *)(uintptr_t)opt2;
    u16_t n1 = rest ? opt1len : optlen;
#define STACK_OPT(i) (*((i) < n1 ? &first[(i)] : &rest[(i) - n1]))
    for (u16_t i = 0; i < optlen;) {
        u8_t kind = STACK_OPT(i);
        if (kind == 0)
            return;
        if (kind == 1) {
            i++;
            continue;
        }
        if (i + 1 >= optlen || STACK_OPT(i + 1) < 2)
            return; /* lwIP stops there too */
        u16_t len = STACK_OPT(i + 1);
        if (kind == 2 && i + len <= optlen) {
            if (!syn) {
                for (u16_t k = 0; k < len; k++)
                    STACK_OPT(i + k) = 1;
            } else if (len == 4) {
                /* 0 stays: lwIP reads it as no option (TCP_MSS, then the MTU's). */
                u16_t mss = (u16_t)(STACK_OPT(i + 2) << 8 | STACK_OPT(i + 3));
                if (mss != 0 && mss < STACK_TCP_MSS_FLOOR) {
                    STACK_OPT(i + 2) = (u8_t)(STACK_TCP_MSS_FLOOR >> 8);
                    STACK_OPT(i + 3) = (u8_t)(STACK_TCP_MSS_FLOOR & 0xFF);
                }
            }
        }
        i = (u16_t)(i + len);
    }
#undef STACK_OPT
}

/* Challenge ACKs (RFC 5961: the answer to a RST or SYN inside the window, and to an ACK field no
 * peer could send) are limited to about STACK_CHALLENGE_ACKS a second in all, as RFC 5961 7
 * asks and Linux does (tcp_challenge_ack_limit): lwIP 2.1.3 answers every one, so whoever can
 * send into the tunnel made us send an ACK per forged segment. The budget of each second is drawn
 * at random between half and one and a half times the figure, as Linux draws it since
 * CVE-2016-5696: a fixed budget shared by every connection let an attacker who holds one of them
 * count the challenge ACKs it gets while forging segments for another, and so learn whether that
 * other connection exists and where its window lies. */
enum { STACK_CHALLENGE_ACKS = 1000 };
static u32_t challenge_second;   /* sys_now() when this second's budget was drawn */
static unsigned challenge_left;  /* challenge ACKs left in it */
static int challenge_drawn;

/* 1 when one more challenge ACK may leave now, counting it. */
static int stack_tcp_challenge_allowed(void)
{
    u32_t now = sys_now();
    if (!challenge_drawn || now - challenge_second >= 1000) {
        challenge_drawn = 1;
        challenge_second = now;
        challenge_left = STACK_CHALLENGE_ACKS / 2 + stack_random() % STACK_CHALLENGE_ACKS;
    }
    if (challenge_left == 0)
        return 0;
    challenge_left--;
    return 1;
}

/* 1 when lwIP would answer the segment with a challenge ACK (tcp_process() in a synchronized
 * state): a RST inside the receive window but not at its left edge (RFC 5961 3.2), any SYN
 * (RFC 5961 4.2). lwIP does nothing else with such a segment, so dropping it sends nothing. */
static int stack_tcp_challenges(const struct tcp_pcb *pcb, const struct tcp_hdr *hdr)
{
    if (pcb->state < ESTABLISHED || pcb->state == TIME_WAIT)
        return 0;
    u32_t seqno = hdr->seqno; /* in host order: tcp_input() turned it before the hook */
    if (TCPH_FLAGS(hdr) & TCP_RST)
        return seqno != pcb->rcv_nxt && TCP_SEQ_BETWEEN(seqno, pcb->rcv_nxt, pcb->rcv_nxt + pcb->rcv_wnd);
    return (TCPH_FLAGS(hdr) & TCP_SYN) != 0;
}

/* A segment of a synchronized connection whose ACK field no peer of it could send: 1 when lwIP
 * must drop it. lwIP 2.1.3 answers an ACK of data it never sent with an ACK, as RFC 9293 3.10.7.4
 * says, but then goes on and takes the segment's data; one that acknowledges data from further
 * back than the peer's largest window (RFC 5961 5.2) it takes without a word, and one without the
 * ACK flag too. So anyone who guessed the ports and a sequence number inside our receive window
 * (4 MiB: one try in a thousand) put bytes into the stream whatever ACK field they wrote. Here
 * the first two are answered with an ACK and dropped, the third only dropped. snd_nxt never moves
 * back in lwIP (a timeout resends from lastack but keeps it), so it is the most ever sent. RST
 * and SYN are left to lwIP, which checks their sequence number first (RFC 5961 3 and 4). */
static int stack_tcp_ack_unacceptable(struct tcp_pcb *pcb, const struct tcp_hdr *hdr)
{
    if (pcb->state < ESTABLISHED || pcb->state == TIME_WAIT || (TCPH_FLAGS(hdr) & (TCP_RST | TCP_SYN)))
        return 0;
    if (!(TCPH_FLAGS(hdr) & TCP_ACK))
        return 1;
    if (TCP_SEQ_LEQ(hdr->ackno, pcb->snd_nxt) && TCP_SEQ_GEQ(hdr->ackno, pcb->lastack - pcb->snd_wnd_max))
        return 0;
    if (stack_tcp_challenge_allowed()) {
        tcp_ack_now(pcb);
        stack_tcp_output(pcb);
    }
    return 1;
}

/* 1 when lwIP put the IPv4 segment together from fragments and kept some past the last one (see
 * stack_udp_length_ok() in internal.h): its data runs past what the reassembled IP header's
 * length says, and whoever guessed a fragmented segment's identification could append bytes to
 * the stream, the checksum made up for. A whole packet was cut to its IP length by ip4_input().
 * Not over IPv6: after reassembly ip6_current_header() is still the last fragment's, and a TCP
 * sender there sizes its segments to the path and never fragments them. */
static int stack_tcp_past_ip_end(u16_t optlen, const struct pbuf *p)
{
    if (ip_current_is_v6())
        return 0;
    const struct ip_hdr *ip = ip4_current_header();
    return (size_t)lwip_ntohs(IPH_LEN(ip)) != (size_t)IPH_HL_BYTES(ip) + TCP_HLEN + optlen + p->tot_len;
}

/* After the MSS option (above): data at the left edge of a hole, which fills it or part of it, is
 * acknowledged at once (RFC 5681 4.2); lwIP would hold the ACK for a whole hole filled to its next
 * fast timer tick when the segment is an odd one, and the sender's recovery waits for that ACK.
 * Any other segment while data waits past a hole: the waiting segments are joined first
 * (tcp_ooseq.c), and a segment with nothing new is dropped there. */
err_t stack_hook_tcp_input(struct tcp_pcb *pcb, struct tcp_hdr *hdr, u16_t optlen, u16_t opt1len,
                           const u8_t *opt2, struct pbuf *p)
{
    if (stack_tcp_past_ip_end(optlen, p))
        return ERR_MEM;
    if (optlen > 0)
        stack_tcp_options_mss(hdr, optlen, opt1len, opt2,
                              (pcb->state == SYN_SENT || pcb->state == LISTEN) && (TCPH_FLAGS(hdr) & TCP_SYN));
    /* Before lwIP stamps the pcb with tcp_ticks (timers.c). */
    stack_timers_tcp_touched();
    if (stack_tcp_ack_unacceptable(pcb, hdr))
        return ERR_MEM;
    if (stack_tcp_challenges(pcb, hdr) && !stack_tcp_challenge_allowed())
        return ERR_MEM;
    if ((pcb->state == ESTABLISHED || pcb->state == FIN_WAIT_1 || pcb->state == FIN_WAIT_2) && pcb->ooseq) {
        if (p->tot_len > 0 && hdr->seqno == pcb->rcv_nxt)
            tcp_ack_now(pcb);
        else if (stack_tcp_ooseq_input(pcb, hdr, p))
            return ERR_MEM;
    }
    return stack_recovery_input(pcb, hdr, optlen, opt1len, opt2);
}

/* --- timers: every lwIP timeout runs from one uv timer --- */

static void stack_timer_cb(uv_timer_t *t)
{
    struct stack *s = t->data;
    s->timer_due = 0;
    sys_check_timeouts();
}

static void stack_acks_flush(struct stack *s);
static void stack_ack_release(struct stack *s, struct stack_held_ack *h, int send);

/* Runs before the loop blocks: segments received since the check (by timers, pending callbacks)
 * go to the applications, and packets handled may have added lwIP timeouts (a retransmission, a
 * delayed ACK) or woken lwIP's TCP tick (timers.c), so the timer is re-armed for the earliest
 * one, and the look for zero-window probes (tcp_send.c), which stops while the tick sleeps, runs
 * again with it. */
static void stack_prepare_cb(uv_prepare_t *p)
{
    struct stack *s = p->data;
    /* What was gathered goes to the applications in one write each. */
    stack_tcp_flush_all(s);
    stack_tcp_fin_pump(s);
    stack_tcp_ack_rides(s);
    stack_tcp_refills(s);
    /* ACKs held by timers' and earlier callbacks' output must not wait for the poll. */
    stack_acks_flush(s);
    if (!s->probe_look && stack_timers_tcp_awake() && !v2s_list_empty(&s->conns))
        stack_tcp_probe_look_start(s);
    u32_t sleep = sys_timeouts_sleeptime();
    if (sleep == SYS_TIMEOUTS_SLEEPTIME_INFINITE) {
        if (s->timer_due) {
            uv_timer_stop(&s->timer);
            s->timer_due = 0;
        }
        return;
    }
    uint32_t due = sys_now() + sleep;
    if (due == 0)
        due = 1;
    if (s->timer_due == due)
        return;
    s->timer_due = due;
    uv_timer_start(&s->timer, stack_timer_cb, sleep, 0);
}

/* --- the netif --- */

/* Hands one IP packet to the tunnel. A chained pbuf is copied into one buffer first; the tunnel
 * copies again only if it has to queue. */
err_t stack_send(struct stack *s, const uint8_t *pkt, size_t len)
{
    int rc = tunnel_send(s->tunnel, pkt, len);
    if (rc < 0) {
        s->send_failed = 1;
        return ERR_IF;
    }
    if (rc > 0)
        s->tunnel_congested = 1;
    return ERR_OK;
}

/* ACK thinning. lwIP acknowledges every second segment, so a loop iteration that takes in a
 * burst of segments for one connection (a recvmmsg batch, a coalesced TCP read) produces a run
 * of pure ACKs, each only superseding the one before; each costs an encryption here and, worse,
 * a decryption and a TUN write in the VPN server's single thread, which is also the one sending
 * us the data. So a pure ACK is held until the end of the iteration and replaced by a later one
 * of the same connection that acknowledges more. Never thinned, to keep their meaning for the
 * sender: anything with data or flags besides ACK, and duplicate ACKs without SACK blocks among
 * themselves (a later ACK with the same number sends the held one first, so a sender without
 * SACK counts every duplicate). A held duplicate ACK is replaced only by one with a higher
 * number, that is once the hole it reported is filled; then it has nothing left to say (a
 * partial ACK that leaves another hole is itself what a NewReno sender acts on). A held ACK
 * always leaves before any later packet of its connection.
 *
 * SACK compression. While data is missing lwIP sends a duplicate ACK with SACK blocks for every
 * segment that arrives beyond the hole, one per loop iteration when the server sends one segment
 * per datagram (an OpenVPN 2.4 server). In a 100 MiB download from a 2.4.12 server whose TUN
 * queue overflowed 559 times, those were 35 per hole and 39 % of all we sent. Each says only
 * what the last said plus one more SACKed segment, so, as Linux compresses them: for one
 * acknowledgement number, the first STACK_ACK_DUPS_AT_ONCE duplicates leave at once (enough for
 * a sender that counts duplicates to retransmit fast); later ones are held, each replacing the
 * one before (its blocks are the newest), and the held one leaves after STACK_ACK_SACK_EVERY of
 * them, after STACK_ACK_SACK_DELAY_MS, or before any other packet of its connection; an ACK with
 * a higher number (the hole filled, or partly) replaces it and leaves at once. Only ACKs with
 * SACK blocks are compressed: a sender that gets them keeps a scoreboard and does not count
 * ACKs. In the lab's UDP downloads from that server, one in 4 cut our datagrams per 100 MiB
 * from 47-50 to 35-38 thousand and one in 8 to 34-35 (the stock client's: 28-36), and the
 * server's CPU from 18.5-25.6 to 15.2-17.9 and 14.2-15.7 s/GiB. */
enum {
    STACK_ACK_SLOTS = 64,
    STACK_ACK_MAX = 128,  /* IPv6 + TCP with timestamps is 72 bytes; SACK blocks add up to 36 */
    STACK_ACK_DUPS_AT_ONCE = 3,
    STACK_ACK_SACK_EVERY = 8,
    STACK_ACK_SACK_DELAY_MS = 1,
};

struct stack_held_ack {
    struct packet_tcp_info tcp;
    uint16_t len;
    uint8_t sack;   /* a compressed duplicate ACK with SACK blocks: not flushed with the iteration */
    uint8_t merged; /* duplicates it stands for */
    uint8_t pkt[STACK_ACK_MAX];
};

/* For each connection that sent an ACK with SACK blocks lately, its number and how many of its
 * duplicates left; a table of the last few, replaced in turn (a connection pushed out only
 * starts counting again). One stack per process, as for lwIP. */
struct stack_ack_dup {
    struct packet_tcp_info tcp;
    unsigned sent;
};
static struct stack_ack_dup stack_ack_dups[STACK_ACK_SLOTS];
static unsigned stack_ack_dups_next;
static int stack_ack_timer_armed;

static struct stack_ack_dup *stack_ack_dup_find(const struct packet_tcp_info *tcp)
{
    for (unsigned i = 0; i < STACK_ACK_SLOTS; i++) {
        struct stack_ack_dup *d = &stack_ack_dups[i];
        if (d->tcp.key_len == tcp->key_len && memcmp(d->tcp.key, tcp->key, tcp->key_len) == 0)
            return d;
    }
    struct stack_ack_dup *d = &stack_ack_dups[stack_ack_dups_next++ % STACK_ACK_SLOTS];
    d->tcp = *tcp;
    d->sent = 0;
    return d;
}

/* Sends the held ACKs (those with SACK blocks too when all is set) and drops their slots. */
static void stack_acks_send(struct stack *s, int all)
{
    unsigned kept = 0, n = s->n_acks;
    s->n_acks = 0;
    for (unsigned i = 0; i < n; i++) {
        struct stack_held_ack *h = &s->acks[i];
        if (h->sack && !all) {
            if (kept != i)
                s->acks[kept] = *h;
            kept++;
            continue;
        }
        if (h->sack)
            stack_ack_dup_find(&h->tcp)->sent++;
        stack_send(s, h->pkt, h->len);
    }
    s->n_acks = kept;
}

static void stack_acks_flush(struct stack *s)
{
    stack_acks_send(s, 0);
    uv_check_stop(&s->check);
}

/* STACK_ACK_SACK_DELAY_MS after the first compressed duplicate ACK was held. */
static void stack_acks_timeout(void *arg)
{
    stack_ack_timer_armed = 0;
    stack_acks_send(arg, 1);
}

void stack_ack_forget(struct stack *s, const struct packet_tcp_info *tcp)
{
    for (unsigned i = 0; i < s->n_acks; i++) {
        struct stack_held_ack *h = &s->acks[i];
        if (!h->sack && h->tcp.ackno == tcp->ackno && h->tcp.key_len == tcp->key_len &&
            memcmp(h->tcp.key, tcp->key, tcp->key_len) == 0) {
            stack_ack_release(s, h, 0);
            return;
        }
    }
}

/* Forgets every held ACK (the tunnel is down). */
static void stack_acks_drop(struct stack *s)
{
    s->n_acks = 0;
    if (stack_ack_timer_armed)
        sys_untimeout(stack_acks_timeout, s);
    stack_ack_timer_armed = 0;
}

/* Right after the poll phase, where the tunnel's packets were read: the segments they carried go
 * to the applications first, so that an answer does not wait behind the encryption and sending of
 * our ACK for it, then the ACKs held in this iteration leave (with any a window update added). */
static void stack_check_cb(uv_check_t *c)
{
    struct stack *s = c->data;
    stack_tcp_flush_all(s);
    stack_tcp_ack_rides(s);
    stack_tcp_refills(s);
    stack_acks_flush(s);
}

void stack_check_arm(struct stack *s)
{
    uv_check_start(&s->check, stack_check_cb);
}

/* Takes slot h out, sending it first if send is set. */
static void stack_ack_release(struct stack *s, struct stack_held_ack *h, int send)
{
    if (send) {
        if (h->sack)
            stack_ack_dup_find(&h->tcp)->sent++;
        stack_send(s, h->pkt, h->len);
    }
    *h = s->acks[--s->n_acks];
}

static struct stack_held_ack *stack_ack_hold(struct stack *s, const struct packet_tcp_info *tcp,
                                             const uint8_t *pkt, size_t len, int sack)
{
    struct stack_held_ack *h = &s->acks[s->n_acks++];
    h->tcp = *tcp;
    h->sack = (uint8_t)sack;
    h->merged = 1;
    memcpy(h->pkt, pkt, len);
    h->len = (uint16_t)len;
    if (!sack) {
        stack_check_arm(s);
    } else if (!stack_ack_timer_armed) {
        stack_ack_timer_armed = 1;
        sys_timeout(STACK_ACK_SACK_DELAY_MS, stack_acks_timeout, s);
    }
    return h;
}

/* An ACK with SACK blocks: sent at once, or held as a compressed duplicate (see above). held is
 * the connection's held ACK, if any. */
static err_t stack_ack_sack(struct stack *s, struct stack_held_ack *held, const struct packet_tcp_info *tcp,
                            const uint8_t *pkt, size_t len)
{
    if (held && held->sack && held->tcp.ackno == tcp->ackno) {
        memcpy(held->pkt, pkt, len);
        held->len = (uint16_t)len;
        if (++held->merged >= STACK_ACK_SACK_EVERY)
            stack_ack_release(s, held, 1);
        return ERR_OK;
    }
    if (held)
        stack_ack_release(s, held, !TCP_SEQ_GT(tcp->ackno, held->tcp.ackno)); /* superseded: dropped */
    struct stack_ack_dup *d = stack_ack_dup_find(tcp);
    if (d->tcp.ackno != tcp->ackno) {
        d->tcp.ackno = tcp->ackno;
        d->sent = 0;
    }
    if (d->sent < STACK_ACK_DUPS_AT_ONCE || s->n_acks >= STACK_ACK_SLOTS) {
        d->sent++;
        return stack_send(s, pkt, len);
    }
    stack_ack_hold(s, tcp, pkt, len, 1);
    return ERR_OK;
}

static err_t stack_netif_output(struct netif *netif, struct pbuf *p)
{
    struct stack *s = netif->state;
    const uint8_t *pkt = p->payload;
    size_t len = p->tot_len;
    if (p->next) {
        /* tot_len is a u16, so it always fits the 64 KiB buffer. */
        pbuf_copy_partial(p, s->tx_buf, p->tot_len, 0);
        pkt = s->tx_buf;
    }
    uint32_t pmtu = stack_pmtu_exceeded(pkt, len);
    struct packet_tcp_info tcp;
    enum packet_tcp_kind kind = s->acks ? packet_classify_tcp(pkt, len, &tcp) : PACKET_NOT_TCP;
    if (kind == PACKET_NOT_TCP)
        return pmtu ? stack_pmtu_send_fragments(s, pkt, len, pmtu) : stack_send(s, pkt, len);
    struct stack_held_ack *held = NULL;
    for (unsigned i = 0; i < s->n_acks; i++) {
        if (s->acks[i].tcp.key_len == tcp.key_len && memcmp(s->acks[i].tcp.key, tcp.key, tcp.key_len) == 0) {
            held = &s->acks[i];
            break;
        }
    }
    if (pmtu) {
        /* A held ACK leaves before any later packet of its connection (above). */
        if (held)
            stack_ack_release(s, held, 1);
        return stack_pmtu_send_fragments(s, pkt, len, pmtu);
    }
    if (len > STACK_ACK_MAX)
        kind = PACKET_TCP_OTHER;
    if (kind == PACKET_TCP_SACK_ACK)
        return stack_ack_sack(s, held, &tcp, pkt, len);
    if (held && kind == PACKET_TCP_PURE_ACK && TCP_SEQ_GT(tcp.ackno, held->tcp.ackno)) {
        memcpy(held->pkt, pkt, len);
        held->len = (uint16_t)len;
        held->tcp.ackno = tcp.ackno;
        if (held->sack) {
            /* The hole is filled: now an ordinary held ACK, leaving with the iteration. */
            held->sack = 0;
            stack_check_arm(s);
        }
        return ERR_OK;
    }
    if (held) /* it leaves first, and its slot is refilled by the last one */
        stack_ack_release(s, held, 1);
    if (kind == PACKET_TCP_PURE_ACK && s->n_acks < STACK_ACK_SLOTS) {
        stack_ack_hold(s, &tcp, pkt, len, 0);
        return ERR_OK;
    }
    return stack_send(s, pkt, len);
}

static err_t stack_netif_output4(struct netif *netif, struct pbuf *p, const ip4_addr_t *dst)
{
    (void)dst;
    return stack_netif_output(netif, p);
}

static err_t stack_netif_output6(struct netif *netif, struct pbuf *p, const ip6_addr_t *dst)
{
    (void)dst;
    return stack_netif_output(netif, p);
}

static err_t stack_netif_init(struct netif *netif)
{
    netif->name[0] = 'v';
    netif->name[1] = 'p';
    netif->output = stack_netif_output4;
    netif->output_ip6 = stack_netif_output6;
    netif->flags = NETIF_FLAG_UP | NETIF_FLAG_LINK_UP;
    return ERR_OK;
}

int stack_new(struct stack **out, uv_loop_t *loop, struct tunnel *t)
{
    if (stack_exists)
        return -EBUSY;
    struct stack *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->read_buf = malloc(STACK_READ_BUF_SIZE);
    s->tx_buf = malloc(STACK_TX_BUF_SIZE);
    s->acks = malloc(STACK_ACK_SLOTS * sizeof(*s->acks));
    if (!s->read_buf || !s->tx_buf || !s->acks) {
        free(s->read_buf);
        free(s->tx_buf);
        free(s->acks);
        free(s);
        return -ENOMEM;
    }
    s->rx_high = STACK_RX_HIGH;
    v2s_list_init(&s->conns);
    v2s_list_init(&s->flushes);
    v2s_list_init(&s->fin_wait);
    v2s_list_init(&s->fin_flight);
    v2s_list_init(&s->queries);
    v2s_list_init(&s->udps);
    v2s_list_init(&s->listeners);
    v2s_list_init(&s->ack_rides);
    v2s_list_init(&s->refills);
    s->loop = loop;
    s->tunnel = t;
    stack_sys_init(loop);
    lwip_init();
    stack_recovery_init();
    uv_timer_init(loop, &s->timer);
    uv_prepare_init(loop, &s->prepare);
    s->timer.data = s;
    s->prepare.data = s;
    uv_prepare_start(&s->prepare, stack_prepare_cb);
    uv_check_init(loop, &s->check);
    s->check.data = s;
    s->handles_open = 3;
    stack_exists = 1;
    *out = s;
    return 0;
}

static void stack_set_netif(struct stack *s, const struct tunnel_settings *ts)
{
    ip4_addr_t addr, mask, gw;
    ip4_addr_set_zero(&addr);
    ip4_addr_set_zero(&gw);
    ip4_addr_set_u32(&mask, PP_HTONL(0xFFFFFFFFUL));
    if (ts->addr4.family == AF_INET) {
        memcpy(&addr.addr, ts->addr4.bytes, 4);
        uint32_t m = ts->prefix4 == 0 ? 0 : 0xFFFFFFFFUL << (32 - ts->prefix4);
        ip4_addr_set_u32(&mask, lwip_htonl(m));
    }
    if (!s->netif_added) {
        netif_add(&s->netif, &addr, &mask, &gw, s, stack_netif_init, ip_input);
        netif_set_default(&s->netif);
        s->netif_added = 1;
    } else {
        netif_set_addr(&s->netif, &addr, &mask, &gw);
    }
    s->netif.mtu = (u16_t)s->mtu;
#if LWIP_IPV6
    s->netif.mtu6 = (u16_t)s->mtu;
    /* Invalidating an address makes lwIP abort every connection bound to it, so the same address
     * (a reconnect) is left in place. */
    int same6 = ts->addr6.family == AF_INET6 && ip6_addr_isvalid(netif_ip6_addr_state(&s->netif, 0)) &&
                memcmp(netif_ip6_addr(&s->netif, 0)->addr, ts->addr6.bytes, 16) == 0;
    if (!same6) {
        netif_ip6_addr_set_state(&s->netif, 0, IP6_ADDR_INVALID);
        if (ts->addr6.family == AF_INET6) {
            ip6_addr_t a6;
            memcpy(a6.addr, ts->addr6.bytes, 16);
            ip6_addr_clear_zone(&a6);
            netif_ip6_addr_set(&s->netif, 0, &a6);
            netif_ip6_addr_set_state(&s->netif, 0, IP6_ADDR_PREFERRED);
        }
    }
#endif
    netif_set_up(&s->netif);
    netif_set_link_up(&s->netif);
}

int stack_tunnel_up(struct stack *s, const struct tunnel_settings *ts)
{
    if (ts->addr4.family != AF_INET && ts->addr6.family != AF_INET6)
        return -EINVAL;
    char *domains = NULL;
    if (ts->domains && !(domains = strdup(ts->domains)))
        return -ENOMEM;
    free(s->domains);
    s->domains = domains;
    s->mtu = ts->mtu ? ts->mtu : STACK_MTU_DEFAULT; /* a tunnel that knows better says so */
    if (s->mtu > STACK_TX_BUF_SIZE)
        s->mtu = STACK_TX_BUF_SIZE;
    s->n_dns = ts->n_dns < TUNNEL_MAX_DNS ? ts->n_dns : TUNNEL_MAX_DNS;
    memcpy(s->dns, ts->dns, s->n_dns * sizeof(s->dns[0]));
    int again = s->netif_added;
    if (again) {
        /* Up again after a reconnect: connections survive only if their family's address
         * stayed. An IPv6 address that came or went (a server whose push differs from the last
         * one's) reset every IPv4 connection too. */
        ip4_addr_t old4 = *netif_ip4_addr(&s->netif);
        int same4 = ts->addr4.family == AF_INET ? memcmp(&old4.addr, ts->addr4.bytes, 4) == 0
                                                : ip4_addr_isany_val(old4);
        int same6 = 1;
#if LWIP_IPV6
        if (ip6_addr_isvalid(netif_ip6_addr_state(&s->netif, 0)) || ts->addr6.family == AF_INET6)
            same6 = ts->addr6.family == AF_INET6 && ip6_addr_isvalid(netif_ip6_addr_state(&s->netif, 0)) &&
                    memcmp(netif_ip6_addr(&s->netif, 0)->addr, ts->addr6.bytes, 16) == 0;
#endif
        if (!same4 || !same6) {
            v2s_info("stack: the tunnel's %s address changed; resetting its open connections",
                     !same4 && !same6 ? "IPv4 and IPv6" : !same4 ? "IPv4" : "IPv6");
            /* Not the lookups: their sockets are bound to no address, and they ask again from
             * the new one below. Failing them reset every -L or SOCKS client waiting on a name
             * at the very moment the tunnel came back (the lab: six at once). */
            stack_tcp_abort_all(s, !same4 && !same6 ? 0 : !same4 ? AF_INET : AF_INET6);
        }
    }
    stack_set_netif(s, ts);
    stack_tcp_listeners_readdress(s);
    s->up = 1;
    s->tunnel_congested = 0;
    if (again) {
        /* What the lookups and the connects sent meanwhile was lost: again, now. */
        stack_resolver_tunnel_back(s);
        stack_tcp_tunnel_back(s);
    }
    return 0;
}

/* Looks for an ICMP or ICMPv6 error about one of our TCP connections that is still opening, so
 * the SOCKS client learns "port unreachable" or "TTL expired" at once instead of after the connect
 * timeout. lwIP itself does not deliver ICMP errors to TCP. The quoted header must name the
 * connection exactly (both addresses, both ports) and carry a sequence number it has sent
 * (RFC 5927), so a host that cannot see the connection cannot abort it with a forged error
 * (stack_tcp_icmp_error() checks that); packet_parse_icmp_error() reads the packet. An error
 * about a DNS query moves its lookup on to the next server (resolver.c). */
static void stack_check_icmp_error(struct stack *s, const uint8_t *pkt, size_t len)
{
    struct packet_icmp_error e;
    if (!packet_parse_icmp_error(pkt, len, &e))
        return;
    if (e.proto != PACKET_PROTO_TCP) {
        /* A DNS query's: the lookup asks the next server at once. Others (a UDP forward's
         * datagram) are the sender's business; none is counted as ignored. */
        stack_resolver_icmp_error(s, &e.src, &e.dst, e.sport, e.dport);
        return;
    }
    int status;
    switch (e.reason) {
    case PACKET_ICMP_NET_UNREACHABLE: status = UV_ENETUNREACH; break;
    case PACKET_ICMP_HOST_UNREACHABLE: status = UV_EHOSTUNREACH; break;
    case PACKET_ICMP_REFUSED: status = UV_ECONNREFUSED; break;
    case PACKET_ICMP_PROHIBITED: status = UV_EACCES; break;
    case PACKET_ICMP_TIME_EXCEEDED: status = UV_ETIMEDOUT; break;
    default: return;
    }
    if (stack_tcp_icmp_error(s, &e.src, &e.dst, e.sport, e.dport, e.seq, status) != 0)
        s->icmp_ignored++;
}

/* 1 when the source of the packet pkt can be no host behind the VPN: the tunnel's own address,
 * "this network" or loopback (stack_addr_no_host()). Linux drops such a packet as a martian
 * (RFC 1122 3.2.1.3: loopback addresses never appear outside a host); lwIP drops only broadcast
 * and multicast sources. From the tunnel they are forged or a server's misrouting, and the
 * answers went back into the tunnel to loopback or to ourselves; a VPN server sends a packet
 * for our address back to us, so a datagram from our own address and port to a -R UDP forward
 * whose service answers (an echo) would come back to that forward as a new datagram, round and
 * round, and a SYN from our own address opened a connection to a -R forward, logged as ours. */
static int stack_source_martian(const struct stack *s, const uint8_t *pkt, size_t len)
{
    ip_addr_t src;
    if (len >= 20 && pkt[0] >> 4 == 4) {
        ip_addr_set_zero_ip4(&src);
        memcpy(&ip_2_ip4(&src)->addr, pkt + 12, 4);
        return stack_addr_no_host(&src) || (!ip4_addr_isany_val(*netif_ip4_addr(&s->netif)) &&
                                            ip4_addr_cmp(ip_2_ip4(&src), netif_ip4_addr(&s->netif)));
    }
    if (len >= 40 && pkt[0] >> 4 == 6) {
        ip_addr_set_zero_ip6(&src);
        memcpy(ip_2_ip6(&src)->addr, pkt + 8, 16);
        return stack_addr_no_host(&src) || (ip6_addr_isvalid(netif_ip6_addr_state(&s->netif, 0)) &&
                                            memcmp(netif_ip6_addr(&s->netif, 0)->addr, pkt + 8, 16) == 0);
    }
    return 0;
}

/* 1 when the packet pkt is for a multicast group: we join none. lwIP without IGMP takes every
 * IPv4 group as joined, so a datagram from the tunnel to 224.0.0.251 reached a -R UDP forward
 * bound to every address, where Linux, which joined no such group, drops it. lwIP without MLD
 * takes IPv6's all-nodes and our solicited-node groups, which serve neighbour discovery, and a
 * point-to-point tunnel has no neighbours to discover: stack_netif_output6() writes straight into
 * the tunnel, and our DNS asks unicast servers. Dropped too, so a router advertisement to ff02::1
 * is not taken as one either (lwIP's nd6_input() would lower the IPv6 MTU it names). */
static int stack_dest_multicast(const uint8_t *pkt, size_t len)
{
    if (len >= 20 && pkt[0] >> 4 == 4)
        return (pkt[16] & 0xF0) == 0xE0; /* 224.0.0.0/4 */
    if (len >= 40 && pkt[0] >> 4 == 6)
        return pkt[24] == 0xFF; /* ff00::/8 */
    return 0;
}

void stack_input(struct stack *s, const uint8_t *pkt, size_t len)
{
    if (!s->up || len == 0 || len > 0xFFFF || stack_source_martian(s, pkt, len) ||
        stack_dest_multicast(pkt, len)) {
        s->rx_bad++;
        return;
    }
    if (len >= 40 && pkt[0] >> 4 == 6 && pkt[6] != 6 && pkt[6] != 17 && packet_ip6_drop(pkt, len)) {
        /* Extension headers lwIP 2.1.3 mishandles (packet.h). It reads a header's length byte
         * before it checks that the header is there, a byte past the packet when it ends
         * there. And it takes the next header of a reassembled datagram from whichever
         * fragment came first, then goes on parsing with ip6_current_header() still the last
         * fragment's: a second fragment header there made ip6_reass() measure from that stale
         * header and assert, so two IPv6 fragments from anyone who can reach the tunnel address
         * aborted the process. Only an upper-layer protocol may follow a fragment header here;
         * destination options there (RFC 8200 4.1 allows them) are unheard of in practice. */
        s->rx_bad++;
        return;
    }
    if (((pkt[0] >> 4 == 4 && len >= 20 && pkt[9] == 17) || (pkt[0] >> 4 == 6 && len >= 40 && pkt[6] != 6)) &&
        packet_udp_drop(pkt, len)) {
        /* A UDP length that disagrees with the IP header's, or an IPv6 zero checksum (packet.h):
         * dropped, as Linux does, rather than handed to a forward with bytes the sender did not
         * send or unchecked. */
        s->rx_bad++;
        return;
    }
    size_t in_use = stack_mem_bytes();
    if (in_use > s->mem_mark)
        s->mem_mark = in_use;
    if (in_use > STACK_MEM_HIGH)
        stack_tcp_reclaim(s);
    /* Exactly the packet's size: a pool buffer (1600 bytes) for a 41-byte segment would make a
     * peer sending 1-byte segments cost forty times what it sends. */
    struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_RAM);
    if (!p) {
        /* Out of memory: the sender will retransmit; say so once per burst at debug level. */
        s->rx_bad++;
        v2s_debug("stack: no buffer for a %zu-byte packet from the tunnel", len);
        return;
    }
    pbuf_take(p, pkt, (u16_t)len);
    /* An error is read here, before lwIP has checked anything of it, so its checksums and
     * length are checked here, or a packet garbled on the way (or a later IPv4 fragment, read
     * as if it began with an ICMP header) failed a connection or lowered a path MTU. */
    size_t icmp_len;
    if (((pkt[0] >> 4 == 4 && len >= 20 && pkt[9] == 1) || (pkt[0] >> 4 == 6 && len >= 40 && pkt[6] == 58)) &&
        (icmp_len = packet_icmp_intact(pkt, len)) != 0) {
        stack_check_icmp_error(s, pkt, icmp_len);
        if (pkt[0] >> 4 == 6 && icmp_len >= 48 && pkt[40] == 2)
            stack_pmtu_too_big(s, pkt, icmp_len);
    }
    /* ip_input() owns p from here, whatever it returns. */
    if (s->netif.input(p, &s->netif) != ERR_OK)
        s->rx_bad++;
}

void stack_tunnel_writable(struct stack *s)
{
    s->tunnel_congested = 0;
    stack_tcp_resume_all(s);
}

void stack_tunnel_down(struct stack *s)
{
    s->up = 0;
    stack_acks_drop(s); /* for a link that is gone */
    uv_check_stop(&s->check);
    stack_resolver_abort_all(s, UV_ENETDOWN);
    stack_tcp_abort_all(s, 0);
    if (s->netif_added)
        netif_set_down(&s->netif);
}

int stack_has_family(const struct stack *s, int family)
{
    if (!s->up)
        return 0;
    if (family == AF_INET)
        return !ip4_addr_isany_val(*netif_ip4_addr(&s->netif));
    if (family == AF_INET6)
        return ip6_addr_isvalid(netif_ip6_addr_state(&s->netif, 0));
    return 0;
}

int stack_tunnel_addr(const struct stack *s, int family, struct v2s_addr *out)
{
    if (!stack_has_family(s, family))
        return UV_ENETDOWN;
    if (family == AF_INET)
        stack_addr_from_lwip(&s->netif.ip_addr, out);
    else
        stack_addr_from_lwip(&s->netif.ip6_addr[0], out);
    return 0;
}

size_t stack_dns_servers(const struct stack *s, const struct v2s_addr **servers)
{
    *servers = s->dns;
    return s->n_dns;
}

const char *stack_domains(const struct stack *s)
{
    return s->domains;
}

const char *stack_lwip_version(void)
{
    return LWIP_VERSION_STRING;
}

void stack_maybe_free(struct stack *s)
{
    if (!s->closing || s->handles_open > 0 || !v2s_list_empty(&s->conns) || !v2s_list_empty(&s->queries) ||
        !v2s_list_empty(&s->listeners))
        return;
    if (s->netif_added)
        netif_remove(&s->netif);
    void (*cb)(void *) = s->close_cb;
    void *arg = s->close_arg;
    stack_resolver_free(s);
    free(s->domains);
    free(s->read_buf);
    free(s->tx_buf);
    free(s->acks);
    free(s->udp_buf);
    free(s->frag_buf);
    free(s);
    stack_pmtu_forget();
    stack_exists = 0;
    if (cb)
        cb(arg);
}

static void stack_handle_closed(uv_handle_t *h)
{
    struct stack *s = h->data;
    s->handles_open--;
    stack_maybe_free(s);
}

void stack_close(struct stack *s, void (*cb)(void *arg), void *arg)
{
    s->close_cb = cb;
    s->close_arg = arg;
    s->closing = 1;
    stack_log_stats(s);
    stack_tunnel_down(s);
    /* Sockets are their users' to close; the stack only takes their pcbs away, so it need not
     * wait for them (see stack/udp.c). */
    stack_udp_detach_all(s);
    uv_close((uv_handle_t *)&s->timer, stack_handle_closed);
    uv_close((uv_handle_t *)&s->prepare, stack_handle_closed);
    uv_close((uv_handle_t *)&s->check, stack_handle_closed);
}
