/* The VPN client process watch's pidfd (see vpn_watch.h). */
#include "app/vpn_watch.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

int vpn_watch_open(long pid, int *fd)
{
    int r = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
    if (r >= 0) {
        *fd = r;
        return 0;
    }
    /* openconnect exited (and was reaped) before we got here: ESRCH, not "cannot watch". */
    if (errno == ESRCH)
        return VPN_WATCH_GONE;
    return -errno;
}

long vpn_watch_openconnect_parent(void)
{
    pid_t ppid = getppid();
    if (ppid <= 1)
        return 0;
    char path[64], name[32] = "";
    snprintf(path, sizeof(path), "/proc/%ld/comm", (long)ppid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    int got = fgets(name, sizeof(name), f) != NULL;
    fclose(f);
    return got && strcmp(name, "openconnect\n") == 0 ? (long)ppid : 0;
}
