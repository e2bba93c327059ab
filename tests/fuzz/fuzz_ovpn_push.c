/* libFuzzer target for the PUSH_REPLY parser. The input is up to 8 messages separated by
 * newlines, applied to one struct ovpn_push as the parts of a push-continuation; a message not
 * starting with "PUSH_" gets the PUSH_REPLY prefix so the fuzzer spends its time on options.
 * After every message the result must hold the invariants the client relies on. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tunnel/openvpn/push.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check_cidr(const struct v2s_cidr *c)
{
    struct v2s_cidr again;
    if (v2s_cidr_make(&again, &c->addr, c->prefix) != 0 || !v2s_addr_equal(&again.addr, &c->addr))
        abort();
}

static void fuzz_check(const struct ovpn_push *p)
{
    const struct tunnel_settings *s = &p->settings;
    if (s->addr4.family != 0 && s->addr4.family != AF_INET)
        abort();
    if (s->addr6.family != 0 && s->addr6.family != AF_INET6)
        abort();
    if (s->prefix4 > 32 || s->prefix6 > 128 || s->n_dns > TUNNEL_MAX_DNS)
        abort();
    if (s->mtu != 0 && (s->mtu < 100 || s->mtu > 65535))
        abort();
    if (s->n_routes > 4096 || s->n_excludes > 4096)
        abort();
    for (size_t i = 0; i < s->n_routes; i++)
        fuzz_check_cidr(&s->routes[i]);
    for (size_t i = 0; i < s->n_excludes; i++)
        fuzz_check_cidr(&s->excludes[i]);
    if (s->domains != NULL && (s->domains[0] == '\0' || strchr(s->domains, '\n') != NULL ||
                               strchr(s->domains, ',') != NULL))
        abort();
    if (p->topology > OVPN_TOPOLOGY_SUBNET || p->comp > OVPN_COMP_FRAMING_V2)
        abort();
    if (p->continuation < 0 || p->continuation > 2 || p->peer_id > 0xFFFFFF)
        abort();
    if (memchr(p->cipher, '\0', sizeof(p->cipher)) == NULL || memchr(p->auth, '\0', sizeof(p->auth)) == NULL)
        abort();
    if (p->auth_token != NULL && p->auth_token[0] == '\0')
        abort();
    if (p->auth_token_user != NULL && p->auth_token_user[0] == '\0')
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ovpn_push p;
    char err[256];
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    ovpn_push_init(&p);
    char *line = text;
    for (int i = 0; i < 8 && line != NULL; i++) {
        char *nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        char *msg = line;
        char *prefixed = NULL;
        if (strncmp(line, "PUSH_", 5) != 0) {
            size_t len = strlen(line);
            prefixed = malloc(len + 12);
            if (prefixed == NULL)
                break;
            memcpy(prefixed, "PUSH_REPLY,", 11);
            memcpy(prefixed + 11, line, len + 1);
            msg = prefixed;
        }
        err[0] = '\0';
        int rc = ovpn_push_parse(&p, msg, err, sizeof(err));
        if (rc == -EINVAL && (err[0] == '\0' || strchr(err, '\n') != NULL))
            abort();
        if (rc != 0 && rc != -EINVAL && rc != -ENOMEM)
            abort();
        fuzz_check(&p);
        free(prefixed);
        line = nl ? nl + 1 : NULL;
    }
    ovpn_push_free(&p);
    free(text);
    return 0;
}
