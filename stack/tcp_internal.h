/* Shared by the files of the TCP bridge only (tcp.c, tcp_recv.c, tcp_send.c, tcp_close.c,
 * tcp_budget.c, tcp_listen.c): the connection object and the calls between its parts. Each part's guarantees
 * are at the top of its file; tcp.c's opening comment says which file does what. */
#ifndef VPN2SOCKS_STACK_TCP_INTERNAL_H
#define VPN2SOCKS_STACK_TCP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "base/addr.h"
#include "base/list.h"
#include "lwip/err.h"
#include "stack/internal.h"
#include "stack/tcp.h"

struct pbuf;
struct tcp_pcb;

enum stack_tcp_state {
    STACK_TCP_CONNECTING, /* SYN sent; connect_cb pending */
    STACK_TCP_CONNECTED,  /* connect_cb ran, or a listener accepted it; waiting for
                           * stack_tcp_bridge_start(), what arrives meanwhile held in rxq */
    STACK_TCP_BRIDGED,    /* relaying */
    STACK_TCP_CLOSING,    /* the application handle is closing; freed in its close callback */
};

/* Where a connection's FIN is in the pacing of closes (tcp_close.c). */
enum stack_tcp_fin {
    STACK_TCP_FIN_NONE,    /* not asked for, or out of the pacing's hands */
    STACK_TCP_FIN_WAITING, /* the application closed; on the stack's wait list */
    STACK_TCP_FIN_FLIGHT,  /* sent, holding one of the STACK_TCP_FIN_WINDOW slots */
};

struct stack_tcp {
    struct stack *s;
    struct v2s_list node; /* on the stack's list of every connection */
    struct tcp_pcb *pcb;  /* NULL once lwIP freed it or we let it go */
    enum stack_tcp_state state;
    struct v2s_addr dst;
    uint16_t dport;
    uint16_t sport;
    stack_tcp_connect_cb connect_cb;
    void *arg;

    uv_tcp_t *app;
    stack_tcp_done_cb done;
    void *done_arg;
    char label[320];
    uint8_t *pending; /* application bytes lwIP could not take yet */
    size_t pending_len;
    size_t pending_off;
    struct stack_tcp_write *writing; /* the one uv_write() to the application in flight */
    struct stack_tcp_rx *rxq; /* received, not yet handed to the application (grown as needed) */
    unsigned n_rxq, cap_rxq;
    uint32_t coalesce_size; /* size of rxq's last entry when it is our buffer of small segments */
    uint32_t coalesce_room; /* and its free bytes */
    size_t held;           /* memory held for the application: rxq and the write in flight */
    size_t budget;         /* held for the application plus offered to the peer, at most */
    size_t withheld;       /* the rest of lwIP's window: not given back by tcp_recved() */
    size_t since_grow;     /* bytes the application took since the budget last grew */
    struct v2s_list flush_node; /* on the stack's list of flushes (only while n_rxq > 0) */
    struct v2s_list ride_node;  /* on the stack's ack_rides from the handshake to the end of its
                                 * loop iteration (tcp_send.c) */
    struct v2s_list refill_node; /* on the stack's refills while reading waits for lwIP to send
                                  * (tcp_send.c) */
    uv_shutdown_t shutdown_req;
    enum stack_tcp_fin fin;
    struct v2s_list fin_node; /* on the stack's fin_wait or fin_flight list (as fin says) */
    uint64_t fin_sent_ms;
    uint32_t syn_sent_ms; /* sys_now() when the SYN left: the handshake's round-trip sample */
    uint64_t syn_sent_us; /* and stack_now_us(), for rtt_us */
    uint32_t rtt_us;      /* the handshake's round trip, from our SYN or, accepted, from our
                           * SYN-ACK (0: not known; tcp_budget.c) */
    uint64_t grow_us;     /* when since_grow started counting (tcp_budget.c) */
    unsigned syn_tries;   /* SYNs sent */
    unsigned flight : 1;  /* in the first flight: its retransmissions are ours (see tcp.c) */
    uint32_t flight_ms;   /* the first flight's retransmission timeout */
    uint32_t first_ack;   /* lastack and rcv_nxt right after the handshake */
    uint32_t first_rcv;
    uint8_t probe_backoff; /* the pcb's persist_backoff and persist_cnt when last looked at */
    uint8_t probe_cnt;
    uint64_t bytes_up;   /* application -> tunnel */
    uint64_t bytes_down; /* tunnel -> application */
    unsigned reading : 1;
    unsigned app_eof : 1;       /* the application half-closed (or we stopped taking its data) */
    unsigned tx_shut : 1;       /* our FIN is queued in lwIP */
    unsigned remote_fin : 1;    /* the remote end half-closed */
    unsigned app_shut_sent : 1; /* the application's write side shut, or uv_shutdown() issued */
    unsigned app_shut_done : 1;
    unsigned reset : 1;         /* ended by a reset or an error, not by two FINs */
    unsigned aborted : 1;       /* we called tcp_abort(): an lwIP callback must return ERR_ABRT */
};

/* A received buffer and the memory it is counted as (see "Memory" in tcp_recv.c). */
struct stack_tcp_rx {
    struct pbuf *p;
    uint32_t cost;
};

/* The uv_write() to the application, holding the buffers it came from. */
struct stack_tcp_write {
    uv_write_t req;
    struct stack_tcp *c;
    size_t len;
    size_t held;
    unsigned n;
    struct stack_tcp_rx *rx;
};

/* Counts memory held for c's application, for c and for the whole stack. */
static inline void stack_tcp_hold(struct stack_tcp *c, size_t add, size_t sub)
{
    struct stack *s = c->s;
    c->held = c->held + add - sub;
    s->rx_held = s->rx_held + add - sub;
    if (s->rx_held > s->rx_held_peak)
        s->rx_held_peak = s->rx_held;
}

/* tcp.c: a connection for the pcb a listener's handshake just completed (tcp_listen.c), set up
 * as stack_tcp_connect()'s are once connected, with rtt_us as its handshake's round trip (0: not
 * known), on the stack's list; NULL when out of memory. */
struct stack_tcp *stack_tcp_adopt(struct stack *s, struct tcp_pcb *pcb, uint32_t rtt_us);
/* tcp.c: the first flight's retransmissions are over; lwIP's timer from now on. */
void stack_tcp_flight_stop(struct stack_tcp *c);
/* tcp.c: takes c off the stack's list of connections (its budget and count with it). */
void stack_tcp_unlink(struct stack_tcp *c);
/* tcp_send.c: the look for zero-window probes runs while there are connections. */
void stack_tcp_probe_look_start(struct stack *s);
void stack_tcp_probe_look_stop(struct stack *s);

/* tcp_recv.c, tunnel to application. */
err_t stack_tcp_on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err);
/* The bridge started: what arrived before it goes to the application at the end of this loop
 * iteration. */
void stack_tcp_deliver_held(struct stack_tcp *c);
/* Frees what was gathered for the application (and its count). */
void stack_tcp_free_rxq(struct stack_tcp *c);

/* tcp_send.c, application to tunnel. */
err_t stack_tcp_on_sent(void *arg, struct tcp_pcb *pcb, u16_t len);
/* Copies application bytes into lwIP: how many it took, or a negative uv error. */
ssize_t stack_tcp_push(struct stack_tcp *c, const uint8_t *data, size_t len);
/* Reads the application again if lwIP can take a useful amount. */
void stack_tcp_read_start(struct stack_tcp *c);

/* tcp_send.c: from the connected callback, once bridged: the handshake's ACK, which lwIP sends
 * (held, stack.c) when the callback returns, rides on the application's first bytes if they are
 * there by the end of the loop iteration. */
void stack_tcp_ack_ride_start(struct stack_tcp *c);

/* tcp_close.c, closing and its pacing. */
/* Lets go of the pcb (abort: with a reset). */
void stack_tcp_release_pcb(struct stack_tcp *c, int abort);
/* Lets go of the pcb once both FINs are through. */
void stack_tcp_maybe_release(struct stack_tcp *c);
/* Ends the bridge (reset: both sides see one); c is freed in the application's close callback. */
void stack_tcp_end(struct stack_tcp *c, int reset);
/* Ends the bridge once both directions closed cleanly. */
void stack_tcp_maybe_finish(struct stack_tcp *c);
/* In the receive callback for the remote end's FIN: its ACK waits for ours (or the next tick). */
void stack_tcp_remote_fin_ack_later(struct stack_tcp *c, struct tcp_pcb *pcb);
/* Passes the remote end's FIN to the application once every byte before it went. */
void stack_tcp_maybe_shutdown_app(struct stack_tcp *c);
/* The application closed its write direction: our FIN, now or when the pacing gives a slot. */
void stack_tcp_shut_tx(struct stack_tcp *c);

/* tcp_budget.c, memory and fair shares. */
/* After the handshake: offer only the starting budget. */
void stack_tcp_budget_start(struct stack_tcp *c, struct tcp_pcb *pcb);
/* Sets c's budget (counted for the stack too). */
void stack_tcp_set_budget(struct stack_tcp *c, size_t budget);
/* Opens c's window by what its application took, within its budget (grown or cut first). */
void stack_tcp_open_window(struct stack_tcp *c);
/* A connection ended: hands the heap's free pages back when it shrank enough. */
void stack_tcp_trim(struct stack *s);

#endif
