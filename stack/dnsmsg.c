/* DNS query builder and answer reader. The answer comes from the network, so every offset is
 * checked against the message length before it is read, compression pointers are followed at most
 * DNSMSG_MAX_POINTERS times per name, and CNAME chains at most DNSMSG_MAX_CNAMES deep.
 *
 * Names are compared in wire form (length-prefixed labels, ASCII lowercased) rather than as dotted
 * text, so a label that itself contains a '.' byte cannot pass for two labels. */
#include "stack/dnsmsg.h"

#include "base/bytes.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

enum {
    DNSMSG_HDR = 12,
    DNSMSG_NAME_MAX = 255,   /* wire form, with the root label (RFC 1035 3.1) */
    DNSMSG_LABEL_MAX = 63,
    DNSMSG_MAX_POINTERS = 64,
    DNSMSG_MAX_CNAMES = 16,
    DNSMSG_FLAG_QR = 0x8000,
    DNSMSG_FLAG_TC = 0x0200,
    DNSMSG_FLAG_RD = 0x0100,
};

/* A name in wire form, lowercased. */
struct dnsmsg_name {
    uint8_t b[DNSMSG_NAME_MAX];
    size_t len;
};

/* One resource record as found in the message; rdata is an offset into it. */
struct dnsmsg_rr {
    struct dnsmsg_name owner;
    uint16_t type;
    uint16_t cls;
    uint32_t ttl;
    size_t rdata;
    size_t rdlen;
};

static uint8_t dnsmsg_lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + ('a' - 'A')) : c;
}

/* Encodes a dotted name (an optional trailing dot) into wire form. */
static int dnsmsg_encode_name(struct dnsmsg_name *out, const char *name, int lower)
{
    if (name == NULL)
        return -EINVAL;
    size_t len = strlen(name);
    if (len > 0 && name[len - 1] == '.')
        len--;
    if (len == 0 || len > DNSMSG_NAME_MAX - 2)
        return -EINVAL;
    size_t n = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && name[i] != '.')
            continue;
        size_t label = i - start;
        if (label == 0 || label > DNSMSG_LABEL_MAX)
            return -EINVAL;
        out->b[n++] = (uint8_t)label;
        for (size_t k = start; k < i; k++)
            out->b[n++] = lower ? dnsmsg_lower((uint8_t)name[k]) : (uint8_t)name[k];
        start = i + 1;
    }
    out->b[n++] = 0;
    out->len = n; /* len + 2 <= 255 */
    return 0;
}

int dnsmsg_build_query(uint8_t *buf, size_t cap, uint16_t id, const char *name, uint16_t qtype)
{
    struct dnsmsg_name qname;
    if (dnsmsg_encode_name(&qname, name, 0) != 0)
        return -EINVAL;
    size_t total = DNSMSG_HDR + qname.len + 4;
    if (cap < total)
        return -ENOSPC;
    memset(buf, 0, DNSMSG_HDR);
    buf[0] = (uint8_t)(id >> 8);
    buf[1] = (uint8_t)id;
    buf[2] = (uint8_t)(DNSMSG_FLAG_RD >> 8);
    buf[5] = 1; /* QDCOUNT */
    memcpy(buf + DNSMSG_HDR, qname.b, qname.len);
    uint8_t *q = buf + DNSMSG_HDR + qname.len;
    q[0] = (uint8_t)(qtype >> 8);
    q[1] = (uint8_t)qtype;
    q[2] = 0;
    q[3] = DNSMSG_CLASS_IN;
    return (int)total;
}

/* Reads the (possibly compressed) name at *off into wire form and moves *off past it as it sits in
 * the message (after its first pointer, if any). -EINVAL if it leaves the message, loops, uses the
 * reserved label types or grows past 255 bytes. */
static int dnsmsg_read_name(const uint8_t *msg, size_t len, size_t *off, struct dnsmsg_name *out)
{
    size_t pos = *off;
    size_t end = 0;
    int jumped = 0;
    int pointers = 0;
    size_t n = 0;

    for (;;) {
        if (pos >= len)
            return -EINVAL;
        uint8_t l = msg[pos];
        if ((l & 0xC0) == 0xC0) {
            if (pos + 1 >= len || ++pointers > DNSMSG_MAX_POINTERS)
                return -EINVAL;
            size_t target = ((size_t)(l & 0x3F) << 8) | msg[pos + 1];
            if (target >= len)
                return -EINVAL;
            if (!jumped)
                end = pos + 2;
            jumped = 1;
            pos = target;
            continue;
        }
        if (l & 0xC0)
            return -EINVAL; /* 0x40 / 0x80: extended and reserved label types */
        if (l == 0) {
            out->b[n++] = 0;
            break;
        }
        if (l > len - pos - 1 || n + 1 + l + 1 > DNSMSG_NAME_MAX)
            return -EINVAL;
        out->b[n++] = l;
        for (size_t k = 0; k < l; k++)
            out->b[n++] = dnsmsg_lower(msg[pos + 1 + k]);
        pos += 1 + (size_t)l;
    }
    out->len = n;
    *off = jumped ? end : pos + 1;
    return 0;
}

static int dnsmsg_name_equal(const struct dnsmsg_name *a, const struct dnsmsg_name *b)
{
    return a->len == b->len && memcmp(a->b, b->b, a->len) == 0;
}

/* Reads one resource record at *off and moves past it; checks what we will later rely on. */
static int dnsmsg_read_rr(const uint8_t *msg, size_t len, size_t *off, struct dnsmsg_rr *rr)
{
    size_t pos = *off;
    if (dnsmsg_read_name(msg, len, &pos, &rr->owner) != 0)
        return -EINVAL;
    if (len - pos < 10)
        return -EINVAL;
    rr->type = v2s_get_be16(msg + pos);
    rr->cls = v2s_get_be16(msg + pos + 2);
    rr->ttl = v2s_get_be32(msg + pos + 4);
    rr->rdlen = v2s_get_be16(msg + pos + 8);
    rr->rdata = pos + 10;
    if (rr->rdlen > len - rr->rdata)
        return -EINVAL;
    /* RFC 2181 8: a TTL with the top bit set is to be treated as zero. */
    if (rr->ttl & 0x80000000u)
        rr->ttl = 0;
    *off = rr->rdata + rr->rdlen;
    return 0;
}

/* The CNAME target in rr's rdata, which must be exactly one name. */
static int dnsmsg_read_cname(const uint8_t *msg, size_t len, const struct dnsmsg_rr *rr,
                             struct dnsmsg_name *target)
{
    size_t pos = rr->rdata;
    if (dnsmsg_read_name(msg, len, &pos, target) != 0 || pos != rr->rdata + rr->rdlen)
        return -EINVAL;
    return 0;
}

/* First pass: every record we can see must be well formed. A truncated (TC) message may end in
 * the middle of the answer section; then only the records that are complete count. Returns how
 * many records count, or -EINVAL. */
static int dnsmsg_check_answers(const uint8_t *msg, size_t len, size_t off, unsigned ancount,
                                int truncated)
{
    struct dnsmsg_rr rr;
    struct dnsmsg_name target;
    for (unsigned i = 0; i < ancount; i++) {
        if (dnsmsg_read_rr(msg, len, &off, &rr) != 0)
            return truncated ? (int)i : -EINVAL;
        if (rr.cls != DNSMSG_CLASS_IN)
            continue;
        if ((rr.type == DNSMSG_TYPE_A && rr.rdlen != 4) || (rr.type == DNSMSG_TYPE_AAAA && rr.rdlen != 16))
            return -EINVAL;
        if (rr.type == DNSMSG_TYPE_CNAME && dnsmsg_read_cname(msg, len, &rr, &target) != 0)
            return -EINVAL;
    }
    return (int)ancount;
}

static void dnsmsg_use_ttl(struct dnsmsg_answer *out, uint32_t ttl, int *used)
{
    if (!*used || ttl < out->ttl)
        out->ttl = ttl;
    *used = 1;
}

/* RFC 2308 3 and 5: a negative answer carries the zone's SOA in the authority section; its TTL and
 * its MINIMUM field bound how long the absence may be cached. off is past the answer section. */
static void dnsmsg_read_soa(const uint8_t *msg, size_t len, size_t off, unsigned nscount,
                            struct dnsmsg_answer *out)
{
    struct dnsmsg_rr rr;
    struct dnsmsg_name skip;
    for (unsigned i = 0; i < nscount; i++) {
        if (dnsmsg_read_rr(msg, len, &off, &rr) != 0)
            return;
        if (rr.type != DNSMSG_TYPE_SOA || rr.cls != DNSMSG_CLASS_IN)
            continue;
        size_t pos = rr.rdata;
        if (dnsmsg_read_name(msg, len, &pos, &skip) != 0 || dnsmsg_read_name(msg, len, &pos, &skip) != 0 ||
            pos + 20 != rr.rdata + rr.rdlen)
            return; /* MNAME, RNAME, then SERIAL REFRESH RETRY EXPIRE MINIMUM */
        uint32_t minimum = v2s_get_be32(msg + pos + 16);
        if (minimum & 0x80000000u)
            minimum = 0;
        out->has_soa = 1;
        out->neg_ttl = rr.ttl < minimum ? rr.ttl : minimum;
        return;
    }
}

int dnsmsg_parse_answer(const uint8_t *msg, size_t len, uint16_t id, const char *name, uint16_t qtype,
                        struct dnsmsg_answer *out)
{
    struct dnsmsg_name want, qname;
    struct dnsmsg_rr rr;

    memset(out, 0, sizeof(*out));
    if (dnsmsg_encode_name(&want, name, 1) != 0)
        return -EINVAL;
    if (len < DNSMSG_HDR)
        return -EINVAL;
    uint16_t flags = v2s_get_be16(msg + 2);
    /* Not a response, or not a standard query's response: not the answer we wait for. */
    if (v2s_get_be16(msg) != id || !(flags & DNSMSG_FLAG_QR) || ((flags >> 11) & 0xF) != 0)
        return -ENOENT;
    out->rcode = flags & 0xF;
    out->truncated = (flags & DNSMSG_FLAG_TC) != 0;
    unsigned qdcount = v2s_get_be16(msg + 4);
    unsigned ancount = v2s_get_be16(msg + 6);

    /* An answer must echo our question, whatever its rcode (RFC 5452 9.1): the id alone is 16
     * bits a host that does not see the query can guess, and a question-less NXDOMAIN or SERVFAIL
     * would end the lookup or move it to the next server. A server that answers FORMERR, SERVFAIL
     * or REFUSED without the question is waited out instead, as a silent one is. */
    if (qdcount != 1)
        return -ENOENT;
    size_t off = DNSMSG_HDR;
    if (dnsmsg_read_name(msg, len, &off, &qname) != 0 || len - off < 4)
        return -EINVAL;
    if (!dnsmsg_name_equal(&qname, &want) || v2s_get_be16(msg + off) != qtype ||
        v2s_get_be16(msg + off + 2) != DNSMSG_CLASS_IN)
        return -ENOENT;
    off += 4;

    int n = dnsmsg_check_answers(msg, len, off, ancount, out->truncated);
    if (n < 0)
        return -EINVAL;
    unsigned usable = (unsigned)n;

    /* Follow the chain from the question's name; the records may come in any order. */
    struct dnsmsg_name current = want;
    int used = 0;
    for (int hops = 0;; hops++) {
        int found = 0;
        size_t pos = off;
        for (unsigned i = 0; i < usable && !found; i++) {
            dnsmsg_read_rr(msg, len, &pos, &rr); /* checked above */
            if (rr.type != DNSMSG_TYPE_CNAME || rr.cls != DNSMSG_CLASS_IN ||
                !dnsmsg_name_equal(&rr.owner, &current))
                continue;
            dnsmsg_read_cname(msg, len, &rr, &current);
            dnsmsg_use_ttl(out, rr.ttl, &used);
            found = 1;
        }
        if (!found)
            break;
        if (hops == DNSMSG_MAX_CNAMES) {
            memset(out->addrs, 0, sizeof(out->addrs));
            return -EINVAL; /* a loop, or a chain no sane zone has */
        }
    }

    size_t addr_len = qtype == DNSMSG_TYPE_A ? 4 : qtype == DNSMSG_TYPE_AAAA ? 16 : 0;
    size_t pos = off;
    for (unsigned i = 0; i < usable && addr_len != 0; i++) {
        dnsmsg_read_rr(msg, len, &pos, &rr);
        if (rr.type != qtype || rr.cls != DNSMSG_CLASS_IN || !dnsmsg_name_equal(&rr.owner, &current))
            continue;
        if (out->n_addrs == DNSMSG_MAX_ADDRS)
            continue; /* more than we keep: the first ones are as good as any */
        dnsmsg_use_ttl(out, rr.ttl, &used);
        struct v2s_addr *a = &out->addrs[out->n_addrs++];
        a->family = addr_len == 4 ? AF_INET : AF_INET6;
        memcpy(a->bytes, msg + rr.rdata, addr_len);
    }
    if (out->n_addrs == 0 && !out->truncated) {
        pos = off;
        for (unsigned i = 0; i < usable; i++)
            dnsmsg_read_rr(msg, len, &pos, &rr);
        dnsmsg_read_soa(msg, len, pos, v2s_get_be16(msg + 8), out);
    }
    return 0;
}
