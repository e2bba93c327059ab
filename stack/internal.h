/* Shared inside stack/ only: the stack object and the hooks between its files. */
#ifndef VPN2SOCKS_STACK_INTERNAL_H
#define VPN2SOCKS_STACK_INTERNAL_H

#include <uv.h>

#include "base/list.h"
#include "lwip/ip_addr.h"
#include "lwip/netif.h"
#include "stack/stack.h"
#include "tunnel/settings.h"

struct tcp_pcb;
struct stack_held_ack;

struct stack {
    uv_loop_t *loop;
    struct tunnel *tunnel;
    struct netif netif;
    int netif_added;
    int up;                     /* tunnel up: new connections may start */
    int tunnel_congested;       /* tunnel_send() said its queue is above the high mark */
    int send_failed;            /* tunnel_send() refused a packet (see stack_tcp_connect()) */
    uv_timer_t timer;           /* runs lwIP's timeouts */
    uv_prepare_t prepare;       /* re-arms timer before the loop sleeps */
    uv_check_t check;           /* active while ACKs are held or segments gathered (see stack.c) */
    struct stack_held_ack *acks; /* pure ACKs held back within one loop iteration (stack.c) */
    unsigned n_acks;
    uint32_t timer_due;         /* sys_now() value the timer is armed for; 0 = not armed */
    int handles_open;
    int closing;                /* stack_close() called: free once the last connection is gone */
    void (*close_cb)(void *arg);
    void *close_arg;
    struct v2s_list conns;      /* every TCP connection (stack_tcp.node), newest first, for
                                 * tunnel-down and ICMP errors */
    unsigned n_conns;
    int probe_look;             /* the look for zero-window probes is armed (tcp_send.c) */
    uint64_t reclaim_ms;        /* when out-of-order data was last given back (tcp_budget.c) */
    uint64_t reclaims;          /* how often */
    size_t mem_mark;            /* lwIP's heap at its highest since memory was last handed back */
    /* Fair shares of memory held for applications (tcp_budget.c, "Fair shares"). */
    size_t rx_high;             /* STACK_RX_HIGH; tests may lower it */
    size_t rx_held;             /* held for applications by every connection */
    size_t rx_held_peak;
    size_t rx_budgets;          /* every connection's budget (held plus offered) */
    uint64_t withholds;         /* how often a connection's budget was cut to its share */
    struct v2s_list flushes;    /* connections with segments waiting to go to the application
                                 * (stack_tcp.flush_node, tcp_recv.c) */
    /* Paced closes (tcp_close.c): FINs waiting for a slot, oldest first, and FINs in flight
     * (stack_tcp.fin_node). */
    struct v2s_list fin_wait;
    struct v2s_list fin_flight;
    unsigned n_fin_flight;
    struct v2s_list queries;    /* every DNS lookup (resolver_query.node, resolver.c) */
    struct resolver_state *resolver; /* servers' health and the cache (resolver.c); NULL before
                                      * the first lookup */
    struct v2s_list udps;       /* every UDP socket (stack_udp.node, udp.c); detached, not
                                 * waited for, when the stack closes */
    uint8_t *udp_buf;           /* flattens reassembled datagrams (udp.c), made when first needed */
    uint64_t udp_in, udp_out;   /* datagrams through UDP sockets */
    uint64_t udp_dropped;       /* ... refused on the way out, or not delivered for lack of memory */
    struct v2s_list listeners;  /* every listener in the tunnel (tcp_listen.c) */
    struct v2s_list ack_rides;  /* connections just opened whose handshake ACK is held
                                 * (stack_tcp.ride_node, tcp_send.c) */
    struct v2s_list refills;    /* connections to read from again once lwIP has sent
                                 * (stack_tcp.refill_node, tcp_send.c) */
    uint8_t *read_buf;          /* shared buffer for reads from applications (see tcp_send.c) */
    uint8_t *tx_buf;            /* linearises chained pbufs for tunnel_send() */
    uint8_t *frag_buf;          /* one IPv6 fragment (stack.c), made at the first packet too big */
    struct v2s_addr dns[TUNNEL_MAX_DNS];
    size_t n_dns;
    char *domains;
    unsigned mtu;
    uint64_t rx_bad;            /* packets from the tunnel lwIP could not take */
    uint64_t icmp_ignored;      /* ICMP errors naming no connection we are opening (forged?) */
    uint64_t dns_queries;       /* lookups started (resolver.c), answered from the cache or not */
    uint64_t dns_cache_hits;
    uint64_t dns_failures;      /* lookups that ended without an address */
};

enum {
    STACK_READ_BUF_SIZE = 64 * 1024,
    STACK_TX_BUF_SIZE = 64 * 1024,
    /* lwIP's heap above which out-of-order data is given back, and the memory held for
     * applications above which each connection's window is held to its share (see "Fair shares"
     * in tcp_budget.c). */
    STACK_MEM_HIGH = 256 * 1024 * 1024,
    STACK_RX_HIGH = 128 * 1024 * 1024,
    /* The least MSS taken from a peer's SYN or SYN-ACK (stack.c): Linux's tcp_min_snd_mss, whose
     * default is 48 (TCP_MIN_SND_MSS). */
    STACK_TCP_MSS_FLOOR = 48,
};

void stack_sys_init(uv_loop_t *loop);
/* A local port drawn at random from the dynamic range (RFC 6335), so that an off-path host cannot
 * guess it; callers bind it and draw again if it is taken. */
enum { STACK_PORT_FIRST = 49152, STACK_PORT_TRIES = 16 };
u16_t stack_random_port(void);
/* Binds a new TCP pcb to a random port of the range, taking the port of the oldest connection in
 * TIME_WAIT when every try is taken (tcp.c): for the bridge's connections and DNS over TCP. */
void stack_tcp_bind_port(struct tcp_pcb *pcb, const ip_addr_t *any);
/* SipHash-2-4 of msg under key (sys.c, for the ISNs; exposed for its test vectors). */
uint64_t stack_siphash(const uint8_t key[16], const uint8_t *msg, size_t len);
/* Bytes lwIP has allocated (every pbuf, pcb and segment), counted by sys.c. */
size_t stack_mem_bytes(void);
/* A clock in microseconds for round-trip samples (sys.c): the monotonic clock, or in tests the
 * virtual clock of stack_sys_set_clock() in whole milliseconds. */
uint64_t stack_now_us(void);
/* tcp_output.c: lwIP's tcp_output() without its walk of the unacknowledged queue; lwIP's own
 * files call it in place of tcp_output() (cmake/lwip.cmake), and so does stack/. */
err_t stack_tcp_output(struct tcp_pcb *pcb);
/* sys.c, as lwIP frees the len bytes at p: tcp_output.c forgets what it remembered there. */
void stack_tcp_output_freed(const void *p, size_t len);
/* Tests: check every remembered segment against the queue before it is used (aborts if off). */
void stack_tcp_output_verify(int on);
/* stack.c: hands one IP packet to the tunnel. */
err_t stack_send(struct stack *s, const uint8_t *pkt, size_t len);
/* pmtu.c, the path MTUs that IPv6 packets too big gave (RFC 8201). */
/* Takes in a packet too big from the tunnel (pkt, len: the whole IPv6 packet). */
void stack_pmtu_too_big(struct stack *s, const uint8_t *pkt, size_t len);
/* The path MTU that the IPv6 packet pkt exceeds, or 0 (it fits, or none is known). */
uint32_t stack_pmtu_exceeded(const uint8_t *pkt, size_t len);
/* Sends the IPv6 packet pkt in fragments of at most mtu bytes. */
err_t stack_pmtu_send_fragments(struct stack *s, const uint8_t *pkt, size_t len, uint32_t mtu);
/* Lowers pcb's MSS to fit the path MTU of its IPv6 destination, when nothing is unsent or in
 * flight (lwIP's tcp_write() asserts the last unsent segment fits it, and its retransmission
 * timeout sends with a window of one MSS). */
void stack_pmtu_fit_mss(struct tcp_pcb *pcb);
/* Forgets every path MTU (the stack is freed). */
void stack_pmtu_forget(void);
/* Frees a closing stack once its handles and connections are all gone. */
void stack_maybe_free(struct stack *s);

/* Converting at the one boundary that meets lwIP. */
void stack_addr_to_lwip(const struct v2s_addr *a, ip_addr_t *out);
void stack_addr_from_lwip(const ip_addr_t *a, struct v2s_addr *out);
int stack_err_to_uv(err_t err);
/* Whether ip can be no host behind the VPN whatever its routes: the unspecified address and
 * "this network" (0.0.0.0/8, ::) or loopback (127/8, ::1) (RFC 1122 3.2.1.3, RFC 4291
 * 2.5.2-2.5.3). lwIP would send a packet to one of them into the tunnel all the same. */
int stack_addr_no_host(const ip_addr_t *ip);

/* tcp.c: an ICMP error quoting src:sport -> dst:dport with sequence number seq fails the
 * connection still opening that it names with status; -1 when it names none (or a sequence
 * number the connection has not sent). Resets on tunnel loss; resume on writable. */
int stack_tcp_icmp_error(struct stack *s, const struct v2s_addr *src, const struct v2s_addr *dst,
                         uint16_t sport, uint16_t dport, uint32_t seq, int status);
void stack_tcp_abort_all(struct stack *s, int family); /* family 0: every connection */
/* tcp.c: the tunnel is back after a reconnect with the same addresses: every connection still
 * opening sends its SYN again at once. The ones sent while the tunnel was gone were lost, and
 * the SYN's backoff (1 s doubled per SYN) left a -L or SOCKS client waiting up to 8 s more after
 * the tunnel was back (the lab: 6 s). */
void stack_tcp_tunnel_back(struct stack *s);
/* tcp_listen.c: after the netif took the tunnel's addresses, puts listeners back on the address
 * they were given (lwIP moves them with a changed IPv4 address). */
void stack_tcp_listeners_readdress(struct stack *s);
/* Makes the end of the poll phase write the gathered segments and send the held ACKs. */
void stack_check_arm(struct stack *s);
/* stack.c: drops the held pure ACK (not one with SACK blocks) of the connection keyed in tcp
 * whose number is tcp->ackno, if one is held: a segment that carries the same number follows. */
struct packet_tcp_info;
void stack_ack_forget(struct stack *s, const struct packet_tcp_info *tcp);
/* tcp_send.c: the handshake ACKs held this iteration ride on the application's first bytes, if
 * they are already there (before the held ACKs are sent). */
void stack_tcp_ack_rides(struct stack *s);
void stack_tcp_refills(struct stack *s);
/* tcp_recv.c: writes every connection's gathered segments to its application (end of a loop
 * iteration). */
void stack_tcp_flush_all(struct stack *s);
void stack_tcp_resume_all(struct stack *s);
/* tcp_close.c: frees the slots of acknowledged FINs and sends waiting ones (end of a loop
 * iteration). */
void stack_tcp_fin_pump(struct stack *s);
/* tcp_budget.c, memory under pressure: gives back every connection's out-of-order data (at most
 * every STACK_TCP_RECLAIM_MS). */
void stack_tcp_reclaim(struct stack *s);
/* resolver.c: an ICMP error quoting a query of ours (from our address src:sport to the DNS
 * server dst:dport) ends that lookup's attempt at once, on to the next server; -1 when it names
 * none. */
int stack_resolver_icmp_error(struct stack *s, const struct v2s_addr *src, const struct v2s_addr *dst,
                              uint16_t sport, uint16_t dport);
/* resolver.c: the tunnel is back after a reconnect, with its addresses or new ones: every lookup
 * asks its current attempt's questions again at once (from the new address, if it changed),
 * without spending an attempt. What it sent while the tunnel was gone (the server restarting,
 * the link dark) was lost, and its timer (2 s an attempt) made a -L to a name or a SOCKS client
 * wait that long after the tunnel was back, or fail with "temporary failure" when it was the
 * last attempt. */
void stack_resolver_tunnel_back(struct stack *s);
/* resolver.c: fail every query (tunnel down or stack closing). */
void stack_resolver_abort_all(struct stack *s, int status);
/* resolver.c: frees what the resolver remembers (the stack is being freed). */
void stack_resolver_free(struct stack *s);
/* udp.c, in a receive callback of lwIP's: 1 when the datagram p's UDP length field counts
 * exactly what lwIP hands over. stack.c drops a packet where it does not (packet_udp_drop()),
 * but a datagram lwIP put together from fragments is seen only here, and lwIP 2.1.3 puts one
 * together from every fragment it holds once those from 0 to the last have no hole, fragments
 * past the last included (Linux drops the datagram): anyone who guessed a fragmented datagram's
 * identification could append bytes to it, with a checksum still right. */
struct pbuf;
int stack_udp_length_ok(const struct pbuf *p);
/* udp.c: takes every socket's pcb away (stack closing): recv never runs again, send answers
 * UV_ENETDOWN, and stack_udp_close() only frees the socket. */
void stack_udp_detach_all(struct stack *s);

#endif
