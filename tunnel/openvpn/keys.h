/* Data channel key derivation when the TLS exporter is not negotiated: OpenVPN's use of the
 * TLS 1.0 PRF (MD5 and SHA1, through OpenSSL's TLS1-PRF KDF). Pure code. */
#ifndef VPN2SOCKS_OPENVPN_KEYS_H
#define VPN2SOCKS_OPENVPN_KEYS_H

#include <stdint.h>

#include "tunnel/openvpn/proto.h"

struct ovpn_key_source {
    uint8_t pre_master[OVPN_PRE_MASTER_LEN]; /* client only */
    uint8_t random1[OVPN_RANDOM_LEN];
    uint8_t random2[OVPN_RANDOM_LEN];
};

/* master = PRF(pre_master, "OpenVPN master secret", c.random1 | s.random1) (48 bytes);
 * out = PRF(master, "OpenVPN key expansion", c.random2 | s.random2 | client_sid | server_sid)
 * (256 bytes, laid out as in ovpn_data_params.key_block). 0 or -EIO (the KDF failed, e.g. MD5
 * unavailable under FIPS). Intermediate secrets are wiped. */
int ovpn_keys_prf(const struct ovpn_key_source *client, const struct ovpn_key_source *server,
                  const uint8_t client_sid[OVPN_SID_LEN], const uint8_t server_sid[OVPN_SID_LEN],
                  uint8_t out[OVPN_KEY_BLOCK_LEN]);

#endif
