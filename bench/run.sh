#!/bin/bash
# shellcheck disable=SC2317  # helpers are called indirectly
# vpn2socks against the stock OpenVPN 2.6 client (kernel TUN), same lab server, same machine.
#
#   sudo bench/run.sh [--quick] [--runs N] [--size MIB] [--cap S] [--only LIST] [--markdown FILE]
#                     [--perf DIR]
#
#   --quick        256 MiB transfers of at most 8 s (under 5 minutes in all); default 1 GiB
#                  transfers of at most 25 s (under 20 minutes)
#   --runs N       timed runs per figure, the median is reported (3)
#   --size MIB     bytes per bulk transfer
#   --cap S        a transfer stops after S seconds; its rate is then the bytes moved by then
#   --only LIST    comma-separated subset of: bulk,latency,scale,distance
#   --markdown F   also write the table as Markdown to F
#   --perf DIR     record `perf record -g` of vpn2socks during one UDP AES-256-GCM download and one
#                  upload, reports in DIR
#
# Cases (each against Debian's openvpn 2.6 server in the lab's server namespace):
#   1. bulk TCP download and upload through vpn2socks's SOCKS5 (curl --socks5) and through the stock
#      client's tun0 (plain curl), UDP and TCP transport x AES-256-GCM and AES-128-CBC + SHA1;
#      SHA-256 of the bytes checked once per case and direction, by one more transfer after the
#      timed ones, of what the measured rate moves in about $CHECK_S seconds (at most --size)
#   2. client CPU (user + system, /proc/PID/stat) per GiB moved, during the runs of case 1
#   3. latency: connect to the first byte of a small HTTP answer (netbench latency), 1,000 requests
#   4. scale: 10,000 idle connections held open; VmRSS growth per connection, time to open them
#   5. distance: case 1's UDP AES-256-GCM download through bench/relay with 15 ms each way (30 ms
#      round trip); the relay at 0 ms against no relay shows what the relay itself costs
# Needs root (network namespaces, the stock client's TUN). The binaries: $VPN2SOCKS_BIN (else
# build/vpn2socks); netbench and relay from $BENCH_TOOLS_DIR, else the bench/ folder of the
# binary's build tree, else compiled here with cc.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
lab=$repo/tests/lab
# shellcheck source-path=SCRIPTDIR/../tests/lab
source "$lab/lib.sh"
# shellcheck source-path=SCRIPTDIR/../tests/lab
source "$lab/openvpn.sh"
# shellcheck source-path=SCRIPTDIR/../tests/lab
source "$lab/v2s.sh"

QUICK=0 RUNS='' SIZE_MB='' CAP='' ONLY=bulk,latency,scale,distance MARKDOWN='' PERF_DIR=''
LAT_COUNT=1000 SCALE_COUNT=10000 ONE_WAY_MS=15
RELAY_GATHER_US=25   # the relay lets datagrams gather this long after a busy wakeup (batching)
while [ $# -gt 0 ]; do
    case $1 in
    --quick) QUICK=1; shift ;;
    --runs) RUNS=$2; shift 2 ;;
    --size) SIZE_MB=$2; shift 2 ;;
    --cap) CAP=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --markdown) MARKDOWN=$2; shift 2 ;;
    --perf) PERF_DIR=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -u/p' "$0" | sed -n 's/^# \{0,1\}//p'; exit 0 ;;
    *) echo "bench: unknown option $1 (see --help)" >&2; exit 1 ;;
    esac
done
if [ "$QUICK" = 1 ]; then
    SIZE_MB=${SIZE_MB:-256} CAP=${CAP:-8} CHECK_S=3
else
    SIZE_MB=${SIZE_MB:-1024} CAP=${CAP:-25} CHECK_S=8
fi
RUNS=${RUNS:-3}
want() { [[ ",$ONLY," == *",$1,"* ]]; }

lab_require_root
lab_openvpn_require
command -v curl >/dev/null || { echo "bench: needs curl" >&2; exit 1; }
# 10,000 connections: every process started from here inherits the raised limit
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((SCALE_COUNT + 1000)) ]; then
    echo "bench: open files limit $(ulimit -n) is below $((SCALE_COUNT + 1000)); the scale case may fail" >&2
fi

T_START=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
# other lab runs share the CPUs: say so, since the figures then carry their noise
OTHERS=$(ip netns list 2>/dev/null | grep -c '^v2s-' || true)
[ "$OTHERS" -gt 0 ] && echo "bench: warning: $OTHERS network namespaces of other lab runs exist; figures will be noisy" >&2
LAB_BIG_MB=1 lab_setup --no-ocserv
v2s_prepare

# ---------------------------------------------------------------- tools
bench_tools() {
    local d
    for d in "${BENCH_TOOLS_DIR:-}" "$(dirname "$BIN")/bench" "$(dirname "$(readlink -f "${VPN2SOCKS_BIN:-$repo/build/vpn2socks}")")/bench"; do
        if [ -n "$d" ] && [ -x "$d/netbench" ] && [ -x "$d/relay" ]; then
            NETBENCH=$d/netbench RELAY=$d/relay
            return 0
        fi
    done
    lab_log "no built netbench/relay found; compiling them into the run dir"
    NETBENCH=$LAB_RUN_DIR/netbench RELAY=$LAB_RUN_DIR/relay
    cc -O2 -o "$NETBENCH" "$here/netbench.c" -lcrypto && cc -O2 -o "$RELAY" "$here/relay.c" ||
        lab_die "compiling bench/netbench.c or bench/relay.c failed"
}
bench_tools

NB_PORT=8090
URL=http://$LAB_INTERNAL_IP:$NB_PORT
FILE=$LAB_RUN_DIR/bench.bin
SIZE=$((SIZE_MB * 1048576))
lab_log "making a $SIZE_MB MiB file of random bytes"
openssl rand -out "$FILE" "$SIZE" 2>/dev/null || head -c "$SIZE" /dev/urandom >"$FILE"
chmod 644 "$FILE"
FILE_SHA=$(sha256sum <"$FILE" | cut -d' ' -f1)
lab_bg netbench ip netns exec "$LAB_SERVER_NS" "$NETBENCH" serve "$LAB_INTERNAL_IP" "$NB_PORT" "$FILE"
lab_wait_listen "$LAB_SERVER_NS" tcp "$LAB_INTERNAL_IP" "$NB_PORT" || lab_die "netbench serve did not start"

# ---------------------------------------------------------------- helpers
CLK_TCK=$(getconf CLK_TCK)
RAW=$LAB_RUN_DIR/raw.txt
: >"$RAW"
declare -A R     # R[key] = figure

say() { echo "bench: $*" >&2; }
# cpu_ticks PID: user + system time so far, in clock ticks
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
median() { sort -g | awk '{v[NR] = $1} END {if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
fmt() { awk -v v="$1" -v f="${2:-%.1f}" 'BEGIN {if (v == "" || v == "nan") print "-"; else printf f, v}'; }

# The client under test: CLIENT=ours|stock, PID, PROXY_ARGS (curl's SOCKS option for ours)
# start_ours NAME CONFIGDIR: vpn2socks as nobody at the default log level; ready once a request
# crosses the tunnel
start_ours() {
    S=$LAB_RUN_DIR/out/$1
    mkdir -p "$S" && chmod 1777 "$S"
    rm -f "$S/pid" "$S/exit"
    lab_bg "v2s-$1" ip netns exec "$LAB_CLIENT_NS" setpriv --reuid=nobody --regid=nogroup --clear-groups \
        "$WRAP" "$S" --config "$2/config.ovpn" -D "$SOCKS_ADDR:$SOCKS_PORT"
    lab_wait_file_match "$S/pid" '^[0-9]+$' 5 || return 1
    V2S_PID=$(cat "$S/pid")
    CLIENT=ours PID=$V2S_PID PROXY_ARGS=(--socks5 "$SOCKS_ADDR:$SOCKS_PORT")
    wait_ready || { say "vpn2socks did not come up; its log:"; tail -n 20 "$S/v2s.log" >&2; return 1; }
}
start_stock() {
    lab_start_stock_openvpn_client "$1" || { say "stock client did not come up"; tail -n 20 "$LAB_STOCK_LOG" >&2; return 1; }
    CLIENT=stock PID=$LAB_STOCK_PID PROXY_ARGS=()
    wait_ready
}
wait_ready() {
    local i
    for ((i = 0; i < 150; i++)); do
        lab_in_client curl -s -f -m 2 "${PROXY_ARGS[@]}" -o /dev/null "$URL/hello" && return 0
        kill -0 "$PID" 2>/dev/null || return 1
        sleep 0.2
    done
    return 1
}
stop_client() {
    if [ "$CLIENT" = ours ]; then v2s_stop >/dev/null; else lab_stop_stock_openvpn_client; fi
}

# udp_drops NS: datagrams the kernel dropped for want of receive buffer in namespace NS, so far
udp_drops() { ip netns exec "$1" awk '$1 == "Udp:" && $2 ~ /^[0-9]/ {print $6}' /proc/net/snmp; }

# xfer dl|ul BYTES CHECK MAX_S: one transfer of the first BYTES of $FILE, stopped after MAX_S s;
# prints "BYTES_MOVED SECONDS CLIENT_CPU_SECONDS"; with CHECK=1 the SHA-256 of what arrived is
# compared with the file's (1 on a mismatch or a stop before the end)
xfer() {
    local dir=$1 n=$2 check=$3 max=$4 out rc=0 c0 c1 want='' d0 d1 src=$FILE
    c0=$(cpu_ticks "$PID")
    d0="$(udp_drops "$LAB_SERVER_NS") $(udp_drops "$LAB_CLIENT_NS")"
    if [ "$check" = 1 ]; then
        want=$(head -c "$n" "$FILE" | sha256sum | cut -d' ' -f1)
        # curl -T sends a whole file: the checked upload sends a copy of the prefix
        [ "$dir" = ul ] && { src=$LAB_RUN_DIR/check.bin; head -c "$n" "$FILE" >"$src"; c0=$(cpu_ticks "$PID"); }
    fi
    if [ "$dir" = dl ]; then
        if [ "$check" = 1 ]; then
            out=$(lab_in_client curl -sS -f -m "$max" "${PROXY_ARGS[@]}" "$URL/file?bytes=$n" | sha256sum | cut -d' ' -f1)
            [ "$out" = "$want" ] || { say "download of $n bytes: sha256 $out, expected $want"; rc=1; }
            out="$n 0"
        else
            out=$(lab_in_client curl -sS -f -m "$max" "${PROXY_ARGS[@]}" -o /dev/null \
                -w '%{size_download} %{time_total}' "$URL/file?bytes=$n" 2>/dev/null)
        fi
    else
        local q='' body=$LAB_RUN_DIR/out/sink-answer
        [ "$check" = 1 ] && q='?sha256'
        rm -f "$body"
        out=$(lab_in_client curl -sS -f -m "$max" "${PROXY_ARGS[@]}" -H 'Expect:' -T "$src" \
            -o "$body" -w '%{size_upload} %{time_total}' "$URL/sink$q" 2>/dev/null)
        if [ "$check" = 1 ] && [ "$(cat "$body" 2>/dev/null)" != "$n $want" ]; then
            say "upload of $n bytes: the server got '$(cat "$body" 2>/dev/null)', expected '$n $want'"
            rc=1
        fi
    fi
    c1=$(cpu_ticks "$PID")
    d1="$(udp_drops "$LAB_SERVER_NS") $(udp_drops "$LAB_CLIENT_NS")"
    # a transfer cut short by -m still reports the bytes it moved and the time it took
    [ -n "$out" ] || { out="0 0"; rc=1; }
    echo "$out $(awk -v a="$c0" -v b="$c1" -v t="$CLK_TCK" 'BEGIN {print (b - a) / t}')"
    read -r a b <<<"$d0"
    read -r c d <<<"$d1"
    XFER_DROPS="server ns dropped $((c - a)), client ns $((d - b)) UDP datagrams (receive buffer full)"
    return $rc
}

# bulk KEY: $RUNS timed transfers each way, then a checked one; R[KEY,dl|ul,CLIENT] in MiB/s,
# R[KEY,dl|ul,CLIENT,cpu] in CPU seconds per GiB (medians)
bulk() {
    local key=$1 dir i line mibs cpu n
    for dir in dl ul; do
        [ -n "$PERF_DIR" ] && [ "$CLIENT" = ours ] && [ "$key" = udp-gcm ] && perf_one "$dir"
        : >"$LAB_RUN_DIR/runs"
        for ((i = 0; i < RUNS; i++)); do
            line=$(xfer "$dir" "$SIZE" 0 "$CAP")
            read -r bytes secs cpu <<<"$line"
            if [ "${bytes%.*}" -lt 1048576 ] || [ "$(awk -v s="$secs" 'BEGIN {print (s > 0)}')" = 0 ]; then
                say "  $key $dir $CLIENT: transfer failed ($line)"
                echo "bulk $key $dir $CLIENT run $i: failed ($line)" >>"$RAW"
                continue
            fi
            mibs=$(awk -v b="$bytes" -v s="$secs" 'BEGIN {print b / 1048576 / s}')
            cpu=$(awk -v c="$cpu" -v b="$bytes" 'BEGIN {print c / (b / 1073741824)}')
            echo "$mibs $cpu" >>"$LAB_RUN_DIR/runs"
            line="$(fmt "$mibs") MiB/s, $(fmt "$cpu" %.2f) CPU s/GiB, $((${bytes%.*} / 1048576)) MiB in $(fmt "$secs") s; $XFER_DROPS"
            echo "bulk $key $dir $CLIENT run $i: $line" >>"$RAW"
            say "  $key $dir $CLIENT: $line"
        done
        R[$key,$dir,$CLIENT]=$(cut -d' ' -f1 "$LAB_RUN_DIR/runs" | median)
        R[$key,$dir,$CLIENT,cpu]=$(cut -d' ' -f2 "$LAB_RUN_DIR/runs" | median)
        n=$(check_bytes "${R[$key,$dir,$CLIENT]}")
        if xfer "$dir" "$n" 1 $((CHECK_S * 4 + 30)) >/dev/null; then
            R[$key,$dir,check]="${R[$key,$dir,check]:-} $CLIENT ok ($((n / 1048576)) MiB)"
        else
            R[$key,$dir,check]="${R[$key,$dir,check]:-} $CLIENT FAILED ($((n / 1048576)) MiB)"
        fi
    done
}

# check_bytes MIBS: what that rate moves in $CHECK_S seconds, in whole MiB, 16 MiB to $SIZE
check_bytes() {
    awk -v r="$1" -v s="$CHECK_S" -v max="$SIZE" 'BEGIN {
        n = int((r == "nan" ? 0 : r) * s) * 1048576
        if (n < 16777216) n = 16777216
        if (n > max) n = max
        print n }'
}

# perf_one dl|ul: a profile of vpn2socks during one more transfer
perf_one() {
    command -v perf >/dev/null || { say "no perf: --perf ignored"; return 0; }
    mkdir -p "$PERF_DIR"
    local data=$PERF_DIR/perf-$1.data
    perf record -g -o "$data" -p "$PID" >/dev/null 2>&1 &
    local pp=$!
    sleep 0.5
    xfer "$1" "$SIZE" 0 "$CAP" >/dev/null
    kill -INT "$pp"
    wait "$pp" 2>/dev/null
    perf report -i "$data" --no-children --stdio --percent-limit 1 2>/dev/null >"$PERF_DIR/perf-$1.txt"
    perf report -i "$data" --no-children --stdio --sort dso 2>/dev/null | grep -v '^#' | grep . >"$PERF_DIR/perf-$1-dso.txt"
    say "  perf profile of a $1 in $PERF_DIR/perf-$1.txt"
}

# latency: R[latency,CLIENT] = "p50 p99" in ms
latency() {
    local args=() out
    [ "$CLIENT" = ours ] && args=(--socks "$SOCKS_ADDR:$SOCKS_PORT")
    out=$(lab_in_client "$NETBENCH" latency "${args[@]}" "$LAB_INTERNAL_IP" "$NB_PORT" "$LAT_COUNT")
    echo "latency $CLIENT: $out" >>"$RAW"
    say "  latency $CLIENT: $out"
    R[lat50,$CLIENT]=$(awk '{for (i = 1; i < NF; i++) if ($i == "p50") print $(i + 1)}' <<<"$out")
    R[lat99,$CLIENT]=$(awk '{for (i = 1; i < NF; i++) if ($i == "p99") print $(i + 1)}' <<<"$out")
    R[latfail,$CLIENT]=$(awk '{for (i = 1; i < NF; i++) if ($i == "fail") print $(i + 1)}' <<<"$out")
    R[latconn,$CLIENT]=$(awk '{for (i = 1; i < NF; i++) if ($i == "connected-p50") print $(i + 1)}' <<<"$out")
}

# scale: SCALE_COUNT idle connections; R[scale_kib,CLIENT] KiB of the client's VmRSS per connection,
# R[scale_s,CLIENT] seconds to open them all, R[scale_open,CLIENT] how many opened
scale() {
    local args=() fifo=$LAB_RUN_DIR/hold.fifo out=$LAB_RUN_DIR/hold.out rss0 rss1 hp i line srv
    [ "$CLIENT" = ours ] && args=(--socks "$SOCKS_ADDR:$SOCKS_PORT")
    rm -f "$fifo"
    mkfifo "$fifo"
    rss0=$(rss_kib "$PID")
    SCALE_BASE=$(lab_in_server curl -s -m 5 "$URL/stats" | awk '{print $2}')
    lab_in_client "$NETBENCH" hold "${args[@]}" "$LAB_INTERNAL_IP" "$NB_PORT" "$SCALE_COUNT" \
        <"$fifo" >"$out" 2>"$out.err" &
    hp=$!
    exec 7>"$fifo"
    for ((i = 0; i < 3000; i++)); do
        grep -q '^opened' "$out" && break
        kill -0 "$hp" 2>/dev/null || break
        sleep 0.1
    done
    line=$(grep '^opened' "$out")
    sleep 1    # let the last handshakes settle before reading memory
    rss1=$(rss_kib "$PID")
    srv=$(lab_in_server curl -s -m 5 "$URL/stats")
    exec 7>&-
    wait "$hp"
    # the closes must reach the server too: wait until its count is back where it was
    local t0=$SECONDS left
    while :; do
        left=$(lab_in_server curl -s -m 5 "$URL/stats" | awk '{print $2}')
        [ "${left:-0}" -le "$SCALE_BASE" ] || [ $((SECONDS - t0)) -ge 60 ] && break
        sleep 0.5
    done
    echo "scale $CLIENT: $line; server: $srv; VmRSS $rss0 -> $rss1 KiB; all closed at the server" \
        "after $((SECONDS - t0)) s ($((left - SCALE_BASE)) left)" >>"$RAW"
    say "  scale $CLIENT: $line; server: $srv; VmRSS $rss0 -> $rss1 KiB; closed after $((SECONDS - t0)) s"
    read -r _ opened _ failed _ secs _ <<<"$line"
    R[scale_open,$CLIENT]=${opened:-0}
    R[scale_s,$CLIENT]=${secs:-}
    if [ "${opened:-0}" -gt 0 ]; then
        R[scale_kib,$CLIENT]=$(awk -v a="$rss0" -v b="$rss1" -v n="$opened" 'BEGIN {print (b - a) / n}')
    fi
    R[scale_rss,$CLIENT]="$rss0 -> $rss1"
}

# ---------------------------------------------------------------- servers and configs
declare -A CFG
server() { # KEY SERVER_OPTIONS...
    local key=$1
    shift
    lab_start_openvpn_server "$key" "$@"
    lab_openvpn_client_config "$key"
    CFG[$key]=$LAB_OVPN_CLIENT_DIR
}
CASES=(udp-gcm udp-cbc tcp-gcm tcp-cbc)
declare -A CASE_NAME=([udp-gcm]="UDP AES-256-GCM" [udp-cbc]="UDP AES-128-CBC+SHA1"
    [tcp-gcm]="TCP AES-256-GCM" [tcp-cbc]="TCP AES-128-CBC+SHA1")
server udp-gcm --proto udp --ciphers AES-256-GCM
server udp-cbc --proto udp --ciphers AES-128-CBC --auth SHA1
server tcp-gcm --proto tcp --ciphers AES-256-GCM
server tcp-cbc --proto tcp --ciphers AES-128-CBC --auth SHA1

run_client() { # ours|stock NAME CONFIGDIR
    if [ "$1" = ours ]; then start_ours "$2" "$3"; else start_stock "$3"; fi
}

# ---------------------------------------------------------------- 1+2: bulk and CPU
if want bulk; then
    for key in "${CASES[@]}"; do
        for who in ours stock; do
            say "bulk ${CASE_NAME[$key]}, $who: checked transfers, then $RUNS x $SIZE_MB MiB each way"
            if run_client "$who" "bulk-$key" "${CFG[$key]}"; then
                bulk "$key"
                stop_client
            else
                R[$key,dl,$who]=fail R[$key,ul,$who]=fail
            fi
        done
    done
fi

# ---------------------------------------------------------------- 3+4: latency and scale
for who in ours stock; do
    if want latency; then
        say "latency, $who: $LAT_COUNT requests, UDP AES-256-GCM"
        run_client "$who" "latency" "${CFG[udp-gcm]}" && { latency; stop_client; }
    fi
    if want scale; then
        say "scale, $who: $SCALE_COUNT idle connections, UDP AES-256-GCM (a fresh client)"
        run_client "$who" "scale" "${CFG[udp-gcm]}" && { scale; stop_client; }
    fi
done

# ---------------------------------------------------------------- 5: distance
# relay_config DELAY_MS: the relay on 127.0.0.1 in the client namespace, in front of the udp-gcm
# server, with a copy of its client config pointed at it; sets RCFG
RELAY_PORT=11940
relay_start() {
    lab_bg "relay-$1ms" ip netns exec "$LAB_CLIENT_NS" "$RELAY" -d "$1" \
        -u "127.0.0.1:$RELAY_PORT=$LAB_SERVER_IP:${LAB_OVPN_PORT[udp-gcm]}"
    RELAY_PID=$LAB_LAST_PID
    lab_wait_listen "$LAB_CLIENT_NS" udp 127.0.0.1 "$RELAY_PORT" || lab_die "relay did not start"
    RCFG=$LAB_RUN_DIR/ovpn/relay-client
    rm -rf "$RCFG"
    cp -a "${CFG[udp-gcm]}" "$RCFG"
    sed -i "s/^remote .*/remote 127.0.0.1 $RELAY_PORT/" "$RCFG/config.ovpn"
}
relay_stop() {
    kill -TERM "$RELAY_PID" 2>/dev/null
    wait "$RELAY_PID" 2>/dev/null
    grep -E 'dropped' "$LAB_RUN_DIR/log/relay-$1ms.log" | sed "s/^/relay $1 ms: /" >>"$RAW"
}
dl_runs() { # KEY: RUNS timed downloads; R[KEY,CLIENT]
    local i line mibs
    : >"$LAB_RUN_DIR/runs"
    for ((i = 0; i < RUNS; i++)); do
        line=$(xfer dl 0) || continue
        mibs=$(awk '{print $1 / 1048576 / $2}' <<<"$line")
        echo "$mibs" >>"$LAB_RUN_DIR/runs"
        echo "distance $1 $CLIENT run $i: $(fmt "$mibs") MiB/s" >>"$RAW"
        say "  $1 $CLIENT: $(fmt "$mibs") MiB/s"
    done
    R[$1,$CLIENT]=$(median <"$LAB_RUN_DIR/runs")
}
if want distance; then
    for who in ours stock; do
        # the same client, without and with the relay at 0 ms, back to back
        say "distance, $who: no relay, relay at 0 ms, relay at $ONE_WAY_MS ms each way"
        run_client "$who" "direct" "${CFG[udp-gcm]}" && { dl_runs d-none; stop_client; }
        relay_start 0
        if run_client "$who" "relay0" "$RCFG"; then
            if xfer dl 1 >/dev/null; then R[d0check,$who]=ok; else R[d0check,$who]=FAIL; fi
            dl_runs d-0
            stop_client
        fi
        relay_stop 0
        relay_start "$ONE_WAY_MS"
        if run_client "$who" "relay$ONE_WAY_MS" "$RCFG"; then
            rtt=$(lab_in_client "$NETBENCH" latency ${PROXY_ARGS[0]:+--socks "$SOCKS_ADDR:$SOCKS_PORT"} \
                "$LAB_INTERNAL_IP" "$NB_PORT" 20 | awk '{print $6}')
            R[d-rtt,$who]=$rtt
            if xfer dl 1 >/dev/null; then R[dcheck,$who]=ok; else R[dcheck,$who]=FAIL; fi
            dl_runs d-far
            stop_client
        fi
        relay_stop "$ONE_WAY_MS"
    done
fi

# ---------------------------------------------------------------- the table
T_END=$(date +%s)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "-"}'; }
# verdict RATIO OP LIMIT: ok or MISS
verdict() {
    awk -v r="$1" -v op="$2" -v l="$3" 'BEGIN {
        if (r == "-" || r == "") { print "-"; exit }
        ok = (op == ">=") ? (r + 0 >= l + 0) : (op == "<=") ? (r + 0 <= l + 0) : (r + 0 < l + 0)
        print ok ? "ok" : "MISS" }'
}
ROWS=()
row() { ROWS+=("$1|$2|$3|$4|$5|$6"); } # what | ours | stock | ratio | target | verdict

if want bulk; then
    for key in "${CASES[@]}"; do
        for dir in dl ul; do
            [ "$dir" = dl ] && d=download || d=upload
            r=$(ratio "${R[$key,$dir,ours]:-}" "${R[$key,$dir,stock]:-}")
            row "$d MiB/s, ${CASE_NAME[$key]}" "$(fmt "${R[$key,$dir,ours]:-}")" \
                "$(fmt "${R[$key,$dir,stock]:-}")" "$r" ">= 1.0 (aim 1.3)" "$(verdict "$r" '>=' 1.0)"
        done
    done
    for key in "${CASES[@]}"; do
        for dir in dl ul; do
            [ "$dir" = dl ] && d=download || d=upload
            r=$(ratio "${R[$key,$dir,ours,cpu]:-}" "${R[$key,$dir,stock,cpu]:-}")
            row "client CPU s/GiB, $d, ${CASE_NAME[$key]}" "$(fmt "${R[$key,$dir,ours,cpu]:-}" %.2f)" \
                "$(fmt "${R[$key,$dir,stock,cpu]:-}" %.2f)" "$r" "<= 0.8" "$(verdict "$r" '<=' 0.8)"
        done
    done
fi
if want latency; then
    r=$(ratio "${R[lat50,ours]:-}" "${R[lat50,stock]:-}")
    row "latency p50 ms, connect to first byte" "$(fmt "${R[lat50,ours]:-}" %.3f)" \
        "$(fmt "${R[lat50,stock]:-}" %.3f)" "$r" "<= 1.2" "$(verdict "$r" '<=' 1.2)"
    r=$(ratio "${R[lat99,ours]:-}" "${R[lat99,stock]:-}")
    row "latency p99 ms" "$(fmt "${R[lat99,ours]:-}" %.3f)" "$(fmt "${R[lat99,stock]:-}" %.3f)" "$r" "-" "-"
fi
if want scale; then
    k=${R[scale_kib,ours]:-}
    v=-
    [ -n "$k" ] && v=$(verdict "$k" '<' 8)
    [ "${R[scale_open,ours]:-0}" -lt "$SCALE_COUNT" ] && v=MISS
    row "KiB of client RSS per idle connection ($SCALE_COUNT)" "$(fmt "$k" %.2f)" \
        "$(fmt "${R[scale_kib,stock]:-}" %.2f)" "-" "< 8 (ours)" "$v"
    row "seconds to open $SCALE_COUNT connections" "$(fmt "${R[scale_s,ours]:-}" %.2f)" \
        "$(fmt "${R[scale_s,stock]:-}" %.2f)" "$(ratio "${R[scale_s,ours]:-}" "${R[scale_s,stock]:-}")" "-" \
        "${R[scale_open,ours]:-0}/${R[scale_open,stock]:-0} opened"
fi
if want distance; then
    for who in ours stock; do
        r=$(ratio "${R[d-0,$who]:-}" "${R[d-none,$who]:-}")
        row "relay at 0 ms / no relay, download, $who" "$(fmt "${R[d-0,$who]:-}")" \
            "$(fmt "${R[d-none,$who]:-}")" "$r" ">= 0.95 (relay is free)" "$(verdict "$r" '>=' 0.95)"
    done
    r=$(ratio "${R[d-far,ours]:-}" "${R[d-far,stock]:-}")
    row "download MiB/s at $((2 * ONE_WAY_MS)) ms RTT (measured RTT ${R[d-rtt,ours]:-?}/${R[d-rtt,stock]:-?} ms)" \
        "$(fmt "${R[d-far,ours]:-}")" "$(fmt "${R[d-far,stock]:-}")" "$r" ">= 0.9" "$(verdict "$r" '>=' 0.9)"
fi

{
    echo
    echo "vpn2socks $(git -C "$repo" describe --always --dirty 2>/dev/null || echo '?') vs $(openvpn --version | head -n 1 | cut -d' ' -f1-2)"
    echo "machine: $(nproc) cores, $(sed -n 's/^model name\t*: //p' /proc/cpuinfo | head -n 1), kernel $(uname -r)"
    echo "command: bench/run.sh $([ "$QUICK" = 1 ] && echo --quick) ($SIZE_MB MiB per transfer, median of $RUNS runs," \
        "$LAT_COUNT latency requests, $SCALE_COUNT idle connections); took $(((T_END - T_START) / 60)) min $(((T_END - T_START) % 60)) s"
    echo "load average before: $LOAD_START, after: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    printf '%-62s %10s %10s %6s  %-24s %s\n' "figure" "vpn2socks" "stock" "ratio" "target" "verdict"
    for r in "${ROWS[@]}"; do
        IFS='|' read -r a b c d e f <<<"$r"
        printf '%-62s %10s %10s %6s  %-24s %s\n' "$a" "$b" "$c" "$d" "$e" "$f"
    done
    echo
    if want bulk; then
        echo "SHA-256 checks (first transfer of each case):"
        for key in "${CASES[@]}"; do
            echo "  ${CASE_NAME[$key]}: download${R[$key,dl,check]:- -}; upload${R[$key,ul,check]:- -}"
        done
    fi
    if want distance; then
        echo "  through the relay (download): 0 ms: ours ${R[d0check,ours]:--}, stock ${R[d0check,stock]:--};" \
            "$((2 * ONE_WAY_MS)) ms: ours ${R[dcheck,ours]:--}, stock ${R[dcheck,stock]:--}"
    fi
    want scale && echo "scale: VmRSS KiB ours ${R[scale_rss,ours]:-?}, stock ${R[scale_rss,stock]:-?} (the stock client's sockets live in the kernel)"
    echo "CPU is the client process only (/proc/PID/stat user+system); the kernel's TCP work for the"
    echo "stock client's connections is not in its figure. Ratios: ours / stock."
} | tee "$LAB_RUN_DIR/table.txt"

if [ -n "$MARKDOWN" ]; then
    {
        sed -n '1,5p' "$LAB_RUN_DIR/table.txt" | grep . | sed 's/$/  /'
        echo
        echo "| figure | vpn2socks | stock openvpn | ratio | target | verdict |"
        echo "| --- | ---: | ---: | ---: | --- | --- |"
        for r in "${ROWS[@]}"; do
            IFS='|' read -r a b c d e f <<<"$r"
            [ "$f" = MISS ] && f="**MISS**"
            echo "| $a | $b | $c | $d | $e | $f |"
        done
        echo
        sed -n '/^SHA-256 checks/,$p' "$LAB_RUN_DIR/table.txt"
        echo
        echo "Each run:"
        echo '```'
        cat "$RAW"
        echo '```'
    } >"$MARKDOWN"
    say "Markdown table in $MARKDOWN"
fi
exit 0
