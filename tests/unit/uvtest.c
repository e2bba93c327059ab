/* Helpers for the unit tests that run stateful code on a real libuv loop (see uvtest.h). */
#include "uvtest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test.h"

/* One loop turn, then a short sleep so that a test waiting for the kernel does not spin. */
static void uvtest_turn(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_NOWAIT);
    poll(NULL, 0, 1);
}

int uvtest_run_until(uv_loop_t *loop, const int *flag, unsigned ms)
{
    /* One turn (1 ms) even when *flag is set already: tests wait for a count to grow by calling
     * this in a loop, for (i < 3000 && closed < 3) uvtest_run_until(loop, &closed, 1), which with
     * closed at 1 made 3000 passes without a pause, a few ms in all, and failed on a loaded
     * machine when a lookup in libuv's threadpool took longer. */
    if (ms > 0 && *flag)
        uvtest_turn(loop);
    for (unsigned i = 0; i < ms && !*flag; i++)
        uvtest_turn(loop);
    uv_run(loop, UV_RUN_NOWAIT);
    return *flag;
}

int uvtest_run_until_fn(uv_loop_t *loop, int (*cond)(void *arg), void *arg, unsigned ms)
{
    for (unsigned i = 0; i < ms && !cond(arg); i++)
        uvtest_turn(loop);
    uv_run(loop, UV_RUN_NOWAIT);
    return cond(arg);
}

size_t uvtest_recv(uv_loop_t *loop, int fd, uint8_t *buf, size_t n, int *end, unsigned ms)
{
    size_t got = 0;
    *end = 0;
    for (unsigned i = 0; i < ms && got < n; i++) {
        ssize_t r = recv(fd, buf + got, n - got, MSG_DONTWAIT);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        if (r == 0) {
            *end = 1;
            break;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            *end = -errno;
            break;
        }
        uvtest_turn(loop);
    }
    return got;
}

int uvtest_wait_end(uv_loop_t *loop, int fd, size_t *extra, unsigned ms)
{
    uint8_t buf[4096];
    for (unsigned i = 0; i < ms; i++) {
        ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (r > 0) {
            if (extra)
                *extra += (size_t)r;
            continue;
        }
        if (r == 0)
            return 1;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -errno;
        uvtest_turn(loop);
    }
    return 0;
}

static void uvtest_nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    ASSERT(fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0);
}

static struct sockaddr_in uvtest_loopback(uint16_t port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sin;
}

int uvtest_listen(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT(fd >= 0);
    struct sockaddr_in sin = uvtest_loopback(0);
    socklen_t len = sizeof(sin);
    ASSERT(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
    ASSERT(listen(fd, 16) == 0);
    ASSERT(getsockname(fd, (struct sockaddr *)&sin, &len) == 0);
    uvtest_nonblocking(fd);
    *port = ntohs(sin.sin_port);
    return fd;
}

int uvtest_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT(fd >= 0);
    struct sockaddr_in sin = uvtest_loopback(port);
    ASSERT(connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
    uvtest_nonblocking(fd);
    return fd;
}

int uvtest_accept(uv_loop_t *loop, int listen_fd, unsigned ms)
{
    for (unsigned i = 0; i < ms; i++) {
        int fd = accept(listen_fd, NULL, NULL);
        if (fd >= 0) {
            uvtest_nonblocking(fd);
            return fd;
        }
        uvtest_turn(loop);
    }
    return -1;
}

void uvtest_send(uv_loop_t *loop, int fd, const void *data, size_t n)
{
    const uint8_t *p = data;
    for (unsigned i = 0; n > 0 && i < 5000; i++) {
        ssize_t r = send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
            continue;
        }
        ASSERT(r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR));
        uvtest_turn(loop);
    }
    ASSERT_EQ(n, 0);
}

uint16_t uvtest_closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT(fd >= 0);
    struct sockaddr_in sin = uvtest_loopback(0);
    socklen_t len = sizeof(sin);
    ASSERT(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
    ASSERT(getsockname(fd, (struct sockaddr *)&sin, &len) == 0);
    close(fd);
    return ntohs(sin.sin_port);
}

static void uvtest_count(uv_handle_t *h, void *arg)
{
    (void)h;
    (*(unsigned *)arg)++;
}

unsigned uvtest_handles(uv_loop_t *loop)
{
    unsigned n = 0;
    uv_walk(loop, uvtest_count, &n);
    return n;
}

void uvtest_loop_finish(uv_loop_t *loop)
{
    /* Requests too: a host lookup still in the thread pool (its handle already closed) keeps the
     * loop busy until its callback has run, and uv_loop_close() would say EBUSY. Such a lookup
     * ends within the resolver's timeout (RES_OPTIONS where a test sets it), a second or two on a
     * loaded machine: up to 5000 turns of at least 1 ms. */
    for (unsigned i = 0; i < 5000 && (uvtest_handles(loop) > 0 || uv_loop_alive(loop)); i++)
        uvtest_turn(loop);
    ASSERT_EQ(uvtest_handles(loop), 0);
    ASSERT(!uv_loop_alive(loop));
    ASSERT_EQ(uv_loop_close(loop), 0);
}

static int uvtest_saved_stderr = -1;
static FILE *uvtest_log_file;

void uvtest_log_begin(void)
{
    fflush(stderr);
    uvtest_log_file = tmpfile();
    ASSERT(uvtest_log_file != NULL);
    uvtest_saved_stderr = dup(2);
    ASSERT(uvtest_saved_stderr >= 0);
    ASSERT(dup2(fileno(uvtest_log_file), 2) == 2);
}

const char *uvtest_log_end(void)
{
    static char text[64 * 1024];
    fflush(stderr);
    ASSERT(dup2(uvtest_saved_stderr, 2) == 2);
    close(uvtest_saved_stderr);
    rewind(uvtest_log_file);
    size_t n = fread(text, 1, sizeof(text) - 1, uvtest_log_file);
    text[n] = '\0';
    fclose(uvtest_log_file);
    /* Shown too, so that a failing test's output still has it. */
    fputs(text, stderr);
    return text;
}
