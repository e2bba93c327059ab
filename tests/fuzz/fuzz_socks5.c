/* libFuzzer target for the SOCKS push parser: any input, fed whole and then one byte at a time,
 * must give the same events, the same consumed counts and the same parsed request; once as a
 * listener without authentication and once as one with --socks-auth (username/password first).
 * The same input is also parsed as a UDP ASSOCIATE datagram's header, whose length must stay
 * within the input, and whose name is NUL-terminated. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "socks/socks5.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_outcome {
    enum socks5_event last;
    size_t n_methods_events;
    size_t n_auth_events;
    size_t end;
};

/* Feeds data in chunks of at most step bytes, the way a server loop would. */
static void fuzz_run(struct socks5_parser *p, const uint8_t *data, size_t size, size_t step, int auth,
                     struct fuzz_outcome *o)
{
    memset(o, 0, sizeof(*o));
    socks5_parse_init(p);
    if (auth)
        socks5_parse_require_auth(p);
    size_t off = 0;
    o->last = SOCKS5_EV_NEED_MORE;
    while (off < size) {
        size_t n = size - off < step ? size - off : step;
        size_t used = 0;
        enum socks5_event ev = socks5_parse_feed(p, data + off, n, &used);
        if (used > n)
            abort();
        off += used;
        o->last = ev;
        if (ev == SOCKS5_EV_NEED_MORE) {
            if (used != n)
                abort();
            continue;
        }
        if (ev == SOCKS5_EV_METHODS) {
            o->n_methods_events++;
            (void)socks5_parse_method(p);
            continue;
        }
        if (ev == SOCKS5_EV_AUTH) {
            if (!auth)
                abort();
            o->n_auth_events++;
            continue;
        }
        break; /* REQUEST or ERROR */
    }
    o->end = off;
}

static void fuzz_one(const uint8_t *data, size_t size, int auth)
{
    static struct socks5_parser whole, bytes;
    struct fuzz_outcome a, b;
    uint8_t reply[32];

    fuzz_run(&whole, data, size, size ? size : 1, auth, &a);
    fuzz_run(&bytes, data, size, 1, auth, &b);
    if (a.last != b.last || a.n_methods_events != b.n_methods_events || a.n_auth_events != b.n_auth_events ||
        a.end != b.end || whole.state != bytes.state || whole.version != bytes.version)
        abort();
    if (a.n_auth_events > 0 &&
        (whole.user_len != bytes.user_len || memcmp(whole.user, bytes.user, whole.user_len) != 0 ||
         whole.password_len != bytes.password_len ||
         memcmp(whole.password, bytes.password, whole.password_len) != 0))
        abort();
    if (a.last == SOCKS5_EV_REQUEST) {
        if (whole.cmd != bytes.cmd || whole.atyp != bytes.atyp || whole.port != bytes.port ||
            !v2s_addr_equal(&whole.addr, &bytes.addr) || strcmp(whole.name, bytes.name) != 0 ||
            memchr(whole.name, 0, sizeof(whole.name)) == NULL)
            abort();
        if (socks5_build_reply(reply, SOCKS5_REP_SUCCEEDED, &whole.addr, whole.port) > 22)
            abort();
        socks4_build_reply(reply, SOCKS4_REP_GRANTED, &whole.addr, whole.port);
    }
    if (a.last == SOCKS5_EV_ERROR && (whole.error != bytes.error || whole.why == NULL))
        abort();
}

static void fuzz_udp(const uint8_t *data, size_t size)
{
    static struct socks5_udp_header h;
    int rc = socks5_udp_parse(&h, data, size);
    if (rc == 0 || rc == -ENOTSUP) {
        if (h.len > size || h.len > SOCKS5_UDP_HEADER_MAX || memchr(h.name, 0, sizeof(h.name)) == NULL ||
            (rc == 0) != (h.frag == 0))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_one(data, size, 0);
    fuzz_one(data, size, 1);
    fuzz_udp(data, size);
    return 0;
}
