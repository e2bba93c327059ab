/* The address arguments of the listeners: [ADDR:]PORT (-D, -H, --status, conf lines) and the
 * forwards' [BIND:]PORT:HOST:HOSTPORT (-L, -R, with /udp). options.c parses the rest. */
#include "app/options.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "base/addr.h"

/* A port from 1 to 65535 in decimal. Port 0 would bind a port the kernel picks, which nothing
 * tells the user: the start line said "listening on 127.0.0.1:0" and no client could find it. A
 * leading zero is refused as inet_pton refuses it in an address: 01080 is octal to C's strtol
 * with base 0 and to the tools built on it, so whoever wrote it may have meant 576, and a typo
 * is likelier than either. 0, -EINVAL, or -EDOM for a leading zero. */
static int options_parse_port(const char *text, unsigned long *out)
{
    if (v2s_parse_uint(text, 65535, out) < 0 || *out == 0)
        return -EINVAL;
    return text[0] == '0' ? -EDOM : 0;
}

int options_parse_listen(struct sockaddr_storage *out, const char *text)
{
    char host[64] = "127.0.0.1";
    const char *port = text;
    memset(out, 0, sizeof(*out));
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':' || (size_t)(close - text - 1) >= sizeof(host))
            return -EINVAL;
        memcpy(host, text + 1, (size_t)(close - text - 1));
        host[close - text - 1] = '\0';
        port = close + 2;
    } else {
        const char *colon = strrchr(text, ':');
        if (colon) {
            if (strchr(text, ':') != colon || (size_t)(colon - text) >= sizeof(host))
                return -EINVAL;
            memcpy(host, text, (size_t)(colon - text));
            host[colon - text] = '\0';
            port = colon + 1;
        }
    }
    unsigned long p;
    int rc = options_parse_port(port, &p);
    if (rc < 0)
        return rc;
    struct sockaddr_in *sin = (struct sockaddr_in *)out;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
    if (strcmp(host, "*") == 0)
        snprintf(host, sizeof(host), "0.0.0.0");
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)p);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)p);
        return 0;
    }
    if (strcmp(host, "localhost") == 0) {
        sin->sin_family = AF_INET;
        sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sin->sin_port = htons((uint16_t)p);
        return 0;
    }
    return -EINVAL;
}

/* Cuts the next ':'-separated field of *text into buf: "[...]" is one field (brackets kept), so
 * IPv6 addresses can hold colons. 0, or -1 when the field is malformed or too long. */
static int forward_field(const char **text, char *buf, size_t cap)
{
    const char *s = *text, *end;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close || (close[1] != ':' && close[1] != '\0'))
            return -1;
        end = close + 1;
    } else
        end = s + strcspn(s, ":");
    if ((size_t)(end - s) >= cap)
        return -1;
    memcpy(buf, s, (size_t)(end - s));
    buf[end - s] = '\0';
    *text = *end == ':' ? end + 1 : end;
    return *end == ':' && end[1] == '\0' ? -1 : 0; /* a trailing ':' leaves an empty field */
}

int options_parse_forward(struct options_forward *out, const char *text, int remote, char *err, size_t errcap)
{
    static const char expected[] = "expected [ADDR:]PORT:HOST:HOSTPORT";
    char spec[600], f[4][300];
    memset(out, 0, sizeof(*out));
    if (strlen(text) >= sizeof(spec)) {
        snprintf(err, errcap, "too long");
        return -EINVAL;
    }
    snprintf(spec, sizeof(spec), "%s", text);
    char *slash = strrchr(spec, '/');
    if (slash && !strchr(slash, ']')) {
        if (strcmp(slash, "/udp") == 0)
            out->udp = 1;
        else if (strcmp(slash, "/tcp") != 0) {
            snprintf(err, errcap, "%s, optionally followed by /tcp or /udp", expected);
            return -EINVAL;
        }
        *slash = '\0';
    }
    const char *p = spec;
    int n = 0;
    while (*p && n < 4)
        if (forward_field(&p, f[n++], sizeof(f[0])) < 0) {
            snprintf(err, errcap, "%s", expected);
            return -EINVAL;
        }
    if (*p || n < 3) {
        snprintf(err, errcap, "%s%s", expected, *p ? " (an IPv6 address goes in brackets)" : "");
        return -EINVAL;
    }
    char listen[sizeof(f[0]) * 2 + 2];
    if (n == 4)
        snprintf(listen, sizeof(listen), "%s:%s", f[0], f[1]);
    else
        snprintf(listen, sizeof(listen), remote ? "0.0.0.0:%s" : "%s", f[0]);
    /* Inside the tunnel there is no "localhost" or "*": an address, or none for all of them.
     * ssh users write both (ssh -R binds the server's loopback by default, "*" all of its
     * addresses), and were told that the listening address "is not an IP address". */
    if (remote && n == 4 && (strcmp(f[0], "localhost") == 0 || strcmp(f[0], "*") == 0)) {
        snprintf(err, errcap,
                 "%s: the listening [ADDR:]PORT is inside the tunnel, which has no %s: give PORT alone "
                 "(every tunnel address) or the tunnel's ADDR:PORT",
                 expected, f[0][0] == '*' ? "\"*\"" : "localhost");
        return -EINVAL;
    }
    unsigned long port;
    int rc = f[n - 3][0] ? options_parse_listen(&out->listen, listen) : -EINVAL;
    if (rc == -EDOM) {
        snprintf(err, errcap, "%s: the listening PORT %s has a leading zero (a port is written in decimal)",
                 expected, f[n - 3]);
        return -EINVAL;
    }
    if (rc < 0) {
        snprintf(err, errcap, "%s: the listening [ADDR:]PORT is not an IP address and a port from 1 to 65535",
                 expected);
        return -EINVAL;
    }
    const char *host = f[n - 2];
    size_t hl = strlen(host);
    if (host[0] == '[') {
        struct v2s_addr a;
        char inner[300];
        snprintf(inner, sizeof(inner), "%.*s", (int)(hl - 2), host + 1);
        if (hl < 3 || host[hl - 1] != ']' || v2s_addr_parse(&a, inner) < 0 || a.family != AF_INET6) {
            snprintf(err, errcap, "%s: HOST in brackets must be an IPv6 address", expected);
            return -EINVAL;
        }
        memcpy(out->host, inner, strlen(inner) + 1); /* an IPv6 address: short */
    } else {
        if (hl == 0 || hl > 253 || strspn(host, OPTIONS_DOMAIN_CHARS) != hl) {
            snprintf(err, errcap, "%s: HOST must be a host name or an IP address", expected);
            return -EINVAL;
        }
        memcpy(out->host, host, hl + 1);
    }
    if ((rc = options_parse_port(f[n - 1], &port)) == -EDOM) {
        snprintf(err, errcap, "%s: HOSTPORT %s has a leading zero (a port is written in decimal)", expected,
                 f[n - 1]);
        return -EINVAL;
    }
    if (rc < 0) {
        snprintf(err, errcap, "%s: HOSTPORT must be a port from 1 to 65535", expected);
        return -EINVAL;
    }
    out->port = (uint16_t)port;
    out->remote = remote;
    return 0;
}

int options_listen_is_loopback(const struct sockaddr *addr)
{
    if (addr->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)addr)->sin_addr.s_addr) >> 24) == 127;
    if (addr->sa_family != AF_INET6)
        return 0;
    const struct in6_addr *a = &((const struct sockaddr_in6 *)addr)->sin6_addr;
    if (IN6_IS_ADDR_LOOPBACK(a))
        return 1;
    /* ::ffff:127.x.y.z binds the IPv4 loopback */
    return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
}
