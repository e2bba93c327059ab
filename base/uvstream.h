/* Handing a stream that is being read from one reader to the next. */
#ifndef V2S_BASE_UVSTREAM_H
#define V2S_BASE_UVSTREAM_H

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

#endif
