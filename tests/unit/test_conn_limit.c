/* base/conn_limit.c: slots in a listener's cap and the shared one, and one log line per episode. */
#include <errno.h>

#include "base/conn_limit.h"
#include "test.h"

TEST_IMPL(conn_limit_caps)
{
    struct conn_limit a, b, all;
    conn_limit_init(&a, 3, "listener a", "--listener-max-connections");
    conn_limit_init(&b, 3, "listener b", "--listener-max-connections");
    conn_limit_init(&all, 4, "all", "--max-connections");

    /* The listener's own cap. */
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(conn_limit_take(&a, &all, 0), 0);
    ASSERT_EQ(conn_limit_take(&a, &all, 0), -EBUSY);
    ASSERT_EQ(a.count, 3);
    ASSERT_EQ(all.count, 3);
    ASSERT_EQ(a.refused_total, 1);
    ASSERT_EQ(all.refused_total, 0);

    /* The shared cap: b has room of its own, but all is full after one. */
    ASSERT_EQ(conn_limit_take(&b, &all, 0), 0);
    ASSERT_EQ(conn_limit_take(&b, &all, 0), -EBUSY);
    ASSERT_EQ(b.count, 1);
    ASSERT_EQ(all.count, 4);
    ASSERT_EQ(all.refused_total, 1);
    ASSERT_EQ(b.refused_total, 0);

    /* A slot given back by a is usable by b. */
    conn_limit_give(&a, &all);
    ASSERT_EQ(conn_limit_take(&b, &all, 0), 0);
    ASSERT_EQ(b.count, 2);
    ASSERT_EQ(all.count, 4);

    /* No shared cap, and no cap at all. */
    struct conn_limit none;
    conn_limit_init(&none, 0, "uncapped", "--listener-max-connections");
    for (int i = 0; i < 10000; i++)
        ASSERT_EQ(conn_limit_take(&none, NULL, 0), 0);
    ASSERT_EQ(none.count, 10000);
    for (int i = 0; i < 10000; i++)
        conn_limit_give(&none, NULL);
    ASSERT_EQ(none.count, 0);
    conn_limit_give(&none, NULL); /* never below zero */
    ASSERT_EQ(none.count, 0);
    return 0;
}

/* A flood at the cap writes one line, then at most one a minute while refusals go on. */
TEST_IMPL(conn_limit_log_once)
{
    struct conn_limit l;
    conn_limit_init(&l, 1, "listener", "--listener-max-connections");
    ASSERT_EQ(conn_limit_take(&l, NULL, 1000), 0);
    ASSERT_EQ(l.lines, 0);
    uint64_t now = 1000;
    for (int i = 0; i < 100000; i++, now++) /* 100 s of refusals, one a millisecond */
        ASSERT_EQ(conn_limit_take(&l, NULL, now), -EBUSY);
    /* At 1000 ms, then at 61000 ms: two lines, the second counting what came between. */
    ASSERT_EQ(l.lines, 2);
    ASSERT_EQ(l.last_log_ms, 1000 + CONN_LIMIT_LOG_INTERVAL_MS);
    ASSERT_EQ(l.refused_total, 100000);
    ASSERT_EQ(l.refused, 100000 - 1 - CONN_LIMIT_LOG_INTERVAL_MS);

    /* Below the cap and back at it a little later: still within the minute, no new line. */
    conn_limit_give(&l, NULL);
    ASSERT_EQ(conn_limit_take(&l, NULL, now), 0);
    ASSERT_EQ(conn_limit_take(&l, NULL, now + 10), -EBUSY);
    ASSERT_EQ(l.lines, 2);
    /* Much later: a new episode gets its line. */
    ASSERT_EQ(conn_limit_take(&l, NULL, now + 10 * CONN_LIMIT_LOG_INTERVAL_MS), -EBUSY);
    ASSERT_EQ(l.lines, 3);
    ASSERT_EQ(l.refused, 0);
    return 0;
}
