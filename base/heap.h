/* The process's heap: how many free bytes it holds, and handing its free pages back to the
 * system. glibc's free() returns memory only from the top of the heap; what is freed between live
 * blocks stays resident until malloc_trim(). Other C libraries and the sanitizers' allocators
 * manage their own pages: there both calls do nothing. */
#ifndef VPN2SOCKS_BASE_HEAP_H
#define VPN2SOCKS_BASE_HEAP_H

#include <stddef.h>

/* Free bytes inside the heap, handed back or not; 0 where the C library cannot tell. */
size_t v2s_heap_free_bytes(void);
/* Hands the heap's free pages back. 1 if it could, 0 if not. */
int v2s_heap_trim(void);

#endif
