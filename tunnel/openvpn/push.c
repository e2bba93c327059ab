/* PUSH_REPLY parsing: the options the server pushes, read into what the client acts on. The
 * options a config file shares with a push (routes, DNS, domains, redirect-gateway) are read by
 * settings_opt.c, and the words are cut by words.c, both below this file and the .ovpn parser.
 *
 * How OpenVPN 2.6 reads a push (options.c apply_push_options): the text after "PUSH_REPLY," is cut
 * at every comma with no regard for quotes, and each piece is then split into words like a config
 * line (quotes and backslashes work inside one piece). We do the same. Unknown options are ignored,
 * because servers push many that only matter to a TUN device or a GUI; a known option with a value
 * we cannot read fails the parse, because a dropped route or DNS server sends traffic the wrong
 * way.
 *
 * ifconfig depends on the topology, which may be pushed before or after it (even in an earlier or
 * later part of a push-continuation), so the second argument is kept and re-read whenever either
 * arrives: topology subnet = address + netmask; net30 and p2p = address + peer, a /32. The
 * topology a push starts from is the config's (net30 without one), so "ifconfig A PEER" may be
 * read under subnet until a later "topology net30" arrives: whether the second argument is a
 * netmask is checked once the last part is in, as OpenVPN reads it only when it configures the
 * tun device.
 *
 * pull-filter (OpenVPN 2.6 options.c apply_pull_filter) looks at each piece before it is split:
 * leading whitespace skipped, the rest compared with each filter's text as a plain prefix, so
 * "route" also matches route-ipv6 and route-gateway, and "route 10.1" matches "route 10.10.0.0";
 * quotes and extra spaces in the pushed text count, as OpenVPN's man page warns. The first filter
 * that matches decides; OpenVPN restarts on reject, which the client turns into trying the next
 * remote (see client.c). */
#include "tunnel/openvpn/push.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/errmsg.h"
#include "base/log.h"
#include "tunnel/openvpn/keyfile.h"
#include "tunnel/openvpn/settings_opt.h"
#include "tunnel/openvpn/words.h"

enum {
    PUSH_MAX_WORDS = 16,       /* OpenVPN's MAX_PARMS */
    PUSH_MTU_MIN = 100,        /* OpenVPN's TUN_MTU_MIN */
    PUSH_MTU_MAX = 65535,
    PUSH_TOKEN_MAX = 4096,     /* OpenVPN's USER_PASS_LEN bounds the token and its user */
    PUSH_SHOWN_MAX = 48,       /* how much of a hostile value an error message shows */
    PUSH_OPTION_SHOWN = 96,    /* how much of a filtered option a message shows */
};

void ovpn_push_init(struct ovpn_push *p)
{
    memset(p, 0, sizeof(*p));
    tunnel_settings_init(&p->settings);
    p->topology = OVPN_TOPOLOGY_NET30;
}


void ovpn_push_free(struct ovpn_push *p)
{
    tunnel_settings_free(&p->settings);
    ovpn_secret_free(&p->auth_token);
    ovpn_secret_free(&p->auth_token_user);
    ovpn_push_init(p);
}

/* Re-reads ifconfig's second argument for the current topology. Under subnet, one that is not a
 * netmask is an error only if no later topology changes that (push_check_complete). */
static void push_apply_ifconfig(struct ovpn_push *p)
{
    char text[V2S_ADDR_STRLEN];
    p->ifconfig_not_mask = 0;
    if (p->settings.addr4.family == 0)
        return;
    if (p->topology != OVPN_TOPOLOGY_SUBNET) {
        p->settings.prefix4 = 32;
        return;
    }
    v2s_addr_format(&p->ifconfig_remote, text, sizeof(text));
    int prefix = v2s_netmask_prefix(text);
    p->ifconfig_not_mask = prefix < 0;
    p->settings.prefix4 = prefix < 0 ? 32 : (unsigned)prefix;
}

/* What can only be judged once the last part of the push is in. */
static int push_check_complete(const struct ovpn_push *p, char *err, size_t errcap)
{
    char text[V2S_ADDR_STRLEN];
    if (p->continuation == 2 || !p->ifconfig_not_mask)
        return 0;
    v2s_addr_format(&p->ifconfig_remote, text, sizeof(text));
    return ovpn_option_bad(err, errcap, "ifconfig netmask", text, "not a netmask, and the topology is subnet");
}

static int push_ifconfig(struct ovpn_push *p, char **w, int n, char *err, size_t errcap)
{
    struct v2s_addr local, remote;
    if (n != 3)
        return v2s_fail(err, errcap, "ifconfig takes 2 arguments");
    if (v2s_addr_parse(&local, w[1]) != 0 || local.family != AF_INET)
        return ovpn_option_bad(err, errcap, "ifconfig", w[1], "not an IPv4 address");
    if (v2s_addr_parse(&remote, w[2]) != 0 || remote.family != AF_INET)
        return ovpn_option_bad(err, errcap, "ifconfig", w[2], "not an IPv4 address or netmask");
    p->settings.addr4 = local;
    p->ifconfig_remote = remote;
    push_apply_ifconfig(p);
    return 0;
}

/* ifconfig-ipv6 addr/bits [remote] */
static int push_ifconfig6(struct ovpn_push *p, char **w, int n, char *err, size_t errcap)
{
    struct v2s_addr a, remote;
    unsigned long bits = 128;
    char host[64];

    if (n < 2 || n > 3)
        return v2s_fail(err, errcap, "ifconfig-ipv6 takes 1 or 2 arguments");
    const char *slash = strchr(w[1], '/');
    size_t hl = slash ? (size_t)(slash - w[1]) : strlen(w[1]);
    if (hl >= sizeof(host))
        return ovpn_option_bad(err, errcap, "ifconfig-ipv6", w[1], "not an IPv6 address/bits");
    memcpy(host, w[1], hl);
    host[hl] = '\0';
    if (v2s_addr_parse(&a, host) != 0 || a.family != AF_INET6 ||
        (slash != NULL && v2s_parse_uint(slash + 1, 128, &bits) != 0))
        return ovpn_option_bad(err, errcap, "ifconfig-ipv6", w[1], "not an IPv6 address/bits");
    if (n == 3 && (v2s_addr_parse(&remote, w[2]) != 0 || remote.family != AF_INET6))
        return ovpn_option_bad(err, errcap, "ifconfig-ipv6", w[2], "not an IPv6 address");
    p->settings.addr6 = a;
    p->settings.prefix6 = (unsigned)bits;
    return 0;
}

static int push_topology(struct ovpn_push *p, char **w, int n, char *err, size_t errcap)
{
    if (n != 2)
        return v2s_fail(err, errcap, "topology takes 1 argument");
    if (strcmp(w[1], "subnet") == 0)
        p->topology = OVPN_TOPOLOGY_SUBNET;
    else if (strcmp(w[1], "net30") == 0)
        p->topology = OVPN_TOPOLOGY_NET30;
    else if (strcmp(w[1], "p2p") == 0)
        p->topology = OVPN_TOPOLOGY_P2P;
    else
        return ovpn_option_bad(err, errcap, "topology", w[1], "expected net30, p2p or subnet");
    push_apply_ifconfig(p);
    return 0;
}

static int push_copy_name(char *dst, size_t cap, char **w, int n, char *err, size_t errcap)
{
    if (n != 2)
        return v2s_fail(err, errcap, "%s takes 1 argument", w[0]);
    size_t len = strlen(w[1]);
    if (len == 0 || len >= cap)
        return ovpn_option_bad(err, errcap, w[0], w[1], "empty or too long");
    memcpy(dst, w[1], len + 1);
    return 0;
}

static int push_number(unsigned *dst, unsigned long max, char **w, int n, char *err, size_t errcap)
{
    unsigned long v;
    if (n < 2)
        return v2s_fail(err, errcap, "%s needs a number", w[0]);
    if (v2s_parse_uint(w[1], max, &v) != 0)
        return ovpn_option_bad(err, errcap, w[0], w[1], "not a number in range");
    *dst = (unsigned)v;
    return 0;
}

static int push_compression(struct ovpn_push *p, char **w, int n, char *err, size_t errcap)
{
    if (n > 2)
        return v2s_fail(err, errcap, "%s takes at most 1 argument", w[0]);
    if (strcmp(w[0], "comp-lzo") == 0 || (n == 2 && strcmp(w[1], "lzo") == 0)) {
        /* Any argument, "no" included, means the one-byte LZO framing; so does compress lzo,
         * which OpenVPN sends without the swap of compress stub and lz4 (lzo.c). */
        p->comp = OVPN_COMP_FRAMING_LZO;
    } else if (n == 1 || strcmp(w[1], "stub") == 0 || strcmp(w[1], "lz4") == 0) {
        p->comp = OVPN_COMP_FRAMING_V1;
    } else if (strcmp(w[1], "stub-v2") == 0 || strcmp(w[1], "lz4-v2") == 0) {
        p->comp = OVPN_COMP_FRAMING_V2;
    } else {
        return ovpn_option_bad(err, errcap, "compress", w[1], "expected stub, stub-v2, lzo, lz4 or lz4-v2");
    }
    p->comp_set = 1;
    return 0;
}

/* Decodes standard base64 (padding optional) into a new string; NULL on bad input, an empty or
 * NUL-containing result, or no memory. */
static char *push_base64_decode(const char *in)
{
    size_t len = strlen(in);
    while (len > 0 && in[len - 1] == '=')
        len--;
    char *out = malloc(len * 3 / 4 + 1);
    size_t n = 0;
    unsigned acc = 0;
    int bits = 0;
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        int v = ovpn_base64_digit((unsigned char)in[i]);
        if (v < 0)
            goto bad;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n] = (char)((acc >> bits) & 0xFF);
            if (out[n] == '\0')
                goto bad;
            n++;
        }
    }
    if (n == 0 || bits >= 6) /* a lone sixth-bit group is not base64 */
        goto bad;
    out[n] = '\0';
    return out;
bad:
    explicit_bzero(out, len * 3 / 4 + 1);
    free(out);
    return NULL;
}

static int push_auth_token(struct ovpn_push *p, char **w, int n, char *err, size_t errcap)
{
    char *copy;
    if (n != 2 || w[1][0] == '\0' || strlen(w[1]) > PUSH_TOKEN_MAX)
        return v2s_fail(err, errcap, "%s takes 1 non-empty argument", w[0]);
    if (strcmp(w[0], "auth-token") == 0) {
        if ((copy = strdup(w[1])) == NULL) {
            v2s_fail(err, errcap, "out of memory");
            return -ENOMEM;
        }
        ovpn_secret_free(&p->auth_token);
        p->auth_token = copy;
        return 0;
    }
    if ((copy = push_base64_decode(w[1])) == NULL)
        return v2s_fail(err, errcap, "auth-token-user: not base64 of a user name");
    ovpn_secret_free(&p->auth_token_user);
    p->auth_token_user = copy;
    return 0;
}

static int push_protocol_flags(struct ovpn_push *p, char **w, int n)
{
    /* Unknown flags (dyn-tls-crypt, ...) are features we did not announce; ignore them. */
    for (int i = 1; i < n; i++) {
        if (strcmp(w[i], "tls-ekm") == 0)
            p->key_derivation_ekm = 1;
        else if (strcmp(w[i], "cc-exit") == 0)
            p->cc_exit = 1;
    }
    return 0;
}

/* Applies one option; unknown ones are ignored. */
static int push_option(struct ovpn_push *p, char **w, int n, char *err, size_t errcap)
{
    const char *name = w[0];
    unsigned long v;
    int r = ovpn_settings_option(&p->settings, &p->redirect_gateway, w, n, err, errcap);
    if (r != 0)
        return r < 0 ? r : 0;

    if (strcmp(name, "ifconfig") == 0)
        return push_ifconfig(p, w, n, err, errcap);
    if (strcmp(name, "ifconfig-ipv6") == 0)
        return push_ifconfig6(p, w, n, err, errcap);
    if (strcmp(name, "topology") == 0)
        return push_topology(p, w, n, err, errcap);
    if (strcmp(name, "peer-id") == 0) {
        if (n != 2 || v2s_parse_uint(w[1], OVPN_PEER_ID_UNDEF, &v) != 0)
            return v2s_fail(err, errcap, "peer-id takes a number in 0..16777215");
        p->peer_id = (uint32_t)v;
        p->peer_id_set = 1;
        return 0;
    }
    if (strcmp(name, "cipher") == 0)
        return push_copy_name(p->cipher, sizeof(p->cipher), w, n, err, errcap);
    if (strcmp(name, "auth") == 0)
        return push_copy_name(p->auth, sizeof(p->auth), w, n, err, errcap);
    if (strcmp(name, "key-derivation") == 0) {
        if (n >= 2 && strcmp(w[1], "tls-ekm") == 0)
            p->key_derivation_ekm = 1;
        return 0;
    }
    if (strcmp(name, "protocol-flags") == 0)
        return push_protocol_flags(p, w, n);
    if (strcmp(name, "tun-mtu") == 0) {
        unsigned mtu = 0;
        if (n > 3)
            return v2s_fail(err, errcap, "tun-mtu takes 1 or 2 arguments");
        if ((r = push_number(&mtu, PUSH_MTU_MAX, w, n, err, errcap)) < 0)
            return r;
        if (mtu < PUSH_MTU_MIN)
            return ovpn_option_bad(err, errcap, "tun-mtu", w[1], "not a number in 100..65535");
        p->settings.mtu = mtu;
        return 0;
    }
    if (strcmp(name, "ping") == 0)
        return push_number(&p->ping, 1000000, w, n, err, errcap);
    /* ping-exit shares ping-restart's timeout in OpenVPN, the later of the two winning (options.c
     * ping_rec_timeout); a server may push it (OPT_P_TIMER). Pushed, it was ignored, and a client
     * whose config set no ping-restart never noticed a dead server. We restart on it, as on a
     * config's ping-exit (config_opt_net.c): the proxy stays for the tunnel to come back. */
    if (strcmp(name, "ping-restart") == 0 || strcmp(name, "ping-exit") == 0)
        return push_number(&p->ping_restart, 1000000, w, n, err, errcap);
    if (strcmp(name, "auth-token") == 0 || strcmp(name, "auth-token-user") == 0)
        return push_auth_token(p, w, n, err, errcap);
    if (strcmp(name, "explicit-exit-notify") == 0) {
        /* Pushable in OpenVPN 2.6 (pull_permission_mask); no count means 1, as in a config. */
        if (n > 2)
            return v2s_fail(err, errcap, "explicit-exit-notify takes at most 1 argument");
        p->explicit_exit_notify = 1;
        if (n == 2 && (r = push_number(&p->explicit_exit_notify, 100, w, n, err, errcap)) < 0)
            return r;
        p->explicit_exit_notify_set = 1;
        return 0;
    }
    if (strcmp(name, "push-continuation") == 0) {
        if (n != 2 || v2s_parse_uint(w[1], 2, &v) != 0)
            return v2s_fail(err, errcap, "push-continuation takes 0, 1 or 2");
        p->continuation = (int)v;
        return 0;
    }
    if (strcmp(name, "comp-lzo") == 0 || strcmp(name, "compress") == 0)
        return push_compression(p, w, n, err, errcap);
    return 0;
}

/* Names whose value we read: a piece that cannot even be split into words fails the parse only
 * when it is one of these. */
static int push_is_known(const char *name, size_t len)
{
    static const char *const known[] = {
        "route", "route-ipv6", "dhcp-option", "dns", "redirect-gateway", "redirect-private",
        "ifconfig", "ifconfig-ipv6", "topology", "peer-id", "cipher", "auth", "key-derivation",
        "protocol-flags", "tun-mtu", "ping", "ping-restart", "ping-exit", "auth-token", "auth-token-user",
        "push-continuation", "comp-lzo", "compress",
    };
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strlen(known[i]) == len && memcmp(known[i], name, len) == 0)
            return 1;
    return 0;
}

/* The first filter whose text starts the option (its leading whitespace skipped); NULL when none. */
static const struct ovpn_pull_filter *push_filter_match(const char *option, const struct ovpn_pull_filter *filters,
                                                        size_t n_filters)
{
    for (size_t i = 0; i < n_filters; i++)
        if (strncmp(option, filters[i].text, strlen(filters[i].text)) == 0)
            return &filters[i];
    return NULL;
}

/* Applies the filters to one piece. 1: take it, 0: drop it, -EPERM: a reject filter matched. */
static int push_filter(const char *item, const struct ovpn_pull_filter *filters, size_t n_filters, char *err,
                       size_t errcap)
{
    static const char *const names[] = {"accept", "ignore", "reject"};
    char option[PUSH_OPTION_SHOWN], text[PUSH_SHOWN_MAX];
    while (isspace((unsigned char)*item))
        item++;
    const struct ovpn_pull_filter *f = push_filter_match(item, filters, n_filters);
    if (f == NULL)
        return 1;
    /* A token is a password: the messages name the option, never its value. */
    size_t nl = strcspn(item, " \t");
    if ((nl == 10 && strncmp(item, "auth-token", 10) == 0) || (nl == 15 && strncmp(item, "auth-token-user", 15) == 0))
        snprintf(option, sizeof(option), "%.*s (value not shown)", (int)nl, item);
    else
        v2s_shown(item, option, sizeof(option));
    v2s_shown(f->text, text, sizeof(text));
    switch (f->action) {
    case OVPN_PULL_ACCEPT:
        v2s_debug("openvpn: pushed option '%s' accepted (pull-filter %s \"%s\", config line %u)", option,
                  names[f->action], text, f->line);
        return 1;
    case OVPN_PULL_IGNORE:
        v2s_info("openvpn: pushed option '%s' ignored (pull-filter %s \"%s\", config line %u)", option,
                 names[f->action], text, f->line);
        return 0;
    case OVPN_PULL_REJECT:
        v2s_fail(err, errcap, "pushed option '%s' rejected by pull-filter %s \"%s\" (config line %u)", option,
                 names[f->action], text, f->line);
        return -EPERM;
    }
    return 1;
}

int ovpn_push_parse(struct ovpn_push *p, const char *msg, char *err, size_t errcap)
{
    return ovpn_push_parse_filtered(p, msg, NULL, 0, err, errcap);
}

int ovpn_push_parse_filtered(struct ovpn_push *p, const char *msg, const struct ovpn_pull_filter *filters,
                             size_t n_filters, char *err, size_t errcap)
{
    static const char prefix[] = "PUSH_REPLY";
    const size_t plen = sizeof(prefix) - 1;
    char *words[PUSH_MAX_WORDS];
    char name[PUSH_SHOWN_MAX];
    int r = 0;

    if (err != NULL && errcap > 0)
        err[0] = '\0';
    if (strncmp(msg, prefix, plen) != 0 || (msg[plen] != '\0' && msg[plen] != ','))
        return ovpn_option_bad(err, errcap, "message", msg, "not a PUSH_REPLY");
    p->continuation = 0; /* absent from this part = the last part */
    if (msg[plen] == '\0')
        return push_check_complete(p, err, errcap);

    size_t len = strlen(msg + plen + 1);
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        v2s_fail(err, errcap, "out of memory");
        return -ENOMEM;
    }
    memcpy(copy, msg + plen + 1, len + 1);

    for (char *item = copy; item != NULL;) {
        char *comma = strchr(item, ',');
        if (comma != NULL)
            *comma = '\0';
        char *next = comma ? comma + 1 : NULL;
        if (n_filters > 0) {
            int take = push_filter(item, filters, n_filters, err, errcap);
            if (take < 0) {
                r = take;
                goto out;
            }
            if (take == 0) {
                item = next;
                continue;
            }
        }
        /* The name as written, kept before the split modifies the piece, for the error below. */
        size_t skip = strspn(item, " \t");
        size_t nl = strcspn(item + skip, " \t");
        v2s_shown(item + skip, name, sizeof(name));
        if (nl < strlen(name))
            name[nl] = '\0';
        int n = ovpn_split_words(item, words, PUSH_MAX_WORDS);
        if (n < 0) {
            if (push_is_known(name, strlen(name))) {
                r = v2s_fail(err, errcap, "option '%s': unterminated quote, bad backslash or too many words",
                             name);
                goto out;
            }
        } else if (n > 0) {
            r = push_option(p, words, n, err, errcap);
            if (r < 0)
                goto out;
        }
        item = next;
    }
    r = push_check_complete(p, err, errcap);
out:
    explicit_bzero(copy, len + 1);
    free(copy);
    return r;
}
