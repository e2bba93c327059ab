#include "tunnel/openvpn/keymethod.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/rand.h>

#include "base/bytes.h"
#include "tunnel/openvpn/config.h"
#include "tunnel/openvpn/data.h"

/* What a 2.6 client offers when the config names no data-ciphers. */
static const char default_ciphers[] = "AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305";

/* IV_PROTO bits we implement: DATA_V2 (1), REQUEST_PUSH (2), TLS_EKM (3), CC_EXIT_NOTIFY (7).
 * The last asks a 2.6 server to push "protocol-flags cc-exit" (with tls-ekm among the flags, not
 * as key-derivation), after which explicit-exit-notify goes over the control channel: a server
 * that hands its data channel to the kernel (DCO) never sees an exit sent as data. */
enum {
    OVPN_IV_PROTO_BASE = (1 << 1) | (1 << 2) | (1 << 7),
    OVPN_IV_PROTO_EKM = 1 << 3,
};

int ovpn_km2_randomize(struct ovpn_key_source *src)
{
    return RAND_bytes((unsigned char *)src, sizeof(*src)) == 1 ? 0 : -EIO;
}

static int put_str(uint8_t **p, uint8_t *end, const char *s)
{
    if (!s) {
        if (end - *p < 2)
            return -ENOSPC;
        *(*p)++ = 0;
        *(*p)++ = 0;
        return 0;
    }
    size_t n = strlen(s) + 1;
    if (n > 0xFFFF)
        return -EINVAL;
    if ((size_t)(end - *p) < 2 + n)
        return -ENOSPC;
    v2s_put_be16(*p, (uint16_t)n);
    *p += 2;
    memcpy(*p, s, n);
    *p += n;
    return 0;
}

int ovpn_km2_build(uint8_t *out, size_t cap, const struct ovpn_key_source *src, const char *options,
                   const char *user, const char *pass, const char *peer_info)
{
    size_t fixed = 4 + 1 + sizeof(src->pre_master) + sizeof(src->random1) + sizeof(src->random2);
    if (cap < fixed)
        return -ENOSPC;
    uint8_t *p = out, *end = out + cap;
    memset(p, 0, 4);
    p += 4;
    *p++ = 2;
    memcpy(p, src->pre_master, sizeof(src->pre_master));
    p += sizeof(src->pre_master);
    memcpy(p, src->random1, sizeof(src->random1));
    p += sizeof(src->random1);
    memcpy(p, src->random2, sizeof(src->random2));
    p += sizeof(src->random2);
    int rc;
    if ((rc = put_str(&p, end, options)) < 0 || (rc = put_str(&p, end, user)) < 0 ||
        (rc = put_str(&p, end, pass)) < 0 || (rc = put_str(&p, end, peer_info)) < 0)
        return rc;
    return (int)(p - out);
}

int ovpn_km2_parse_server(const uint8_t *in, size_t len, struct ovpn_key_source *src, char *options,
                          size_t optcap)
{
    size_t fixed = 4 + 1 + sizeof(src->random1) + sizeof(src->random2);
    if (len < fixed + 2 || (in[4] & 0x0F) != 2)
        return -EBADMSG;
    memset(src->pre_master, 0, sizeof(src->pre_master));
    memcpy(src->random1, in + 5, sizeof(src->random1));
    memcpy(src->random2, in + 5 + sizeof(src->random1), sizeof(src->random2));
    size_t n = v2s_get_be16(in + fixed);
    if (n > len - fixed - 2)
        return -EBADMSG;
    size_t copy = n > 0 ? n - 1 : 0; /* the length counts the NUL */
    if (copy >= optcap)
        copy = optcap - 1;
    memcpy(options, in + fixed + 2, copy);
    options[copy] = '\0';
    return 0;
}

/* The key size in bits a cipher uses, for the options string. */
static int cipher_bits(const char *cipher)
{
    if (strstr(cipher, "128"))
        return 128;
    if (strstr(cipher, "192"))
        return 192;
    return 256;
}

int ovpn_km2_options(char *out, size_t cap, const struct ovpn_config *cfg, int tcp)
{
    const char *cipher = cfg->cipher[0] ? cfg->cipher : "BF-CBC";
    char keydir[24] = "";
    if (cfg->has_tls_auth && cfg->key_direction >= 0)
        snprintf(keydir, sizeof(keydir), ",keydir %d", cfg->key_direction);
    int n = snprintf(out, cap, "V4,dev-type tun,link-mtu %u,tun-mtu %u,proto %s%s,cipher %s,auth %s,keysize %d%s%s,"
                     "key-method 2,tls-client",
                     cfg->tun_mtu + 49, cfg->tun_mtu, tcp ? "TCPv4_CLIENT" : "UDPv4",
                     cfg->comp == OVPN_COMP_FRAMING_LZO ? ",comp-lzo" : "", cipher, cfg->auth,
                     cipher_bits(cipher), keydir, cfg->has_tls_auth ? ",tls-auth" : "");
    return n < 0 ? 0 : (size_t)n < cap ? n : (int)cap - 1;
}

int ovpn_km2_peer_info(char *out, size_t cap, const char *ciphers, int ekm)
{
    int n = snprintf(out, cap,
                     "IV_VER=2.6.14\nIV_PLAT=linux\nIV_PROTO=%d\nIV_NCP=2\nIV_CIPHERS=%s\nIV_TCPNL=1\n"
                     "IV_LZO_STUB=1\nIV_COMP_STUB=1\nIV_COMP_STUBv2=1\nIV_GUI_VER=vpn2socks\n",
                     OVPN_IV_PROTO_BASE | (ekm ? OVPN_IV_PROTO_EKM : 0), ciphers);
    return n < 0 ? 0 : (size_t)n < cap ? n : (int)cap - 1;
}

int ovpn_cipher_list_has(const char *list, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = list; *p;) {
        size_t l = strcspn(p, ":");
        if (l == nl && strncasecmp(p, name, nl) == 0)
            return 1;
        p += l;
        if (*p == ':')
            p++;
    }
    return 0;
}

static void list_add(char *out, size_t cap, const char *name)
{
    if (!name[0] || !ovpn_data_cipher_supported(name) || ovpn_cipher_list_has(out, name))
        return;
    size_t used = strlen(out);
    if (used + strlen(name) + 2 > cap)
        return;
    if (used)
        out[used++] = ':';
    strcpy(out + used, name);
}

void ovpn_km2_offered_ciphers(char *out, size_t cap, const struct ovpn_config *cfg)
{
    const char *base = cfg->data_ciphers[0] ? cfg->data_ciphers : default_ciphers;
    char name[64];
    out[0] = '\0';
    for (const char *p = base; *p;) {
        size_t l = strcspn(p, ":");
        if (l < sizeof(name)) {
            memcpy(name, p, l);
            name[l] = '\0';
            list_add(out, cap, name);
        }
        p += l;
        if (*p == ':')
            p++;
    }
    /* A config that names only `cipher` (as Alibaba Cloud's does) still works with a server that
     * negotiates: the cipher is offered too. */
    list_add(out, cap, cfg->cipher);
    list_add(out, cap, cfg->data_ciphers_fallback);
}
