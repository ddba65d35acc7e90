#!/usr/bin/env bash
# Port forwards over the mount's own SSH session (-o forward=SPEC, and a
# profile's `forward =` lines): bytes both ways through 127.0.0.1:LOCALPORT
# to an echo server on the "VM", from a few bytes to 10 MiB (sha256), several
# connections at once, EOF passed on both ways, a stalled reader holding a
# transfer while the SFTP mount keeps working (and the daemon's memory stays
# bounded), a closed remote port giving a closed connection, a reconnect
# resetting open forwarded connections while new ones work after it, a taken
# local port warning without failing the mount, and the port closed after
# unmount.
. "$top_srcdir/tests/lib.sh"
t_init
PY=/usr/bin/python3

# echo.py PORTFILE: echo every connection until its EOF, then close it.
cat >"$T/echo.py" <<'EOF'
import socket, sys, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(64)
def serve(c):
    try:
        while True:
            d = c.recv(65536)
            if not d:
                break
            c.sendall(d)
        c.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    c.close()
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF

# client.py PORT NBYTES [HOLDFILE]: send NBYTES (seeded random), half-close,
# read to EOF; print "same N" when the echo matches, else what came back.
# With HOLDFILE, print "connected" on stdout, and start reading only once
# HOLDFILE exists (the sender stalls meanwhile: backpressure).
cat >"$T/client.py" <<'EOF'
import hashlib, os, random, socket, sys, threading, time
port, n = int(sys.argv[1]), int(sys.argv[2])
hold = sys.argv[3] if len(sys.argv) > 3 else None
data = random.Random(n).randbytes(n)
s = socket.create_connection(("127.0.0.1", port), timeout=120)
if hold:
    print("connected", flush=True)
def send():
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
    except OSError as e:
        print("send error", e, flush=True)
threading.Thread(target=send, daemon=True).start()
if hold:
    while not os.path.exists(hold):
        time.sleep(0.05)
h, got = hashlib.sha256(), 0
try:
    while True:
        d = s.recv(262144)
        if not d:
            break
        h.update(d)
        got += len(d)
except OSError as e:
    print("recv error", e, "after", got)
    sys.exit(1)
print("same", n if h.digest() == hashlib.sha256(data).digest() else "DIFFERENT", got)
EOF

# closed PORT: connect and expect the connection to end (EOF or reset), not hang.
closed() {
	"$PY" - "$1" <<-'EOF'
		import socket, sys
		try:
		    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=60)
		    d = s.recv(10)
		    print("eof" if not d else "data")
		except ConnectionResetError:
		    print("reset")
		except socket.timeout:
		    print("hang")
	EOF
}
# refused PORT: nothing listens there.
refused() {
	"$PY" -c 'import socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
except ConnectionRefusedError:
    sys.exit(0)
sys.exit(1)' "$1"
}
listening() { ! refused "$1"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

sshd_start vm || { fail "sshd starts"; t_done; }
"$PY" "$T/echo.py" "$T/echo.port" >>"$T/echo.log" 2>&1 &
t_track_pid $!
wait_for 20 test -s "$T/echo.port" || { fail "the echo server starts"; t_done; }
EP=$(cat "$T/echo.port")
L=$(free_port)
CLOSEDP=$(free_port)	# nothing listens there on the VM
L2=$(free_port)
R=$T/vm
M=$T/mnt
mkdir -p "$R" "$M"
echo before >"$R/a"

"$WAKEFS" -f -F "$VM_SSH_CONFIG" \
	-o "writethrough,cache_timeout=0,forward=$L:127.0.0.1:$EP,forward=$L2:[127.0.0.1]:$CLOSEDP" \
	"vm:$R" "$M" >>"$T/wakefs.log" 2>&1 &
WPID=$!
t_track_pid $WPID
if ! mount_wait "$M" 30; then
	fail "wakefs mounts with forwards"
	t_done
fi
pass "wakefs mounts with forwards"
ok "the forward listens on 127.0.0.1:$L" listening "$L"

ok_eq "a few bytes go there and back" "same 5 5" "$("$PY" "$T/client.py" "$L" 5)"
ok_eq "4 KiB both ways" "same 4096 4096" "$("$PY" "$T/client.py" "$L" 4096)"
ok_eq "10 MiB both ways, sha256 equal" "same 10485760 10485760" \
	"$("$PY" "$T/client.py" "$L" 10485760)"

# Eight at once.
for i in 1 2 3 4 5 6 7 8; do
	"$PY" "$T/client.py" "$L" $((262144 * i + i)) >"$T/par.$i" 2>&1 &
	t_track_pid $!
	pids[i]=$!
done
good=0
for i in 1 2 3 4 5 6 7 8; do
	wait "${pids[i]}"
	[ "$(cat "$T/par.$i")" = "same $((262144 * i + i)) $((262144 * i + i))" ] && good=$((good + 1))
done
ok_eq "eight concurrent connections all echo correctly" 8 "$good"

# A reader that does not read: the transfer stalls, memory stays bounded,
# and the mount works meanwhile.
rss0=$(rss_kb $WPID)
"$PY" "$T/client.py" "$L" 67108864 "$T/release" >"$T/held.out" 2>&1 &
HELD=$!
t_track_pid $HELD
ok "a held transfer connects" wait_for 60 grep -qx connected "$T/held.out"
# Wait until the stall has reached the daemon: its RSS stops growing.
settled() {
	local a b
	a=$(rss_kb $WPID)
	sleep 0.5
	b=$(rss_kb $WPID)
	[ "$a" = "$b" ]
}
wait_for 60 settled
ok_eq "the mount reads while the transfer is stalled" before "$(cat "$M/a")"
echo during >"$M/b"
ok "and writes" wait_for 30 grep -qx during "$R/b"
rss1=$(rss_kb $WPID)
diag "daemon RSS: ${rss0} kB before, ${rss1} kB with 64 MiB pushed at a stalled reader"
ok "the daemon's memory stays bounded (grew $(( (rss1 - rss0) / 1024 )) MiB of 64)" \
	test $((rss1 - rss0)) -lt $((40 * 1024))
touch "$T/release"
wait $HELD
ok_eq "the held transfer completes intact" "same 67108864 67108864" "$(tail -n 1 "$T/held.out")"

r=$(closed "$L2" 2>&1)
case $r in
eof | reset) pass "a forward to a closed VM port gives a closed connection" ;;
*) fail "a forward to a closed VM port gives a closed connection"; diag "got: $r" ;;
esac
ok_eq "the first forward still works after it" "same 100 100" "$("$PY" "$T/client.py" "$L" 100)"

# --- reconnect -----------------------------------------------------------------
sshd_kill() {
	local kids
	kids=$(ps -o pid= --ppid "$VM_SSHD_PID" 2>/dev/null)
	stop_pid "$VM_SSHD_PID"
	for p in $kids; do stop_pid "$p"; done
}
sshd_restart() {
	/usr/sbin/sshd -D -e -f "$T/sshd/sshd_config" >>"$T/sshd.log" 2>&1 &
	VM_SSHD_PID=$!
	t_track_pid "$VM_SSHD_PID"
	wait_for 20 vm_ssh true
}
rm -f "$T/release"
"$PY" "$T/client.py" "$L" 67108864 "$T/release" >"$T/cut.out" 2>&1 &
CUT=$!
t_track_pid $CUT
ok "a connection is open before the link is cut" wait_for 60 grep -qx connected "$T/cut.out"
sshd_kill
touch "$T/release"
# Its last line: "recv error ..." (reset) or "same ..." short of the full echo.
ended() { ! kill -0 $CUT 2>/dev/null; }
wait_for 120 ended
out=$(tail -n 1 "$T/cut.out")
cut_ok() {
	ended && grep -qE '^(recv error|same )' "$T/cut.out" &&
		! grep -qx "same 67108864 67108864" "$T/cut.out"
}
ok "the cut connection ends without the full echo" cut_ok
diag "the cut connection: $out"
ok "the local port still listens while reconnecting" listening "$L"
ok "sshd is restarted on the same port" sshd_restart
echo_ok() { [ "$("$PY" "$T/client.py" "$L" 65536)" = "same 65536 65536" ]; }
ok "new forwarded connections work after the reconnect" wait_for 90 echo_ok
ok_eq "and the mount too" before "$(cat "$M/a")"

ok "unmount" umount_wait "$M"
ok "the daemon exits" wait_for 30 eval "! kill -0 $WPID"
ok "after unmount the local port is closed" refused "$L"

# --- profile mount: forward = lines --------------------------------------------
export XDG_STATE_HOME=$T/state XDG_RUNTIME_DIR=$T/run XDG_DATA_HOME=$T/data
mkdir -p "$T/run" "$T/vm/proj" "$T/mnt2" && chmod 700 "$T/run"
echo hello >"$T/vm/proj/a.txt"
L3=$(free_port)
"$PY" -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
print(s.getsockname()[1], flush=True); time.sleep(3600)' >"$T/taken.port" &
t_track_pid $!
wait_for 20 test -s "$T/taken.port"
TAKEN=$(cat "$T/taken.port")
export WAKEFS_CONFIG=$T/config
cat >"$WAKEFS_CONFIG" <<EOC
[fw]
provider = local
remote_dir = $T/vm/proj
forward = $TAKEN:127.0.0.1:$EP
forward = $L3:127.0.0.1:$EP
EOC
STATE=$XDG_STATE_HOME/wakefs/local/fw
t_track_mount "$T/mnt2"
"$WAKEFS" mount fw "$T/mnt2" >"$T/mount.out" 2>&1
ok_eq "a profile mount with a taken forward port still mounts" 0 $?
[ -f "$STATE/sshd.pid" ] && t_track_pid "$(cat "$STATE/sshd.pid")"
ok "the warning names the port and the profile" \
	grep -q "forward $TAKEN:127.0.0.1:$EP of 'fw' is off: cannot listen on 127.0.0.1:$TAKEN" \
	"$T/mount.out"
ok "the mount shows the files" grep -qx hello "$T/mnt2/a.txt"
ok_eq "the profile's other forward works" "same 300000 300000" \
	"$("$PY" "$T/client.py" "$L3" 300000)"
"$WAKEFS" umount "$T/mnt2" >"$T/umount.out" 2>&1
ok_eq "wakefs umount exits 0" 0 $?
ok "after umount the profile's forward port is closed" wait_for 30 refused "$L3"
t_done
