/* The small OS layer lwIP needs with NO_SYS=1: a millisecond clock, randomness (and the TCP ISNs
 * made from it), assertions. */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <uv.h>

#include "base/log.h"
#include "lwip/ip_addr.h"
#include "lwip/sys.h"
#include "stack/internal.h"
#include "stack/lwip_hooks.h"
#include "stack/lwip_pin.h" /* lwIP internals: see there */
#include "stack/sys_clock.h"

static uv_loop_t *clock_loop;
static uint32_t (*clock_override)(void); /* tests only (stack/sys_clock.h) */

void stack_sys_init(uv_loop_t *loop)
{
    clock_loop = loop;
}

void stack_sys_set_clock(uint32_t (*now)(void))
{
    clock_override = now;
}

/* lwIP's timers run on the loop's clock, which the loop refreshes once per iteration. */
u32_t sys_now(void)
{
    if (clock_override)
        return (u32_t)clock_override();
    return (u32_t)uv_now(clock_loop);
}

uint64_t stack_now_us(void)
{
    if (clock_override)
        return (uint64_t)clock_override() * 1000u;
    return uv_hrtime() / 1000u;
}

/* lwIP's heap (lwipopts.h routes mem_clib_malloc and friends here): every pbuf, pcb and segment,
 * counted in what the allocator really gave, so that small buffers count their overhead too. */
static size_t mem_in_use;

void *stack_mem_malloc(size_t size)
{
    void *p = malloc(size);
    if (p)
        mem_in_use += malloc_usable_size(p);
    return p;
}

void *stack_mem_calloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p)
        mem_in_use += malloc_usable_size(p);
    return p;
}

void stack_mem_free(void *p)
{
    if (p) {
        size_t n = malloc_usable_size(p);
        mem_in_use -= n;
        stack_tcp_output_freed(p, n);
    }
    free(p);
}

size_t stack_mem_bytes(void)
{
    return mem_in_use;
}

static uint32_t (*random_fn)(void);
static int isn_keyed; /* the ISN key is drawn at the first connection (or again after a seam) */

void stack_sys_set_random(uint32_t (*random)(void))
{
    random_fn = random;
    isn_keyed = 0;
}

/* Words drawn ahead: a connection through the tunnel takes four (its port and the jitter of its
 * SYN, handshake and first-flight timers), two of them between the SYN-ACK and the SOCKS reply,
 * and a getrandom() system call for each was 4 of the ~37 calls a short request cost (bench/run.sh
 * latency). One call now fills the pool for 16 connections. Each word is handed out once, so
 * the ISN key (stack_tcp_isn) shares none with the ports and timings the wire shows. */
enum { STACK_RANDOM_POOL = 64 };
static uint32_t random_pool[STACK_RANDOM_POOL];
static unsigned random_left;

unsigned int stack_random(void)
{
    if (random_fn)
        return random_fn();
    if (random_left == 0) {
        /* getrandom() of up to 256 bytes never blocks after boot and never returns short. */
        if (getrandom(random_pool, sizeof(random_pool), 0) != (ssize_t)sizeof(random_pool))
            abort();
        random_left = STACK_RANDOM_POOL;
    }
    return random_pool[--random_left];
}

u16_t stack_random_port(void)
{
    return (u16_t)(STACK_PORT_FIRST + stack_random() % (65536u - STACK_PORT_FIRST));
}

/* SipHash-2-4 (Aumasson and Bernstein), a keyed hash made for short inputs such as a 4-tuple. */
#define SIP_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static void sip_round(uint64_t v[4])
{
    v[0] += v[1];
    v[1] = SIP_ROTL(v[1], 13) ^ v[0];
    v[0] = SIP_ROTL(v[0], 32);
    v[2] += v[3];
    v[3] = SIP_ROTL(v[3], 16) ^ v[2];
    v[0] += v[3];
    v[3] = SIP_ROTL(v[3], 21) ^ v[0];
    v[2] += v[1];
    v[1] = SIP_ROTL(v[1], 17) ^ v[2];
    v[2] = SIP_ROTL(v[2], 32);
}

static uint64_t sip_load64(const uint8_t *p)
{
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--)
        x = x << 8 | p[i];
    return x;
}

uint64_t stack_siphash(const uint8_t key[16], const uint8_t *msg, size_t len)
{
    uint64_t k0 = sip_load64(key), k1 = sip_load64(key + 8);
    uint64_t v[4] = {k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL, k0 ^ 0x6c7967656e657261ULL,
                     k1 ^ 0x7465646279746573ULL};
    size_t whole = len & ~(size_t)7;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m = sip_load64(msg + i);
        v[3] ^= m;
        sip_round(v);
        sip_round(v);
        v[0] ^= m;
    }
    uint64_t last = (uint64_t)(len & 0xFF) << 56;
    for (size_t i = 0; i < (len & 7); i++)
        last |= (uint64_t)msg[whole + i] << (8 * i);
    v[3] ^= last;
    sip_round(v);
    sip_round(v);
    v[0] ^= last;
    v[2] ^= 0xFF;
    for (int i = 0; i < 4; i++)
        sip_round(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* RFC 6528: ISN = M + F(local address and port, remote address and port, secret), M a clock
 * ticking every 4 microseconds (here 250 ticks per millisecond of sys_now()), F a keyed hash
 * with a key drawn once per process. An off-path host cannot guess the ISN of a connection it
 * did not see, and a new incarnation of the same 4-tuple still starts above the old one. */
u32_t stack_tcp_isn(const ip_addr_t *local_ip, u16_t local_port, const ip_addr_t *remote_ip, u16_t remote_port)
{
    static uint8_t key[16];
    if (!isn_keyed) {
        for (size_t i = 0; i < sizeof(key); i += 4) {
            uint32_t r = stack_random();
            memcpy(key + i, &r, 4);
        }
        isn_keyed = 1;
    }
    uint8_t msg[2 * 17 + 4];
    size_t n = 0;
    const ip_addr_t *ips[2] = {local_ip, remote_ip};
    for (int i = 0; i < 2; i++) {
        if (IP_IS_V6(ips[i])) {
            msg[n++] = 6;
            memcpy(msg + n, ip_2_ip6(ips[i])->addr, 16);
            n += 16;
        } else {
            msg[n++] = 4;
            memcpy(msg + n, &ip_2_ip4(ips[i])->addr, 4);
            n += 4;
        }
    }
    msg[n++] = (uint8_t)(local_port >> 8);
    msg[n++] = (uint8_t)local_port;
    msg[n++] = (uint8_t)(remote_port >> 8);
    msg[n++] = (uint8_t)remote_port;
    return (u32_t)((u32_t)sys_now() * 250u + (u32_t)stack_siphash(key, msg, n));
}

void stack_lwip_assert(const char *msg, const char *file, int line)
{
    v2s_error("lwIP assertion failed: %s (%s:%d)", msg, file, line);
    abort();
}
