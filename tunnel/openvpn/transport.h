/* The link to the OpenVPN server: a connected UDP socket (one packet per datagram) or a TCP
 * connection (every packet behind a big-endian u16 length). */
#ifndef VPN2SOCKS_OPENVPN_TRANSPORT_H
#define VPN2SOCKS_OPENVPN_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "tunnel/openvpn/config.h"

struct ovpn_transport;
struct sockaddr;
typedef struct uv_loop_s uv_loop_t;

struct ovpn_transport_events {
    void (*connected)(void *arg);
    /* One OpenVPN packet; pkt is writable scratch owned by the transport until return. */
    void (*packet)(void *arg, uint8_t *pkt, size_t len);
    /* The send queue drained after ovpn_transport_send() returned 1. */
    void (*writable)(void *arg);
    /* The link failed (connect refused or timed out, reset, EOF); no more events follow. */
    void (*failed)(void *arg, int status, const char *why);
    void *arg;
};

/* Opens a link to addr. 0 (connected or failed follows, never from inside this call) or a
 * negative uv error. There is no time limit: the client's connect-timeout is a timer of its own
 * (timers.c) that closes the link. */
int ovpn_transport_open(struct ovpn_transport **out, uv_loop_t *loop, const struct sockaddr *addr,
                        enum ovpn_proto proto, const struct ovpn_transport_events *ev);
/* Sends one packet (copied if it cannot go at once). 0, 1 when the queue is now above its high
 * mark, or a negative uv error: UV_ENOBUFS when the queue is full (the packet is dropped; the
 * link carries on). */
int ovpn_transport_send(struct ovpn_transport *t, const uint8_t *pkt, size_t len);
/* TCP, once connected: the largest segment the connection carries (TCP_MAXSEG, what the server
 * was told we take and it told us, less TCP options). 0 for UDP or when the socket cannot say. */
size_t ovpn_transport_mss(struct ovpn_transport *t);
/* Closes the link; no event follows. Memory goes once libuv has closed the handles. */
void ovpn_transport_close(struct ovpn_transport *t);

#endif
