/* base/list.h, base/bytes.h, the socket address conversions of base/addr.c and the log lines of
 * base/log.c. */
#define _XOPEN_SOURCE 600 /* posix_openpt, for a terminal to log to */
#define _DEFAULT_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "base/addr.h"
#include "base/bytes.h"
#include "base/list.h"
#include "base/log.h"
#include "test.h"

struct item {
    int value;
    struct v2s_list node;
};

static int list_values(struct v2s_list *head, int *out, int cap)
{
    struct v2s_list *n;
    int count = 0;
    V2S_LIST_FOREACH(n, head)
    {
        if (count < cap)
            out[count] = V2S_LIST_ENTRY(n, struct item, node)->value;
        count++;
    }
    return count;
}

TEST_IMPL(base_list)
{
    struct v2s_list head;
    struct item items[5];
    int got[8];
    v2s_list_init(&head);
    ASSERT(v2s_list_empty(&head));
    ASSERT(v2s_list_first(&head) == NULL);
    for (int i = 0; i < 5; i++) {
        items[i].value = i;
        v2s_list_init(&items[i].node);
        ASSERT(!v2s_list_linked(&items[i].node));
    }
    v2s_list_push_back(&head, &items[1].node);
    v2s_list_push_back(&head, &items[2].node);
    v2s_list_push_front(&head, &items[0].node);
    v2s_list_push_back(&head, &items[3].node);
    ASSERT_EQ(list_values(&head, got, 8), 4);
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(got[i], i);
    ASSERT(v2s_list_linked(&items[2].node));
    ASSERT(V2S_LIST_ENTRY(v2s_list_first(&head), struct item, node) == &items[0]);

    /* Removal from the middle, twice (the second is harmless), then from both ends. */
    v2s_list_remove(&items[2].node);
    v2s_list_remove(&items[2].node);
    ASSERT(!v2s_list_linked(&items[2].node));
    ASSERT_EQ(list_values(&head, got, 8), 3);
    ASSERT_EQ(got[0], 0);
    ASSERT_EQ(got[1], 1);
    ASSERT_EQ(got[2], 3);

    /* Removing every node while walking. */
    struct v2s_list *n, *tmp;
    int seen = 0;
    V2S_LIST_FOREACH_SAFE(n, tmp, &head)
    {
        v2s_list_remove(n);
        seen++;
    }
    ASSERT_EQ(seen, 3);
    ASSERT(v2s_list_empty(&head));
    return 0;
}

TEST_IMPL(base_bytes)
{
    uint8_t b[8];
    v2s_put_be16(b, 0x1234);
    ASSERT_EQ(b[0], 0x12);
    ASSERT_EQ(b[1], 0x34);
    ASSERT_EQ(v2s_get_be16(b), 0x1234);
    v2s_put_be32(b, 0xdeadbeef);
    ASSERT_EQ(b[0], 0xde);
    ASSERT_EQ(b[3], 0xef);
    ASSERT_EQ(v2s_get_be32(b), 0xdeadbeefu);
    v2s_put_be64(b, 0x0102030405060708ull);
    for (int i = 0; i < 8; i++)
        ASSERT_EQ(b[i], i + 1);
    ASSERT(v2s_get_be64(b) == 0x0102030405060708ull);
    /* The top bit survives (no sign extension through int). */
    const uint8_t top[4] = {0xff, 0xff, 0xff, 0xfe};
    ASSERT_EQ(v2s_get_be32(top), 0xfffffffeu);
    ASSERT_EQ(v2s_get_be16(top), 0xffff);
    return 0;
}

TEST_IMPL(base_sockaddr)
{
    static const struct {
        const char *addr;
        uint16_t port;
        const char *text;
    } rows[] = {
        {"10.1.2.3", 80, "10.1.2.3:80"},
        {"::1", 1080, "[::1]:1080"},
        {"fd00::5", 65535, "[fd00::5]:65535"},
        {"0.0.0.0", 0, "0.0.0.0:0"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct v2s_addr a, back;
        struct sockaddr_storage ss;
        uint16_t port;
        char text[V2S_ADDR_STRLEN];
        ASSERT_ROW(v2s_addr_parse(&a, rows[i].addr) == 0, "%zu", i);
        int len = v2s_addr_to_sockaddr(&a, rows[i].port, &ss);
        ASSERT_ROW(len == (a.family == AF_INET ? (int)sizeof(struct sockaddr_in) : (int)sizeof(struct sockaddr_in6)),
                   "%zu", i);
        ASSERT_ROW(ss.ss_family == a.family, "%zu", i);
        ASSERT_ROW(v2s_addr_from_sockaddr((struct sockaddr *)&ss, &back, &port) == 0, "%zu", i);
        ASSERT_ROW(v2s_addr_equal(&a, &back) && port == rows[i].port, "%zu", i);
        ASSERT_ROW(strcmp(v2s_sockaddr_format((struct sockaddr *)&ss, text, sizeof(text)), rows[i].text) == 0,
                   "%zu", i);
    }
    /* The port is in network order inside the socket address. */
    struct v2s_addr a;
    struct sockaddr_storage ss;
    ASSERT_EQ(v2s_addr_parse(&a, "192.0.2.1"), 0);
    ASSERT(v2s_addr_to_sockaddr(&a, 0x1234, &ss) > 0);
    ASSERT_EQ(((struct sockaddr_in *)&ss)->sin_port, htons(0x1234));

    /* Neither family: refused, and the outputs are cleared. */
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    struct v2s_addr none;
    uint16_t port = 7;
    char text[V2S_ADDR_STRLEN];
    ASSERT_EQ(v2s_addr_from_sockaddr((struct sockaddr *)&un, &none, &port), -EAFNOSUPPORT);
    ASSERT_EQ(none.family, 0);
    ASSERT_EQ(port, 0);
    ASSERT_STR_EQ(v2s_sockaddr_format((struct sockaddr *)&un, text, sizeof(text)), "?");
    memset(&none, 0, sizeof(none));
    ASSERT_EQ(v2s_addr_to_sockaddr(&none, 80, &ss), -EAFNOSUPPORT);
    return 0;
}

/* --- base/log.c: the JSON line --- */

/* The "msg" of a JSON line, as written. */
static const char *log_json_msg(const char *msg, char *buf, size_t cap)
{
    struct timespec when = {0, 0};
    v2s_log_json(buf, cap, &when, V2S_LOG_INFO, NULL, NULL, 0, msg);
    const char *m = strstr(buf, ",\"msg\":");
    return m ? m + 7 : "(none)";
}

/* Quotes, backslashes and control characters are escaped; UTF-8 passes; what is not UTF-8 (stray
 * continuation bytes, overlong forms, surrogates, past U+10FFFF, a sequence cut short) becomes
 * U+FFFD, one for each byte, so a collector's JSON parser takes every line. */
TEST_IMPL(base_log_json_escapes)
{
    static const struct {
        const char *in, *out;
    } rows[] = {
        {"plain text", "\"plain text\"}"},
        {"say \"hi\" \\ there", "\"say \\\"hi\\\" \\\\ there\"}"},
        {"a\nb\rc\td", "\"a\\nb\\rc\\td\"}"},
        {"\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"}"},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}"},
        {"x\x80y", "\"x\\ufffdy\"}"},
        {"\xc0\xaf", "\"\\ufffd\\ufffd\"}"},             /* overlong '/' */
        {"\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\"}"},  /* overlong, 3 bytes */
        {"\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"}"},  /* a surrogate */
        {"\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"}"}, /* past U+10FFFF */
        {"end\xe2\x82", "\"end\\ufffd\\ufffd\"}"},       /* cut short */
        {"\xff", "\"\\ufffd\"}"},
        {"", "\"\"}"},
    };
    char buf[512];
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++)
        ASSERT_ROW(strcmp(log_json_msg(rows[i].in, buf, sizeof(buf)), rows[i].out) == 0, "%zu: %s", i, buf);
    return 0;
}

/* The keys, in order: time (UTC, milliseconds), level, event ("message" when none), the fields
 * (text escaped, numbers bare), then msg. */
TEST_IMPL(base_log_json_fields)
{
    struct timespec when = {1796463000, 123456789}; /* 2026-12-05 09:30:00.123 UTC */
    struct v2s_log_field f[] = {V2S_LOG_TEXT("client", "127.0.0.1:5000"), V2S_LOG_TEXT("destination", "a\"b"),
                                V2S_LOG_NUM("bytes_up", 18446744073709551615ULL), V2S_LOG_NUM("bytes_down", 0)};
    char buf[512];
    size_t n = v2s_log_json(buf, sizeof(buf), &when, V2S_LOG_WARN, "relay_closed", f, 4, "closed");
    ASSERT_STR_EQ(buf, "{\"time\":\"2026-12-05T09:30:00.123Z\",\"level\":\"warn\",\"event\":\"relay_closed\","
                       "\"client\":\"127.0.0.1:5000\",\"destination\":\"a\\\"b\",\"bytes_up\":18446744073709551615,"
                       "\"bytes_down\":0,\"msg\":\"closed\"}");
    ASSERT_EQ(n, strlen(buf));
    v2s_log_json(buf, sizeof(buf), &when, V2S_LOG_ERROR, NULL, NULL, 0, "x");
    ASSERT_STR_EQ(buf, "{\"time\":\"2026-12-05T09:30:00.123Z\",\"level\":\"error\",\"event\":\"message\",\"msg\":\"x\"}");
    return 0;
}

/* A plain line's stamp: the time on a terminal, the date too in a file or a pipe (a log kept for
 * days under nohup or docker had lines nobody could date), and under journald, which stamps lines
 * itself, the sd-daemon priority prefix (every line was priority info, so `journalctl -p warning`
 * showed none of the warnings). */
TEST_IMPL(base_log_plain_stamps)
{
    char buf[256];
    setenv("TZ", "UTC", 1);
    tzset();
    struct timespec when = {1796634600, 123456789}; /* 2026-12-07T09:10:00.123Z */
    ASSERT_EQ(v2s_log_plain(buf, sizeof(buf), &when, V2S_LOG_STAMP_TIME, V2S_LOG_WARN, "m"), strlen(buf));
    ASSERT_STR_EQ(buf, "09:10:00.123 vpn2socks warn: m");
    v2s_log_plain(buf, sizeof(buf), &when, V2S_LOG_STAMP_DATE, V2S_LOG_INFO, "m");
    ASSERT_STR_EQ(buf, "2026-12-07 09:10:00.123 vpn2socks info: m");
    v2s_log_plain(buf, sizeof(buf), &when, V2S_LOG_STAMP_JOURNAL, V2S_LOG_ERROR, "m");
    ASSERT_STR_EQ(buf, "<3>error: m");
    v2s_log_plain(buf, sizeof(buf), &when, V2S_LOG_STAMP_JOURNAL, V2S_LOG_DEBUG, "m");
    ASSERT_STR_EQ(buf, "<7>debug: m");
    ASSERT_EQ(v2s_log_plain(buf, 8, &when, V2S_LOG_STAMP_JOURNAL, V2S_LOG_WARN, "a long message"), 7);
    ASSERT_STR_EQ(buf, "<4>warn");

    /* Where the log goes: a pipe is not a terminal; $JOURNAL_STREAM counts only when it names the
     * descriptor itself (a child of a service, its stderr sent to a file, keeps the variable). */
    int p[2];
    struct stat st;
    char js[64];
    ASSERT_EQ(pipe(p), 0);
    ASSERT_EQ(fstat(p[1], &st), 0);
    unsetenv("JOURNAL_STREAM");
    ASSERT_EQ(v2s_log_stamp_for(p[1]), V2S_LOG_STAMP_DATE);
    snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
    setenv("JOURNAL_STREAM", js, 1);
    ASSERT_EQ(v2s_log_stamp_for(p[1]), V2S_LOG_STAMP_JOURNAL);
    snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino + 1);
    setenv("JOURNAL_STREAM", js, 1);
    ASSERT_EQ(v2s_log_stamp_for(p[1]), V2S_LOG_STAMP_DATE);
    unsetenv("JOURNAL_STREAM");
    close(p[0]);
    close(p[1]);
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m >= 0 && grantpt(m) == 0 && unlockpt(m) == 0) {
        int t = open(ptsname(m), O_RDWR | O_NOCTTY);
        ASSERT(t >= 0);
        ASSERT_EQ(v2s_log_stamp_for(t), V2S_LOG_STAMP_TIME);
        close(t);
    }
    if (m >= 0)
        close(m);
    return 0;
}

/* Whether s is one JSON object of the shape the log writes: it opens with {"time", closes with "}
 * or is {}, has only valid UTF-8 and no raw control characters, and its quotes pair up. */
static int log_json_whole(const char *s)
{
    size_t n = strlen(s);
    if (strcmp(s, "{}") == 0)
        return 1;
    if (strncmp(s, "{\"time\":\"", 9) != 0 || n < 2 || s[n - 1] != '}' || (s[n - 2] != '"' && s[n - 2] != '0'))
        return 0;
    int in_string = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return 0;
        if (c >= 0x80) {
            /* The writer copies only sequences it checked: a cut one would show here. */
            size_t k = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
            for (size_t j = 1; j < k; j++)
                if (i + j >= n || ((unsigned char)s[i + j] & 0xc0) != 0x80)
                    return 0;
            i += k - 1;
        } else if (in_string && c == '\\') {
            if (!strchr("\"\\nrtu", s[i + 1]))
                return 0;
            i++;
        } else if (c == '"') {
            in_string = !in_string;
        }
    }
    return !in_string;
}

/* Any buffer size gives a whole object: a long message is cut at a character boundary (never
 * inside an escape or a UTF-8 sequence), a field that does not fit is left out. */
TEST_IMPL(base_log_json_cut)
{
    char msg[400], full[4096], buf[4096];
    struct timespec when = {1796463000, 0};
    struct v2s_log_field f[] = {V2S_LOG_TEXT("client", "[fd00::1]:40000"), V2S_LOG_NUM("bytes_up", 12345)};
    size_t m = 0;
    while (m + 8 < sizeof(msg)) { /* a mix of one-byte, escaped, multibyte and invalid characters */
        memcpy(msg + m, "a\"\xc3\xa9\x01\xe2\x82\xac", 8);
        m += 8;
    }
    msg[m - 1] = '\xff';
    msg[m] = '\0';
    size_t whole = v2s_log_json(full, sizeof(full), &when, V2S_LOG_INFO, "relay_open", f, 2, msg);
    ASSERT(log_json_whole(full));
    for (size_t cap = 1; cap <= whole + 1; cap++) {
        memset(buf, 'Z', sizeof(buf));
        size_t n = v2s_log_json(buf, cap, &when, V2S_LOG_INFO, "relay_open", f, 2, msg);
        ASSERT_ROW(n < cap && buf[n] == '\0' && buf[cap] == 'Z', "cap %zu", cap);
        ASSERT_ROW(cap < 3 || log_json_whole(buf), "cap %zu: %s", cap, buf);
    }
    ASSERT_STR_EQ(buf, full);
    return 0;
}

/* The line on stderr: JSON with --log-format json, one line each; plain otherwise, unchanged. */
TEST_IMPL(base_log_line)
{
    FILE *tmp = tmpfile();
    ASSERT(tmp != NULL);
    int saved = dup(2);
    ASSERT(saved >= 0 && dup2(fileno(tmp), 2) == 2);
    v2s_log_level = V2S_LOG_INFO;
    v2s_log_format = V2S_LOG_JSON;
    struct v2s_log_field f[] = {V2S_LOG_TEXT("listen", "127.0.0.1:1080")};
    v2s_log_event(V2S_LOG_INFO, "listener_start", f, 1, "SOCKS5 proxy listening on %s", "127.0.0.1:1080");
    v2s_warn("two\nlines");
    v2s_debug("not shown at -v 0");
    v2s_log_format = V2S_LOG_PLAIN;
    v2s_log_event(V2S_LOG_INFO, "listener_start", f, 1, "plain %d", 7);
    fflush(stderr);
    ASSERT(dup2(saved, 2) == 2);
    close(saved);
    char text[1024] = "";
    rewind(tmp);
    size_t n = fread(text, 1, sizeof(text) - 1, tmp);
    text[n] = '\0';
    fclose(tmp);
    char *l1 = text, *l2 = strchr(l1, '\n') + 1, *l3 = strchr(l2, '\n') + 1;
    ASSERT(l3 && strchr(l3, '\n') && strchr(l3, '\n')[1] == '\0');
    ASSERT(strncmp(l1, "{\"time\":\"20", 11) == 0);
    ASSERT(strstr(l1, "Z\",\"level\":\"info\",\"event\":\"listener_start\",\"listen\":\"127.0.0.1:1080\","
                      "\"msg\":\"SOCKS5 proxy listening on 127.0.0.1:1080\"}\n") != NULL);
    ASSERT(strstr(l2, "\"level\":\"warn\",\"event\":\"message\",\"msg\":\"two\\nlines\"}\n") == l2 + 35);
    ASSERT(strstr(l3, " vpn2socks info: plain 7\n") == l3 + 12);
    return 0;
}

TEST_IMPL(base_log_format_parse)
{
    enum v2s_log_format f = V2S_LOG_PLAIN;
    ASSERT_EQ(v2s_log_format_parse("json", &f), 0);
    ASSERT_EQ(f, V2S_LOG_JSON);
    ASSERT_EQ(v2s_log_format_parse("plain", &f), 0);
    ASSERT_EQ(f, V2S_LOG_PLAIN);
    ASSERT_EQ(v2s_log_format_parse("JSON", &f), -EINVAL);
    ASSERT_EQ(v2s_log_format_parse("", &f), -EINVAL);
    return 0;
}
