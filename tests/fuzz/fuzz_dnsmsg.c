/* libFuzzer target for the DNS message code.
 * Answers: the input is a response to a query for www.example.com; its first byte picks A or AAAA,
 * the rest is the message, and the query id is taken from the message so the parser goes past the
 * id check. Queries: the input as a name must build a query that reads back as its own answer. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stack/dnsmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_answer(const uint8_t *data, size_t size)
{
    struct dnsmsg_answer ans;
    if (size < 1)
        return;
    uint16_t qtype = (data[0] & 1) ? DNSMSG_TYPE_AAAA : DNSMSG_TYPE_A;
    const uint8_t *msg = data + 1;
    size_t len = size - 1;
    /* An exact-size copy so any read past the end is caught. */
    uint8_t *copy = malloc(len ? len : 1);
    if (copy == NULL)
        return;
    memcpy(copy, msg, len);
    uint16_t id = len >= 2 ? (uint16_t)((copy[0] << 8) | copy[1]) : 0;
    int rc = dnsmsg_parse_answer(copy, len, id, "www.example.com", qtype, &ans);
    if (rc != 0 && rc != -EINVAL && rc != -ENOENT)
        abort();
    if (rc == 0) {
        if (ans.n_addrs > DNSMSG_MAX_ADDRS)
            abort();
        for (size_t i = 0; i < ans.n_addrs; i++)
            if (v2s_addr_len(&ans.addrs[i]) != (qtype == DNSMSG_TYPE_A ? 4u : 16u))
                abort();
    }
    free(copy);
}

static void fuzz_query(const uint8_t *data, size_t size)
{
    char name[300];
    uint8_t buf[DNSMSG_MAX_UDP];
    struct dnsmsg_answer ans;
    if (size >= sizeof(name))
        return;
    memcpy(name, data, size);
    name[size] = '\0';
    int n = dnsmsg_build_query(buf, sizeof(buf), 0x1234, name, DNSMSG_TYPE_A);
    if (n == -EINVAL)
        return;
    if (n <= 12 || n > (int)sizeof(buf))
        abort();
    buf[2] |= 0x80; /* turn the query into an empty answer: it must match its own question */
    if (dnsmsg_parse_answer(buf, (size_t)n, 0x1234, name, DNSMSG_TYPE_A, &ans) != 0 || ans.n_addrs != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_answer(data, size);
    fuzz_query(data, size);
    return 0;
}
