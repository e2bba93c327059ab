/* Watching the VPN client's process (openconnect's VPNPID) through a pidfd, which becomes readable
 * when the process exits: a datagram packet fd gives no EOF when the other end dies, and a killed
 * openconnect sends no SIGHUP. */
#ifndef VPN2SOCKS_APP_VPN_WATCH_H
#define VPN2SOCKS_APP_VPN_WATCH_H

enum {
    VPN_WATCH_GONE = 1, /* the process no longer exists: the tunnel is lost already */
};

/* A pidfd on process pid (> 0) in *fd: 0; VPN_WATCH_GONE, *fd untouched, when the process has
 * already ended (the watch would never fire, and the loss would be seen only when a packet write
 * failed); or a negative errno when it cannot be watched (no pidfd_open: Linux before 5.3). */
int vpn_watch_open(long pid, int *fd);

/* openconnect's pid when it is this process's parent, else 0. openconnect before 9.0 sets no
 * VPNPID; it runs its script with /bin/sh -c, which execs a single command, so vpn2socks started
 * as the script has openconnect as its parent. The parent is taken only when its name
 * (/proc/PID/comm) is openconnect: a wrapper script that put vpn2socks in the background and
 * ended must not count as the VPN client ending. */
long vpn_watch_openconnect_parent(void);

#endif
