/* PUSH_REPLY: the options the server pushes, parsed into what the client acts on. Pure code but
 * for the log line of a pull-filter decision; a reply may arrive in several messages
 * (push-continuation). The options a config shares with a push are in settings_opt.h. */
#ifndef VPN2SOCKS_OPENVPN_PUSH_H
#define VPN2SOCKS_OPENVPN_PUSH_H

#include <stddef.h>
#include <stdint.h>

#include "tunnel/openvpn/comp.h"
#include "tunnel/openvpn/pull_filter.h"
#include "tunnel/settings.h"

enum ovpn_topology {
    OVPN_TOPOLOGY_NET30,  /* OpenVPN's default */
    OVPN_TOPOLOGY_P2P,
    OVPN_TOPOLOGY_SUBNET,
};

struct ovpn_push {
    struct tunnel_settings settings; /* ifconfig, ifconfig-ipv6, route, route-ipv6, dhcp-option
                                      * DNS/DNS6/DOMAIN/DOMAIN-SEARCH, tun-mtu; redirect-gateway adds
                                      * 0.0.0.0/0 (and ::/0 with its ipv6 flag) to the routes */
    enum ovpn_topology topology;
    struct v2s_addr ifconfig_remote; /* ifconfig's second argument: the peer (net30, p2p) or the
                                      * netmask (subnet); kept so a later topology can re-read it */
    int ifconfig_not_mask;           /* topology subnet, and that argument is not a netmask: an
                                      * error if still so when the last part is in */
    int redirect_gateway;            /* redirect-gateway or redirect-gateway def1 pushed */
    char cipher[64];                 /* "" when not pushed */
    char auth[32];
    int peer_id_set;
    uint32_t peer_id;
    int key_derivation_ekm;          /* key-derivation tls-ekm, or protocol-flags ... tls-ekm */
    int cc_exit;                     /* protocol-flags cc-exit */
    int explicit_exit_notify_set;    /* explicit-exit-notify pushed: it stands over the config's */
    unsigned explicit_exit_notify;   /* its count (0: off) */
    int comp_set;                    /* compress / comp-lzo pushed */
    enum ovpn_comp_framing comp;
    unsigned ping;                   /* 0 = not pushed */
    unsigned ping_restart;
    char *auth_token;                /* NULL when not pushed */
    char *auth_token_user;           /* auth-token-user, base64-decoded; NULL when not pushed */
    int continuation;                /* push-continuation: 2 = more follows, 1 = last, 0 = absent */
};

void ovpn_push_init(struct ovpn_push *p);
void ovpn_push_free(struct ovpn_push *p);
/* Parses one PUSH_REPLY message ("PUSH_REPLY,opt,opt,..." without the trailing NUL) into p,
 * adding to what earlier parts gave. Unknown options are ignored (servers push many we need
 * not act on); malformed ones known to us give -EINVAL with a reason in err. */
int ovpn_push_parse(struct ovpn_push *p, const char *msg, char *err, size_t errcap);
/* ovpn_push_parse with the config's pull-filter lines applied first, as OpenVPN does: each pushed
 * option's text as the server sent it (leading whitespace skipped, quotes and spacing kept) is
 * compared with each filter's text as a prefix, in order, and the first match decides: accept
 * takes the option, ignore drops it (with a log line), reject ends the parse with -EPERM and err
 * naming the option and the filter. An option no filter matches is taken. */
int ovpn_push_parse_filtered(struct ovpn_push *p, const char *msg, const struct ovpn_pull_filter *filters,
                             size_t n_filters, char *err, size_t errcap);

#endif
