/* app/vpn_watch.c: the VPN client's process watch. A process that has already ended (reaped, as
 * openconnect is by its parent) is reported gone at once, not as one that cannot be watched; a
 * running one gives a pidfd that turns readable when it exits. */
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "app/vpn_watch.h"
#include "test.h"

TEST_IMPL(vpn_watch_already_gone)
{
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0)
        _exit(0);
    ASSERT_EQ(waitpid(pid, NULL, 0), pid);
    int fd = -1;
    ASSERT_EQ(vpn_watch_open(pid, &fd), VPN_WATCH_GONE);
    ASSERT_EQ(fd, -1);
    return 0;
}

TEST_IMPL(vpn_watch_running_then_exits)
{
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        pause();
        _exit(0);
    }
    int fd = -1;
    ASSERT_EQ(vpn_watch_open(pid, &fd), 0);
    ASSERT(fd >= 0);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    ASSERT_EQ(poll(&p, 1, 0), 0);
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    ASSERT_EQ(poll(&p, 1, 5000), 1);
    ASSERT(p.revents & POLLIN);
    ASSERT_EQ(waitpid(pid, NULL, 0), pid);
    close(fd);
    return 0;
}
