/* stack/chksum.c: our Internet checksum gives what lwIP's own loop gives, on every alignment of
 * the start and every length from 0 to a full segment and beyond, on random bytes and on the
 * all-ones words that carry the most. */
#include <stdint.h>
#include <string.h>

#include "stack/lwipopts.h"
#include "test.h"

/* lwIP's loop, still built (lwipopts.h keeps LWIP_CHKSUM_ALGORITHM) but no longer declared. */
uint16_t lwip_standard_chksum(const void *dataptr, int len);

TEST_IMPL(stack_chksum_matches_lwip)
{
    static uint8_t buf[66000];
    uint32_t x = 0x12345678u;
    for (size_t i = 0; i < sizeof(buf); i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (uint8_t)(x >> 24);
    }
    for (int fill = 0; fill < 2; fill++) {
        if (fill)
            memset(buf, 0xFF, sizeof(buf));
        for (int off = 0; off < 8; off++)
            for (int len = 0; len <= 1600; len++)
                ASSERT_ROW(stack_chksum(buf + off, len) == lwip_standard_chksum(buf + off, len),
                           "fill %d off %d len %d", fill, off, len);
        for (int off = 0; off < 8; off++)
            ASSERT_ROW(stack_chksum(buf + off, 65535) == lwip_standard_chksum(buf + off, 65535),
                       "fill %d off %d len 65535", fill, off);
    }
    /* Known values: RFC 1071's example words 0001 f203 f4f5 f6f7 sum to ddf2 (host order). */
    static const uint8_t rfc[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    uint16_t sum = stack_chksum(rfc, sizeof(rfc));
    const uint8_t *b = (const uint8_t *)&sum;
    ASSERT_EQ(b[0], 0xdd);
    ASSERT_EQ(b[1], 0xf2);
    return 0;
}
