#!/usr/bin/env bash
# The latency proxy adds latency, not a window: 64 MiB echoed through rtt 20
# and through rtt 400 move at 10 MB/s or more, which a proxy moving one window
# per round trip could not do (at rtt 400, even a 2 MiB window, OpenSSH's, caps
# at 5.2 MB/s). The bound sits far below what the proxy does on a quiet
# machine (hundreds of MB/s) so that a loaded machine or a sanitizer build,
# which slows every try, never fails it, while a cap always does. The best of
# up to 3 tries counts. A bandwidth limit is honoured: it can never be beaten, and is reached
# roughly.
. "$top_srcdir/tests/lib.sh"
t_init
. "$top_srcdir/tests/tools/proxy-lib.sh"

ok "an echo server starts" peer_start echo echo
ok "a sink server starts" peer_start sink sink
ok "a proxy with rtt 20 starts" proxy_start p20 "$echo_PORT" --rtt 20
ok "a proxy with rtt 400 starts" proxy_start p400 "$echo_PORT" --rtt 400
ok "a proxy with rtt 20 and 80 Mbit/s to the sink starts" proxy_start pbw "$sink_PORT" --rtt 20 --bandwidth 80
ok "a proxy with rtt 20 and 80 Mbit/s to the echo server starts" proxy_start pbwe "$echo_PORT" --rtt 20 --bandwidth 80

for rtt in 20 400; do
	port_var=p${rtt}_PORT
	best=0
	for try in 1 2 3; do
		r=$("$PEER" echo --port "${!port_var}" --bytes $((64 << 20)) 2>>"$T/check.log") || r=0
		diag "try $try: 64 MiB each way through rtt $rtt at $r MB/s"
		float_ge "$r" "$best" && best=$r
		float_ge "$best" 10 && break
	done
	ok "64 MiB each way through rtt $rtt move at 10 MB/s or more (best $best MB/s)" float_ge "$best" 10
done

# 80 Mbit/s = 10 MB/s: 8 MiB (8.39 MB) need at least 0.84 s.
r=$("$PEER" send --port "$pbw_PORT" --bytes $((8 << 20)) 2>>"$T/check.log") || r=0
diag "8 MiB upload at 80 Mbit/s: $r MB/s"
ok "an upload never beats the 80 Mbit/s limit (<= 10.2 MB/s)" eval 'float_ge "$r" 0.01 && float_lt "$r" 10.2'
ok "an upload reaches the limit roughly (>= 3 MB/s)" float_ge "$r" 3
r=$("$PEER" echo --port "$pbwe_PORT" --bytes $((4 << 20)) 2>>"$T/check.log") || r=0
diag "4 MiB echo at 80 Mbit/s each way: $r MB/s"
ok "an echo through the limit stays under it in both directions (<= 10.2 MB/s)" \
	eval 'float_ge "$r" 0.01 && float_lt "$r" 10.2'
t_done
