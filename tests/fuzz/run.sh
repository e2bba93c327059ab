#!/bin/bash
# Runs one libFuzzer target from its seed corpus; how ctest runs the fuzz.* tests (a fixed number
# of runs) and how to fuzz for minutes by hand:
#   tests/fuzz/run.sh BIN CORPUS_DIR [libFuzzer flags...]
#   tests/fuzz/run.sh build-fuzz/tests/fuzz_ovpn_control tests/fuzz/corpus/fuzz_ovpn_control -max_total_time=300
# The committed corpus is only read: new inputs go to a temporary folder, removed afterwards, or
# to FUZZ_KEEP=DIR when set (kept, to look at or to merge into the corpus with -merge=1).
# A crash or a failed check leaves its input in FUZZ_ARTIFACTS (default: fuzz-artifacts/ beside
# BIN) and fails the run (exit 1); replay it with BIN FILE, or with any build's BIN_replay FILE.
# The seed is 1 unless FUZZ_SEED says otherwise, so that a CI run repeats.
set -euo pipefail
if [ $# -lt 2 ]; then
    sed -n '2,10p' "$0" >&2
    exit 2
fi
bin=$1 corpus=$2
shift 2
[ -x "$bin" ] || { echo "fuzz: no fuzz target at $bin (build with -DVPN2SOCKS_FUZZ=ON and CC=clang)" >&2; exit 1; }
[ -d "$corpus" ] || { echo "fuzz: no corpus folder $corpus" >&2; exit 1; }
artifacts=${FUZZ_ARTIFACTS:-$(cd "$(dirname "$bin")" && pwd)/fuzz-artifacts}
mkdir -p "$artifacts"
if [ -n "${FUZZ_KEEP:-}" ]; then
    work=$FUZZ_KEEP
    mkdir -p "$work"
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/v2s-fuzz.XXXXXX")
    trap 'rm -rf "$work"' EXIT
fi
name=$(basename "$bin")
status=0
"$bin" -seed="${FUZZ_SEED:-1}" -timeout=10 -print_final_stats=1 -artifact_prefix="$artifacts/$name-" \
    "$@" "$work" "$corpus" || status=$?
if [ "$status" -ne 0 ]; then
    echo "fuzz: $name failed (exit $status); its input is in $artifacts/ (ls -t $artifacts/$name-*)" >&2
    exit 1
fi
