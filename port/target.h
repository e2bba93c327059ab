/* A forward's destination, as -L and -R give it: an IP address, or a name resolved at each new
 * connection or flow (by whoever opens it: the routed outbound for -L, this host's resolver for
 * -R). */
#ifndef VPN2SOCKS_PORT_TARGET_H
#define VPN2SOCKS_PORT_TARGET_H

#include <stdint.h>

#include "base/addr.h"

struct port_target {
    char *name;           /* the destination as a name, or NULL when it is an address */
    struct v2s_addr addr; /* when it is an address */
    uint16_t port;
    char text[300];       /* "name:port" (escaped) or "addr:port", for the log */
};

/* Takes host (an IP address without brackets, or a name; an IPv4-mapped IPv6 address is kept
 * as the IPv4 address it maps) and port. 0, or UV_EINVAL (host empty
 * or longer than 255 bytes), UV_ENOMEM. */
int port_target_init(struct port_target *t, const char *host, uint16_t port);
void port_target_free(struct port_target *t);

#endif
