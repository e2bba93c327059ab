/* Every timer of the OpenVPN client, run from one 100 ms tick; their times live here alone
 * (struct ovpn_timers) and the protocol code only reports events (timers.h):
 *   connect-timeout a TCP link not connected within connect-timeout (120 s) is given up
 *                   (ovpn_timers_connect_started)
 *   retransmit      control messages not acked: 2 s, doubling (reliable.c keeps the schedule)
 *   hand-window     a key negotiation not finished in hand-window seconds (60) fails and the
 *                   session ends: the first key's (a reconnect), and a renegotiation's too, ours
 *                   or the server's, as OpenVPN 2.6 does: a new session at once on the same link
 *                   over UDP, a reconnect over TCP (ovpn_timers_run_keys). AUTH_PENDING starts
 *                   it again, as long as the server's timeout (ovpn_timers_auth_pending)
 *   push-request    PUSH_REQUEST again until PUSH_REPLY: every second for the first 10 s, then
 *                   every 5 s (ovpn_timers_push_started). OpenVPN's client sends its first one on
 *                   its 1 s tick after the key exchange, then one every 5 s; ours goes at once
 *                   (session.c: after the acks). While a server finishes a deferred auth (a
 *                   plugin, management client-auth) it looks at the result only for 2 s after a
 *                   control packet from us (TLS_MULTI_HORIZON), or on the next one; and a 2.4
 *                   server drops a request that arrives before it is done. A request each
 *                   second keeps it looking and asks again soon after; past 10 s the auth is a
 *                   human's and 5 s, as OpenVPN's, is soon enough
 *   server-poll     a link up for server-poll-timeout (connect-timeout: the same option in
 *                   OpenVPN) with no authentic packet of the server's (its hard reset) is given
 *                   up for the remote's next address or the next remote, as OpenVPN's
 *                   check_server_poll_timeout does; a UDP server that is not there would
 *                   otherwise hold the client for the whole hand-window (60 s)
 *   ping            a ping when nothing was sent for `ping` seconds
 *   ping-restart    reconnect when nothing arrived for `ping-restart` seconds
 *   renegotiation   a new key after reneg-sec seconds on the current one (the tick), or once
 *                   it carried reneg-bytes or reneg-pkts (both directions), its sent packet ids
 *                   near the end of their space, or its AEAD usage near its limit (data.h):
 *                   those are counted per packet, so the check runs on each data packet
 *                   (ovpn_timers_data_moved); at a gigabit a tick would let 12 MB pass. The old
 *                   key keeps sending until the new one is in, and a while after (transition);
 *                   one that fails its hand-window ends the session (hand-window above)
 *   transition      an old key still decrypts for an hour after a new one took over (OpenVPN's
 *                   tran-window), then goes; a newer key may need its slot before that. Data
 *                   goes out with the old key until the new one is hand-window (or reneg-sec / 2
 *                   when smaller) old, as OpenVPN sends (ovpn_timers_send_slot)
 *   reconnect wait  the pause before the next connection attempt (the back-off is the client's
 *                   policy, link.c; the wait is kept here) */
#include "tunnel/openvpn/timers.h"

#include <stdio.h>

#include "base/log.h"
#include "tunnel/openvpn/data.h"
#include "tunnel/openvpn/internal.h"

enum {
    OVPN_TICK_MS = 100,
    OVPN_PUSH_FAST_RETRY_MS = 1000, /* PUSH_REQUEST again after this, ... */
    OVPN_PUSH_FAST_RETRIES = 10,    /* ... this many times, */
    OVPN_PUSH_RETRY_MS = 5000,      /* then after this: OpenVPN's own interval */
    /* An old key still decrypts this long after a new one took over: OpenVPN's tran-window
     * (3600 s), which its peers count on. An OpenVPN server keeps sending with the old key until
     * the new one is as old as its hand-window (ssl.c tls_select_encryption_key, the smaller of
     * hand-window and reneg-sec / 2): with 60 s here a server's hand-window 120 meant a minute of
     * its packets dropped after each renegotiation. A lame duck costs a TLS session and a data
     * key; ovpn_ks_new() takes the oldest one's slot when a renegotiation needs it. */
    OVPN_TRANSITION_MS = 3600 * 1000,
};

void ovpn_timers_init(struct ovpn_timers *t, uv_loop_t *loop, struct ovpn_client *c,
                      const struct ovpn_timer_actions *act)
{
    t->c = c;
    t->act = act;
    t->loop = loop;
    uv_timer_init(loop, &t->tick);
    t->tick.data = t;
}

uint64_t ovpn_timers_now(const struct ovpn_timers *t)
{
    return t->clock ? t->clock(t->clock_arg) : uv_now(t->loop);
}

static void ovpn_timers_on_tick(uv_timer_t *h)
{
    ovpn_timers_run(h->data);
}

int ovpn_timers_start(struct ovpn_timers *t)
{
    return uv_timer_start(&t->tick, ovpn_timers_on_tick, OVPN_TICK_MS, OVPN_TICK_MS);
}

void ovpn_timers_stop(struct ovpn_timers *t)
{
    uv_timer_stop(&t->tick);
}

static void ovpn_timers_tick_closed(uv_handle_t *h)
{
    struct ovpn_timers *t = h->data;
    t->on_closed(t->c);
}

void ovpn_timers_close(struct ovpn_timers *t, void (*cb)(struct ovpn_client *c))
{
    t->on_closed = cb;
    uv_close((uv_handle_t *)&t->tick, ovpn_timers_tick_closed);
}

/* --- event hooks --- */

void ovpn_timers_connect_started(struct ovpn_timers *t, unsigned timeout_ms)
{
    t->connect_deadline = ovpn_timers_now(t) + timeout_ms;
}

unsigned ovpn_timers_server_poll_s(const struct ovpn_config *cfg)
{
    unsigned a = cfg->server_poll_timeout, b = cfg->connect_timeout;
    if (a == 0 || (b != 0 && b < a))
        return b;
    return a;
}

void ovpn_timers_connected(struct ovpn_timers *t)
{
    t->connect_deadline = 0;
    t->connected_at = ovpn_timers_now(t);
    t->last_rx = t->last_tx = ovpn_timers_now(t);
}

void ovpn_timers_packet_sent(struct ovpn_timers *t)
{
    t->last_tx = ovpn_timers_now(t);
}

void ovpn_timers_packet_received(struct ovpn_timers *t)
{
    t->last_rx = ovpn_timers_now(t);
}

void ovpn_timers_push_started(struct ovpn_timers *t)
{
    t->push_count = 0;
}

void ovpn_timers_push_sent(struct ovpn_timers *t)
{
    t->push_sent = ovpn_timers_now(t);
    if (t->push_count < UINT32_MAX)
        t->push_count++;
}

void ovpn_timers_keepalive(struct ovpn_timers *t, uint64_t ping_ms, uint64_t ping_restart_ms)
{
    t->ping_ms = ping_ms;
    t->ping_restart_ms = ping_restart_ms;
}

void ovpn_timers_key_started(struct ovpn_timers *t, int slot)
{
    t->key_started[slot] = ovpn_timers_now(t);
    t->key_window[slot] = 0;
    t->key_retire_at[slot] = 0;
}

/* How long after a renegotiation began data still goes out with the key before: OpenVPN's
 * auth_deferred_expire_window(), hand-window or reneg-sec / 2, whichever is smaller. */
static uint64_t ovpn_timers_send_deferral(const struct ovpn_config *cfg)
{
    uint64_t hand = (uint64_t)(cfg->hand_window ? cfg->hand_window : 60) * 1000;
    uint64_t half = (uint64_t)cfg->reneg_sec * 1000 / 2;
    return cfg->reneg_sec && half < hand ? half : hand;
}

void ovpn_timers_key_promoted(struct ovpn_timers *t, int slot, int old_slot)
{
    uint64_t now = ovpn_timers_now(t);
    if (old_slot >= 0 && old_slot != slot)
        t->key_retire_at[old_slot] = now + OVPN_TRANSITION_MS;
    /* The new key is in on our side, but an OpenVPN server gives it data keys only once its own
     * key-method 2 message is acked and the client authenticated anew, which a deferred
     * authentication (a plugin, a management client-auth) answers later: until then it drops
     * data on the new key (ssl.c handle_data_channel_packet needs S_GENERATED_KEYS), while the
     * old one works for its tran-window (an hour). So OpenVPN's own client keeps sending with the
     * old key until the new one is auth_deferred_expire old (tls_select_encryption_key), and so
     * do we: a lost ack, or an authentication taking seconds, no longer drops what we send. */
    t->send_old_slot = old_slot >= 0 && old_slot != slot ? old_slot : -1;
    t->send_new_at = t->send_old_slot >= 0 ? t->key_started[slot] + ovpn_timers_send_deferral(t->c->cfg) : 0;
    t->keyed_at = now;
}

/* A pending authentication (a web login, a second factor) may take longer than hand-window: the
 * server names the time it gives the user ("AUTH_PENDING,timeout 300"), and OpenVPN 2.6 waits
 * that long for PUSH_REPLY, at most reneg-sec / 2 or hand-window, whichever is longer (push.c
 * receive_auth_pending). We waited hand-window (60 s) whatever the server said, and a login that
 * took the user a minute and more ended in a reconnect, the pending authentication lost. */
void ovpn_timers_auth_pending(struct ovpn_timers *t, int slot, unsigned timeout_s)
{
    const struct ovpn_config *cfg = t->c->cfg;
    uint64_t hand = (uint64_t)(cfg->hand_window ? cfg->hand_window : 60) * 1000;
    uint64_t most = (uint64_t)cfg->reneg_sec * 1000 / 2;
    if (most < hand)
        most = hand;
    uint64_t want = timeout_s ? (uint64_t)timeout_s * 1000 : hand;
    t->key_started[slot] = ovpn_timers_now(t);
    t->key_window[slot] = want < most ? want : most;
}

uint64_t ovpn_timers_key_retire_at(const struct ovpn_timers *t, int slot)
{
    return t->key_retire_at[slot];
}

int ovpn_timers_send_slot(const struct ovpn_timers *t, int primary)
{
    int old = t->send_old_slot;
    /* The old key's slot is still its own while it is a lame duck (a new key resets retire_at). */
    if (t->send_new_at && ovpn_timers_now(t) < t->send_new_at && old >= 0 && old != primary &&
        t->key_retire_at[old])
        return old;
    return primary;
}

void ovpn_timers_peer_sent(struct ovpn_timers *t, int slot)
{
    if (t->send_new_at && slot == t->c->primary)
        t->send_new_at = 0;
}

void ovpn_timers_reconnect_wait(struct ovpn_timers *t, uint64_t delay_ms, int next_addr)
{
    t->connect_deadline = 0;
    t->wait_until = ovpn_timers_now(t) + delay_ms;
    t->wait_next_addr = next_addr;
}

/* --- the policy --- */

/* The wait after the latest of n PUSH_REQUESTs (n >= 1) before the next. */
static uint64_t ovpn_timers_push_gap(uint32_t n)
{
    return n <= OVPN_PUSH_FAST_RETRIES ? OVPN_PUSH_FAST_RETRY_MS : OVPN_PUSH_RETRY_MS;
}

/* Whether the session timers run in state s: only while a link carries a session. Every state is
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
    case OVPN_CLIENT_CONNECTING: /* connect-timeout only (ovpn_timers_run) */
    case OVPN_CLIENT_WAITING:    /* the reconnect wait only (ovpn_timers_run) */
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

void ovpn_timers_data_moved(struct ovpn_timers *t, const struct ovpn_ks *ks)
{
    struct ovpn_client *c = t->c;
    const struct ovpn_config *cfg = c->cfg;
    if (c->state != OVPN_CLIENT_UP || c->primary < 0 || ks != &c->keys[c->primary])
        return;
    enum ovpn_data_reneg due = ovpn_data_renegotiate_due(ks->data, cfg->reneg_bytes, cfg->reneg_pkts);
    if (due == OVPN_DATA_RENEG_NONE || ovpn_timers_negotiating(c))
        return;
    struct ovpn_data_usage u;
    char why[128];
    ovpn_data_get_usage(ks->data, &u);
    snprintf(why, sizeof(why), "%s (%llu bytes, %llu packets on key %u)", ovpn_data_reneg_name(due),
             (unsigned long long)(u.tx_bytes + u.rx_bytes), (unsigned long long)(u.tx_packets + u.rx_packets),
             ks->key_id);
    t->act->renegotiate(c, why);
}

/* The key states: lame ducks that served their time, hand-window, retransmissions. 0, or -1 when
 * the session ended. */
static int ovpn_timers_run_keys(struct ovpn_timers *t, uint64_t now)
{
    struct ovpn_client *c = t->c;
    uint64_t hand = (uint64_t)(c->cfg->hand_window ? c->cfg->hand_window : 60) * 1000;
    for (int i = 0; i < OVPN_CLIENT_KEYS; i++) {
        struct ovpn_ks *ks = &c->keys[i];
        if (!ks->used)
            continue;
        if (t->key_retire_at[i] && now >= t->key_retire_at[i] && i != c->primary) {
            t->act->drop_key(c, ks);
            continue;
        }
        int negotiating = ks->state != OVPN_KS_KEYED || (i == c->primary && c->state == OVPN_CLIENT_PUSH);
        uint64_t window = t->key_window[i] ? t->key_window[i] : hand;
        if (negotiating && now - t->key_started[i] > window) {
            /* A renegotiation that failed ends the session, as in OpenVPN 2.6's client (ssl.c
             * tls_process_state: "TLS key negotiation failed to occur within", the key in
             * S_ERROR). Over TCP that error restarts it (forward.c check_tls_errors_co: SIGUSR1
             * tls-error): a reconnect. Over UDP tls_multi_process moves the session aside with
             * its old key, which goes on carrying data until its tran-window ends, and starts a
             * new one at once on the same socket (a hard reset, a new session id, key 0,
             * PUSH_REQUEST again), which the server takes as the same client: so do we, without
             * the old key meanwhile (we keep one session at a time). Dropping the key and trying
             * the soft reset again, as we did, kept a session the server may have lost (it
             * answers no soft reset) until the key wore out or ping-restart fired. */
            char why[160];
            unsigned window_s = (unsigned)(window / 1000);
            if (i == c->primary || c->state != OVPN_CLIENT_UP) {
                int push = c->state == OVPN_CLIENT_PUSH;
                snprintf(why, sizeof(why), "no %s within %s (%u s)", push ? "PUSH_REPLY" : "TLS handshake",
                         t->key_window[i] ? "the pending authentication's time" : "hand-window", window_s);
                /* A missing PUSH_REPLY is no TLS error in OpenVPN (push.c: no-push-reply), so
                 * tls-exit leaves it alone; a handshake out of time puts the key in S_ERROR. */
                if (c->cfg->tls_exit && !push)
                    t->act->tls_exit(c, why);
                else
                    t->act->restart(c, why);
                return -1;
            }
            snprintf(why, sizeof(why), "renegotiation of key %u did not finish within hand-window (%u s)",
                     ks->key_id, window_s);
            if (c->cfg->tls_exit)
                t->act->tls_exit(c, why);
            else if (c->proto == OVPN_PROTO_UDP)
                t->act->new_session(c, why);
            else
                t->act->restart(c, why);
            return -1;
        }
        t->act->retransmit(c, ks);
        /* A retransmission does not end the link today (the transport reports a failed send from
         * the loop); if one ever did, the state would be WAITING or DONE and the keys gone. */
        if (!ovpn_timers_state_active(c->state))
            return -1;
    }
    return 0;
}

void ovpn_timers_run(struct ovpn_timers *t)
{
    struct ovpn_client *c = t->c;
    const struct ovpn_config *cfg = c->cfg;
    uint64_t now = ovpn_timers_now(t);
    if (c->state == OVPN_CLIENT_WAITING) {
        if (now >= t->wait_until)
            t->act->resume(c, t->wait_next_addr);
        return;
    }
    if (c->state == OVPN_CLIENT_CONNECTING) {
        if (t->connect_deadline && now >= t->connect_deadline) {
            t->connect_deadline = 0;
            t->act->connect_timed_out(c);
        }
        return;
    }
    if (!ovpn_timers_state_active(c->state))
        return;
    uint64_t poll = (uint64_t)ovpn_timers_server_poll_s(cfg) * 1000;
    if (c->state == OVPN_CLIENT_HANDSHAKE && !c->have_remote_sid && poll && now - t->connected_at >= poll) {
        char why[96];
        snprintf(why, sizeof(why), "no answer from the server within %llu s (server-poll-timeout)",
                 (unsigned long long)(poll / 1000));
        t->act->restart(c, why);
        return;
    }
    if (ovpn_timers_run_keys(t, now) < 0)
        return;
    if (c->state == OVPN_CLIENT_PUSH && now - t->push_sent >= ovpn_timers_push_gap(t->push_count))
        t->act->push_request(c);
    if (c->state != OVPN_CLIENT_UP)
        return;
    if (t->ping_restart_ms && now - t->last_rx >= t->ping_restart_ms) {
        char why[96];
        snprintf(why, sizeof(why), "nothing from the server for %llu s (ping-restart)",
                 (unsigned long long)(t->ping_restart_ms / 1000));
        t->act->restart(c, why);
        return;
    }
    if (t->ping_ms && now - t->last_tx >= t->ping_ms)
        t->act->ping(c);
    if (cfg->reneg_sec && now - t->keyed_at >= (uint64_t)cfg->reneg_sec * 1000 && !ovpn_timers_negotiating(c)) {
        char why[32];
        snprintf(why, sizeof(why), "reneg-sec %u", cfg->reneg_sec);
        t->act->renegotiate(c, why);
    }
}
