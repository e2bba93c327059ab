/* The HTTP proxy's side towards the origins (http/proxy.c has the client's): upstream
 * connections, and the answer read from them and written to the client.
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
 * The response is read with the request's parser (http/message.h), so that its end is known and
 * the client connection can carry the next request; an answer framed by the connection's end (no
 * length, not chunked) goes out with "Connection: close". The upstream is not read while a piece
 * of the answer is being written to the client, which is the backpressure from a slow client.
 *
 * The origin's timeout (origin_timeout_ms, HTTP_ORIGIN_TIMEOUT_MS by default) runs while the
 * proxy waits on the origin and on nothing else: from the request's end, or from a piece of the
 * request written to it and not yet taken, until the answer's end, again from each byte it sends
 * or takes. It stops while a piece of the answer is written to the client (a client slow to read
 * is not the origin's fault, and the origin is not read then), while the client's body is awaited
 * (the body's timeout runs then), and between requests (the handshake timeout's turn). When it
 * fires, the upstream is closed and the client gets a 504, or a reset when part of the answer
 * went out already: an answer cut short must not look complete.
 *
 * While a piece of the answer is written to the client, the same timer waits on the client
 * instead (client_timeout_ms, HTTP_CLIENT_TIMEOUT_MS by default): it looks, every sixteenth of
 * that, whether the client took a byte (v2s_stream_untaken() went down), and once it took none
 * for the whole of it, the client is reset and the origin let go, with one line at info. A
 * client slow to read is not cut, only one that reads (next to) nothing: taken means acknowledged,
 * and a reader's window opens in steps of up to 1 MB (see v2s_stream_untaken()), so one that reads
 * less than that in the whole wait is taken for stopped. A stopped client shuts its window and is
 * never reset by TCP: it held the client, its slot, the origin's connection through the tunnel
 * and the origin for ever. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "base/addr.h"
#include "base/list.h"
#include "base/log.h"
#include "base/uvstream.h"
#include "http/internal.h"
#include "http/message.h"
#include "route/outbound.h"

static void http_conn_client_flush(struct http_conn *c);
static void http_conn_answer_done(struct http_conn *c);
static void http_upstream_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void http_upstream_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

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
void http_upstream_release(struct http_upstream *up)
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
    http_conn_origin_wait(c, 1); /* the origin took the piece */
    http_upstream_flush(c);
    if (!up->writing && c->state == HTTP_CONN_FORWARD && !c->req_done)
        http_conn_resume(c);
}

/* Sends what the request parser produced upstream, one write at a time. */
void http_upstream_flush(struct http_conn *c)
{
    struct http_upstream *up = c->up;
    if (!up || up->writing || c->req.out_len == 0 || c->state != HTTP_CONN_FORWARD)
        return;
    size_t len;
    up->wbuf = http_msg_take_out(&c->req, &len);
    if (c->may_retry) {
        /* Kept to be sent again (http_conn_retry); past the cap, the request is not retried. */
        uint8_t *r = c->replay_len + len <= HTTP_RETRY_MAX ? realloc(c->replay, c->replay_len + len) : NULL;
        if (r) {
            memcpy(r + c->replay_len, up->wbuf, len);
            c->replay = r;
            c->replay_len += len;
        } else
            http_conn_replay_drop(c);
    }
    uv_buf_t b = uv_buf_init((char *)up->wbuf, (unsigned)len);
    up->wreq.data = up;
    up->writing = 1;
    if (uv_write(&up->wreq, (uv_stream_t *)&up->pipe, &b, 1, http_upstream_written) < 0) {
        up->writing = 0;
        free(up->wbuf);
        up->wbuf = NULL;
        http_conn_fail(c, 502, "the destination's connection is gone");
        return;
    }
    http_conn_origin_wait(c, 1); /* the origin is to take a new piece */
}

/* The destination is reached: the request goes out, the answer is read. */
void http_conn_forward_start(struct http_conn *c)
{
    c->state = HTTP_CONN_FORWARD;
    http_msg_free(&c->resp);
    http_msg_init(&c->resp, 1);
    c->resp.skip_body = c->head_method;
    /* An origin may answer an HTTP/1.0 request chunked (RFC 9112 7.1 says it must not), and such
     * a client cannot read chunks: it would show their sizes as part of the page. The bare bytes
     * go to it instead, ended by the connection's end, as RFC 9112 7.1.3 has a proxy do. */
    c->resp.unchunk = c->req.p.http_major == 1 && c->req.p.http_minor == 0;
    int rc = uv_read_start((uv_stream_t *)&c->up->pipe, http_upstream_alloc_cb, http_upstream_read_cb);
    if (rc < 0 && rc != UV_EALREADY) {
        http_conn_fail(c, 502, "cannot read the destination's connection");
        return;
    }
    http_conn_resume(c);
}

/* Whether the proxy waits on the origin, and on nothing else: an answer is owed (the request
 * ended, or a piece of it is being written to the origin) and no piece of it is being written to
 * the client. */
static int http_conn_awaits_origin(const struct http_conn *c)
{
    return c->state == HTTP_CONN_FORWARD && c->up && !c->resp_done && !c->writing &&
           (c->req_done || c->up->writing);
}

/* The origin sent and took nothing for origin_timeout_ms while the proxy waited on it. */
static void http_conn_origin_timeout(uv_timer_t *t)
{
    struct http_conn *c = t->data;
    if (!http_conn_awaits_origin(c))
        return;
    if (c->resp_started) {
        v2s_info("%s -> %s: the destination stopped in the middle of its answer", c->peer, c->target);
        http_conn_close(c, 1);
        return;
    }
    v2s_info("%s -> %s: the destination did not answer in time (HTTP 504)", c->peer, c->target);
    http_conn_fail(c, 504, "the destination did not answer in time");
}

void http_conn_origin_wait(struct http_conn *c, int progress)
{
    if (c->writing && c->state == HTTP_CONN_FORWARD)
        return; /* the timer waits on the client meanwhile (http_conn_client_wait()) */
    if (!http_conn_awaits_origin(c))
        uv_timer_stop(&c->origin_timer);
    else if (progress || !uv_is_active((uv_handle_t *)&c->origin_timer))
        uv_timer_start(&c->origin_timer, http_conn_origin_timeout, c->hp->origin_timeout_ms, 0);
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
            snprintf(why, sizeof(why), "%s: %s", c->target, outbound_strerror(status));
            v2s_info("%s -> %s: %s (HTTP %d)", c->peer, c->target, outbound_strerror(status), http_status_for(status));
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
int http_upstream_open(struct http_conn *c, const char *host, uint16_t port, const char *authority)
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

/* --- the answer --- */

static void http_upstream_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct http_upstream *up = h->data;
    (void)suggested;
    *buf = uv_buf_init((char *)up->hp->read_buf, HTTP_READ_BUF);
}

/* The request is not to be sent again: what was kept for that goes. */
void http_conn_replay_drop(struct http_conn *c)
{
    c->may_retry = 0;
    free(c->replay);
    c->replay = NULL;
    c->replay_len = 0;
}

/* The kept connection a request went out on ended before any byte of its answer came: the origin
 * closed it as it went idle, just when the request arrived, a race no client of a keep-alive
 * connection can avoid. An idempotent request with all it sent kept goes again on a new connection,
 * once (the new one is not kept, so it is not retried), which is what browsers, Squid and nginx
 * do; a POST, or a request whose answer began, gets the 502. */
static void http_conn_retry(struct http_conn *c)
{
    v2s_debug("%s -> %s: the kept connection ended before an answer; the request goes again", c->peer,
              c->target);
    http_upstream_release(c->up);
    int rc = http_msg_put_back(&c->req, c->replay, c->replay_len);
    http_conn_replay_drop(c);
    if (rc < 0) {
        http_conn_fail(c, 500, "out of memory");
        return;
    }
    c->state = HTTP_CONN_DIALING;
    http_conn_update_reading(c);
    http_conn_origin_wait(c, 0); /* the connect timeout's turn */
    if ((rc = http_upstream_open(c, c->host, c->port, c->target)) < 0) {
        char why[400];
        snprintf(why, sizeof(why), "%s: %s", c->target, outbound_strerror(rc));
        v2s_info("%s -> %s: %s (HTTP %d)", c->peer, c->target, outbound_strerror(rc), http_status_for(rc));
        http_conn_fail(c, http_status_for(rc), why);
    }
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
    if (c->may_retry && nread < 0) {
        http_conn_retry(c);
        return;
    }
    if (c->may_retry)
        http_conn_replay_drop(c); /* an answer began: whatever happens now, it is not sent again */
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
                int eof_framed = (!(m->p.flags & F_CHUNKED) && m->p.content_length == UINT64_MAX && !m->skip_body &&
                                  m->p.status_code != 204 && m->p.status_code != 304) ||
                                 m->unchunked;
                if (eof_framed || !c->req_done)
                    c->keep_alive = 0;
                if (!c->keep_alive)
                    extra = "Connection: close\r\n";
                else if (c->req.p.http_major == 1 && c->req.p.http_minor == 0)
                    /* An HTTP/1.0 client keeps the connection only when told (the origin's
                     * Connection, hop-by-hop, is not passed on): without it, ApacheBench -k waits
                     * for the end of a connection the proxy keeps open. */
                    extra = "Connection: keep-alive\r\n";
                c->resp_started = 1;
            } else if (m->p.status_code == 101) {
                http_conn_bad_answer(c, "the destination switched protocols, which this proxy does not relay");
                return;
            } else if (c->req.p.http_major == 1 && c->req.p.http_minor == 0) {
                /* HTTP/1.0 has no 1xx: such a client takes one for the answer, and the real one
                 * for garbage. RFC 9110 15.2: a server MUST NOT send it one (Squid drops them
                 * too). Origins that go by it send none to the 1.0 request the proxy forwards,
                 * but some do (Go's net/http writes a 103 Early Hints whatever the version). */
                continue;
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
    /* The origin sent something: the wait on it starts again, unless the bytes are being written
     * to the client (then the client is awaited) or ended the answer. */
    http_conn_origin_wait(c, 1);
    if (c->resp_done && !c->writing && c->state == HTTP_CONN_FORWARD)
        http_conn_answer_done(c);
}

/* The wait on the client while a piece of the answer is written to it (see the top of the
 * file): it took a byte since the last look, or it is cut once it took none for too long. */
static void http_conn_client_check(uv_timer_t *t)
{
    struct http_conn *c = t->data;
    if (!c->writing || c->state != HTTP_CONN_FORWARD) {
        uv_timer_stop(t);
        return;
    }
    size_t untaken = v2s_stream_untaken(&c->client);
    uint64_t now = uv_now(t->loop);
    if (untaken < c->client_untaken) {
        c->client_untaken = untaken;
        c->client_took_ms = now;
        return;
    }
    if (now - c->client_took_ms < c->hp->client_timeout_ms)
        return;
    v2s_info("%s -> %s: the client took no byte of the answer for %u s: closed", c->peer, c->target,
             c->hp->client_timeout_ms / 1000);
    http_conn_close(c, 1);
}

/* A piece of the answer went to the client's socket: the wait on the client starts. Most pieces
 * are taken before the first look, so the first look, not this, asks the kernel (SIOCOUTQ): no
 * system call more per piece written. The wait then counts from that look, a sixteenth late. */
static void http_conn_client_wait(struct http_conn *c)
{
    unsigned step = c->hp->client_timeout_ms / 16;
    if (step == 0)
        step = 1;
    c->client_untaken = SIZE_MAX;
    uv_timer_start(&c->origin_timer, http_conn_client_check, step, step);
}

void http_conn_client_written(uv_write_t *req, int status)
{
    struct http_conn *c = req->data;
    c->writing = 0;
    if (c->state == HTTP_CONN_FORWARD)
        uv_timer_stop(&c->origin_timer); /* the client took the piece; the origin's turn, if any */
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
        if (rc < 0 && rc != UV_EALREADY) {
            http_conn_close(c, 1);
            return;
        }
        /* The origin is read again: it may have waited on the client all this time. */
        http_conn_origin_wait(c, 1);
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
        return;
    }
    if (c->state == HTTP_CONN_FORWARD)
        http_conn_client_wait(c);
}

/* The answer is written: close, or wait for the next request. */
static void http_conn_answer_done(struct http_conn *c)
{
    if (!c->req_done || (!c->keep_alive && c->pending_len > 0)) {
        /* The origin answered before the request's end (a 413 or 401 to an upload), or the
         * client sent more behind a last request: closed with its bytes unread, the connection
         * would end with a reset that can destroy the answer. */
        http_conn_linger(c);
        return;
    }
    if (!c->keep_alive) {
        http_conn_close(c, 0);
        return;
    }
    if (c->up && !c->up->reusable)
        http_upstream_release(c->up);
    c->state = HTTP_CONN_HEAD;
    uv_timer_stop(&c->origin_timer); /* the upstream kept is idle, not owing an answer */
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
