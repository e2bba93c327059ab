/* libFuzzer target for the data channel: hostile packets into ovpn_data_decrypt() for every
 * cipher and header kind, and our own packets with one byte changed, which must never pass
 * authentication (except the DATA_V2 peer id under CBC or cipher none, which OpenVPN leaves
 * outside the HMAC). Buffers are allocated to their exact size so ASan sees any overrun.
 *
 * Input: byte 0 picks the configuration and the mode, byte 1 the output room, byte 2 and 3 the
 * byte to change and how; the rest is the packet (mode 0) or the payload (modes 1 and 2). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tunnel/openvpn/data.h"
#include "tunnel/openvpn/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct {
    const char *cipher, *auth;
    int v2;
} fuzz_configs[] = {
    {"AES-128-GCM", NULL, 0},    {"AES-256-GCM", NULL, 1},  {"CHACHA20-POLY1305", NULL, 1},
    {"AES-128-CBC", "SHA1", 0},  {"AES-256-CBC", "SHA256", 1}, {"AES-192-CBC", "SHA512", 0},
    {"none", "SHA1", 1},         {"none", "none", 0},
};
enum { FUZZ_N_CONFIGS = sizeof(fuzz_configs) / sizeof(fuzz_configs[0]) };

static struct ovpn_data_key *fuzz_key(unsigned c, const uint8_t *block)
{
    struct ovpn_data_params p = {
        .cipher = fuzz_configs[c].cipher, .auth = fuzz_configs[c].auth, .key_id = 0,
        .data_v2 = fuzz_configs[c].v2, .peer_id = 0x10203, .key_block = block,
    };
    struct ovpn_data_key *k = NULL;
    if (ovpn_data_key_new(&k, &p) != 0)
        abort();
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t block[OVPN_KEY_BLOCK_LEN], peer_block[OVPN_KEY_BLOCK_LEN];
    if (block[0] == 0) {
        for (size_t i = 0; i < sizeof(block); i++)
            block[i] = (uint8_t)(i * 37 + 1);
        memcpy(peer_block, block + 128, 128);
        memcpy(peer_block + 128, block, 128);
    }
    if (size < 4 || size > 4 + 4096)
        return 0;
    unsigned config = data[0] % FUZZ_N_CONFIGS, mode = (data[0] >> 4) % 3;
    size_t cap = data[1] == 0xFF ? 8192 : (size_t)data[1] * 8;
    const uint8_t *body = data + 4;
    size_t len = size - 4;

    /* Fresh keys for every input keep the replay window out of the fuzzer's state. */
    struct ovpn_data_key *me = fuzz_key(config, block);
    uint8_t *out = malloc(cap ? cap : 1);
    uint8_t *pkt = NULL;
    if (out == NULL)
        abort();

    if (mode == 0) {
        pkt = malloc(len ? len : 1);
        memcpy(pkt, body, len);
        int rc = ovpn_data_decrypt(me, pkt, len, out, cap);
        if (rc > (int)cap || (rc < 0 && rc != -EBADMSG && rc != -EPROTO && rc != -EALREADY && rc != -ENOSPC))
            abort();
        /* an authenticated packet never passes twice */
        if (rc >= 0 && ovpn_data_decrypt(me, pkt, len, out, cap) != -EALREADY)
            abort();
    } else {
        struct ovpn_data_key *peer = fuzz_key(config, peer_block);
        size_t room = len + ovpn_data_overhead(peer);
        pkt = malloc(room);
        int n = ovpn_data_encrypt(peer, body, len, pkt, room);
        if (len == 0) {
            if (n != -EINVAL)
                abort();
        } else if (n <= 0 || (size_t)n > room) {
            abort();
        } else if (mode == 1) {
            int rc = ovpn_data_decrypt(me, pkt, (size_t)n, out, cap);
            if (cap >= len ? (rc != (int)len || memcmp(out, body, len) != 0) : rc != -ENOSPC)
                abort();
        } else {
            size_t at = data[2] % (size_t)n;
            pkt[at] ^= (uint8_t)(data[3] | 1);
            int rc = ovpn_data_decrypt(me, pkt, (size_t)n, out, cap);
            int unauthenticated = strcmp(fuzz_configs[config].auth ? fuzz_configs[config].auth : "", "none") == 0 ||
                                  (fuzz_configs[config].v2 && !ovpn_data_cipher_is_aead(fuzz_configs[config].cipher) &&
                                   at >= 1 && at <= 3);
            /* Too little room may be noticed before the tag or HMAC is checked; a changed
             * opcode or key id is no packet of this key. */
            if (!unauthenticated && rc != -EBADMSG && (cap >= len || rc != -ENOSPC) && (at != 0 || rc != -EPROTO))
                abort();
        }
        ovpn_data_key_free(peer);
    }
    free(pkt);
    free(out);
    ovpn_data_key_free(me);
    return 0;
}
