/* .ovpn configuration: a push parser (no I/O and no logging inside) for the file's text, and a
 * loader that reads the file, the files it names (relative to its folder) and any
 * --auth-user-pass file, and logs the parser's warnings. The word splitter (words.h) and the
 * static key and credentials readers (keyfile.h) come with it. */
#ifndef VPN2SOCKS_OPENVPN_CONFIG_H
#define VPN2SOCKS_OPENVPN_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "tunnel/openvpn/comp.h"
#include "tunnel/openvpn/keyfile.h"
#include "tunnel/openvpn/proto.h"
#include "tunnel/openvpn/pull_filter.h"
#include "tunnel/openvpn/push.h"
#include "tunnel/openvpn/words.h"
#include "tunnel/settings.h"

enum ovpn_proto {
    OVPN_PROTO_UDP,
    OVPN_PROTO_TCP,
};

struct ovpn_remote {
    char host[256];
    char port[32];         /* "1194" when not given; a number once loaded (config_load.c) */
    enum ovpn_proto proto;
    int family;            /* 0 = any, AF_INET (udp4/tcp4), AF_INET6 (udp6/tcp6) */
};

/* peer-fingerprint: the SHA-256 of the server's certificate. */
enum { OVPN_FINGERPRINT_LEN = 32 };

/* ovpn_config's digest of the files it was loaded from: SHA-256. */
enum { OVPN_CONFIG_DIGEST_LEN = 32 };

enum ovpn_x509_name_type {
    OVPN_X509_NAME_SUBJECT,     /* whole subject DN, OpenVPN's RFC 2253-like format */
    OVPN_X509_NAME_CN,          /* name: the CN equals */
    OVPN_X509_NAME_CN_PREFIX,   /* name-prefix: the CN starts with */
};

/* What a loaded config holds. Strings are owned (freed by ovpn_config_free). Inline blocks and
 * named files end up in the same fields. */
/* auth-retry: what an AUTH_FAILED does (OpenVPN push.c receive_auth_failed). */
enum ovpn_auth_retry {
    OVPN_AUTH_RETRY_NONE = 0,   /* none (the default): the client stops, exit status 2 */
    OVPN_AUTH_RETRY_NOINTERACT, /* nointeract: reconnects with the same credentials */
    OVPN_AUTH_RETRY_INTERACT,   /* interact: reconnects, the auth-user-pass file read again */
};

struct ovpn_config {
    struct ovpn_remote *remotes;  /* <connection> blocks and remote lines, in order */
    size_t n_remotes;
    int remote_random;
    char *ca;                     /* PEM text */
    char *cert;
    char *key;
    char *extra_certs;
    /* Where ca, cert and key came from, for the messages of TLS setup, which judges what is in
     * them: "cert 'client.crt' (line 4, /etc/vpn/client.crt)" or "<cert> (line 12)". NULL when
     * the config was parsed rather than loaded; messages then name the option alone. */
    char *ca_origin;
    char *cert_origin;
    char *key_origin;
    char *crl;                    /* crl-verify: PEM CRLs the server's chain is checked against;
                                   * NULL: none (read once at load, and again on SIGHUP) */
    char *crl_origin;
    uint8_t tls_auth_key[OVPN_STATIC_KEY_LEN];
    int has_tls_auth;
    int key_direction;            /* -1 none (bidirectional), 0 or 1 */
    uint8_t tls_crypt_key[OVPN_STATIC_KEY_LEN];
    int has_tls_crypt;
    struct ovpn_tls_crypt_v2_key tls_crypt_v2; /* tls-crypt-v2: the client key, and the wrapped key
                                                * the first reset carries */
    int has_tls_crypt_v2;
    char cipher[64];              /* "cipher": the NCP fallback; "" when not given (BF-CBC legacy) */
    char data_ciphers[512];       /* "data-ciphers", colon separated; "" = default list */
    char data_ciphers_fallback[64];
    char auth[32];                /* "auth": default "SHA1" */
    enum ovpn_comp_framing comp;  /* comp-lzo / compress as configured */
    int comp_set;                 /* comp-lzo or compress appeared (else the server may push it) */
    int auth_user_pass;           /* auth-user-pass present */
    char *username;               /* inline or from a file; NULL when asked for but not given */
    char *password;               /* NULL also once auth-nocache wiped it (auth_file has it) */
    char *auth_file;              /* the file the credentials came from (resolved); NULL: inline */
    int auth_nocache;             /* auth-nocache: wipe the password once sent, read the file again */
    int auth_retry;               /* OVPN_AUTH_RETRY_*: whether AUTH_FAILED reconnects, and how */
    int tls_exit;                 /* tls-exit: a TLS error stops the client instead of a restart */
    unsigned load_flags;          /* what ovpn_config_load_flags was given, for reading it again */
    uint8_t digest[OVPN_CONFIG_DIGEST_LEN]; /* SHA-256 of every file the load read, each after its
                                  * role and length: a reload that reads the same digest again
                                  * need not restart the session (zero when parsed, not loaded) */
    char tls_version_min[16];     /* "1.2" etc.; "" = 1.2 */
    char *tls_cipher;             /* OpenSSL cipher list for TLS <= 1.2, or NULL */
    char *tls_ciphersuites;       /* TLS 1.3 suites, or NULL */
    int remote_cert_tls_server;   /* remote-cert-tls server (or ns-cert-type server) */
    char *verify_x509_name;
    enum ovpn_x509_name_type verify_x509_type;
    uint8_t (*peer_fingerprints)[OVPN_FINGERPRINT_LEN]; /* peer-fingerprint lines and blocks, in
                                  * order: the server's certificate must be one of these; with no
                                  * ca they replace the CA (a self-signed server), as in OpenVPN 2.6 */
    size_t n_peer_fingerprints;
    /* Times in seconds are at most 4294967 (the parser refuses more): times 1000 they fit 32 bits. */
    unsigned reneg_sec;           /* default 3600; 0 = off */
    uint64_t reneg_bytes;         /* a new key after this many bytes, sent plus received; 0 = off */
    uint64_t reneg_pkts;          /* the same in packets; 0 = off */
    unsigned replay_window;       /* replay-window n: 1..65536; 0 = not given (64) */
    int replay_in_order;          /* replay-window 0: each data packet id must follow the last */
    unsigned ping;                /* seconds; 0 = off */
    unsigned ping_restart;        /* seconds; 0 = off */
    unsigned hand_window;         /* default 60 */
    unsigned connect_retry;       /* default 5 */
    unsigned connect_retry_wait_max; /* connect-retry's second argument: the longest wait; 300 */
    unsigned connect_retry_max;   /* 0 = forever */
    unsigned server_poll_timeout; /* default 120 */
    unsigned connect_timeout;     /* TCP connect timeout, default 120 */
    unsigned explicit_exit_notify;/* count, 0 = off */
    unsigned tun_mtu;             /* default 1500 */
    unsigned mssfix;              /* 0 = not set */
    enum ovpn_topology topology;  /* the file's topology line; net30 without one (OpenVPN's client
                                   * default); each session starts from it, a pushed one wins */
    int route_nopull;
    struct ovpn_pull_filter *pull_filters; /* pull-filter lines in the file's order; the first whose
                                            * text starts a pushed option decides */
    size_t n_pull_filters;
    unsigned compat_version;      /* compat-mode X.Y.Z as X*10000+Y*100+Z; 0 = current */
    int pull;                     /* client / pull given */
    char *auth_token;             /* never in a file; set from a push */
    struct tunnel_settings settings; /* the file's own route, route-ipv6, dhcp-option DNS/DOMAIN,
                                      * dns and redirect-gateway lines, added to what is pushed;
                                      * routes via net_gateway are excludes */
};

/* The push parser. Lines arrive in any split; nothing is read from disk. File names it meets
 * (ca, cert, key, tls-auth, tls-crypt, auth-user-pass, extra-certs) are recorded and resolved by
 * ovpn_config_load(). */
struct ovpn_config_parser;

int ovpn_config_parser_new(struct ovpn_config_parser **out, const char *source_name);
/* Where the parser's warnings go (an option accepted but ignored, a script hook not run, an
 * unknown option the file said to ignore, remote lines dropped for <connection> blocks): each is
 * one line, "NAME:LINE: what", handed over as it is met, for the caller to show;
 * ovpn_config_load() logs them at warn level. Without a function they are dropped. The parser
 * itself never logs. */
typedef void (*ovpn_config_warn_fn)(void *arg, const char *text);
void ovpn_config_parser_set_warn(struct ovpn_config_parser *p, ovpn_config_warn_fn fn, void *arg);
/* 0, or -EINVAL with a message "NAME:LINE: ..." in err (an unknown option, a bad value,
 * dev tap, an unterminated inline block, ...). */
int ovpn_config_parser_feed(struct ovpn_config_parser *p, const char *text, size_t len, char *err, size_t errcap);
/* Completes the parse into cfg (which the caller then owns). 0 or -EINVAL with err. */
int ovpn_config_parser_finish(struct ovpn_config_parser *p, struct ovpn_config *cfg, char *err, size_t errcap);
void ovpn_config_parser_free(struct ovpn_config_parser *p);

/* Reads path, parses it, reads the files it refers to (relative to its folder) and, when
 * auth_user_pass_file is not NULL, the username (line 1) and password (line 2) from it.
 * 0 or -EINVAL / -ENOENT ... with a one-line message in err naming the file (and line). */
int ovpn_config_load(struct ovpn_config *cfg, const char *path, const char *auth_user_pass_file, char *err,
                     size_t errcap);

enum ovpn_config_load_flags {
    OVPN_CONFIG_ALLOW_READABLE_SECRETS = 1, /* warn about exposed secrets instead of refusing them */
};

/* ovpn_config_load with flags. Either way, a regular file holding a secret (a private key, a
 * tls-auth or tls-crypt key, a password: a file the config names, the --auth-user-pass file, or the
 * config itself when an inline block holds one) that other users can read or write, or that its
 * group can read unless root owns it, is refused with -EPERM and a message naming the file and the
 * fix (chmod 600), as ssh refuses an exposed private key; OVPN_CONFIG_ALLOW_READABLE_SECRETS turns
 * that into a warning. */
int ovpn_config_load_flags(struct ovpn_config *cfg, const char *path, const char *auth_user_pass_file,
                           unsigned flags, char *err, size_t errcap);
void ovpn_config_free(struct ovpn_config *cfg);

/* Reads the username and password again from auth_file (auth-nocache wiped the password after it
 * was sent), with the same checks as the first time. 0, or a negative errno with err naming the
 * file; -ENOENT when the credentials were inline. */
int ovpn_config_reload_password(struct ovpn_config *cfg, char *err, size_t errcap);

#endif
