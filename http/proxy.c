/* The HTTP proxy listener (-H): the client connections.
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
 * closed then; one to the same host:port that the origin kept open is used again. When the origin
 * ends that kept connection before any byte of the answer (its idle timeout fired as the request
 * came), an idempotent request goes again, once, on a new connection (http/upstream.c). An answer
 * framed by the connection's end (no length, not chunked) goes out with "Connection: close".
 *
 * As RFC 9110 asks of a proxy: requests and answers go on with "Via: 1.x vpn2socks" (7.6.3; a
 * pseudonym, so that no origin learns the machine's name); a TRACE or OPTIONS with Max-Forwards:
 * 0 is answered here, one with more goes on with one less (7.6.2); an HTTP/1.1 request without
 * Host, or any with two, is a 400 (RFC 9112 3.2); a chunked answer to an HTTP/1.0 client goes to
 * it de-chunked and ended by the connection's end (RFC 9112 7.1).
 *
 * The proxy's other jobs have a file each: http/upstream.c the connections to the origins and the
 * answers read from them, http/reply.c the error answers the proxy writes itself, and
 * http/pac_serve.c the PAC file; http/internal.h holds what they share.
 *
 * With credentials (--socks-auth), every request (CONNECT included) needs a Proxy-Authorization
 * "Basic" of one of the users; without one, or with a wrong one, the answer is 407 with
 * Proxy-Authenticate: Basic realm="vpn2socks", and the connection closes. Refusals are logged
 * through base/credentials.h (rate limited; a request without credentials, which is how a
 * browser asks for the challenge, only at debug level), never with the password.
 *
 * Caps, the refusal at the cap and the handshake timeout are the SOCKS listener's
 * (socks/server.c); the timeout runs from accept, and again from the end of each answer, until
 * a complete request head (408 when part of one came, a plain close when nothing did). A request
 * body gets 408 when none of it came for HTTP_BODY_TIMEOUT_MS while the proxy waited. An origin
 * that sends nothing for HTTP_ORIGIN_TIMEOUT_MS while its answer is owed gets its connection
 * closed, and the client a 504 (http/upstream.c); a client that takes no byte of an answer for
 * HTTP_CLIENT_TIMEOUT_MS is reset, and the origin let go. Errors answer with a status (and a line
 * of text, but to a HEAD) and close: 400 malformed (414 a target, 431 a head over 64 KiB or of
 * more than 128 headers, 505 a version other than 1.x), 403 the router rejected the destination,
 * 407 no or wrong credentials, 501 a scheme other than http, 502 the destination refused, was
 * unreachable, did not resolve or gave no proper answer (an answer of more than 1024 header lines
 * included), 504 it did not answer the connect, or the request, in time, or its name's servers
 * did not answer. Once part of an answer went out, an error can only reset the client. */
#include "http/proxy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <uv.h>

#include "base/addr.h"
#include "base/credentials.h"
#include "base/list.h"
#include "base/log.h"
#include "http/internal.h"
#include "http/message.h"
#include "route/outbound.h"

static void http_conn_client_input(struct http_conn *c, const uint8_t *data, size_t len);
static void http_conn_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

void http_proxy_maybe_free(struct http_proxy *hp)
{
    listener_maybe_free(&hp->l);
}

static int http_proxy_busy(void *arg)
{
    struct http_proxy *hp = arg;
    return !v2s_list_empty(&hp->conns) || !v2s_list_empty(&hp->upstreams);
}

static void http_proxy_free(void *arg)
{
    struct http_proxy *hp = arg;
    free(hp->read_buf);
    free(hp->pac);
    free(hp);
}

/* --- the client connection --- */

static void http_conn_free(struct http_conn *c)
{
    struct http_proxy *hp = c->hp;
    v2s_list_remove(&c->node);
    listener_give(&hp->l);
    http_msg_free(&c->req);
    http_msg_free(&c->resp);
    free(c->pending);
    free(c->wbuf);
    free(c->replay);
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
void http_conn_close(struct http_conn *c, int reset)
{
    if (c->state == HTTP_CONN_CLOSING)
        return;
    if (c->dial)
        outbound_cancel(c->dial);
    c->dial = NULL;
    http_upstream_release(c->up);
    c->state = HTTP_CONN_CLOSING;
    c->handles_open = 3;
    uv_close((uv_handle_t *)&c->timer, http_conn_handle_closed);
    uv_close((uv_handle_t *)&c->origin_timer, http_conn_handle_closed);
    if (!reset || uv_tcp_close_reset(&c->client, http_conn_handle_closed) < 0)
        uv_close((uv_handle_t *)&c->client, http_conn_handle_closed);
}

/* The relay closed the client handle (CONNECT); only the timers are left. */
static void http_conn_relay_done(void *arg)
{
    struct http_conn *c = arg;
    c->state = HTTP_CONN_CLOSING;
    c->handles_open = 2;
    uv_close((uv_handle_t *)&c->timer, http_conn_handle_closed);
    uv_close((uv_handle_t *)&c->origin_timer, http_conn_handle_closed);
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
void http_conn_resume(struct http_conn *c)
{
    uint8_t *p = c->pending;
    size_t len = c->pending_len;
    c->pending = NULL;
    c->pending_len = 0;
    http_conn_client_input(c, p, len);
    free(p);
}

/* A request body stalled: no byte of it for body_timeout_ms while the proxy waited for one. */
static void http_conn_body_timeout(uv_timer_t *t)
{
    struct http_conn *c = t->data;
    if (c->state != HTTP_CONN_FORWARD || c->req_done)
        return;
    v2s_info("%s -> %s: HTTP request body timed out", c->peer, c->target);
    http_conn_fail(c, 408, "the request body did not come in time");
}

/* The client is read while a request head or body is parsed, and while an answer is awaited
 * (what it pipelines meanwhile is kept, up to HTTP_MAX_PENDING, not parsed): so a client that
 * goes away is noticed. While a body is read, the timer runs from each call (each read, each
 * piece written upstream): a client that trickles its body, or stops, cannot hold its slot and
 * the origin's connection forever. It does not run while the origin is slow to take the body
 * (a write upstream in flight, the client not read): the client is not the one stalling. */
void http_conn_update_reading(struct http_conn *c)
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
    if (c->state == HTTP_CONN_FORWARD) {
        if (!c->req_done && c->reading)
            uv_timer_start(&c->timer, http_conn_body_timeout, c->hp->body_timeout_ms, 0);
        else
            uv_timer_stop(&c->timer);
    }
}

/* --- CONNECT --- */

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
        snprintf(why, sizeof(why), "%s: %s", c->target, outbound_strerror(status));
        v2s_info("%s -> %s: %s (HTTP %d)", c->peer, c->target, outbound_strerror(status), http_status_for(status));
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
        snprintf(why, sizeof(why), "%s: %s", c->target, outbound_strerror(rc));
        v2s_info("%s -> %s: %s (HTTP %d)", c->peer, c->target, outbound_strerror(rc), http_status_for(rc));
        http_conn_fail(c, http_status_for(rc), why);
    }
}

/* --- the request --- */

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

/* A TRACE or OPTIONS with Max-Forwards: 0 is for this proxy (RFC 9110 7.6.2), which answers it
 * as its final recipient: a TRACE with the request as it came (message/http, 9.3.8), an OPTIONS
 * with 200 and nothing more. Forwarded, it would probe the hop beyond; this is how "curl -X TRACE
 * -H 'Max-Forwards: 0'" finds out what a client's request looks like on reaching the proxy. */
static void http_conn_final(struct http_conn *c)
{
    struct http_msg *m = &c->req;
    v2s_debug("%s: %s with Max-Forwards: 0, answered here", c->peer, http_msg_method(m));
    if (m->p.method != HTTP_TRACE) {
        http_conn_reply(c, 200, NULL, NULL, NULL, 0);
        return;
    }
    size_t len;
    free(http_msg_take_out(m, &len)); /* nothing of its body yet, but to be sure */
    if (http_msg_write_trace(m) < 0) {
        http_conn_fail(c, 500, "out of memory");
        return;
    }
    uint8_t *echo = http_msg_take_out(m, &len);
    http_conn_reply(c, 200, NULL, "message/http", echo, len);
    free(echo);
}

/* A request head is complete: where it goes, and how it is sent there. */
static void http_conn_request(struct http_conn *c)
{
    struct http_msg *m = &c->req;
    uv_timer_stop(&c->timer);
    c->keep_alive = http_should_keep_alive(&m->p);
    c->req_done = c->resp_done = c->resp_started = 0;
    http_conn_replay_drop(c);
    /* RFC 9112 3.2: a server MUST answer 400 to an HTTP/1.1 request without Host, and to any
     * request with more than one; nginx does both. No client Host reaches the origin (the URI's
     * authority replaces them), but a client that breaks the rule is broken or probing, and is
     * told so rather than served. (The status endpoint, an origin of its own, goes on answering
     * health checks that leave Host out.) */
    size_t hosts = http_msg_header_count(m, "host");
    if (hosts > 1 || (hosts == 0 && m->p.http_minor >= 1)) {
        const char *why = hosts ? "more than one Host header" : "an HTTP/1.1 request without Host";
        v2s_info("%s: bad HTTP request: %s", c->peer, why);
        http_conn_fail(c, 400, why);
        return;
    }
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
    memcpy(c->host, host, sizeof(host));
    c->port = port;
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
    /* No path ("http://host", "http://host?q"): "/" goes first; but an OPTIONS of the host itself
     * (no path, no query) asks about the server: RFC 9112 3.2.4 has the last proxy send "*". */
    int slash = start == end || url[start] != '/';
    int star = m->p.method == HTTP_OPTIONS && start == end && !(u.field_set & (1 << UF_QUERY));
    char *origin = malloc(end - start + 2);
    int rc = -ENOMEM;
    if (origin) {
        origin[0] = star ? '*' : '/';
        memcpy(origin + slash, url + start, end - start);
        rc = http_msg_write_request_head(m, origin, end - start + (size_t)slash, hosthdr, NULL);
        free(origin);
    }
    if (rc < 0) {
        http_conn_fail(c, 500, "out of memory");
        return;
    }
    c->head_method = m->p.method == HTTP_HEAD;
    if (http_msg_max_forwards(m) == 0) {
        http_conn_final(c);
        return;
    }
    v2s_debug("%s: %s to %s", c->peer, http_msg_method(m), c->target);
    if (c->up && c->up->reusable && strcmp(c->up->authority, c->target) == 0) {
        c->up->reusable = 0;
        /* The origin may close a kept connection just as the request goes out on it (its idle
         * timeout): RFC 9112 9.3.1 lets an idempotent request go again then, and browsers,
         * Squid and nginx do, once. A method the parser does not know (QUERY is idempotent, but
         * the proxy cannot tell an extension that is) reads as POST and goes once. */
        enum http_method meth = (enum http_method)m->p.method;
        c->may_retry = meth == HTTP_GET || meth == HTTP_HEAD || meth == HTTP_OPTIONS || meth == HTTP_TRACE ||
                       meth == HTTP_PUT || meth == HTTP_DELETE;
        http_conn_forward_start(c);
        return;
    }
    http_upstream_release(c->up);
    c->state = HTTP_CONN_DIALING;
    if ((rc = http_upstream_open(c, host, port, c->target)) < 0) {
        char why[400];
        snprintf(why, sizeof(why), "%s: %s", c->target, outbound_strerror(rc));
        v2s_info("%s -> %s: %s (HTTP %d)", c->peer, c->target, outbound_strerror(rc), http_status_for(rc));
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
    /* The request's end may have come without a byte to send (the last of its trailers): the
     * wait on the answer begins. Bytes pipelined behind it do not put the wait off. */
    http_conn_origin_wait(c, 0);
}

void http_conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
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

/* --- the listener --- */

void http_conn_timeout(uv_timer_t *t)
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

/* A connection holding its slot of the caps (route/listener.h). */
static int http_proxy_accept(void *arg, uv_stream_t *listener)
{
    struct http_proxy *hp = arg;
    struct http_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return -1;
    c->hp = hp;
    uv_tcp_init(listener->loop, &c->client);
    uv_timer_init(listener->loop, &c->timer);
    uv_timer_init(listener->loop, &c->origin_timer);
    c->client.data = c;
    c->timer.data = c;
    c->origin_timer.data = c;
    v2s_list_init(&c->node);
    v2s_list_push_front(&hp->conns, &c->node);
    http_msg_init(&c->req, 0);
    http_msg_init(&c->resp, 1);
    c->state = HTTP_CONN_HEAD;
    if (uv_accept(listener, (uv_stream_t *)&c->client) < 0) {
        http_conn_close(c, 0);
        return 0;
    }
    listener_accepted(&c->client, c->peer, sizeof(c->peer));
    uv_timer_start(&c->timer, http_conn_timeout, hp->handshake_timeout_ms, 0);
    if (uv_read_start((uv_stream_t *)&c->client, http_conn_alloc_cb, http_conn_read_cb) < 0) {
        http_conn_close(c, 0);
        return 0;
    }
    c->reading = 1;
    return 0;
}

static const struct listener_ops http_proxy_ops = {
    .accept = http_proxy_accept,
    .busy = http_proxy_busy,
    .free = http_proxy_free,
};

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
    hp->body_timeout_ms = cfg->body_timeout_ms ? cfg->body_timeout_ms : HTTP_BODY_TIMEOUT_MS;
    hp->origin_timeout_ms = cfg->origin_timeout_ms ? cfg->origin_timeout_ms : HTTP_ORIGIN_TIMEOUT_MS;
    hp->client_timeout_ms = cfg->client_timeout_ms ? cfg->client_timeout_ms
                                                   : HTTP_CLIENT_TIMEOUT_MS;
    v2s_list_init(&hp->conns);
    v2s_list_init(&hp->upstreams);
    hp->creds = cfg->credentials;
    hp->router = cfg->router;
    listener_init(&hp->l, &http_proxy_ops, hp, cfg->shared, "http");
    int rc = listener_open(&hp->l, cfg->loop, addr);
    if (rc < 0)
        return rc;
    /* Named by the address it got (the port the kernel chose for port 0). */
    char where[V2S_ADDR_STRLEN];
    listener_where(&hp->l, addr, where, sizeof(where));
    snprintf(hp->name, sizeof(hp->name), "HTTP listener %s", where);
    listener_cap(&hp->l, cfg->max_conns, hp->name);
    *out = hp;
    return 0;
}

int http_proxy_local(const struct http_proxy *hp, struct sockaddr *addr, int *len)
{
    return listener_local(&hp->l, addr, len);
}

void http_proxy_close(struct http_proxy *hp, void (*cb)(void *arg), void *arg)
{
    listener_close(&hp->l, cb, arg);
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
