/* A hostile OpenVPN server for the lab, made from the real one: preloaded into Debian's openvpn
 * server (LD_PRELOAD), this replaces the value of every "cipher" option in the PUSH_REPLY the
 * server writes into TLS with $V2S_PUSH_CIPHER. The server still runs the data channel with the
 * cipher it negotiated; the client sees only the forged choice, as it would from a server that
 * tried to pick a cipher outside the client's list.
 *
 * OpenVPN hands each control message to OpenSSL with one BIO_write() on its SSL BIO, from the
 * openvpn binary into libcrypto, so the call can be wrapped here. Nothing else is touched.
 *   cc -shared -fPIC -o push_rewrite.so push_rewrite.c -ldl */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bio_st BIO;
int BIO_write(BIO *b, const void *data, int dlen);

enum { REWRITE_MAX = 4096 };

int BIO_write(BIO *b, const void *data, int dlen)
{
    static int (*real)(BIO *, const void *, int);
    if (!real)
        real = (int (*)(BIO *, const void *, int))dlsym(RTLD_NEXT, "BIO_write");
    const char *want = getenv("V2S_PUSH_CIPHER");
    static const char head[] = "PUSH_REPLY,";
    if (!want || dlen <= (int)sizeof(head) || dlen >= REWRITE_MAX / 2 || memcmp(data, head, sizeof(head) - 1) != 0)
        return real(b, data, dlen);
    /* The message is NUL-terminated text: option,option,... Rebuild it option by option. */
    const char *in = data, *end = in + dlen;
    char out[REWRITE_MAX];
    size_t n = 0;
    while (in < end && *in) {
        size_t l = strcspn(in, ",");
        if (l > 7 && strncmp(in, "cipher ", 7) == 0)
            n += (size_t)snprintf(out + n, sizeof(out) - n, "cipher %s", want);
        else {
            memcpy(out + n, in, l);
            n += l;
        }
        in += l;
        if (in < end && *in == ',')
            out[n++] = *in++;
        if (n >= sizeof(out) - 128)
            return real(b, data, dlen);
    }
    out[n++] = '\0';
    int rc = real(b, out, (int)n);
    return rc == (int)n ? dlen : rc;
}
