/* lwIP's timeouts, and a TCP tick that runs only while some connection needs it.
 *
 * lwipopts.h sets LWIP_TIMERS_CUSTOM, so sys_timeout(), sys_untimeout(), sys_check_timeouts() and
 * sys_timeouts_sleeptime() are the ones below; stack.c runs them from one uv timer that it re-arms
 * before the loop sleeps. The timers on the list:
 *   - lwIP's cyclic timers but TCP's: IPv4 and IPv6 reassembly, IPv6 neighbour discovery (1 s);
 *   - the TCP tick (below);
 *   - stack/'s own, through sys_timeout(): tcp.c's connect, SYN and first-flight timers,
 *     tcp_send.c's look for zero-window probes, recovery_timer.c's timer (a few milliseconds
 *     while data waits for ACKs), the resolver's query timeouts and cached answers.
 *
 * The TCP tick. lwIP's TCP timers tick every TCP_TMR_INTERVAL (25 ms; lwipopts.h says why):
 * tcp_fasttmr() every tick sends delayed ACKs and pending FINs and retries refused data, and
 * tcp_slowtmr() every other tick counts the retransmission and persist timers, sends keepalives,
 * polls, and ends connections kept too long in SYN_RCVD, FIN_WAIT_2, LAST_ACK or TIME_WAIT. Each
 * walks every connection, and lwIP's own driver ticks while any connection exists: 10,000 idle
 * connections cost 4 % of a core. Here the tick runs only while some connection has something
 * on those timers, that is one that
 *   - is in a state other than ESTABLISHED, CLOSE_WAIT, FIN_WAIT_2 and TIME_WAIT (a SYN or a FIN
 *     not yet acknowledged),
 *   - has data unacknowledged or unsent (the retransmission and persist timers; unsent data is
 *     also what a poll's tcp_output() would send), out-of-order data, refused data, a delayed or
 *     pending ACK, a FIN waiting for memory, a poll callback (stack/ sets none), or as many
 *     retransmissions as lwIP allows (it is ended on the next slow tick).
 * Otherwise the tick stops, or sleeps until the first deadline that lwIP measures against
 * tcp_ticks: a keepalive due, the end of FIN_WAIT_2 (a pcb closed both ways) or of TIME_WAIT. The
 * deadlines are rounded up to whole seconds of tcp_ticks, so that the keepalives and TIME_WAIT
 * ends of many connections share one wakeup; each happens at most that much later.
 *
 * While the tick sleeps tcp_ticks stands still, so it is brought forward by the slow ticks skipped
 * before lwIP reads it again: at the deadline, and at the first touch of a connection. Idle
 * connections change only through lwIP, and lwIP calls us first each time: the input hook for a
 * segment that matches a pcb (before pcb->tmr is stamped with tcp_ticks), and
 * LWIP_HOOK_TCP_OUT_TCPOPT_LENGTH, which it calls to size every segment it queues (tcp_write(),
 * SYN and FIN) or sends (before pcb->rttest is stamped). Both call stack_timers_tcp_touched(),
 * which restarts the 25 ms tick.
 *
 * The counters tcp_slowtmr() moves once per call, against the calls skipped: rtime counts only
 * while data is unacknowledged, persist_cnt only while the persist timer runs, polltmr matters
 * only with a poll callback, and each of those keeps the tick running; keep_cnt_sent counts
 * keepalives sent, not ticks. Every other timeout compares tcp_ticks with pcb->tmr, which stays
 * right once tcp_ticks has moved on by the time skipped. */
#include <stdint.h>

#include "base/list.h"
#include "lwip/opt.h"
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/sys.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "stack/lwip_hooks.h"
#include "stack/lwip_pin.h" /* lwIP internals: see there */
#include "stack/timers.h"

#if !LWIP_TCP_KEEPALIVE
#error "stack/timers.c reads the keepalive fields of a pcb that LWIP_TCP_KEEPALIVE adds"
#endif

struct stack_timeout {
    struct v2s_list node; /* on stack_timeouts, in the order they are due */
    u32_t due;            /* sys_now() */
    sys_timeout_handler fn;
    void *arg;
    int allocated; /* by sys_timeout(): freed when it runs or is cancelled */
};

static struct v2s_list stack_timeouts = {&stack_timeouts, &stack_timeouts};

/* a before b on the wrapping millisecond clock. */
static int stack_time_before(u32_t a, u32_t b)
{
    return (int32_t)(a - b) < 0;
}

/* Puts t after every timeout due at or before due (equal times run in the order they were set,
 * as in lwIP), looking from the back: most timeouts are set later than all that wait. */
static void stack_timeout_add(struct stack_timeout *t, u32_t due)
{
    t->due = due;
    struct v2s_list *at = stack_timeouts.prev;
    while (at != &stack_timeouts && stack_time_before(due, V2S_LIST_ENTRY(at, struct stack_timeout, node)->due))
        at = at->prev;
    v2s_list_insert_after(at, &t->node);
}

void sys_timeout(u32_t msecs, sys_timeout_handler handler, void *arg)
{
    LWIP_ASSERT("sys_timeout: at most a quarter of the clock", msecs <= UINT32_MAX / 4);
    struct stack_timeout *t = stack_mem_malloc(sizeof(*t));
    /* lwIP's own timeouts stop the process here too: a lost timer would hang what waits on it. */
    LWIP_ASSERT("sys_timeout: no memory", t != NULL);
    if (!t)
        return;
    v2s_list_init(&t->node);
    t->fn = handler;
    t->arg = arg;
    t->allocated = 1;
    stack_timeout_add(t, sys_now() + msecs);
}

void sys_untimeout(sys_timeout_handler handler, void *arg)
{
    struct v2s_list *n;
    V2S_LIST_FOREACH(n, &stack_timeouts)
    {
        struct stack_timeout *t = V2S_LIST_ENTRY(n, struct stack_timeout, node);
        if (t->allocated && t->fn == handler && t->arg == arg) {
            v2s_list_remove(n);
            stack_mem_free(t);
            return;
        }
    }
}

/* Runs what is due at the time of the call, one at a time from the list's head, so that a handler
 * may set or cancel any timeout (one set for now runs in this call too, as in lwIP). */
void sys_check_timeouts(void)
{
    u32_t now = sys_now();
    for (;;) {
        PBUF_CHECK_FREE_OOSEQ();
        struct v2s_list *n = v2s_list_first(&stack_timeouts);
        if (!n)
            return;
        struct stack_timeout *t = V2S_LIST_ENTRY(n, struct stack_timeout, node);
        if (stack_time_before(now, t->due))
            return;
        v2s_list_remove(n);
        sys_timeout_handler fn = t->fn;
        void *arg = t->arg;
        if (t->allocated)
            stack_mem_free(t);
        fn(arg);
    }
}

u32_t sys_timeouts_sleeptime(void)
{
    struct v2s_list *n = v2s_list_first(&stack_timeouts);
    if (!n)
        return SYS_TIMEOUTS_SLEEPTIME_INFINITE;
    u32_t due = V2S_LIST_ENTRY(n, struct stack_timeout, node)->due, now = sys_now();
    return stack_time_before(now, due) ? due - now : 0;
}

/* --- lwIP's cyclic timers --- */

enum { STACK_CYCLIC_MAX = 8 };

struct stack_cyclic {
    struct stack_timeout timeout;
    const struct lwip_cyclic_timer *timer;
};

static struct stack_cyclic stack_cyclics[STACK_CYCLIC_MAX];

/* Every interval from when it was due, or from now when the loop fell that far behind (as lwIP's
 * own cyclic timers do). */
static void stack_cyclic_run(void *arg)
{
    struct stack_cyclic *c = arg;
    c->timer->handler();
    u32_t next = c->timeout.due + c->timer->interval_ms, now = sys_now();
    if (stack_time_before(next, now))
        next = now + c->timer->interval_ms;
    stack_timeout_add(&c->timeout, next);
}

/* --- the TCP tick --- */

enum {
    STACK_TICK_GRID = 1000 / TCP_SLOW_INTERVAL, /* deadlines rounded up to whole seconds of tcp_ticks */
};
#define STACK_TICK_NO_DEADLINE UINT32_MAX

static struct {
    struct stack_timeout timeout; /* the next tick, while linked */
    int asleep;                   /* no connection needs the tick; tcp_ticks is behind the clock */
    unsigned count;               /* ticks run: tcp_slowtmr() on the odd ones, as in tcp_tmr() */
    u32_t slow_at;                /* sys_now() when tcp_ticks last moved */
} stack_tick;

/* Moves tcp_ticks on by the slow ticks that were skipped up to now, but for the last one when
 * a tick that moves it itself runs next. */
static void stack_tick_catch_up(u32_t now, int one_left)
{
    u32_t skipped = (now - stack_tick.slow_at) / TCP_SLOW_INTERVAL;
    if (one_left && skipped > 0)
        skipped--;
    tcp_ticks += skipped;
    stack_tick.slow_at += skipped * TCP_SLOW_INTERVAL;
}

/* Slow ticks from now until lwIP's test `(u32_t)(tcp_ticks - pcb->tmr) > limit` holds: 0 if it
 * does already. */
static u32_t stack_tick_until(const struct tcp_pcb *pcb, u32_t limit)
{
    u32_t quiet = tcp_ticks - pcb->tmr;
    return quiet > limit ? 0 : limit - quiet + 1;
}

/* Whether pcb (on tcp_active_pcbs) has something on the tick's timers other than a deadline
 * (the list at the top of this file). */
static int stack_tick_pcb_busy(const struct tcp_pcb *pcb)
{
    if (pcb->state != ESTABLISHED && pcb->state != CLOSE_WAIT && pcb->state != FIN_WAIT_2)
        return 1;
    if (pcb->unacked || pcb->unsent || pcb->refused_data || pcb->persist_backoff || pcb->nrtx >= TCP_MAXRTX)
        return 1;
#if TCP_QUEUE_OOSEQ
    if (pcb->ooseq)
        return 1;
#endif
    if (pcb->flags & (TF_ACK_DELAY | TF_ACK_NOW | TF_CLOSEPEND))
        return 1;
#if LWIP_CALLBACK_API
    if (pcb->poll)
        return 1;
#endif
    return 0;
}

/* 1 when some connection needs the tick now; else 0, and *wait is how many slow ticks away the
 * first deadline is, or STACK_TICK_NO_DEADLINE. The limits are tcp_slowtmr()'s own (with
 * LWIP_TCP_KEEPALIVE, the pcb's keepalive fields). Busy connections sit at the front of
 * tcp_active_pcbs (tcp_input() moves the one a segment is for there), so while one is this
 * returns early.
 *
 * On the way, an idle connection's retransmission timer is stopped (rtime -1), as lwIP stops it
 * itself when the last data is acknowledged: tcp.c's first-flight timer restarts it (rtime 0)
 * even when nothing is in flight, and its count, frozen while the tick sleeps (counting on while
 * it ran: lwIP's own driver), would make the first segment sent after the idle spell time out
 * too early (on lwIP's own driver, at once: the next slow tick resent it). */
static int stack_tick_needed(u32_t *wait)
{
    u32_t first = STACK_TICK_NO_DEADLINE;
    struct tcp_pcb *pcb;
    for (pcb = tcp_active_pcbs; pcb; pcb = pcb->next) {
        if (stack_tick_pcb_busy(pcb))
            return 1;
        pcb->rtime = -1;
        u32_t until = STACK_TICK_NO_DEADLINE;
        if (pcb->state == FIN_WAIT_2) {
            if (pcb->flags & TF_RXCLOSED)
                until = stack_tick_until(pcb, TCP_FIN_WAIT_TIMEOUT / TCP_SLOW_INTERVAL);
        } else if (ip_get_option(pcb, SOF_KEEPALIVE)) {
            until = stack_tick_until(pcb, (pcb->keep_idle + pcb->keep_cnt_sent * pcb->keep_intvl) /
                                              TCP_SLOW_INTERVAL);
            u32_t end = stack_tick_until(pcb, (pcb->keep_idle + pcb->keep_cnt * pcb->keep_intvl) / TCP_SLOW_INTERVAL);
            if (end < until)
                until = end;
        }
        if (until == 0)
            return 1;
        if (until < first)
            first = until;
    }
    for (const struct tcp_pcb *tw = tcp_tw_pcbs; tw; tw = tw->next) {
        u32_t until = stack_tick_until(tw, 2 * TCP_MSL / TCP_SLOW_INTERVAL);
        if (until == 0)
            return 1;
        if (until < first)
            first = until;
    }
    *wait = first;
    return 0;
}

/* After a tick: the next one in TCP_TMR_INTERVAL while a connection needs it; else none, or one
 * at the first deadline, and tcp_ticks stands still until then or the next touch. */
static void stack_tick_plan(u32_t now)
{
    u32_t wait;
    if (stack_tick_needed(&wait)) {
        stack_timeout_add(&stack_tick.timeout, now + TCP_TMR_INTERVAL);
        return;
    }
    stack_tick.asleep = 1;
    if (wait == STACK_TICK_NO_DEADLINE)
        return;
    u32_t at = tcp_ticks + wait;
    at += (STACK_TICK_GRID - at % STACK_TICK_GRID) % STACK_TICK_GRID;
    stack_timeout_add(&stack_tick.timeout, stack_tick.slow_at + (at - tcp_ticks) * TCP_SLOW_INTERVAL);
}

/* Two holes in lwIP 2.1.3's persist timer (the one that probes a shut window), mended before each
 * tcp_slowtmr(), in a walk of the pcbs it walks right after:
 *   - It is stopped only in tcp_output() on its way to send the head of unsent, and tcp_slowtmr()
 *     asserts that a running one has something unsent. A probe carries the first byte of unsent,
 *     so when that segment is a single byte (an application's 1-byte write while the window is
 *     shut) and the peer takes and acknowledges the probe, the ACK frees the last unsent segment
 *     with the timer still running, and the next slow tick aborted the process, every connection
 *     with it: a peer that opened its window and lost the update, or a hostile one that
 *     acknowledges the byte and keeps its window shut (stack_input_probe_byte_acked). Stopped
 *     here, as tcp_output() would have once the window opened; a later write starts it again.
 *   - A probe the peer answers resets its count, so a pcb whose peer keeps its window shut lives
 *     as long as the peer answers. While the bridge lives, that is its application's to end; but
 *     once both ends have closed the bridge lets go of the pcb (tcp_close.c), and lwIP ends those
 *     left in LAST_ACK 2 * TCP_MSL after the close (its pcb->tmr stops at the close), not those in
 *     CLOSING (our FIN unacknowledged when the peer's came): a peer could keep any number of them,
 *     each with its unsent data and the TCP tick running, past any cap on open connections
 *     (stack_input_closing_zero_window). Such a pcb is reset after the same 2 * TCP_MSL, as Linux
 *     gives up an orphan's probes after about two minutes. */
static void stack_tick_persist_check(void)
{
    struct tcp_pcb *pcb = tcp_active_pcbs;
    while (pcb) {
        struct tcp_pcb *next = pcb->next;
        if (pcb->persist_backoff > 0 && !pcb->unsent)
            pcb->persist_backoff = 0;
        if (pcb->persist_backoff > 0 && pcb->state == CLOSING && (pcb->flags & TF_RXCLOSED) &&
            (u32_t)(tcp_ticks - pcb->tmr) > 2 * TCP_MSL / TCP_SLOW_INTERVAL)
            tcp_abort(pcb); /* its callbacks were cleared when it was let go */
        pcb = next;
    }
}

static void stack_tick_run(void *arg)
{
    (void)arg;
    u32_t now = sys_now();
    if (stack_tick.asleep) {
        /* A deadline: tcp_ticks moves on by the ticks slept through, this one a slow tick. */
        stack_tick.asleep = 0;
        stack_tick_catch_up(now, 1);
        stack_tick.count &= ~1u;
    }
    tcp_fasttmr();
    if (++stack_tick.count & 1) {
        stack_tick_persist_check();
        tcp_slowtmr();
        stack_tick.slow_at = now;
    }
    stack_tick_plan(now);
}

void stack_timers_tcp_touched(void)
{
    if (!stack_tick.asleep)
        return;
    u32_t now = sys_now();
    stack_tick.asleep = 0;
    stack_tick_catch_up(now, 0);
    v2s_list_remove(&stack_tick.timeout.node);
    stack_timeout_add(&stack_tick.timeout, now + TCP_TMR_INTERVAL);
}

int stack_timers_tcp_awake(void)
{
    return !stack_tick.asleep;
}

/* lwip_init() calls this (again for each new stack): the cyclic timers from now, the TCP tick
 * asleep until a connection is touched. Timeouts set by sys_timeout() stay. */
void sys_timeouts_init(void)
{
    u32_t now = sys_now();
    LWIP_ASSERT("more cyclic timers than STACK_CYCLIC_MAX", lwip_num_cyclic_timers <= STACK_CYCLIC_MAX);
    for (int i = 0; i < lwip_num_cyclic_timers && i < STACK_CYCLIC_MAX; i++) {
        struct stack_cyclic *c = &stack_cyclics[i];
        if (c->timer)
            v2s_list_remove(&c->timeout.node);
        if (lwip_cyclic_timers[i].handler == tcp_tmr)
            continue;
        c->timer = &lwip_cyclic_timers[i];
        v2s_list_init(&c->timeout.node);
        c->timeout.fn = stack_cyclic_run;
        c->timeout.arg = c;
        stack_timeout_add(&c->timeout, now + c->timer->interval_ms);
    }
    if (stack_tick.timeout.fn)
        v2s_list_remove(&stack_tick.timeout.node);
    v2s_list_init(&stack_tick.timeout.node);
    stack_tick.timeout.fn = stack_tick_run;
    stack_tick.asleep = 1;
    stack_tick.slow_at = now;
}
