/* UDP through the tunnel: a datagram socket of the tunnel's address, for the -L/udp and -R/udp
 * forwards and the outbounds' datagram ops. lwIP fragments what exceeds the tunnel MTU and
 * answers datagrams to a port nobody opened with ICMP port unreachable. */
#ifndef VPN2SOCKS_STACK_UDP_H
#define VPN2SOCKS_STACK_UDP_H

#include <stddef.h>
#include <stdint.h>

#include "base/addr.h"

struct stack;
struct stack_udp;

/* A datagram arrived: from src:sport, sent to dst (one of the tunnel's addresses); data is
 * borrowed for the call. */
typedef void (*stack_udp_recv_cb)(void *arg, const struct v2s_addr *src, uint16_t sport, const struct v2s_addr *dst,
                                  const uint8_t *data, size_t len);

/* Opens a socket bound to local:port (local NULL: every tunnel address, IPv4 and IPv6; port 0: a
 * random port from the dynamic range). It survives the tunnel going down and up again. 0, or
 * UV_EADDRINUSE, UV_ENOMEM, UV_EINVAL. */
int stack_udp_open(struct stack *s, const struct v2s_addr *local, uint16_t port, stack_udp_recv_cb cb, void *arg,
                   struct stack_udp **out);
/* Sends one datagram (data borrowed) to dst:port from the socket's port (and the tunnel address of
 * dst's family), in fragments when it exceeds the tunnel MTU. 0, or UV_EMSGSIZE (larger than an
 * IP datagram can carry: 65507 bytes over IPv4, 65487 over IPv6, where lwIP counts the whole
 * packet in 16 bits), UV_ENETDOWN (tunnel down, or the stack closed), UV_EAFNOSUPPORT (the
 * tunnel has no address of dst's family, or the socket is bound to the other one), UV_ENOMEM. */
int stack_udp_send(struct stack_udp *u, const struct v2s_addr *dst, uint16_t port, const uint8_t *data, size_t len);
/* Answers a datagram that src:sport sent to dst (a tunnel address) on the socket's port with ICMP
 * port unreachable (ICMPv6 for IPv6) from dst, as a host with nothing on that port would: what a
 * forward does when its destination refuses the datagram. The datagram is quoted as rebuilt from
 * what the caller kept of it: len bytes of payload, of which the first head_len (head, borrowed)
 * are known; the quoted UDP checksum is the real one when head holds the whole payload, else 0.
 * 0, or UV_ENETDOWN (tunnel down, the stack closed), UV_EINVAL (dst not a tunnel address of
 * src's family, or head_len > len), UV_EMSGSIZE, UV_ENOMEM. */
int stack_udp_unreachable(struct stack_udp *u, const struct v2s_addr *src, uint16_t sport,
                          const struct v2s_addr *dst, size_t len, const uint8_t *head, size_t head_len);
/* The port the socket is bound to. */
uint16_t stack_udp_port(const struct stack_udp *u);
/* Closes the socket at once (also from its own callback); its callback never runs again. The
 * stack does not wait for its sockets when it closes: it detaches them (no datagram arrives,
 * sending answers UV_ENETDOWN), and this call, still owed by their owners, then only frees. */
void stack_udp_close(struct stack_udp *u);

#endif
