/* Parse errors written once: every parser of configuration text (the .ovpn file, PUSH_REPLY, the
 * openconnect environment) reports failure as -EINVAL plus one line in a caller's buffer, and
 * these two functions are how that line gets written. They never log: the caller decides. */
#include "base/errmsg.h"

#include <errno.h>
#include <stdio.h>

int v2s_vfail(char *err, size_t errcap, const char *fmt, va_list ap)
{
    if (err != NULL && errcap > 0)
        vsnprintf(err, errcap, fmt, ap);
    return -EINVAL;
}

int v2s_fail(char *err, size_t errcap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    v2s_vfail(err, errcap, fmt, ap);
    va_end(ap);
    return -EINVAL;
}
