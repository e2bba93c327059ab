/* TCP through the tunnel, closing the bridge: FINs and resets passed from each side to the other,
 * the pcb let go as soon as lwIP can finish without us, and the pacing of FINs.
 *
 * Closing: a FIN from either side becomes a shutdown of the other side's write direction; the
 * connection ends when both directions are closed. A reset on either side resets the other.
 *
 * Closes are paced. An application that closes thousands of connections at once would otherwise
 * make lwIP send thousands of FINs in one burst; through a datagram tunnel most of them overflow
 * the VPN server's socket buffer and are lost. lwIP then retransmits each lost FIN only after its
 * RTO, which for a connection that never carried data is the initial 3 s, doubling each time, and
 * since the FINs were lost together their retransmissions fire together, in the same timer tick,
 * and are lost again (10,000 closes measured: 3,780 lost, then 2,013, 334, 78 still open after
 * 40 s). So at most STACK_TCP_FIN_WINDOW FINs are in flight; the rest wait, oldest first, and go
 * out as earlier ones are acknowledged. The FIN's own ACK has no lwIP callback (the sent callback
 * counts data bytes only), so the slots are checked once per loop iteration from the pcb state.
 * A slot is given up after STACK_TCP_FIN_SLOT_MS even unacknowledged: a FIN that was lost anyway,
 * or a peer that does not answer, must not hold back the closes of every other connection.
 *
 * The remote end's FIN is acknowledged late when ours is not sent yet. lwIP acknowledges a FIN at
 * once, in a packet of its own; but a FIN that reaches us first is passed to the application as
 * the end of its stream, and most applications answer that by closing, so our own FIN follows
 * within a loop iteration or two and can carry the acknowledgement. So the ACK is delayed (lwIP's
 * delayed ACK, sent on the next TCP tick, at most TCP_TMR_INTERVAL later, if nothing carried it
 * before), as Linux does: its FIN handling moves the socket to CLOSE_WAIT in delayed-ACK mode.
 * The peer has nothing to wait for meanwhile (it sent its FIN, and the delay is far below any
 * retransmission timeout); the saving is one packet per connection the server closes first, and
 * with it an encryption here and a decryption and TUN write in the VPN server (bench/run.sh's
 * latency case, an HTTP/1.1 answer with "Connection: close": 5 packets to the server per
 * request, 4 now). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <uv.h>

#include "base/log.h"
#include "lwip/tcp.h"
#include "stack/lwip_pin.h" /* lwIP internals: see there */
#include "stack/tcp_internal.h"

enum {
    STACK_TCP_FIN_WINDOW = 128,
    STACK_TCP_FIN_SLOT_MS = 1000,
};

/* Lets go of the pcb. lwIP rule: clear every callback first, so lwIP never calls back into a
 * connection that is going away; tcp_abort() would otherwise call our err callback. */
void stack_tcp_release_pcb(struct stack_tcp *c, int abort)
{
    struct tcp_pcb *pcb = c->pcb;
    stack_tcp_flight_stop(c);
    if (!pcb)
        return;
    c->pcb = NULL;
    tcp_arg(pcb, NULL);
    tcp_recv(pcb, NULL);
    tcp_sent(pcb, NULL);
    tcp_err(pcb, NULL);
    if (abort || tcp_close(pcb) != ERR_OK) {
        tcp_abort(pcb);
        c->aborted = 1;
    }
}

/* Once both FINs are through, the tunnel side needs nothing more from us: lwIP finishes the
 * close (TIME_WAIT, LAST_ACK) by itself. Letting go now matters because lwIP frees a TIME_WAIT
 * pcb on its own timer without telling anyone, while the application side may take longer. */
void stack_tcp_maybe_release(struct stack_tcp *c)
{
    if (c->tx_shut && c->remote_fin)
        stack_tcp_release_pcb(c, 0);
}

/* In lwIP's receive callback for the remote end's FIN (see "The remote end's FIN is acknowledged
 * late" at the top): the immediate ACK lwIP has just asked for becomes a delayed one, which our
 * FIN or the next TCP tick sends. Only in CLOSE_WAIT: after our own FIN (FIN_WAIT, CLOSING) the
 * ACK completes the close and leaves at once. */
void stack_tcp_remote_fin_ack_later(struct stack_tcp *c, struct tcp_pcb *pcb)
{
    if (c->state != STACK_TCP_BRIDGED || pcb->state != CLOSE_WAIT || !(pcb->flags & TF_ACK_NOW))
        return;
    tcp_clear_flags(pcb, TF_ACK_NOW);
    tcp_set_flags(pcb, TF_ACK_DELAY);
}

/* --- pacing of closes (see "Closes are paced" at the top) --- */

static void stack_tcp_fin_take_slot(struct stack_tcp *c)
{
    struct stack *s = c->s;
    c->fin = STACK_TCP_FIN_FLIGHT;
    c->fin_sent_ms = uv_now(s->loop);
    v2s_list_push_front(&s->fin_flight, &c->fin_node);
    s->n_fin_flight++;
}

/* Takes c off whichever pacing list it is on, freeing its slot if it held one. */
static void stack_tcp_fin_forget(struct stack_tcp *c)
{
    struct stack *s = c->s;
    if (c->fin == STACK_TCP_FIN_NONE)
        return;
    v2s_list_remove(&c->fin_node);
    if (c->fin == STACK_TCP_FIN_FLIGHT)
        s->n_fin_flight--;
    c->fin = STACK_TCP_FIN_NONE;
}

/* Whether c's FIN no longer needs its slot: acknowledged (the pcb left FIN_WAIT_1, CLOSING and
 * LAST_ACK, or we let the pcb go), or sent long enough ago. */
static int stack_tcp_fin_done(const struct stack_tcp *c, uint64_t now)
{
    if (!c->pcb || now - c->fin_sent_ms >= STACK_TCP_FIN_SLOT_MS)
        return 1;
    enum tcp_state st = c->pcb->state;
    return st != FIN_WAIT_1 && st != CLOSING && st != LAST_ACK;
}

static void stack_tcp_send_fin(struct stack_tcp *c);

void stack_tcp_fin_pump(struct stack *s)
{
    if (v2s_list_empty(&s->fin_flight) && v2s_list_empty(&s->fin_wait))
        return;
    uint64_t now = uv_now(s->loop);
    struct v2s_list *n, *next;
    V2S_LIST_FOREACH_SAFE(n, next, &s->fin_flight) {
        struct stack_tcp *c = V2S_LIST_ENTRY(n, struct stack_tcp, fin_node);
        if (stack_tcp_fin_done(c, now))
            stack_tcp_fin_forget(c);
    }
    while (!v2s_list_empty(&s->fin_wait) && s->n_fin_flight < STACK_TCP_FIN_WINDOW) {
        struct stack_tcp *c = V2S_LIST_ENTRY(v2s_list_first(&s->fin_wait), struct stack_tcp, fin_node);
        stack_tcp_fin_forget(c);
        stack_tcp_fin_take_slot(c);
        /* May end the bridge (both directions closed), which takes c off the list again. */
        stack_tcp_send_fin(c);
    }
}

/* --- ending the bridge --- */

static void stack_tcp_app_closed(uv_handle_t *h)
{
    struct stack_tcp *c = h->data;
    struct stack *s = c->s;
    stack_tcp_unlink(c);
    free(c->pending);
    free(c->rxq);
    stack_tcp_done_cb done = c->done;
    void *done_arg = c->done_arg;
    int reset = c->reset;
    uint64_t up = c->bytes_up, down = c->bytes_down;
    free(c);
    if (done)
        done(done_arg, reset, up, down);
    stack_maybe_free(s);
}

/* Ends the bridge. With reset, the application sees a TCP reset (SO_LINGER 0) and the remote end
 * gets one through lwIP; otherwise both FINs have been exchanged already. Pending uv writes are
 * cancelled by uv_close() and free their pbufs before the close callback runs. */
void stack_tcp_end(struct stack_tcp *c, int reset)
{
    if (c->state == STACK_TCP_CLOSING)
        return;
    c->state = STACK_TCP_CLOSING;
    c->reset = reset ? 1 : 0;
    stack_tcp_fin_forget(c);
    if (c->n_rxq)
        v2s_list_remove(&c->flush_node);
    stack_tcp_free_rxq(c);
    stack_tcp_release_pcb(c, reset);
    if (reset) {
        uv_os_fd_t fd;
        if (uv_fileno((uv_handle_t *)c->app, &fd) == 0) {
            struct linger l = {1, 0};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
        }
    }
    uv_close((uv_handle_t *)c->app, stack_tcp_app_closed);
}

/* Both directions closed cleanly: done. */
void stack_tcp_maybe_finish(struct stack_tcp *c)
{
    if (c->state == STACK_TCP_BRIDGED && c->tx_shut && c->app_shut_done)
        stack_tcp_end(c, 0);
}

static void stack_tcp_app_shutdown_cb(uv_shutdown_t *req, int status)
{
    struct stack_tcp *c = req->data;
    if (c->state != STACK_TCP_BRIDGED)
        return;
    if (status < 0) {
        stack_tcp_end(c, 1);
        return;
    }
    c->app_shut_done = 1;
    stack_tcp_maybe_finish(c);
}

/* The remote end's FIN reaches the application once every byte before it has. Then nothing of
 * ours is in libuv's write queue (tcp_recv.c writes with one writev() and keeps at most one
 * uv_write() in flight, which is over), and almost always nothing at all: so shutdown() is called
 * at once. uv_shutdown() would call it only from the loop's pending callbacks and then
 * re-register the socket with epoll (libuv stops a POLLOUT watch it never started): an
 * epoll_ctl() per connection. With bytes still queued (a SOCKS reply the socket did not take
 * whole), uv_shutdown() shuts after them. */
void stack_tcp_maybe_shutdown_app(struct stack_tcp *c)
{
    if (c->state != STACK_TCP_BRIDGED || !c->remote_fin || c->writing || c->n_rxq || c->app_shut_sent)
        return;
    c->app_shut_sent = 1;
    uv_os_fd_t fd;
    if (uv_stream_get_write_queue_size((uv_stream_t *)c->app) == 0 &&
        uv_fileno((uv_handle_t *)c->app, &fd) == 0) {
        if (shutdown(fd, SHUT_WR) < 0) {
            v2s_debug("%s: shutdown toward the application failed: %s", c->label,
                      uv_strerror(uv_translate_sys_error(errno)));
            stack_tcp_end(c, 1);
            return;
        }
        c->app_shut_done = 1;
        stack_tcp_maybe_finish(c);
        return;
    }
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)c->app, stack_tcp_app_shutdown_cb) < 0)
        stack_tcp_end(c, 1);
}

/* Sends our FIN now (the pacing gave it a slot, or it is not needed). */
static void stack_tcp_send_fin(struct stack_tcp *c)
{
    if (c->tx_shut || !c->pcb)
        return;
    c->tx_shut = 1;
    err_t e = tcp_shutdown(c->pcb, 0, 1);
    if (e != ERR_OK) {
        /* Only ERR_CONN (not connected yet) is possible for a bridged pcb: nothing sane is left. */
        v2s_debug("%s: shutdown toward the tunnel failed: %s", c->label, uv_strerror(stack_err_to_uv(e)));
        stack_tcp_end(c, 1);
        return;
    }
    stack_tcp_maybe_release(c);
    stack_tcp_maybe_finish(c);
}

/* The application closed its write direction: our FIN goes out now if a slot is free, else it
 * waits its turn (see "Closes are paced" at the top). */
void stack_tcp_shut_tx(struct stack_tcp *c)
{
    struct stack *s = c->s;
    if (c->tx_shut || !c->pcb || c->fin != STACK_TCP_FIN_NONE)
        return;
    if (s->n_fin_flight >= STACK_TCP_FIN_WINDOW) {
        c->fin = STACK_TCP_FIN_WAITING;
        v2s_list_push_back(&s->fin_wait, &c->fin_node);
        return;
    }
    stack_tcp_fin_take_slot(c);
    stack_tcp_send_fin(c);
}
