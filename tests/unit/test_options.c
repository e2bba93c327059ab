/* app/options.c: the connection caps, the handshake timeout, --allow-direct-local, and which
 * listen addresses only this host can reach; and app/version.c, what --version prints. */
#include <errno.h>
#include <netinet/in.h>

#include <openssl/crypto.h>
#include <uv.h>

#include "app/options.h"
#include "app/version.h"
#include "base/addr.h"
#include "base/log.h"
#include "lwip/init.h"
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

/* A command line options_parse() must refuse, and the message it must give. */
struct refused {
    const char *line;
    const char *message;
};

/* Checks each row of bad[] is refused with -EINVAL and exactly its message. */
static void expect_refused(const struct refused *bad, size_t n)
{
    struct options o;
    char err[256];
    for (size_t i = 0; i < n; i++) {
        err[0] = '\0';
        ASSERT_ROW(parse(&o, bad[i].line, err, sizeof(err)) == -EINVAL, "%s", bad[i].line);
        ASSERT_ROW(strcmp(err, bad[i].message) == 0, "%s: got \"%s\"", bad[i].line, err);
        options_free(&o);
    }
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
    ASSERT(o.socks_auth == NULL);
    options_free(&o);

    ASSERT_EQ(parse(&o, "-D 1080 --socks-auth /etc/vpn2socks/users", err, sizeof(err)), 0);
    ASSERT_STR_EQ(o.socks_auth, "/etc/vpn2socks/users");
    options_free(&o);

    static const struct refused bad[] = {
        {"-D 1080 --max-connections 0", "--max-connections 0: expected a number of connections from 1 to 1000000"},
        {"-D 1080 --max-connections -5", "--max-connections -5: expected a number of connections from 1 to 1000000"},
        {"-D 1080 --max-connections 1000001", "--max-connections 1000001: expected a number of connections from 1 to 1000000"},
        {"-D 1080 --listener-max-connections x", "--listener-max-connections x: expected a number of connections from 1 to 1000000"},
        {"-D 1080 --handshake-timeout 0", "--handshake-timeout 0: expected seconds from 1 to 3600"},
        {"-D 1080 --handshake-timeout 3601", "--handshake-timeout 3601: expected seconds from 1 to 3600"},
        {"-D 1080 --handshake-timeout", "--handshake-timeout needs a value"},
        {"-D 1080 --socks-auth", "--socks-auth needs a value"},
    };
    expect_refused(bad, ARRAY_SIZE(bad));
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

/* -L specs, good and bad: what each good one listens on and forwards to, and the message of each
 * bad one. */
TEST_IMPL(options_forward_specs)
{
    static const struct {
        const char *spec;
        const char *listen; /* NULL: refused */
        const char *host;   /* or the error text expected in the message */
        uint16_t port;
    } rows[] = {
        {"8080:db.corp.internal:5432", "127.0.0.1:8080", "db.corp.internal", 5432},
        {"0.0.0.0:5432:10.0.0.2:5432", "0.0.0.0:5432", "10.0.0.2", 5432},
        {"*:1:h:2", "0.0.0.0:1", "h", 2},
        {"localhost:8080:host:80", "127.0.0.1:8080", "host", 80},
        {"[::1]:8080:host:80", "[::1]:8080", "host", 80},
        {"8080:[2001:db8::5]:443", "127.0.0.1:8080", "2001:db8::5", 443},
        {"[::]:8080:[fd00::1]:22/tcp", "[::]:8080", "fd00::1", 22},
        {"127.0.0.2:65535:a-b_c.example:65535", "127.0.0.2:65535", "a-b_c.example", 65535},
        {"8080:host:80/sctp", NULL, "optionally followed by /tcp or /udp", 0},
        {"8080:host", NULL, "expected [ADDR:]PORT:HOST:HOSTPORT", 0},
        {"8080", NULL, "expected [ADDR:]PORT:HOST:HOSTPORT", 0},
        {"", NULL, "expected [ADDR:]PORT:HOST:HOSTPORT", 0},
        {"1:2:3:4:5", NULL, "an IPv6 address goes in brackets", 0},
        {"8080:2001:db8::5:443", NULL, "an IPv6 address goes in brackets", 0},
        {"8080:host:80:", NULL, "expected [ADDR:]PORT:HOST:HOSTPORT", 0},
        {"0:host:80", NULL, "listening [ADDR:]PORT", 0},
        {"65536:host:80", NULL, "listening [ADDR:]PORT", 0},
        {"x:host:80", NULL, "listening [ADDR:]PORT", 0},
        {"example.com:8080:host:80", NULL, "listening [ADDR:]PORT", 0},
        {"[::1:8080:host:80", NULL, "expected [ADDR:]PORT:HOST:HOSTPORT", 0},
        {"8080::80", NULL, "HOST must be", 0},
        {"8080:ho st:80", NULL, "HOST must be", 0},
        {"8080:[10.0.0.1]:80", NULL, "HOST in brackets must be an IPv6 address", 0},
        {"8080:[]:80", NULL, "HOST in brackets", 0},
        {"8080:host:0", NULL, "HOSTPORT must be a port", 0},
        {"8080:host:http", NULL, "HOSTPORT must be a port", 0},
        {"8080:host:", NULL, "expected [ADDR:]PORT:HOST:HOSTPORT", 0},
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct options_forward f;
        char err[256] = "", where[64];
        int rc = options_parse_forward(&f, rows[i].spec, 0, err, sizeof(err));
        if (!rows[i].listen) {
            ASSERT_ROW(rc == -EINVAL, "%s", rows[i].spec);
            ASSERT_ROW(strstr(err, rows[i].host) != NULL, "%s: %s", rows[i].spec, err);
            continue;
        }
        ASSERT_ROW(rc == 0, "%s: %s", rows[i].spec, err);
        v2s_sockaddr_format((const struct sockaddr *)&f.listen, where, sizeof(where));
        ASSERT_ROW(strcmp(where, rows[i].listen) == 0, "%s: %s", rows[i].spec, where);
        ASSERT_ROW(strcmp(f.host, rows[i].host) == 0, "%s: %s", rows[i].spec, f.host);
        ASSERT_ROW(f.port == rows[i].port, "%s", rows[i].spec);
        ASSERT_ROW(!f.udp && !f.remote, "%s", rows[i].spec);
    }

    /* /udp, and -R: a bare port means every tunnel address; an address must be one. */
    static const struct {
        const char *spec;
        int remote;
        const char *listen; /* NULL: refused */
        int udp;
    } kinds[] = {
        {"5353:10.0.0.2:53/udp", 0, "127.0.0.1:5353", 1},
        {"[::1]:5353:[fd00::53]:53/udp", 0, "[::1]:5353", 1},
        {"8022:127.0.0.1:22", 1, "0.0.0.0:8022", 0},
        {"10.8.0.6:8022:localhost:22", 1, "10.8.0.6:8022", 0},
        {"[fd00::6]:5353:127.0.0.1:53/udp", 1, "[fd00::6]:5353", 1},
        {"localhost:8022:127.0.0.1:22", 1, NULL, 0},
        {"*:8022:127.0.0.1:22", 1, NULL, 0},
    };
    for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
        struct options_forward f;
        char err[256] = "", where[64];
        int rc = options_parse_forward(&f, kinds[i].spec, kinds[i].remote, err, sizeof(err));
        if (!kinds[i].listen) {
            ASSERT_ROW(rc == -EINVAL && strstr(err, "listening [ADDR:]PORT"), "%s: %s", kinds[i].spec, err);
            /* ssh's bind addresses: the message says why there is none in the tunnel. */
            ASSERT_ROW(strstr(err, "inside the tunnel") && strstr(err, "PORT alone"), "%s: %s", kinds[i].spec, err);
            continue;
        }
        ASSERT_ROW(rc == 0, "%s: %s", kinds[i].spec, err);
        v2s_sockaddr_format((const struct sockaddr *)&f.listen, where, sizeof(where));
        ASSERT_ROW(strcmp(where, kinds[i].listen) == 0, "%s: %s", kinds[i].spec, where);
        ASSERT_ROW(f.udp == kinds[i].udp && f.remote == kinds[i].remote, "%s", kinds[i].spec);
    }

    /* On the command line: repeatable, enough on its own, and a bad one names the option. */
    struct options o;
    char err[256];
    ASSERT_EQ(parse(&o, "-L 5432:db:5432 --local [::1]:8080:10.0.0.2:80", err, sizeof(err)), 0);
    ASSERT_EQ(o.n_forwards, 2);
    ASSERT_EQ(o.n_socks, 0);
    ASSERT_STR_EQ(o.forwards[1].host, "10.0.0.2");
    options_free(&o);
    /* UDP both ways, with their timeout and cap. */
    ASSERT_EQ(parse(&o, "-L 5353:10.0.0.2:53/udp -R 5000:127.0.0.1:7/udp --udp-timeout 5 --udp-max-flows 3", err,
                    sizeof(err)),
              0);
    ASSERT_EQ(o.n_forwards, 2);
    ASSERT(o.forwards[0].udp && !o.forwards[0].remote);
    ASSERT(o.forwards[1].udp && o.forwards[1].remote);
    ASSERT_EQ(o.udp_timeout_ms, 5000);
    ASSERT_EQ(o.udp_max_flows, 3);
    options_free(&o);
    /* -R over TCP, alone too. */
    ASSERT_EQ(parse(&o, "--remote 8022:localhost:22 -R [fd00::6]:8080:127.0.0.1:80", err, sizeof(err)), 0);
    ASSERT_EQ(o.n_forwards, 2);
    ASSERT(o.forwards[0].remote && o.forwards[1].remote && !o.forwards[1].udp);
    options_free(&o);
    ASSERT_EQ(parse(&o, "--local 8080", err, sizeof(err)), -EINVAL);
    ASSERT(strncmp(err, "-L 8080: expected", 17) == 0);
    options_free(&o);
    return 0;
}

/* With no listener the message names every kind there is: it stopped at -L, and a user running
 * only remote forwards (-R) was not told that they count. */
TEST_IMPL(options_nothing_to_serve)
{
    static const struct refused bad[] = {
        {"-v", "nothing to serve: give at least one listener (-D PORT, -H PORT, -L PORT:HOST:HOSTPORT or "
               "-R PORT:HOST:HOSTPORT)"},
    };
    expect_refused(bad, ARRAY_SIZE(bad));
    return 0;
}

/* Two listeners on one port are refused with both named: "-D 1080 -H 1080", or a config file's
 * `socks = 1080` beside `http = 1080`, started the first and then stopped on "HTTP listener
 * 127.0.0.1:1080: address already in use", which sent the user looking for another process that
 * held the port. A wildcard address takes the port on every address of its family; in the tunnel
 * (lwIP, SO_REUSE) one address beside all of them is allowed, as are TCP and UDP on one port. */
TEST_IMPL(options_listeners_one_port)
{
    static const struct refused bad[] = {
        {"-D 1080 -H 1080", "-D 127.0.0.1:1080 and -H 127.0.0.1:1080 listen on the same port: give each "
                            "listener its own"},
        {"-D 1080 -D localhost:1080", "-D 127.0.0.1:1080 and -D 127.0.0.1:1080 listen on the same port: give "
                                      "each listener its own"},
        {"-D 0.0.0.0:1080 -L 1080:db:5432", "-D 0.0.0.0:1080 and -L 127.0.0.1:1080 listen on the same port: give "
                                            "each listener its own"},
        {"-H [::1]:8080 -D [::]:8080", "-D [::]:8080 and -H [::1]:8080 listen on the same port: give each "
                                       "listener its own"},
        {"-D 1080 --status 1080", "-D 127.0.0.1:1080 and --status 127.0.0.1:1080 listen on the same port: give "
                                  "each listener its own"},
        {"-L 5353:ns:53/udp -L 5353:ns2:53/udp", "-L 127.0.0.1:5353/udp and -L 127.0.0.1:5353/udp listen on the "
                                                 "same port: give each listener its own"},
        {"-R 8022:h:22 -R 8022:h:23", "-R 8022 and -R 8022 listen on the same port: give each listener its own"},
        {"-R 10.0.0.2:53:ns:53/udp -R 10.0.0.2:53:ns:5353/udp", "-R 10.0.0.2:53/udp and -R 10.0.0.2:53/udp listen "
                                                                "on the same port: give each listener its own"},
    };
    expect_refused(bad, ARRAY_SIZE(bad));
    static const char *const good[] = {
        "-D 1080 -H 1081 -L 1082:db:5432 --status 1083",
        "-D 127.0.0.1:1080 -D 127.0.0.2:1080 -D [::1]:1080",
        "-L 5353:ns:53/udp -L 5353:ns:53",
        "-D 1080 -L 1080:ns:53/udp -R 1080:h:80",
        "-R 8022:h:22 -R 10.0.0.2:8022:h:23",
        "-R 8022:h:22 -R 8022:h:22/udp",
    };
    struct options o;
    char err[256];
    for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
        ASSERT_ROW(parse(&o, good[i], err, sizeof(err)) == 0, "%s: %s", good[i], err);
        options_free(&o);
    }
    return 0;
}

/* -q and -v on one command line: the last one wins, as with ssh. -v after -q counted up from
 * -q's level, so "-q -v" logged at the default level, neither quiet nor verbose. */
TEST_IMPL(options_quiet_verbose_last_wins)
{
    static const struct {
        const char *line;
        int verbosity;
    } rows[] = {
        {"-D 1080 -q -v", 1}, {"-D 1080 -q -vv", 2}, {"-D 1080 -v -q", -1},
        {"-D 1080 -vv -q -v", 1}, {"-D 1080 -vv", 2}, {"-D 1080 -q", -1},
    };
    struct options o;
    char err[256];
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        ASSERT_ROW(parse(&o, rows[i].line, err, sizeof(err)) == 0, "%s: %s", rows[i].line, err);
        ASSERT_ROW(o.verbosity == rows[i].verbosity, "%s: verbosity %d", rows[i].line, o.verbosity);
        options_free(&o);
    }
    return 0;
}

/* What only the packet fd takes is refused with --config, which brings its own tunnel: --mtu was
 * taken and ignored without a word, the .ovpn's tun-mtu (or the server's push) setting the MTU. */
TEST_IMPL(options_config_own_tunnel)
{
    static const struct refused bad[] = {
        {"--config c.ovpn --mtu 1400 -D 1080", "--config brings its own tunnel: --mtu does not apply (the MTU is "
                                               "the .ovpn's tun-mtu, or the one the server pushes)"},
        {"-D 1080 --mtu 1400 -c c.ovpn", "--config brings its own tunnel: --mtu does not apply (the MTU is the "
                                         ".ovpn's tun-mtu, or the one the server pushes)"},
        {"--config c.ovpn --tunnel-fd 3 -D 1080", "--config brings its own tunnel: --tunnel-fd and --address do "
                                                  "not apply"},
    };
    expect_refused(bad, ARRAY_SIZE(bad));
    struct options o;
    char err[256];
    ASSERT_EQ(parse(&o, "--config c.ovpn --dns 10.0.0.53 --domain corp.example -D 1080", err, sizeof(err)), 0);
    options_free(&o);
    ASSERT_EQ(parse(&o, "--tunnel-fd 3 --mtu 1400 -D 1080", err, sizeof(err)), 0);
    ASSERT_EQ(o.overrides.mtu, 1400);
    options_free(&o);
    return 0;
}

/* -H / --http: repeatable, loopback unless an address is given, enough on its own, and a bad one
 * names the option. */
TEST_IMPL(options_http_listeners)
{
    struct options o;
    char err[256], where[V2S_ADDR_STRLEN];
    ASSERT_EQ(parse(&o, "-H 8118 --http 0.0.0.0:3128 -H [::1]:8080", err, sizeof(err)), 0);
    ASSERT_EQ(o.n_http, 3);
    ASSERT_EQ(o.n_socks, 0);
    v2s_sockaddr_format((const struct sockaddr *)&o.http[0], where, sizeof(where));
    ASSERT_STR_EQ(where, "127.0.0.1:8118");
    v2s_sockaddr_format((const struct sockaddr *)&o.http[1], where, sizeof(where));
    ASSERT_STR_EQ(where, "0.0.0.0:3128");
    v2s_sockaddr_format((const struct sockaddr *)&o.http[2], where, sizeof(where));
    ASSERT_STR_EQ(where, "[::1]:8080");
    options_free(&o);
    ASSERT_EQ(parse(&o, "-H 127.0.0.1:", err, sizeof(err)), -EINVAL);
    ASSERT_STR_EQ(err, "-H 127.0.0.1:: expected [ADDR:]PORT");
    options_free(&o);
    ASSERT_EQ(parse(&o, "-H 1 -H 2 -H 3 -H 4 -H 5 -H 6 -H 7 -H 8 -H 9", err, sizeof(err)), -EINVAL);
    ASSERT(strstr(err, "too many -H listeners") != NULL);
    options_free(&o);
    return 0;
}

/* --log-format: plain by default, json on request, anything else refused with the choices. */
TEST_IMPL(options_log_format)
{
    struct options o;
    char err[256];
    ASSERT_EQ(parse(&o, "-D 1080", err, sizeof(err)), 0);
    ASSERT_EQ(o.log_format, V2S_LOG_PLAIN);
    options_free(&o);
    ASSERT_EQ(parse(&o, "-D 1080 --log-format json", err, sizeof(err)), 0);
    ASSERT_EQ(o.log_format, V2S_LOG_JSON);
    options_free(&o);
    ASSERT_EQ(parse(&o, "-D 1080 --log-format json --log-format plain", err, sizeof(err)), 0);
    ASSERT_EQ(o.log_format, V2S_LOG_PLAIN);
    options_free(&o);
    ASSERT_EQ(parse(&o, "-D 1080 --log-format xml", err, sizeof(err)), -EINVAL);
    ASSERT_STR_EQ(err, "--log-format xml: expected plain or json");
    options_free(&o);
    return 0;
}

/* --status [ADDR:]PORT: the health and metrics endpoint (not a listener: it serves nothing alone). */
TEST_IMPL(options_status)
{
    struct options o;
    char err[256], where[V2S_ADDR_STRLEN];
    ASSERT_EQ(parse(&o, "-D 1080", err, sizeof(err)), 0);
    ASSERT_EQ(o.has_status, 0);
    options_free(&o);
    ASSERT_EQ(parse(&o, "-D 1080 --status 9100", err, sizeof(err)), 0);
    ASSERT_EQ(o.has_status, 1);
    v2s_sockaddr_format((const struct sockaddr *)&o.status, where, sizeof(where));
    ASSERT_STR_EQ(where, "127.0.0.1:9100");
    options_free(&o);
    ASSERT_EQ(parse(&o, "-D 1080 --status [::1]:9100", err, sizeof(err)), 0);
    v2s_sockaddr_format((const struct sockaddr *)&o.status, where, sizeof(where));
    ASSERT_STR_EQ(where, "[::1]:9100");
    options_free(&o);
    ASSERT_EQ(parse(&o, "-D 1080 --status status.example:9100", err, sizeof(err)), -EINVAL);
    ASSERT_STR_EQ(err, "--status status.example:9100: expected [ADDR:]PORT");
    options_free(&o);
    ASSERT_EQ(parse(&o, "-D 1080 --status 70000", err, sizeof(err)), -EINVAL);
    ASSERT_STR_EQ(err, "--status 70000: expected [ADDR:]PORT");
    options_free(&o);
    ASSERT_EQ(parse(&o, "--status 9100", err, sizeof(err)), -EINVAL);
    ASSERT(strstr(err, "nothing to serve") != NULL);
    options_free(&o);
    return 0;
}

/* An unknown option is named as typed, wherever it stands: inside a cluster of short options
 * ("-xv") the message named the word before it ("-D 1080 -xv": "unknown option 1080"). */
TEST_IMPL(options_unknown_named)
{
    static const struct refused bad[] = {
        {"-D 1080 -xv", "unknown option -x"},
        {"-D 1080 -vx", "unknown option -x"},
        {"-D 1080 -v -x", "unknown option -x"},
        {"-x -D 1080", "unknown option -x"},
        {"--mtu 1400 -vxq -D 1080", "unknown option -x"},
        {"-D 1080 --bogus", "unknown option --bogus"},
        {"-D 1080 --bogus=1", "unknown option --bogus=1"},
        /* A .ovpn file given alone, as "openvpn client.ovpn" takes it: the message says where it goes. */
        {"-D 1080 client.ovpn", "unexpected argument 'client.ovpn': a .ovpn file goes after --config (-c)"},
        {"-D 1080 extra", "unexpected argument 'extra'"},
        /* After --help or --version as anywhere else (the word was ignored, and the exit 0). */
        {"-V extra", "unexpected argument 'extra'"},
        {"--version extra", "unexpected argument 'extra'"},
        {"extra --version", "unexpected argument 'extra'"},
        {"-h extra", "unexpected argument 'extra'"},
        {"--help client.ovpn", "unexpected argument 'client.ovpn': a .ovpn file goes after --config (-c)"},
        {"-V --bogus", "unknown option --bogus"},
        /* A flag given a value is named as the flag it is, not as an unknown option. */
        {"-D 1080 --allow-direct-local=yes", "--allow-direct-local takes no value: give it alone"},
        {"-D 1080 --verbose=2", "--verbose takes no value: give it alone"},
        {"-D 1080 -vD", "-vD needs a value"},
    };
    expect_refused(bad, ARRAY_SIZE(bad));
    return 0;
}

/* getopt takes a unique prefix of a long option, and an exact name over longer ones that start with
 * it (--conf is not --config). A prefix of several was "unknown option --co", which sent the user
 * looking for a typo: the message names the candidates. */
TEST_IMPL(options_long_prefixes)
{
    static const struct refused bad[] = {
        {"-D 1080 --co x", "ambiguous option --co: it could be --conf, --config or --connect-timeout"},
        {"-D 1080 --con=x", "ambiguous option --con: it could be --conf, --config or --connect-timeout"},
        {"-D 1080 --v", "ambiguous option --v: it could be --verbose or --version"},
        {"--udp 5 -D 1080", "ambiguous option --udp: it could be --udp-timeout or --udp-max-flows"},
    };
    expect_refused(bad, ARRAY_SIZE(bad));
    struct options o;
    char err[256];
    ASSERT_EQ(parse(&o, "-D 1080 --verb --confi c.ovpn --mt 1400 --tunnel 3", err, sizeof(err)), -EINVAL);
    ASSERT_STR_EQ(err, "--config brings its own tunnel: --tunnel-fd and --address do not apply");
    ASSERT_STR_EQ(o.config, "c.ovpn");
    ASSERT_EQ(o.verbosity, 1);
    options_free(&o);
    /* An exact name wins over the longer names it starts: --conf is the config file of options. */
    options_init(&o);
    char *argv[] = {"vpn2socks", "--conf", "v.conf", NULL};
    ASSERT_EQ(options_apply_args(&o, 3, argv, err, sizeof(err)), 0);
    ASSERT_STR_EQ(o.conf, "v.conf");
    ASSERT(o.config == NULL);
    options_free(&o);
    return 0;
}

/* A message about a file an option gave names the option; one about a line of the file, or about
 * another file, is left as it is. */
TEST_IMPL(options_name_file_errors)
{
    static const struct {
        const char *err, *path, *want;
    } rows[] = {
        {"/x.ovpn: No such file or directory", "/x.ovpn", "--config /x.ovpn: No such file or directory"},
        {"up holds a password that other users can read", "up",
         "--config up holds a password that other users can read"},
        {"/x.ovpn:3: unknown option 'bogus'", "/x.ovpn", "/x.ovpn:3: unknown option 'bogus'"},
        {"/x.ovpnx: No such file or directory", "/x.ovpn", "/x.ovpnx: No such file or directory"},
        {"/y: Is a directory", "/x.ovpn", "/y: Is a directory"},
        {"/x.ovpn: larger than 8 MiB", "/x.ovpn", "--config /x.ovpn: larger than"}, /* cut at 30 bytes */
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        char err[256];
        size_t cap = i == ARRAY_SIZE(rows) - 1 ? 30 : sizeof(err);
        snprintf(err, sizeof(err), "%s", rows[i].err);
        options_name_file(err, cap, "--config", rows[i].path);
        ASSERT_ROW(strcmp(err, rows[i].want) == 0, "%s: got \"%s\"", rows[i].err, err);
    }
    return 0;
}

/* --address: one of each family ("repeat for IPv4 and IPv6"); a second address of a family
 * replaced the first without a word. */
TEST_IMPL(options_address_per_family)
{
    static const struct refused bad[] = {
        {"-D 1080 --address 10.0.0.1 --address 10.0.0.2", "--address 10.0.0.2: an IPv4 address is already given "
                                                            "(one of each family)"},
        {"-D 1080 --address fd00::1 --address 10.0.0.1/24 --address fd00::2/64",
         "--address fd00::2/64: an IPv6 address is already given (one of each family)"},
    };
    struct options o;
    char err[256];
    expect_refused(bad, ARRAY_SIZE(bad));
    ASSERT_EQ(parse(&o, "-D 1080 --address 10.0.0.1/24 --address fd00::1", err, sizeof(err)), 0);
    ASSERT_EQ(o.overrides.prefix4, 24);
    ASSERT_EQ(o.overrides.prefix6, 128);
    options_free(&o);
    return 0;
}

/* Port 0 is refused for every listener, as -L and -R refuse it: it bound a port the kernel picked,
 * and the start line said "SOCKS5 proxy listening on 127.0.0.1:0", so no client could find it. */
TEST_IMPL(options_listen_port_zero)
{
    static const struct refused bad[] = {
        {"-D 0", "-D 0: expected [ADDR:]PORT"},
        {"-D 127.0.0.1:0", "-D 127.0.0.1:0: expected [ADDR:]PORT"},
        {"-D [::1]:0", "-D [::1]:0: expected [ADDR:]PORT"},
        {"-H 0", "-H 0: expected [ADDR:]PORT"},
        {"-D 1080 --status 0", "--status 0: expected [ADDR:]PORT"},
        {"-L 0:host:80", "-L 0:host:80: expected [ADDR:]PORT:HOST:HOSTPORT: the listening [ADDR:]PORT is not an IP "
                         "address and a port from 1 to 65535"},
    };
    expect_refused(bad, ARRAY_SIZE(bad));
    struct options o;
    char err[256];
    ASSERT_EQ(parse(&o, "-D 1 -H 65535 --status *:9100", err, sizeof(err)), 0);
    options_free(&o);
    return 0;
}

/* A port with a leading zero is refused, with why: "-D 01080" listened on 1080 without a word,
 * when 01080 reads as octal (576) to C's strtol and to the tools built on it. */
TEST_IMPL(options_port_leading_zero)
{
    static const struct refused bad[] = {
        {"-D 01080", "-D 01080: the port has a leading zero (a port is written in decimal)"},
        {"-D 127.0.0.1:080", "-D 127.0.0.1:080: the port has a leading zero (a port is written in decimal)"},
        {"-H [::1]:08080", "-H [::1]:08080: the port has a leading zero (a port is written in decimal)"},
        {"-D 1080 --status 09100", "--status 09100: the port has a leading zero (a port is written in decimal)"},
        {"-L 05432:db:5432", "-L 05432:db:5432: expected [ADDR:]PORT:HOST:HOSTPORT: the listening PORT 05432 has a "
                             "leading zero (a port is written in decimal)"},
        {"-L 5432:db:05432", "-L 5432:db:05432: expected [ADDR:]PORT:HOST:HOSTPORT: HOSTPORT 05432 has a leading "
                             "zero (a port is written in decimal)"},
        {"-R 08022:h:22", "-R 08022:h:22: expected [ADDR:]PORT:HOST:HOSTPORT: the listening PORT 08022 has a "
                          "leading zero (a port is written in decimal)"},
    };
    expect_refused(bad, ARRAY_SIZE(bad));
    struct options o;
    char err[256];
    ASSERT_EQ(parse(&o, "-D 1080 -H 10 -L 5432:db:5432 -R 8022:h:22", err, sizeof(err)), 0);
    options_free(&o);
    return 0;
}

/* --address ADDR/0 is refused: every address became the tunnel's own subnet, which the router
 * sends into the tunnel, so --others applied to nothing. */
TEST_IMPL(options_address_prefix_zero)
{
    static const struct refused bad[] = {
        {"-D 1080 --address 10.0.0.2/0", "--address 10.0.0.2/0: a prefix of 0 would make every address the "
                                          "tunnel's subnet; give the tunnel's own (/24, /64) or none (a host address)"},
        {"-D 1080 --address fd00::2/0", "--address fd00::2/0: a prefix of 0 would make every address the "
                                         "tunnel's subnet; give the tunnel's own (/24, /64) or none (a host address)"},
    };
    expect_refused(bad, ARRAY_SIZE(bad));
    struct options o;
    char err[256];
    ASSERT_EQ(parse(&o, "-D 1080 --address 10.0.0.2/1 --address fd00::2/128", err, sizeof(err)), 0);
    ASSERT_EQ(o.overrides.prefix4, 1);
    options_free(&o);
    return 0;
}

/* --domain takes a name's characters only: a config file's `domain = "corp.example"` kept its
 * quotes as part of the domain, so no name was ever under it and split DNS sent the tunnel's
 * names to the host's resolver, without a word. */
TEST_IMPL(options_domain_names)
{
    static const struct refused bad[] = {
        {"-D 1080 --domain \"corp.example\"", "--domain \"corp.example\": expected one domain name"},
        {"-D 1080 --domain corp.example;", "--domain corp.example;: expected one domain name"},
        {"-D 1080 --domain a,b", "--domain a,b: expected one domain name"},
        {"-D 1080 --domain", "--domain needs a value"},
    };
    expect_refused(bad, ARRAY_SIZE(bad));
    struct options o;
    char err[256];
    ASSERT_EQ(parse(&o, "-D 1080 --domain corp.example --domain .Lab-1.internal. --domain _srv.x", err,
                    sizeof(err)), 0);
    ASSERT_STR_EQ(o.overrides.domains, "corp.example .Lab-1.internal. _srv.x");
    options_free(&o);
    return 0;
}

/* --version named vpn2socks alone, and operators who check the OpenSSL in use against an advisory
 * (as openvpn --version lets them) had nothing to go on. The second line names each library, with
 * the version the loaded OpenSSL and libuv report and the lwIP compiled in. */
TEST_IMPL(version_names_libraries)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ASSERT(f != NULL);
    version_print(f, "1.2.3");
    ASSERT_EQ(fclose(f), 0);
    char want[512];
    snprintf(want, sizeof(want), "vpn2socks 1.2.3\nlibrary versions: %s, libuv %s, lwIP %s\n",
             OpenSSL_version(OPENSSL_VERSION), uv_version_string(), LWIP_VERSION_STRING);
    ASSERT_STR_EQ(text, want);
    ASSERT(strncmp(OpenSSL_version(OPENSSL_VERSION), "OpenSSL ", 8) == 0);
    free(text);
    return 0;
}
