/* The UDP relay of a SOCKS5 UDP ASSOCIATE (RFC 1928 section 7): one host UDP socket for one
 * client, on the address the client reached the TCP listener at, and one association of the
 * routed outbound (route/outbound.h) that every datagram goes out on. */
#ifndef VPN2SOCKS_SOCKS_UDP_RELAY_H
#define VPN2SOCKS_SOCKS_UDP_RELAY_H

#include <stdint.h>

struct socks_udp_relay;
struct outbound;
struct sockaddr;
struct sockaddr_storage;
struct v2s_addr;
typedef struct uv_loop_s uv_loop_t;

enum {
    SOCKS_UDP_BUF = 0x10000, /* the receive buffer a relay is given: the largest datagram and more */
};

struct socks_udp_relay_config {
    uv_loop_t *loop;
    struct outbound *out;          /* the routed outbound: the router applies, names resolve in the tunnel */
    const struct sockaddr *local;  /* the TCP connection's local address: the relay binds its IP, port 0 */
    const struct v2s_addr *client; /* datagrams are taken from this IP only (the TCP client's) */
    uint16_t client_port;          /* and from this port; 0: from the first port that sends */
    unsigned idle_timeout_ms;      /* no datagram either way this long: the association ends */
    uint8_t *buf;                  /* SOCKS_UDP_BUF bytes, shared (each datagram is handed on
                                    * before the next is read); the caller keeps it */
    const char *peer;              /* the TCP client, for the log (copied) */
    void (*idle)(void *arg);       /* the idle timeout passed: the owner ends the TCP connection and
                                    * closes the relay (it does not close itself) */
    void *arg;
};

/* Opens the socket and the association and logs "open". bound gets the socket's address (for
 * the reply's BND.ADDR and BND.PORT). 0 or a negative uv error (nothing left open). */
int socks_udp_relay_new(struct socks_udp_relay **out, const struct socks_udp_relay_config *cfg,
                        struct sockaddr_storage *bound);
/* Ends the association at once (no datagram goes or comes after) and logs its "closed" line with
 * what went each way and what was dropped; cb runs once the socket is closed and r freed. */
void socks_udp_relay_close(struct socks_udp_relay *r, void (*cb)(void *arg), void *arg);

#endif
