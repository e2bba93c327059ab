/* Files that hold secrets (a private key, a password, the --socks-auth credentials): read whole
 * into memory that is wiped before it is freed, and refused when other users can get at them.
 * Written once here for every layer that reads one: tunnel/openvpn/ (keys, --auth-user-pass) and
 * the listeners' credentials (base/credentials.h). */
#ifndef VPN2SOCKS_BASE_SECRET_FILE_H
#define VPN2SOCKS_BASE_SECRET_FILE_H

#include <stddef.h>

struct stat;

/* Reads a whole file (a regular file, or a pipe such as <(...)) of at most max bytes, NUL
 * terminated, and what fstat() says of it (the file read, not a name looked up again). 0 or a
 * negative errno; -EFBIG when larger. On success the caller owns *out and gives it back with
 * v2s_file_free(). */
int v2s_file_read(const char *path, size_t max, char **out, size_t *out_len, struct stat *st);
/* Wipes and frees what v2s_file_read() returned (NULL is fine). */
void v2s_file_free(char *text, size_t len);

/* A file holding `what` ("a password") that other users can get at (see secret_file.c for the
 * rule): refused with -EPERM and a message naming the file, its mode and the fix (chmod 600, or
 * --allow-readable-secrets) in err; or, with allow_readable set, a warning in the log and 0. 0 when
 * the file is closed to other users. */
int v2s_secret_check(const char *path, const struct stat *st, const char *what, int allow_readable, char *err,
                     size_t errcap);

#endif
