/* The fault harness for the TCP stack: the real stack (stack/stack.c, tcp*.c, recovery.c and
 * lwIP) on a real libuv loop, a fake tunnel whose packets cross two faulty links to a scripted
 * peer (harness_peer.h), and applications on real loopback sockets bridged to the stack, all in
 * virtual time. One harness_run() plays one seed of one scenario and checks the invariant: every
 * transfer either completes byte-exact and closes cleanly, or ends with an error reported to the
 * application; none hangs. Errors are allowed only on connections whose script resets them. */
#ifndef VPN2SOCKS_TESTS_UNIT_HARNESS_H
#define VPN2SOCKS_TESTS_UNIT_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "harness_link.h"
#include "harness_peer.h"

struct harness_config {
    const char *test;         /* the unit test, for the replay line of a report */
    const char *scenario;     /* what the seed played, for reports */
    uint64_t seed;
    const struct harness_transfer *xfers;
    size_t n;
    struct harness_link_faults up;   /* stack to peer */
    struct harness_link_faults down; /* peer to stack */
    /* The peer; the harness fills in seed, addr, send and arg. */
    struct harness_peer_config peer;
    uint32_t deadline_ms;     /* virtual: a transfer not over by then has hung */
    /* A transfer that moved no byte for this long (virtual, while not over) has stalled, even if
     * it completes later: what a user sees as a hang; 0: no limit. */
    uint32_t stall_ms;
    /* The same for a transfer the peer resets and that ends in an error: when the peer's reset
     * is lost and the stack only receives, it learns of the reset from its first keepalive
     * (stack/tcp.c), so such a silence is allowed this long; 0: stall_ms. */
    uint32_t reset_stall_ms;
    /* The tunnel says it is congested (tunnel_send() returns 1) while the up link's bottleneck
     * holds more than tunnel_high bytes, and raises writable once it holds tunnel_low or less;
     * 0: never congested. Give up a lossless bottleneck with it. */
    uint32_t tunnel_high, tunnel_low;
    int app_rcvbuf;           /* SO_RCVBUF of the applications' sockets; 0: the default */
    int bridge_sndbuf;        /* SO_SNDBUF of the bridged (accepted) sockets; 0: the default */
    size_t rx_high;           /* the stack's limit on memory held for applications (its fair
                               * shares, stack/tcp_budget.c "Fair shares"); 0: the stack's own */
    size_t rx_bound;          /* the run fails if the stack ever held more than this for its
                               * applications; 0: no bound */
    int verbose;              /* report every transfer, not only the failed ones */
    int quiet;                /* report nothing (tests of the harness, which expect failures) */
};

struct harness_result {
    unsigned completed;       /* byte-exact, both directions closed */
    unsigned reset_errors;    /* ended with an error on a connection the script resets */
    unsigned errors;          /* ended with an error where none was allowed */
    unsigned hung;            /* neither by the deadline */
    unsigned corrupt;         /* a byte differed, went missing, or came in excess */
    unsigned unexpected;      /* a reset connection that completed anyway */
    unsigned stalled;         /* moved no byte for longer than stall_ms */
    uint32_t max_stall_ms;    /* the longest time any transfer moved no byte */
    uint64_t bad_packets;     /* malformed packets or wrong checksums from the stack */
    int leaked;               /* handles still open after the stack closed */
    size_t rx_held_peak;      /* the most the stack held for applications at once */
    unsigned long withholds;  /* how often it cut a budget to its share */
    int over_bound;           /* rx_held_peak passed rx_bound */
    uint32_t end_ms;          /* virtual time when the last transfer ended */
    int failed;               /* any of the above that breaks the invariant */
};

/* Plays one run. Reports every failure (scenario, seed, replay line, each failed connection's
 * application, bridge, lwIP and peer state) on stderr. Returns 0 or a negative errno when the
 * run could not be set up. */
int harness_run(const struct harness_config *cfg, struct harness_result *res);

#endif
