/* UDP through the tunnel: one lwIP udp_pcb per socket (stack/udp.h). What this file guarantees:
 *
 *   - A datagram is handed over whole: lwIP reassembles fragments from the tunnel (IP_REASSEMBLY,
 *     LWIP_IPV6_REASS) and a reassembled datagram, which arrives as a pbuf chain, is copied into
 *     one flat buffer first; a datagram that fits one pbuf is passed in place, without a copy.
 *   - What we send may exceed the tunnel MTU: lwIP fragments it (IP_FRAG, LWIP_IPV6_FRAG), as a
 *     host's kernel would. The limit is what an IP datagram can carry: 65507 bytes over IPv4;
 *     over IPv6 lwIP's pbufs count the whole packet in 16 bits, so 65535 - 40 - 8 = 65487 rather
 *     than the 65527 the IPv6 length field would allow. Larger: UV_EMSGSIZE, nothing sent.
 *   - Local ports are drawn at random from the dynamic range (stack_random_port()), as for TCP
 *     and DNS, so an off-path host cannot guess where to inject answers.
 *   - A socket survives the tunnel going down and up again (its pcb stays bound; sending while
 *     down is UV_ENETDOWN). When the stack closes, every socket is detached: its pcb goes, its
 *     callback never runs again, sending answers UV_ENETDOWN, and stack_udp_close() only frees
 *     it. So the stack never waits for its users' sockets, and a user that closes late touches
 *     nothing freed.
 *   - lwIP itself answers a datagram to a port nobody opened with ICMP port unreachable
 *     (udp_input()), and an echo request to a tunnel address with an echo reply (icmp.c,
 *     icmp6.c); tests/unit/test_stack_udp.c checks both. A forward whose destination refused
 *     a datagram answers it the same way (stack_udp_unreachable()). Neither is rate-limited:
 *     each answers one datagram from the tunnel, so there are never more than came in. */
#include "stack/udp.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <uv.h>

#include "base/list.h"
#include "lwip/icmp.h"
#include "lwip/icmp6.h"
#include "lwip/inet_chksum.h"
#include "lwip/ip.h"
#include "lwip/pbuf.h"
#include "lwip/prot/ip4.h"
#include "lwip/prot/ip6.h"
#include "lwip/prot/udp.h"
#include "lwip/udp.h"
#include "stack/internal.h"

enum {
    STACK_UDP_MAX4 = 0xFFFF - 20 - 8,
    STACK_UDP_MAX6 = 0xFFFF - 40 - 8,
    STACK_UDP_BUF_SIZE = 0x10000,
};

struct stack_udp {
    struct stack *s;        /* NULL once the stack closed under the socket */
    struct v2s_list node;   /* on the stack's list of sockets (s->udps) */
    struct udp_pcb *pcb;
    uint16_t port;
    stack_udp_recv_cb cb;
    void *arg;
};

int stack_udp_length_ok(const struct pbuf *p)
{
    /* udp_input() checked that the header lies in the first pbuf and moved the payload past it. */
    const u8_t *udp = (const u8_t *)p->payload - UDP_HLEN;
    return ((size_t)udp[4] << 8 | udp[5]) == (size_t)p->tot_len + UDP_HLEN;
}

static void stack_udp_on_recv(void *arg, struct udp_pcb *pcb, struct pbuf *p, const ip_addr_t *addr, u16_t port)
{
    struct stack_udp *u = arg;
    struct stack *s = u->s;
    (void)pcb;
    if (!stack_udp_length_ok(p)) {
        s->udp_dropped++;
        pbuf_free(p);
        return;
    }
    const uint8_t *data = p->payload;
    size_t len = p->tot_len;
    if (p->len != p->tot_len) {
        /* A reassembled datagram: one flat copy. Its own buffer, not tx_buf: the callback may
         * send, and a chained packet on its way out is linearised in tx_buf. */
        if (!s->udp_buf && !(s->udp_buf = malloc(STACK_UDP_BUF_SIZE))) {
            s->udp_dropped++;
            pbuf_free(p);
            return;
        }
        pbuf_copy_partial(p, s->udp_buf, p->tot_len, 0);
        data = s->udp_buf;
    }
    struct v2s_addr src, dst;
    stack_addr_from_lwip(addr, &src);
    stack_addr_from_lwip(ip_current_dest_addr(), &dst);
    s->udp_in++;
    u->cb(u->arg, &src, port, &dst, data, len);
    /* The callback may have closed u (and with it the pcb); p is ours either way. */
    pbuf_free(p);
}

/* Binds pcb to local:port, or to a random dynamic port when port is 0. 0 or a uv error. */
static int stack_udp_bind(struct udp_pcb *pcb, const ip_addr_t *local, uint16_t port)
{
    err_t e = ERR_USE;
    if (port != 0)
        e = udp_bind(pcb, local, port);
    for (int i = 0; port == 0 && e == ERR_USE && i < STACK_PORT_TRIES; i++)
        e = udp_bind(pcb, local, stack_random_port());
    return e == ERR_OK ? 0 : e == ERR_USE ? UV_EADDRINUSE : stack_err_to_uv(e);
}

int stack_udp_open(struct stack *s, const struct v2s_addr *local, uint16_t port, stack_udp_recv_cb cb, void *arg,
                   struct stack_udp **out)
{
    if (s->closing || !cb || (local && local->family != AF_INET && local->family != AF_INET6))
        return UV_EINVAL;
    struct stack_udp *u = calloc(1, sizeof(*u));
    if (!u)
        return UV_ENOMEM;
    ip_addr_t ip;
    u8_t type = IPADDR_TYPE_ANY;
    if (local) {
        stack_addr_to_lwip(local, &ip);
        type = local->family == AF_INET ? IPADDR_TYPE_V4 : IPADDR_TYPE_V6;
    }
    int rc = UV_ENOMEM;
    u->pcb = udp_new_ip_type(type);
    if (!u->pcb || (rc = stack_udp_bind(u->pcb, local ? &ip : IP_ANY_TYPE, port)) < 0) {
        if (u->pcb)
            udp_remove(u->pcb);
        free(u);
        return rc;
    }
    u->s = s;
    u->port = u->pcb->local_port;
    u->cb = cb;
    u->arg = arg;
    udp_recv(u->pcb, stack_udp_on_recv, u);
    v2s_list_init(&u->node);
    v2s_list_push_front(&s->udps, &u->node);
    *out = u;
    return 0;
}

int stack_udp_send(struct stack_udp *u, const struct v2s_addr *dst, uint16_t port, const uint8_t *data, size_t len)
{
    struct stack *s = u->s;
    if (!s)
        return UV_ENETDOWN;
    if (dst->family != AF_INET && dst->family != AF_INET6)
        return UV_EINVAL;
    if (len > (dst->family == AF_INET ? STACK_UDP_MAX4 : STACK_UDP_MAX6)) {
        s->udp_dropped++;
        return UV_EMSGSIZE;
    }
    if (!s->up) {
        s->udp_dropped++;
        return UV_ENETDOWN;
    }
    if (!stack_has_family(s, dst->family) ||
        (!IP_IS_ANY_TYPE_VAL(u->pcb->local_ip) && IP_IS_V6_VAL(u->pcb->local_ip) != (dst->family == AF_INET6))) {
        s->udp_dropped++;
        return UV_EAFNOSUPPORT;
    }
    ip_addr_t ip;
    stack_addr_to_lwip(dst, &ip);
    /* As Linux's sendto() answers: no datagram to port 0, none into the tunnel for an address
     * no host there can have (a SOCKS client's or a forward's mistake). */
    if (port == 0 || stack_addr_no_host(&ip)) {
        s->udp_dropped++;
        return port == 0 ? UV_EINVAL : UV_ENETUNREACH;
    }
    /* Room for the headers in front, so lwIP adds them without a second pbuf. */
    struct pbuf *p = pbuf_alloc(PBUF_TRANSPORT, (u16_t)len, PBUF_RAM);
    if (!p) {
        s->udp_dropped++;
        return UV_ENOMEM;
    }
    if (len)
        memcpy(p->payload, data, len);
    err_t e = udp_sendto(u->pcb, p, &ip, port);
    pbuf_free(p);
    if (e != ERR_OK) {
        s->udp_dropped++;
        return stack_err_to_uv(e);
    }
    s->udp_out++;
    return 0;
}

/* lwIP's icmp6_dest_unreach() answers the packet being input: it reads the netif and the
 * addresses from ip_data, which lwIP sets only while a packet is input. The rebuilt one is made
 * current for the call, as ip6_input() would make it, and what was there is put back. */
static void stack_udp_icmp6_unreach(struct stack *s, struct pbuf *p, const ip_addr_t *src, const ip_addr_t *dst)
{
    struct ip_globals saved = ip_data;
    ip_data.current_netif = &s->netif;
    ip_data.current_input_netif = &s->netif;
    ip_data.current_ip6_header = (struct ip6_hdr *)p->payload;
    ip_data.current_ip_header_tot_len = IP6_HLEN;
    ip_addr_copy(ip_data.current_iphdr_src, *src);
    ip_addr_copy(ip_data.current_iphdr_dest, *dst);
    icmp6_dest_unreach(p, ICMP6_DUR_PORT);
    ip_data = saved;
}

int stack_udp_unreachable(struct stack_udp *u, const struct v2s_addr *src, uint16_t sport,
                          const struct v2s_addr *dst, size_t len, const uint8_t *head, size_t head_len)
{
    struct stack *s = u->s;
    if (!s || !s->up)
        return UV_ENETDOWN;
    if (src->family != dst->family || (src->family != AF_INET && src->family != AF_INET6) || head_len > len)
        return UV_EINVAL;
    int v6 = src->family == AF_INET6;
    if (len > (v6 ? STACK_UDP_MAX6 : STACK_UDP_MAX4))
        return UV_EMSGSIZE;
    ip_addr_t from, to;
    stack_addr_to_lwip(src, &from);
    stack_addr_to_lwip(dst, &to);
    /* Only a datagram to a tunnel address is answered, from it: never one to a broadcast or
     * multicast address (RFC 1122 3.2.2, RFC 4443 2.4), as lwIP's udp_input() does not. */
    if (v6 ? netif_get_ip6_addr_match(&s->netif, ip_2_ip6(&to)) < 0
           : !ip4_addr_cmp(ip_2_ip4(&to), netif_ip4_addr(&s->netif)))
        return UV_EINVAL;
    u16_t iphlen = v6 ? IP6_HLEN : IP_HLEN;
    struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)(iphlen + UDP_HLEN + head_len), PBUF_RAM);
    if (!p)
        return UV_ENOMEM;
    pbuf_remove_header(p, iphlen);
    struct udp_hdr *uh = (struct udp_hdr *)p->payload;
    uh->src = lwip_htons(sport);
    uh->dest = lwip_htons(u->port);
    uh->len = lwip_htons((u16_t)(UDP_HLEN + len));
    uh->chksum = 0;
    if (head_len)
        memcpy((uint8_t *)p->payload + UDP_HLEN, head, head_len);
    if (head_len == len) {
        u16_t sum = ip_chksum_pseudo(p, IP_PROTO_UDP, p->tot_len, &from, &to);
        uh->chksum = sum == 0 ? 0xFFFF : sum;
    }
    pbuf_add_header(p, iphlen);
    if (v6) {
        struct ip6_hdr *h = (struct ip6_hdr *)p->payload;
        IP6H_VTCFL_SET(h, 6, 0, 0);
        IP6H_PLEN_SET(h, (u16_t)(UDP_HLEN + len));
        IP6H_NEXTH_SET(h, IP6_NEXTH_UDP);
        IP6H_HOPLIM_SET(h, UDP_TTL);
        ip6_addr_copy_to_packed(h->src, *ip_2_ip6(&from));
        ip6_addr_copy_to_packed(h->dest, *ip_2_ip6(&to));
        stack_udp_icmp6_unreach(s, p, &from, &to);
    } else {
        struct ip_hdr *h = (struct ip_hdr *)p->payload;
        IPH_VHL_SET(h, 4, IP_HLEN / 4);
        IPH_TOS_SET(h, 0);
        IPH_LEN_SET(h, lwip_htons((u16_t)(IP_HLEN + UDP_HLEN + len)));
        IPH_ID_SET(h, 0);
        IPH_OFFSET_SET(h, 0);
        IPH_TTL_SET(h, UDP_TTL);
        IPH_PROTO_SET(h, IP_PROTO_UDP);
        ip4_addr_copy(h->src, *ip_2_ip4(&from));
        ip4_addr_copy(h->dest, *ip_2_ip4(&to));
        IPH_CHKSUM_SET(h, 0);
        IPH_CHKSUM_SET(h, inet_chksum(h, IP_HLEN));
        icmp_dest_unreach(p, ICMP_DUR_PORT);
    }
    pbuf_free(p);
    return 0;
}

uint16_t stack_udp_port(const struct stack_udp *u)
{
    return u->port;
}

/* Removes u's pcb: nothing reaches it after this. */
static void stack_udp_detach(struct stack_udp *u)
{
    if (u->pcb) {
        udp_recv(u->pcb, NULL, NULL);
        udp_remove(u->pcb);
        u->pcb = NULL;
    }
    v2s_list_remove(&u->node);
    u->s = NULL;
}

void stack_udp_close(struct stack_udp *u)
{
    stack_udp_detach(u);
    free(u);
}

void stack_udp_detach_all(struct stack *s)
{
    struct v2s_list *n;
    while ((n = v2s_list_first(&s->udps)) != NULL)
        stack_udp_detach(V2S_LIST_ENTRY(n, struct stack_udp, node));
}
