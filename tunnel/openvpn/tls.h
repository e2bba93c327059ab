/* The control channel's TLS session: OpenSSL over memory BIOs, the server certificate verified as
 * the config asks (ca and/or peer-fingerprint, remote-cert-tls server, verify-x509-name,
 * tls-version-min, tls-cipher). */
#ifndef VPN2SOCKS_OPENVPN_TLS_H
#define VPN2SOCKS_OPENVPN_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ovpn_config;
struct ovpn_tls_ctx;
struct ovpn_tls;

/* The per-config part (certificates, keys, settings), shared by every session and key.
 * 0, -EKEYEXPIRED (our certificate is outside its validity period) or -EINVAL with a one-line
 * reason in err (unreadable certificate, key that does not match, unknown tls-cipher, neither ca
 * nor peer-fingerprint...). Logs a warning when nothing checks that the server is the server
 * (none of remote-cert-tls server, verify-x509-name, peer-fingerprint). */
int ovpn_tls_ctx_new(struct ovpn_tls_ctx **out, const struct ovpn_config *cfg, char *err, size_t errcap);
void ovpn_tls_ctx_free(struct ovpn_tls_ctx *ctx);

int ovpn_tls_new(struct ovpn_tls **out, struct ovpn_tls_ctx *ctx);
void ovpn_tls_free(struct ovpn_tls *t);

/* Bytes from the peer (CONTROL_V1 payloads, in order). 0 or -ENOMEM. */
int ovpn_tls_feed(struct ovpn_tls *t, const uint8_t *data, size_t len);
/* Advances the handshake: 1 done, 0 waiting for the peer, -EPROTO / -EACCES on failure (EACCES =
 * the server's certificate was refused, and stays refused), with the reason in ovpn_tls_error(). */
int ovpn_tls_handshake(struct ovpn_tls *t);
/* Plaintext from the peer: bytes read, 0 when none is ready, negative on failure. */
ssize_t ovpn_tls_read(struct ovpn_tls *t, uint8_t *buf, size_t cap);
/* Plaintext to the peer (as one TLS record where it fits). 0 or negative. */
int ovpn_tls_write(struct ovpn_tls *t, const uint8_t *data, size_t len);
/* TLS records waiting to go to the peer: up to cap bytes of them, or 0. */
size_t ovpn_tls_take_output(struct ovpn_tls *t, uint8_t *buf, size_t cap);
size_t ovpn_tls_pending_output(struct ovpn_tls *t);
/* The TLS exporter "EXPORTER-OpenVPN-datakeys" (256 bytes). 0 or -EIO. */
int ovpn_tls_export_keys(struct ovpn_tls *t, uint8_t *out, size_t len);
/* Why the last call failed. */
const char *ovpn_tls_error(const struct ovpn_tls *t);
/* "TLSv1.3, cipher TLS_AES_256_GCM_SHA384, peer CN=server" for the log. */
void ovpn_tls_describe(const struct ovpn_tls *t, char *buf, size_t cap);
/* The OpenSSL the process runs with ("OpenSSL 3.0.13 30 Jan 2024"), asked of the library at run
 * time rather than taken from the headers built against: --version prints it, and operators
 * check it against security advisories, so it must be the one actually loaded. */
const char *ovpn_tls_library_version(void);

#endif
