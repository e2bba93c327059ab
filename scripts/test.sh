#!/bin/bash
# The whole test suite: installs what is missing, builds, then runs
#   - under AddressSanitizer and UndefinedBehaviorSanitizer: the unit tests, the fuzz targets over
#     their seed corpora, and the short lab tests labelled lab_sanitize (any sanitizer report from
#     vpn2socks fails them: tests/lab/sanitized.sh);
#   - each libFuzzer target for a fixed number of runs (clang; tests/fuzz/run.sh);
#   - the unit tests, the process tests (the built binary on 127.0.0.1, tests/proc) and the lab
#     tests (real ocserv/openconnect/openvpn in network namespaces; those need root and skip
#     without it).
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
echo "== unit tests and fuzz corpora under ASan+UBSan"
ctest --test-dir build-asan -L 'unit|replay' --output-on-failure || status=1
echo "== short lab tests with the ASan+UBSan build of vpn2socks"
ctest --test-dir build-asan -L lab_sanitize --output-on-failure || status=1

echo "== fuzz targets (libFuzzer), a fixed number of runs each"
if command -v clang >/dev/null 2>&1; then
    if CC=clang cmake -S . -B build-fuzz -DVPN2SOCKS_FUZZ=ON -DVPN2SOCKS_WERROR=ON >/dev/null &&
        cmake --build build-fuzz -j"$(nproc)" --target fuzzers; then
        ctest --test-dir build-fuzz -L fuzz -j"$(nproc)" --output-on-failure || status=1
    else
        echo "test: the fuzz targets did not build" >&2
        status=1
    fi
else
    echo "test: no clang: the libFuzzer runs are skipped (scripts/install-deps.sh installs it)" >&2
fi
echo "== all tests (unit, proc and lab)"
ctest --test-dir build --output-on-failure || status=1
exit $status
