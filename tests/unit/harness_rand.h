/* The fault harness's randomness and test data: a seeded PRNG (one stream per purpose, so that a
 * decision about one connection does not shift the draws of another) and the byte pattern every
 * transfer carries, which either end can check at any offset without keeping a copy. */
#ifndef VPN2SOCKS_TESTS_UNIT_HARNESS_RAND_H
#define VPN2SOCKS_TESTS_UNIT_HARNESS_RAND_H

#include <stddef.h>
#include <stdint.h>

struct harness_rand {
    uint64_t state;
};

/* A stream determined by (seed, stream): the same pair always draws the same numbers. */
void harness_rand_init(struct harness_rand *r, uint64_t seed, uint64_t stream);
uint64_t harness_rand_next(struct harness_rand *r);
/* Uniform in [lo, hi]. */
uint32_t harness_rand_range(struct harness_rand *r, uint32_t lo, uint32_t hi);
/* 1 with probability p. */
int harness_rand_chance(struct harness_rand *r, double p);

/* The pattern of stream key, bytes [off, off + len). */
void harness_pattern_fill(uint64_t key, uint64_t off, uint8_t *buf, size_t len);
/* The index of the first byte of buf that differs from the pattern at off, or -1. */
long harness_pattern_check(uint64_t key, uint64_t off, const uint8_t *buf, size_t len);

#endif
