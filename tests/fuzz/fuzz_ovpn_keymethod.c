/* libFuzzer target for key-method 2 (tunnel/openvpn/keymethod.c), the first message each side
 * sends inside TLS. Byte 0 picks what to fuzz, byte 1 the output room; then:
 *   0  the server's message, as it arrives: parsed or refused exactly by the layout's rules
 *      (u32 0, method 2, random1, random2, a u16-length options string), the randoms and the
 *      options copied exactly, the options cut to the room given and always NUL-terminated;
 *   1  the client's message built from the input (key source, then options, user, password and
 *      peer info as newline-separated strings, "-" for an absent one): its length is exactly the
 *      layout's, one byte less of room is refused, and an independent reader finds every field;
 *      the same layout without the pre_master, read as a server's message, gives the options back;
 *   2  the ciphers we offer (IV_CIPHERS) from data-ciphers, cipher and data-ciphers-fallback
 *      taken from the input: only ciphers we implement, each once, within the room given; and
 *      the peer info built from them fits its room.
 * Buffers are allocated to their exact size so ASan sees any overrun. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tunnel/openvpn/config.h"
#include "tunnel/openvpn/data.h"
#include "tunnel/openvpn/keymethod.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { FUZZ_FIXED_SERVER = 4 + 1 + OVPN_RANDOM_LEN * 2, FUZZ_FIXED_CLIENT = FUZZ_FIXED_SERVER + OVPN_PRE_MASTER_LEN };

static void *fuzz_dup(const uint8_t *p, size_t n)
{
    uint8_t *copy = malloc(n ? n : 1);
    if (copy == NULL)
        abort();
    copy[0] = 0; /* an empty input still hands over a defined byte */
    if (n)
        memcpy(copy, p, n);
    return copy;
}

static void fuzz_server_message(const uint8_t *in, size_t len, size_t optcap)
{
    uint8_t *msg = fuzz_dup(in, len);
    char *options = malloc(optcap);
    struct ovpn_key_source src;
    if (options == NULL)
        abort();
    memset(&src, 0xEE, sizeof(src));
    int rc = ovpn_km2_parse_server(msg, len, &src, options, optcap);

    /* The rules, written out independently. */
    size_t n = len >= FUZZ_FIXED_SERVER + 2 ? (size_t)msg[FUZZ_FIXED_SERVER] << 8 | msg[FUZZ_FIXED_SERVER + 1] : 0;
    int valid = len >= FUZZ_FIXED_SERVER + 2 && (msg[4] & 0x0F) == 2 && n <= len - FUZZ_FIXED_SERVER - 2;
    if (rc != (valid ? 0 : -EBADMSG))
        abort();
    if (rc == 0) {
        static const uint8_t zero[OVPN_PRE_MASTER_LEN];
        if (memcmp(src.pre_master, zero, sizeof(zero)) != 0 || memcmp(src.random1, msg + 5, OVPN_RANDOM_LEN) != 0 ||
            memcmp(src.random2, msg + 5 + OVPN_RANDOM_LEN, OVPN_RANDOM_LEN) != 0)
            abort();
        const char *text = (const char *)msg + FUZZ_FIXED_SERVER + 2;
        size_t copy = n ? n - 1 : 0; /* the length counts a NUL */
        if (copy > optcap - 1)
            copy = optcap - 1;
        size_t got = strnlen(options, optcap);
        /* The options end at the first NUL of the string's bytes, or where it was cut. */
        if (got == optcap || got > copy || memcmp(options, text, got) != 0 || (got < copy && text[got] != '\0'))
            abort();
    }
    free(options);
    free(msg);
}

/* The next newline-separated string of the input; "-" alone is an absent one (NULL). */
static char *fuzz_next_string(const uint8_t **p, size_t *left, char **owned)
{
    const uint8_t *nl = memchr(*p, '\n', *left);
    size_t n = nl ? (size_t)(nl - *p) : *left;
    char *s = malloc(n + 1);
    if (s == NULL)
        abort();
    memcpy(s, *p, n);
    s[n] = '\0';
    *p += n + (nl ? 1 : 0);
    *left -= n + (nl ? 1 : 0);
    *owned = s;
    return strcmp(s, "-") == 0 ? NULL : s;
}

/* Reads one u16-length string of the built message at *off: NULL when absent. */
static const char *fuzz_read_string(const uint8_t *msg, size_t len, size_t *off)
{
    if (len - *off < 2)
        abort();
    size_t n = (size_t)msg[*off] << 8 | msg[*off + 1];
    *off += 2;
    if (n == 0)
        return NULL;
    if (len - *off < n || msg[*off + n - 1] != '\0' || memchr(msg + *off, '\0', n) != msg + *off + n - 1)
        abort();
    const char *s = (const char *)msg + *off;
    *off += n;
    return s;
}

static int fuzz_same_string(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void fuzz_client_message(const uint8_t *in, size_t len, size_t extra)
{
    struct ovpn_key_source src;
    memset(&src, 0, sizeof(src));
    size_t k = len < sizeof(src) ? len : sizeof(src);
    memcpy(&src, in, k);
    in += k;
    len -= k;
    char *owned[4];
    const char *strs[4];
    for (int i = 0; i < 4; i++)
        strs[i] = fuzz_next_string(&in, &len, &owned[i]);

    size_t want = FUZZ_FIXED_CLIENT;
    for (int i = 0; i < 4; i++)
        want += 2 + (strs[i] ? strlen(strs[i]) + 1 : 0);
    /* Room from too little to plenty: exactly the message, or extra bytes more. */
    size_t cap = want - 1 + extra;
    uint8_t *msg = malloc(cap ? cap : 1);
    if (msg == NULL)
        abort();
    int n = ovpn_km2_build(msg, cap, &src, strs[0], strs[1], strs[2], strs[3]);
    if (cap < want) {
        if (n != -ENOSPC)
            abort();
    } else {
        if (n < 0 || (size_t)n != want)
            abort();
        static const uint8_t head[5] = {0, 0, 0, 0, 2};
        if (memcmp(msg, head, 5) != 0 || memcmp(msg + 5, src.pre_master, OVPN_PRE_MASTER_LEN) != 0 ||
            memcmp(msg + 5 + OVPN_PRE_MASTER_LEN, src.random1, OVPN_RANDOM_LEN) != 0 ||
            memcmp(msg + 5 + OVPN_PRE_MASTER_LEN + OVPN_RANDOM_LEN, src.random2, OVPN_RANDOM_LEN) != 0)
            abort();
        size_t off = FUZZ_FIXED_CLIENT;
        for (int i = 0; i < 4; i++)
            if (!fuzz_same_string(fuzz_read_string(msg, want, &off), strs[i]))
                abort();
        if (off != want)
            abort();

        /* Without the pre_master it is a server's message carrying the same options. */
        size_t slen = want - OVPN_PRE_MASTER_LEN;
        uint8_t *srv = malloc(slen);
        char options[512];
        struct ovpn_key_source got;
        if (srv == NULL)
            abort();
        memcpy(srv, msg, 5);
        memcpy(srv + 5, msg + 5 + OVPN_PRE_MASTER_LEN, slen - 5);
        if (ovpn_km2_parse_server(srv, slen, &got, options, sizeof(options)) != 0 ||
            memcmp(got.random1, src.random1, OVPN_RANDOM_LEN) != 0 ||
            strncmp(options, strs[0] ? strs[0] : "", sizeof(options) - 1) != 0)
            abort();
        free(srv);
    }
    free(msg);
    for (int i = 0; i < 4; i++)
        free(owned[i]);
}

/* Copies the next newline-separated string of the input into a fixed config field. */
static void fuzz_field(const uint8_t **p, size_t *left, char *field, size_t cap)
{
    char *owned;
    fuzz_next_string(p, left, &owned);
    size_t n = strlen(owned) < cap - 1 ? strlen(owned) : cap - 1;
    memcpy(field, owned, n);
    field[n] = '\0';
    free(owned);
}

static void fuzz_ciphers(const uint8_t *in, size_t len, size_t cap)
{
    static struct ovpn_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    fuzz_field(&in, &len, cfg.data_ciphers, sizeof(cfg.data_ciphers));
    fuzz_field(&in, &len, cfg.cipher, sizeof(cfg.cipher));
    fuzz_field(&in, &len, cfg.data_ciphers_fallback, sizeof(cfg.data_ciphers_fallback));
    char *out = malloc(cap);
    if (out == NULL)
        abort();
    ovpn_km2_offered_ciphers(out, cap, &cfg);
    if (memchr(out, '\0', cap) == NULL)
        abort();
    /* name:name:...: each one we implement, none twice (names compare without case). */
    char seen[16][64];
    size_t n_seen = 0;
    for (const char *p = out; *p;) {
        size_t l = strcspn(p, ":");
        char name[64];
        if (l == 0 || l >= sizeof(name) || n_seen == 16)
            abort();
        memcpy(name, p, l);
        name[l] = '\0';
        if (!ovpn_data_cipher_supported(name))
            abort();
        for (size_t i = 0; i < n_seen; i++)
            if (strcasecmp(seen[i], name) == 0)
                abort();
        memcpy(seen[n_seen++], name, l + 1);
        p += l;
        if (*p == ':' && *++p == '\0')
            abort(); /* no trailing colon */
    }
    char *info = malloc(cap);
    if (info == NULL)
        abort();
    int n = ovpn_km2_peer_info(info, cap, out, cap & 1);
    if (n < 0 || (size_t)n >= cap || strlen(info) != (size_t)n)
        abort();
    free(info);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 2 + 4096)
        return 0;
    size_t room = (size_t)data[1] * 4 + 1; /* 1 to 1021 */
    switch (data[0] % 3) {
    case 0: fuzz_server_message(data + 2, size - 2, room); break;
    case 1: fuzz_client_message(data + 2, size - 2, data[1] % 3); break;
    default: fuzz_ciphers(data + 2, size - 2, room); break;
    }
    return 0;
}
