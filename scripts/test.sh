#!/bin/bash
# The whole test suite: installs what is missing, builds, runs the unit tests, the process tests
# (the built binary on 127.0.0.1, tests/proc) and the lab tests (real ocserv/openconnect in network
# namespaces; those need root and skip without it), then the unit tests again under
# AddressSanitizer and UndefinedBehaviorSanitizer.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

if [ "$(id -u)" -eq 0 ]; then
    ./scripts/install-deps.sh
else
    ./scripts/install-deps.sh --check || echo "test: not root: lab tests will skip" >&2
fi

./scripts/build.sh build
./scripts/build.sh build-asan -DVPN2SOCKS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug

status=0
echo "== unit tests under ASan+UBSan"
ctest --test-dir build-asan -L unit --output-on-failure || status=1
echo "== all tests (unit, proc and lab)"
ctest --test-dir build --output-on-failure || status=1
exit $status
