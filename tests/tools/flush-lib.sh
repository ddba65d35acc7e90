# tests/tools/flush-lib.sh: drive tests/tools/flush-drive (the flusher over a
# real sshd, without FUSE) from the t-flush-*.sh and t-control-*.sh tests.
# Source after tests/lib.sh and sshd_start.
#
#   drive_start LAYER VMDIR MODE [DEBOUNCE_MS]   start it (tracked by pid)
#   d CMD ARGS...                                one command; succeeds on "ok"; $REPLY holds the answer
#   drive_kill                                   kill -9 (a crash)
#   drive_stop                                   quit cleanly

FLUSH_DRIVE=$top_builddir/tests/tools/flush-drive

drive_start() {
	coproc DRIVE { exec "$FLUSH_DRIVE" "$@" 2>>"$T/drive.log"; }
	DRIVE_OUT=${DRIVE[0]}
	DRIVE_IN=${DRIVE[1]}
	t_track_pid "$DRIVE_PID"
	local line=
	read -t 60 -r line <&"$DRIVE_OUT"
	[ "$line" = ready ] || { diag "flush-drive did not start (got '$line')"; return 1; }
}

d() {
	REPLY=
	echo "$*" >&"$DRIVE_IN" || return 1
	read -t 120 -r REPLY <&"$DRIVE_OUT" || { echo "$* -> (no answer)" >>"$T/drive.log"; return 1; }
	echo "$* -> $REPLY" >>"$T/drive.log"
	[ "${REPLY%% *}" = ok ]
}

# d_eq DESC EXPECTED CMD...: one check that the answer to CMD is EXPECTED.
d_eq() {
	local desc=$1 want=$2
	shift 2
	d "$@"
	ok_eq "$desc" "$want" "$REPLY"
}

# state_is PATH STATE: for wait_for.
state_is() { d state "$1" && [ "$REPLY" = "ok $2" ]; }

drive_kill() {
	kill -9 "$DRIVE_PID" 2>/dev/null
	wait "$DRIVE_PID" 2>/dev/null
	return 0
}

drive_stop() {
	echo quit >&"$DRIVE_IN" 2>/dev/null
	wait "$DRIVE_PID" 2>/dev/null
	return 0
}

# file_is FILE CONTENT: for wait_for.
file_is() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

# no_tmp DIR: no temporary upload left behind on the VM.
no_tmp() { [ -z "$(find "$1" -name '*.wakefs-tmp.*' | head -1)" ]; }

# vm_down: the VM goes away: stop sshd and cut its live sessions (each one a
# child process of the listener, found by pid, killed by pid).
descendants() {
	local c
	for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do
		echo "$c"
		descendants "$c"
	done
}
vm_down() {
	local kids
	kids=$(descendants "$VM_SSHD_PID")
	sshd_stop
	[ -n "$kids" ] && kill -9 $kids 2>/dev/null
	return 0
}

# vm_up: the VM comes back on the same port with the same keys.
vm_up() {
	/usr/sbin/sshd -D -e -f "$T/sshd/sshd_config" >>"$T/sshd.log" 2>&1 &
	VM_SSHD_PID=$!
	t_track_pid "$VM_SSHD_PID"
	wait_for 20 vm_ssh true
}
