/* The native OpenVPN client as a tunnel: the object and its tunnel interface, the key state
 * slots, and every transition of the client's state machine (the only code that writes the
 * state). Its parts (internal.h): link.c connects, session.c runs the control channel,
 * datapath.c carries packets, timers.c keeps every timer. */
#include "tunnel/openvpn/client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <uv.h>

#include "base/log.h"
#include "tunnel/openvpn/data.h"
#include "tunnel/openvpn/internal.h"
#include "tunnel/openvpn/keymethod.h"
#include "tunnel/openvpn/ncp.h"
#include "tunnel/openvpn/tls.h"

enum {
    OVPN_RETRY_MAX_S = 300, /* connect-retry's longest wait unless it says (OpenVPN's default) */
};

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

struct ovpn_ks *ovpn_ks_find(struct ovpn_client *c, uint8_t key_id)
{
    for (int i = 0; i < OVPN_CLIENT_KEYS; i++)
        if (c->keys[i].used && c->keys[i].key_id == key_id)
            return &c->keys[i];
    return NULL;
}

struct ovpn_ks *ovpn_ks_new(struct ovpn_client *c, uint8_t key_id)
{
    int slot = -1;
    for (int i = 0; i < OVPN_CLIENT_KEYS && slot < 0; i++)
        if (!c->keys[i].used)
            slot = i;
    if (slot < 0) {
        /* All in use: the oldest lame duck goes. */
        uint64_t oldest = 0;
        for (int i = 0; i < OVPN_CLIENT_KEYS; i++) {
            uint64_t at = ovpn_timers_key_retire_at(&c->timers, i);
            if (i != c->primary && at && (slot < 0 || at < oldest)) {
                slot = i;
                oldest = at;
            }
        }
        if (slot < 0)
            return NULL;
        ovpn_ks_free(&c->keys[slot]);
    }
    struct ovpn_ks *ks = &c->keys[slot];
    memset(ks, 0, sizeof(*ks));
    ks->used = 1;
    ks->key_id = key_id;
    ks->state = OVPN_KS_RESET;
    ovpn_timers_key_started(&c->timers, slot);
    ovpn_rel_init(&ks->rel);
    if (ovpn_km2_randomize(&ks->ours) < 0) {
        ovpn_ks_free(ks);
        return NULL;
    }
    return ks;
}

/* --- state transitions --- */

const char *ovpn_client_state_name(enum ovpn_client_state s)
{
    switch (s) {
    case OVPN_CLIENT_IDLE:
        return "idle";
    case OVPN_CLIENT_RESOLVING:
        return "resolving";
    case OVPN_CLIENT_CONNECTING:
        return "connecting";
    case OVPN_CLIENT_HANDSHAKE:
        return "handshake";
    case OVPN_CLIENT_PUSH:
        return "push";
    case OVPN_CLIENT_UP:
        return "up";
    case OVPN_CLIENT_WAITING:
        return "waiting";
    case OVPN_CLIENT_DONE:
        return "done";
    }
    return "?";
}

#define OVPN_FROM(s) (1u << (s))

/* Whether the client may move to state to, its current state being in the mask from; when not,
 * says so in the log: the caller has a bug, and the move is refused. */
static int ovpn_client_may_enter(const struct ovpn_client *c, unsigned from, enum ovpn_client_state to)
{
    if (from & OVPN_FROM(c->state))
        return 1;
    v2s_error("openvpn: internal error: no transition from %s to %s; ignored", ovpn_client_state_name(c->state),
              ovpn_client_state_name(to));
    return 0;
}

/* The one place the state is written. 0, or -1 when the move was refused. */
static int ovpn_client_set_state(struct ovpn_client *c, unsigned from, enum ovpn_client_state to)
{
    if (!ovpn_client_may_enter(c, from, to))
        return -1;
    c->state = to;
    return 0;
}

int ovpn_client_session_over(const struct ovpn_client *c)
{
    return c->state == OVPN_CLIENT_WAITING || c->state == OVPN_CLIENT_DONE;
}

int ovpn_client_data_flows(const struct ovpn_client *c)
{
    if (c->state == OVPN_CLIENT_UP)
        return 1;
    return c->state == OVPN_CLIENT_PUSH && c->resumed && c->primary >= 0 && c->keys[c->primary].data;
}

int ovpn_client_enter_resolving(struct ovpn_client *c)
{
    return ovpn_client_set_state(c, OVPN_FROM(OVPN_CLIENT_IDLE) | OVPN_FROM(OVPN_CLIENT_WAITING),
                                 OVPN_CLIENT_RESOLVING);
}

int ovpn_client_enter_connecting(struct ovpn_client *c)
{
    unsigned timeout_s = ovpn_timers_server_poll_s(c->cfg);
    unsigned timeout = (timeout_s ? timeout_s : 120) * 1000U;
    int rc = ovpn_client_set_state(c, OVPN_FROM(OVPN_CLIENT_RESOLVING) | OVPN_FROM(OVPN_CLIENT_WAITING),
                                   OVPN_CLIENT_CONNECTING);
    if (rc == 0)
        ovpn_timers_connect_started(&c->timers, timeout);
    return rc;
}

int ovpn_client_enter_handshake(struct ovpn_client *c)
{
    int rc = ovpn_client_set_state(c, OVPN_FROM(OVPN_CLIENT_CONNECTING), OVPN_CLIENT_HANDSHAKE);
    if (rc == 0)
        ovpn_timers_connected(&c->timers);
    return rc;
}

int ovpn_client_enter_push_wait(struct ovpn_client *c)
{
    return ovpn_client_set_state(c, OVPN_FROM(OVPN_CLIENT_HANDSHAKE), OVPN_CLIENT_PUSH);
}

int ovpn_client_enter_up(struct ovpn_client *c)
{
    int rc = ovpn_client_set_state(c, OVPN_FROM(OVPN_CLIENT_PUSH), OVPN_CLIENT_UP);
    if (rc == 0) {
        c->was_up = 1;
        c->attempts = 0;
        c->retry_count = 0;
        c->push_rejects = 0;
    }
    return rc;
}

void ovpn_client_enter_failed(struct ovpn_client *c, enum tunnel_down_reason reason, const char *why)
{
    if (c->state == OVPN_CLIENT_DONE)
        return;
    ovpn_client_close_link(c);
    ovpn_client_set_state(c, ~OVPN_FROM(OVPN_CLIENT_DONE), OVPN_CLIENT_DONE);
    ovpn_timers_stop(&c->timers);
    c->t.ev.down(c->t.ev.arg, reason, why);
}

/* OpenVPN's tls-exit turns the SIGUSR1 of a TLS error into a SIGTERM (init.c tls_exit_signal,
 * forward.c check_tls_errors), which exits with success there. We stop with the exit status of a
 * certificate failure, 2, since the error is one in the TLS of the server or of its certificate,
 * and a supervisor that restarts on failure should see one. */
void ovpn_client_enter_tls_exit(struct ovpn_client *c, const char *why)
{
    char msg[400];
    snprintf(msg, sizeof(msg), "tls-exit: %s", why);
    ovpn_client_enter_failed(c, TUNNEL_DOWN_AUTH, msg);
}

/* Why a restart happens, by the phase it ends (tunnel_reconnect_reason). */
static enum tunnel_reconnect_reason ovpn_client_restart_reason(enum ovpn_client_state s)
{
    switch (s) {
    case OVPN_CLIENT_RESOLVING:
        return TUNNEL_RECONNECT_RESOLVE;
    case OVPN_CLIENT_CONNECTING:
    case OVPN_CLIENT_WAITING:
        return TUNNEL_RECONNECT_CONNECT;
    case OVPN_CLIENT_UP:
        return TUNNEL_RECONNECT_SESSION;
    default:
        return TUNNEL_RECONNECT_HANDSHAKE;
    }
}

void ovpn_client_enter_restart(struct ovpn_client *c, const char *why)
{
    ovpn_client_enter_restart_as(c, ovpn_client_restart_reason(c->state), why);
}

void ovpn_client_enter_restart_as(struct ovpn_client *c, enum tunnel_reconnect_reason reason,
                                  const char *why)
{
    if (c->state == OVPN_CLIENT_DONE)
        return;
    /* From any state a session or its link can be in; IDLE has neither. */
    unsigned from = ~(OVPN_FROM(OVPN_CLIENT_IDLE) | OVPN_FROM(OVPN_CLIENT_DONE));
    if (!ovpn_client_may_enter(c, from, OVPN_CLIENT_WAITING))
        return;
    int was_up = c->state == OVPN_CLIENT_UP;
    enum ovpn_client_pick pick = c->next_pick;
    c->next_pick = OVPN_PICK_AUTO;
    if (pick == OVPN_PICK_AUTO)
        pick = was_up ? OVPN_PICK_SAME : OVPN_PICK_NEXT;
    c->reconnects[reason]++;
    ovpn_client_close_link(c);
    /* A wait the server asked for, used once; no server parks us longer than our own longest
     * (OpenVPN: connect-retry's maximum, init.c socket_restart_pause). */
    unsigned max = c->cfg->connect_retry_wait_max ? c->cfg->connect_retry_wait_max : OVPN_RETRY_MAX_S;
    unsigned backoff = c->server_backoff < max ? c->server_backoff : max;
    c->server_backoff = 0;
    if (pick == OVPN_PICK_NEXT && !was_up && c->addr_next) {
        /* This address never answered properly: the remote's next one goes first, at once
         * (from the tick: we may be deep inside the old session's processing here). */
        if (backoff)
            v2s_info("openvpn: %s; trying the next address in %u s", why, backoff);
        else
            v2s_info("openvpn: %s; trying the next address", why);
        ovpn_client_set_state(c, from, OVPN_CLIENT_WAITING);
        ovpn_timers_reconnect_wait(&c->timers, backoff * 1000ULL, 1);
        return;
    }
    if (c->addrs) {
        uv_freeaddrinfo(c->addrs);
        c->addrs = c->addr_next = NULL;
    }
    unsigned cr = c->cfg->connect_retry ? c->cfg->connect_retry : 5;
    /* connect-retry-max N: N attempts at each remote, counted as OpenVPN counts them (init.c
     * next_connection_entry): each attempt that moves on counts, the first one too; one that
     * tries the same remote again (after a session that was up, or AUTH_FAILED) does not. The
     * client made one attempt more than that. */
    if (pick != OVPN_PICK_SAME && c->cfg->connect_retry_max &&
        ++c->retry_count > (uint64_t)c->cfg->connect_retry_max * c->cfg->n_remotes) {
        char msg[300];
        snprintf(msg, sizeof(msg), "%s; giving up after %u attempt%s in a row (connect-retry-max %u)", why,
                 c->attempts + 1, c->attempts ? "s" : "", c->cfg->connect_retry_max);
        ovpn_client_enter_failed(c, TUNNEL_DOWN_CLOSED, msg);
        return;
    }
    /* The first retry of a session that was up is quick; repeated failures back off, doubling
     * once per round of every remote, not per attempt: with many remotes (provider profiles list
     * ten or more) each failed one cost twice the last, and the tenth was tried after about
     * 15 minutes. OpenVPN (init.c socket_restart_pause) waits connect-retry between attempts and
     * backs off by rounds of the remote list too. One remote: 1, 5, 10, 20, ... s as before. */
    unsigned delay = c->attempts == 0 ? 1 : cr;
    unsigned rounds = c->attempts == 0 ? 0 : (c->attempts - 1) / (unsigned)c->cfg->n_remotes;
    for (unsigned i = 0; i < rounds && delay < max; i++)
        delay *= 2;
    if (delay > max)
        delay = max;
    if (delay < backoff)
        delay = backoff;
    c->attempts++;
    /* A session that was up is tried again on its own remote first, as OpenVPN tries it (init.c
     * next_connection_entry: no_advance once initialized): what ended it (ping-restart on a
     * network glitch, the server restarting) says nothing against that server, its auth-token
     * is good there alone, and a config that lists UDP before a TCP fallback stays on UDP. The
     * next failure moves on. */
    if (pick != OVPN_PICK_SAME)
        c->remote = (c->remote + 1) % c->cfg->n_remotes;
    v2s_log_event(V2S_LOG_WARN, "reconnect", NULL, 0, "openvpn: %s; reconnecting in %u s", why, delay);
    ovpn_client_set_state(c, from, OVPN_CLIENT_WAITING);
    ovpn_timers_reconnect_wait(&c->timers, delay * 1000ULL, 0);
}

void ovpn_client_enter_new_session(struct ovpn_client *c, const char *why)
{
    if (!ovpn_client_may_enter(c, OVPN_FROM(OVPN_CLIENT_UP), OVPN_CLIENT_HANDSHAKE))
        return;
    c->reconnects[TUNNEL_RECONNECT_SESSION]++;
    v2s_log_event(V2S_LOG_WARN, "reconnect", NULL, 0, "openvpn: %s; a new session on the same link", why);
    ovpn_client_forget_session(c);
    c->resumed = 1;
    ovpn_client_set_state(c, OVPN_FROM(OVPN_CLIENT_UP), OVPN_CLIENT_HANDSHAKE);
    ovpn_timers_connected(&c->timers);
    ovpn_client_session_start(c);
}

void ovpn_client_enter_reloaded(struct ovpn_client *c)
{
    if (c->state == OVPN_CLIENT_DONE)
        return;
    unsigned from = ~(OVPN_FROM(OVPN_CLIENT_IDLE) | OVPN_FROM(OVPN_CLIENT_DONE));
    if (ovpn_client_set_state(c, from, OVPN_CLIENT_WAITING) < 0)
        return;
    v2s_log_event(V2S_LOG_INFO, "reconnect", NULL, 0, "openvpn: the config was read again; reconnecting now");
    ovpn_timers_reconnect_wait(&c->timers, 0, 0);
}

/* Whatever state the client is in, it is done: the tunnel closes. */
static void ovpn_client_enter_closed(struct ovpn_client *c)
{
    ovpn_client_set_state(c, ~0u, OVPN_CLIENT_DONE);
}

/* The actions the timers may take (timers.h). */
static void ovpn_client_drop_key(struct ovpn_client *c, struct ovpn_ks *ks)
{
    (void)c;
    ovpn_ks_free(ks);
}

static const struct ovpn_timer_actions ovpn_client_timer_actions = {
    .retransmit = ovpn_client_flush,
    .drop_key = ovpn_client_drop_key,
    .restart = ovpn_client_enter_restart,
    .new_session = ovpn_client_enter_new_session,
    .connect_timed_out = ovpn_client_connect_timed_out,
    .resume = ovpn_client_resume,
    .ping = ovpn_client_send_ping,
    .push_request = ovpn_client_send_push_request,
    .renegotiate = ovpn_client_renegotiate,
    .tls_exit = ovpn_client_enter_tls_exit,
};

/* --- the tunnel interface --- */

static int ovpn_client_send(struct tunnel *t, const uint8_t *pkt, size_t len)
{
    struct ovpn_client *c = (struct ovpn_client *)t;
    if (!ovpn_client_data_flows(c)) {
        /* Reconnecting: TCP inside retransmits; say so in the counters, not per packet. */
        c->tx_dropped++;
        return -ENETDOWN;
    }
    int rc = ovpn_client_send_data(c, pkt, len);
    if (rc < 0)
        return rc;
    c->tx_ip_packets++;
    c->tx_bytes += len;
    return c->congested ? 1 : 0;
}

static int ovpn_client_start(struct tunnel *t)
{
    struct ovpn_client *c = (struct ovpn_client *)t;
    int rc = ovpn_timers_start(&c->timers);
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
    if (c->auth_token_user) {
        OPENSSL_cleanse(c->auth_token_user, strlen(c->auth_token_user));
        free(c->auth_token_user);
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

/* The last handle is closed: memory goes, then the owner hears. */
static void ovpn_client_closed(struct ovpn_client *c)
{
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

static void ovpn_client_get_stats(const struct tunnel *t, struct tunnel_stats *out)
{
    const struct ovpn_client *c = (const struct ovpn_client *)t;
    switch (c->state) {
    case OVPN_CLIENT_UP:
        out->state = TUNNEL_STATE_UP;
        break;
    case OVPN_CLIENT_DONE:
        out->state = TUNNEL_STATE_DOWN;
        break;
    default:
        /* A first attempt that failed is a reconnect too: the wait before the next one says so. */
        out->state = c->was_up || c->attempts ? TUNNEL_STATE_RECONNECTING : TUNNEL_STATE_CONNECTING;
        break;
    }
    out->packets_in = c->rx_ip_packets;
    out->packets_out = c->tx_ip_packets;
    out->bytes_in = c->rx_bytes;
    out->bytes_out = c->tx_bytes;
    out->packets_refused = c->tx_dropped;
    memcpy(out->reconnects, c->reconnects, sizeof(out->reconnects));
    out->renegotiations = c->renegotiations;
}

/* Tells the server a session that is up over UDP is ending (explicit-exit-notify), so that it
 * frees our address at once rather than after its ping-restart. Only when we leave for good, as
 * openvpn 2.6 sends it only on SIGTERM or SIGINT (sig.c process_sigterm): its restarts (SIGHUP,
 * SIGUSR1, ping-restart, a server's RESTART or EXIT) and ours (a reload, a reconnect) send none.
 * A server that pushed "protocol-flags cc-exit" (2.6, answering the IV_PROTO bit we announce) is
 * told with an EXIT control message, as openvpn 2.6 tells it: one that moved its data channel into
 * the kernel (DCO) ignores an exit sent as data. Older servers (2.4, 2.5) get OCC EXIT packets on
 * the data channel. Either goes out the given number of times (five at most) in a row, and the
 * close does not wait for an answer. */
static void ovpn_client_exit_notify(struct ovpn_client *c)
{
    /* A pushed explicit-exit-notify stands over the config's, as in openvpn 2.6. */
    unsigned want = c->push.explicit_exit_notify_set ? c->push.explicit_exit_notify : c->cfg->explicit_exit_notify;
    if (c->state != OVPN_CLIENT_UP || c->proto != OVPN_PROTO_UDP || !want)
        return;
    unsigned copies = want < 5 ? want : 5;
    if (c->push.cc_exit) {
        int rc = ovpn_client_send_exit(c, copies);
        if (rc == 0)
            return;
        v2s_debug("openvpn: exit notice over the control channel not sent (%s); sending it as data",
                  uv_strerror(rc));
    }
    uint8_t occ[sizeof(ovpn_occ_magic) + 1];
    memcpy(occ, ovpn_occ_magic, sizeof(ovpn_occ_magic));
    occ[sizeof(ovpn_occ_magic)] = OVPN_OCC_EXIT;
    for (unsigned i = 0; i < copies; i++)
        ovpn_client_send_data(c, occ, sizeof(occ));
}

/* Tells the server we are leaving (explicit-exit-notify, UDP only), then closes. */
static void ovpn_client_close(struct tunnel *t, void (*cb)(struct tunnel *t))
{
    struct ovpn_client *c = (struct ovpn_client *)t;
    ovpn_client_exit_notify(c);
    ovpn_client_log_stats(t);
    c->closing = 1;
    c->close_cb = cb;
    ovpn_client_enter_closed(c);
    ovpn_client_close_link(c);
    ovpn_timers_stop(&c->timers);
    if (c->gai_active) {
        /* The lookup's callback runs either way (cancelled or done) and finishes the close. */
        uv_cancel((uv_req_t *)&c->gai);
        return;
    }
    ovpn_timers_close(&c->timers, ovpn_client_closed);
}

/* The lookup ended after ovpn_client_close(): the last step of the close (link.c). */
void ovpn_client_close_after_lookup(struct ovpn_client *c)
{
    ovpn_timers_close(&c->timers, ovpn_client_closed);
}

static const struct tunnel_ops ovpn_client_ops = {
    .start = ovpn_client_start,
    .send = ovpn_client_send,
    .close = ovpn_client_close,
    .log_stats = ovpn_client_log_stats,
    .get_stats = ovpn_client_get_stats,
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
    OPENSSL_cleanse(cfg->tls_crypt_v2.key, sizeof(cfg->tls_crypt_v2.key));
}

/* What a client needs made from a config before it can run on it, made before anything of a
 * running client changes (ovpn_client_reload): checks, the TLS context, the control channel's
 * keys and the order of the remotes. */
struct ovpn_client_setup {
    struct ovpn_tls_ctx *tls_ctx;
    struct ovpn_wrap wrap_keys;
    size_t *order;
};

static void ovpn_client_setup_free(struct ovpn_client_setup *s)
{
    ovpn_tls_ctx_free(s->tls_ctx);
    ovpn_wrap_clear(&s->wrap_keys);
    free(s->order);
    memset(s, 0, sizeof(*s));
}

/* 0, or as ovpn_client_new() fails, with nothing left to free in s; cfg stays the caller's. */
static int ovpn_client_setup_new(struct ovpn_client_setup *s, struct ovpn_config *cfg, char *err, size_t errcap)
{
    int rc = -EINVAL;
    memset(s, 0, sizeof(*s));
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
    if ((rc = ovpn_tls_ctx_new(&s->tls_ctx, cfg, err, errcap)) < 0)
        goto fail;
    /* A tls-crypt-v2 client key is used as a tls-crypt key is, sending with its second half. */
    if (cfg->has_tls_crypt_v2) {
        rc = ovpn_wrap_init(&s->wrap_keys, OVPN_WRAP_CRYPT, cfg->tls_crypt_v2.key, 1, NULL);
        if (rc == 0)
            rc = ovpn_wrap_set_wkc(&s->wrap_keys, cfg->tls_crypt_v2.wkc, cfg->tls_crypt_v2.wkc_len);
    } else if (cfg->has_tls_crypt)
        rc = ovpn_wrap_init(&s->wrap_keys, OVPN_WRAP_CRYPT, cfg->tls_crypt_key, 1, NULL);
    else if (cfg->has_tls_auth)
        rc = ovpn_wrap_init(&s->wrap_keys, OVPN_WRAP_AUTH, cfg->tls_auth_key, cfg->key_direction, cfg->auth);
    else
        rc = ovpn_wrap_init(&s->wrap_keys, OVPN_WRAP_NONE, NULL, -1, NULL);
    if (rc < 0) {
        snprintf(err, errcap, "tls-auth: auth %s is not a digest OpenSSL knows", cfg->auth);
        rc = -EINVAL;
        goto fail;
    }
    if (!(s->order = calloc(cfg->n_remotes, sizeof(*s->order)))) {
        snprintf(err, errcap, "out of memory");
        rc = -EINVAL;
        goto fail;
    }
    ovpn_client_forget_key_files(cfg);
    return 0;
fail:
    ovpn_client_setup_free(s);
    return rc;
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
    c->retry_count = 1; /* the first attempt */
    ovpn_push_init(&c->push);
    c->push.topology = cfg->topology;
    struct ovpn_client_setup s;
    int rc = ovpn_client_setup_new(&s, cfg, err, errcap);
    if (rc < 0) {
        ovpn_client_free(c);
        return rc;
    }
    c->tls_ctx = s.tls_ctx;
    c->wrap_keys = s.wrap_keys;
    OPENSSL_cleanse(&s.wrap_keys, sizeof(s.wrap_keys));
    c->order = s.order;
    c->buf = malloc(OVPN_BUF);
    c->buf2 = malloc(OVPN_BUF);
    c->buf3 = malloc(OVPN_BUF);
    c->rx = malloc(OVPN_BUF);
    c->ctl = malloc(OVPN_BUF);
    if (!c->buf || !c->buf2 || !c->buf3 || !c->rx || !c->ctl) {
        snprintf(err, errcap, "out of memory");
        ovpn_client_free(c);
        return -EINVAL;
    }
    ovpn_client_order_remotes(c);
    c->loop = loop;
    c->t.ops = &ovpn_client_ops;
    c->t.ev = *ev;
    c->link = &ovpn_link_transport_ops;
    ovpn_timers_init(&c->timers, loop, c, &ovpn_client_timer_actions);
    *out = &c->t;
    return 0;
}

static void ovpn_client_forget_token(char **token)
{
    if (*token) {
        OPENSSL_cleanse(*token, strlen(*token));
        free(*token);
        *token = NULL;
    }
}

int ovpn_client_reload(struct tunnel *t, struct ovpn_config *cfg, char *err, size_t errcap)
{
    struct ovpn_client *c = (struct ovpn_client *)t;
    struct ovpn_client_setup s;
    int rc = -ESHUTDOWN;
    if (c->closing || c->state == OVPN_CLIENT_DONE) {
        snprintf(err, errcap, "the tunnel is down for good");
        goto fail;
    }
    if ((rc = ovpn_client_setup_new(&s, cfg, err, errcap)) < 0)
        goto fail;
    /* Nothing fails from here: the session on the old config ends, then the new config, its TLS
     * context and keys take the old ones' place. No exit notification: this is openvpn's SIGHUP,
     * a restart, on which it sends none (ovpn_client_exit_notify). */
    int started = c->state != OVPN_CLIENT_IDLE;
    ovpn_client_close_link(c);
    ovpn_tls_ctx_free(c->tls_ctx);
    c->tls_ctx = s.tls_ctx;
    ovpn_wrap_clear(&c->wrap_keys);
    c->wrap_keys = s.wrap_keys;
    OPENSSL_cleanse(&s.wrap_keys, sizeof(s.wrap_keys));
    free(c->order);
    c->order = s.order;
    ovpn_config_free(c->cfg);
    free(c->cfg);
    c->cfg = cfg;
    c->push.topology = cfg->topology;
    /* A token the old server issued stands for the old credentials: the new ones are sent. */
    ovpn_client_forget_token(&c->auth_token);
    ovpn_client_forget_token(&c->auth_token_user);
    if (c->addrs) {
        uv_freeaddrinfo(c->addrs);
        c->addrs = c->addr_next = NULL;
    }
    if (c->gai_active) {
        /* A lookup of the old config's remote: its answer is dropped (link.c), and the next
         * attempt waits for it to end, since its request cannot be reused before. */
        c->lookup_stale = 1;
        uv_cancel((uv_req_t *)&c->gai);
    }
    c->remote = 0;
    c->attempts = 0;
    c->retry_count = 1;
    c->push_rejects = 0;
    c->server_backoff = 0;
    c->next_pick = OVPN_PICK_AUTO;
    ovpn_client_order_remotes(c);
    if (started)
        ovpn_client_enter_reloaded(c);
    return 0;
fail:
    ovpn_config_free(cfg);
    free(cfg);
    return rc;
}
