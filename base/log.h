/* Logging: one line per event on stderr, with a level set by -v / -q. Secrets never go here. */
#ifndef VPN2SOCKS_BASE_LOG_H
#define VPN2SOCKS_BASE_LOG_H

enum v2s_log_level {
    V2S_LOG_ERROR = 0,
    V2S_LOG_WARN = 1,
    V2S_LOG_INFO = 2,
    V2S_LOG_DEBUG = 3,
    V2S_LOG_TRACE = 4,
};

extern int v2s_log_level;

void v2s_log(enum v2s_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define V2S_LOG_ENABLED(level) ((int)(level) <= v2s_log_level)
#define v2s_error(...) v2s_log(V2S_LOG_ERROR, __VA_ARGS__)
#define v2s_warn(...) v2s_log(V2S_LOG_WARN, __VA_ARGS__)
#define v2s_info(...) \
    do { if (V2S_LOG_ENABLED(V2S_LOG_INFO)) v2s_log(V2S_LOG_INFO, __VA_ARGS__); } while (0)
#define v2s_debug(...) \
    do { if (V2S_LOG_ENABLED(V2S_LOG_DEBUG)) v2s_log(V2S_LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
