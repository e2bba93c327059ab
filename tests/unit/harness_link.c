/* The link keeps its packets in a binary heap ordered by due time, then by the order they were
 * put on, so two packets due in the same millisecond keep their order unless a fault says
 * otherwise. The bottleneck serializes at its rate in microseconds; its queue is what has been
 * admitted but not yet serialized. */
#include "harness_link.h"

#include <stdlib.h>
#include <string.h>

#include "harness_rand.h"

struct harness_link_packet {
    uint32_t due;
    uint64_t order;
    size_t len;
    uint8_t data[];
};

struct harness_link {
    struct harness_link_faults f;
    struct harness_link_stats stats;
    struct harness_link_packet **heap;
    size_t n, cap;
    uint64_t next_order;
    uint64_t busy_until_us; /* when the bottleneck finishes what it has admitted */
};

struct harness_link *harness_link_new(const struct harness_link_faults *f)
{
    struct harness_link *l = calloc(1, sizeof(*l));
    if (l)
        l->f = *f;
    return l;
}

void harness_link_free(struct harness_link *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->heap[i]);
    free(l->heap);
    free(l);
}

static int harness_link_before(const struct harness_link_packet *a, const struct harness_link_packet *b)
{
    return a->due != b->due ? a->due < b->due : a->order < b->order;
}

static void harness_link_push(struct harness_link *l, uint32_t due, const uint8_t *pkt, size_t len)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        struct harness_link_packet **heap = realloc(l->heap, cap * sizeof(*heap));
        if (!heap)
            abort();
        l->heap = heap;
        l->cap = cap;
    }
    struct harness_link_packet *p = malloc(sizeof(*p) + len);
    if (!p)
        abort();
    p->due = due;
    p->order = l->next_order++;
    p->len = len;
    memcpy(p->data, pkt, len);
    size_t i = l->n++;
    while (i > 0 && harness_link_before(p, l->heap[(i - 1) / 2])) {
        l->heap[i] = l->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    l->heap[i] = p;
}

static struct harness_link_packet *harness_link_pop(struct harness_link *l)
{
    struct harness_link_packet *top = l->heap[0], *last = l->heap[--l->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= l->n)
            break;
        if (c + 1 < l->n && harness_link_before(l->heap[c + 1], l->heap[c]))
            c++;
        if (!harness_link_before(l->heap[c], last))
            break;
        l->heap[i] = l->heap[c];
        i = c;
    }
    if (l->n > 0)
        l->heap[i] = last;
    return top;
}

/* The TCP flags of an IPv4 packet, 0 when it is not TCP. */
static uint8_t harness_link_tcp_flags(const uint8_t *pkt, size_t len)
{
    if (len < 20 || pkt[0] >> 4 != 4 || pkt[9] != 6)
        return 0;
    size_t ihl = (size_t)(pkt[0] & 0x0F) * 4;
    return len >= ihl + 14 ? pkt[ihl + 13] : 0;
}

enum harness_link_fate harness_link_send(struct harness_link *l, uint32_t now, const uint8_t *pkt, size_t len,
                                         struct harness_rand *r)
{
    const struct harness_link_faults *f = &l->f;
    l->stats.sent++;
    if (f->blackhole_at && now >= f->blackhole_at) {
        l->stats.dropped++;
        return HARNESS_LINK_LOST;
    }
    uint8_t flags = harness_link_tcp_flags(pkt, len);
    int spared = (f->spare_syn && (flags & 0x02)) || (f->spare_rst && (flags & 0x04));
    /* Draw every decision whatever the outcome, so that one fault does not shift the others. */
    int drop = harness_rand_chance(r, f->drop);
    int dup = harness_rand_chance(r, f->dup);
    int reorder = harness_rand_chance(r, f->reorder);
    uint32_t jitter = harness_rand_range(r, 0, f->jitter_ms);
    uint32_t jitter2 = harness_rand_range(r, 0, f->jitter_ms);
    if (drop && !spared) {
        l->stats.dropped++;
        return HARNESS_LINK_LOST;
    }
    uint64_t depart_us = (uint64_t)now * 1000;
    if (f->rate) {
        uint64_t start = l->busy_until_us > depart_us ? l->busy_until_us : depart_us;
        uint64_t backlog = (start - depart_us) * f->rate / 1000;
        if (!f->lossless && backlog + len > f->queue_bytes) {
            l->stats.queue_drops++;
            return HARNESS_LINK_QUEUE_DROP;
        }
        l->busy_until_us = start + ((uint64_t)len * 1000 + f->rate - 1) / f->rate;
        depart_us = l->busy_until_us;
    }
    uint32_t due = (uint32_t)((depart_us + 999) / 1000) + f->delay_ms;
    if (reorder) {
        l->stats.reordered++;
        due += f->reorder_ms;
    }
    harness_link_push(l, due + jitter, pkt, len);
    if (dup) {
        l->stats.duplicated++;
        harness_link_push(l, due + jitter2, pkt, len);
        return HARNESS_LINK_DOUBLED;
    }
    return reorder ? HARNESS_LINK_DELAYED : HARNESS_LINK_SENT;
}

int harness_link_next(const struct harness_link *l, uint32_t *due)
{
    if (l->n == 0)
        return 0;
    *due = l->heap[0]->due;
    return 1;
}

size_t harness_link_take(struct harness_link *l, uint32_t now, uint8_t *buf, size_t cap)
{
    if (l->n == 0 || l->heap[0]->due > now)
        return 0;
    struct harness_link_packet *p = harness_link_pop(l);
    size_t len = p->len;
    if (len > cap)
        abort(); /* the caller's buffer is meant for any packet */
    memcpy(buf, p->data, len);
    free(p);
    l->stats.delivered++;
    return len;
}

uint32_t harness_link_backlog(const struct harness_link *l, uint32_t now)
{
    uint64_t now_us = (uint64_t)now * 1000;
    if (!l->f.rate || l->busy_until_us <= now_us)
        return 0;
    return (uint32_t)((l->busy_until_us - now_us) * l->f.rate / 1000);
}

uint32_t harness_link_backlog_time(const struct harness_link *l, uint32_t bytes)
{
    if (!l->f.rate)
        return 0;
    uint64_t drain_us = (uint64_t)bytes * 1000 / l->f.rate;
    if (l->busy_until_us <= drain_us)
        return 0;
    return (uint32_t)((l->busy_until_us - drain_us + 999) / 1000);
}

const struct harness_link_stats *harness_link_stats(const struct harness_link *l)
{
    return &l->stats;
}
