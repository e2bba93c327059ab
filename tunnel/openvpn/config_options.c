/* The option table: every option name a client config may hold, with what is done with it,
 * and the lookup that runs each option line (OpenVPN 2.6 options.c add_option, and what it does
 * with setenv and ignore-unknown-option).
 *
 * What it guarantees:
 * - Every name has one row: applied (the rows of config_opt_net.c and config_opt_tls.c, which
 *   also say how many arguments and whether the option may stand in <connection> or be an inline
 *   block), ignored silently (a TUN device's or OpenVPN's process's business), accepted with a
 *   warning (the user would expect an effect that we do not have), a script hook (never run,
 *   with a warning), refused with the reason (cannot work here: tap, proxies, tokens, static
 *   keys, fragment), or a server's option (an error: this is not a client config).
 * - An unknown name is an error, unless "setenv opt NAME ...", a preceding
 *   "ignore-unknown-option NAME" or "setenv FORWARD_COMPATIBLE 1" made it a warning.
 * - The argument count is checked before any apply function runs, so each can index its words.
 * - Warnings go through ovpn_config_warn (to the caller), never to the log from here. */
#include "tunnel/openvpn/config_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int config_apply_ignore_unknown(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)block;
    for (int i = 1; i < n; i++) {
        const char *name = strncmp(w[i], "--", 2) == 0 ? w[i] + 2 : w[i];
        if (p->n_ignored >= CONFIG_MAX_IGNORED)
            return config_fail(p, "more than %d names given to ignore-unknown-option", CONFIG_MAX_IGNORED);
        char **grown = realloc(p->ignored, (p->n_ignored + 1) * sizeof(*grown));
        if (grown == NULL)
            return ovpn_config_nomem(p);
        p->ignored = grown;
        if ((p->ignored[p->n_ignored] = strdup(name)) == NULL)
            return ovpn_config_nomem(p);
        p->n_ignored++;
    }
    return 0;
}

/* cd DIR: OpenVPN changes directory there, so relative file names resolve against it. */
static int config_apply_cd(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)n, (void)block;
    if (w[1][0] == '\0')
        return config_fail(p, "cd needs a folder");
    return ovpn_config_set_string(p, &p->cd, w[1]);
}

static const char config_no_proxy[] = "connecting through an HTTP or SOCKS proxy is not supported";
static const char config_no_token[] =
    "keys held by a token or a certificate store are not supported: use cert and key files";

/* The rows of neither family: the parser's own options, and every option not applied. */
static const struct config_option config_options[] = {
    /* The parser itself. */
    CONFIG_APPLY_ROW("ignore-unknown-option", 0, 1, 15, config_apply_ignore_unknown),
    CONFIG_APPLY_ROW("cd", 0, 1, 1, config_apply_cd),
    /* A TUN device's or OpenVPN's own business. */
    CONFIG_IGNORE_ROW("resolv-retry", 0), CONFIG_IGNORE_ROW("nobind", CONFIG_CONN),
    CONFIG_IGNORE_ROW("persist-tun", 0), CONFIG_IGNORE_ROW("persist-key", 0),
    CONFIG_IGNORE_ROW("persist-local-ip", 0), CONFIG_IGNORE_ROW("persist-remote-ip", 0),
    CONFIG_IGNORE_ROW("user", 0), CONFIG_IGNORE_ROW("group", 0), CONFIG_IGNORE_ROW("verb", 0),
    CONFIG_IGNORE_ROW("mute", 0), CONFIG_IGNORE_ROW("mute-replay-warnings", 0),
    CONFIG_IGNORE_ROW("script-security", 0), CONFIG_IGNORE_ROW("float", CONFIG_CONN),
    CONFIG_IGNORE_ROW("tun-ipv6", 0), CONFIG_IGNORE_ROW("sndbuf", 0),
    CONFIG_IGNORE_ROW("rcvbuf", 0), CONFIG_IGNORE_ROW("fast-io", 0), CONFIG_IGNORE_ROW("txqueuelen", 0),
    CONFIG_IGNORE_ROW("block-outside-dns", 0), CONFIG_IGNORE_ROW("register-dns", 0),
    CONFIG_IGNORE_ROW("disable-dco", 0), CONFIG_IGNORE_ROW("dev-node", 0), CONFIG_IGNORE_ROW("lladdr", 0),
    CONFIG_IGNORE_ROW("ping-timer-rem", 0), CONFIG_IGNORE_ROW("route-delay", 0),
    CONFIG_IGNORE_ROW("route-metric", 0), CONFIG_IGNORE_ROW("route-method", 0),
    CONFIG_IGNORE_ROW("route-noexec", 0), CONFIG_IGNORE_ROW("route-gateway", 0),
    CONFIG_IGNORE_ROW("route-ipv6-gateway", 0), CONFIG_IGNORE_ROW("ifconfig-noexec", 0),
    CONFIG_IGNORE_ROW("ifconfig-nowarn", 0), CONFIG_IGNORE_ROW("ip-win32", 0),
    CONFIG_IGNORE_ROW("tap-sleep", 0), CONFIG_IGNORE_ROW("dhcp-renew", 0),
    CONFIG_IGNORE_ROW("dhcp-pre-release", 0), CONFIG_IGNORE_ROW("dhcp-release", 0),
    CONFIG_IGNORE_ROW("win-sys", 0), CONFIG_IGNORE_ROW("allow-nonadmin", 0),
    CONFIG_IGNORE_ROW("windows-driver", 0), CONFIG_IGNORE_ROW("daemon", 0), CONFIG_IGNORE_ROW("log", 0),
    CONFIG_IGNORE_ROW("log-append", 0), CONFIG_IGNORE_ROW("syslog", 0), CONFIG_IGNORE_ROW("status", 0),
    CONFIG_IGNORE_ROW("status-version", 0), CONFIG_IGNORE_ROW("writepid", 0), CONFIG_IGNORE_ROW("chroot", 0),
    CONFIG_IGNORE_ROW("setcon", 0), CONFIG_IGNORE_ROW("nice", 0), CONFIG_IGNORE_ROW("mlock", 0),
    CONFIG_IGNORE_ROW("machine-readable-output", 0), CONFIG_IGNORE_ROW("suppress-timestamps", 0),
    CONFIG_IGNORE_ROW("errors-to-stderr", 0), CONFIG_IGNORE_ROW("echo", 0), CONFIG_IGNORE_ROW("parameter", 0),
    CONFIG_IGNORE_ROW("management", 0), CONFIG_IGNORE_ROW("allow-pull-fqdn", 0),
    CONFIG_IGNORE_ROW("block-ipv6", 0), CONFIG_IGNORE_ROW("push-peer-info", 0),
    CONFIG_IGNORE_ROW("comp-noadapt", 0),
    CONFIG_IGNORE_ROW("single-session", 0), CONFIG_IGNORE_ROW("dh", 0), CONFIG_IGNORE_ROW("tran-window", 0),
    CONFIG_IGNORE_ROW("tls-timeout", 0),
    CONFIG_IGNORE_ROW("replay-persist", 0), CONFIG_IGNORE_ROW("mtu-disc", CONFIG_CONN),
    CONFIG_IGNORE_ROW("mtu-test", 0), CONFIG_IGNORE_ROW("tun-mtu-extra", CONFIG_CONN),
    CONFIG_IGNORE_ROW("tun-mtu-max", CONFIG_CONN), CONFIG_IGNORE_ROW("lport", CONFIG_CONN),
    CONFIG_IGNORE_ROW("local", CONFIG_CONN), CONFIG_IGNORE_ROW("bind", CONFIG_CONN),
    CONFIG_IGNORE_ROW("socket-flags", 0), CONFIG_IGNORE_ROW("mark", 0), CONFIG_IGNORE_ROW("bind-dev", 0),
    CONFIG_IGNORE_ROW("passtos", 0), CONFIG_IGNORE_ROW("tcp-nodelay", 0), CONFIG_IGNORE_ROW("multihome", 0),
    CONFIG_IGNORE_ROW("preresolve", 0), CONFIG_IGNORE_ROW("remap-usr1", 0), CONFIG_IGNORE_ROW("max-routes", 0),
    CONFIG_IGNORE_ROW("iproute", 0), CONFIG_IGNORE_ROW("force-tls-key-material-export", 0),
    CONFIG_IGNORE_ROW("x509-track", 0), CONFIG_IGNORE_ROW("tls-export-cert", 0),
    CONFIG_IGNORE_ROW("ecdh-curve", 0), CONFIG_IGNORE_ROW("memstats", 0), CONFIG_IGNORE_ROW("prng", 0),
    CONFIG_IGNORE_ROW("compat-names", 0), CONFIG_IGNORE_ROW("pause-exit", 0), CONFIG_IGNORE_ROW("service", 0),
    /* OpenVPN 2.6 takes these in a client config too (PIA's profiles say disable-occ); they were
     * "unknown option", which reads as a typo and stopped a profile openvpn runs. */
    CONFIG_IGNORE_ROW("disable-occ", 0), CONFIG_IGNORE_ROW("tcp-queue-limit", 0),
    CONFIG_IGNORE_ROW("setenv-safe", 0), CONFIG_IGNORE_ROW("allow-recursive-routing", 0),
    CONFIG_IGNORE_ROW("tmp-dir", 0), CONFIG_IGNORE_ROW("ip-remote-hint", 0),
    CONFIG_IGNORE_ROW("use-prediction-resistance", 0),
    CONFIG_IGNORE_ROW("keying-material-exporter", 0),
    CONFIG_IGNORE_ROW("msg-channel", 0), CONFIG_IGNORE_ROW("opt-verify", 0),
    /* Accepted, but the user should know it does nothing here. */
    CONFIG_WARN_ROW("link-mtu", CONFIG_CONN, "link-mtu is ignored; tun-mtu sets the size"),
    CONFIG_WARN_ROW("udp-mtu", CONFIG_CONN, "udp-mtu is ignored; tun-mtu sets the size"),
    CONFIG_WARN_ROW("max-packet-size", CONFIG_CONN,
                    "max-packet-size is ignored; tun-mtu and mssfix set the sizes"),
    CONFIG_WARN_ROW("ifconfig", 0, "ifconfig is ignored; the server pushes the tunnel address"),
    CONFIG_WARN_ROW("ifconfig-ipv6", 0, "ifconfig-ipv6 is ignored; the server pushes the tunnel address"),
    CONFIG_WARN_ROW("tls-version-max", 0, "tls-version-max is ignored"),
    CONFIG_WARN_ROW("tls-groups", 0, "tls-groups is ignored; OpenSSL's defaults are used"),
    CONFIG_WARN_ROW("tls-cert-profile", 0, "tls-cert-profile is ignored; OpenSSL's defaults are used"),
    CONFIG_WARN_ROW("inactive", 0, "inactive is ignored"),
    CONFIG_WARN_ROW("session-timeout", 0, "session-timeout is ignored"),
    CONFIG_WARN_ROW("shaper", 0, "shaper is ignored"),
    CONFIG_WARN_ROW("remote-random-hostname", 0, "remote-random-hostname is ignored"),
    CONFIG_WARN_ROW("proto-force", 0, "proto-force is ignored"),
    CONFIG_WARN_ROW("providers", 0, "providers is ignored; OpenSSL's default provider is used"),
    CONFIG_WARN_ROW("engine", 0, "engine is ignored"),
    CONFIG_WARN_ROW("no-replay", 0, "no-replay is ignored; replay protection stays on"),
    CONFIG_WARN_ROW("client-nat", 0, "client-nat is ignored"),
    CONFIG_WARN_ROW("remote-cert-ku", 0,
                    "remote-cert-ku is not checked; remote-cert-tls server checks the key usage"),
    CONFIG_WARN_ROW("auth-token", 0, "auth-token in a file is ignored; the server pushes it"),
    CONFIG_WARN_ROW("key-derivation", 0, "key-derivation is negotiated with the server; ignored here"),
    CONFIG_WARN_ROW("protocol-flags", 0, "protocol-flags is negotiated with the server; ignored here"),
    CONFIG_WARN_ROW("ncp-disable", 0, "ncp-disable is ignored; ciphers are negotiated"),
    CONFIG_WARN_ROW("keysize", 0, "keysize is ignored; the cipher name sets the key size"),
    CONFIG_SCRIPT_ROW("up"), CONFIG_SCRIPT_ROW("down"), CONFIG_SCRIPT_ROW("down-pre"),
    CONFIG_SCRIPT_ROW("up-delay"), CONFIG_SCRIPT_ROW("up-restart"), CONFIG_SCRIPT_ROW("route-up"),
    CONFIG_SCRIPT_ROW("route-pre-down"), CONFIG_SCRIPT_ROW("ipchange"), CONFIG_SCRIPT_ROW("plugin"),
    /* Cannot work here. */
    CONFIG_REFUSE_ROW("fragment", CONFIG_CONN,
        "fragment is not supported: remove it here and on the server (mssfix covers TCP)"),
    CONFIG_REFUSE_ROW("socks-proxy", CONFIG_CONN, config_no_proxy),
    CONFIG_REFUSE_ROW("socks-proxy-retry", CONFIG_CONN, config_no_proxy),
    CONFIG_REFUSE_ROW("http-proxy", CONFIG_CONN, config_no_proxy),
    CONFIG_REFUSE_ROW("http-proxy-option", CONFIG_CONN, config_no_proxy),
    CONFIG_REFUSE_ROW("http-proxy-user-pass", CONFIG_CONN | CONFIG_BLOCK, config_no_proxy),
    CONFIG_REFUSE_ROW("http-proxy-retry", CONFIG_CONN, config_no_proxy),
    CONFIG_REFUSE_ROW("http-proxy-timeout", CONFIG_CONN, config_no_proxy),
    CONFIG_REFUSE_ROW("http-proxy-override", 0, config_no_proxy),
    CONFIG_REFUSE_ROW("pkcs12", CONFIG_BLOCK,
        "pkcs12 is not supported: convert it (openssl pkcs12 -nodes) into ca, cert and key files"),
    CONFIG_REFUSE_ROW("cryptoapicert", 0, config_no_token),
    CONFIG_REFUSE_ROW("management-external-key", 0, config_no_token),
    CONFIG_REFUSE_ROW("management-external-cert", 0, config_no_token),
    CONFIG_REFUSE_ROW("secret", CONFIG_BLOCK,
        "secret (static key mode) is not supported: vpn2socks needs a TLS server (client, ca, cert, key)"),
    CONFIG_REFUSE_ROW("tls-server", 0, "tls-server: this is a server config; vpn2socks is a client"),
    CONFIG_REFUSE_ROW("askpass", 0,
        "askpass (an encrypted private key) is not supported: decrypt the key "
        "(openssl pkey -in KEY -out KEY2)"),
    CONFIG_REFUSE_ROW("static-challenge", 0,
        "static-challenge (an interactive one-time password prompt) is not supported"),
    CONFIG_REFUSE_ROW("capath", 0, "capath is not supported: put the CA certificates into one ca file"),
    CONFIG_REFUSE_ROW("verify-hash", CONFIG_BLOCK,
        "verify-hash (pinning the CA's hash) is not supported: use ca, or peer-fingerprint for the "
        "server's own certificate"),
    CONFIG_REFUSE_ROW("tls-verify", 0, "tls-verify scripts are not supported: use verify-x509-name"),
    CONFIG_REFUSE_ROW("config", 0, "config (reading another file) is not supported: merge the files"),
    CONFIG_SERVER_ROW("server"), CONFIG_SERVER_ROW("server-ipv6"), CONFIG_SERVER_ROW("server-bridge"),
    CONFIG_SERVER_ROW("push"), CONFIG_SERVER_ROW("push-reset"), CONFIG_SERVER_ROW("push-remove"),
    CONFIG_SERVER_ROW("ifconfig-pool"), CONFIG_SERVER_ROW("ifconfig-pool-persist"),
    CONFIG_SERVER_ROW("ifconfig-ipv6-pool"), CONFIG_SERVER_ROW("client-config-dir"),
    CONFIG_SERVER_ROW("ccd-exclusive"), CONFIG_SERVER_ROW("client-to-client"),
    CONFIG_SERVER_ROW("duplicate-cn"), CONFIG_SERVER_ROW("max-clients"), CONFIG_SERVER_ROW("ifconfig-push"),
    CONFIG_SERVER_ROW("ifconfig-ipv6-push"), CONFIG_SERVER_ROW("iroute"), CONFIG_SERVER_ROW("iroute-ipv6"),
    CONFIG_SERVER_ROW("auth-user-pass-verify"), CONFIG_SERVER_ROW("client-connect"),
    CONFIG_SERVER_ROW("client-disconnect"), CONFIG_SERVER_ROW("learn-address"),
    CONFIG_SERVER_ROW("verify-client-cert"), CONFIG_SERVER_ROW("client-cert-not-required"),
    CONFIG_SERVER_ROW("username-as-common-name"), CONFIG_SERVER_ROW("auth-gen-token"),
    CONFIG_SERVER_ROW("port-share"), CONFIG_SERVER_ROW("tls-crypt-v2-verify"),
};

static const struct config_option config_pkcs11 = CONFIG_REFUSE_ROW("pkcs11-*", 0, config_no_token);
static const struct config_option config_management = CONFIG_IGNORE_ROW("management-*", 0);

static const struct config_option *config_find_in(const struct config_option *rows, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, rows[i].name) == 0)
            return &rows[i];
    return NULL;
}

const struct config_option *ovpn_config_find(const char *name)
{
    const struct config_option *o;
    if ((o = config_find_in(ovpn_config_net_options, ovpn_config_net_n_options, name)) != NULL ||
        (o = config_find_in(ovpn_config_tls_options, ovpn_config_tls_n_options, name)) != NULL ||
        (o = config_find_in(config_options, sizeof(config_options) / sizeof(config_options[0]), name)) != NULL)
        return o;
    if (strncmp(name, "pkcs11-", 7) == 0)
        return &config_pkcs11;
    if (strncmp(name, "management-", 11) == 0)
        return &config_management;
    return NULL;
}

int ovpn_config_unknown(struct ovpn_config_parser *p, const char *name, int lenient)
{
    char shown[CONFIG_SHOWN_MAX];
    int ignored = lenient || p->forward_compatible;
    for (size_t i = 0; !ignored && i < p->n_ignored; i++)
        ignored = strcmp(p->ignored[i], name) == 0;
    if (!ignored)
        return config_fail(p, "unknown option '%s'", v2s_shown(name, shown, sizeof(shown)));
    ovpn_config_warn(p, p->opt_line, "ignoring unknown option '%s'", v2s_shown(name, shown, sizeof(shown)));
    return 0;
}

int ovpn_config_not_applied(struct ovpn_config_parser *p, const struct config_option *o, int *rc)
{
    *rc = 0;
    switch (o->kind) {
    case CONFIG_APPLY:
        return 0;
    case CONFIG_IGNORE:
        break;
    case CONFIG_WARN:
        ovpn_config_warn(p, p->opt_line, "%s", o->note);
        break;
    case CONFIG_SCRIPT:
        ovpn_config_warn(p, p->opt_line, "%s ignored: vpn2socks runs no scripts", o->name);
        break;
    case CONFIG_REFUSE:
        *rc = config_fail(p, "%s", o->note);
        break;
    case CONFIG_SERVER:
        *rc = config_fail(p, "%s is a server option: this is not a client config", o->name);
        break;
    }
    return 1;
}

int ovpn_config_option(struct ovpn_config_parser *p, char **w, int n)
{
    const struct config_option *o;
    int lenient = 0;
    int rc;

    if (strcmp(w[0], "setenv") == 0) {
        if (p->in_connection)
            return config_fail(p, "setenv cannot be used inside a <connection> block");
        if (n < 2 || strcmp(w[1], "opt") != 0) {
            if (n >= 3 && strcmp(w[1], "FORWARD_COMPATIBLE") == 0 && strcmp(w[2], "1") == 0)
                p->forward_compatible = 1;
            return 0; /* a variable for scripts, which we do not run */
        }
        if (n == 2)
            return config_fail(p, "setenv opt needs an option");
        w += 2;
        n -= 2;
        lenient = 1;
    }
    if ((o = ovpn_config_find(w[0])) == NULL)
        return ovpn_config_unknown(p, w[0], lenient);
    if (o->kind != CONFIG_REFUSE && o->kind != CONFIG_SERVER && p->in_connection && !(o->flags & CONFIG_CONN))
        return config_fail(p, "%s cannot be used inside a <connection> block", o->name);
    if (ovpn_config_not_applied(p, o, &rc))
        return rc;
    if (n - 1 < o->min_args || n - 1 > o->max_args) {
        if (o->min_args == o->max_args)
            return config_fail(p, "%s takes %d argument%s, not %d", o->name, o->min_args,
                               o->min_args == 1 ? "" : "s", n - 1);
        return config_fail(p, "%s takes %d to %d arguments, not %d", o->name, o->min_args, o->max_args,
                           n - 1);
    }
    return o->apply(p, w, n, NULL);
}
