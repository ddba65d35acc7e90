#!/usr/bin/env bash
# The VM goes away: saves still succeed at once in the local layer; they
# reach the VM when it is back, while mounted or at the next mount (an
# unmount without the VM keeps them in the layer).
. "$top_srcdir/tests/lib.sh"
t_init

sshd_start vm || { fail "sshd starts"; t_done; }
R=$T/vm
M=$T/mnt
L=$T/layer
mkdir -p "$R" "$M"
printf 'v1\n' >"$R/a.txt"
file_is() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }
# The VM goes away: its sshd and the sessions it serves (a stopped sshd
# leaves established connections alive; their processes are its children).
vm_down() {
	local kids
	kids=$(pgrep -P "$VM_SSHD_PID")
	sshd_stop
	for p in $kids; do stop_pid "$p"; done
	wait_for 20 eval '! vm_ssh true'
}
conn_down() { "$WAKEFS" status "$M" | grep -q '^connection: *down'; }
# The same sshd again, on the same port (the VM is back).
sshd_again() {
	/usr/sbin/sshd -D -e -f "$T/sshd/sshd_config" >>"$T/sshd.log" 2>&1 &
	VM_SSHD_PID=$!
	t_track_pid "$VM_SSHD_PID"
	wait_for 20 vm_ssh true
}
mount_layer() {
	"$WAKEFS" -f -F "$VM_SSH_CONFIG" -o "local=$L,debounce_ms=200,reconnect_timeout=5,unmount_flush=3" \
		"vm:$R" "$M" >>"$T/wakefs.log" 2>&1 &
	WAKEFS_PID=$!
	t_track_pid $WAKEFS_PID
	mount_wait "$M" 30
}
mount_layer || { fail "wakefs mounts with a local layer"; t_done; }
pass "wakefs mounts with a local layer"
ok_eq "the VM's file reads" "v1" "$(cat "$M/a.txt")"
ls -la "$M" >/dev/null

# --- the VM goes away while mounted, and comes back ---------------------------------
ok "the VM goes away" vm_down
ok "the mount sees the connection down" wait_for 30 conn_down
ok "a new file is saved while the VM is away" timeout 10 sh -c "printf 'offline\n' >'$M/b.txt'"
ok "an edit of a VM file is saved too (its cached copy)" timeout 10 sh -c "printf 'v2\n' >'$M/a.txt'"
ok_eq "the mount shows the saves" "offline v2" "$(cat "$M/b.txt" "$M/a.txt" | tr '\n' ' ' | sed 's/ $//')"
ok "listing the root works while away" timeout 10 ls "$M"
ok_not "the VM does not have the new file yet" test -e "$R/b.txt"
ok "the VM comes back" sshd_again
ok "the new file reaches the VM" wait_for 40 file_is "$R/b.txt" offline
ok "the edit reaches the VM" wait_for 40 file_is "$R/a.txt" v2

# --- an unmount while the VM is away keeps the changes for the next mount ---------------
ok "wakefs flush before the next outage" "$WAKEFS" flush "$M"
ok "the VM goes away again" vm_down
ok "the mount sees the connection down again" wait_for 30 conn_down
ok "a save while the VM is away" timeout 10 sh -c "printf 'kept\n' >'$M/c.txt'"
ok "unmount without the VM" umount_wait "$M"
ok "the daemon ends (a bounded flush)" wait_for 30 eval '! kill -0 $WAKEFS_PID'
ok "the save is in the local layer" file_is "$L/c.txt" kept
ok_not "and not on the VM" test -e "$R/c.txt"
ok "the VM comes back" sshd_again
mount_layer || fail "remount"
ok "the kept save reaches the VM after the remount" wait_for 40 file_is "$R/c.txt" kept
ok "unmount" umount_wait "$M"
t_done
