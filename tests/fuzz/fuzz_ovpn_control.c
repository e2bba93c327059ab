/* libFuzzer target for control channel packets (tunnel/openvpn/control.c) in every wrapping we
 * implement: plain, tls-auth (SHA1, SHA256, SHA384, SHA512, with and without key-direction) and
 * tls-crypt. tls-crypt-v2 changes only what the client sends (its reset is HARD_RESET_CLIENT_V3
 * with the wrapped client key after it, unit test ovpn_control_tls_crypt_v2_reset); what a server
 * sends under it is tls-crypt, fuzzed here.
 *
 * Byte 0 picks the wrapping (low nibble) and the action (high nibble):
 *   0  hostile: the rest is a packet from the server. Decoding gives 0, -EBADMSG or -EALREADY;
 *      what it returns lies inside the packet or the scratch; a plain packet re-encodes to
 *      exactly its own bytes, and an authentic wrapped one is refused the second time;
 *   1  round trip: the rest describes a packet (see fuzz_read_ctrl) that a server-side wrap
 *      encodes; ours must decode it to the same fields, once; our own packets reflected back must
 *      fail authentication unless both directions share one key;
 *   2  tamper: as 1, then one byte changed and the packet cut short: a wrapped packet must fail
 *      authentication either way;
 *   3  replay: up to 16 packets encoded in order, then delivered in an order the input picks,
 *      repeats included: each is accepted the first time and refused after (wrapped);
 *   4  early negotiation: the rest is the payload of a server's reset to a tls-crypt-v2 client
 *      (ovpn_early_neg_parse): 0 or -EBADMSG, the same answer twice, and a payload that parsed
 *      still parses with a well-formed record after it.
 * Packets and scratch are allocated to their exact size so ASan sees any overrun. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tunnel/openvpn/control.h"
#include "tunnel/openvpn/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Our wrap (the client's) and the server's that talks to it. */
static const struct {
    enum ovpn_wrap_mode mode;
    int client_dir, server_dir;
    const char *digest;
} fuzz_pairings[] = {
    {OVPN_WRAP_NONE, -1, -1, NULL},
    {OVPN_WRAP_AUTH, -1, -1, "SHA1"},
    {OVPN_WRAP_AUTH, 1, 0, "SHA1"},
    {OVPN_WRAP_AUTH, 1, 0, "SHA256"},
    {OVPN_WRAP_AUTH, 0, 1, "SHA512"},
    {OVPN_WRAP_AUTH, -1, -1, "SHA384"},
    {OVPN_WRAP_CRYPT, -1, 0, NULL}, /* tls-crypt without key-direction: a client sends with record 1 */
    {OVPN_WRAP_CRYPT, 1, 0, NULL},
};
enum { FUZZ_N_PAIRINGS = sizeof(fuzz_pairings) / sizeof(fuzz_pairings[0]), FUZZ_MAX_SEQ = 16 };

static const uint8_t fuzz_ops[] = {
    OVPN_OP_CONTROL_SOFT_RESET_V1, OVPN_OP_CONTROL_V1, OVPN_OP_ACK_V1,
    OVPN_OP_CONTROL_HARD_RESET_CLIENT_V2, OVPN_OP_CONTROL_HARD_RESET_SERVER_V2,
};

/* A reader over the input that yields zeros once it runs out. */
struct fuzz_in {
    const uint8_t *p;
    size_t left;
};

static uint8_t fuzz_u8(struct fuzz_in *in)
{
    if (in->left == 0)
        return 0;
    in->left--;
    return *in->p++;
}

static uint32_t fuzz_u32(struct fuzz_in *in)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v = v << 8 | fuzz_u8(in);
    return v;
}

static void fuzz_bytes(struct fuzz_in *in, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = fuzz_u8(in);
}

/* op/key id byte, ack count byte, sid, acks, ack sid, msg id; the payload is up to max_payload of
 * what follows (all of it when max_payload is SIZE_MAX). */
static void fuzz_read_ctrl(struct fuzz_in *in, struct ovpn_ctrl *c, size_t max_payload)
{
    memset(c, 0, sizeof(*c));
    uint8_t b = fuzz_u8(in);
    c->op = fuzz_ops[b % sizeof(fuzz_ops)];
    c->key_id = (uint8_t)((b >> 4) & OVPN_KEY_ID_MASK);
    c->n_acks = fuzz_u8(in) % (OVPN_MAX_ACKS_ACK + 1);
    fuzz_bytes(in, c->sid, OVPN_SID_LEN);
    for (size_t i = 0; i < c->n_acks; i++)
        c->acks[i] = fuzz_u32(in);
    if (c->n_acks)
        fuzz_bytes(in, c->ack_sid, OVPN_SID_LEN);
    c->has_msg_id = c->op != OVPN_OP_ACK_V1;
    if (c->has_msg_id)
        c->msg_id = fuzz_u32(in);
    size_t n = in->left < max_payload ? in->left : max_payload;
    c->payload = in->p;
    c->len = n;
    in->p += n;
    in->left -= n;
}

static size_t fuzz_encoded_len(const struct ovpn_wrap *w, const struct ovpn_ctrl *c)
{
    return 1 + OVPN_SID_LEN + ovpn_wrap_overhead(w) + 1 + 4 * c->n_acks + (c->n_acks ? OVPN_SID_LEN : 0) +
           (c->has_msg_id ? 4 : 0) + c->len;
}

static int fuzz_same(const struct ovpn_ctrl *a, const struct ovpn_ctrl *b)
{
    if (a->op != b->op || a->key_id != b->key_id || memcmp(a->sid, b->sid, OVPN_SID_LEN) != 0 ||
        a->n_acks != b->n_acks || a->has_msg_id != b->has_msg_id || a->len != b->len)
        return 0;
    for (size_t i = 0; i < a->n_acks; i++)
        if (a->acks[i] != b->acks[i])
            return 0;
    if (a->n_acks && memcmp(a->ack_sid, b->ack_sid, OVPN_SID_LEN) != 0)
        return 0;
    if (a->has_msg_id && a->msg_id != b->msg_id)
        return 0;
    return a->len == 0 || memcmp(a->payload, b->payload, a->len) == 0;
}

static int fuzz_inside(const uint8_t *p, size_t n, const uint8_t *buf, size_t cap)
{
    return p >= buf && p <= buf + cap && n <= (size_t)(buf + cap - p);
}

/* The last decode's packet copy and scratch, which its result may point into. */
static uint8_t *fuzz_copy, *fuzz_scratch;

static void fuzz_decode_done(void)
{
    free(fuzz_copy);
    free(fuzz_scratch);
    fuzz_copy = fuzz_scratch = NULL;
}

/* Decodes pkt (copied to an exact-size buffer, with an exact-size scratch) and checks what any
 * decode must hold. Returns the decode's result; *out is valid until the next call. */
static int fuzz_decode(struct ovpn_wrap *w, const uint8_t *pkt, size_t len, struct ovpn_ctrl *out)
{
    fuzz_decode_done();
    uint8_t *copy = fuzz_copy = malloc(len ? len : 1);
    uint8_t *scratch = fuzz_scratch = malloc(len ? len : 1);
    if (copy == NULL || scratch == NULL)
        abort();
    if (len)
        memcpy(copy, pkt, len);
    int rc = ovpn_ctrl_decode(w, copy, len, scratch, len, out);
    if (rc != 0 && rc != -EBADMSG && rc != -EALREADY)
        abort();
    if (rc == 0) {
        if (!ovpn_op_is_control(out->op) || out->n_acks > OVPN_MAX_ACKS_ACK ||
            out->has_msg_id != (out->op != OVPN_OP_ACK_V1) || out->key_id > OVPN_KEY_ID_MASK)
            abort();
        if (!fuzz_inside(out->payload, out->len, copy, len) && !fuzz_inside(out->payload, out->len, scratch, len))
            abort();
        if (len != fuzz_encoded_len(w, out))
            abort();
    }
    return rc;
}

/* Encodes c with w into a buffer of exactly the expected size, checking the size and that one
 * byte less is refused. The caller frees the result. */
static uint8_t *fuzz_encode(struct ovpn_wrap *w, const struct ovpn_ctrl *c, size_t *len)
{
    size_t want = fuzz_encoded_len(w, c);
    uint8_t *pkt = malloc(want);
    if (pkt == NULL)
        abort();
    if (ovpn_ctrl_encode(w, c, pkt, want - 1) != -ENOSPC)
        abort();
    int n = ovpn_ctrl_encode(w, c, pkt, want);
    if (n < 0 || (size_t)n != want)
        abort();
    *len = want;
    return pkt;
}

static void fuzz_hostile(struct ovpn_wrap *ours, const uint8_t *pkt, size_t len)
{
    struct ovpn_ctrl c;
    int rc = fuzz_decode(ours, pkt, len, &c);
    if (rc != 0)
        return;
    if (ours->mode != OVPN_WRAP_NONE) {
        /* Authentic by chance or by a seed: then never twice. */
        if (fuzz_decode(ours, pkt, len, &c) != -EALREADY)
            abort();
        return;
    }
    /* Plain: decoding and encoding are inverses. */
    size_t n;
    uint8_t *again = fuzz_encode(ours, &c, &n);
    if (n != len || memcmp(again, pkt, len) != 0)
        abort();
    free(again);
}

/* Same header, and d's payload a shorter prefix of c's: a plain packet cut inside its payload. */
static int fuzz_prefix(const struct ovpn_ctrl *c, const struct ovpn_ctrl *d)
{
    struct ovpn_ctrl head = *c;
    head.len = d->len;
    return d->len < c->len && fuzz_same(&head, d);
}

static void fuzz_roundtrip(struct ovpn_wrap *ours, struct ovpn_wrap *server, struct ovpn_wrap *mirror,
                           struct fuzz_in *in, int tamper)
{
    struct ovpn_ctrl c, d;
    uint8_t where = fuzz_u8(in), how = fuzz_u8(in), cut = fuzz_u8(in);
    fuzz_read_ctrl(in, &c, SIZE_MAX);
    size_t n;
    uint8_t *pkt = fuzz_encode(server, &c, &n);
    int wrapped = ours->mode != OVPN_WRAP_NONE;

    if (!tamper) {
        if (fuzz_decode(ours, pkt, n, &d) != 0 || !fuzz_same(&c, &d))
            abort();
        if (fuzz_decode(ours, pkt, n, &d) != (wrapped ? -EALREADY : 0))
            abort();
        /* Our own packet reflected back: authentic only when one key serves both directions
         * (tls-auth without key-direction). mirror is set up exactly as ours is. */
        size_t m;
        uint8_t *mine = fuzz_encode(ours, &c, &m);
        int rc = fuzz_decode(mirror, mine, m, &d);
        int shared = ours->mode == OVPN_WRAP_NONE ||
                     (ours->mode == OVPN_WRAP_AUTH && memcmp(ours->hmac_in, ours->hmac_out, ours->hmac_len) == 0);
        if (shared ? rc != 0 || !fuzz_same(&c, &d) : rc != -EBADMSG)
            abort();
        free(mine);
    } else {
        size_t at = where % n;
        uint8_t flip = (uint8_t)(how | 1);
        pkt[at] ^= flip;
        if (wrapped) {
            if (fuzz_decode(ours, pkt, n, &d) != -EBADMSG)
                abort();
        } else {
            fuzz_hostile(ours, pkt, n);
        }
        pkt[at] ^= flip;
        size_t k = cut % n; /* always shorter than the packet */
        int rc = fuzz_decode(ours, pkt, k, &d);
        if (wrapped ? rc != -EBADMSG : rc == 0 && !fuzz_prefix(&c, &d))
            abort();
        /* Intact, it still passes: the failures recorded no replay id. */
        if (fuzz_decode(ours, pkt, n, &d) != 0 || !fuzz_same(&c, &d))
            abort();
    }
    free(pkt);
}

static void fuzz_replay(struct ovpn_wrap *ours, struct ovpn_wrap *server, struct fuzz_in *in)
{
    uint8_t *pkts[FUZZ_MAX_SEQ];
    size_t lens[FUZZ_MAX_SEQ];
    int seen[FUZZ_MAX_SEQ] = {0};
    size_t count = 1 + fuzz_u8(in) % FUZZ_MAX_SEQ;
    struct ovpn_ctrl c, d;
    for (size_t i = 0; i < count; i++) {
        fuzz_read_ctrl(in, &c, fuzz_u8(in) % 64);
        c.msg_id = (uint32_t)i;
        c.has_msg_id = c.op != OVPN_OP_ACK_V1;
        pkts[i] = fuzz_encode(server, &c, &lens[i]);
    }
    /* Each remaining byte delivers one of them. */
    while (in->left) {
        size_t i = fuzz_u8(in) % count;
        int rc = fuzz_decode(ours, pkts[i], lens[i], &d);
        int want = ours->mode == OVPN_WRAP_NONE || !seen[i] ? 0 : -EALREADY;
        if (rc != want || (rc == 0 && d.has_msg_id && d.msg_id != i))
            abort();
        seen[i] = 1;
    }
    for (size_t i = 0; i < count; i++)
        free(pkts[i]);
}

static void fuzz_early_neg(const uint8_t *data, size_t len)
{
    static const uint8_t flags_record[] = {0, 1, 0, 2, 0, 1};
    uint8_t *copy = malloc(len + sizeof(flags_record));
    if (copy == NULL)
        abort();
    if (len)
        memcpy(copy, data, len);
    unsigned flags, again;
    int rc = ovpn_early_neg_parse(copy, len, &flags);
    if ((rc != 0 && rc != -EBADMSG) || ovpn_early_neg_parse(copy, len, &again) != rc ||
        (rc == 0 && again != flags))
        abort();
    memcpy(copy + len, flags_record, sizeof(flags_record));
    if (rc == 0 && (ovpn_early_neg_parse(copy, len + sizeof(flags_record), &again) != 0 ||
                    again != (flags | OVPN_EARLY_NEG_RESEND_WKC)))
        abort();
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t key[OVPN_STATIC_KEY_LEN];
    if (key[1] == 0)
        for (size_t i = 0; i < sizeof(key); i++)
            key[i] = (uint8_t)(i * 7 + 3);
    if (size < 1 || size > 1 + 4096)
        return 0;
    unsigned pairing = (data[0] & 0x0F) % FUZZ_N_PAIRINGS, action = (data[0] >> 4) % 5;
    enum ovpn_wrap_mode mode = fuzz_pairings[pairing].mode;
    const char *digest = fuzz_pairings[pairing].digest;
    struct ovpn_wrap ours, server, mirror;
    if (ovpn_wrap_init(&ours, mode, key, fuzz_pairings[pairing].client_dir, digest) != 0 ||
        ovpn_wrap_init(&mirror, mode, key, fuzz_pairings[pairing].client_dir, digest) != 0 ||
        ovpn_wrap_init(&server, mode, key, fuzz_pairings[pairing].server_dir, digest) != 0)
        abort();
    struct fuzz_in in = {data + 1, size - 1};

    switch (action) {
    case 0: fuzz_hostile(&ours, in.p, in.left); break;
    case 1: fuzz_roundtrip(&ours, &server, &mirror, &in, 0); break;
    case 2: fuzz_roundtrip(&ours, &server, &mirror, &in, 1); break;
    case 3: fuzz_replay(&ours, &server, &in); break;
    default: fuzz_early_neg(in.p, in.left); break;
    }
    ovpn_wrap_clear(&ours);
    ovpn_wrap_clear(&server);
    ovpn_wrap_clear(&mirror);
    fuzz_decode_done();
    return 0;
}
