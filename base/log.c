/* One line per event on stderr, plain or JSON. A line is built whole in a buffer and written with
 * one call, so lines from other processes writing to the same stderr (openconnect) do not cut into
 * ours. The JSON writer never emits an invalid object: text is escaped (quotes, backslash, control
 * characters, and bytes that are not UTF-8, which become U+FFFD so a collector's parser never
 * rejects the line), and a message too long for the line is cut at a character boundary. */
#include "base/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

int v2s_log_level = V2S_LOG_WARN;
enum v2s_log_format v2s_log_format = V2S_LOG_PLAIN;
enum v2s_log_stamp v2s_log_stamp = V2S_LOG_STAMP_TIME;

static const char *const level_names[] = {"error", "warn", "info", "debug", "trace"};
/* syslog's priorities (sd-daemon(3)'s "<N>" prefix): err, warning, info, debug, debug. */
static const char journal_priority[] = {'3', '4', '6', '7', '7'};

/* The message as formatted; the JSON line is at most 6 bytes per message byte (\u00XX) plus the
 * time, level, event and fields. */
#define LOG_MSG_MAX 1024
#define LOG_JSON_MAX 8192

int v2s_log_format_parse(const char *text, enum v2s_log_format *out)
{
    if (strcmp(text, "plain") == 0)
        *out = V2S_LOG_PLAIN;
    else if (strcmp(text, "json") == 0)
        *out = V2S_LOG_JSON;
    else
        return -EINVAL;
    return 0;
}

/* The length of the well-formed UTF-8 sequence at s (1 to 4), or 0 when the byte at s starts none:
 * a stray continuation byte, an overlong form, a surrogate, past U+10FFFF, or cut short. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];
    size_t n;
    unsigned long cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) /* also stops at the NUL */
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

struct json_out {
    char *buf;
    size_t cap; /* bytes of buf that may hold text; one more is kept for the NUL */
    size_t len;
};

static int json_raw(struct json_out *o, const char *s, size_t n)
{
    if (o->len + n > o->cap)
        return -1;
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    return 0;
}

/* Appends s as a JSON string. With room < the escaped length, writes what fits of whole characters
 * while keeping `keep` bytes free after the closing quote; returns -1 if it had to cut. */
static int json_string(struct json_out *o, const char *s, size_t keep)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    if (o->len + 2 + keep > o->cap)
        return -1;
    o->buf[o->len++] = '"';
    size_t limit = o->cap - keep - 1; /* the closing quote always fits */
    int cut = 0;
    while (*p) {
        char esc[8];
        const char *piece = esc;
        size_t n = utf8_len(p), k, adv = n;
        if (n == 0) {
            piece = "\\ufffd";
            k = 6;
            adv = 1;
        } else if (n > 1) {
            piece = (const char *)p;
            k = n;
        } else if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            k = 2;
        } else if (*p == '\n' || *p == '\r' || *p == '\t') {
            esc[0] = '\\';
            esc[1] = *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't';
            k = 2;
        } else if (*p < 0x20 || *p == 0x7f) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[*p >> 4];
            esc[5] = hex[*p & 15];
            k = 6;
        } else {
            piece = (const char *)p;
            k = 1;
        }
        if (o->len + k > limit) {
            cut = 1;
            break;
        }
        memcpy(o->buf + o->len, piece, k);
        o->len += k;
        p += adv;
    }
    o->buf[o->len++] = '"';
    return cut ? -1 : 0;
}

size_t v2s_log_json(char *buf, size_t cap, const struct timespec *when, enum v2s_log_level level, const char *event,
                    const struct v2s_log_field *fields, size_t n, const char *msg)
{
    struct json_out o = {buf, cap ? cap - 1 : 0, 0};
    struct tm tm;
    char head[160], num[32];
    if (!cap)
        return 0;
    gmtime_r(&when->tv_sec, &tm);
    int hn = snprintf(head, sizeof(head), "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",",
                      tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                      when->tv_nsec / 1000000);
    if (hn > 0 && (size_t)hn < sizeof(head))
        hn += snprintf(head + hn, sizeof(head) - (size_t)hn, "\"level\":\"%s\",\"event\":", level_names[level]);
    /* The head, the event and the message's key and quotes fit any buffer worth the name; below
     * that, the line is "{}" rather than something a parser rejects. */
    if (hn < 0 || json_raw(&o, head, (size_t)hn) < 0 ||
        json_string(&o, event ? event : V2S_LOG_EVENT_MESSAGE, 10) < 0) {
        snprintf(buf, cap, "{}");
        return strlen(buf);
    }
    for (size_t i = 0; i < n; i++) {
        /* A field that does not fit whole is left out: the message still says it. */
        size_t mark = o.len;
        int bad = json_raw(&o, ",", 1) < 0 || json_string(&o, fields[i].key, 12) < 0 || json_raw(&o, ":", 1) < 0;
        if (!bad && fields[i].text)
            bad = json_string(&o, fields[i].text, 10) < 0;
        else if (!bad) {
            int w = snprintf(num, sizeof(num), "%llu", fields[i].num);
            bad = json_raw(&o, num, (size_t)w) < 0;
        }
        if (bad || o.len + 10 > o.cap)
            o.len = mark;
    }
    json_raw(&o, ",\"msg\":", 7);
    json_string(&o, msg, 1);
    json_raw(&o, "}", 1);
    buf[o.len] = '\0';
    return o.len;
}

size_t v2s_log_plain(char *buf, size_t cap, const struct timespec *when, enum v2s_log_stamp stamp,
                     enum v2s_log_level level, const char *msg)
{
    struct tm tm;
    int w;
    if (!cap)
        return 0;
    localtime_r(&when->tv_sec, &tm);
    if (stamp == V2S_LOG_STAMP_JOURNAL)
        w = snprintf(buf, cap, "<%c>%s: %s", journal_priority[level], level_names[level], msg);
    else if (stamp == V2S_LOG_STAMP_DATE)
        w = snprintf(buf, cap, "%04d-%02d-%02d %02d:%02d:%02d.%03ld vpn2socks %s: %s", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, when->tv_nsec / 1000000,
                     level_names[level], msg);
    else
        w = snprintf(buf, cap, "%02d:%02d:%02d.%03ld vpn2socks %s: %s", tm.tm_hour, tm.tm_min, tm.tm_sec,
                     when->tv_nsec / 1000000, level_names[level], msg);
    if (w < 0) {
        buf[0] = '\0';
        return 0;
    }
    return (size_t)w < cap ? (size_t)w : cap - 1;
}

enum v2s_log_stamp v2s_log_stamp_for(int fd)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(fd, &st) == 0 &&
        (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino)
        return V2S_LOG_STAMP_JOURNAL;
    return isatty(fd) ? V2S_LOG_STAMP_TIME : V2S_LOG_STAMP_DATE;
}

static void log_write(enum v2s_log_level level, const char *event, const struct v2s_log_field *fields, size_t n,
                      const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

static void log_write(enum v2s_log_level level, const char *event, const struct v2s_log_field *fields, size_t n,
                      const char *fmt, va_list ap)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char msg[LOG_MSG_MAX], line[LOG_JSON_MAX];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (v2s_log_format == V2S_LOG_JSON) {
        /* journald takes the priority off the front, and the MESSAGE is the object alone. */
        v2s_log_json(line, sizeof(line), &ts, level, event, fields, n, msg);
        if (v2s_log_stamp == V2S_LOG_STAMP_JOURNAL)
            fprintf(stderr, "<%c>%s\n", journal_priority[level], line);
        else
            fprintf(stderr, "%s\n", line);
        return;
    }
    /* A plain line stays within LOG_MSG_MAX, as it always has. */
    v2s_log_plain(line, LOG_MSG_MAX, &ts, v2s_log_stamp, level, msg);
    fprintf(stderr, "%s\n", line);
}

void v2s_log(enum v2s_log_level level, const char *fmt, ...)
{
    if (!V2S_LOG_ENABLED(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_write(level, NULL, NULL, 0, fmt, ap);
    va_end(ap);
}

void v2s_log_event(enum v2s_log_level level, const char *event, const struct v2s_log_field *fields, size_t n,
                   const char *fmt, ...)
{
    if (!V2S_LOG_ENABLED(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_write(level, event, fields, n, fmt, ap);
    va_end(ap);
}

void v2s_log_event_requested(enum v2s_log_level level, const char *event, const struct v2s_log_field *fields,
                             size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_write(level, event, fields, n, fmt, ap);
    va_end(ap);
}
