/* The native OpenVPN client as a tunnel: vpn2socks --config client.ovpn. */
#ifndef VPN2SOCKS_OPENVPN_CLIENT_H
#define VPN2SOCKS_OPENVPN_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "tunnel/tunnel.h"

struct ovpn_config;
typedef struct uv_loop_s uv_loop_t;

/* Creates the client; it takes ownership of cfg (a loaded config) whatever it returns.
 * 0, -EKEYEXPIRED (our certificate expired) or -EINVAL with a one-line reason in err
 * (certificates or keys that cannot be used, credentials missing). The tunnel comes up after
 * tunnel_start(). */
int ovpn_client_new(struct tunnel **out, uv_loop_t *loop, struct ovpn_config *cfg, const struct tunnel_events *ev,
                    char *err, size_t errcap);

/* Puts cfg (a loaded config) in place of the one t runs on, as OpenVPN does on SIGHUP: the
 * session ends (explicit-exit-notify told when the config asks for it) and a new one starts at
 * once with the first remote of cfg; the tunnel is down meanwhile, then up again, as after any
 * reconnect. Takes ownership of cfg whatever it returns. 0; or -EINVAL / -EKEYEXPIRED with a
 * one-line reason in err (as ovpn_client_new), or -ESHUTDOWN once t is down for good, and then t
 * runs on as it did. */
int ovpn_client_reload(struct tunnel *t, struct ovpn_config *cfg, char *err, size_t errcap);

/* Data channel packets from the server dropped since the start, by reason. */
struct ovpn_drop_counts {
    uint64_t bad_auth;    /* the tag or HMAC did not match: corrupt or forged */
    uint64_t replayed;    /* a packet id seen before, or too old for the replay window */
    uint64_t malformed;   /* too short for the cipher, or a layout no OpenVPN sender makes */
    uint64_t unknown_key; /* a key id with no data key (yet, or any more) */
    uint64_t worn_key;    /* the key failed authentication too often to be used (data.h) */
    uint64_t decompress;  /* bad compression framing, or decompression failed */
    uint64_t too_big;     /* more than the receive buffer holds */
    uint64_t not_up;      /* decrypted before the tunnel was up */
};

/* The counts of t, a tunnel made by ovpn_client_new(). */
void ovpn_client_drop_counts(const struct tunnel *t, struct ovpn_drop_counts *out);
/* The counts as one line for the log ("3 bad tag/HMAC, 0 replayed, ..."); returns what snprintf
 * returns. */
int ovpn_drop_counts_format(const struct ovpn_drop_counts *d, char *out, size_t cap);

#endif
