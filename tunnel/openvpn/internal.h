/* Shared inside tunnel/openvpn/ only: the client object and what its parts call in each other.
 * client.c   the object, its tunnel interface, key state slots and every state transition
 *            (the only code that writes c->state)
 * link.c     resolving, connecting and reconnecting: the transport and its events
 * session.c  the control channel: resets, reliability, TLS, key method 2, PUSH_REQUEST /
 *            PUSH_REPLY and NCP, renegotiation
 * messages.c what the server says on it: PUSH_REPLY, AUTH_FAILED, RESTART, HALT, INFO, ...
 * datapath.c data channel packets: encrypt and send, decrypt and deliver, drop counts
 * timers.c   every timer (timers.h) */
#ifndef VPN2SOCKS_OPENVPN_INTERNAL_H
#define VPN2SOCKS_OPENVPN_INTERNAL_H

#include <stdint.h>

#include <uv.h>

#include "tunnel/openvpn/client.h"
#include "tunnel/openvpn/config.h"
#include "tunnel/openvpn/control.h"
#include "tunnel/openvpn/keys.h"
#include "tunnel/openvpn/push.h"
#include "tunnel/openvpn/reliable.h"
#include "tunnel/openvpn/timers.h"
#include "tunnel/tunnel.h"

struct ovpn_tls;
struct ovpn_tls_ctx;
struct ovpn_data_key;
struct ovpn_transport;

enum ovpn_ks_state {
    OVPN_KS_RESET,  /* our reset sent; waiting for it to be acked (and the server's reset) */
    OVPN_KS_TLS,    /* TLS handshake */
    OVPN_KS_KM,     /* our key-method 2 message sent; waiting for the server's */
    OVPN_KS_KEYED,  /* key material exchanged; data keys installed once the cipher is known */
};

/* One key state: a TLS session and the data channel key it produced. */
struct ovpn_ks {
    int used;
    uint8_t key_id;
    enum ovpn_ks_state state;
    struct ovpn_reliable rel;
    struct ovpn_tls *tls;
    struct ovpn_key_source ours;
    struct ovpn_key_source theirs;
    struct ovpn_data_key *data;
    int server_reset;      /* the server's reset for this key arrived */
    int resend_wkc;        /* tls-crypt-v2: that reset asked for the wrapped client key again
                            * (early negotiation), so our message 1 goes as CONTROL_WKC_V1 */
    char *msg;             /* a control message still missing its NUL */
    size_t msg_len;
};

enum ovpn_client_state {
    OVPN_CLIENT_IDLE,
    OVPN_CLIENT_RESOLVING,
    OVPN_CLIENT_CONNECTING,
    OVPN_CLIENT_HANDSHAKE, /* TLS and key exchange of the first key */
    OVPN_CLIENT_PUSH,      /* waiting for PUSH_REPLY */
    OVPN_CLIENT_UP,
    OVPN_CLIENT_WAITING,   /* pause before the next connection attempt */
    OVPN_CLIENT_DONE,      /* failed for good or closing */
};

/* Which server the next attempt after a restart goes to (OpenVPN's no_advance and
 * advance_next_remote, init.c next_connection_entry). */
enum ovpn_client_pick {
    OVPN_PICK_AUTO,        /* by how the session ended: one that never came up is left for the
                            * remote's next address or the next remote, one that was up tries
                            * its remote again */
    OVPN_PICK_SAME,        /* the same remote again, looked up afresh (after AUTH_FAILED) */
    OVPN_PICK_NEXT,        /* the remote's next address when the session never came up, else
                            * the next remote (RESTART,[N], a push refused) */
    OVPN_PICK_NEXT_REMOTE, /* the next remote (AUTH_FAILED,TEMP[advance remote]) */
};

struct sockaddr;
struct ovpn_transport_events;

enum { OVPN_BUF = OVPN_MAX_PACKET + 512 }; /* each of the client's scratch buffers */
enum { OVPN_TCP_MTU_MIN = 1280 }; /* a TCP link's MSS lowers the tunnel MTU no further (session.c) */

/* The transport as the client uses it: transport.c's functions, or a unit test's fake. */
struct ovpn_link_ops {
    int (*open)(struct ovpn_transport **out, uv_loop_t *loop, const struct sockaddr *addr, enum ovpn_proto proto,
                const struct ovpn_transport_events *ev);
    int (*send)(struct ovpn_transport *t, const uint8_t *pkt, size_t len);
    void (*close)(struct ovpn_transport *t);
    size_t (*mss)(struct ovpn_transport *t); /* TCP_MAXSEG of a TCP link, 0 if unknown */
};

struct ovpn_client {
    struct tunnel t; /* first: ops receive a struct tunnel * */
    uv_loop_t *loop;
    struct ovpn_config *cfg;
    struct ovpn_tls_ctx *tls_ctx;
    enum ovpn_client_state state; /* written by ovpn_client_set_state() (client.c) alone */
    struct ovpn_timers timers;
    const struct ovpn_link_ops *link; /* ovpn_link_transport_ops but in unit tests */
    uv_getaddrinfo_t gai;
    int gai_active;
    int lookup_stale;           /* the lookup under way is for a config a reload replaced */
    struct addrinfo *addrs;     /* results for the current remote */
    struct addrinfo *addr_next; /* next one to try */
    size_t remote;              /* index into cfg->remotes */
    size_t *order;              /* remote order (remote-random shuffles it) */
    unsigned attempts;          /* failed connection attempts in a row */
    unsigned retry_count;       /* connect-retry-max's count, OpenVPN's unsuccessful_attempts:
                                 * 1 for the first attempt, 0 once up, 1 more for each attempt
                                 * that moves on to another remote (client.c) */
    unsigned push_rejects;      /* remotes in a row whose push was refused (session.c) */
    unsigned server_backoff;    /* s: the next reconnect waits at least this (AUTH_FAILED,TEMP) */
    enum ovpn_client_pick next_pick; /* where the next restart goes (client.c), when not AUTO */
    struct ovpn_transport *transport;
    enum ovpn_proto proto;
    struct ovpn_wrap wrap;
    struct ovpn_wrap wrap_keys; /* tls-auth / tls-crypt keys, expanded once; each session starts from them */
    uint8_t sid[OVPN_SID_LEN];
    uint8_t remote_sid[OVPN_SID_LEN];
    int have_remote_sid;
    struct ovpn_ks keys[OVPN_CLIENT_KEYS];
    int primary;                /* index of the key data goes out with; -1 none */
    uint8_t next_key_id;
    struct ovpn_push push;      /* accumulates PUSH_REPLY parts */
    int up_announced;
    /* This session follows one that was up on this same link (ovpn_client_enter_new_session):
     * the server is the same process with the same client instance, so the data channel
     * settings that session negotiated (cipher, key derivation, peer-id) stand until this
     * session's PUSH_REPLY says otherwise, and its keys go in at the key exchange (session.c). */
    int resumed;
    char server_cipher[64];     /* the cipher the server's options string names, "" if none */
    /* negotiated */
    char cipher[64];
    char auth[32];
    enum ovpn_comp_framing comp;
    int ekm;
    int peer_id_set;
    uint32_t peer_id;
    char *auth_token;
    char *auth_token_user;      /* the user the token is for (auth-token-user), NULL if not pushed */
    int congested;
    uint64_t tx_dropped;        /* packets from the stack while no data key was live */
    uint64_t rx_packets;        /* data packets decrypted */
    uint64_t rx_compressed;     /* of those, compressed by the server */
    uint64_t tx_packets;
    /* The IP packets the stack sent and was given (tunnel_stats), keepalive pings left out. */
    uint64_t rx_ip_packets, tx_ip_packets;
    uint64_t rx_bytes, tx_bytes;
    uint64_t reconnects[TUNNEL_RECONNECT_REASONS];
    uint64_t renegotiations;
    int was_up;                 /* a session came up once: a new attempt is a reconnect */
    struct ovpn_drop_counts drops;
    uint8_t *buf;               /* scratch: framing and encryption */
    uint8_t *buf2;
    uint8_t *buf3;              /* decompressed packets, TLS records for the control channel */
    uint8_t *rx;                /* data receive path only: the decrypted payload, whose IP packet
                                 * the stack borrows in place (no send ever writes here) */
    uint8_t *ctl;               /* control path only: TLS plaintext, key exchange, decode scratch */
    int remote_family;          /* of the server address in use */
    int closing;
    void (*close_cb)(struct tunnel *t);
};

/* client.c: the state transitions, one function each. Each checks first that the client is in a
 * state it may come from; one that is not is refused with a log line (a bug: nothing happens). */
int ovpn_client_enter_resolving(struct ovpn_client *c);  /* from IDLE or WAITING */
int ovpn_client_enter_connecting(struct ovpn_client *c); /* from RESOLVING or WAITING */
int ovpn_client_enter_handshake(struct ovpn_client *c);  /* from CONNECTING */
int ovpn_client_enter_push_wait(struct ovpn_client *c);  /* from HANDSHAKE */
int ovpn_client_enter_up(struct ovpn_client *c);         /* from PUSH */
/* The session ends and the client waits before the next attempt (WAITING): at once with the
 * remote's next address when this one never came up, else after a back-off, with the next remote,
 * or the same one again when its session was up (unless next_pick says otherwise); once
 * connect-retry-max is used up it fails instead. Nothing happens once DONE. */
void ovpn_client_enter_restart(struct ovpn_client *c, const char *why);
/* The same, counted as a reconnect for reason rather than for the phase the client was in (a UDP
 * link refused during the handshake: the link, not the handshake, failed). */
void ovpn_client_enter_restart_as(struct ovpn_client *c, enum tunnel_reconnect_reason reason,
                                  const char *why);
/* The session that was up ends and a new one starts at once on the same link (HANDSHAKE, from
 * UP): a hard reset with a new session id, from the same address and port, which an OpenVPN
 * server takes as the same client again (its address kept). why goes to the log. */
void ovpn_client_enter_new_session(struct ovpn_client *c, const char *why);
/* A config read again took over (ovpn_client_reload): the link is closed already, and the
 * client waits for no time before the first remote of the new config (WAITING). Not a failure:
 * neither counted as a reconnect nor backed off. Nothing happens in IDLE or once DONE. */
void ovpn_client_enter_reloaded(struct ovpn_client *c);
/* Gives up for good (DONE): the process exits with the reason's code. Nothing happens once DONE. */
void ovpn_client_enter_failed(struct ovpn_client *c, enum tunnel_down_reason reason, const char *why);
/* A TLS error (session.c: a failed handshake or renegotiation, a refused server certificate;
 * timers.c: one not finished within hand-window) under tls-exit: the client stops (DONE, exit
 * status 2) with "tls-exit: why". Callers check cfg->tls_exit and restart as usual without. */
void ovpn_client_enter_tls_exit(struct ovpn_client *c, const char *why);
/* Whether the session the caller works on ended under it (WAITING or DONE): its keys are gone. */
int ovpn_client_session_over(const struct ovpn_client *c);
/* Whether data moves: the session is up, or it is a resumed one waiting for PUSH_REPLY whose
 * keys are in already (session.c). */
int ovpn_client_data_flows(const struct ovpn_client *c);
const char *ovpn_client_state_name(enum ovpn_client_state s);
/* The lookup's callback ran after ovpn_client_close(): the close finishes. */
void ovpn_client_close_after_lookup(struct ovpn_client *c);

/* client.c: key state slots. */
struct ovpn_ks *ovpn_ks_find(struct ovpn_client *c, uint8_t key_id);
struct ovpn_ks *ovpn_ks_new(struct ovpn_client *c, uint8_t key_id);
void ovpn_ks_free(struct ovpn_ks *ks);
static inline int ovpn_ks_slot(const struct ovpn_client *c, const struct ovpn_ks *ks)
{
    return (int)(ks - c->keys);
}

/* link.c */
extern const struct ovpn_link_ops ovpn_link_transport_ops;
/* Resolves the current remote, then connects (RESOLVING, CONNECTING). */
void ovpn_client_start_attempt(struct ovpn_client *c);
/* Closes the link and forgets the session on it (keys, session ids, push). */
void ovpn_client_close_link(struct ovpn_client *c);
/* Forgets the session (keys, session ids, push) and keeps the link. */
void ovpn_client_forget_session(struct ovpn_client *c);
/* One packet onto the link (none when there is no link). */
void ovpn_client_link_send(struct ovpn_client *c, const uint8_t *pkt, size_t len);
void ovpn_client_resume(struct ovpn_client *c, int next_addr);
void ovpn_client_connect_timed_out(struct ovpn_client *c);

/* session.c */
/* The link is up: the first key starts with a hard reset. */
void ovpn_client_session_start(struct ovpn_client *c);
void ovpn_client_on_control(struct ovpn_client *c, const uint8_t *pkt, size_t len);
/* Puts due (re)transmissions of ks on the wire with acks riding along, then any acks left. */
void ovpn_client_flush(struct ovpn_client *c, struct ovpn_ks *ks);
void ovpn_client_send_push_request(struct ovpn_client *c);
/* explicit-exit-notify over the control channel: "EXIT" on the primary key, its packet put on the
 * link copies times in a row (the link closes next, so there is no retransmission). 0, or
 * -ENOTCONN / -EAGAIN / a TLS error when it did not go out. */
int ovpn_client_send_exit(struct ovpn_client *c, unsigned copies);
/* Starts a renegotiation of our own unless one is under way; why goes to the log. */
void ovpn_client_renegotiate(struct ovpn_client *c, const char *why);
/* The whole PUSH_REPLY is in c->push: settles the tunnel's settings and comes up, or fails. */
void ovpn_client_pushed(struct ovpn_client *c);

/* messages.c */
/* One NUL-terminated message from the server on ks. */
void ovpn_client_message(struct ovpn_client *c, struct ovpn_ks *ks, const char *msg);
/* Replaces the auth-token and, with user, the user it is for; NULL for token forgets both. */
void ovpn_client_set_token(struct ovpn_client *c, const char *token, const char *user);
/* The client refused the push (why): a restart, or the end once every remote refused in turn. */
void ovpn_client_push_failed(struct ovpn_client *c, const char *why);

/* datapath.c */
/* Frames, encrypts and sends one payload with the primary key. 0, or -ENETDOWN without one. */
int ovpn_client_send_data(struct ovpn_client *c, const uint8_t *payload, size_t len);
void ovpn_client_send_ping(struct ovpn_client *c);
void ovpn_client_on_data(struct ovpn_client *c, const uint8_t *pkt, size_t len);

#endif
