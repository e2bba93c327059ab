/* The heap's free pages handed back on a timer (base/heap.c does the handing back). */
#include "app/memtrim.h"

#include "base/heap.h"

int memtrim_check(struct memtrim *m, int anyway)
{
    size_t free_bytes = v2s_heap_free_bytes();
    if (free_bytes < m->base)
        m->base = free_bytes;
    if (free_bytes <= MEMTRIM_SLACK || (!anyway && free_bytes - m->base <= MEMTRIM_SLACK))
        return 0;
    if (!v2s_heap_trim())
        return 0;
    m->base = free_bytes;
    m->trims++;
    return 1;
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
