/* The OpenVPN client session: resolving and connecting to a remote, the control channel (resets,
 * reliability, TLS, key-method 2, PUSH_REQUEST / PUSH_REPLY, control messages), data channel keys,
 * renegotiation and reconnection. Timer policy lives in timers.c. */
#include "tunnel/openvpn/client.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <uv.h>

#include "base/log.h"
#include "base/addr.h"
#include "tunnel/openvpn/comp.h"
#include "tunnel/openvpn/data.h"
#include "tunnel/openvpn/internal.h"
#include "tunnel/openvpn/keymethod.h"
#include "tunnel/openvpn/ncp.h"
#include "tunnel/openvpn/tls.h"
#include "tunnel/openvpn/transport.h"
#include "tunnel/settings.h"

enum {
    OVPN_BUF = OVPN_MAX_PACKET + 512,
    OVPN_TICK_MS = 100,
    OVPN_TRANSITION_MS = 60 * 1000, /* an old key still decrypts this long after a new one */
    OVPN_MAX_MSG = 64 * 1024,       /* longest control message (PUSH_REPLY parts are ~1.5 KB) */
    OVPN_RETRY_MAX_S = 300,
};

static void ovpn_client_tick_closed(uv_handle_t *h);
static void ovpn_client_set_token(struct ovpn_client *c, const char *token);

static uint64_t now_ms(const struct ovpn_client *c)
{
    return uv_now(c->loop);
}

/* --- key states --- */

void ovpn_ks_free(struct ovpn_ks *ks)
{
    if (!ks->used)
        return;
    ovpn_rel_free(&ks->rel);
    ovpn_tls_free(ks->tls);
    ovpn_data_key_free(ks->data);
    if (ks->msg) {
        OPENSSL_cleanse(ks->msg, ks->msg_len + 1);
        free(ks->msg);
    }
    OPENSSL_cleanse(ks, sizeof(*ks));
}

static struct ovpn_ks *ovpn_ks_find(struct ovpn_client *c, uint8_t key_id)
{
    for (int i = 0; i < OVPN_CLIENT_KEYS; i++)
        if (c->keys[i].used && c->keys[i].key_id == key_id)
            return &c->keys[i];
    return NULL;
}

static struct ovpn_ks *ovpn_ks_new(struct ovpn_client *c, uint8_t key_id)
{
    struct ovpn_ks *slot = NULL;
    for (int i = 0; i < OVPN_CLIENT_KEYS && !slot; i++)
        if (!c->keys[i].used)
            slot = &c->keys[i];
    if (!slot) {
        /* All in use: the oldest lame duck goes. */
        for (int i = 0; i < OVPN_CLIENT_KEYS; i++)
            if (i != c->primary && c->keys[i].retire_at && (!slot || c->keys[i].retire_at < slot->retire_at))
                slot = &c->keys[i];
        if (!slot)
            return NULL;
        ovpn_ks_free(slot);
    }
    memset(slot, 0, sizeof(*slot));
    slot->used = 1;
    slot->key_id = key_id;
    slot->state = OVPN_KS_RESET;
    slot->started = now_ms(c);
    ovpn_rel_init(&slot->rel);
    if (ovpn_km2_randomize(&slot->ours) < 0) {
        ovpn_ks_free(slot);
        return NULL;
    }
    return slot;
}

/* --- sending control packets --- */

static void ovpn_client_link_send(struct ovpn_client *c, const uint8_t *pkt, size_t len)
{
    if (!c->transport)
        return;
    int rc = ovpn_transport_send(c->transport, pkt, len);
    if (rc == 1)
        c->congested = 1;
    if (rc >= 0)
        c->last_tx = now_ms(c);
}

/* The most TLS bytes one CONTROL_V1 carries, so the packet stays within 1250 bytes. */
static size_t ovpn_client_control_payload(const struct ovpn_client *c)
{
    size_t head = 1 + OVPN_SID_LEN + 1 + 4 * OVPN_MAX_ACKS_CONTROL + OVPN_SID_LEN + 4;
    return OVPN_CONTROL_MAX_PACKET - head - ovpn_wrap_overhead(&c->wrap);
}

/* Puts due (re)transmissions on the wire with acks riding along, then any acks left in ACK_V1. */
void ovpn_client_flush(struct ovpn_client *c, struct ovpn_ks *ks)
{
    uint64_t now = now_ms(c);
    /* Move TLS records into the reliability layer while its window has room. */
    if (ks->tls) {
        size_t max = ovpn_client_control_payload(c);
        while (ovpn_tls_pending_output(ks->tls) && ovpn_rel_can_send(&ks->rel)) {
            size_t n = ovpn_tls_take_output(ks->tls, c->buf3, max);
            if (n == 0 || ovpn_rel_send(&ks->rel, OVPN_OP_CONTROL_V1, c->buf3, n, now) < 0)
                break;
        }
    }
    const struct ovpn_rel_msg *m;
    while ((m = ovpn_rel_next_due(&ks->rel, now))) {
        struct ovpn_ctrl p = {
            .op = m->op,
            .key_id = ks->key_id,
            .has_msg_id = 1,
            .msg_id = m->id,
            .payload = m->data,
            .len = m->len,
        };
        memcpy(p.sid, c->sid, OVPN_SID_LEN);
        /* The very first reset carries no acks: the server has no session to ack yet. */
        if (c->have_remote_sid) {
            p.n_acks = ovpn_rel_take_acks(&ks->rel, p.acks, OVPN_MAX_ACKS_CONTROL);
            /* Spare room repeats recent acks: a lost packet must not lose its acks for good
             * (a 2.6 UDP server keeps no state until it sees its reset acked). */
            p.n_acks = ovpn_rel_add_recent_acks(&ks->rel, p.acks, p.n_acks, OVPN_MAX_ACKS_CONTROL);
            memcpy(p.ack_sid, c->remote_sid, OVPN_SID_LEN);
        }
        int len = ovpn_ctrl_encode(&c->wrap, &p, c->buf, OVPN_BUF);
        if (len > 0)
            ovpn_client_link_send(c, c->buf, (size_t)len);
    }
    while (c->have_remote_sid && ovpn_rel_pending_acks(&ks->rel)) {
        struct ovpn_ctrl p = {.op = OVPN_OP_ACK_V1, .key_id = ks->key_id};
        memcpy(p.sid, c->sid, OVPN_SID_LEN);
        /* Four at most: some servers drop packets with more. */
        p.n_acks = ovpn_rel_take_acks(&ks->rel, p.acks, OVPN_MAX_ACKS_CONTROL);
        memcpy(p.ack_sid, c->remote_sid, OVPN_SID_LEN);
        int len = ovpn_ctrl_encode(&c->wrap, &p, c->buf, OVPN_BUF);
        if (len > 0)
            ovpn_client_link_send(c, c->buf, (size_t)len);
    }
}

/* Sends a control message over TLS: text and its NUL, as one record. */
static int ovpn_client_send_message(struct ovpn_client *c, struct ovpn_ks *ks, const char *msg)
{
    int rc = ovpn_tls_write(ks->tls, (const uint8_t *)msg, strlen(msg) + 1);
    if (rc == 0)
        ovpn_client_flush(c, ks);
    return rc;
}

void ovpn_client_send_push_request(struct ovpn_client *c)
{
    if (c->primary < 0)
        return;
    c->push_sent = now_ms(c);
    ovpn_client_send_message(c, &c->keys[c->primary], "PUSH_REQUEST");
}

/* --- failures --- */

static void ovpn_client_close_link(struct ovpn_client *c)
{
    if (c->transport) {
        ovpn_transport_close(c->transport);
        c->transport = NULL;
    }
    for (int i = 0; i < OVPN_CLIENT_KEYS; i++)
        ovpn_ks_free(&c->keys[i]);
    c->primary = -1;
    c->have_remote_sid = 0;
    /* A congested old link never drains: the stack hears "writable" when the tunnel is up again. */
    c->congested = 0;
    ovpn_wrap_clear(&c->wrap);
    ovpn_push_free(&c->push);
    ovpn_push_init(&c->push);
}

/* Gives up for good: the process exits with the reason's code. */
static void ovpn_client_fail(struct ovpn_client *c, enum tunnel_down_reason reason, const char *why)
{
    if (c->state == OVPN_CLIENT_DONE)
        return;
    ovpn_client_close_link(c);
    c->state = OVPN_CLIENT_DONE;
    uv_timer_stop(&c->tick);
    c->t.ev.down(c->t.ev.arg, reason, why);
}

void ovpn_client_restart(struct ovpn_client *c, const char *why)
{
    if (c->state == OVPN_CLIENT_DONE)
        return;
    int was_up = c->state == OVPN_CLIENT_UP;
    ovpn_client_close_link(c);
    if (!was_up && c->addr_next) {
        /* This address never answered properly: the remote's next one goes first, at once
         * (from the tick: we may be deep inside the old session's processing here). */
        v2s_info("openvpn: %s; trying the next address", why);
        c->state = OVPN_CLIENT_WAITING;
        c->wait_until = now_ms(c);
        c->next_addr = 1;
        return;
    }
    if (c->addrs) {
        uv_freeaddrinfo(c->addrs);
        c->addrs = c->addr_next = NULL;
    }
    unsigned cr = c->cfg->connect_retry ? c->cfg->connect_retry : 5;
    if (c->cfg->connect_retry_max && c->attempts >= (uint64_t)c->cfg->connect_retry_max * c->cfg->n_remotes) {
        char msg[300];
        snprintf(msg, sizeof(msg), "%s; giving up after %u attempts (connect-retry-max)", why, c->attempts);
        ovpn_client_fail(c, TUNNEL_DOWN_CLOSED, msg);
        return;
    }
    /* The first retry of a session that was up is quick; repeated failures back off. */
    unsigned delay = c->attempts == 0 ? 1 : cr;
    for (unsigned i = 1; i < c->attempts && delay < OVPN_RETRY_MAX_S; i++)
        delay *= 2;
    if (delay > OVPN_RETRY_MAX_S)
        delay = OVPN_RETRY_MAX_S;
    c->attempts++;
    c->remote = (c->remote + 1) % c->cfg->n_remotes;
    v2s_warn("openvpn: %s; reconnecting in %u s", why, delay);
    c->state = OVPN_CLIENT_WAITING;
    c->wait_until = now_ms(c) + delay * 1000ULL;
}

/* --- data channel --- */

/* Frames, encrypts and sends one payload with the primary key. 0, or -ENETDOWN without one. */
static int ovpn_client_send_data(struct ovpn_client *c, const uint8_t *payload, size_t len)
{
    if (c->primary < 0 || !c->keys[c->primary].data || !c->transport)
        return -ENETDOWN;
    if (len > OVPN_MAX_PACKET - 64)
        return -EMSGSIZE;
    const uint8_t *framed = payload;
    size_t flen = len;
    if (!ovpn_comp_frame_is_identity(c->comp, payload, len)) {
        size_t start;
        memcpy(c->buf2 + OVPN_COMP_MAX_OVERHEAD, payload, len);
        int m = ovpn_comp_frame(c->comp, c->buf2, len, OVPN_BUF, &start);
        if (m < 0)
            return m;
        framed = c->buf2 + start;
        flen = (size_t)m;
    }
    int n = ovpn_data_encrypt(c->keys[c->primary].data, framed, flen, c->buf, OVPN_BUF);
    if (n == -EOVERFLOW) {
        /* Renegotiation starts long before this (timers.c); this key cannot send any more. */
        ovpn_client_renegotiate(c, "the key is used up");
        return -ENETDOWN;
    }
    if (n < 0)
        return n;
    c->tx_packets++;
    ovpn_client_link_send(c, c->buf, (size_t)n);
    ovpn_timers_data_moved(c, &c->keys[c->primary]);
    return 0;
}

void ovpn_client_send_ping(struct ovpn_client *c)
{
    ovpn_client_send_data(c, ovpn_ping_magic, sizeof(ovpn_ping_magic));
}

/* Counts a data packet dropped by ovpn_data_decrypt() with rc. */
static void ovpn_client_count_drop(struct ovpn_client *c, int rc)
{
    struct ovpn_drop_counts *d = &c->drops;
    const char *why;
    switch (rc) {
    case -EALREADY:
        d->replayed++;
        why = "replayed";
        break;
    case -EBADMSG:
        d->bad_auth++;
        why = "authentication failed";
        break;
    case -EKEYEXPIRED:
        d->worn_key++;
        why = "its key failed authentication too often";
        break;
    case -ENOSPC:
        d->too_big++;
        why = "too big";
        break;
    default:
        d->malformed++;
        why = "malformed";
        break;
    }
    v2s_debug("openvpn: data packet dropped: %s", why);
}

static void ovpn_client_on_data(struct ovpn_client *c, const uint8_t *pkt, size_t len)
{
    struct ovpn_ks *ks = ovpn_ks_find(c, OVPN_KEY_ID_OF(pkt[0]));
    if (!ks || !ks->data) {
        c->drops.unknown_key++;
        v2s_debug("openvpn: data packet dropped: no data key %u", OVPN_KEY_ID_OF(pkt[0]));
        return;
    }
    int n = ovpn_data_decrypt(ks->data, pkt, len, c->rx, OVPN_BUF);
    if (n < 0) {
        ovpn_client_count_drop(c, n);
        return;
    }
    c->last_rx = now_ms(c);
    c->rx_packets++;
    ovpn_timers_data_moved(c, ks);
    /* The framing byte says whether the server compressed it: LZO, LZ4, or v2's algorithm byte. */
    if (c->comp != OVPN_COMP_FRAMING_NONE && n >= 2 &&
        (c->rx[0] == 0x66 || c->rx[0] == 0x69 || (c->rx[0] == 0x50 && c->rx[1] != 0)))
        c->rx_compressed++;
    const uint8_t *ip = NULL;
    int ipl = ovpn_comp_unframe(c->comp, c->rx, (size_t)n, c->buf3, OVPN_BUF, &ip);
    if (ipl < 0) {
        c->drops.decompress++;
        v2s_debug("openvpn: data packet dropped: bad compression framing");
        return;
    }
    if (ipl == (int)sizeof(ovpn_ping_magic) && memcmp(ip, ovpn_ping_magic, sizeof(ovpn_ping_magic)) == 0)
        return;
    if (ipl > (int)sizeof(ovpn_occ_magic) && memcmp(ip, ovpn_occ_magic, sizeof(ovpn_occ_magic)) == 0) {
        if (ip[sizeof(ovpn_occ_magic)] == OVPN_OCC_EXIT)
            ovpn_client_restart(c, "the server is going away (exit notification)");
        return;
    }
    if (c->state == OVPN_CLIENT_UP)
        c->t.ev.packet(c->t.ev.arg, ip, (size_t)ipl);
    else
        c->drops.not_up++;
}

void ovpn_client_drop_counts(const struct tunnel *t, struct ovpn_drop_counts *out)
{
    *out = ((const struct ovpn_client *)t)->drops;
}

int ovpn_drop_counts_format(const struct ovpn_drop_counts *d, char *out, size_t cap)
{
    return snprintf(out, cap,
                    "%llu bad tag/HMAC, %llu replayed, %llu malformed, %llu unknown key, %llu on a worn-out key, "
                    "%llu bad compression, %llu too big, %llu before the tunnel was up",
                    (unsigned long long)d->bad_auth, (unsigned long long)d->replayed,
                    (unsigned long long)d->malformed, (unsigned long long)d->unknown_key,
                    (unsigned long long)d->worn_key, (unsigned long long)d->decompress,
                    (unsigned long long)d->too_big, (unsigned long long)d->not_up);
}

/* Derives and installs the data key of ks with the negotiated cipher. 0 or negative. */
static int ovpn_client_install_keys(struct ovpn_client *c, struct ovpn_ks *ks)
{
    uint8_t block[OVPN_KEY_BLOCK_LEN];
    int rc = c->ekm ? ovpn_tls_export_keys(ks->tls, block, sizeof(block))
                    : ovpn_keys_prf(&ks->ours, &ks->theirs, c->sid, c->remote_sid, block);
    if (rc == 0) {
        struct ovpn_data_params p = {
            .cipher = c->cipher,
            .auth = c->auth,
            .key_id = ks->key_id,
            .data_v2 = c->peer_id_set,
            .peer_id = c->peer_id,
            .key_block = block,
        };
        ovpn_data_key_free(ks->data);
        ks->data = NULL;
        rc = ovpn_data_key_new(&ks->data, &p);
    }
    OPENSSL_cleanse(block, sizeof(block));
    OPENSSL_cleanse(&ks->ours, sizeof(ks->ours));
    return rc;
}

/* ks becomes the key data goes out with; the one before it keeps decrypting for a while. */
static void ovpn_client_promote(struct ovpn_client *c, struct ovpn_ks *ks)
{
    int idx = (int)(ks - c->keys);
    if (c->primary >= 0 && c->primary != idx)
        c->keys[c->primary].retire_at = now_ms(c) + OVPN_TRANSITION_MS;
    c->primary = idx;
    c->keyed_at = now_ms(c);
    c->reneg_not_before = 0;
}

/* Adds the config file's own routes and DNS to what the server pushed (route-nopull: instead). */
static int ovpn_client_merge_settings(struct ovpn_client *c, struct tunnel_settings *s)
{
    const struct tunnel_settings *own = &c->cfg->settings;
    if (c->cfg->route_nopull) {
        free(s->routes);
        free(s->excludes);
        s->routes = s->excludes = NULL;
        s->n_routes = s->n_excludes = 0;
    }
    for (size_t i = 0; i < own->n_routes; i++)
        if (tunnel_settings_add_route(s, &own->routes[i], 0) < 0)
            return -ENOMEM;
    for (size_t i = 0; i < own->n_excludes; i++)
        if (tunnel_settings_add_route(s, &own->excludes[i], 1) < 0)
            return -ENOMEM;
    for (size_t i = 0; i < own->n_dns && s->n_dns < TUNNEL_MAX_DNS; i++)
        s->dns[s->n_dns++] = own->dns[i];
    if (own->domains && !s->domains && !(s->domains = strdup(own->domains)))
        return -ENOMEM;
    /* OpenVPN without routes or redirect-gateway reaches only the tunnel's own subnet; the stack
     * would take "no routes" as a full tunnel, so say it explicitly. */
    if (s->n_routes == 0) {
        struct v2s_cidr net;
        if (s->addr4.family && v2s_cidr_make(&net, &s->addr4, s->prefix4) == 0 &&
            tunnel_settings_add_route(s, &net, 0) < 0)
            return -ENOMEM;
        if (s->addr6.family && v2s_cidr_make(&net, &s->addr6, s->prefix6) == 0 &&
            tunnel_settings_add_route(s, &net, 0) < 0)
            return -ENOMEM;
    }
    return 0;
}

/* The tunnel settings once the push is complete: address, routes, DNS, MTU. */
static void ovpn_client_announce(struct ovpn_client *c)
{
    struct tunnel_settings *s = &c->push.settings;
    if (!s->mtu)
        s->mtu = c->cfg->tun_mtu ? c->cfg->tun_mtu : 1500;
    /* Over UDP, keep encapsulated packets within a 1500-byte path: the inner MSS follows. */
    if (c->proto == OVPN_PROTO_UDP && c->primary >= 0) {
        size_t ip_udp = c->remote_family == AF_INET6 ? 48 : 28;
        size_t over = ovpn_data_overhead(c->keys[c->primary].data) + OVPN_COMP_MAX_OVERHEAD + ip_udp;
        if (s->mtu > 1500 - over)
            s->mtu = (unsigned)(1500 - over);
    }
    if (!s->addr4.family && !s->addr6.family) {
        ovpn_client_fail(c, TUNNEL_DOWN_ERROR, "the server pushed no address (ifconfig)");
        return;
    }
    if (ovpn_client_merge_settings(c, s) < 0) {
        ovpn_client_fail(c, TUNNEL_DOWN_ERROR, "out of memory");
        return;
    }
    c->t.ev.up(c->t.ev.arg, s);
    c->up_announced = 1;
    c->t.ev.writable(c->t.ev.arg);
}

/* PUSH_REPLY complete: settle the cipher, install the first key, go up. */
static void ovpn_client_pushed(struct ovpn_client *c)
{
    struct ovpn_push *p = &c->push;
    const struct ovpn_config *cfg = c->cfg;
    char why[768];
    if (ovpn_ncp_choose(cfg, p->cipher, c->server_cipher, c->cipher, sizeof(c->cipher), why, sizeof(why)) < 0) {
        ovpn_client_fail(c, TUNNEL_DOWN_ERROR, why);
        return;
    }
    /* The HMAC digest is the config's: OpenVPN does not take auth from a push either. */
    if (p->auth[0] && strcasecmp(p->auth, cfg->auth) != 0) {
        char shown[40];
        v2s_warn("openvpn: the server pushed auth %s; ignored, the data channel keeps the config's %s",
                 v2s_shown(p->auth, shown, sizeof(shown)), cfg->auth);
    }
    snprintf(c->auth, sizeof(c->auth), "%s", cfg->auth);
    c->comp = p->comp_set ? p->comp : cfg->comp;
    c->ekm = p->key_derivation_ekm;
    c->peer_id_set = p->peer_id_set;
    c->peer_id = p->peer_id;
    c->ping_ms = (uint64_t)(p->ping ? p->ping : cfg->ping) * 1000;
    c->ping_restart_ms = (uint64_t)(p->ping_restart ? p->ping_restart : cfg->ping_restart) * 1000;
    if (p->auth_token)
        ovpn_client_set_token(c, p->auth_token);
    struct ovpn_ks *ks = &c->keys[c->primary];
    if (ovpn_client_install_keys(c, ks) < 0) {
        ovpn_client_fail(c, TUNNEL_DOWN_ERROR, "cannot set up the data channel keys");
        return;
    }
    ks->state = OVPN_KS_KEYED;
    c->keyed_at = now_ms(c);
    c->state = OVPN_CLIENT_UP;
    c->attempts = 0;
    c->push_rejects = 0;
    v2s_info("openvpn: data channel %s%s, key derivation %s, %s, compression framing %s", c->cipher,
             ovpn_data_cipher_is_aead(c->cipher) ? "" : "", c->ekm ? "TLS exporter" : "PRF",
             c->peer_id_set ? "DATA_V2" : "DATA_V1",
             c->comp == OVPN_COMP_FRAMING_NONE ? "none" : c->comp == OVPN_COMP_FRAMING_LZO ? "comp-lzo"
             : c->comp == OVPN_COMP_FRAMING_V1 ? "compress (v1)" : "compress (v2)");
    ovpn_client_announce(c);
}

/* --- control messages --- */

/* Replaces the auth-token (NULL: forget it), wiping the old one. */
static void ovpn_client_set_token(struct ovpn_client *c, const char *token)
{
    if (c->auth_token) {
        OPENSSL_cleanse(c->auth_token, strlen(c->auth_token));
        free(c->auth_token);
    }
    c->auth_token = token ? strdup(token) : NULL;
}

/* A pull-filter reject: OpenVPN restarts, which against one server repeats forever, so the next
 * remote is tried, and once as many sessions in a row as there are remotes were rejected the
 * client gives up (exit status 3). */
static void ovpn_client_push_rejected(struct ovpn_client *c, const char *err)
{
    char why[400];
    c->push_rejects++;
    if (c->push_rejects >= c->cfg->n_remotes) {
        snprintf(why, sizeof(why), "%s%s", err,
                 c->cfg->n_remotes > 1 ? " (by every remote in turn)" : "");
        ovpn_client_fail(c, TUNNEL_DOWN_ERROR, why);
        return;
    }
    snprintf(why, sizeof(why), "%s; trying the next remote", err);
    ovpn_client_restart(c, why);
}

static void ovpn_client_message(struct ovpn_client *c, struct ovpn_ks *ks, const char *msg)
{
    const struct ovpn_config *cfg = c->cfg;
    char err[300];
    if (strncmp(msg, "PUSH_REPLY", 10) == 0) {
        int rc;
        if (c->state == OVPN_CLIENT_UP) {
            /* After a renegotiation a 2.6 server renews the auth-token this way; the rest of a
             * late PUSH_REPLY changes nothing once we are up. The filters apply to it too. */
            struct ovpn_push late;
            ovpn_push_init(&late);
            rc = ovpn_push_parse_filtered(&late, msg, cfg->pull_filters, cfg->n_pull_filters, err, sizeof(err));
            if (rc == 0 && late.auth_token)
                ovpn_client_set_token(c, late.auth_token);
            ovpn_push_free(&late);
            if (rc == -EPERM)
                ovpn_client_push_rejected(c, err);
            return;
        }
        if (c->state != OVPN_CLIENT_PUSH)
            return;
        rc = ovpn_push_parse_filtered(&c->push, msg, cfg->pull_filters, cfg->n_pull_filters, err, sizeof(err));
        if (rc == -EPERM) {
            ovpn_client_push_rejected(c, err);
            return;
        }
        if (rc < 0) {
            char why[400];
            snprintf(why, sizeof(why), "bad PUSH_REPLY: %s", err);
            ovpn_client_fail(c, TUNNEL_DOWN_ERROR, why);
            return;
        }
        if (c->push.continuation != 2)
            ovpn_client_pushed(c);
        return;
    }
    if (strncmp(msg, "AUTH_FAILED", 11) == 0) {
        char why[300];
        if (c->auth_token) {
            /* The token expired or the server forgot it: reconnect once with the password. */
            ovpn_client_set_token(c, NULL);
            ovpn_client_restart(c, "the server refused our auth-token; retrying with the password");
            return;
        }
        char reason[200];
        snprintf(why, sizeof(why), "authentication failed%s%s", msg[11] == ',' ? ": " : "",
                 msg[11] == ',' ? v2s_shown(msg + 12, reason, sizeof(reason)) : "");
        ovpn_client_fail(c, TUNNEL_DOWN_AUTH, why);
        return;
    }
    if (strncmp(msg, "RESTART", 7) == 0) {
        ovpn_client_restart(c, "the server asked for a restart");
        return;
    }
    if (strncmp(msg, "HALT", 4) == 0) {
        ovpn_client_fail(c, TUNNEL_DOWN_CLOSED, "the server told us to stop (HALT)");
        return;
    }
    if (strncmp(msg, "EXIT", 4) == 0) {
        ovpn_client_restart(c, "the server is going away");
        return;
    }
    /* What the server says is shown escaped: it must not forge log lines or reach a terminal. */
    char shown[256];
    if (strncmp(msg, "AUTH_PENDING", 12) == 0) {
        v2s_info("openvpn: authentication pending (%s)", v2s_shown(msg, shown, sizeof(shown)));
        ks->started = now_ms(c); /* the server takes its time: give it a fresh hand-window */
        return;
    }
    if (strncmp(msg, "INFO", 4) == 0) {
        v2s_info("openvpn: server says %s", v2s_shown(msg, shown, sizeof(shown)));
        return;
    }
    v2s_debug("openvpn: control message ignored: %s", v2s_shown(msg, shown, 64));
}

/* Reads TLS plaintext: first the server's key-method 2 message, then NUL-terminated messages. */
static void ovpn_client_read_tls(struct ovpn_client *c, struct ovpn_ks *ks)
{
    for (;;) {
        ssize_t n = ovpn_tls_read(ks->tls, c->ctl, OVPN_BUF);
        if (n == 0)
            return;
        if (n < 0) {
            char why[300];
            snprintf(why, sizeof(why), "%s", ovpn_tls_error(ks->tls)); /* tls.c escapes certificate text */
            if (n == -EACCES)
                ovpn_client_fail(c, TUNNEL_DOWN_AUTH, why);
            else
                ovpn_client_restart(c, why);
            return;
        }
        if (ks->state == OVPN_KS_KM) {
            char options[512];
            if (ovpn_km2_parse_server(c->ctl, (size_t)n, &ks->theirs, options, sizeof(options)) < 0) {
                ovpn_client_restart(c, "malformed key-method 2 message from the server");
                return;
            }
            char shown[sizeof(options)];
            v2s_debug("openvpn: server options: %s", v2s_shown(options, shown, sizeof(shown)));
            ks->state = OVPN_KS_KEYED;
            if (c->state == OVPN_CLIENT_HANDSHAKE) {
                ovpn_ncp_options_cipher(options, c->server_cipher, sizeof(c->server_cipher));
                c->state = OVPN_CLIENT_PUSH;
                ovpn_client_send_push_request(c);
            } else if (ovpn_client_install_keys(c, ks) < 0) {
                ovpn_client_restart(c, "cannot set up the renegotiated data channel keys");
                return;
            } else {
                v2s_info("openvpn: renegotiated, key %u", ks->key_id);
                ovpn_client_promote(c, ks);
            }
            continue;
        }
        /* Control messages: split on NUL; a message may span reads. */
        size_t off = 0;
        while (off < (size_t)n && c->state != OVPN_CLIENT_DONE && c->state != OVPN_CLIENT_WAITING) {
            uint8_t *nul = memchr(c->ctl + off, 0, (size_t)n - off);
            size_t part = nul ? (size_t)(nul - (c->ctl + off)) : (size_t)n - off;
            if (ks->msg_len + part + 1 > OVPN_MAX_MSG) {
                ovpn_client_restart(c, "control message too long");
                return;
            }
            /* Grown by hand rather than realloc(): messages carry tokens, and no copy may be left. */
            char *m = malloc(ks->msg_len + part + 1);
            if (!m)
                return;
            if (ks->msg) {
                memcpy(m, ks->msg, ks->msg_len);
                OPENSSL_cleanse(ks->msg, ks->msg_len + 1);
                free(ks->msg);
            }
            ks->msg = m;
            memcpy(m + ks->msg_len, c->ctl + off, part);
            ks->msg_len += part;
            m[ks->msg_len] = '\0';
            off += part + (nul ? 1 : 0);
            if (nul) {
                if (ks->msg_len)
                    ovpn_client_message(c, ks, m);
                if (c->state == OVPN_CLIENT_WAITING || c->state == OVPN_CLIENT_DONE)
                    return; /* the key state is gone */
                ks->msg_len = 0;
            }
        }
        if (c->state == OVPN_CLIENT_DONE || c->state == OVPN_CLIENT_WAITING)
            return;
    }
}

/* Sends our key-method 2 message once TLS is up. */
static int ovpn_client_send_km2(struct ovpn_client *c, struct ovpn_ks *ks)
{
    const struct ovpn_config *cfg = c->cfg;
    char options[512], ciphers[512], peer_info[1024];
    ovpn_km2_options(options, sizeof(options), cfg, c->proto == OVPN_PROTO_TCP);
    ovpn_km2_offered_ciphers(ciphers, sizeof(ciphers), cfg);
    ovpn_km2_peer_info(peer_info, sizeof(peer_info), ciphers, !cfg->compat_version || cfg->compat_version >= 20600);
    const char *user = NULL, *pass = NULL;
    if (cfg->auth_user_pass && !c->auth_token && !cfg->password) {
        /* auth-nocache wiped it after the last use: read the file again, as OpenVPN does. */
        char err[400];
        int rc = ovpn_config_reload_password(c->cfg, err, sizeof(err));
        if (rc < 0) {
            ovpn_client_fail(c, TUNNEL_DOWN_ERROR, err);
            return rc;
        }
    }
    if (cfg->auth_user_pass) {
        user = cfg->username;
        /* Once the server pushed a token, it stands in for the password (OTP servers need it). */
        pass = c->auth_token ? c->auth_token : cfg->password;
    }
    int len = ovpn_km2_build(c->ctl, OVPN_BUF, &ks->ours, options, user, pass, peer_info);
    if (len < 0)
        return len;
    int rc = ovpn_tls_write(ks->tls, c->ctl, (size_t)len);
    OPENSSL_cleanse(c->ctl, (size_t)len);
    if (cfg->auth_nocache && cfg->auth_file && c->cfg->password) {
        OPENSSL_cleanse(c->cfg->password, strlen(c->cfg->password));
        free(c->cfg->password);
        c->cfg->password = NULL;
    }
    if (rc == 0)
        ks->state = OVPN_KS_KM;
    return rc;
}

/* Moves a key state forward as far as what arrived allows. */
static void ovpn_client_progress(struct ovpn_client *c, struct ovpn_ks *ks)
{
    if (ks->state == OVPN_KS_RESET) {
        /* TLS starts once our reset is acked and the server's has arrived. */
        if (!ks->server_reset || !ovpn_rel_all_acked(&ks->rel))
            goto flush;
        if (ovpn_tls_new(&ks->tls, c->tls_ctx) < 0) {
            ovpn_client_fail(c, TUNNEL_DOWN_ERROR, "out of memory");
            return;
        }
        ks->state = OVPN_KS_TLS;
    }
    if (ks->state == OVPN_KS_TLS) {
        int rc = ovpn_tls_handshake(ks->tls);
        if (rc < 0) {
            char why[300];
            snprintf(why, sizeof(why), "%s", ovpn_tls_error(ks->tls)); /* tls.c escapes certificate text */
            ovpn_client_flush(c, ks); /* our alert, if any, still goes out */
            if (rc == -EACCES)
                ovpn_client_fail(c, TUNNEL_DOWN_AUTH, why);
            else
                ovpn_client_restart(c, why);
            return;
        }
        if (rc == 1) {
            char desc[300];
            ovpn_tls_describe(ks->tls, desc, sizeof(desc)); /* the server's CN escaped by tls.c */
            v2s_info("openvpn: TLS up (%s)", desc);
            if (ovpn_client_send_km2(c, ks) < 0) {
                ovpn_client_restart(c, "cannot send the key exchange message");
                return;
            }
        }
    }
    if (ks->state >= OVPN_KS_KM) {
        ovpn_client_read_tls(c, ks);
        if (c->state == OVPN_CLIENT_DONE || c->state == OVPN_CLIENT_WAITING || !ks->used)
            return;
    }
flush:
    ovpn_client_flush(c, ks);
}

static void ovpn_client_on_control(struct ovpn_client *c, const uint8_t *pkt, size_t len)
{
    struct ovpn_ctrl p;
    int rc = ovpn_ctrl_decode(&c->wrap, pkt, len, c->ctl, OVPN_BUF, &p);
    if (rc < 0) {
        v2s_debug("openvpn: control packet dropped: %s", rc == -EALREADY ? "replayed" : "malformed or not authentic");
        return;
    }
    if (c->have_remote_sid && memcmp(p.sid, c->remote_sid, OVPN_SID_LEN) != 0) {
        v2s_debug("openvpn: control packet from another session dropped");
        return;
    }
    if (p.n_acks && memcmp(p.ack_sid, c->sid, OVPN_SID_LEN) != 0) {
        v2s_debug("openvpn: control packet acking another session dropped");
        return;
    }
    struct ovpn_ks *ks = ovpn_ks_find(c, p.key_id);
    if (p.op == OVPN_OP_CONTROL_HARD_RESET_SERVER_V2) {
        if (p.key_id != 0 || !ks || c->state != OVPN_CLIENT_HANDSHAKE)
            return;
        if (!c->have_remote_sid) {
            memcpy(c->remote_sid, p.sid, OVPN_SID_LEN);
            c->have_remote_sid = 1;
        }
    } else if (!c->have_remote_sid) {
        return;
    }
    if (p.op == OVPN_OP_CONTROL_SOFT_RESET_V1 && !ks) {
        /* The server starts a renegotiation with the next key id. */
        if (c->state != OVPN_CLIENT_UP || !(ks = ovpn_ks_new(c, p.key_id)))
            return;
        c->next_key_id = (uint8_t)(p.key_id % 7 + 1);
        ovpn_rel_send(&ks->rel, OVPN_OP_CONTROL_SOFT_RESET_V1, NULL, 0, now_ms(c));
        v2s_debug("openvpn: server started renegotiation of key %u", p.key_id);
    }
    if (!ks)
        return;
    c->last_rx = now_ms(c);
    for (size_t i = 0; i < p.n_acks; i++)
        ovpn_rel_acked(&ks->rel, p.acks[i]);
    if (p.has_msg_id) {
        if (ovpn_rel_receive(&ks->rel, p.op, p.msg_id, p.payload, p.len) < 0)
            return;
        const struct ovpn_rel_msg *m;
        while ((m = ovpn_rel_peek(&ks->rel))) {
            if (m->op == OVPN_OP_CONTROL_V1 && ks->state >= OVPN_KS_TLS && ks->tls)
                ovpn_tls_feed(ks->tls, m->data, m->len);
            else if (m->op == OVPN_OP_CONTROL_HARD_RESET_SERVER_V2 || m->op == OVPN_OP_CONTROL_SOFT_RESET_V1)
                ks->server_reset = 1;
            else if (m->op == OVPN_OP_CONTROL_V1) {
                /* TLS data before the reset exchange finished: keep it for the session. */
                ks->server_reset = 1;
                if (!ks->tls && ovpn_tls_new(&ks->tls, c->tls_ctx) == 0)
                    ks->state = OVPN_KS_TLS;
                if (ks->tls)
                    ovpn_tls_feed(ks->tls, m->data, m->len);
            }
            ovpn_rel_delivered(&ks->rel);
        }
    }
    ovpn_client_progress(c, ks);
}

/* --- transport events --- */

static void ovpn_client_on_packet(void *arg, uint8_t *pkt, size_t len)
{
    struct ovpn_client *c = arg;
    if (len < 1)
        return;
    uint8_t op = OVPN_OP_OF(pkt[0]);
    if (op == OVPN_OP_DATA_V1 || op == OVPN_OP_DATA_V2)
        ovpn_client_on_data(c, pkt, len);
    else if (ovpn_op_is_control(op))
        ovpn_client_on_control(c, pkt, len);
}

static void ovpn_client_on_writable(void *arg)
{
    struct ovpn_client *c = arg;
    if (c->congested) {
        c->congested = 0;
        c->t.ev.writable(c->t.ev.arg);
    }
}

/* The link is there: start the first key with a hard reset. */
static void ovpn_client_on_connected(void *arg)
{
    struct ovpn_client *c = arg;
    c->state = OVPN_CLIENT_HANDSHAKE;
    c->last_rx = c->last_tx = now_ms(c);
    if (RAND_bytes(c->sid, sizeof(c->sid)) != 1) {
        ovpn_client_fail(c, TUNNEL_DOWN_ERROR, "no randomness");
        return;
    }
    ovpn_wrap_start(&c->wrap, &c->wrap_keys);
    c->next_key_id = 1;
    struct ovpn_ks *ks = ovpn_ks_new(c, 0);
    if (!ks) {
        ovpn_client_fail(c, TUNNEL_DOWN_ERROR, "out of memory");
        return;
    }
    c->primary = (int)(ks - c->keys);
    ovpn_rel_send(&ks->rel, OVPN_OP_CONTROL_HARD_RESET_CLIENT_V2, NULL, 0, now_ms(c));
    ovpn_client_flush(c, ks);
}

static void ovpn_client_on_failed(void *arg, int status, const char *why)
{
    struct ovpn_client *c = arg;
    char msg[300];
    (void)status;
    const struct ovpn_remote *r = &c->cfg->remotes[c->order[c->remote]];
    snprintf(msg, sizeof(msg), "%s %s:%s: %s", r->proto == OVPN_PROTO_TCP ? "tcp" : "udp", r->host, r->port, why);
    ovpn_client_restart(c, msg);
}

/* Opens the link to the next address of the current remote. */
static void ovpn_client_open_addr(struct ovpn_client *c)
{
    const struct ovpn_remote *r = &c->cfg->remotes[c->order[c->remote]];
    static const struct ovpn_transport_events ev = {
        .connected = ovpn_client_on_connected,
        .packet = ovpn_client_on_packet,
        .writable = ovpn_client_on_writable,
        .failed = ovpn_client_on_failed,
    };
    struct ovpn_transport_events e = ev;
    e.arg = c;
    while (c->addr_next) {
        struct addrinfo *ai = c->addr_next;
        c->addr_next = ai->ai_next;
        char host[64] = "?";
        getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof(host), NULL, 0, NI_NUMERICHOST);
        v2s_info("openvpn: connecting to %s [%s]:%s over %s", r->host, host, r->port,
                 r->proto == OVPN_PROTO_TCP ? "TCP" : "UDP");
        unsigned timeout = (c->cfg->connect_timeout ? c->cfg->connect_timeout : 120) * 1000U;
        if (ovpn_transport_open(&c->transport, c->loop, ai->ai_addr, r->proto, timeout, &e) == 0) {
            c->state = OVPN_CLIENT_CONNECTING;
            c->proto = r->proto;
            c->remote_family = ai->ai_family;
            return;
        }
    }
    ovpn_client_restart(c, "no address of the server could be used");
}

static void ovpn_client_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct ovpn_client *c = req->data;
    c->gai_active = 0;
    if (c->closing) {
        /* ovpn_client_close() left the last step to us: the lookup had to end first. */
        uv_freeaddrinfo(res);
        uv_close((uv_handle_t *)&c->tick, ovpn_client_tick_closed);
        return;
    }
    const struct ovpn_remote *r = &c->cfg->remotes[c->order[c->remote]];
    if (status < 0 || !res) {
        char why[300];
        snprintf(why, sizeof(why), "cannot resolve %s: %s", r->host, uv_strerror(status));
        ovpn_client_restart(c, why);
        return;
    }
    c->addrs = c->addr_next = res;
    ovpn_client_open_addr(c);
}

/* Starts the next connection attempt: resolve the current remote. */
static void ovpn_client_start_attempt(struct ovpn_client *c)
{
    const struct ovpn_remote *r = &c->cfg->remotes[c->order[c->remote]];
    struct addrinfo hints = {
        .ai_family = r->family ? r->family : AF_UNSPEC,
        .ai_socktype = r->proto == OVPN_PROTO_TCP ? SOCK_STREAM : SOCK_DGRAM,
    };
    c->state = OVPN_CLIENT_RESOLVING;
    c->gai.data = c;
    int rc = uv_getaddrinfo(c->loop, &c->gai, ovpn_client_resolved, r->host, r->port, &hints);
    if (rc < 0) {
        char why[300];
        snprintf(why, sizeof(why), "cannot resolve %s: %s", r->host, uv_strerror(rc));
        ovpn_client_restart(c, why);
        return;
    }
    c->gai_active = 1;
}

void ovpn_client_renegotiate(struct ovpn_client *c, const char *why)
{
    if (c->state != OVPN_CLIENT_UP)
        return;
    for (int i = 0; i < OVPN_CLIENT_KEYS; i++)
        if (c->keys[i].used && c->keys[i].state != OVPN_KS_KEYED)
            return; /* one is under way */
    uint8_t id = c->next_key_id;
    for (int tries = 0; tries < 7 && ovpn_ks_find(c, id); tries++)
        id = (uint8_t)(id % 7 + 1); /* still held by a lame duck */
    c->next_key_id = (uint8_t)(id % 7 + 1);
    struct ovpn_ks *ks = ovpn_ks_new(c, id);
    if (!ks)
        return;
    v2s_info("openvpn: renegotiating (key %u): %s", id, why);
    /* Our own reset counts as the exchange: the server answers ours with TLS. */
    ks->server_reset = 1;
    ovpn_rel_send(&ks->rel, OVPN_OP_CONTROL_SOFT_RESET_V1, NULL, 0, now_ms(c));
    ovpn_client_flush(c, ks);
}

/* --- the tick and the tunnel interface --- */

static void ovpn_client_tick(uv_timer_t *t)
{
    struct ovpn_client *c = t->data;
    uint64_t now = now_ms(c);
    if (c->state == OVPN_CLIENT_WAITING) {
        if (now < c->wait_until)
            return;
        if (c->next_addr) {
            c->next_addr = 0;
            ovpn_client_open_addr(c);
        } else {
            ovpn_client_start_attempt(c);
        }
        return;
    }
    ovpn_timers_tick(c, now);
}

static int ovpn_client_send(struct tunnel *t, const uint8_t *pkt, size_t len)
{
    struct ovpn_client *c = (struct ovpn_client *)t;
    if (c->state != OVPN_CLIENT_UP) {
        /* Reconnecting: TCP inside retransmits; say so in the counters, not per packet. */
        c->tx_dropped++;
        return -ENETDOWN;
    }
    int rc = ovpn_client_send_data(c, pkt, len);
    if (rc < 0)
        return rc;
    return c->congested ? 1 : 0;
}

static int ovpn_client_start(struct tunnel *t)
{
    struct ovpn_client *c = (struct ovpn_client *)t;
    int rc = uv_timer_start(&c->tick, ovpn_client_tick, OVPN_TICK_MS, OVPN_TICK_MS);
    if (rc < 0)
        return rc;
    ovpn_client_start_attempt(c);
    return 0;
}

static void ovpn_client_free(struct ovpn_client *c)
{
    ovpn_client_close_link(c);
    if (c->addrs)
        uv_freeaddrinfo(c->addrs);
    ovpn_push_free(&c->push);
    ovpn_tls_ctx_free(c->tls_ctx);
    ovpn_wrap_clear(&c->wrap_keys);
    if (c->cfg) {
        ovpn_config_free(c->cfg);
        free(c->cfg);
    }
    if (c->auth_token) {
        OPENSSL_cleanse(c->auth_token, strlen(c->auth_token));
        free(c->auth_token);
    }
    free(c->order);
    free(c->buf);
    free(c->buf2);
    free(c->buf3);
    free(c->rx);
    if (c->ctl) {
        OPENSSL_cleanse(c->ctl, OVPN_BUF); /* PUSH_REPLY (auth-token) and key material passed here */
        free(c->ctl);
    }
    free(c);
}

static void ovpn_client_tick_closed(uv_handle_t *h)
{
    struct ovpn_client *c = h->data;
    void (*cb)(struct tunnel *) = c->close_cb;
    ovpn_client_free(c);
    if (cb)
        cb(NULL);
}

static void ovpn_client_log_stats(struct tunnel *t)
{
    struct ovpn_client *c = (struct ovpn_client *)t;
    char drops[400];
    ovpn_drop_counts_format(&c->drops, drops, sizeof(drops));
    v2s_info("openvpn: %llu data packets in (%llu compressed by the server), %llu out, %llu not sent while down; "
             "dropped: %s",
             (unsigned long long)c->rx_packets, (unsigned long long)c->rx_compressed,
             (unsigned long long)c->tx_packets, (unsigned long long)c->tx_dropped, drops);
}

/* Tells the server we are leaving (explicit-exit-notify, UDP only), then closes. */
static void ovpn_client_close(struct tunnel *t, void (*cb)(struct tunnel *t))
{
    struct ovpn_client *c = (struct ovpn_client *)t;
    if (c->state == OVPN_CLIENT_UP && c->proto == OVPN_PROTO_UDP && c->cfg->explicit_exit_notify) {
        uint8_t occ[sizeof(ovpn_occ_magic) + 1];
        memcpy(occ, ovpn_occ_magic, sizeof(ovpn_occ_magic));
        occ[sizeof(ovpn_occ_magic)] = OVPN_OCC_EXIT;
        for (unsigned i = 0; i < c->cfg->explicit_exit_notify && i < 5; i++)
            ovpn_client_send_data(c, occ, sizeof(occ));
    }
    ovpn_client_log_stats(t);
    c->closing = 1;
    c->close_cb = cb;
    c->state = OVPN_CLIENT_DONE;
    ovpn_client_close_link(c);
    uv_timer_stop(&c->tick);
    if (c->gai_active) {
        /* The lookup's callback runs either way (cancelled or done) and finishes the close. */
        uv_cancel((uv_req_t *)&c->gai);
        return;
    }
    uv_close((uv_handle_t *)&c->tick, ovpn_client_tick_closed);
}

static const struct tunnel_ops ovpn_client_ops = {
    .start = ovpn_client_start,
    .send = ovpn_client_send,
    .close = ovpn_client_close,
    .log_stats = ovpn_client_log_stats,
};

/* The order remotes are tried in: as configured, or shuffled for remote-random. That only spreads
 * clients over servers, so when there is no randomness for it the configured order does; what
 * needs randomness for security (session id, key material, TLS) checks for it where it is used. */
static void ovpn_client_order_remotes(struct ovpn_client *c)
{
    size_t n = c->cfg->n_remotes;
    for (size_t i = 0; i < n; i++)
        c->order[i] = i;
    if (!c->cfg->remote_random)
        return;
    for (size_t i = n; i > 1; i--) {
        uint32_t r;
        if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1) {
            v2s_warn("openvpn: remote-random: no randomness to shuffle the remotes; trying them in the config's order");
            for (size_t k = 0; k < n; k++)
                c->order[k] = k;
            return;
        }
        size_t j = r % i;
        size_t tmp = c->order[i - 1];
        c->order[i - 1] = c->order[j];
        c->order[j] = tmp;
    }
}

/* OpenSSL holds the private key and wrap_keys the expanded static key from here on, for every
 * session and reconnect; the text of the key file (or <key> block) and the static key's 256 bytes
 * are not needed again, so they do not stay in memory for the life of the process. */
static void ovpn_client_forget_key_files(struct ovpn_config *cfg)
{
    if (cfg->key) {
        OPENSSL_cleanse(cfg->key, strlen(cfg->key));
        free(cfg->key);
        cfg->key = NULL;
    }
    OPENSSL_cleanse(cfg->tls_auth_key, sizeof(cfg->tls_auth_key));
    OPENSSL_cleanse(cfg->tls_crypt_key, sizeof(cfg->tls_crypt_key));
}

int ovpn_client_new(struct tunnel **out, uv_loop_t *loop, struct ovpn_config *cfg, const struct tunnel_events *ev,
                    char *err, size_t errcap)
{
    struct ovpn_client *c = calloc(1, sizeof(*c));
    if (!c) {
        ovpn_config_free(cfg);
        free(cfg);
        return -ENOMEM;
    }
    c->cfg = cfg;
    c->primary = -1;
    ovpn_push_init(&c->push);
    if (cfg->n_remotes == 0) {
        snprintf(err, errcap, "no remote: the config names no server");
        goto fail;
    }
    if (cfg->auth_user_pass && (!cfg->username || !cfg->password)) {
        snprintf(err, errcap, "auth-user-pass: the config asks for a username and password; give them with "
                              "--auth-user-pass FILE (username on line 1, password on line 2)");
        goto fail;
    }
    if (ovpn_ncp_allows_none(cfg))
        v2s_warn("openvpn: the config allows data cipher none: if the server picks it, tunnelled packets cross "
                 "the network unencrypted, %s",
                 strcasecmp(cfg->auth, "none") == 0 ? "and with auth none anyone on the path can also forge them"
                                                    : "readable by anyone on the path");
    if (cfg->auth_nocache && cfg->auth_user_pass && !cfg->auth_file)
        v2s_warn("openvpn: auth-nocache: the password is inline in the config, so it stays in memory (there is "
                 "no file to read it from again)");
    int rc = ovpn_tls_ctx_new(&c->tls_ctx, cfg, err, errcap);
    if (rc < 0) {
        ovpn_client_free(c);
        return rc;
    }
    if (cfg->has_tls_crypt)
        rc = ovpn_wrap_init(&c->wrap_keys, OVPN_WRAP_CRYPT, cfg->tls_crypt_key, 1, NULL);
    else if (cfg->has_tls_auth)
        rc = ovpn_wrap_init(&c->wrap_keys, OVPN_WRAP_AUTH, cfg->tls_auth_key, cfg->key_direction, cfg->auth);
    else
        rc = ovpn_wrap_init(&c->wrap_keys, OVPN_WRAP_NONE, NULL, -1, NULL);
    if (rc < 0) {
        snprintf(err, errcap, "tls-auth: auth %s is not a digest OpenSSL knows", cfg->auth);
        goto fail;
    }
    ovpn_client_forget_key_files(cfg);
    c->buf = malloc(OVPN_BUF);
    c->buf2 = malloc(OVPN_BUF);
    c->buf3 = malloc(OVPN_BUF);
    c->rx = malloc(OVPN_BUF);
    c->ctl = malloc(OVPN_BUF);
    c->order = calloc(cfg->n_remotes, sizeof(*c->order));
    if (!c->buf || !c->buf2 || !c->buf3 || !c->rx || !c->ctl || !c->order) {
        snprintf(err, errcap, "out of memory");
        goto fail;
    }
    ovpn_client_order_remotes(c);
    c->loop = loop;
    c->t.ops = &ovpn_client_ops;
    c->t.ev = *ev;
    uv_timer_init(loop, &c->tick);
    c->tick.data = c;
    *out = &c->t;
    return 0;
fail:
    c->cfg = cfg;
    ovpn_client_free(c);
    return -EINVAL;
}
