/* Gives the heap's free pages back to the system after load, on a timer. The stack also trims
 * when a connection ends after its heap fell far (stack/tcp_budget.c), but memory freed later,
 * with no connection ending (TCP control blocks leaving TIME_WAIT two minutes after the load, the
 * direct relays' buffers, OpenSSL's), stayed resident: the 10-minute soak (tests/lab/soak.sh)
 * ended 16.1 % above its level after the first round without this, 2.0 % with it, both measured
 * once TIME_WAIT had passed, with 120 bytes in lwIP's heap each time. */
#ifndef VPN2SOCKS_APP_MEMTRIM_H
#define VPN2SOCKS_APP_MEMTRIM_H

#include <stddef.h>

#include <uv.h>

enum {
    /* How often the heap is looked at. */
    MEMTRIM_INTERVAL_MS = 5 * 1000,
    /* Free bytes the heap may gain before they are given back: below this, trimming gains little
     * and the next burst would fault the pages back in. */
    MEMTRIM_SLACK = 1024 * 1024,
    /* A trim walks every free chunk (15 ms for 100,000 of them in a 320 MB heap, measured), so it
     * runs when the free bytes grew, and otherwise at most this often: load that came and went
     * between two looks reuses free chunks without changing their total. */
    MEMTRIM_ANYWAY_MS = 60 * 1000,
};

struct memtrim {
    uv_timer_t timer;
    size_t base;              /* free bytes after the last trim, or the least seen since */
    unsigned ticks;           /* looks since the last trim */
    unsigned long long trims; /* how many times memory was given back */
};

/* Starts the check; the timer does not keep the loop alive. 0 or a UV_E* code. */
int memtrim_init(struct memtrim *m, uv_loop_t *loop);
void memtrim_close(struct memtrim *m);

/* One look at the heap: gives its free pages back when it holds more than MEMTRIM_SLACK free bytes
 * and either they grew by that much since the last trim or `anyway` is set. 1 if it trimmed, 0 if
 * not (or the C library has no way to). */
int memtrim_check(struct memtrim *m, int anyway);

#endif
