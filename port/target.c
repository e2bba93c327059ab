#include "port/target.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

int port_target_init(struct port_target *t, const char *host, uint16_t port)
{
    memset(t, 0, sizeof(*t));
    if (!host || !host[0] || strlen(host) > 255)
        return UV_EINVAL;
    t->port = port;
    if (v2s_addr_parse(&t->addr, host) == 0) {
        /* ::ffff:a.b.c.d is the IPv4 host a.b.c.d: the routed outbound sends to it as such
         * (route/dial.c), so -L/udp's answers come from a.b.c.d and are matched against it. */
        v2s_addr_unmap_v4(&t->addr);
        v2s_addr_format_port(&t->addr, port, t->text, sizeof(t->text));
        return 0;
    }
    memset(&t->addr, 0, sizeof(t->addr));
    if (!(t->name = strdup(host)))
        return UV_ENOMEM;
    char shown[256];
    snprintf(t->text, sizeof(t->text), "%s:%u", v2s_shown(t->name, shown, sizeof(shown)), port);
    return 0;
}

void port_target_free(struct port_target *t)
{
    free(t->name);
    t->name = NULL;
}
