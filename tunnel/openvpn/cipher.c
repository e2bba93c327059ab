/* The data channel ciphers vpn2socks implements (cipher.h): the table, and the lookups the .ovpn
 * parser, the key-method offer and data.c share. */
#include "tunnel/openvpn/cipher.h"

#include <stdio.h>
#include <strings.h>

#include "tunnel/openvpn/data.h"

static const struct ovpn_data_cipher_info ovpn_data_ciphers[] = {
    {"AES-128-GCM", "AES-128-GCM", OVPN_DATA_AEAD, 1},
    {"AES-192-GCM", "AES-192-GCM", OVPN_DATA_AEAD, 1},
    {"AES-256-GCM", "AES-256-GCM", OVPN_DATA_AEAD, 1},
    {"CHACHA20-POLY1305", "ChaCha20-Poly1305", OVPN_DATA_AEAD, 0},
    {"AES-128-CBC", "AES-128-CBC", OVPN_DATA_CBC, 0},
    {"AES-192-CBC", "AES-192-CBC", OVPN_DATA_CBC, 0},
    {"AES-256-CBC", "AES-256-CBC", OVPN_DATA_CBC, 0},
    {"none", NULL, OVPN_DATA_PLAIN, 0}, /* last: ovpn_data_cipher_names() leaves it out */
};

const struct ovpn_data_cipher_info *ovpn_data_cipher_find(const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(ovpn_data_ciphers) / sizeof(ovpn_data_ciphers[0]); i++)
        if (strcasecmp(name, ovpn_data_ciphers[i].name) == 0)
            return &ovpn_data_ciphers[i];
    return NULL;
}

int ovpn_data_cipher_supported(const char *cipher)
{
    return ovpn_data_cipher_find(cipher) != NULL;
}

void ovpn_data_cipher_names(char *out, size_t cap)
{
    size_t n = sizeof(ovpn_data_ciphers) / sizeof(ovpn_data_ciphers[0]) - 1, used = 0; /* but none */
    if (cap)
        out[0] = '\0';
    for (size_t i = 0; i < n && used < cap; i++) {
        int w = snprintf(out + used, cap - used, "%s%s", i == 0 ? "" : i + 1 == n ? " and " : ", ",
                         ovpn_data_ciphers[i].name);
        used = w < 0 ? cap : used + (size_t)w;
    }
}

int ovpn_data_cipher_is_aead(const char *cipher)
{
    const struct ovpn_data_cipher_info *c = ovpn_data_cipher_find(cipher);
    return c != NULL && c->mode == OVPN_DATA_AEAD;
}
