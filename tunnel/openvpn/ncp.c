/* Which data channel cipher the client accepts (see ncp.h).
 *
 * OpenVPN 2.6 as a client (ssl_ncp.c, options.c): the server chooses, but only among the client's
 * data-ciphers. A pushed `cipher` outside that list ends the connection ("negotiated cipher not
 * allowed"); a server that pushes none is taken at the cipher its options string names when that
 * one is in the list, else at data-ciphers-fallback when the config sets one, else the
 * connection fails. `none` is allowed only when the config lists it, and then with a warning.
 * OpenVPN never takes `auth` from a push, so neither do we (client.c).
 *
 * Where we differ, on purpose: the config's own `cipher` is part of our list (it is offered in
 * IV_CIPHERS too, ovpn_km2_offered_ciphers()) and is the last fallback, so that a config with
 * only `cipher AES-128-CBC`, as Alibaba Cloud hands out, works against both a negotiating server
 * and one that does not push. 2.6 needs `data-ciphers` or `data-ciphers-fallback` added for that.
 * Either way, every cipher we may end up with is one the user's config names or our default list
 * holds: the server never brings one of its own. */
#include "tunnel/openvpn/ncp.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/addr.h"
#include "tunnel/openvpn/config.h"
#include "tunnel/openvpn/keymethod.h"

enum { NCP_LIST_MAX = 512, NCP_SHOWN_MAX = 48 };

static int ncp_set(char *out, size_t cap, const char *name)
{
    int n = snprintf(out, cap, "%s", name);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int ovpn_ncp_choose(const struct ovpn_config *cfg, const char *pushed, const char *server_occ, char *out, size_t cap,
                    char *err, size_t errcap)
{
    char allowed[NCP_LIST_MAX], shown[NCP_SHOWN_MAX];
    ovpn_km2_offered_ciphers(allowed, sizeof(allowed), cfg);
    if (pushed[0]) {
        if (ovpn_cipher_list_has(allowed, pushed))
            return ncp_set(out, cap, pushed);
        snprintf(err, errcap, "the server chose data cipher %s%s, which is not one we allow (%s); add it to "
                              "data-ciphers only if this server is meant to use it", v2s_shown(pushed, shown, sizeof(shown)),
                 strcasecmp(pushed, "none") == 0 ? " (no encryption)" : "", allowed);
        return -EPERM;
    }
    /* A server that does not negotiate runs the cipher of its options string. */
    if (server_occ[0] && ovpn_cipher_list_has(allowed, server_occ))
        return ncp_set(out, cap, server_occ);
    if (cfg->data_ciphers_fallback[0] && ovpn_cipher_list_has(allowed, cfg->data_ciphers_fallback))
        return ncp_set(out, cap, cfg->data_ciphers_fallback);
    if (cfg->cipher[0] && ovpn_cipher_list_has(allowed, cfg->cipher))
        return ncp_set(out, cap, cfg->cipher);
    if (server_occ[0])
        snprintf(err, errcap, "the server pushed no data cipher and its options name %s, which is not one we "
                              "allow (%s); set data-ciphers-fallback to the server's cipher",
                 v2s_shown(server_occ, shown, sizeof(shown)), allowed);
    else
        snprintf(err, errcap, "the server pushed no data cipher and named none; set data-ciphers-fallback to the "
                              "server's cipher (we allow %s)", allowed);
    return -EPERM;
}

int ovpn_ncp_allows_none(const struct ovpn_config *cfg)
{
    char allowed[NCP_LIST_MAX];
    ovpn_km2_offered_ciphers(allowed, sizeof(allowed), cfg);
    return ovpn_cipher_list_has(allowed, "none");
}

void ovpn_ncp_options_cipher(const char *options, char *out, size_t cap)
{
    out[0] = '\0';
    for (const char *p = options; *p;) {
        size_t l = strcspn(p, ",");
        if (l > 7 && strncmp(p, "cipher ", 7) == 0 && l - 7 < cap) {
            memcpy(out, p + 7, l - 7);
            out[l - 7] = '\0';
        }
        p += l;
        if (*p == ',')
            p++;
    }
}
