/* libFuzzer target for route/idna.c, which reads a proxy client's name. The input up to its first
 * NUL is the name. Checked: the ASCII form fits and is ASCII; a name that is ASCII (no byte past
 * 0x7F) comes out unchanged; converting the ASCII form again changes nothing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "route/idna.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *name = malloc(size + 1);
    if (name == NULL)
        return 0;
    memcpy(name, data, size);
    name[size] = '\0';
    size_t cap = size > 0 ? data[0] : 0; /* small buffers too */
    char *out = malloc(cap + 1);
    char again[256];
    if (out == NULL)
        abort();
    int ascii_in = 1;
    for (const char *p = name; *p; p++)
        ascii_in &= (unsigned char)*p < 0x80;
    int rc = idna_to_ascii(name, out, cap);
    if (rc == 0) {
        size_t len = strnlen(out, cap);
        if (len >= cap)
            abort();
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)out[i] >= 0x80)
                abort();
        if (ascii_in && strcmp(out, name) != 0)
            abort();
        if (idna_to_ascii(out, again, sizeof(again)) != 0 || strcmp(again, out) != 0)
            abort();
    } else if (ascii_in && strlen(name) + 1 <= cap) {
        abort(); /* ASCII that fits is never refused */
    }
    free(out);
    free(name);
    return 0;
}
