/* The OpenVPN client's timers (timers.c): every timestamp and deadline of the protocol lives in
 * struct ovpn_timers. The rest of the client tells it what happened through the event hooks below
 * and never reads or writes the times itself; the timers answer through struct ovpn_timer_actions
 * and through nothing else. */
#ifndef VPN2SOCKS_OPENVPN_TIMERS_H
#define VPN2SOCKS_OPENVPN_TIMERS_H

#include <stdint.h>

#include <uv.h>

struct ovpn_client;
struct ovpn_config;
struct ovpn_ks;

enum { OVPN_CLIENT_KEYS = 3 }; /* key state slots: the primary, a new one, a lame duck */

/* What the timers ask of the client: the only calls timers.c makes into it. Each is called from
 * the tick (or, for renegotiate, from ovpn_timers_data_moved()), never from an event hook. */
struct ovpn_timer_actions {
    /* Control packets due for (re)transmission and pending acks go out for ks. */
    void (*retransmit)(struct ovpn_client *c, struct ovpn_ks *ks);
    /* ks goes: a lame duck past its transition time. */
    void (*drop_key)(struct ovpn_client *c, struct ovpn_ks *ks);
    /* The session ends and the client reconnects; why goes to the log. */
    void (*restart)(struct ovpn_client *c, const char *why);
    /* The session that was up ends and a new one starts at once on the same link (UDP); why goes
     * to the log. */
    void (*new_session)(struct ovpn_client *c, const char *why);
    /* The link did not connect within connect-timeout. */
    void (*connect_timed_out)(struct ovpn_client *c);
    /* The reconnect wait is over: the next address of the remote (next_addr) or the next attempt. */
    void (*resume)(struct ovpn_client *c, int next_addr);
    void (*ping)(struct ovpn_client *c);
    void (*push_request)(struct ovpn_client *c);
    /* A new key of our own; why goes to the log. */
    void (*renegotiate)(struct ovpn_client *c, const char *why);
    /* A key negotiation ran out of hand-window under tls-exit: the client stops; why goes to the
     * log. */
    void (*tls_exit)(struct ovpn_client *c, const char *why);
};

struct ovpn_timers {
    struct ovpn_client *c;
    const struct ovpn_timer_actions *act;
    uv_loop_t *loop;
    uv_timer_t tick;
    /* Unit tests set a clock of their own; NULL: the loop's (uv_now). */
    uint64_t (*clock)(void *arg);
    void *clock_arg;
    void (*on_closed)(struct ovpn_client *c);
    uint64_t connect_deadline;  /* connect-timeout of the link being opened (0: none) */
    uint64_t connected_at;      /* the link came up: server-poll-timeout runs from here */
    uint64_t wait_until;        /* end of the reconnect wait */
    int wait_next_addr;         /* the wait ends with the remote's next address, not a new attempt */
    uint64_t last_rx;           /* for ping-restart */
    uint64_t last_tx;           /* for ping */
    uint64_t ping_ms;
    uint64_t ping_restart_ms;
    uint64_t push_sent;         /* the latest PUSH_REQUEST, for the retry */
    uint32_t push_count;        /* PUSH_REQUESTs sent in this session: the retry slows down */
    uint64_t keyed_at;          /* when the primary key went live, for reneg-sec */
    uint64_t key_started[OVPN_CLIENT_KEYS];   /* per key slot, for hand-window */
    uint64_t key_window[OVPN_CLIENT_KEYS];    /* per key slot: hand-window in ms, or (0) the config's */
    int send_old_slot;          /* the key before the primary, which data goes out with ... */
    uint64_t send_new_at;       /* ... until then (0: the primary sends); ovpn_timers_send_slot */
    uint64_t key_retire_at[OVPN_CLIENT_KEYS]; /* per key slot: a lame duck goes then (0: not one) */
};

/* Sets up the tick on loop (no callback until ovpn_timers_start()). */
void ovpn_timers_init(struct ovpn_timers *t, uv_loop_t *loop, struct ovpn_client *c,
                      const struct ovpn_timer_actions *act);
/* Runs the tick every 100 ms. 0 or a negative uv error. */
int ovpn_timers_start(struct ovpn_timers *t);
/* No tick any more (the client failed for good or closes). */
void ovpn_timers_stop(struct ovpn_timers *t);
/* Closes the tick's handle; cb(c) runs from its close callback. */
void ovpn_timers_close(struct ovpn_timers *t, void (*cb)(struct ovpn_client *c));
/* The time every part of the client uses, in ms. */
uint64_t ovpn_timers_now(const struct ovpn_timers *t);
/* One tick at the clock's time now: what ovpn_timers_start() runs every 100 ms. */
void ovpn_timers_run(struct ovpn_timers *t);

/* OpenVPN's connect-timeout and server-poll-timeout, in seconds: one setting in OpenVPN (options.c
 * reads both names into ce.connect_timeout), two fields in the config; each is 120 unless given,
 * so the smaller of those not 0 is the one the user set. 0: off (both 0). */
unsigned ovpn_timers_server_poll_s(const struct ovpn_config *cfg);

/* Event hooks. */
void ovpn_timers_connect_started(struct ovpn_timers *t, unsigned timeout_ms);
void ovpn_timers_connected(struct ovpn_timers *t);
void ovpn_timers_packet_sent(struct ovpn_timers *t);
void ovpn_timers_packet_received(struct ovpn_timers *t);
/* The session's first PUSH_REQUEST is about to go: the retry schedule starts over. */
void ovpn_timers_push_started(struct ovpn_timers *t);
/* A PUSH_REQUEST went out (the first or a retry). */
void ovpn_timers_push_sent(struct ovpn_timers *t);
/* The keepalive the push (or the config) settled: 0 turns either off. */
void ovpn_timers_keepalive(struct ovpn_timers *t, uint64_t ping_ms, uint64_t ping_restart_ms);
/* A key negotiation in slot began. */
void ovpn_timers_key_started(struct ovpn_timers *t, int slot);
/* The server said AUTH_PENDING for the key in slot, naming timeout_s (0: none): its hand-window
 * starts again, as long as the server asks within the client's limit. */
void ovpn_timers_auth_pending(struct ovpn_timers *t, int slot, unsigned timeout_s);
/* The key in slot carries the data now; old_slot (-1: none) is a lame duck for an hour (OpenVPN's
 * tran-window). */
void ovpn_timers_key_promoted(struct ovpn_timers *t, int slot, int old_slot);
/* When the lame duck in slot goes (0: it is not one). */
uint64_t ovpn_timers_key_retire_at(const struct ovpn_timers *t, int slot);
/* The slot whose key data goes out with: the primary, or for a while after a renegotiation the
 * key before it (a lame duck now), as OpenVPN chooses (timers.c). The caller falls back to the
 * primary when that key can send no more. */
int ovpn_timers_send_slot(const struct ovpn_timers *t, int primary);
/* The server sent data with the key in slot: it has the key, which may carry ours at once. */
void ovpn_timers_peer_sent(struct ovpn_timers *t, int slot);
/* The client waits delay_ms before resume(next_addr). */
void ovpn_timers_reconnect_wait(struct ovpn_timers *t, uint64_t delay_ms, int next_addr);
/* A data packet of ks went out or came in: renegotiates when ks is the primary key and has
 * carried enough (reneg-bytes, reneg-pkts, packet ids, AEAD usage). */
void ovpn_timers_data_moved(struct ovpn_timers *t, const struct ovpn_ks *ks);

#endif
