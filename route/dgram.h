/* Sending a datagram on a host UDP socket without buffering without bound: what the -L/udp
 * forwards, the direct outbound and the SOCKS UDP relay each need, written once. */
#ifndef VPN2SOCKS_ROUTE_DGRAM_H
#define VPN2SOCKS_ROUTE_DGRAM_H

#include <stddef.h>
#include <stdint.h>

typedef struct uv_udp_s uv_udp_t;
struct sockaddr;

/* Sends one datagram made of head (may be NULL with head_len 0) followed by data on h, to `to`
 * (NULL when h is connected). It goes out at once with uv_udp_try_send() when the socket takes
 * it; otherwise a copy waits in libuv's send queue, but only while that queue holds less than
 * queue_max bytes (each datagram's bytes and its libuv request, so empty datagrams count too):
 * past that it is dropped, as a full interface queue drops. The caller keeps
 * head and data. 0 (sent or queued), or a negative uv error: UV_ENOBUFS (dropped, the queue is
 * full), UV_EMSGSIZE, UV_ENOMEM, ... */
int dgram_send(uv_udp_t *h, const struct sockaddr *to, const uint8_t *head, size_t head_len, const uint8_t *data,
               size_t len, size_t queue_max);

#endif
