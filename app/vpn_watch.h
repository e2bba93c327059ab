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

#endif
