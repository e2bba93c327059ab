/* lwIP configuration for vpn2socks. lwIP terminates the tunnel's IP packets inside this process:
 * it owns the address the VPN assigned, and its TCP and UDP pcbs are bridged to local sockets.
 * Every value says why it is set. */
#ifndef VPN2SOCKS_LWIPOPTS_H
#define VPN2SOCKS_LWIPOPTS_H

/* One thread, one libuv loop: no OS layer, raw API only. */
#define NO_SYS                      1
/* lwIP is only ever entered from the loop thread, so no critical sections are needed. */
#define SYS_LIGHTWEIGHT_PROT        0
#define LWIP_NETCONN                0
#define LWIP_SOCKET                 0
/* lwIP time comes from uv_now() (stack/sys.c); timers run from one uv timer. */
#define LWIP_TIMERS                 1

/* Memory: the C allocator for the heap and for every pool. Receive windows are large and a pbuf
 * that lwIP hands over is kept until the application has the bytes, so fixed pools would either
 * waste memory or drop packets under load; glibc's thread caches make this cheap. */
#define MEM_LIBC_MALLOC             1
/* ... through stack/sys.c, which counts what lwIP holds (see "Fair shares" in stack/tcp_budget.c). */
#include <stddef.h>
void *stack_mem_malloc(size_t size);
void *stack_mem_calloc(size_t n, size_t size);
void stack_mem_free(void *p);
#define mem_clib_malloc             stack_mem_malloc
#define mem_clib_calloc             stack_mem_calloc
#define mem_clib_free               stack_mem_free
#define MEMP_MEM_MALLOC             1
#define MEM_ALIGNMENT               8
/* Only used as bounds by lwIP's sanity checks when pools are malloc-backed. */
#define MEMP_NUM_PBUF               4096
#define MEMP_NUM_TCP_PCB            65535
#define MEMP_NUM_TCP_PCB_LISTEN     64
/* Not a cap either (each pcb is a ~60-byte malloc): sized for what may be open at once, one pcb
 * per -L/udp flow (up to 64 forwards of 256 flows each: 16384), per stack_udp socket and per DNS
 * lookup, with room to spare; the flow caps are the real bound. */
#define MEMP_NUM_UDP_PCB            32768
#define MEMP_NUM_TCP_SEG            65535
#define MEMP_NUM_REASSDATA          64
#define MEMP_NUM_FRAG_PBUF          256
#define PBUF_POOL_SIZE              1024
/* One pool pbuf holds a whole packet of the largest tunnel MTU we expect, so a packet coming out
 * of the tunnel is a single contiguous buffer. */
#define PBUF_POOL_BUFSIZE           1600

/* Protocols. */
#define LWIP_IPV4                   1
#define LWIP_IPV6                   1
#define LWIP_TCP                    1
#define LWIP_UDP                    1
#define LWIP_RAW                    0
#define LWIP_ICMP                   1
#define LWIP_ARP                    0   /* a tunnel is point-to-point: no link layer */
#define LWIP_ETHERNET               0
#define LWIP_DHCP                   0
#define LWIP_AUTOIP                 0
#define LWIP_IGMP                   0
#define LWIP_DNS                    0   /* our resolver (stack/resolver.c) queries the tunnel's servers */
#define LWIP_IPV6_MLD               0
#define LWIP_IPV6_AUTOCONFIG        0
#define LWIP_IPV6_DHCP6             0
#define LWIP_IPV6_SEND_ROUTER_SOLICIT 0
#define LWIP_ND6_QUEUEING           0
#define LWIP_IPV6_SCOPES            0   /* tunnel addresses are global; scopes add cost for nothing */
#define LWIP_IPV6_NUM_ADDRESSES     3
#define LWIP_IPV6_FRAG              1
#define LWIP_IPV6_REASS             1
/* Pointers are 8 bytes here, so the reassembly bookkeeping does not fit in the IPv6 fragment
 * header lwIP would otherwise overwrite; keep a copy of it instead. */
#define IPV6_FRAG_COPYHEADER        1
/* Servers may send fragments (DNS answers, UDP); reassemble, and fragment what we send. */
#define IP_REASSEMBLY               1
#define IP_FRAG                     1
/* The bound on fragments waiting for the rest of their datagram, for IPv4 and for IPv6 each
 * (MEMP_NUM_REASSDATA is none with malloc'd pools): past it lwIP gives up the oldest datagrams,
 * and what stays incomplete is given up after IP_REASS_MAXAGE (15 s) or IPV6_REASS_MAXAGE (60 s).
 * Each fragment is one packet from the tunnel in a buffer of its size (stack_input()), so a
 * flood of fragments that never complete holds 512 tunnel MTUs per family (about 750 KiB at
 * 1500), at most 32 MiB of 64 KiB packets where the tunnel passes those. Overlapping and
 * repeated fragments are dropped (IP_REASS_CHECK_OVERLAP), the first copy kept; a datagram
 * longer than 65535 bytes is never put together; fragments past the last one are put in, and
 * udp.c drops such a datagram by its UDP length (stack_udp_length_ok()). */
#define IP_REASS_MAX_PBUFS          512
#define IP_DEFAULT_TTL              64

/* Packets from the tunnel are hostile until checked: verify every checksum. We generate ours. */
#define CHECKSUM_CHECK_IP           1
#define CHECKSUM_CHECK_TCP          1
#define CHECKSUM_CHECK_UDP          1
#define CHECKSUM_CHECK_ICMP         1
#define CHECKSUM_CHECK_ICMP6        1
#define LWIP_CHECKSUM_ON_COPY       1   /* checksum while copying application data into pbufs */
/* Our checksum loop (stack/chksum.c, 3-4 times as fast as lwIP's on a full segment). lwIP's
 * own that sums 32-bit words (its default sums 16-bit ones) is still built, for the unit test
 * that compares the two; checksums were ~10 % of our user-space CPU in a UDP download with it. */
#include <stdint.h>
uint16_t stack_chksum(const void *data, int len);
#define LWIP_CHKSUM                 stack_chksum
#define LWIP_CHKSUM_ALGORITHM       3

/* TCP sized for the bandwidth-delay product: a 30 ms path at 1 Gbit/s holds ~3.75 MB. The
 * windows are limits, not allocations: memory is only taken by data actually in flight or
 * waiting for a slow application. */
#define TCP_MSS                     1460 /* upper bound; the real MSS follows the netif MTU */
#define TCP_CALCULATE_EFF_SEND_MSS  1
#define LWIP_WND_SCALE              1
#define TCP_RCV_SCALE               7    /* window field counts 128-byte units: up to 8 MiB */
/* 4 MiB receive window; must fit in 0xFFFF << TCP_RCV_SCALE. With 2 MiB a 30 ms path topped
 * out at 59 MiB/s (window / round trip). */
#define TCP_WND                     (4 * 1024 * 1024)
/* Send buffer to match; tcpwnd_size_t is 32 bits once window scaling is on. */
#define TCP_SND_BUF                 (4 * 1024 * 1024)
/* Segments queued for sending; a u16, so bounded below 65535. */
#define TCP_SND_QUEUELEN            ((4 * (TCP_SND_BUF) + (TCP_MSS - 1)) / (TCP_MSS))
/* The writable mark is a u16 even with a larger send buffer: keep it below 0xFFFF - 4 * TCP_MSS. */
#define TCP_SNDLOWAT                (32 * 1024)
#define TCP_SNDQUEUELOWAT           LWIP_MAX(((TCP_SND_QUEUELEN) / 2), 5)
/* Send a window update once the application has taken a quarter of the window. */
#define TCP_WND_UPDATE_THRESHOLD    ((TCP_WND) / 4)
/* Keep out-of-order segments so a single loss costs one retransmit, not a window. */
#define TCP_QUEUE_OOSEQ             1
#define TCP_OOSEQ_MAX_BYTES         (TCP_WND)
#define TCP_OOSEQ_MAX_PBUFS         4096
#define LWIP_TCP_SACK_OUT           1
#define LWIP_TCP_MAX_SACK_NUM       4
/* As a sender lwIP ignores the peer's SACK blocks and repairs a second loss in a window only by
 * its retransmission timer; stack/recovery.c reads them from the input hook and resends every
 * lost segment within one round trip. Its per-connection state hangs on one ext arg; the other
 * holds when a listener's SYN-ACK left (stack/tcp_listen.c), lwIP timing it only in 50 ms ticks. */
#define LWIP_HOOK_FILENAME          "lwip_hooks.h"
#define LWIP_HOOK_TCP_INPACKET_PCB(pcb, hdr, optlen, opt1len, opt2, p) \
    stack_hook_tcp_input((pcb), (hdr), (optlen), (opt1len), (opt2), (p))
#define LWIP_TCP_PCB_NUM_EXT_ARGS   2
/* lwIP's pure ACKs carry snd_nxt even past the peer's window, where Linux drops them whole; the
 * output hook puts them at the window's edge (stack/recovery.c). */
#define LWIP_HOOK_TCP_OUT_ADD_TCPOPTS(p, hdr, pcb, opts) stack_recovery_output((p), (hdr), (pcb), (opts))
/* lwIP's TCP timers tick every TCP_TMR_INTERVAL (delayed ACKs) and twice that (retransmission,
 * in whole ticks). The default 250 ms makes the shortest retransmission timeout 1.5 s, long
 * stalls on a path with a round trip of a millisecond; 25 ms gives 150 ms, near Linux's 200 ms
 * floor, for 40 wakeups a second, each walking every connection, while a connection has
 * something on those timers; idle connections stop the tick (stack/timers.c). */
#define TCP_TMR_INTERVAL            25
/* So the timeouts are ours (stack/timers.c): lwIP's would tick TCP while any connection exists. */
#define LWIP_TIMERS_CUSTOM          1
/* lwIP sizes the options of every segment it queues or sends with this hook: a touched
 * connection restarts the TCP tick before lwIP reads tcp_ticks (stack/timers.c). */
#define LWIP_HOOK_TCP_OUT_TCPOPT_LENGTH(pcb, internal_len) (stack_timers_tcp_touched(), (internal_len))
#define TCP_OVERSIZE                TCP_MSS
#define LWIP_TCP_TIMESTAMPS         1
/* Counts the handshakes half done per listener, so a SYN flood is bounded (the bound itself:
 * stack/tcp_listen.c). */
#define TCP_LISTEN_BACKLOG          1
/* SOF_REUSEADDR exists: a listener (stack/tcp_listen.c) can open again on a port whose earlier
 * connections are still open or in TIME_WAIT. Nothing else sets the flag. */
#define SO_REUSE                    1
#define LWIP_TCP_KEEPALIVE          1
/* SYN retries bound how long a connect to a silent host takes; the SOCKS layer has its own,
 * shorter timeout on top. */
#define TCP_SYNMAXRTX               6
#define TCP_MAXRTX                  12

/* ISNs and ephemeral ports must not be predictable, or a host on the VPN side that can spoof a
 * destination's address could forge its SYN-ACK and inject data: ISNs are RFC 6528's (a keyed
 * hash of the 4-tuple plus a clock, stack/sys.c), local ports are drawn at random for each
 * connection (stack/tcp.c, stack/resolver.c), both from getrandom(). */
#define LWIP_HOOK_TCP_ISN(local_ip, local_port, remote_ip, remote_port) \
    stack_tcp_isn((local_ip), (local_port), (remote_ip), (remote_port))
unsigned int stack_random(void);
#define LWIP_RAND()                 (stack_random())

/* Callbacks we use; the rest off. */
#define LWIP_NETIF_STATUS_CALLBACK  0
#define LWIP_NETIF_LINK_CALLBACK    0
#define LWIP_NETIF_API              0
#define LWIP_SINGLE_NETIF           0
#define LWIP_HAVE_LOOPIF            0
#define LWIP_NETIF_LOOPBACK         0

/* lwIP's protocol counters (a few increments per packet): what the tunnel sent that lwIP
 * dropped, by reason, for stack_log_stats() at exit and on SIGUSR1. Nothing else. */
#define LWIP_STATS                  1
#define LWIP_STATS_LARGE            1
#define LWIP_STATS_DISPLAY          0
#define LINK_STATS                  0
#define ETHARP_STATS                0
#define IP_STATS                    1
#define IPFRAG_STATS                1
#define ICMP_STATS                  1
#define IGMP_STATS                  0
#define UDP_STATS                   1
#define TCP_STATS                   1
#define MEM_STATS                   0
#define MEMP_STATS                  0
#define SYS_STATS                   0
#define IP6_STATS                   1
#define ICMP6_STATS                 1
#define IP6_FRAG_STATS              1
#define MLD6_STATS                  0
#define ND6_STATS                   0
#define LWIP_DEBUG                  0

#endif
