#!/bin/bash
# Fails when a --conf file the documentation shows does not parse: examples/vpn2socks.conf and
# examples/container/vpn2socks.conf, and every fenced block of README.md and examples/**/*.md that
# holds a `config = ` line (the README's, the walk-throughs' "The same as a config file") or a
# here-document of one (examples/systemd/README.md). A user copies these as they are, so an option
# renamed or a value no longer taken must show up here. Commented option lines (`; name = value`)
# are tried too, as the file invites uncommenting them. The .ovpn each one names does not exist
# here, so each run must get past the file to the .ovpn and stop there, with no FILE:LINE error.
#   examples_conf_check.sh VPN2SOCKS_BINARY SOURCE_ROOT
set -u
bin=$1
root=$2
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT

cp "$root/examples/vpn2socks.conf" "$tmp/examples-vpn2socks.conf"
cp "$root/examples/container/vpn2socks.conf" "$tmp/examples-container-vpn2socks.conf"
for md in "$root/README.md" "$root"/examples/*.md "$root"/examples/*/*.md; do
    base=$(echo "${md#"$root"/}" | tr '/' '-')
    awk -v out="$tmp/$base" '
        /^```/ {
            if (inblock) {
                if (hasconf) {
                    f = out "." ++n ".conf"
                    printf "%s", text > f
                    close(f)
                }
                inblock = 0
            } else {
                inblock = 1; text = ""; hasconf = 0; here = 0; ended = 0
            }
            next
        }
        !inblock || ended { next }
        here && /^CONF$/ { here = 0; ended = 1; next }
        /<<.?CONF.?$/ { here = 1; text = ""; next }
        { text = text $0 "\n" }
        /^config *= / { hasconf = 1 }
    ' "$md"
done

status=0
count=0
for f in "$tmp"/*.conf; do
    count=$((count + 1))
    name=${f#"$tmp"/}
    sed -E -e 's/^; ([a-z-]+ *=)/\1/' -e "s|^config *=.*|config = $tmp/missing.ovpn|" "$f" >"$f.run"
    chmod 600 "$f.run"
    timeout 10 "$bin" --conf "$f.run" >"$f.out" 2>&1
    rc=$?
    if [ "$rc" != 1 ] || grep -q "$f.run:" "$f.out" || ! grep -q 'missing\.ovpn' "$f.out"; then
        echo "$name (exit $rc) did not parse up to its .ovpn:" >&2
        sed "s|$f.run|$name|" "$f.out" >&2
        status=1
    fi
done
if [ "$count" -lt 7 ]; then
    echo "only $count config files found in the documentation; the extraction is broken" >&2
    status=1
fi
[ "$status" = 0 ] && echo "$count config files of the documentation parse"
exit "$status"
