/* The fault harness's scripted peer: the servers at the far end of the tunnel, as one small but
 * honest TCP over raw IPv4 packets. It takes the stack's packets (from the harness's link), and
 * answers with packets of its own (handed to the send callback), so that the stack under test
 * meets a peer that loses nothing by itself and can be told to misbehave in the ways real
 * servers do: a full accept queue, a reader that stops (a zero window), a reset mid-transfer.
 *
 * What it implements: the three-way handshake (MSS, window scale, SACK-permitted and timestamps
 * when the stack offers them), in-order receive with an advertised window that never shrinks,
 * out-of-order data kept and reported in SACK blocks, cumulative ACKs, its own retransmission
 * (RFC 6298 timer, go-back-N on timeout, fast retransmit on three duplicate ACKs) with a simple
 * Reno window, zero-window probes, FIN both ways and RST both ways; like Linux, it drops a
 * segment outside its receive window whole (its ACK field too) and answers with an ACK, and it
 * ignores data past a FIN. Every checksum is computed, and every checksum the stack sends is
 * checked. Not modelled: IPv6, IP fragments, urgent data, PAWS, delayed ACKs (it acknowledges
 * every segment), retransmission driven by the stack's SACK blocks. */
#ifndef VPN2SOCKS_TESTS_UNIT_HARNESS_PEER_H
#define VPN2SOCKS_TESTS_UNIT_HARNESS_PEER_H

#include <stddef.h>
#include <stdint.h>

enum harness_kind {
    HARNESS_DOWNLOAD, /* the application sends a request, the peer answers len bytes and FIN */
    HARNESS_UPLOAD,   /* the application sends len bytes and half-closes; the peer FINs after */
    HARNESS_ECHO,     /* the application sends len bytes and half-closes; the peer echoes them */
};

/* The script of one connection, which the application (harness.c) and the peer both follow.
 * Times are virtual milliseconds. */
struct harness_transfer {
    enum harness_kind kind;
    uint16_t port;             /* the peer's port: it names the connection at both ends */
    uint32_t request_len;      /* download: the request the application sends first */
    uint32_t len;              /* download: the answer; upload and echo: what the app sends */
    uint64_t key;              /* pattern of the application's bytes; the peer's answer uses ~key */
    uint32_t start_ms;         /* when the application opens the connection */
    uint32_t reset_after;      /* the peer resets after moving this many bytes; 0: never */
    unsigned accept_drops;     /* accept queue full: segments completing the handshake it drops */
    uint32_t pause_after;      /* the peer's reader stops once it has this many bytes... */
    uint32_t pause_ms;         /* ...for this long, so its window closes; 0: never */
    uint32_t app_pause_every;  /* the application's reader stops after every this many bytes... */
    uint32_t app_pause_ms;     /* ...for this long; 0: never */
    uint32_t corrupt_at;       /* tests of the harness: the peer's answer is wrong at offset
                                * corrupt_at - 1; 0: never */
};

/* How the peer behaves while its accept queue is full (accept_drops, or backlog below). */
enum harness_accept_mode {
    HARNESS_ACCEPT_SYNACK, /* Linux: drops the ACK, repeats its SYN-ACK after 1 s, 2 s, 4 s... */
    HARNESS_ACCEPT_SILENT, /* SYN cookies: drops the ACK and says nothing more */
};

struct harness_peer_config {
    uint64_t seed;
    uint32_t addr;         /* the peer's IPv4 address, host order */
    uint16_t mss;          /* what it announces and the most it sends */
    int sack;              /* it offers SACK (when the stack does) and sends SACK blocks */
    int timestamps;        /* it answers the timestamp option (when the stack sends it) */
    int wscale;            /* its window scale shift; negative: no window scale option */
    uint32_t rcv_buf;      /* its receive buffer: the most it advertises */
    uint32_t snd_buf;      /* echo: its reader stops while this much of its answer is not yet
                            * acknowledged, as an echo server blocked in write(); 0: no limit */
    enum harness_accept_mode accept_mode;
    unsigned backlog;      /* a shared accept queue of this many connections; 0: unbounded */
    uint32_t accept_interval_ms; /* its server takes one connection off the queue this often */
    /* A packet toward the stack; the peer keeps pkt. */
    void (*send)(void *arg, const uint8_t *pkt, size_t len);
    void *arg;
};

/* One connection as the peer sees it, for checks and reports. */
struct harness_peer_status {
    int known;               /* its SYN arrived */
    const char *state;
    uint64_t received;       /* bytes from the stack in order */
    uint64_t consumed;       /* of those, taken by the peer's reader and checked */
    uint64_t sent;           /* bytes the peer has sent at least once */
    uint64_t acked;          /* of those, acknowledged by the stack */
    long mismatch;           /* offset of the first received byte unlike the pattern, or -1 */
    int fin_received, fin_sent, fin_acked;
    uint64_t after_fin;      /* bytes the stack sent past its own FIN (its stream ended early) */
    int reset_sent, reset_received;
};

struct harness_peer;

/* The peer serves the n transfers (kept by pointer: they must outlive it). NULL on no memory. */
struct harness_peer *harness_peer_new(const struct harness_peer_config *cfg,
                                      const struct harness_transfer *xfers, size_t n);
void harness_peer_free(struct harness_peer *p);
/* One packet from the stack, delivered at time now (borrowed). */
void harness_peer_input(struct harness_peer *p, uint32_t now, const uint8_t *pkt, size_t len);
/* The earliest of the peer's timers; 0 when none is armed, else 1. */
int harness_peer_next(const struct harness_peer *p, uint32_t *due);
/* Runs every timer due at or before now. */
void harness_peer_run_timers(struct harness_peer *p, uint32_t now);
/* The connection of transfer i. */
void harness_peer_status(const struct harness_peer *p, size_t i, struct harness_peer_status *st);
/* One line on transfer i's connection for a failure report. */
void harness_peer_describe(const struct harness_peer *p, size_t i, uint32_t now, char *buf, size_t cap);
/* Packets from the stack that were malformed or had a wrong checksum: a stack bug. */
uint64_t harness_peer_bad_packets(const struct harness_peer *p);

#endif
