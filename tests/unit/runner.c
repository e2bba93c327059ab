/* The unit test runner, after libuv's: every test runs in its own forked process with a timeout,
 * so a crash, an abort from an ASSERT or a hang fails that test alone.
 *
 *   unit_tests            run every test, print one line per test, exit 1 if any failed
 *   unit_tests NAME       run one test (how ctest calls it: one ctest test per entry)
 *   unit_tests --list     print the names
 * V2S_TEST_NOFORK=1 runs in-process (for a debugger); V2S_TEST_TIMEOUT=N changes the 30 s limit. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stack/internal.h"

#define TEST_DECLARE(name) int unit_test_##name(void);
#define TEST_ENTRY(name) {#name, unit_test_##name},
#define TEST_LIST_START static const struct unit_test unit_tests[] = {
#define TEST_LIST_END {NULL, NULL}};

struct unit_test {
    const char *name;
    int (*fn)(void);
};

#include "test-list.h"

enum { UNIT_DEFAULT_TIMEOUT = 30 };

static unsigned unit_timeout(void)
{
    const char *v = getenv("V2S_TEST_TIMEOUT");
    long t = v ? strtol(v, NULL, 10) : 0;
    return t > 0 && t < 3600 ? (unsigned)t : UNIT_DEFAULT_TIMEOUT;
}

/* Runs one test in a child; returns 0 when it passed. */
static int unit_run(const struct unit_test *t, int index)
{
    if (getenv("V2S_TEST_NOFORK") != NULL) {
        int rc = t->fn();
        printf("%s %d - %s\n", rc == 0 ? "ok" : "not ok", index, t->name);
        return rc;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        printf("not ok %d - %s (fork: %s)\n", index, t->name, strerror(errno));
        return 1;
    }
    if (pid == 0) {
        /* SIGALRM's default action ends the child; the parent reports it as a timeout. */
        alarm(unit_timeout());
        int rc = t->fn();
        fflush(stdout);
        fflush(stderr);
        _exit(rc == 0 ? 0 : 1);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            printf("not ok %d - %s (waitpid: %s)\n", index, t->name, strerror(errno));
            return 1;
        }
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        printf("ok %d - %s\n", index, t->name);
        return 0;
    }
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
        printf("not ok %d - %s (timeout after %u s)\n", index, t->name, unit_timeout());
    else if (WIFSIGNALED(status))
        printf("not ok %d - %s (signal %d: %s)\n", index, t->name, WTERMSIG(status),
               strsignal(WTERMSIG(status)));
    else
        printf("not ok %d - %s (exit status %d)\n", index, t->name, WEXITSTATUS(status));
    return 1;
}

int main(int argc, char **argv)
{
    size_t count = sizeof(unit_tests) / sizeof(unit_tests[0]) - 1;

    /* Every segment stack/tcp_output.c remembers is checked against lwIP's queue before use. */
    stack_tcp_output_verify(1);
    /* Line-buffered, so our lines and the children's stderr come out in order in a pipe. */
    setvbuf(stdout, NULL, _IOLBF, 0);

    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < count; i++)
            printf("%s\n", unit_tests[i].name);
        return 0;
    }
    if (argc == 2) {
        for (size_t i = 0; i < count; i++)
            if (strcmp(argv[1], unit_tests[i].name) == 0)
                return unit_run(&unit_tests[i], 1) == 0 ? 0 : 1;
        fprintf(stderr, "unit_tests: no test named \"%s\" (see --list)\n", argv[1]);
        return 2;
    }
    if (argc > 2) {
        fprintf(stderr, "usage: unit_tests [NAME | --list]\n");
        return 2;
    }

    int failed = 0;
    printf("1..%zu\n", count);
    for (size_t i = 0; i < count; i++)
        failed += unit_run(&unit_tests[i], (int)i + 1) != 0;
    printf("# %zu tests, %d failed\n", count, failed);
    return failed ? 1 : 0;
}
