/* Logging: one line per event on stderr, with a level set by -v / -q. Secrets never go here.
 * Two formats: plain text for people (the default) and JSON, one object a line, for collectors
 * (--log-format json). Most lines are a formatted message only; the lines a collector would alert
 * or count on (tunnel up and down, reconnects, listeners, relays, reloads) also carry a stable
 * event name and, where it helps, fields. */
#ifndef VPN2SOCKS_BASE_LOG_H
#define VPN2SOCKS_BASE_LOG_H

#include <stddef.h>

struct timespec;

enum v2s_log_level {
    V2S_LOG_ERROR = 0,
    V2S_LOG_WARN = 1,
    V2S_LOG_INFO = 2,
    V2S_LOG_DEBUG = 3,
    V2S_LOG_TRACE = 4,
};

enum v2s_log_format {
    V2S_LOG_PLAIN = 0,
    V2S_LOG_JSON = 1,
};

/* What starts a line, for where stderr goes (v2s_log_stamp_for()). */
enum v2s_log_stamp {
    V2S_LOG_STAMP_TIME = 0, /* a terminal: "08:10:00.123 vpn2socks warn: ..." (the default) */
    V2S_LOG_STAMP_DATE = 1, /* a file or a pipe (nohup, docker, kubectl logs): the date as well,
                             * "2026-12-07 08:10:00.123 vpn2socks warn: ...", as a log kept for
                             * days cannot tell them apart otherwise */
    V2S_LOG_STAMP_JOURNAL = 2, /* journald, which stamps the line itself: "<4>warn: ...", the
                                * sd-daemon prefix giving the journal the line's priority */
};

extern int v2s_log_level;
extern enum v2s_log_format v2s_log_format;
extern enum v2s_log_stamp v2s_log_stamp;

/* One named value of an event: text when text is not NULL, else the number num. JSON only: the
 * plain line says the same in its message. */
struct v2s_log_field {
    const char *key;
    const char *text;
    unsigned long long num;
};

#define V2S_LOG_TEXT(k, t) ((struct v2s_log_field){.key = (k), .text = (t)})
#define V2S_LOG_NUM(k, n) ((struct v2s_log_field){.key = (k), .num = (unsigned long long)(n)})

/* The event name of a line that gives none. */
#define V2S_LOG_EVENT_MESSAGE "message"

void v2s_log(enum v2s_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A line with an event name (lower case words joined by '_', stable across releases: collectors
 * match on it) and n fields (may be 0 with fields NULL). */
void v2s_log_event(enum v2s_log_level level, const char *event, const struct v2s_log_field *fields, size_t n,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* As v2s_log_event, for the answer to an operator's request by name (the summary of a SIGHUP
 * reload): written at any level, as the request asked for it, with level as its priority. At the
 * default level (warnings) an info line was dropped, and the operator saw nothing happen. */
void v2s_log_event_requested(enum v2s_log_level level, const char *event, const struct v2s_log_field *fields,
                             size_t n, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Writes the JSON object of one line into buf (no newline), always NUL-terminated and always a
 * whole object: a message too long for cap is cut at a character boundary. Returns its length. */
size_t v2s_log_json(char *buf, size_t cap, const struct timespec *when, enum v2s_log_level level, const char *event,
                    const struct v2s_log_field *fields, size_t n, const char *msg);

/* Writes one plain line (no newline) into buf as v2s_log_stamp says, local time; NUL-terminated,
 * cut to cap. Returns its length. */
size_t v2s_log_plain(char *buf, size_t cap, const struct timespec *when, enum v2s_log_stamp stamp,
                     enum v2s_log_level level, const char *msg);

/* The stamp for a log written to fd: journald's when $JOURNAL_STREAM names fd's device and inode
 * (systemd sets it for a service's stderr, and a child keeps it when its stderr goes elsewhere,
 * hence the check), the time on a terminal, the date and time anywhere else. */
enum v2s_log_stamp v2s_log_stamp_for(int fd);

/* Parses "plain" or "json". 0 or -EINVAL. */
int v2s_log_format_parse(const char *text, enum v2s_log_format *out);

#define V2S_LOG_ENABLED(level) ((int)(level) <= v2s_log_level)
#define v2s_error(...) v2s_log(V2S_LOG_ERROR, __VA_ARGS__)
#define v2s_warn(...) v2s_log(V2S_LOG_WARN, __VA_ARGS__)
#define v2s_info(...) \
    do { if (V2S_LOG_ENABLED(V2S_LOG_INFO)) v2s_log(V2S_LOG_INFO, __VA_ARGS__); } while (0)
#define v2s_debug(...) \
    do { if (V2S_LOG_ENABLED(V2S_LOG_DEBUG)) v2s_log(V2S_LOG_DEBUG, __VA_ARGS__); } while (0)
/* v2s_event(V2S_LOG_INFO, "tunnel_up", "tunnel up: MTU %u", mtu): a line with an event name. */
#define v2s_event(level, event, ...) \
    do { if (V2S_LOG_ENABLED(level)) v2s_log_event((level), (event), NULL, 0, __VA_ARGS__); } while (0)

#endif
