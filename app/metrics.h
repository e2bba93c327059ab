/* The process's figures in one place: every module's counters, read through its getter
 * (tunnel_get_stats, stack_get_stats, the dialers' struct dial_stats) at one moment, then walked
 * sample by sample in one fixed order. The Prometheus text (/metrics, app/status.c) and the
 * SIGUSR1 log lines are both written from that walk, so the two never disagree. Pure: no I/O
 * besides the log lines. */
#ifndef VPN2SOCKS_APP_METRICS_H
#define VPN2SOCKS_APP_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "route/dial.h"
#include "stack/stack.h"
#include "tunnel/tunnel.h"

enum { METRICS_LISTENERS_MAX = 4, METRICS_TEXT_MAX = 16 * 1024 };

/* The connections of one kind of listener (their own routed outbound counts them). */
struct metrics_listener {
    const char *name; /* the listener label: "socks", "http", "forward" */
    struct dial_stats dial;
};

struct metrics {
    int has_tunnel;
    struct tunnel_stats tunnel;
    int has_stack;
    struct stack_stats stack;
    struct metrics_listener listeners[METRICS_LISTENERS_MAX];
    size_t n_listeners;
    /* Every client connection from accept to close, a handshake too, against --max-connections:
     * connections_open counts only those relaying, so idle or slow clients filling the cap went
     * unseen while new ones were refused. */
    int has_clients;
    unsigned clients_open, clients_max; /* clients_max 0: no cap */
    uint64_t clients_refused;
};

struct metric_family {
    const char *name; /* vpn2socks_..., _total for counters, base units (bytes) */
    const char *type; /* "counter" or "gauge" */
    const char *help;
};

struct metric_label {
    const char *name, *value;
};

/* One sample; the samples of a family come one after the other. */
typedef void (*metrics_emit_fn)(void *ctx, const struct metric_family *f, const struct metric_label *labels,
                                size_t n_labels, uint64_t value);
void metrics_walk(const struct metrics *m, metrics_emit_fn emit, void *ctx);

/* A growing text: what does not fit in cap is cut, and overflow says so. */
struct metrics_text {
    char *buf;
    size_t cap, len;
    int overflow;
};

/* The Prometheus text exposition format (version 0.0.4): # HELP and # TYPE before each family,
 * then its samples, label values escaped (\\, \", \n). The emitter metrics_walk() takes. */
void metrics_prometheus_emit(void *ctx, const struct metric_family *f, const struct metric_label *labels,
                             size_t n_labels, uint64_t value);
/* All of m as Prometheus text into t (t->buf of t->cap bytes, NUL-terminated). */
void metrics_prometheus(const struct metrics *m, struct metrics_text *t);
/* Appends value to t escaped as a label value. */
void metrics_label_escape(struct metrics_text *t, const char *value);
/* Logs m (info): one line per family, "metrics: NAME{LABELS} VALUE, ...", the samples as
 * /metrics writes them. */
void metrics_log(const struct metrics *m);

#endif
