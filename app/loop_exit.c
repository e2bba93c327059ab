/* Leaving a stopping loop that only lookups keep running (see loop_exit.h). */
#include "app/loop_exit.h"

#include "base/log.h"

static void loop_exit_check(uv_timer_t *t)
{
    struct loop_exit *e = t->data;
    uv_loop_t *loop = t->loop;
    /* The watch itself is unreferenced, so it is not counted among the active handles. Every
     * handle of ours is closed by now; a request with no handle behind it is a thread pool one. */
    if (loop->active_handles > 0 || loop->active_reqs.count == 0)
        return;
    e->left = loop->active_reqs.count;
    uv_stop(loop);
}

void loop_exit_arm(struct loop_exit *e, uv_loop_t *loop)
{
    if (e->armed)
        return;
    e->armed = 1;
    e->left = 0;
    uv_timer_init(loop, &e->timer);
    e->timer.data = e;
    uv_unref((uv_handle_t *)&e->timer);
    uv_timer_start(&e->timer, loop_exit_check, LOOP_EXIT_CHECK_MS, LOOP_EXIT_CHECK_MS);
}

unsigned loop_exit_finish(struct loop_exit *e)
{
    if (!e->armed)
        return 0;
    e->armed = 0;
    uv_close((uv_handle_t *)&e->timer, NULL);
    /* Runs the close, and the closes of the last iteration's callbacks, without waiting for the
     * requests (a NOWAIT run polls once and returns). */
    uv_run(e->timer.loop, UV_RUN_NOWAIT);
    if (e->left > 0)
        v2s_info("stopped without waiting for %u host name lookup%s still running", e->left,
                 e->left == 1 ? "" : "s");
    return e->left;
}

int loop_exit_code(int pending, int pending_code, int code)
{
    return pending ? pending_code : code;
}
