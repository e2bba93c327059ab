/* A remote port forward (-R): accept in the tunnel, connect to the one destination from this
 * host, relay through the stack's bridge.
 *
 * Each accepted connection resolves the destination (uv_getaddrinfo() when it is a name, at each
 * connection, as -L does) and tries its addresses in order ("localhost" may give ::1 before
 * 127.0.0.1 while the service listens on one of them only), all within the connect timeout.
 * Until the destination answers, the stack holds what the tunnel side sends (within the window
 * it offered: stack/tcp.h, stack_tcp_bridge_start()). A destination that cannot be reached
 * resets the tunnel side, the nearest a forward has to an error reply, with one log line naming
 * the forward and the reason.
 *
 * The caps are those of every listener (base/conn_limit.h): a connection holds a slot of this
 * forward's cap and of the shared one from accept until it has ended; one past a cap is reset
 * from the accept callback, and the cap logs the refusal. */
#include "port/reverse.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <uv.h>

#include "base/addr.h"
#include "base/conn_limit.h"
#include "base/list.h"
#include "base/log.h"
#include "port/target.h"
#include "route/outbound.h"
#include "stack/tcp.h"
#include "tunnel/settings.h"

enum rev_conn_state {
    REV_CONN_OPENING,  /* resolving the destination or connecting to it */
    REV_CONN_RELAYING, /* the bridge owns the local handle */
    REV_CONN_CLOSING,
};

struct rev_conn {
    struct port_reverse *pr;
    struct v2s_list node; /* on the forward's conns */
    enum rev_conn_state state;
    struct stack_tcp *tcp; /* the tunnel side, until it is bridged or cancelled */
    uv_timer_t timer;      /* the connect timeout */
    uv_tcp_t local;        /* the destination side */
    uv_connect_t connect_req;
    uv_getaddrinfo_t gai;
    struct addrinfo *ai;         /* the resolved addresses (NULL for an IP address) */
    const struct addrinfo *next; /* the next one to try */
    int resolving;               /* gai is in flight */
    int timer_open;
    int local_open;      /* local is initialised and not closed yet (the bridge's once relaying) */
    int in_accept;       /* inside the stack's accept callback: refuse rather than cancel */
    int refused;
    int error;           /* why the last attempt failed */
    struct v2s_addr dst; /* the address being tried */
    char peer[V2S_ADDR_STRLEN];
    char label[OUTBOUND_LABEL_MAX];
};

struct port_reverse {
    uv_loop_t *loop;
    struct stack_tcp_listener *listener; /* NULL once closed */
    unsigned connect_timeout_ms;
    struct v2s_list conns;
    struct conn_limit limit;   /* this listener's cap */
    struct conn_limit *shared; /* every listener's, or NULL */
    struct port_target dst;
    int any;                   /* listening on every tunnel address */
    struct v2s_addr local;     /* else this one */
    uint16_t listen_port;
    char where[V2S_ADDR_STRLEN + 8]; /* "*:8022" or "10.8.0.6:8022", for the log */
    char via[V2S_ADDR_STRLEN + 32];  /* "remote forward *:8022" */
    int closing;
    void (*close_cb)(void *arg);
    void *close_arg;
};

static void rev_maybe_free(struct port_reverse *pr)
{
    if (!pr->closing || !v2s_list_empty(&pr->conns))
        return;
    void (*cb)(void *) = pr->close_cb;
    void *arg = pr->close_arg;
    port_target_free(&pr->dst);
    free(pr);
    if (cb)
        cb(arg);
}

/* Frees c once nothing of it is open any more. */
static void rev_conn_maybe_free(struct rev_conn *c)
{
    if (c->state != REV_CONN_CLOSING || c->timer_open || c->local_open || c->resolving)
        return;
    struct port_reverse *pr = c->pr;
    v2s_list_remove(&c->node);
    conn_limit_give(&pr->limit, pr->shared);
    if (c->ai)
        uv_freeaddrinfo(c->ai);
    free(c);
    rev_maybe_free(pr);
}

static void rev_timer_closed(uv_handle_t *h)
{
    struct rev_conn *c = h->data;
    c->timer_open = 0;
    rev_conn_maybe_free(c);
}

static void rev_timer_close(struct rev_conn *c)
{
    if (c->timer_open && !uv_is_closing((uv_handle_t *)&c->timer))
        uv_close((uv_handle_t *)&c->timer, rev_timer_closed);
}

static void rev_local_closed(uv_handle_t *h);

/* Ends a connection that is not relaying: its tunnel side reset (or refused, inside the accept
 * callback), whatever is open closed. */
static void rev_conn_close(struct rev_conn *c)
{
    if (c->state == REV_CONN_CLOSING)
        return;
    c->state = REV_CONN_CLOSING;
    if (c->tcp) {
        if (c->in_accept)
            c->refused = 1;
        else
            stack_tcp_cancel(c->tcp);
        c->tcp = NULL;
    }
    if (c->resolving)
        uv_cancel((uv_req_t *)&c->gai); /* its callback still runs, with UV_EAI_CANCELED */
    rev_timer_close(c);
    if (c->local_open && !uv_is_closing((uv_handle_t *)&c->local))
        uv_close((uv_handle_t *)&c->local, rev_local_closed);
    rev_conn_maybe_free(c);
}

/* The destination cannot be reached: one line, and the tunnel side is reset. */
static void rev_conn_fail(struct rev_conn *c, int status)
{
    v2s_info("%s -> %s: %s (%s, connection reset)", c->peer, c->pr->dst.text, uv_strerror(status), c->pr->via);
    rev_conn_close(c);
}

static void rev_try_next(struct rev_conn *c);

static void rev_local_closed(uv_handle_t *h)
{
    struct rev_conn *c = h->data;
    c->local_open = 0;
    if (c->state == REV_CONN_OPENING)
        rev_try_next(c); /* an attempt failed: the next address, if any */
    else
        rev_conn_maybe_free(c);
}

/* The bridge is over and has closed the local handle. */
static void rev_relay_done(void *arg, int reset, uint64_t up, uint64_t down)
{
    struct rev_conn *c = arg;
    /* The client is the tunnel's peer: what it sent is what the bridge gave the application. */
    outbound_log_closed(c->label, reset, down, up);
    c->local_open = 0;
    c->state = REV_CONN_CLOSING;
    rev_conn_maybe_free(c);
}

static void rev_connected(uv_connect_t *req, int status)
{
    struct rev_conn *c = req->data;
    if (c->state != REV_CONN_OPENING)
        return; /* closing: the handle's close callback follows */
    if (status < 0) {
        c->error = status;
        uv_close((uv_handle_t *)&c->local, rev_local_closed);
        return;
    }
    struct port_reverse *pr = c->pr;
    rev_timer_close(c);
    uv_tcp_nodelay(&c->local, 1);
    outbound_label(c->label, sizeof(c->label), c->peer, pr->dst.name, &c->dst, pr->dst.port, pr->via);
    outbound_log_open(c->label);
    c->state = REV_CONN_RELAYING;
    struct stack_tcp *tcp = c->tcp;
    c->tcp = NULL;
    stack_tcp_bridge_start(tcp, &c->local, NULL, 0, c->label, rev_relay_done, c);
}

/* Connects to sa: 0 (rev_connected() follows, or rev_local_closed() when the connect could not
 * start), or a uv error with nothing left open. */
static int rev_connect(struct rev_conn *c, const struct sockaddr *sa)
{
    uint16_t port;
    v2s_addr_from_sockaddr(sa, &c->dst, &port);
    int rc = uv_tcp_init(c->pr->loop, &c->local);
    if (rc < 0)
        return rc;
    c->local.data = c;
    c->local_open = 1;
    c->connect_req.data = c;
    rc = uv_tcp_connect(&c->connect_req, &c->local, sa, rev_connected);
    if (rc < 0) {
        c->error = rc;
        uv_close((uv_handle_t *)&c->local, rev_local_closed); /* which tries the next */
    }
    return 0;
}

/* Tries the next resolved address, or fails with the last error once there is none. */
static void rev_try_next(struct rev_conn *c)
{
    while (c->next) {
        const struct addrinfo *ai = c->next;
        c->next = ai->ai_next;
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        int rc = rev_connect(c, ai->ai_addr);
        if (rc == 0)
            return;
        c->error = rc;
    }
    rev_conn_fail(c, c->error ? c->error : UV_EAI_NONAME);
}

static void rev_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct rev_conn *c = req->data;
    c->resolving = 0;
    c->ai = res;
    if (c->state != REV_CONN_OPENING) {
        rev_conn_maybe_free(c);
        return;
    }
    if (status < 0) {
        rev_conn_fail(c, status);
        return;
    }
    c->next = res;
    rev_try_next(c);
}

static void rev_timeout(uv_timer_t *t)
{
    struct rev_conn *c = t->data;
    rev_conn_fail(c, UV_ETIMEDOUT);
}

/* Starts resolving or connecting; failures are logged and end c (from rev_conn_close()). */
static void rev_conn_start(struct rev_conn *c)
{
    struct port_reverse *pr = c->pr;
    int rc;
    if (pr->dst.name) {
        struct addrinfo hints;
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        char port[8];
        snprintf(port, sizeof(port), "%u", pr->dst.port);
        c->gai.data = c;
        rc = uv_getaddrinfo(pr->loop, &c->gai, rev_resolved, pr->dst.name, port, &hints);
        if (rc == 0) {
            c->resolving = 1;
            return;
        }
    } else {
        struct sockaddr_storage ss;
        v2s_addr_to_sockaddr(&pr->dst.addr, pr->dst.port, &ss);
        rc = rev_connect(c, (const struct sockaddr *)&ss);
        if (rc == 0)
            return;
    }
    rev_conn_fail(c, rc);
}

static int rev_on_accept(void *arg, struct stack_tcp *tcp)
{
    struct port_reverse *pr = arg;
    if (conn_limit_take(&pr->limit, pr->shared, uv_now(pr->loop)) < 0)
        return UV_EBUSY; /* the cap logged it; the stack resets the connection */
    struct rev_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        conn_limit_give(&pr->limit, pr->shared);
        return UV_ENOMEM;
    }
    c->pr = pr;
    c->tcp = tcp;
    c->state = REV_CONN_OPENING;
    v2s_list_init(&c->node);
    v2s_list_push_front(&pr->conns, &c->node);
    struct v2s_addr peer;
    uint16_t peer_port;
    stack_tcp_remote(tcp, &peer, &peer_port);
    v2s_addr_format_port(&peer, peer_port, c->peer, sizeof(c->peer));
    uv_timer_init(pr->loop, &c->timer);
    c->timer.data = c;
    c->timer_open = 1;
    uv_timer_start(&c->timer, rev_timeout, pr->connect_timeout_ms, 0);
    c->in_accept = 1;
    rev_conn_start(c);
    c->in_accept = 0;
    /* c may be closing already (its handles' callbacks free it later), but not freed. */
    return c->refused ? UV_ECONNREFUSED : 0;
}

int port_reverse_new(struct port_reverse **out, const struct port_reverse_config *cfg, const struct sockaddr *listen)
{
    if (cfg->port == 0)
        return UV_EINVAL;
    struct port_reverse *pr = calloc(1, sizeof(*pr));
    if (!pr)
        return UV_ENOMEM;
    if (v2s_addr_from_sockaddr(listen, &pr->local, &pr->listen_port) < 0 || pr->listen_port == 0) {
        free(pr);
        return UV_EINVAL;
    }
    static const uint8_t zero[16];
    pr->any = memcmp(pr->local.bytes, zero, v2s_addr_len(&pr->local)) == 0;
    int rc = port_target_init(&pr->dst, cfg->host, cfg->port);
    if (rc < 0) {
        free(pr);
        return rc;
    }
    pr->loop = cfg->loop;
    pr->connect_timeout_ms = cfg->connect_timeout_ms;
    pr->shared = cfg->shared;
    v2s_list_init(&pr->conns);
    if (pr->any)
        snprintf(pr->where, sizeof(pr->where), "*:%u", pr->listen_port);
    else
        v2s_addr_format_port(&pr->local, pr->listen_port, pr->where, sizeof(pr->where));
    snprintf(pr->via, sizeof(pr->via), "remote forward %s", pr->where);
    conn_limit_init(&pr->limit, cfg->max_conns, pr->via, "--listener-max-connections");
    rc = stack_tcp_listen(cfg->stack, pr->any ? NULL : &pr->local, pr->listen_port, rev_on_accept, pr,
                              &pr->listener);
    if (rc < 0) {
        port_target_free(&pr->dst);
        free(pr);
        return rc;
    }
    *out = pr;
    return 0;
}

void port_reverse_tunnel_up(struct port_reverse *pr, const struct tunnel_settings *ts)
{
    if (!pr->listener)
        return;
    /* "10.8.0.6:8022 and [fd00::6]:8022" where it listens, "10.8.0.6 and fd00::6" what it has. */
    char at[2][V2S_ADDR_STRLEN] = {"", ""}, addr[2][V2S_ADDR_STRLEN] = {"", ""};
    char where[2 * V2S_ADDR_STRLEN + 8], has[2 * V2S_ADDR_STRLEN + 8];
    const struct v2s_addr *mine[2] = {&ts->addr4, &ts->addr6};
    for (int i = 0; i < 2; i++) {
        if (!mine[i]->family)
            continue;
        v2s_addr_format_port(mine[i], pr->listen_port, at[i], sizeof(at[i]));
        v2s_addr_format(mine[i], addr[i], sizeof(addr[i]));
    }
    const char *and = at[0][0] && at[1][0] ? " and " : "";
    snprintf(where, sizeof(where), "%s%s%s", at[0], and, at[1]);
    snprintf(has, sizeof(has), "%s%s%s", addr[0], and, addr[1]);
    if (pr->any) {
        v2s_info("%s: listening on %s, forwarding to %s", pr->via, where, pr->dst.text);
        return;
    }
    if (v2s_addr_equal(&pr->local, &ts->addr4) || v2s_addr_equal(&pr->local, &ts->addr6)) {
        v2s_info("%s: listening, forwarding to %s", pr->via, pr->dst.text);
        return;
    }
    char wanted[V2S_ADDR_STRLEN];
    v2s_warn("%s: %s is not the tunnel's address (the tunnel has %s): no connection can arrive there; "
             "give -R PORT:HOST:HOSTPORT to listen on whatever address the tunnel has",
             pr->via, v2s_addr_format(&pr->local, wanted, sizeof(wanted)), has);
}

void port_reverse_close(struct port_reverse *pr, void (*cb)(void *arg), void *arg)
{
    pr->close_cb = cb;
    pr->close_arg = arg;
    if (pr->listener) {
        stack_tcp_listen_close(pr->listener);
        pr->listener = NULL;
    }
    struct v2s_list *n, *tmp;
    /* rev_conn_close() may free c at once (nothing of it open): hence the safe walk. */
    V2S_LIST_FOREACH_SAFE(n, tmp, &pr->conns) {
        struct rev_conn *c = V2S_LIST_ENTRY(n, struct rev_conn, node);
        if (c->state == REV_CONN_OPENING)
            rev_conn_close(c);
    }
    /* Only now: a connection that ended above must not free pr while the walk goes on. */
    pr->closing = 1;
    rev_maybe_free(pr);
}
