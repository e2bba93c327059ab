/* TCP through the tunnel, the bridge's send path: what the application writes goes into lwIP,
 * no faster than lwIP and the tunnel take it.
 *
 * Backpressure, application to tunnel: reads from the application are sized to tcp_sndbuf() and
 * copied into lwIP at once; reading stops while the send buffer or queue is short, or while the
 * tunnel's own queue is above its high mark, and resumes from the sent callback (or the tunnel's
 * writable event).
 *
 * Reading resumes only once STACK_TCP_RESUME_SNDBUF bytes of send buffer are free, so each read
 * moves a useful amount instead of a few bytes at a time, and, when what lwIP holds unsent (next
 * paragraph) stopped it, once STACK_TCP_RESUME_UNSENT more may be held, while it goes on as long
 * as STACK_TCP_RESUME_SNDBUF still fits. With one mark for both, an upload stopped and resumed
 * reading every 16 KiB, each time an epoll_ctl() for libuv to take the socket out of its poll
 * set and put it back: 66 per MiB, 1.7 % of vpn2socks's CPU in a UDP upload (perf).
 *
 * What lwIP holds unsent is kept near what it can send soon: at most STACK_TCP_UNSENT_MAX bytes
 * or a congestion window, whichever is more, beyond what is in flight; the rest waits in the
 * application's socket. lwIP's tcp_write() walks its whole queue of unsent segments to find the
 * last one, so with its 4 MiB send buffer full (about 3,300 segments unsent behind a window of
 * 60-110 KiB, an upload through openconnect) every 64 KiB read cost a walk of all of them. With
 * the limit vpn2socks's CPU per GiB uploaded through openconnect fell from 4.5-4.9 to 3.3-3.4
 * seconds (bench/RESULTS.md). lwIP moves data from unsent to the network after the sent callback
 * (which is where reading resumes otherwise), so a connection held back by this limit alone is
 * put on the stack's refills and looked at again once the iteration's packets were handled.
 *
 * What a read brought that lwIP could not take is held (pending) and goes in first when lwIP has
 * room; the application's FIN waits behind it (tcp_close.c).
 *
 * Zero-window probes: while the peer's window is shut and data waits, lwIP's persist timer sends
 * a probe carrying one byte beyond that window. A receiver does not have to read the
 * acknowledgement in a segment it cannot accept, and Linux (6.18 here) does not: it answers and
 * drops it. So when both ends wait (an echo server that stops reading because we have not
 * acknowledged what it sent), the probes cannot tell it that its data did arrive, and if our one
 * pure ACK for that data was lost, the server waits for its own retransmission timer, which backs
 * off to two minutes. At 5 % loss with 1,000 echoes, one connection went 92 s without a byte,
 * its data acknowledged only in 15 probes that the server answered and ignored (tests/lab/faults
 * (c), captured). So each probe is followed by a pure ACK, which any receiver reads.
 *
 * The handshake's ACK rides on the application's first bytes when they are already there. lwIP
 * acknowledges the SYN-ACK at once, in a packet of its own, right after the connected callback in
 * which the listener answers its client (the SOCKS reply) and the bridge starts; a client that
 * speaks first (HTTP, TLS) sends its request as soon as it reads that answer. So at the end of the
 * loop iteration, before the held ACKs leave (stack.c holds pure ACKs until then), the
 * application's socket is read once without waiting: bytes there go out at once and carry the
 * acknowledgement, and the held ACK is dropped; if nothing is there the ACK leaves as before, in
 * the same iteration, so a server that speaks first (SSH, SMTP), whose accept() waits for that
 * ACK, waits no longer than it did (as Linux, which delays the ACK of a SYN-ACK only for a write
 * already pending). It costs a recv() per connection, and saves, when the bytes are there, a
 * packet each way of work (our encryption and sendmmsg(), the VPN server's decryption and TUN
 * write) and a loop iteration. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <uv.h>

#include "base/log.h"
#include "base/uvstream.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "stack/lwip_pin.h" /* lwIP internals: see there */
#include "stack/packet.h"
#include "stack/tcp_internal.h"
#include "stack/timers.h"

enum {
    STACK_TCP_RESUME_SNDBUF = 16 * 1024,
    STACK_TCP_RESUME_UNSENT = 64 * 1024,
    STACK_TCP_UNSENT_MAX = 256 * 1024,
    /* How often connections are looked at for a probe sent: lwIP's persist timer runs on its
     * 50 ms tick and its probes are at least 150 ms apart, so none is missed, and the ACK
     * follows its probe within 50 ms. Armed only while there are connections and lwIP's TCP
     * tick runs (the persist timer runs on it; stack.c starts the look again with the tick). */
    STACK_TCP_PROBE_LOOK_MS = 50,
};

/* How many more bytes lwIP may hold unsent (see the top). */
static size_t stack_tcp_unsent_room(const struct tcp_pcb *pcb)
{
    size_t unsent = (u32_t)(pcb->snd_lbb - pcb->snd_nxt);
    size_t max = pcb->cwnd > STACK_TCP_UNSENT_MAX ? pcb->cwnd : STACK_TCP_UNSENT_MAX;
    return unsent < max ? max - unsent : 0;
}

/* Whether lwIP can take a useful amount of application data now, apart from its unsent limit. */
static int stack_tcp_has_room(const struct stack_tcp *c)
{
    return c->pcb && !c->s->tunnel_congested && !c->pending && tcp_sndbuf(c->pcb) >= STACK_TCP_RESUME_SNDBUF &&
           tcp_sndqueuelen(c->pcb) < TCP_SNDQUEUELOWAT;
}

static int stack_tcp_can_take(const struct stack_tcp *c)
{
    return stack_tcp_has_room(c) && stack_tcp_unsent_room(c->pcb) >= STACK_TCP_RESUME_SNDBUF;
}

/* lwIP 2.1.3's tcp_write() makes segments of half the largest window the peer has offered
 * (snd_wnd_max, read nowhere else), at most the MSS, but of the full MSS while that window is 0
 * or 1 byte; and it asserts that the last segment still unsent is no larger than the size it
 * makes now. So a peer whose window was shut from the handshake on, and then opened a little,
 * aborted the process at the application's next write, a full segment from before waiting
 * unsent (stack_input_window_opens_small). The full MSS it was is kept as the size from then on,
 * as if the peer had offered twice the MSS: the persist timer cuts a segment to a small window
 * anyway (tcp_split_unsent_seg()). The MSS itself comes down to a path MTU a packet too big
 * gave (stack.c) once nothing is unsent or in flight. */
static void stack_tcp_segment_size(struct tcp_pcb *pcb)
{
    stack_pmtu_fit_mss(pcb);
    if (pcb->snd_wnd_max <= 1)
        pcb->snd_wnd_max = 2 * (tcpwnd_size_t)pcb->mss;
}

/* Copies application bytes into lwIP. Returns how many were taken; stops at ERR_MEM (send buffer
 * or segment queue full) and returns a negative uv error on a hard failure. */
ssize_t stack_tcp_push(struct stack_tcp *c, const uint8_t *data, size_t len)
{
    size_t off = 0, most = 0xFFFF;
    if (c->pcb)
        stack_tcp_segment_size(c->pcb);
    while (off < len && c->pcb) {
        size_t room = tcp_sndbuf(c->pcb);
        if (room == 0)
            break;
        size_t chunk = len - off;
        if (chunk > room)
            chunk = room;
        if (chunk > most)
            chunk = most;
        u8_t flags = TCP_WRITE_FLAG_COPY | (off + chunk < len ? TCP_WRITE_FLAG_MORE : 0);
        err_t e = tcp_write(c->pcb, data + off, (u16_t)chunk, flags);
        if (e == ERR_MEM && chunk > 1 && tcp_sndqueuelen(c->pcb) < TCP_SND_QUEUELEN) {
            /* lwIP takes a write whole or not at all. Its segments hold a few bytes when the
             * peer offered a tiny window (half the largest it offered, a byte for 2), as they did
             * for a tiny MSS before stack.c's floor, and then a write of 64 KiB needs more of them
             * than lwIP queues (TCP_SND_QUEUELEN): refused every time, with nothing in flight
             * whose ACK would bring us back, the upload hung for good (stack_input_window_tiny).
             * So less is tried, down to one byte. */
            most = chunk / 2;
            continue;
        }
        if (e == ERR_MEM)
            break;
        if (e != ERR_OK)
            return stack_err_to_uv(e);
        off += chunk;
    }
    if (off > 0 && c->pcb)
        stack_tcp_output(c->pcb);
    c->bytes_up += off;
    return (ssize_t)off;
}

static void stack_tcp_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct stack_tcp *c = h->data;
    size_t len = STACK_READ_BUF_SIZE;
    (void)suggested;
    if (c->pcb && tcp_sndbuf(c->pcb) < len)
        len = tcp_sndbuf(c->pcb);
    if (c->pcb && stack_tcp_unsent_room(c->pcb) < len)
        len = stack_tcp_unsent_room(c->pcb);
    if (len == 0)
        len = 1; /* never hand libuv an empty buffer: it reports that as ENOBUFS */
    /* One shared buffer: libuv calls alloc, read and read_cb back to back for one handle, and the
     * read callback copies everything out before it returns. */
    *buf = uv_buf_init((char *)c->s->read_buf, (unsigned)len);
}

static void stack_tcp_read_stop(struct stack_tcp *c)
{
    if (c->reading) {
        uv_read_stop((uv_stream_t *)c->app);
        c->reading = 0;
    }
}

static void stack_tcp_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct stack_tcp *c = stream->data;
    if (nread == 0 || c->state != STACK_TCP_BRIDGED)
        return;
    if (nread == UV_EOF)
        nread = v2s_eof_or_error(stream); /* a reset after data ends as a reset (base/uvstream.h) */
    if (nread == UV_EOF) {
        stack_tcp_read_stop(c);
        c->app_eof = 1;
        if (!c->pending)
            stack_tcp_shut_tx(c);
        return;
    }
    if (nread < 0) {
        v2s_debug("%s: application side %s", c->label, uv_strerror((int)nread));
        stack_tcp_end(c, 1);
        return;
    }
    if (!c->pcb) {
        stack_tcp_end(c, 1);
        return;
    }
    ssize_t taken = stack_tcp_push(c, (const uint8_t *)buf->base, (size_t)nread);
    if (taken < 0) {
        stack_tcp_end(c, 1);
        return;
    }
    if (taken < nread) {
        size_t rest = (size_t)(nread - taken);
        c->pending = malloc(rest);
        if (!c->pending) {
            stack_tcp_end(c, 1);
            return;
        }
        memcpy(c->pending, buf->base + taken, rest);
        c->pending_len = rest;
        c->pending_off = 0;
    }
    if (!stack_tcp_can_take(c))
        stack_tcp_read_stop(c);
}

void stack_tcp_read_start(struct stack_tcp *c)
{
    if (c->reading || c->app_eof || c->state != STACK_TCP_BRIDGED || !stack_tcp_can_take(c) ||
        stack_tcp_unsent_room(c->pcb) < STACK_TCP_RESUME_UNSENT)
        return;
    if (v2s_read_take((uv_stream_t *)c->app, stack_tcp_alloc_cb, stack_tcp_read_cb) == 0)
        c->reading = 1;
}

/* --- the handshake's ACK on the first bytes (see the top) --- */

void stack_tcp_ack_ride_start(struct stack_tcp *c)
{
    if (v2s_list_linked(&c->ride_node))
        return;
    v2s_list_push_back(&c->s->ack_rides, &c->ride_node);
    stack_check_arm(c->s);
}

/* The application's bytes, if already there, go out now with the handshake's acknowledgement;
 * the held ACK that only acknowledged the SYN-ACK is dropped. */
static void stack_tcp_ack_ride(struct stack_tcp *c)
{
    struct tcp_pcb *pcb = c->pcb;
    /* Anything received since the SYN-ACK was acknowledged on its own terms. */
    if (c->state != STACK_TCP_BRIDGED || !pcb || pcb->rcv_nxt != c->first_rcv || pcb->ooseq)
        return;
    uv_os_fd_t fd;
    /* Early bytes (pushed from the callback) carry the ACK already: lwIP sends nothing from
     * inside its own input processing, and its tcp_output() after the callback sends them with
     * the ACK, alone. */
    if (c->bytes_up > 0 || !c->reading || uv_fileno((uv_handle_t *)c->app, &fd) < 0)
        return;
    uv_buf_t buf;
    stack_tcp_alloc_cb((uv_handle_t *)c->app, STACK_READ_BUF_SIZE, &buf);
    ssize_t n;
    do
        n = recv(fd, buf.base, buf.len, MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return; /* nothing yet: the ACK leaves alone, and libuv reports the bytes later */
    if (n > 0) {
        struct v2s_addr local, remote;
        struct packet_tcp_info key;
        stack_addr_from_lwip(&pcb->local_ip, &local);
        stack_addr_from_lwip(&pcb->remote_ip, &remote);
        packet_tcp_key(&local, pcb->local_port, &remote, pcb->remote_port, pcb->rcv_nxt, &key);
        stack_ack_forget(c->s, &key);
    }
    /* Bytes, the end or an error, as the read callback takes them from libuv (an error read here
     * is not reported again). */
    stack_tcp_read_cb((uv_stream_t *)c->app, n > 0 ? n : n == 0 ? UV_EOF : uv_translate_sys_error(errno), &buf);
}

void stack_tcp_ack_rides(struct stack *s)
{
    struct v2s_list *n;
    while ((n = v2s_list_first(&s->ack_rides)) != NULL) {
        struct stack_tcp *c = V2S_LIST_ENTRY(n, struct stack_tcp, ride_node);
        v2s_list_remove(&c->ride_node);
        stack_tcp_ack_ride(c);
    }
}

/* Connections whose reading waited for lwIP to send (see the top): reading resumes if it can. */
void stack_tcp_refills(struct stack *s)
{
    struct v2s_list *n;
    while ((n = v2s_list_first(&s->refills)) != NULL) {
        struct stack_tcp *c = V2S_LIST_ENTRY(n, struct stack_tcp, refill_node);
        v2s_list_remove(&c->refill_node);
        stack_tcp_read_start(c);
    }
}

/* Moves held-back application bytes into lwIP; once they are all in, reading resumes (or the FIN
 * that waited behind them goes out). */
static int stack_tcp_flush_pending(struct stack_tcp *c)
{
    if (!c->pending)
        return 0;
    ssize_t taken = stack_tcp_push(c, c->pending + c->pending_off, c->pending_len - c->pending_off);
    if (taken < 0)
        return (int)taken;
    c->pending_off += (size_t)taken;
    if (c->pending_off == c->pending_len) {
        free(c->pending);
        c->pending = NULL;
        if (c->app_eof)
            stack_tcp_shut_tx(c);
    }
    return 0;
}

err_t stack_tcp_on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
    struct stack_tcp *c = arg;
    (void)pcb;
    (void)len;
    if (c->state != STACK_TCP_BRIDGED)
        return ERR_OK;
    if (stack_tcp_flush_pending(c) < 0) {
        stack_tcp_end(c, 1);
        return ERR_ABRT;
    }
    stack_tcp_read_start(c);
    /* lwIP sends what this ACK lets go only after this callback: look again then. */
    if (!c->reading && !c->app_eof && stack_tcp_has_room(c) && !v2s_list_linked(&c->refill_node)) {
        v2s_list_push_back(&c->s->refills, &c->refill_node);
        stack_check_arm(c->s);
    }
    /* The held-back bytes going in may have let our FIN go (stack_tcp_shut_tx), and a FIN that
     * lwIP refuses ends the bridge with tcp_abort() on this very pcb: lwIP must hear ERR_ABRT. */
    return c->aborted ? ERR_ABRT : ERR_OK;
}

/* Whether lwIP's persist timer sent a probe on c since the last look: after a probe it moves to
 * the next backoff slot (up to its last) and starts counting ticks from 0 again; starting the
 * timer sets slot 1 with no probe. */
static int stack_tcp_probed(struct stack_tcp *c, const struct tcp_pcb *pcb)
{
    int probed;
    if (pcb->persist_backoff > c->probe_backoff)
        probed = pcb->persist_backoff >= 2;
    else
        probed = pcb->persist_backoff == c->probe_backoff && pcb->persist_cnt < c->probe_cnt;
    c->probe_backoff = pcb->persist_backoff;
    c->probe_cnt = pcb->persist_cnt;
    return probed;
}

static void stack_tcp_probe_look(void *arg)
{
    struct stack *s = arg;
    s->probe_look = 0;
    struct v2s_list *n;
    V2S_LIST_FOREACH(n, &s->conns)
    {
        struct stack_tcp *c = V2S_LIST_ENTRY(n, struct stack_tcp, node);
        struct tcp_pcb *pcb = c->pcb;
        if (!pcb || pcb->persist_backoff == 0) {
            c->probe_backoff = 0;
            c->probe_cnt = 0;
            continue;
        }
        /* With the window shut the queued data cannot go, so tcp_output() sends the ACK alone. */
        if (stack_tcp_probed(c, pcb) && pcb->snd_wnd == 0) {
            tcp_set_flags(pcb, TF_ACK_NOW);
            stack_tcp_output(pcb);
        }
    }
    if (!v2s_list_empty(&s->conns) && stack_timers_tcp_awake())
        stack_tcp_probe_look_start(s);
}

void stack_tcp_probe_look_start(struct stack *s)
{
    if (s->probe_look)
        return;
    s->probe_look = 1;
    sys_timeout(STACK_TCP_PROBE_LOOK_MS, stack_tcp_probe_look, s);
}

void stack_tcp_probe_look_stop(struct stack *s)
{
    if (!s->probe_look)
        return;
    s->probe_look = 0;
    sys_untimeout(stack_tcp_probe_look, s);
}
