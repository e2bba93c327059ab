/* Heap trimming, for glibc only (see heap.h). */
#include "base/heap.h"

#include <stdlib.h> /* defines __GLIBC__ on glibc */

#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
#include <malloc.h>
#define HEAP_GLIBC 1
#endif

size_t v2s_heap_free_bytes(void)
{
#if defined(HEAP_GLIBC) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
    return mallinfo2().fordblks;
#else
    return 0;
#endif
}

int v2s_heap_trim(void)
{
#ifdef HEAP_GLIBC
    malloc_trim(0);
    return 1;
#else
    return 0;
#endif
}
