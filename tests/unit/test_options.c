/* app/options.c: the connection caps, the handshake timeout, --allow-direct-local, and which
 * listen addresses only this host can reach. */
#include <errno.h>
#include <netinet/in.h>

#include "app/options.h"
#include "test.h"

/* Parses a command line given as one string of words; returns what options_parse() returned. */
static int parse(struct options *o, const char *line, char *err, size_t errcap)
{
    static char buf[512];
    char *argv[32];
    int argc = 0;
    snprintf(buf, sizeof(buf), "vpn2socks %s", line);
    for (char *w = strtok(buf, " "); w && argc < 31; w = strtok(NULL, " "))
        argv[argc++] = w;
    argv[argc] = NULL;
    options_init(o);
    return options_parse(o, argc, argv, err, errcap);
}

TEST_IMPL(options_caps_and_timeouts)
{
    struct options o;
    char err[256];

    ASSERT_EQ(parse(&o, "-D 1080", err, sizeof(err)), 0);
    ASSERT_EQ(o.max_conns, 4096);
    ASSERT_EQ(o.listener_max_conns, 1024);
    ASSERT_EQ(o.handshake_timeout_ms, 10000);
    ASSERT_EQ(o.route.allow_direct_local, 0);
    ASSERT(!o.max_conns_given && !o.listener_max_conns_given);
    options_free(&o);

    ASSERT_EQ(parse(&o, "-D 1080 --max-connections 50 --listener-max-connections 20 --handshake-timeout 3 "
                        "--allow-direct-local", err, sizeof(err)), 0);
    ASSERT_EQ(o.max_conns, 50);
    ASSERT_EQ(o.listener_max_conns, 20);
    ASSERT_EQ(o.handshake_timeout_ms, 3000);
    ASSERT_EQ(o.route.allow_direct_local, 1);
    ASSERT(o.max_conns_given && o.listener_max_conns_given);
    options_free(&o);

    static const struct {
        const char *line;
        const char *message;
    } bad[] = {
        {"-D 1080 --max-connections 0", "--max-connections 0: expected a number of connections from 1 to 1000000"},
        {"-D 1080 --max-connections -5", "--max-connections -5: expected a number of connections from 1 to 1000000"},
        {"-D 1080 --max-connections 1000001", "--max-connections 1000001: expected a number of connections from 1 to 1000000"},
        {"-D 1080 --listener-max-connections x", "--listener-max-connections x: expected a number of connections from 1 to 1000000"},
        {"-D 1080 --handshake-timeout 0", "--handshake-timeout 0: expected seconds from 1 to 3600"},
        {"-D 1080 --handshake-timeout 3601", "--handshake-timeout 3601: expected seconds from 1 to 3600"},
        {"-D 1080 --handshake-timeout", "--handshake-timeout needs a value"},
        {"-D 1080 --allow-direct-local=yes", "unknown option --allow-direct-local=yes"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        err[0] = '\0';
        ASSERT_ROW(parse(&o, bad[i].line, err, sizeof(err)) == -EINVAL, "%s", bad[i].line);
        ASSERT_ROW(strcmp(err, bad[i].message) == 0, "%s: got \"%s\"", bad[i].line, err);
        options_free(&o);
    }
    return 0;
}

TEST_IMPL(options_listen_loopback)
{
    static const struct {
        const char *text;
        int loopback;
    } rows[] = {
        {"1080", 1},
        {"127.0.0.1:1080", 1},
        {"127.1.2.3:1080", 1},
        {"localhost:1080", 1},
        {"[::1]:1080", 1},
        {"[::ffff:127.0.0.1]:1080", 1},
        {"0.0.0.0:1080", 0},
        {"*:1080", 0},
        {"[::]:1080", 0},
        {"192.168.1.10:1080", 0},
        {"[fe80::1]:1080", 0},
        {"[::ffff:10.0.0.1]:1080", 0},
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct sockaddr_storage ss;
        ASSERT_ROW(options_parse_listen(&ss, rows[i].text) == 0, "%s", rows[i].text);
        ASSERT_ROW(options_listen_is_loopback((const struct sockaddr *)&ss) == rows[i].loopback, "%s",
                   rows[i].text);
    }
    return 0;
}
