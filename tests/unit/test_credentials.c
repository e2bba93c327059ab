/* base/credentials.c: the --socks-auth file (its lines, its errors with FILE:LINE, its
 * permissions), the login check, and the failed-login log with its rate limit. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/credentials.h"
#include "base/log.h"
#include "test.h"
#include "uvtest.h"

static enum v2s_cred_result cred_try(const struct v2s_credentials *c, const char *user, const char *password)
{
    return v2s_credentials_check(c, (const uint8_t *)user, strlen(user), (const uint8_t *)password,
                                 strlen(password));
}

TEST_IMPL(credentials_parse_good)
{
    /* Comments, blank and blank-looking lines, CRLF, a password holding ':' and '#' and spaces,
     * no LF after the last line. */
    static const char text[] = "# users of the proxy\n"
                               "\n"
                               "alice:s3cret\r\n"
                               "   \t\n"
                               "  # indented comment\n"
                               "bob:pa:ss:word\n"
                               "carol: with spaces #not a comment\n"
                               "dave:x";
    struct v2s_credentials *c;
    char err[256] = "";
    ASSERT_EQ(v2s_credentials_parse(&c, "users.txt", text, sizeof(text) - 1, err, sizeof(err)), 0);
    ASSERT_EQ(v2s_credentials_count(c), 4);
    ASSERT_EQ(cred_try(c, "alice", "s3cret"), V2S_CRED_OK);
    ASSERT_EQ(cred_try(c, "bob", "pa:ss:word"), V2S_CRED_OK);
    ASSERT_EQ(cred_try(c, "carol", " with spaces #not a comment"), V2S_CRED_OK);
    ASSERT_EQ(cred_try(c, "dave", "x"), V2S_CRED_OK);
    /* The CR is not part of the password; a prefix, a longer password or another user's is wrong. */
    ASSERT_EQ(cred_try(c, "alice", "s3cret\r"), V2S_CRED_WRONG_PASSWORD);
    ASSERT_EQ(cred_try(c, "alice", "s3cre"), V2S_CRED_WRONG_PASSWORD);
    ASSERT_EQ(cred_try(c, "alice", "s3cretX"), V2S_CRED_WRONG_PASSWORD);
    ASSERT_EQ(cred_try(c, "alice", ""), V2S_CRED_WRONG_PASSWORD);
    ASSERT_EQ(cred_try(c, "alice", "x"), V2S_CRED_WRONG_PASSWORD);
    ASSERT_EQ(cred_try(c, "bob", "pa"), V2S_CRED_WRONG_PASSWORD);
    /* Names are exact: case, prefixes and comments are not users. */
    ASSERT_EQ(cred_try(c, "Alice", "s3cret"), V2S_CRED_UNKNOWN_USER);
    ASSERT_EQ(cred_try(c, "alic", "s3cret"), V2S_CRED_UNKNOWN_USER);
    ASSERT_EQ(cred_try(c, "alicee", "s3cret"), V2S_CRED_UNKNOWN_USER);
    ASSERT_EQ(cred_try(c, "# users of the proxy", ""), V2S_CRED_UNKNOWN_USER);
    ASSERT_EQ(cred_try(c, "", ""), V2S_CRED_UNKNOWN_USER);
    /* A NUL inside what a client sends is compared as a byte, not an end. */
    ASSERT_EQ(v2s_credentials_check(c, (const uint8_t *)"dave", 4, (const uint8_t *)"x\0", 2),
              V2S_CRED_WRONG_PASSWORD);
    ASSERT_EQ(v2s_credentials_check(c, (const uint8_t *)"dave\0", 5, (const uint8_t *)"x", 1),
              V2S_CRED_UNKNOWN_USER);
    v2s_credentials_free(c);

    /* The longest user and password RFC 1929 can carry, and many users (the lookup is a search). */
    char big[64 * 1024];
    size_t n = 0;
    memset(big + n, 'u', 255);
    n += 255;
    big[n++] = ':';
    memset(big + n, 'p', 255);
    n += 255;
    big[n++] = '\n';
    for (int i = 0; i < 1000; i++)
        n += (size_t)snprintf(big + n, sizeof(big) - n, "user%d:pw%d\n", i, i * 7);
    ASSERT_EQ(v2s_credentials_parse(&c, "big", big, n, err, sizeof(err)), 0);
    ASSERT_EQ(v2s_credentials_count(c), 1001);
    uint8_t u[255], p[255];
    memset(u, 'u', sizeof(u));
    memset(p, 'p', sizeof(p));
    ASSERT_EQ(v2s_credentials_check(c, u, 255, p, 255), V2S_CRED_OK);
    ASSERT_EQ(v2s_credentials_check(c, u, 255, p, 254), V2S_CRED_WRONG_PASSWORD);
    p[254] = 'q';
    ASSERT_EQ(v2s_credentials_check(c, u, 255, p, 255), V2S_CRED_WRONG_PASSWORD);
    ASSERT_EQ(v2s_credentials_check(c, u, 254, p, 255), V2S_CRED_UNKNOWN_USER);
    for (int i = 0; i < 1000; i++) {
        char user[32], pw[32];
        snprintf(user, sizeof(user), "user%d", i);
        snprintf(pw, sizeof(pw), "pw%d", i * 7);
        ASSERT_ROW(cred_try(c, user, pw) == V2S_CRED_OK, "%d", i);
        snprintf(pw, sizeof(pw), "pw%d", i * 7 + 1);
        ASSERT_ROW(cred_try(c, user, pw) == V2S_CRED_WRONG_PASSWORD, "%d", i);
    }
    v2s_credentials_free(c);
    return 0;
}

/* Each malformed line is an error naming FILE:LINE and what is wrong, never the password. */
TEST_IMPL(credentials_parse_errors)
{
    char u256[300], p256[300];
    snprintf(u256, sizeof(u256), "ok:pw\n%0256d:pw\n", 0);
    snprintf(p256, sizeof(p256), "ok:pw\n\nu:%0256d\n", 0);
    static const struct {
        const char *text;
        size_t len; /* 0: strlen */
        const char *err;
    } rows[] = {
        {"alice:pw\nbob\n", 0, "f.txt:2: expected user:password"},
        {"# only\n:secret1\n", 0, "f.txt:2: empty user name (expected user:password)"},
        {"alice:\n", 0, "f.txt:1: empty password"},
        {"alice:\r\n", 0, "f.txt:1: empty password"},
        {"x:1\ny:2\nz:3\n  alice:pw\n", 0,
         "f.txt:4: user name starts or ends with a space or tab (names are taken byte for byte)"},
        {"alice :pw\n", 0, "f.txt:1: user name starts or ends with a space or tab (names are taken byte for byte)"},
        {"alice:pw\nbob:x\r\nalice:other\n", 0, "f.txt:3: user \"alice\" is already on line 1"},
        {"alice:pw\nb\0b:x\n", 14, "f.txt:2: NUL byte: not a text file"},
        {"", 0, "f.txt: no user:password line"},
        {"# nobody\n\n", 0, "f.txt: no user:password line"},
        {NULL, 0, "f.txt:2: user name longer than 255 bytes"},
        {NULL, 1, "f.txt:3: password longer than 255 bytes"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        const char *text = rows[i].text ? rows[i].text : rows[i].len ? p256 : u256;
        size_t len = rows[i].text && rows[i].len ? rows[i].len : strlen(text);
        struct v2s_credentials *c = (struct v2s_credentials *)&len; /* must be reset to NULL */
        char err[256] = "";
        ASSERT_ROW(v2s_credentials_parse(&c, "f.txt", text, len, err, sizeof(err)) == -EINVAL, "%zu", i);
        ASSERT_ROW(c == NULL, "%zu", i);
        ASSERT_ROW(strcmp(err, rows[i].err) == 0, "%zu: \"%s\"", i, err);
        ASSERT_ROW(strstr(err, "pw") == NULL && strstr(err, "secret") == NULL && strstr(err, "other") == NULL,
                   "%zu", i);
    }
    return 0;
}

static void cred_write(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT(fd >= 0);
    ASSERT_EQ(write(fd, text, strlen(text)), (long long)strlen(text));
    ASSERT_EQ(fchmod(fd, mode), 0);
    close(fd);
}

/* The file: read with its permissions checked the way the OpenVPN secrets are. */
TEST_IMPL(credentials_load_file)
{
    char dir[] = "/tmp/v2s-cred-XXXXXX", path[64], want[512], err[512];
    struct v2s_credentials *c;
    ASSERT(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/users", dir);

    cred_write(path, "alice:pw\n", 0600);
    ASSERT_EQ(v2s_credentials_load(&c, path, 0, err, sizeof(err)), 0);
    ASSERT_EQ(cred_try(c, "alice", "pw"), V2S_CRED_OK);
    v2s_credentials_free(c);
    cred_write(path, "alice:pw\n", 0400);
    ASSERT_EQ(v2s_credentials_load(&c, path, 0, err, sizeof(err)), 0);
    v2s_credentials_free(c);

    /* Readable or writable by others, or writable by the group: refused, saying the fix; whoever
     * owns it (these hold for root too). */
    static const struct {
        mode_t mode;
        const char *exposure;
    } rows[] = {
        {0644, "other users can read"},
        {0604, "other users can read"},
        {0602, "other users can write"},
        {0620, "its group can write"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        cred_write(path, "alice:pw\n", rows[i].mode);
        c = (struct v2s_credentials *)path;
        ASSERT_ROW(v2s_credentials_load(&c, path, 0, err, sizeof(err)) == -EPERM, "%zu", i);
        ASSERT_ROW(c == NULL, "%zu", i);
        snprintf(want, sizeof(want),
                 "%s holds passwords that %s (mode %04o): run chmod 600 %s, or give --allow-readable-secrets", path,
                 rows[i].exposure, (unsigned)rows[i].mode, path);
        ASSERT_ROW(strcmp(err, want) == 0, "%zu: %s", i, err);
    }
    /* The group may read it only when root owns it (as for the OpenVPN keys). */
    cred_write(path, "alice:pw\n", 0640);
    int rc = v2s_credentials_load(&c, path, 0, err, sizeof(err));
    ASSERT_EQ(rc, geteuid() == 0 ? 0 : -EPERM);
    v2s_credentials_free(c);

    /* --allow-readable-secrets: used, with a warning. */
    cred_write(path, "alice:pw\n", 0644);
    int saved = v2s_log_level;
    v2s_log_level = V2S_LOG_WARN;
    uvtest_log_begin();
    ASSERT_EQ(v2s_credentials_load(&c, path, 1, err, sizeof(err)), 0);
    const char *log = uvtest_log_end();
    v2s_log_level = saved;
    ASSERT(strstr(log, "holds passwords that other users can read (mode 0644); used anyway "
                       "(--allow-readable-secrets)") != NULL);
    ASSERT_EQ(cred_try(c, "alice", "pw"), V2S_CRED_OK);
    v2s_credentials_free(c);

    /* A bad line names the file as given and the line. */
    cred_write(path, "alice:pw\nbob\n", 0600);
    ASSERT_EQ(v2s_credentials_load(&c, path, 0, err, sizeof(err)), -EINVAL);
    snprintf(want, sizeof(want), "%s:2: expected user:password", path);
    ASSERT_STR_EQ(err, want);

    ASSERT_EQ(unlink(path), 0);
    ASSERT_EQ(v2s_credentials_load(&c, path, 0, err, sizeof(err)), -ENOENT);
    snprintf(want, sizeof(want), "%s: %s", path, strerror(ENOENT));
    ASSERT_STR_EQ(err, want);
    ASSERT_EQ(rmdir(dir), 0);
    return 0;
}

static unsigned cred_count(const char *hay, const char *needle)
{
    unsigned n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* Failed logins: the client, the user escaped, the reason; at most V2S_CRED_LOG_BURST lines a
 * minute, and the next line says how many were left out. */
TEST_IMPL(credentials_log_failure)
{
    struct v2s_credentials *c;
    char err[128];
    ASSERT_EQ(v2s_credentials_parse(&c, "f", "alice:pw\n", 9, err, sizeof(err)), 0);
    int saved = v2s_log_level;
    v2s_log_level = V2S_LOG_WARN;
    uvtest_log_begin();
    static const uint8_t evil[] = {'e', 'v', '\n', 'i', 'l', 0, '\\', 0x1b, '[', '2', 'J'};
    ASSERT_EQ(v2s_credentials_log_failure(c, 1000, "SOCKS listener 127.0.0.1:1080", "127.0.0.1:5555", evil,
                                          sizeof(evil), "unknown user"), 1);
    ASSERT_EQ(v2s_credentials_log_failure(c, 1000, "L", "P", NULL, 0, "no username/password offered"), 1);
    unsigned written = 2;
    for (int i = 0; i < 20; i++)
        written += (unsigned)v2s_credentials_log_failure(c, 2000 + (uint64_t)i, "L", "P", (const uint8_t *)"alice", 5,
                                                         "wrong password");
    ASSERT_EQ(written, V2S_CRED_LOG_BURST);
    /* Still inside the minute: nothing. */
    ASSERT_EQ(v2s_credentials_log_failure(c, 1000 + V2S_CRED_LOG_INTERVAL_MS - 1, "L", "P", NULL, 0, "x"), 0);
    /* A minute on: logged again, with the count of those left out. */
    ASSERT_EQ(v2s_credentials_log_failure(c, 1000 + V2S_CRED_LOG_INTERVAL_MS, "L", "P", (const uint8_t *)"alice", 5,
                                          "wrong password"), 1);
    ASSERT_EQ(v2s_credentials_log_failure(c, 1000 + V2S_CRED_LOG_INTERVAL_MS, "L", "P", (const uint8_t *)"alice", 5,
                                          "wrong password"), 1);
    const char *log = uvtest_log_end();
    v2s_log_level = saved;
    ASSERT(strstr(log, "warn: SOCKS listener 127.0.0.1:1080: 127.0.0.1:5555: login refused for user "
                       "\"ev\\x0ail\\x00\\\\\\x1b[2J\": unknown user\n") != NULL);
    ASSERT(strstr(log, "warn: L: P: login refused for a client without a user name: no username/password offered\n")
           != NULL);
    ASSERT_EQ(cred_count(log, "login refused"), V2S_CRED_LOG_BURST + 2);
    ASSERT_EQ(cred_count(log, "L: P: login refused for user \"alice\": wrong password (13 more failed logins before "
                              "this one were not logged)\n"), 1);
    ASSERT_EQ(cred_count(log, "login refused for user \"alice\": wrong password\n"), V2S_CRED_LOG_BURST - 2 + 1);
    v2s_credentials_free(c);
    return 0;
}

/* A user name longer than any user can have: RFC 1929 holds it to 255 bytes, but an HTTP
 * Proxy-Authorization carries up to 510. The refusal is logged with the name cut ("..."); a name
 * of 400 bytes overran a 256-byte buffer on the stack while the line was written. */
TEST_IMPL(credentials_log_failure_long_user)
{
    struct v2s_credentials *c;
    char err[128];
    ASSERT_EQ(v2s_credentials_parse(&c, "f", "alice:pw\n", 9, err, sizeof(err)), 0);
    int saved = v2s_log_level;
    v2s_log_level = V2S_LOG_WARN;
    uint8_t user[510];
    memset(user, 'u', sizeof(user));
    user[300] = 0; /* a NUL past the cut shows nothing more */
    ASSERT_EQ(v2s_credentials_check(c, user, 400, (const uint8_t *)"pw", 2), V2S_CRED_UNKNOWN_USER);
    uvtest_log_begin();
    ASSERT_EQ(v2s_credentials_log_failure(c, 1000, "HTTP listener 127.0.0.1:3128", "127.0.0.1:5555", user, 400,
                                          "unknown user"), 1);
    ASSERT_EQ(v2s_credentials_log_failure(c, 1000, "L", "P", user, sizeof(user), "unknown user"), 1);
    const char *log = uvtest_log_end();
    v2s_log_level = saved;
    char want[400];
    int n = snprintf(want, sizeof(want), "login refused for user \"");
    memset(want + n, 'u', 252);
    snprintf(want + n + 252, sizeof(want) - (size_t)n - 252, "...\": unknown user\n");
    ASSERT_EQ(cred_count(log, want), 2);
    v2s_credentials_free(c);
    return 0;
}

/* A reload reads the --socks-auth file again into the object the listeners hold
 * (v2s_credentials_replace): the new users log in, the old ones no more, and the failed-login
 * log's limit carries on rather than starting a new burst. */
TEST_IMPL(credentials_replace)
{
    static const char before[] = "alice:one\nbob:two\n", after[] = "alice:three\ncarol:four\n";
    struct v2s_credentials *c, *next;
    char err[256] = "";
    ASSERT_EQ(v2s_credentials_parse(&c, "users.txt", before, sizeof(before) - 1, err, sizeof(err)), 0);
    int saved = v2s_log_level;
    v2s_log_level = V2S_LOG_WARN;
    uvtest_log_begin();
    int lines = 0;
    for (int i = 0; i < V2S_CRED_LOG_BURST; i++)
        lines += v2s_credentials_log_failure(c, 1000, "SOCKS 127.0.0.1:1080", "127.0.0.1:5000", NULL, 0, "no user");
    ASSERT_EQ(lines, V2S_CRED_LOG_BURST);
    ASSERT_EQ(v2s_credentials_parse(&next, "users.txt", after, sizeof(after) - 1, err, sizeof(err)), 0);
    const struct v2s_credentials *held = c;
    v2s_credentials_replace(c, next);
    ASSERT(c == held);
    ASSERT_EQ(v2s_credentials_count(c), 2);
    ASSERT_EQ(cred_try(c, "alice", "three"), V2S_CRED_OK);
    ASSERT_EQ(cred_try(c, "carol", "four"), V2S_CRED_OK);
    ASSERT_EQ(cred_try(c, "alice", "one"), V2S_CRED_WRONG_PASSWORD);
    ASSERT_EQ(cred_try(c, "bob", "two"), V2S_CRED_UNKNOWN_USER);
    ASSERT_EQ(v2s_credentials_log_failure(c, 2000, "SOCKS 127.0.0.1:1080", "127.0.0.1:5000", NULL, 0, "no user"), 0);
    const char *log = uvtest_log_end();
    v2s_log_level = saved;
    ASSERT_EQ(cred_count(log, "login refused"), V2S_CRED_LOG_BURST);
    v2s_credentials_free(c);
    return 0;
}
