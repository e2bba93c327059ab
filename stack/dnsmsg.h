/* DNS messages (RFC 1035, AAAA from RFC 3596): building a query and reading its answer. Pure code,
 * no I/O, bounds-checked against hostile input; unit tests and fuzzers drive it directly. */
#ifndef VPN2SOCKS_STACK_DNSMSG_H
#define VPN2SOCKS_STACK_DNSMSG_H

#include <stddef.h>
#include <stdint.h>

#include "base/addr.h"

enum dnsmsg_const {
    DNSMSG_TYPE_A = 1,
    DNSMSG_TYPE_CNAME = 5,
    DNSMSG_TYPE_SOA = 6,
    DNSMSG_TYPE_AAAA = 28,
    DNSMSG_CLASS_IN = 1,
    DNSMSG_RCODE_NOERROR = 0,
    DNSMSG_RCODE_FORMERR = 1,
    DNSMSG_RCODE_SERVFAIL = 2,
    DNSMSG_RCODE_NXDOMAIN = 3,
    DNSMSG_MAX_UDP = 512,      /* classic UDP limit; we send no EDNS */
    DNSMSG_MAX_ADDRS = 16,
};

struct dnsmsg_answer {
    int rcode;                 /* DNSMSG_RCODE_* from the header */
    int truncated;             /* TC bit set */
    struct v2s_addr addrs[DNSMSG_MAX_ADDRS];
    size_t n_addrs;
    uint32_t ttl;              /* smallest TTL among the records used */
    int has_soa;               /* the authority section has the zone's SOA (a negative answer) */
    uint32_t neg_ttl;          /* ... then how long the absence may be cached (RFC 2308 5: the
                                * smaller of the SOA record's TTL and its MINIMUM field) */
};

/* Writes a recursive query for name (dotted, an optional trailing dot) and qtype into buf.
 * Returns the length, or -EINVAL for a bad name (empty label, label > 63, name > 253) or
 * -ENOSPC if cap is too small. */
int dnsmsg_build_query(uint8_t *buf, size_t cap, uint16_t id, const char *name, uint16_t qtype);

/* Reads a response to the query (id, name, qtype): checks QR, id and the echoed question, follows
 * CNAMEs within the answer section, collects the addresses of qtype, and, for an answer without
 * them that is not truncated, reads the first SOA of the authority section (a malformed authority
 * section only means no SOA). Returns 0 (see out->rcode and
 * out->n_addrs), -EINVAL for a malformed message or -ENOENT when it does not answer this query
 * (wrong id, or a question missing or not ours, whatever the rcode: ignore it and keep
 * waiting). */
int dnsmsg_parse_answer(const uint8_t *msg, size_t len, uint16_t id, const char *name, uint16_t qtype,
                        struct dnsmsg_answer *out);

#endif
