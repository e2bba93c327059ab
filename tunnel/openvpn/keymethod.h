/* Key-method 2: the first message each side sends over TLS (key material, options, credentials,
 * peer info), the options string and the peer info the client announces. Pure code. */
#ifndef VPN2SOCKS_OPENVPN_KEYMETHOD_H
#define VPN2SOCKS_OPENVPN_KEYMETHOD_H

#include <stddef.h>
#include <stdint.h>

#include "tunnel/openvpn/keys.h"

struct ovpn_config;

/* Fills src with fresh random key material (pre_master, random1, random2). 0 or -EIO. */
int ovpn_km2_randomize(struct ovpn_key_source *src);

/* The client's message: u32 0 | u8 2 | pre_master | random1 | random2 | str(options) |
 * str(user) | str(pass) | str(peer_info), where str is a u16 length counting a trailing NUL, then
 * the bytes and the NUL, and an absent string is a u16 0. user/pass NULL = absent. Returns the
 * length or -ENOSPC / -EINVAL (a string over 65534 bytes). */
int ovpn_km2_build(uint8_t *out, size_t cap, const struct ovpn_key_source *src, const char *options,
                   const char *user, const char *pass, const char *peer_info);

/* The server's message (no pre_master), read tolerantly: what follows the options string is
 * ignored. Copies the options string (NUL-terminated, truncated to optcap). 0 or -EBADMSG. */
int ovpn_km2_parse_server(const uint8_t *in, size_t len, struct ovpn_key_source *src, char *options,
                          size_t optcap);

/* The options string servers compare for consistency ("V4,dev-type tun,link-mtu ...").
 * cipher is the config's cipher ("" when none). Returns the length written (truncated to cap). */
int ovpn_km2_options(char *out, size_t cap, const struct ovpn_config *cfg, int tcp);

/* Peer info: IV_VER, IV_PLAT, IV_PROTO, IV_NCP, IV_CIPHERS, IV_TCPNL and the compression stubs,
 * newline separated. ciphers is the colon-separated list offered; ekm says whether to offer
 * TLS-exporter key derivation. */
int ovpn_km2_peer_info(char *out, size_t cap, const char *ciphers, int ekm);

/* The data ciphers the client offers: data-ciphers (or our default list), with the config's
 * cipher and data-ciphers-fallback appended when missing, keeping only ciphers we implement. */
void ovpn_km2_offered_ciphers(char *out, size_t cap, const struct ovpn_config *cfg);
/* Whether name is one of the colon-separated list's cipher names (compared case-insensitively,
 * as OpenSSL's names are). */
int ovpn_cipher_list_has(const char *list, const char *name);

#endif
