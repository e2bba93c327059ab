/* Connection caps. A cap that is reached says so once, not once per refused connection: a client
 * that retries in a loop (or a flood of thousands) must not turn the log into the next thing that
 * fills up. The first refusal writes a line; later ones are counted and reported at most once per
 * CONN_LIMIT_LOG_INTERVAL_MS, and only while refusals go on. */
#include "base/conn_limit.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"

void conn_limit_init(struct conn_limit *l, unsigned max, const char *what, const char *option)
{
    memset(l, 0, sizeof(*l));
    l->max = max;
    snprintf(l->what, sizeof(l->what), "%s", what);
    l->option = option;
}

static int conn_limit_full(const struct conn_limit *l)
{
    return l && l->max > 0 && l->count >= l->max;
}

static void conn_limit_refuse(struct conn_limit *l, uint64_t now_ms)
{
    l->refused++;
    l->refused_total++;
    if (l->lines > 0 && now_ms - l->last_log_ms < CONN_LIMIT_LOG_INTERVAL_MS)
        return;
    if (l->lines == 0)
        v2s_warn("%s: %u connections, its cap (%s): new connections are refused (reset at once) until some close",
                 l->what, l->max, l->option);
    else
        v2s_warn("%s: still at its cap of %u connections (%s): %llu refused since the last notice",
                 l->what, l->max, l->option, (unsigned long long)l->refused);
    l->lines++;
    l->last_log_ms = now_ms;
    l->refused = 0;
}

int conn_limit_take(struct conn_limit *l, struct conn_limit *shared, uint64_t now_ms)
{
    struct conn_limit *full = conn_limit_full(l) ? l : conn_limit_full(shared) ? shared : NULL;
    if (full) {
        conn_limit_refuse(full, now_ms);
        return -EBUSY;
    }
    l->count++;
    if (shared)
        shared->count++;
    return 0;
}

void conn_limit_give(struct conn_limit *l, struct conn_limit *shared)
{
    if (l->count > 0)
        l->count--;
    if (shared && shared->count > 0)
        shared->count--;
}
