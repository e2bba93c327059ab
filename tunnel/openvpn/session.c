/* The OpenVPN client session on a link: the control channel (resets, reliability, TLS records in
 * CONTROL_V1, acks), key-method 2, PUSH_REQUEST / PUSH_REPLY and the data cipher (NCP), control
 * data channel keys and renegotiation; messages.c reads what the server says on it (PUSH_REPLY,
 * AUTH_FAILED, RESTART, HALT, ...).
 * Timer policy lives in timers.c, state transitions in client.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "base/addr.h"
#include "base/log.h"
#include "tunnel/openvpn/comp.h"
#include "tunnel/openvpn/data.h"
#include "tunnel/openvpn/internal.h"
#include "tunnel/openvpn/keymethod.h"
#include "tunnel/openvpn/ncp.h"
#include "tunnel/openvpn/tls.h"
#include "tunnel/settings.h"

enum {
    OVPN_MAX_MSG = 64 * 1024, /* longest control message (PUSH_REPLY parts are ~1.5 KB) */
};

static uint64_t now_ms(const struct ovpn_client *c)
{
    return ovpn_timers_now(&c->timers);
}

/* --- sending control packets --- */

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
            /* A server that asked for WKc again (early negotiation) has no state for us until
             * our message 1 brings it: that one is CONTROL_WKC_V1, each (re)transmission with
             * WKc after it (ovpn_ctrl_encode), so it is smaller by WKc (at most 1024 bytes, and
             * max is over 1100). Later messages are CONTROL_V1, as OpenVPN 2.6 sends them. */
            int wkc = ks->resend_wkc && ks->rel.send_next == 1;
            size_t n = ovpn_tls_take_output(ks->tls, c->buf3, wkc ? max - c->wrap.wkc_len : max);
            uint8_t op = wkc ? OVPN_OP_CONTROL_WKC_V1 : OVPN_OP_CONTROL_V1;
            if (n == 0 || ovpn_rel_send(&ks->rel, op, c->buf3, n, now) < 0)
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

/* PUSH_REQUEST, in a packet after the acks due: a 2.4 server counts the client authenticated once
 * its key-method 2 reply is acked, and only after the packet carrying that ack is processed; a
 * request in that very packet finds the client not yet authenticated and is dropped, not kept
 * (2.5 and newer keep it). The ACK_V1 first, the request next lets it find the exchange done. */
void ovpn_client_send_push_request(struct ovpn_client *c)
{
    if (c->primary < 0)
        return;
    struct ovpn_ks *ks = &c->keys[c->primary];
    ovpn_client_flush(c, ks);
    ovpn_timers_push_sent(&c->timers);
    ovpn_client_send_message(c, ks, "PUSH_REQUEST");
}

int ovpn_client_send_exit(struct ovpn_client *c, unsigned copies)
{
    if (c->primary < 0 || !c->keys[c->primary].tls)
        return -ENOTCONN;
    struct ovpn_ks *ks = &c->keys[c->primary];
    int rc = ovpn_client_send_message(c, ks, "EXIT");
    if (rc < 0)
        return rc;
    /* A send window full of unacked messages keeps the record back, and it would never leave. */
    if (ovpn_tls_pending_output(ks->tls))
        return -EAGAIN;
    for (unsigned i = 1; i < copies; i++) {
        ovpn_rel_resend_now(&ks->rel, now_ms(c));
        ovpn_client_flush(c, ks);
    }
    return 0;
}

/* --- keys and the push --- */

/* Derives and installs the data key of ks with the negotiated cipher. 0 or negative. Our key
 * source stays for a derivation again (ovpn_client_keys_final wipes it). */
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
            .replay_window = c->cfg->replay_window,
            .replay_in_order = c->cfg->replay_in_order,
            .key_block = block,
        };
        ovpn_data_key_free(ks->data);
        ks->data = NULL;
        rc = ovpn_data_key_new(&ks->data, &p);
    }
    OPENSSL_cleanse(block, sizeof(block));
    return rc;
}

/* The data key of ks is what it stays: the pre-master secret that made it goes. */
static void ovpn_client_keys_final(struct ovpn_ks *ks)
{
    OPENSSL_cleanse(&ks->ours, sizeof(ks->ours));
}

/* The data channel settings a data key is made with; what PUSH_REPLY may change. */
struct ovpn_client_keyed_with {
    char cipher[64]; /* as struct ovpn_client's */
    char auth[32];
    int ekm;
    int peer_id_set;
    uint32_t peer_id;
};

static void ovpn_client_keyed_with(const struct ovpn_client *c, struct ovpn_client_keyed_with *k)
{
    memset(k, 0, sizeof(*k));
    snprintf(k->cipher, sizeof(k->cipher), "%s", c->cipher);
    snprintf(k->auth, sizeof(k->auth), "%s", c->auth);
    k->ekm = c->ekm;
    k->peer_id_set = c->peer_id_set;
    k->peer_id = c->peer_id_set ? c->peer_id : 0;
}

/* The first key of a resumed session (a new session on the same link after a failed
 * renegotiation) goes in at the key exchange, with the data channel settings of the session
 * before it, rather than at PUSH_REPLY. An OpenVPN 2.6 server makes its data keys about a second
 * after the key exchange (multi.c multi_connection_established, on its 1 s wait_for_connect) and
 * uses them at once, while its PUSH_REPLY may come much later: it answers no PUSH_REQUEST within
 * 30 s of the last PUSH_REPLY it sent this client instance (push.c sent_push_reply_expiry), and
 * to it the instance is the one of the session before. A session that failed its renegotiation
 * 22 s after coming up carried nothing for 8 s in the lab, every PUSH_REQUEST dropped meanwhile;
 * with the keys in, its data flows again once the server has its own. The server chooses the
 * same cipher for the same client instance offering the same ciphers; should the push still
 * name other settings, ovpn_client_pushed() makes the keys again. OpenVPN's client waits for the
 * push here (ssl.c: no keys before CAS_CONNECT_DONE, which do_up() sets again). */
static void ovpn_client_install_early(struct ovpn_client *c, struct ovpn_ks *ks)
{
    if (!c->resumed || !c->cipher[0])
        return;
    if (ovpn_client_install_keys(c, ks) < 0) {
        v2s_debug("openvpn: the new session's keys wait for PUSH_REPLY: the last session's %s failed", c->cipher);
        return;
    }
    v2s_info("openvpn: new session keyed: data flows with the last session's %s before PUSH_REPLY", c->cipher);
}

/* ks becomes the key data goes out with; the one before it keeps decrypting for a while. */
static void ovpn_client_promote(struct ovpn_client *c, struct ovpn_ks *ks)
{
    int idx = ovpn_ks_slot(c, ks);
    ovpn_timers_key_promoted(&c->timers, idx, c->primary);
    c->primary = idx;
}

/* Adds the config file's own routes and DNS to what the server pushed. route-nopull drops the
 * pushed routes (redirect-gateway's included), DNS servers and domains first, as OpenVPN 2.6
 * leaves out every pushed route, dhcp-option and dns option under it (init.c pull_permission_mask);
 * the pushed DNS servers and domains were kept, so names went to a server the user had opted out
 * of, and a pushed domain still pulled its names into the tunnel. */
static int ovpn_client_merge_settings(struct ovpn_client *c, struct tunnel_settings *s)
{
    const struct tunnel_settings *own = &c->cfg->settings;
    if (c->cfg->route_nopull) {
        free(s->routes);
        free(s->excludes);
        s->routes = s->excludes = NULL;
        s->n_routes = s->n_excludes = 0;
        s->n_dns = 0;
        free(s->domains);
        s->domains = NULL;
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

/* The tunnel settings once the push is complete and the keys are in: the MTU, and whether the
 * address can be used. -1: the push was refused (the session is over). */
static int ovpn_client_settle(struct ovpn_client *c)
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
    /* Over TCP, keep a largest data packet with its 2-byte length within one segment of the
     * link: the server writes each packet with a send() of its own, and one 2 bytes too long
     * (a 2.4/2.5 server's mssfix 1450 makes them 1448, the usual MSS) leaves as a full segment
     * and a 2-byte one, twice the segments (and our ACKs) its single thread handles per MiB.
     * Not below IPv6's minimum MTU: a link that small splits packets either way. */
    if (c->proto == OVPN_PROTO_TCP && c->primary >= 0 && c->transport && c->link->mss) {
        size_t mss = c->link->mss(c->transport);
        size_t over = 2 + ovpn_data_overhead(c->keys[c->primary].data) + OVPN_COMP_MAX_OVERHEAD;
        if (mss >= OVPN_TCP_MTU_MIN + over && s->mtu > mss - over)
            s->mtu = (unsigned)(mss - over);
    }
    /* IPv6 needs a link MTU of 1280 (RFC 8200 5): off below it, the tunnel IPv4 only. */
    char msg[200];
    int v6 = tunnel_settings_ipv6_mtu(s, msg, sizeof(msg));
    if (v6 < 0) {
        char why[300];
        snprintf(why, sizeof(why), "%s, and the server pushed no IPv4 address (ifconfig)", msg);
        ovpn_client_push_failed(c, why);
        return -1;
    }
    if (v6 > 0)
        v2s_warn("openvpn: %s", msg);
    if (!s->addr4.family && !s->addr6.family) {
        ovpn_client_push_failed(c, "the server pushed no address (ifconfig)");
        return -1;
    }
    return 0;
}

/* The session is up: the tunnel hears its address, routes, DNS and MTU. */
static void ovpn_client_announce(struct ovpn_client *c)
{
    struct tunnel_settings *s = &c->push.settings;
    if (ovpn_client_merge_settings(c, s) < 0) {
        ovpn_client_enter_failed(c, TUNNEL_DOWN_ERROR, "out of memory");
        return;
    }
    c->t.ev.up(c->t.ev.arg, s);
    c->up_announced = 1;
    c->t.ev.writable(c->t.ev.arg);
}

/* PUSH_REPLY complete: settle the cipher, install the first key, go up. */
void ovpn_client_pushed(struct ovpn_client *c)
{
    struct ovpn_push *p = &c->push;
    const struct ovpn_config *cfg = c->cfg;
    char why[768];
    struct ovpn_client_keyed_with before, now;
    ovpn_client_keyed_with(c, &before);
    if (ovpn_ncp_choose(cfg, p->cipher, c->server_cipher, c->cipher, sizeof(c->cipher), why, sizeof(why)) < 0) {
        ovpn_client_push_failed(c, why);
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
    ovpn_timers_keepalive(&c->timers, (uint64_t)(p->ping ? p->ping : cfg->ping) * 1000,
                          (uint64_t)(p->ping_restart ? p->ping_restart : cfg->ping_restart) * 1000);
    struct ovpn_ks *ks = &c->keys[c->primary];
    /* Keys made at the key exchange (ovpn_client_install_early) with what the push confirms are
     * kept, their packet ids going on: made again, the ids would start over, and the server drop
     * the packets as replays. */
    ovpn_client_keyed_with(c, &now);
    int keep = ks->data && memcmp(&before, &now, sizeof(now)) == 0;
    if (ks->data && !keep)
        v2s_info("openvpn: the push changed the data channel (%s, was %s): the keys are made again", now.cipher,
                 before.cipher);
    if (!keep && ovpn_client_install_keys(c, ks) < 0) {
        ovpn_client_enter_failed(c, TUNNEL_DOWN_ERROR, "cannot set up the data channel keys");
        return;
    }
    ovpn_client_keys_final(ks);
    ks->state = OVPN_KS_KEYED;
    /* Before UP: a push refused here counts toward trying every remote in turn. */
    if (ovpn_client_settle(c) < 0 || ovpn_client_enter_up(c) < 0)
        return;
    if (p->auth_token) /* this server's: not kept when the push was refused */
        ovpn_client_set_token(c, p->auth_token, p->auth_token_user);
    ovpn_timers_key_promoted(&c->timers, c->primary, -1);
    v2s_info("openvpn: data channel %s%s, key derivation %s, %s, compression framing %s", c->cipher,
             ovpn_data_cipher_is_aead(c->cipher) ? "" : "", c->ekm ? "TLS exporter" : "PRF",
             c->peer_id_set ? "DATA_V2" : "DATA_V1",
             c->comp == OVPN_COMP_FRAMING_NONE ? "none" : c->comp == OVPN_COMP_FRAMING_LZO ? "comp-lzo"
             : c->comp == OVPN_COMP_FRAMING_V1 ? "compress (v1)" : "compress (v2)");
    ovpn_client_announce(c);
}

/* The negotiation of ks failed: TLS, or the key exchange over it. A renegotiation that fails
 * ends the session, as one that runs out of hand-window does (timers.c), since OpenVPN 2.6's
 * client treats both alike (ssl.c tls_multi_process: the key in S_ERROR, its session reset, the
 * key before it kept for data; forward.c check_tls_errors): over UDP a new session at once on the
 * same socket, which the server takes as the same client and whose address it keeps, over TCP a
 * reconnect. It never tries that key again on its own. Over UDP we reconnected from a new port
 * after a wait instead, the tunnel's connections lost. Any other failure restarts the client.
 * Under tls-exit every one of them stops it (forward.c check_tls_errors: SIGTERM). */
static void ovpn_client_key_failed(struct ovpn_client *c, struct ovpn_ks *ks, const char *why)
{
    if (c->cfg->tls_exit) {
        ovpn_client_enter_tls_exit(c, why);
        return;
    }
    int slot = ovpn_ks_slot(c, ks);
    if (c->state != OVPN_CLIENT_UP || slot == c->primary || ovpn_timers_key_retire_at(&c->timers, slot)) {
        ovpn_client_enter_restart(c, why);
        return;
    }
    char msg[400];
    snprintf(msg, sizeof(msg), "renegotiation of key %u failed: %s", ks->key_id, why);
    if (c->proto == OVPN_PROTO_UDP)
        ovpn_client_enter_new_session(c, msg);
    else
        ovpn_client_enter_restart(c, msg);
}

/* We refused the server's certificate (tls.c: its chain, verify-x509-name, remote-cert-tls, a
 * pin). Before the tunnel was ever up the config names a server this is not, or trusts the wrong
 * CA: the client stops (exit status 2) rather than knock forever. Once it has been up the config
 * was right, and what changed is the server's: a certificate that expired, or was renewed from a
 * new CA, during a long session. OpenVPN 2.6 takes that as any TLS error (forward.c
 * check_tls_errors: a SIGUSR1 restart unless tls-exit), and so do we: a failed renegotiation, a
 * new session, then reconnects that back off until the server is fixed, where the client stopped
 * for good and a tunnel meant to run for weeks had to be started again by hand. Under tls-exit
 * key_failed stops it. */
static void ovpn_client_refused_server(struct ovpn_client *c, struct ovpn_ks *ks, const char *why)
{
    if (!c->was_up) {
        ovpn_client_enter_failed(c, TUNNEL_DOWN_AUTH, why);
        return;
    }
    ovpn_client_key_failed(c, ks, why);
}

/* Reads TLS plaintext: first the server's key-method 2 message, then NUL-terminated messages.
 * 0, or -1 when the session ended under it (a new one may have taken ks's slot). */
static int ovpn_client_read_tls(struct ovpn_client *c, struct ovpn_ks *ks)
{
    for (;;) {
        ssize_t n = ovpn_tls_read(ks->tls, c->ctl, OVPN_BUF);
        if (n == 0)
            return 0;
        if (n < 0) {
            char why[300];
            snprintf(why, sizeof(why), "%s", ovpn_tls_error(ks->tls)); /* tls.c escapes certificate text */
            if (n == -EACCES)
                ovpn_client_refused_server(c, ks, why);
            else
                ovpn_client_key_failed(c, ks, why);
            return -1;
        }
        if (ks->state == OVPN_KS_KM) {
            char options[512];
            if (ovpn_km2_parse_server(c->ctl, (size_t)n, &ks->theirs, options, sizeof(options)) < 0) {
                ovpn_client_key_failed(c, ks, "malformed key-method 2 message from the server");
                return -1;
            }
            char shown[sizeof(options)];
            v2s_debug("openvpn: server options: %s", v2s_shown(options, shown, sizeof(shown)));
            ks->state = OVPN_KS_KEYED;
            if (c->state == OVPN_CLIENT_HANDSHAKE) {
                ovpn_ncp_options_cipher(options, c->server_cipher, sizeof(c->server_cipher));
                if (ovpn_client_enter_push_wait(c) < 0)
                    return -1;
                ovpn_client_install_early(c, ks);
                ovpn_timers_push_started(&c->timers);
                ovpn_client_send_push_request(c);
            } else if (ovpn_client_install_keys(c, ks) < 0) {
                ovpn_client_key_failed(c, ks, "cannot set up the renegotiated data channel keys");
                return -1;
            } else {
                ovpn_client_keys_final(ks);
                v2s_info("openvpn: renegotiated, key %u", ks->key_id);
                c->renegotiations++;
                ovpn_client_promote(c, ks);
            }
            continue;
        }
        /* Control messages: split on NUL; a message may span reads. */
        size_t off = 0;
        while (off < (size_t)n && !ovpn_client_session_over(c)) {
            uint8_t *nul = memchr(c->ctl + off, 0, (size_t)n - off);
            size_t part = nul ? (size_t)(nul - (c->ctl + off)) : (size_t)n - off;
            if (ks->msg_len + part + 1 > OVPN_MAX_MSG) {
                ovpn_client_enter_restart(c, "control message too long");
                return -1;
            }
            /* Grown by hand rather than realloc(): messages carry tokens, and no copy may be left. */
            char *m = malloc(ks->msg_len + part + 1);
            if (!m)
                return 0;
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
                if (ovpn_client_session_over(c))
                    return -1; /* the key state is gone */
                /* Acted on: the copy goes now, wiped (a PUSH_REPLY carries the auth-token). */
                OPENSSL_cleanse(ks->msg, ks->msg_len + 1);
                free(ks->msg);
                ks->msg = NULL;
                ks->msg_len = 0;
            }
        }
        if (ovpn_client_session_over(c))
            return -1;
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
            ovpn_client_enter_failed(c, TUNNEL_DOWN_ERROR, err);
            return rc;
        }
    }
    if (c->auth_token && (cfg->auth_user_pass || c->auth_token_user)) {
        /* Once the server pushed a token, it stands in for the password (OTP servers need it),
         * with the user it was pushed for: an OpenVPN server keys the token's HMAC with the name
         * it locked the session to (override-username changes it), and pushes that name as
         * auth-token-user; with our own name the token fails and a one-time password is spent.
         * With both parts OpenVPN sends the token even without auth-user-pass (ssl.c). */
        user = c->auth_token_user ? c->auth_token_user : cfg->username;
        pass = c->auth_token;
    } else if (cfg->auth_user_pass) {
        user = cfg->username;
        pass = cfg->password;
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
            ovpn_client_enter_failed(c, TUNNEL_DOWN_ERROR, "out of memory");
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
                ovpn_client_refused_server(c, ks, why);
            else
                ovpn_client_key_failed(c, ks, why);
            return;
        }
        if (rc == 1) {
            char desc[300];
            ovpn_tls_describe(ks->tls, desc, sizeof(desc)); /* the server's CN escaped by tls.c */
            v2s_info("openvpn: TLS up (%s)", desc);
            if (ovpn_client_send_km2(c, ks) < 0) {
                ovpn_client_key_failed(c, ks, "cannot send the key exchange message");
                return;
            }
        }
    }
    if (ks->state >= OVPN_KS_KM && ovpn_client_read_tls(c, ks) < 0)
        return;
flush:
    ovpn_client_flush(c, ks);
}

/* The server's reset (message 0) answering our tls-crypt-v2 reset, which offered early negotiation
 * (control.c ovpn_wrap_start): a 2.6 UDP server puts its records in the payload, a 2.5 server or
 * a 2.6 TCP one nothing. -1 when they are malformed: the session restarts, as OpenVPN's client
 * fails the key (ssl.c parse_early_negotiation_tlvs). */
static int ovpn_client_early_neg(struct ovpn_client *c, struct ovpn_ks *ks,
                                 const struct ovpn_rel_msg *m)
{
    unsigned flags;
    if (!c->wrap.wkc_len || m->id != 0)
        return 0;
    if (ovpn_early_neg_parse(m->data, m->len, &flags) < 0) {
        ovpn_client_key_failed(c, ks, "malformed early negotiation records in the server's reset");
        return -1;
    }
    if (flags & OVPN_EARLY_NEG_RESEND_WKC) {
        v2s_debug("openvpn: the server keeps no state until it has the wrapped client key again");
        ks->resend_wkc = 1;
    }
    return 0;
}

void ovpn_client_on_control(struct ovpn_client *c, const uint8_t *pkt, size_t len)
{
    struct ovpn_ctrl p;
    /* The replay window is the server's session's: a packet of another session leaves it as it
     * was. Its HMAC proves only that the sender holds the tls-auth / tls-crypt key, which every
     * client of the server has; with a replay id far ahead it would make each later packet of
     * the real server look replayed (OpenVPN too matches the session before the replay id). */
    struct ovpn_replay replay = c->wrap.replay;
    int rc = ovpn_ctrl_decode(&c->wrap, pkt, len, c->ctl, OVPN_BUF, &p);
    if (rc < 0) {
        v2s_debug("openvpn: control packet dropped: %s", rc == -EALREADY ? "replayed" : "malformed or not authentic");
        return;
    }
    if (c->have_remote_sid && memcmp(p.sid, c->remote_sid, OVPN_SID_LEN) != 0) {
        c->wrap.replay = replay;
        v2s_debug("openvpn: control packet from another session dropped");
        return;
    }
    if (p.n_acks && memcmp(p.ack_sid, c->sid, OVPN_SID_LEN) != 0) {
        c->wrap.replay = replay;
        v2s_debug("openvpn: control packet acking another session dropped");
        return;
    }
    struct ovpn_ks *ks = ovpn_ks_find(c, p.key_id);
    if (p.op == OVPN_OP_CONTROL_HARD_RESET_SERVER_V2) {
        if (p.key_id != 0 || !ks || c->state != OVPN_CLIENT_HANDSHAKE) {
            v2s_debug("openvpn: server reset (key %u) outside the handshake dropped", p.key_id);
            return;
        }
        if (!c->have_remote_sid) {
            memcpy(c->remote_sid, p.sid, OVPN_SID_LEN);
            c->have_remote_sid = 1;
        }
    } else if (!c->have_remote_sid) {
        c->wrap.replay = replay; /* no session yet that it could belong to */
        v2s_debug("openvpn: control packet (opcode %u) before the server's reset dropped", p.op);
        return;
    }
    if (p.op == OVPN_OP_CONTROL_SOFT_RESET_V1 && !ks) {
        /* The server starts a renegotiation with the next key id. */
        if (c->state != OVPN_CLIENT_UP || !(ks = ovpn_ks_new(c, p.key_id))) {
            v2s_debug("openvpn: the server's renegotiation of key %u dropped: %s", p.key_id,
                      c->state != OVPN_CLIENT_UP ? "the tunnel is not up yet" : "no key slot free");
            return;
        }
        c->next_key_id = (uint8_t)(p.key_id % 7 + 1);
        ovpn_rel_send(&ks->rel, OVPN_OP_CONTROL_SOFT_RESET_V1, NULL, 0, now_ms(c));
        v2s_debug("openvpn: server started renegotiation of key %u", p.key_id);
    }
    if (!ks) {
        v2s_debug("openvpn: control packet for key %u, which this session does not have, dropped",
                  p.key_id);
        return;
    }
    ovpn_timers_packet_received(&c->timers);
    for (size_t i = 0; i < p.n_acks; i++)
        ovpn_rel_acked(&ks->rel, p.acks[i]);
    if (p.has_msg_id) {
        if (ovpn_rel_receive(&ks->rel, p.op, p.msg_id, p.payload, p.len) < 0)
            return;
        const struct ovpn_rel_msg *m;
        while ((m = ovpn_rel_peek(&ks->rel))) {
            if (m->op == OVPN_OP_CONTROL_V1 && ks->state >= OVPN_KS_TLS && ks->tls)
                ovpn_tls_feed(ks->tls, m->data, m->len);
            else if (m->op == OVPN_OP_CONTROL_SOFT_RESET_V1)
                ks->server_reset = 1;
            else if (m->op == OVPN_OP_CONTROL_HARD_RESET_SERVER_V2) {
                ks->server_reset = 1;
                if (ovpn_client_early_neg(c, ks, m) < 0)
                    return; /* the session is gone */
            } else if (m->op == OVPN_OP_CONTROL_V1) {
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

void ovpn_client_session_start(struct ovpn_client *c)
{
    if (RAND_bytes(c->sid, sizeof(c->sid)) != 1) {
        ovpn_client_enter_failed(c, TUNNEL_DOWN_ERROR, "no randomness");
        return;
    }
    ovpn_wrap_start(&c->wrap, &c->wrap_keys);
    c->next_key_id = 1;
    struct ovpn_ks *ks = ovpn_ks_new(c, 0);
    if (!ks) {
        ovpn_client_enter_failed(c, TUNNEL_DOWN_ERROR, "out of memory");
        return;
    }
    c->primary = ovpn_ks_slot(c, ks);
    /* Under tls-crypt-v2 the reset is V3, which carries the wrapped client key each time it is
     * sent (ovpn_ctrl_encode), so a lost first packet is retransmitted whole. */
    uint8_t reset_op = c->wrap.wkc_len ? OVPN_OP_CONTROL_HARD_RESET_CLIENT_V3 : OVPN_OP_CONTROL_HARD_RESET_CLIENT_V2;
    ovpn_rel_send(&ks->rel, reset_op, NULL, 0, now_ms(c));
    ovpn_client_flush(c, ks);
}
