/* HTTP messages for the proxy (see message.h). */
#include "http/message.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int http_msg_reserve(char **buf, size_t *cap, size_t len, size_t more)
{
    if (len + more <= *cap)
        return 0;
    size_t n = *cap ? *cap : 256;
    while (n < len + more)
        n *= 2;
    char *b = realloc(*buf, n);
    if (!b)
        return -ENOMEM;
    *buf = b;
    *cap = n;
    return 0;
}

static int http_msg_out(struct http_msg *m, const void *data, size_t len)
{
    if (len == 0)
        return 0;
    if (http_msg_reserve((char **)&m->out, &m->out_cap, m->out_len, len) < 0)
        return -ENOMEM;
    memcpy(m->out + m->out_len, data, len);
    m->out_len += len;
    return 0;
}

static int http_msg_outs(struct http_msg *m, const char *s)
{
    return http_msg_out(m, s, strlen(s));
}

/* Whether header h is called name (lower case). */
static int http_msg_named(const struct http_msg *m, const struct http_msg_header *h, const char *name)
{
    size_t nl = strlen(name);
    return h->name_len == nl && strncasecmp(m->text + h->name, name, nl) == 0;
}

static struct http_msg *http_msg_of(http_parser *p)
{
    return p->data;
}

/* Keeps a piece of the head; pieces of one item arrive back to back, so appending joins them. */
static int http_msg_keep(struct http_msg *m, const char *at, size_t len)
{
    if (len == 0)
        return 0;
    if (m->text_len + len > HTTP_MSG_HEAD_MAX) {
        m->status = 431;
        m->why = "head too large";
        return -1;
    }
    if (http_msg_reserve(&m->text, &m->text_cap, m->text_len, len) < 0) {
        m->status = 500;
        m->why = "out of memory";
        return -1;
    }
    memcpy(m->text + m->text_len, at, len);
    m->text_len += len;
    return 0;
}

static int http_msg_on_begin(http_parser *p)
{
    struct http_msg *m = http_msg_of(p);
    m->in_head = 1;
    return 0;
}

static int http_msg_on_target(http_parser *p, const char *at, size_t len)
{
    struct http_msg *m = http_msg_of(p);
    if (m->target_len == 0)
        m->target = (uint32_t)m->text_len;
    if (http_msg_keep(m, at, len) < 0) {
        if (m->status == 431 && !m->response) {
            /* RFC 9112 3: a request target longer than the server will parse is a 414. */
            m->status = 414;
            m->why = "request target too long";
        }
        return -1;
    }
    m->target_len += (uint32_t)len;
    return 0;
}

static int http_msg_on_field(http_parser *p, const char *at, size_t len)
{
    struct http_msg *m = http_msg_of(p);
    /* After the head, fields are a chunked body's trailers, which are dropped: kept, they would
     * count against the head's caps, and a message whose head and trailers passed them together
     * failed in the middle of its body. (http-parser caps the trailers' size itself.) */
    if (!m->in_head || m->too_many)
        return 0;
    if (m->last_was_value || m->n_headers == 0) {
        if (m->n_headers == (m->response ? HTTP_MSG_RESPONSE_HEADERS_MAX : HTTP_MSG_HEADERS_MAX)) {
            /* Answered at the head's end, not here: the parser calls back at the end of each piece
             * it has, so this comes at the line's first byte when the bytes come one by one and at
             * its colon when they come together, and an error in between (400) would come first
             * or not depending on how the network split the head. The rest is not kept. */
            m->too_many = 1;
            return 0;
        }
        if (m->n_headers == m->headers_cap) {
            size_t cap = m->headers_cap ? m->headers_cap * 2 : 32;
            struct http_msg_header *hs = realloc(m->headers, cap * sizeof(*hs));
            if (!hs) {
                m->status = 500;
                m->why = "out of memory";
                return -1;
            }
            m->headers = hs;
            m->headers_cap = cap;
        }
        struct http_msg_header *h = &m->headers[m->n_headers++];
        memset(h, 0, sizeof(*h));
        h->name = (uint32_t)m->text_len;
        m->last_was_value = 0;
    }
    if (http_msg_keep(m, at, len) < 0)
        return -1;
    m->headers[m->n_headers - 1].name_len += (uint32_t)len;
    return 0;
}

static int http_msg_on_value(http_parser *p, const char *at, size_t len)
{
    struct http_msg *m = http_msg_of(p);
    if (!m->in_head || m->too_many)
        return 0; /* a trailer's, or past the cap */
    if (m->n_headers == 0)
        return -1;
    struct http_msg_header *h = &m->headers[m->n_headers - 1];
    if (!m->last_was_value) {
        h->value = (uint32_t)m->text_len;
        m->last_was_value = 1;
    }
    if (http_msg_keep(m, at, len) < 0)
        return -1;
    h->value_len += (uint32_t)len;
    return 0;
}

static int http_msg_on_headers_complete(http_parser *p)
{
    struct http_msg *m = http_msg_of(p);
    m->in_head = 0;
    if (m->too_many) {
        m->status = 431;
        m->why = "too many headers";
        return -1;
    }
    for (size_t i = 0; i < m->n_headers; i++) {
        /* RFC 9112 5.1: no whitespace between a field name and its colon. http-parser takes
         * "Content-Length : 5" and "Transfer-Encoding : chunked" for the framing headers they
         * resemble (Connection too); forwarded as they came, a next hop that does not (it
         * ignores the line, or reads another name) frames the body otherwise: a request body
         * read as the next request (smuggled), an answer read up to the connection's end. A
         * request with whitespace before a colon is refused (400, as 5.1 says); an answer has it
         * removed (5.1: a proxy MUST). A line whose name has whitespace before or inside it
         * (never taken for a framing header) is dropped, as browsers drop a line they cannot
         * read (RFC 9112 2.2 allows it for a line that begins with whitespace). */
        struct http_msg_header *h = &m->headers[i];
        const char *name = m->text + h->name;
        uint32_t len = h->name_len;
        while (len > 0 && (name[len - 1] == ' ' || name[len - 1] == '\t'))
            len--;
        int inner = memchr(name, ' ', len) != NULL || memchr(name, '\t', len) != NULL;
        if (!m->response && len < h->name_len) {
            m->status = 400;
            m->why = "whitespace in a header name";
            return -1;
        }
        h->name_len = inner ? 0 : len; /* no name: not looked up, not forwarded */
    }
    if (!m->response && p->http_major != 1) {
        /* http-parser reads any digits as a version, and a request line without one as 0.9. The
         * head is rebuilt with the client's version, so "HTTP/2.0" or "HTTP/0.9" (with headers 0.9
         * has not) would reach the origin, which makes of it what it will. RFC 9110 15.6.6: 505. */
        m->status = 505;
        m->why = "HTTP version not supported (HTTP/1.0 and HTTP/1.1 are)";
        return -1;
    }
    size_t tl;
    if (!m->response && p->http_major == 1 && p->http_minor == 0 && http_msg_header(m, "transfer-encoding", &tl)) {
        /* HTTP/1.0 has no Transfer-Encoding: RFC 9112 6.1 has a server treat such a request's
         * framing as faulty. Forwarded (as 1.0, re-chunked), an origin that goes by 1.0 would
         * read the chunks as the next request, one the proxy never saw (smuggled). */
        m->status = 400;
        m->why = "Transfer-Encoding in an HTTP/1.0 request";
        return -1;
    }
    if (m->response && p->status_code < 100) {
        /* Not a status (RFC 9110 15: 100 to 599, three digits); taken for an interim answer, its
         * body would go to the client ahead of the real answer. */
        m->status = 400;
        m->why = "status code below 100";
        return -1;
    }
    int bodiless = m->response ? p->status_code / 100 == 1 || p->status_code == 204 || p->status_code == 304
                               : p->method == HTTP_CONNECT;
    /* A response to HEAD carries no body, but a 1xx before it is a message of its own. Nor does a
     * 1xx, 204 or 304, whatever its headers say: http-parser honours their Content-Length (a 304
     * may carry the length of what it stands for) and Transfer-Encoding, and would take the next
     * answer's bytes as their body, or wait for bytes that never come. */
    int skip = m->response && ((m->skip_body && p->status_code >= 200) || bodiless);
    m->chunked = (p->flags & F_CHUNKED) && !skip && !bodiless;
    m->unchunked = m->chunked && m->response && m->unchunk;
    if (m->unchunked)
        m->chunked = 0;
    /* The proxy drops Upgrade (a hop-by-hop header) from requests: what follows such a head is
     * its body and the next request, not another protocol. Only CONNECT switches. */
    if (!m->response && p->method != HTTP_CONNECT)
        p->upgrade = 0;
    m->event = HTTP_MSG_HEAD;
    http_parser_pause(p, 1);
    return skip; /* 1: no body */
}

static int http_msg_on_body(http_parser *p, const char *at, size_t len)
{
    struct http_msg *m = http_msg_of(p);
    if (m->chunked) {
        char size[24];
        int n = snprintf(size, sizeof(size), "%zx\r\n", len);
        if (http_msg_out(m, size, (size_t)n) < 0 || http_msg_out(m, at, len) < 0 || http_msg_out(m, "\r\n", 2) < 0)
            return -1;
        return 0;
    }
    return http_msg_out(m, at, len) < 0 ? -1 : 0;
}

static int http_msg_on_complete(http_parser *p)
{
    struct http_msg *m = http_msg_of(p);
    if (m->chunked && http_msg_outs(m, "0\r\n\r\n") < 0)
        return -1;
    m->event = HTTP_MSG_DONE;
    m->method_state = HTTP_MSG_METHOD_BEFORE; /* what comes next is the next request's */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings http_msg_settings = {
    .on_message_begin = http_msg_on_begin,
    .on_url = http_msg_on_target,
    .on_status = http_msg_on_target,
    .on_header_field = http_msg_on_field,
    .on_header_value = http_msg_on_value,
    .on_headers_complete = http_msg_on_headers_complete,
    .on_body = http_msg_on_body,
    .on_message_complete = http_msg_on_complete,
};

void http_msg_init(struct http_msg *m, int response)
{
    memset(m, 0, sizeof(*m));
    m->response = response;
    http_parser_init(&m->p, response ? HTTP_RESPONSE : HTTP_REQUEST);
    m->p.data = m;
}

void http_msg_free(struct http_msg *m)
{
    free(m->text);
    free(m->out);
    free(m->headers);
    m->text = NULL;
    m->out = NULL;
    m->headers = NULL;
    m->text_cap = m->out_cap = m->headers_cap = 0;
}

void http_msg_next(struct http_msg *m)
{
    m->text_len = 0;
    m->target = m->target_len = 0;
    m->n_headers = 0;
    m->too_many = 0;
    m->line_state = 0;
    m->last_was_value = 0;
    m->chunked = 0;
    m->unchunked = 0;
    m->in_head = 0;
}

/* Follows a request's line over the bytes the parser took (see line_state). */
static void http_msg_track_line(struct http_msg *m, const uint8_t *data, size_t n)
{
    for (size_t i = 0; i < n && !m->response && m->line_state < 2; i++) {
        if (m->line_state == 0 && data[i] != '\r' && data[i] != '\n')
            m->line_state = 1; /* the parser skips empty lines before a request */
        else if (m->line_state == 1 && data[i] == '\n')
            m->line_state = 2;
    }
}

static enum http_msg_event http_msg_error(struct http_msg *m)
{
    enum http_errno e = HTTP_PARSER_ERRNO(&m->p);
    if (!m->status && e == HPE_HEADER_OVERFLOW && !m->response && m->line_state < 2) {
        /* The parser's own cap on a head (80 KiB) passed inside the request line: the target
         * (the method and version are short) is what is too long. Our cap (64 KiB) comes first
         * only when the parser hands the target over before, which it does at the end of each
         * piece it holds: a target of 100 KiB was answered 431. */
        m->status = 414;
        m->why = "request target too long";
    }
    if (!m->status)
        m->status = e == HPE_HEADER_OVERFLOW ? 431 : 400;
    if (!m->why)
        m->why = http_errno_description(e);
    return HTTP_MSG_ERROR;
}

/* RFC 9110 5.6.2: the characters of a token. */
static int http_msg_tchar(uint8_t ch)
{
    if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'))
        return 1;
    return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* The methods http-parser reads, by name. */
static const char *const http_msg_known_methods[] = {
#define HTTP_MSG_XX(num, name, string) #string,
    HTTP_METHOD_MAP(HTTP_MSG_XX)
#undef HTTP_MSG_XX
};

/* Reads a request's method ahead of the parser (see method in message.h): the empty lines before
 * it (which the parser skips too), the method and the space after it. Once the space came, the
 * parser is given the method, or POST for one it does not know (never HEAD or CONNECT, whose
 * answers and connections go otherwise). *used says how much of data was taken. 0, or -1 when
 * the method is malformed (not a token, empty, too long) or the parser refused it (a request
 * after the last one a connection may carry). */
static int http_msg_read_method(struct http_msg *m, const uint8_t *data, size_t len, size_t *used)
{
    size_t i = 0;
    for (; i < len; i++) {
        uint8_t ch = data[i];
        if (m->method_state == HTTP_MSG_METHOD_BEFORE && (ch == '\r' || ch == '\n'))
            continue;
        if (m->method_state == HTTP_MSG_METHOD_BEFORE) {
            /* A request has begun (the parser's on_message_begin comes only with the method):
             * a head cut short here is answered 408, not closed on as an idle connection. */
            m->in_head = 1;
            m->method_state = HTTP_MSG_METHOD_IN;
            m->method_len = 0;
            m->method_ext = 0;
        }
        if (ch == ' ' && m->method_len > 0)
            break;
        if (!http_msg_tchar(ch) || m->method_len == HTTP_MSG_METHOD_MAX) {
            *used = i;
            m->status = 400;
            m->why = http_msg_tchar(ch) ? "method too long" : "malformed method (not a token)";
            return -1;
        }
        m->method[m->method_len++] = (char)ch;
    }
    *used = i;
    if (i == len)
        return 0;
    *used = i + 1;
    m->method[m->method_len] = '\0';
    m->method_ext = 1;
    for (size_t k = 0; k < sizeof(http_msg_known_methods) / sizeof(http_msg_known_methods[0]); k++)
        if (strcmp(m->method, http_msg_known_methods[k]) == 0)
            m->method_ext = 0;
    char line[HTTP_MSG_METHOD_MAX + 2];
    int n = snprintf(line, sizeof(line), "%s ", m->method_ext ? "POST" : m->method);
    m->method_state = HTTP_MSG_METHOD_GIVEN;
    http_parser_execute(&m->p, &http_msg_settings, line, (size_t)n);
    return HTTP_PARSER_ERRNO(&m->p) == HPE_OK ? 0 : -1;
}

/* Feeds the parser what follows a request's method (or a response). */
static enum http_msg_event http_msg_feed_parser(struct http_msg *m, const uint8_t *data, size_t len, size_t *used)
{
    size_t n = http_parser_execute(&m->p, &http_msg_settings, (const char *)data, len);
    http_msg_track_line(m, data, n);
    enum http_errno e = HTTP_PARSER_ERRNO(&m->p);
    if (e != HPE_OK && e != HPE_PAUSED) {
        *used = n; /* where the error is */
        m->event = HTTP_MSG_ERROR;
        return http_msg_error(m);
    }
    if (e == HPE_OK) {
        *used = n;
        return HTTP_MSG_NEED_MORE;
    }
    http_parser_pause(&m->p, 0);
    enum http_msg_event ev = m->event;
    m->event = HTTP_MSG_NEED_MORE;
    if (ev == HTTP_MSG_HEAD && n < len) {
        /* Paused at the end of the head, the parser stands on its last byte (the LF) and reads it
         * again when resumed: read it now, so that what follows the head is the body. Where no
         * body follows, that byte completes the message. */
        size_t k = http_parser_execute(&m->p, &http_msg_settings, (const char *)data + n, 1);
        e = HTTP_PARSER_ERRNO(&m->p);
        n += k;
        if (e != HPE_OK && e != HPE_PAUSED) {
            *used = n;
            m->event = HTTP_MSG_ERROR;
            return http_msg_error(m);
        }
        if (e == HPE_PAUSED) {
            http_parser_pause(&m->p, 0);
            m->event = HTTP_MSG_NEED_MORE;
            m->done_pending = 1;
        }
    }
    *used = n;
    return ev;
}

enum http_msg_event http_msg_feed(struct http_msg *m, const uint8_t *data, size_t len, size_t *used)
{
    *used = 0;
    if (m->done_pending) {
        m->done_pending = 0;
        return HTTP_MSG_DONE;
    }
    if (m->event == HTTP_MSG_ERROR)
        return HTTP_MSG_ERROR;
    if (len == 0)
        return HTTP_MSG_NEED_MORE; /* no bytes would mean the end to the parser */
    size_t taken = 0;
    if (!m->response && m->method_state != HTTP_MSG_METHOD_GIVEN) {
        int rc = http_msg_read_method(m, data, len, &taken);
        http_msg_track_line(m, data, taken);
        if (rc < 0) {
            *used = taken;
            m->event = HTTP_MSG_ERROR;
            return http_msg_error(m);
        }
        if (taken == len) {
            *used = len;
            return HTTP_MSG_NEED_MORE;
        }
    }
    enum http_msg_event ev = http_msg_feed_parser(m, data + taken, len - taken, used);
    *used += taken;
    return ev;
}

enum http_msg_event http_msg_finish(struct http_msg *m)
{
    if (m->done_pending) {
        m->done_pending = 0;
        return HTTP_MSG_DONE;
    }
    if (m->event == HTTP_MSG_ERROR)
        return HTTP_MSG_ERROR;
    if (!m->response && m->method_state == HTTP_MSG_METHOD_IN) {
        m->event = HTTP_MSG_ERROR;
        m->status = 400;
        m->why = "the connection ended inside a message";
        return HTTP_MSG_ERROR;
    }
    http_parser_execute(&m->p, &http_msg_settings, NULL, 0);
    enum http_errno e = HTTP_PARSER_ERRNO(&m->p);
    if (e == HPE_PAUSED) {
        http_parser_pause(&m->p, 0);
        m->event = HTTP_MSG_NEED_MORE;
        return HTTP_MSG_DONE;
    }
    if (e != HPE_OK) {
        m->event = HTTP_MSG_ERROR;
        m->why = "the connection ended inside a message";
        return http_msg_error(m);
    }
    return HTTP_MSG_NEED_MORE;
}

const char *http_msg_method(const struct http_msg *m)
{
    return m->method;
}

const char *http_msg_header(const struct http_msg *m, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < m->n_headers; i++) {
        const struct http_msg_header *h = &m->headers[i];
        if (h->name_len == nl && strncasecmp(m->text + h->name, name, nl) == 0) {
            *len = h->value_len;
            return m->text + h->value;
        }
    }
    return NULL;
}

size_t http_msg_header_count(const struct http_msg *m, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n_headers; i++)
        n += http_msg_named(m, &m->headers[i], name);
    return n;
}

/* Whether the comma-separated list list (len bytes) names token (case-insensitive). */
static int http_msg_list_has(const char *list, size_t len, const char *token, size_t tlen)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (list[i] == ' ' || list[i] == '\t' || list[i] == ','))
            i++;
        size_t start = i;
        while (i < len && list[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (list[end - 1] == ' ' || list[end - 1] == '\t'))
            end--;
        if (end - start == tlen && strncasecmp(list + start, token, tlen) == 0)
            return 1;
    }
    return 0;
}

int http_msg_hop_by_hop(const struct http_msg *m, size_t i)
{
    static const char *const fixed[] = {
        "connection", "keep-alive", "proxy-connection", "proxy-authorization", "proxy-authenticate",
        "te", "trailer", "upgrade",
    };
    const struct http_msg_header *h = &m->headers[i];
    const char *name = m->text + h->name;
    for (size_t k = 0; k < sizeof(fixed) / sizeof(fixed[0]); k++)
        if (strlen(fixed[k]) == h->name_len && strncasecmp(name, fixed[k], h->name_len) == 0)
            return 1;
    /* The body goes on framed as it came: its framing goes with it, even when Connection names
     * it. Dropped, the next hop would read a Content-Length body as the next request (smuggled
     * past the proxy), or a chunked answer up to the connection's end. */
    if ((h->name_len == 14 && strncasecmp(name, "content-length", 14) == 0) ||
        (h->name_len == 17 && strncasecmp(name, "transfer-encoding", 17) == 0))
        return 0;
    for (size_t k = 0; k < m->n_headers; k++) {
        const struct http_msg_header *c = &m->headers[k];
        if (c->name_len == 10 && strncasecmp(m->text + c->name, "connection", 10) == 0 &&
            http_msg_list_has(m->text + c->value, c->value_len, name, h->name_len))
            return 1;
    }
    return 0;
}

long http_msg_max_forwards(const struct http_msg *m)
{
    if (m->response || (m->p.method != HTTP_TRACE && m->p.method != HTTP_OPTIONS))
        return -1;
    size_t len;
    const char *v = http_msg_header(m, "max-forwards", &len);
    if (!v || len == 0)
        return -1;
    long n = 0;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        if (n < 0x7fffffffL / 10)
            n = n * 10 + (v[i] - '0');
        else
            n = 0x7fffffffL; /* a hop count that large is as good as unlimited */
    }
    return n;
}

/* A Transfer-Encoding's value without its last coding (http-parser takes a body as chunked only
 * when chunked is the last): what the body is still coded with once the chunks are undone. */
static size_t http_msg_unchunked_len(const char *v, size_t len)
{
    while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
        len--;
    while (len > 0 && v[len - 1] != ',')
        len--;
    while (len > 0 && (v[len - 1] == ',' || v[len - 1] == ' ' || v[len - 1] == '\t'))
        len--;
    return len;
}

/* The end-to-end headers, all but skip (or NULL), then extra, Via and the blank line. */
static int http_msg_write_headers(struct http_msg *m, const char *skip, const char *extra)
{
    long hops = http_msg_max_forwards(m);
    size_t last_te = m->n_headers; /* the line that ends in chunked, when unchunked */
    for (size_t i = 0; m->unchunked && i < m->n_headers; i++)
        if (http_msg_named(m, &m->headers[i], "transfer-encoding"))
            last_te = i;
    for (size_t i = 0; i < m->n_headers; i++) {
        const struct http_msg_header *h = &m->headers[i];
        if (h->name_len == 0 || http_msg_hop_by_hop(m, i) || (skip && http_msg_named(m, h, skip)))
            continue;
        size_t vl = h->value_len;
        if (i == last_te)
            vl = http_msg_unchunked_len(m->text + h->value, vl);
        if (vl == 0 && h->value_len > 0)
            continue; /* it said only chunked */
        if (hops > 0 && http_msg_named(m, h, "max-forwards"))
            continue; /* written below, one less */
        if (http_msg_out(m, m->text + h->name, h->name_len) < 0 || http_msg_out(m, ": ", 2) < 0 ||
            http_msg_out(m, m->text + h->value, vl) < 0 || http_msg_out(m, "\r\n", 2) < 0)
            return -ENOMEM;
    }
    char line[96];
    if (hops > 0) {
        snprintf(line, sizeof(line), "Max-Forwards: %ld\r\n", hops - 1);
        if (http_msg_outs(m, line) < 0)
            return -ENOMEM;
    }
    /* RFC 9110 7.6.3: a proxy MUST send Via, with the protocol the message came with, appended
     * after any the message had (the order of Via lines is the order of the hops). */
    snprintf(line, sizeof(line), "Via: %u.%u " HTTP_MSG_VIA_NAME "\r\n", m->p.http_major, m->p.http_minor);
    if ((extra && http_msg_outs(m, extra) < 0) || http_msg_outs(m, line) < 0 || http_msg_out(m, "\r\n", 2) < 0)
        return -ENOMEM;
    return 0;
}

int http_msg_write_trace(struct http_msg *m)
{
    static const char *const secret[] = {"authorization", "proxy-authorization", "cookie"};
    char version[32];
    snprintf(version, sizeof(version), " HTTP/%u.%u\r\n", m->p.http_major, m->p.http_minor);
    if (http_msg_outs(m, m->method) < 0 || http_msg_out(m, " ", 1) < 0 ||
        http_msg_out(m, m->text + m->target, m->target_len) < 0 || http_msg_outs(m, version) < 0)
        return -ENOMEM;
    for (size_t i = 0; i < m->n_headers; i++) {
        const struct http_msg_header *h = &m->headers[i];
        int hide = h->name_len == 0;
        for (size_t k = 0; k < sizeof(secret) / sizeof(secret[0]) && !hide; k++)
            hide = http_msg_named(m, h, secret[k]);
        if (hide)
            continue;
        if (http_msg_out(m, m->text + h->name, h->name_len) < 0 || http_msg_out(m, ": ", 2) < 0 ||
            http_msg_out(m, m->text + h->value, h->value_len) < 0 || http_msg_out(m, "\r\n", 2) < 0)
            return -ENOMEM;
    }
    return http_msg_out(m, "\r\n", 2);
}

int http_msg_write_request_head(struct http_msg *m, const char *target, size_t target_len, const char *host,
                                const char *extra)
{
    char version[32];
    snprintf(version, sizeof(version), " HTTP/%u.%u\r\nHost: ", m->p.http_major, m->p.http_minor);
    if (http_msg_outs(m, m->method) < 0 || http_msg_out(m, " ", 1) < 0 || http_msg_out(m, target, target_len) < 0 ||
        http_msg_outs(m, version) < 0 || http_msg_outs(m, host) < 0 || http_msg_out(m, "\r\n", 2) < 0)
        return -ENOMEM;
    return http_msg_write_headers(m, "host", extra);
}

int http_msg_write_response_head(struct http_msg *m, const char *extra)
{
    char line[32];
    snprintf(line, sizeof(line), "HTTP/1.1 %u ", m->p.status_code);
    const char *reason = m->target_len ? m->text + m->target : "";
    if (http_msg_outs(m, line) < 0 || http_msg_out(m, reason, m->target_len) < 0 ||
        http_msg_out(m, "\r\n", 2) < 0)
        return -ENOMEM;
    return http_msg_write_headers(m, NULL, extra);
}

static int http_msg_b64(char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

int http_msg_basic_auth(const char *value, size_t len, uint8_t *buf, size_t cap, size_t *user_len,
                        size_t *pass_len)
{
    size_t i = 0;
    while (i < len && (value[i] == ' ' || value[i] == '\t'))
        i++;
    if (len - i < 6 || strncasecmp(value + i, "basic", 5) != 0 || (value[i + 5] != ' ' && value[i + 5] != '\t'))
        return -1;
    i += 5;
    while (i < len && (value[i] == ' ' || value[i] == '\t'))
        i++;
    size_t end = len;
    while (end > i && (value[end - 1] == ' ' || value[end - 1] == '\t'))
        end--;
    /* Whole quads, '=' only at the end. */
    if ((end - i) % 4 != 0 || end == i)
        return -1;
    size_t n = 0;
    for (size_t q = i; q < end; q += 4) {
        int v[4], pad = 0;
        for (int k = 0; k < 4; k++) {
            char ch = value[q + k];
            if (ch == '=' && q + 4 == end && k >= 2 && (k == 3 || value[q + 3] == '=')) {
                v[k] = 0;
                pad++;
                continue;
            }
            if (pad || (v[k] = http_msg_b64(ch)) < 0)
                return -1;
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        if (n + 3 - (size_t)pad > cap)
            return -1;
        buf[n++] = (uint8_t)(w >> 16);
        if (pad < 2)
            buf[n++] = (uint8_t)(w >> 8);
        if (pad < 1)
            buf[n++] = (uint8_t)w;
    }
    uint8_t *colon = memchr(buf, ':', n);
    if (!colon)
        return -1;
    *user_len = (size_t)(colon - buf);
    *pass_len = n - *user_len - 1;
    return 0;
}

int http_msg_put_back(struct http_msg *m, const uint8_t *data, size_t len)
{
    if (len == 0)
        return 0;
    if (http_msg_reserve((char **)&m->out, &m->out_cap, m->out_len, len) < 0)
        return -ENOMEM;
    memmove(m->out + len, m->out, m->out_len);
    memcpy(m->out, data, len);
    m->out_len += len;
    return 0;
}

uint8_t *http_msg_take_out(struct http_msg *m, size_t *len)
{
    uint8_t *b = m->out;
    *len = m->out_len;
    m->out = NULL;
    m->out_len = m->out_cap = 0;
    return b;
}
