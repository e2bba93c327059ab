/* IDNA ASCII form of a host name, the way libuv converts one before getaddrinfo() (route/idna.h):
 * labels split at '.' and the three full stops IDNA treats as one, an ASCII label kept byte for
 * byte (no case mapping, as libuv does none), any other label encoded with Punycode (RFC 3492 6.3,
 * its parameters in enum idna_const). UTF-8 is decoded strictly (no overlong forms, surrogates or
 * code points past U+10FFFF): a name libuv would refuse is refused here too. */
#include "route/idna.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

enum idna_const {
    IDNA_BASE = 36,
    IDNA_TMIN = 1,
    IDNA_TMAX = 26,
    IDNA_SKEW = 38,
    IDNA_DAMP = 700,
    IDNA_INITIAL_BIAS = 72,
    IDNA_INITIAL_N = 0x80,
    IDNA_MAX_LABEL_CP = 256, /* code points of one label: more cannot fit in a name anyway */
};

/* The next code point of the UTF-8 text at *p (before end), moving *p past it; -1 if invalid. */
static int32_t idna_utf8_next(const unsigned char **p, const unsigned char *end)
{
    const unsigned char *s = *p;
    unsigned char c = s[0];
    int32_t cp;
    size_t n;
    int32_t min;
    if (c < 0x80) {
        *p = s + 1;
        return c;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        n = 1, cp = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 2, cp = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 3, cp = c & 0x07, min = 0x10000;
    } else {
        return -1;
    }
    if ((size_t)(end - s) < n + 1)
        return -1;
    for (size_t i = 1; i <= n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return -1;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
    *p = s + n + 1;
    return cp;
}

static int idna_is_dot(int32_t cp)
{
    return cp == '.' || cp == 0x3002 || cp == 0xFF0E || cp == 0xFF61;
}

static char idna_digit(uint32_t d)
{
    return (char)(d < 26 ? 'a' + d : '0' + (d - 26));
}

/* RFC 3492 6.1. */
static uint32_t idna_adapt(uint32_t delta, uint32_t points, int first)
{
    delta = first ? delta / IDNA_DAMP : delta / 2;
    delta += delta / points;
    uint32_t k = 0;
    while (delta > ((IDNA_BASE - IDNA_TMIN) * IDNA_TMAX) / 2) {
        delta /= IDNA_BASE - IDNA_TMIN;
        k += IDNA_BASE;
    }
    return k + (IDNA_BASE - IDNA_TMIN + 1) * delta / (delta + IDNA_SKEW);
}

/* Appends c to out, keeping room for the NUL. */
static int idna_put(char *out, size_t cap, size_t *len, char c)
{
    if (*len + 1 >= cap)
        return -EINVAL;
    out[(*len)++] = c;
    return 0;
}

/* Appends the ASCII form of one label (n code points). */
static int idna_label(const int32_t *cp, size_t n, char *out, size_t cap, size_t *len)
{
    uint32_t basic = 0;
    for (size_t i = 0; i < n; i++)
        basic += cp[i] < IDNA_INITIAL_N;
    if (basic < n) {
        for (const char *x = "xn--"; *x; x++)
            if (idna_put(out, cap, len, *x) != 0)
                return -EINVAL;
    }
    for (size_t i = 0; i < n; i++)
        if (cp[i] < IDNA_INITIAL_N && idna_put(out, cap, len, (char)cp[i]) != 0)
            return -EINVAL;
    if (basic == n)
        return 0;
    if (basic > 0 && idna_put(out, cap, len, '-') != 0)
        return -EINVAL;
    /* RFC 3492 6.3. n code points of at most U+10FFFF and a label of at most 256 of them keep
     * delta far below 2^32: no overflow check is needed. */
    uint32_t next = IDNA_INITIAL_N, delta = 0, bias = IDNA_INITIAL_BIAS, h = basic;
    while (h < n) {
        uint32_t m = UINT32_MAX;
        for (size_t i = 0; i < n; i++)
            if ((uint32_t)cp[i] >= next && (uint32_t)cp[i] < m)
                m = (uint32_t)cp[i];
        delta += (m - next) * (h + 1);
        next = m;
        for (size_t i = 0; i < n; i++) {
            if ((uint32_t)cp[i] < next)
                delta++;
            if ((uint32_t)cp[i] != next)
                continue;
            uint32_t q = delta;
            for (uint32_t k = IDNA_BASE;; k += IDNA_BASE) {
                uint32_t t = k <= bias ? IDNA_TMIN : k >= bias + IDNA_TMAX ? IDNA_TMAX : k - bias;
                if (q < t)
                    break;
                if (idna_put(out, cap, len, idna_digit(t + (q - t) % (IDNA_BASE - t))) != 0)
                    return -EINVAL;
                q = (q - t) / (IDNA_BASE - t);
            }
            if (idna_put(out, cap, len, idna_digit(q)) != 0)
                return -EINVAL;
            bias = idna_adapt(delta, h + 1, h == basic);
            delta = 0;
            h++;
        }
        delta++;
        next++;
    }
    return 0;
}

int idna_to_ascii(const char *name, char *out, size_t cap)
{
    const unsigned char *p = (const unsigned char *)name;
    const unsigned char *end = p + strlen(name);
    int32_t cp[IDNA_MAX_LABEL_CP];
    size_t n = 0, len = 0;
    if (cap == 0)
        return -EINVAL;
    while (p < end) {
        int32_t c = idna_utf8_next(&p, end);
        if (c < 0)
            return -EINVAL;
        if (!idna_is_dot(c)) {
            if (n == IDNA_MAX_LABEL_CP)
                return -EINVAL;
            cp[n++] = c;
            continue;
        }
        if (idna_label(cp, n, out, cap, &len) != 0 || idna_put(out, cap, &len, '.') != 0)
            return -EINVAL;
        n = 0;
    }
    if (idna_label(cp, n, out, cap, &len) != 0)
        return -EINVAL;
    out[len] = '\0';
    return 0;
}
