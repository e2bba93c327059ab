#include "tunnel/openvpn/reliable.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void ovpn_rel_init(struct ovpn_reliable *r)
{
    memset(r, 0, sizeof(*r));
}

void ovpn_rel_free(struct ovpn_reliable *r)
{
    for (size_t i = 0; i < OVPN_REL_SEND_WINDOW; i++)
        free(r->out[i].data);
    for (size_t i = 0; i < OVPN_REL_RECV_WINDOW; i++)
        free(r->in[i].data);
    memset(r, 0, sizeof(*r));
}

int ovpn_rel_can_send(const struct ovpn_reliable *r)
{
    for (size_t i = 0; i < OVPN_REL_SEND_WINDOW; i++)
        if (!r->out[i].used)
            return 1;
    return 0;
}

/* Fills a free slot with a copy of data. 0 or -ENOMEM. */
static int ovpn_rel_store(struct ovpn_rel_msg *m, uint8_t op, uint32_t id, const uint8_t *data, size_t len)
{
    m->data = len ? malloc(len) : NULL;
    if (len && !m->data)
        return -ENOMEM;
    if (len)
        memcpy(m->data, data, len);
    m->used = 1;
    m->op = op;
    m->id = id;
    m->len = len;
    return 0;
}

int64_t ovpn_rel_send(struct ovpn_reliable *r, uint8_t op, const uint8_t *data, size_t len, uint64_t now)
{
    for (size_t i = 0; i < OVPN_REL_SEND_WINDOW; i++) {
        struct ovpn_rel_msg *m = &r->out[i];
        if (m->used)
            continue;
        if (ovpn_rel_store(m, op, r->send_next, data, len) < 0)
            return -ENOMEM;
        r->send_next++;
        m->due = now;
        m->rto = OVPN_REL_INITIAL_RTO_MS;
        m->later_acks = 0;
        return m->id;
    }
    return -EAGAIN;
}

void ovpn_rel_acked(struct ovpn_reliable *r, uint32_t id)
{
    struct ovpn_rel_msg *hit = NULL;
    for (size_t i = 0; i < OVPN_REL_SEND_WINDOW; i++)
        if (r->out[i].used && r->out[i].id == id)
            hit = &r->out[i];
    if (!hit)
        return;
    free(hit->data);
    memset(hit, 0, sizeof(*hit));
    /* An ack for a later message while an earlier one waits suggests the earlier one was lost. */
    for (size_t i = 0; i < OVPN_REL_SEND_WINDOW; i++)
        if (r->out[i].used && r->out[i].id < id)
            r->out[i].later_acks++;
}

static struct ovpn_rel_msg *ovpn_rel_oldest_due(struct ovpn_reliable *r, uint64_t now)
{
    struct ovpn_rel_msg *best = NULL;
    for (size_t i = 0; i < OVPN_REL_SEND_WINDOW; i++) {
        struct ovpn_rel_msg *m = &r->out[i];
        if (!m->used || (m->due > now && m->later_acks < OVPN_REL_FAST_RETRANSMIT))
            continue;
        if (!best || m->id < best->id)
            best = m;
    }
    return best;
}

const struct ovpn_rel_msg *ovpn_rel_next_due(struct ovpn_reliable *r, uint64_t now)
{
    struct ovpn_rel_msg *m = ovpn_rel_oldest_due(r, now);
    if (!m)
        return NULL;
    m->due = now + m->rto;
    m->later_acks = 0;
    if (m->rto < OVPN_REL_MAX_RTO_MS)
        m->rto *= 2;
    return m;
}

uint64_t ovpn_rel_next_deadline(const struct ovpn_reliable *r)
{
    uint64_t best = UINT64_MAX;
    for (size_t i = 0; i < OVPN_REL_SEND_WINDOW; i++)
        if (r->out[i].used && r->out[i].due < best)
            best = r->out[i].due;
    return best;
}

void ovpn_rel_resend_now(struct ovpn_reliable *r, uint64_t now)
{
    for (size_t i = 0; i < OVPN_REL_SEND_WINDOW; i++)
        if (r->out[i].used)
            r->out[i].due = now;
}

int ovpn_rel_all_acked(const struct ovpn_reliable *r)
{
    for (size_t i = 0; i < OVPN_REL_SEND_WINDOW; i++)
        if (r->out[i].used)
            return 0;
    return 1;
}

static void ovpn_rel_queue_ack(struct ovpn_reliable *r, uint32_t id)
{
    for (size_t i = 0; i < r->n_acks; i++)
        if (r->acks[i] == id)
            return;
    if (r->n_acks == OVPN_REL_MAX_ACKS) {
        /* Full: drop the oldest; its message will be retransmitted and acked again. */
        memmove(r->acks, r->acks + 1, (OVPN_REL_MAX_ACKS - 1) * sizeof(r->acks[0]));
        r->n_acks--;
    }
    r->acks[r->n_acks++] = id;
}

int ovpn_rel_receive(struct ovpn_reliable *r, uint8_t op, uint32_t id, const uint8_t *data, size_t len)
{
    /* Ids wrap only after 2^32 messages; a session renegotiates long before. */
    if (id - r->recv_next >= OVPN_REL_RECV_WINDOW && id >= r->recv_next)
        return 0; /* too far ahead: not acked, so the peer sends it again later */
    ovpn_rel_queue_ack(r, id);
    if (id < r->recv_next)
        return 0; /* already delivered */
    for (size_t i = 0; i < OVPN_REL_RECV_WINDOW; i++)
        if (r->in[i].used && r->in[i].id == id)
            return 0;
    for (size_t i = 0; i < OVPN_REL_RECV_WINDOW; i++) {
        struct ovpn_rel_msg *m = &r->in[i];
        if (m->used)
            continue;
        return ovpn_rel_store(m, op, id, data, len) < 0 ? -ENOMEM : 1;
    }
    return 0;
}

const struct ovpn_rel_msg *ovpn_rel_peek(const struct ovpn_reliable *r)
{
    for (size_t i = 0; i < OVPN_REL_RECV_WINDOW; i++)
        if (r->in[i].used && r->in[i].id == r->recv_next)
            return &r->in[i];
    return NULL;
}

void ovpn_rel_delivered(struct ovpn_reliable *r)
{
    for (size_t i = 0; i < OVPN_REL_RECV_WINDOW; i++) {
        struct ovpn_rel_msg *m = &r->in[i];
        if (m->used && m->id == r->recv_next) {
            free(m->data);
            memset(m, 0, sizeof(*m));
            r->recv_next++;
            return;
        }
    }
}

static void ovpn_rel_remember(struct ovpn_reliable *r, uint32_t id)
{
    size_t i;
    for (i = 0; i < r->n_recent && r->recent[i] != id; i++)
        ;
    if (i == r->n_recent && r->n_recent < OVPN_REL_RECENT_ACKS)
        r->n_recent++;
    if (i == r->n_recent)
        i = r->n_recent - 1;
    memmove(r->recent + 1, r->recent, i * sizeof(r->recent[0]));
    r->recent[0] = id;
}

size_t ovpn_rel_take_acks(struct ovpn_reliable *r, uint32_t *ids, size_t max)
{
    size_t n = r->n_acks < max ? r->n_acks : max;
    memcpy(ids, r->acks, n * sizeof(ids[0]));
    memmove(r->acks, r->acks + n, (r->n_acks - n) * sizeof(r->acks[0]));
    r->n_acks -= n;
    for (size_t i = 0; i < n; i++)
        ovpn_rel_remember(r, ids[i]);
    return n;
}

size_t ovpn_rel_add_recent_acks(const struct ovpn_reliable *r, uint32_t *ids, size_t n, size_t max)
{
    for (size_t i = 0; i < r->n_recent && n < max; i++) {
        size_t k;
        for (k = 0; k < n && ids[k] != r->recent[i]; k++)
            ;
        if (k == n)
            ids[n++] = r->recent[i];
    }
    return n;
}

size_t ovpn_rel_pending_acks(const struct ovpn_reliable *r)
{
    return r->n_acks;
}
