/* libFuzzer target for compression unframing: any payload under any framing must give an error
 * or at most cap bytes, never touching memory outside in and out (both allocated to their
 * exact size, so ASan sees an overrun); and what ovpn_comp_frame() makes, unframe undoes.
 *
 * Input: byte 0 picks the framing, byte 1 the output room; the rest is the payload. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tunnel/openvpn/comp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 2 + 65535)
        return 0;
    enum ovpn_comp_framing f = (enum ovpn_comp_framing)(data[0] % 4);
    size_t cap = data[1] == 0xFF ? 65536 : (size_t)data[1] * 16;
    size_t len = size - 2;
    uint8_t *in = malloc(len ? len : 1), *out = malloc(cap ? cap : 1);
    if (in == NULL || out == NULL)
        abort();

    memcpy(in, data + 2, len);
    const uint8_t *pkt = NULL;
    int rc = ovpn_comp_unframe(f, in, len, out, cap, &pkt);
    if (rc > (int)cap || (rc < 0 && rc != -EBADMSG && rc != -ENOSPC))
        abort();
    /* the packet is in out, or left inside in */
    if (rc > 0 && !(pkt == out || (pkt >= in && pkt + rc <= in + len)))
        abort();

    /* frame, then unframe: the payload comes back */
    size_t room = len + OVPN_COMP_MAX_OVERHEAD + 1;
    uint8_t *buf = malloc(room), *back = malloc(len ? len : 1);
    size_t start = 0;
    memcpy(buf + OVPN_COMP_MAX_OVERHEAD, data + 2, len);
    int n = ovpn_comp_frame(f, buf, len, room, &start);
    if (n < (int)len || start > OVPN_COMP_MAX_OVERHEAD || start + (size_t)n > room)
        abort();
    if (ovpn_comp_unframe(f, buf + start, (size_t)n, back, len, &pkt) != (int)len ||
        memcmp(pkt, data + 2, len) != 0)
        abort();
    free(buf);
    free(back);
    free(in);
    free(out);
    return 0;
}
