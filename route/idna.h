/* A host name as the host's resolver reads it: libuv's uv_getaddrinfo() hands getaddrinfo() the
 * IDNA ASCII form of the name it is given (RFC 3490's ToASCII without the nameprep mapping: a
 * label with a character outside ASCII becomes "xn--" and its Punycode, RFC 3492; U+3002,
 * U+FF0E and U+FF61 separate labels as '.' does). Split DNS must judge that form, or a name the
 * router takes for someone else's reaches the host's DNS as one of the VPN's. Pure code. */
#ifndef VPN2SOCKS_ROUTE_IDNA_H
#define VPN2SOCKS_ROUTE_IDNA_H

#include <stddef.h>

/* Writes name's ASCII form, NUL-terminated, into out (cap bytes). An ASCII name comes out as it
 * went in. Returns 0, or -EINVAL when name is not UTF-8 (as uv_getaddrinfo() refuses it) or
 * its ASCII form does not fit. */
int idna_to_ascii(const char *name, char *out, size_t cap);

#endif
