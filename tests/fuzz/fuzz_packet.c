/* libFuzzer target for stack/packet.c, what stack.c reads of a packet from the tunnel before lwIP
 * does: the input is one IP packet, handed to every reader on an exact-size copy so that any read
 * past its end is caught. What each says must agree with the packet: an intact ICMP packet is no
 * longer than what arrived, and an error or packet too big parsed from it names one family. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "stack/packet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *pkt = malloc(size ? size : 1);
    if (!pkt)
        return 0;
    memcpy(pkt, data, size);
    struct packet_tcp_info info;
    enum packet_tcp_kind kind = packet_classify_tcp(pkt, size, &info);
    if (kind != PACKET_NOT_TCP && info.key_len > sizeof(info.key))
        abort();
    (void)packet_ip6_drop(pkt, size);
    (void)packet_udp_drop(pkt, size);
    size_t n = packet_icmp_intact(pkt, size);
    if (n > size || (n != 0 && n < 28))
        abort();
    struct packet_icmp_error err;
    if (packet_parse_icmp_error(pkt, size, &err)) {
        if (err.src.family != err.dst.family || (err.proto != PACKET_PROTO_TCP && err.proto != PACKET_PROTO_UDP))
            abort();
    }
    struct packet_too_big tb;
    if (packet_parse_icmp6_too_big(pkt, size, &tb) && (tb.src.family != AF_INET6 || tb.dst.family != AF_INET6))
        abort();
    if (n != 0) {
        /* stack.c reads the errors within the length packet_icmp_intact() gave. */
        (void)packet_parse_icmp_error(pkt, n, &err);
        (void)packet_parse_icmp6_too_big(pkt, n, &tb);
    }
    free(pkt);
    return 0;
}
