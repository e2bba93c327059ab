#include "stack/packet.h"

#include <string.h>

enum {
    IPPROTO_TCP_NUM = 6,
    TCP_FLAG_ACK = 0x10,
    TCP_FLAGS_MASK = 0x3F, /* URG ACK PSH RST SYN FIN */
    TCP_OPT_END = 0,
    TCP_OPT_NOP = 1,
    TCP_OPT_SACK = 5,
};

enum packet_tcp_kind packet_classify_tcp(const uint8_t *pkt, size_t len, struct packet_tcp_info *info)
{
    size_t ihl;
    if (len >= 20 && pkt[0] >> 4 == 4) {
        ihl = (size_t)(pkt[0] & 15) * 4;
        if (pkt[9] != IPPROTO_TCP_NUM || ihl < 20 || (((pkt[6] & 0x3F) << 8) | pkt[7]))
            return PACKET_NOT_TCP; /* not TCP, or a fragment (MF set or an offset) */
        info->key[0] = 4;
        memcpy(info->key + 1, pkt + 12, 8);
        info->key_len = 1 + 8 + 4;
    } else if (len >= 40 && pkt[0] >> 4 == 6) {
        ihl = 40;
        if (pkt[6] != IPPROTO_TCP_NUM)
            return PACKET_NOT_TCP;
        info->key[0] = 6;
        memcpy(info->key + 1, pkt + 8, 32);
        info->key_len = 1 + 32 + 4;
    } else {
        return PACKET_NOT_TCP;
    }
    if (len < ihl + 20)
        return PACKET_NOT_TCP;
    const uint8_t *tcp = pkt + ihl;
    memcpy(info->key + info->key_len - 4, tcp, 4);
    info->ackno = (uint32_t)tcp[8] << 24 | (uint32_t)tcp[9] << 16 | (uint32_t)tcp[10] << 8 | tcp[11];
    size_t doff = (size_t)(tcp[12] >> 4) * 4;
    if (doff < 20 || len != ihl + doff || (tcp[13] & TCP_FLAGS_MASK) != TCP_FLAG_ACK)
        return PACKET_TCP_OTHER;
    for (size_t i = 20; i < doff;) {
        uint8_t kind = tcp[i];
        if (kind == TCP_OPT_END)
            break;
        if (kind == TCP_OPT_NOP) {
            i++;
            continue;
        }
        if (kind == TCP_OPT_SACK || i + 1 >= doff || tcp[i + 1] < 2 || i + tcp[i + 1] > doff)
            return PACKET_TCP_OTHER; /* SACK blocks, or options we cannot walk */
        i += tcp[i + 1];
    }
    return PACKET_TCP_PURE_ACK;
}
