/* The credentials file and the login check.
 *
 * What it guarantees:
 * - The file is read through base/secret_file.h: refused when other users can read or write it,
 *   wiped from memory once parsed; the users and passwords are kept in memory of their own, wiped
 *   when freed. No error message and no log line carries a password.
 * - A password is compared over V2S_CRED_MAX_PASSWORD bytes whatever its length, with no early
 *   exit, and an unknown user is compared against a blank entry the same way, so the time a check
 *   takes tells a client neither how much of a password was right nor whether the user exists.
 *   Finding the user is a binary search over the names, which are not secret.
 * - Failed logins are logged with the client and the user name escaped (a client's bytes never
 *   reach the terminal as they are), at most V2S_CRED_LOG_BURST lines a minute, so that a client
 *   trying passwords in a loop cannot flood the log. */
#include "base/credentials.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/addr.h"
#include "base/errmsg.h"
#include "base/log.h"
#include "base/secret_file.h"

struct cred_entry {
    uint8_t user_len;
    uint8_t password_len;
    unsigned line; /* for the duplicate's error */
    uint8_t *bytes; /* the user, then the password */
};

struct v2s_credentials {
    struct cred_entry *entries; /* sorted by user */
    size_t n, cap;
    /* The failed-login log's rate limit. */
    uint64_t log_window_ms;
    unsigned log_lines;
    unsigned long long log_left_out;
    int log_started;
};

static int cred_compare_user(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int r = memcmp(a, b, alen < blen ? alen : blen);
    if (r != 0)
        return r;
    return alen < blen ? -1 : alen > blen;
}

static int cred_entry_compare(const void *a, const void *b)
{
    const struct cred_entry *x = a, *y = b;
    int r = cred_compare_user(x->bytes, x->user_len, y->bytes, y->user_len);
    if (r != 0)
        return r;
    return x->line < y->line ? -1 : x->line > y->line;
}

void v2s_credentials_free(struct v2s_credentials *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++) {
        explicit_bzero(c->entries[i].bytes, (size_t)c->entries[i].user_len + c->entries[i].password_len);
        free(c->entries[i].bytes);
    }
    free(c->entries);
    free(c);
}

void v2s_credentials_replace(struct v2s_credentials *c, struct v2s_credentials *from)
{
    struct v2s_credentials old = *c;
    c->entries = from->entries;
    c->n = from->n;
    c->cap = from->cap;
    from->entries = old.entries;
    from->n = old.n;
    from->cap = old.cap;
    v2s_credentials_free(from); /* the old users, wiped */
}

size_t v2s_credentials_count(const struct v2s_credentials *c)
{
    return c->n;
}

static int cred_add(struct v2s_credentials *c, const char *user, size_t ulen, const char *password, size_t plen,
                    unsigned line)
{
    if (c->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 8;
        /* The entries hold only pointers and lengths, so realloc() leaves no secret behind. */
        struct cred_entry *grown = realloc(c->entries, ncap * sizeof(*grown));
        if (grown == NULL)
            return -ENOMEM;
        c->entries = grown;
        c->cap = ncap;
    }
    uint8_t *bytes = malloc(ulen + plen);
    if (bytes == NULL)
        return -ENOMEM;
    memcpy(bytes, user, ulen);
    memcpy(bytes + ulen, password, plen);
    c->entries[c->n++] = (struct cred_entry){
        .user_len = (uint8_t)ulen,
        .password_len = (uint8_t)plen,
        .line = line,
        .bytes = bytes,
    };
    return 0;
}

/* Reports a bad line: "NAME:LINE: what". */
static int cred_fail_at(char *err, size_t errcap, const char *name, unsigned line, const char *what)
{
    return v2s_fail(err, errcap, "%s:%u: %s", name, line, what);
}

/* The user name for a log line or an error: escaped by v2s_shown, a NUL byte (which RFC 1929
 * allows and v2s_shown would stop at) as \x00; cut to fit cap (at least 16, at most 256). Returns
 * buf. The name may be longer than any user's: an HTTP Proxy-Authorization carries up to 510
 * bytes, and one of 400 overran part (on the stack) before it was cut here. */
static const char *cred_shown_user(const uint8_t *user, size_t len, char *buf, size_t cap)
{
    char part[V2S_CRED_MAX_USER + 2];
    size_t o = 0, i = 0;
    buf[0] = '\0';
    while (i < len) {
        const uint8_t *nul = memchr(user + i, 0, len - i);
        size_t n = nul ? (size_t)(nul - (user + i)) : len - i;
        if (n > 0) {
            if (cap - o < 8)
                break;
            /* Each byte shows as one character or more, so no more than cap - o bytes can show;
             * with one more than fits, v2s_shown cuts the text with "...". */
            size_t k = n < cap - o ? n : cap - o;
            if (k > sizeof(part) - 1)
                k = sizeof(part) - 1;
            memcpy(part, user + i, k);
            part[k] = '\0';
            v2s_shown(part, buf + o, cap - o);
            o += strlen(buf + o);
            i += n;
        }
        if (nul != NULL) {
            if (cap - o < 5)
                break;
            memcpy(buf + o, "\\x00", 5);
            o += 4;
            i++;
        }
    }
    return buf;
}

int v2s_credentials_parse(struct v2s_credentials **out, const char *name, const char *text, size_t len, char *err,
                          size_t errcap)
{
    char shown[256];
    struct v2s_credentials *c = calloc(1, sizeof(*c));
    unsigned line = 0;
    int rc = 0;

    *out = NULL;
    if (c == NULL)
        return -ENOMEM;
    v2s_shown(name, shown, sizeof(shown));
    for (size_t pos = 0; pos < len;) {
        const char *s = text + pos;
        const char *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;
        pos += n + (nl != NULL);
        line++;
        if (memchr(s, '\0', n) != NULL) {
            rc = cred_fail_at(err, errcap, shown, line, "NUL byte: not a text file");
            goto fail;
        }
        if (n > 0 && s[n - 1] == '\r')
            n--;
        size_t blank = 0;
        while (blank < n && (s[blank] == ' ' || s[blank] == '\t'))
            blank++;
        if (blank == n || s[blank] == '#')
            continue;
        const char *colon = memchr(s, ':', n);
        if (colon == NULL) {
            rc = cred_fail_at(err, errcap, shown, line, "expected user:password");
            goto fail;
        }
        size_t ulen = (size_t)(colon - s), plen = n - ulen - 1;
        const char *why = NULL;
        if (ulen == 0)
            why = "empty user name (expected user:password)";
        else if (ulen > V2S_CRED_MAX_USER)
            why = "user name longer than 255 bytes";
        else if (blank > 0 || s[ulen - 1] == ' ' || s[ulen - 1] == '\t')
            why = "user name starts or ends with a space or tab (names are taken byte for byte)";
        else if (plen == 0)
            why = "empty password";
        else if (plen > V2S_CRED_MAX_PASSWORD)
            why = "password longer than 255 bytes";
        if (why != NULL) {
            rc = cred_fail_at(err, errcap, shown, line, why);
            goto fail;
        }
        if ((rc = cred_add(c, s, ulen, colon + 1, plen, line)) < 0) {
            v2s_fail(err, errcap, "%s: out of memory", shown);
            goto fail;
        }
    }
    if (c->n == 0) {
        rc = v2s_fail(err, errcap, "%s: no user:password line", shown);
        goto fail;
    }
    qsort(c->entries, c->n, sizeof(c->entries[0]), cred_entry_compare);
    for (size_t i = 1; i < c->n; i++) {
        const struct cred_entry *a = &c->entries[i - 1], *b = &c->entries[i];
        if (cred_compare_user(a->bytes, a->user_len, b->bytes, b->user_len) == 0) {
            char user[64];
            cred_shown_user(b->bytes, b->user_len, user, sizeof(user));
            rc = v2s_fail(err, errcap, "%s:%u: user \"%s\" is already on line %u", shown, b->line, user, a->line);
            goto fail;
        }
    }
    *out = c;
    return 0;
fail:
    v2s_credentials_free(c);
    return rc;
}

int v2s_credentials_load(struct v2s_credentials **out, const char *path, int allow_readable, char *err,
                         size_t errcap)
{
    char *text = NULL;
    size_t len = 0;
    struct stat st;
    char shown[256];

    *out = NULL;
    int rc = v2s_file_read(path, V2S_CRED_MAX_FILE, &text, &len, &st);
    if (rc < 0) {
        v2s_fail(err, errcap, "%s: %s", v2s_shown(path, shown, sizeof(shown)),
                 rc == -EFBIG ? "larger than 1 MiB" : strerror(-rc));
        return rc;
    }
    if ((rc = v2s_secret_check(path, &st, "passwords", allow_readable, err, errcap)) == 0)
        rc = v2s_credentials_parse(out, path, text, len, err, errcap);
    v2s_file_free(text, len);
    return rc;
}

/* Equal in time that depends only on V2S_CRED_MAX_PASSWORD: every byte position is compared,
 * the shorter side padded with zeros, and the lengths are compared the same way. */
static int cred_password_equal(const uint8_t *want, size_t want_len, const uint8_t *got, size_t got_len)
{
    /* volatile: neither an early exit nor dropping the blank entry's comparison as unused. */
    volatile unsigned diff = want_len != got_len;
    for (size_t i = 0; i < V2S_CRED_MAX_PASSWORD; i++) {
        uint8_t a = i < want_len ? want[i] : 0;
        uint8_t b = i < got_len ? got[i] : 0;
        diff |= (unsigned)(a ^ b);
    }
    return diff == 0;
}

enum v2s_cred_result v2s_credentials_check(const struct v2s_credentials *c, const uint8_t *user, size_t user_len,
                                           const uint8_t *password, size_t password_len)
{
    static const uint8_t blank[1];
    const struct cred_entry *found = NULL;
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct cred_entry *e = &c->entries[mid];
        int r = cred_compare_user(user, user_len, e->bytes, e->user_len);
        if (r == 0) {
            found = e;
            break;
        }
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    /* An unknown user costs the same comparison as a known one (against nothing). */
    int equal = found ? cred_password_equal(found->bytes + found->user_len, found->password_len, password,
                                            password_len)
                      : cred_password_equal(blank, 0, password, password_len);
    if (found == NULL)
        return V2S_CRED_UNKNOWN_USER;
    return equal ? V2S_CRED_OK : V2S_CRED_WRONG_PASSWORD;
}

int v2s_credentials_log_failure(struct v2s_credentials *c, uint64_t now_ms, const char *where, const char *peer,
                                const uint8_t *user, size_t user_len, const char *why)
{
    if (!c->log_started || now_ms - c->log_window_ms >= V2S_CRED_LOG_INTERVAL_MS) {
        c->log_started = 1;
        c->log_window_ms = now_ms;
        c->log_lines = 0;
    }
    if (c->log_lines >= V2S_CRED_LOG_BURST) {
        c->log_left_out++;
        return 0;
    }
    c->log_lines++;
    char name[300], left_out[96] = "";
    if (user != NULL) {
        char esc[256]; /* a long name ends in "..." */
        snprintf(name, sizeof(name), "user \"%s\"", cred_shown_user(user, user_len, esc, sizeof(esc)));
    } else {
        snprintf(name, sizeof(name), "a client without a user name");
    }
    if (c->log_left_out > 0)
        snprintf(left_out, sizeof(left_out), " (%llu more failed logins before this one were not logged)",
                 c->log_left_out);
    c->log_left_out = 0;
    struct v2s_log_field f[] = {V2S_LOG_TEXT("client", peer), V2S_LOG_TEXT("listener", where),
                                V2S_LOG_TEXT("reason", why)};
    v2s_log_event(V2S_LOG_WARN, "login_refused", f, 3, "%s: %s: login refused for %s: %s%s", where, peer, name, why,
                  left_out);
    return 1;
}
