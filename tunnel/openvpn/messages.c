/* What the server says on the control channel, once TLS has it in the clear: PUSH_REPLY (the
 * first, and late ones that renew the auth-token), AUTH_FAILED and AUTH_FAILED,TEMP, RESTART,
 * HALT, EXIT, AUTH_PENDING and INFO; and what a refused push does. session.c reads the messages
 * and calls ovpn_client_message() with each. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "base/log.h"
#include "tunnel/openvpn/internal.h"

enum {
    OVPN_AUTH_RETRY_WAIT_S = 10, /* auth-retry's wait after AUTH_FAILED, as OpenVPN's */
};

/* Replaces a secret string (NULL: forgets it), wiping the old one. */
static void ovpn_client_set_secret(char **dst, const char *value)
{
    if (*dst) {
        OPENSSL_cleanse(*dst, strlen(*dst));
        free(*dst);
    }
    *dst = value ? strdup(value) : NULL;
}

/* Replaces the auth-token and, when user is given, the user it is for (auth-token-user); NULL
 * for token forgets both. A token renewed alone (a 2.6 server pushes only "auth-token" after a
 * renegotiation) stays with the user pushed before, as OpenVPN keeps them apart. */
void ovpn_client_set_token(struct ovpn_client *c, const char *token, const char *user)
{
    ovpn_client_set_secret(&c->auth_token, token);
    if (!token || user)
        ovpn_client_set_secret(&c->auth_token_user, user);
}

/* A push the client refused: a pull-filter reject, a PUSH_REPLY it cannot read or use, a cipher
 * it cannot agree on. OpenVPN restarts (process-push-msg-failed), which goes to the remote's next
 * address or the next remote; against one server that repeats forever, so once every remote in
 * turn ended its session this way the client gives up (exit status 3). A remote counts when its
 * last address failed, so one with several addresses is not mistaken for several remotes. */
void ovpn_client_push_failed(struct ovpn_client *c, const char *why)
{
    char msg[800];
    int next_addr = c->addr_next != NULL && c->state != OVPN_CLIENT_UP; /* as enter_restart picks */
    if (!next_addr && ++c->push_rejects >= c->cfg->n_remotes) {
        snprintf(msg, sizeof(msg), "%s%s", why, c->cfg->n_remotes > 1 ? " (by every remote in turn)" : "");
        ovpn_client_enter_failed(c, TUNNEL_DOWN_ERROR, msg);
        return;
    }
    /* enter_restart says "trying the next address" itself. */
    snprintf(msg, sizeof(msg), "%s%s", why, next_addr ? "" : "; trying the next remote");
    c->next_pick = OVPN_PICK_NEXT; /* a session that was up would try its remote again */
    ovpn_client_enter_restart(c, msg);
}

/* The flags of "AUTH_FAILED,TEMP[flags]:reason" (flags at '[', end at its ']' or NULL), as
 * OpenVPN 2.6 reads them (options_util.c parse_auth_failed_temp): "backoff N" the least wait
 * before the next attempt, "advance no", "addr" or "remote" where it goes; without one the same
 * remote again. Unknown flags are skipped. Returns where the next attempt goes. */
static enum ovpn_client_pick ovpn_client_temp_flags(struct ovpn_client *c, const char *flags, const char *end)
{
    enum ovpn_client_pick pick = OVPN_PICK_SAME;
    for (const char *f = flags + 1; end && f < end;) {
        const char *comma = memchr(f, ',', (size_t)(end - f));
        size_t len = (size_t)((comma ? comma : end) - f);
        if (len > 8 && strncmp(f, "backoff ", 8) == 0) {
            unsigned long s = strtoul(f + 8, NULL, 10);
            c->server_backoff = s > UINT32_MAX ? UINT32_MAX : (unsigned)s;
        } else if (len == 10 && strncmp(f, "advance no", 10) == 0)
            pick = OVPN_PICK_SAME;
        else if (len == 12 && strncmp(f, "advance addr", 12) == 0)
            pick = OVPN_PICK_NEXT;
        else if (len == 14 && strncmp(f, "advance remote", 14) == 0)
            pick = OVPN_PICK_NEXT_REMOTE;
        f += len + 1;
    }
    return pick;
}

void ovpn_client_message(struct ovpn_client *c, struct ovpn_ks *ks, const char *msg)
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
                ovpn_client_set_token(c, late.auth_token, late.auth_token_user);
            ovpn_push_free(&late);
            if (rc == -EPERM)
                ovpn_client_push_failed(c, err);
            else if (rc < 0)
                v2s_warn("openvpn: a PUSH_REPLY after the tunnel came up could not be read (%s); "
                         "ignored, the session goes on", err);
            return;
        }
        if (c->state != OVPN_CLIENT_PUSH)
            return;
        rc = ovpn_push_parse_filtered(&c->push, msg, cfg->pull_filters, cfg->n_pull_filters, err, sizeof(err));
        if (rc == -EPERM) {
            ovpn_client_push_failed(c, err);
            return;
        }
        if (rc < 0) {
            char why[400];
            snprintf(why, sizeof(why), "bad PUSH_REPLY: %s", err);
            ovpn_client_push_failed(c, why);
            return;
        }
        if (c->push.continuation != 2)
            ovpn_client_pushed(c);
        return;
    }
    if (strncmp(msg, "AUTH_FAILED,TEMP", 16) == 0) {
        /* A refusal for now (OpenVPN 2.6: the server is full, its authentication backend is
         * down), no verdict on the credentials: OpenVPN reconnects (push.c, a SIGUSR1) after
         * the backoff the server names, "AUTH_FAILED,TEMP[backoff 30,advance no]:reason".
         * Giving up here ended the process with the exit status of a wrong password. */
        const char *flags = msg + 16, *end = flags[0] == '[' ? strchr(flags, ']') : NULL;
        const char *reason = end ? end + 1 : flags;
        c->next_pick = ovpn_client_temp_flags(c, flags, end);
        if (reason[0] == ':')
            reason++;
        while (reason[0] == ' ')
            reason++; /* OpenVPN's own example: "TEMP[backoff 42,advance no]: No free IP addresses" */
        char shown[200], why[300];
        snprintf(why, sizeof(why), "the server refused us for now%s%s", reason[0] ? ": " : "",
                 v2s_shown(reason, shown, sizeof(shown)));
        ovpn_client_enter_restart(c, why);
        return;
    }
    if (strncmp(msg, "AUTH_FAILED", 11) == 0) {
        char why[300];
        /* Whatever follows, on the same remote (OpenVPN push.c receive_auth_failed: no_advance):
         * another server of the list would be asked with the same credentials, and it was
         * this one that refused them. */
        c->next_pick = OVPN_PICK_SAME;
        if (c->auth_token) {
            /* The token expired or the server forgot it: reconnect once with the password. */
            ovpn_client_set_token(c, NULL, NULL);
            ovpn_client_enter_restart(c, "the server refused our auth-token; retrying with the password");
            return;
        }
        char reason[200];
        snprintf(why, sizeof(why), "authentication failed%s%s%s", msg[11] == ',' ? ": " : "",
                 msg[11] == ',' ? v2s_shown(msg + 12, reason, sizeof(reason)) : "",
                 cfg->auth_retry ? " (auth-retry)" : "");
        /* auth-retry nointeract: OpenVPN reconnects (push.c receive_auth_failed, a SIGUSR1) with
         * the same credentials, for a server whose authentication backend failed for a while,
         * 10 s later at the soonest (init.c socket_restart_pause), not once a second. */
        if (cfg->auth_retry) {
            /* interact: OpenVPN forgets the credentials and reads its auth-user-pass file again
             * (it prompts only for what no file gives), so a password fixed in the file since is
             * the one tried next; the refused one went again before. */
            if (cfg->auth_retry == OVPN_AUTH_RETRY_INTERACT && c->cfg->auth_file)
                ovpn_client_set_secret(&c->cfg->password, NULL);
            c->server_backoff = OVPN_AUTH_RETRY_WAIT_S;
            ovpn_client_enter_restart(c, why);
        } else
            ovpn_client_enter_failed(c, TUNNEL_DOWN_AUTH, why);
        return;
    }
    if (strncmp(msg, "RESTART", 7) == 0 || strncmp(msg, "HALT", 4) == 0) {
        /* "RESTART,[flags]reason" or "HALT,reason" (OpenVPN push.c server_pushed_signal): the
         * reason goes to the log, escaped; the flag N sends us to the next remote at once. */
        int restart = msg[0] == 'R';
        const char *text = msg + (restart ? 7 : 4);
        text = text[0] == ',' ? text + 1 : "";
        const char *end = text[0] == '[' ? strchr(text, ']') : NULL;
        if (end && restart && memchr(text, 'N', (size_t)(end - text)))
            c->next_pick = OVPN_PICK_NEXT;
        /* Without the flag P ("preserve") the server wants the credentials asked for again:
         * OpenVPN forgets its username and password (ssl_purge_auth), and reads the
         * auth-user-pass file again for the next attempt. So do we, and a password changed in
         * the file since the start (a new one-time password, a rotated secret) is the one sent
         * next; the old one went again. Inline credentials have nothing to be read from and
         * stay; an auth-token stays too, as OpenVPN keeps it. */
        if (restart && !(end && memchr(text, 'P', (size_t)(end - text))) && c->cfg->auth_file)
            ovpn_client_set_secret(&c->cfg->password, NULL);
        char shown[200], why[300];
        v2s_shown(text, shown, sizeof(shown));
        if (restart) {
            snprintf(why, sizeof(why), "the server asked for a restart%s%s%s", shown[0] ? " (" : "", shown,
                     shown[0] ? ")" : "");
            ovpn_client_enter_restart(c, why);
        } else {
            snprintf(why, sizeof(why), "the server told us to stop (HALT)%s%s", shown[0] ? ": " : "", shown);
            ovpn_client_enter_failed(c, TUNNEL_DOWN_CLOSED, why);
        }
        return;
    }
    if (strncmp(msg, "EXIT", 4) == 0) {
        ovpn_client_enter_restart(c, "the server is going away");
        return;
    }
    /* What the server says is shown escaped: it must not forge log lines or reach a terminal. */
    char shown[256];
    if (strncmp(msg, "AUTH_PENDING", 12) == 0) {
        v2s_info("openvpn: authentication pending (%s)", v2s_shown(msg, shown, sizeof(shown)));
        /* The server takes its time: a fresh hand-window, as long as the time it gives the user
         * in "AUTH_PENDING,timeout N[,...]" (OpenVPN push.c parse_auth_pending_keywords). */
        unsigned timeout = 0;
        const char *k = msg[12] == ',' ? msg + 13 : NULL;
        while (k) {
            char *end;
            if (strncmp(k, "timeout ", 8) == 0 && k[8] >= '0' && k[8] <= '9') {
                unsigned long v = strtoul(k + 8, &end, 10);
                if (*end == ',' || *end == '\0')
                    timeout = v > 86400 ? 86400 : (unsigned)v; /* the client's limit is lower */
            }
            k = strchr(k, ',');
            k = k ? k + 1 : NULL;
        }
        ovpn_timers_auth_pending(&c->timers, ovpn_ks_slot(c, ks), timeout);
        return;
    }
    if (strncmp(msg, "INFO", 4) == 0) {
        /* INFO_PRE,WEB_AUTH::URL or OPEN_URL:URL is the login page of a pending authentication,
         * and the user needs all of it: such URLs (a SAML request, an OAuth state) run to several
         * hundred bytes, and the 256 shown cut them. As much as a log line holds now. */
        char info[960];
        v2s_info("openvpn: server says %s", v2s_shown(msg, info, sizeof(info)));
        return;
    }
    v2s_debug("openvpn: control message ignored: %s", v2s_shown(msg, shown, 64));
}
