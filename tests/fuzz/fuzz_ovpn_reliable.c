/* libFuzzer target for the control channel's reliability layer (tunnel/openvpn/reliable.c): the
 * input is a script of calls (send, ack, time passing, receive, deliver, take acks) in any order a
 * hostile server could cause, checked after every step against a small model of what
 * reliable.h promises:
 *   - send: at most OVPN_REL_SEND_WINDOW unacknowledged, ids 0, 1, 2... in order;
 *   - retransmission: a message comes back for the wire when its timeout expired (first at once,
 *     then 2 s doubling up to 32 s) or after three acks of later ones, oldest id first, its bytes
 *     intact, and never once acked; the next deadline is the earliest one;
 *   - receive: a new id inside the window is kept, anything else is not; every id not too far
 *     ahead is acked (duplicates too), each pending once, at most OVPN_REL_MAX_ACKS, oldest
 *     first; delivery is strictly in id order, each message once, with the bytes that first
 *     arrived for its id;
 *   - acks taken are repeated later, newest first, without duplicates.
 * Byte 0 of each step picks the call; the bytes after it are its arguments. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tunnel/openvpn/proto.h"
#include "tunnel/openvpn/reliable.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { FUZZ_MAX_HELD = 64 };

struct fuzz_in {
    const uint8_t *p;
    size_t left;
};

static uint8_t fuzz_u8(struct fuzz_in *in)
{
    if (in->left == 0)
        return 0;
    in->left--;
    return *in->p++;
}

static uint32_t fuzz_u32(struct fuzz_in *in)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v = v << 8 | fuzz_u8(in);
    return v;
}

/* Up to n bytes of the input, in place. */
static const uint8_t *fuzz_take(struct fuzz_in *in, size_t *n)
{
    if (*n > in->left)
        *n = in->left;
    const uint8_t *p = in->p;
    in->p += *n;
    in->left -= *n;
    return p;
}

struct fuzz_sent {
    int used;
    uint32_t id;
    uint8_t op;
    const uint8_t *data;
    size_t len;
    uint64_t due;
    unsigned rto, later_acks;
};

struct fuzz_held {
    uint32_t id;
    uint8_t op;
    const uint8_t *data;
    size_t len;
};

struct fuzz_model {
    uint64_t now;
    uint32_t send_next;
    struct fuzz_sent out[OVPN_REL_SEND_WINDOW]; /* by slot, in no order */
    uint32_t recv_next;
    struct fuzz_held held[FUZZ_MAX_HELD];
    size_t n_held;
    uint32_t acks[OVPN_REL_MAX_ACKS];
    size_t n_acks;
    uint32_t recent[OVPN_REL_RECENT_ACKS];
    size_t n_recent;
};

static size_t fuzz_outstanding(const struct fuzz_model *m)
{
    size_t n = 0;
    for (size_t i = 0; i < OVPN_REL_SEND_WINDOW; i++)
        n += m->out[i].used != 0;
    return n;
}

static struct fuzz_sent *fuzz_find_sent(struct fuzz_model *m, uint32_t id)
{
    for (size_t i = 0; i < OVPN_REL_SEND_WINDOW; i++)
        if (m->out[i].used && m->out[i].id == id)
            return &m->out[i];
    return NULL;
}

static struct fuzz_held *fuzz_find_held(struct fuzz_model *m, uint32_t id)
{
    for (size_t i = 0; i < m->n_held; i++)
        if (m->held[i].id == id)
            return &m->held[i];
    return NULL;
}

static void fuzz_send(struct ovpn_reliable *r, struct fuzz_model *m, struct fuzz_in *in)
{
    uint8_t b = fuzz_u8(in);
    uint8_t op = (b & 1) ? OVPN_OP_CONTROL_V1 : OVPN_OP_CONTROL_SOFT_RESET_V1;
    size_t len = b >> 1;
    const uint8_t *data = fuzz_take(in, &len);
    int64_t id = ovpn_rel_send(r, op, data, len, m->now);
    if (fuzz_outstanding(m) == OVPN_REL_SEND_WINDOW) {
        if (id != -EAGAIN)
            abort();
        return;
    }
    if (id != (int64_t)m->send_next)
        abort();
    for (size_t i = 0; i < OVPN_REL_SEND_WINDOW; i++) {
        if (m->out[i].used)
            continue;
        m->out[i] = (struct fuzz_sent){1, m->send_next++, op, data, len, m->now, OVPN_REL_INITIAL_RTO_MS, 0};
        return;
    }
}

static void fuzz_ack(struct ovpn_reliable *r, struct fuzz_model *m, struct fuzz_in *in)
{
    uint8_t b = fuzz_u8(in);
    /* Mostly ids we sent (acked or not); sometimes any id at all. */
    uint32_t id = (b & 0x80) ? fuzz_u32(in) : m->send_next - 1 - (uint32_t)(b % 8);
    ovpn_rel_acked(r, id);
    struct fuzz_sent *s = fuzz_find_sent(m, id);
    if (s == NULL)
        return;
    s->used = 0;
    for (size_t i = 0; i < OVPN_REL_SEND_WINDOW; i++)
        if (m->out[i].used && m->out[i].id < id)
            m->out[i].later_acks++;
}

/* The model's next message for the wire: the oldest due one, or NULL. */
static struct fuzz_sent *fuzz_due(struct fuzz_model *m)
{
    struct fuzz_sent *best = NULL;
    for (size_t i = 0; i < OVPN_REL_SEND_WINDOW; i++) {
        struct fuzz_sent *s = &m->out[i];
        if (s->used && (s->due <= m->now || s->later_acks >= OVPN_REL_FAST_RETRANSMIT) && (!best || s->id < best->id))
            best = s;
    }
    return best;
}

static void fuzz_time(struct ovpn_reliable *r, struct fuzz_model *m, struct fuzz_in *in)
{
    m->now += (uint64_t)fuzz_u8(in) * 250;
    for (;;) {
        const struct ovpn_rel_msg *got = ovpn_rel_next_due(r, m->now);
        struct fuzz_sent *want = fuzz_due(m);
        if (got == NULL || want == NULL) {
            if ((got == NULL) != (want == NULL))
                abort();
            break;
        }
        if (got->id != want->id || got->op != want->op || got->len != want->len ||
            (want->len && memcmp(got->data, want->data, want->len) != 0))
            abort();
        want->due = m->now + want->rto;
        want->later_acks = 0;
        if (want->rto < OVPN_REL_MAX_RTO_MS)
            want->rto *= 2;
        if (got->due != want->due || got->rto != want->rto || want->rto > 2 * OVPN_REL_MAX_RTO_MS)
            abort();
    }
    uint64_t deadline = UINT64_MAX;
    for (size_t i = 0; i < OVPN_REL_SEND_WINDOW; i++)
        if (m->out[i].used && m->out[i].due < deadline)
            deadline = m->out[i].due;
    if (ovpn_rel_next_deadline(r) != deadline)
        abort();
}

static void fuzz_receive(struct ovpn_reliable *r, struct fuzz_model *m, struct fuzz_in *in)
{
    uint8_t b = fuzz_u8(in);
    /* Mostly ids near the next expected one (behind it, in the window, just past it); sometimes
     * any id at all. */
    uint32_t id = (b & 0x80) ? fuzz_u32(in) : m->recv_next + (uint32_t)(b % 20) - 4;
    uint8_t l = fuzz_u8(in);
    uint8_t op = (l & 1) ? OVPN_OP_CONTROL_V1 : OVPN_OP_CONTROL_HARD_RESET_SERVER_V2;
    size_t len = l >> 1;
    const uint8_t *data = fuzz_take(in, &len);
    int rc = ovpn_rel_receive(r, op, id, data, len);

    int too_far = id - m->recv_next >= OVPN_REL_RECV_WINDOW && id >= m->recv_next;
    int keep = !too_far && id >= m->recv_next && fuzz_find_held(m, id) == NULL;
    if (rc != keep)
        abort();
    if (!too_far) {
        size_t i;
        for (i = 0; i < m->n_acks && m->acks[i] != id; i++)
            ;
        if (i == m->n_acks) {
            if (m->n_acks == OVPN_REL_MAX_ACKS) {
                memmove(m->acks, m->acks + 1, (OVPN_REL_MAX_ACKS - 1) * sizeof(m->acks[0]));
                m->n_acks--;
            }
            m->acks[m->n_acks++] = id;
        }
    }
    if (keep) {
        if (m->n_held == FUZZ_MAX_HELD || m->n_held >= OVPN_REL_RECV_WINDOW)
            abort(); /* the window bounds what is held */
        m->held[m->n_held++] = (struct fuzz_held){id, op, data, len};
    }
}

static void fuzz_deliver(struct ovpn_reliable *r, struct fuzz_model *m, struct fuzz_in *in)
{
    uint8_t b = fuzz_u8(in);
    for (unsigned n = 0; n <= b % 4; n++) {
        const struct ovpn_rel_msg *got = ovpn_rel_peek(r);
        struct fuzz_held *want = fuzz_find_held(m, m->recv_next);
        if (got == NULL || want == NULL) {
            if (got != NULL || want != NULL)
                abort();
            return;
        }
        if (got->id != want->id || got->op != want->op || got->len != want->len ||
            (want->len && memcmp(got->data, want->data, want->len) != 0))
            abort();
        ovpn_rel_delivered(r);
        *want = m->held[--m->n_held];
        m->recv_next++;
    }
}

static void fuzz_take_acks(struct ovpn_reliable *r, struct fuzz_model *m, struct fuzz_in *in)
{
    uint8_t b = fuzz_u8(in);
    size_t max = b % (OVPN_MAX_ACKS_ACK + 1), extra = (b >> 4) % (OVPN_MAX_ACKS_ACK + 1);
    uint32_t ids[2 * OVPN_MAX_ACKS_ACK];
    size_t n = ovpn_rel_take_acks(r, ids, max);
    size_t want = m->n_acks < max ? m->n_acks : max;
    if (n != want || (n && memcmp(ids, m->acks, n * sizeof(ids[0])) != 0))
        abort();
    memmove(m->acks, m->acks + n, (m->n_acks - n) * sizeof(m->acks[0]));
    m->n_acks -= n;
    /* The model's recent list: most recently taken first, each id once, the oldest falls off. */
    for (size_t k = 0; k < n; k++) {
        size_t i;
        for (i = 0; i < m->n_recent && m->recent[i] != ids[k]; i++)
            ;
        if (i == m->n_recent) {
            if (m->n_recent < OVPN_REL_RECENT_ACKS)
                m->n_recent++;
            i = m->n_recent - 1;
        }
        memmove(m->recent + 1, m->recent, i * sizeof(m->recent[0]));
        m->recent[0] = ids[k];
    }
    /* Repeats fill spare room after the fresh acks, without duplicates. */
    size_t room = n + extra;
    size_t total = ovpn_rel_add_recent_acks(r, ids, n, room);
    size_t expect = n;
    for (size_t i = 0; i < m->n_recent && expect < room; i++) {
        int dup = 0;
        for (size_t k = 0; k < n; k++)
            dup |= ids[k] == m->recent[i];
        if (!dup && ids[expect++] != m->recent[i])
            abort();
    }
    if (total != expect)
        abort();
}

static void fuzz_check(const struct ovpn_reliable *r, struct fuzz_model *m)
{
    size_t out = fuzz_outstanding(m);
    if (ovpn_rel_can_send(r) != (out < OVPN_REL_SEND_WINDOW) || ovpn_rel_all_acked(r) != (out == 0) ||
        ovpn_rel_pending_acks(r) != m->n_acks || m->n_acks > OVPN_REL_MAX_ACKS)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ovpn_reliable r;
    static struct fuzz_model m;
    struct fuzz_in in = {data, size};
    if (size > 8192)
        return 0;
    memset(&m, 0, sizeof(m));
    m.now = 1000;
    ovpn_rel_init(&r);
    while (in.left) {
        switch (fuzz_u8(&in) % 6) {
        case 0: fuzz_send(&r, &m, &in); break;
        case 1: fuzz_ack(&r, &m, &in); break;
        case 2: fuzz_time(&r, &m, &in); break;
        case 3: fuzz_receive(&r, &m, &in); break;
        case 4: fuzz_deliver(&r, &m, &in); break;
        default: fuzz_take_acks(&r, &m, &in); break;
        }
        fuzz_check(&r, &m);
    }
    ovpn_rel_free(&r);
    return 0;
}
