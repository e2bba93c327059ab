/* tunnel/openvpn/data.c: the data channel, against packets of the stock openvpn 2.6 binary, an
 * independent decryption written here with EVP, tampering, truncation and the replay window. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "test.h"
#include "tunnel/openvpn/data.h"
#include "tunnel/openvpn/proto.h"

enum { DATA_BUF = 2048 };

static size_t data_hex(uint8_t *out, size_t cap, const char *hex)
{
    size_t n = strlen(hex) / 2;
    ASSERT(strlen(hex) % 2 == 0 && n <= cap);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        ASSERT(sscanf(hex + 2 * i, "%2x", &v) == 1);
        out[i] = (uint8_t)v;
    }
    return n;
}

static void data_fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

static struct ovpn_data_key *data_key(const char *cipher, const char *auth, uint8_t key_id,
                                      int v2, uint32_t peer_id, const uint8_t *block)
{
    struct ovpn_data_params p = {
        .cipher = cipher, .auth = auth, .key_id = key_id, .data_v2 = v2, .peer_id = peer_id,
        .key_block = block,
    };
    struct ovpn_data_key *k = NULL;
    ASSERT(ovpn_data_key_new(&k, &p) == 0);
    ASSERT(k != NULL);
    return k;
}

/* The server's view of a key block: it sends with the client's receive slots. */
static void data_swap(const uint8_t *block, uint8_t *server)
{
    memcpy(server, block + OVPN_KEY_BLOCK_LEN / 2, OVPN_KEY_BLOCK_LEN / 2);
    memcpy(server + OVPN_KEY_BLOCK_LEN / 2, block, OVPN_KEY_BLOCK_LEN / 2);
}

/* Every configuration the data channel knows, for the property tests. */
static const struct data_config {
    const char *cipher, *auth;
    int v2;
    int aead;
    int authenticated;
} data_configs[] = {
    {"AES-128-GCM", NULL, 0, 1, 1},
    {"AES-192-GCM", "SHA1", 1, 1, 1},
    {"AES-256-GCM", "none", 1, 1, 1},
    {"CHACHA20-POLY1305", NULL, 0, 1, 1},
    {"CHACHA20-POLY1305", NULL, 1, 1, 1},
    {"AES-128-CBC", "SHA1", 0, 0, 1},
    {"AES-192-CBC", "SHA256", 1, 0, 1},
    {"AES-256-CBC", "SHA512", 0, 0, 1},
    {"AES-256-CBC", "SHA1", 1, 0, 1},
    {"none", "SHA1", 0, 0, 1},
    {"none", "SHA256", 1, 0, 1},
    {"none", "none", 0, 0, 0},
};

/* Packets captured between two stock openvpn 2.6.14 processes (dev null, UDP, a relay logging
 * every datagram): keep-alive pings, whose plaintext is the ping magic. Keys are those the
 * server logged at verb 11 ("Master Encrypt/Decrypt", and the implicit IV of "ENCRYPT IV");
 * the rest of each slot is unused and left zero. The PRF sessions (client with --pull) use
 * DATA_V1; the p2p sessions negotiated the TLS exporter and DATA_V2 with a derived peer id. */
struct data_vector {
    const char *name, *cipher, *auth;
    int v2;
    uint32_t peer_id;
    const char *cipher0, *hmac0, *cipher1, *hmac1;
    const char *s2c[3];
    const char *c2s[2];
};

static const struct data_vector data_vectors[] = {
    {"AES-128-CBC SHA1", "AES-128-CBC", "SHA1", 0, 0,
     "7dc017ff4327d08daa7eada8dfce0e80", "3663dd70fcb471db78688442685f514190e4c934",
     "f0994bc7a28094fee44a80b9316f863f", "3ead103f5f30de4884f1a2ad7167c3b5db589786",
     {"303f9dcf04bf48c92b5e90daf16a46cc62d246ffe7f72412cfe68fa0480d897e8aeaee57592d00a26b27a0a4"
      "fad243ffe42c7c49495d420549416f46df3e56385e66b83cdd",
      "305d4284dae7f1920052c0d203e588f1468d2cdbbedc56bd59b3a900f90fb2e7c9ef6d5f7f49301706a0e69d"
      "2f37e0d17a96fede8aa33a42497362e93c93bf17284cf8f538",
      "3018dd61e694fca3ace133e2954abf65ee6a7507517b7b087d7591f933064f65d5116bc2b00bbd2dc0f1644d"
      "0afdb20bcf447a7203600b537167cd5252f940d8ebc7e594e2"},
     {"3051d03190862445891ee06b48073b0f407ae4fc335a2f4526c86d635590d096edf674d6bfa936511c1d7311"
      "5ceacd2802d86c2d175731d0b84797353b8f2f7ea5c9b74858",
      "30f61f6b62a7a06986e1c91d1e490f0b6cb67cb96963f45cf0e4a96692002198ae8081248c0e4fea45166947"
      "6d3165f34e7968708864e9075526be7c4990cc762ef388ff31"}},
    {"AES-128-GCM", "AES-128-GCM", NULL, 0, 0,
     "48d8473be09ccb8310f3c03f0e7884a6", "8f71057bf40101eb",
     "bd841e5d0e5f9fdea162bbb444e155bd", "8cf00ebcadd35d99",
     {"3000000001e6da2bf6e00027dcf163dd3bffbd230d9eef300de1f091ebe7a8ca80bef9feb8",
      "3000000002158a18f2f66a273c399aadb613a2e7091190acaff78218193c9e0eb088c253be",
      "30000000038c89988ca374b67e41a68f296f0b3b498ee0da5a7b9e71fa84785031bd7ab61a"},
     {"3000000001cc76d6c9b38661d9763cde02a2c0e6f96af791e43e0f6d3c47c9658e217f6668",
      "3000000002db97d21aa41094c75169f61078059cef0c6a64282bd0ccbe942e15759e1a097f"}},
    {"AES-256-CBC SHA256", "AES-256-CBC", "SHA256", 0, 0,
     "328f285451e9a794b1f9bf413ba63e364205ba7da40bade2ca5f3f77e7608dd3",
     "4cc6a37451ff677bbbc0ef8d69831ef76a8ac9f1eba1029de8ca2abdddc2cde7",
     "408c370289a5e3d1fc9bd2951959bad3bfdabf9bdf050254c88903051077ed6a",
     "16eb0cccebe32f8322a6876211932a9852b6d5d0ff609fdc494ec0b802fee82c",
     {"3015763b98f478928ada37e1c3bcc8907f957583d57cf32215ca92b2c9842bce7d0512e19e5feeff5d109539"
      "095147bcaff1f32f83f11bfaaf5a1b99f914838dab077a3a0dcc0da769baf601cfb4411724",
      "308f183238f66eae5f9adca2b5fdf27dedda8826fda3d0dc94b4c127b51a0c3554163e026d27c90154978515"
      "758f451c7a44611f78a38c78b46a3dcd8ac701e88e3b2880dc0c129cce22e94fe25cd1b6ab",
      "309c81ef5a2da764d6c30c17610b6d11a4d8468424cf4d8749f247d23cf5fc6a46ed33db3e9a66cd08520875"
      "220610c6eb9961288c9be65dcf8d6644760c0f372593da0b3496fe9199240e9cbf42a1b6b5"},
     {"301770c82c298db09850e175009162d8527021e98e66ab7e7b87c3a0e6028f04f3ba7271938f70fb39087e0c"
      "976ac8d0190114f9f45e67da408139b20826f6300b1a89576ecc6caf270eec00e6b7fb29b3",
      "300413941a7bf6b5693b4b673e7a12d6ab77a6efcba467dbe5ba109fcf330c566be1ca7a843edcfd7ed0808f"
      "f729004f57972f0135502520d44440ec3fbedc41ddfce36d3dbe46e50d0a47045d40c282ef"}},
    {"AES-256-GCM DATA_V2", "AES-256-GCM", NULL, 1, 0xc58369,
     "1ca9331ed1a9dfe20f01467528a369a2db1189d7812bcb35820ee58381853b98", "f93c49ff43df7396",
     "d631def413059e8593af492f6187600a5c1a2703a715701618ea082a4367ce62", "3b4277c2a80d1498",
     {"48c583690000000176f25258f9a64dc2cbad96db84ebd5242866a9e94914b2fe917277051b47d923",
      "48c58369000000028f7fcdaa1916dc4085b950accce513df64799326bf835449e718ec714ad61390",
      "48c5836900000003d6cc8b530c386140fd690014a348e47a2ff0132794398ecbce1eb946528ab339"},
     {"48c5836900000001c4ab37b5eed6a5295fe295078e8808edae0057f8b5e075e08acb88c487d0840a",
      "48c58369000000026e05bf1146dae81aeed7788a82dbb6d825dd85ae6c62e9eff056af936f279896"}},
    {"CHACHA20-POLY1305 DATA_V2", "CHACHA20-POLY1305", NULL, 1, 0xd833f3,
     "d4860f8783f7fb05879bcfa80c10c055b66a5076f30721405d8ee2fd640d66e5", "0735585807c21cbe",
     "cf6b607ce0595b61f38178927a38414165214bc2aac32d204c6bb2fb8316eeec", "b5eb847494baf654",
     {"48d833f3000000017121f7ffbec0ce893c3479078647352af2fca253b3326f81907d73aa04169454",
      "48d833f300000002b10d2de811af0267f66be1e9b1db420f58fc1bceb2251ec8743949b4f15b182e",
      "48d833f300000003f42263bf1e15e6fb9d15a5db5eed83a4b5ef5a2324bc4c89773e4cabb5fc01e9"},
     {"48d833f3000000014f20dfd97e258caf9a390c9853c5b0a64c2065424fb70388b9165d8e3c9a7539",
      "48d833f30000000287e488d3dad6a546d840740aee464eaf1fe60f79217a7ead636e960e616e28c7"}},
};

TEST_IMPL(ovpn_data_openvpn_vectors)
{
    for (size_t row = 0; row < ARRAY_SIZE(data_vectors); row++) {
        const struct data_vector *v = &data_vectors[row];
        uint8_t block[OVPN_KEY_BLOCK_LEN] = {0}, server_block[OVPN_KEY_BLOCK_LEN];
        uint8_t pkt[DATA_BUF], out[DATA_BUF];
        const char *slots[4] = {v->cipher0, v->hmac0, v->cipher1, v->hmac1};

        for (int s = 0; s < 4; s++)
            data_hex(block + s * OVPN_KEY_SLOT_LEN, OVPN_KEY_SLOT_LEN, slots[s]);
        data_swap(block, server_block);
        struct ovpn_data_key *client = data_key(v->cipher, v->auth, 0, v->v2, v->peer_id, block);
        struct ovpn_data_key *server = data_key(v->cipher, v->auth, 0, v->v2, v->peer_id, server_block);

        /* What the stock server sent, the client decrypts; in order, then a replay. */
        for (size_t i = 0; i < ARRAY_SIZE(v->s2c); i++) {
            size_t n = data_hex(pkt, sizeof(pkt), v->s2c[i]);
            int rc = ovpn_data_decrypt(client, pkt, n, out, sizeof(out));
            ASSERT_ROW(rc == (int)sizeof(ovpn_ping_magic), "%s s2c %zu rc %d", v->name, i, rc);
            ASSERT_ROW(memcmp(out, ovpn_ping_magic, sizeof(ovpn_ping_magic)) == 0, "%s %zu", v->name, i);
            ASSERT_ROW(ovpn_data_decrypt(client, pkt, n, out, sizeof(out)) == -EALREADY, "%s", v->name);
        }
        /* What the stock client sent, our key in the server's place decrypts; and for AEAD,
         * which is deterministic, our client encrypts the same ping to the same bytes. */
        for (size_t i = 0; i < ARRAY_SIZE(v->c2s); i++) {
            size_t n = data_hex(pkt, sizeof(pkt), v->c2s[i]);
            int rc = ovpn_data_decrypt(server, pkt, n, out, sizeof(out));
            ASSERT_ROW(rc == (int)sizeof(ovpn_ping_magic), "%s c2s %zu rc %d", v->name, i, rc);
            ASSERT_ROW(memcmp(out, ovpn_ping_magic, sizeof(ovpn_ping_magic)) == 0, "%s %zu", v->name, i);

            rc = ovpn_data_encrypt(client, ovpn_ping_magic, sizeof(ovpn_ping_magic), out, sizeof(out));
            if (ovpn_data_cipher_is_aead(v->cipher)) {
                ASSERT_ROW(rc == (int)n && memcmp(out, pkt, n) == 0, "%s encrypt %zu", v->name, i);
            } else {
                ASSERT_ROW(rc == (int)n, "%s encrypt %zu: %d", v->name, i, rc);
                ASSERT_ROW(ovpn_data_decrypt(server, out, (size_t)rc, out, sizeof(out)) == -EALREADY,
                           "%s %zu", v->name, i); /* same packet id as the stock one */
            }
        }
        ovpn_data_key_free(client);
        ovpn_data_key_free(server);
    }
    return 0;
}

/* Decrypts an AEAD packet here with plain EVP: nonce = packet id | hmac slot[0..8), AAD = opcode
 * + peer id + packet id for DATA_V2 and the packet id alone for DATA_V1, tag before ciphertext. */
static size_t data_ref_aead(const char *cipher, const uint8_t *block, const uint8_t *pkt,
                            size_t len, uint8_t *out)
{
    size_t hdr = OVPN_OP_OF(pkt[0]) == OVPN_OP_DATA_V2 ? 4 : 1;
    const uint8_t *pid = pkt + hdr, *tag = pid + 4, *ct = tag + 16;
    const uint8_t *ad = hdr == 4 ? pkt : pid;
    uint8_t nonce[12];
    int n = 0, m = 0;

    memcpy(nonce, pid, 4);
    memcpy(nonce + 4, block + OVPN_KEY_SLOT_LEN, 8);
    EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, cipher, NULL);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    ASSERT(c != NULL && ctx != NULL);
    ASSERT(EVP_DecryptInit_ex2(ctx, c, block, nonce, NULL) == 1);
    ASSERT(EVP_DecryptUpdate(ctx, NULL, &n, ad, (int)(tag - ad)) == 1);
    ASSERT(EVP_DecryptUpdate(ctx, out, &n, ct, (int)(len - (size_t)(ct - pkt))) == 1);
    ASSERT(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, (void *)tag) == 1);
    ASSERT(EVP_DecryptFinal_ex(ctx, out + n, &m) == 1);
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(c);
    return (size_t)(n + m);
}

/* CBC here: HMAC over iv | ciphertext in front, then AES-CBC of packet id | payload. */
static size_t data_ref_cbc(const char *cipher, const char *digest, const uint8_t *block,
                           const uint8_t *pkt, size_t len, uint8_t *out, uint32_t *pid)
{
    size_t hdr = OVPN_OP_OF(pkt[0]) == OVPN_OP_DATA_V2 ? 4 : 1;
    const EVP_MD *md = EVP_get_digestbyname(digest);
    size_t hl = (size_t)EVP_MD_get_size(md);
    uint8_t mac[EVP_MAX_MD_SIZE], plain[DATA_BUF];
    unsigned ml = 0;
    int n = 0, m = 0;

    ASSERT(HMAC(md, block + OVPN_KEY_SLOT_LEN, (int)hl, pkt + hdr + hl, len - hdr - hl, mac, &ml) != NULL);
    ASSERT(ml == hl && memcmp(mac, pkt + hdr, hl) == 0);
    EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, cipher, NULL);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    ASSERT(EVP_DecryptInit_ex2(ctx, c, block, pkt + hdr + hl, NULL) == 1);
    ASSERT(EVP_DecryptUpdate(ctx, plain, &n, pkt + hdr + hl + 16, (int)(len - hdr - hl - 16)) == 1);
    ASSERT(EVP_DecryptFinal_ex(ctx, plain + n, &m) == 1);
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(c);
    ASSERT(n + m >= 4);
    *pid = (uint32_t)plain[0] << 24 | (uint32_t)plain[1] << 16 | (uint32_t)plain[2] << 8 | plain[3];
    memcpy(out, plain + 4, (size_t)(n + m) - 4);
    return (size_t)(n + m) - 4;
}

/* Our packets, taken apart by the independent code above, header bytes included. */
TEST_IMPL(ovpn_data_layout)
{
    uint8_t block[OVPN_KEY_BLOCK_LEN], payload[300], pkt[DATA_BUF], out[DATA_BUF];
    data_fill(block, sizeof(block), 7);
    data_fill(payload, sizeof(payload), 8);

    static const struct {
        const char *cipher, *auth;
        int v2;
    } rows[] = {
        {"AES-128-GCM", NULL, 0}, {"AES-256-GCM", NULL, 1}, {"ChaCha20-Poly1305", NULL, 1},
        {"AES-128-CBC", "SHA1", 0}, {"AES-256-CBC", "SHA256", 1}, {"AES-192-CBC", "SHA512", 0},
    };
    for (size_t row = 0; row < ARRAY_SIZE(rows); row++) {
        struct ovpn_data_key *k = data_key(rows[row].cipher, rows[row].auth, 5, rows[row].v2, 0xABCDEF, block);
        for (uint32_t id = 1; id <= 3; id++) {
            size_t len = 1 + id * 97;
            int n = ovpn_data_encrypt(k, payload, len, pkt, sizeof(pkt));
            ASSERT_ROW(n > 0, "%zu", row);
            ASSERT_ROW((size_t)n <= len + ovpn_data_overhead(k), "%zu", row);
            if (rows[row].v2) {
                ASSERT(pkt[0] == 0x4d && pkt[1] == 0xAB && pkt[2] == 0xCD && pkt[3] == 0xEF);
            } else {
                ASSERT(pkt[0] == 0x35);
            }
            ASSERT_EQ(ovpn_data_send_id(k), id);
            if (rows[row].auth == NULL) {
                size_t hdr = rows[row].v2 ? 4 : 1;
                ASSERT(pkt[hdr] == 0 && pkt[hdr + 1] == 0 && pkt[hdr + 2] == 0 && pkt[hdr + 3] == id);
                ASSERT_ROW(data_ref_aead(rows[row].cipher, block, pkt, (size_t)n, out) == len, "%zu", row);
            } else {
                uint32_t pid = 0;
                ASSERT_ROW(data_ref_cbc(rows[row].cipher, rows[row].auth, block, pkt, (size_t)n, out, &pid) == len,
                           "%zu", row);
                ASSERT_EQ(pid, id);
            }
            ASSERT_ROW(memcmp(out, payload, len) == 0, "%zu", row);
        }
        ovpn_data_key_free(k);
    }

    /* cipher none: opcode | hmac | packet id | payload, the HMAC over packet id | payload. */
    struct ovpn_data_key *k = data_key("none", "SHA1", 0, 0, 0, block);
    int n = ovpn_data_encrypt(k, payload, 10, pkt, sizeof(pkt));
    ASSERT_EQ(n, 1 + 20 + 4 + 10);
    uint8_t mac[20];
    ASSERT(HMAC(EVP_sha1(), block + OVPN_KEY_SLOT_LEN, 20, pkt + 21, 14, mac, NULL) != NULL);
    ASSERT_MEM_EQ(mac, pkt + 1, 20);
    ASSERT(pkt[21] == 0 && pkt[22] == 0 && pkt[23] == 0 && pkt[24] == 1);
    ASSERT_MEM_EQ(pkt + 25, payload, 10);
    ovpn_data_key_free(k);
    k = data_key("none", "none", 0, 1, 7, block);
    ASSERT_EQ(ovpn_data_encrypt(k, payload, 10, pkt, sizeof(pkt)), 4 + 4 + 10);
    ASSERT(pkt[0] == 0x48 && pkt[3] == 7 && pkt[7] == 1);
    ovpn_data_key_free(k);
    return 0;
}

/* CBC keeps one context per direction across packets and draws its IVs from a pool: a run of
 * packets of every length class (one block, a whole last block, many blocks), longer than the
 * pool, each taken apart by the independent code above, with no IV seen twice. */
TEST_IMPL(ovpn_data_cbc_sequence)
{
    enum { PACKETS = 300 };
    uint8_t block[OVPN_KEY_BLOCK_LEN], payload[1500], pkt[DATA_BUF], out[DATA_BUF];
    static uint8_t ivs[PACKETS][16];
    static const struct {
        const char *cipher, *auth;
        size_t hmac_len;
    } rows[] = {
        {"AES-128-CBC", "SHA1", 20}, {"AES-192-CBC", "SHA256", 32}, {"AES-256-CBC", "SHA512", 64},
    };

    data_fill(block, sizeof(block), 11);
    data_fill(payload, sizeof(payload), 12);
    for (size_t row = 0; row < ARRAY_SIZE(rows); row++) {
        struct ovpn_data_key *k = data_key(rows[row].cipher, rows[row].auth, 2, 1, 9, block);
        for (uint32_t i = 0; i < PACKETS; i++) {
            size_t len = 1 + (i * 37 + i / 16) % 1500;
            int n = ovpn_data_encrypt(k, payload, len, pkt, sizeof(pkt));
            ASSERT_ROW(n > 0, "%zu/%u", row, i);
            ASSERT_ROW((size_t)n == 4 + rows[row].hmac_len + 16 + (4 + len) / 16 * 16 + 16, "%zu/%u", row, i);
            uint32_t pid = 0;
            ASSERT_ROW(data_ref_cbc(rows[row].cipher, rows[row].auth, block, pkt, (size_t)n, out, &pid) == len,
                       "%zu/%u", row, i);
            ASSERT_EQ(pid, i + 1);
            ASSERT_ROW(memcmp(out, payload, len) == 0, "%zu/%u", row, i);
            memcpy(ivs[i], pkt + 4 + rows[row].hmac_len, 16);
            for (uint32_t j = 0; j < i; j++)
                ASSERT_ROW(memcmp(ivs[i], ivs[j], 16) != 0, "%zu/%u", row, i);
        }
        ovpn_data_key_free(k);
    }
    return 0;
}

TEST_IMPL(ovpn_data_roundtrip)
{
    uint8_t block[OVPN_KEY_BLOCK_LEN], server_block[OVPN_KEY_BLOCK_LEN];
    uint8_t payload[1600], pkt[DATA_BUF], out[DATA_BUF], back[DATA_BUF];
    static const size_t lens[] = {1, 2, 11, 12, 13, 15, 16, 17, 27, 28, 29, 100, 1399, 1400, 1500, 1600};

    data_fill(block, sizeof(block), 1);
    data_fill(payload, sizeof(payload), 2);
    data_swap(block, server_block);
    for (size_t row = 0; row < ARRAY_SIZE(data_configs); row++) {
        const struct data_config *c = &data_configs[row];
        struct ovpn_data_key *client = data_key(c->cipher, c->auth, 3, c->v2, 42, block);
        struct ovpn_data_key *server = data_key(c->cipher, c->auth, 3, c->v2, 42, server_block);
        ASSERT_EQ(ovpn_data_cipher_is_aead(c->cipher), c->aead);
        for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
            int n = ovpn_data_encrypt(client, payload, lens[i], pkt, sizeof(pkt));
            ASSERT_ROW(n > 0 && (size_t)n <= lens[i] + ovpn_data_overhead(client), "%zu/%zu", row, i);
            int m = ovpn_data_decrypt(server, pkt, (size_t)n, out, sizeof(out));
            ASSERT_ROW(m == (int)lens[i] && memcmp(out, payload, lens[i]) == 0, "%zu/%zu: %d", row, i, m);
            /* and back: the server's packets to the client */
            n = ovpn_data_encrypt(server, out, (size_t)m, pkt, sizeof(pkt));
            ASSERT(n > 0);
            ASSERT_ROW(ovpn_data_decrypt(client, pkt, (size_t)n, back, sizeof(back)) == m, "%zu/%zu", row, i);
            ASSERT(memcmp(back, payload, lens[i]) == 0);
            /* A key never decrypts its own direction: the slots differ. */
            if (c->authenticated)
                ASSERT_ROW(ovpn_data_decrypt(server, pkt, (size_t)n, back, sizeof(back)) == -EBADMSG,
                           "%zu/%zu", row, i);
        }
        /* An empty payload is never sent. */
        ASSERT_EQ(ovpn_data_encrypt(client, payload, 0, pkt, sizeof(pkt)), -EINVAL);
        ovpn_data_key_free(client);
        ovpn_data_key_free(server);
    }
    return 0;
}

/* Every bit of every byte flipped must fail authentication, without recording the packet id.
 * The one exception is OpenVPN's own: with CBC or cipher none the HMAC starts after the header,
 * so a DATA_V2 peer id is not authenticated (crypto.c openvpn_encrypt_v1); AEAD covers it. */
TEST_IMPL(ovpn_data_tamper)
{
    uint8_t block[OVPN_KEY_BLOCK_LEN], server_block[OVPN_KEY_BLOCK_LEN];
    uint8_t payload[64], pkt[DATA_BUF], bad[DATA_BUF], out[DATA_BUF];

    data_fill(block, sizeof(block), 3);
    data_fill(payload, sizeof(payload), 4);
    data_swap(block, server_block);
    for (size_t row = 0; row < ARRAY_SIZE(data_configs); row++) {
        const struct data_config *c = &data_configs[row];
        if (!c->authenticated)
            continue;
        struct ovpn_data_key *client = data_key(c->cipher, c->auth, 2, c->v2, 0x123456, block);
        struct ovpn_data_key *server = data_key(c->cipher, c->auth, 2, c->v2, 0x123456, server_block);
        int n = ovpn_data_encrypt(client, payload, sizeof(payload), pkt, sizeof(pkt));
        ASSERT(n > 0);
        for (int i = 0; i < n; i++) {
            for (int bit = 0; bit < 8; bit++) {
                memcpy(bad, pkt, (size_t)n);
                bad[i] ^= (uint8_t)(1 << bit);
                if (c->v2 && !c->aead && i >= 1 && i <= 3) {
                    struct ovpn_data_key *fresh = data_key(c->cipher, c->auth, 2, c->v2, 0, server_block);
                    ASSERT_ROW(ovpn_data_decrypt(fresh, bad, (size_t)n, out, sizeof(out)) == (int)sizeof(payload),
                               "%zu byte %d", row, i);
                    ovpn_data_key_free(fresh);
                    continue;
                }
                /* A flipped opcode or key id makes it another key's packet; any other bit fails
                 * authentication. */
                int rc = ovpn_data_decrypt(server, bad, (size_t)n, out, sizeof(out));
                ASSERT_ROW(rc == (i == 0 ? -EPROTO : -EBADMSG), "%zu byte %d bit %d: %d", row, i, bit, rc);
            }
        }
        ASSERT_EQ(ovpn_data_decrypt(server, pkt, (size_t)n, out, sizeof(out)), sizeof(payload));
        ASSERT_MEM_EQ(out, payload, sizeof(payload));
        ovpn_data_key_free(client);
        ovpn_data_key_free(server);
    }
    return 0;
}

/* Every truncation and a few extensions of a valid packet fail, and leave the window alone. */
TEST_IMPL(ovpn_data_truncated)
{
    uint8_t block[OVPN_KEY_BLOCK_LEN], server_block[OVPN_KEY_BLOCK_LEN];
    uint8_t payload[40], pkt[DATA_BUF], out[DATA_BUF];

    data_fill(block, sizeof(block), 5);
    data_fill(payload, sizeof(payload), 6);
    data_swap(block, server_block);
    for (size_t row = 0; row < ARRAY_SIZE(data_configs); row++) {
        const struct data_config *c = &data_configs[row];
        if (!c->authenticated)
            continue;
        struct ovpn_data_key *client = data_key(c->cipher, c->auth, 0, c->v2, 1, block);
        struct ovpn_data_key *server = data_key(c->cipher, c->auth, 0, c->v2, 1, server_block);
        int n = ovpn_data_encrypt(client, payload, sizeof(payload), pkt, sizeof(pkt));
        ASSERT(n > 0);
        /* Shorter than the cipher's smallest packet: malformed; longer: the tag or HMAC fails. */
        int min = c->aead ? (c->v2 ? 4 : 1) + 4 + 16 + 1 : -1;
        for (int len = 0; len < n; len++) {
            int rc = ovpn_data_decrypt(server, pkt, (size_t)len, out, sizeof(out));
            ASSERT_ROW(rc == -EPROTO || rc == -EBADMSG, "%zu len %d: %d", row, len, rc);
            ASSERT_ROW(len == 0 || min < 0 || rc == (len < min ? -EPROTO : -EBADMSG), "%zu len %d: %d", row, len, rc);
        }
        for (int extra = 1; extra <= 17; extra++) {
            memset(pkt + n, 0, (size_t)extra);
            ASSERT_ROW(ovpn_data_decrypt(server, pkt, (size_t)(n + extra), out, sizeof(out)) == -EBADMSG,
                       "%zu extra %d", row, extra);
        }
        ASSERT_EQ(ovpn_data_decrypt(server, pkt, (size_t)n, out, sizeof(out)), sizeof(payload));
        ovpn_data_key_free(client);
        ovpn_data_key_free(server);
    }
    return 0;
}

/* Packets of another key id or opcode are not this key's; neither are empty AEAD packets. */
TEST_IMPL(ovpn_data_wrong_header)
{
    uint8_t block[OVPN_KEY_BLOCK_LEN], server_block[OVPN_KEY_BLOCK_LEN], pkt[DATA_BUF], out[DATA_BUF];
    uint8_t payload[20] = {1, 2, 3};

    data_fill(block, sizeof(block), 9);
    data_swap(block, server_block);
    struct ovpn_data_key *client = data_key("AES-128-CBC", "SHA1", 1, 0, 0, block);
    struct ovpn_data_key *server = data_key("AES-128-CBC", "SHA1", 1, 0, 0, server_block);
    int n = ovpn_data_encrypt(client, payload, sizeof(payload), pkt, sizeof(pkt));
    ASSERT(n > 0);
    for (int op = 0; op < 32; op++) {
        for (int kid = 0; kid < 8; kid++) {
            uint8_t save = pkt[0];
            pkt[0] = (uint8_t)(op << 3 | kid);
            int rc = ovpn_data_decrypt(server, pkt, (size_t)n, out, sizeof(out));
            if (op == OVPN_OP_DATA_V1 && kid == 1)
                ASSERT_EQ(rc, sizeof(payload));
            else if (op == OVPN_OP_DATA_V2 && kid == 1) /* read as DATA_V2, the HMAC is elsewhere */
                ASSERT_ROW(rc == -EBADMSG, "op %d key %d: %d", op, kid, rc);
            else
                ASSERT_ROW(rc == -EPROTO, "op %d key %d: %d", op, kid, rc);
            pkt[0] = save;
        }
    }
    ovpn_data_key_free(client);
    ovpn_data_key_free(server);

    /* An AEAD packet with a valid tag over no ciphertext at all: OpenVPN drops it, so do we. */
    EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    uint8_t nonce[12] = {0, 0, 0, 1}, empty[1 + 4 + 16] = {0x30, 0, 0, 0, 1};
    int outl = 0;
    memcpy(nonce + 4, block + 3 * OVPN_KEY_SLOT_LEN, 8); /* what the server sends with */
    ASSERT(EVP_EncryptInit_ex2(ctx, c, block + 2 * OVPN_KEY_SLOT_LEN, nonce, NULL) == 1);
    ASSERT(EVP_EncryptUpdate(ctx, NULL, &outl, empty + 1, 4) == 1);
    ASSERT(EVP_EncryptFinal_ex(ctx, out, &outl) == 1);
    ASSERT(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, empty + 5) == 1);
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(c);
    client = data_key("AES-128-GCM", NULL, 0, 0, 0, block);
    ASSERT_EQ(ovpn_data_decrypt(client, empty, sizeof(empty), out, sizeof(out)), -EPROTO);
    ovpn_data_key_free(client);
    return 0;
}

TEST_IMPL(ovpn_data_replay_window)
{
    static const struct {
        uint32_t id;
        int rc;
    } seq[] = {
        {0, -EALREADY},  /* never valid */
        {1, 0},          {1, -EALREADY}, {3, 0},          {2, 0},          {2, -EALREADY},
        {100, 0},        {37, 0},        /* highest - 63: the oldest inside the window */
        {36, -EALREADY}, /* highest - 64 */
        {37, -EALREADY}, {99, 0},        {98, 0},         {3, -EALREADY},  {101, 0},
        {37, -EALREADY}, /* slid out with 101 */
        {38, 0},         {164, 0},       {101, -EALREADY},{102, 0},        {100, -EALREADY},
        {0, -EALREADY},
        {1000, 0},       {937, 0},       {936, -EALREADY},{999, 0},        {1000, -EALREADY},
        {0xFFFFFFFFu, 0},{0xFFFFFFC1u, 0},{0xFFFFFFC0u, 0}, {0xFFFFFFBFu, -EALREADY},
        {1001, -EALREADY},
    };
    struct ovpn_replay r;
    ovpn_replay_init(&r);
    for (size_t i = 0; i < ARRAY_SIZE(seq); i++)
        ASSERT_ROW(ovpn_replay_check(&r, seq[i].id) == seq[i].rc, "%zu (id %u)", i, (unsigned)seq[i].id);

    /* A jump of exactly 64 forgets everything before; 63 keeps the oldest. */
    ovpn_replay_init(&r);
    ASSERT_EQ(ovpn_replay_check(&r, 10), 0);
    ASSERT_EQ(ovpn_replay_check(&r, 74), 0);
    ASSERT_EQ(ovpn_replay_check(&r, 10), -EALREADY);
    ASSERT_EQ(ovpn_replay_check(&r, 11), 0);
    ASSERT_EQ(ovpn_replay_check(&r, 11), -EALREADY);
    ovpn_replay_init(&r);
    ASSERT_EQ(ovpn_replay_check(&r, 5), 0);
    ASSERT_EQ(ovpn_replay_check(&r, 68), 0);
    ASSERT_EQ(ovpn_replay_check(&r, 5), -EALREADY);
    ASSERT_EQ(ovpn_replay_check(&r, 6), 0);

    /* The first id seen may be anything but 0, and then ids below it inside the window pass. */
    ovpn_replay_init(&r);
    ASSERT_EQ(ovpn_replay_check(&r, 50), 0);
    for (uint32_t id = 1; id < 50; id++)
        ASSERT_EQ(ovpn_replay_check(&r, id), 0);
    for (uint32_t id = 0; id <= 50; id++)
        ASSERT_EQ(ovpn_replay_check(&r, id), -EALREADY);
    return 0;
}

/* The window of --replay-window n, checked against a plain model (every id seen kept in a table)
 * over random walks: ids ahead, behind by up to a bit more than the window, repeats and jumps
 * past the ring. Windows around the ring's word and power-of-two sizes, in order only (0), and
 * ids at the top of the 32-bit space. */
TEST_IMPL(ovpn_data_replay_window_size)
{
    enum { MODEL = 1 << 20 }; /* the model's table: more than any window, indexed by id % MODEL */
    static const uint32_t windows[] = {0, 1, 2, 63, 64, 65, 100, 128, 1000, 1024, 4096, 65535, 65536};
    static const uint32_t bases[] = {0, 0xFFFFFFFFu - 3000000u};
    static uint32_t seen[MODEL]; /* seen[id % MODEL] == id: id was taken */
    struct ovpn_replay r;
    uint64_t checks = 0;

    ASSERT_EQ(ovpn_replay_init_window(&r, OVPN_REPLAY_MAX + 1), -EINVAL);
    ovpn_replay_free(&r);
    uint32_t rnd = 1;
    for (size_t wi = 0; wi < ARRAY_SIZE(windows); wi++)
        for (size_t bi = 0; bi < ARRAY_SIZE(bases); bi++) {
            uint32_t win = windows[wi], highest = 0;
            memset(seen, 0, sizeof(seen));
            ASSERT_EQ(ovpn_replay_init_window(&r, win), 0);
            for (int step = 0; step < 20000; step++) {
                rnd = rnd * 1103515245u + 12345u;
                uint32_t pick = (rnd >> 16) % 1000, span = win + win / 4 + 3;
                rnd = rnd * 1103515245u + 12345u;
                uint64_t v = rnd >> 8, id;
                uint64_t top = highest ? highest : bases[bi];
                if (pick < 450)
                    id = top + 1 + v % 3;                     /* in order, or a small loss */
                else if (pick < 850)
                    id = top > v % span ? top - v % span : 1; /* late, or a repeat */
                else if (pick < 990)
                    id = top + 1 + v % span;                  /* a jump inside the window */
                else
                    id = top + 1 + v % 140000;                /* maybe past the ring */
                if (pick >= 950 && pick < 990)
                    id = top;                                 /* the highest again */
                if (id == 0 || id > UINT32_MAX)
                    break;
                int want;
                if (highest == 0 || id > highest)
                    want = win == 0 && highest != 0 && id != (uint64_t)highest + 1 ? -EALREADY : 0;
                else
                    want = highest - id < win && seen[id % MODEL] != id ? 0 : -EALREADY;
                int got = ovpn_replay_check(&r, (uint32_t)id);
                ASSERT_ROW(got == want, "window %u step %d: id %#x (highest %#x) %d, model %d", (unsigned)win,
                           step, (unsigned)id, (unsigned)highest, got, want);
                checks++;
                if (want == 0) {
                    seen[id % MODEL] = (uint32_t)id;
                    if (id > highest)
                        highest = (uint32_t)id;
                }
            }
            ovpn_replay_free(&r);
        }
    /* The walks ran: 520,000 checks at most; those of wide windows near the top of the id space
     * end early (323,658 with this generator). */
    ASSERT(checks > 300000);

    /* The ids themselves: 1000 wide, a jump inside the ring and one past it. */
    ASSERT_EQ(ovpn_replay_init_window(&r, 1000), 0);
    ASSERT_EQ(ovpn_replay_check(&r, 1000), 0);
    ASSERT_EQ(ovpn_replay_check(&r, 1), 0);    /* 999 behind */
    ASSERT_EQ(ovpn_replay_check(&r, 1), -EALREADY);
    ASSERT_EQ(ovpn_replay_check(&r, 2001), 0); /* forgets 1001..2001, a ring of 1024 */
    ASSERT_EQ(ovpn_replay_check(&r, 1001), -EALREADY);
    ASSERT_EQ(ovpn_replay_check(&r, 1002), 0);
    ASSERT_EQ(ovpn_replay_check(&r, 1002), -EALREADY);
    ASSERT_EQ(ovpn_replay_check(&r, 2000), 0);
    ASSERT_EQ(ovpn_replay_check(&r, 9000), 0); /* past the ring: all forgotten */
    ASSERT_EQ(ovpn_replay_check(&r, 8001), 0);
    ASSERT_EQ(ovpn_replay_check(&r, 8000), -EALREADY);
    ASSERT_EQ(ovpn_replay_check(&r, 0), -EALREADY);
    ovpn_replay_free(&r);
    return 0;
}

/* Reordering inside the window is fine, replays and older packets are not, and a forged packet
 * with a huge packet id moves nothing, since ids count only once authenticated. */
TEST_IMPL(ovpn_data_reorder)
{
    enum { N = 256 };
    static uint8_t pkts[N][160];
    static int lens[N];
    uint8_t block[OVPN_KEY_BLOCK_LEN], server_block[OVPN_KEY_BLOCK_LEN], payload[32], out[DATA_BUF];

    data_fill(block, sizeof(block), 11);
    data_fill(payload, sizeof(payload), 12);
    data_swap(block, server_block);
    for (size_t row = 0; row < ARRAY_SIZE(data_configs); row++) {
        const struct data_config *c = &data_configs[row];
        struct ovpn_data_key *client = data_key(c->cipher, c->auth, 0, c->v2, 0, block);
        struct ovpn_data_key *server = data_key(c->cipher, c->auth, 0, c->v2, 0, server_block);
        for (int i = 0; i < N; i++) {
            payload[0] = (uint8_t)i;
            lens[i] = ovpn_data_encrypt(client, payload, sizeof(payload), pkts[i], sizeof(pkts[i]));
            ASSERT(lens[i] > 0);
        }
        if (c->authenticated) {
            /* The last packet (id N) with its tag or HMAC broken: rejected, window unmoved. */
            uint8_t forged[160];
            memcpy(forged, pkts[N - 1], (size_t)lens[N - 1]);
            forged[lens[N - 1] - 1] ^= 0x80;
            ASSERT_EQ(ovpn_data_decrypt(server, forged, (size_t)lens[N - 1], out, sizeof(out)), -EBADMSG);
        }
        /* Blocks of 32 delivered backwards: every packet arrives less than 64 ids late. */
        for (int b = 0; b < N; b += 32)
            for (int i = b + 31; i >= b; i--) {
                int rc = ovpn_data_decrypt(server, pkts[i], (size_t)lens[i], out, sizeof(out));
                ASSERT_ROW(rc == (int)sizeof(payload) && out[0] == (uint8_t)i, "%zu packet %d: %d", row, i, rc);
            }
        for (int i = 0; i < N; i++)
            ASSERT_ROW(ovpn_data_decrypt(server, pkts[i], (size_t)lens[i], out, sizeof(out)) == -EALREADY,
                       "%zu replay %d", row, i);
        ovpn_data_key_free(server);

        /* Out of the window: with id 200 seen, 136 (200 - 64) is too old, 137 is not. */
        server = data_key(c->cipher, c->auth, 0, c->v2, 0, server_block);
        ASSERT(ovpn_data_decrypt(server, pkts[199], (size_t)lens[199], out, sizeof(out)) > 0);
        ASSERT_EQ(ovpn_data_decrypt(server, pkts[135], (size_t)lens[135], out, sizeof(out)), -EALREADY);
        ASSERT(ovpn_data_decrypt(server, pkts[136], (size_t)lens[136], out, sizeof(out)) > 0);
        ovpn_data_key_free(client);
        ovpn_data_key_free(server);
    }
    return 0;
}

TEST_IMPL(ovpn_data_packet_id_limit)
{
    uint8_t block[OVPN_KEY_BLOCK_LEN], server_block[OVPN_KEY_BLOCK_LEN], pkt[DATA_BUF], out[DATA_BUF];
    uint8_t payload[8] = {0};

    data_fill(block, sizeof(block), 13);
    data_swap(block, server_block);
    struct ovpn_data_key *client = data_key("AES-256-GCM", NULL, 0, 1, 9, block);
    struct ovpn_data_key *server = data_key("AES-256-GCM", NULL, 0, 1, 9, server_block);
    ASSERT_EQ(ovpn_data_send_id(client), 0);
    ASSERT(OVPN_DATA_ID_RENEGOTIATE < OVPN_DATA_ID_LIMIT);
    ovpn_data_test_set_send_id(client, OVPN_DATA_ID_LIMIT - 1);
    int n = ovpn_data_encrypt(client, payload, sizeof(payload), pkt, sizeof(pkt));
    ASSERT(n > 0);
    ASSERT_EQ(ovpn_data_send_id(client), OVPN_DATA_ID_LIMIT);
    ASSERT_EQ(ovpn_data_decrypt(server, pkt, (size_t)n, out, sizeof(out)), sizeof(payload));
    ASSERT_EQ(ovpn_data_encrypt(client, payload, sizeof(payload), pkt, sizeof(pkt)), -EOVERFLOW);
    ASSERT_EQ(ovpn_data_encrypt(client, payload, sizeof(payload), pkt, sizeof(pkt)), -EOVERFLOW);
    ASSERT_EQ(ovpn_data_send_id(client), OVPN_DATA_ID_LIMIT);
    ovpn_data_key_free(client);
    ovpn_data_key_free(server);
    return 0;
}

/* What each packet adds to a key's usage: whole wire packets both ways (authenticated ones only
 * on receive), and for AES-GCM the packets plus 16-byte plaintext blocks the usage limit sums. */
TEST_IMPL(ovpn_data_usage_counts)
{
    uint8_t block[OVPN_KEY_BLOCK_LEN], server_block[OVPN_KEY_BLOCK_LEN], pkt[DATA_BUF], out[DATA_BUF];
    uint8_t payload[100] = {0};
    static const struct {
        const char *cipher, *auth;
        int limited;
    } rows[] = {
        {"AES-256-GCM", NULL, 1},
        {"AES-128-GCM", NULL, 1},
        {"CHACHA20-POLY1305", NULL, 0},
        {"AES-128-CBC", "SHA1", 0},
    };

    data_fill(block, sizeof(block), 21);
    data_swap(block, server_block);
    for (size_t row = 0; row < ARRAY_SIZE(rows); row++) {
        struct ovpn_data_key *client = data_key(rows[row].cipher, rows[row].auth, 1, 1, 7, block);
        struct ovpn_data_key *server = data_key(rows[row].cipher, rows[row].auth, 1, 1, 7, server_block);
        struct ovpn_data_usage u;
        ovpn_data_get_usage(client, &u);
        ASSERT(u.tx_packets == 0 && u.tx_bytes == 0 && u.rx_packets == 0 && u.rx_bytes == 0 && u.tx_aead == 0);
        uint64_t wire = 0;
        for (size_t len = 1; len <= sizeof(payload); len += 33) { /* 1, 34, 67, 100 bytes */
            int n = ovpn_data_encrypt(client, payload, len, pkt, sizeof(pkt));
            ASSERT(n > 0);
            wire += (uint64_t)n;
            ASSERT_EQ(ovpn_data_decrypt(server, pkt, (size_t)n, out, sizeof(out)), len);
            /* a replay and a forgery count as nothing received */
            ASSERT_EQ(ovpn_data_decrypt(server, pkt, (size_t)n, out, sizeof(out)), -EALREADY);
            pkt[n - 1] ^= 1;
            ASSERT_EQ(ovpn_data_decrypt(server, pkt, (size_t)n, out, sizeof(out)), -EBADMSG);
        }
        ovpn_data_get_usage(client, &u);
        ASSERT_EQ(u.tx_packets, 4);
        ASSERT_EQ(u.tx_bytes, wire);
        ASSERT_EQ(u.rx_packets, 0);
        /* 1 + 3 + 5 + 7 blocks, plus 4 packets */
        ASSERT_EQ(u.tx_aead, rows[row].limited ? 16 + 4 : 0);
        ovpn_data_get_usage(server, &u);
        ASSERT_EQ(u.rx_packets, 4);
        ASSERT_EQ(u.rx_bytes, wire);
        ASSERT_EQ(u.rx_aead, rows[row].limited ? 16 + 4 : 0);
        ASSERT_EQ(u.rx_auth_failed, 4);
        ASSERT_EQ(u.tx_packets, 0);
        ovpn_data_key_free(client);
        ovpn_data_key_free(server);
    }
    return 0;
}

/* Why a key asks to be replaced: reneg-bytes and reneg-pkts count both directions; the packet id
 * trigger and the AEAD limits hold whatever the config says, each only for the ciphers it
 * concerns. */
TEST_IMPL(ovpn_data_renegotiate_due)
{
    uint8_t block[OVPN_KEY_BLOCK_LEN] = {0};
    static const struct {
        const char *cipher;
        uint64_t reneg_bytes, reneg_pkts;
        uint32_t send_id;
        struct ovpn_data_usage u;
        enum ovpn_data_reneg want;
    } rows[] = {
        {"AES-256-GCM", 0, 0, 0, {0}, OVPN_DATA_RENEG_NONE},
        /* reneg-bytes: sent plus received */
        {"AES-256-GCM", 1000000, 0, 0, {.tx_bytes = 600000, .rx_bytes = 399999}, OVPN_DATA_RENEG_NONE},
        {"AES-256-GCM", 1000000, 0, 0, {.tx_bytes = 600000, .rx_bytes = 400000}, OVPN_DATA_RENEG_BYTES},
        {"AES-128-CBC", 1000000, 0, 0, {.rx_bytes = 1000001}, OVPN_DATA_RENEG_BYTES},
        {"AES-128-CBC", 0, 0, 0, {.rx_bytes = 1000001, .tx_bytes = 1ULL << 40}, OVPN_DATA_RENEG_NONE},
        /* reneg-pkts */
        {"CHACHA20-POLY1305", 0, 100, 0, {.tx_packets = 50, .rx_packets = 49}, OVPN_DATA_RENEG_NONE},
        {"CHACHA20-POLY1305", 0, 100, 0, {.tx_packets = 50, .rx_packets = 50}, OVPN_DATA_RENEG_PACKETS},
        {"CHACHA20-POLY1305", 1ULL << 50, 100, 0, {.tx_bytes = 1ULL << 50, .tx_packets = 100}, OVPN_DATA_RENEG_BYTES},
        /* packet ids near the end, for every cipher */
        {"AES-128-CBC", 0, 0, OVPN_DATA_ID_RENEGOTIATE - 1, {0}, OVPN_DATA_RENEG_NONE},
        {"AES-128-CBC", 0, 0, OVPN_DATA_ID_RENEGOTIATE, {0}, OVPN_DATA_RENEG_PACKET_ID},
        {"none", 0, 0, OVPN_DATA_ID_RENEGOTIATE, {0}, OVPN_DATA_RENEG_PACKET_ID},
        {"CHACHA20-POLY1305", 0, 0, OVPN_DATA_ID_RENEGOTIATE + 5, {0}, OVPN_DATA_RENEG_PACKET_ID},
        /* the AES-GCM usage limit, either direction; not for ChaCha20-Poly1305 or CBC */
        {"AES-256-GCM", 0, 0, 0, {.tx_aead = OVPN_DATA_AEAD_RENEGOTIATE - 1}, OVPN_DATA_RENEG_NONE},
        {"AES-256-GCM", 0, 0, 0, {.tx_aead = OVPN_DATA_AEAD_RENEGOTIATE}, OVPN_DATA_RENEG_AEAD_LIMIT},
        {"AES-128-GCM", 0, 0, 0, {.rx_aead = OVPN_DATA_AEAD_RENEGOTIATE}, OVPN_DATA_RENEG_AEAD_LIMIT},
        {"CHACHA20-POLY1305", 0, 0, 0, {.tx_aead = OVPN_DATA_AEAD_LIMIT}, OVPN_DATA_RENEG_NONE},
        {"AES-128-CBC", 0, 0, 0, {.tx_aead = OVPN_DATA_AEAD_LIMIT}, OVPN_DATA_RENEG_NONE},
        /* forgery attempts: any AEAD cipher */
        {"CHACHA20-POLY1305", 0, 0, 0, {.rx_auth_failed = OVPN_DATA_AUTH_FAIL_RENEGOTIATE - 1}, OVPN_DATA_RENEG_NONE},
        {"CHACHA20-POLY1305", 0, 0, 0, {.rx_auth_failed = OVPN_DATA_AUTH_FAIL_RENEGOTIATE}, OVPN_DATA_RENEG_AUTH_FAIL},
        {"AES-256-GCM", 0, 0, 0, {.rx_auth_failed = OVPN_DATA_AUTH_FAIL_RENEGOTIATE}, OVPN_DATA_RENEG_AUTH_FAIL},
        {"AES-128-CBC", 0, 0, 0, {.rx_auth_failed = OVPN_DATA_AUTH_FAIL_LIMIT}, OVPN_DATA_RENEG_NONE},
    };
    /* The trigger leaves room to renegotiate in before the hard limit: OpenVPN's 7/8. */
    ASSERT(OVPN_DATA_AEAD_LIMIT == (1ULL << 36) - 1);
    ASSERT(OVPN_DATA_AEAD_RENEGOTIATE == ((1ULL << 36) - 1) / 8 * 7);
    for (size_t row = 0; row < ARRAY_SIZE(rows); row++) {
        struct ovpn_data_key *k = data_key(rows[row].cipher, "SHA1", 0, 0, 0, block);
        ovpn_data_test_set_send_id(k, rows[row].send_id);
        ovpn_data_test_set_usage(k, &rows[row].u);
        enum ovpn_data_reneg got = ovpn_data_renegotiate_due(k, rows[row].reneg_bytes, rows[row].reneg_pkts);
        ASSERT_ROW(got == rows[row].want, "%zu: %s, want %s", row, ovpn_data_reneg_name(got),
                   ovpn_data_reneg_name(rows[row].want));
        ovpn_data_key_free(k);
    }
    return 0;
}

/* Past the AES-GCM usage limit a key sends nothing more, as past the last packet id; past the
 * forgery limit an AEAD key decrypts nothing more, not even good packets. */
TEST_IMPL(ovpn_data_aead_limits)
{
    uint8_t block[OVPN_KEY_BLOCK_LEN], server_block[OVPN_KEY_BLOCK_LEN], pkt[DATA_BUF], out[DATA_BUF];
    uint8_t payload[32] = {0}; /* 2 blocks: 3 with its packet */

    data_fill(block, sizeof(block), 17);
    data_swap(block, server_block);
    struct ovpn_data_key *client = data_key("AES-256-GCM", NULL, 0, 0, 0, block);
    struct ovpn_data_key *server = data_key("AES-256-GCM", NULL, 0, 0, 0, server_block);
    struct ovpn_data_usage u = {.tx_aead = OVPN_DATA_AEAD_LIMIT - 5};
    ovpn_data_test_set_usage(client, &u);
    int n = ovpn_data_encrypt(client, payload, sizeof(payload), pkt, sizeof(pkt)); /* to LIMIT - 2 */
    ASSERT(n > 0);
    ASSERT_EQ(ovpn_data_decrypt(server, pkt, (size_t)n, out, sizeof(out)), sizeof(payload));
    ASSERT_EQ(ovpn_data_encrypt(client, payload, sizeof(payload), pkt, sizeof(pkt)), -EOVERFLOW);
    ASSERT_EQ(ovpn_data_encrypt(client, payload, 17, pkt, sizeof(pkt)), -EOVERFLOW); /* 3 more: over */
    ASSERT(ovpn_data_encrypt(client, payload, 16, pkt, sizeof(pkt)) > 0);            /* 2 more: the limit */
    ASSERT_EQ(ovpn_data_encrypt(client, payload, 1, pkt, sizeof(pkt)), -EOVERFLOW);
    ovpn_data_get_usage(client, &u);
    ASSERT(u.tx_aead == OVPN_DATA_AEAD_LIMIT);
    ASSERT_EQ(ovpn_data_send_id(client), 2);

    /* The same sums on ChaCha20-Poly1305 stop nothing. */
    struct ovpn_data_key *chacha = data_key("CHACHA20-POLY1305", NULL, 0, 0, 0, block);
    u = (struct ovpn_data_usage){.tx_aead = OVPN_DATA_AEAD_LIMIT};
    ovpn_data_test_set_usage(chacha, &u);
    ASSERT(ovpn_data_encrypt(chacha, payload, sizeof(payload), pkt, sizeof(pkt)) > 0);
    ovpn_data_key_free(chacha);

    /* Forgeries: the key still takes good packets up to the limit, none after it. */
    n = ovpn_data_encrypt(server, payload, sizeof(payload), pkt, sizeof(pkt));
    ASSERT(n > 0);
    u = (struct ovpn_data_usage){.rx_auth_failed = OVPN_DATA_AUTH_FAIL_LIMIT - 1};
    ovpn_data_test_set_usage(client, &u);
    pkt[n - 1] ^= 1;
    ASSERT_EQ(ovpn_data_decrypt(client, pkt, (size_t)n, out, sizeof(out)), -EBADMSG);
    pkt[n - 1] ^= 1;
    ASSERT_EQ(ovpn_data_decrypt(client, pkt, (size_t)n, out, sizeof(out)), -EKEYEXPIRED);
    u.rx_auth_failed = OVPN_DATA_AUTH_FAIL_LIMIT - 1;
    ovpn_data_test_set_usage(client, &u);
    ASSERT_EQ(ovpn_data_decrypt(client, pkt, (size_t)n, out, sizeof(out)), sizeof(payload));
    ovpn_data_key_free(client);
    ovpn_data_key_free(server);
    return 0;
}

TEST_IMPL(ovpn_data_params)
{
    uint8_t block[OVPN_KEY_BLOCK_LEN] = {0};
    static const struct {
        const char *cipher, *auth;
        uint8_t key_id;
        uint32_t peer_id;
        int rc;
    } rows[] = {
        {"AES-256-GCM", NULL, 0, 0, 0},
        {"aes-128-gcm", "whatever", 7, 0xFFFFFF, 0}, /* AEAD ignores auth, as OpenVPN does */
        {"ChaCha20-Poly1305", NULL, 0, 0, 0},
        {"aes-192-cbc", "sha256", 0, 0, 0},
        {"AES-128-CBC", "SHA512", 0, 0, 0},
        {"AES-128-CBC", "none", 0, 0, -EINVAL},       /* CBC without auth */
        {"AES-128-CBC", NULL, 0, 0, -EINVAL},
        {"AES-128-CBC", "MD5", 0, 0, -EINVAL},
        {"none", "none", 0, 0, 0},
        {"NONE", "sha1", 0, 0, 0},
        {"none", NULL, 0, 0, -EINVAL},
        {"BF-CBC", "SHA1", 0, 0, -EINVAL},
        {"AES-256-CFB", "SHA1", 0, 0, -EINVAL},
        {"", "SHA1", 0, 0, -EINVAL},
        {NULL, "SHA1", 0, 0, -EINVAL},
        {"AES-256-GCM", NULL, 8, 0, -EINVAL},
        {"AES-256-GCM", NULL, 0, 0x1000000, -EINVAL},
    };
    for (size_t row = 0; row < ARRAY_SIZE(rows); row++) {
        struct ovpn_data_params p = {
            .cipher = rows[row].cipher, .auth = rows[row].auth, .key_id = rows[row].key_id,
            .peer_id = rows[row].peer_id, .key_block = block,
        };
        struct ovpn_data_key *k = (struct ovpn_data_key *)&p; /* must be overwritten */
        ASSERT_ROW(ovpn_data_key_new(&k, &p) == rows[row].rc, "%zu", row);
        ASSERT_ROW((k != NULL) == (rows[row].rc == 0), "%zu", row);
        ovpn_data_key_free(k);
    }

    static const struct {
        const char *name;
        int supported, aead;
    } names[] = {
        {"AES-256-GCM", 1, 1}, {"AES-192-GCM", 1, 1}, {"aes-128-gcm", 1, 1},
        {"CHACHA20-POLY1305", 1, 1}, {"AES-256-CBC", 1, 0}, {"AES-192-CBC", 1, 0},
        {"AES-128-CBC", 1, 0}, {"none", 1, 0}, {"BF-CBC", 0, 0}, {"AES-256-GCM ", 0, 0},
        {"", 0, 0}, {NULL, 0, 0},
    };
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        ASSERT_ROW(ovpn_data_cipher_supported(names[i].name) == names[i].supported, "%zu", i);
        ASSERT_ROW(ovpn_data_cipher_is_aead(names[i].name) == names[i].aead, "%zu", i);
    }

    /* Overheads: header, packet id, then tag, or HMAC + IV + the most padding. */
    static const struct {
        const char *cipher, *auth;
        int v2;
        size_t overhead;
    } ovh[] = {
        {"AES-256-GCM", NULL, 0, 1 + 4 + 16}, {"AES-256-GCM", NULL, 1, 4 + 4 + 16},
        {"AES-128-CBC", "SHA1", 0, 1 + 20 + 16 + 4 + 16}, {"AES-128-CBC", "SHA256", 1, 4 + 32 + 16 + 4 + 16},
        {"none", "SHA512", 0, 1 + 64 + 4}, {"none", "none", 1, 4 + 4},
    };
    for (size_t i = 0; i < ARRAY_SIZE(ovh); i++) {
        struct ovpn_data_key *k = data_key(ovh[i].cipher, ovh[i].auth, 0, ovh[i].v2, 0, block);
        ASSERT_ROW(ovpn_data_overhead(k) == ovh[i].overhead, "%zu", i);
        ovpn_data_key_free(k);
    }
    ovpn_data_key_free(NULL);
    return 0;
}

/* Short output buffers: -ENOSPC, and the packet stays decryptable (nothing was recorded); the
 * payload's own length is enough, CBC padding included. */
TEST_IMPL(ovpn_data_nospace)
{
    uint8_t block[OVPN_KEY_BLOCK_LEN], server_block[OVPN_KEY_BLOCK_LEN];
    uint8_t payload[100], pkt[DATA_BUF], out[DATA_BUF];

    data_fill(block, sizeof(block), 17);
    data_fill(payload, sizeof(payload), 18);
    data_swap(block, server_block);
    for (size_t row = 0; row < ARRAY_SIZE(data_configs); row++) {
        const struct data_config *c = &data_configs[row];
        struct ovpn_data_key *client = data_key(c->cipher, c->auth, 0, c->v2, 0, block);
        struct ovpn_data_key *server = data_key(c->cipher, c->auth, 0, c->v2, 0, server_block);
        static const size_t lens[] = {1, 11, 12, 13, 27, 28, 29, 44, 45, 100};
        for (size_t li = 0; li < ARRAY_SIZE(lens); li++) {
            size_t len = lens[li];
            /* The exact size fits; one byte less does not and consumes no packet id. */
            int need = ovpn_data_encrypt(client, payload, len, pkt, sizeof(pkt));
            ASSERT(need > 0);
            uint32_t id = ovpn_data_send_id(client);
            ASSERT_ROW(ovpn_data_encrypt(client, payload, len, pkt, (size_t)need - 1) == -ENOSPC, "%zu", row);
            ASSERT_EQ(ovpn_data_send_id(client), id);
            ASSERT_EQ(ovpn_data_encrypt(client, payload, len, pkt, (size_t)need), need);

            ASSERT_ROW(ovpn_data_decrypt(server, pkt, (size_t)need, out, len - 1) == -ENOSPC, "%zu", row);
            ASSERT_EQ(ovpn_data_decrypt(server, pkt, (size_t)need, out, len), len);
        }
        ovpn_data_key_free(client);
        ovpn_data_key_free(server);
    }
    return 0;
}
