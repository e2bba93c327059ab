/* Platform glue for lwIP on Linux/glibc (included by lwip/arch.h). */
#ifndef VPN2SOCKS_ARCH_CC_H
#define VPN2SOCKS_ARCH_CC_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>

/* lwIP asserts guard its own invariants; a violated one is a bug in us or in lwIP, not bad input
 * from the network (lwIP checks that separately), so stop loudly rather than corrupt state. */
void stack_lwip_assert(const char *msg, const char *file, int line);
#define LWIP_PLATFORM_ASSERT(x) stack_lwip_assert((x), __FILE__, __LINE__)
#define LWIP_PLATFORM_DIAG(x) do { printf x; } while (0)

/* errno values come from the system so lwIP's and ours agree. */
#define LWIP_ERRNO_STDINCLUDE 1

#endif
