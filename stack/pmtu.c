/* Path MTUs below the tunnel's (RFC 8201). A router past the VPN server whose next link is smaller
 * than our tunnel's MTU drops an IPv6 packet too large for it (routers never fragment IPv6) and
 * says so with a packet too big. lwIP 2.1.3 keeps such a figure only in a destination cache that
 * our netif never fills, so it dropped every one: each full-sized segment of an upload was lost
 * again at every resend and the connection hung until its retransmissions ran out. Here the figure
 * is kept per destination for STACK_PMTU_AGE_MS (RFC 8201 5.3: ten minutes, then the tunnel's MTU
 * is tried again), never below IPv6's minimum of 1280 (RFC 8201 4); an IPv6 packet larger than its
 * destination's path MTU leaves in fragments (stack_pmtu_send_fragments()), and a TCP connection
 * with nothing unsent or in flight takes the smaller MSS for what it sends next (lwIP's tcp_write()
 * asserts that the last unsent segment fits the MSS, and its retransmission timeout resends with a
 * window of one MSS, so a connection with data unsent or in flight keeps its MSS and has its
 * segments fragmented). IPv4 needs none of this: lwIP never sets DF, so routers fragment for us.
 * One stack per process, as for lwIP. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/bytes.h"
#include "base/log.h"
#include "lwip/ip.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/sys.h"
#include "lwip/tcp.h"
#include "stack/internal.h"
#include "stack/lwip_pin.h" /* lwIP internals: see there */
#include "stack/packet.h"

enum {
    STACK_PMTU_SLOTS = 16,
    STACK_PMTU_AGE_MS = 10 * 60 * 1000,
    STACK_IP6_MIN_MTU = 1280,
};

struct stack_pmtu {
    uint8_t dst[16];
    uint32_t mtu;     /* 0: a free slot */
    uint32_t expires; /* sys_now() */
};
static struct stack_pmtu stack_pmtus[STACK_PMTU_SLOTS];
static unsigned stack_pmtu_used; /* slots with an mtu, expired or not */

/* The path MTU to the IPv6 address dst, or 0 when none below the tunnel's is known. */
static uint32_t stack_pmtu_get(const uint8_t *dst)
{
    for (unsigned i = 0; i < STACK_PMTU_SLOTS; i++) {
        struct stack_pmtu *e = &stack_pmtus[i];
        if (!e->mtu || memcmp(e->dst, dst, 16) != 0)
            continue;
        if ((int32_t)(sys_now() - e->expires) >= 0) {
            e->mtu = 0;
            stack_pmtu_used--;
            return 0;
        }
        return e->mtu;
    }
    return 0;
}

/* Keeps mtu for dst: in its slot, a free or expired one, or the one that expires first. */
static void stack_pmtu_set(const uint8_t *dst, uint32_t mtu)
{
    struct stack_pmtu *slot = NULL;
    uint32_t now = sys_now();
    for (unsigned i = 0; i < STACK_PMTU_SLOTS; i++) {
        struct stack_pmtu *e = &stack_pmtus[i];
        if (e->mtu && memcmp(e->dst, dst, 16) == 0) {
            slot = e;
            break;
        }
        if (!slot || !e->mtu || (slot->mtu && (int32_t)(e->expires - slot->expires) < 0))
            slot = e;
    }
    if (!slot->mtu)
        stack_pmtu_used++;
    memcpy(slot->dst, dst, 16);
    slot->mtu = mtu;
    slot->expires = now + STACK_PMTU_AGE_MS;
}

/* A packet too big from the tunnel (pkt, len: the whole IPv6 packet). Taken when it quotes a packet
 * from our address, and for a TCP quote only when it names a connection of ours and a sequence
 * number in flight (RFC 5927, as stack.c does for the other errors); a forged one could only make
 * us fragment down to 1280 bytes anyway. */
void stack_pmtu_too_big(struct stack *s, const uint8_t *pkt, size_t len)
{
    struct packet_too_big tb;
    if (!packet_parse_icmp6_too_big(pkt, len, &tb) || !ip6_addr_isvalid(netif_ip6_addr_state(&s->netif, 0)) ||
        memcmp(netif_ip6_addr(&s->netif, 0)->addr, tb.src.bytes, 16) != 0)
        return;
    uint32_t mtu = tb.mtu < STACK_IP6_MIN_MTU ? STACK_IP6_MIN_MTU : tb.mtu;
    if (mtu >= s->mtu)
        return;
    ip_addr_t dst;
    stack_addr_to_lwip(&tb.dst, &dst);
    if (tb.proto == PACKET_PROTO_TCP) {
        struct tcp_pcb *pcb;
        for (pcb = tcp_active_pcbs; pcb; pcb = pcb->next) {
            if (IP_IS_V6(&pcb->remote_ip) && pcb->local_port == tb.sport && pcb->remote_port == tb.dport &&
                ip_addr_cmp(&pcb->remote_ip, &dst) &&
                memcmp(ip_2_ip6(&pcb->local_ip)->addr, tb.src.bytes, 16) == 0)
                break;
        }
        if (!pcb || !TCP_SEQ_BETWEEN(tb.seq, pcb->lastack, pcb->snd_nxt - 1)) {
            s->icmp_ignored++;
            return;
        }
    }
    if (!s->frag_buf && !(s->frag_buf = malloc(STACK_TX_BUF_SIZE)))
        return;
    uint32_t known = stack_pmtu_get(tb.dst.bytes);
    if (known && known <= mtu)
        return;
    stack_pmtu_set(tb.dst.bytes, mtu);
    char name[V2S_ADDR_STRLEN];
    v2s_debug("stack: path MTU to %s is %u (packet too big)", v2s_addr_format(&tb.dst, name, sizeof(name)),
              (unsigned)mtu);
    for (struct tcp_pcb *pcb = tcp_active_pcbs; pcb; pcb = pcb->next)
        stack_pmtu_fit_mss(pcb);
}

void stack_pmtu_fit_mss(struct tcp_pcb *pcb)
{
    /* Nothing unsent, and nothing in flight either: lwIP's retransmission timeout puts what is
     * in flight back into unsent with a congestion window of one MSS, and a segment larger than
     * that is never sent again (the connection hung: stack_icmp_too_big_in_flight). */
    if (!stack_pmtu_used || pcb->unsent || pcb->unacked || !IP_IS_V6(&pcb->remote_ip))
        return;
    uint32_t mtu = stack_pmtu_get((const uint8_t *)ip_2_ip6(&pcb->remote_ip)->addr);
    if (mtu && pcb->mss > mtu - 40 - 20)
        pcb->mss = (u16_t)(mtu - 40 - 20);
}

/* Sends the IPv6 packet pkt in fragments of at most mtu bytes (RFC 8200 4.5), or, when lwIP
 * already fragmented it for the tunnel's MTU, that fragment in smaller ones. lwIP's ip6_frag()
 * would do for the first case, but it moves the payload pointers of the pbufs it fragments, and
 * TCP resends its segments from theirs; here the packet is already flat. */
err_t stack_pmtu_send_fragments(struct stack *s, const uint8_t *pkt, size_t len, uint32_t mtu)
{
    uint8_t nexth = pkt[6];
    size_t at = 40;
    uint32_t off = 0, more = 0, id;
    if (nexth == 44) {
        /* A fragment header right after the IPv6 header: lwIP adds no other extension. */
        if (len < 48)
            return ERR_VAL;
        nexth = pkt[40];
        off = v2s_get_be16(pkt + 42) & 0xFFF8u;
        more = pkt[43] & 1u;
        id = v2s_get_be32(pkt + 44);
        at = 48;
    } else {
        id = stack_random();
    }
    size_t chunk = (mtu - 48) & ~(size_t)7;
    err_t err = ERR_OK;
    for (size_t done = 0; at + done < len;) {
        size_t n = len - at - done < chunk ? len - at - done : chunk;
        int last = at + done + n == len;
        uint8_t *f = s->frag_buf;
        memcpy(f, pkt, 40);
        f[6] = 44;
        v2s_put_be16(f + 4, (uint16_t)(8 + n));
        f[40] = nexth;
        f[41] = 0;
        v2s_put_be16(f + 42, (uint16_t)((off + done) | (last ? more : 1u)));
        v2s_put_be32(f + 44, id);
        memcpy(f + 48, pkt + at + done, n);
        if (stack_send(s, f, 48 + n) != ERR_OK)
            err = ERR_IF;
        done += n;
    }
    return err;
}

uint32_t stack_pmtu_exceeded(const uint8_t *pkt, size_t len)
{
    if (!stack_pmtu_used || len <= STACK_IP6_MIN_MTU || pkt[0] >> 4 != 6)
        return 0;
    uint32_t mtu = stack_pmtu_get(pkt + 24);
    return mtu && len > mtu ? mtu : 0;
}

void stack_pmtu_forget(void)
{
    memset(stack_pmtus, 0, sizeof(stack_pmtus));
    stack_pmtu_used = 0;
}
