/* The one lwIP we build against: 2.1.3, the release scripts/fetch-lwip.sh fetches (Debian's
 * 2.1.3+dfsg1 source package, whose patches leave src/core alone). Parts of stack/ reach past
 * lwIP's raw API into its TCP internals, which lwIP may change in any release without notice, so
 * every file that does includes this header and a different lwIP does not compile. To move to
 * another lwIP, re-check each item below against its source (and rerun the fault harness,
 * ctest -L unit, and the lab's loss, guard, load and faults tests), then change the numbers here.
 *
 * lwIP internals we touch, where, and why:
 *
 * lwip/priv/tcp_priv.h (not an API):
 *   - TCP_SLOW_INTERVAL, the tick of lwIP's retransmission timer: tcp.c converts its RTO values
 *     (milliseconds) into the pcb's ticks.
 *   - tcp_rexmit_rto(): tcp.c resends the SYN and the first flight on its own timers (lwIP would
 *     resend the SYN every second without backing off, and the first flight on its 50 ms ticks).
 *   - tcp_rexmit_rto_prepare(): recovery.c resends at once when the peer repeats its SYN-ACK.
 *   - tcp_split_unsent_seg(): recovery.c fits a resent segment to the peer's window.
 *   - tcp_free_ooseq(): tcp_budget.c gives out-of-order data back under memory pressure.
 *   - struct tcp_seg (next, p, len, tcphdr) and tcp_seg_free(): tcp_ooseq.c joins neighbouring
 *     segments on pcb->ooseq (pbuf_cat() of their pbufs, len summed up to 0xFFFF), relying on
 *     tcp_receive() reading an ooseq entry only through those fields and the flags in tcphdr, and
 *     counting pbufs with pbuf_clen() for TCP_OOSEQ_MAX_PBUFS; tcp_output() from the input hook,
 *     where tcp_input_pcb is not yet set, for the ACK of a segment it drops.
 *   - TCP_SEQ_*, TCPH_FLAGS, TCP_TCPLEN, TCP_HLEN, SND_WND_SCALE and the TF_* pcb flags:
 *     recovery.c and stack.c (the ACK thinning compares sequence numbers).
 *   - tcp_ack_now() (sets TF_ACK_NOW, which the tcp_output() at the end of tcp_input() acts
 *     on): stack.c's input hook, for data at the left edge of a hole (lwIP's tcp_ack() would
 *     only set TF_ACK_DELAY for an odd segment); it reads state, ooseq and rcv_nxt for it.
 *   - tcp_active_pcbs, tcp_tw_pcbs: tests/unit/harness.c, for failure reports only; timers.c
 *     walks both to decide whether the TCP tick may sleep (tests/unit/test_stack_idle.c reads
 *     pcb->last_timer to see the tick walk them).
 *   - tcp_tw_pcbs (local_port, tmr) and tcp_abort() of a TIME_WAIT pcb: tcp.c takes the port of
 *     the oldest one when every random port is held (stack_tcp_bind_port()).
 *   - tcp_fasttmr(), tcp_slowtmr(), tcp_ticks (written), TCP_FIN_WAIT_TIMEOUT, TCP_MSL: timers.c
 *     drives lwIP's TCP timers itself in place of tcp_tmr(), mirrors tcp_slowtmr()'s tests on
 *     tcp_ticks - pcb->tmr, and moves tcp_ticks on by the slow ticks it skipped.
 *
 * LWIP_TIMERS_CUSTOM: timers.c implements sys_timeouts_init(), sys_timeout(), sys_untimeout(),
 * sys_check_timeouts() and sys_timeouts_sleeptime(), and starts lwip_cyclic_timers[] but for
 * tcp_tmr; lwIP's tcp_timer_needed() is then empty, so nothing but timers.c's hooks restarts TCP.
 *
 * struct tcp_pcb fields written (lwIP reads them on its own schedule):
 *   - rto, sa, sv, nrtx, rttest, rtime: tcp.c seeds the RTT estimator from the handshake (lwIP's
 *     units: ticks, sa = 8 * SRTT, sv = 4 * RTTVAR), holds lwIP's timer off (rto 0x7FFF) while
 *     the SYN and the first flight are ours, and gives it back; recovery.c and recovery_timer.c
 *     clear rttest and rtime after a resend (Karn).
 *   - rtime: timers.c sets -1 (stopped) on a connection with nothing in flight before the TCP
 *     tick sleeps, as lwIP does when the last data is acknowledged.
 *   - mss: pmtu.c lowers it to a path MTU a packet too big gave (stack_pmtu_fit_mss()), only
 *     while nothing is unsent or unacknowledged, as tcp_write() asserts that the last unsent
 *     segment fits it and tcp_slowtmr()'s RTO sets cwnd to one MSS for what it resends; it
 *     walks tcp_active_pcbs and reads remote_ip, local_ip, ports, lastack and snd_nxt to match
 *     the packet too big to a connection.
 *   - snd_wnd_max (read by lwIP only in tcp_write(), to size segments): tcp_send.c raises it to
 *     twice the MSS while it is 0 or 1, so that the size tcp_write() makes never shrinks below a
 *     segment still unsent (its "mss_local is too small" assertion). stack.c's input hook also
 *     reads it, with lastack and snd_nxt (which lwIP never moves back), to drop a segment whose
 *     ACK field no peer could send (stack_tcp_ack_unacceptable(), RFC 5961 5.2).
 *   - persist_backoff: timers.c stops the persist timer of a pcb with nothing unsent before
 *     tcp_slowtmr() (which asserts there is something: the ACK of a one-byte probe frees it),
 *     and resets a pcb let go in CLOSING that still probes 2 * TCP_MSL after its close (reads
 *     state, flags' TF_RXCLOSED, tmr and tcp_ticks, as tcp_slowtmr() does for LAST_ACK).
 *   - rcv_wnd, rcv_ann_wnd: tcp_budget.c offers only the starting budget in the handshake's ACK
 *     (it runs from the connected callback, before that ACK leaves); reads TCP_WND_MAX(), mss
 *     and ooseq.
 *   - rcv_ann_right_edge of an accepted pcb: tcp.c (stack_tcp_adopt()) puts it back to what the
 *     SYN-ACK offered, since lwIP records the whole window there once window scaling is agreed;
 *     reads rttest, nrtx and tcp_ticks for the handshake's round trip.
 *   - local_ip of a listening pcb: tcp_listen.c puts back the address a listener was given after
 *     tcp_netif_ip_addr_changed() moved it to the tunnel's new IPv4 address.
 *   - unsent, unacked, unsent_oversize: recovery.c and recovery_timer.c move lost segments from
 *     unacked back into unsent in sequence order; recovery.c re-sorts unsent when lwIP's RTO
 *     put resent data behind later segments (lwIP sends unsent strictly from its head); after
 *     lwIP's RTO it moves the segments the peer SACKed from unsent back into unacked, in
 *     sequence order, so that only the holes go again (lwIP frees them from unacked once the
 *     cumulative ACK covers them), and back into unsent if the peer then reneges on them.
 *   - unacked, for the length of one call of lwIP's tcp_output(): tcp_output.c points it at a
 *     segment further down the queue, relying on tcp_output() reading unacked only to find the
 *     queue's end (walking from it), to compare it with NULL, and to slot in a resent segment
 *     below the end (never the case when it does this); it reads tcp_input_pcb, snd_wnd, cwnd,
 *     lastack, snd_nxt and each segment's tcphdr->seqno, len and TCP_TCPLEN() as tcp_output()
 *     does, and relies on every segment and pcb being freed through mem_clib_free (sys.c).
 *   - cwnd, ssthresh, dupacks, flags (TF_INFR cleared): recovery*.c run SACK-based fast
 *     recovery in place of lwIP's, keeping lwIP's duplicate-ACK counter at zero.
 *   - struct tcp_seg.flags bits 0x20, 0x40 and 0x80 (lwIP 2.1.3 uses 0x01 to 0x10): recovery.c
 *     marks segments lost, SACKed and resent; it also reads seg->tcphdr, seg->p->ref and seg->len.
 *   - the TCP header's seqno and FIN flag in the output hook: recovery.c (below).
 *   - flags: tcp_close.c turns the TF_ACK_NOW that tcp_process() sets for a FIN received in
 *     ESTABLISHED (now CLOSE_WAIT) into TF_ACK_DELAY, from the receive callback that tcp_input()
 *     runs for the FIN before its tcp_output(); tcp_fasttmr() sends it if our FIN did not.
 *
 * struct tcp_pcb fields read:
 *   - state, flags, unacked, unsent, ooseq, refused_data, persist_backoff, nrtx, poll, tmr,
 *     keep_idle, keep_intvl, keep_cnt, keep_cnt_sent, so_options: timers.c (whether a connection
 *     needs the TCP tick, and its next deadline).
 *   - persist_backoff: recovery.c moves nothing into unacked while lwIP's persist timer runs
 *     (tcp_slowtmr() asserts that nothing is in flight then).
 *   - persist_backoff, persist_cnt, snd_wnd: tcp_send.c tells from them that the persist timer
 *     sent a zero-window probe (lwIP 2.1.3 moves to the next slot of tcp_persist_backoff[] and
 *     restarts persist_cnt at 0 after each) and sends a pure ACK beside it.
 *   - snd_lbb, snd_nxt, cwnd: tcp_send.c bounds what lwIP holds unsent (snd_lbb - snd_nxt).
 *   - nrtx of a pcb in SYN_RCVD, in the accept callback: tcp_listen.c times the handshake only
 *     when it is 0 (lwIP 2.1.3 counts there every resent SYN-ACK, tcp_rexmit_rto_commit() on
 *     its timer and tcp_rexmit() for a repeated SYN, and clears it only in tcp_receive(), which
 *     for the handshake's ACK runs after the accept callback).
 *
 * Hooks and their exact points of call (lwipopts.h, lwip_hooks.h):
 *   - LWIP_HOOK_TCP_INPACKET_PCB: tcp_input() calls it for every segment that matches a pcb
 *     (active, TIME_WAIT or listening) before processing it, with the header already in host
 *     order (recovery.c reads SACK blocks and moves segments before lwIP acts on the ACK).
 *   - LWIP_HOOK_TCP_OUT_ADD_TCPOPTS: tcp_output_segment() and the path of segments without
 *     data (pure ACKs, keepalives) call it before the checksum is computed (recovery.c rewrites
 *     a pure ACK's seqno and takes a split FIN off).
 *   - LWIP_HOOK_TCP_OUT_TCPOPT_LENGTH: tcp_write(), tcp_create_segment(), tcp_enqueue_flags(),
 *     the empty ACK, keepalive and zero-window probe paths and an assertion in
 *     tcp_output_segment() call it to size a segment's options, before any of them reads
 *     tcp_ticks (timers.c restarts the TCP tick from it; the input hook does the same).
 *   - LWIP_HOOK_TCP_ISN (sys.c, RFC 6528 ISNs), LWIP_TCP_PCB_NUM_EXT_ARGS (recovery.c's state,
 *     and tcp_listen.c's time of the SYN-ACK).
 *   - The passive_open callback of a listening pcb's ext arg: tcp_listen_input() calls it with
 *     the new pcb in SYN_RCVD right before it queues the SYN-ACK and calls tcp_output(), so
 *     that tcp_listen.c's time is the first SYN-ACK's (an ext arg of a listening pcb survives
 *     tcp_listen_with_backlog(), which copies them; the new pcb's start empty, tcp_alloc()).
 *
 * lwIP 2.1.3 behaviours worked around, to re-check (each may be fixed, or changed, upstream):
 *   - no round-trip sample from the SYN; the SYN resent every second, seven times (tcp.c);
 *   - as a sender, SACK blocks ignored (recovery.c);
 *   - pure ACKs carry snd_nxt even past the peer's window (recovery.c, stack_faults_echo_backpressure);
 *   - the persist timer's split leaves the FIN on the first part too (recovery.c,
 *     stack_faults_fin_split);
 *   - the RTO puts unacked in front of unsent, leaving resent data out of order (recovery.c);
 *   - zero-window probes carry a byte beyond the window, so a receiver may drop them unread
 *     (Linux does), acknowledgement included (tcp_send.c adds a pure ACK);
 *   - ICMP errors never reach TCP (stack.c reads them itself, packet.c);
 *   - a packet too big is dropped unless ND6's destination cache (which our netif never fills)
 *     holds its destination, and ip6_frag() moves the payload pointers of the pbufs it cuts
 *     (stack.c keeps path MTUs and fragments flat copies itself);
 *   - ip4_reass() and ip6_reass() complete a datagram once its fragments from 0 to the last
 *     have no hole, and keep fragments past the last in it, so what udp_input() and tcp_input()
 *     get may run past the datagram's length (udp.c compares the UDP length field; it reads the
 *     header just before the payload udp_input() hands over, in the first pbuf; stack.c's TCP
 *     input hook compares the length in ip4_current_header(), the reassembled header);
 *   - after reassembling an IPv6 datagram, ip6_input() goes on with ip6_current_header() still
 *     the last fragment's, and ip6_reass() asserts on it for a fragment header inside the
 *     datagram (stack.c drops fragments whose next header is an extension header);
 *   - tcp_parseopt() takes an MSS option from any segment, before the segment is checked and
 *     without the MTU clamp of the handshake, and any MSS from 1 up (stack.c's input hook turns
 *     it into NOPs but on a SYN in SYN_SENT or LISTEN, and there raises one below
 *     STACK_TCP_MSS_FLOOR to it; it writes the options in place, after lwIP checked the sum);
 *   - ip6_input() reads an extension header's length byte (and an option's) before it checks
 *     that the header is inside the packet (stack.c drops packets that end inside one);
 *   - tcp_write() walks the whole unsent queue to find its end (tcp_send.c keeps it short);
 *   - tcp_output() walks the whole unacked queue to find its end before it sends (cmake/lwip.cmake
 *     sends lwIP's calls of it to tcp_output.c, which lets it start near the end);
 *   - an odd segment that fills a hole is acknowledged only on the next fast timer tick, and
 *     every segment past a hole at once with SACK blocks (stack.c: ACK at once on the fill,
 *     the duplicates compressed);
 *   - the error callback's ERR_CLSD once LAST_ACK completes, after which the pcb is freed
 *     (tcp.c); a pcb in TIME_WAIT freed on lwIP's timer without a callback (tcp_close.c). */
#ifndef VPN2SOCKS_STACK_LWIP_PIN_H
#define VPN2SOCKS_STACK_LWIP_PIN_H

#include "lwip/init.h"

#define STACK_LWIP_PINNED_MAJOR 2
#define STACK_LWIP_PINNED_MINOR 1
#define STACK_LWIP_PINNED_REVISION 3

#if LWIP_VERSION_MAJOR != STACK_LWIP_PINNED_MAJOR || LWIP_VERSION_MINOR != STACK_LWIP_PINNED_MINOR ||  \
    LWIP_VERSION_REVISION != STACK_LWIP_PINNED_REVISION || !LWIP_VERSION_IS_RELEASE
#error "vpn2socks needs lwIP 2.1.3 exactly: stack/ uses its TCP internals (see stack/lwip_pin.h before upgrading)"
#endif

#endif
