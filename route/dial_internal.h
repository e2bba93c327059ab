/* What dial.c (TCP connections) and dial_udp.c (UDP associations) share: the routed outbound
 * (route/dial.h) itself, and the steps both take for a destination. */
#ifndef VPN2SOCKS_ROUTE_DIAL_INTERNAL_H
#define VPN2SOCKS_ROUTE_DIAL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "base/addr.h"
#include "base/list.h"
#include "route/dial.h"
#include "route/outbound.h"
#include "route/router.h"

enum {
    DIAL_NAME_MAX = 256, /* a name's IDNA form: a longer one is no DNS name (253 and a dot) */
};

struct dialer {
    struct outbound ob;
    struct dial_config cfg;
    struct v2s_list dials; /* every dial not yet bridged, failed or freed */
    struct v2s_list udps;  /* every UDP association not yet closed by its owner */
    struct v2s_list retry; /* dials whose attempt failed, waiting for retry_timer */
    uv_timer_t retry_timer; /* started at 0 ms: the next address is tried from the loop */
    int timer_open;         /* retry_timer initialised (on the first retry) and not closed */
    int closing;
    int in_close; /* inside dialer_close(), which frees it at the end */
};

static inline struct dialer *dialer_of(struct outbound *ob)
{
    return (struct dialer *)ob;
}

/* Frees r once it is closing and nothing of it is left (dials, associations, its timer). */
void dialer_maybe_free(struct dialer *r);
/* Counts a destination's verdict in the statistics (dial_config's stats). */
void dial_count(struct dialer *r, enum router_verdict v);

struct dial_udp;
/* Split DNS for name (dial.c): ROUTER_NAME_TUNNEL, ROUTER_NAME_HOST, UV_EACCES (refused, logged;
 * once per name for a UDP association u), or UV_EINVAL (not UTF-8); ascii (DIAL_NAME_MAX bytes)
 * gets the name's IDNA form, the one to resolve. */
int dial_name_route(struct dialer *r, const char *name, const char *shown, struct dial_udp *u, char *ascii);
/* What a lookup that could not start (rc < 0) tells the caller (UV_EINVAL: UV_EAI_NONAME). */
int dial_lookup_failed(int rc);
/* 0 and *out when name is an address rather than a name to resolve: a.b.c.d, an IPv6 address,
 * or one in brackets ("[2001:db8::1]"); else -EINVAL. */
int dial_name_numeric(const char *name, struct v2s_addr *out);

/* The UDP side (dial_udp.c): the outbound_ops of an association, a log line once per association
 * and destination, and the end of every association of a closing dialer. */
int dial_udp_open(struct outbound *ob, outbound_udp_recv_cb recv, void *arg, struct outbound_udp **out);
int dial_udp_send(struct outbound_udp *base, const char *name, const struct v2s_addr *dst, uint16_t port,
                  const uint8_t *data, size_t len);
void dial_udp_close(struct outbound_udp *base);
void dial_udp_log_once(struct dial_udp *u, const char *where, const char *why);
void dial_udp_end_all(struct dialer *r);

#endif
