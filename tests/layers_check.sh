#!/bin/bash
# Fails when an include points up the layers (docs/layers.md): a file may include its own folder's
# headers and those of the layers below it, never a layer above or beside it.
#   base/ -> tunnel/, stack/ -> route/ -> socks/, http/, port/ -> app/
# tunnel/ and stack/ are one level apart: the stack is given a tunnel to drive, the tunnel never
# sees the stack. lwIP's headers belong to stack/ alone. tests/ and bench/ sit outside the layers and may include anything.
set -u
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root" || exit 2

level() {
    case $1 in
        base) echo 0 ;;
        tunnel) echo 1 ;;
        stack) echo 2 ;;
        route) echo 3 ;;
        socks | http | port) echo 4 ;;
        app) echo 5 ;;
        *) echo -1 ;;
    esac
}

bad=0 checked=0
for dir in base tunnel stack route socks http port app; do
    [ -d "$dir" ] || continue
    mine=$(level "$dir")
    while IFS= read -r hit; do
        file=${hit%%:*}
        target=$(sed -n 's/.*#include "\([a-z_]*\)\/.*/\1/p' <<<"$hit")
        [ -n "$target" ] || continue
        checked=$((checked + 1))
        [ "$target" = "$dir" ] && continue
        # lwIP's own headers: stack/ is the only layer that sees them.
        if [ "$target" = lwip ] || [ "$target" = netif ] || [ "$target" = arch ]; then
            if [ "$dir" != stack ]; then
                echo "layers: $file includes ${hit#*#include } (only stack/ includes lwIP)"
                bad=$((bad + 1))
            fi
            continue
        fi
        theirs=$(level "$target")
        if [ "$theirs" -lt 0 ] || [ "$theirs" -ge "$mine" ]; then
            echo "layers: $file includes ${hit#*#include } ($target/ is not below $dir/)"
            bad=$((bad + 1))
        fi
    done < <(grep -rn --include='*.c' --include='*.h' '^[[:space:]]*#[[:space:]]*include "' "$dir")
done
# The check must have seen the tree: a wrong root would pass with nothing checked.
if [ "$checked" -lt 50 ]; then
    echo "layers: only $checked project includes found under $root; is it the repository?"
    exit 2
fi
if [ "$bad" -gt 0 ]; then
    echo "layers: $bad includes point up or sideways"
    exit 1
fi
echo "layers: $checked project includes, all pointing down"
