/* The bookkeeping of a relayed connection, written once for every outbound: its name in the log,
 * the lines that say it opened and how it closed, and the reset that passes an error across. */
#include "route/outbound.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <uv.h>

#include "base/log.h"

void outbound_free_closed(struct outbound *ob, void *mem)
{
    void (*cb)(void *) = ob->close_cb;
    void *arg = ob->close_arg;
    free(mem);
    if (cb)
        cb(arg);
}

void outbound_label(char *buf, size_t cap, const char *client, const char *name, const struct v2s_addr *dst,
                    uint16_t port, const char *via)
{
    char where[V2S_ADDR_STRLEN];
    v2s_addr_format_port(dst, port, where, sizeof(where));
    if (!name || strcmp(name, where) == 0 || v2s_addr_parse(&(struct v2s_addr){0}, name) == 0)
        snprintf(buf, cap, "%s -> %s (%s)", client, where, via);
    else
        snprintf(buf, cap, "%s -> %s:%u [%s] (%s)", client, name, port, where, via);
}

void outbound_log_open(const char *label)
{
    v2s_info("%s open", label);
}

void outbound_log_closed(const char *label, int reset, uint64_t up, uint64_t down)
{
    v2s_info("%s closed%s (%llu bytes up, %llu down)", label, reset ? " by reset" : "", (unsigned long long)up,
             (unsigned long long)down);
}

void outbound_set_reset(uv_tcp_t *h)
{
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)h, &fd) == 0) {
        struct linger l = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    }
}
