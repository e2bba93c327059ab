/* The packet-fd tunnel: a socket (or any datagram fd) of raw IP packets handed over by another VPN
 * client, e.g. `openconnect --script-tun`, which passes it in VPNFD with the settings in the
 * environment. */
#ifndef VPN2SOCKS_TUNNEL_FD_H
#define VPN2SOCKS_TUNNEL_FD_H

#include "tunnel/tunnel.h"

struct tunnel_settings;
typedef struct uv_loop_s uv_loop_t;

/* Creates a tunnel over fd. settings are copied and announced by the up event once started.
 * 0 or a negative errno; *out is freed by tunnel_close(). */
int tunnel_fd_new(struct tunnel **out, uv_loop_t *loop, int fd, const struct tunnel_settings *settings,
                  const struct tunnel_events *ev);

#endif
