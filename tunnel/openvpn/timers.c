/* Every timer of the OpenVPN client, run from one 100 ms tick (client.c):
 *   retransmit      control messages not acked: 2 s, doubling (reliable.c keeps the schedule)
 *   hand-window     a key negotiation not finished in hand-window seconds (60) fails: the first
 *                   key restarts the connection, a renegotiation is dropped and retried later
 *   push-request    PUSH_REQUEST again every 5 s until PUSH_REPLY
 *   ping            a ping when nothing was sent for `ping` seconds
 *   ping-restart    reconnect when nothing arrived for `ping-restart` seconds
 *   renegotiation   a new key after reneg-sec seconds on the current one (the tick), or once
 *                   it carried reneg-bytes or reneg-pkts (both directions), its sent packet ids
 *                   near the end of their space, or its AEAD usage near its limit (data.h):
 *                   those are counted per packet, so the check runs on each data packet
 *                   (ovpn_timers_data_moved); at a gigabit a tick would let 12 MB pass. The old
 *                   key keeps sending until the new one is in. A failed attempt is retried after
 *                   10 s
 *   transition      an old key still decrypts for 60 s after a new one took over, then goes
 *   reconnect wait  handled by the tick itself (client.c) */
#include <stdio.h>

#include "base/log.h"
#include "tunnel/openvpn/data.h"
#include "tunnel/openvpn/internal.h"

enum {
    OVPN_PUSH_RETRY_MS = 5000,
    OVPN_RENEG_RETRY_MS = 10000,
};

/* Whether the timers above run in state s: only while a link carries a session. Every state is
 * named, not compared by its place in the enum (WAITING and DONE sort after UP): the compiler
 * (-Wswitch) asks where a new state belongs. */
static int ovpn_timers_state_active(enum ovpn_client_state s)
{
    switch (s) {
    case OVPN_CLIENT_HANDSHAKE:
    case OVPN_CLIENT_PUSH:
    case OVPN_CLIENT_UP:
        return 1;
    case OVPN_CLIENT_IDLE:
    case OVPN_CLIENT_RESOLVING:
    case OVPN_CLIENT_CONNECTING: /* the transport's connect-timeout covers this */
    case OVPN_CLIENT_WAITING:    /* the tick itself ends the wait (client.c) */
    case OVPN_CLIENT_DONE:
        return 0;
    }
    return 0;
}

/* Whether a key negotiation is under way (ours or the server's). */
static int ovpn_timers_negotiating(const struct ovpn_client *c)
{
    for (int i = 0; i < OVPN_CLIENT_KEYS; i++)
        if (c->keys[i].used && c->keys[i].state != OVPN_KS_KEYED)
            return 1;
    return 0;
}

void ovpn_timers_data_moved(struct ovpn_client *c, const struct ovpn_ks *ks)
{
    const struct ovpn_config *cfg = c->cfg;
    if (c->state != OVPN_CLIENT_UP || c->primary < 0 || ks != &c->keys[c->primary])
        return;
    enum ovpn_data_reneg due = ovpn_data_renegotiate_due(ks->data, cfg->reneg_bytes, cfg->reneg_pkts);
    if (due == OVPN_DATA_RENEG_NONE || uv_now(c->loop) < c->reneg_not_before || ovpn_timers_negotiating(c))
        return;
    struct ovpn_data_usage u;
    char why[128];
    ovpn_data_get_usage(ks->data, &u);
    snprintf(why, sizeof(why), "%s (%llu bytes, %llu packets on key %u)", ovpn_data_reneg_name(due),
             (unsigned long long)(u.tx_bytes + u.rx_bytes), (unsigned long long)(u.tx_packets + u.rx_packets),
             ks->key_id);
    ovpn_client_renegotiate(c, why);
}

void ovpn_timers_tick(struct ovpn_client *c, uint64_t now)
{
    const struct ovpn_config *cfg = c->cfg;
    if (!ovpn_timers_state_active(c->state))
        return;
    uint64_t hand = (uint64_t)(cfg->hand_window ? cfg->hand_window : 60) * 1000;
    for (int i = 0; i < OVPN_CLIENT_KEYS; i++) {
        struct ovpn_ks *ks = &c->keys[i];
        if (!ks->used)
            continue;
        if (ks->retire_at && now >= ks->retire_at && i != c->primary) {
            ovpn_ks_free(ks);
            continue;
        }
        int negotiating = ks->state != OVPN_KS_KEYED || (i == c->primary && c->state == OVPN_CLIENT_PUSH);
        if (negotiating && now - ks->started > hand) {
            if (i == c->primary || c->state != OVPN_CLIENT_UP) {
                char why[128];
                snprintf(why, sizeof(why), "no %s within hand-window (%u s)",
                         c->state == OVPN_CLIENT_PUSH ? "PUSH_REPLY" : "TLS handshake", (unsigned)(hand / 1000));
                ovpn_client_restart(c, why);
                return;
            }
            v2s_warn("openvpn: renegotiation of key %u did not finish in time; keeping the current key", ks->key_id);
            ovpn_ks_free(ks);
            /* Try again in a while, not on the next tick. */
            c->reneg_not_before = now + OVPN_RENEG_RETRY_MS;
            continue;
        }
        ovpn_client_flush(c, ks);
        /* A flush does not end the link today (the transport reports a failed send from the loop);
         * if one ever did, the state would be WAITING or DONE and the keys gone. */
        if (!ovpn_timers_state_active(c->state))
            return;
    }
    if (c->state == OVPN_CLIENT_PUSH && now - c->push_sent >= OVPN_PUSH_RETRY_MS)
        ovpn_client_send_push_request(c);
    if (c->state != OVPN_CLIENT_UP)
        return;
    if (c->ping_restart_ms && now - c->last_rx >= c->ping_restart_ms) {
        char why[96];
        snprintf(why, sizeof(why), "nothing from the server for %llu s (ping-restart)",
                 (unsigned long long)(c->ping_restart_ms / 1000));
        ovpn_client_restart(c, why);
        return;
    }
    if (c->ping_ms && now - c->last_tx >= c->ping_ms)
        ovpn_client_send_ping(c);
    if (cfg->reneg_sec && now - c->keyed_at >= (uint64_t)cfg->reneg_sec * 1000 && now >= c->reneg_not_before &&
        !ovpn_timers_negotiating(c)) {
        char why[32];
        snprintf(why, sizeof(why), "reneg-sec %u", cfg->reneg_sec);
        ovpn_client_renegotiate(c, why);
    }
}
