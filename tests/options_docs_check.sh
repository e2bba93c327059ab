#!/bin/bash
# Fails when the long options the parser takes (app/options.c's table), those --help lists and
# those the man page describes differ: an option added, renamed or dropped in one of them must be
# in all three. The man page is read from its option entries (.TP, then the option's line).
#   options_docs_check.sh VPN2SOCKS_BINARY SOURCE_ROOT
set -u
bin=$1
root=$2
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT

grep -oE '^ *\{"[a-z-]+", (required|no)_argument' "$root/app/options.c" | grep -oE '"[a-z-]+"' | tr -d '"' |
    sort -u >"$tmp/parser"
# --help: the option column, "  -D, --socks ..." or "  --route CIDR ...".
"$bin" --help | grep -oE '^  (-[a-zA-Z], )?--[a-z-]+' | grep -oE -- '--[a-z-]+' | cut -c3- | sort -u >"$tmp/help"
# The man page: the line after each .TP names the option (\-\- for --).
awk 'prev == ".TP" { print } { prev = $0 }' "$root/docs/vpn2socks.1" | sed 's/\\-/-/g' |
    grep -oE -- '--[a-z-]+' | cut -c3- | sort -u >"$tmp/man"

if [ ! -s "$tmp/parser" ]; then
    echo "no long options found in $root/app/options.c" >&2
    exit 1
fi
status=0
for doc in help man; do
    missing=$(comm -23 "$tmp/parser" "$tmp/$doc" | tr '\n' ' ')
    extra=$(comm -13 "$tmp/parser" "$tmp/$doc" | tr '\n' ' ')
    if [ -n "$missing" ]; then
        echo "$doc: options the parser takes but not described: $missing" >&2
        status=1
    fi
    if [ -n "$extra" ]; then
        echo "$doc: options described that the parser does not take: $extra" >&2
        status=1
    fi
done
[ "$status" = 0 ] && echo "$(wc -l <"$tmp/parser") long options, in --help and the man page alike"
exit "$status"
