/* What only the .ovpn parser's own files share (config.c, config_framing.c, config_options.c,
 * config_opt_net.c, config_opt_tls.c, config_load.c): the parser's state, the option table's
 * row type and the helpers that record errors and warnings. Nothing outside them includes it. */
#ifndef VPN2SOCKS_OPENVPN_CONFIG_INTERNAL_H
#define VPN2SOCKS_OPENVPN_CONFIG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tunnel/openvpn/config.h"

enum {
    CONFIG_MAX_WORDS = 16,           /* OpenVPN's MAX_PARMS */
    CONFIG_MAX_LINE = 8192,          /* OpenVPN stops at 256; PEM and base64 lines are shorter */
    CONFIG_MAX_BLOCK = 1 << 20,      /* one inline block */
    CONFIG_MAX_FILE = 1 << 20,       /* one file the config names */
    CONFIG_MAX_CONFIG = 8 << 20,     /* the config itself */
    CONFIG_MAX_REMOTES = 1024,
    CONFIG_MAX_IGNORED = 256,        /* names given to ignore-unknown-option */
    CONFIG_MAX_FINGERPRINTS = 1024,  /* peer-fingerprint entries */
    CONFIG_MAX_PULL_FILTERS = 1024,
    CONFIG_MAX_NUMBER = 100000000,   /* any count; larger is a typo or an attack */
    /* Any time in seconds: the client keeps timers in milliseconds in 32 bits, so 49.7 days. */
    CONFIG_MAX_SECONDS = 4294967,
    CONFIG_MAX_TAG = 64,
    CONFIG_SHOWN_MAX = 48,
    CONFIG_ERR_MAX = 768,            /* a secret file's message names its full path twice */
    CONFIG_MTU_MIN = 100,            /* OpenVPN's TUN_MTU_MIN */
    CONFIG_MTU_MAX = 65535,
    CONFIG_MSSFIX_DEFAULT = 1492,    /* "mssfix" without a value, as OpenVPN */
};

/* Files a config may name; resolved by ovpn_config_load(). */
enum config_ref {
    CONFIG_REF_CA,
    CONFIG_REF_CERT,
    CONFIG_REF_KEY,
    CONFIG_REF_EXTRA_CERTS,
    CONFIG_REF_TLS_AUTH,
    CONFIG_REF_TLS_CRYPT,
    CONFIG_REF_AUTH_USER_PASS,
    CONFIG_REF_CRL,
    CONFIG_REF_TLS_CRYPT_V2,
    CONFIG_REF_COUNT,
};

/* The option names of the references, for messages: "ca", "cert", ... */
extern const char *const ovpn_config_ref_names[CONFIG_REF_COUNT];

struct config_file_ref {
    char *path;    /* as written; NULL when none */
    unsigned line;
};

/* What a remote takes when it does not say: the file's settings or its <connection> block's. */
struct config_ce {
    enum ovpn_proto proto;
    int family;
    char port[sizeof(((struct ovpn_remote *)0)->port)];
    unsigned port_line; /* where port or rport set it; 0 for the default */
};

struct config_remote {
    struct ovpn_remote r;
    int port_given;
    int proto_given;
    int in_connection;
    unsigned line;
    unsigned port_line; /* where its port was given or, once settled, inherited from */
};

struct config_option;

struct ovpn_config_parser {
    char *name;
    unsigned line_no;               /* lines seen so far */
    unsigned opt_line;              /* the line an error names: the option's, or its block's */
    int error;                      /* sticky: once set, every call returns it */
    int finished;
    char err[CONFIG_ERR_MAX];
    char *line;                     /* the partial line, CONFIG_MAX_LINE + 1 bytes */
    size_t line_len;

    /* An open inline block: tag[0] != 0. opt is NULL when the block is read and dropped. */
    char block_tag[CONFIG_MAX_TAG];
    const struct config_option *block_opt;
    unsigned block_line;
    char *block;
    size_t block_len, block_cap;

    int in_connection;
    unsigned conn_line;
    struct config_ce conn_ce;
    struct config_remote conn_remote;
    int conn_has_remote;
    int has_connections;

    struct config_ce ce;
    struct config_remote *remotes;
    size_t n_remotes, cap_remotes;

    char **ignored;
    size_t n_ignored;
    int forward_compatible;

    struct config_file_ref refs[CONFIG_REF_COUNT];
    char *cd;
    unsigned keepalive_line, keepalive_ping, keepalive_restart;
    unsigned ping_line;
    unsigned connect_retry_max_line;
    unsigned tls_auth_line, tls_crypt_line, tls_crypt_v2_line; /* the latest of each, for the error
                                                                * naming two */
    unsigned allow_comp_no_line;
    int comp_compresses;            /* the framing picked also compresses (not a stub) */

    ovpn_config_warn_fn warn;       /* where warnings go; NULL: dropped */
    void *warn_arg;
    /* Turns a port given as a service name ("https") into its number, as OpenVPN's getaddrinfo()
     * does; 0 or a negative errno. Set by the loader; NULL (the fuzzers, tests of the parser
     * alone) leaves the name for the connect-time lookup, which reads it the same way. */
    int (*service_port)(const char *name, enum ovpn_proto proto, unsigned *port);

    struct ovpn_config cfg;
};

/* ---- the option table's rows (config_options.c finds them, the config_opt_*.c files fill them) ---- */

/* Applies one option: w[0] is its name, w[1..n-1] its arguments (the counts already checked), or
 * for an inline block w[0] alone and block its text. 0, or the parser's sticky error. */
typedef int (*config_apply_fn)(struct ovpn_config_parser *p, char **w, int n, const char *block);

enum config_kind {
    CONFIG_APPLY,   /* read by apply */
    CONFIG_IGNORE,  /* matters only to a TUN device or to OpenVPN's process: accepted silently */
    CONFIG_WARN,    /* accepted, not acted on, and the user should know */
    CONFIG_SCRIPT,  /* a script hook: never run */
    CONFIG_REFUSE,  /* cannot work here: an error with the reason in note */
    CONFIG_SERVER,  /* a server's option: an error */
};

enum {
    CONFIG_CONN = 1,   /* allowed inside <connection> */
    CONFIG_BLOCK = 2,  /* may be an inline <name> block */
};

struct config_option {
    const char *name;
    enum config_kind kind;
    unsigned flags;
    int min_args, max_args;
    config_apply_fn apply;
    const char *note;
};

#define CONFIG_APPLY_ROW(name, flags, min, max, fn) {(name), CONFIG_APPLY, (flags), (min), (max), (fn), NULL}
#define CONFIG_IGNORE_ROW(name, flags) {(name), CONFIG_IGNORE, (flags), 0, 0, NULL, NULL}
#define CONFIG_WARN_ROW(name, flags, note) {(name), CONFIG_WARN, (flags), 0, 0, NULL, (note)}
#define CONFIG_SCRIPT_ROW(name) {(name), CONFIG_SCRIPT, 0, 0, 0, NULL, NULL}
#define CONFIG_REFUSE_ROW(name, flags, note) {(name), CONFIG_REFUSE, (flags), 0, 0, NULL, (note)}
#define CONFIG_SERVER_ROW(name) {(name), CONFIG_SERVER, 0, 0, 0, NULL, NULL}

/* The families of options a client acts on, one table each. */
extern const struct config_option ovpn_config_net_options[];  /* config_opt_net.c: where and how to connect */
extern const size_t ovpn_config_net_n_options;
extern const struct config_option ovpn_config_tls_options[];  /* config_opt_tls.c: credentials, TLS, keys */
extern const size_t ovpn_config_tls_n_options;

/* config_options.c: the row for a name (every family, then the accepted, refused and server
 * options), or NULL for an unknown one. */
const struct config_option *ovpn_config_find(const char *name);
/* One option line, already split: the setenv forms, the table lookup, the <connection> rule, the
 * argument count, then the row's apply. 0 or the sticky error. */
int ovpn_config_option(struct ovpn_config_parser *p, char **w, int n);
/* An option we do not know: a warning when the file asked for leniency, else an error. */
int ovpn_config_unknown(struct ovpn_config_parser *p, const char *name, int lenient);
/* Handles the kinds that need no apply function (a warning or an error as the row says). Returns 1
 * when the option was one of them, with *rc 0 or the error. */
int ovpn_config_not_applied(struct ovpn_config_parser *p, const struct config_option *o, int *rc);

/* ---- config.c: errors, warnings, values ---- */

/* Records "NAME:LINE: why" (line 0: "NAME: why") as the parser's sticky error; -EINVAL. */
int ovpn_config_fail_at(struct ovpn_config_parser *p, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define config_fail(p, ...) ovpn_config_fail_at((p), (p)->opt_line, __VA_ARGS__)
/* Records "NAME: out of memory"; -ENOMEM. */
int ovpn_config_nomem(struct ovpn_config_parser *p);
/* Hands "NAME:LINE: what" to the caller's warning function, if any. Never logs. */
void ovpn_config_warn(struct ovpn_config_parser *p, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Values: each fails with a message naming option and the value (shortened). */
int ovpn_config_number(struct ovpn_config_parser *p, const char *option, const char *text, unsigned long min,
                       unsigned long max, unsigned *out);
/* A time in seconds, min..CONFIG_MAX_SECONDS; a number past that is named as a timer overflow. */
int ovpn_config_seconds(struct ovpn_config_parser *p, const char *option, const char *text, unsigned long min,
                        unsigned *out);
/* A 64-bit count (reneg-bytes, reneg-pkts), 0..10^18 - 1: decimal digits only. */
int ovpn_config_number64(struct ovpn_config_parser *p, const char *option, const char *text, uint64_t *out);
/* w[1] into dst (cap bytes with its NUL); empty or too long fails naming w[0]. */
int ovpn_config_copy_name(struct ovpn_config_parser *p, char *dst, size_t cap, char **w);
/* Replaces *dst with a copy of value. */
int ovpn_config_set_string(struct ovpn_config_parser *p, char **dst, const char *value);
/* Whether text can be PEM at all: it holds "-----BEGIN ". What is in it is OpenSSL's to judge
 * (tls.c), but that message cannot name the file and line a pasted block or a wrong file came
 * from, so text with no such line is refused here, where they are known. */
int ovpn_config_looks_pem(const char *text);

/* config_opt_net.c: adds a remote (a plain line, or a finished <connection> block's). */
int ovpn_config_append_remote(struct ovpn_config_parser *p, const struct config_remote *r);

/* config_framing.c: one complete line, without its LF, NUL-terminated in place. */
int ovpn_config_line(struct ovpn_config_parser *p, char *line, size_t len);

/* config.c: a config holding only the defaults (OpenVPN's), and the checks that need the whole
 * file followed by the hand-over of the config into cfg. */
void ovpn_config_defaults(struct ovpn_config *cfg);
int ovpn_config_finish(struct ovpn_config_parser *p, struct ovpn_config *cfg);

#endif
