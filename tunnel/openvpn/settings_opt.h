/* The options a .ovpn file and a PUSH_REPLY share: route, route-ipv6, dhcp-option, dns,
 * redirect-gateway and redirect-private, read into tunnel settings. Pure code, below both
 * parsers (config*.c and push.c include this; this includes neither). */
#ifndef VPN2SOCKS_OPENVPN_SETTINGS_OPT_H
#define VPN2SOCKS_OPENVPN_SETTINGS_OPT_H

#include <stddef.h>

#include "tunnel/settings.h"

/* Applies one of the shared options, already split into words (words[0] is the name). Routes
 * via net_gateway go to the excludes; redirect-gateway adds 0.0.0.0/0 (::/0 with its ipv6 flag,
 * none for IPv4 with !ipv4) and sets *redirect_gateway when that is not NULL. Returns 1 when
 * applied, 0 when words[0] is none of these, -EINVAL with a reason (no file or line) in err,
 * or -ENOMEM. */
int ovpn_settings_option(struct tunnel_settings *s, int *redirect_gateway, char **words, int n, char *err,
                         size_t errcap);

/* Writes "option 'VALUE': why" into err, the value shortened and escaped (v2s_shown) because it
 * came from a file or a server. Always -EINVAL. */
int ovpn_option_bad(char *err, size_t errcap, const char *option, const char *value, const char *why);

#endif
