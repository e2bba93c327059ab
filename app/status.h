/* --status: a small HTTP/1.1 endpoint for health checks and metrics.
 *   GET /healthz  200 "ok" while the loop runs
 *   GET /readyz   200 "ready" while the tunnel is up, else 503 with the reason (connecting,
 *                 reconnecting, authentication failed, ...)
 *   GET /metrics  the Prometheus text (app/metrics.h)
 * HEAD too; any other path is 404, another method 405, a malformed request 400 (read by the
 * HTTP proxy's parser, http/message.h). One request per connection (Connection: close). It is
 * not a listener of the reloadable set (app/listeners.h): it answers for the process, so a
 * reload keeps it as it is, and a changed --status waits for a restart. */
#ifndef VPN2SOCKS_APP_STATUS_H
#define VPN2SOCKS_APP_STATUS_H

#include <stddef.h>

#include "app/metrics.h"

struct sockaddr;
struct status_server;
typedef struct uv_loop_s uv_loop_t;

enum {
    STATUS_MAX_CONNS = 16,          /* past it the oldest one without a whole request is closed */
    STATUS_REQUEST_TIMEOUT_MS = 5000, /* a client that sends no whole head in this time is closed */
};

struct status_config {
    uv_loop_t *loop;
    /* 1 when ready; else 0 with the reason, a short line, in why. */
    int (*ready)(void *arg, char *why, size_t cap);
    /* The figures now, as Prometheus text into t. */
    void (*metrics)(void *arg, struct metrics_text *t);
    void *arg;
};

/* Listens on sa. 0 or a negative uv error. */
int status_server_new(struct status_server **out, const struct status_config *cfg, const struct sockaddr *sa);
/* The port it listens on (tests bind port 0). */
int status_server_port(const struct status_server *s);
/* Closes the listener and every connection; s is freed once the last handle is closed. */
void status_server_close(struct status_server *s);

#endif
