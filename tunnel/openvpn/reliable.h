/* The control channel's reliability layer, per key: message ids, acks, in-order delivery,
 * retransmission with exponential backoff. Pure code; times are milliseconds given by the caller.
 *
 * Every control message received is acked, duplicates included (acks are not cumulative). At most
 * OVPN_REL_SEND_WINDOW messages are unacknowledged; received messages are delivered strictly in
 * id order, holding up to OVPN_REL_RECV_WINDOW ahead of the next expected one. */
#ifndef VPN2SOCKS_OPENVPN_RELIABLE_H
#define VPN2SOCKS_OPENVPN_RELIABLE_H

#include <stddef.h>
#include <stdint.h>

enum {
    OVPN_REL_SEND_WINDOW = 6,
    OVPN_REL_RECV_WINDOW = 12,
    OVPN_REL_MAX_ACKS = 32,          /* acks waiting to be sent */
    OVPN_REL_INITIAL_RTO_MS = 2000,
    OVPN_REL_MAX_RTO_MS = 32000,
    OVPN_REL_FAST_RETRANSMIT = 3,    /* later messages acked this often: resend at once */
    OVPN_REL_RECENT_ACKS = 4,        /* acks repeated on later packets, as OpenVPN 2.6 does */
};

struct ovpn_rel_msg {
    int used;
    uint8_t op;
    uint32_t id;
    uint8_t *data;
    size_t len;
    uint64_t due;      /* send side: next (re)transmission */
    unsigned rto;
    unsigned later_acks;
};

struct ovpn_reliable {
    uint32_t send_next;                 /* id for the next message queued */
    struct ovpn_rel_msg out[OVPN_REL_SEND_WINDOW];
    uint32_t recv_next;                 /* id delivered next */
    struct ovpn_rel_msg in[OVPN_REL_RECV_WINDOW];
    uint32_t acks[OVPN_REL_MAX_ACKS];   /* ids to ack, oldest first */
    size_t n_acks;
    uint32_t recent[OVPN_REL_RECENT_ACKS]; /* ids acked lately, newest first */
    size_t n_recent;
};

void ovpn_rel_init(struct ovpn_reliable *r);
void ovpn_rel_free(struct ovpn_reliable *r);

/* Whether another message can be queued now (the send window has room). */
int ovpn_rel_can_send(const struct ovpn_reliable *r);
/* Queues a message (copied) for sending at once; returns its id, or -EAGAIN (window full),
 * -ENOMEM. */
int64_t ovpn_rel_send(struct ovpn_reliable *r, uint8_t op, const uint8_t *data, size_t len, uint64_t now);
/* The peer acked id. */
void ovpn_rel_acked(struct ovpn_reliable *r, uint32_t id);
/* The next message to put on the wire now (first transmission or retransmission), or NULL; it is
 * rescheduled with a doubled timeout as it is returned. */
const struct ovpn_rel_msg *ovpn_rel_next_due(struct ovpn_reliable *r, uint64_t now);
/* When ovpn_rel_next_due() will next have something; UINT64_MAX when nothing is unacked. */
uint64_t ovpn_rel_next_deadline(const struct ovpn_reliable *r);
/* Every unacked message is due again at now, its timeout left as it was: a message that must
 * get through before the link closes goes out more than once, as no retransmission will come. */
void ovpn_rel_resend_now(struct ovpn_reliable *r, uint64_t now);
/* Whether every sent message has been acked. */
int ovpn_rel_all_acked(const struct ovpn_reliable *r);

/* A message with an id arrived: queue its ack, and keep it for delivery if it is new and within
 * the window. Returns 1 when kept, 0 for a duplicate or one too far ahead, -ENOMEM. */
int ovpn_rel_receive(struct ovpn_reliable *r, uint8_t op, uint32_t id, const uint8_t *data, size_t len);
/* The next message in order, or NULL; release it with ovpn_rel_delivered() after use. */
const struct ovpn_rel_msg *ovpn_rel_peek(const struct ovpn_reliable *r);
void ovpn_rel_delivered(struct ovpn_reliable *r);

/* Takes up to max pending acks (oldest first) to put on an outgoing packet. */
size_t ovpn_rel_take_acks(struct ovpn_reliable *r, uint32_t *ids, size_t max);
size_t ovpn_rel_pending_acks(const struct ovpn_reliable *r);
/* Adds recently sent acks not already in ids[0..n) until max; returns the new count. Repeating an
 * ack is harmless, and it saves a handshake when the packet that carried it was lost. */
size_t ovpn_rel_add_recent_acks(const struct ovpn_reliable *r, uint32_t *ids, size_t n, size_t max);

#endif
