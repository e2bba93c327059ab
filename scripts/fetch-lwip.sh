#!/bin/sh
# Fetches lwIP's upstream source into a folder (default: third_party/lwip, never committed).
#
# On Debian and Ubuntu it uses `apt-get source lwip` through a temporary deb-src list derived from
# the machine's own apt sources, with its own lists folder, so the system's apt configuration and
# state stay exactly as they were. Elsewhere, point the build at an lwIP 2.1.3 tree instead (the
# one version stack/lwip_pin.h accepts):
#   cmake -DLWIP_SOURCE_DIR=/path/to/lwip ...
set -eu

dest=${1:-third_party/lwip}
if [ -f "$dest/src/Filelists.cmake" ]; then
    echo "lwIP already present in $dest"
    exit 0
fi
command -v apt-get >/dev/null 2>&1 || {
    echo "fetch-lwip: no apt-get here; download lwIP 2.1.3 and pass -DLWIP_SOURCE_DIR=<tree>" >&2
    exit 1
}
command -v dpkg-source >/dev/null 2>&1 || {
    echo "fetch-lwip: dpkg-source missing; install dpkg-dev first" >&2
    exit 1
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/parts" "$work/src"

# Turn every binary source the machine uses into a source-package entry. Both the one-line format
# (sources.list) and deb822 (*.sources) are read; only Debian and Ubuntu archives are kept, since
# third-party repositories rarely publish sources.
{
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        sed -n 's/^[[:space:]]*deb[[:space:]]\+/deb-src /p' "$f"
    done
} | grep -Ei 'debian|ubuntu' > "$work/sources.list" || true
for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    grep -qEi 'debian|ubuntu' "$f" || continue
    sed 's/^Types:.*/Types: deb-src/' "$f" > "$work/parts/$(basename "$f")"
done

aptopts="-o Dir::Etc::sourcelist=$work/sources.list -o Dir::Etc::sourceparts=$work/parts \
-o Dir::State::Lists=$work/lists -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= \
-o APT::Sandbox::User=root"
# shellcheck disable=SC2086
apt-get $aptopts -qq update
# shellcheck disable=SC2086
(cd "$work/src" && apt-get $aptopts -qq --only-source source lwip)

tree=$(find "$work/src" -mindepth 1 -maxdepth 1 -type d -name 'lwip-*' | head -n 1)
[ -n "$tree" ] && [ -f "$tree/src/Filelists.cmake" ] || {
    echo "fetch-lwip: apt-get source lwip gave no usable tree" >&2
    exit 1
}
mkdir -p "$(dirname "$dest")"
rm -rf "$dest"
mv "$tree" "$dest"
echo "lwIP source in $dest"
