#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

int v2s_log_level = V2S_LOG_WARN;

static const char *const level_names[] = {"error", "warn", "info", "debug", "trace"};

void v2s_log(enum v2s_log_level level, const char *fmt, ...)
{
    if (!V2S_LOG_ENABLED(level))
        return;
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%02d:%02d:%02d.%03ld vpn2socks %s: ", tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof(line))
        vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    /* One write per line so lines from concurrent processes (openconnect, us) do not interleave. */
    fprintf(stderr, "%s\n", line);
}
