/* Shared inside tunnel/openvpn/ only: the client object, for the timer policy in timers.c. */
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
    uint64_t started;      /* for hand-window */
    uint64_t retire_at;    /* lame duck: free at this time (0 = not retiring) */
    int server_reset;      /* the server's reset for this key arrived */
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

enum { OVPN_CLIENT_KEYS = 3 };

struct ovpn_client {
    struct tunnel t; /* first: ops receive a struct tunnel * */
    uv_loop_t *loop;
    struct ovpn_config *cfg;
    struct ovpn_tls_ctx *tls_ctx;
    enum ovpn_client_state state;
    uv_timer_t tick;
    uv_getaddrinfo_t gai;
    int gai_active;
    struct addrinfo *addrs;     /* results for the current remote */
    struct addrinfo *addr_next; /* next one to try */
    size_t remote;              /* index into cfg->remotes */
    size_t *order;              /* remote order (remote-random shuffles it) */
    unsigned attempts;          /* failed connection attempts in a row */
    unsigned push_rejects;      /* sessions in a row ended by a pull-filter reject */
    uint64_t wait_until;
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
    uint64_t push_sent;
    int up_announced;
    char server_cipher[64];     /* the cipher the server's options string names, "" if none */
    /* negotiated */
    char cipher[64];
    char auth[32];
    enum ovpn_comp_framing comp;
    int ekm;
    int peer_id_set;
    uint32_t peer_id;
    uint64_t ping_ms;
    uint64_t ping_restart_ms;
    uint64_t last_rx;
    uint64_t last_tx;
    uint64_t keyed_at;          /* when the primary key went live, for reneg-sec */
    uint64_t reneg_not_before;  /* no renegotiation of our own before this (after a failed one) */
    char *auth_token;
    int congested;
    uint64_t tx_dropped;        /* packets from the stack while no data key was live */
    uint64_t rx_packets;        /* data packets decrypted */
    uint64_t rx_compressed;     /* of those, compressed by the server */
    uint64_t tx_packets;
    struct ovpn_drop_counts drops;
    uint8_t *buf;               /* scratch: framing and encryption */
    uint8_t *buf2;
    uint8_t *buf3;              /* decompressed packets, TLS records for the control channel */
    uint8_t *rx;                /* data receive path only: the decrypted payload, whose IP packet
                                 * the stack borrows in place (no send ever writes here) */
    uint8_t *ctl;               /* control path only: TLS plaintext, key exchange, decode scratch */
    int remote_family;          /* of the server address in use */
    int next_addr;              /* the wait ends by trying the remote's next address */
    int closing;
    void (*close_cb)(struct tunnel *t);
};

/* timers.c: the timer policy, run from the tick. */
void ovpn_timers_tick(struct ovpn_client *c, uint64_t now);
/* A data packet of ks went out or came in: renegotiates when ks is the primary key and has
 * carried enough (reneg-bytes, reneg-pkts, packet ids, AEAD usage). */
void ovpn_timers_data_moved(struct ovpn_client *c, const struct ovpn_ks *ks);
/* client.c hooks the policy calls. */
void ovpn_client_restart(struct ovpn_client *c, const char *why);
void ovpn_client_send_ping(struct ovpn_client *c);
void ovpn_client_send_push_request(struct ovpn_client *c);
/* Starts a renegotiation of our own unless one is under way; why goes to the log. */
void ovpn_client_renegotiate(struct ovpn_client *c, const char *why);
void ovpn_client_flush(struct ovpn_client *c, struct ovpn_ks *ks);
void ovpn_ks_free(struct ovpn_ks *ks);

#endif
