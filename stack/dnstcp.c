/* DNS over TCP: one connection per question, from a random local port. The answer's two-byte
 * length comes first; only then is a buffer of that size allocated, so an exchange holds what the
 * server announced rather than the 64 KiB a length prefix can announce (each lookup may have two
 * exchanges open, A and AAAA, and every client of the proxy may start lookups). Anything after
 * the answer is ignored. */
#include "stack/dnstcp.h"

#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "lwip/pbuf.h"
#include "lwip/tcp.h"
#include "stack/dnsmsg.h"
#include "stack/internal.h"

enum {
    DNSTCP_PORT = 53,
};

struct dnstcp {
    struct tcp_pcb *pcb;
    uint8_t out[2 + DNSMSG_MAX_UDP];
    size_t out_len;
    uint8_t prefix[2];  /* the answer's length, as it came */
    size_t prefix_len;
    uint8_t *in;        /* the answer, allocated once its length is known */
    size_t in_len;
    size_t in_want;
    dnstcp_cb cb;
    void *arg;
};

/* Unhooks and closes the pcb (resets it when a close cannot be queued). Returns ERR_ABRT when it
 * was reset, which a receive callback must then return. */
static err_t dnstcp_drop_pcb(struct dnstcp *t)
{
    struct tcp_pcb *pcb = t->pcb;
    t->pcb = NULL;
    if (!pcb)
        return ERR_OK;
    tcp_arg(pcb, NULL);
    tcp_recv(pcb, NULL);
    tcp_err(pcb, NULL);
    tcp_sent(pcb, NULL);
    if (tcp_close(pcb) != ERR_OK) {
        tcp_abort(pcb);
        return ERR_ABRT;
    }
    return ERR_OK;
}

static void dnstcp_free(struct dnstcp *t)
{
    free(t->in);
    free(t);
}

/* Ends the exchange: the callback gets status (and the answer when 0), then t is gone. */
static err_t dnstcp_finish(struct dnstcp *t, int status)
{
    err_t e = dnstcp_drop_pcb(t);
    dnstcp_cb cb = t->cb;
    void *arg = t->arg;
    size_t len = status == 0 ? t->in_len : 0;
    uint8_t *in = t->in;
    t->in = NULL;
    dnstcp_free(t);
    cb(arg, status, status == 0 ? in : NULL, len);
    free(in);
    return e;
}

static err_t dnstcp_on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
    struct dnstcp *t = arg;
    (void)err;
    if (!p)
        return dnstcp_finish(t, UV_ECONNRESET); /* closed before a whole answer */
    tcp_recved(pcb, p->tot_len);
    size_t off = 0;
    while (t->prefix_len < 2 && off < p->tot_len)
        t->prefix[t->prefix_len++] = pbuf_get_at(p, (u16_t)off++);
    if (t->prefix_len == 2 && !t->in) {
        t->in_want = (size_t)t->prefix[0] << 8 | t->prefix[1];
        if (!(t->in = malloc(t->in_want ? t->in_want : 1))) {
            pbuf_free(p);
            return dnstcp_finish(t, UV_ENOMEM);
        }
    }
    size_t room = t->in_want - t->in_len;
    size_t take = p->tot_len - off < room ? p->tot_len - off : room;
    if (take > 0)
        pbuf_copy_partial(p, t->in + t->in_len, (u16_t)take, (u16_t)off);
    t->in_len += take;
    pbuf_free(p);
    if (t->in && t->in_len == t->in_want)
        return dnstcp_finish(t, 0);
    return ERR_OK;
}

static void dnstcp_on_err(void *arg, err_t err)
{
    struct dnstcp *t = arg;
    t->pcb = NULL; /* lwIP has freed it */
    dnstcp_finish(t, err == ERR_OK ? UV_ECONNRESET : stack_err_to_uv(err));
}

static err_t dnstcp_on_connected(void *arg, struct tcp_pcb *pcb, err_t err)
{
    struct dnstcp *t = arg;
    if (err != ERR_OK)
        return dnstcp_finish(t, stack_err_to_uv(err));
    err_t e = tcp_write(pcb, t->out, (u16_t)t->out_len, TCP_WRITE_FLAG_COPY);
    if (e == ERR_OK)
        e = stack_tcp_output(pcb);
    if (e != ERR_OK)
        return dnstcp_finish(t, stack_err_to_uv(e));
    return ERR_OK;
}

int dnstcp_ask(struct stack *s, const struct v2s_addr *server, const uint8_t *query, size_t qlen, dnstcp_cb cb,
               void *arg, struct dnstcp **out)
{
    if (qlen > DNSMSG_MAX_UDP)
        return UV_EINVAL;
    if (!s->up || s->closing)
        return UV_ENETDOWN;
    struct dnstcp *t = calloc(1, sizeof(*t));
    if (!t)
        return UV_ENOMEM;
    t->cb = cb;
    t->arg = arg;
    t->out[0] = (uint8_t)(qlen >> 8);
    t->out[1] = (uint8_t)qlen;
    memcpy(t->out + 2, query, qlen);
    t->out_len = 2 + qlen;
    ip_addr_t ip;
    stack_addr_to_lwip(server, &ip);
    t->pcb = tcp_new_ip_type(IP_GET_TYPE(&ip));
    if (!t->pcb) {
        dnstcp_free(t);
        return UV_ENOMEM;
    }
    stack_tcp_bind_port(t->pcb, IP_ANY_TYPE);
    tcp_arg(t->pcb, t);
    tcp_recv(t->pcb, dnstcp_on_recv);
    tcp_err(t->pcb, dnstcp_on_err);
    err_t e = tcp_connect(t->pcb, &ip, DNSTCP_PORT, dnstcp_on_connected);
    if (e != ERR_OK) {
        dnstcp_drop_pcb(t);
        dnstcp_free(t);
        return stack_err_to_uv(e);
    }
    *out = t;
    return 0;
}

void dnstcp_cancel(struct dnstcp *t)
{
    dnstcp_drop_pcb(t);
    dnstcp_free(t);
}
