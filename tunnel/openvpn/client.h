/* The native OpenVPN client as a tunnel: vpn2socks --config client.ovpn. */
#ifndef VPN2SOCKS_OPENVPN_CLIENT_H
#define VPN2SOCKS_OPENVPN_CLIENT_H

#include <stddef.h>

#include "tunnel/tunnel.h"

struct ovpn_config;
typedef struct uv_loop_s uv_loop_t;

/* Creates the client; it takes ownership of cfg (a loaded config) whatever it returns.
 * 0, -EKEYEXPIRED (our certificate expired) or -EINVAL with a one-line reason in err
 * (certificates or keys that cannot be used, credentials missing). The tunnel comes up after
 * tunnel_start(). */
int ovpn_client_new(struct tunnel **out, uv_loop_t *loop, struct ovpn_config *cfg, const struct tunnel_events *ev,
                    char *err, size_t errcap);

#endif
