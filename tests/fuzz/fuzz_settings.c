/* libFuzzer target for the openconnect environment reader. The input is "NAME=VALUE" lines; the
 * settings that come out must hold the invariants the router and the stack rely on, and an error
 * must come with a one-line reason. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tunnel/settings.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { FUZZ_MAX_VARS = 128 };

struct fuzz_env {
    char *lines[FUZZ_MAX_VARS];
    size_t n;
};

static const char *fuzz_getenv(void *arg, const char *name)
{
    struct fuzz_env *env = arg;
    size_t len = strlen(name);
    for (size_t i = 0; i < env->n; i++)
        if (strncmp(env->lines[i], name, len) == 0 && env->lines[i][len] == '=')
            return env->lines[i] + len + 1;
    return NULL;
}

static void fuzz_check_cidr(const struct v2s_cidr *c)
{
    struct v2s_cidr again;
    if (v2s_cidr_make(&again, &c->addr, c->prefix) != 0 || !v2s_addr_equal(&again.addr, &c->addr))
        abort(); /* host bits must be clear and the prefix in range */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_env env = {.n = 0};
    struct tunnel_settings s;
    char err[160];

    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    for (char *line = text; line != NULL && env.n < FUZZ_MAX_VARS;) {
        char *nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        env.lines[env.n++] = line;
        line = nl ? nl + 1 : NULL;
    }

    int rc = tunnel_settings_from_env(&s, fuzz_getenv, &env, err, sizeof(err));
    if (rc == 0) {
        if (s.addr4.family != AF_INET && s.addr6.family != AF_INET6)
            abort();
        if (s.n_dns > TUNNEL_MAX_DNS || s.prefix4 > 32 || s.prefix6 > 128 || s.mtu > 65535)
            abort();
        for (size_t i = 0; i < s.n_routes; i++)
            fuzz_check_cidr(&s.routes[i]);
        for (size_t i = 0; i < s.n_excludes; i++)
            fuzz_check_cidr(&s.excludes[i]);
        if (s.domains != NULL && (s.domains[0] == '\0' || strchr(s.domains, '\n') != NULL))
            abort();
    } else if (rc == -EINVAL) {
        if (err[0] == '\0' || strchr(err, '\n') != NULL)
            abort();
    } else if (rc != -ENOMEM) {
        abort();
    }
    tunnel_settings_free(&s);

    /* VPNFD, and the vpnc-script reason named when it is missing: one line, the values escaped. */
    int fd;
    rc = tunnel_env_vpnfd(fuzz_getenv, &env, &fd, err, sizeof(err));
    if (rc == -EINVAL && err[0] == '\0')
        abort();
    if (rc == 0 && (fd < 0 || fd > 65535))
        abort();
    if (rc != 0 && rc != -EINVAL && rc != -ENOENT)
        abort();
    for (const char *p = rc == 0 ? "" : err; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7F)
            abort();
    free(text);
    return 0;
}
