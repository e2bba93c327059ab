/* The stack behind a fake tunnel, on a virtual clock (harness_tun.h). */
#include "harness_tun.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/bytes.h"
#include "harness_rand.h"
#include "stack/dnsmsg.h"
#include "lwip/timeouts.h"
#include "stack/stack.h"
#include "stack/sys_clock.h"
#include "stack/tcp.h"
#include "test.h"
#include "tunnel/settings.h"

enum { HARNESS_TUN_SETTLE_PASSES = 4 };

/* lwIP's clock and randomness are process-wide, and so is the one stack a test runs. */
static struct harness_tun *harness_tun_current;
static struct harness_rand harness_tun_rand;

static uint32_t harness_tun_clock(void)
{
    return harness_tun_current ? harness_tun_current->now_ms : 0;
}

static uint32_t harness_tun_random(void)
{
    return (uint32_t)harness_rand_next(&harness_tun_rand);
}

static int harness_tun_start(struct tunnel *t)
{
    (void)t;
    return 0;
}

/* The stack's packets go to the test; the tunnel never refuses one. */
static int harness_tun_send(struct tunnel *tunnel, const uint8_t *pkt, size_t len)
{
    struct harness_tun *t = (struct harness_tun *)tunnel;
    t->sent++;
    if (t->on_send)
        t->on_send(t, pkt, len);
    return 0;
}

static void harness_tun_close(struct tunnel *t, void (*cb)(struct tunnel *t))
{
    cb(t);
}

static const struct tunnel_ops harness_tun_ops = {
    .start = harness_tun_start,
    .send = harness_tun_send,
    .close = harness_tun_close,
};

int harness_tun_up(struct harness_tun *t, const struct harness_tun_config *cfg, harness_tun_send_fn on_send,
                   void *arg)
{
    memset(t, 0, sizeof(*t));
    t->tunnel.ops = &harness_tun_ops;
    t->tunnel.rx_room = cfg->rx_room;
    t->on_send = on_send;
    t->arg = arg;
    t->now_ms = 1000;
    harness_tun_current = t;
    stack_sys_set_clock(harness_tun_clock);
    if (cfg->seed) {
        harness_rand_init(&harness_tun_rand, cfg->seed, 0x74756e00ULL);
        stack_sys_set_random(harness_tun_random);
    }
    int rc = uv_loop_init(&t->loop);
    if (rc < 0)
        return rc;
    if ((rc = stack_new(&t->stack, &t->loop, &t->tunnel)) < 0)
        return rc;
    return harness_tun_again(t, cfg);
}

int harness_tun_again(struct harness_tun *t, const struct harness_tun_config *cfg)
{
    struct tunnel_settings ts;
    tunnel_settings_init(&ts);
    int rc = 0;
    if (cfg->addr4 && (rc = v2s_addr_parse(&ts.addr4, cfg->addr4)) == 0)
        ts.prefix4 = 24;
    if (rc == 0 && cfg->addr6 && (rc = v2s_addr_parse(&ts.addr6, cfg->addr6)) == 0)
        ts.prefix6 = 64;
    for (size_t i = 0; rc == 0 && i < 4 && cfg->dns[i]; i++)
        rc = v2s_addr_parse(&ts.dns[ts.n_dns++], cfg->dns[i]);
    if (rc == 0 && cfg->domains && !(ts.domains = strdup(cfg->domains)))
        rc = -ENOMEM;
    ts.mtu = 1400;
    if (rc == 0)
        rc = stack_tunnel_up(t->stack, &ts);
    tunnel_settings_free(&ts);
    return rc;
}

void harness_tun_settle(struct harness_tun *t)
{
    for (int i = 0; i < HARNESS_TUN_SETTLE_PASSES; i++)
        uv_run(&t->loop, UV_RUN_NOWAIT);
}

void harness_tun_inject(struct harness_tun *t, const uint8_t *pkt, size_t len)
{
    stack_input(t->stack, pkt, len);
    harness_tun_settle(t);
}

void harness_tun_advance(struct harness_tun *t, uint32_t ms)
{
    uint32_t end = t->now_ms + ms;
    for (;;) {
        uint32_t sleep = sys_timeouts_sleeptime();
        if (sleep == SYS_TIMEOUTS_SLEEPTIME_INFINITE || sleep > end - t->now_ms) {
            t->now_ms = end;
            sys_check_timeouts();
            harness_tun_settle(t);
            return;
        }
        t->now_ms += sleep;
        sys_check_timeouts();
        harness_tun_settle(t);
        if (t->now_ms == end)
            return;
    }
}

static void harness_tun_stack_closed(void *arg)
{
    struct harness_tun *t = arg;
    t->stack_closed = 1;
}

static void harness_tun_count(uv_handle_t *h, void *arg)
{
    (void)h;
    (*(int *)arg)++;
}

int harness_tun_down(struct harness_tun *t)
{
    if (t->stack)
        stack_close(t->stack, harness_tun_stack_closed, t);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    int open = 0;
    uv_walk(&t->loop, harness_tun_count, &open);
    int closed = !t->stack || t->stack_closed;
    if (open == 0 && uv_loop_close(&t->loop) != 0)
        open = 1;
    stack_sys_set_clock(NULL);
    stack_sys_set_random(NULL);
    harness_tun_current = NULL;
    return closed ? open : -1;
}

/* The Internet checksum of what sum already holds plus n bytes at p. */
uint32_t harness_tun_sum(uint32_t sum, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        sum += v2s_get_be16(p + i);
    if (n & 1)
        sum += (uint32_t)p[n - 1] << 8;
    return sum;
}

uint16_t harness_tun_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xFFFF) + (sum >> 16);
    return (uint16_t)~sum;
}

/* An IPv4 header (20 bytes, with its checksum) or an IPv6 one (40) for proto carrying plen bytes
 * from src to dst, at pkt; returns its length. */
static size_t harness_tun_ip_header(uint8_t *pkt, const struct v2s_addr *src, const struct v2s_addr *dst,
                                    uint8_t proto, size_t plen)
{
    if (src->family == AF_INET6) {
        memset(pkt, 0, 40);
        pkt[0] = 0x60;
        v2s_put_be16(pkt + 4, (uint16_t)plen);
        pkt[6] = proto;
        pkt[7] = 64;
        memcpy(pkt + 8, src->bytes, 16);
        memcpy(pkt + 24, dst->bytes, 16);
        return 40;
    }
    memset(pkt, 0, 20);
    pkt[0] = 0x45;
    v2s_put_be16(pkt + 2, (uint16_t)(20 + plen));
    pkt[8] = 64;
    pkt[9] = proto;
    memcpy(pkt + 12, src->bytes, 4);
    memcpy(pkt + 16, dst->bytes, 4);
    v2s_put_be16(pkt + 10, harness_tun_fold(harness_tun_sum(0, pkt, 20)));
    return 20;
}

/* The pseudo-header's sum for a transport checksum of plen bytes of proto. */
static uint32_t harness_tun_pseudo(const struct v2s_addr *src, const struct v2s_addr *dst, uint8_t proto,
                                   size_t plen)
{
    size_t alen = src->family == AF_INET6 ? 16 : 4;
    uint32_t sum = harness_tun_sum(0, src->bytes, alen);
    sum = harness_tun_sum(sum, dst->bytes, alen);
    return sum + proto + (uint32_t)plen;
}

size_t harness_tun_udp(uint8_t *pkt, size_t cap, const struct v2s_addr *src, uint16_t sport,
                       const struct v2s_addr *dst, uint16_t dport, const uint8_t *payload, size_t n)
{
    size_t hlen = src->family == AF_INET6 ? 40 : 20, len = hlen + 8 + n;
    if (len > cap || 8 + n > 0xFFFF || (hlen == 20 && len > 0xFFFF) || src->family != dst->family)
        return 0;
    harness_tun_ip_header(pkt, src, dst, 17, 8 + n);
    uint8_t *udp = pkt + hlen;
    v2s_put_be16(udp, sport);
    v2s_put_be16(udp + 2, dport);
    v2s_put_be16(udp + 4, (uint16_t)(8 + n));
    v2s_put_be16(udp + 6, 0);
    memcpy(udp + 8, payload, n);
    uint16_t ck = harness_tun_fold(harness_tun_sum(harness_tun_pseudo(src, dst, 17, 8 + n), udp, 8 + n));
    v2s_put_be16(udp + 6, ck ? ck : 0xFFFF);
    return len;
}

size_t harness_tun_udp4(uint8_t *pkt, size_t cap, const struct v2s_addr *src, uint16_t sport,
                        const struct v2s_addr *dst, uint16_t dport, const uint8_t *payload, size_t n)
{
    if (src->family != AF_INET)
        return 0;
    return harness_tun_udp(pkt, cap, src, sport, dst, dport, payload, n);
}

size_t harness_tun_icmp_echo(uint8_t *pkt, size_t cap, const struct v2s_addr *src, const struct v2s_addr *dst,
                             uint16_t id, uint16_t seq, const uint8_t *payload, size_t n)
{
    int v6 = src->family == AF_INET6;
    size_t hlen = v6 ? 40 : 20, len = hlen + 8 + n;
    if (len > cap || len > 0xFFFF || src->family != dst->family)
        return 0;
    harness_tun_ip_header(pkt, src, dst, v6 ? 58 : 1, 8 + n);
    uint8_t *icmp = pkt + hlen;
    icmp[0] = v6 ? 128 : 8;
    icmp[1] = 0;
    v2s_put_be16(icmp + 2, 0);
    v2s_put_be16(icmp + 4, id);
    v2s_put_be16(icmp + 6, seq);
    memcpy(icmp + 8, payload, n);
    uint32_t sum = v6 ? harness_tun_pseudo(src, dst, 58, 8 + n) : 0;
    v2s_put_be16(icmp + 2, harness_tun_fold(harness_tun_sum(sum, icmp, 8 + n)));
    return len;
}

size_t harness_tun_tcp4(uint8_t *pkt, size_t cap, const struct v2s_addr *src, uint16_t sport,
                        const struct v2s_addr *dst, uint16_t dport, uint8_t flags, uint32_t seq, uint32_t ack,
                        uint16_t wnd, const uint8_t *opts, size_t optlen, const uint8_t *payload, size_t n)
{
    size_t tlen = 20 + optlen + n, len = 20 + tlen;
    if (len > cap || len > 0xFFFF || optlen % 4 || optlen > 40)
        return 0;
    memset(pkt, 0, 40);
    pkt[0] = 0x45;
    v2s_put_be16(pkt + 2, (uint16_t)len);
    pkt[8] = 64;
    pkt[9] = 6;
    memcpy(pkt + 12, src->bytes, 4);
    memcpy(pkt + 16, dst->bytes, 4);
    v2s_put_be16(pkt + 10, harness_tun_fold(harness_tun_sum(0, pkt, 20)));
    uint8_t *tcp = pkt + 20;
    v2s_put_be16(tcp, sport);
    v2s_put_be16(tcp + 2, dport);
    v2s_put_be32(tcp + 4, seq);
    v2s_put_be32(tcp + 8, ack);
    tcp[12] = (uint8_t)((20 + optlen) / 4 << 4);
    tcp[13] = flags;
    v2s_put_be16(tcp + 14, wnd);
    if (optlen)
        memcpy(tcp + 20, opts, optlen);
    if (n)
        memcpy(tcp + 20 + optlen, payload, n);
    uint32_t sum = harness_tun_sum(0, pkt + 12, 8) + 6 + (uint32_t)tlen;
    v2s_put_be16(tcp + 16, harness_tun_fold(harness_tun_sum(sum, tcp, tlen)));
    return len;
}

const uint8_t *harness_tun_tcp_option(const uint8_t *tcp, uint8_t kind)
{
    size_t doff = (size_t)(tcp[12] >> 4) * 4;
    for (size_t i = 20; i + 1 < doff;) {
        if (tcp[i] == 0)
            break;
        if (tcp[i] == 1) {
            i++;
            continue;
        }
        if (tcp[i] == kind && tcp[i + 1] >= 2 && i + tcp[i + 1] <= doff)
            return tcp + i;
        i += tcp[i + 1] ? tcp[i + 1] : 1;
    }
    return NULL;
}

int harness_tun_parse_udp(const uint8_t *pkt, size_t len, struct v2s_addr *src, uint16_t *sport,
                          struct v2s_addr *dst, uint16_t *dport, const uint8_t **payload, size_t *n)
{
    size_t hlen, alen;
    if (len >= 48 && pkt[0] >> 4 == 6 && pkt[6] == 17) {
        hlen = 40;
        alen = 16;
        if (40 + (size_t)v2s_get_be16(pkt + 4) > len)
            return 0;
    } else if (len >= 28 && pkt[0] >> 4 == 4 && pkt[9] == 17 && (v2s_get_be16(pkt + 6) & 0x3FFF) == 0) {
        hlen = (size_t)(pkt[0] & 0x0F) * 4;
        alen = 4;
        if (hlen < 20 || len < hlen + 8)
            return 0;
    } else {
        return 0;
    }
    const uint8_t *udp = pkt + hlen;
    size_t ulen = v2s_get_be16(udp + 4);
    if (ulen < 8 || hlen + ulen > len)
        return 0;
    memset(src, 0, sizeof(*src));
    memset(dst, 0, sizeof(*dst));
    src->family = dst->family = alen == 4 ? AF_INET : AF_INET6;
    memcpy(src->bytes, pkt + (alen == 4 ? 12 : 8), alen);
    memcpy(dst->bytes, pkt + (alen == 4 ? 16 : 24), alen);
    *sport = v2s_get_be16(udp);
    *dport = v2s_get_be16(udp + 2);
    *payload = udp + 8;
    *n = ulen - 8;
    return 1;
}

int harness_tun_parse_udp4(const uint8_t *pkt, size_t len, struct v2s_addr *src, uint16_t *sport,
                           struct v2s_addr *dst, uint16_t *dport, const uint8_t **payload, size_t *n)
{
    return len > 0 && pkt[0] >> 4 == 4 && harness_tun_parse_udp(pkt, len, src, sport, dst, dport, payload, n);
}

size_t harness_tun_fragment4(uint8_t *out, size_t cap, const uint8_t *pkt, size_t len, size_t off, size_t n)
{
    size_t hlen = (size_t)(pkt[0] & 0x0F) * 4;
    if (len < hlen || off % 8 || off + n > len - hlen || hlen + n > cap)
        return 0;
    memcpy(out, pkt, hlen);
    memcpy(out + hlen, pkt + hlen + off, n);
    v2s_put_be16(out + 2, (uint16_t)(hlen + n));
    v2s_put_be16(out + 4, 0x7654);
    v2s_put_be16(out + 6, (uint16_t)((off / 8) | (off + n < len - hlen ? 0x2000 : 0)));
    v2s_put_be16(out + 10, 0);
    v2s_put_be16(out + 10, harness_tun_fold(harness_tun_sum(0, out, hlen)));
    return hlen + n;
}

size_t harness_tun_dns_question(const uint8_t *m, size_t n, char *name, size_t cap, uint16_t *id, uint16_t *qtype)
{
    if (n < 12 || v2s_get_be16(m + 4) != 1 || cap == 0)
        return 0;
    *id = v2s_get_be16(m);
    size_t off = 12, out = 0;
    while (off < n && m[off] != 0) {
        size_t l = m[off++];
        if (l > 63 || off + l > n || out + l + 2 > cap)
            return 0;
        if (out)
            name[out++] = '.';
        memcpy(name + out, m + off, l);
        out += l;
        off += l;
    }
    name[out] = '\0';
    if (off + 5 > n)
        return 0;
    *qtype = v2s_get_be16(m + off + 1);
    return off + 5;
}

size_t harness_tun_dns_answer(uint8_t *out, const uint8_t *m, size_t qend, uint16_t id, int rcode,
                              const struct v2s_addr *addr)
{
    memcpy(out, m, qend);
    v2s_put_be16(out, id);
    v2s_put_be16(out + 2, (uint16_t)(0x8180 | rcode)); /* QR, RD, RA */
    v2s_put_be16(out + 6, addr ? 1 : 0);
    memset(out + 8, 0, 4);
    size_t len = qend;
    if (addr) {
        size_t alen = addr->family == AF_INET ? 4 : 16;
        uint8_t *rr = out + len;
        rr[0] = 0xC0, rr[1] = 12; /* the name in the question */
        v2s_put_be16(rr + 2, alen == 4 ? DNSMSG_TYPE_A : DNSMSG_TYPE_AAAA);
        v2s_put_be16(rr + 4, DNSMSG_CLASS_IN);
        v2s_put_be32(rr + 6, 60);
        v2s_put_be16(rr + 10, (uint16_t)alen);
        memcpy(rr + 12, addr->bytes, alen);
        len += 12 + alen;
    }
    return len;
}

/* --- the application of hand-played connections --- */

static void harness_tun_app_accepted(uv_stream_t *server, int status)
{
    struct harness_tun_app *app = server->data;
    if (status < 0 || app->accepted)
        return;
    app->accepted = malloc(sizeof(*app->accepted));
    if (!app->accepted || uv_tcp_init(&app->t->loop, app->accepted) < 0 ||
        uv_accept(server, (uv_stream_t *)app->accepted) < 0)
        abort();
}

static void harness_tun_app_connected(uv_connect_t *req, int status)
{
    struct harness_tun_app *app = req->data;
    app->connected = status == 0;
}

int harness_tun_app_open(struct harness_tun *t, struct harness_tun_app *app)
{
    struct sockaddr_in sin;
    int slen = sizeof(sin), rc;
    memset(app, 0, sizeof(*app));
    app->t = t;
    uv_ip4_addr("127.0.0.1", 0, &sin);
    if ((rc = uv_tcp_init(&t->loop, &app->listener)) < 0)
        return rc;
    app->listener.data = app;
    if ((rc = uv_tcp_bind(&app->listener, (const struct sockaddr *)&sin, 0)) < 0 ||
        (rc = uv_listen((uv_stream_t *)&app->listener, 1, harness_tun_app_accepted)) < 0 ||
        (rc = uv_tcp_getsockname(&app->listener, (struct sockaddr *)&sin, &slen)) < 0 ||
        (rc = uv_tcp_init(&t->loop, &app->client)) < 0)
        return rc;
    app->connect_req.data = app;
    if ((rc = uv_tcp_connect(&app->connect_req, &app->client, (const struct sockaddr *)&sin,
                             harness_tun_app_connected)) < 0)
        return rc;
    for (int i = 0; i < 10000 && (!app->connected || !app->accepted); i++)
        uv_run(&t->loop, UV_RUN_ONCE);
    return app->connected && app->accepted ? 0 : -ETIMEDOUT;
}

static void harness_tun_app_done(void *arg, int reset, uint64_t up, uint64_t down)
{
    struct harness_tun_app *app = arg;
    (void)reset;
    (void)up;
    (void)down;
    app->done = 1;
}

static void harness_tun_app_bridge(void *arg, struct stack_tcp *c, int status)
{
    struct harness_tun_app *app = arg;
    app->status = status;
    if (status == 0)
        stack_tcp_bridge_start(c, app->accepted, app->early, app->n_early, "harness_tun app", harness_tun_app_done,
                               app);
}

int harness_tun_app_connect(struct harness_tun_app *app, const struct v2s_addr *dst, uint16_t port,
                            struct stack_tcp **out)
{
    app->status = 1;
    return stack_tcp_connect(app->t->stack, dst, port, 60000, harness_tun_app_bridge, app, out);
}

void harness_tun_app_close(struct harness_tun_app *app)
{
    uv_close((uv_handle_t *)&app->client, NULL);
    uv_close((uv_handle_t *)&app->listener, NULL);
}

void harness_tun_app_free(struct harness_tun_app *app)
{
    free(app->accepted);
    app->accepted = NULL;
}

/* --- one TCP connection played by hand --- */

/* The stack's packets while h is up: its SYN read into h, every other IPv4 TCP segment (a
 * 20-byte IP header) to the test. */
static void harness_tun_tcp_sent(struct harness_tun *t, const uint8_t *pkt, size_t len)
{
    struct harness_tun_tcp *h = (struct harness_tun_tcp *)t; /* t is its first member */
    if (len < 40 || pkt[0] != 0x45 || pkt[9] != 6)
        return;
    const uint8_t *tcp = pkt + 20;
    if (tcp[13] != 0x02) {
        if (h->on_send)
            h->on_send(t, pkt, len);
        return;
    }
    h->syns++;
    h->sport = v2s_get_be16(tcp);
    h->syn_seq = v2s_get_be32(tcp + 4);
    const uint8_t *ws = harness_tun_tcp_option(tcp, 3);
    if (ws && ws[1] >= 3)
        h->syn_scale = ws[2];
}

void harness_tun_tcp_up(struct harness_tun_tcp *h, const struct harness_tun_tcp_config *cfg,
                        harness_tun_send_fn on_send, void *arg)
{
    memset(h, 0, sizeof(*h));
    h->cfg = *cfg;
    h->on_send = on_send;
    const struct harness_tun_config tc = {.addr4 = "10.8.0.2", .seed = cfg->seed, .rx_room = cfg->rx_room};
    ASSERT_EQ(harness_tun_up(&h->tun, &tc, harness_tun_tcp_sent, arg), 0);
    ASSERT_EQ(v2s_addr_parse(&h->us, "10.8.0.2"), 0);
    ASSERT_EQ(v2s_addr_parse(&h->peer, "10.9.0.1"), 0);
    ASSERT_EQ(harness_tun_app_open(&h->tun, &h->app), 0);
}

void harness_tun_tcp_connect(struct harness_tun_tcp *h)
{
    ASSERT_EQ(harness_tun_app_connect(&h->app, &h->peer, h->cfg.port, &h->c), 0);
    harness_tun_settle(&h->tun);
    ASSERT_EQ(h->syns, 1);
}

void harness_tun_tcp_synack(struct harness_tun_tcp *h)
{
    const struct harness_tun_tcp_config *cfg = &h->cfg;
    uint8_t opts[12], pkt[100];
    size_t optlen = 0;
    if (cfg->mss) {
        opts[optlen++] = 2;
        opts[optlen++] = 4;
        v2s_put_be16(opts + optlen, cfg->mss);
        optlen += 2;
    }
    if (cfg->sack) {
        static const uint8_t sack[4] = {1, 1, 4, 2};
        memcpy(opts + optlen, sack, 4);
        optlen += 4;
    }
    if (cfg->scaled) {
        const uint8_t ws[4] = {1, 3, 3, cfg->wscale};
        memcpy(opts + optlen, ws, 4);
        optlen += 4;
    }
    size_t len = harness_tun_tcp4(pkt, sizeof(pkt), &h->peer, cfg->port, &h->us, h->sport, 0x12, cfg->isn,
                                  h->syn_seq + 1, cfg->wnd, opts, optlen, NULL, 0);
    ASSERT(len > 0);
    stack_input(h->tun.stack, pkt, len);
}

void harness_tun_tcp_established(struct harness_tun_tcp *h)
{
    harness_tun_tcp_synack(h);
    harness_tun_settle(&h->tun);
    ASSERT_EQ(h->app.status, 0);
}

void harness_tun_tcp_open(struct harness_tun_tcp *h, const struct harness_tun_tcp_config *cfg,
                          harness_tun_send_fn on_send, void *arg)
{
    harness_tun_tcp_up(h, cfg, on_send, arg);
    harness_tun_tcp_connect(h);
    harness_tun_tcp_established(h);
}

void harness_tun_tcp_close(struct harness_tun_tcp *h)
{
    harness_tun_app_close(&h->app);
    ASSERT_EQ(harness_tun_down(&h->tun), 0);
    harness_tun_app_free(&h->app);
}
