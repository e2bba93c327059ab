/* recvmmsg() slots laid over one buffer, for the readers that drain a datagram socket in batches
 * (tunnel/fd.c, tunnel/openvpn/transport.c). recvmmsg() is a GNU extension: the including file
 * defines _GNU_SOURCE before its first include. */
#ifndef VPN2SOCKS_BASE_MMSG_H
#define VPN2SOCKS_BASE_MMSG_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* Slot i of msgs/iov reads into buf + i * size (size bytes), every header cleared. */
static inline void v2s_mmsg_slots(struct mmsghdr *msgs, struct iovec *iov, unsigned n, uint8_t *buf, size_t size)
{
    memset(msgs, 0, (size_t)n * sizeof(*msgs));
    for (unsigned i = 0; i < n; i++) {
        iov[i].iov_base = buf + (size_t)i * size;
        iov[i].iov_len = size;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
}

#endif
