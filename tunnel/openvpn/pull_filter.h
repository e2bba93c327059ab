/* One pull-filter line of a config: read by the .ovpn parser, applied by the PUSH_REPLY parser.
 * Its own header so that neither parser includes the other. */
#ifndef VPN2SOCKS_OPENVPN_PULL_FILTER_H
#define VPN2SOCKS_OPENVPN_PULL_FILTER_H

enum ovpn_pull_action {
    OVPN_PULL_ACCEPT,
    OVPN_PULL_IGNORE,
    OVPN_PULL_REJECT,
};

struct ovpn_pull_filter {
    enum ovpn_pull_action action;
    char *text;    /* the prefix, as the config's words give it (quotes removed) */
    unsigned line; /* the config line, for messages */
};

#endif
