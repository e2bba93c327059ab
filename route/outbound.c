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

const char *outbound_strerror(int status)
{
    if (status == UV_ELOOP)
        return "one of this vpn2socks's own listeners: refused, it would loop";
    return uv_strerror(status);
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

size_t outbound_label_fields(const char *label, struct outbound_label_parts *p, struct v2s_log_field *f)
{
    p->client = p->destination = p->address = p->via = NULL;
    snprintf(p->buf, sizeof(p->buf), "%s", label);
    char *arrow = strstr(p->buf, " -> ");
    if (!arrow)
        arrow = strstr(p->buf, " <- ");
    char *open = strrchr(p->buf, '(');
    size_t len = strlen(p->buf);
    if (!arrow || !open || open < arrow + 6 || open[-1] != ' ' || p->buf[len - 1] != ')')
        return 0;
    *arrow = '\0';
    open[-1] = '\0';
    p->buf[len - 1] = '\0';
    p->client = p->buf;
    p->destination = arrow + 4;
    p->via = open + 1;
    /* "name:port [addr:port]": the name the client asked for, then the address it became. */
    char *bracket = NULL;
    for (char *b = strstr(arrow + 4, " ["); b; b = strstr(b + 1, " ["))
        bracket = b;
    if (bracket && bracket[strlen(bracket) - 1] == ']') {
        *bracket = '\0';
        bracket[strlen(bracket + 1)] = '\0';
        p->address = bracket + 2;
    }
    size_t n = 0;
    f[n++] = V2S_LOG_TEXT("client", p->client);
    f[n++] = V2S_LOG_TEXT("destination", p->destination);
    if (p->address)
        f[n++] = V2S_LOG_TEXT("address", p->address);
    f[n++] = V2S_LOG_TEXT("via", p->via);
    return n;
}

void outbound_log_open(const char *label)
{
    if (!V2S_LOG_ENABLED(V2S_LOG_INFO))
        return;
    struct outbound_label_parts parts;
    struct v2s_log_field f[4];
    /* The fields are for JSON lines only; a plain line is the label itself. */
    size_t n = v2s_log_format == V2S_LOG_JSON ? outbound_label_fields(label, &parts, f) : 0;
    v2s_log_event(V2S_LOG_INFO, "relay_open", f, n, "%s open", label);
}

void outbound_log_closed(const char *label, int reset, uint64_t up, uint64_t down)
{
    if (!V2S_LOG_ENABLED(V2S_LOG_INFO))
        return;
    struct outbound_label_parts parts;
    struct v2s_log_field f[7];
    size_t n = v2s_log_format == V2S_LOG_JSON ? outbound_label_fields(label, &parts, f) : 0;
    f[n++] = V2S_LOG_NUM("bytes_up", up);
    f[n++] = V2S_LOG_NUM("bytes_down", down);
    f[n++] = V2S_LOG_TEXT("end", reset ? "reset" : "close");
    v2s_log_event(V2S_LOG_INFO, "relay_closed", f, n, "%s closed%s (%llu bytes up, %llu down)", label,
                  reset ? " by reset" : "", (unsigned long long)up, (unsigned long long)down);
}

void outbound_set_reset(uv_tcp_t *h)
{
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)h, &fd) == 0) {
        struct linger l = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    }
}
