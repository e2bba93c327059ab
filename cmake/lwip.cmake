# Builds lwIP's core (IPv4, IPv6, TCP, UDP, raw) from an upstream source tree with our own
# stack/lwipopts.h. The tree is never committed: scripts/fetch-lwip.sh puts one in
# third_party/lwip, or -DLWIP_SOURCE_DIR=<tree> names an lwIP 2.1.3 tree (stack/lwip_pin.h
# refuses any other version: stack/ uses lwIP's TCP internals).
set(LWIP_SOURCE_DIR "${PROJECT_SOURCE_DIR}/third_party/lwip" CACHE PATH "lwIP 2.1.3 source tree")

if(NOT EXISTS "${LWIP_SOURCE_DIR}/src/Filelists.cmake")
  message(FATAL_ERROR
    "lwIP source not found in ${LWIP_SOURCE_DIR}.\n"
    "Fetch it with:   ./scripts/fetch-lwip.sh            (Debian/Ubuntu: apt-get source lwip)\n"
    "or point at an lwIP 2.1.3 tree:   cmake -DLWIP_SOURCE_DIR=/path/to/lwip ...")
endif()

set(LWIP_DIR "${LWIP_SOURCE_DIR}")
include("${LWIP_SOURCE_DIR}/src/Filelists.cmake")

add_library(lwip STATIC ${lwipcore_SRCS} ${lwipcore4_SRCS} ${lwipcore6_SRCS})
# lwIP's calls to tcp_output() go to stack_tcp_output() (stack/tcp_output.c), which calls lwIP's
# own without the walk of the whole unacknowledged queue that it starts with.
set(lwip_calls_tcp_output ${lwipcore_SRCS} ${lwipcore4_SRCS} ${lwipcore6_SRCS})
list(FILTER lwip_calls_tcp_output EXCLUDE REGEX "/tcp_out\\.c$")
set_property(SOURCE ${lwip_calls_tcp_output}
  APPEND PROPERTY COMPILE_DEFINITIONS tcp_output=stack_tcp_output)
target_include_directories(lwip SYSTEM PUBLIC
  "${LWIP_SOURCE_DIR}/src/include"
  "${PROJECT_SOURCE_DIR}/stack")
# lwIP's own code is not ours to lint: our warning flags do not apply to it.
target_compile_options(lwip PRIVATE -w)
# lwIP assembles TCP timestamps with (u8 << 24) on an int, undefined when the top bit is set
# (tcp_in.c, tcp_parseopt); harmless with the compilers we use, but a sanitizing build would stop
# on the first peer whose timestamp clock passed 2^31. The rest of UBSan stays on for lwIP.
if(VPN2SOCKS_SANITIZE)
  target_compile_options(lwip PRIVATE -fno-sanitize=shift)
endif()
set_target_properties(lwip PROPERTIES C_STANDARD 99 POSITION_INDEPENDENT_CODE ON)
