/* UDP port forwards (-L …/udp, -R …/udp): a flow per client, one idle timer, a cap on flows.
 *
 * What this file guarantees, and why:
 *   - One flow per client address and port, each with its own path to the destination (-L: an
 *     association of the outbound; -R: a host socket connected to the destination), so an answer
 *     reaches only the client whose flow it came back on. Only answers from the forwarded
 *     destination are passed back, so a flow is no open relay for other hosts' packets: -R's
 *     socket is connected (the kernel filters); -L checks the source of each answer, its address
 *     and port for a destination given as an address, its port for a name (whose addresses only
 *     the outbound learns).
 *   - Datagrams are never cut: one 64 KiB receive buffer per forward holds the largest one (each
 *     datagram is handed on before the next read, so one buffer serves every socket of the
 *     forward). What the path cannot carry fails with EMSGSIZE and is dropped with a debug line.
 *   - Nothing is buffered without bound: a datagram waits in libuv's send queue only while that
 *     queue holds less than UFWD_QUEUE_MAX bytes, and -R's datagrams waiting for a name to
 *     resolve are bounded the same way; past that they are dropped, as IP drops them.
 *   - The one timer of a forward: its flows sit on a list in the order of their last datagram,
 *     either way; the timer fires when the oldest has been idle for idle_timeout_ms, ends every
 *     flow that has, and is set again for the next. A datagram only moves its flow to the end.
 *     A flow that failed (-R: the name did not resolve, the socket could not connect) is not
 *     moved by the datagrams it drops, so it ends one idle timeout after its last good one and
 *     the next datagram tries again.
 *   - The cap: at max_flows a datagram from a new client is dropped; one line says so when the
 *     cap is met, and one more how many were dropped once a flow ends and frees a place.
 *   - Each flow is logged when it opens and when it closes, with the datagrams each way, as the
 *     TCP relays are (route/outbound.c).
 *   - -R: a destination that refuses a datagram (its host socket reports ECONNREFUSED, the
 *     ICMP port unreachable the host got) is answered into the tunnel with ICMP port
 *     unreachable, as a host or a NAT would, so the remote client learns it at once rather than
 *     at its timeout. The quote is rebuilt from the flow's last datagram, of which the first
 *     UFWD_QUOTE_MAX bytes are kept: the error comes after the send, the datagram is gone. */
#include "port/udp_forward.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <uv.h>

#include "base/addr.h"
#include "base/list.h"
#include "base/log.h"
#include "port/target.h"
#include "route/dgram.h"
#include "route/listener.h"
#include "route/outbound.h"
#include "stack/udp.h"
#include "tunnel/settings.h"

enum {
    UFWD_BUF_SIZE = 0x10000,         /* the largest UDP payload (65507 over IPv4) and more */
    UFWD_QUEUE_MAX = 256 * 1024,     /* bytes waiting in one socket's send queue */
    UFWD_PENDING_MAX = 128 * 1024,   /* -R: memory held by datagrams waiting for a name, per flow */
    UFWD_TABLE_MAX = 1 << 14,        /* buckets of the flow table */
    UFWD_LABEL_MAX = 512,
    UFWD_QUOTE_MAX = 128,            /* -R: bytes of the last datagram kept for an ICMP quote */
};

enum ufwd_kind {
    UFWD_LOCAL,  /* -L: host socket -> outbound */
    UFWD_REMOTE, /* -R: tunnel socket -> host socket */
};

enum ufwd_flow_state {
    UFWD_FLOW_RESOLVING, /* -R: waiting for the destination's address */
    UFWD_FLOW_OPEN,
    UFWD_FLOW_FAILED,    /* -R: the destination could not be had; datagrams dropped until idle */
    UFWD_FLOW_CLOSING,   /* -R: off the table, its socket closing */
};

/* -R: a datagram that came while the destination's name was being resolved. */
struct ufwd_pending {
    struct v2s_list node;
    size_t len;
    uint8_t data[];
};

struct ufwd_flow {
    struct port_udp *pu;
    struct v2s_list by_key; /* on its bucket of pu->table */
    struct v2s_list by_age; /* on pu->flows, the least recently active first */
    struct v2s_addr peer;   /* the client */
    uint16_t peer_port;
    enum ufwd_flow_state state;
    uint64_t last_ms;       /* uv_now() of the last datagram either way */
    uint64_t up, down;      /* datagrams sent on from the client, and to it */
    int warned;             /* a failed send was logged: once per flow */
    int foreign_logged;     /* -L: an answer from another source was logged */
    struct outbound_udp *assoc; /* -L */
    uv_udp_t sock;          /* -R: connected to the destination */
    uv_getaddrinfo_t gai;   /* -R: while resolving */
    int handles_open;       /* -R: sock, and gai while it runs */
    struct v2s_list pending;
    size_t pending_bytes;   /* what pending holds, the records' own size included */
    /* -R: the client's last datagram, for the ICMP port unreachable that answers a refusal. */
    struct v2s_addr last_dst; /* the tunnel address it was sent to; family 0: none yet */
    size_t last_len;
    size_t last_head_len;     /* how much of it last_head holds */
    uint8_t last_head[UFWD_QUOTE_MAX];
    char label[UFWD_LABEL_MAX]; /* "udp CLIENT -> DEST (forward WHERE)" */
};

struct port_udp {
    enum ufwd_kind kind;
    uv_loop_t *loop;
    struct outbound *out;   /* -L */
    uv_udp_t sock;          /* -L: the listening socket */
    struct listener_own own; /* -L: sock, which no flow may send to (listener_is_own()) */
    struct stack_udp *su;   /* -R: the listening socket in the tunnel */
    uv_timer_t timer;       /* the idle timeout of the oldest flow */
    struct port_target dst;
    char port_text[8];      /* for getaddrinfo */
    unsigned idle_ms;
    unsigned max_flows;
    struct v2s_list flows;  /* every open flow, by age */
    unsigned n_flows;
    struct v2s_list *table;
    unsigned table_mask;
    uint8_t *buf;           /* UFWD_BUF_SIZE: every socket's receive buffer */
    int cap_logged;         /* the cap was met and said so */
    unsigned long cap_dropped;
    int open_failed_logged; /* -L: outbound_udp_open() failed and said so */
    char where[V2S_ADDR_STRLEN + 16]; /* the listening address, for the log */
    struct v2s_addr local;  /* -R: the one tunnel address it listens on; family 0: every one */
    int closing;
    int handles_open;       /* the socket (-L), the timer, each -R flow still closing */
    void (*close_cb)(void *arg);
    void *close_arg;
};

static void ufwd_maybe_free(struct port_udp *pu)
{
    if (!pu->closing || pu->handles_open > 0)
        return;
    void (*cb)(void *) = pu->close_cb;
    void *arg = pu->close_arg;
    free(pu->table);
    free(pu->buf);
    port_target_free(&pu->dst);
    free(pu);
    if (cb)
        cb(arg);
}

static void ufwd_handle_closed(uv_handle_t *h)
{
    struct port_udp *pu = h->data;
    pu->handles_open--;
    ufwd_maybe_free(pu);
}

static unsigned ufwd_hash(const struct port_udp *pu, const struct v2s_addr *a, uint16_t port)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < v2s_addr_len(a); i++)
        h = (h ^ a->bytes[i]) * 16777619u;
    h = (h ^ (port & 0xFF)) * 16777619u;
    h = (h ^ (port >> 8)) * 16777619u;
    return (h ^ (h >> 16)) & pu->table_mask;
}

static struct ufwd_flow *ufwd_find(struct port_udp *pu, const struct v2s_addr *peer, uint16_t port)
{
    struct v2s_list *head = &pu->table[ufwd_hash(pu, peer, port)], *n;
    V2S_LIST_FOREACH(n, head) {
        struct ufwd_flow *fl = V2S_LIST_ENTRY(n, struct ufwd_flow, by_key);
        if (fl->peer_port == port && v2s_addr_equal(&fl->peer, peer))
            return fl;
    }
    return NULL;
}

/* --- the idle timer --- */

static void ufwd_flow_close(struct ufwd_flow *fl, int idle);

static void ufwd_on_timer(uv_timer_t *t);

/* Sets the timer for the oldest flow, or stops it when there is none. */
static void ufwd_arm(struct port_udp *pu)
{
    struct v2s_list *n = v2s_list_first(&pu->flows);
    if (!n || pu->closing) {
        uv_timer_stop(&pu->timer);
        return;
    }
    struct ufwd_flow *fl = V2S_LIST_ENTRY(n, struct ufwd_flow, by_age);
    uint64_t due = fl->last_ms + pu->idle_ms, now = uv_now(pu->loop);
    uv_timer_start(&pu->timer, ufwd_on_timer, due > now ? due - now : 0, 0);
}

static void ufwd_on_timer(uv_timer_t *t)
{
    struct port_udp *pu = t->data;
    uint64_t now = uv_now(pu->loop);
    struct v2s_list *n;
    while ((n = v2s_list_first(&pu->flows)) != NULL) {
        struct ufwd_flow *fl = V2S_LIST_ENTRY(n, struct ufwd_flow, by_age);
        if (fl->last_ms + pu->idle_ms > now)
            break;
        ufwd_flow_close(fl, 1);
    }
    ufwd_arm(pu);
}

/* A datagram went through fl, one way or the other. */
static void ufwd_touch(struct ufwd_flow *fl)
{
    fl->last_ms = uv_now(fl->pu->loop);
    v2s_list_remove(&fl->by_age);
    v2s_list_push_back(&fl->pu->flows, &fl->by_age);
}

/* --- sending on a host socket, with a bounded queue --- */

/* Sends one datagram on h (to: NULL when h is connected) through the bounded queue of
 * route/dgram.h. 0 or a negative uv error (UV_ENOBUFS: dropped, the queue is full). */
static int ufwd_send(uv_udp_t *h, const struct sockaddr *to, const uint8_t *data, size_t len)
{
    return dgram_send(h, to, NULL, 0, data, len, UFWD_QUEUE_MAX);
}

/* A datagram toward the destination (up) or the client (down) could not go: dropped, with a
 * line once per flow; a debug line for sizes, which are the sender's choice, for a full queue,
 * and for -L's rejections, which the routed outbound logs itself (route/outbound.h). */
static void ufwd_send_failed(struct ufwd_flow *fl, int rc, int up, size_t len)
{
    /* -L: the routed outbound logged its refusals (UV_EACCES, UV_ELOOP) once for the flow. */
    if (rc == UV_EMSGSIZE || rc == UV_ENOBUFS ||
        ((rc == UV_EACCES || rc == UV_ELOOP) && up && fl->pu->kind == UFWD_LOCAL)) {
        v2s_debug("%s: a datagram of %zu bytes %s dropped: %s", fl->label, len, up ? "up" : "down",
                  outbound_strerror(rc));
        return;
    }
    if (fl->warned)
        return;
    fl->warned = 1;
    v2s_info("%s: %s (datagrams to the %s dropped)", fl->label, outbound_strerror(rc),
             up ? "destination" : "client");
}

/* Every socket of a forward reads into its one buffer: the listening socket's data is the
 * forward, a flow socket's the flow. */
static void ufwd_alloc_listen(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct port_udp *pu = h->data;
    (void)suggested;
    buf->base = (char *)pu->buf;
    buf->len = UFWD_BUF_SIZE;
}

static void ufwd_alloc_flow(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct ufwd_flow *fl = h->data;
    (void)suggested;
    buf->base = (char *)fl->pu->buf;
    buf->len = UFWD_BUF_SIZE;
}

/* --- flows --- */

static void ufwd_flow_free_pending(struct ufwd_flow *fl)
{
    struct v2s_list *n;
    while ((n = v2s_list_first(&fl->pending)) != NULL) {
        v2s_list_remove(n);
        free(V2S_LIST_ENTRY(n, struct ufwd_pending, node));
    }
    fl->pending_bytes = 0;
}

static void ufwd_flow_maybe_free(struct ufwd_flow *fl)
{
    if (fl->handles_open > 0)
        return;
    struct port_udp *pu = fl->pu;
    free(fl);
    pu->handles_open--;
    ufwd_maybe_free(pu);
}

static void ufwd_flow_sock_closed(uv_handle_t *h)
{
    struct ufwd_flow *fl = h->data;
    fl->handles_open--;
    ufwd_flow_maybe_free(fl);
}

/* The fields of a flow's open and closed lines (JSON logs): its label is "udp " and a relay's. */
static size_t ufwd_label_fields(const struct ufwd_flow *fl, struct outbound_label_parts *parts,
                                struct v2s_log_field *f)
{
    if (v2s_log_format != V2S_LOG_JSON)
        return 0; /* a plain line is the label itself */
    size_t n = outbound_label_fields(fl->label + 4, parts, f);
    f[n++] = V2S_LOG_TEXT("protocol", "udp");
    return n;
}

/* Ends fl: off the table at once, its line logged; -L frees it now, -R once its handles closed. */
static void ufwd_flow_close(struct ufwd_flow *fl, int idle)
{
    struct port_udp *pu = fl->pu;
    v2s_list_remove(&fl->by_key);
    v2s_list_remove(&fl->by_age);
    pu->n_flows--;
    if (V2S_LOG_ENABLED(V2S_LOG_INFO)) {
        struct outbound_label_parts parts;
        struct v2s_log_field f[8];
        size_t n = ufwd_label_fields(fl, &parts, f);
        f[n++] = V2S_LOG_NUM("datagrams_up", fl->up);
        f[n++] = V2S_LOG_NUM("datagrams_down", fl->down);
        f[n++] = V2S_LOG_TEXT("end", idle ? "idle" : "close");
        if (idle)
            v2s_log_event(V2S_LOG_INFO, "relay_closed", f, n,
                          "%s closed after %u %s idle (%llu datagrams up, %llu down)", fl->label,
                          pu->idle_ms % 1000 ? pu->idle_ms : pu->idle_ms / 1000,
                          pu->idle_ms % 1000 ? "ms" : "s", (unsigned long long)fl->up, (unsigned long long)fl->down);
        else
            v2s_log_event(V2S_LOG_INFO, "relay_closed", f, n, "%s closed (%llu datagrams up, %llu down)", fl->label,
                          (unsigned long long)fl->up, (unsigned long long)fl->down);
    }
    if (pu->cap_logged) {
        if (pu->cap_dropped)
            v2s_info("udp forward %s: %lu datagrams from new clients dropped at the cap of %u flows", pu->where,
                     pu->cap_dropped, pu->max_flows);
        pu->cap_logged = 0;
        pu->cap_dropped = 0;
    }
    ufwd_flow_free_pending(fl);
    if (pu->kind == UFWD_LOCAL) {
        if (fl->assoc)
            outbound_udp_close(fl->assoc);
        free(fl);
        return;
    }
    fl->state = UFWD_FLOW_CLOSING;
    pu->handles_open++; /* until fl is freed */
    if (fl->handles_open > 1)
        uv_cancel((uv_req_t *)&fl->gai);
    uv_close((uv_handle_t *)&fl->sock, ufwd_flow_sock_closed);
}

/* At the cap, or out of memory: the datagram is dropped, with a line once per burst. */
static struct ufwd_flow *ufwd_flow_alloc(struct port_udp *pu, const struct v2s_addr *peer, uint16_t port)
{
    if (pu->n_flows >= pu->max_flows) {
        if (!pu->cap_logged)
            v2s_warn("udp forward %s: %u flows, the most it keeps (--udp-max-flows): datagrams from new "
                     "clients are dropped until one ends",
                     pu->where, pu->max_flows);
        pu->cap_logged = 1;
        pu->cap_dropped++;
        return NULL;
    }
    struct ufwd_flow *fl = calloc(1, sizeof(*fl));
    if (!fl)
        return NULL;
    fl->pu = pu;
    fl->peer = *peer;
    fl->peer_port = port;
    fl->state = UFWD_FLOW_OPEN;
    v2s_list_init(&fl->by_key);
    v2s_list_init(&fl->by_age);
    v2s_list_init(&fl->pending);
    char client[V2S_ADDR_STRLEN];
    v2s_addr_format_port(peer, port, client, sizeof(client));
    snprintf(fl->label, sizeof(fl->label), "udp %s -> %s (forward %s)", client, pu->dst.text, pu->where);
    return fl;
}

/* Puts a new flow on the table and the age list, and logs it. */
static void ufwd_flow_insert(struct ufwd_flow *fl)
{
    struct port_udp *pu = fl->pu;
    v2s_list_push_front(&pu->table[ufwd_hash(pu, &fl->peer, fl->peer_port)], &fl->by_key);
    fl->last_ms = uv_now(pu->loop);
    v2s_list_push_back(&pu->flows, &fl->by_age);
    pu->n_flows++;
    if (!uv_is_active((uv_handle_t *)&pu->timer))
        ufwd_arm(pu);
    if (V2S_LOG_ENABLED(V2S_LOG_INFO)) {
        struct outbound_label_parts parts;
        struct v2s_log_field f[5];
        size_t n = ufwd_label_fields(fl, &parts, f);
        v2s_log_event(V2S_LOG_INFO, "relay_open", f, n, "%s open", fl->label);
    }
}

/* --- -L: a host socket into an outbound --- */

/* An answer on fl's association: passed to the client when it comes from the destination. */
static void ufwd_local_answer(void *arg, const struct v2s_addr *from, uint16_t port, const uint8_t *data,
                              size_t len)
{
    struct ufwd_flow *fl = arg;
    struct port_udp *pu = fl->pu;
    if (port != pu->dst.port || (!pu->dst.name && !v2s_addr_equal(from, &pu->dst.addr))) {
        if (!fl->foreign_logged) {
            char src[V2S_ADDR_STRLEN];
            v2s_debug("%s: a datagram from %s dropped: not the destination", fl->label,
                      v2s_addr_format_port(from, port, src, sizeof(src)));
        }
        fl->foreign_logged = 1;
        return;
    }
    ufwd_touch(fl);
    struct sockaddr_storage ss;
    if (v2s_addr_to_sockaddr(&fl->peer, fl->peer_port, &ss) < 0)
        return;
    int rc = ufwd_send(&pu->sock, (const struct sockaddr *)&ss, data, len);
    if (rc < 0) {
        ufwd_send_failed(fl, rc, 0, len);
        return;
    }
    fl->down++;
}

static struct ufwd_flow *ufwd_local_flow_new(struct port_udp *pu, const struct v2s_addr *peer, uint16_t port)
{
    struct ufwd_flow *fl = ufwd_flow_alloc(pu, peer, port);
    if (!fl)
        return NULL;
    int rc = outbound_udp_open(pu->out, ufwd_local_answer, fl, &fl->assoc);
    if (rc < 0) {
        if (!pu->open_failed_logged)
            v2s_warn("%s: cannot open: %s (datagrams dropped)", fl->label, uv_strerror(rc));
        pu->open_failed_logged = 1;
        free(fl);
        return NULL;
    }
    pu->open_failed_logged = 0;
    ufwd_flow_insert(fl);
    return fl;
}

static void ufwd_local_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                            unsigned flags)
{
    struct port_udp *pu = h->data;
    if (nread < 0) {
        v2s_debug("udp forward %s: receive: %s", pu->where, uv_strerror((int)nread));
        return;
    }
    if (!addr)
        return; /* nothing more to read */
    if (flags & UV_UDP_PARTIAL) {
        v2s_debug("udp forward %s: a datagram larger than %d bytes dropped", pu->where, UFWD_BUF_SIZE);
        return;
    }
    struct v2s_addr peer;
    uint16_t port;
    if (v2s_addr_from_sockaddr(addr, &peer, &port) < 0)
        return;
    struct ufwd_flow *fl = ufwd_find(pu, &peer, port);
    if (!fl && !(fl = ufwd_local_flow_new(pu, &peer, port)))
        return;
    ufwd_touch(fl);
    int rc = outbound_udp_send(fl->assoc, pu->dst.name, &pu->dst.addr, pu->dst.port, (const uint8_t *)buf->base, (size_t)nread);
    if (rc < 0) {
        ufwd_send_failed(fl, rc, 1, (size_t)nread);
        return;
    }
    fl->up++;
}

/* --- -R: a tunnel socket to host sockets --- */

/* An answer from the destination on fl's host socket: into the tunnel, to the remote client. */
static void ufwd_remote_answer(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                               unsigned flags)
{
    struct ufwd_flow *fl = h->data;
    if (fl->state != UFWD_FLOW_OPEN)
        return;
    if (nread < 0) {
        /* ICMP errors on a connected socket: port unreachable is ECONNREFUSED, which the remote
         * client is told the same way. */
        if (nread == UV_ECONNREFUSED && fl->last_dst.family && fl->pu->su)
            stack_udp_unreachable(fl->pu->su, &fl->peer, fl->peer_port, &fl->last_dst, fl->last_len,
                                  fl->last_head, fl->last_head_len);
        ufwd_send_failed(fl, (int)nread, 1, 0);
        return;
    }
    if (!addr || (flags & UV_UDP_PARTIAL))
        return;
    ufwd_touch(fl);
    int rc = fl->pu->su ? stack_udp_send(fl->pu->su, &fl->peer, fl->peer_port, (const uint8_t *)buf->base,
                                         (size_t)nread)
                        : UV_ENETDOWN;
    if (rc < 0) {
        ufwd_send_failed(fl, rc, 0, (size_t)nread);
        return;
    }
    fl->down++;
}

/* The destination's address is known: connect fl's socket and send what waited. */
static void ufwd_remote_connect(struct ufwd_flow *fl, const struct sockaddr *sa)
{
    int rc = uv_udp_connect(&fl->sock, sa);
    if (rc == 0)
        rc = uv_udp_recv_start(&fl->sock, ufwd_alloc_flow, ufwd_remote_answer);
    if (rc < 0) {
        char to[V2S_ADDR_STRLEN];
        v2s_info("%s: cannot connect to %s: %s (datagrams dropped until the flow ends)", fl->label,
                 v2s_sockaddr_format(sa, to, sizeof(to)), uv_strerror(rc));
        fl->state = UFWD_FLOW_FAILED;
        ufwd_flow_free_pending(fl);
        return;
    }
    fl->state = UFWD_FLOW_OPEN;
    struct v2s_list *n;
    while ((n = v2s_list_first(&fl->pending)) != NULL) {
        struct ufwd_pending *p = V2S_LIST_ENTRY(n, struct ufwd_pending, node);
        v2s_list_remove(n);
        fl->pending_bytes -= sizeof(*p) + p->len;
        if ((rc = ufwd_send(&fl->sock, NULL, p->data, p->len)) < 0)
            ufwd_send_failed(fl, rc, 1, p->len);
        else
            fl->up++;
        free(p);
    }
}

static void ufwd_remote_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct ufwd_flow *fl = req->data;
    fl->handles_open--;
    if (fl->state == UFWD_FLOW_CLOSING) {
        uv_freeaddrinfo(res);
        ufwd_flow_maybe_free(fl);
        return;
    }
    if (status < 0 || !res) {
        v2s_info("%s: %s (datagrams dropped until the flow ends)", fl->label,
                 uv_strerror(status < 0 ? status : UV_EAI_NONAME));
        fl->state = UFWD_FLOW_FAILED;
        ufwd_flow_free_pending(fl);
        uv_freeaddrinfo(res);
        return;
    }
    /* One address for the flow: UDP has no handshake to tell a live one, so take the first of
     * the family the remote client used (a service on 127.0.0.1 for an IPv4 client of
     * "localhost"), else the first. */
    const struct addrinfo *pick = res;
    for (const struct addrinfo *ai = res; ai; ai = ai->ai_next)
        if ((ai->ai_family == AF_INET) == (fl->peer.family == AF_INET)) {
            pick = ai;
            break;
        }
    ufwd_remote_connect(fl, pick->ai_addr);
    uv_freeaddrinfo(res);
}

static struct ufwd_flow *ufwd_remote_flow_new(struct port_udp *pu, const struct v2s_addr *peer, uint16_t port)
{
    struct ufwd_flow *fl = ufwd_flow_alloc(pu, peer, port);
    if (!fl)
        return NULL;
    uv_udp_init(pu->loop, &fl->sock);
    fl->sock.data = fl;
    fl->handles_open = 1;
    ufwd_flow_insert(fl);
    if (!pu->dst.name) {
        struct sockaddr_storage ss;
        v2s_addr_to_sockaddr(&pu->dst.addr, pu->dst.port, &ss);
        ufwd_remote_connect(fl, (const struct sockaddr *)&ss);
        return fl;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM};
    fl->state = UFWD_FLOW_RESOLVING;
    fl->gai.data = fl;
    int rc = uv_getaddrinfo(pu->loop, &fl->gai, ufwd_remote_resolved, pu->dst.name, pu->port_text, &hints);
    if (rc < 0) {
        v2s_info("%s: %s (datagrams dropped until the flow ends)", fl->label, uv_strerror(rc));
        fl->state = UFWD_FLOW_FAILED;
        return fl;
    }
    fl->handles_open++;
    return fl;
}

/* A datagram from the tunnel to the forwarded port. */
static void ufwd_remote_recv(void *arg, const struct v2s_addr *src, uint16_t sport, const struct v2s_addr *dst,
                             const uint8_t *data, size_t len)
{
    struct port_udp *pu = arg;
    if (pu->closing)
        return;
    struct ufwd_flow *fl = ufwd_find(pu, src, sport);
    if (!fl && !(fl = ufwd_remote_flow_new(pu, src, sport)))
        return;
    if (fl->state == UFWD_FLOW_FAILED)
        return;
    ufwd_touch(fl);
    fl->last_dst = *dst;
    fl->last_len = len;
    fl->last_head_len = len < UFWD_QUOTE_MAX ? len : UFWD_QUOTE_MAX;
    memcpy(fl->last_head, data, fl->last_head_len);
    if (fl->state == UFWD_FLOW_RESOLVING) {
        /* Each waiting datagram counts with its record, so that empty ones are bounded too: they
         * counted nothing and piled up without end while the name resolved
         * (port_udp_remote_pending_bounded). */
        struct ufwd_pending *p;
        if (fl->pending_bytes + sizeof(*p) + len > UFWD_PENDING_MAX || !(p = malloc(sizeof(*p) + len))) {
            ufwd_send_failed(fl, UV_ENOBUFS, 1, len);
            return;
        }
        memcpy(p->data, data, len);
        p->len = len;
        v2s_list_init(&p->node);
        v2s_list_push_back(&fl->pending, &p->node);
        fl->pending_bytes += sizeof(*p) + len;
        return;
    }
    int rc = ufwd_send(&fl->sock, NULL, data, len);
    if (rc < 0) {
        ufwd_send_failed(fl, rc, 1, len);
        return;
    }
    fl->up++;
}

/* --- the forward --- */

/* What both kinds share: the destination, the table, the buffer, the timer. */
static int ufwd_new(struct port_udp **out, const struct port_udp_config *cfg, enum ufwd_kind kind)
{
    if (cfg->max_flows == 0 || cfg->idle_timeout_ms == 0)
        return UV_EINVAL;
    struct port_udp *pu = calloc(1, sizeof(*pu));
    if (!pu)
        return UV_ENOMEM;
    unsigned buckets = 16;
    while (buckets < cfg->max_flows && buckets < UFWD_TABLE_MAX)
        buckets <<= 1;
    pu->table = malloc(buckets * sizeof(*pu->table));
    pu->buf = malloc(UFWD_BUF_SIZE);
    int rc = port_target_init(&pu->dst, cfg->host, cfg->port);
    if (rc == 0 && (!pu->table || !pu->buf))
        rc = UV_ENOMEM;
    if (rc < 0) {
        free(pu->table);
        free(pu->buf);
        port_target_free(&pu->dst);
        free(pu);
        return rc;
    }
    for (unsigned i = 0; i < buckets; i++)
        v2s_list_init(&pu->table[i]);
    pu->table_mask = buckets - 1;
    pu->kind = kind;
    pu->loop = cfg->loop;
    snprintf(pu->port_text, sizeof(pu->port_text), "%u", cfg->port);
    pu->idle_ms = cfg->idle_timeout_ms;
    pu->max_flows = cfg->max_flows;
    v2s_list_init(&pu->flows);
    listener_own_init(&pu->own);
    uv_timer_init(cfg->loop, &pu->timer);
    pu->timer.data = pu;
    pu->handles_open = 1;
    *out = pu;
    return 0;
}

int port_udp_local_new(struct port_udp **out, const struct port_udp_config *cfg, struct outbound *ob,
                       const struct sockaddr *addr)
{
    struct port_udp *pu;
    int rc = ufwd_new(&pu, cfg, UFWD_LOCAL);
    if (rc < 0)
        return rc;
    pu->out = ob;
    uv_udp_init(cfg->loop, &pu->sock);
    pu->sock.data = pu;
    pu->handles_open++;
    rc = uv_udp_bind(&pu->sock, addr, 0);
    if (rc == 0)
        rc = uv_udp_recv_start(&pu->sock, ufwd_alloc_listen, ufwd_local_recv);
    if (rc < 0) {
        port_udp_close(pu, NULL, NULL);
        return rc;
    }
    listener_own_add(&pu->own, (const uv_handle_t *)&pu->sock);
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    if (uv_udp_getsockname(&pu->sock, (struct sockaddr *)&ss, &sl) == 0)
        addr = (const struct sockaddr *)&ss;
    v2s_sockaddr_format(addr, pu->where, sizeof(pu->where));
    *out = pu;
    return 0;
}

int port_udp_remote_new(struct port_udp **out, const struct port_udp_config *cfg, struct stack *s,
                        const struct v2s_addr *local, uint16_t port)
{
    /* The unspecified address of either family (0.0.0.0, ::) is every tunnel address, as for a
     * TCP -R (port/reverse.c): "::" bound lwIP's IPv6 any-address alone, and IPv4 clients of the
     * port were answered port unreachable (port_udp_remote_any6). */
    static const uint8_t zero[16];
    if (local && (local->family == AF_INET || local->family == AF_INET6) &&
        memcmp(local->bytes, zero, v2s_addr_len(local)) == 0)
        local = NULL;
    struct port_udp *pu;
    int rc = ufwd_new(&pu, cfg, UFWD_REMOTE);
    if (rc < 0)
        return rc;
    rc = stack_udp_open(s, local, port, ufwd_remote_recv, pu, &pu->su);
    if (rc < 0) {
        pu->su = NULL;
        port_udp_close(pu, NULL, NULL);
        return rc;
    }
    char a[V2S_ADDR_STRLEN];
    if (local)
        pu->local = *local; /* where says "tunnel ADDR:PORT": port_udp_tunnel_up() */
    if (local)
        snprintf(pu->where, sizeof(pu->where), "tunnel %s", v2s_addr_format_port(local, port, a, sizeof(a)));
    else
        snprintf(pu->where, sizeof(pu->where), "tunnel port %u", port);
    *out = pu;
    return 0;
}

void port_udp_tunnel_up(struct port_udp *pu, const struct tunnel_settings *ts)
{
    if (pu->kind != UFWD_REMOTE || !pu->local.family || pu->closing)
        return;
    if (v2s_addr_equal(&pu->local, &ts->addr4) || v2s_addr_equal(&pu->local, &ts->addr6))
        return;
    char wanted[V2S_ADDR_STRLEN], has[2][V2S_ADDR_STRLEN] = {"", ""};
    if (ts->addr4.family)
        v2s_addr_format(&ts->addr4, has[0], sizeof(has[0]));
    if (ts->addr6.family)
        v2s_addr_format(&ts->addr6, has[1], sizeof(has[1]));
    v2s_warn("remote forward %s/udp: %s is not the tunnel's address (the tunnel has %s%s%s): no datagram "
             "can arrive there; give -R PORT:HOST:HOSTPORT/udp to listen on whatever address the tunnel has",
             pu->where + strlen("tunnel "), v2s_addr_format(&pu->local, wanted, sizeof(wanted)), has[0],
             has[0][0] && has[1][0] ? " and " : "", has[1]);
}

int port_udp_local(const struct port_udp *pu, struct sockaddr *addr, int *len)
{
    if (pu->kind != UFWD_LOCAL)
        return UV_EINVAL;
    return uv_udp_getsockname(&pu->sock, addr, len);
}

unsigned port_udp_flows(const struct port_udp *pu)
{
    return pu->n_flows;
}

void port_udp_close(struct port_udp *pu, void (*cb)(void *arg), void *arg)
{
    pu->closing = 1;
    pu->close_cb = cb;
    pu->close_arg = arg;
    listener_own_remove(&pu->own);
    struct v2s_list *n;
    while ((n = v2s_list_first(&pu->flows)) != NULL)
        ufwd_flow_close(V2S_LIST_ENTRY(n, struct ufwd_flow, by_age), 0);
    if (pu->kind == UFWD_LOCAL)
        uv_close((uv_handle_t *)&pu->sock, ufwd_handle_closed);
    else if (pu->su) {
        stack_udp_close(pu->su);
        pu->su = NULL;
    }
    uv_close((uv_handle_t *)&pu->timer, ufwd_handle_closed);
}
