/* One direction of the fault harness's network path, in virtual time: a delay with jitter, an
 * optional bottleneck (a rate and a queue), and the faults a scenario asks for (loss, duplicates,
 * reordering). Packets are copied in and come out, in due order, no earlier than their time. */
#ifndef VPN2SOCKS_TESTS_UNIT_HARNESS_LINK_H
#define VPN2SOCKS_TESTS_UNIT_HARNESS_LINK_H

#include <stddef.h>
#include <stdint.h>

struct harness_rand;
struct harness_link;

struct harness_link_faults {
    uint32_t delay_ms;    /* one-way delay */
    uint32_t jitter_ms;   /* plus a uniform [0, jitter_ms]: packets close together may swap */
    double drop;          /* probability that a packet is lost */
    double dup;           /* probability that a packet arrives twice */
    double reorder;       /* probability that a packet is held back reorder_ms longer */
    uint32_t reorder_ms;
    uint32_t rate;        /* bottleneck, bytes per ms; 0: none */
    uint32_t queue_bytes; /* what the bottleneck holds; a packet that does not fit is lost */
    int lossless;         /* the bottleneck never drops (a tunnel's own queue): it only delays */
    int spare_syn;        /* segments with SYN are never dropped by the random loss */
    int spare_rst;        /* nor segments with RST */
    uint32_t blackhole_at; /* from this time on, every packet is lost; 0: never */
};

struct harness_link_stats {
    uint64_t sent, delivered, dropped, queue_drops, duplicated, reordered;
};

struct harness_link *harness_link_new(const struct harness_link_faults *f);
void harness_link_free(struct harness_link *l);
/* What became of a packet put on the link. */
enum harness_link_fate {
    HARNESS_LINK_LOST,       /* random loss or the black hole */
    HARNESS_LINK_QUEUE_DROP, /* the bottleneck's queue was full */
    HARNESS_LINK_SENT,
    HARNESS_LINK_DELAYED,    /* held back: later packets may overtake it */
    HARNESS_LINK_DOUBLED,    /* it will arrive twice */
};

/* Puts a copy of pkt (caller keeps it) on the link at time now; r draws its faults. */
enum harness_link_fate harness_link_send(struct harness_link *l, uint32_t now, const uint8_t *pkt, size_t len,
                       struct harness_rand *r);
/* The time the next packet is due; 0 when the link is empty, else 1. */
int harness_link_next(const struct harness_link *l, uint32_t *due);
/* Copies the next packet due at or before now into buf (cap bytes, enough for any packet);
 * returns its length, or 0 when none is due. */
size_t harness_link_take(struct harness_link *l, uint32_t now, uint8_t *buf, size_t cap);
/* Bytes waiting in the bottleneck at time now, and the first time they are at most bytes. */
uint32_t harness_link_backlog(const struct harness_link *l, uint32_t now);
uint32_t harness_link_backlog_time(const struct harness_link *l, uint32_t bytes);
const struct harness_link_stats *harness_link_stats(const struct harness_link *l);

#endif
