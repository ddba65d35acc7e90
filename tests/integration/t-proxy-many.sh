#!/usr/bin/env bash
# The latency proxy carries many connections at once, each intact, keeps
# serving afterwards, and survives a server that refuses connections.
. "$top_srcdir/tests/lib.sh"
t_init
. "$top_srcdir/tests/tools/proxy-lib.sh"

ok "an echo server starts" peer_start echo echo
ok "a proxy with rtt 20 starts" proxy_start p20 "$echo_PORT" --rtt 20
ok "50 concurrent connections each echo 1 MiB intact" \
	"$PEER" echo --port "$p20_PORT" --bytes $((1 << 20)) --conns 50
ok "100 concurrent connections each echo 64 KiB intact" \
	"$PEER" echo --port "$p20_PORT" --bytes 65536 --conns 100
ok "the proxy still answers a round trip afterwards" "$PEER" ping --port "$p20_PORT" --count 3
ok "the proxy is still running" kill -0 "$p20_PID"
# sockets_of PID: how many sockets the process holds.
sockets_of() { find "/proc/$1/fd" -lname 'socket:*' 2>/dev/null | wc -l; }
ok "every connection was closed (no socket left but the listener)" \
	wait_for 20 eval '[ "$(sockets_of "$p20_PID")" -eq 1 ]'
diag "sockets held by the proxy: $(sockets_of "$p20_PID")"

# A server port nobody listens on: the client's connection ends, the proxy stays.
closed=$(free_port)
ok "a proxy to a closed port starts" proxy_start pdead "$closed" --rtt 5
ok_not "a connection through it to the closed port fails" "$PEER" ping --port "$pdead_PORT" --count 1
ok "the proxy survives the refused connection" kill -0 "$pdead_PID"
t_done
