/* splitmix64: small, fast, and good enough to pick faults; not for anything secret. */
#include "harness_rand.h"

static uint64_t harness_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void harness_rand_init(struct harness_rand *r, uint64_t seed, uint64_t stream)
{
    r->state = harness_mix(seed * 0x9E3779B97F4A7C15ULL + harness_mix(stream + 1));
}

uint64_t harness_rand_next(struct harness_rand *r)
{
    r->state += 0x9E3779B97F4A7C15ULL;
    return harness_mix(r->state);
}

uint32_t harness_rand_range(struct harness_rand *r, uint32_t lo, uint32_t hi)
{
    if (hi <= lo)
        return lo;
    uint64_t span = (uint64_t)hi - lo + 1;
    return lo + (uint32_t)(harness_rand_next(r) % span);
}

int harness_rand_chance(struct harness_rand *r, double p)
{
    if (p <= 0)
        return 0;
    /* 53 random bits give a uniform double in [0, 1). */
    return (double)(harness_rand_next(r) >> 11) * 0x1.0p-53 < p;
}

/* Each 8-byte word of the pattern is a hash of the key and the word's index, so any offset can
 * be produced or checked on its own. */
static uint8_t harness_pattern_byte(uint64_t key, uint64_t off, uint64_t *word, uint64_t *word_index)
{
    uint64_t w = off >> 3;
    if (w != *word_index) {
        *word_index = w;
        *word = harness_mix(key ^ harness_mix(w));
    }
    return (uint8_t)(*word >> ((off & 7) * 8));
}

void harness_pattern_fill(uint64_t key, uint64_t off, uint8_t *buf, size_t len)
{
    uint64_t word = 0, word_index = UINT64_MAX;
    for (size_t i = 0; i < len; i++)
        buf[i] = harness_pattern_byte(key, off + i, &word, &word_index);
}

long harness_pattern_check(uint64_t key, uint64_t off, const uint8_t *buf, size_t len)
{
    uint64_t word = 0, word_index = UINT64_MAX;
    for (size_t i = 0; i < len; i++)
        if (buf[i] != harness_pattern_byte(key, off + i, &word, &word_index))
            return (long)i;
    return -1;
}
