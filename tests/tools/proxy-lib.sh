# tests/tools/proxy-lib.sh: helpers for the latency proxy's tests, sourced
# after tests/lib.sh. Every process is started in the background, tracked by
# pid, and stopped by tests/lib.sh's cleanup.

PROXY=${PROXY:-$top_builddir/scripts/latency-proxy}
PEER=$top_srcdir/tests/tools/proxy-peer

# read_port FILE: wait (up to 30 s) for a port file, then print its port.
read_port() {
	wait_for 30 test -s "$1" || { diag "no port in '$1'"; return 1; }
	cat "$1"
}

# peer_start NAME MODE: a proxy-peer server (echo or sink); sets NAME_PORT.
peer_start() {
	local name=$1 mode=$2 port
	"$PEER" serve --port-file "$T/$name.port" --mode "$mode" >>"$T/$name.log" 2>&1 &
	t_track_pid $!
	port=$(read_port "$T/$name.port") || return 1
	printf -v "${name}_PORT" '%s' "$port"
}

# proxy_start NAME TO_PORT PROXY-ARGS...: a proxy to 127.0.0.1:TO_PORT on a
# free port; sets NAME_PORT and NAME_PID.
proxy_start() {
	local name=$1 to=$2 port
	shift 2
	rm -f "$T/$name.port"
	"$PROXY" --listen 127.0.0.1:0 --to "127.0.0.1:$to" --port-file "$T/$name.port" -v "$@" \
		>>"$T/$name.log" 2>&1 &
	printf -v "${name}_PID" '%s' $!
	t_track_pid $!
	port=$(read_port "$T/$name.port") || return 1
	printf -v "${name}_PORT" '%s' "$port"
}

# float_ge A B / float_lt A B: numeric comparisons of decimals.
float_ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }
float_lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }
