/* The Internet checksum for lwIP (lwipopts.h's LWIP_CHKSUM): the 16-bit one's complement sum of
 * the bytes as 16-bit words, in the host's byte order, exactly as lwip_standard_chksum() returns it
 * (tests/unit/test_stack_chksum.c compares the two on every alignment and length).
 *
 * lwIP's loop adds one 32-bit word at a time and folds in each carry as it goes. Here 64-bit loads
 * are split into their 32-bit halves and summed into four 64-bit accumulators, which cannot
 * overflow for any packet (2^32 - 1 per add, far fewer than 2^32 adds), so there is no carry to
 * test in the loop, and the carries are folded in once at the end. A sum of 32-bit words folded to
 * 16 bits is the sum of the 16-bit words (RFC 1071), whatever the alignment of the start: the
 * loads are memcpy()s, so no address needs to be aligned.
 *
 * Why: during uploads every data segment is summed (LWIP_CHECKSUM_ON_COPY, as tcp_write() copies
 * it in). lwIP's loop was 3.1 % of vpn2socks's CPU in a UDP AES-256-GCM upload to an OpenVPN
 * 2.4.12 server (perf); per 1,349-byte segment it took 210-256 ns and this one 53-75 ns, and in
 * the same upload this one is 1.35 % of the samples. */
#include <stdint.h>
#include <string.h>

#include "stack/lwipopts.h"

uint16_t stack_chksum(const void *data, int len)
{
    const uint8_t *p = data;
    size_t n = len > 0 ? (size_t)len : 0;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (; n >= 32; n -= 32, p += 32) {
        uint64_t a, b, c, d;
        memcpy(&a, p, 8);
        memcpy(&b, p + 8, 8);
        memcpy(&c, p + 16, 8);
        memcpy(&d, p + 24, 8);
        s0 += (uint32_t)a + (a >> 32);
        s1 += (uint32_t)b + (b >> 32);
        s2 += (uint32_t)c + (c >> 32);
        s3 += (uint32_t)d + (d >> 32);
    }
    s0 += s1 + s2 + s3;
    for (; n >= 4; n -= 4, p += 4) {
        uint32_t a;
        memcpy(&a, p, 4);
        s0 += a;
    }
    if (n >= 2) {
        uint16_t a;
        memcpy(&a, p, 2);
        s0 += a;
        n -= 2;
        p += 2;
    }
    if (n > 0) {
        /* The last odd byte is the first byte of a word whose second is zero. */
        uint16_t a = 0;
        memcpy(&a, p, 1);
        s0 += a;
    }
    s0 = (s0 & 0xFFFFFFFFu) + (s0 >> 32);
    s0 = (s0 & 0xFFFFFFFFu) + (s0 >> 32);
    s0 = (s0 & 0xFFFFu) + (s0 >> 16);
    s0 = (s0 & 0xFFFFu) + (s0 >> 16);
    return (uint16_t)s0;
}
