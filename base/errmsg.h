/* Parse errors: the one-line reason a parser writes into its caller's (err, errcap) buffer. */
#ifndef VPN2SOCKS_BASE_ERRMSG_H
#define VPN2SOCKS_BASE_ERRMSG_H

#include <stdarg.h>
#include <stddef.h>

/* Formats the reason into err (nothing when err is NULL or errcap is 0; cut to fit) and returns
 * -EINVAL, so a parser can write `return v2s_fail(err, errcap, "...", ...);`. */
int v2s_fail(char *err, size_t errcap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* v2s_fail with a va_list, for parsers that add their own prefix (a file name and line). */
int v2s_vfail(char *err, size_t errcap, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));

#endif
