/* Tests only: the clock lwIP's timers run on. */
#ifndef VPN2SOCKS_STACK_SYS_CLOCK_H
#define VPN2SOCKS_STACK_SYS_CLOCK_H

#include <stdint.h>

/* Tests only. Makes sys_now() (lwIP's clock, and so every lwIP timer) read now() instead of the
 * loop's clock, so a test can run retransmission timeouts of seconds in virtual time; NULL goes
 * back to the loop's clock. The test then runs lwIP's timeouts itself (sys_check_timeouts()) as
 * its clock advances. */
void stack_sys_set_clock(uint32_t (*now)(void));
/* Tests only. Makes stack_random() (lwIP's ISNs and ports, the stack's retransmission jitter)
 * return random() instead, so that a seeded run replays exactly; NULL goes back to getrandom(). */
void stack_sys_set_random(uint32_t (*random)(void));

#endif
