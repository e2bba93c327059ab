#!/bin/bash
# Fetches lwIP if needed and builds vpn2socks.
#   scripts/build.sh [BUILD_DIR] [extra cmake arguments...]     (default BUILD_DIR: build)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-build}
shift || true
cd "$top"
./scripts/fetch-lwip.sh third_party/lwip
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVPN2SOCKS_WERROR=ON "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"
