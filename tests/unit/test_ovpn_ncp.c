/* tunnel/openvpn/ncp.c: which data channel cipher the client accepts from the server. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "test.h"
#include "tunnel/openvpn/config.h"
#include "tunnel/openvpn/ncp.h"

static void ncp_config(struct ovpn_config *cfg, const char *data_ciphers, const char *cipher, const char *fallback)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->data_ciphers, sizeof(cfg->data_ciphers), "%s", data_ciphers);
    snprintf(cfg->cipher, sizeof(cfg->cipher), "%s", cipher);
    snprintf(cfg->data_ciphers_fallback, sizeof(cfg->data_ciphers_fallback), "%s", fallback);
    snprintf(cfg->auth, sizeof(cfg->auth), "SHA1");
}

/* The server picks, but only among ours: data-ciphers (or the default list), the config's cipher
 * and data-ciphers-fallback. Without a push: the cipher its options name if ours, else the
 * fallback, else the config's cipher. */
TEST_IMPL(ovpn_ncp_choose)
{
    static const struct {
        const char *data_ciphers, *cipher, *fallback; /* the config */
        const char *pushed, *occ;                     /* the server */
        const char *want;                             /* the cipher, or NULL: refused */
        const char *why;                              /* in the reason when refused */
    } rows[] = {
        /* A pushed cipher */
        {"", "", "", "AES-256-GCM", "", "AES-256-GCM", NULL},
        {"", "", "", "aes-128-gcm", "AES-256-GCM", "aes-128-gcm", NULL},
        {"", "", "", "CHACHA20-POLY1305", "", "CHACHA20-POLY1305", NULL},
        {"", "", "", "AES-128-CBC", "", NULL,
         "the server chose data cipher AES-128-CBC, which is not one we allow "
         "(AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305); add it to data-ciphers only if this server is meant to use it"},
        {"", "", "", "none", "", NULL, "the server chose data cipher none (no encryption), which is not one we allow"},
        {"", "", "", "NONE", "none", NULL, "data cipher NONE (no encryption)"},
        {"AES-256-GCM", "", "", "AES-128-GCM", "", NULL, "which is not one we allow (AES-256-GCM)"},
        {"AES-256-GCM", "", "", "AES-256-GCM", "", "AES-256-GCM", NULL},
        /* BF-CBC is not implemented: never ours, even when listed */
        {"BF-CBC:AES-256-GCM", "", "", "BF-CBC", "", NULL, "not one we allow (AES-256-GCM)"},
        /* Alibaba Cloud's config: cipher only, offered and accepted */
        {"", "AES-128-CBC", "", "AES-128-CBC", "", "AES-128-CBC", NULL},
        {"", "AES-128-CBC", "", "AES-256-CBC", "", NULL, "(AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305:AES-128-CBC)"},
        {"", "", "AES-256-CBC", "AES-256-CBC", "", "AES-256-CBC", NULL},
        /* none only when the config asks for it */
        {"AES-256-GCM:none", "", "", "none", "", "none", NULL},
        {"", "none", "", "none", "", "none", NULL},
        {"", "", "none", "none", "", "none", NULL},
        /* hostile names are shown tamed */
        {"", "", "", "AES\x1b[31m", "", NULL, "data cipher AES\\x1b[31m, which"},
        /* No push: the server's own cipher when ours, else the fallback, else the config's cipher */
        {"", "", "", "", "AES-256-GCM", "AES-256-GCM", NULL},
        {"", "AES-128-CBC", "", "", "AES-128-CBC", "AES-128-CBC", NULL},
        {"", "", "AES-256-CBC", "", "AES-128-CBC", "AES-256-CBC", NULL},
        {"", "AES-192-CBC", "AES-256-CBC", "", "", "AES-256-CBC", NULL},
        {"", "AES-192-CBC", "", "", "BF-CBC", "AES-192-CBC", NULL},
        {"", "", "", "", "BF-CBC", NULL,
         "the server pushed no data cipher and its options name BF-CBC, which is not one we allow "
         "(AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305); set data-ciphers-fallback to the server's cipher"},
        {"", "", "", "", "none", NULL, "its options name none, which is not one we allow"},
        {"", "", "", "", "", NULL, "the server pushed no data cipher and named none; set data-ciphers-fallback"},
        {"", "none", "", "", "none", "none", NULL},
    };
    for (size_t row = 0; row < ARRAY_SIZE(rows); row++) {
        struct ovpn_config cfg;
        char out[64] = "unset", err[512] = "";
        ncp_config(&cfg, rows[row].data_ciphers, rows[row].cipher, rows[row].fallback);
        int rc = ovpn_ncp_choose(&cfg, rows[row].pushed, rows[row].occ, out, sizeof(out), err, sizeof(err));
        if (rows[row].want) {
            ASSERT_ROW(rc == 0, "%zu: %d %s", row, rc, err);
            ASSERT_ROW(strcmp(out, rows[row].want) == 0, "%zu: %s", row, out);
        } else {
            ASSERT_ROW(rc == -EPERM, "%zu: %d, chose %s", row, rc, out);
            ASSERT_ROW(strstr(err, rows[row].why) != NULL, "%zu: %s", row, err);
        }
    }
    return 0;
}

TEST_IMPL(ovpn_ncp_allows_none)
{
    static const struct {
        const char *data_ciphers, *cipher, *fallback;
        int want;
    } rows[] = {
        {"", "", "", 0},
        {"", "AES-128-CBC", "", 0},
        {"AES-256-GCM:AES-128-CBC", "AES-128-CBC", "AES-256-CBC", 0},
        {"", "none", "", 1},
        {"", "", "none", 1},
        {"AES-256-GCM:none", "", "", 1},
        {"NONE", "", "", 1},
        {"nonesuch", "", "", 0},
    };
    for (size_t row = 0; row < ARRAY_SIZE(rows); row++) {
        struct ovpn_config cfg;
        ncp_config(&cfg, rows[row].data_ciphers, rows[row].cipher, rows[row].fallback);
        ASSERT_ROW(ovpn_ncp_allows_none(&cfg) == rows[row].want, "%zu", row);
    }
    return 0;
}

TEST_IMPL(ovpn_ncp_options_cipher)
{
    char out[64];
    ovpn_ncp_options_cipher("V4,dev-type tun,link-mtu 1557,tun-mtu 1500,proto UDPv4,comp-lzo,cipher AES-128-CBC,"
                            "auth SHA1,keysize 128,key-method 2,tls-server", out, sizeof(out));
    ASSERT_STR_EQ(out, "AES-128-CBC");
    ovpn_ncp_options_cipher("V4,dev-type tun,link-mtu 1549,tun-mtu 1500,proto TCPv4_SERVER,keydir 0,cipher "
                            "AES-256-GCM,auth [null-digest],keysize 256,tls-auth,key-method 2,tls-server", out, sizeof(out));
    ASSERT_STR_EQ(out, "AES-256-GCM");
    ovpn_ncp_options_cipher("V4,dev-type tun,link-mtu 1557,tun-mtu 1500,auth SHA1", out, sizeof(out));
    ASSERT_STR_EQ(out, "");
    ovpn_ncp_options_cipher("", out, sizeof(out));
    ASSERT_STR_EQ(out, "");
    ovpn_ncp_options_cipher("cipher none", out, sizeof(out));
    ASSERT_STR_EQ(out, "none");
    ovpn_ncp_options_cipher("V4,ciphers AES-256-GCM,cipher", out, sizeof(out));
    ASSERT_STR_EQ(out, "");
    ovpn_ncp_options_cipher("V4,cipher AES-256-GCM", out, 8); /* too long for out: left out */
    ASSERT_STR_EQ(out, "");
    return 0;
}
