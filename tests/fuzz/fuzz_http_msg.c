/* libFuzzer target for the HTTP message reader (http/message.c) over http-parser. The first byte
 * picks the mode (bit 0: responses, bit 1: responses to HEAD, bit 2: responses to an HTTP/1.0
 * client, de-chunked; a request's head is also written as a TRACE's answer), the rest is what a
 * connection carries, up to a CONNECT or a 101. Fed whole and then one byte at a time, it must
 * give the same events at the same offsets (an error: the same status), the same rebuilt heads
 * and the same bodies; a re-chunked body must be well framed. A Proxy-Authorization is decoded
 * too (within its buffer). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/message.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { FUZZ_MAX_EVENTS = 64 };

struct fuzz_outcome {
    enum http_msg_event events[FUZZ_MAX_EVENTS];
    size_t offsets[FUZZ_MAX_EVENTS];
    size_t n;
    uint8_t *text; /* heads and de-chunked bodies, in order */
    size_t len;
};

static void fuzz_append(struct fuzz_outcome *o, const uint8_t *p, size_t n)
{
    uint8_t *t = realloc(o->text, o->len + n + 1);
    if (!t)
        abort();
    if (n)
        memcpy(t + o->len, p, n);
    o->text = t;
    o->len += n;
}

/* Our own chunked framing, undone; aborts unless it is exactly "%zx\r\n" DATA "\r\n" ... "0\r\n\r\n". */
static void fuzz_unchunk(struct fuzz_outcome *o, const uint8_t *p, size_t n, int last)
{
    size_t i = 0;
    while (i < n) {
        char *end;
        unsigned long size = strtoul((const char *)p + i, &end, 16);
        size_t at = (size_t)((const uint8_t *)end - p);
        if (at + 2 > n || p[at] != '\r' || p[at + 1] != '\n')
            abort();
        at += 2;
        if (size == 0) {
            if (!last || at + 2 != n || p[at] != '\r' || p[at + 1] != '\n')
                abort();
            return;
        }
        if (at + size + 2 > n || p[at + size] != '\r' || p[at + size + 1] != '\n')
            abort();
        fuzz_append(o, p + at, size);
        i = at + size + 2;
    }
}

static void fuzz_take(struct fuzz_outcome *o, struct http_msg *m, int last)
{
    size_t n;
    uint8_t *out = http_msg_take_out(m, &n);
    /* The buffer ends in a NUL for strtoul: give it one. */
    uint8_t *z = malloc(n + 1);
    if (!z)
        abort();
    if (n)
        memcpy(z, out, n);
    z[n] = 0;
    if (m->chunked)
        fuzz_unchunk(o, z, n, last);
    else
        fuzz_append(o, z, n);
    free(z);
    free(out);
}

static void fuzz_run(int mode, const uint8_t *data, size_t size, size_t step, struct fuzz_outcome *o)
{
    struct http_msg m;
    memset(o, 0, sizeof(*o));
    http_msg_init(&m, mode & 1);
    m.skip_body = (mode & 2) != 0;
    m.unchunk = (mode & 4) != 0;
    size_t off = 0;
    int finished = 0;
    while (o->n < FUZZ_MAX_EVENTS) {
        size_t n = size - off < step ? size - off : step, used = 0;
        enum http_msg_event ev;
        if (n == 0 && !m.done_pending) {
            if (finished)
                break;
            finished = 1;
            ev = http_msg_finish(&m);
        } else
            ev = http_msg_feed(&m, data + off, n, &used);
        if (used > n)
            abort();
        off += used;
        if (ev == HTTP_MSG_NEED_MORE) {
            if (used != n)
                abort();
            fuzz_take(o, &m, 0);
            continue;
        }
        o->events[o->n] = ev;
        o->offsets[o->n++] = off;
        if (ev == HTTP_MSG_ERROR) {
            /* Where an error our own callbacks raise (a head too large) is found depends on how
             * the parser split the item: the answer must be the same, not the offset. */
            o->offsets[o->n - 1] = (size_t)m.status;
            fuzz_take(o, &m, 0); /* the body bytes before the error */
            if (!m.why || (m.status != 400 && m.status != 414 && m.status != 431 && m.status != 500 && m.status != 505))
                abort();
            break;
        }
        if (ev == HTTP_MSG_HEAD) {
            fuzz_take(o, &m, 0);
            size_t vl, ul, pl;
            uint8_t cred[64];
            const char *v = http_msg_header(&m, "proxy-authorization", &vl);
            if (v && http_msg_basic_auth(v, vl, cred, sizeof(cred), &ul, &pl) == 0 && ul + 1 + pl > sizeof(cred))
                abort();
            if (m.chunked && m.unchunked)
                abort();
            if (!m.response && (http_msg_max_forwards(&m) < -1 || http_msg_write_trace(&m) < 0))
                abort();
            int rc = m.response ? http_msg_write_response_head(&m, "X-Fuzz: 1\r\n")
                                : http_msg_write_request_head(&m, "/", 1, "host", NULL);
            if (rc < 0)
                abort();
            size_t hn;
            uint8_t *head = http_msg_take_out(&m, &hn);
            fuzz_append(o, head, hn);
            free(head);
            continue;
        }
        fuzz_take(o, &m, 1); /* DONE */
        if (m.p.upgrade)
            break; /* CONNECT, 101: the rest is another protocol's, as in the proxy */
        http_msg_next(&m);
    }
    http_msg_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    int mode = data[0];
    struct fuzz_outcome a, b;
    fuzz_run(mode, data + 1, size - 1, size, &a);
    fuzz_run(mode, data + 1, size - 1, 1, &b);
    if (a.n != b.n || memcmp(a.events, b.events, a.n * sizeof(a.events[0])) != 0 ||
        memcmp(a.offsets, b.offsets, a.n * sizeof(a.offsets[0])) != 0 || a.len != b.len ||
        (a.len && memcmp(a.text, b.text, a.len) != 0))
        abort();
    free(a.text);
    free(b.text);
    return 0;
}
