#include "app/version.h"

#include <uv.h>

#include "stack/stack.h"
#include "tunnel/openvpn/tls.h"

void version_print(FILE *f, const char *release)
{
    fprintf(f, "vpn2socks %s\n", release);
    fprintf(f, "library versions: %s, libuv %s, lwIP %s\n", ovpn_tls_library_version(), uv_version_string(),
            stack_lwip_version());
}
