/* The OpenVPN client's link to its server: resolving the current remote, connecting to each of
 * its addresses in turn, the transport's events (a connected link starts a session, packets go to
 * the control or data path), and resuming after the reconnect wait. The back-off policy is
 * ovpn_client_enter_restart() (client.c); the waits themselves are timers (timers.c). */
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <uv.h>

#include "base/log.h"
#include "tunnel/openvpn/internal.h"
#include "tunnel/openvpn/transport.h"

const struct ovpn_link_ops ovpn_link_transport_ops = {
    .open = ovpn_transport_open,
    .send = ovpn_transport_send,
    .close = ovpn_transport_close,
    .mss = ovpn_transport_mss,
};

void ovpn_client_link_send(struct ovpn_client *c, const uint8_t *pkt, size_t len)
{
    if (!c->transport)
        return;
    int rc = c->link->send(c->transport, pkt, len);
    if (rc == 1)
        c->congested = 1;
    if (rc >= 0)
        ovpn_timers_packet_sent(&c->timers);
}

void ovpn_client_close_link(struct ovpn_client *c)
{
    if (c->transport) {
        c->link->close(c->transport);
        c->transport = NULL;
    }
    ovpn_client_forget_session(c);
    c->resumed = 0; /* the next link may reach another server, or a server that forgot us */
}

void ovpn_client_forget_session(struct ovpn_client *c)
{
    for (int i = 0; i < OVPN_CLIENT_KEYS; i++)
        ovpn_ks_free(&c->keys[i]);
    c->primary = -1;
    c->have_remote_sid = 0;
    /* A congested old link never drains: the stack hears "writable" when the tunnel is up again. */
    c->congested = 0;
    ovpn_wrap_clear(&c->wrap);
    ovpn_push_free(&c->push);
    ovpn_push_init(&c->push);
    /* Each session reads its push from the config's topology, as OpenVPN restores its options
     * before every pull: a topology an earlier server pushed does not carry over. */
    c->push.topology = c->cfg->topology;
}

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
    else
        v2s_debug("openvpn: packet with opcode %u, which we do not speak, dropped", op);
}

static void ovpn_client_on_writable(void *arg)
{
    struct ovpn_client *c = arg;
    if (c->congested) {
        c->congested = 0;
        c->t.ev.writable(c->t.ev.arg);
    }
}

/* The link is there: the session starts. */
static void ovpn_client_on_connected(void *arg)
{
    struct ovpn_client *c = arg;
    if (ovpn_client_enter_handshake(c) == 0)
        ovpn_client_session_start(c);
}

static void ovpn_client_on_failed(void *arg, int status, const char *why)
{
    struct ovpn_client *c = arg;
    char msg[300];
    const struct ovpn_remote *r = &c->cfg->remotes[c->order[c->remote]];
    snprintf(msg, sizeof(msg), "%s %s:%s: %s", r->proto == OVPN_PROTO_TCP ? "tcp" : "udp", r->host, r->port, why);
    /* Refused is reported only while nothing was heard from the server (transport.c): over UDP
     * that is the handshake's first packet drawing a port unreachable, a link that never opened,
     * as a refused TCP connect is. */
    if (status == UV_ECONNREFUSED)
        ovpn_client_enter_restart_as(c, TUNNEL_RECONNECT_CONNECT, msg);
    else
        ovpn_client_enter_restart(c, msg);
}

void ovpn_client_connect_timed_out(struct ovpn_client *c)
{
    ovpn_client_on_failed(c, UV_ETIMEDOUT, "connection timed out");
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
        if (c->link->open(&c->transport, c->loop, ai->ai_addr, r->proto, &e) == 0) {
            ovpn_client_enter_connecting(c);
            c->proto = r->proto;
            c->remote_family = ai->ai_family;
            return;
        }
    }
    ovpn_client_enter_restart(c, "no address of the server could be used");
}

static void ovpn_client_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct ovpn_client *c = req->data;
    c->gai_active = 0;
    if (c->closing) {
        /* ovpn_client_close() left the last step to us: the lookup had to end first. */
        uv_freeaddrinfo(res);
        ovpn_client_close_after_lookup(c);
        return;
    }
    if (c->lookup_stale) {
        /* A reload replaced the remote this looked up; the reconnect wait starts its own. */
        c->lookup_stale = 0;
        uv_freeaddrinfo(res);
        return;
    }
    const struct ovpn_remote *r = &c->cfg->remotes[c->order[c->remote]];
    if (status < 0 || !res) {
        char why[300];
        snprintf(why, sizeof(why), "cannot resolve %s: %s", r->host, uv_strerror(status));
        ovpn_client_enter_restart(c, why);
        return;
    }
    c->addrs = c->addr_next = res;
    ovpn_client_open_addr(c);
}

/* Starts the next connection attempt: resolve the current remote. */
void ovpn_client_start_attempt(struct ovpn_client *c)
{
    const struct ovpn_remote *r = &c->cfg->remotes[c->order[c->remote]];
    struct addrinfo hints = {
        .ai_family = r->family ? r->family : AF_UNSPEC,
        .ai_socktype = r->proto == OVPN_PROTO_TCP ? SOCK_STREAM : SOCK_DGRAM,
    };
    if (c->gai_active)
        return; /* a lookup a reload made stale has not ended: the next tick tries again */
    if (ovpn_client_enter_resolving(c) < 0)
        return;
    c->gai.data = c;
    int rc = uv_getaddrinfo(c->loop, &c->gai, ovpn_client_resolved, r->host, r->port, &hints);
    if (rc < 0) {
        char why[300];
        snprintf(why, sizeof(why), "cannot resolve %s: %s", r->host, uv_strerror(rc));
        ovpn_client_enter_restart(c, why);
        return;
    }
    c->gai_active = 1;
}

void ovpn_client_resume(struct ovpn_client *c, int next_addr)
{
    if (next_addr)
        ovpn_client_open_addr(c);
    else
        ovpn_client_start_attempt(c);
}
