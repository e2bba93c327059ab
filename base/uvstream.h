/* Handing a stream that is being read from one reader to the next, and telling its end from a
 * reset. */
#ifndef V2S_BASE_UVSTREAM_H
#define V2S_BASE_UVSTREAM_H

#include <errno.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <uv.h>

/* Starts reading s with these callbacks, or, when s is already being read (the SOCKS listener hands
 * a client over while still reading it: socks/server.c), makes them its callbacks from the next
 * read on. libuv has no call for the second, and uv_read_stop() then uv_read_start() drops the
 * descriptor's epoll interest and makes it again at the next poll: two epoll_ctl() calls (ADD,
 * refused with EEXIST, then MOD) per connection. alloc_cb and read_cb are public fields of
 * uv_stream_t, which libuv reads at each read. 0, or a negative uv error. */
static inline int v2s_read_take(uv_stream_t *s, uv_alloc_cb alloc_cb, uv_read_cb read_cb)
{
    int rc = uv_read_start(s, alloc_cb, read_cb);
    if (rc == UV_EALREADY) {
        s->alloc_cb = alloc_cb;
        s->read_cb = read_cb;
        rc = 0;
    }
    return rc;
}

/* What a read callback's UV_EOF on s really was: UV_EOF, or the error one more read would give.
 * libuv ends a stream with UV_EOF, without reading again, once a read came back short and the
 * poll said POLLHUP (uv__stream_io()); a peer that sends and then resets (an aborted upload, a
 * crashed service) gives exactly that, so its ECONNRESET was never read and the other side got a
 * FIN saying all was sent. One peek reads what the kernel would: a reset before any FIN as the
 * error, a FIN before a reset (a peer that closed with our bytes unread) as the end, as read()
 * has it; the socket's SO_ERROR cannot tell those two apart. Once per connection's end. */
static inline ssize_t v2s_eof_or_error(uv_stream_t *s)
{
    uv_os_fd_t fd;
    char c;
    ssize_t n;
    if (uv_fileno((uv_handle_t *)s, &fd) < 0)
        return UV_EOF;
    do
        n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
        return uv_translate_sys_error(errno);
    return UV_EOF;
}

/* How many bytes written to the TCP stream s its peer has not taken yet: those libuv still queues
 * and those in the kernel's send queue that the peer has not acknowledged (SIOCOUTQ). A peer
 * that reads nothing keeps its window shut, so the number stops going down. It goes down in
 * steps for a slow reader (a Linux receiver with a full buffer opens its window again once a
 * sixteenth of the buffer's largest size is free, up to 1 MB), and sooner than the socket polls
 * writable, which waits for a third of the send buffer. */
static inline size_t v2s_stream_untaken(const uv_tcp_t *s)
{
    size_t n = uv_stream_get_write_queue_size((const uv_stream_t *)s);
    uv_os_fd_t fd;
    int q = 0;
    if (uv_fileno((const uv_handle_t *)s, &fd) == 0 && ioctl(fd, SIOCOUTQ, &q) == 0 && q > 0)
        n += (size_t)q;
    return n;
}

#endif
