/* The TCP tick as the rest of stack/ sees it (stack/timers.c; lwIP's timeouts are lwip/timeouts.h). */
#ifndef VPN2SOCKS_STACK_TIMERS_H
#define VPN2SOCKS_STACK_TIMERS_H

/* 1 while lwIP's TCP tick runs, 0 while it sleeps: no connection then has anything on lwIP's
 * retransmission, persist or delayed-ACK timers, and none will until a connection is touched,
 * which wakes the tick before the loop sleeps again. */
int stack_timers_tcp_awake(void);

#endif
