#!/usr/bin/env bash
# Reconnect: one engine session (remote-cli reading commands from a FIFO)
# survives its SSH connection being killed and the sshd being stopped and
# restarted on the same port; with the server down longer than the request
# timeout a call fails with EIO in bounded time, and the session works again
# once the server is back; an operation cut mid-transfer completes or fails
# with EIO; the redial hook can move the session to a new port.
. "$top_srcdir/tests/lib.sh"
t_init
unset SSH_AUTH_SOCK
CLI=$top_builddir/tests/tools/remote-cli
sshd_start vm || { fail "sshd starts"; t_done; }
D=$T/vmroot
mkdir -p "$D"

# Descendants of the listener are the sessions: killing them cuts our connections.
descendants() {
	local p
	for p in $(ps -o pid= --ppid "$1"); do
		echo "$p"
		descendants "$p"
	done
}
kill_sessions() {
	local p
	for p in $(descendants "$VM_SSHD_PID"); do kill -9 "$p" 2>/dev/null; done
}
# The listener is frozen first, so nobody reconnects between the two kills.
sshd_down() {
	kill -STOP "$VM_SSHD_PID"
	kill_sessions
	kill -9 "$VM_SSHD_PID"
	wait "$VM_SSHD_PID" 2>/dev/null
}
# sshd_up [CONFIG]: start sshd again (same keys; same port unless CONFIG says otherwise).
sshd_up() {
	/usr/sbin/sshd -D -e -f "${1:-$T/sshd/sshd_config}" >>"$T/sshd.log" 2>&1 &
	VM_SSHD_PID=$!
	t_track_pid "$VM_SSHD_PID"
}

# session NAME OPTS: start remote-cli on a FIFO; send NAME CMD; wait_n NAME N.
session() {
	local name=$1 opts=$2
	mkfifo "$T/$name.in"
	"$CLI" -o "identity=$VM_KEY,known_hosts=$VM_KNOWN_HOSTS,host_key_alias=vm,$opts" \
		"127.0.0.1:$VM_PORT" - <"$T/$name.in" >"$T/$name.out" 2>"$T/$name.log" &
	t_track_pid $!
	eval "exec {fd_$name}>\"\$T/\$name.in\""
}
send() { local fd="fd_$1"; shift; echo "$*" >&"${!fd}"; }
results() { grep -cE '^(OK|ERR)' "$T/$1.out"; }
have_results() { [ "$(results "$1")" -ge "$2" ]; }
# nth_result NAME N SECONDS: wait until N results are in, print the N-th.
nth_result() {
	wait_for "$3" have_results "$1" "$2" || { echo TIMEOUT; return; }
	grep -E '^(OK|ERR)' "$T/$1.out" | sed -n "${2}p"
}

session a "request_timeout_ms=30000,keepalive_s=2"
send a stat "$D"
ok_eq "the session works" OK "$(nth_result a 1 20)"

kill_sessions
send a stat "$D"
ok_eq "after the connection is killed the next call succeeds" OK "$(nth_result a 2 25)"
ok "the engine says it reconnected" grep -q "reconnected to '127.0.0.1'" "$T/a.log"

losses() { grep -c "lost the connection" "$T/a.log"; }
seen=$(losses)
sshd_down
# The call must be made once the engine knows the link is gone: a mkdir written
# to the dying socket just before would be in flight, and a request that is
# not idempotent is not reissued (EIO is right for it).
more_losses() { [ "$(losses)" -gt "$seen" ]; }
ok "the engine notices the server is gone" wait_for 30 more_losses
send a mkdir "$D/while-down"
sleep 2
sshd_up
ok_eq "a call made while sshd is down succeeds once it is back" OK "$(nth_result a 3 30)"
ok "and it happened on the VM" test -d "$D/while-down"
send a connected
ok_eq "the session reports it is connected" OK "$(nth_result a 4 20)"
ok_eq "connected is 1" 1 "$(grep -x '[01]' "$T/a.out" | tail -n1)"

# A handle open across a reconnect is opened again by path.
printf 'hello world' >"$D/h"
send a fopen "$D/h"
send a fread 0 5
ok_eq "a handle reads" "OK|hello|OK" "$(nth_result a 6 20 >/dev/null; tail -n3 "$T/a.out" | paste -sd'|')"
before=$(grep -c reconnected "$T/a.log")
kill_sessions
reconnected_since() { [ "$(grep -c reconnected "$T/a.log")" -gt "$1" ]; }
ok "the session reconnects by itself" wait_for 30 reconnected_since "$before"
send a fread 6 5
ok_eq "the same handle reads after the connection was killed" "world|OK" \
	"$(nth_result a 7 30 >/dev/null; tail -n2 "$T/a.out" | paste -sd'|')"
send a fwrite 0 HELLO
send a fclose
ok_eq "and writes, and closes" "OK|OK" "$(nth_result a 9 30 >/dev/null; tail -n2 "$T/a.out" | paste -sd'|')"
ok_eq "the write reached the VM" "HELLO world" "$(cat "$D/h")"

# Cut mid-read and mid-write: complete, or EIO; never a hang.
head -c $((40 * 1024 * 1024)) /dev/urandom >"$D/big"
send a count "$D/big" 131072
sleep 0.3
kill_sessions
r=$(nth_result a 10 40)
case $r in
OK) ok_eq "a read cut by a lost connection completed with every byte" $((40 * 1024 * 1024)) \
	"$(grep -xE '[0-9]{5,}' "$T/a.out" | tail -n1)" ;;
*) ok_eq "a read cut by a lost connection fails with EIO" "ERR EIO" "$r" ;;
esac
send a put "$D/big" "$D/copy"
sleep 0.3
kill_sessions
r=$(nth_result a 11 40)
case $r in
OK) ok "a write cut by a lost connection completed with every byte" cmp "$D/big" "$D/copy" ;;
*) ok_eq "a write cut by a lost connection fails with EIO" "ERR EIO" "$r" ;;
esac
send a stat "$D/big"
ok_eq "the session works after the cut transfers" OK "$(nth_result a 12 30)"

# Down for longer than the request timeout: EIO in bounded time, then back.
session b "request_timeout_ms=2000,keepalive_s=2"
send b stat "$D"
ok_eq "a second session works" OK "$(nth_result b 1 20)"
sshd_down
start=$SECONDS
send b stat "$D"
ok_eq "with sshd down past the request timeout the call fails with EIO" "ERR EIO" "$(nth_result b 2 20)"
ok "it failed within a few seconds of the timeout" test $((SECONDS - start)) -le 8
sshd_up
send b stat "$D"
sleep 1
send b stat "$D"
send b stat "$D"
send b stat "$D"
wait_for 40 have_results b 6
ok_eq "once sshd is back the session works again" OK "$(grep -E '^(OK|ERR)' "$T/b.out" | tail -n1)"

# A stalled server (processes stopped, the TCP connection still up): EIO
# after the request timeout, and the session carries on when it resumes.
stalled=$(descendants "$VM_SSHD_PID")
for p in $stalled; do kill -STOP "$p"; done
start=$SECONDS
send b stat "$D"
ok_eq "a stalled server: the call fails with EIO" "ERR EIO" "$(nth_result b 7 20)"
ok "within a few seconds of the timeout" test $((SECONDS - start)) -le 8
for p in $stalled; do kill -CONT "$p"; done
send b stat "$D"
ok_eq "the session works once the server resumes" OK "$(nth_result b 8 30)"

# The redial hook moves the session to a new address.
session c "request_timeout_ms=30000,redial_file=$T/redial"
send c stat "$D"
ok_eq "a third session works" OK "$(nth_result c 1 20)"
sshd_down
newport=$(free_port)
sed "s/^ListenAddress .*/ListenAddress 127.0.0.1:$newport/" "$T/sshd/sshd_config" >"$T/sshd_config.new"
sshd_up "$T/sshd_config.new"
echo "127.0.0.1 $newport" >"$T/redial"
send c stat "$D"
ok_eq "the redial hook's new port is used on reconnect" OK "$(nth_result c 2 30)"
t_done
