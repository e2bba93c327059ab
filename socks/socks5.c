/* SOCKS5 / SOCKS4 / SOCKS4a push parser and reply builders.
 *
 * Every message is collected into p->buf. p->need is how many bytes of the current message are
 * known to be needed so far; it grows as the length fields arrive (NMETHODS, ATYP, domain length).
 * Input is copied only up to need, so the result cannot depend on how the input was split.
 *
 * SOCKS4 has no length fields, only NUL-terminated strings, read one byte at a time past the
 * header (VN CD DSTPORT DSTIP, collected in buf as a message of 8 bytes). USERID, which nothing
 * here uses, is only counted up to its NUL; a SOCKS4a HOST is collected in name, pos counting
 * its bytes past the header. So a 4a request holds a host name as long as SOCKS5's (255 bytes)
 * whatever its user id: when both had to fit in buf, a 253-byte name, which DNS allows, was
 * refused. Past SOCKS4_USERID_MAX bytes of user id or SOCKS4_HOST_MAX of host name without a NUL
 * the request is refused with 91.
 *
 * The username/password sub-negotiation (RFC 1929: VER ULEN UNAME PLEN PASSWD, up to 513 bytes)
 * does not fit in buf at once, so it is read in two messages: VER ULEN UNAME PLEN (at most 258
 * bytes), whose name is copied out, then PASSWD alone. The password is copied out of buf and
 * wiped there at once, so one copy remains, which the caller wipes once it was checked. */
#include "socks/socks5.h"

#include "base/bytes.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

enum {
    SOCKS5_GREETING_HDR = 2, /* VER NMETHODS */
    SOCKS5_REQUEST_HDR = 4,  /* VER CMD RSV ATYP */
    SOCKS4_HDR = 8,          /* VN CD DSTPORT DSTIP */
    SOCKS5_AUTH_HDR = 2,     /* VER ULEN */
    SOCKS4_USERID_MAX = 255, /* as long as a SOCKS5 user name; curl sends no longer */
    SOCKS4_HOST_MAX = 255,   /* as long as a SOCKS5 name */
};

void socks5_parse_init(struct socks5_parser *p)
{
    memset(p, 0, sizeof(*p));
    p->state = SOCKS5_PARSE_METHODS;
    p->need = 1; /* the version byte decides which protocol this is */
}

void socks5_parse_require_auth(struct socks5_parser *p)
{
    assert(p->state == SOCKS5_PARSE_METHODS && p->pos == 0);
    p->auth_required = 1;
}

static enum socks5_event socks5_fail(struct socks5_parser *p, int error, const char *why)
{
    p->state = SOCKS5_PARSE_ERROR;
    p->error = error;
    p->why = why;
    return SOCKS5_EV_ERROR;
}

/* Called whenever pos reaches need in the greeting: either asks for more or completes it. */
static enum socks5_event socks5_step_greeting(struct socks5_parser *p)
{
    if (p->pos == 1) {
        if (p->buf[0] == SOCKS4_VERSION) {
            p->version = SOCKS4_VERSION;
            p->need = SOCKS4_HDR;
            return SOCKS5_EV_NEED_MORE;
        }
        if (p->buf[0] != SOCKS5_VERSION)
            return socks5_fail(p, -1, "not a SOCKS4 or SOCKS5 client");
        p->version = SOCKS5_VERSION;
        p->need = SOCKS5_GREETING_HDR;
        return SOCKS5_EV_NEED_MORE;
    }
    /* NMETHODS 0 offers nothing, so nothing is acceptable: the greeting is complete here and
     * answered NO_ACCEPTABLE (0xFF) below, as RFC 1928 says for a greeting none of whose methods
     * the server takes; closed without a word, a client could not tell why. */
    if (p->pos == SOCKS5_GREETING_HDR && p->buf[1] != 0) {
        p->need = SOCKS5_GREETING_HDR + (size_t)p->buf[1];
        return SOCKS5_EV_NEED_MORE;
    }
    for (size_t i = SOCKS5_GREETING_HDR; i < p->pos; i++)
        p->methods_mask[p->buf[i] / 8] |= (uint8_t)(1u << (p->buf[i] % 8));
    p->pos = 0;
    switch (socks5_parse_method(p)) {
    case SOCKS5_AUTH_USERPASS:
        p->state = SOCKS5_PARSE_AUTH;
        p->need = SOCKS5_AUTH_HDR;
        break;
    case SOCKS5_AUTH_NONE:
        p->state = SOCKS5_PARSE_REQUEST;
        p->need = SOCKS5_REQUEST_HDR;
        break;
    default:
        /* The answer is NO_ACCEPTABLE and the server closes: nothing the client sends next counts. */
        p->state = SOCKS5_PARSE_ERROR;
        p->error = -1;
        p->why = "no acceptable authentication method offered";
        break;
    }
    return SOCKS5_EV_METHODS;
}

/* RFC 1929: VER ULEN UNAME PLEN, then PASSWD as a message of its own. */
static enum socks5_event socks5_step_auth(struct socks5_parser *p)
{
    if (p->state == SOCKS5_PARSE_AUTH) {
        if (p->pos == SOCKS5_AUTH_HDR) {
            /* The rest of a message of another version has no known layout, but the answer's
             * does: RFC 1929 has the server reply with a failure status and close, and a client
             * closed on without it cannot tell a refused login from a crash. */
            if (p->buf[0] != SOCKS5_USERPASS_VERSION)
                return socks5_fail(p, SOCKS5_ERROR_USERPASS,
                                   "username/password sub-negotiation version is not 1 (RFC 1929)");
            p->need = SOCKS5_AUTH_HDR + (size_t)p->buf[1] + 1; /* UNAME and PLEN */
            return SOCKS5_EV_NEED_MORE;
        }
        p->user_len = p->buf[1];
        memcpy(p->user, p->buf + SOCKS5_AUTH_HDR, p->user_len);
        p->password_len = p->buf[p->pos - 1];
        p->state = SOCKS5_PARSE_AUTH_PASSWORD;
        p->pos = 0;
        p->need = p->password_len;
        if (p->need > 0)
            return SOCKS5_EV_NEED_MORE;
    } else {
        memcpy(p->password, p->buf, p->password_len);
        explicit_bzero(p->buf, p->password_len);
    }
    p->state = SOCKS5_PARSE_REQUEST;
    p->pos = 0;
    p->need = SOCKS5_REQUEST_HDR;
    return SOCKS5_EV_AUTH;
}

void socks5_parse_forget_password(struct socks5_parser *p)
{
    explicit_bzero(p->password, sizeof(p->password));
    explicit_bzero(p->buf, sizeof(p->buf));
    p->password_len = 0;
}

static enum socks5_event socks5_step_request(struct socks5_parser *p)
{
    if (p->pos == SOCKS5_REQUEST_HDR) {
        /* The methods were agreed in version 5, so the answer's layout is known whatever the
         * request's VER: RFC 1928 section 6 has the server reply to a request it cannot serve and
         * close, and general failure is the code for one that is not understood (Tor answers it
         * too). Closed without a word, a client author could not tell a bad request from a
         * crash. */
        if (p->buf[0] != SOCKS5_VERSION) {
            snprintf(p->why_buf, sizeof(p->why_buf), "request version is %u, not 5", p->buf[0]);
            return socks5_fail(p, SOCKS5_REP_GENERAL_FAILURE, p->why_buf);
        }
        p->cmd = p->buf[1];
        p->atyp = p->buf[3];
        switch (p->atyp) {
        case SOCKS5_ATYP_IPV4:
            p->need = SOCKS5_REQUEST_HDR + 4 + 2;
            break;
        case SOCKS5_ATYP_IPV6:
            p->need = SOCKS5_REQUEST_HDR + 16 + 2;
            break;
        case SOCKS5_ATYP_DOMAIN:
            p->need = SOCKS5_REQUEST_HDR + 1; /* the length byte */
            break;
        default:
            /* Without a known type the request has no known end: answer and close now. */
            return socks5_fail(p, SOCKS5_REP_ATYP_UNSUPPORTED, "unknown address type");
        }
        return SOCKS5_EV_NEED_MORE;
    }
    if (p->atyp == SOCKS5_ATYP_DOMAIN && p->pos == SOCKS5_REQUEST_HDR + 1) {
        p->need = SOCKS5_REQUEST_HDR + 1 + (size_t)p->buf[4] + 2;
        return SOCKS5_EV_NEED_MORE;
    }

    /* The whole request is here, so any error below can still be answered with a reply. */
    const uint8_t *port = p->buf + p->pos - 2;
    p->port = v2s_get_be16(port);
    if (p->atyp == SOCKS5_ATYP_DOMAIN) {
        /* A name no resolver can be asked about is the client's, not a broken proxy's: it gets
         * host unreachable (4), as any other name that does not resolve (dial_lookup_failed()),
         * where general failure (1) would have the client blame and retry the proxy. */
        size_t n = p->buf[4];
        if (n == 0)
            return socks5_fail(p, SOCKS5_REP_HOST_UNREACHABLE, "empty domain name");
        if (memchr(p->buf + 5, 0, n) != NULL)
            return socks5_fail(p, SOCKS5_REP_HOST_UNREACHABLE, "NUL byte in domain name");
        memcpy(p->name, p->buf + 5, n);
        p->name[n] = '\0';
    } else {
        p->addr.family = p->atyp == SOCKS5_ATYP_IPV4 ? AF_INET : AF_INET6;
        memcpy(p->addr.bytes, p->buf + SOCKS5_REQUEST_HDR, p->atyp == SOCKS5_ATYP_IPV4 ? 4 : 16);
    }
    if (p->cmd != SOCKS5_CMD_CONNECT && p->cmd != SOCKS5_CMD_BIND && p->cmd != SOCKS5_CMD_UDP_ASSOCIATE)
        return socks5_fail(p, SOCKS5_REP_CMD_UNSUPPORTED, "unknown command");
    p->state = SOCKS5_PARSE_DONE;
    return SOCKS5_EV_REQUEST;
}

/* SOCKS4 and 4a: VN CD DSTPORT DSTIP USERID\0, then HOST\0 when DSTIP is 0.0.0.x with x != 0.
 * The header is complete; the request is complete too when it holds neither a user id nor a
 * host: asks for the bytes after it otherwise. */
static enum socks5_event socks4_step_header(struct socks5_parser *p)
{
    p->cmd = p->buf[1];
    p->port = v2s_get_be16(p->buf + 2);
    p->s4_state = SOCKS4_READ_USERID;
    return SOCKS5_EV_NEED_MORE; /* USERID follows, even when empty (just its NUL) */
}

static enum socks5_event socks4_done(struct socks5_parser *p)
{
    p->state = SOCKS5_PARSE_DONE;
    return SOCKS5_EV_REQUEST;
}

/* One byte of USERID or HOST. A request too long is refused, but answered: a SOCKS4 reply's
 * layout is known whatever the request held, and a client closed on without it cannot tell why. */
static enum socks5_event socks4_step_byte(struct socks5_parser *p, uint8_t b)
{
    if (p->s4_state == SOCKS4_READ_USERID) {
        if (b != 0) {
            if (++p->s4_userid_len > SOCKS4_USERID_MAX)
                return socks5_fail(p, SOCKS4_REP_REJECTED, "SOCKS4 user id too long");
            return SOCKS5_EV_NEED_MORE;
        }
        const uint8_t *ip = p->buf + 4;
        if (ip[0] == 0 && ip[1] == 0 && ip[2] == 0 && ip[3] != 0) {
            p->s4_state = SOCKS4_READ_HOST;
            return SOCKS5_EV_NEED_MORE;
        }
        p->addr.family = AF_INET;
        memcpy(p->addr.bytes, ip, 4);
        p->atyp = SOCKS5_ATYP_IPV4;
        return socks4_done(p);
    }
    size_t n = p->pos - SOCKS4_HDR; /* the host name's bytes so far, collected in name */
    if (b != 0) {
        if (n == SOCKS4_HOST_MAX)
            return socks5_fail(p, SOCKS4_REP_REJECTED, "SOCKS4a host name too long");
        p->name[n] = (char)b; /* n < SOCKS4_HOST_MAX < sizeof(name) */
        p->pos++;
        return SOCKS5_EV_NEED_MORE;
    }
    if (n == 0)
        return socks5_fail(p, SOCKS4_REP_REJECTED, "SOCKS4a request with an empty host name");
    p->name[n] = '\0';
    p->atyp = SOCKS5_ATYP_DOMAIN;
    return socks4_done(p);
}

enum socks5_event socks5_parse_feed(struct socks5_parser *p, const uint8_t *data, size_t len,
                                    size_t *consumed)
{
    size_t used = 0;
    enum socks5_event ev = SOCKS5_EV_NEED_MORE;

    if (p->state == SOCKS5_PARSE_ERROR || p->state == SOCKS5_PARSE_DONE) {
        /* Sticky: an error stays an error; feeding a finished parser is the caller's bug. */
        *consumed = 0;
        if (p->state == SOCKS5_PARSE_DONE)
            return socks5_fail(p, -1, "data fed after the request was complete");
        return SOCKS5_EV_ERROR;
    }
    while (used < len && ev == SOCKS5_EV_NEED_MORE) {
        /* SOCKS4 strings end at a NUL, so past its header it reads one byte at a time. */
        if (p->version == SOCKS4_VERSION && p->s4_state != SOCKS4_READ_HEADER) {
            ev = socks4_step_byte(p, data[used++]);
            continue;
        }
        size_t want = p->need - p->pos;
        if (want > len - used)
            want = len - used;
        memcpy(p->buf + p->pos, data + used, want);
        p->pos += want;
        used += want;
        if (p->pos < p->need)
            continue;
        if (p->version == SOCKS4_VERSION)
            ev = socks4_step_header(p);
        else if (p->state == SOCKS5_PARSE_METHODS)
            ev = socks5_step_greeting(p);
        else if (p->state == SOCKS5_PARSE_AUTH || p->state == SOCKS5_PARSE_AUTH_PASSWORD)
            ev = socks5_step_auth(p);
        else
            ev = socks5_step_request(p);
    }
    *consumed = used;
    return ev;
}

uint8_t socks5_parse_method(const struct socks5_parser *p)
{
    /* With credentials, "no authentication" is never picked, even when offered. */
    uint8_t want = p->auth_required ? SOCKS5_AUTH_USERPASS : SOCKS5_AUTH_NONE;
    if (p->methods_mask[want / 8] & (1u << (want % 8)))
        return want;
    return SOCKS5_AUTH_NO_ACCEPTABLE;
}

size_t socks5_build_auth_reply(uint8_t *out, int ok)
{
    out[0] = SOCKS5_USERPASS_VERSION;
    out[1] = ok ? SOCKS5_USERPASS_SUCCESS : SOCKS5_USERPASS_FAILURE;
    return 2;
}

/* A NULL bound address means 0.0.0.0:0 (the port argument is then ignored, per the header). */
size_t socks5_build_reply(uint8_t *out, uint8_t rep, const struct v2s_addr *bnd, uint16_t port)
{
    size_t n = 0;
    out[n++] = SOCKS5_VERSION;
    out[n++] = rep;
    out[n++] = 0; /* RSV */
    if (bnd != NULL && bnd->family == AF_INET6) {
        out[n++] = SOCKS5_ATYP_IPV6;
        memcpy(out + n, bnd->bytes, 16);
        n += 16;
    } else {
        out[n++] = SOCKS5_ATYP_IPV4;
        if (bnd != NULL && bnd->family == AF_INET)
            memcpy(out + n, bnd->bytes, 4);
        else
            memset(out + n, 0, 4);
        n += 4;
    }
    if (bnd == NULL)
        port = 0;
    out[n++] = (uint8_t)(port >> 8);
    out[n++] = (uint8_t)(port & 0xFF);
    return n;
}

/* SOCKS4 replies carry only IPv4; anything else is sent as 0.0.0.0. */
size_t socks4_build_reply(uint8_t *out, uint8_t rep, const struct v2s_addr *bnd, uint16_t port)
{
    out[0] = 0; /* VN of a reply is 0, not 4 */
    out[1] = rep;
    if (bnd == NULL)
        port = 0;
    out[2] = (uint8_t)(port >> 8);
    out[3] = (uint8_t)(port & 0xFF);
    if (bnd != NULL && bnd->family == AF_INET)
        memcpy(out + 4, bnd->bytes, 4);
    else
        memset(out + 4, 0, 4);
    return 8;
}

int socks5_udp_parse(struct socks5_udp_header *h, const uint8_t *data, size_t len)
{
    memset(h, 0, sizeof(*h));
    if (len < 4 || data[0] != 0 || data[1] != 0)
        return -EINVAL;
    h->frag = data[2];
    h->atyp = data[3];
    size_t n = 4, alen;
    switch (h->atyp) {
    case SOCKS5_ATYP_IPV4: alen = 4; break;
    case SOCKS5_ATYP_IPV6: alen = 16; break;
    case SOCKS5_ATYP_DOMAIN:
        if (len < 5 || data[4] == 0)
            return -EINVAL;
        alen = data[4];
        n = 5;
        break;
    default: return -EINVAL;
    }
    if (len < n + alen + 2)
        return -EINVAL;
    if (h->atyp == SOCKS5_ATYP_DOMAIN) {
        if (memchr(data + n, 0, alen) != NULL)
            return -EINVAL;
        memcpy(h->name, data + n, alen);
        h->name[alen] = '\0';
    } else {
        h->addr.family = h->atyp == SOCKS5_ATYP_IPV4 ? AF_INET : AF_INET6;
        memcpy(h->addr.bytes, data + n, alen);
    }
    h->port = v2s_get_be16(data + n + alen);
    h->len = n + alen + 2;
    /* Checked last, so that a fragment is told from a malformed datagram only when it is whole. */
    return h->frag != 0 ? -ENOTSUP : 0;
}

size_t socks5_udp_build_header(uint8_t *out, const struct v2s_addr *src, uint16_t port)
{
    out[0] = 0;
    out[1] = 0;
    out[2] = 0; /* FRAG */
    size_t alen = src->family == AF_INET6 ? 16 : 4;
    out[3] = src->family == AF_INET6 ? SOCKS5_ATYP_IPV6 : SOCKS5_ATYP_IPV4;
    if (src->family == AF_INET6 || src->family == AF_INET)
        memcpy(out + 4, src->bytes, alen);
    else
        memset(out + 4, 0, alen);
    v2s_put_be16(out + 4 + alen, port);
    return 4 + alen + 2;
}
