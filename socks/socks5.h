/* SOCKS5 (RFC 1928), its username/password sub-negotiation (RFC 1929) and SOCKS4/4a wire format:
 * a push parser for what the client sends and builders for what the server answers. Pure code,
 * no I/O; unit tests and fuzzers drive it. */
#ifndef VPN2SOCKS_SOCKS_SOCKS5_H
#define VPN2SOCKS_SOCKS_SOCKS5_H

#include <stddef.h>
#include <stdint.h>

#include "base/addr.h"

enum socks5_const {
    SOCKS5_VERSION = 0x05,
    SOCKS4_VERSION = 0x04,
    SOCKS5_AUTH_NONE = 0x00,
    SOCKS5_AUTH_USERPASS = 0x02,
    SOCKS5_AUTH_NO_ACCEPTABLE = 0xFF,
    SOCKS5_CMD_CONNECT = 0x01,
    SOCKS5_CMD_BIND = 0x02,
    SOCKS5_CMD_UDP_ASSOCIATE = 0x03,
    SOCKS5_ATYP_IPV4 = 0x01,
    SOCKS5_ATYP_DOMAIN = 0x03,
    SOCKS5_ATYP_IPV6 = 0x04,
    SOCKS5_USERPASS_VERSION = 0x01, /* RFC 1929's VER, in the request and the reply */
    SOCKS5_USERPASS_SUCCESS = 0x00, /* RFC 1929 STATUS; anything else is a failure */
    SOCKS5_USERPASS_FAILURE = 0x01,
};

/* Reply codes (RFC 1928 section 6). */
enum socks5_reply {
    SOCKS5_REP_SUCCEEDED = 0x00,
    SOCKS5_REP_GENERAL_FAILURE = 0x01,
    SOCKS5_REP_NOT_ALLOWED = 0x02,
    SOCKS5_REP_NET_UNREACHABLE = 0x03,
    SOCKS5_REP_HOST_UNREACHABLE = 0x04,
    SOCKS5_REP_REFUSED = 0x05,
    SOCKS5_REP_TTL_EXPIRED = 0x06,
    SOCKS5_REP_CMD_UNSUPPORTED = 0x07,
    SOCKS5_REP_ATYP_UNSUPPORTED = 0x08,
};

/* SOCKS4 reply codes. */
enum socks4_reply {
    SOCKS4_REP_GRANTED = 0x5A,
    SOCKS4_REP_REJECTED = 0x5B,
};

enum socks5_parse_state {
    SOCKS5_PARSE_METHODS,  /* reading VER NMETHODS METHODS (or a SOCKS4 request) */
    SOCKS5_PARSE_AUTH,     /* reading VER ULEN UNAME PLEN (RFC 1929) */
    SOCKS5_PARSE_AUTH_PASSWORD, /* reading PASSWD */
    SOCKS5_PARSE_REQUEST,  /* reading VER CMD RSV ATYP ADDR PORT */
    SOCKS5_PARSE_DONE,
    SOCKS5_PARSE_ERROR,
};

/* socks5_parser.error for a username/password sub-negotiation whose VER is not 1: the answer is
 * RFC 1929's failure (socks5_build_auth_reply(out, 0)), after which the server closes. Above every
 * reply code, so it is never taken for one. */
enum {
    SOCKS5_ERROR_USERPASS = 0x100,
};

/* Where a SOCKS4 request's parse is, past its version byte (private to the parser). */
enum socks4_read {
    SOCKS4_READ_HEADER, /* VN CD DSTPORT DSTIP, into buf */
    SOCKS4_READ_USERID, /* counted up to its NUL, not kept */
    SOCKS4_READ_HOST,   /* SOCKS4a: into name, up to its NUL */
};

/* What socks5_parse_feed() found. */
enum socks5_event {
    SOCKS5_EV_NEED_MORE = 0,  /* all input consumed, nothing complete yet */
    SOCKS5_EV_METHODS,        /* greeting complete: answer with socks5_parse_method() */
    SOCKS5_EV_AUTH,           /* username/password complete: see user, password; answer, and on
                               * success feed the rest (the request follows) */
    SOCKS5_EV_REQUEST,        /* request complete: see cmd, addr/name, port */
    SOCKS5_EV_ERROR,          /* malformed: see error (a reply code to send, if any) and why */
};

struct socks5_parser {
    enum socks5_parse_state state;
    uint8_t version;        /* 5, or 4 for SOCKS4/4a */
    int auth_required;      /* socks5_parse_require_auth(): username/password or nothing */
    uint8_t methods_mask[32]; /* bit set for every method the client offered */
    uint8_t cmd;
    uint8_t atyp;           /* SOCKS5_ATYP_*; a SOCKS4a name reports DOMAIN */
    struct v2s_addr addr;   /* for IPV4 / IPV6 */
    char name[256];         /* for DOMAIN, NUL-terminated */
    uint16_t port;
    /* On SOCKS5_EV_AUTH, what the client sent (1..255 bytes each by the wire format, though a
     * client may send a length of 0). socks5_parse_forget_password() wipes the password. */
    uint8_t user[255];
    uint8_t user_len;
    uint8_t password[255];
    uint8_t password_len;
    int error;              /* on SOCKS5_EV_ERROR: reply code to send, SOCKS5_ERROR_USERPASS,
                             * or -1 to just close */
    const char *why;        /* on SOCKS5_EV_ERROR: a short reason for the log (it may point into
                             * why_buf, so it lives as long as the parser) */
    /* private: the reason when it names a byte the client sent */
    char why_buf[48];
    /* private: position within the current message */
    size_t pos;
    size_t need;
    uint8_t buf[262];
    /* private: where a SOCKS4 request is (its strings have no length), and how long its user id
     * is so far (the bytes are not kept) */
    enum socks4_read s4_state;
    size_t s4_userid_len;
};

void socks5_parse_init(struct socks5_parser *p);
/* Right after init: the listener has credentials, so the only method it picks is
 * username/password, and a greeting that does not offer it gets NO_ACCEPTABLE. SOCKS4 requests
 * are still parsed: the caller refuses them (they carry no password). */
void socks5_parse_require_auth(struct socks5_parser *p);
/* Feeds bytes; *consumed tells how many were used, so bytes after a complete request (data the
 * client sent early) stay with the caller. Call again after SOCKS5_EV_METHODS with the rest. */
enum socks5_event socks5_parse_feed(struct socks5_parser *p, const uint8_t *data, size_t len,
                                    size_t *consumed);
/* The method the server picks from what was offered: USERPASS when auth is required, else NONE;
 * NO_ACCEPTABLE when that one was not offered, or no method at all (NMETHODS 0): the parser
 * then takes no more input, and the caller sends the answer and closes. */
uint8_t socks5_parse_method(const struct socks5_parser *p);
/* Wipes the password (and the parser's copy of the bytes it came in), once it was checked. */
void socks5_parse_forget_password(struct socks5_parser *p);

/* Builds a SOCKS5 reply with a bound address (NULL = 0.0.0.0:0). Returns the length (<= 22). */
size_t socks5_build_reply(uint8_t *out, uint8_t rep, const struct v2s_addr *bnd, uint16_t port);
/* Builds the 2-byte RFC 1929 reply: success, or failure (after which the server closes). */
size_t socks5_build_auth_reply(uint8_t *out, int ok);
/* Builds the 8-byte SOCKS4 reply. */
size_t socks4_build_reply(uint8_t *out, uint8_t rep, const struct v2s_addr *bnd, uint16_t port);

/* The header of every datagram on a UDP association (RFC 1928 section 7), both ways:
 * RSV (2 bytes, 0) FRAG ATYP DST.ADDR DST.PORT, then the payload. */
enum {
    SOCKS5_UDP_HEADER_MAX = 4 + 1 + 255 + 2, /* with the longest name */
};

struct socks5_udp_header {
    uint8_t frag;           /* 0: a whole datagram; else a fragment (we take none) */
    uint8_t atyp;           /* SOCKS5_ATYP_* */
    struct v2s_addr addr;   /* for IPV4 / IPV6 */
    char name[256];         /* for DOMAIN, NUL-terminated */
    uint16_t port;
    size_t len;             /* the header's length: the payload starts there */
};

/* Parses the header at the start of a datagram of len bytes. 0; -ENOTSUP for a fragment (FRAG
 * != 0, which we drop: reassembly is optional and no client we know sends fragments); -EINVAL
 * for anything malformed (shorter than its header, RSV not 0, an unknown ATYP, an empty name or
 * one with a NUL byte). */
int socks5_udp_parse(struct socks5_udp_header *h, const uint8_t *data, size_t len);
/* Writes the header of an answer from src:port (FRAG 0); returns its length (10 or 22). */
size_t socks5_udp_build_header(uint8_t *out, const struct v2s_addr *src, uint16_t port);

#endif
