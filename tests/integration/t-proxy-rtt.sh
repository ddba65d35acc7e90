#!/usr/bin/env bash
# The latency proxy adds the configured round-trip time, half each way: small
# round trips through it take about RTT (median of 20), and RTT 0 adds nothing
# noticeable. The bands are wide: they catch a missing or doubled delay, not
# scheduler noise.
. "$top_srcdir/tests/lib.sh"
t_init
. "$top_srcdir/tests/tools/proxy-lib.sh"

ok "an echo server starts" peer_start echo echo
ok "a proxy with rtt 50 starts on a free port" proxy_start p50 "$echo_PORT" --rtt 50
ok "a proxy with rtt 0 starts" proxy_start p0 "$echo_PORT" --rtt 0
ok "a proxy with rtt 12.5 starts" proxy_start p12 "$echo_PORT" --rtt 12.5

read -r med min max < <("$PEER" ping --port "$p50_PORT" --count 20 2>>"$T/check.log")
diag "rtt 50: median ${med:-?} ms, min ${min:-?}, max ${max:-?}"
ok "rtt 50: no round trip is shorter than 49 ms" float_ge "${min:-0}" 49
ok "rtt 50: the median round trip is 45..150 ms" eval 'float_ge "${med:-0}" 45 && float_lt "${med:-999}" 150'

read -r med min max < <("$PEER" ping --port "$p12_PORT" --count 20 2>>"$T/check.log")
diag "rtt 12.5: median ${med:-?} ms, min ${min:-?}"
ok "rtt 12.5: the median round trip is 12..100 ms" eval 'float_ge "${med:-0}" 12 && float_lt "${med:-999}" 100'

read -r med min max < <("$PEER" ping --port "$p0_PORT" --count 20 2>>"$T/check.log")
diag "rtt 0: median ${med:-?} ms, min ${min:-?}"
ok "rtt 0: the median round trip is under 20 ms" eval 'test -n "$med" && float_lt "$med" 20'

# A connection's half-round-trip applies per direction: an SSH login (several
# round trips) through rtt 50 takes well over one round trip.
ok "sshd starts" sshd_start vm
ok "a proxy to sshd with rtt 50 starts" proxy_start pssh "$VM_PORT" --rtt 50
start=$(date +%s%N)
ok "ssh logs in through the proxy" ssh -F "$VM_SSH_CONFIG" -p "$pssh_PORT" "$VM_ALIAS" true
ms=$((($(date +%s%N) - start) / 1000000))
diag "ssh login through rtt 50: $ms ms"
ok "the ssh login through rtt 50 takes at least 3 round trips" test "$ms" -ge 150
t_done
