/* The HTTP proxy listener (-H).
 *
 * CONNECT host:port is dialed through the routed outbound and, once "200 Connection established"
 * is written, the client socket is handed to the outbound's relay like a SOCKS client's, with any
 * bytes the client sent behind its request as early data.
 *
 * An absolute-URI request (http:// only) is read one at a time: its head is rebuilt for the
 * origin (origin-form target, Host from the URI, hop-by-hop headers gone), its body streamed
 * (Content-Length as it is, chunked re-chunked), and the response read with the same parser, so
 * that its end is known and the client connection can carry the next request (keep-alive). Bytes
 * a client pipelines behind a request stay unparsed (at most HTTP_MAX_PENDING of them are read,
 * so that a client that goes away is noticed) until the answer to that request has been written:
 * requests are answered in order, never interleaved. The end of the client's side while its
 * answer is awaited is taken as the client giving up (as nginx and Squid do by default), and the
 * origin is let go. The next request may name another host: the old upstream connection is
 * closed then; one to the same host:port that the origin kept open is used again. An answer
 * framed by the connection's end (no length, not chunked) goes out with "Connection: close".
 *
 * The outbound's relay (route/outbound.h) relays a whole connection between a uv_tcp_t and the
 * destination; it has no way to hand the destination's bytes to a listener. Rather than a new op
 * in each outbound, an upstream is a socketpair: the relay gets one end (opened as a uv_tcp_t;
 * the relay uses only stream calls on it), this file reads and writes the other (a uv_pipe_t).
 * The price is two descriptors and one copy through the kernel per upstream connection; the
 * relay's backpressure, half-close and logging come for free. A reset from the origin reaches
 * us as the socketpair's end: a response it truncates is still seen (the parser knows the
 * framing), only one framed by the connection's end cannot tell a reset from a FIN.
 *
 * With credentials (--socks-auth), every request (CONNECT included) needs a Proxy-Authorization
 * "Basic" of one of the users; without one, or with a wrong one, the answer is 407 with
 * Proxy-Authenticate: Basic realm="vpn2socks", and the connection closes. Refusals are logged
 * through base/credentials.h (rate limited; a request without credentials, which is how a
 * browser asks for the challenge, only at debug level), never with the password.
 *
 * Caps, the refusal at the cap and the handshake timeout are the SOCKS listener's
 * (socks/server.c); the timeout runs from accept, and again from the end of each answer, until
 * a complete request head (408 when part of one came, a plain close when nothing did). Errors
 * answer with a status and close: 400 malformed (431 a head over 64 KiB), 403 the router rejected
 * the destination, 407 no or wrong credentials, 501 a scheme other than http, 502 the destination
 * refused, was unreachable, did not resolve or gave no proper answer, 504 it did not answer the
 * connect in time. Once part of an answer went out, an error can only reset the client. */
#include "http/proxy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "base/addr.h"
#include "base/conn_limit.h"
#include "base/credentials.h"
#include "base/list.h"
#include "base/log.h"
#include "http/message.h"
#include "route/outbound.h"
#include "route/pac.h"
#include "route/router.h"
#include "route/refuse.h"

enum {
    HTTP_READ_BUF = 64 * 1024,
    HTTP_MAX_PENDING = 256 * 1024, /* pipelined bytes held while a request is answered */
    HTTP_LINGER_MS = 2000,         /* reading what a client still sends after an error answer */
};

enum http_conn_state {
    HTTP_CONN_HEAD,    /* reading a request head */
    HTTP_CONN_DIALING, /* the destination is being reached */
    HTTP_CONN_FORWARD, /* a request goes upstream and its answer comes back */
    HTTP_CONN_TUNNEL,  /* CONNECT: the relay owns the client handle */
    HTTP_CONN_ENDING,  /* a last answer is being written, then the close */
    HTTP_CONN_CLOSING,
};

struct http_conn;

/* One connection to an origin, through a socketpair whose other end the outbound relays. */
struct http_upstream {
    struct http_proxy *hp;
    struct http_conn *conn; /* NULL once let go */
    struct v2s_list node;   /* on the proxy's upstreams */
    uv_tcp_t relay_end;     /* the relay's from outbound_bridge() on */
    uv_pipe_t pipe;         /* ours */
    struct outbound_conn *dial;
    int handles_open;       /* ours still to be closed */
    int handed;             /* relay_end went to the relay, which closes it */
    int bridged;            /* the relay's done callback is still due */
    int closing;
    int reusable;           /* the origin keeps it open after the last answer */
    int writing;
    uv_write_t wreq;
    uint8_t *wbuf;
    char authority[300];    /* host:port, to reuse it for the same destination */
};

struct http_conn {
    struct http_proxy *hp;
    struct v2s_list node; /* on the proxy's conns */
    uv_tcp_t client;
    uv_timer_t timer;
    int handles_open;
    enum http_conn_state state;
    struct http_msg req, resp;
    uint8_t *pending; /* client bytes read but not parsed yet */
    size_t pending_len;
    int reading;
    struct http_upstream *up;
    struct outbound_conn *dial; /* CONNECT's */
    int req_done, resp_done, resp_started;
    int keep_alive; /* the client wants the connection kept after this answer */
    int head_method;
    int writing; /* a write to the client is in flight */
    uv_write_t wreq;
    uint8_t *wbuf;
    uv_shutdown_t shut_req;
    char peer[V2S_ADDR_STRLEN];
    char target[300]; /* the destination as host:port, for the log */
};

struct http_proxy {
    struct outbound *out;
    unsigned connect_timeout_ms;
    unsigned handshake_timeout_ms;
    uv_tcp_t listener;
    struct v2s_list conns;
    struct v2s_list upstreams;
    uint8_t *read_buf;
    struct conn_limit limit;
    struct conn_limit *shared;
    struct refuser refuser;
    struct v2s_credentials *creds; /* NULL: no authentication */
    const struct router *router;   /* for the PAC file; NULL: none served */
    char *pac;                     /* the last PAC text written, for pac_proxy at pac_generation */
    char pac_proxy[300];
    unsigned pac_generation;
    char name[V2S_ADDR_STRLEN + 32]; /* "HTTP listener ADDR", for the log */
    int closing;
    int handles_open;
    void (*close_cb)(void *arg);
    void *close_arg;
};

static void http_conn_close(struct http_conn *c, int reset);
static void http_conn_client_input(struct http_conn *c, const uint8_t *data, size_t len);
static void http_conn_update_reading(struct http_conn *c);
static void http_conn_answer_done(struct http_conn *c);
static void http_upstream_flush(struct http_conn *c);
static void http_conn_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void http_conn_timeout(uv_timer_t *t);
static void http_conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void http_upstream_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void http_upstream_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void http_proxy_maybe_free(struct http_proxy *hp)
{
    if (!hp->closing || hp->handles_open > 0 || !v2s_list_empty(&hp->conns) || !v2s_list_empty(&hp->upstreams))
        return;
    void (*cb)(void *) = hp->close_cb;
    void *arg = hp->close_arg;
    free(hp->read_buf);
    free(hp->pac);
    free(hp);
    if (cb)
        cb(arg);
}

/* --- upstream connections --- */

static void http_upstream_maybe_free(struct http_upstream *up)
{
    if (up->handles_open > 0 || up->bridged)
        return;
    struct http_proxy *hp = up->hp;
    v2s_list_remove(&up->node);
    free(up->wbuf);
    free(up);
    http_proxy_maybe_free(hp);
}

static void http_upstream_handle_closed(uv_handle_t *h)
{
    struct http_upstream *up = h->data;
    up->handles_open--;
    http_upstream_maybe_free(up);
}

static void http_upstream_relay_done(void *arg)
{
    struct http_upstream *up = arg;
    up->bridged = 0;
    http_upstream_maybe_free(up);
}

/* Lets the upstream go: a dial is cancelled, our end of the socketpair closed, which the relay
 * sees as the end of the request side and passes on as a FIN. */
static void http_upstream_release(struct http_upstream *up)
{
    if (!up || up->closing)
        return;
    up->closing = 1;
    if (up->conn && up->conn->up == up)
        up->conn->up = NULL;
    up->conn = NULL;
    if (up->dial) {
        outbound_cancel(up->dial);
        up->dial = NULL;
    }
    if (!up->handed)
        uv_close((uv_handle_t *)&up->relay_end, http_upstream_handle_closed);
    uv_close((uv_handle_t *)&up->pipe, http_upstream_handle_closed);
}

/* --- answers the proxy writes itself --- */

static const char *http_reason(int status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 504: return "Gateway Timeout";
    default: return "Error";
    }
}

/* What the client is told when the destination could not be reached. */
static int http_status_for(int err)
{
    switch (err) {
    case UV_EACCES:
    case UV_EPERM: return 403;
    case UV_ETIMEDOUT: return 504;
    default: return 502;
    }
}

static void http_conn_linger_timeout(uv_timer_t *t)
{
    http_conn_close(t->data, 0);
}

static void http_conn_linger_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    if (nread < 0)
        http_conn_close(stream->data, 0);
}

static void http_conn_end_shut(uv_shutdown_t *req, int status)
{
    struct http_conn *c = req->data;
    if (c->state == HTTP_CONN_CLOSING)
        return;
    if (status < 0 ||
        uv_read_start((uv_stream_t *)&c->client, http_conn_alloc_cb, http_conn_linger_read) < 0) {
        http_conn_close(c, 0);
        return;
    }
    uv_timer_start(&c->timer, http_conn_linger_timeout, HTTP_LINGER_MS, 0);
}

/* The error answer is written. Closing now, with the rest of the client's request unread, would
 * make the kernel send a reset, which can destroy the answer before the client reads it: send a
 * FIN, and read (and drop) what the client still sends until it closes, for a moment at most. */
static void http_conn_end_written(uv_write_t *req, int status)
{
    struct http_conn *c = req->data;
    c->writing = 0;
    free(c->wbuf);
    c->wbuf = NULL;
    if (c->state == HTTP_CONN_CLOSING)
        return;
    c->shut_req.data = c;
    if (status < 0 || uv_shutdown(&c->shut_req, (uv_stream_t *)&c->client, http_conn_end_shut) < 0)
        http_conn_close(c, 0);
}

/* Answers status with a short text body (and extra header lines, or NULL), then closes the
 * connection. */
static void http_conn_fail_with(struct http_conn *c, int status, const char *why, const char *extra)
{
    if (c->state == HTTP_CONN_ENDING || c->state == HTTP_CONN_CLOSING)
        return;
    http_upstream_release(c->up);
    if (c->dial) {
        outbound_cancel(c->dial);
        c->dial = NULL;
    }
    if (c->resp_started || c->writing) {
        /* Part of an answer went out already: only a reset tells the client it is cut short. */
        http_conn_close(c, 1);
        return;
    }
    c->state = HTTP_CONN_ENDING;
    uv_read_stop((uv_stream_t *)&c->client);
    c->reading = 0;
    uv_timer_stop(&c->timer);
    char body[400];
    int bl = snprintf(body, sizeof(body), "vpn2socks: %s\n", why);
    if (bl < 0 || bl >= (int)sizeof(body))
        bl = (int)strlen(body);
    if (!extra)
        extra = "";
    size_t cap = (size_t)bl + strlen(extra) + 256;
    c->wbuf = malloc(cap);
    if (!c->wbuf) {
        http_conn_close(c, 1);
        return;
    }
    int n = snprintf((char *)c->wbuf, cap,
                     "HTTP/1.1 %d %s\r\n%sContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n"
                     "\r\n%s",
                     status, http_reason(status), extra, bl, body);
    uv_buf_t b = uv_buf_init((char *)c->wbuf, (unsigned)n);
    c->wreq.data = c;
    c->writing = 1;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->client, &b, 1, http_conn_end_written) < 0) {
        c->writing = 0;
        http_conn_close(c, 1);
    }
}

static void http_conn_fail(struct http_conn *c, int status, const char *why)
{
    http_conn_fail_with(c, status, why, NULL);
}

/* --- the client connection --- */

static void http_conn_free(struct http_conn *c)
{
    struct http_proxy *hp = c->hp;
    v2s_list_remove(&c->node);
    conn_limit_give(&hp->limit, hp->shared);
    http_msg_free(&c->req);
    http_msg_free(&c->resp);
    free(c->pending);
    free(c->wbuf);
    free(c);
    http_proxy_maybe_free(hp);
}

static void http_conn_handle_closed(uv_handle_t *h)
{
    struct http_conn *c = h->data;
    if (--c->handles_open == 0)
        http_conn_free(c);
}

/* Ends a connection the relay does not own: with a reset when reset, else a FIN. */
static void http_conn_close(struct http_conn *c, int reset)
{
    if (c->state == HTTP_CONN_CLOSING)
        return;
    if (c->dial)
        outbound_cancel(c->dial);
    c->dial = NULL;
    http_upstream_release(c->up);
    c->state = HTTP_CONN_CLOSING;
    c->handles_open = 2;
    uv_close((uv_handle_t *)&c->timer, http_conn_handle_closed);
    if (!reset || uv_tcp_close_reset(&c->client, http_conn_handle_closed) < 0)
        uv_close((uv_handle_t *)&c->client, http_conn_handle_closed);
}

/* The relay closed the client handle (CONNECT); only the timer is left. */
static void http_conn_relay_done(void *arg)
{
    struct http_conn *c = arg;
    c->state = HTTP_CONN_CLOSING;
    c->handles_open = 1;
    uv_close((uv_handle_t *)&c->timer, http_conn_handle_closed);
}

/* Keeps what the parser has not taken yet; the client is not read while there is some. */
static int http_conn_keep(struct http_conn *c, const uint8_t *data, size_t len)
{
    if (len == 0)
        return 0;
    if (c->pending_len + len > HTTP_MAX_PENDING + HTTP_READ_BUF)
        return -1;
    uint8_t *p = realloc(c->pending, c->pending_len + len);
    if (!p)
        return -1;
    memcpy(p + c->pending_len, data, len);
    c->pending = p;
    c->pending_len += len;
    return 0;
}

/* Parses what was kept back, now that the state allows it. */
static void http_conn_resume(struct http_conn *c)
{
    uint8_t *p = c->pending;
    size_t len = c->pending_len;
    c->pending = NULL;
    c->pending_len = 0;
    http_conn_client_input(c, p, len);
    free(p);
}

static void http_conn_client_written(uv_write_t *req, int status)
{
    struct http_conn *c = req->data;
    c->writing = 0;
    free(c->wbuf);
    c->wbuf = NULL;
    if (c->state == HTTP_CONN_CLOSING)
        return;
    if (status < 0) {
        v2s_debug("%s: write to the client failed: %s", c->peer, uv_strerror(status));
        http_conn_close(c, 1);
        return;
    }
    if (c->resp_done) {
        http_conn_answer_done(c);
        return;
    }
    if (c->up && c->state == HTTP_CONN_FORWARD) {
        int rc = uv_read_start((uv_stream_t *)&c->up->pipe, http_upstream_alloc_cb, http_upstream_read_cb);
        if (rc < 0 && rc != UV_EALREADY)
            http_conn_close(c, 1);
    }
}

/* Writes what the response parser produced to the client; the upstream is not read meanwhile. */
static void http_conn_client_flush(struct http_conn *c)
{
    if (c->writing || c->resp.out_len == 0)
        return;
    size_t len;
    c->wbuf = http_msg_take_out(&c->resp, &len);
    uv_buf_t b = uv_buf_init((char *)c->wbuf, (unsigned)len);
    c->wreq.data = c;
    c->writing = 1;
    if (c->up)
        uv_read_stop((uv_stream_t *)&c->up->pipe);
    if (uv_write(&c->wreq, (uv_stream_t *)&c->client, &b, 1, http_conn_client_written) < 0) {
        c->writing = 0;
        http_conn_close(c, 1);
    }
}

/* The answer is written: close, or wait for the next request. */
static void http_conn_answer_done(struct http_conn *c)
{
    if (!c->req_done || !c->keep_alive) {
        http_conn_close(c, 0);
        return;
    }
    if (c->up && !c->up->reusable)
        http_upstream_release(c->up);
    c->state = HTTP_CONN_HEAD;
    c->resp_done = c->req_done = c->resp_started = 0;
    http_msg_free(&c->req);
    http_msg_init(&c->req, 0);
    /* A kept upstream is watched while idle: its end, or bytes out of turn, let it go. */
    if (c->up) {
        int rc = uv_read_start((uv_stream_t *)&c->up->pipe, http_upstream_alloc_cb, http_upstream_read_cb);
        if (rc < 0 && rc != UV_EALREADY)
            http_upstream_release(c->up);
    }
    uv_timer_start(&c->timer, http_conn_timeout, c->hp->handshake_timeout_ms, 0);
    http_conn_resume(c);
}

static void http_upstream_written(uv_write_t *req, int status)
{
    struct http_upstream *up = req->data;
    up->writing = 0;
    free(up->wbuf);
    up->wbuf = NULL;
    struct http_conn *c = up->conn;
    if (!c)
        return;
    if (status < 0) {
        /* The origin went away; its answer, if any, is still read. */
        v2s_debug("%s: write to %s failed: %s", c->peer, c->target, uv_strerror(status));
        return;
    }
    http_upstream_flush(c);
    if (!up->writing && c->state == HTTP_CONN_FORWARD && !c->req_done)
        http_conn_resume(c);
}

/* Sends what the request parser produced upstream, one write at a time. */
static void http_upstream_flush(struct http_conn *c)
{
    struct http_upstream *up = c->up;
    if (!up || up->writing || c->req.out_len == 0 || c->state != HTTP_CONN_FORWARD)
        return;
    size_t len;
    up->wbuf = http_msg_take_out(&c->req, &len);
    uv_buf_t b = uv_buf_init((char *)up->wbuf, (unsigned)len);
    up->wreq.data = up;
    up->writing = 1;
    if (uv_write(&up->wreq, (uv_stream_t *)&up->pipe, &b, 1, http_upstream_written) < 0) {
        up->writing = 0;
        free(up->wbuf);
        up->wbuf = NULL;
        http_conn_fail(c, 502, "the destination's connection is gone");
    }
}

/* The client is read while a request head or body is parsed, and while an answer is awaited
 * (what it pipelines meanwhile is kept, up to HTTP_MAX_PENDING, not parsed): so a client that
 * goes away is noticed. */
static void http_conn_update_reading(struct http_conn *c)
{
    int want = 0;
    if (c->state == HTTP_CONN_HEAD)
        want = c->pending_len == 0;
    else if (c->state == HTTP_CONN_FORWARD && !c->req_done)
        want = c->pending_len == 0 && c->up && !c->up->writing;
    else if (c->state == HTTP_CONN_FORWARD)
        want = c->pending_len < HTTP_MAX_PENDING;
    if (want && !c->reading)
        c->reading = uv_read_start((uv_stream_t *)&c->client, http_conn_alloc_cb, http_conn_read_cb) == 0;
    else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->client);
        c->reading = 0;
    }
}

/* The destination is reached: the request goes out, the answer is read. */
static void http_conn_forward_start(struct http_conn *c)
{
    c->state = HTTP_CONN_FORWARD;
    http_msg_free(&c->resp);
    http_msg_init(&c->resp, 1);
    c->resp.skip_body = c->head_method;
    int rc = uv_read_start((uv_stream_t *)&c->up->pipe, http_upstream_alloc_cb, http_upstream_read_cb);
    if (rc < 0 && rc != UV_EALREADY) {
        http_conn_fail(c, 502, "cannot read the destination's connection");
        return;
    }
    http_conn_resume(c);
}

static void http_upstream_dialed(void *arg, struct outbound_conn *d, int status, const struct v2s_addr *bound,
                                 uint16_t port)
{
    struct http_upstream *up = arg;
    struct http_conn *c = up->conn;
    (void)bound;
    (void)port;
    up->dial = NULL;
    if (status < 0) {
        http_upstream_release(up);
        if (c) {
            char why[400];
            snprintf(why, sizeof(why), "%s: %s", c->target, uv_strerror(status));
            v2s_info("%s -> %s: %s (HTTP %d)", c->peer, c->target, uv_strerror(status), http_status_for(status));
            http_conn_fail(c, http_status_for(status), why);
        }
        return;
    }
    up->bridged = up->handed = 1;
    up->handles_open--; /* relay_end is the relay's now */
    outbound_bridge(d, &up->relay_end, NULL, 0, c ? c->peer : "http", http_upstream_relay_done, up);
    if (c)
        http_conn_forward_start(c);
}

/* A socketpair for the relay, then the dial. 0, or a negative uv error (nothing left open). */
static int http_upstream_open(struct http_conn *c, const char *host, uint16_t port, const char *authority)
{
    struct http_proxy *hp = c->hp;
    uv_loop_t *loop = c->client.loop;
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
        return uv_translate_sys_error(errno);
    struct http_upstream *up = calloc(1, sizeof(*up));
    if (!up) {
        close(fds[0]);
        close(fds[1]);
        return UV_ENOMEM;
    }
    up->hp = hp;
    up->conn = c;
    snprintf(up->authority, sizeof(up->authority), "%s", authority);
    v2s_list_init(&up->node);
    v2s_list_push_front(&hp->upstreams, &up->node);
    uv_tcp_init(loop, &up->relay_end);
    uv_pipe_init(loop, &up->pipe, 0);
    up->relay_end.data = up;
    up->pipe.data = up;
    up->handles_open = 2;
    c->up = up;
    int rc = uv_tcp_open(&up->relay_end, fds[0]);
    if (rc < 0)
        close(fds[0]);
    int rc2 = uv_pipe_open(&up->pipe, fds[1]);
    if (rc2 < 0)
        close(fds[1]);
    if (rc == 0)
        rc = rc2;
    struct v2s_addr addr;
    int numeric = v2s_addr_parse(&addr, host) == 0;
    if (rc == 0)
        rc = outbound_connect(hp->out, numeric ? NULL : host, &addr, port, hp->connect_timeout_ms,
                              http_upstream_dialed, up, &up->dial);
    if (rc < 0) {
        up->dial = NULL;
        http_upstream_release(up);
        return rc;
    }
    return 0;
}

static void http_conn_established_sent(uv_write_t *req, int status)
{
    (void)req;
    (void)status; /* a failed write shows up in the relay */
}

static void http_conn_tunnel_dialed(void *arg, struct outbound_conn *d, int status, const struct v2s_addr *bound,
                                    uint16_t port)
{
    static const char established[] = "HTTP/1.1 200 Connection established\r\n\r\n";
    struct http_conn *c = arg;
    (void)bound;
    (void)port;
    c->dial = NULL;
    if (status < 0) {
        char why[400];
        snprintf(why, sizeof(why), "%s: %s", c->target, uv_strerror(status));
        v2s_info("%s -> %s: %s (HTTP %d)", c->peer, c->target, uv_strerror(status), http_status_for(status));
        http_conn_fail(c, http_status_for(status), why);
        return;
    }
    uv_timer_stop(&c->timer);
    c->state = HTTP_CONN_TUNNEL;
    /* Written at once, nearly always; a rest is queued in libuv, which keeps it ahead of
     * anything the relay writes. */
    uv_buf_t b = uv_buf_init((char *)established, sizeof(established) - 1);
    int n = uv_try_write((uv_stream_t *)&c->client, &b, 1);
    if (n > 0) {
        b.base += n;
        b.len -= (size_t)n;
    }
    if (b.len > 0 && (n >= 0 || n == UV_EAGAIN)) {
        c->wreq.data = c;
        if (uv_write(&c->wreq, (uv_stream_t *)&c->client, &b, 1, http_conn_established_sent) < 0)
            v2s_debug("%s: CONNECT answer not sent", c->peer);
    }
    outbound_bridge(d, &c->client, c->pending, c->pending_len, c->peer, http_conn_relay_done, c);
    free(c->pending);
    c->pending = NULL;
    c->pending_len = 0;
}

/* host and port from text (CONNECT's "host:port", "[v6]:port"); 0 or -1. */
static int http_split_authority(const char *text, size_t len, char *host, size_t cap, uint16_t *port)
{
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(text, len, 1, &u) != 0 || u.field_data[UF_HOST].len >= cap || u.port == 0)
        return -1;
    memcpy(host, text + u.field_data[UF_HOST].off, u.field_data[UF_HOST].len);
    host[u.field_data[UF_HOST].len] = '\0';
    *port = u.port;
    return 0;
}

static void http_conn_connect(struct http_conn *c)
{
    char host[256];
    uint16_t port;
    const char *url = c->req.text + c->req.target;
    if (http_split_authority(url, c->req.target_len, host, sizeof(host), &port) < 0) {
        http_conn_fail(c, 400, "CONNECT needs host:port");
        return;
    }
    char shown[256];
    snprintf(c->target, sizeof(c->target), strchr(host, ':') ? "[%s]:%u" : "%s:%u",
             v2s_shown(host, shown, sizeof(shown)), port);
    http_upstream_release(c->up);
    /* The parser stops at a CONNECT's head: what follows is the tunnel's. */
    c->state = HTTP_CONN_DIALING;
    struct v2s_addr addr;
    int numeric = v2s_addr_parse(&addr, host) == 0;
    int rc = outbound_connect(c->hp->out, numeric ? NULL : host, &addr, port, c->hp->connect_timeout_ms,
                              http_conn_tunnel_dialed, c, &c->dial);
    if (rc < 0) {
        c->dial = NULL;
        char why[400];
        snprintf(why, sizeof(why), "%s: %s", c->target, uv_strerror(rc));
        v2s_info("%s -> %s: %s (HTTP %d)", c->peer, c->target, uv_strerror(rc), http_status_for(rc));
        http_conn_fail(c, http_status_for(rc), why);
    }
}

/* With credentials: whether the request carries a user's. 0, or -1 once the 407 is on its way. */
static int http_conn_authorize(struct http_conn *c)
{
    static const char challenge[] = "Proxy-Authenticate: Basic realm=\"vpn2socks\"\r\n";
    struct http_proxy *hp = c->hp;
    struct http_msg *m = &c->req;
    size_t vl;
    const char *v = http_msg_header(m, "proxy-authorization", &vl);
    if (!v) {
        v2s_debug("%s: no Proxy-Authorization (HTTP 407)", c->peer);
        http_conn_fail_with(c, 407, "proxy authentication required", challenge);
        return -1;
    }
    uint8_t buf[V2S_CRED_MAX_USER + V2S_CRED_MAX_PASSWORD + 2];
    size_t ul = 0, pl = 0;
    int ok = 0;
    if (http_msg_basic_auth(v, vl, buf, sizeof(buf), &ul, &pl) < 0)
        v2s_credentials_log_failure(hp->creds, uv_now(c->client.loop), hp->name, c->peer, NULL, 0,
                                    "Proxy-Authorization is not Basic user:password");
    else {
        enum v2s_cred_result r = v2s_credentials_check(hp->creds, buf, ul, buf + ul + 1, pl);
        if (r != V2S_CRED_OK)
            v2s_credentials_log_failure(hp->creds, uv_now(c->client.loop), hp->name, c->peer, buf, ul,
                                        r == V2S_CRED_UNKNOWN_USER ? "unknown user" : "wrong password");
        else {
            ok = 1;
            if (V2S_LOG_ENABLED(V2S_LOG_DEBUG)) {
                char user[V2S_CRED_MAX_USER + 1], shown[128];
                memcpy(user, buf, ul < V2S_CRED_MAX_USER ? ul : V2S_CRED_MAX_USER);
                user[ul < V2S_CRED_MAX_USER ? ul : V2S_CRED_MAX_USER] = '\0';
                v2s_debug("%s: logged in as \"%s\"", c->peer, v2s_shown(user, shown, sizeof(shown)));
            }
        }
    }
    /* The password goes no further: neither in the decoded copy nor in the head kept until the
     * next request (the header itself is hop-by-hop, never forwarded). */
    explicit_bzero(buf, sizeof(buf));
    explicit_bzero((char *)v, vl);
    if (!ok) {
        http_conn_fail_with(c, 407, "proxy authentication failed", challenge);
        return -1;
    }
    return 0;
}

/* --- the PAC file --- */

/* Whether the Host header (v, len) names host:port with this listener's port (80 when it gives
 * none) and only the characters a host may have, so that it can go into the script. */
static int http_pac_host_ok(const char *v, size_t len, uint16_t port)
{
    size_t i = 0, host_end;
    if (len == 0 || len > 260)
        return 0;
    if (v[0] == '[') {
        while (i < len && v[i] != ']') {
            char ch = v[i];
            if (i > 0 && !((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F') ||
                           ch == ':' || ch == '.'))
                return 0;
            i++;
        }
        if (i == len || i < 3)
            return 0;
        host_end = ++i;
    } else {
        while (i < len && v[i] != ':') {
            char ch = v[i];
            if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '.' ||
                  ch == '-' || ch == '_'))
                return 0;
            i++;
        }
        host_end = i;
    }
    if (host_end == 0)
        return 0;
    unsigned p = 80;
    if (i < len) {
        if (v[i] != ':' || i + 1 == len || len - i > 6)
            return 0;
        p = 0;
        for (i++; i < len; i++) {
            if (v[i] < '0' || v[i] > '9')
                return 0;
            p = p * 10 + (unsigned)(v[i] - '0');
        }
    }
    return p == port;
}

/* The proxy's host:port as the client reached it: the Host header when it names this listener,
 * else the connection's local address. */
static void http_pac_proxy(struct http_conn *c, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    struct v2s_addr local;
    uint16_t port = 0;
    snprintf(out, cap, "127.0.0.1:0");
    if (uv_tcp_getsockname(&c->client, (struct sockaddr *)&ss, &sl) == 0 &&
        v2s_addr_from_sockaddr((const struct sockaddr *)&ss, &local, &port) == 0) {
        v2s_addr_unmap_v4(&local); /* a listener on [::] reached over IPv4 */
        char buf[V2S_ADDR_STRLEN];
        snprintf(out, cap, "%s", v2s_addr_format_port(&local, port, buf, sizeof(buf)));
    }
    size_t hl;
    const char *hv = http_msg_header(&c->req, "host", &hl);
    if (hv && http_pac_host_ok(hv, hl, port)) {
        int has_port = hv[hl - 1] != ']' && memchr(hv, ':', hl) != NULL;
        snprintf(out, cap, has_port ? "%.*s" : "%.*s:80", (int)hl, hv);
    }
}

/* Whether the request is for the PAC file: GET or HEAD of exactly /proxy.pac or /wpad.dat. */
static int http_conn_is_pac(const struct http_conn *c)
{
    const struct http_msg *m = &c->req;
    if (!c->hp->router || (m->p.method != HTTP_GET && m->p.method != HTTP_HEAD))
        return 0;
    const char *t = m->text + m->target;
    return (m->target_len == 10 && memcmp(t, "/proxy.pac", 10) == 0) ||
           (m->target_len == 9 && memcmp(t, "/wpad.dat", 9) == 0);
}

/* Answers the PAC file, written again when the routes (or the name the client used) changed.
 * No credentials are asked: browsers fetch it without proxy authentication, and it tells
 * nothing the proxy's answers would not. */
static void http_conn_pac(struct http_conn *c)
{
    struct http_proxy *hp = c->hp;
    struct http_msg *m = &c->req;
    if ((m->p.flags & F_CHUNKED) || (m->p.content_length != 0 && m->p.content_length != UINT64_MAX)) {
        http_conn_fail(c, 400, "a request for the PAC file has no body");
        return;
    }
    char proxy[300];
    http_pac_proxy(c, proxy, sizeof(proxy));
    if (!hp->pac || hp->pac_generation != hp->router->generation || strcmp(hp->pac_proxy, proxy) != 0) {
        free(hp->pac);
        hp->pac = router_pac(hp->router, proxy);
        hp->pac_generation = hp->router->generation;
        snprintf(hp->pac_proxy, sizeof(hp->pac_proxy), "%s", proxy);
        if (!hp->pac) {
            http_conn_fail(c, 500, "out of memory");
            return;
        }
    }
    http_upstream_release(c->up);
    size_t body = strlen(hp->pac);
    int head = m->p.method == HTTP_HEAD;
    const char *conn = !c->keep_alive ? "Connection: close\r\n"
                       : (m->p.http_major == 1 && m->p.http_minor == 0) ? "Connection: keep-alive\r\n"
                                                                         : "";
    size_t cap = 512 + (head ? 0 : body);
    c->wbuf = malloc(cap);
    if (!c->wbuf) {
        http_conn_fail(c, 500, "out of memory");
        return;
    }
    int n = snprintf((char *)c->wbuf, cap,
                     "HTTP/1.1 200 OK\r\nContent-Type: application/x-ns-proxy-autoconfig\r\n"
                     "Content-Length: %zu\r\nCache-Control: max-age=60\r\n%s\r\n",
                     body, conn);
    if (!head) {
        memcpy(c->wbuf + n, hp->pac, body);
        n += (int)body;
    }
    v2s_debug("%s: %s %.*s: the PAC file (PROXY %s)", c->peer, head ? "HEAD" : "GET", (int)m->target_len,
              m->text + m->target, proxy);
    /* The answer is whole: the connection goes back to reading the next request once it is
     * written (http_conn_client_written), what the client pipelines meanwhile is kept. */
    c->state = HTTP_CONN_FORWARD;
    c->req_done = c->resp_done = c->resp_started = 1;
    uv_buf_t b = uv_buf_init((char *)c->wbuf, (unsigned)n);
    c->wreq.data = c;
    c->writing = 1;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->client, &b, 1, http_conn_client_written) < 0) {
        c->writing = 0;
        http_conn_close(c, 1);
    }
}

/* A request head is complete: where it goes, and how it is sent there. */
static void http_conn_request(struct http_conn *c)
{
    struct http_msg *m = &c->req;
    uv_timer_stop(&c->timer);
    c->keep_alive = http_should_keep_alive(&m->p);
    c->req_done = c->resp_done = c->resp_started = 0;
    if (http_conn_is_pac(c)) {
        http_conn_pac(c);
        return;
    }
    if (c->hp->creds && http_conn_authorize(c) < 0)
        return;
    if (m->p.method == HTTP_CONNECT) {
        http_conn_connect(c);
        return;
    }
    const char *url = m->text + m->target;
    size_t url_len = m->target_len;
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(url, url_len, 0, &u) != 0) {
        http_conn_fail(c, 400, "malformed request target");
        return;
    }
    if (!(u.field_set & (1 << UF_SCHEMA)) || !(u.field_set & (1 << UF_HOST))) {
        http_conn_fail(c, 400, "this is a proxy: the request needs an absolute http:// URI");
        return;
    }
    if (u.field_data[UF_SCHEMA].len != 4 || strncasecmp(url + u.field_data[UF_SCHEMA].off, "http", 4) != 0) {
        http_conn_fail(c, 501, "only http:// URIs are proxied (use CONNECT for https)");
        return;
    }
    char host[256];
    if (u.field_data[UF_HOST].len >= sizeof(host) || u.field_data[UF_HOST].len == 0) {
        http_conn_fail(c, 400, "host name too long");
        return;
    }
    memcpy(host, url + u.field_data[UF_HOST].off, u.field_data[UF_HOST].len);
    host[u.field_data[UF_HOST].len] = '\0';
    uint16_t port = (u.field_set & (1 << UF_PORT)) ? u.port : 80;
    if (port == 0) {
        http_conn_fail(c, 400, "port 0");
        return;
    }
    /* The origin-form target: the path and query, without the fragment. */
    size_t start = url_len, end = url_len;
    if (u.field_set & (1 << UF_PATH))
        start = u.field_data[UF_PATH].off;
    else if (u.field_set & (1 << UF_QUERY))
        start = u.field_data[UF_QUERY].off - 1;
    if (u.field_set & (1 << UF_FRAGMENT))
        end = u.field_data[UF_FRAGMENT].off - 1;
    if (start > end)
        start = end;
    char hosthdr[300], shown[256];
    int v6 = strchr(host, ':') != NULL;
    if (u.field_set & (1 << UF_PORT))
        snprintf(hosthdr, sizeof(hosthdr), v6 ? "[%s]:%u" : "%s:%u", host, port);
    else
        snprintf(hosthdr, sizeof(hosthdr), v6 ? "[%s]" : "%s", host);
    snprintf(c->target, sizeof(c->target), v6 ? "[%s]:%u" : "%s:%u", v2s_shown(host, shown, sizeof(shown)), port);
    /* No path ("http://host", "http://host?q"): "/" goes first. */
    int slash = start == end || url[start] != '/';
    char *origin = malloc(end - start + 2);
    int rc = -ENOMEM;
    if (origin) {
        origin[0] = '/';
        memcpy(origin + slash, url + start, end - start);
        rc = http_msg_write_request_head(m, origin, end - start + (size_t)slash, hosthdr, NULL);
        free(origin);
    }
    if (rc < 0) {
        http_conn_fail(c, 500, "out of memory");
        return;
    }
    c->head_method = m->p.method == HTTP_HEAD;
    v2s_debug("%s: %s to %s", c->peer, http_method_str((enum http_method)m->p.method), c->target);
    if (c->up && c->up->reusable && strcmp(c->up->authority, c->target) == 0) {
        c->up->reusable = 0;
        http_conn_forward_start(c);
        return;
    }
    http_upstream_release(c->up);
    c->state = HTTP_CONN_DIALING;
    if ((rc = http_upstream_open(c, host, port, c->target)) < 0) {
        char why[400];
        snprintf(why, sizeof(why), "%s: %s", c->target, uv_strerror(rc));
        v2s_info("%s -> %s: %s (HTTP %d)", c->peer, c->target, uv_strerror(rc), http_status_for(rc));
        http_conn_fail(c, http_status_for(rc), why);
    }
}

/* Bytes from the client: the next request's head, or the body of the one being sent. */
static void http_conn_client_input(struct http_conn *c, const uint8_t *data, size_t len)
{
    for (;;) {
        int parsing = c->state == HTTP_CONN_HEAD ||
                      (c->state == HTTP_CONN_FORWARD && !c->req_done && c->up && !c->up->writing);
        if (!parsing)
            break;
        size_t used;
        enum http_msg_event ev = http_msg_feed(&c->req, data, len, &used);
        data += used;
        len -= used;
        if (ev == HTTP_MSG_ERROR) {
            v2s_info("%s: bad HTTP request: %s", c->peer, c->req.why ? c->req.why : "malformed");
            http_conn_fail(c, c->req.status ? c->req.status : 400, c->req.why ? c->req.why : "bad request");
            return;
        }
        if (ev == HTTP_MSG_HEAD) {
            if (c->state != HTTP_CONN_HEAD || http_conn_keep(c, data, len) < 0) {
                http_conn_fail(c, 400, "too much pipelined");
                return;
            }
            http_conn_request(c);
            if (c->state == HTTP_CONN_HEAD)
                break;
            http_conn_update_reading(c);
            return;
        }
        if (ev == HTTP_MSG_DONE) {
            c->req_done = 1;
            break;
        }
        /* NEED_MORE: every byte is used. */
        break;
    }
    if (c->state == HTTP_CONN_CLOSING || c->state == HTTP_CONN_ENDING)
        return;
    if (http_conn_keep(c, data, len) < 0) {
        http_conn_fail(c, 400, "too much pipelined");
        return;
    }
    http_upstream_flush(c);
    http_conn_update_reading(c);
}

static void http_conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct http_conn *c = h->data;
    (void)suggested;
    /* Shared by every connection: the read callback consumes it before returning. */
    *buf = uv_buf_init((char *)c->hp->read_buf, HTTP_READ_BUF);
}

static void http_conn_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct http_conn *c = stream->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        v2s_debug("%s: client left (%s)", c->peer, uv_strerror((int)nread));
        /* Even a half-close after a whole request: as nginx and Squid do by default, the end of
         * the client's side means it gave up, and the origin is let go. */
        http_conn_close(c, 0);
        return;
    }
    http_conn_client_input(c, (const uint8_t *)buf->base, (size_t)nread);
}

/* --- the answer --- */

static void http_upstream_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct http_upstream *up = h->data;
    (void)suggested;
    *buf = uv_buf_init((char *)up->hp->read_buf, HTTP_READ_BUF);
}

/* The answer ended before it was complete, or could not be read. */
static void http_conn_bad_answer(struct http_conn *c, const char *why)
{
    v2s_info("%s -> %s: %s", c->peer, c->target, why);
    http_conn_fail(c, 502, why);
}

static void http_upstream_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct http_upstream *up = s->data;
    struct http_conn *c = up->conn;
    if (nread == 0)
        return;
    if (!c || c->state != HTTP_CONN_FORWARD || c->resp_done) {
        /* An idle connection kept for the next request ended or spoke out of turn. */
        http_upstream_release(up);
        return;
    }
    const uint8_t *data = (const uint8_t *)buf->base;
    size_t len = nread > 0 ? (size_t)nread : 0;
    while (!c->resp_done) {
        size_t used = 0;
        enum http_msg_event ev = nread < 0 ? http_msg_finish(&c->resp) : http_msg_feed(&c->resp, data, len, &used);
        data += used;
        len -= used;
        if (ev == HTTP_MSG_ERROR || (nread < 0 && ev == HTTP_MSG_NEED_MORE)) {
            http_conn_bad_answer(c, nread < 0 ? "the destination closed the connection without a complete answer"
                                              : "malformed answer from the destination");
            return;
        }
        if (ev == HTTP_MSG_HEAD) {
            struct http_msg *m = &c->resp;
            const char *extra = NULL;
            if (m->p.status_code >= 200) {
                int eof_framed = !(m->p.flags & F_CHUNKED) && m->p.content_length == UINT64_MAX && !m->skip_body &&
                                 m->p.status_code != 204 && m->p.status_code != 304;
                if (eof_framed || !c->req_done)
                    c->keep_alive = 0;
                if (!c->keep_alive)
                    extra = "Connection: close\r\n";
                c->resp_started = 1;
            } else if (m->p.status_code == 101) {
                http_conn_bad_answer(c, "the destination switched protocols, which this proxy does not relay");
                return;
            }
            if (http_msg_write_response_head(m, extra) < 0) {
                http_conn_fail(c, 500, "out of memory");
                return;
            }
            continue;
        }
        if (ev == HTTP_MSG_DONE) {
            if (c->resp.p.status_code < 200) {
                http_msg_next(&c->resp);
                continue;
            }
            c->resp_done = 1;
            up->reusable = nread > 0 && len == 0 && http_should_keep_alive(&c->resp.p);
            break;
        }
        break; /* NEED_MORE */
    }
    if (nread < 0)
        http_upstream_release(up);
    http_conn_client_flush(c);
    if (c->resp_done && !c->writing && c->state == HTTP_CONN_FORWARD)
        http_conn_answer_done(c);
}

/* --- the listener --- */

static void http_conn_timeout(uv_timer_t *t)
{
    struct http_conn *c = t->data;
    if (c->state != HTTP_CONN_HEAD)
        return;
    if (c->req.in_head || c->pending_len > 0) {
        v2s_info("%s: HTTP request head timed out", c->peer);
        http_conn_fail(c, 408, "the request head did not come in time");
    } else
        http_conn_close(c, 0);
}

static void http_proxy_on_connection(uv_stream_t *listener, int status);

static void http_proxy_refused_closed(void *arg, int retry)
{
    struct http_proxy *hp = arg;
    hp->handles_open--;
    if (retry && !hp->closing) {
        http_proxy_on_connection((uv_stream_t *)&hp->listener, 0);
        return;
    }
    http_proxy_maybe_free(hp);
}

static void http_proxy_on_connection(uv_stream_t *listener, int status)
{
    struct http_proxy *hp = listener->data;
    if (status < 0) {
        v2s_warn("http: accept failed: %s", uv_strerror(status));
        return;
    }
    if (conn_limit_take(&hp->limit, hp->shared, uv_now(listener->loop)) < 0) {
        hp->handles_open += refuser_refuse(&hp->refuser);
        return;
    }
    struct http_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        conn_limit_give(&hp->limit, hp->shared);
        hp->handles_open += refuser_refuse(&hp->refuser);
        return;
    }
    c->hp = hp;
    uv_tcp_init(listener->loop, &c->client);
    uv_timer_init(listener->loop, &c->timer);
    c->client.data = c;
    c->timer.data = c;
    v2s_list_init(&c->node);
    v2s_list_push_front(&hp->conns, &c->node);
    http_msg_init(&c->req, 0);
    http_msg_init(&c->resp, 1);
    c->state = HTTP_CONN_HEAD;
    if (uv_accept(listener, (uv_stream_t *)&c->client) < 0) {
        http_conn_close(c, 0);
        return;
    }
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    snprintf(c->peer, sizeof(c->peer), "?");
    if (uv_tcp_getpeername(&c->client, (struct sockaddr *)&ss, &sl) == 0)
        v2s_sockaddr_format((const struct sockaddr *)&ss, c->peer, sizeof(c->peer));
    uv_tcp_nodelay(&c->client, 1);
    uv_timer_start(&c->timer, http_conn_timeout, hp->handshake_timeout_ms, 0);
    if (uv_read_start((uv_stream_t *)&c->client, http_conn_alloc_cb, http_conn_read_cb) < 0) {
        http_conn_close(c, 0);
        return;
    }
    c->reading = 1;
}

int http_proxy_new(struct http_proxy **out, const struct http_proxy_config *cfg, const struct sockaddr *addr)
{
    struct http_proxy *hp = calloc(1, sizeof(*hp));
    if (!hp)
        return UV_ENOMEM;
    hp->read_buf = malloc(HTTP_READ_BUF);
    if (!hp->read_buf) {
        free(hp);
        return UV_ENOMEM;
    }
    hp->out = cfg->out;
    hp->connect_timeout_ms = cfg->connect_timeout_ms;
    hp->handshake_timeout_ms = cfg->handshake_timeout_ms;
    hp->shared = cfg->shared;
    v2s_list_init(&hp->conns);
    v2s_list_init(&hp->upstreams);
    hp->creds = cfg->credentials;
    hp->router = cfg->router;
    uv_tcp_init(cfg->loop, &hp->listener);
    hp->listener.data = hp;
    hp->handles_open = 1;
    refuser_init(&hp->refuser, (uv_stream_t *)&hp->listener, http_proxy_refused_closed, hp);
    int rc = uv_tcp_bind(&hp->listener, addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&hp->listener, 511, http_proxy_on_connection);
    if (rc < 0) {
        http_proxy_close(hp, NULL, NULL);
        return rc;
    }
    /* Named by the address it got (the port the kernel chose for port 0). */
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    if (uv_tcp_getsockname(&hp->listener, (struct sockaddr *)&ss, &sl) == 0)
        addr = (const struct sockaddr *)&ss;
    char where[V2S_ADDR_STRLEN];
    v2s_sockaddr_format(addr, where, sizeof(where));
    snprintf(hp->name, sizeof(hp->name), "HTTP listener %s", where);
    conn_limit_init(&hp->limit, cfg->max_conns, hp->name, "--listener-max-connections");
    *out = hp;
    return 0;
}

int http_proxy_local(const struct http_proxy *hp, struct sockaddr *addr, int *len)
{
    return uv_tcp_getsockname(&hp->listener, addr, len);
}

static void http_proxy_listener_closed(uv_handle_t *h)
{
    struct http_proxy *hp = h->data;
    hp->handles_open--;
    http_proxy_maybe_free(hp);
}

void http_proxy_close(struct http_proxy *hp, void (*cb)(void *arg), void *arg)
{
    hp->closing = 1;
    hp->close_cb = cb;
    hp->close_arg = arg;
    uv_close((uv_handle_t *)&hp->listener, http_proxy_listener_closed);
    /* As the SOCKS listener does (a reload closes listeners under live relays): tunnels carry on
     * until they end, an answer under way is finished and then its connection closed, the
     * others (idle between requests, still dialing) are closed now. */
    struct v2s_list *n, *tmp;
    V2S_LIST_FOREACH_SAFE(n, tmp, &hp->conns) {
        struct http_conn *c = V2S_LIST_ENTRY(n, struct http_conn, node);
        if (c->state == HTTP_CONN_FORWARD)
            c->keep_alive = 0;
        else if (c->state != HTTP_CONN_TUNNEL)
            http_conn_close(c, 0);
    }
}
