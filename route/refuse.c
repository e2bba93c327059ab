/* Refusing connections at a listener (see refuse.h). */
#include "route/refuse.h"

#include <stdlib.h>

void refuser_init(struct refuser *r, uv_stream_t *listener, refuse_closed_cb closed, void *arg)
{
    r->listener = listener;
    r->spare_busy = 0;
    r->accept_pending = 0;
    r->closed = closed;
    r->arg = arg;
}

static void refuser_handle_closed(uv_handle_t *h)
{
    struct refuser *r = h->data;
    if (h == (uv_handle_t *)&r->spare)
        r->spare_busy = 0;
    else
        free(h);
    int retry = r->accept_pending;
    r->accept_pending = 0;
    r->closed(r->arg, retry);
}

int refuser_refuse(struct refuser *r)
{
    uv_tcp_t *h = malloc(sizeof(*h));
    if (!h) {
        if (r->spare_busy) {
            /* Not accepted: libuv leaves it in the listener and stops reading the listener until
             * the spare's close callback comes back for it. */
            r->accept_pending = 1;
            return 0;
        }
        h = &r->spare;
        r->spare_busy = 1;
    }
    uv_tcp_init(r->listener->loop, h);
    h->data = r;
    if (uv_accept(r->listener, (uv_stream_t *)h) < 0 || uv_tcp_close_reset(h, refuser_handle_closed) < 0)
        uv_close((uv_handle_t *)h, refuser_handle_closed);
    return 1;
}
