/* What --version prints: vpn2socks's own version and the libraries it runs with, which is what an
 * operator checks against security advisories (openvpn --version does the same for OpenSSL). */
#ifndef VPN2SOCKS_APP_VERSION_H
#define VPN2SOCKS_APP_VERSION_H

#include <stdio.h>

/* Two lines on f: "vpn2socks RELEASE" and "library versions: OpenSSL ..., libuv ..., lwIP ...".
 * OpenSSL and libuv are shared libraries, so their versions are asked of them at run time: an
 * upgraded libssl3 shows here without a rebuild. lwIP is compiled in. */
void version_print(FILE *f, const char *release);

#endif
