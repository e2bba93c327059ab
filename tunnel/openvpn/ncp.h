/* Data channel cipher negotiation, from the client's side: which cipher the server may pick.
 * Pure code. */
#ifndef VPN2SOCKS_OPENVPN_NCP_H
#define VPN2SOCKS_OPENVPN_NCP_H

#include <stddef.h>

struct ovpn_config;

/* The cipher the data channel uses once PUSH_REPLY is complete. pushed is the cipher the server
 * pushed and server_occ the one its options string names ("" for either when absent). Writes the
 * name to out and returns 0, or returns -EPERM with a one-line reason in err when the server's
 * choice is not one the config allows, or there is nothing to choose from. */
int ovpn_ncp_choose(const struct ovpn_config *cfg, const char *pushed, const char *server_occ, char *out, size_t cap,
                    char *err, size_t errcap);

/* Whether the config lets the data channel run without encryption (`none` in data-ciphers, cipher
 * or data-ciphers-fallback). */
int ovpn_ncp_allows_none(const struct ovpn_config *cfg);

/* The value of "cipher X" in a key-method 2 options string ("V4,dev-type tun,...,cipher X,..."),
 * into out ("" when absent or too long for cap). */
void ovpn_ncp_options_cipher(const char *options, char *out, size_t cap);

#endif
