/* The stack behind a fake tunnel, for unit tests of stateful stack code without root: the real
 * stack (every file of stack/, and lwIP) on a real libuv loop, whose packets toward the VPN go to a callback
 * of the test, and into which the test injects packets as if they came from the VPN, all on a
 * virtual clock that only the test moves. What the fault harness (harness.c) does for TCP with
 * links and a scripted peer, this does for one packet at a time: a test plays a server (a DNS
 * server, a router sending ICMP errors) by answering what the stack sends.
 *
 * A test runs one stack per process (lwIP's state is global): harness_tun_up(), then packets and
 * harness_tun_advance(), then harness_tun_down(), which returns the number of libuv handles left
 * open once the stack has closed (a test asserts it is 0). */
#ifndef VPN2SOCKS_TESTS_UNIT_HARNESS_TUN_H
#define VPN2SOCKS_TESTS_UNIT_HARNESS_TUN_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "base/addr.h"
#include "tunnel/tunnel.h"

struct stack;
struct harness_tun;

/* One packet the stack sent toward the VPN (borrowed for the call). The callback runs inside
 * lwIP's output, so it must not inject packets itself: it keeps its answers and the test
 * injects them once the call that sent the packet has returned. */
typedef void (*harness_tun_send_fn)(struct harness_tun *t, const uint8_t *pkt, size_t len);

struct harness_tun_config {
    const char *addr4;        /* the tunnel's IPv4 address ("10.8.0.2"), NULL for none */
    const char *addr6;        /* its IPv6 address, NULL for none */
    const char *dns[4];       /* DNS servers, up to the first NULL */
    const char *domains;      /* search domains, NULL for none */
    uint64_t seed;            /* stack_random() from this seed, so a run replays exactly; 0:
                               * from getrandom(), as in use */
    size_t rx_room;           /* the tunnel's rx_room (tunnel/tunnel.h) */
};

struct harness_tun {
    struct tunnel tunnel;
    uv_loop_t loop;
    struct stack *stack;
    harness_tun_send_fn on_send;
    void *arg;                /* the test's */
    uint64_t sent;            /* packets the stack sent */
    uint32_t now_ms;          /* the virtual clock, from harness_tun_up() on */
    int stack_closed;
};

/* Starts a loop and a stack, and brings the tunnel up with cfg. 0 or a negative errno. */
int harness_tun_up(struct harness_tun *t, const struct harness_tun_config *cfg, harness_tun_send_fn on_send,
                   void *arg);
/* Brings the tunnel up again with cfg's addresses, DNS servers and domains, as after a
 * reconnect (its seed and rx_room are not read). 0 or a negative errno. */
int harness_tun_again(struct harness_tun *t, const struct harness_tun_config *cfg);
/* Hands pkt (borrowed) to the stack as a packet from the VPN and runs what it set off. */
void harness_tun_inject(struct harness_tun *t, const uint8_t *pkt, size_t len);
/* Moves the virtual clock on by ms, running lwIP's timeouts and the loop as it goes (each
 * timeout at its own time). */
void harness_tun_advance(struct harness_tun *t, uint32_t ms);
/* Runs the loop without moving the clock until nothing more happens. */
void harness_tun_settle(struct harness_tun *t);
/* Closes the stack and the loop. Returns how many handles were still open once the stack had
 * called back (0 when all is well), or -1 when the stack never called back. */
int harness_tun_down(struct harness_tun *t);

/* The Internet checksum (RFC 1071) of what sum already holds plus n bytes at p, and its final
 * fold and complement. */
uint32_t harness_tun_sum(uint32_t sum, const uint8_t *p, size_t n);
uint16_t harness_tun_fold(uint32_t sum);
/* Writes an IPv4 UDP packet from src:sport to dst:dport carrying payload, with correct IP and
 * UDP checksums (lwIP checks both). Returns its length, 0 when it does not fit cap. */
size_t harness_tun_udp4(uint8_t *pkt, size_t cap, const struct v2s_addr *src, uint16_t sport,
                        const struct v2s_addr *dst, uint16_t dport, const uint8_t *payload, size_t n);
/* The same for either family (src and dst of one family; IPv6 with no extension header). */
size_t harness_tun_udp(uint8_t *pkt, size_t cap, const struct v2s_addr *src, uint16_t sport,
                       const struct v2s_addr *dst, uint16_t dport, const uint8_t *payload, size_t n);
/* Writes an ICMP echo request (IPv4 type 8, IPv6 type 128) from src to dst with id, seq and
 * payload, with correct checksums. Returns its length, 0 when it does not fit cap. */
size_t harness_tun_icmp_echo(uint8_t *pkt, size_t cap, const struct v2s_addr *src, const struct v2s_addr *dst,
                             uint16_t id, uint16_t seq, const uint8_t *payload, size_t n);
/* Writes an IPv4 TCP segment from src:sport to dst:dport (flags, seq, ack, window field, options
 * of optlen bytes, a multiple of 4, then n bytes of payload), with correct checksums. Returns its
 * length, 0 when it does not fit cap. */
size_t harness_tun_tcp4(uint8_t *pkt, size_t cap, const struct v2s_addr *src, uint16_t sport,
                        const struct v2s_addr *dst, uint16_t dport, uint8_t flags, uint32_t seq, uint32_t ack,
                        uint16_t wnd, const uint8_t *opts, size_t optlen, const uint8_t *payload, size_t n);
/* The option of kind in the TCP header tcp (kind, length, data; within the header), or NULL. */
const uint8_t *harness_tun_tcp_option(const uint8_t *tcp, uint8_t kind);
/* Reads an IPv4 UDP packet: 1 with the addresses, ports and payload (pointing into pkt), or 0
 * for anything else (a fragment included). */
int harness_tun_parse_udp4(const uint8_t *pkt, size_t len, struct v2s_addr *src, uint16_t *sport,
                           struct v2s_addr *dst, uint16_t *dport, const uint8_t **payload, size_t *n);
/* Writes the fragment of the IPv4 packet pkt that carries n bytes of its payload from off (a
 * multiple of 8), with the flags and checksum set. Returns its length, 0 when it does not fit. */
size_t harness_tun_fragment4(uint8_t *out, size_t cap, const uint8_t *pkt, size_t len, size_t off, size_t n);
/* The same for either family (IPv6: UDP right after the fixed header). */
int harness_tun_parse_udp(const uint8_t *pkt, size_t len, struct v2s_addr *src, uint16_t *sport,
                          struct v2s_addr *dst, uint16_t *dport, const uint8_t **payload, size_t *n);

/* For tests that play a DNS server. Reads the question of the query m (12-byte header, the name,
 * type and class) into name (cap bytes), id and qtype; returns the offset after the question, or
 * 0 when m is not one. */
size_t harness_tun_dns_question(const uint8_t *m, size_t n, char *name, size_t cap, uint16_t *id, uint16_t *qtype);
/* Writes the answer to the query m (whose question ends at qend) with id, rcode and one address
 * record of addr (NULL: none) to out, which must hold qend + 28 bytes; returns its length. */
size_t harness_tun_dns_answer(uint8_t *out, const uint8_t *m, size_t qend, uint16_t id, int rcode,
                              const struct v2s_addr *addr);

/* An application for tests that bridge connections by hand: a loopback pair on t's loop whose
 * accepted end is bridged to the stack's connection once it connects. */
struct stack_tcp;
struct harness_tun_app {
    struct harness_tun *t;
    uv_tcp_t listener, client, *accepted;
    uv_connect_t connect_req;
    int connected;       /* the client's connect completed */
    int status;          /* the stack's connect status, once known */
    int done;            /* the bridge is over */
    /* Bytes the application sent before the connection was up, bridged with it (as a listener's
     * with a SOCKS client's optimistic data); set after harness_tun_app_open(). */
    const uint8_t *early;
    size_t n_early;
};

/* Opens the loopback pair (client connected, accepted end ready). 0 or a negative errno. */
int harness_tun_app_open(struct harness_tun *t, struct harness_tun_app *app);
/* Connects through the stack to dst:port; the accepted end is bridged when it connects. As
 * stack_tcp_connect(). */
int harness_tun_app_connect(struct harness_tun_app *app, const struct v2s_addr *dst, uint16_t port,
                            struct stack_tcp **out);
/* Closes the client and the listener (before harness_tun_down()); the accepted end is the
 * bridge's, freed by harness_tun_app_free() once the stack is down. */
void harness_tun_app_close(struct harness_tun_app *app);
void harness_tun_app_free(struct harness_tun_app *app);

/* One TCP connection the stack opens through the fake tunnel to a server the test plays by hand,
 * segment by segment: the stack at 10.8.0.2, the server at 10.9.0.1, and a harness_tun_app as the
 * application, bridged once the handshake is done. What the tests of the stack's TCP share: the
 * handshake, with the SYN-ACK's options as the test asks. */
struct harness_tun_tcp_config {
    uint64_t seed;            /* the tunnel's (harness_tun_config) */
    size_t rx_room;
    uint16_t port;            /* the server's */
    /* The server's SYN-ACK: */
    uint32_t isn;             /* its sequence number */
    uint16_t wnd;             /* its window field */
    uint16_t mss;             /* its MSS option, 0 for none */
    int sack;                 /* SACK permitted */
    int scaled;               /* the window scale option, with shift wscale */
    uint8_t wscale;
};

struct harness_tun_tcp {
    /* First, as the send callback finds h from it; tun.arg is the test's. */
    struct harness_tun tun;
    struct harness_tun_app app;
    struct harness_tun_tcp_config cfg;
    struct v2s_addr us, peer;
    struct stack_tcp *c;          /* the stack's connection, from harness_tun_tcp_connect() */
    harness_tun_send_fn on_send;  /* the test's */
    /* From the stack's SYN: */
    int syns;                     /* how many it sent */
    uint16_t sport;               /* its port */
    uint32_t syn_seq;             /* its sequence number */
    unsigned syn_scale;           /* the window scale it offered, 0 for none */
};

/* The steps of the handshake; a failed one fails the test (test.h). Brings the stack up with
 * cfg's seed and rx_room and opens the application. h keeps the stack's SYN; on_send, when not
 * NULL, sees every other IPv4 TCP segment the stack sends (a 20-byte IP header, 40 bytes at
 * least), with arg as the tunnel's arg. */
void harness_tun_tcp_up(struct harness_tun_tcp *h, const struct harness_tun_tcp_config *cfg,
                        harness_tun_send_fn on_send, void *arg);
/* Connects the application to the server through the stack and runs the loop: the stack must have
 * sent one SYN. */
void harness_tun_tcp_connect(struct harness_tun_tcp *h);
/* The server's SYN-ACK (cfg's, acknowledging the SYN), into the stack but not yet through the
 * loop. */
void harness_tun_tcp_synack(struct harness_tun_tcp *h);
/* The SYN-ACK, then the loop run: the connection must be up (the application bridged). */
void harness_tun_tcp_established(struct harness_tun_tcp *h);
/* All of the above, in order. */
void harness_tun_tcp_open(struct harness_tun_tcp *h, const struct harness_tun_tcp_config *cfg,
                          harness_tun_send_fn on_send, void *arg);
/* Closes the application and the stack, which must leave no handle open. */
void harness_tun_tcp_close(struct harness_tun_tcp *h);

#endif
