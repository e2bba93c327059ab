/* The one interface between a VPN protocol and the stack. A tunnel carries raw IP packets; the
 * stack and the listeners never know which protocol is underneath. */
#ifndef VPN2SOCKS_TUNNEL_TUNNEL_H
#define VPN2SOCKS_TUNNEL_TUNNEL_H

#include <stddef.h>
#include <stdint.h>

struct tunnel;
struct tunnel_settings;

/* Why a tunnel went down; the process maps these to exit codes. */
enum tunnel_down_reason {
    TUNNEL_DOWN_CLOSED = 1, /* the VPN side closed it (peer went away, EOF) */
    TUNNEL_DOWN_ERROR,      /* an I/O error on the tunnel */
    TUNNEL_DOWN_AUTH,       /* authentication or certificate failure */
};

/* Events a tunnel raises. All run on the loop thread. */
struct tunnel_events {
    /* The tunnel is up with these settings (valid only during the call; copy what is kept). */
    void (*up)(void *arg, const struct tunnel_settings *settings);
    /* One IP packet arrived; borrowed for the duration of the call. */
    void (*packet)(void *arg, const uint8_t *pkt, size_t len);
    /* The queue toward the VPN drained below its low mark after tunnel_send() said it was full. */
    void (*writable)(void *arg);
    /* The tunnel is gone for good; why is a human-readable reason. This may be raised from inside
     * tunnel_send(), that is from inside the stack: the handler must only note it and act later
     * (from its own loop callback), never close the stack from here. */
    void (*down)(void *arg, enum tunnel_down_reason reason, const char *why);
    void *arg;
};

/* Where a tunnel is, for readiness (--status): connecting the first time, up, reconnecting after
 * it was up or after a failed attempt, or down for good. */
enum tunnel_state {
    TUNNEL_STATE_CONNECTING,
    TUNNEL_STATE_UP,
    TUNNEL_STATE_RECONNECTING,
    TUNNEL_STATE_DOWN,
};

/* Why a tunnel reconnected: the phase the attempt or session was in when it ended. */
enum tunnel_reconnect_reason {
    TUNNEL_RECONNECT_RESOLVE,   /* the server's name did not resolve */
    TUNNEL_RECONNECT_CONNECT,   /* the link did not open (refused, timed out, unreachable) */
    TUNNEL_RECONNECT_HANDSHAKE, /* TLS, key exchange or the pushed options failed */
    TUNNEL_RECONNECT_SESSION,   /* a session that was up ended (keepalive timeout, server restart, link lost) */
    TUNNEL_RECONNECT_REASONS,
};

/* A tunnel's counters since it started (the metrics and the SIGUSR1 log). Bytes are the IP
 * packets' own, without the VPN's framing; in is from the VPN to us. */
struct tunnel_stats {
    enum tunnel_state state;
    uint64_t packets_in, packets_out;
    uint64_t bytes_in, bytes_out;
    /* Packets from the stack the tunnel did not take, since none could leave: no data key while
     * down (OpenVPN), the VPN client not reading past the queue's cap (packet fd). */
    uint64_t packets_refused;
    uint64_t reconnects[TUNNEL_RECONNECT_REASONS];
    uint64_t renegotiations; /* data channel keys renewed while up */
};

struct tunnel_ops {
    int (*start)(struct tunnel *t);
    int (*send)(struct tunnel *t, const uint8_t *pkt, size_t len);
    void (*close)(struct tunnel *t, void (*cb)(struct tunnel *t));
    /* Optional: logs the tunnel's counters (packets each way, drops by reason). */
    void (*log_stats)(struct tunnel *t);
    /* Optional: fills the counters it keeps (the rest stay 0, the state UP). */
    void (*get_stats)(const struct tunnel *t, struct tunnel_stats *out);
};

struct tunnel {
    const struct tunnel_ops *ops;
    struct tunnel_events ev;
    /* Set by tunnels whose path from the VPN server to us holds little and drops the rest: about
     * how many bytes of TCP payload it can queue (0: plenty, or not known). The stack keeps a
     * connection's receive window within it unless the connection's round trip needs more
     * (stack/tcp_budget.c, "Windows on a short path"). */
    size_t rx_room;
};

/* Starts the tunnel; events follow. 0 or a negative errno. */
static inline int tunnel_start(struct tunnel *t)
{
    return t->ops->start(t);
}

/* Sends one IP packet; the tunnel copies what it cannot send at once, so the caller keeps pkt.
 * Returns 0 when sent or queued, 1 when queued and the queue is now above its high mark (callers
 * should stop producing until the writable event), or a negative errno when the tunnel is down
 * or cannot take the packet now (between sessions; -ENOBUFS: its queue is at its cap, far past
 * the high mark). A packet is never dropped silently. */
static inline int tunnel_send(struct tunnel *t, const uint8_t *pkt, size_t len)
{
    return t->ops->send(t, pkt, len);
}

/* Stops the tunnel; cb runs once every handle is closed and t may be freed. */
static inline void tunnel_close(struct tunnel *t, void (*cb)(struct tunnel *t))
{
    t->ops->close(t, cb);
}

/* Logs the tunnel's counters, if it keeps any (on SIGUSR1 and at exit). */
static inline void tunnel_log_stats(struct tunnel *t)
{
    if (t->ops->log_stats)
        t->ops->log_stats(t);
}

/* The tunnel's counters (cheap: the metrics endpoint reads them at each scrape). */
static inline void tunnel_get_stats(const struct tunnel *t, struct tunnel_stats *out)
{
    *out = (struct tunnel_stats){.state = TUNNEL_STATE_UP};
    if (t->ops->get_stats)
        t->ops->get_stats(t, out);
}

/* "connecting", "up", "reconnecting", "down"; "resolve", "connect", "handshake", "session". */
static inline const char *tunnel_state_name(enum tunnel_state s)
{
    static const char *const names[] = {"connecting", "up", "reconnecting", "down"};
    return (unsigned)s < 4 ? names[s] : "?";
}

static inline const char *tunnel_reconnect_reason_name(enum tunnel_reconnect_reason r)
{
    static const char *const names[] = {"resolve", "connect", "handshake", "session"};
    return (unsigned)r < TUNNEL_RECONNECT_REASONS ? names[r] : "?";
}

#endif
