/* tunnel/openvpn/keys.c: the TLS 1.0 PRF key derivation, against a reference written here from
 * RFC 2246 (P_MD5 xor P_SHA1 over HMAC) and against sessions of the stock openvpn 2.6 binary. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "test.h"
#include "tunnel/openvpn/keys.h"

static size_t keys_hex(uint8_t *out, size_t cap, const char *hex)
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

/* RFC 2246 5: P_hash(secret, seed) = HMAC(secret, A(1) + seed) + HMAC(secret, A(2) + seed) + ...
 * with A(0) = seed, A(i) = HMAC(secret, A(i-1)). */
static void keys_p_hash(const EVP_MD *md, const uint8_t *secret, size_t secret_len,
                        const uint8_t *seed, size_t seed_len, uint8_t *out, size_t out_len)
{
    uint8_t a[EVP_MAX_MD_SIZE], block[EVP_MAX_MD_SIZE], buf[EVP_MAX_MD_SIZE + 256];
    unsigned a_len = 0, block_len = 0;
    size_t done = 0;

    ASSERT(seed_len <= 256);
    ASSERT(HMAC(md, secret, (int)secret_len, seed, seed_len, a, &a_len) != NULL);
    while (done < out_len) {
        memcpy(buf, a, a_len);
        memcpy(buf + a_len, seed, seed_len);
        ASSERT(HMAC(md, secret, (int)secret_len, buf, a_len + seed_len, block, &block_len) != NULL);
        size_t n = out_len - done < block_len ? out_len - done : block_len;
        memcpy(out + done, block, n);
        done += n;
        ASSERT(HMAC(md, secret, (int)secret_len, a, a_len, a, &a_len) != NULL);
    }
}

/* PRF(secret, label, seed) = P_MD5(S1, label + seed) XOR P_SHA1(S2, label + seed), the halves
 * overlapping by one byte when the secret's length is odd. */
static void keys_ref_prf(const uint8_t *secret, size_t secret_len, const uint8_t *seed,
                         size_t seed_len, uint8_t *out, size_t out_len)
{
    uint8_t md5[512], sha1[512];
    size_t half = (secret_len + 1) / 2;

    ASSERT(out_len <= sizeof(md5));
    keys_p_hash(EVP_md5(), secret, half, seed, seed_len, md5, out_len);
    keys_p_hash(EVP_sha1(), secret + secret_len - half, half, seed, seed_len, sha1, out_len);
    for (size_t i = 0; i < out_len; i++)
        out[i] = md5[i] ^ sha1[i];
}

static size_t keys_cat(uint8_t *seed, const char *label, const uint8_t *a, size_t a_len,
                       const uint8_t *b, size_t b_len)
{
    size_t n = strlen(label);
    memcpy(seed, label, n);
    memcpy(seed + n, a, a_len);
    memcpy(seed + n + a_len, b, b_len);
    return n + a_len + b_len;
}

/* OpenVPN's two PRF calls (ssl.c generate_key_expansion_openvpn_prf), built from the reference. */
static void keys_ref_openvpn(const struct ovpn_key_source *c, const struct ovpn_key_source *s,
                             const uint8_t *csid, const uint8_t *ssid, uint8_t out[OVPN_KEY_BLOCK_LEN])
{
    uint8_t seed[256], master[48], sids[2 * OVPN_SID_LEN], randoms[2 * OVPN_RANDOM_LEN];
    size_t n;

    n = keys_cat(seed, "OpenVPN master secret", c->random1, OVPN_RANDOM_LEN, s->random1, OVPN_RANDOM_LEN);
    keys_ref_prf(c->pre_master, sizeof(c->pre_master), seed, n, master, sizeof(master));
    memcpy(randoms, c->random2, OVPN_RANDOM_LEN);
    memcpy(randoms + OVPN_RANDOM_LEN, s->random2, OVPN_RANDOM_LEN);
    memcpy(sids, csid, OVPN_SID_LEN);
    memcpy(sids + OVPN_SID_LEN, ssid, OVPN_SID_LEN);
    n = keys_cat(seed, "OpenVPN key expansion", randoms, sizeof(randoms), sids, sizeof(sids));
    keys_ref_prf(master, sizeof(master), seed, n, out, OVPN_KEY_BLOCK_LEN);
}

static void keys_fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

/* The reference PRF itself against RFC 2246's construction for an odd-length secret, where
 * the halves share a byte; then ovpn_keys_prf against the reference for many inputs. */
TEST_IMPL(ovpn_keys_prf_reference)
{
    static const uint32_t seeds[] = {1, 2, 3, 0xdeadbeef, 0x12345678, 77, 1000, 65535};

    for (size_t row = 0; row < ARRAY_SIZE(seeds); row++) {
        struct ovpn_key_source c, s;
        uint8_t csid[OVPN_SID_LEN], ssid[OVPN_SID_LEN];
        uint8_t got[OVPN_KEY_BLOCK_LEN], want[OVPN_KEY_BLOCK_LEN];

        keys_fill((uint8_t *)&c, sizeof(c), seeds[row]);
        keys_fill((uint8_t *)&s, sizeof(s), seeds[row] ^ 0x5555);
        memset(s.pre_master, 0, sizeof(s.pre_master)); /* servers send none */
        keys_fill(csid, sizeof(csid), seeds[row] + 11);
        keys_fill(ssid, sizeof(ssid), seeds[row] + 12);

        ASSERT_ROW(ovpn_keys_prf(&c, &s, csid, ssid, got) == 0, "%zu", row);
        keys_ref_openvpn(&c, &s, csid, ssid, want);
        ASSERT_ROW(memcmp(got, want, sizeof(got)) == 0, "%zu", row);

        /* Every input counts, and in its place: sids and randoms are not interchangeable. */
        uint8_t other[OVPN_KEY_BLOCK_LEN];
        ASSERT(ovpn_keys_prf(&c, &s, ssid, csid, other) == 0);
        ASSERT_ROW(memcmp(got, other, sizeof(got)) != 0, "%zu", row);
        ASSERT(ovpn_keys_prf(&s, &c, csid, ssid, other) == 0);
        ASSERT_ROW(memcmp(got, other, sizeof(got)) != 0, "%zu", row);
        struct ovpn_key_source s2 = s;
        s2.pre_master[0] ^= 1; /* the server's pre_master is not an input */
        ASSERT(ovpn_keys_prf(&c, &s2, csid, ssid, other) == 0);
        ASSERT_ROW(memcmp(got, other, sizeof(got)) == 0, "%zu", row);
        s2 = s;
        s2.random2[31] ^= 1;
        ASSERT(ovpn_keys_prf(&c, &s2, csid, ssid, other) == 0);
        ASSERT_ROW(memcmp(got, other, sizeof(got)) != 0, "%zu", row);
    }

    /* The reference's odd-length split, checked by hand: S1 and S2 share the middle byte. */
    uint8_t secret[5] = {1, 2, 3, 4, 5}, seed[4] = {9, 8, 7, 6}, a[20], b[20], x[20];
    keys_ref_prf(secret, sizeof(secret), seed, sizeof(seed), x, sizeof(x));
    keys_p_hash(EVP_md5(), secret, 3, seed, sizeof(seed), a, sizeof(a));
    keys_p_hash(EVP_sha1(), secret + 2, 3, seed, sizeof(seed), b, sizeof(b));
    for (size_t i = 0; i < sizeof(x); i++)
        ASSERT(x[i] == (a[i] ^ b[i]));
    return 0;
}

/* Sessions between two stock openvpn 2.6.14 processes (dev null, the client with --pull, which
 * makes the server derive with the PRF: "TLS_export=0"). Inputs are the server's verb 11 log
 * ("Client pre_master", "... random1/2") and the session ids from the captured reset packets;
 * outputs are its "Master Encrypt/Decrypt" lines, which print the first key length bytes of
 * each slot, and for AEAD the implicit IV of its "ENCRYPT IV" lines. */
struct keys_vector {
    const char *name;
    const char *pre_master, *c_random1, *c_random2, *s_random1, *s_random2, *csid, *ssid;
    const char *cipher0, *hmac0, *cipher1, *hmac1; /* slots [0,64) [64,128) [128,192) [192,256) */
};

static const struct keys_vector keys_vectors[] = {
    {"AES-128-CBC SHA1",
     "7cb676081dad6600e2b05d4bfe711d400fe801949a68d064f0834db01e73aea0817f8ba60bd3f4712697ed5940abd58c",
     "1125a07a9c1e6c7be57e4a196b71c17bed71d4d392f124ef92871d3f45ed628f",
     "16fd929eea4ad54157a20316166a8953a52e09d0215063959d5906a4462767ac",
     "2727c103cd8ac0776c225a49d23eba4be7b105f594595fe85fa3a59d44fdba93",
     "8473b5d3e1eb4896cf556918f0fc950c3af240d0c8579016a1a53f3b257be469",
     "bd751e4c2bd287ff", "a9d5320a02f54322",
     "7dc017ff4327d08daa7eada8dfce0e80", "3663dd70fcb471db78688442685f514190e4c934",
     "f0994bc7a28094fee44a80b9316f863f", "3ead103f5f30de4884f1a2ad7167c3b5db589786"},
    {"AES-128-GCM",
     "3c3da9b902d4fa736e8d1a2bc9a8172fb3daa5c0382a2721383bd1843cdd6c8cb20f25f2ab90e240a4ca5706e2edb153",
     "f49f1dc665ddb91f86234eea6ace0a56963670d3ee4319e546afbe1ff943dc31",
     "8f31140280b1344c9029f0a2dfff2e6ac095163a37115a2d8cdb9b6d7767eb3f",
     "d1a93e2f824d73e681f31c3a8f115e06334c15cc7e5d7e9cf41f761878584ba2",
     "f06d2695013ee63cf9a56bff20a40d7ec1079718d319bcab17aaed48df911b1b",
     "99c0f85951675e96", "0a5f8498f1e1aa6d",
     /* the implicit IVs: client "ENCRYPT IV: 00000001 8f71057b f40101eb", server "... 8cf00ebc
      * add35d99" */
     "48d8473be09ccb8310f3c03f0e7884a6", "8f71057bf40101eb",
     "bd841e5d0e5f9fdea162bbb444e155bd", "8cf00ebcadd35d99"},
    {"AES-256-CBC SHA256",
     "ee3ab45fd54e8d356661c16e9288f227a7019e796504531fb5f2165ed2befc1fd63fe8c93056fbfced92907705519ab0",
     "e692ad44b793738c86505b6bf69c5ad94b96295e905e32124d9ab7a51379861a",
     "5134875f0dbacc98a97120dc2d93e5cce02dd62211d55c801d2d94608f4275c5",
     "36cb844cb1995d008649dd6270de67262c31327ab5521f736421ac075a79f53b",
     "2645b79db1074485d110839f8d10ff1017c8f915f0e6100ea1999bd59d820deb",
     "8cb747d303a857a2", "08a6cef341ec95bb",
     "328f285451e9a794b1f9bf413ba63e364205ba7da40bade2ca5f3f77e7608dd3",
     "4cc6a37451ff677bbbc0ef8d69831ef76a8ac9f1eba1029de8ca2abdddc2cde7",
     "408c370289a5e3d1fc9bd2951959bad3bfdabf9bdf050254c88903051077ed6a",
     "16eb0cccebe32f8322a6876211932a9852b6d5d0ff609fdc494ec0b802fee82c"},
};

TEST_IMPL(ovpn_keys_prf_openvpn)
{
    for (size_t row = 0; row < ARRAY_SIZE(keys_vectors); row++) {
        const struct keys_vector *v = &keys_vectors[row];
        struct ovpn_key_source c, s;
        uint8_t csid[OVPN_SID_LEN], ssid[OVPN_SID_LEN], out[OVPN_KEY_BLOCK_LEN], want[64];
        const char *slots[4] = {v->cipher0, v->hmac0, v->cipher1, v->hmac1};

        memset(&c, 0, sizeof(c));
        memset(&s, 0, sizeof(s));
        ASSERT(keys_hex(c.pre_master, sizeof(c.pre_master), v->pre_master) == OVPN_PRE_MASTER_LEN);
        ASSERT(keys_hex(c.random1, sizeof(c.random1), v->c_random1) == OVPN_RANDOM_LEN);
        ASSERT(keys_hex(c.random2, sizeof(c.random2), v->c_random2) == OVPN_RANDOM_LEN);
        ASSERT(keys_hex(s.random1, sizeof(s.random1), v->s_random1) == OVPN_RANDOM_LEN);
        ASSERT(keys_hex(s.random2, sizeof(s.random2), v->s_random2) == OVPN_RANDOM_LEN);
        ASSERT(keys_hex(csid, sizeof(csid), v->csid) == OVPN_SID_LEN);
        ASSERT(keys_hex(ssid, sizeof(ssid), v->ssid) == OVPN_SID_LEN);

        ASSERT_ROW(ovpn_keys_prf(&c, &s, csid, ssid, out) == 0, "%s", v->name);
        for (int slot = 0; slot < 4; slot++) {
            size_t n = keys_hex(want, sizeof(want), slots[slot]);
            ASSERT_ROW(n > 0 && memcmp(out + slot * OVPN_KEY_SLOT_LEN, want, n) == 0,
                       "%s slot %d", v->name, slot);
        }
    }
    return 0;
}
