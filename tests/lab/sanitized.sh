#!/bin/bash
# Runs one lab test against a sanitizer build of vpn2socks and fails it on any report:
#   VPN2SOCKS_BIN=build-asan/vpn2socks tests/lab/sanitized.sh tests/lab/loss_test.sh
# (ctest does this for every lab test of a -DVPN2SOCKS_SANITIZE=ON build; scripts/test.sh runs
# the short ones labelled lab_sanitize.) vpn2socks stops at the first AddressSanitizer or
# UndefinedBehaviorSanitizer report (halt_on_error, abort_on_error), and LeakSanitizer checks
# every exit that runs the exit handlers (status 0 and 3 included, and the lab's SIGTERM at
# teardown). A report fails the test even when the test's own checks passed, and is printed:
#   - ASan and LSan write theirs to files in a folder that nobody (the lab's vpn2socks user) can
#     write;
#   - UBSan (gcc's) takes no log_path and writes to stderr, which the lab keeps in its run dir
#     (out/*/v2s.log and the like): the run dir is made here and searched afterwards.
set -u
script=${1:?usage: sanitized.sh LAB_TEST_SCRIPT [args]}
shift
bin=${VPN2SOCKS_BIN:-}
if [ -z "$bin" ] || ! grep -qa __asan_init "$bin"; then
    echo "sanitized: VPN2SOCKS_BIN (${bin:-unset}) is not a build with -DVPN2SOCKS_SANITIZE=ON" >&2
    exit 1
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/v2s-sanitized.XXXXXX") || exit 1
chmod 755 "$work"
mkdir -m 1777 "$work/reports"
keep=${LAB_KEEP:-0}
[ "$keep" = 1 ] || trap 'rm -rf "$work"' EXIT
# Keep what was given, with ours last so that they win.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}halt_on_error=1:abort_on_error=1:detect_leaks=1:log_path=$work/reports/asan"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}halt_on_error=1:abort_on_error=1:print_stacktrace=1"
export LAB_TMP=$work LAB_KEEP=1

bash "$script" "$@"
status=$?

found=0
for f in "$work"/reports/*; do
    [ -e "$f" ] || continue
    found=$((found + 1))
    echo "==== sanitizer report $(basename "$f"):" >&2
    head -n 60 "$f" >&2
done
pattern=': runtime error: |ERROR: (AddressSanitizer|LeakSanitizer)|SUMMARY: UndefinedBehaviorSanitizer'
while IFS= read -r f; do
    found=$((found + 1))
    echo "==== sanitizer report in $f:" >&2
    grep -E -A 12 "$pattern" "$f" | head -n 60 >&2
done < <(find "$work" -path "$work/reports" -prune -o -type f -name '*.log' -print0 | xargs -0 -r grep -lE "$pattern")
if [ "$found" -gt 0 ]; then
    echo "sanitized: FAIL: $found sanitizer report(s) from vpn2socks (test status $status)" >&2
    exit 1
fi
[ "$status" -eq 0 ] && echo "sanitized: no sanitizer reports"
[ "$keep" = 1 ] && echo "sanitized: kept $work"
exit "$status"
