/* A bounded send on a host UDP socket (route/dgram.h). */
#include "route/dgram.h"

#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "base/log.h"

static void dgram_sent(uv_udp_send_t *req, int status)
{
    if (status < 0 && status != UV_ECANCELED)
        v2s_debug("udp: a queued datagram was not sent: %s", uv_strerror(status));
    free(req);
}

int dgram_send(uv_udp_t *h, const struct sockaddr *to, const uint8_t *head, size_t head_len, const uint8_t *data,
               size_t len, size_t queue_max)
{
    uv_buf_t b[2];
    unsigned n = 0;
    if (head_len > 0)
        b[n++] = uv_buf_init((char *)head, (unsigned)head_len);
    b[n++] = uv_buf_init((char *)data, (unsigned)len);
    int rc = uv_udp_try_send(h, b, n, to);
    if (rc >= 0)
        return 0;
    if (rc != UV_EAGAIN)
        return rc;
    /* What waits is counted as what it holds: its bytes and its request (320 bytes with libuv
     * 1.44). libuv's queue size counts the bytes only, so empty datagrams (a SOCKS header alone,
     * an empty -L datagram) never met the bound and queued without end, 320 bytes and more of
     * memory each (dgram_queue_bounded). 256 KiB now holds 144 datagrams of 1500 bytes, not 174. */
    size_t total = head_len + len;
    size_t held = uv_udp_get_send_queue_size(h) + uv_udp_get_send_queue_count(h) * sizeof(uv_udp_send_t);
    if (held + sizeof(uv_udp_send_t) + total > queue_max)
        return UV_ENOBUFS;
    uv_udp_send_t *req = malloc(sizeof(*req) + total);
    if (!req)
        return UV_ENOMEM;
    uint8_t *copy = (uint8_t *)(req + 1);
    if (head_len > 0)
        memcpy(copy, head, head_len);
    memcpy(copy + head_len, data, len);
    b[0] = uv_buf_init((char *)copy, (unsigned)total);
    rc = uv_udp_send(req, h, b, 1, to, dgram_sent);
    if (rc < 0)
        free(req);
    return rc;
}
