/* lwIP hooks (LWIP_HOOK_FILENAME in lwipopts.h): compiled into lwIP's own sources. */
#ifndef VPN2SOCKS_LWIP_HOOKS_H
#define VPN2SOCKS_LWIP_HOOKS_H

#include "lwip/arch.h"
#include "lwip/err.h"
#include "lwip/ip_addr.h"

struct pbuf;
struct tcp_pcb;
struct tcp_hdr;

/* stack/stack.c: lwIP's TCP input hook, before lwIP processes a segment of pcb: an IPv4 segment
 * reassembled past its IP length (dropped), its MSS option (kept on a SYN only, raised to a
 * floor there), loss recovery (recovery.c). ERR_OK, or ERR_MEM to drop it. */
err_t stack_hook_tcp_input(struct tcp_pcb *pcb, struct tcp_hdr *hdr, u16_t optlen, u16_t opt1len,
                           const u8_t *opt2, struct pbuf *p);

/* stack/tcp_ooseq.c: joins neighbouring out-of-order segments of pcb into one; 1 when the
 * segment (header hdr, data p) brings nothing ooseq does not already hold: it was acknowledged
 * at once, and lwIP must drop it. */
int stack_tcp_ooseq_input(struct tcp_pcb *pcb, const struct tcp_hdr *hdr, const struct pbuf *p);

/* stack/recovery.c and recovery_timer.c: SACK-based loss recovery for what lwIP sends. */
void stack_recovery_init(void);
/* Loss recovery episodes and segments it resent since the process started, how many of those
 * resends were lost again, and how often a repeated SYN-ACK made us resend at once. */
void stack_recovery_stats(unsigned long *episodes, unsigned long *resent, unsigned long *lost_resends,
                          unsigned long *synack_resends);
/* Resends by the recovery timer, lwIP retransmission timeouts on connections with SACK, and tail
 * loss probes. */
void stack_recovery_timer_stats(unsigned long *timer_resends, unsigned long *timeouts, unsigned long *tail_probes);
err_t stack_recovery_input(struct tcp_pcb *pcb, const struct tcp_hdr *hdr, u16_t optlen, u16_t opt1len,
                           const u8_t *opt2);

/* The output hook: a pure ACK gets a sequence number inside the peer's window. Returns opts. */
u32_t *stack_recovery_output(struct pbuf *p, struct tcp_hdr *hdr, const struct tcp_pcb *pcb, u32_t *opts);

/* stack/timers.c: a connection was touched (a segment in, something queued or sent): the TCP
 * tick runs again, and tcp_ticks is brought up to the clock first if it slept. */
void stack_timers_tcp_touched(void);

/* stack/sys.c: RFC 6528 initial sequence numbers (LWIP_HOOK_TCP_ISN). */
u32_t stack_tcp_isn(const ip_addr_t *local_ip, u16_t local_port, const ip_addr_t *remote_ip, u16_t remote_port);

#endif
