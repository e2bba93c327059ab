/* The OpenVPN client's data channel: payloads framed (compression), encrypted with the primary key
 * (for a while after a renegotiation the one before it) and sent; packets from the server
 * decrypted with the key their id names, unframed and handed to the stack, keepalive pings and
 * exit notifications taken out; every drop counted by reason. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "tunnel/openvpn/comp.h"
#include "tunnel/openvpn/data.h"
#include "tunnel/openvpn/internal.h"

/* The key data goes out with: the primary, or after a renegotiation for a while the key before
 * it (timers.c says how long), unless that one is gone, can send no more, or is worn: past
 * reneg-bytes or reneg-pkts (the user asked for no more on one key), its packet ids or AEAD
 * usage near their end. A worn key goes as soon as a new one is in, as it did before; what a
 * server that authenticates the new key late drops then is the price of that limit. */
static struct ovpn_ks *ovpn_client_send_key(struct ovpn_client *c)
{
    struct ovpn_ks *ks = &c->keys[ovpn_timers_send_slot(&c->timers, c->primary)];
    if (ks != &c->keys[c->primary] &&
        (!ks->used || !ks->data || ovpn_data_key_spent(ks->data) ||
         ovpn_data_renegotiate_due(ks->data, c->cfg->reneg_bytes, c->cfg->reneg_pkts) != OVPN_DATA_RENEG_NONE))
        ks = &c->keys[c->primary];
    return ks;
}

int ovpn_client_send_data(struct ovpn_client *c, const uint8_t *payload, size_t len)
{
    if (c->primary < 0 || !c->keys[c->primary].data || !c->transport)
        return -ENETDOWN;
    if (len > OVPN_MAX_PACKET - 64)
        return -EMSGSIZE;
    const uint8_t *framed = payload;
    size_t flen = len;
    if (!ovpn_comp_frame_is_identity(c->comp, payload, len)) {
        size_t start;
        memcpy(c->buf2 + OVPN_COMP_MAX_OVERHEAD, payload, len);
        int m = ovpn_comp_frame(c->comp, c->buf2, len, OVPN_BUF, &start);
        if (m < 0)
            return m;
        framed = c->buf2 + start;
        flen = (size_t)m;
    }
    struct ovpn_ks *ks = ovpn_client_send_key(c);
    int n = ovpn_data_encrypt(ks->data, framed, flen, c->buf, OVPN_BUF);
    if (n == -EOVERFLOW && ks != &c->keys[c->primary]) {
        /* The old key is used up: the new one takes over now. */
        ks = &c->keys[c->primary];
        n = ovpn_data_encrypt(ks->data, framed, flen, c->buf, OVPN_BUF);
    }
    if (n == -EOVERFLOW) {
        /* Renegotiation starts long before this (timers.c); this key cannot send any more. */
        ovpn_client_renegotiate(c, "the key is used up");
        return -ENETDOWN;
    }
    if (n < 0)
        return n;
    c->tx_packets++;
    ovpn_client_link_send(c, c->buf, (size_t)n);
    ovpn_timers_data_moved(&c->timers, ks);
    return 0;
}

void ovpn_client_send_ping(struct ovpn_client *c)
{
    ovpn_client_send_data(c, ovpn_ping_magic, sizeof(ovpn_ping_magic));
}

/* Counts a data packet dropped by ovpn_data_decrypt() with rc. */
static void ovpn_client_count_drop(struct ovpn_client *c, int rc)
{
    struct ovpn_drop_counts *d = &c->drops;
    const char *why;
    switch (rc) {
    case -EALREADY:
        d->replayed++;
        why = "replayed";
        break;
    case -EBADMSG:
        d->bad_auth++;
        why = "authentication failed";
        break;
    case -EKEYEXPIRED:
        d->worn_key++;
        why = "its key failed authentication too often";
        break;
    case -ENOSPC:
        d->too_big++;
        why = "too big";
        break;
    default:
        d->malformed++;
        why = "malformed";
        break;
    }
    v2s_debug("openvpn: data packet dropped: %s", why);
}

void ovpn_client_on_data(struct ovpn_client *c, const uint8_t *pkt, size_t len)
{
    struct ovpn_ks *ks = ovpn_ks_find(c, OVPN_KEY_ID_OF(pkt[0]));
    if (!ks || !ks->data) {
        c->drops.unknown_key++;
        v2s_debug("openvpn: data packet dropped: no data key %u", OVPN_KEY_ID_OF(pkt[0]));
        return;
    }
    int n = ovpn_data_decrypt(ks->data, pkt, len, c->rx, OVPN_BUF);
    if (n < 0) {
        ovpn_client_count_drop(c, n);
        return;
    }
    ovpn_timers_packet_received(&c->timers);
    ovpn_timers_peer_sent(&c->timers, ovpn_ks_slot(c, ks));
    c->rx_packets++;
    ovpn_timers_data_moved(&c->timers, ks);
    /* The framing byte says whether the server compressed it: LZO, LZ4, or v2's algorithm byte. */
    if (c->comp != OVPN_COMP_FRAMING_NONE && n >= 2 &&
        (c->rx[0] == 0x66 || c->rx[0] == 0x69 || (c->rx[0] == 0x50 && c->rx[1] != 0)))
        c->rx_compressed++;
    const uint8_t *ip = NULL;
    int ipl = ovpn_comp_unframe(c->comp, c->rx, (size_t)n, c->buf3, OVPN_BUF, &ip);
    if (ipl < 0) {
        c->drops.decompress++;
        v2s_debug("openvpn: data packet dropped: bad compression framing");
        return;
    }
    /* A keepalive ping, or nothing at all once the framing byte is off (OpenVPN writes only a
     * payload that is not empty to its TUN): neither is an IP packet, for the stack or for the
     * packets_in count. Both still showed the server alive, above. */
    if (ipl == 0 ||
        (ipl == (int)sizeof(ovpn_ping_magic) && memcmp(ip, ovpn_ping_magic, sizeof(ovpn_ping_magic)) == 0))
        return;
    if (ipl > (int)sizeof(ovpn_occ_magic) && memcmp(ip, ovpn_occ_magic, sizeof(ovpn_occ_magic)) == 0) {
        if (ip[sizeof(ovpn_occ_magic)] == OVPN_OCC_EXIT)
            ovpn_client_enter_restart(c, "the server is going away (exit notification)");
        return;
    }
    if (ovpn_client_data_flows(c)) {
        c->rx_ip_packets++;
        c->rx_bytes += (size_t)ipl;
        c->t.ev.packet(c->t.ev.arg, ip, (size_t)ipl);
    }
    else
        c->drops.not_up++;
}

void ovpn_client_drop_counts(const struct tunnel *t, struct ovpn_drop_counts *out)
{
    *out = ((const struct ovpn_client *)t)->drops;
}

int ovpn_drop_counts_format(const struct ovpn_drop_counts *d, char *out, size_t cap)
{
    return snprintf(out, cap,
                    "%llu bad tag/HMAC, %llu replayed, %llu malformed, %llu unknown key, %llu on a worn-out key, "
                    "%llu bad compression, %llu too big, %llu before the tunnel was up",
                    (unsigned long long)d->bad_auth, (unsigned long long)d->replayed,
                    (unsigned long long)d->malformed, (unsigned long long)d->unknown_key,
                    (unsigned long long)d->worn_key, (unsigned long long)d->decompress,
                    (unsigned long long)d->too_big, (unsigned long long)d->not_up);
}
