/* The unit test harness's assertions, in the style of libuv's test/task.h: a failed assertion
 * prints where and what, then aborts, which kills only this test's process. */
#ifndef VPN2SOCKS_TESTS_UNIT_TEST_H
#define VPN2SOCKS_TESTS_UNIT_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Defines a test function; declare it in test-list.h too. Tests return 0 or fail an ASSERT. */
#define TEST_IMPL(name)                                                                            \
    int unit_test_##name(void);                                                                    \
    int unit_test_##name(void)

#define TEST_FAIL_AT(...)                                                                          \
    do {                                                                                           \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                            \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
        fflush(stderr);                                                                            \
        abort();                                                                                   \
    } while (0)

#define ASSERT(expr)                                                                               \
    do {                                                                                           \
        if (!(expr))                                                                               \
            TEST_FAIL_AT("assertion failed: %s", #expr);                                           \
    } while (0)

/* Integer comparison that prints both sides. */
#define ASSERT_EQ(a, b)                                                                            \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_)                                                                              \
            TEST_FAIL_AT("%s == %s failed: %lld != %lld", #a, #b, a_, b_);                         \
    } while (0)

#define ASSERT_STR_EQ(a, b)                                                                        \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0)                                       \
            TEST_FAIL_AT("%s == %s failed: \"%s\" != \"%s\"", #a, #b, a_ ? a_ : "(null)",          \
                         b_ ? b_ : "(null)");                                                      \
    } while (0)

#define ASSERT_MEM_EQ(a, b, n)                                                                     \
    do {                                                                                           \
        if (memcmp((a), (b), (n)) != 0)                                                            \
            TEST_FAIL_AT("%s == %s (%zu bytes) failed", #a, #b, (size_t)(n));                      \
    } while (0)

/* Context for a failure inside a table-driven loop: which row it was. */
#define ASSERT_ROW(expr, row_fmt, ...)                                                             \
    do {                                                                                           \
        if (!(expr))                                                                               \
            TEST_FAIL_AT("assertion failed: %s (row " row_fmt ")", #expr, __VA_ARGS__);            \
    } while (0)

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
