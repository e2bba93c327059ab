/* Connection caps for the listeners: one per listener and one shared by all of them. A connection
 * holds a slot in both from accept until its last handle is closed. Pure code, no I/O besides the
 * log line; the caller passes the time, so unit tests drive it directly. */
#ifndef VPN2SOCKS_BASE_CONN_LIMIT_H
#define VPN2SOCKS_BASE_CONN_LIMIT_H

#include <stdint.h>

enum {
    /* A refusal logs at most one line per limit in this many milliseconds. */
    CONN_LIMIT_LOG_INTERVAL_MS = 60 * 1000,
};

struct conn_limit {
    unsigned max;         /* 0: no cap */
    unsigned count;       /* slots held */
    char what[96];        /* names the cap in the log: "SOCKS listener 127.0.0.1:1080" */
    const char *option;   /* the option that sets it, for the log */
    /* Refusals since the last log line, and when that line was written. */
    uint64_t refused;
    uint64_t refused_total;
    uint64_t last_log_ms;
    unsigned lines;       /* log lines written so far (tests count them) */
};

void conn_limit_init(struct conn_limit *l, unsigned max, const char *what, const char *option);
/* Takes a slot in l and, when given, in shared. 0; or -EBUSY when either is full: then nothing is
 * taken, and the full one counts the refusal and writes its log line if one is due (the first
 * refusal, then at most one line per CONN_LIMIT_LOG_INTERVAL_MS, saying how many were refused). */
int conn_limit_take(struct conn_limit *l, struct conn_limit *shared, uint64_t now_ms);
/* Gives back what conn_limit_take() took. */
void conn_limit_give(struct conn_limit *l, struct conn_limit *shared);

#endif
