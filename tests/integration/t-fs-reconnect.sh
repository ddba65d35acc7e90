#!/usr/bin/env bash
# The mount survives the VM's sshd going away: stopped and restarted (by pid)
# during a mount, operations resume; gone for longer than reconnect_timeout,
# a read fails with EIO in bounded time, the daemon stays alive, and the
# mount works again once sshd is back.
. "$top_srcdir/tests/lib.sh"
t_init
PY=$(python3 -c 'import sys; print(sys.executable)')
TIMEOUT=4	# reconnect_timeout, seconds

sshd_start vm || { fail "sshd starts"; t_done; }
R=$T/vm
M=$T/mnt
mkdir -p "$R" "$M"
echo before >"$R/a"
echo late >"$R/late"

# sshd_kill: stop the listening sshd and the sessions it forked, by pid.
sshd_kill() {
	local kids
	kids=$(ps -o pid= --ppid "$VM_SSHD_PID" 2>/dev/null)
	stop_pid "$VM_SSHD_PID"
	for p in $kids; do stop_pid "$p"; done
}
# sshd_restart: the same sshd (config, port, host key) again.
sshd_restart() {
	/usr/sbin/sshd -D -e -f "$T/sshd/sshd_config" >>"$T/sshd.log" 2>&1 &
	VM_SSHD_PID=$!
	t_track_pid "$VM_SSHD_PID"
	wait_for 20 vm_ssh true
}
# read_err FILE: read it; print "ok:CONTENT" or the errno name, and the seconds taken.
read_err() {
	"$PY" - "$1" <<-'EOF'
		import errno, os, sys, time
		t = time.monotonic()
		try:
		    r = "ok:" + open(sys.argv[1]).read().strip()
		except OSError as e:
		    r = errno.errorcode.get(e.errno, str(e.errno))
		print(r, int(time.monotonic() - t))
	EOF
}

"$WAKEFS" -f -F "$VM_SSH_CONFIG" -o writethrough,reconnect_timeout=$TIMEOUT,cache_timeout=0 \
	"vm:$R" "$M" >>"$T/wakefs.log" 2>&1 &
WPID=$!
t_track_pid $WPID
if ! mount_wait "$M" 30; then
	fail "wakefs mounts the VM directory"
	t_done
fi
pass "wakefs mounts the VM directory"
ok_eq "a read works" "before" "$(cat "$M/a")"

# --- sshd stopped and restarted ---------------------------------------------------
sshd_kill
ok "sshd is restarted on the same port" sshd_restart
vm_ssh "echo after >'$R/b'"
ok "operations resume after the restart" wait_for 60 grep -qx after "$M/b"
echo written >"$M/c"
ok_eq "a write after the restart reaches the VM" "written" "$(vm_ssh "cat '$R/c'")"
ok_eq "the file read before still reads" "before" "$(cat "$M/a")"

# --- sshd gone beyond reconnect_timeout -----------------------------------------------
sshd_kill
read -r res secs < <(timeout 120 bash -c "$(declare -f read_err); PY='$PY' read_err '$M/late'")
diag "the read failed after ${secs:-?} s with ${res:-nothing}"
ok_eq "with sshd gone, a read fails with EIO" "EIO" "$res"
ok "in bounded time (reconnect_timeout $TIMEOUT s plus slack)" test "${secs:-999}" -le $((TIMEOUT + 30))
ok "the daemon stays alive" kill -0 "$WPID"
# (mountpoint(1) would stat the root, which fails with EIO meanwhile.)
ok "the mount stays in the mount table" grep -qF " $M fuse.wakefs " /proc/mounts

# --- and back -------------------------------------------------------------------
ok "sshd comes back" sshd_restart
ok "the mount works again" wait_for 60 grep -qx late "$M/late"
ok "the daemon is still the same process" kill -0 "$WPID"
ok "unmount" umount_wait "$M"
ok "the daemon exits after the unmount" wait_for 20 eval "! kill -0 $WPID"
t_done
