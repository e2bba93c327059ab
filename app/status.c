/* status: the health and metrics endpoint. Each connection reads one request head, answers it,
 * and closes. */
#include "app/status.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <uv.h>

#include "base/addr.h"
#include "base/list.h"
#include "base/log.h"
#include "http/message.h"

struct status_server {
    uv_tcp_t tcp;
    struct status_config cfg;
    struct v2s_list conns;
    size_t n_conns;
    int closing;
    int handles; /* the listener's and every connection's */
};

struct status_conn {
    struct v2s_list node;
    struct status_server *srv;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wr;
    struct http_msg msg;
    char rbuf[1024];
    char *resp;
    int answered;
    int closing;
    int handles;
};

static void status_server_maybe_free(struct status_server *s)
{
    if (s->closing && s->handles == 0)
        free(s);
}

static void status_conn_closed(uv_handle_t *h)
{
    struct status_conn *c = h->data;
    if (--c->handles > 0)
        return;
    struct status_server *s = c->srv;
    http_msg_free(&c->msg);
    free(c->resp);
    free(c);
    s->handles--;
    status_server_maybe_free(s);
}

static void status_conn_close(struct status_conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    v2s_list_remove(&c->node);
    c->srv->n_conns--;
    uv_close((uv_handle_t *)&c->tcp, status_conn_closed);
    uv_close((uv_handle_t *)&c->timer, status_conn_closed);
}

static void status_conn_written(uv_write_t *w, int status)
{
    (void)status;
    status_conn_close(w->data);
}

static const char *status_reason(int code)
{
    switch (code) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Error";
    }
}

/* Sends the answer, then closes. body is copied; head_only leaves it out (HEAD). */
static void status_conn_answer(struct status_conn *c, int code, const char *type, const char *body, size_t len,
                               int head_only)
{
    char head[256];
    /* A 405 names the methods there are (RFC 9110 15.5.6: the server MUST send Allow). */
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n"
                     "%sConnection: close\r\n\r\n",
                     code, status_reason(code), type, len, code == 405 ? "Allow: GET, HEAD\r\n" : "");
    size_t body_len = head_only ? 0 : len;
    c->answered = 1;
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_timer_stop(&c->timer);
    c->resp = malloc((size_t)n + body_len);
    if (!c->resp) {
        status_conn_close(c);
        return;
    }
    memcpy(c->resp, head, (size_t)n);
    memcpy(c->resp + n, body, body_len);
    uv_buf_t b = uv_buf_init(c->resp, (unsigned)((size_t)n + body_len));
    c->wr.data = c;
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, status_conn_written) < 0)
        status_conn_close(c);
}

static void status_conn_text(struct status_conn *c, int code, const char *text, int head_only)
{
    status_conn_answer(c, code, "text/plain; charset=utf-8", text, strlen(text), head_only);
}

static void status_conn_request(struct status_conn *c)
{
    struct status_server *s = c->srv;
    const struct http_msg *m = &c->msg;
    int head_only = m->p.method == HTTP_HEAD;
    if (m->p.method != HTTP_GET && !head_only) {
        status_conn_text(c, 405, "only GET and HEAD\n", 0);
        return;
    }
    /* The path alone: a query string changes nothing, and a scraper set to go through an HTTP
     * proxy (Prometheus's proxy_url, curl -x) that reaches us directly sends the absolute form,
     * which RFC 9112 3.2.2 has a server accept. http-parser splits either, as for the proxy. */
    const char *target = m->text + m->target;
    size_t len = 0;
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(target, m->target_len, 0, &u) == 0 && (u.field_set & (1 << UF_PATH))) {
        target += u.field_data[UF_PATH].off;
        len = u.field_data[UF_PATH].len;
    }
#define STATUS_IS(path) (len == sizeof(path) - 1 && memcmp(target, path, len) == 0)
    if (STATUS_IS("/healthz")) {
        status_conn_text(c, 200, "ok\n", head_only);
    } else if (STATUS_IS("/readyz")) {
        char why[200] = "not ready";
        if (s->cfg.ready(s->cfg.arg, why, sizeof(why))) {
            status_conn_text(c, 200, "ready\n", head_only);
        } else {
            char body[220];
            snprintf(body, sizeof(body), "%s\n", why);
            status_conn_text(c, 503, body, head_only);
        }
    } else if (STATUS_IS("/metrics")) {
        struct metrics_text t = {.cap = METRICS_TEXT_MAX};
        if (!(t.buf = malloc(t.cap))) {
            status_conn_close(c);
            return;
        }
        s->cfg.metrics(s->cfg.arg, &t);
        if (t.overflow)
            v2s_warn("status: the metrics text was cut at %zu bytes", t.len);
        status_conn_answer(c, 200, "text/plain; version=0.0.4; charset=utf-8", t.buf, t.len, head_only);
        free(t.buf);
    } else {
        status_conn_text(c, 404, "not found: try /healthz, /readyz or /metrics\n", head_only);
    }
#undef STATUS_IS
}

static void status_conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct status_conn *c = h->data;
    (void)suggested;
    *buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

/* Bytes of c's request (nread < 0: its end or an error, as libuv reports them). */
static void status_conn_take(struct status_conn *c, const char *data, ssize_t nread)
{
    if (c->answered || c->closing)
        return;
    if (nread < 0) {
        status_conn_close(c);
        return;
    }
    size_t used;
    enum http_msg_event ev = http_msg_feed(&c->msg, (const uint8_t *)data, (size_t)nread, &used);
    if (ev == HTTP_MSG_ERROR) {
        char body[160];
        snprintf(body, sizeof(body), "bad request: %s\n", c->msg.why ? c->msg.why : "malformed");
        status_conn_text(c, c->msg.status ? c->msg.status : 400, body, 0);
        return;
    }
    if (ev == HTTP_MSG_HEAD || ev == HTTP_MSG_DONE)
        status_conn_request(c);
}

static void status_conn_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    status_conn_take(st->data, buf->base, nread);
}

/* Reads what c's client has sent already, without waiting, as the loop would have: a burst of
 * clients is accepted in one go, before any of them is read, and at the cap the ones with a whole
 * request waiting would be taken for idle ones. */
static void status_conn_read_now(struct status_conn *c)
{
    uv_os_fd_t fd;
    if (uv_fileno((const uv_handle_t *)&c->tcp, &fd) < 0)
        return;
    while (!c->answered && !c->closing) {
        ssize_t n = recv(fd, c->rbuf, sizeof(c->rbuf), MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        status_conn_take(c, c->rbuf, n < 0 ? -errno : n == 0 ? UV_EOF : n);
    }
}

/* A connection that holds a slot: still reading its request, or with its answer not yet all
 * handed to the kernel. An answered one whose answer went out at once (uv_write writes right away
 * when nothing is queued) only waits for its write callback to close. */
static int status_conn_busy(const struct status_conn *c)
{
    return !c->answered || uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp) > 0;
}

static void status_conn_timeout(uv_timer_t *t)
{
    status_conn_close(t->data);
}

static void status_accept(uv_stream_t *ls, int status)
{
    struct status_server *s = ls->data;
    if (status < 0 || s->closing)
        return;
    struct status_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->srv = s;
    uv_tcp_init(s->cfg.loop, &c->tcp);
    uv_timer_init(s->cfg.loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    s->handles++;
    v2s_list_init(&c->node);
    v2s_list_push_back(&s->conns, &c->node);
    s->n_conns++;
    http_msg_init(&c->msg, 0);
    if (uv_accept(ls, (uv_stream_t *)&c->tcp) < 0) {
        status_conn_close(c);
        return;
    }
    if (s->n_conns > STATUS_MAX_CONNS) {
        /* At the cap, first the requests already sent are answered: a burst of clients comes in
         * one batch of accepts before the loop reads any of them (60 curls at once: 13 reset).
         * An answer handed whole to the kernel frees its slot. */
        size_t busy = 0;
        struct v2s_list *n, *tmp;
        V2S_LIST_FOREACH_SAFE(n, tmp, &s->conns) { /* o may be closed and go from the list */
            struct status_conn *o = V2S_LIST_ENTRY(n, struct status_conn, node);
            if (o != c && !o->answered)
                status_conn_read_now(o);
            busy += !o->closing && status_conn_busy(o);
        }
        /* Then the oldest connection still without a whole request makes room. A checker sends
         * its request right behind its connect, so only clients that sit idle (or trickle) are
         * closed here. Closing the new one instead let 16 idle connections, each kept for
         * STATUS_REQUEST_TIMEOUT_MS, fail every health check meanwhile (a liveness probe
         * restarting the service), and again with each batch. With every slot answering (a
         * write in flight), the new one goes. */
        if (busy > STATUS_MAX_CONNS) {
            struct status_conn *old = NULL;
            V2S_LIST_FOREACH(n, &s->conns) {
                struct status_conn *o = V2S_LIST_ENTRY(n, struct status_conn, node);
                if (o != c && !o->answered) {
                    old = o;
                    break;
                }
            }
            status_conn_close(old ? old : c);
            if (!old)
                return;
        }
    }
    uv_timer_start(&c->timer, status_conn_timeout, STATUS_REQUEST_TIMEOUT_MS, 0);
    uv_read_start((uv_stream_t *)&c->tcp, status_conn_alloc, status_conn_read);
}

static void status_listener_closed(uv_handle_t *h)
{
    struct status_server *s = h->data;
    s->handles--;
    status_server_maybe_free(s);
}

int status_server_new(struct status_server **out, const struct status_config *cfg, const struct sockaddr *sa)
{
    struct status_server *s = calloc(1, sizeof(*s));
    if (!s)
        return UV_ENOMEM;
    s->cfg = *cfg;
    v2s_list_init(&s->conns);
    uv_tcp_init(cfg->loop, &s->tcp);
    s->tcp.data = s;
    s->handles = 1;
    int rc = uv_tcp_bind(&s->tcp, sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->tcp, 64, status_accept);
    if (rc < 0) {
        s->closing = 1;
        uv_close((uv_handle_t *)&s->tcp, status_listener_closed);
        return rc;
    }
    *out = s;
    return 0;
}

int status_server_port(const struct status_server *s)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getsockname(&s->tcp, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    struct v2s_addr a;
    uint16_t port = 0;
    if (v2s_addr_from_sockaddr((const struct sockaddr *)&ss, &a, &port) < 0)
        return -1;
    return port;
}

void status_server_close(struct status_server *s)
{
    if (s->closing)
        return;
    s->closing = 1;
    struct v2s_list *n;
    while ((n = v2s_list_first(&s->conns)) != NULL)
        status_conn_close(V2S_LIST_ENTRY(n, struct status_conn, node));
    uv_close((uv_handle_t *)&s->tcp, status_listener_closed);
}
