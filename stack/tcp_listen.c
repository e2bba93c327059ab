/* Listening in the tunnel (-R): a listening pcb in lwIP per listener, and the accepted connection
 * handed to the caller as a struct stack_tcp set up as the ones stack_tcp_connect() makes
 * (stack_tcp_adopt() in tcp.c), so everything the bridge guarantees holds for it too.
 *
 * What lwIP does for us, and what it does not:
 *   - A SYN to a port nobody listens on is answered with a reset (tcp_input()), so only what is
 *     forwarded answers (the unit test port_reverse_close_with_relay checks it).
 *   - lwIP accepts a connection once its handshake completes. Between the SYN and the ACK the
 *     connection is a pcb in SYN_RCVD that counts against its listener's backlog
 *     (TCP_LISTEN_BACKLOG in lwipopts.h only switches the count on; the bound is the backlog
 *     given to tcp_listen_with_backlog()). A SYN beyond it is dropped without an answer, and a
 *     real client sends it again a second later. lwIP has no SYN cookies, so a SYN flood from
 *     forged addresses fills the backlog and keeps it full for as long as it lasts (each
 *     half-open pcb gives up after TCP_SYN_RCVD_TIMEOUT, 20 s); what it costs is bounded by
 *     STACK_TCP_LISTEN_BACKLOG pcbs and their SYN-ACKs per listener. Connections that completed
 *     their handshake are the caller's to cap (it refuses one from the accept callback).
 *   - The accepted pcb starts with lwIP's callbacks, whose receive callback would take data and
 *     close the connection at the peer's FIN; ours are installed in the accept callback, before
 *     lwIP hands over what the handshake's ACK carried. The caller may bridge the connection much
 *     later (it opens the application side first); meanwhile what arrives is held by tcp_recv.c
 *     and the window does not open again, so nothing is lost and nothing is acknowledged beyond
 *     what the window offered.
 *   - A listener bound to an address is moved by lwIP to the new address when the tunnel's IPv4
 *     address changes (not when its IPv6 address does). We put it back: a listener on ADDR stays
 *     on ADDR, IPv4 and IPv6 alike, and accepts again once the tunnel has that address; one on
 *     every address (bound to lwIP's any-type address) listens on whatever the tunnel has.
 *   - Listeners are lwIP's, not the netif's: they outlive the tunnel going down and up.
 *   - lwIP times the handshake only in its 50 ms ticks, and tcp_budget.c needs the round trip in
 *     microseconds to hold a short path's window at the tunnel's room (a round trip of 1 ms or
 *     less never grows it), as for the connections we open. Without one, the window of data
 *     sent into a service through the packet-fd tunnel grew as on a tunnel with room to spare
 *     (to 2 MiB in the unit test stack_window_short_path_accepted), where the stack's own
 *     downloads had lost thousands of packets per 100 MiB at the VPN client. So the time the
 *     SYN-ACK leaves is kept on the half-open pcb, in lwIP's ext arg (the value itself, no
 *     memory: nothing to give back when a half-open pcb dies), and the handshake's ACK ends the
 *     sample. A SYN-ACK sent more than once (lwIP's timer, or a repeated SYN) gives none, as
 *     the ACK may answer either copy (Karn). SOCKS BIND listens the same way. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <uv.h>

#include "base/log.h"
#include "lwip/tcp.h"
#include "stack/lwip_pin.h" /* lwIP internals: see there */
#include "stack/tcp_internal.h"

enum {
    /* Handshakes half done at once, per listener (see the top): a burst of clients connecting
     * together fits, a SYN flood costs at most this many pcbs. lwIP keeps it in a u8. */
    STACK_TCP_LISTEN_BACKLOG = 64,
};

struct stack_tcp_listener {
    struct stack *s;
    struct v2s_list node; /* on the stack's listeners */
    struct tcp_pcb *pcb;  /* the listening pcb */
    int any;              /* every tunnel address */
    ip_addr_t addr;       /* else the one it listens on */
    stack_tcp_accept_cb cb;
    void *arg;
};

/* lwIP's ext arg slot of a half-open pcb that holds when its SYN-ACK left (see the top). */
static u8_t stack_tcp_listen_ext_id = LWIP_TCP_PCB_NUM_EXT_ARG_ID_INVALID;

/* lwIP calls this for a SYN to a listener, with the new pcb in SYN_RCVD, right before it queues
 * and sends the SYN-ACK. The time goes in the slot as a value that fits any pointer: the clock
 * in microseconds, its low 31 bits (a handshake gives up after 20 s, well within their wrap of
 * 35 minutes) shifted up over a set bit, so that it is never NULL. */
static err_t stack_tcp_listen_synack(u8_t id, struct tcp_pcb_listen *lpcb, struct tcp_pcb *pcb)
{
    (void)lpcb;
    uint32_t stamp = (uint32_t)stack_now_us() << 1 | 1u;
    tcp_ext_arg_set(pcb, id, (void *)(uintptr_t)stamp);
    return ERR_OK;
}

static const struct tcp_ext_arg_callbacks stack_tcp_listen_ext = {
    .destroy = NULL, /* the slot holds a value, not memory */
    .passive_open = stack_tcp_listen_synack,
};

/* The handshake's round trip in microseconds, now that its ACK arrived: from the one SYN-ACK to
 * now, or 0 (not known) when the SYN-ACK went more than once. lwIP counts each resend in nrtx
 * (its timer's, and tcp_rexmit() for a repeated SYN) and clears it only in tcp_receive(), which
 * for the handshake's ACK runs after the accept callback. */
static uint32_t stack_tcp_listen_rtt(struct tcp_pcb *pcb)
{
    uint32_t stamp = (uint32_t)(uintptr_t)tcp_ext_arg_get(pcb, stack_tcp_listen_ext_id);
    tcp_ext_arg_set(pcb, stack_tcp_listen_ext_id, NULL);
    if (!stamp || pcb->nrtx != 0)
        return 0;
    return ((uint32_t)stack_now_us() - (stamp >> 1)) & 0x7FFFFFFFu;
}

static err_t stack_tcp_listen_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
    struct stack_tcp_listener *l = arg;
    if (err != ERR_OK || !pcb)
        return ERR_OK; /* no memory for a pcb: lwIP dropped the SYN, the peer sends it again */
    struct stack_tcp *c = stack_tcp_adopt(l->s, pcb, stack_tcp_listen_rtt(pcb));
    if (!c) {
        tcp_abort(pcb);
        return ERR_ABRT;
    }
    if (l->cb(l->arg, c) < 0) {
        /* Refused: the peer gets a reset. c was never handed out, so it goes now. */
        stack_tcp_release_pcb(c, 1);
        stack_tcp_free_rxq(c);
        stack_tcp_unlink(c);
        free(c->rxq);
        free(c);
        return ERR_ABRT;
    }
    return c->aborted ? ERR_ABRT : ERR_OK;
}

int stack_tcp_listen(struct stack *s, const struct v2s_addr *local, uint16_t port, stack_tcp_accept_cb cb,
                     void *arg, struct stack_tcp_listener **out)
{
    if (port == 0 || s->closing || (local && local->family != AF_INET && local->family != AF_INET6))
        return UV_EINVAL;
    struct stack_tcp_listener *l = calloc(1, sizeof(*l));
    if (!l)
        return UV_ENOMEM;
    l->s = s;
    l->cb = cb;
    l->arg = arg;
    l->any = local == NULL;
    if (local)
        stack_addr_to_lwip(local, &l->addr);
    struct tcp_pcb *pcb = tcp_new_ip_type(l->any ? IPADDR_TYPE_ANY : IP_GET_TYPE(&l->addr));
    if (!pcb) {
        free(l);
        return UV_ENOMEM;
    }
    /* With SO_REUSE (lwipopts.h), so that a listener can open again on a port whose earlier
     * connections are still open or in TIME_WAIT (a forward stopped and started again by a
     * reload); lwIP still refuses two listeners on the same address and port. The connections
     * it accepts inherit the flag, so they never stand in a later listener's way either. */
    ip_set_option(pcb, SOF_REUSEADDR);
    err_t e = tcp_bind(pcb, l->any ? IP_ANY_TYPE : &l->addr, port);
    struct tcp_pcb *lpcb = NULL;
    if (e == ERR_OK) {
        lpcb = tcp_listen_with_backlog_and_err(pcb, STACK_TCP_LISTEN_BACKLOG, &e);
        if (!lpcb && e == ERR_OK)
            e = ERR_MEM;
    }
    if (!lpcb) {
        tcp_abort(pcb); /* still the unbound or bound pcb: tcp_listen() frees it only on success */
        free(l);
        return stack_err_to_uv(e);
    }
    l->pcb = lpcb;
    if (stack_tcp_listen_ext_id == LWIP_TCP_PCB_NUM_EXT_ARG_ID_INVALID)
        stack_tcp_listen_ext_id = tcp_ext_arg_alloc_id(); /* once per process, as lwIP's ids are */
    tcp_ext_arg_set_callbacks(lpcb, stack_tcp_listen_ext_id, &stack_tcp_listen_ext);
    tcp_arg(lpcb, l);
    tcp_accept(lpcb, stack_tcp_listen_accept);
    v2s_list_init(&l->node);
    v2s_list_push_back(&s->listeners, &l->node);
    *out = l;
    return 0;
}

void stack_tcp_listen_close(struct stack_tcp_listener *l)
{
    struct stack *s = l->s;
    /* lwIP rule: no callback into a listener that is going away. A listening pcb's close always
     * succeeds and frees it at once; handshakes it left half done are reset when they end. */
    tcp_arg(l->pcb, NULL);
    tcp_accept(l->pcb, NULL);
    tcp_close(l->pcb);
    v2s_list_remove(&l->node);
    free(l);
    stack_maybe_free(s);
}

void stack_tcp_listeners_readdress(struct stack *s)
{
    struct v2s_list *n;
    V2S_LIST_FOREACH(n, &s->listeners) {
        struct stack_tcp_listener *l = V2S_LIST_ENTRY(n, struct stack_tcp_listener, node);
        if (!l->any)
            ip_addr_copy(l->pcb->local_ip, l->addr);
    }
}
