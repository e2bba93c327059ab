/* tunnel/settings.c: the environment indexed once (tunnel_env), which the process reads its
 * openconnect settings through. It answers as getenv() does, and the settings read through it are
 * those read by looking each variable up in turn, errors included. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "tunnel/settings.h"

/* getenv()'s answer, by a scan of envp. */
static const char *scan_getenv(void *arg, const char *name)
{
    char *const *env = arg;
    size_t n = strlen(name);
    for (; *env != NULL; env++)
        if (strncmp(*env, name, n) == 0 && (*env)[n] == '=')
            return *env + n + 1;
    return NULL;
}

TEST_IMPL(tunnel_env_answers_as_getenv)
{
    static char *env[] = {
        "B=2", "A=1", "NOEQUALS", "A=again", "AB=3", "A_1=4", "EMPTY=", "=nameless", "Z=x=y", "B=late", NULL,
    };
    static const char *const names[] = {"A", "B", "AB", "A_1", "EMPTY", "Z", "NOEQUALS", "", "C", "A_", "Y"};
    struct tunnel_env e;
    ASSERT_EQ(tunnel_env_init(&e, env), 0);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *want = scan_getenv(env, names[i]), *got = tunnel_env_get(&e, names[i]);
        if (want != got)
            TEST_FAIL_AT("%s: \"%s\" != \"%s\"", names[i], got ? got : "(unset)", want ? want : "(unset)");
    }
    ASSERT_STR_EQ(tunnel_env_get(&e, "A"), "1"); /* the first of two, as getenv() */
    ASSERT_STR_EQ(tunnel_env_get(&e, "Z"), "x=y");
    ASSERT(tunnel_env_get(&e, "NOEQUALS") == NULL);
    tunnel_env_free(&e);
    static char *none[] = {NULL};
    ASSERT_EQ(tunnel_env_init(&e, none), 0);
    ASSERT(tunnel_env_get(&e, "A") == NULL);
    tunnel_env_free(&e);
    return 0;
}

/* An openconnect environment with n IPv4 split includes and n excludes (and the process's own
 * variables around them); entry bad, when >= 0, lacks its _MASK and _MASKLEN. */
static char **split_env(unsigned n, long bad)
{
    size_t cap = 8 + 6 * (size_t)n, k = 0;
    char **env = calloc(cap, sizeof(*env));
    char buf[96];
    ASSERT(env != NULL);
    env[k++] = strdup("PATH=/usr/bin");
    env[k++] = strdup("INTERNAL_IP4_ADDRESS=10.9.0.2");
    env[k++] = strdup("INTERNAL_IP4_NETMASK=255.255.255.0");
    snprintf(buf, sizeof(buf), "CISCO_SPLIT_INC=%u", n);
    env[k++] = strdup(buf);
    snprintf(buf, sizeof(buf), "CISCO_SPLIT_EXC=%u", n);
    env[k++] = strdup(buf);
    for (unsigned i = 0; i < n; i++) {
        snprintf(buf, sizeof(buf), "CISCO_SPLIT_INC_%u_ADDR=10.%u.%u.0", i, i / 256, i % 256);
        env[k++] = strdup(buf);
        if ((long)i != bad) {
            snprintf(buf, sizeof(buf), "CISCO_SPLIT_INC_%u_MASK=255.255.255.0", i);
            env[k++] = strdup(buf);
            snprintf(buf, sizeof(buf), "CISCO_SPLIT_INC_%u_MASKLEN=24", i);
            env[k++] = strdup(buf);
        }
        snprintf(buf, sizeof(buf), "CISCO_SPLIT_EXC_%u_ADDR=172.%u.%u.0", i, i / 256, i % 256);
        env[k++] = strdup(buf);
        snprintf(buf, sizeof(buf), "CISCO_SPLIT_EXC_%u_MASK=255.255.255.0", i);
        env[k++] = strdup(buf);
    }
    env[k] = NULL;
    return env;
}

static void split_env_free(char **env)
{
    for (char **p = env; *p != NULL; p++)
        free(*p);
    free(env);
}

/* Reads env both ways; the results (the routes, or the error) must be the same. */
static int read_both(char **env, struct tunnel_settings *s, char *err, size_t errcap)
{
    struct tunnel_settings t;
    struct tunnel_env e;
    char err2[256];
    ASSERT_EQ(tunnel_env_init(&e, env), 0);
    int rc = tunnel_settings_from_script_env(s, tunnel_env_get, &e, err, errcap);
    tunnel_env_free(&e);
    ASSERT_EQ(tunnel_settings_from_script_env(&t, scan_getenv, env, err2, sizeof(err2)), rc);
    ASSERT_STR_EQ(err, err2);
    ASSERT_EQ(s->n_routes, t.n_routes);
    ASSERT_EQ(s->n_excludes, t.n_excludes);
    ASSERT(s->n_routes == 0 || memcmp(s->routes, t.routes, s->n_routes * sizeof(*s->routes)) == 0);
    ASSERT(s->n_excludes == 0 || memcmp(s->excludes, t.excludes, s->n_excludes * sizeof(*s->excludes)) == 0);
    tunnel_settings_free(&t);
    return rc;
}

TEST_IMPL(tunnel_env_split_routes)
{
    struct tunnel_settings s;
    char err[256], buf[64];
    /* The most openconnect's counts may say (SETTINGS_MAX_ROUTES), each way. */
    struct tunnel_env e;
    char **env = split_env(4096, -1);
    ASSERT_EQ(tunnel_env_init(&e, env), 0);
    ASSERT_EQ(tunnel_settings_from_script_env(&s, tunnel_env_get, &e, err, sizeof(err)), 0);
    tunnel_env_free(&e);
    ASSERT_EQ(s.n_routes, 4096);
    ASSERT_EQ(s.n_excludes, 4096);
    ASSERT_STR_EQ(v2s_cidr_format(&s.routes[4095], buf, sizeof(buf)), "10.15.255.0/24");
    ASSERT_STR_EQ(v2s_cidr_format(&s.excludes[0], buf, sizeof(buf)), "172.0.0.0/24");
    tunnel_settings_free(&s);
    split_env_free(env);
    /* Read either way, the same routes; and the same error, naming the same variable. */
    env = split_env(300, -1);
    ASSERT_EQ(read_both(env, &s, err, sizeof(err)), 0);
    ASSERT_EQ(s.n_routes, 300);
    tunnel_settings_free(&s);
    split_env_free(env);
    env = split_env(300, 257);
    ASSERT_EQ(read_both(env, &s, err, sizeof(err)), -EINVAL);
    ASSERT_STR_EQ(err, "CISCO_SPLIT_INC_257_MASK: missing, and so is _MASKLEN");
    tunnel_settings_free(&s);
    split_env_free(env);
    return 0;
}
