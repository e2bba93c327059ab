/* The OpenVPN control channel: packet codec with every wrapping, the reliability layer, and the
 * key-method 2 message. */
#include <errno.h>
#include <string.h>

#include "base/bytes.h"
#include "test.h"
#include "tunnel/openvpn/config.h"
#include "tunnel/openvpn/control.h"
#include "tunnel/openvpn/keymethod.h"
#include "tunnel/openvpn/reliable.h"
#include "ovpn_keytext.h"

static void fill_key(uint8_t *k)
{
    for (int i = 0; i < OVPN_STATIC_KEY_LEN; i++)
        k[i] = (uint8_t)(i * 7 + 3);
}

static struct ovpn_ctrl sample(uint8_t op)
{
    static const uint8_t payload[] = "client hello bytes";
    struct ovpn_ctrl c = {.op = op, .key_id = 2, .n_acks = 3, .acks = {0, 7, 0xFFFFFFFFu}, .has_msg_id = 1,
                          .msg_id = 42, .payload = payload, .len = sizeof(payload)};
    memset(c.sid, 0xA1, OVPN_SID_LEN);
    memset(c.ack_sid, 0xB2, OVPN_SID_LEN);
    return c;
}

static void check_same(const struct ovpn_ctrl *a, const struct ovpn_ctrl *b)
{
    ASSERT_EQ(a->op, b->op);
    ASSERT_EQ(a->key_id, b->key_id);
    ASSERT_MEM_EQ(a->sid, b->sid, OVPN_SID_LEN);
    ASSERT_EQ(a->n_acks, b->n_acks);
    for (size_t i = 0; i < a->n_acks; i++)
        ASSERT_EQ(a->acks[i], b->acks[i]);
    if (a->n_acks)
        ASSERT_MEM_EQ(a->ack_sid, b->ack_sid, OVPN_SID_LEN);
    ASSERT_EQ(a->has_msg_id, b->has_msg_id);
    if (a->has_msg_id)
        ASSERT_EQ(a->msg_id, b->msg_id);
    ASSERT_EQ(a->len, b->len);
    ASSERT_MEM_EQ(a->payload, b->payload, a->len);
}

/* Client and server wraps that talk to each other, for each mode. */
struct pairing {
    enum ovpn_wrap_mode mode;
    int client_dir, server_dir;
    const char *digest;
};

static const struct pairing pairings[] = {
    {OVPN_WRAP_NONE, -1, -1, NULL},
    {OVPN_WRAP_AUTH, -1, -1, "SHA1"},
    {OVPN_WRAP_AUTH, 1, 0, "SHA1"},
    {OVPN_WRAP_AUTH, 1, 0, "SHA256"},
    {OVPN_WRAP_AUTH, 0, 1, "SHA512"},
    {OVPN_WRAP_CRYPT, 1, 0, NULL},
};

TEST_IMPL(ovpn_control_roundtrip)
{
    uint8_t key[OVPN_STATIC_KEY_LEN], pkt[2048], scratch[2048];
    fill_key(key);
    for (size_t i = 0; i < ARRAY_SIZE(pairings); i++) {
        const struct pairing *pr = &pairings[i];
        struct ovpn_wrap client, server;
        ASSERT_EQ(ovpn_wrap_init(&client, pr->mode, key, pr->client_dir, pr->digest), 0);
        ASSERT_EQ(ovpn_wrap_init(&server, pr->mode, key, pr->server_dir, pr->digest), 0);
        uint8_t ops[] = {OVPN_OP_CONTROL_V1, OVPN_OP_CONTROL_HARD_RESET_CLIENT_V2, OVPN_OP_ACK_V1};
        for (size_t k = 0; k < ARRAY_SIZE(ops); k++) {
            struct ovpn_ctrl c = sample(ops[k]), d;
            if (ops[k] == OVPN_OP_ACK_V1) {
                c.has_msg_id = 0;
                c.len = 0;
            }
            int n = ovpn_ctrl_encode(&client, &c, pkt, sizeof(pkt));
            ASSERT_ROW(n > 0, "%zu/%zu", i, k);
            ASSERT_EQ((size_t)n, 1 + 8 + ovpn_wrap_overhead(&client) + 1 + 12 + 8 + (c.has_msg_id ? 4 : 0) + c.len);
            ASSERT_ROW(ovpn_ctrl_decode(&server, pkt, (size_t)n, scratch, sizeof(scratch), &d) == 0, "%zu/%zu", i, k);
            check_same(&c, &d);
            if (pr->mode != OVPN_WRAP_NONE) {
                /* The same packet again is a replay. */
                ASSERT_EQ(ovpn_ctrl_decode(&server, pkt, (size_t)n, scratch, sizeof(scratch), &d), -EALREADY);
                /* Every flipped bit after the opcode fails authentication. */
                for (int b = 1; b < n; b++) {
                    pkt[b] ^= 0x10;
                    ASSERT_ROW(ovpn_ctrl_decode(&server, pkt, (size_t)n, scratch, sizeof(scratch), &d) == -EBADMSG,
                               "%zu byte %d", i, b);
                    pkt[b] ^= 0x10;
                }
                /* Talking to ourselves fails unless both directions share one key. */
                struct ovpn_wrap self;
                ovpn_wrap_init(&self, pr->mode, key, pr->client_dir, pr->digest);
                n = ovpn_ctrl_encode(&client, &c, pkt, sizeof(pkt));
                int rc = ovpn_ctrl_decode(&self, pkt, (size_t)n, scratch, sizeof(scratch), &d);
                ASSERT_EQ(rc, pr->client_dir < 0 ? 0 : -EBADMSG);
            }
        }
        ovpn_wrap_clear(&client);
        ovpn_wrap_clear(&server);
    }
    return 0;
}

TEST_IMPL(ovpn_control_hostile)
{
    uint8_t key[OVPN_STATIC_KEY_LEN], pkt[2048], scratch[2048];
    fill_key(key);
    struct ovpn_wrap w;
    struct ovpn_ctrl d;
    ovpn_wrap_init(&w, OVPN_WRAP_NONE, NULL, -1, NULL);
    struct ovpn_ctrl c = sample(OVPN_OP_CONTROL_V1);
    int n = ovpn_ctrl_encode(&w, &c, pkt, sizeof(pkt));
    /* Every truncation of a valid packet is rejected or decodes to a shorter payload. */
    for (int len = 0; len < n; len++) {
        int rc = ovpn_ctrl_decode(&w, pkt, (size_t)len, scratch, sizeof(scratch), &d);
        ASSERT_ROW(rc == -EBADMSG || (rc == 0 && d.len < c.len), "%d", len);
    }
    /* Too many acks, and a data opcode. */
    pkt[9] = 9;
    ASSERT_EQ(ovpn_ctrl_decode(&w, pkt, (size_t)n, scratch, sizeof(scratch), &d), -EBADMSG);
    pkt[0] = OVPN_OP_BYTE(OVPN_OP_DATA_V2, 0);
    ASSERT_EQ(ovpn_ctrl_decode(&w, pkt, (size_t)n, scratch, sizeof(scratch), &d), -EBADMSG);
    /* Encoding refuses what it cannot express. */
    c.n_acks = 9;
    ASSERT_EQ(ovpn_ctrl_encode(&w, &c, pkt, sizeof(pkt)), -EINVAL);
    c = sample(OVPN_OP_CONTROL_V1);
    ASSERT_EQ(ovpn_ctrl_encode(&w, &c, pkt, 20), -ENOSPC);
    /* tls-crypt: short packets and a scratch too small. */
    ovpn_wrap_init(&w, OVPN_WRAP_CRYPT, key, 1, NULL);
    n = ovpn_ctrl_encode(&w, &c, pkt, sizeof(pkt));
    for (int len = 0; len < 9 + 40; len++)
        ASSERT_EQ(ovpn_ctrl_decode(&w, pkt, (size_t)len, scratch, sizeof(scratch), &d), -EBADMSG);
    ASSERT_EQ(ovpn_ctrl_decode(&w, pkt, (size_t)n, scratch, 4, &d), -ENOSPC);
    return 0;
}

TEST_IMPL(ovpn_reliable_send_window)
{
    struct ovpn_reliable r;
    ovpn_rel_init(&r);
    for (int i = 0; i < OVPN_REL_SEND_WINDOW; i++)
        ASSERT_EQ(ovpn_rel_send(&r, OVPN_OP_CONTROL_V1, (const uint8_t *)"x", 1, 1000), i);
    ASSERT(!ovpn_rel_can_send(&r));
    ASSERT_EQ(ovpn_rel_send(&r, OVPN_OP_CONTROL_V1, (const uint8_t *)"x", 1, 1000), -EAGAIN);
    /* All due now, oldest first, then each waits 2 s, then 4 s. */
    for (uint32_t i = 0; i < OVPN_REL_SEND_WINDOW; i++)
        ASSERT_EQ(ovpn_rel_next_due(&r, 1000)->id, i);
    ASSERT(ovpn_rel_next_due(&r, 1000) == NULL);
    ASSERT_EQ(ovpn_rel_next_deadline(&r), 3000);
    ASSERT(ovpn_rel_next_due(&r, 2999) == NULL);
    ASSERT_EQ(ovpn_rel_next_due(&r, 3000)->id, 0);
    ASSERT_EQ(ovpn_rel_next_due(&r, 3000)->id, 1);
    const struct ovpn_rel_msg *m = ovpn_rel_next_due(&r, 3000);
    ASSERT_EQ(m->id, 2);
    ASSERT_EQ(m->due, 7000);
    /* Acks free slots; acks of later ids make an earlier one due at once (fast retransmit). */
    ovpn_rel_acked(&r, 5);
    ovpn_rel_acked(&r, 4);
    ovpn_rel_acked(&r, 3);
    ASSERT(ovpn_rel_can_send(&r));
    ASSERT_EQ(ovpn_rel_next_due(&r, 3001)->id, 0);
    ovpn_rel_acked(&r, 0);
    ovpn_rel_acked(&r, 0); /* a duplicate ack is harmless */
    ovpn_rel_acked(&r, 99); /* so is one for an id never sent */
    ovpn_rel_acked(&r, 1);
    ovpn_rel_acked(&r, 2);
    ASSERT(ovpn_rel_all_acked(&r));
    ASSERT_EQ(ovpn_rel_next_deadline(&r), UINT64_MAX);
    ovpn_rel_free(&r);
    return 0;
}

TEST_IMPL(ovpn_reliable_receive_order)
{
    struct ovpn_reliable r;
    uint32_t acks[8];
    ovpn_rel_init(&r);
    ASSERT_EQ(ovpn_rel_receive(&r, 4, 2, (const uint8_t *)"c", 1), 1);
    ASSERT(ovpn_rel_peek(&r) == NULL); /* 0 and 1 first */
    ASSERT_EQ(ovpn_rel_receive(&r, 4, 0, (const uint8_t *)"a", 1), 1);
    ASSERT_EQ(ovpn_rel_receive(&r, 4, 0, (const uint8_t *)"a", 1), 0); /* duplicate, acked again */
    ASSERT_EQ(ovpn_rel_receive(&r, 4, 1, (const uint8_t *)"b", 1), 1);
    ASSERT_EQ(ovpn_rel_receive(&r, 4, 1 + OVPN_REL_RECV_WINDOW, (const uint8_t *)"z", 1), 0); /* too far */
    const char want[] = "abc";
    for (int i = 0; i < 3; i++) {
        const struct ovpn_rel_msg *m = ovpn_rel_peek(&r);
        ASSERT(m != NULL);
        ASSERT_EQ(m->data[0], want[i]);
        ovpn_rel_delivered(&r);
    }
    ASSERT(ovpn_rel_peek(&r) == NULL);
    ASSERT_EQ(ovpn_rel_receive(&r, 4, 0, (const uint8_t *)"a", 1), 0); /* old: acked, not kept */
    /* Acks: each id once, oldest first, none for the one too far ahead. */
    ASSERT_EQ(ovpn_rel_pending_acks(&r), 3);
    ASSERT_EQ(ovpn_rel_take_acks(&r, acks, 2), 2);
    ASSERT_EQ(acks[0], 2);
    ASSERT_EQ(acks[1], 0);
    ASSERT_EQ(ovpn_rel_take_acks(&r, acks, 8), 1);
    ASSERT_EQ(acks[0], 1);
    /* Acks already sent are repeated in spare room, newest first, without duplicates. */
    acks[0] = 0;
    ASSERT_EQ(ovpn_rel_add_recent_acks(&r, acks, 1, 4), 3);
    ASSERT_EQ(acks[1], 1);
    ASSERT_EQ(acks[2], 2);
    ASSERT_EQ(ovpn_rel_add_recent_acks(&r, acks, 0, 2), 2);
    ASSERT_EQ(acks[0], 1);
    ASSERT_EQ(acks[1], 0);
    ovpn_rel_free(&r);
    return 0;
}

TEST_IMPL(ovpn_keymethod_messages)
{
    struct ovpn_key_source src;
    uint8_t msg[4096];
    char opts[256];
    memset(&src, 0x5A, sizeof(src));
    int n = ovpn_km2_build(msg, sizeof(msg), &src, "V4,dev-type tun", "user", NULL, "IV_VER=2.6.14\n");
    /* u32 0, method 2, 48 + 32 + 32 key bytes, then four strings. */
    ASSERT_EQ(n, 4 + 1 + 112 + (2 + 16) + (2 + 5) + 2 + (2 + 15));
    ASSERT_EQ(msg[4], 2);
    ASSERT_EQ(msg[117], 0);
    ASSERT_EQ(msg[118], 16);
    ASSERT_STR_EQ((const char *)msg + 119, "V4,dev-type tun");
    ASSERT_EQ(msg[119 + 16 + 1], 5);
    ASSERT_EQ(msg[119 + 16 + 2 + 5], 0); /* the absent password: a bare u16 0 */
    ASSERT_EQ(msg[119 + 16 + 2 + 5 + 1], 0);
    ASSERT_EQ(ovpn_km2_build(msg, 100, &src, "x", NULL, NULL, NULL), -ENOSPC);

    /* The server's message: no pre_master; anything after the options is ignored. */
    uint8_t srv[200] = {0, 0, 0, 0, 2};
    for (int i = 0; i < 64; i++)
        srv[5 + i] = (uint8_t)i;
    srv[69] = 0;
    srv[70] = 4;
    memcpy(srv + 71, "V4,x", 4); /* the NUL is srv[75] */
    struct ovpn_key_source got;
    ASSERT_EQ(ovpn_km2_parse_server(srv, 80, &got, opts, sizeof(opts)), 0);
    ASSERT_STR_EQ(opts, "V4,");
    ASSERT_EQ(got.random1[5], 5);
    ASSERT_EQ(got.random2[0], 32);
    ASSERT_EQ(ovpn_km2_parse_server(srv, 72, &got, opts, sizeof(opts)), -EBADMSG); /* string cut */
    srv[4] = 1;
    ASSERT_EQ(ovpn_km2_parse_server(srv, 80, &got, opts, sizeof(opts)), -EBADMSG); /* key method 1 */
    return 0;
}

TEST_IMPL(ovpn_keymethod_ciphers)
{
    struct ovpn_config cfg;
    char out[512];
    memset(&cfg, 0, sizeof(cfg));
    /* Alibaba Cloud: cipher only. The 2.6 defaults, plus the configured cipher. */
    snprintf(cfg.cipher, sizeof(cfg.cipher), "AES-128-CBC");
    ovpn_km2_offered_ciphers(out, sizeof(out), &cfg);
    ASSERT_STR_EQ(out, "AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305:AES-128-CBC");
    /* data-ciphers given: used as is, unknown names dropped, no duplicates. */
    snprintf(cfg.data_ciphers, sizeof(cfg.data_ciphers), "CHACHA20-POLY1305:BF-CBC:aes-128-cbc");
    ovpn_km2_offered_ciphers(out, sizeof(out), &cfg);
    ASSERT_STR_EQ(out, "CHACHA20-POLY1305:aes-128-cbc");
    char info[1024];
    ovpn_km2_peer_info(info, sizeof(info), out, 1);
    ASSERT(strstr(info, "IV_PROTO=142\n") != NULL);
    ovpn_km2_peer_info(info, sizeof(info), out, 0);
    ASSERT(strstr(info, "IV_PROTO=134\n") != NULL); /* compat-mode before 2.6: no TLS exporter */
    ASSERT(strstr(info, "IV_CIPHERS=CHACHA20-POLY1305:aes-128-cbc\n") != NULL);
    ASSERT(strstr(info, "IV_NCP=2\n") != NULL);
    return 0;
}

/* tls-crypt-v2: HARD_RESET_CLIENT_V3 (opcode 10) is an ordinary tls-crypt packet under the client
 * key, with the wrapped client key after it in the clear, each time it is encoded; no other packet
 * carries it. Without tls-crypt-v2 there is no V3 to encode, and a V3 from a server is refused. */
TEST_IMPL(ovpn_control_tls_crypt_v2_reset)
{
    uint8_t bytes[256 + 1100], out[2048], again[2048], plain[2048], scratch[2048];
    size_t n = test_tcv2_key_bytes(bytes, sizeof(bytes), 40, 299, 0);
    const uint8_t *key = bytes, *wkc = bytes + 256;
    size_t wkc_len = n - 256;
    struct ovpn_wrap cw, sw, auth;

    ASSERT_EQ(ovpn_wrap_init(&cw, OVPN_WRAP_CRYPT, key, 1, NULL), 0);
    ASSERT_EQ(ovpn_wrap_init(&sw, OVPN_WRAP_CRYPT, key, 0, NULL), 0);
    ASSERT_EQ(ovpn_wrap_init(&auth, OVPN_WRAP_AUTH, key, 1, "SHA1"), 0);
    struct ovpn_ctrl reset = {.op = OVPN_OP_CONTROL_HARD_RESET_CLIENT_V3, .has_msg_id = 1, .msg_id = 0};
    memset(reset.sid, 0xC3, OVPN_SID_LEN);
    /* No wrapped key yet, or a wrapping that cannot carry one: no V3. */
    ASSERT_EQ(ovpn_ctrl_encode(&cw, &reset, out, sizeof(out)), -EINVAL);
    ASSERT_EQ(ovpn_wrap_set_wkc(&auth, wkc, wkc_len), -EINVAL);
    ASSERT_EQ(ovpn_wrap_set_wkc(&cw, wkc, OVPN_WKC_MAX_LEN + 1), -EINVAL);
    ASSERT_EQ(ovpn_wrap_set_wkc(&cw, wkc, wkc_len), 0);

    /* The first reset and its retransmission: opcode 10, key id 0, the session id, then a
     * tls-crypt packet that opens with the client key, then WKc byte for byte. */
    for (int round = 0; round < 2; round++) {
        int len = ovpn_ctrl_encode(&cw, &reset, out, sizeof(out));
        size_t tc_len = 1 + OVPN_SID_LEN + 8 + 32 + 1 + 4;
        ASSERT_EQ(len, (int)(tc_len + wkc_len));
        ASSERT_EQ(out[0], 10 << 3);
        ASSERT_MEM_EQ(out + 1, reset.sid, OVPN_SID_LEN);
        ASSERT_MEM_EQ(out + tc_len, wkc, wkc_len);
        ASSERT_EQ((size_t)out[len - 2] << 8 | out[len - 1], wkc_len);
        ASSERT_EQ(test_tls_crypt_open(key, out, tc_len, plain, sizeof(plain)), 5);
        ASSERT_EQ(plain[0], 0);                  /* no acks */
        ASSERT_EQ(plain[1] | plain[2] | plain[3] | plain[4], 0); /* message id 0 */
        ASSERT_EQ(v2s_get_be32(out + 1 + OVPN_SID_LEN), (uint32_t)round + 1); /* its replay id */
        /* A server never sends V3: refused on the way in. */
        ASSERT_EQ(ovpn_ctrl_decode(&sw, out, (size_t)len, scratch, sizeof(scratch), &(struct ovpn_ctrl){0}),
                  -EBADMSG);
        /* Too little room for WKc. */
        ASSERT_EQ(ovpn_ctrl_encode(&cw, &reset, again, tc_len + wkc_len - 1), -ENOSPC);
    }
    /* Every later packet is plain tls-crypt: the server's codec takes it whole (bytes after it
     * would fail the tag). */
    struct ovpn_ctrl later[] = {sample(OVPN_OP_CONTROL_V1), sample(OVPN_OP_ACK_V1)};
    later[1].has_msg_id = 0;
    later[1].len = 0;
    for (size_t i = 0; i < ARRAY_SIZE(later); i++) {
        int len = ovpn_ctrl_encode(&cw, &later[i], out, sizeof(out));
        ASSERT(len > 0);
        struct ovpn_ctrl got;
        ASSERT_EQ(ovpn_ctrl_decode(&sw, out, (size_t)len, scratch, sizeof(scratch), &got), 0);
        check_same(&later[i], &got);
    }
    ovpn_wrap_clear(&cw);
    ovpn_wrap_clear(&sw);
    ovpn_wrap_clear(&auth);
    return 0;
}

/* OpenVPN 2.6's early negotiation for tls-crypt-v2 (ssl_pkt.h, ssl.c): a session's replay ids
 * count from 0x0f000000, the offer a force-cookie server waits for (not without WKc: tls-crypt
 * and tls-auth sessions count from 0); CONTROL_WKC_V1 is a tls-crypt packet with WKc after it,
 * like the V3 reset, and encodes only under tls-crypt-v2; and the server's records parse as
 * OpenVPN reads them: EARLY_NEG_FLAGS with its u16 value (flags of two records add up), other
 * types skipped, anything cut short or a flags record of another length refused. */
TEST_IMPL(ovpn_control_tls_crypt_v2_cookie)
{
    uint8_t bytes[256 + 1100], out[2048], plain[2048];
    size_t n = test_tcv2_key_bytes(bytes, sizeof(bytes), 41, 299, 0);
    size_t wkc_len = n - 256;
    struct ovpn_wrap keys, plain_keys, cw;
    ASSERT_EQ(ovpn_wrap_init(&keys, OVPN_WRAP_CRYPT, bytes, 1, NULL), 0);
    ASSERT_EQ(ovpn_wrap_init(&plain_keys, OVPN_WRAP_CRYPT, bytes, 1, NULL), 0);
    struct ovpn_ctrl c = sample(OVPN_OP_CONTROL_WKC_V1);
    c.key_id = 0;
    c.n_acks = 1;
    c.msg_id = 1;
    ovpn_wrap_start(&cw, &plain_keys);
    ASSERT_EQ(ovpn_ctrl_encode(&cw, &c, out, sizeof(out)), -EINVAL);
    ASSERT_EQ(ovpn_wrap_set_wkc(&keys, bytes + 256, wkc_len), 0);
    for (int round = 0; round < 2; round++) {
        ovpn_wrap_start(&cw, round ? &plain_keys : &keys);
        struct ovpn_ctrl any = sample(OVPN_OP_CONTROL_V1);
        int len = ovpn_ctrl_encode(&cw, &any, out, sizeof(out));
        ASSERT(len > 0);
        ASSERT_EQ(v2s_get_be32(out + 1 + OVPN_SID_LEN), round ? 1u : 0x0f000001u);
    }
    ovpn_wrap_start(&cw, &keys);
    int len = ovpn_ctrl_encode(&cw, &c, out, sizeof(out));
    size_t tc_len = 1 + OVPN_SID_LEN + 8 + 32 + 1 + 4 + OVPN_SID_LEN + 4 + c.len;
    ASSERT_EQ(len, (int)(tc_len + wkc_len));
    ASSERT_EQ(out[0], 11 << 3);
    ASSERT_MEM_EQ(out + tc_len, bytes + 256, wkc_len);
    ASSERT_EQ(test_tls_crypt_open(bytes, out, tc_len, plain, sizeof(plain)), (long)(tc_len - 49));
    ASSERT_EQ(plain[0], 1);                              /* one ack: message 0 */
    ASSERT_EQ(v2s_get_be32(plain + 1), 0);
    ASSERT_MEM_EQ(plain + 5, c.ack_sid, OVPN_SID_LEN);   /* the server's session id, the cookie */
    ASSERT_EQ(v2s_get_be32(plain + 13), 1);              /* message 1 */
    ASSERT_MEM_EQ(plain + 17, c.payload, c.len);
    ASSERT_EQ(ovpn_ctrl_encode(&cw, &c, out, tc_len + wkc_len - 1), -ENOSPC);

    static const struct {
        const char *hex;
        int rc;
        unsigned flags;
    } rows[] = {
        {"", 0, 0},
        {"000100020001", 0, OVPN_EARLY_NEG_RESEND_WKC},          /* what a 2.6 server sends */
        {"00010002000000090003aabbcc", 0, 0},                    /* no flags; a type unknown */
        {"00090000000100020001", 0, 1},                           /* an empty record skipped */
        {"000100020002000100020001", 0, 3},
        {"00", -EBADMSG, 0},
        {"000100", -EBADMSG, 0},
        {"00010002", -EBADMSG, 0},
        {"0001000200", -EBADMSG, 0},
        {"000100030001ff", -EBADMSG, 0},
        {"00010000", -EBADMSG, 0},
        {"000900050001", -EBADMSG, 0},
        {"00010002000100", -EBADMSG, 0},
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        uint8_t tlv[32];
        size_t tlen = strlen(rows[i].hex) / 2;
        for (size_t k = 0; k < tlen; k++)
            ASSERT_EQ(sscanf(rows[i].hex + 2 * k, "%2hhx", &tlv[k]), 1);
        unsigned flags = 99;
        ASSERT_EQ(ovpn_early_neg_parse(tlv, tlen, &flags), rows[i].rc);
        if (rows[i].rc == 0)
            ASSERT_EQ(flags, rows[i].flags);
    }
    ovpn_wrap_clear(&cw);
    ovpn_wrap_clear(&keys);
    ovpn_wrap_clear(&plain_keys);
    return 0;
}
