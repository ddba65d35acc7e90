#!/usr/bin/env bash
# Bytes cross the latency proxy intact in both directions, half-closes
# propagate (the sink answers only after the client's EOF reached it, and the
# client reads to EOF), and back-pressure with a tiny queue loses nothing.
. "$top_srcdir/tests/lib.sh"
t_init
. "$top_srcdir/tests/tools/proxy-lib.sh"

MIB32=$((32 << 20))
ok "an echo server starts" peer_start echo echo
ok "a sink server starts" peer_start sink sink
ok "a proxy with rtt 20 to the echo server starts" proxy_start p20 "$echo_PORT" --rtt 20
ok "a proxy with rtt 0 to the echo server starts" proxy_start p0 "$echo_PORT" --rtt 0
ok "a proxy with a 64 KiB queue limit starts" proxy_start psmall "$echo_PORT" --rtt 5 --queue-limit 65536
ok "a proxy with rtt 20 to the sink starts" proxy_start psink "$sink_PORT" --rtt 20

ok "rtt 20: 32 MiB each way come back intact (sha256)" "$PEER" echo --port "$p20_PORT" --bytes "$MIB32"
ok "rtt 0: 32 MiB each way come back intact (sha256)" "$PEER" echo --port "$p0_PORT" --bytes "$MIB32"
ok "a 64 KiB queue limit back-pressures without losing bytes" "$PEER" echo --port "$psmall_PORT" --bytes $((8 << 20))
ok "a half-closed upload of 32 MiB reaches the sink intact and its answer comes back" \
	"$PEER" send --port "$psink_PORT" --bytes "$MIB32"
ok "an empty upload is answered too (EOF alone crosses)" "$PEER" send --port "$psink_PORT" --bytes 0

# A real protocol through the proxy: ssh, uploading and downloading 16 MiB.
ok "sshd starts" sshd_start vm
ok "a proxy to sshd with rtt 20 starts" proxy_start pssh "$VM_PORT" --rtt 20
head -c $((16 << 20)) /dev/urandom >"$T/blob"
want=$(sha256sum <"$T/blob" | cut -d' ' -f1)
got=$(ssh -F "$VM_SSH_CONFIG" -p "$pssh_PORT" "$VM_ALIAS" sha256sum <"$T/blob" 2>>"$T/check.log" | cut -d' ' -f1)
ok_eq "16 MiB uploaded over ssh through the proxy arrive intact" "$want" "$got"
got=$(ssh -F "$VM_SSH_CONFIG" -p "$pssh_PORT" "$VM_ALIAS" cat "'$T/blob'" 2>>"$T/check.log" | sha256sum | cut -d' ' -f1)
ok_eq "16 MiB downloaded over ssh through the proxy arrive intact" "$want" "$got"
t_done
