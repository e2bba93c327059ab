/* metrics: the figures walked once, written as Prometheus text or as log lines. */
#include "app/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"

static const struct metric_family
    fam_up = {"vpn2socks_tunnel_up", "gauge", "Whether the tunnel is up (1) or not (0)."},
    fam_state = {"vpn2socks_tunnel_state", "gauge", "The tunnel's state: 1 for the current one."},
    fam_packets = {"vpn2socks_tunnel_packets_total", "counter", "IP packets through the tunnel, by direction."},
    fam_bytes = {"vpn2socks_tunnel_bytes_total", "counter",
                 "Bytes of the IP packets through the tunnel, by direction."},
    fam_refused = {"vpn2socks_tunnel_packets_refused_total", "counter",
                   "IP packets the tunnel could not take: down, or the VPN client not reading."},
    fam_reconnects = {"vpn2socks_tunnel_reconnects_total", "counter",
                      "Reconnects of the tunnel, by the phase that failed."},
    fam_reneg = {"vpn2socks_tunnel_renegotiations_total", "counter", "Data channel keys renewed while up."},
    fam_open = {"vpn2socks_connections_open", "gauge", "Connections relaying now, by listener."},
    fam_conns = {"vpn2socks_connections_total", "counter",
                 "Connections asked for, by listener and route verdict."},
    fam_clients = {"vpn2socks_clients_open", "gauge",
                   "Client connections held now, every listener together, handshakes too (what "
                   "--max-connections caps)."},
    fam_clients_max = {"vpn2socks_clients_max", "gauge", "The cap on vpn2socks_clients_open (--max-connections)."},
    fam_clients_refused = {"vpn2socks_clients_refused_total", "counter",
                           "Client connections refused at --max-connections."},
    fam_dns = {"vpn2socks_dns_queries_total", "counter", "Name lookups through the tunnel's DNS servers."},
    fam_dns_hits = {"vpn2socks_dns_cache_hits_total", "counter", "Lookups answered from the cache."},
    fam_dns_fail = {"vpn2socks_dns_failures_total", "counter", "Lookups that ended without an address."},
    fam_drops = {"vpn2socks_stack_packets_dropped_total", "counter", "Packets the stack dropped, by reason."},
    fam_mem = {"vpn2socks_stack_memory_bytes", "gauge", "Bytes of the TCP/IP stack's heap in use."},
    fam_held = {"vpn2socks_stack_held_bytes", "gauge", "Bytes received and held for applications."};

static void emit0(metrics_emit_fn emit, void *ctx, const struct metric_family *f, uint64_t v)
{
    emit(ctx, f, NULL, 0, v);
}

static void emit1(metrics_emit_fn emit, void *ctx, const struct metric_family *f, const char *k, const char *lv,
                  uint64_t v)
{
    struct metric_label l = {k, lv};
    emit(ctx, f, &l, 1, v);
}

void metrics_walk(const struct metrics *m, metrics_emit_fn emit, void *ctx)
{
    static const char *const verdicts[ROUTER_REJECT + 1] = {"tunnel", "direct", "rejected"};
    if (m->has_tunnel) {
        const struct tunnel_stats *t = &m->tunnel;
        emit0(emit, ctx, &fam_up, t->state == TUNNEL_STATE_UP);
        for (int s = TUNNEL_STATE_CONNECTING; s <= TUNNEL_STATE_DOWN; s++)
            emit1(emit, ctx, &fam_state, "state", tunnel_state_name(s), t->state == (enum tunnel_state)s);
        emit1(emit, ctx, &fam_packets, "direction", "in", t->packets_in);
        emit1(emit, ctx, &fam_packets, "direction", "out", t->packets_out);
        emit1(emit, ctx, &fam_bytes, "direction", "in", t->bytes_in);
        emit1(emit, ctx, &fam_bytes, "direction", "out", t->bytes_out);
        emit0(emit, ctx, &fam_refused, t->packets_refused);
        for (int r = 0; r < TUNNEL_RECONNECT_REASONS; r++)
            emit1(emit, ctx, &fam_reconnects, "reason", tunnel_reconnect_reason_name(r), t->reconnects[r]);
        emit0(emit, ctx, &fam_reneg, t->renegotiations);
    }
    for (size_t i = 0; i < m->n_listeners; i++)
        emit1(emit, ctx, &fam_open, "listener", m->listeners[i].name, m->listeners[i].dial.open);
    for (size_t i = 0; i < m->n_listeners; i++) {
        for (int v = 0; v <= ROUTER_REJECT; v++) {
            struct metric_label l[2] = {{"listener", m->listeners[i].name}, {"verdict", verdicts[v]}};
            emit(ctx, &fam_conns, l, 2, m->listeners[i].dial.total[v]);
        }
    }
    if (m->has_clients) {
        emit0(emit, ctx, &fam_clients, m->clients_open);
        emit0(emit, ctx, &fam_clients_max, m->clients_max);
        emit0(emit, ctx, &fam_clients_refused, m->clients_refused);
    }
    if (m->has_stack) {
        const struct stack_stats *s = &m->stack;
        emit0(emit, ctx, &fam_dns, s->dns_queries);
        emit0(emit, ctx, &fam_dns_hits, s->dns_cache_hits);
        emit0(emit, ctx, &fam_dns_fail, s->dns_failures);
        for (int r = 0; r < STACK_DROP_REASONS; r++)
            emit1(emit, ctx, &fam_drops, "reason", stack_drop_reason_name(r), s->dropped[r]);
        emit0(emit, ctx, &fam_mem, s->heap_bytes);
        emit0(emit, ctx, &fam_held, s->held_bytes);
    }
}

static void text_put(struct metrics_text *t, const char *s, size_t n)
{
    if (t->cap == 0)
        return;
    size_t room = t->cap - 1 - t->len;
    if (n > room) {
        n = room;
        t->overflow = 1;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

static void text_puts(struct metrics_text *t, const char *s)
{
    text_put(t, s, strlen(s));
}

static void text_printf(struct metrics_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_printf(struct metrics_text *t, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(line))
        t->overflow = 1;
    text_put(t, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

void metrics_label_escape(struct metrics_text *t, const char *value)
{
    for (const char *p = value; *p; p++) {
        if (*p == '\\')
            text_puts(t, "\\\\");
        else if (*p == '"')
            text_puts(t, "\\\"");
        else if (*p == '\n')
            text_puts(t, "\\n");
        else
            text_put(t, p, 1);
    }
}

/* NAME{a="x",b="y"} VALUE, without the newline. */
static void metrics_sample(struct metrics_text *t, const struct metric_family *f, const struct metric_label *labels,
                           size_t n_labels, uint64_t value)
{
    text_puts(t, f->name);
    for (size_t i = 0; i < n_labels; i++) {
        text_puts(t, i ? "," : "{");
        text_puts(t, labels[i].name);
        text_puts(t, "=\"");
        metrics_label_escape(t, labels[i].value);
        text_puts(t, "\"");
    }
    if (n_labels)
        text_puts(t, "}");
    text_printf(t, " %llu", (unsigned long long)value);
}

/* The family last written, for the next sample to know whether its head is due. */
struct prom_ctx {
    struct metrics_text *t;
    const struct metric_family *last;
};

void metrics_prometheus_emit(void *ctx, const struct metric_family *f, const struct metric_label *labels,
                             size_t n_labels, uint64_t value)
{
    struct prom_ctx *c = ctx;
    if (c->last != f) {
        /* HELP text escapes \ and newline; ours has neither, but the writer does not assume it. */
        text_printf(c->t, "# HELP %s ", f->name);
        for (const char *p = f->help; *p; p++) {
            if (*p == '\\')
                text_puts(c->t, "\\\\");
            else if (*p == '\n')
                text_puts(c->t, "\\n");
            else
                text_put(c->t, p, 1);
        }
        text_printf(c->t, "\n# TYPE %s %s\n", f->name, f->type);
        c->last = f;
    }
    metrics_sample(c->t, f, labels, n_labels, value);
    text_puts(c->t, "\n");
}

void metrics_prometheus(const struct metrics *m, struct metrics_text *t)
{
    struct prom_ctx c = {.t = t};
    t->len = 0;
    t->overflow = 0;
    if (t->cap)
        t->buf[0] = '\0';
    metrics_walk(m, metrics_prometheus_emit, &c);
}

struct log_ctx {
    struct metrics_text t;
    char buf[2048];
    const struct metric_family *last;
};

static void log_flush(struct log_ctx *c)
{
    if (c->last && c->t.len)
        v2s_info("metrics: %s", c->t.buf);
    c->t.len = 0;
    c->t.buf[0] = '\0';
}

static void log_emit(void *ctx, const struct metric_family *f, const struct metric_label *labels, size_t n_labels,
                     uint64_t value)
{
    struct log_ctx *c = ctx;
    if (c->last != f) {
        log_flush(c);
        c->last = f;
    } else {
        text_puts(&c->t, ", ");
    }
    metrics_sample(&c->t, f, labels, n_labels, value);
}

void metrics_log(const struct metrics *m)
{
    struct log_ctx c = {.t = {.cap = sizeof(c.buf)}};
    c.t.buf = c.buf;
    c.buf[0] = '\0';
    metrics_walk(m, log_emit, &c);
    log_flush(&c);
}
