/* The stack's counters: lwIP's per-protocol drops and ours, as log lines (SIGUSR1, and at the
 * close) and as numbers for /metrics (stack_get_stats). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "lwip/stats.h"
#include "stack/internal.h"
#include "stack/lwip_hooks.h"

/* One protocol's drops in words, appended to buf if any. lwIP counts checksum, length, protocol
 * and option errors apart; "drop" is every packet it dropped, those included. */
static void stack_stats_proto(char *buf, size_t size, const char *name, const struct stats_proto *p)
{
    if (p->drop == 0 && p->chkerr == 0 && p->lenerr == 0 && p->proterr == 0 && p->opterr == 0 &&
        p->memerr == 0)
        return;
    size_t n = strlen(buf);
    snprintf(buf + n, size - n,
             "%s%s %lu dropped (%lu bad checksum, %lu bad length, %lu not taken by protocol, %lu bad "
             "options, %lu no memory)",
             n ? "; " : "", name, (unsigned long)p->drop, (unsigned long)p->chkerr, (unsigned long)p->lenerr,
             (unsigned long)p->proterr, (unsigned long)p->opterr, (unsigned long)p->memerr);
}

void stack_log_stats(const struct stack *s)
{
    char drops[1024] = "";
    stack_stats_proto(drops, sizeof(drops), "IPv4", &lwip_stats.ip);
    stack_stats_proto(drops, sizeof(drops), "IPv4 fragments", &lwip_stats.ip_frag);
    stack_stats_proto(drops, sizeof(drops), "IPv6", &lwip_stats.ip6);
    stack_stats_proto(drops, sizeof(drops), "IPv6 fragments", &lwip_stats.ip6_frag);
    stack_stats_proto(drops, sizeof(drops), "ICMP", &lwip_stats.icmp);
    stack_stats_proto(drops, sizeof(drops), "ICMPv6", &lwip_stats.icmp6);
    stack_stats_proto(drops, sizeof(drops), "UDP", &lwip_stats.udp);
    stack_stats_proto(drops, sizeof(drops), "TCP", &lwip_stats.tcp);
    v2s_info("stack: from the tunnel %llu IPv4 and %llu IPv6 packets; %llu not taken (malformed or no memory), "
             "%llu ICMP errors ignored (naming no connection we opened)%s%s",
             (unsigned long long)lwip_stats.ip.recv, (unsigned long long)lwip_stats.ip6.recv,
             (unsigned long long)s->rx_bad, (unsigned long long)s->icmp_ignored, drops[0] ? "; " : "", drops);
    if (s->udp_in || s->udp_out || s->udp_dropped)
        v2s_info("stack: UDP sockets: %llu datagrams in, %llu out, %llu dropped", (unsigned long long)s->udp_in,
                 (unsigned long long)s->udp_out, (unsigned long long)s->udp_dropped);
    unsigned long episodes, resent, lost_resends, synack;
    stack_recovery_stats(&episodes, &resent, &lost_resends, &synack);
    v2s_info("stack: SACK loss recovery: %lu episodes, %lu segments resent (%lu of them lost again); %lu resends "
             "for a repeated SYN-ACK; "
             "%zu bytes in lwIP's heap (at most %zu), %llu reclaims of out-of-order data; held for "
             "applications %zu bytes (at most %zu), budgets cut to a share %llu times",
             episodes, resent, lost_resends, synack, stack_mem_bytes(), s->mem_mark, (unsigned long long)s->reclaims,
             s->rx_held, s->rx_held_peak, (unsigned long long)s->withholds);
    unsigned long timer_resends, timeouts, tail_probes;
    stack_recovery_timer_stats(&timer_resends, &timeouts, &tail_probes);
    v2s_info("stack: recovery timer resends %lu; tail loss probes %lu; retransmission timeouts (with SACK) %lu",
             timer_resends, tail_probes, timeouts);
}

const char *stack_drop_reason_name(enum stack_drop_reason r)
{
    static const char *const names[STACK_DROP_REASONS] = {
        "not_taken", "checksum", "length", "protocol", "options", "memory", "other", "icmp_ignored", "udp",
    };
    return (unsigned)r < STACK_DROP_REASONS ? names[r] : "?";
}

void stack_get_stats(const struct stack *s, struct stack_stats *out)
{
    const struct stats_proto *protos[] = {&lwip_stats.ip,   &lwip_stats.ip_frag, &lwip_stats.ip6, &lwip_stats.ip6_frag,
                                          &lwip_stats.icmp, &lwip_stats.icmp6,   &lwip_stats.udp, &lwip_stats.tcp};
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++) {
        const struct stats_proto *p = protos[i];
        uint64_t named = (uint64_t)p->chkerr + p->lenerr + p->proterr + p->opterr + p->memerr;
        out->dropped[STACK_DROP_CHECKSUM] += p->chkerr;
        out->dropped[STACK_DROP_LENGTH] += p->lenerr;
        out->dropped[STACK_DROP_PROTOCOL] += p->proterr;
        out->dropped[STACK_DROP_OPTIONS] += p->opterr;
        out->dropped[STACK_DROP_MEMORY] += p->memerr;
        if (p->drop > named)
            out->dropped[STACK_DROP_OTHER] += p->drop - named;
    }
    out->dropped[STACK_DROP_NOT_TAKEN] = s->rx_bad;
    out->dropped[STACK_DROP_ICMP_IGNORED] = s->icmp_ignored;
    out->dropped[STACK_DROP_UDP] = s->udp_dropped;
    out->heap_bytes = stack_mem_bytes();
    out->held_bytes = s->rx_held;
    out->dns_queries = s->dns_queries;
    out->dns_cache_hits = s->dns_cache_hits;
    out->dns_failures = s->dns_failures;
}
