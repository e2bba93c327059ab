/* The small OS layer lwIP needs with NO_SYS=1: a millisecond clock, randomness, assertions. */
#include <malloc.h>
#include <stdlib.h>
#include <sys/random.h>

#include <uv.h>

#include "app/log.h"
#include "lwip/sys.h"
#include "stack/internal.h"
#include "stack/sys_clock.h"

static uv_loop_t *clock_loop;
static uint32_t (*clock_override)(void); /* tests only (stack/sys_clock.h) */

void stack_sys_init(uv_loop_t *loop)
{
    clock_loop = loop;
}

void stack_sys_set_clock(uint32_t (*now)(void))
{
    clock_override = now;
}

/* lwIP's timers run on the loop's clock, which the loop refreshes once per iteration. */
u32_t sys_now(void)
{
    if (clock_override)
        return (u32_t)clock_override();
    return (u32_t)uv_now(clock_loop);
}

/* lwIP's heap (lwipopts.h routes mem_clib_malloc and friends here): every pbuf, pcb and segment,
 * counted in what the allocator really gave, so that small buffers count their overhead too. */
static size_t mem_in_use;

void *stack_mem_malloc(size_t size)
{
    void *p = malloc(size);
    if (p)
        mem_in_use += malloc_usable_size(p);
    return p;
}

void *stack_mem_calloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p)
        mem_in_use += malloc_usable_size(p);
    return p;
}

void stack_mem_free(void *p)
{
    if (p)
        mem_in_use -= malloc_usable_size(p);
    free(p);
}

size_t stack_mem_bytes(void)
{
    return mem_in_use;
}

static uint32_t (*random_fn)(void);

void stack_sys_set_random(uint32_t (*random)(void))
{
    random_fn = random;
}

unsigned int stack_random(void)
{
    if (random_fn)
        return random_fn();
    unsigned int v;
    /* getrandom() for a word never blocks after boot and never returns short. */
    if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
        abort();
    return v;
}

void stack_lwip_assert(const char *msg, const char *file, int line)
{
    v2s_error("lwIP assertion failed: %s (%s:%d)", msg, file, line);
    abort();
}
