/* The users a listener lets in: the --socks-auth file of `user:password` lines, read once and
 * checked at each login. Shared by the listeners that authenticate (SOCKS5's RFC 1929
 * username/password, and the HTTP proxy's Proxy-Authorization basic), so it lives below them. */
#ifndef VPN2SOCKS_BASE_CREDENTIALS_H
#define VPN2SOCKS_BASE_CREDENTIALS_H

#include <stddef.h>
#include <stdint.h>

struct v2s_credentials;

enum {
    /* RFC 1929 carries each in a length byte; the file is held to the same. */
    V2S_CRED_MAX_USER = 255,
    V2S_CRED_MAX_PASSWORD = 255,
    /* The file is read whole; a million bytes is tens of thousands of users. */
    V2S_CRED_MAX_FILE = 1024 * 1024,
    /* Failed logins log at most this many lines per interval (the rest are counted). */
    V2S_CRED_LOG_BURST = 10,
    V2S_CRED_LOG_INTERVAL_MS = 60 * 1000,
};

enum v2s_cred_result {
    V2S_CRED_OK = 0,
    V2S_CRED_UNKNOWN_USER,
    V2S_CRED_WRONG_PASSWORD,
};

/* Reads FILE: one `user:password` per line (the user ends at the first ':', the password is the
 * rest of the line, both taken byte for byte, 1 to 255 bytes each); blank lines and lines whose
 * first non-blank character is '#' are skipped; a CR before the LF is dropped. The file must be
 * closed to other users (base/secret_file.h), unless allow_readable, which makes that a warning.
 * 0, or a negative errno with one line in err naming FILE (and FILE:LINE for a bad line); a
 * password never appears in it. */
int v2s_credentials_load(struct v2s_credentials **out, const char *path, int allow_readable, char *err,
                         size_t errcap);
/* The same for text already in memory (len bytes; name is what errors call it). 0 or -EINVAL,
 * -ENOMEM. */
int v2s_credentials_parse(struct v2s_credentials **out, const char *name, const char *text, size_t len, char *err,
                          size_t errcap);
/* Gives c the users of from and frees from with c's old users, wiped. c stays the same object,
 * so the listeners holding it check new logins against the new users from then on (a reload
 * reads the file again); its failed-login log limit carries on. */
void v2s_credentials_replace(struct v2s_credentials *c, struct v2s_credentials *from);
size_t v2s_credentials_count(const struct v2s_credentials *c);
/* Checks a login. The password is compared in time that depends on neither its bytes nor how
 * many of them match, nor on whether the user exists. */
enum v2s_cred_result v2s_credentials_check(const struct v2s_credentials *c, const uint8_t *user, size_t user_len,
                                           const uint8_t *password, size_t password_len);
/* Logs a failed login as a warning: "WHERE: CLIENT: login refused for user "NAME" (escaped): WHY"
 * (user may be NULL: none was given). At most V2S_CRED_LOG_BURST lines per
 * V2S_CRED_LOG_INTERVAL_MS over every listener using c; the first line after that says how many
 * were left out. Returns 1 when a line was written. */
int v2s_credentials_log_failure(struct v2s_credentials *c, uint64_t now_ms, const char *where, const char *peer,
                                const uint8_t *user, size_t user_len, const char *why);
/* Wipes and frees (NULL is fine). */
void v2s_credentials_free(struct v2s_credentials *c);

#endif
