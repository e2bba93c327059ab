/* app/memtrim.c: freed memory in the middle of the heap goes back to the system on a trim, and a
 * look that finds nothing newly freed leaves the heap alone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/memtrim.h"
#include "test.h"

#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
static long memtrim_rss_kb(void)
{
    long pages_total = 0, pages_rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    ASSERT(f != NULL);
    ASSERT_EQ(fscanf(f, "%ld %ld", &pages_total, &pages_rss), 2);
    fclose(f);
    return pages_rss * (sysconf(_SC_PAGESIZE) / 1024);
}
#endif

TEST_IMPL(memtrim_gives_back)
{
#if !defined(__GLIBC__) || defined(__SANITIZE_ADDRESS__)
    fprintf(stderr, "skipped: trimming is for glibc's own allocator\n");
    return 0;
#else
    enum { N = 4096, SIZE = 4000, KEEP_EVERY = 16 };
    static char *blocks[N];
    struct memtrim m;
    memset(&m, 0, sizeof(m));
    memtrim_check(&m, 1); /* whatever the runner left free */
    m.trims = 0;

    for (size_t i = 0; i < N; i++) {
        blocks[i] = malloc(SIZE);
        ASSERT(blocks[i] != NULL);
        memset(blocks[i], (int)i, SIZE);
    }
    long full = memtrim_rss_kb();
    /* Free all but every 16th block (and the last, which pins the top): 15 of 16 pages are free,
     * none at the top, so free() alone gives nothing back. */
    for (size_t i = 0; i < N - 1; i++)
        if (i % KEEP_EVERY != 0) {
            free(blocks[i]);
            blocks[i] = NULL;
        }
    long freed = memtrim_rss_kb();
    ASSERT(freed > full - 2048);

    ASSERT_EQ(memtrim_check(&m, 0), 1);
    long trimmed = memtrim_rss_kb();
    /* About 14 MB of 16 were freed; most of it must be gone from RSS. */
    ASSERT(trimmed < freed - 8 * 1024);

    /* Nothing newly freed: the next look does not walk the heap again, unless told to. */
    ASSERT_EQ(memtrim_check(&m, 0), 0);
    ASSERT_EQ(memtrim_check(&m, 1), 1);
    ASSERT_EQ(m.trims, 2);

    for (size_t i = 0; i < N; i++)
        free(blocks[i]);
    return 0;
#endif
}
