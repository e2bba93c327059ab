/* Shared by the OpenVPN link's two files only: transport.c (opening, sending, closing) and
 * transport_rx.c (receiving). */
#ifndef VPN2SOCKS_OPENVPN_TRANSPORT_INTERNAL_H
#define VPN2SOCKS_OPENVPN_TRANSPORT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

#include "tunnel/openvpn/proto.h"
#include "tunnel/openvpn/transport.h"

enum {
    OVPN_TRANSPORT_BATCH = 2 + OVPN_MAX_PACKET, /* ~64 KiB, and one largest framed packet fits */
    OVPN_TRANSPORT_BATCH_DGRAMS = 64,           /* datagrams per sendmmsg() */
    OVPN_TRANSPORT_GSO_SEGS = 4,                /* datagrams per UDP GSO message at most */
    OVPN_TRANSPORT_RX_TCP = 2 + OVPN_MAX_PACKET, /* one whole framed TCP packet fits */
    /* recvmmsg: libuv gives each datagram a 64 KiB slot (its largest datagram) and reads up to
     * 32 per wakeup either way. 4 slots per call: in the bench's UDP download on a quiet
     * machine, 16 slots saw ~200 of our datagrams (ACKs) dropped at the server's socket per run
     * and 4 slots none, like one recvmsg per datagram; on a loaded machine 4 slots saw drops
     * too, so the choice rests on few runs. */
    OVPN_TRANSPORT_RX_SLOT = 64 * 1024,
    OVPN_TRANSPORT_RX_UDP = 4 * OVPN_TRANSPORT_RX_SLOT,
    /* TCP receive coalescing (see ovpn_transport_tcp_lowat): above BULK bytes in one
     * millisecond, the socket wakes us only once LOWAT bytes are waiting, and a timer every
     * DRAIN_MS takes whatever is left below that, until a period brings less than BULK. */
    OVPN_TRANSPORT_TCP_BULK = 16 * 1024,
    OVPN_TRANSPORT_TCP_LOWAT = 64 * 1024,
    OVPN_TRANSPORT_TCP_DRAIN_MS = 1,
    /* UDP receive coalescing (see ovpn_transport_udp_coalesce): above BULK bytes in one
     * millisecond the socket is read only every DRAIN_MS, until a period brings less than LOWAT;
     * each read takes up to DRAIN_SLOTS datagrams into slots as large as libuv's. */
    OVPN_TRANSPORT_UDP_BULK = 16 * 1024,
    OVPN_TRANSPORT_UDP_LOWAT = 8 * 1024,
    OVPN_TRANSPORT_UDP_DRAIN_MS = 1,
    OVPN_TRANSPORT_UDP_DRAIN_SLOTS = 32,
    OVPN_TRANSPORT_UDP_DRAIN_CALLS = 32, /* recvmmsg() calls per period at most: ~1 MiB of datagrams */
    OVPN_TRANSPORT_QUEUE_HIGH = 1024 * 1024,
    OVPN_TRANSPORT_QUEUE_LOW = 256 * 1024,
    /* What the send queue may hold at most: above the high mark the stack's TCP stops, but UDP
     * (SOCKS UDP, forwards, DNS) and ICMP answers take no notice, so a UDP stream faster than a
     * slow link (OpenVPN over TCP on a thin uplink) grew the queue without end. Past this mark
     * each packet is refused with UV_ENOBUFS (TCP sends its own again) and one line says so. */
    OVPN_TRANSPORT_QUEUE_MAX = 16 * 1024 * 1024,
    /* A closing UDP link whose last datagrams (the exit notice) the socket did not take tries
     * again every LINGER_TICK_MS for LINGER_MS at most: openvpn 2.6 stays up 1 s after sending
     * explicit-exit-notify. */
    OVPN_TRANSPORT_LINGER_MS = 1000,
    OVPN_TRANSPORT_LINGER_TICK_MS = 5,
};

struct ovpn_transport {
    uv_loop_t *loop;
    enum ovpn_proto proto;
    union {
        uv_udp_t udp;
        uv_tcp_t tcp;
        uv_handle_t handle;
    } sock;
    uv_timer_t timer;   /* events from the loop: UDP "connected", a failure found while sending */
    uv_idle_t idle;     /* active while tx holds packets: flushes, and keeps poll from blocking */
    uv_check_t check;   /* active while tx holds packets: flushes after the poll phase */
    uv_timer_t drain;   /* TCP, while lowat: reads what is below the low-water mark; UDP, while
                         * coalescing: reads the socket */
    uv_connect_t connect_req;
    struct ovpn_transport_events ev;
    int closing;
    int linger_fd;      /* closed by the owner: a dup of the UDP socket with tx still to send */
    unsigned linger_ticks;
    int handles_open;
    int congested;
    int deferred_status; /* a send failure waiting to be reported */
    int heard;           /* a packet arrived from the server */
    int no_gso;          /* UDP: the kernel refused UDP_SEGMENT once; datagrams go singly */
    size_t gso_too_long; /* UDP: a run of datagrams this large failed with EMSGSIZE; 0: none did */
    size_t queued;      /* bytes in uv_udp_send / uv_write requests */
    uint64_t refused;   /* packets refused at QUEUE_MAX since the queue was last low */
    uint8_t *rx;
    size_t rx_len;
    unsigned rx_batch;  /* UDP: datagrams the current recvmmsg() returned so far */
    int rx_drained;     /* UDP: the last recvmmsg() returned fewer than it had slots for */
    int lowat;          /* TCP: SO_RCVLOWAT is raised (bulk download) */
    int coalescing;     /* UDP: the drain timer reads the socket, libuv does not */
    int coalesce_due;   /* UDP: start coalescing once libuv's current recvmmsg batch is handed over */
    uint8_t *drain_rx;  /* UDP: the drain's slots, allocated when coalescing first starts */
    uint64_t rx_ms;     /* the millisecond rx_ms_bytes were read in */
    size_t rx_ms_bytes;
    size_t drain_period_bytes; /* TCP, while lowat: bytes read since the last drain */
    uint8_t *tx;        /* gathered packets (TCP: framed; UDP: back to back) */
    size_t tx_len;
    unsigned tx_count;  /* UDP: datagrams in tx, their lengths in tx_sizes */
    uint16_t tx_sizes[OVPN_TRANSPORT_BATCH_DGRAMS];
};

union ovpn_transport_gso_cmsg {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
};

struct ovpn_transport_write {
    union {
        uv_write_t w;
        uv_udp_send_t u;
    } req;
    struct ovpn_transport *t;
    size_t len;
    uint8_t data[];
};

/* transport.c */
/* Reports a failure of the link to the client (once), with why in the log. */
void ovpn_transport_fail(struct ovpn_transport *t, int status, const char *why);
/* The same from the loop: for a failure found while the client is calling us. */
void ovpn_transport_fail_later(struct ovpn_transport *t, int status);

/* transport_rx.c: libuv's callbacks for the socket */
void ovpn_transport_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
void ovpn_transport_udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                             unsigned flags);
void ovpn_transport_tcp_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

#endif
