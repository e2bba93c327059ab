/* The stop's last step: leaving the loop once nothing but host name lookups keeps it running.
 *
 * A lookup (uv_getaddrinfo(): a name a SOCKS, HTTP or -L client asked for without the tunnel's
 * DNS, a -R destination, the OpenVPN remote) runs getaddrinfo() in libuv's thread pool, and one
 * that has started cannot be cancelled. With a DNS server that does not answer it lasts the
 * resolver's timeouts (resolv.conf's timeout times attempts, per server: 10 s by default with
 * two attempts). The stop closes every handle at once, yet SIGTERM took 9.6 s to end the process
 * with one such lookup running (measured, a name server that never answers): uv_run() waited
 * for the request, and the exit would too (libuv's destructor joins its threads). */
#ifndef VPN2SOCKS_APP_LOOP_EXIT_H
#define VPN2SOCKS_APP_LOOP_EXIT_H

#include <uv.h>

enum {
    /* How often the stopping loop is looked at: a lookup found alone is left this late at most. */
    LOOP_EXIT_CHECK_MS = 100,
};

struct loop_exit {
    uv_timer_t timer;
    int armed;
    unsigned left; /* requests still running when the loop was left; 0: it ended by itself */
};

/* From the stop, once every handle is being closed: watches the loop without keeping it alive,
 * and stops it (uv_stop()) when no handle is active any more but requests are. Once only. */
void loop_exit_arm(struct loop_exit *e, uv_loop_t *loop);
/* After uv_run() returned: closes the watch (running the loop once more for the close). Returns
 * how many requests were left running: then the loop cannot be closed, and the caller ends the
 * process with _exit() rather than through exit(), whose libuv destructor would wait for them. */
unsigned loop_exit_finish(struct loop_exit *e);
/* The exit status of a stop asked for with code while an earlier one, with pending_code, waits
 * for the loop's next turn (pending != 0): the first reason given wins. A tunnel lost and a
 * SIGTERM read in the same turn (openconnect ending hangs up its script and may be followed by a
 * TERM from a service manager) otherwise exited 0, as if nothing had gone wrong. */
int loop_exit_code(int pending, int pending_code, int code);

#endif
