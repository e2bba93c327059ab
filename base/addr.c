/* Addresses and CIDR prefixes. Text goes through inet_pton/inet_ntop only, so what we accept is
 * exactly the numeric forms the C library accepts: no hostnames, no IPv6 zone ids, no shorthand
 * IPv4 forms like "10.1" that inet_aton would take. */
#include "base/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* Longest text we try to parse as an address; anything longer is not numeric. */
enum { ADDR_TEXT_MAX = 64 };

static unsigned addr_max_prefix(const struct v2s_addr *a)
{
    return (unsigned)(v2s_addr_len(a) * 8);
}

size_t v2s_addr_len(const struct v2s_addr *a)
{
    if (a->family == AF_INET)
        return 4;
    if (a->family == AF_INET6)
        return 16;
    return 0;
}

void v2s_addr_unmap_v4(struct v2s_addr *a)
{
    static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    if (a->family != AF_INET6 || memcmp(a->bytes, prefix, sizeof(prefix)) != 0)
        return;
    memmove(a->bytes, a->bytes + 12, 4);
    memset(a->bytes + 4, 0, 12);
    a->family = AF_INET;
}

void v2s_addr_map_v4(struct v2s_addr *a)
{
    if (a->family != AF_INET)
        return;
    memmove(a->bytes + 12, a->bytes, 4);
    memset(a->bytes, 0, 10);
    a->bytes[10] = 0xFF;
    a->bytes[11] = 0xFF;
    a->family = AF_INET6;
}

int v2s_addr_parse(struct v2s_addr *out, const char *text)
{
    memset(out, 0, sizeof(*out));
    if (text == NULL)
        return -EINVAL;
    if (inet_pton(AF_INET, text, out->bytes) == 1) {
        out->family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, text, out->bytes) == 1) {
        out->family = AF_INET6;
        return 0;
    }
    memset(out, 0, sizeof(*out));
    return -EINVAL;
}

const char *v2s_addr_format(const struct v2s_addr *a, char *buf, size_t cap)
{
    if (cap == 0)
        return buf;
    buf[0] = '\0';
    if (a->family != AF_INET && a->family != AF_INET6) {
        snprintf(buf, cap, "none");
        return buf;
    }
    /* inet_ntop takes a socklen_t; a huge cap is only a bigger buffer than it will use. */
    socklen_t n = cap > INET6_ADDRSTRLEN ? INET6_ADDRSTRLEN : (socklen_t)cap;
    if (inet_ntop(a->family, a->bytes, buf, n) == NULL)
        snprintf(buf, cap, "?");
    return buf;
}

const char *v2s_addr_format_port(const struct v2s_addr *a, uint16_t port, char *buf, size_t cap)
{
    char text[INET6_ADDRSTRLEN];
    if (cap == 0)
        return buf;
    v2s_addr_format(a, text, sizeof(text));
    if (a->family == AF_INET6)
        snprintf(buf, cap, "[%s]:%u", text, (unsigned)port);
    else
        snprintf(buf, cap, "%s:%u", text, (unsigned)port);
    return buf;
}

int v2s_addr_equal(const struct v2s_addr *a, const struct v2s_addr *b)
{
    if (a->family != b->family)
        return 0;
    return memcmp(a->bytes, b->bytes, v2s_addr_len(a)) == 0;
}

/* Clears every bit past prefix; bytes past the family's length stay zero as parse left them. */
static void addr_clear_host_bits(struct v2s_addr *a, unsigned prefix)
{
    size_t len = v2s_addr_len(a);
    for (size_t i = 0; i < len; i++) {
        unsigned first_bit = (unsigned)i * 8;
        if (prefix >= first_bit + 8)
            continue;
        if (prefix <= first_bit)
            a->bytes[i] = 0;
        else
            a->bytes[i] &= (uint8_t)(0xFFu << (8 - (prefix - first_bit)));
    }
}

static int addr_has_host_bits(const struct v2s_addr *a, unsigned prefix)
{
    struct v2s_addr cleared = *a;
    addr_clear_host_bits(&cleared, prefix);
    return !v2s_addr_equal(&cleared, a);
}

int v2s_cidr_make(struct v2s_cidr *out, const struct v2s_addr *a, unsigned prefix)
{
    memset(out, 0, sizeof(*out));
    if (v2s_addr_len(a) == 0 || prefix > addr_max_prefix(a))
        return -EINVAL;
    out->addr = *a;
    addr_clear_host_bits(&out->addr, prefix);
    out->prefix = (uint8_t)prefix;
    return 0;
}

int v2s_netmask_prefix(const char *mask)
{
    struct v2s_addr a;
    if (mask == NULL || inet_pton(AF_INET, mask, a.bytes) != 1)
        return -EINVAL;
    uint32_t m = ((uint32_t)a.bytes[0] << 24) | ((uint32_t)a.bytes[1] << 16) |
                 ((uint32_t)a.bytes[2] << 8) | (uint32_t)a.bytes[3];
    int prefix = 0;
    while (prefix < 32 && (m & (0x80000000u >> prefix)))
        prefix++;
    /* Contiguous means nothing is left once the leading ones are removed. */
    if (prefix < 32 && (m << prefix) != 0)
        return -EINVAL;
    return prefix;
}

/* Strict decimal prefix length: 1 to 3 digits, nothing else. */
static int cidr_parse_prefix_len(const char *text, unsigned max)
{
    size_t n = strlen(text);
    if (n == 0 || n > 3)
        return -EINVAL;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -EINVAL;
        v = v * 10 + (unsigned)(text[i] - '0');
    }
    if (v > max)
        return -EINVAL;
    return (int)v;
}

int v2s_cidr_parse(struct v2s_cidr *out, const char *text, int relaxed)
{
    char host[ADDR_TEXT_MAX];
    struct v2s_addr a;
    int prefix;

    memset(out, 0, sizeof(*out));
    if (text == NULL)
        return -EINVAL;
    const char *slash = strchr(text, '/');
    size_t host_len = slash ? (size_t)(slash - text) : strlen(text);
    if (host_len == 0 || host_len >= sizeof(host))
        return -EINVAL;
    memcpy(host, text, host_len);
    host[host_len] = '\0';
    if (v2s_addr_parse(&a, host) != 0)
        return -EINVAL;

    if (slash == NULL)
        prefix = (int)addr_max_prefix(&a);
    else if (a.family == AF_INET && strchr(slash + 1, '.') != NULL)
        prefix = v2s_netmask_prefix(slash + 1);
    else
        prefix = cidr_parse_prefix_len(slash + 1, addr_max_prefix(&a));
    if (prefix < 0)
        return -EINVAL;

    if (!relaxed && addr_has_host_bits(&a, (unsigned)prefix))
        return -EINVAL;
    return v2s_cidr_make(out, &a, (unsigned)prefix);
}

int v2s_cidr_contains(const struct v2s_cidr *c, const struct v2s_addr *a)
{
    if (c->addr.family != a->family || v2s_addr_len(a) == 0 || c->prefix > addr_max_prefix(a))
        return 0;
    unsigned full = c->prefix / 8u;
    unsigned rest = c->prefix % 8u;
    if (memcmp(c->addr.bytes, a->bytes, full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xFFu << (8 - rest));
    return (c->addr.bytes[full] & mask) == (a->bytes[full] & mask);
}

int v2s_cidr_unmap_v4(struct v2s_cidr *c)
{
    struct v2s_addr a = c->addr;
    v2s_addr_unmap_v4(&a);
    if (a.family != AF_INET || c->addr.family != AF_INET6 || c->prefix < 96)
        return 0;
    c->addr = a;
    c->prefix = (uint8_t)(c->prefix - 96);
    return 1;
}

const char *v2s_cidr_format(const struct v2s_cidr *c, char *buf, size_t cap)
{
    char text[INET6_ADDRSTRLEN];
    if (cap == 0)
        return buf;
    v2s_addr_format(&c->addr, text, sizeof(text));
    snprintf(buf, cap, "%s/%u", text, (unsigned)c->prefix);
    return buf;
}

int v2s_parse_uint(const char *text, unsigned long max, unsigned long *out)
{
    size_t n = strlen(text);
    unsigned long v = 0;
    if (n == 0 || n > 9)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -EINVAL;
        v = v * 10 + (unsigned long)(text[i] - '0');
    }
    if (v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

/* How many bytes v2s_shown writes for byte c. */
static size_t addr_shown_len(unsigned char c)
{
    if (c == '\\')
        return 2;
    return c >= 0x20 && c < 0x7F ? 1 : 4;
}

const char *v2s_shown(const char *text, char *buf, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *in = (const unsigned char *)text;
    size_t total = 0, o = 0;

    for (const unsigned char *p = in; *p != '\0'; p++)
        total += addr_shown_len(*p);
    /* Shortened text keeps room for "..." and never ends in half an escape. */
    size_t room = total + 1 <= cap ? cap - 1 : cap - 1 - 3;
    for (; *in != '\0'; in++) {
        size_t n = addr_shown_len(*in);
        if (o + n > room)
            break;
        if (n == 1) {
            buf[o] = (char)*in;
        } else if (n == 2) {
            buf[o] = buf[o + 1] = '\\';
        } else {
            buf[o] = '\\';
            buf[o + 1] = 'x';
            buf[o + 2] = hex[*in >> 4];
            buf[o + 3] = hex[*in & 0xF];
        }
        o += n;
    }
    if (*in != '\0') {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

int v2s_addr_from_sockaddr(const struct sockaddr *sa, struct v2s_addr *addr, uint16_t *port)
{
    memset(addr, 0, sizeof(*addr));
    *port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;
        addr->family = AF_INET;
        memcpy(addr->bytes, &sin->sin_addr, 4);
        *port = ntohs(sin->sin_port);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)sa;
        addr->family = AF_INET6;
        memcpy(addr->bytes, &sin6->sin6_addr, 16);
        *port = ntohs(sin6->sin6_port);
        return 0;
    }
    return -EAFNOSUPPORT;
}

int v2s_addr_to_sockaddr(const struct v2s_addr *addr, uint16_t port, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof(*out));
    if (addr->family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)(void *)out;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        memcpy(&sin->sin_addr, addr->bytes, 4);
        return (int)sizeof(*sin);
    }
    if (addr->family == AF_INET6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)(void *)out;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        memcpy(&sin6->sin6_addr, addr->bytes, 16);
        return (int)sizeof(*sin6);
    }
    return -EAFNOSUPPORT;
}

const char *v2s_sockaddr_format(const struct sockaddr *sa, char *buf, size_t cap)
{
    struct v2s_addr a;
    uint16_t port;
    if (v2s_addr_from_sockaddr(sa, &a, &port) < 0) {
        snprintf(buf, cap, "?");
        return buf;
    }
    return v2s_addr_format_port(&a, port, buf, cap);
}
