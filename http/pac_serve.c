/* The PAC file the HTTP proxy serves (GET or HEAD of /proxy.pac or /wpad.dat), so that a browser
 * can be pointed at the proxy by one URL and still go DIRECT for what the routes keep outside the
 * tunnel. route/pac.c writes the script from the routes; this file answers it on a client
 * connection, naming the proxy as the client reached it, and writes it again only when the routes
 * (or that name) changed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <uv.h>

#include "base/addr.h"
#include "base/log.h"
#include "http/internal.h"
#include "http/message.h"
#include "route/pac.h"
#include "route/router.h"

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
int http_conn_is_pac(const struct http_conn *c)
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
void http_conn_pac(struct http_conn *c)
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
