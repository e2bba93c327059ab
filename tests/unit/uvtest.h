/* Helpers for unit tests of stateful code on a real libuv loop, with plain loopback sockets on the
 * test's side: run the loop until something happened, read what a socket got, count handles. */
#ifndef VPN2SOCKS_TESTS_UNIT_UVTEST_H
#define VPN2SOCKS_TESTS_UNIT_UVTEST_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/* Runs loop (without blocking for long) until *flag is nonzero or ms have passed, at least one turn
 * of 1 ms when ms > 0; returns *flag. */
int uvtest_run_until(uv_loop_t *loop, const int *flag, unsigned ms);
/* Runs loop until cond(arg) is nonzero or ms have passed; returns cond(arg). */
int uvtest_run_until_fn(uv_loop_t *loop, int (*cond)(void *arg), void *arg, unsigned ms);
/* Reads from fd (non-blocking) while running loop until n bytes came, the peer closed or reset,
 * or ms passed. Returns the bytes read (>= 0) and sets *end to 0 (still open), 1 (EOF) or a
 * negative errno (ECONNRESET...). */
size_t uvtest_recv(uv_loop_t *loop, int fd, uint8_t *buf, size_t n, int *end, unsigned ms);
/* Waits for the end of fd's input: 1 for EOF, a negative errno for a reset, 0 if data or nothing
 * came within ms (the data is discarded and counted in *extra when extra is not NULL). */
int uvtest_wait_end(uv_loop_t *loop, int fd, size_t *extra, unsigned ms);

/* A plain TCP listener on 127.0.0.1 with a port the kernel picks. Returns the fd; *port is set. */
int uvtest_listen(uint16_t *port);
/* A blocking connect to 127.0.0.1:port (the kernel completes it from the listen queue); the fd
 * is then made non-blocking. Returns the fd. */
int uvtest_connect(uint16_t port);
/* accept() on a non-blocking listener while running loop; -1 after ms. */
int uvtest_accept(uv_loop_t *loop, int listen_fd, unsigned ms);
/* Writes all of data to a (non-blocking) fd, running loop while it is full. */
void uvtest_send(uv_loop_t *loop, int fd, const void *data, size_t n);
/* A port on 127.0.0.1 where nothing listens (bound, then closed). */
uint16_t uvtest_closed_port(void);

/* How many handles loop still has (uv_walk), closing ones included. */
unsigned uvtest_handles(uv_loop_t *loop);
/* Runs loop until it has no handles (close callbacks run) and no requests (a host lookup's
 * callback run), then closes it: asserts each. */
void uvtest_loop_finish(uv_loop_t *loop);

/* Captures what the process logs (stderr) from now to uvtest_log_end(), which returns it
 * (static buffer, NUL-terminated) and restores stderr. */
void uvtest_log_begin(void);
const char *uvtest_log_end(void);

#endif
