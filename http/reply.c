/* The answers the HTTP proxy writes itself rather than relays: an error's status line and short
 * text body, after which the connection ends. They are here, apart from the client connection
 * (http/proxy.c), because every part of the proxy ends a request this way, and because ending
 * well takes care: the answer must reach a client that is still sending its request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "http/internal.h"
#include "route/outbound.h"

enum {
    HTTP_LINGER_MS = 2000, /* reading what a client still sends after an error answer */
};

/* --- answers the proxy writes itself --- */

static const char *http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}

/* What the client is told when the destination could not be reached. */
int http_status_for(int err)
{
    switch (err) {
    case UV_EACCES:
    case UV_EPERM:
    case UV_ELOOP: return 403;
    case UV_ETIMEDOUT:
    /* The name's servers gave no answer: they timed out, or said SERVFAIL, which is a resolver's
     * way of saying that the servers it asked timed out. RFC 9110 15.6.5: no timely answer from
     * an upstream server the proxy needed is 504, and it tells the user to try again, where 502
     * (what a name that does not exist gets) says the destination answered wrongly. */
    case UV_EAI_AGAIN: return 504;
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
    if (status < 0)
        http_conn_close(c, 0);
    else
        http_conn_linger(c);
}

/* An answer is written, and the client may still be sending: a FIN, then what it sends read and
 * dropped until it closes, for HTTP_LINGER_MS at most. */
void http_conn_linger(struct http_conn *c)
{
    if (c->state == HTTP_CONN_CLOSING)
        return;
    http_upstream_release(c->up);
    c->state = HTTP_CONN_ENDING;
    uv_read_stop((uv_stream_t *)&c->client);
    c->reading = 0;
    uv_timer_stop(&c->timer);
    uv_timer_stop(&c->origin_timer);
    c->shut_req.data = c;
    if (uv_shutdown(&c->shut_req, (uv_stream_t *)&c->client, http_conn_end_shut) < 0)
        http_conn_close(c, 0);
}

/* Whether the request answered is a HEAD, whose answer has no content (RFC 9110 9.3.2), the
 * proxy's own answers included: a body after the head is read by a client as the start of the
 * next answer, or reported as excess (curl). The method is known once its target began. */
static int http_conn_head_request(const struct http_conn *c)
{
    return c->req.p.method == HTTP_HEAD && c->req.target_len > 0;
}

void http_conn_reply(struct http_conn *c, int status, const char *extra, const char *type, const void *body,
                     size_t len)
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
    uv_timer_stop(&c->origin_timer);
    if (!extra)
        extra = "";
    size_t cap = len + strlen(extra) + (type ? strlen(type) : 0) + 256;
    c->wbuf = malloc(cap);
    if (!c->wbuf) {
        http_conn_close(c, 1);
        return;
    }
    int n = snprintf((char *)c->wbuf, cap, "HTTP/1.1 %d %s\r\n%s%s%s%sContent-Length: %zu\r\nConnection: close\r\n\r\n",
                     status, http_reason(status), extra, type ? "Content-Type: " : "", type ? type : "",
                     type ? "\r\n" : "", len);
    if (n < 0 || (size_t)n + len > cap) {
        http_conn_close(c, 1);
        return;
    }
    if (!http_conn_head_request(c) && len > 0) {
        memcpy(c->wbuf + n, body, len);
        n += (int)len;
    }
    uv_buf_t b = uv_buf_init((char *)c->wbuf, (unsigned)n);
    c->wreq.data = c;
    c->writing = 1;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->client, &b, 1, http_conn_end_written) < 0) {
        c->writing = 0;
        http_conn_close(c, 1);
    }
}

/* Answers status with a short text body (and extra header lines, or NULL), then closes the
 * connection. */
void http_conn_fail_with(struct http_conn *c, int status, const char *why, const char *extra)
{
    char body[400];
    int bl = snprintf(body, sizeof(body), "vpn2socks: %s\n", why);
    if (bl < 0 || bl >= (int)sizeof(body))
        bl = (int)strlen(body);
    http_conn_reply(c, status, extra, "text/plain", body, (size_t)bl);
}

void http_conn_fail(struct http_conn *c, int status, const char *why)
{
    http_conn_fail_with(c, status, why, NULL);
}
