/* One HTTP/1.x message at a time, read by a push parser over the Node.js http-parser
 * (libhttp-parser, Debian's libhttp-parser-dev), and written back out for the next hop: the head
 * rebuilt without the hop-by-hop headers, the body re-framed the way it came (Content-Length
 * bytes as they are, chunked as chunked, trailers dropped).
 *
 * Why http-parser rather than llhttp or our own: it is the parser Node.js used for a decade, it
 * is packaged by Debian (llhttp is not), it has no allocation and no I/O, its callbacks hand over
 * pieces of the caller's buffer, and it can be paused at a message's edge, which is how a proxy
 * reads one request at a time. It is no longer developed, but it is complete for HTTP/1.1 and its
 * security fixes (request smuggling: Content-Length with Transfer-Encoding, obs-fold) are in 2.9.
 *
 * No I/O here: the caller feeds bytes and takes what is to be sent (out) after each feed. */
#ifndef VPN2SOCKS_HTTP_MESSAGE_H
#define VPN2SOCKS_HTTP_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>

enum {
    HTTP_MSG_HEAD_MAX = 64 * 1024, /* a head (request line and headers) longer than this is refused */
    HTTP_MSG_HEADERS_MAX = 128,    /* and a request with more header lines */
    /* An answer may have more: Set-Cookie, Link and security policy lines add up on some sites,
     * and the origin is not the proxy's user to be told 431 (the client would get a 502 for a page
     * its browser shows without the proxy). Squid and nginx cap an answer's head by its size only;
     * the cap here keeps the work per header line (looking for Connection's names) bounded. */
    HTTP_MSG_RESPONSE_HEADERS_MAX = 1024,
    /* A request's method (RFC 9110 9.1: any token) longer than this is refused (400). The longest
     * in IANA's registry has 17 characters (UPDATEREDIRECTREF). */
    HTTP_MSG_METHOD_MAX = 32,
};

/* What a forwarded message's Via says after the protocol it came with (RFC 9110 7.6.3): a
 * pseudonym, never the machine's name or the version. */
#define HTTP_MSG_VIA_NAME "vpn2socks"

enum http_msg_event {
    HTTP_MSG_NEED_MORE, /* every byte used; feed more */
    HTTP_MSG_HEAD,      /* the head is complete (and paused there); the body follows */
    HTTP_MSG_DONE,      /* the message is complete (and paused there) */
    HTTP_MSG_ERROR,     /* malformed; why says how; status the answer (400, 414, 431, 505) */
};

/* Where a request's reading stands in its method (see method in struct http_msg). */
enum http_msg_method_state {
    HTTP_MSG_METHOD_BEFORE, /* before its first byte: method still says the last request's */
    HTTP_MSG_METHOD_IN,     /* in it */
    HTTP_MSG_METHOD_GIVEN,  /* it and its space went to the parser */
};

struct http_msg_header {
    uint32_t name, name_len, value, value_len; /* offsets into text */
};

struct http_msg {
    http_parser p;
    int response;
    int skip_body;     /* a response to HEAD: no body whatever its headers say */
    int in_head;       /* between the first byte and the end of the head */
    int last_was_value;
    int too_many;      /* a header past the cap began: 431 at the head's end */
    int line_state;    /* requests: 0 before the request line, 1 in it, 2 past it */
    /* Requests: the method as it came, read here before the parser sees the request line. The
     * parser knows a fixed list of methods (those of RFC 9110 and WebDAV) and refuses any other
     * with 400, where RFC 9110 9.1 has a proxy forward a method it does not know (QUERY, or an
     * extension), as Squid and nginx do. A method the parser does not know is given to it as
     * POST, whose framing (by Content-Length or chunked, the answer read as any) is every such
     * method's: p.method then says POST, and method_ext is set. The checks of p.method against
     * GET, HEAD, CONNECT, OPTIONS, TRACE, PUT or DELETE hold for it as for any method that is not
     * one of these. method stays valid until the next request's first byte is fed. */
    char method[HTTP_MSG_METHOD_MAX + 1];
    size_t method_len;
    enum http_msg_method_state method_state;
    int method_ext;
    int chunked;       /* the body comes chunked and goes out chunked */
    /* Set by the caller before a response's head: a chunked body goes out as its bare bytes, its
     * Transfer-Encoding's "chunked" left out, to be framed by the connection's end (the answer to
     * an HTTP/1.0 client, which cannot read chunks: RFC 9112 7.1). */
    int unchunk;
    int unchunked;     /* and this one is (chunked came, bare bytes go) */
    int status;        /* on HTTP_MSG_ERROR: 400, 414, 431 or 505 */
    enum http_msg_event event; /* what paused the parser */
    int done_pending;  /* the message ended with its head: DONE is the next feed's answer */
    const char *why;
    /* The head as read: the URL (requests) or reason (responses), then the headers. */
    char *text;
    size_t text_len, text_cap;
    uint32_t target, target_len;
    struct http_msg_header *headers; /* grown as lines come, up to the cap */
    size_t n_headers, headers_cap;
    /* What is to be sent onward: body bytes (re-framed) after each feed. The caller takes it. */
    uint8_t *out;
    size_t out_len, out_cap;
};

/* response: 0 parses requests, 1 responses. */
void http_msg_init(struct http_msg *m, int response);
void http_msg_free(struct http_msg *m);
/* Forgets the last message's head to read the next one on the same connection. */
void http_msg_next(struct http_msg *m);
/* Feeds len bytes; *used says how many were consumed (all, unless an event stopped it; on
 * HTTP_MSG_ERROR, where the error is). */
enum http_msg_event http_msg_feed(struct http_msg *m, const uint8_t *data, size_t len, size_t *used);
/* The connection ended: DONE when the message was framed by the end, else ERROR (truncated);
 * NEED_MORE when no message had begun. */
enum http_msg_event http_msg_finish(struct http_msg *m);

/* A request's method as it came (NUL-terminated), once its head was read. */
const char *http_msg_method(const struct http_msg *m);
/* The value of the first header called name (any case), or NULL; its length in *len. */
const char *http_msg_header(const struct http_msg *m, const char *name, size_t *len);
/* How many header lines are called name (lower case). */
size_t http_msg_header_count(const struct http_msg *m, const char *name);
/* Whether header i is hop-by-hop: one of the fixed names, or named by a Connection header. */
int http_msg_hop_by_hop(const struct http_msg *m, size_t i);
/* A TRACE's or an OPTIONS's Max-Forwards (RFC 9110 7.6.2), the first one's, up to 2^31 - 1:
 * -1 for another method, or none, or one that is not digits (forwarded as it came then). */
long http_msg_max_forwards(const struct http_msg *m);
/* Appends to out the request head as it came, for the answer to a TRACE (RFC 9110 9.3.8), less
 * the lines that carry credentials (Authorization, Proxy-Authorization, Cookie), which 9.3.8 has
 * the recipient leave out. 0 or -ENOMEM. */
int http_msg_write_trace(struct http_msg *m);
/* Appends to out: the request line "METHOD target HTTP/x.y" (target given by the caller) and
 * the end-to-end headers, with Host set to host (replacing the client's), a Max-Forwards one less
 * (see http_msg_max_forwards(); the caller answers one at 0 itself), extra (raw header lines, or
 * NULL) and a Via line before the blank line. 0 or -ENOMEM. */
int http_msg_write_request_head(struct http_msg *m, const char *target, size_t target_len, const char *host,
                                const char *extra);
/* Appends the status line "HTTP/1.1 CODE REASON" and the end-to-end headers (Transfer-Encoding
 * without its "chunked" when unchunked), extra, then a Via line. */
int http_msg_write_response_head(struct http_msg *m, const char *extra);
/* Reads a Proxy-Authorization value "Basic BASE64(user:password)" (the scheme in any case) into
 * buf (cap bytes): the user is buf[0, *user_len), the password buf[*user_len + 1, ... + *pass_len).
 * 0, or -1 when it is not that (another scheme, bad base64, no ':', too long). The caller wipes buf. */
int http_msg_basic_auth(const char *value, size_t len, uint8_t *buf, size_t cap, size_t *user_len,
                        size_t *pass_len);
/* Puts len bytes of data (the caller keeps it) in front of out, to be sent first. 0 or -ENOMEM. */
int http_msg_put_back(struct http_msg *m, const uint8_t *data, size_t len);
/* Takes out (malloc'd, the caller frees it), leaving m with none. */
uint8_t *http_msg_take_out(struct http_msg *m, size_t *len);

#endif
