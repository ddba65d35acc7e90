#!/usr/bin/env bash
# fsync() through the mount returns when the VM has the file; a file both
# sides changed becomes a conflict: the VM's version is not overwritten, both
# are kept, and `wakefs status` says so.
. "$top_srcdir/tests/lib.sh"
t_init

sshd_start vm || { fail "sshd starts"; t_done; }
R=$T/vm
M=$T/mnt
L=$T/layer
mkdir -p "$R" "$M"
printf 'base\n' >"$R/c.txt"
printf 'first\n' >"$R/e.txt"
printf 'e1\n' >"$R/ed.txt"
# A debounce far longer than the test: only fsync and `wakefs flush` send.
"$WAKEFS" -f -F "$VM_SSH_CONFIG" -o "local=$L,debounce_ms=600000" "vm:$R" "$M" >>"$T/wakefs.log" 2>&1 &
t_track_pid $!
mount_wait "$M" 30 || { fail "wakefs mounts with a long debounce"; t_done; }
pass "wakefs mounts with a long debounce"

fsync_write() {	# FILE TEXT: write, fsync, close
	python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, sys.argv[2].encode())
os.fsync(fd)
os.close(fd)' "$1" "$2"
}

# --- fsync ------------------------------------------------------------------------
printf 'not synced\n' >"$M/plain.txt"
ok "fsync of a new file returns" fsync_write "$M/synced.txt" "synced"
ok_eq "the VM has it when fsync returns" "synced" "$(cat "$R/synced.txt" 2>/dev/null)"
ok_not "a file closed without fsync waits for the debounce" test -e "$R/plain.txt"
ok_eq "a VM file reads" "first" "$(cat "$M/e.txt")"
ok "fsync of a rewrite of a VM file returns" fsync_write "$M/e.txt" "second"
ok_eq "the VM has the rewrite when fsync returns" "second" "$(cat "$R/e.txt" 2>/dev/null)"

# --- an editor's save: a temporary file renamed over the target ------------------------
ok_eq "a VM file reads before the editor saves it" "e1" "$(cat "$M/ed.txt")"
printf 'e2\n' >"$M/.ed.txt.swp"
ok "the editor renames its temporary over the file" mv "$M/.ed.txt.swp" "$M/ed.txt"
ok "wakefs flush sends the save" "$WAKEFS" flush "$M"
ok_eq "the VM has the saved file" "e2" "$(cat "$R/ed.txt")"
ok_not "and not the temporary" test -e "$R/.ed.txt.swp"
printf 'e3\n' >"$M/.ed.txt.swp"
ok "the editor saves again with the same temporary name" mv "$M/.ed.txt.swp" "$M/ed.txt"
ok "wakefs flush sends the second save" "$WAKEFS" flush "$M"
ok_eq "the VM has the second save" "e3" "$(cat "$R/ed.txt")"

# --- conflict ------------------------------------------------------------------------
ok_eq "the VM's file reads" "base" "$(cat "$M/c.txt")"
printf 'local\n' >>"$M/c.txt"
printf 'the vm changed it meanwhile\n' >"$R/c.txt"
ok_not "wakefs flush reports that not everything landed" "$WAKEFS" flush "$M"
ok_eq "the VM's version is not overwritten" "the vm changed it meanwhile" "$(cat "$R/c.txt")"
ok_eq "the mount keeps the local version" "$(printf 'base\nlocal')" "$(cat "$M/c.txt")"
"$WAKEFS" status "$M" >"$T/status.out" 2>&1
ok "wakefs status lists the conflict" grep -q 'c.txt' "$T/status.out"
ok "wakefs status says conflict" grep -qi 'conflict: *1' "$T/status.out"
ok "the VM's version is kept in the layer" \
	grep -rqx 'the vm changed it meanwhile' "$L/.wakefs/conflicts"
ok_eq "the plain file was sent by wakefs flush" "not synced" "$(cat "$R/plain.txt" 2>/dev/null)"
ok "unmount" umount_wait "$M"
t_done
