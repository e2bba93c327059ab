/* The listeners a configuration asks for, as specs that can be compared, so that a reload (SIGHUP
 * with --conf) keeps the ones still asked for, closes the others and starts the new ones. Pure:
 * app/serve.c starts and closes the listeners themselves, all kinds in one place. */
#ifndef VPN2SOCKS_APP_LISTENERS_H
#define VPN2SOCKS_APP_LISTENERS_H

#include <stddef.h>
#include <stdint.h>

#include "app/options.h"

enum listener_kind {
    LISTENER_SOCKS,      /* -D */
    LISTENER_LOCAL_TCP,  /* -L */
    LISTENER_LOCAL_UDP,  /* -L .../udp */
    LISTENER_REMOTE_TCP, /* -R */
    LISTENER_REMOTE_UDP, /* -R .../udp */
    LISTENER_HTTP,       /* -H */
};

enum { LISTENERS_MAX = 2 * OPTIONS_MAX_LISTENERS + OPTIONS_MAX_FORWARDS }; /* -D, -H, the forwards */

/* One listener: its kind, where it listens (fwd.listen) and, for a forward, where it forwards to
 * (fwd.host, fwd.port). Two specs are the same listener when all of these are equal. */
struct listener_spec {
    enum listener_kind kind;
    struct options_forward fwd;
};

/* The listeners o asks for, SOCKS first, then HTTP, then the forwards in their order; at most cap. */
size_t listener_specs(const struct options *o, struct listener_spec *out, size_t cap);
int listener_spec_equal(const struct listener_spec *a, const struct listener_spec *b);
/* Whether a and b listen on one port number, whatever their addresses and kinds. A reload starts
 * a new listener that shares its port with one it closes only after the close, as they may clash:
 * one address, or on this host a wildcard address beside another of its family. */
int listener_spec_same_port(const struct listener_spec *a, const struct listener_spec *b);
/* The most descriptors one connection of o's listeners can hold, for fitting the open files limit
 * to --max-connections: a SOCKS UDP association holds its client's, the relay's socket and a
 * direct socket per address family (4); an HTTP request its client's, a socketpair toward the
 * relay and the destination's (4); a SOCKS CONNECT or a forward the client's and a direct
 * destination's (2). */
unsigned listener_fds_per_conn(const struct options *o);
/* The open files that max_conns connections of o's listeners need, plus reserve; the soft limit
 * is raised to that as far as the hard limit allows, never lowered. Returns the soft limit now
 * (UINT64_MAX: unlimited) and the need in *need; 0 when getrlimit fails. Used at start and again
 * at each reload, as a reload can add the first -D or -H to forwards (2 descriptors a connection
 * become 4). */
uint64_t listener_fit_nofile(const struct options *o, unsigned max_conns, unsigned reserve, uint64_t *need);
/* "SOCKS 127.0.0.1:1080", "HTTP 127.0.0.1:8118", "forward 127.0.0.1:5432 -> db.internal:5432", ...
 * for the log. */
const char *listener_spec_name(const struct listener_spec *s, char *buf, size_t cap);
/* From the running listeners (run) to the ones asked for (want): keep[i] is 1 when run[i] is also
 * in want (it keeps running, its connections untouched) and 0 when it is to be closed; from[j] is
 * the index in run of want[j], or -1 when want[j] is to be started. Each running listener stands
 * for at most one wanted one, so a listener asked for twice would be started a second time (and
 * fail to bind); options_check() refuses such a configuration before it gets here. */
void listener_diff(const struct listener_spec *run, size_t n_run, const struct listener_spec *want, size_t n_want,
                   unsigned char *keep, int *from);

#endif
