/* app/loop_exit.c: the stop leaves the loop once only thread pool requests keep it running (a
 * host name lookup that a silent DNS server holds for its timeouts), and never cuts short a handle
 * that is still active. The lookup is played by a work request that blocks until released. */
#include <semaphore.h>
#include <string.h>

#include <uv.h>

#include "app/loop_exit.h"
#include "test.h"

struct blocked {
    uv_work_t req;
    sem_t release;
    int worked, done;
};

static void blocked_work(uv_work_t *req)
{
    struct blocked *b = req->data;
    sem_wait(&b->release);
    b->worked = 1;
}

static void blocked_done(uv_work_t *req, int status)
{
    struct blocked *b = req->data;
    ASSERT_EQ(status, 0);
    b->done = 1;
}

static int timer_fired;

static void exit_timer_cb(uv_timer_t *t)
{
    timer_fired++;
    uv_close((uv_handle_t *)t, NULL);
}

TEST_IMPL(loop_exit_leaves_lookups)
{
    uv_loop_t loop;
    struct loop_exit e;
    struct blocked b;
    uv_timer_t busy;
    memset(&e, 0, sizeof(e));
    memset(&b, 0, sizeof(b));
    ASSERT_EQ(uv_loop_init(&loop), 0);
    ASSERT_EQ(sem_init(&b.release, 0, 0), 0);
    b.req.data = &b;
    ASSERT_EQ(uv_queue_work(&loop, &b.req, blocked_work, blocked_done), 0);
    /* A handle still at work when the stop begins (300 ms: three looks) is waited for. */
    uv_timer_init(&loop, &busy);
    uv_timer_start(&busy, exit_timer_cb, 3 * LOOP_EXIT_CHECK_MS, 0);
    loop_exit_arm(&e, &loop);
    loop_exit_arm(&e, &loop); /* once only */
    /* Without the watch this run waits for the work, which is released only after it returns. */
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ(timer_fired, 1);
    ASSERT_EQ(b.worked, 0);
    ASSERT_EQ(loop_exit_finish(&e), 1);
    ASSERT_EQ(loop_exit_finish(&e), 0);
    /* The process would _exit() here; the test lets the work end to leave nothing behind. */
    sem_post(&b.release);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ(b.done, 1);
    ASSERT_EQ(uv_loop_close(&loop), 0);
    sem_destroy(&b.release);
    return 0;
}

/* A loop that ends by itself is not stopped, and the watch closes without a trace. */
TEST_IMPL(loop_exit_nothing_left)
{
    uv_loop_t loop;
    struct loop_exit e;
    uv_timer_t busy;
    memset(&e, 0, sizeof(e));
    timer_fired = 0;
    ASSERT_EQ(uv_loop_init(&loop), 0);
    uv_timer_init(&loop, &busy);
    uv_timer_start(&busy, exit_timer_cb, 2 * LOOP_EXIT_CHECK_MS + LOOP_EXIT_CHECK_MS / 2, 0);
    loop_exit_arm(&e, &loop);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ(timer_fired, 1);
    ASSERT_EQ(loop_exit_finish(&e), 0);
    ASSERT_EQ(uv_loop_close(&loop), 0);
    /* Never armed: nothing to close. */
    memset(&e, 0, sizeof(e));
    ASSERT_EQ(loop_exit_finish(&e), 0);
    return 0;
}

/* The exit status when a stop is asked for while an earlier one waits for the loop's next turn:
 * a tunnel lost (3), then SIGTERM (0) in the same turn exits 3, the first reason given. */
TEST_IMPL(loop_exit_code_first_reason)
{
    static const struct {
        int pending, pending_code, code, want;
    } cases[] = {
        {0, 0, 0, 0}, /* SIGTERM alone */
        {0, 0, 3, 3}, /* the deferred stop itself (its timer is no longer active) */
        {1, 3, 0, 3}, /* tunnel lost, then SIGTERM in the same turn */
        {1, 2, 0, 2}, /* authentication failed, then SIGTERM */
        {1, 3, 1, 3}, /* tunnel lost, then a failure at startup */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ASSERT_EQ(loop_exit_code(cases[i].pending, cases[i].pending_code, cases[i].code), cases[i].want);
    return 0;
}
