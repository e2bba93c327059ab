/* Addresses, CIDR prefixes and numbers as every layer above lwIP reads them. Pure code, no I/O. */
#ifndef VPN2SOCKS_BASE_ADDR_H
#define VPN2SOCKS_BASE_ADDR_H

#include <stddef.h>
#include <stdint.h>

/* An IPv4 or IPv6 address in network byte order; family is AF_INET or AF_INET6 (0 = none). */
struct v2s_addr {
    uint8_t family;
    uint8_t bytes[16];
};

struct v2s_cidr {
    struct v2s_addr addr; /* host bits are zero */
    uint8_t prefix;       /* 0..32 or 0..128 */
};

/* Longest text form of an address with a port: "[v6]:65535" plus NUL. */
#define V2S_ADDR_STRLEN (46 + 8)

/* Parses a numeric IPv4 or IPv6 address. 0 or -EINVAL. */
int v2s_addr_parse(struct v2s_addr *out, const char *text);
/* Writes the numeric form; returns buf. */
const char *v2s_addr_format(const struct v2s_addr *a, char *buf, size_t cap);
/* "1.2.3.4:80" or "[::1]:80"; returns buf. */
const char *v2s_addr_format_port(const struct v2s_addr *a, uint16_t port, char *buf, size_t cap);
int v2s_addr_equal(const struct v2s_addr *a, const struct v2s_addr *b);
/* Length in bytes of the family's address: 4, 16, or 0 for none. */
size_t v2s_addr_len(const struct v2s_addr *a);
/* Turns an IPv4-mapped IPv6 address (::ffff:a.b.c.d, how a dual-stack socket shows an IPv4 peer)
 * into the IPv4 address a.b.c.d; leaves any other address as it is. */
void v2s_addr_unmap_v4(struct v2s_addr *a);
/* The other way: an IPv4 address a.b.c.d becomes ::ffff:a.b.c.d; any other is left as it is. */
void v2s_addr_map_v4(struct v2s_addr *a);

/* Parses "A/N", "A" (a host prefix), or for IPv4 "A/dotted-mask". Host bits must be zero
 * unless relaxed is set, in which case they are cleared. 0 or -EINVAL. */
int v2s_cidr_parse(struct v2s_cidr *out, const char *text, int relaxed);
/* Builds a prefix from an address and a prefix length, clearing host bits. 0 or -EINVAL. */
int v2s_cidr_make(struct v2s_cidr *out, const struct v2s_addr *a, unsigned prefix);
/* Converts a dotted IPv4 netmask to a prefix length; -EINVAL if not contiguous. */
int v2s_netmask_prefix(const char *mask);
int v2s_cidr_contains(const struct v2s_cidr *c, const struct v2s_addr *a);
/* Turns an IPv4-mapped IPv6 prefix (::ffff:a.b.c.d/N, N from 96 to 128) into the IPv4 prefix
 * a.b.c.d/(N - 96), the hosts whose mapped addresses it holds; 1 when it did, 0 for any other
 * prefix, left as it is (a shorter one such as ::/0 is not only mapped addresses). */
int v2s_cidr_unmap_v4(struct v2s_cidr *c);
const char *v2s_cidr_format(const struct v2s_cidr *c, char *buf, size_t cap);

struct sockaddr;
struct sockaddr_storage;
/* Reads an AF_INET or AF_INET6 socket address into addr and port (host order). 0, or -EAFNOSUPPORT
 * for any other family (then addr is none and port 0). */
int v2s_addr_from_sockaddr(const struct sockaddr *sa, struct v2s_addr *addr, uint16_t *port);
/* Builds the socket address of addr and port (host order); returns its length, or -EAFNOSUPPORT
 * when addr is none. */
int v2s_addr_to_sockaddr(const struct v2s_addr *addr, uint16_t port, struct sockaddr_storage *out);
/* "1.2.3.4:80" or "[::1]:80" of a socket address ("?" for another family); returns buf. */
const char *v2s_sockaddr_format(const struct sockaddr *sa, char *buf, size_t cap);

/* Copies text into buf (cap >= 8) for a log line or an error message, escaped so that text from a
 * peer (a server's message, a pushed option, a SOCKS host name) can neither forge log lines nor
 * reach a terminal: printable ASCII stays, a backslash becomes "\\", any other byte (control
 * characters, DEL, 0x80 and above) "\xNN". Text that does not fit ends in "...". Returns buf. */
const char *v2s_shown(const char *text, char *buf, size_t cap);

/* Strict unsigned decimal: digits only (no sign, no spaces), at most 9 of them, no more than max.
 * 0 or -EINVAL. Every parser of configuration text uses this one. */
int v2s_parse_uint(const char *text, unsigned long max, unsigned long *out);

#endif
