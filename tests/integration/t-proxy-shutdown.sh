#!/usr/bin/env bash
# The latency proxy starts and stops cleanly: SIGTERM and SIGINT make it exit 0
# promptly even with connections open (and, under the sanitizers, without
# leaks); bad arguments exit 2 with a message saying what is wrong.
. "$top_srcdir/tests/lib.sh"
t_init
. "$top_srcdir/tests/tools/proxy-lib.sh"

# exited PID: the process is gone or a zombie waiting for its status.
exited() { ! kill -0 "$1" 2>/dev/null || [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" = Z ]; }

ok "an echo server starts" peer_start echo echo
for sig in TERM INT; do
	ok "a proxy starts (for SIG$sig)" proxy_start p "$echo_PORT" --rtt 200
	ok_eq "the port file holds the listening port" "$p_PORT" "$(cat "$T/p.port")"
	# Hold a connection open, with bytes in flight inside the proxy.
	exec 3<>"/dev/tcp/127.0.0.1/$p_PORT"
	printf 'in flight\n' >&3
	sleep 0.05
	kill -s "$sig" "$p_PID"
	ok "SIG$sig stops it within 10 s" wait_for 10 exited "$p_PID"
	wait "$p_PID"
	ok_eq "... with exit status 0" 0 "$?"
	exec 3>&-
done

err=$("$PROXY" --listen 127.0.0.1:0 --to 127.0.0.1:1 2>&1)
ok_eq "a missing --rtt exits 2" 2 "$?"
ok "... and says what is required" grep -q -- "--rtt" <<<"$err"
err=$("$PROXY" --listen 127.0.0.1 --to 127.0.0.1:1 --rtt 5 2>&1)
ok_eq "a --listen without a port exits 2" 2 "$?"
ok "... and names the bad value" grep -q "bad --listen '127.0.0.1'" <<<"$err"
err=$("$PROXY" --listen 127.0.0.1:0 --to 127.0.0.1:1 --rtt -3 2>&1)
ok_eq "a negative --rtt exits 2" 2 "$?"
err=$("$PROXY" --listen 127.0.0.1:0 --to 127.0.0.1:1 --rtt 5 --bandwidth 0 2>&1)
ok_eq "a zero --bandwidth exits 2" 2 "$?"
err=$("$PROXY" --listen 127.0.0.1:0 --to 127.0.0.1:1 --rtt 5 --port-file "$T/no/such/dir/port" 2>&1)
ok_eq "an unwritable port file exits 1" 1 "$?"
ok "... and names the file" grep -q "cannot write the port file" <<<"$err"
# A port in use: the proxy says so and exits 1.
err=$("$PROXY" --listen "127.0.0.1:$echo_PORT" --to 127.0.0.1:1 --rtt 5 2>&1)
ok_eq "a listen port in use exits 1" 1 "$?"
t_done
