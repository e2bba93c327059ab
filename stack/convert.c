/* Conversions at the one boundary that meets lwIP: addresses (and which of them no host behind
 * the VPN can have) and lwIP's error codes, into what the rest of vpn2socks uses. */
#include <string.h>
#include <sys/socket.h>

#include <uv.h>

#include "lwip/ip_addr.h"
#include "stack/internal.h"

void stack_addr_to_lwip(const struct v2s_addr *a, ip_addr_t *out)
{
    if (a->family == AF_INET6) {
        IP_SET_TYPE(out, IPADDR_TYPE_V6);
        memcpy(ip_2_ip6(out)->addr, a->bytes, 16);
        ip6_addr_clear_zone(ip_2_ip6(out));
    } else {
        IP_SET_TYPE(out, IPADDR_TYPE_V4);
        memcpy(&ip_2_ip4(out)->addr, a->bytes, 4);
    }
}

int stack_addr_no_host(const ip_addr_t *ip)
{
    if (IP_IS_V6(ip))
        return ip6_addr_isany(ip_2_ip6(ip)) || ip6_addr_isloopback(ip_2_ip6(ip));
    u32_t top = lwip_ntohl(ip4_addr_get_u32(ip_2_ip4(ip))) >> 24;
    return top == 0 || top == 127;
}

void stack_addr_from_lwip(const ip_addr_t *a, struct v2s_addr *out)
{
    memset(out, 0, sizeof(*out));
    if (IP_IS_V6(a)) {
        out->family = AF_INET6;
        memcpy(out->bytes, ip_2_ip6(a)->addr, 16);
    } else {
        out->family = AF_INET;
        memcpy(out->bytes, &ip_2_ip4(a)->addr, 4);
    }
}

int stack_err_to_uv(err_t err)
{
    switch (err) {
    case ERR_OK: return 0;
    case ERR_MEM: return UV_ENOMEM;
    case ERR_BUF: return UV_ENOBUFS;
    case ERR_TIMEOUT: return UV_ETIMEDOUT;
    case ERR_RTE: return UV_ENETUNREACH;
    case ERR_INPROGRESS: return UV_EAGAIN;
    case ERR_VAL: return UV_EINVAL;
    case ERR_WOULDBLOCK: return UV_EAGAIN;
    case ERR_USE: return UV_EADDRINUSE;
    case ERR_ALREADY: return UV_EALREADY;
    case ERR_ISCONN: return UV_EISCONN;
    case ERR_CONN: return UV_ENOTCONN;
    case ERR_IF: return UV_ENETDOWN;
    case ERR_ABRT: return UV_ECONNABORTED;
    case ERR_RST: return UV_ECONNRESET;
    case ERR_CLSD: return UV_ENOTCONN;
    case ERR_ARG: return UV_EINVAL;
    default: return UV_EIO;
    }
}
