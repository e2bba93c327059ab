/* Micro-benchmark of the OpenVPN data channel (tunnel/openvpn/data.c): encrypts and decrypts
 * 1400-byte payloads with each cipher and prints the CPU time per packet. Single thread, no I/O;
 * the numbers are what one packet costs in user space, the figure the end-to-end bench's CPU
 * per GiB is made of.
 *
 *   databench [packets per cipher (default 200000)] [payload bytes (default 1400)]
 *
 * Encryption and decryption are timed separately over batches of packets (encrypt a batch with
 * the client's key, decrypt it with the server's view of the same key block), so that both see
 * cold-ish buffers as a real flow would, and the replay window accepts every packet. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tunnel/openvpn/data.h"
#include "tunnel/openvpn/proto.h"

enum { DATABENCH_BATCH = 256, DATABENCH_SLOT = 2048 };

struct databench_case {
    const char *cipher;
    const char *auth;
};

static const struct databench_case databench_cases[] = {
    {"AES-128-GCM", NULL},
    {"AES-256-GCM", NULL},
    {"CHACHA20-POLY1305", NULL},
    {"AES-128-CBC", "SHA1"},
    {"AES-256-CBC", "SHA256"},
};

static double databench_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* The server's view of a key block: it sends with the client's receive slots. */
static void databench_swap(const uint8_t *block, uint8_t *server)
{
    memcpy(server, block + 2 * OVPN_KEY_SLOT_LEN, 2 * OVPN_KEY_SLOT_LEN);
    memcpy(server + 2 * OVPN_KEY_SLOT_LEN, block, 2 * OVPN_KEY_SLOT_LEN);
}

static int databench_run(const struct databench_case *bc, size_t packets, size_t plen)
{
    uint8_t block[OVPN_KEY_BLOCK_LEN], server_block[OVPN_KEY_BLOCK_LEN];
    struct ovpn_data_key *client = NULL, *server = NULL;
    uint8_t *payload = malloc(plen), *out = malloc(DATABENCH_SLOT);
    uint8_t *wire = malloc((size_t)DATABENCH_BATCH * DATABENCH_SLOT);
    int wire_len[DATABENCH_BATCH];
    double enc_ns = 0, dec_ns = 0;
    int rc = 1;

    for (size_t i = 0; i < sizeof(block); i++)
        block[i] = (uint8_t)(i * 7 + 3);
    databench_swap(block, server_block);
    for (size_t i = 0; i < plen; i++)
        payload[i] = (uint8_t)i;
    struct ovpn_data_params p = {.cipher = bc->cipher, .auth = bc->auth, .key_id = 1, .data_v2 = 1,
                                 .peer_id = 5, .key_block = block};
    struct ovpn_data_params ps = p;
    ps.key_block = server_block;
    if (payload == NULL || out == NULL || wire == NULL || ovpn_data_key_new(&client, &p) != 0 ||
        ovpn_data_key_new(&server, &ps) != 0) {
        fprintf(stderr, "databench: %s: setup failed\n", bc->cipher);
        goto out;
    }

    size_t done = 0;
    while (done < packets) {
        size_t n = packets - done < DATABENCH_BATCH ? packets - done : DATABENCH_BATCH;
        double t0 = databench_cpu_ns();
        for (size_t i = 0; i < n; i++) {
            wire_len[i] = ovpn_data_encrypt(client, payload, plen, wire + i * DATABENCH_SLOT, DATABENCH_SLOT);
            if (wire_len[i] < 0) {
                fprintf(stderr, "databench: %s: encrypt failed (%d)\n", bc->cipher, wire_len[i]);
                goto out;
            }
        }
        double t1 = databench_cpu_ns();
        for (size_t i = 0; i < n; i++) {
            int m = ovpn_data_decrypt(server, wire + i * DATABENCH_SLOT, (size_t)wire_len[i], out, DATABENCH_SLOT);
            if (m != (int)plen) {
                fprintf(stderr, "databench: %s: decrypt failed (%d)\n", bc->cipher, m);
                goto out;
            }
        }
        double t2 = databench_cpu_ns();
        enc_ns += t1 - t0;
        dec_ns += t2 - t1;
        done += n;
    }
    if (memcmp(out, payload, plen) != 0) {
        fprintf(stderr, "databench: %s: payload mismatch\n", bc->cipher);
        goto out;
    }
    printf("%-18s %-7s %9.0f %9.0f %9.0f\n", bc->cipher, bc->auth ? bc->auth : "-",
           enc_ns / (double)packets, dec_ns / (double)packets, (enc_ns + dec_ns) / (double)packets);
    rc = 0;
out:
    ovpn_data_key_free(client);
    ovpn_data_key_free(server);
    free(payload);
    free(out);
    free(wire);
    return rc;
}

int main(int argc, char **argv)
{
    size_t packets = argc > 1 ? strtoul(argv[1], NULL, 10) : 200000;
    size_t plen = argc > 2 ? strtoul(argv[2], NULL, 10) : 1400;
    const char *only = getenv("DATABENCH_ONLY");
    int rc = 0;

    if (packets == 0 || plen == 0 || plen > 1500) {
        fprintf(stderr, "usage: databench [packets] [payload bytes, 1..1500]\n");
        return 2;
    }
    printf("%zu packets of %zu bytes, CPU ns per packet\n", packets, plen);
    printf("%-18s %-7s %9s %9s %9s\n", "cipher", "auth", "encrypt", "decrypt", "both");
    for (size_t i = 0; i < sizeof(databench_cases) / sizeof(databench_cases[0]); i++) {
        if (only != NULL && strstr(databench_cases[i].cipher, only) == NULL)
            continue;
        rc |= databench_run(&databench_cases[i], packets, plen);
    }
    return rc;
}
