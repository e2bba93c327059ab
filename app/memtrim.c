/* Heap trimming. Only glibc needs it (and has malloc_trim); other C libraries and the sanitizers'
 * allocators manage their own pages, and there this is a timer that does nothing. */
#include "app/memtrim.h"

#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
#include <malloc.h>
#define MEMTRIM_GLIBC 1
#endif

int memtrim_check(struct memtrim *m, int anyway)
{
#if defined(MEMTRIM_GLIBC) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
    /* fordblks: free bytes inside the heap, given back to the system or not. */
    size_t free_bytes = mallinfo2().fordblks;
    if (free_bytes < m->base)
        m->base = free_bytes;
    if (free_bytes <= MEMTRIM_SLACK || (!anyway && free_bytes - m->base <= MEMTRIM_SLACK))
        return 0;
    malloc_trim(0);
    m->base = free_bytes;
    m->trims++;
    return 1;
#else
    (void)m;
    (void)anyway;
    return 0;
#endif
}

static void memtrim_tick(uv_timer_t *t)
{
    struct memtrim *m = t->data;
    int anyway = ++m->ticks >= MEMTRIM_ANYWAY_MS / MEMTRIM_INTERVAL_MS;
    if (memtrim_check(m, anyway))
        m->ticks = 0;
}

int memtrim_init(struct memtrim *m, uv_loop_t *loop)
{
    m->base = 0;
    m->ticks = 0;
    m->trims = 0;
    int rc = uv_timer_init(loop, &m->timer);
    if (rc < 0)
        return rc;
    m->timer.data = m;
    uv_unref((uv_handle_t *)&m->timer);
    return uv_timer_start(&m->timer, memtrim_tick, MEMTRIM_INTERVAL_MS, MEMTRIM_INTERVAL_MS);
}

void memtrim_close(struct memtrim *m)
{
    uv_close((uv_handle_t *)&m->timer, NULL);
}
