/* The data channel ciphers vpn2socks implements, by OpenVPN's names. A table with no OpenSSL in
 * it, so that the .ovpn parser can check data-ciphers against it and data.c keys its contexts
 * from the same rows. */
#ifndef VPN2SOCKS_OPENVPN_CIPHER_H
#define VPN2SOCKS_OPENVPN_CIPHER_H

enum ovpn_data_mode {
    OVPN_DATA_AEAD,
    OVPN_DATA_CBC,
    OVPN_DATA_PLAIN, /* cipher none */
};

/* Named in data.h's terms; OpenSSL's own spelling beside it. */
struct ovpn_data_cipher_info {
    const char *name;
    const char *ossl;
    enum ovpn_data_mode mode;
    int usage_limited; /* the AES-GCM usage limit applies (data.h) */
};

/* The row of a cipher name (any case), or NULL. ovpn_data_cipher_supported() and
 * ovpn_data_cipher_names() (data.h) are built on it, in cipher.c. */
const struct ovpn_data_cipher_info *ovpn_data_cipher_find(const char *name);

#endif
