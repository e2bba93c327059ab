# shellcheck shell=bash
# shellcheck disable=SC2034  # CLIENT, PID, SRV_PID, PROXY_ARGS are what run.sh's xfer reads
# The openconnect cases of bench/run.sh (--only openconnect); sourced by it, uses its helpers
# (xfer, timed_xfer, run_log, run_failed, median_of, checked_xfer, fmt, ratio, verdict, row,
# wait_ready, say, R, XF, RAW, URL, SIZE, CAP).
#
# One ocserv in the lab's server namespace (lab_start_ocserv: DTLS on, mtu 1400) and three
# openconnect sessions to it at once from the client namespace, all DTLS:
#   v2s     openconnect --script-tun (as nobody) starting vpn2socks -D 127.0.0.1:$SOCKS_PORT;
#           curl --socks5 through it; the stack's CPU is vpn2socks's
#   ocproxy openconnect --script-tun (as nobody) starting Debian's ocproxy -D 127.0.0.1:$OC_OCPROXY_PORT;
#           curl --socks5 through it; the stack's CPU is ocproxy's
#   ktun    openconnect as root with a kernel TUN ($OC_TUN) in the client namespace; its script
#           gives the tun the session's address and routes only the web server's address through
#           it; curl --interface $OC_TUN straight to the server; the stack is the kernel's
# The two --script-tun sessions do not touch the namespace's routing, so the three do not meet.
# With downloads, uploads from the server's side into a service of the client's (-R, the way a
# cloud host reaches a laptop's service): a netbench sink on $OC_RF_SINK in the client namespace,
# reached through vpn2socks's -R $OC_RF_PORT:127.0.0.1:$OC_RF_SINK or at the kernel TUN's address
# (ocproxy has no -R); curl -T from the server namespace to the session's tunnel address.
# Their transfers alternate (the order rotates each run); each transfer also records the CPU of
# that session's openconnect process and the UDP datagrams dropped meanwhile (the log, and a
# line below the table).
# Then downloads at a distance: bench/relay (TCP and UDP, ONE_WAY_MS each way) on 127.0.0.1:443 in
# the client namespace in front of ocserv, and new vpn2socks and kernel TUN sessions through it
# (the server's certificate pinned, as it names the server's address); ocproxy is left out, its
# fixed 64 KiB window would make it a crawl there.

OC_OCPROXY_PORT=1081
OC_RF_PORT=9000 OC_RF_SINK=8091
OC_TUN=oc0
OC_NAMES=(v2s ocproxy ktun)
OC_URL='' OC_CERT=()
declare -A R      # run.sh's figures (declared there as well; this keeps them)
declare -A OC_PID OC_STACK_PID OC_LOG OC_UP OC_CIPHER OC_ADDR
declare -A OC_LABEL=([v2s]=vpn2socks [ocproxy]=ocproxy [ktun]="kernel TUN")

if want openconnect && ! command -v ocproxy >/dev/null; then
    echo "bench: the openconnect case needs ocproxy (Debian's package; scripts/install-deps.sh)" >&2
    exit 1
fi


# oc_scripts: what openconnect starts. ocproxy's wrapper records its pid; the kernel TUN's script
# stands in for vpnc-script with only what this bench needs (address, MTU, one host route).
oc_scripts() {
    OC_OCPROXY_WRAP=$LAB_RUN_DIR/ocproxy-wrap.sh
    cat >"$OC_OCPROXY_WRAP" <<'EOF'
#!/bin/sh
# usage: ocproxy-wrap.sh OUTDIR PORT
echo $$ >"$1/pid"
exec ocproxy -D "127.0.0.1:$2" 2>>"$1/ocproxy.log"
EOF
    OC_TUN_SCRIPT=$LAB_RUN_DIR/oc-tun-script.sh
    cat >"$OC_TUN_SCRIPT" <<EOF
#!/bin/sh
# openconnect's script for the kernel TUN session: reason=connect sets up \$TUNDEV
[ "\$reason" = connect ] || exit 0
ip addr add "\$INTERNAL_IP4_ADDRESS/32" dev "\$TUNDEV" &&
    ip link set "\$TUNDEV" mtu "\${INTERNAL_IP4_MTU:-1400}" up &&
    ip route add $LAB_INTERNAL_IP/32 dev "\$TUNDEV" src "\$INTERNAL_IP4_ADDRESS"
EOF
    chmod 755 "$OC_OCPROXY_WRAP" "$OC_TUN_SCRIPT"
}

# oc_start NAME: that session's openconnect, until its DTLS channel is up (1 if not in 20 s)
oc_start() {
    local name=$1 out=$LAB_RUN_DIR/out/oc-$1 run=() args=() pid
    mkdir -p "$out" && chmod 1777 "$out"
    rm -f "$out/pid"
    OC_LOG[$name]=$LAB_RUN_DIR/log/oc-$name.log
    case $name in
    v2s) run=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
        args=(--script-tun --script "$WRAP $out -D $SOCKS_ADDR:$SOCKS_PORT -R $OC_RF_PORT:127.0.0.1:$OC_RF_SINK") ;;
    ocproxy) run=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
        args=(--script-tun --script "$OC_OCPROXY_WRAP $out $OC_OCPROXY_PORT") ;;
    ktun) args=(--interface "$OC_TUN" --script "$OC_TUN_SCRIPT") ;;
    esac
    ip netns exec "$LAB_CLIENT_NS" "${run[@]}" openconnect --non-inter --passwd-on-stdin \
        -u "$LAB_VPN_USER" "${OC_CERT[@]:---cafile=$LAB_CA_CERT}" "${args[@]}" "${OC_URL:-$LAB_VPN_URL}" \
        <<<"$LAB_VPN_PASS" >"${OC_LOG[$name]}" 2>&1 &
    pid=$!
    OC_PID[$name]=$pid
    LAB_PIDS+=("$pid")
    echo "$pid openconnect-$name" >>"$LAB_RUN_DIR/pids"
    if ! lab_wait_file_match "${OC_LOG[$name]}" '^Established DTLS' 20 "$pid"; then
        say "openconnect ($name) has no DTLS channel after 20 s; its log:"
        tail -n 20 "${OC_LOG[$name]}" >&2
        return 1
    fi
    # "Established DTLS connection (using GnuTLS). Ciphersuite (DTLS1.2)-(...)-(AES-256-GCM)."
    OC_CIPHER[$name]=$(sed -n 's/^Established DTLS.*Ciphersuite \(.*\)\.$/\1/p' "${OC_LOG[$name]}" | tail -n 1)
    # "Configured as 10.98.0.2, with SSL connected and DTLS in progress": the session's address
    OC_ADDR[$name]=$(sed -n 's/^Configured as \([0-9.]*\).*/\1/p' "${OC_LOG[$name]}" | tail -n 1)
    if [ "$name" = ktun ]; then
        OC_STACK_PID[$name]=$pid
    else
        lab_wait_file_match "$out/pid" '^[0-9]+$' 5 || { say "openconnect ($name) did not start its script"; return 1; }
        OC_STACK_PID[$name]=$(cat "$out/pid")
    fi
    oc_use "$name"
    wait_ready && return 0
    say "nothing crosses the $name session; logs:"
    tail -n 10 "${OC_LOG[$name]}" "$out"/*.log >&2 2>/dev/null
    return 1
}

# oc_use NAME: the next xfer goes through that session; PID is the stack's process (openconnect's
# for the kernel TUN), SRV_PID the session's openconnect (xfer's 4th figure), RF_URL the client's
# sink as the server reaches it through that session (xfer rf)
oc_use() {
    CLIENT=$1 PID=${OC_STACK_PID[$1]} SRV_PID=${OC_PID[$1]}
    case $1 in
    v2s) PROXY_ARGS=(--socks5 "$SOCKS_ADDR:$SOCKS_PORT") RF_URL=http://${OC_ADDR[$1]:-}:$OC_RF_PORT ;;
    ocproxy) PROXY_ARGS=(--socks5 "127.0.0.1:$OC_OCPROXY_PORT") RF_URL='' ;;
    ktun) PROXY_ARGS=(--interface "$OC_TUN") RF_URL=http://${OC_ADDR[$1]:-}:$OC_RF_SINK ;;
    esac
}

# oc_order RUN [DIR]: the sessions that are up, rotated by RUN so that each goes first in turn
# (for rf, those with a way in from the server: not ocproxy)
oc_order() {
    local i n=${#OC_NAMES[@]} w
    for ((i = 0; i < n; i++)); do
        w=${OC_NAMES[(i + $1) % n]}
        [ "${2:-}" = rf ] && [ "$w" = ocproxy ] && continue
        [ "${OC_UP[$w]:-0}" = 1 ] && echo "$w"
    done
}

# oc_dirs: the directions of the bulk runs: the bench's, and rf with downloads
oc_dirs() {
    echo "${DIRS[@]}"
    if [[ " ${DIRS[*]} " == *" dl "* ]]; then echo rf; fi
}

# oc_udp_out NS: the datagrams sent from namespace NS (OutDatagrams of /proc/net/snmp): during a
# download, what the client's openconnect sends back (the stack's ACKs); during an upload, ocserv's
oc_udp_out() {
    # shellcheck disable=SC2016 # awk fields
    ip netns exec "$1" awk '/^Udp:/ { if (n++) print $5 }' /proc/net/snmp
}

# oc_sleeps PID: how often the process went to sleep (voluntary context switches, all threads)
oc_sleeps() {
    cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt_switches/ { n += $2 } END { print n + 0 }'
}

# oc_per_mib COUNT BYTES
oc_per_mib() {
    awk -v n="$1" -v b="$2" 'BEGIN {printf "%.0f", n / (b / 1048576)}'
}

# oc_bulk: per direction (oc_dirs), $RUNS timed transfers per session (alternating), then a checked
# one each; R[oc,DIR,NAME] MiB/s, R[oc,DIR,NAME,cpu] the stack's CPU s/GiB, R[oc,DIR,NAME,occpu]
# openconnect's CPU s/GiB (medians). The raw log also has, per run, the datagrams sent back at the
# receiving end and how often the stack and openconnect slept, per MiB.
oc_bulk() {
    local dir i w line drops ns outs sl osl
    for dir in $(oc_dirs); do
        for w in "${OC_NAMES[@]}"; do : >"$LAB_RUN_DIR/oc-runs-$w"; done
        for ((i = 0; i < RUNS; i++)); do
            for w in $(oc_order "$i" "$dir"); do
                oc_use "$w"
                [ "$dir" = ul ] && ns=$LAB_SERVER_NS || ns=$LAB_CLIENT_NS
                outs=$(oc_udp_out "$ns") sl=$(oc_sleeps "$PID") osl=$(oc_sleeps "$SRV_PID")
                # xfer's server CPU (XF[srvcpu]) is the session's openconnect's (SRV_PID)
                timed_xfer "$dir" "$LAB_RUN_DIR/oc-runs-$w" "openconnect $dir $w" "$i" "openconnect $dir $w" ||
                    continue
                outs=$(($(oc_udp_out "$ns") - outs))
                sl=$(($(oc_sleeps "$PID") - sl)) osl=$(($(oc_sleeps "$SRV_PID") - osl))
                # the datagrams the kernel dropped for want of room in a UDP socket's receive
                # buffer: during a download, openconnect's DTLS socket's in the client namespace;
                # during an upload, ocserv's in the server namespace
                [ "$dir" = ul ] && drops=${XF[sdrop]} || drops=${XF[cdrop]}
                line="$(fmt "${XF[mibs]}") MiB/s, ${XF[moved]}; CPU s/GiB:"
                [ "$w" != ktun ] && line+=" ${OC_LABEL[$w]} $(fmt "${XF[cpu]}" %.2f),"
                line+=" its openconnect $(fmt "${XF[srvcpu]}" %.2f); UDP drops $(awk -v d="$drops" -v b="${XF[bytes]}" 'BEGIN {printf "%.0f", d / (b / 104857600)}') per 100 MiB, $(oc_per_mib "$outs" "${XF[bytes]}") sent back per MiB; sleeps per MiB:"
                [ "$w" != ktun ] && line+=" ${OC_LABEL[$w]} $(oc_per_mib "$sl" "${XF[bytes]}"),"
                line+=" its openconnect $(oc_per_mib "$osl" "${XF[bytes]}")${XF[note]}"
                run_log "openconnect $dir $w" "$i" "openconnect $dir $w" "$line"
            done
        done
        for w in $(oc_order 0 "$dir"); do
            R[oc,$dir,$w]=$(median_of "$LAB_RUN_DIR/oc-runs-$w" 1)
            R[oc,$dir,$w,cpu]=$(median_of "$LAB_RUN_DIR/oc-runs-$w" 2)
            R[oc,$dir,$w,occpu]=$(median_of "$LAB_RUN_DIR/oc-runs-$w" 3)
            oc_use "$w"
            R[oc,$dir,check]="${R[oc,$dir,check]:-} $w $(checked_xfer "$dir" "${R[oc,$dir,$w]}")"
        done
    done
}

# oc_stop: ends every session's openconnect (their scripts' stacks go with them)
oc_stop() {
    local w i
    for w in "${OC_NAMES[@]}"; do
        [ -n "${OC_PID[$w]:-}" ] && kill -TERM "${OC_PID[$w]}" 2>/dev/null
    done
    for w in "${OC_NAMES[@]}"; do
        for ((i = 0; i < 100; i++)); do
            kill -0 "${OC_PID[$w]:-0}" 2>/dev/null || break
            sleep 0.05
        done
    done
}

# oc_far: vpn2socks and the kernel TUN through the relay (see the top); $RUNS downloads each,
# alternating: R[oc,far,NAME] MiB/s (median), R[oc,far,rtt] the relay's round trip in ms
oc_far() {
    local i w pin
    lab_bg oc-relay ip netns exec "$LAB_CLIENT_NS" "$RELAY" -d "$ONE_WAY_MS" -b "$RELAY_GATHER_US" \
        -u "127.0.0.1:$LAB_OCSERV_PORT=$LAB_SERVER_IP:$LAB_OCSERV_PORT" \
        -t "127.0.0.1:$LAB_OCSERV_PORT=$LAB_SERVER_IP:$LAB_OCSERV_PORT"
    lab_wait_listen "$LAB_CLIENT_NS" tcp 127.0.0.1 "$LAB_OCSERV_PORT" || { say "openconnect: the relay did not start"; return 1; }
    # openconnect's pin: SHA-256 of the server key's SubjectPublicKeyInfo, base64
    pin=$(openssl x509 -in "$LAB_SERVER_CERT" -noout -pubkey | openssl pkey -pubin -outform DER |
        openssl dgst -sha256 -binary | base64)
    OC_URL=https://127.0.0.1:$LAB_OCSERV_PORT/ OC_CERT=(--servercert "pin-sha256:$pin")
    OC_UP[ocproxy]=0
    for w in v2s ktun; do
        OC_UP[$w]=0
        oc_start "$w" && OC_UP[$w]=1
    done
    R[oc,far,rtt]=$((2 * ONE_WAY_MS))
    for w in v2s ktun; do : >"$LAB_RUN_DIR/oc-far-$w"; done
    for ((i = 0; i < RUNS; i++)); do
        for w in $(oc_order "$i"); do
            oc_use "$w"
            timed_xfer dl "$LAB_RUN_DIR/oc-far-$w" "openconnect far dl $w" "$i" "openconnect far dl $w" ||
                continue
            run_log "openconnect far dl $w" "$i" "openconnect at $((2 * ONE_WAY_MS)) ms dl $w" \
                "$(fmt "${XF[mibs]}") MiB/s, ${XF[moved]}${XF[note]}" "$(fmt "${XF[mibs]}") MiB/s"
        done
    done
    for w in $(oc_order 0); do
        R[oc,far,$w]=$(median_of "$LAB_RUN_DIR/oc-far-$w" 1)
    done
    oc_stop
    OC_URL='' OC_CERT=()
}

# oc_bench: the case; ocserv and the three sessions stay up only for it
oc_bench() {
    local w i
    say "openconnect: ocserv, three DTLS sessions (vpn2socks, ocproxy, kernel TUN); $RUNS x $SIZE_MB MiB (or ${CAP} s) each way per session, then a checked one"
    lab_setup_ocserv
    oc_scripts
    lab_bg oc-sink ip netns exec "$LAB_CLIENT_NS" "$NETBENCH" serve 0.0.0.0 "$OC_RF_SINK" "$FILE"
    lab_wait_listen "$LAB_CLIENT_NS" tcp 0.0.0.0 "$OC_RF_SINK" || { say "openconnect: the client's sink did not start"; return 1; }
    for w in "${OC_NAMES[@]}"; do
        OC_UP[$w]=0
        oc_start "$w" && OC_UP[$w]=1
    done
    for w in "${OC_NAMES[@]}"; do
        echo "openconnect $w: DTLS ${OC_CIPHER[$w]:-none}, up ${OC_UP[$w]}" >>"$RAW"
    done
    oc_bulk
    # every session still on its first DTLS channel: none fell back to TLS or renegotiated
    for w in $(oc_order 0); do
        i=$(grep -c '^Established DTLS' "${OC_LOG[$w]}")
        [ "$i" = 1 ] || say "warning: openconnect ($w) established DTLS $i times during the runs"
        grep -E 'DTLS.*(dead peer|fail|[Ff]alling back)' "${OC_LOG[$w]}" | sed "s/^/bench: openconnect ($w): /" >&2
    done
    oc_stop
    if [[ " ${DIRS[*]} " == *" dl "* ]]; then
        say "openconnect: downloads at $((2 * ONE_WAY_MS)) ms RTT (bench/relay in front of ocserv), vpn2socks and kernel TUN"
        oc_far
    fi
    unset SRV_PID
}

# oc_rows: the table's rows (ours against ocproxy and against the kernel TUN)
oc_rows() {
    local dir d r alt
    for dir in "${DIRS[@]}"; do
        [ "$dir" = dl ] && d=download || d=upload
        r=$(ratio "${R[oc,$dir,v2s]:-}" "${R[oc,$dir,ocproxy]:-}")
        row "$d MiB/s, openconnect DTLS, vs ocproxy" "$(fmt "${R[oc,$dir,v2s]:-}")" \
            "$(fmt "${R[oc,$dir,ocproxy]:-}")" "$r" ">= 1.5" "$(verdict "$r" '>=' 1.5)"
        r=$(ratio "${R[oc,$dir,v2s]:-}" "${R[oc,$dir,ktun]:-}")
        row "$d MiB/s, openconnect DTLS, vs kernel TUN" "$(fmt "${R[oc,$dir,v2s]:-}")" \
            "$(fmt "${R[oc,$dir,ktun]:-}")" "$r" ">= 0.9 (aim 1.0)" "$(verdict "$r" '>=' 0.9)"
    done
    if [ -n "${R[oc,rf,v2s]:-}" ]; then
        # the data crosses the tunnel as in a download: the download's target
        r=$(ratio "${R[oc,rf,v2s]:-}" "${R[oc,rf,ktun]:-}")
        row "upload into a -R service MiB/s, openconnect DTLS, vs kernel TUN" "$(fmt "${R[oc,rf,v2s]:-}")" \
            "$(fmt "${R[oc,rf,ktun]:-}")" "$r" ">= 0.9 (aim 1.0)" "$(verdict "$r" '>=' 0.9)"
    fi
    if [ -n "${R[oc,far,rtt]:-}" ]; then
        r=$(ratio "${R[oc,far,v2s]:-}" "${R[oc,far,ktun]:-}")
        row "download MiB/s, openconnect DTLS, ${R[oc,far,rtt]} ms RTT added, vs kernel TUN" \
            "$(fmt "${R[oc,far,v2s]:-}")" "$(fmt "${R[oc,far,ktun]:-}")" "$r" ">= 0.9" "$(verdict "$r" '>=' 0.9)"
    fi
    for dir in "${DIRS[@]}"; do
        [ "$dir" = dl ] && d=download || d=upload
        alt=${R[oc,$dir,ocproxy,cpu]:-}
        r=$(ratio "${R[oc,$dir,v2s,cpu]:-}" "$alt")
        row "stack CPU s/GiB, $d, openconnect, vs ocproxy" "$(fmt "${R[oc,$dir,v2s,cpu]:-}" %.2f)" \
            "$(fmt "$alt" %.2f)" "$r" "<= 1.0" "$(verdict "$r" '<=' 1.0)"
    done
}

# oc_header: under the table's first lines: what ran and the DTLS cipher each session got
oc_header() {
    echo "openconnect: $(openconnect --version 2>/dev/null | sed -n 's/^OpenConnect version //p' | head -n 1)," \
        "ocserv $(ocserv --version 2>&1 | sed -n 's/^ocserv \([0-9.]*\).*/\1/p' | head -n 1)," \
        "ocproxy $(dpkg-query -W -f='${Version}' ocproxy 2>/dev/null); DTLS cipher:" \
        "vpn2socks ${OC_CIPHER[v2s]:-none}, ocproxy ${OC_CIPHER[ocproxy]:-none}, kernel TUN ${OC_CIPHER[ktun]:-none}"
}

# oc_footer: the SHA-256 checks, and openconnect's own CPU per session
oc_footer() {
    local dir d w line
    echo "  openconnect DTLS: download:${R[oc,dl,check]:- -}; upload:${R[oc,ul,check]:- -}; into -R:${R[oc,rf,check]:- -}"
    for dir in $(oc_dirs); do
        case $dir in dl) d=download ;; ul) d=upload ;; rf) d="upload into -R" ;; esac
        line=''
        for w in "${OC_NAMES[@]}"; do
            [ "$dir" = rf ] && [ "$w" = ocproxy ] && continue
            line+=" ${OC_LABEL[$w]}'s $(fmt "${R[oc,$dir,$w,occpu]:-}" %.2f),"
        done
        echo "  openconnect's own CPU s/GiB, $d (the session of):${line%,}"
    done
    echo "  openconnect rows: the stock column is ocproxy or openconnect with a kernel TUN, as the figure"
    echo "  says; stack CPU is the vpn2socks or ocproxy process (their openconnect's is the line above)"
}
