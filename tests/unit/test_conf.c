/* app/conf.c, the config file, and app/listeners.c, the reload's diff: lines applied through the
 * command line's code, comments and layout, every error naming its file and line, the command
 * line winning, the file's permissions, and which listeners a reload keeps, closes and starts. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/conf.h"
#include "app/listeners.h"
#include "app/options.h"
#include "base/addr.h"
#include "base/log.h"
#include "test.h"

static int parse_text(struct options *o, const char *text, char *err, size_t errcap)
{
    options_init(o);
    return conf_parse_text(o, text, strlen(text), "t.conf", NULL, err, errcap);
}

static const char *listen_of(const struct sockaddr_storage *ss, char *buf, size_t cap)
{
    return v2s_sockaddr_format((const struct sockaddr *)ss, buf, cap);
}

/* The example of issue 11, as the file a user would write. */
static const char example[] = "config = /etc/vpn2socks/alibaba.ovpn\n"
                              "socks  = 127.0.0.1:1080\n"
                              "local  = 127.0.0.1:5432:db.corp.internal:5432\n"
                              "local  = 127.0.0.1:5353:10.0.0.2:53/udp\n"
                              "remote = 8022:127.0.0.1:22\n";

TEST_IMPL(conf_example)
{
    struct options o;
    char err[512] = "", where[64];

    ASSERT_EQ(parse_text(&o, example, err, sizeof(err)), 0);
    ASSERT_STR_EQ(o.config, "/etc/vpn2socks/alibaba.ovpn");
    ASSERT_EQ(o.n_socks, 1);
    ASSERT_STR_EQ(listen_of(&o.socks[0], where, sizeof(where)), "127.0.0.1:1080");
    ASSERT_EQ(o.n_forwards, 3);
    ASSERT_STR_EQ(listen_of(&o.forwards[0].listen, where, sizeof(where)), "127.0.0.1:5432");
    ASSERT_STR_EQ(o.forwards[0].host, "db.corp.internal");
    ASSERT_EQ(o.forwards[0].port, 5432);
    ASSERT(!o.forwards[0].udp && !o.forwards[0].remote);
    ASSERT_STR_EQ(listen_of(&o.forwards[1].listen, where, sizeof(where)), "127.0.0.1:5353");
    ASSERT_STR_EQ(o.forwards[1].host, "10.0.0.2");
    ASSERT_EQ(o.forwards[1].port, 53);
    ASSERT(o.forwards[1].udp && !o.forwards[1].remote);
    ASSERT_STR_EQ(listen_of(&o.forwards[2].listen, where, sizeof(where)), "0.0.0.0:8022"); /* every tunnel address */
    ASSERT_STR_EQ(o.forwards[2].host, "127.0.0.1");
    ASSERT_EQ(o.forwards[2].port, 22);
    ASSERT(!o.forwards[2].udp && o.forwards[2].remote);
    ASSERT_EQ(options_check(&o, err, sizeof(err)), 0);
    options_free(&o);
    return 0;
}

/* Comments, blank and indented lines, CRLF, a BOM, `name: value`, repeated options in order, flags
 * and the log level. */
TEST_IMPL(conf_layout_and_values)
{
    struct options o;
    char err[512] = "", where[64];
    static const char text[] = "\xEF\xBB\xBF# a comment\n"
                               "; another\n"
                               "\n"
                               "socks = 1080   ; inline, after a blank\n"
                               "    socks = [::1]:1081\n"
                               "\tsocks: 127.0.0.2:1082\r\n"
                               "route = 10.0.0.0/8\n"
                               "exclude = 10.1.0.0/16\n"
                               "route = 192.168.0.0/16\n"
                               "others = reject\n"
                               "allow-direct-local = yes\n"
                               "allow-readable-secrets = FALSE\n"
                               "connect-timeout = 7\n"
                               "domain = corp.internal\n"
                               "domain = corp.example\n"
                               "verbose = 2\n";
    ASSERT_EQ(parse_text(&o, text, err, sizeof(err)), 0);
    ASSERT_EQ(o.n_socks, 3);
    ASSERT_STR_EQ(listen_of(&o.socks[0], where, sizeof(where)), "127.0.0.1:1080");
    ASSERT_STR_EQ(listen_of(&o.socks[1], where, sizeof(where)), "[::1]:1081");
    ASSERT_STR_EQ(listen_of(&o.socks[2], where, sizeof(where)), "127.0.0.2:1082");
    ASSERT_EQ(o.route.n_user, 3);
    ASSERT_EQ(o.route.user[1].verdict, ROUTER_DIRECT);
    ASSERT_EQ(o.route.others, ROUTER_OTHERS_REJECT);
    ASSERT_EQ(o.route.allow_direct_local, 1);
    ASSERT_EQ(o.allow_readable_secrets, 0);
    ASSERT_EQ(o.connect_timeout_ms, 7000);
    ASSERT_STR_EQ(o.overrides.domains, "corp.internal corp.example");
    ASSERT_EQ(o.verbosity, 2);
    options_free(&o);

    static const struct {
        const char *line;
        int on;
    } flags[] = {
        {"allow-direct-local = yes", 1}, {"allow-direct-local = true", 1}, {"allow-direct-local = 1", 1},
        {"allow-direct-local = No", 0},  {"allow-direct-local = false", 0}, {"allow-direct-local = 0", 0},
    };
    for (size_t i = 0; i < ARRAY_SIZE(flags); i++) {
        char t[128];
        snprintf(t, sizeof(t), "socks = 1080\n%s\n", flags[i].line);
        ASSERT_ROW(parse_text(&o, t, err, sizeof(err)) == 0, "%s: %s", flags[i].line, err);
        ASSERT_ROW(o.route.allow_direct_local == flags[i].on, "%s", flags[i].line);
        options_free(&o);
    }
    ASSERT_EQ(parse_text(&o, "quiet = yes\n", err, sizeof(err)), 0);
    ASSERT_EQ(o.verbosity, -1);
    options_free(&o);
    return 0;
}

/* Every error names the file and the line, and says what is wrong. */
TEST_IMPL(conf_errors_name_the_line)
{
    static const struct {
        const char *text;
        const char *message;
    } rows[] = {
        {"socks = 1080\nbogus = 1\n", "t.conf:2: unknown option 'bogus'"},
        /* No abbreviations, unlike getopt; a name within two edits of one it takes is offered. */
        {"sock = 1080\n", "t.conf:1: unknown option 'sock': did you mean 'socks'?"},
        {"scoks = 1080\n", "t.conf:1: unknown option 'scoks': did you mean 'socks'?"},
        {"socks = 1\nsock-auth = u\n", "t.conf:2: unknown option 'sock-auth': did you mean 'socks-auth'?"},
        {"socks = 1\nallow-direct-locals = yes\n",
         "t.conf:2: unknown option 'allow-direct-locals': did you mean 'allow-direct-local'?"},
        {"socks = 1\nconfg = a.ovpn\n", "t.conf:2: unknown option 'confg': did you mean 'config'?"},
        /* Two within reach (mtu and route), or only names the file does not take: no guess. */
        {"socks = 1\nute = 1\n", "t.conf:2: unknown option 'ute'"},
        {"socks = 1\nversio = 1\n", "t.conf:2: unknown option 'versio'"},
        {"socks = 1\nbogus = 1\n", "t.conf:2: unknown option 'bogus'"},
        {"--socks = 1080\n", "t.conf:1: '--socks': write the option's name without dashes"},
        {"socks = 1080\nmtu =\n", "t.conf:2: mtu needs a value"},
        {"socks = 1080\n\n# c\nallow-direct-local\n", "t.conf:4: expected `name = value` (a flag too: `name = yes`)"},
        {"socks 1080\nbogus = 1\n", "t.conf:1: expected `name = value` (a flag too: `name = yes`)"},
        {"socks = 1080\nallow-direct-local = maybe\n",
         "t.conf:2: allow-direct-local = maybe: expected yes or no (true or false, 1 or 0)"},
        {"verbose = 4\n", "t.conf:1: verbose = 4: expected a level from 0 to 3"},
        {"config = a.ovpn\nsocks = 1080\nconfig = b.ovpn\n", "t.conf:3: config is already set on line 1"},
        {"socks = 1080\nothers = direct\nothers = reject\n", "t.conf:3: others is already set on line 2"},
        {"socks = 1080\nallow-direct-local = no\nallow-direct-local = yes\n",
         "t.conf:3: allow-direct-local is already set on line 2"},
        {"verbose = 1\nquiet = yes\n", "t.conf:2: verbose is already set on line 1"},
        {"log-format = xml\n", "t.conf:1: log-format = xml: expected plain or json"},
        {"log-format = json\nlog-format = plain\n", "t.conf:2: log-format is already set on line 1"},
        {"socks = 1080x\n", "t.conf:1: socks = 1080x: expected [ADDR:]PORT"},
        /* An INI-style comment after the value: the message says why the value is wrong. */
        {"socks = 1080  # the proxy\n", "t.conf:1: socks = 1080  # the proxy: expected [ADDR:]PORT (a `#` after a "
                                        "value is part of it: a comment goes on a line of its own, or after ` ;`)"},
        {"socks = 1\nlocal = 8080\n", "t.conf:2: local = 8080: expected [ADDR:]PORT:HOST:HOSTPORT"},
        {"socks = 1\nmtu = 100\n", "t.conf:2: mtu = 100: expected a number from 576 to 65535"},
        {"socks = 1\nothers = sideways\n", "t.conf:2: others = sideways: expected direct, tunnel or reject"},
        {"socks = 1\nroute = 10.0.0.300/8\n", "t.conf:2: route = 10.0.0.300/8: expected ADDR/PREFIX"},
        {"socks = 1\n[vpn]\nmtu = 1400\n",
         "t.conf:2: sections are not used: every option goes on a `name = value` line of its own"},
        {"conf = other.conf\n", "t.conf:1: conf only goes on the command line"},
        {"help = yes\n", "t.conf:1: help only goes on the command line"},
        {"socks = 1\nmtu = 1400\0\n", "t.conf:2: a NUL byte: not a text file"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct options o;
        char err[512] = "";
        size_t len = strlen(rows[i].text);
        if (strstr(rows[i].message, "NUL"))
            len += 2; /* the NUL and the line end after it */
        options_init(&o);
        ASSERT_ROW(conf_parse_text(&o, rows[i].text, len, "t.conf", NULL, err, sizeof(err)) == -EINVAL, "%zu", i);
        ASSERT_ROW(strcmp(err, rows[i].message) == 0, "%zu: got \"%s\"", i, err);
        options_free(&o);
    }

    /* A line longer than inih's buffer would be cut in two lines; it is refused instead. */
    char text[400];
    snprintf(text, sizeof(text), "socks = 1\nconfig = /%0250d\n", 0);
    struct options o;
    char err[512] = "";
    ASSERT_EQ(parse_text(&o, text, err, sizeof(err)), -EINVAL);
    ASSERT(strncmp(err, "t.conf:2: line too long (at most ", 33) == 0);
    options_free(&o);
    return 0;
}

/* Writes a config file (mode 0644) into dir; returns its path in buf. */
static const char *write_conf(const char *dir, const char *name, const char *text, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", dir, name);
    int fd = open(buf, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT(fd >= 0);
    ASSERT(fchmod(fd, 0644) == 0); /* whatever the umask */
    ASSERT(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    return buf;
}

/* Parses a command line (words split on spaces) with conf_options(). */
static int conf_cmdline(struct options *o, const char *line, char *err, size_t errcap)
{
    static char buf[1024];
    char *argv[32];
    int argc = 0;
    snprintf(buf, sizeof(buf), "vpn2socks %s", line);
    for (char *w = strtok(buf, " "); w && argc < 31; w = strtok(NULL, " "))
        argv[argc++] = w;
    argv[argc] = NULL;
    options_init(o);
    return conf_options(o, argc, argv, err, errcap);
}

/* Two listeners on one port, where the file gave one or both: the message starts with FILE:LINE and
 * names them as the file does. It said "-D 127.0.0.1:1080 and -H 127.0.0.1:1080" for two lines of
 * the file, sending the user to a command line that had neither. */
TEST_IMPL(conf_port_clash_names_the_line)
{
    char dir[] = "/tmp/v2s-conf-XXXXXX", path[256], line[512], err[512] = "", want[600];
    struct options o;
    ASSERT(mkdtemp(dir) != NULL);
    write_conf(dir, "v.conf", "address = 10.0.0.2\nsocks = 1080\nstatus = 9100\nlocal = 9100:db:5432\n", path,
               sizeof(path));
    snprintf(line, sizeof(line), "--tunnel-fd 3 --conf %s", path);
    ASSERT_EQ(conf_cmdline(&o, line, err, sizeof(err)), -EINVAL);
    snprintf(want, sizeof(want), "%s:4: local 127.0.0.1:9100 and status 127.0.0.1:9100 (line 3) listen on the "
             "same port: give each listener its own", path);
    ASSERT_STR_EQ(err, want);
    options_free(&o);

    /* One from the file, one from the command line. */
    snprintf(line, sizeof(line), "--tunnel-fd 3 --conf %s -H 1080 --status 9101", path);
    ASSERT_EQ(conf_cmdline(&o, line, err, sizeof(err)), -EINVAL);
    snprintf(want, sizeof(want), "%s:2: socks 127.0.0.1:1080 and -H 127.0.0.1:1080 listen on the same port: give "
             "each listener its own", path);
    ASSERT_STR_EQ(err, want);
    options_free(&o);

    /* Neither from the file: as before. */
    snprintf(line, sizeof(line), "--tunnel-fd 3 --conf %s --status 9101 -D 2000 -L 2000:db:1", path);
    ASSERT_EQ(conf_cmdline(&o, line, err, sizeof(err)), -EINVAL);
    ASSERT_STR_EQ(err, "-D 127.0.0.1:2000 and -L 127.0.0.1:2000 listen on the same port: give each listener its "
                       "own");
    options_free(&o);
    unlink(path);
    rmdir(dir);
    return 0;
}

/* The command line wins: a single-valued option takes its value, a repeatable one replaces all of
 * the file's lines of it (and only of it), -v replaces the file's level. */
TEST_IMPL(conf_command_line_wins)
{
    char dir[] = "/tmp/v2s-conf-XXXXXX", path[256], line[512], err[512] = "", where[64], want[400];
    struct options o;
    ASSERT(mkdtemp(dir) != NULL);
    write_conf(dir, "v.conf",
               "config = client.ovpn\n"
               "socks-auth = users.txt\n"
               "socks = 1080\n"
               "socks = 1081\n"
               "local = 5432:db.corp.internal:5432\n"
               "route = 10.0.0.0/8\n"
               "exclude = 10.1.0.0/16\n"
               "connect-timeout = 7\n"
               "handshake-timeout = 3\n"
               "verbose = 2\n",
               path, sizeof(path));

    /* The file alone; its relative path is taken from its directory. */
    snprintf(line, sizeof(line), "--conf %s", path);
    ASSERT_EQ(conf_cmdline(&o, line, err, sizeof(err)), 0);
    ASSERT_STR_EQ(o.conf, path);

    snprintf(want, sizeof(want), "%s/client.ovpn", dir);
    ASSERT_STR_EQ(o.config, want);
    snprintf(want, sizeof(want), "%s/users.txt", dir);
    ASSERT_STR_EQ(o.socks_auth, want);
    ASSERT_EQ(o.n_socks, 2);
    ASSERT_EQ(o.connect_timeout_ms, 7000);
    ASSERT_EQ(o.verbosity, 2);
    options_free(&o);

    /* Over it: a scalar, a repeatable option, -v; and the options the command line leaves alone
     * keep the file's values (the other socks line goes too: replaced means all of them). */
    snprintf(line, sizeof(line), "-D 2000 --conf %s --connect-timeout 9 --route 172.16.0.0/12 -v --config /x.ovpn",
             path);
    ASSERT_EQ(conf_cmdline(&o, line, err, sizeof(err)), 0);
    ASSERT_EQ(o.n_socks, 1);
    ASSERT_STR_EQ(listen_of(&o.socks[0], where, sizeof(where)), "127.0.0.1:2000");
    ASSERT_EQ(o.n_forwards, 1); /* -L not given: the file's stays */
    ASSERT_EQ(o.connect_timeout_ms, 9000);
    ASSERT_EQ(o.handshake_timeout_ms, 3000);
    ASSERT_EQ(o.verbosity, 1);
    ASSERT_STR_EQ(o.config, "/x.ovpn");
    ASSERT_EQ(o.route.n_user, 2); /* the command line's route, and the file's exclude */
    char c0[64], c1[64];
    v2s_cidr_format(&o.route.user[0].cidr, c0, sizeof(c0));
    v2s_cidr_format(&o.route.user[1].cidr, c1, sizeof(c1));
    ASSERT_STR_EQ(c0, "10.1.0.0/16");
    ASSERT_STR_EQ(c1, "172.16.0.0/12");
    options_free(&o);

    /* A file error stops everything, whatever the command line says; a missing file is named. */
    write_conf(dir, "bad.conf", "socks = 1080\nmtu = 1\n", path, sizeof(path));
    snprintf(line, sizeof(line), "-D 2000 --conf %s", path);
    ASSERT_EQ(conf_cmdline(&o, line, err, sizeof(err)), -EINVAL);
    snprintf(want, sizeof(want), "%s:2: mtu = 1: expected a number from 576 to 65535", path);
    ASSERT_STR_EQ(err, want);
    options_free(&o);
    ASSERT_EQ(conf_cmdline(&o, "--conf /nonexistent/v.conf", err, sizeof(err)), -ENOENT);
    ASSERT_STR_EQ(err, "--conf /nonexistent/v.conf: No such file or directory");
    options_free(&o);

    /* A file others may write is refused: it decides where the traffic goes. */
    write_conf(dir, "open.conf", "socks = 1080\n", path, sizeof(path));
    ASSERT(chmod(path, 0664) == 0);
    snprintf(line, sizeof(line), "--conf %s", path);
    ASSERT_EQ(conf_cmdline(&o, line, err, sizeof(err)), -EPERM);
    ASSERT(strstr(err, "other users may write it (mode 0664), so it is refused: chmod go-w") != NULL);
    options_free(&o);
    ASSERT(chmod(path, 0602) == 0);
    ASSERT_EQ(conf_cmdline(&o, line, err, sizeof(err)), -EPERM);
    options_free(&o);
    ASSERT(chmod(path, 0644) == 0);
    ASSERT_EQ(conf_cmdline(&o, line, err, sizeof(err)), 0);
    options_free(&o);
    /* Another user's file is refused too (root can make one: CI runs the unit tests as root). */
    if (geteuid() == 0) {
        ASSERT(chown(path, 65534, 65534) == 0);
        ASSERT_EQ(conf_cmdline(&o, line, err, sizeof(err)), -EPERM);
        ASSERT(strstr(err, "owned by uid 65534, neither root nor the user running vpn2socks (uid 0): refused"));
        options_free(&o);
    }

    /* The whole is checked after the command line: a file with no listener, none given either. */
    write_conf(dir, "empty.conf", "# nothing\n", path, sizeof(path));
    snprintf(line, sizeof(line), "--conf %s", path);
    ASSERT_EQ(conf_cmdline(&o, line, err, sizeof(err)), -EINVAL);
    ASSERT(strncmp(err, "nothing to serve", 16) == 0);
    options_free(&o);
    snprintf(line, sizeof(line), "--conf %s -D 1080", path);
    ASSERT_EQ(conf_cmdline(&o, line, err, sizeof(err)), 0);
    options_free(&o);

    const char *names[] = {"v.conf", "bad.conf", "open.conf", "empty.conf"};
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
    return 0;
}

/* What a reload reports as needing a restart. */
TEST_IMPL(conf_restart_only_changes)
{
    struct options a, b;
    char err[512], out[256];
    ASSERT_EQ(parse_text(&a, "config = /a.ovpn\nsocks = 1080\nmtu = 1400\nconnect-timeout = 5\n", err, sizeof(err)),
              0);
    ASSERT_EQ(parse_text(&b, "config = /a.ovpn\nsocks = 1081\nlocal = 1:h:2\nroute = 10.0.0.0/8\nmtu = 1400\n"
                             "connect-timeout = 5\nverbose = 3\n",
                         err, sizeof(err)),
              0);
    options_restart_only_changes(&a, &b, out, sizeof(out));
    ASSERT_STR_EQ(out, ""); /* listeners, routes and the log level change while running */
    options_free(&b);
    ASSERT_EQ(parse_text(&b, "config = /b.ovpn\nsocks = 1080\nmtu = 1300\ndns = 10.0.0.2\nconnect-timeout = 5\n"
                             "udp-timeout = 9\nsocks-auth = /users\n",
                         err, sizeof(err)),
              0);
    options_restart_only_changes(&a, &b, out, sizeof(out));
    /* Another .ovpn is loaded by the reload (app_reload_openvpn), as the same one changed. */
    ASSERT_STR_EQ(out, "socks-auth, mtu, dns, udp-timeout");
    /* Another --socks-auth file is read by the reload (app_reload_socks_auth); turning it off,
     * as turning it on above, needs the listeners started again. */
    struct options c;
    ASSERT_EQ(parse_text(&c, "config = /b.ovpn\nsocks = 1080\nmtu = 1300\ndns = 10.0.0.2\nconnect-timeout = 5\n"
                             "udp-timeout = 9\nsocks-auth = /users2\n",
                         err, sizeof(err)),
              0);
    options_restart_only_changes(&b, &c, out, sizeof(out));
    ASSERT_STR_EQ(out, "");
    options_restart_only_changes(&c, &a, out, sizeof(out));
    ASSERT_STR_EQ(out, "socks-auth, mtu, dns, udp-timeout");
    options_free(&c);
    options_free(&b);
    /* ... and another --auth-user-pass file; but a packet fd for our OpenVPN client, or the other
     * way round, is another tunnel. */
    ASSERT_EQ(parse_text(&b, "config = /a.ovpn\nauth-user-pass = /pw\nsocks = 1080\nmtu = 1400\n"
                             "connect-timeout = 5\n",
                         err, sizeof(err)),
              0);
    options_restart_only_changes(&a, &b, out, sizeof(out));
    ASSERT_STR_EQ(out, "");
    options_free(&b);
    ASSERT_EQ(parse_text(&b, "tunnel-fd = 3\naddress = 10.0.0.2/24\nsocks = 1080\nmtu = 1400\nconnect-timeout = 5\n",
                         err, sizeof(err)),
              0);
    options_restart_only_changes(&a, &b, out, sizeof(out));
    ASSERT_STR_EQ(out, "config, tunnel-fd, address");
    options_restart_only_changes(&b, &a, out, sizeof(out));
    ASSERT_STR_EQ(out, "config, tunnel-fd, address");
    options_free(&b);
    /* --status is not reloaded: added, moved or dropped, it waits for a restart. */
    ASSERT_EQ(parse_text(&b, "config = /a.ovpn\nsocks = 1080\nmtu = 1400\nconnect-timeout = 5\nstatus = 9100\n", err,
                         sizeof(err)),
              0);
    options_restart_only_changes(&a, &b, out, sizeof(out));
    ASSERT_STR_EQ(out, "status");
    options_restart_only_changes(&b, &b, out, sizeof(out));
    ASSERT_STR_EQ(out, "");
    options_free(&a);
    ASSERT_EQ(parse_text(&a, "config = /a.ovpn\nsocks = 1080\nmtu = 1400\nconnect-timeout = 5\nstatus = 9101\n", err,
                         sizeof(err)),
              0);
    options_restart_only_changes(&a, &b, out, sizeof(out));
    ASSERT_STR_EQ(out, "status");
    options_free(&a);
    ASSERT_EQ(parse_text(&a, "socks = 1080\nstatus = x\n", err, sizeof(err)), -EINVAL);
    ASSERT_STR_EQ(err, "t.conf:2: status = x: expected [ADDR:]PORT");
    options_free(&a);
    options_free(&b);
    return 0;
}

static struct listener_spec spec(enum listener_kind kind, const char *text)
{
    struct listener_spec s;
    char err[256];
    memset(&s, 0, sizeof(s));
    s.kind = kind;
    if (kind == LISTENER_SOCKS)
        ASSERT(options_parse_listen(&s.fwd.listen, text) == 0);
    else
        ASSERT(options_parse_forward(&s.fwd, text, kind == LISTENER_REMOTE_TCP || kind == LISTENER_REMOTE_UDP, err,
                                     sizeof(err)) == 0);
    return s;
}

/* The reload's diff: the same kind, listen address and destination is the same listener. */
TEST_IMPL(listeners_diff)
{
    const struct listener_spec run[] = {
        spec(LISTENER_SOCKS, "1080"),                       /* 0: kept */
        spec(LISTENER_LOCAL_TCP, "5432:db:5432"),           /* 1: kept */
        spec(LISTENER_LOCAL_TCP, "5433:db:5432"),           /* 2: removed */
        spec(LISTENER_LOCAL_TCP, "8080:web:80"),            /* 3: same address, new destination */
        spec(LISTENER_SOCKS, "1081"),                       /* 4: same address, now a forward */
        spec(LISTENER_LOCAL_TCP, "5353:10.0.0.2:53"),       /* 5: TCP, now UDP */
        spec(LISTENER_REMOTE_TCP, "8022:127.0.0.1:22"),     /* 6: kept */
        spec(LISTENER_LOCAL_TCP, "[::1]:9000:[fd00::1]:9"), /* 7: kept */
    };
    const struct listener_spec want[] = {
        spec(LISTENER_LOCAL_TCP, "[::1]:9000:[fd00::1]:9"),
        spec(LISTENER_LOCAL_TCP, "5432:db:5432"),
        spec(LISTENER_LOCAL_TCP, "8080:web2:80"),
        spec(LISTENER_LOCAL_TCP, "1081:db:5432"),
        spec(LISTENER_LOCAL_UDP, "5353:10.0.0.2:53/udp"),
        spec(LISTENER_SOCKS, "127.0.0.1:1080"),
        spec(LISTENER_REMOTE_TCP, "8022:127.0.0.1:22"),
        spec(LISTENER_SOCKS, "1080"), /* asked for twice: the second one starts (and will fail to bind) */
        spec(LISTENER_LOCAL_TCP, "6000:new:1"),
    };
    unsigned char keep[ARRAY_SIZE(run)];
    int from[ARRAY_SIZE(want)];
    listener_diff(run, ARRAY_SIZE(run), want, ARRAY_SIZE(want), keep, from);
    static const unsigned char want_keep[] = {1, 1, 0, 0, 0, 0, 1, 1};
    static const int want_from[] = {7, 1, -1, -1, -1, 0, 6, -1, -1};
    for (size_t i = 0; i < ARRAY_SIZE(run); i++)
        ASSERT_ROW(keep[i] == want_keep[i], "run %zu", i);
    for (size_t j = 0; j < ARRAY_SIZE(want); j++)
        ASSERT_ROW(from[j] == want_from[j], "want %zu: %d", j, from[j]);

    /* A new listener on a port one that closes holds starts after the close, whatever the
     * addresses (a wildcard clashes with the others of its family) and kinds. */
    ASSERT(listener_spec_same_port(&run[3], &want[2]));
    ASSERT(listener_spec_same_port(&run[4], &want[3]));
    ASSERT(!listener_spec_same_port(&run[2], &want[8]));
    const struct listener_spec any = spec(LISTENER_SOCKS, "0.0.0.0:1080");
    ASSERT(listener_spec_same_port(&run[0], &any));

    /* Nothing running: everything starts; nothing wanted: everything closes. */
    listener_diff(NULL, 0, want, ARRAY_SIZE(want), keep, from);
    for (size_t j = 0; j < ARRAY_SIZE(want); j++)
        ASSERT_EQ(from[j], -1);
    listener_diff(run, ARRAY_SIZE(run), NULL, 0, keep, from);
    for (size_t i = 0; i < ARRAY_SIZE(run); i++)
        ASSERT_EQ(keep[i], 0);

    /* The specs of a configuration: SOCKS first, then the forwards, each of its kind. */
    struct options o;
    char err[256], name[400];
    options_init(&o);
    ASSERT_EQ(options_parse_forward(&o.forwards[0], "5353:10.0.0.2:53/udp", 0, err, sizeof(err)), 0);
    ASSERT_EQ(options_parse_forward(&o.forwards[1], "8022:127.0.0.1:22", 1, err, sizeof(err)), 0);
    o.n_forwards = 2;
    ASSERT_EQ(options_parse_listen(&o.socks[0], "1080"), 0);
    o.n_socks = 1;
    struct listener_spec got[LISTENERS_MAX];
    ASSERT_EQ(listener_specs(&o, got, LISTENERS_MAX), 3);
    ASSERT_STR_EQ(listener_spec_name(&got[0], name, sizeof(name)), "SOCKS 127.0.0.1:1080");
    ASSERT_STR_EQ(listener_spec_name(&got[1], name, sizeof(name)), "UDP forward 127.0.0.1:5353 -> 10.0.0.2:53");
    ASSERT_STR_EQ(listener_spec_name(&got[2], name, sizeof(name)), "remote forward 0.0.0.0:8022 -> 127.0.0.1:22");
    ASSERT_EQ(listener_specs(&o, got, 2), 2);
    options_free(&o);
    return 0;
}

/* The descriptors a connection can hold, for fitting the open files limit to the caps: an HTTP
 * request or a SOCKS UDP association four (counting two, 2,000 HTTP requests at the default cap ate
 * the reserve kept for the tunnel), a forward two. */
TEST_IMPL(conf_fds_per_conn)
{
    struct options o;
    char err[512] = "";
    static const struct {
        const char *text;
        unsigned per;
    } cases[] = {
        {"http = 8118\n", 4},
        {"socks = 1080\n", 4},
        {"local = 5432:10.0.0.2:5432\nremote = 8022:127.0.0.1:22\n", 2},
        {"local = 5432:10.0.0.2:5432\nhttp = 8118\n", 4},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ASSERT_EQ(parse_text(&o, cases[i].text, err, sizeof(err)), 0);
        ASSERT_EQ(listener_fds_per_conn(&o), cases[i].per);
        options_free(&o);
    }
    return 0;
}

/* The open files limit follows the listeners: raised for max_conns connections of them (4
 * descriptors each with -D or -H, 2 with forwards only) plus the reserve, never lowered; a reload
 * that adds the first -H to forwards runs it again (app_reload), so the soft limit set for 2 a
 * connection at start is raised for 4. */
TEST_IMPL(conf_fit_nofile)
{
    struct rlimit start, rl;
    ASSERT(getrlimit(RLIMIT_NOFILE, &start) == 0);
    if (start.rlim_max != RLIM_INFINITY && start.rlim_max < 1000)
        return 0; /* too low a hard limit to see the steps */
    rl = start;
    rl.rlim_cur = 300;
    ASSERT(setrlimit(RLIMIT_NOFILE, &rl) == 0);
    struct options fwd, http;
    char err[512] = "";
    ASSERT_EQ(parse_text(&fwd, "local = 5432:10.0.0.2:5432\n", err, sizeof(err)), 0);
    ASSERT_EQ(parse_text(&http, "local = 5432:10.0.0.2:5432\nhttp = 8118\n", err, sizeof(err)), 0);
    uint64_t need = 0;
    ASSERT_EQ(listener_fit_nofile(&fwd, 100, 128, &need), 328);
    ASSERT_EQ(need, 328);
    ASSERT(getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur == 328);
    ASSERT_EQ(listener_fit_nofile(&http, 100, 128, &need), 528);
    ASSERT_EQ(need, 528);
    ASSERT(getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur == 528);
    /* Fewer needed again: the limit stays. */
    ASSERT_EQ(listener_fit_nofile(&fwd, 100, 128, &need), 528);
    ASSERT_EQ(need, 328);
    options_free(&fwd);
    options_free(&http);
    ASSERT(setrlimit(RLIMIT_NOFILE, &start) == 0);
    return 0;
}

/* -H in the file (`http = ...`, repeatable), alone enough to serve, a bad one named with its
 * line; its listeners are their own kind for a reload: the same address as SOCKS is another
 * listener, the same HTTP address is kept. */
TEST_IMPL(conf_http_listeners)
{
    struct options o;
    char err[512] = "", where[64], name[128];
    ASSERT_EQ(parse_text(&o, "http = 8118\nhttp = 0.0.0.0:3128\n", err, sizeof(err)), 0);
    ASSERT_EQ(o.n_http, 2);
    ASSERT_STR_EQ(listen_of(&o.http[1], where, sizeof(where)), "0.0.0.0:3128");
    ASSERT_EQ(options_check(&o, err, sizeof(err)), 0);
    struct listener_spec specs[4];
    ASSERT_EQ(listener_specs(&o, specs, 4), 2);
    ASSERT(specs[0].kind == LISTENER_HTTP && specs[1].kind == LISTENER_HTTP);
    ASSERT_STR_EQ(listener_spec_name(&specs[0], name, sizeof(name)), "HTTP 127.0.0.1:8118");
    options_free(&o);
    ASSERT_EQ(parse_text(&o, "socks = 1080\nhttp = x\n", err, sizeof(err)), -EINVAL);
    ASSERT_STR_EQ(err, "t.conf:2: http = x: expected [ADDR:]PORT");
    options_free(&o);

    struct listener_spec run[2], want[2];
    memset(run, 0, sizeof(run));
    memset(want, 0, sizeof(want));
    run[0].kind = LISTENER_SOCKS;
    run[1].kind = want[0].kind = want[1].kind = LISTENER_HTTP;
    ASSERT(options_parse_listen(&run[0].fwd.listen, "8118") == 0);
    ASSERT(options_parse_listen(&run[1].fwd.listen, "8119") == 0);
    ASSERT(options_parse_listen(&want[0].fwd.listen, "8118") == 0);
    ASSERT(options_parse_listen(&want[1].fwd.listen, "8119") == 0);
    unsigned char keep[2];
    int from[2];
    listener_diff(run, 2, want, 2, keep, from);
    ASSERT(keep[0] == 0 && keep[1] == 1);
    ASSERT(from[0] == -1 && from[1] == 1);
    return 0;
}

/* `log-format = json` in the file, through the command line's own table; the command line wins. */
TEST_IMPL(conf_log_format)
{
    struct options o;
    char err[512] = "";
    ASSERT_EQ(parse_text(&o, "socks = 1080\nlog-format = json\n", err, sizeof(err)), 0);
    ASSERT_EQ(o.log_format, V2S_LOG_JSON);
    char *argv[] = {"vpn2socks", "--log-format", "plain", NULL};
    ASSERT_EQ(options_apply_args(&o, 3, argv, err, sizeof(err)), 0);
    ASSERT_EQ(o.log_format, V2S_LOG_PLAIN);
    options_free(&o);
    return 0;
}

/* The text is len bytes, not a string: a last line of blanks without its line end was read one
 * byte past the text (ASan: heap-buffer-overflow in conf_read_line). */
TEST_IMPL(conf_text_not_terminated)
{
    static const char text[] = "socks = 1080\n \t ";
    char *copy = malloc(sizeof(text) - 1); /* no NUL after it */
    ASSERT(copy != NULL);
    memcpy(copy, text, sizeof(text) - 1);
    struct options o;
    char err[256] = "";
    options_init(&o);
    ASSERT_EQ(conf_parse_text(&o, copy, sizeof(text) - 1, "t.conf", NULL, err, sizeof(err)), 0);
    ASSERT_EQ(o.n_socks, 1);
    options_free(&o);
    free(copy);
    return 0;
}

static void conf_fifo_alarm(int sig)
{
    (void)sig; /* only interrupts the open below, if it waits */
}

/* A FIFO in the file's place (a reload reads the file on the loop) is refused at once: opening one
 * for reading waited for a writer, so SIGHUP froze every connection and the stop until something
 * wrote to it. Without the fix the open waits until the alarm interrupts it: -EINTR after 1 s. */
TEST_IMPL(conf_fifo_refused)
{
    char dir[] = "/tmp/v2s-conf-XXXXXX", path[256], err[512] = "";
    ASSERT(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/fifo.conf", dir);
    ASSERT(mkfifo(path, 0600) == 0);
    struct sigaction sa = {.sa_handler = conf_fifo_alarm}, old; /* no SA_RESTART */
    ASSERT(sigaction(SIGALRM, &sa, &old) == 0);
    alarm(1);
    struct options o;
    options_init(&o);
    int rc = conf_load(&o, path, err, sizeof(err));
    alarm(0);
    sigaction(SIGALRM, &old, NULL);
    options_free(&o);
    unlink(path);
    rmdir(dir);
    ASSERT_EQ(rc, -EINVAL);
    ASSERT(strstr(err, "fifo.conf: not a regular file") != NULL);
    return 0;
}
