/* The SOCKS listener: reads the greeting and request with the push parser, dials, answers with the
 * RFC 1928 reply code that says what happened, then hands the client socket to the relay.
 *
 * With credentials (--socks-auth), a client logs in first: the only method picked is
 * username/password (RFC 1929), so a client offering only "no authentication" is answered 0xFF
 * and closed, a wrong user or password 0x01 0x01 and closed, and a SOCKS4 request, which has no
 * password to carry, is rejected (91). Each refusal is logged through base/credentials.h, rate
 * limited. The login is part of the handshake, so the handshake timeout covers it.
 *
 * What a client can hold, and for how long:
 *   - a connection holds a slot of the listener's cap and of the cap shared by every listener
 *     (base/conn_limit.h) from accept until its last handle is closed, relaying included;
 *   - a client that has not sent a complete request handshake_timeout_ms after accept is dropped,
 *     however many bytes it sent by then: the timer is not re-armed by each read, so one byte a
 *     second cannot hold a slot for longer than that;
 *   - at the cap, a new connection is accepted and reset at once. The other way, leaving it in the
 *     kernel's accept queue until a slot frees, was turned down: the client's connect() has
 *     already succeeded there, so it hangs instead of failing; once the queue (511) is full, new
 *     SYNs are dropped and even clients that would get a slot a moment later back off for
 *     seconds; and connections that waited are served stale. Draining the queue keeps it empty,
 *     and a refused client learns at once (ECONNRESET). A reset rather than a FIN, so that our
 *     side keeps no TIME_WAIT for each refusal in a flood.
 *
 * The three SOCKS5 commands:
 *   - CONNECT: dialed through the routed outbound, then bridged by it.
 *   - UDP ASSOCIATE: a relay (socks/udp_relay.c) for as long as the TCP connection lasts, which
 *     keeps its slot of the caps meanwhile; at most udp_max_assocs per listener. The TCP side is
 *     read only to learn its end; bytes the client sends on it are ignored.
 *   - BIND: a port in the tunnel (socks/bind.c) for one connection back from DST.ADDR, which the
 *     router must send into the tunnel (else "not allowed"); the first reply names the tunnel's
 *     address and the port, the second the peer once it connected, within the connect timeout
 *     (else "TTL expired"); then the stack's bridge relays. SOCKS4's BIND is refused (91): no
 *     client we know uses it, and its reply cannot name a tunnel address of IPv6. */
#include "socks/server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <uv.h>

#include "base/credentials.h"
#include "base/list.h"
#include "base/log.h"
#include "route/outbound.h"
#include "route/listener.h"
#include "route/router.h"
#include "socks/bind.h"
#include "socks/socks5.h"
#include "socks/udp_relay.h"
#include "stack/stack.h"
#include "stack/tcp.h"

enum {
    SOCKS_READ_BUF = 16 * 1024,
    SOCKS_MAX_EARLY = 64 * 1024,
};

enum socks_conn_state {
    SOCKS_CONN_HANDSHAKE, /* reading greeting and request */
    SOCKS_CONN_DIALING,
    SOCKS_CONN_RELAYING,  /* the relay owns the client handle */
    SOCKS_CONN_UDP,       /* UDP ASSOCIATE: the relay runs until the client's TCP connection ends */
    SOCKS_CONN_BIND_WAIT, /* BIND: listening in the tunnel, the first reply sent */
    SOCKS_CONN_BIND_READY, /* BIND: the peer connected; the timer (at 0) bridges outside lwIP's call */
    SOCKS_CONN_CLOSING,
};

struct socks_conn {
    struct socks_server *srv;
    struct v2s_list node; /* on the server's conns */
    uv_tcp_t client;
    uv_timer_t timer;
    int handles_open;
    enum socks_conn_state state;
    struct socks5_parser parser;
    struct outbound_conn *dial;
    uint8_t *early; /* bytes the client sent after its request */
    size_t early_len;
    uv_write_t method_req; /* the method choice, which may still be in flight at the reply */
    uint8_t method_reply[2];
    uv_write_t auth_req;   /* the login's answer, likewise */
    uint8_t auth_reply[2];
    uv_write_t write_req;
    uint8_t reply[32];
    struct socks_udp_relay *udp;  /* UDP ASSOCIATE */
    struct socks_bind *bind;      /* BIND, while listening */
    struct stack_tcp *bind_tcp;   /* BIND: the peer's connection, until it is bridged */
    struct v2s_addr bind_from;
    uint16_t bind_port;
    char peer[V2S_ADDR_STRLEN];
    char target[300];
    char label[OUTBOUND_LABEL_MAX]; /* BIND's relay, for its open and closed lines */
};

struct socks_server {
    struct outbound *out;
    unsigned connect_timeout_ms;
    struct listener l;         /* the socket, the caps, the refusal, the close */
    struct v2s_list conns;
    uint8_t *read_buf;
    unsigned handshake_timeout_ms;
    struct v2s_credentials *creds; /* NULL: no authentication */
    unsigned udp_idle_ms;
    unsigned udp_max;
    unsigned n_udp;            /* associations open */
    int udp_cap_logged;
    uint8_t *udp_buf;          /* SOCKS_UDP_BUF: every relay's receive buffer, from the first one */
    struct stack *stack;       /* NULL: no BIND */
    const struct router *router;
    char name[V2S_ADDR_STRLEN + 32]; /* "SOCKS listener ADDR:PORT", for the log */
};

static int socks_server_busy(void *arg)
{
    struct socks_server *srv = arg;
    return !v2s_list_empty(&srv->conns);
}

static void socks_server_free(void *arg)
{
    struct socks_server *srv = arg;
    free(srv->read_buf);
    free(srv->udp_buf);
    free(srv);
}

static void socks_conn_free(struct socks_conn *c)
{
    struct socks_server *srv = c->srv;
    v2s_list_remove(&c->node);
    listener_give(&srv->l);
    socks5_parse_forget_password(&c->parser);
    free(c->early);
    free(c);
    listener_maybe_free(&srv->l);
}

static void socks_conn_handle_closed(uv_handle_t *h)
{
    struct socks_conn *c = h->data;
    if (--c->handles_open == 0)
        socks_conn_free(c);
}

static void socks_conn_udp_closed(void *arg)
{
    struct socks_conn *c = arg;
    if (--c->handles_open == 0)
        socks_conn_free(c);
}

/* Ends a connection the relay does not own (never from inside the stack's accept callback). */
static void socks_conn_close(struct socks_conn *c)
{
    if (c->state == SOCKS_CONN_CLOSING)
        return;
    if (c->state == SOCKS_CONN_DIALING && c->dial)
        outbound_cancel(c->dial);
    c->dial = NULL;
    c->state = SOCKS_CONN_CLOSING;
    c->handles_open = 2;
    if (c->bind)
        socks_bind_close(c->bind);
    c->bind = NULL;
    if (c->bind_tcp)
        stack_tcp_cancel(c->bind_tcp); /* the peer gets a reset */
    c->bind_tcp = NULL;
    if (c->udp) {
        c->handles_open++;
        c->srv->n_udp--;
        c->srv->udp_cap_logged = 0;
        socks_udp_relay_close(c->udp, socks_conn_udp_closed, c);
        c->udp = NULL;
    }
    uv_close((uv_handle_t *)&c->timer, socks_conn_handle_closed);
    uv_close((uv_handle_t *)&c->client, socks_conn_handle_closed);
}

/* The relay takes the client handle over: the timer has nothing left to time, so it is closed
 * now. Closed when the relay ends instead, its close would start from inside the relay's close
 * callback, too late for that loop iteration's close phase, and the next iteration would poll
 * without blocking for it: an epoll_wait() more per connection. c lives until both handles are
 * closed. */
static void socks_conn_relay_start(struct socks_conn *c)
{
    c->state = SOCKS_CONN_RELAYING;
    c->handles_open = 2; /* the timer, and the client handle that the relay closes */
    uv_close((uv_handle_t *)&c->timer, socks_conn_handle_closed);
}

/* The relay closed the client handle. */
static void socks_conn_relay_done(void *arg)
{
    struct socks_conn *c = arg;
    c->state = SOCKS_CONN_CLOSING;
    if (--c->handles_open == 0)
        socks_conn_free(c);
}

static void socks_conn_write_then_close_cb(uv_write_t *req, int status)
{
    (void)status;
    socks_conn_close(req->data);
}

/* Sends a reply that ends the conversation, then closes. */
static void socks_conn_reply_and_close(struct socks_conn *c, uint8_t rep)
{
    size_t len = c->parser.version == SOCKS4_VERSION
                     ? socks4_build_reply(c->reply, rep == SOCKS5_REP_SUCCEEDED ? SOCKS4_REP_GRANTED
                                                                                : SOCKS4_REP_REJECTED,
                                          NULL, 0)
                     : socks5_build_reply(c->reply, rep, NULL, 0);
    uv_buf_t b = uv_buf_init((char *)c->reply, (unsigned)len);
    c->write_req.data = c;
    uv_read_stop((uv_stream_t *)&c->client);
    if (uv_write(&c->write_req, (uv_stream_t *)&c->client, &b, 1, socks_conn_write_then_close_cb) < 0)
        socks_conn_close(c);
}

/* What the client is told when the connection could not be opened. Besides the errors the
 * tunnel's path gives, a direct connect can fail with what the host's kernel says: EAFNOSUPPORT
 * (a host without IPv6 at all), ENONET (ICMP "host isolated"), EHOSTDOWN (ICMP "host unknown"),
 * ECONNRESET (a reset while connecting); each is the unreachable network, host or refusal it
 * names, not the "general failure" of a proxy that broke. */
static uint8_t socks_reply_for(int status)
{
    switch (status) {
    case UV_ECONNREFUSED:
    case UV_ECONNRESET: return SOCKS5_REP_REFUSED;
    case UV_EHOSTUNREACH:
    case UV_EHOSTDOWN:
    case UV_EAI_NONAME:
    case UV_EAI_AGAIN:
    case UV_EAI_NODATA: return SOCKS5_REP_HOST_UNREACHABLE;
    case UV_ENETUNREACH:
    case UV_ENETDOWN:
    case UV_ENONET:
    case UV_EAFNOSUPPORT: return SOCKS5_REP_NET_UNREACHABLE;
    case UV_ETIMEDOUT: return SOCKS5_REP_TTL_EXPIRED;
    case UV_EACCES:
    case UV_EPERM:
    case UV_ELOOP: return SOCKS5_REP_NOT_ALLOWED;
    default: return SOCKS5_REP_GENERAL_FAILURE;
    }
}

static void socks_conn_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void socks_conn_sent_cb(uv_write_t *req, int status)
{
    (void)req;
    (void)status; /* a failed write shows up as a read error, or in the relay */
}

/* Sends a reply that the conversation goes on after. The client's socket nearly always takes it at
 * once, for the cost of one write(); a uv_write() would also re-register the socket with epoll and
 * complete only in the next loop iteration. A rest goes to uv_write(), which keeps it ahead of
 * anything written later. 0, or a negative uv error. */
static int socks_conn_send(struct socks_conn *c, uv_write_t *req, uint8_t *data, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    /* While a uv_write() is queued, uv_try_write() refuses (UV_EAGAIN), which keeps the order. */
    int n = uv_try_write((uv_stream_t *)&c->client, &b, 1);
    if (n == (int)len)
        return 0;
    if (n < 0 && n != UV_EAGAIN)
        return n;
    if (n > 0) {
        b.base += n;
        b.len -= (size_t)n;
    }
    return uv_write(req, (uv_stream_t *)&c->client, &b, 1, socks_conn_sent_cb);
}

static void socks_conn_dialed(void *arg, struct outbound_conn *d, int status, const struct v2s_addr *bound,
                              uint16_t port)
{
    struct socks_conn *c = arg;
    c->dial = NULL;
    if (status < 0) {
        uint8_t rep = socks_reply_for(status);
        v2s_info("%s -> %s: %s (reply %u)", c->peer, c->target, outbound_strerror(status), rep);
        socks_conn_reply_and_close(c, rep);
        return;
    }
    size_t len = c->parser.version == SOCKS4_VERSION ? socks4_build_reply(c->reply, SOCKS4_REP_GRANTED, bound, port)
                                                     : socks5_build_reply(c->reply, SOCKS5_REP_SUCCEEDED, bound, port);
    socks_conn_relay_start(c);
    /* Written, or queued in libuv, which keeps writes in order: the reply reaches the client
     * before any relayed byte. */
    if (socks_conn_send(c, &c->write_req, c->reply, len) < 0)
        v2s_debug("%s: reply not sent", c->peer);
    /* The client is handed over still being read (base/uvstream.h): the bridge takes the
     * reading over, or, if it may not read yet, it is stopped here, so that no read reaches
     * this file's callbacks once the handle's data is the bridge's. */
    outbound_bridge(d, &c->client, c->early, c->early_len, c->peer, socks_conn_relay_done, c);
    if (c->client.read_cb == socks_conn_read_cb)
        uv_read_stop((uv_stream_t *)&c->client);
    free(c->early);
    c->early = NULL;
    c->early_len = 0;
}

static void socks_conn_udp(struct socks_conn *c);
static void socks_conn_bind(struct socks_conn *c);
static void socks_conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void socks_conn_timeout(uv_timer_t *t);
static void socks_conn_bind_bridge(struct socks_conn *c);
static void socks_conn_read_after(struct socks_conn *c, ssize_t nread, const uv_buf_t *buf);

static void socks_conn_request(struct socks_conn *c, const uint8_t *rest, size_t rest_len)
{
    struct socks5_parser *p = &c->parser;
    /* The client stays read: while connecting (socks_conn_read_dialing()), and after a UDP
     * ASSOCIATE or BIND reply; an answer that ends the conversation stops it. */
    /* An IPv4 host given as ::ffff:a.b.c.d (a client on a dual-stack socket) is that IPv4 host,
     * as the router already takes it: kept as IPv6, a CONNECT the router sent into an IPv4-only
     * tunnel failed with "network unreachable" (3), and a BIND looked for an IPv6 tunnel
     * address and for a peer no IPv4 host can be (socks_server_mapped_v4, socks_bind_mapped_v4). */
    if (p->atyp == SOCKS5_ATYP_IPV6)
        v2s_addr_unmap_v4(&p->addr);
    if (p->atyp == SOCKS5_ATYP_DOMAIN) {
        char name[256]; /* the client's bytes, escaped for the log lines that name the target */
        snprintf(c->target, sizeof(c->target), "%s:%u", v2s_shown(p->name, name, sizeof(name)), p->port);
    } else
        v2s_addr_format_port(&p->addr, p->port, c->target, sizeof(c->target));
    if (p->version == SOCKS4_VERSION && c->srv->creds != NULL) {
        v2s_credentials_log_failure(c->srv->creds, uv_now(c->client.loop), c->srv->name, c->peer, NULL, 0,
                                    "a SOCKS4 request, which carries no password (use SOCKS5)");
        socks_conn_reply_and_close(c, SOCKS5_REP_NOT_ALLOWED);
        return;
    }
    if (p->version == SOCKS5_VERSION && p->cmd == SOCKS5_CMD_UDP_ASSOCIATE) {
        socks_conn_udp(c);
        return;
    }
    if (p->cmd != SOCKS5_CMD_CONNECT && (p->cmd != SOCKS5_CMD_BIND || p->version != SOCKS5_VERSION)) {
        v2s_info("%s: SOCKS%u command %u not supported", c->peer, p->version, p->cmd);
        socks_conn_reply_and_close(c, SOCKS5_REP_CMD_UNSUPPORTED);
        return;
    }
    if (rest_len > 0) {
        if (rest_len > SOCKS_MAX_EARLY || !(c->early = malloc(rest_len))) {
            socks_conn_reply_and_close(c, SOCKS5_REP_GENERAL_FAILURE);
            return;
        }
        memcpy(c->early, rest, rest_len);
        c->early_len = rest_len;
    }
    if (p->cmd == SOCKS5_CMD_BIND) {
        socks_conn_bind(c);
        return;
    }
    c->state = SOCKS_CONN_DIALING;
    if (c->early_len == SOCKS_MAX_EARLY)
        uv_read_stop((uv_stream_t *)&c->client); /* full: the rest waits in the socket (socks_conn_read_dialing) */
    int rc = outbound_connect(c->srv->out, p->atyp == SOCKS5_ATYP_DOMAIN ? p->name : NULL, &p->addr, p->port,
                              c->srv->connect_timeout_ms, socks_conn_dialed, c, &c->dial);
    if (rc < 0) {
        uint8_t rep = socks_reply_for(rc);
        v2s_info("%s -> %s: %s (reply %u)", c->peer, c->target, outbound_strerror(rc), rep);
        socks_conn_reply_and_close(c, rep);
    }
}

/* Refuses a login: one log line (user NULL when there is no name to show), RFC 1929's failure
 * status (01 01), then the close. */
static void socks_conn_refuse_login(struct socks_conn *c, const uint8_t *user, size_t user_len,
                                    const char *why)
{
    struct socks_server *srv = c->srv;
    v2s_credentials_log_failure(srv->creds, uv_now(c->client.loop), srv->name, c->peer, user,
                                user_len, why);
    size_t n = socks5_build_auth_reply(c->auth_reply, 0);
    uv_buf_t b = uv_buf_init((char *)c->auth_reply, (unsigned)n);
    c->auth_req.data = c;
    uv_read_stop((uv_stream_t *)&c->client);
    /* Queued behind the method choice if that is still in flight. */
    if (uv_write(&c->auth_req, (uv_stream_t *)&c->client, &b, 1,
                 socks_conn_write_then_close_cb) < 0)
        socks_conn_close(c);
}

/* Answers the client's user name and password. 0: logged in, the request comes next; -1: refused,
 * the answer is on its way and the connection closes behind it. */
static int socks_conn_login(struct socks_conn *c)
{
    struct socks5_parser *p = &c->parser;
    struct socks_server *srv = c->srv;
    enum v2s_cred_result r = v2s_credentials_check(srv->creds, p->user, p->user_len, p->password, p->password_len);
    socks5_parse_forget_password(p);
    if (r != V2S_CRED_OK) {
        socks_conn_refuse_login(c, p->user, p->user_len,
                                r == V2S_CRED_UNKNOWN_USER ? "unknown user" : "wrong password");
        return -1;
    }
    size_t n = socks5_build_auth_reply(c->auth_reply, 1);
    if (V2S_LOG_ENABLED(V2S_LOG_DEBUG)) {
        char user[V2S_CRED_MAX_USER + 1], shown[128];
        memcpy(user, p->user, p->user_len);
        user[p->user_len] = '\0';
        v2s_debug("%s: logged in as \"%s\"", c->peer, v2s_shown(user, shown, sizeof(shown)));
    }
    if (socks_conn_send(c, &c->auth_req, c->auth_reply, n) < 0) {
        socks_conn_close(c);
        return -1;
    }
    return 0;
}

/* --- UDP ASSOCIATE --- */

static void socks_conn_udp_idle(void *arg)
{
    socks_conn_close(arg);
}

/* Starts the relay and answers with its address; the TCP connection is read on for its end. */
static void socks_conn_udp(struct socks_conn *c)
{
    struct socks_server *srv = c->srv;
    if (srv->udp_max == 0 || srv->udp_idle_ms == 0) {
        v2s_info("%s: UDP ASSOCIATE is not enabled on %s (reply %u)", c->peer, srv->name, SOCKS5_REP_CMD_UNSUPPORTED);
        socks_conn_reply_and_close(c, SOCKS5_REP_CMD_UNSUPPORTED);
        return;
    }
    if (srv->n_udp >= srv->udp_max) {
        if (!srv->udp_cap_logged)
            v2s_warn("%s: %u UDP associations, the most it keeps (--udp-max-flows): more are refused until one "
                     "ends", srv->name, srv->udp_max);
        srv->udp_cap_logged = 1;
        v2s_info("%s: UDP ASSOCIATE refused: %u associations open", c->peer, srv->n_udp);
        socks_conn_reply_and_close(c, SOCKS5_REP_GENERAL_FAILURE);
        return;
    }
    struct sockaddr_storage local, peer, bound;
    int ll = sizeof(local), pl = sizeof(peer);
    struct v2s_addr client;
    uint16_t client_port;
    int rc = uv_tcp_getsockname(&c->client, (struct sockaddr *)&local, &ll);
    if (rc == 0)
        rc = uv_tcp_getpeername(&c->client, (struct sockaddr *)&peer, &pl);
    if (rc == 0 && v2s_addr_from_sockaddr((const struct sockaddr *)&peer, &client, &client_port) < 0)
        rc = UV_EAFNOSUPPORT;
    if (rc == 0 && !srv->udp_buf && !(srv->udp_buf = malloc(SOCKS_UDP_BUF)))
        rc = UV_ENOMEM;
    if (rc == 0) {
        struct socks_udp_relay_config cfg = {
            .loop = c->client.loop,
            .out = srv->out,
            .local = (const struct sockaddr *)&local,
            .client = &client,
            /* The port the client said it sends from; 0 (most clients): the first that does. */
            .client_port = c->parser.port,
            .idle_timeout_ms = srv->udp_idle_ms,
            .buf = srv->udp_buf,
            .peer = c->peer,
            .idle = socks_conn_udp_idle,
            .arg = c,
        };
        rc = socks_udp_relay_new(&c->udp, &cfg, &bound);
    }
    if (rc < 0) {
        v2s_info("%s: UDP ASSOCIATE: %s (reply %u)", c->peer, uv_strerror(rc), SOCKS5_REP_GENERAL_FAILURE);
        socks_conn_reply_and_close(c, SOCKS5_REP_GENERAL_FAILURE);
        return;
    }
    srv->n_udp++;
    struct v2s_addr bnd;
    uint16_t bnd_port;
    v2s_addr_from_sockaddr((const struct sockaddr *)&bound, &bnd, &bnd_port);
    /* On a dual-stack listener ([::]) an IPv4 client reached ::ffff:a.b.c.d, which it knows as
     * a.b.c.d: named that way, an IPv4-only client can use it. */
    v2s_addr_unmap_v4(&bnd);
    size_t len = socks5_build_reply(c->reply, SOCKS5_REP_SUCCEEDED, &bnd, bnd_port);
    uv_timer_stop(&c->timer);
    c->state = SOCKS_CONN_UDP;
    if (socks_conn_send(c, &c->write_req, c->reply, len) < 0)
        socks_conn_close(c);
}

/* --- BIND --- */

static void socks_conn_bind_done(void *arg, int reset, uint64_t up, uint64_t down)
{
    struct socks_conn *c = arg;
    outbound_log_closed(c->label, reset, up, down);
    socks_conn_relay_done(c);
}

/* The peer connected: second reply, then the stack's bridge (outside lwIP's accept callback). */
static void socks_conn_bind_bridge(struct socks_conn *c)
{
    socks_bind_close(c->bind);
    c->bind = NULL;
    struct stack_tcp *tcp = c->bind_tcp;
    c->bind_tcp = NULL;
    /* A client that named the peer ::ffff:a.b.c.d gets it back in that form, as the UDP relay
     * names answers (socks/udp_relay.c): it is the form the client compares with what it asked
     * for, and what its own dual-stack socket would show. The first reply names our address,
     * which the client passes on to the peer, so it stays a.b.c.d. */
    struct v2s_addr from_shown = c->bind_from;
    if (c->parser.atyp == SOCKS5_ATYP_IPV6)
        v2s_addr_map_v4(&from_shown);
    size_t len = socks5_build_reply(c->reply, SOCKS5_REP_SUCCEEDED, &from_shown, c->bind_port);
    socks_conn_relay_start(c); /* from the timer's own callback, which may close it */
    if (socks_conn_send(c, &c->write_req, c->reply, len) < 0)
        v2s_debug("%s: second BIND reply not sent", c->peer);
    char from[V2S_ADDR_STRLEN];
    snprintf(c->label, sizeof(c->label), "%s <- %s (BIND, tunnel)", c->peer,
             v2s_addr_format_port(&c->bind_from, c->bind_port, from, sizeof(from)));
    outbound_log_open(c->label);
    stack_tcp_bridge_start(tcp, &c->client, c->early, c->early_len, c->label, socks_conn_bind_done, c);
    free(c->early);
    c->early = NULL;
    c->early_len = 0;
}

/* From the stack's accept callback: nothing closes here (stack/tcp.h), the timer bridges next. */
static void socks_conn_bind_accepted(void *arg, struct stack_tcp *tcp, const struct v2s_addr *from, uint16_t port)
{
    struct socks_conn *c = arg;
    c->bind_tcp = tcp;
    c->bind_from = *from;
    c->bind_port = port;
    c->state = SOCKS_CONN_BIND_READY;
    uv_read_stop((uv_stream_t *)&c->client); /* the bridge reads it */
    uv_timer_start(&c->timer, socks_conn_timeout, 0, 0);
}

static void socks_conn_bind(struct socks_conn *c)
{
    struct socks_server *srv = c->srv;
    struct socks5_parser *p = &c->parser;
    uint8_t rep = SOCKS5_REP_GENERAL_FAILURE;
    const char *why = NULL;
    static const uint8_t zero[16];
    int any = p->atyp != SOCKS5_ATYP_DOMAIN && !memcmp(p->addr.bytes, zero, v2s_addr_len(&p->addr));
    struct v2s_addr here;
    uint16_t port = 0;
    int rc = 0;
    if (!srv->stack) {
        rep = SOCKS5_REP_CMD_UNSUPPORTED;
        why = "BIND needs the tunnel";
    } else if (p->atyp == SOCKS5_ATYP_DOMAIN) {
        rep = SOCKS5_REP_ATYP_UNSUPPORTED;
        why = "BIND takes the address of the host that connects back, not a name";
    } else if (!any && srv->router && router_decide(srv->router, &p->addr) != ROUTER_TUNNEL) {
        rep = SOCKS5_REP_NOT_ALLOWED;
        why = "the router does not send that address into the tunnel";
    } else if ((rc = stack_tunnel_addr(srv->stack, p->addr.family, &here)) < 0) {
        rep = SOCKS5_REP_NET_UNREACHABLE;
        why = p->addr.family == AF_INET6 ? "the tunnel has no IPv6 address" : "the tunnel has no IPv4 address";
    } else if ((rc = socks_bind_new(&c->bind, srv->stack, &here, any ? NULL : &p->addr, c->peer,
                                    socks_conn_bind_accepted, c, &port)) < 0) {
        why = uv_strerror(rc);
    }
    if (why) {
        v2s_info("%s: BIND %s: %s (reply %u)", c->peer, c->target, why, rep);
        socks_conn_reply_and_close(c, rep);
        return;
    }
    char where[V2S_ADDR_STRLEN];
    v2s_info("%s: BIND %s: listening on %s in the tunnel", c->peer, c->target,
             v2s_addr_format_port(&here, port, where, sizeof(where)));
    size_t len = socks5_build_reply(c->reply, SOCKS5_REP_SUCCEEDED, &here, port);
    c->state = SOCKS_CONN_BIND_WAIT;
    uv_timer_start(&c->timer, socks_conn_timeout, srv->connect_timeout_ms, 0);
    if (socks_conn_send(c, &c->write_req, c->reply, len) < 0)
        socks_conn_close(c);
}

/* Reading the client after its request: a UDP association's TCP connection, whose end ends the
 * association (bytes on it mean nothing and are dropped), or a BIND waiting for its peer, whose
 * bytes are kept for the peer (bounded as early data is). A BIND client's end of stream is a
 * half-close, kept as a CONNECT's is while it dials (socks_conn_read_dialing()): it stops the
 * reading and stays in the socket, the bridge reads it again and passes it on behind the early
 * bytes, and the client still gets the second reply and the peer's bytes. Ending the BIND there
 * dropped both (socks_bind_half_close). A client that closed for good holds the port until its
 * peer comes or the connect timeout passes, no longer. Past SOCKS_MAX_EARLY bytes the reading
 * stops likewise and the rest waits in the socket; the connection was closed there, without a
 * second reply (socks_bind_early_bound). */
static void socks_conn_read_after(struct socks_conn *c, ssize_t nread, const uv_buf_t *buf)
{
    if (nread == UV_EOF && c->state == SOCKS_CONN_BIND_WAIT) {
        uv_read_stop((uv_stream_t *)&c->client);
        return;
    }
    if (nread < 0) {
        v2s_debug("%s: client closed its SOCKS connection (%s)", c->peer, uv_strerror((int)nread));
        socks_conn_close(c);
        return;
    }
    if (c->state == SOCKS_CONN_UDP)
        return;
    uint8_t *more = realloc(c->early, c->early_len + (size_t)nread);
    if (!more) {
        socks_conn_close(c);
        return;
    }
    memcpy(more + c->early_len, buf->base, (size_t)nread);
    c->early = more;
    c->early_len += (size_t)nread;
    if (c->early_len >= SOCKS_MAX_EARLY)
        uv_read_stop((uv_stream_t *)&c->client); /* the rest waits in the socket for the bridge */
}

/* Reading the client while its CONNECT is dialed. Stopping and restarting the read around the
 * dial cost two epoll_ctl() calls per connection (base/uvstream.h), so it goes on: bytes the client
 * sends before the reply join the early bytes (the alloc callback bounds them to SOCKS_MAX_EARLY,
 * and reading stops there); its end of file stops the reading and stays in the socket for the
 * relay, which reads it again (a TCP socket reports its end at every read); an error ends the
 * connection and cancels the dial, whose connection would only have been reset by the relay. */
static void socks_conn_read_dialing(struct socks_conn *c, ssize_t nread, const uv_buf_t *buf)
{
    if (nread == UV_EOF) {
        uv_read_stop((uv_stream_t *)&c->client);
        return;
    }
    if (nread < 0) {
        v2s_debug("%s: client left while connecting to %s (%s)", c->peer, c->target, uv_strerror((int)nread));
        socks_conn_close(c);
        return;
    }
    uint8_t *more = realloc(c->early, c->early_len + (size_t)nread);
    if (!more) {
        socks_conn_close(c);
        return;
    }
    memcpy(more + c->early_len, buf->base, (size_t)nread);
    c->early = more;
    c->early_len += (size_t)nread;
    if (c->early_len >= SOCKS_MAX_EARLY)
        uv_read_stop((uv_stream_t *)&c->client); /* the rest waits in the socket for the relay */
}

static void socks_conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct socks_conn *c = h->data;
    size_t len = SOCKS_READ_BUF;
    (void)suggested;
    if ((c->state == SOCKS_CONN_DIALING || c->state == SOCKS_CONN_BIND_WAIT) && SOCKS_MAX_EARLY - c->early_len < len)
        len = SOCKS_MAX_EARLY - c->early_len; /* never 0: reading stops at the bound */
    /* Shared by every connection: the read callback consumes it before returning. */
    *buf = uv_buf_init((char *)c->srv->read_buf, (unsigned)len);
}

static void socks_conn_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct socks_conn *c = stream->data;
    if (nread == 0)
        return;
    if (c->state == SOCKS_CONN_UDP || c->state == SOCKS_CONN_BIND_WAIT) {
        socks_conn_read_after(c, nread, buf);
        return;
    }
    if (c->state == SOCKS_CONN_DIALING) {
        socks_conn_read_dialing(c, nread, buf);
        return;
    }
    if (c->state != SOCKS_CONN_HANDSHAKE)
        return;
    if (nread < 0) {
        v2s_debug("%s: client left during the SOCKS handshake (%s)", c->peer, uv_strerror((int)nread));
        socks_conn_close(c);
        return;
    }
    const uint8_t *data = (const uint8_t *)buf->base;
    size_t len = (size_t)nread;
    while (len > 0) {
        size_t used = 0;
        enum socks5_event ev = socks5_parse_feed(&c->parser, data, len, &used);
        data += used;
        len -= used;
        switch (ev) {
        case SOCKS5_EV_NEED_MORE:
            return;
        case SOCKS5_EV_METHODS: {
            uint8_t method = socks5_parse_method(&c->parser);
            c->method_reply[0] = SOCKS5_VERSION;
            c->method_reply[1] = method;
            if (method == SOCKS5_AUTH_NO_ACCEPTABLE) {
                uv_buf_t b = uv_buf_init((char *)c->method_reply, 2);
                if (c->srv->creds != NULL)
                    v2s_credentials_log_failure(c->srv->creds, uv_now(stream->loop), c->srv->name, c->peer, NULL,
                                                0, "no username/password offered (SOCKS5 method 2)");
                else
                    v2s_info("%s: no acceptable SOCKS authentication method offered", c->peer);
                c->method_req.data = c;
                uv_read_stop(stream);
                if (uv_write(&c->method_req, stream, &b, 1, socks_conn_write_then_close_cb) < 0)
                    socks_conn_close(c);
                return;
            }
            if (socks_conn_send(c, &c->method_req, c->method_reply, 2) < 0) {
                socks_conn_close(c);
                return;
            }
            break;
        }
        case SOCKS5_EV_AUTH:
            if (socks_conn_login(c) < 0)
                return;
            break;
        case SOCKS5_EV_REQUEST:
            socks_conn_request(c, data, len);
            return;
        case SOCKS5_EV_ERROR:
            if (c->parser.error == SOCKS5_ERROR_USERPASS) {
                /* A login of the wrong version is a failed login: the same line and answer. */
                socks_conn_refuse_login(c, NULL, 0, c->parser.why);
                return;
            }
            if (c->parser.error >= 0) {
                v2s_info("%s: bad SOCKS request: %s (reply %d)", c->peer,
                         c->parser.why ? c->parser.why : "malformed", c->parser.error);
                socks_conn_reply_and_close(c, (uint8_t)c->parser.error);
            } else {
                v2s_info("%s: bad SOCKS request: %s", c->peer,
                         c->parser.why ? c->parser.why : "malformed");
                socks_conn_close(c);
            }
            return;
        }
    }
}

static void socks_conn_timeout(uv_timer_t *t)
{
    struct socks_conn *c = t->data;
    if (c->state == SOCKS_CONN_BIND_WAIT) {
        v2s_info("%s -> %s: no connection to the BIND port within %u ms (reply %u)", c->peer, c->target,
                 c->srv->connect_timeout_ms, SOCKS5_REP_TTL_EXPIRED);
        socks_bind_close(c->bind);
        c->bind = NULL;
        socks_conn_reply_and_close(c, SOCKS5_REP_TTL_EXPIRED);
        return;
    }
    if (c->state == SOCKS_CONN_BIND_READY) {
        socks_conn_bind_bridge(c);
        return;
    }
    if (c->state == SOCKS_CONN_HANDSHAKE) {
        v2s_info("%s: SOCKS handshake timed out", c->peer);
        socks_conn_close(c);
    }
}

/* A client sends its greeting right behind connect(), so by the time the connection is accepted
 * the greeting is usually there: answering it now saves a trip through epoll, and the answer
 * leaves before the rest of this loop iteration's work (another connection's close, say). */
static void socks_conn_read_now(struct socks_conn *c)
{
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->client, &fd) < 0)
        return;
    ssize_t n;
    do
        n = recv(fd, c->srv->read_buf, SOCKS_READ_BUF, MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    /* Nothing yet, the end or an error: the read watcher reports it like any other. */
    if (n <= 0)
        return;
    uv_buf_t b = uv_buf_init((char *)c->srv->read_buf, (unsigned)n);
    socks_conn_read_cb((uv_stream_t *)&c->client, n, &b);
}

/* A connection holding its slot of the caps (route/listener.h). */
static int socks_server_accept(void *arg, uv_stream_t *listener)
{
    struct socks_server *srv = arg;
    struct socks_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return -1;
    c->srv = srv;
    uv_tcp_init(listener->loop, &c->client);
    uv_timer_init(listener->loop, &c->timer);
    c->client.data = c;
    c->timer.data = c;
    v2s_list_init(&c->node);
    v2s_list_push_front(&srv->conns, &c->node);
    socks5_parse_init(&c->parser);
    if (srv->creds != NULL)
        socks5_parse_require_auth(&c->parser);
    if (uv_accept(listener, (uv_stream_t *)&c->client) < 0) {
        socks_conn_close(c);
        return 0;
    }
    listener_accepted(&c->client, c->peer, sizeof(c->peer));
    uv_timer_start(&c->timer, socks_conn_timeout, srv->handshake_timeout_ms, 0);
    if (uv_read_start((uv_stream_t *)&c->client, socks_conn_alloc_cb, socks_conn_read_cb) < 0) {
        socks_conn_close(c);
        return 0;
    }
    socks_conn_read_now(c);
    return 0;
}

static const struct listener_ops socks_server_ops = {
    .accept = socks_server_accept,
    .busy = socks_server_busy,
    .free = socks_server_free,
};

int socks_server_new(struct socks_server **out, const struct socks_server_config *cfg, const struct sockaddr *addr)
{
    struct socks_server *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return UV_ENOMEM;
    srv->read_buf = malloc(SOCKS_READ_BUF);
    if (!srv->read_buf) {
        free(srv);
        return UV_ENOMEM;
    }
    srv->out = cfg->out;
    srv->connect_timeout_ms = cfg->connect_timeout_ms;
    v2s_list_init(&srv->conns);
    listener_init(&srv->l, &socks_server_ops, srv, cfg->shared, "socks");
    srv->handshake_timeout_ms = cfg->handshake_timeout_ms;
    srv->creds = cfg->credentials;
    srv->udp_idle_ms = cfg->udp_idle_timeout_ms;
    srv->udp_max = cfg->udp_max_assocs;
    srv->stack = cfg->stack;
    srv->router = cfg->router;
    char where[V2S_ADDR_STRLEN];
    v2s_sockaddr_format(addr, where, sizeof(where));
    snprintf(srv->name, sizeof(srv->name), "SOCKS listener %s", where);
    listener_cap(&srv->l, cfg->max_conns, srv->name);
    int rc = listener_open(&srv->l, cfg->loop, addr);
    if (rc < 0)
        return rc;
    *out = srv;
    return 0;
}

int socks_server_local(const struct socks_server *srv, struct sockaddr *addr, int *len)
{
    return listener_local(&srv->l, addr, len);
}

void socks_server_close(struct socks_server *srv, void (*cb)(void *arg), void *arg)
{
    listener_close(&srv->l, cb, arg);
    struct v2s_list *n, *tmp;
    /* socks_conn_close() only starts the closes: c stays on the list until its handles are. */
    V2S_LIST_FOREACH_SAFE(n, tmp, &srv->conns) {
        struct socks_conn *c = V2S_LIST_ENTRY(n, struct socks_conn, node);
        if (c->state != SOCKS_CONN_RELAYING)
            socks_conn_close(c);
    }
}
