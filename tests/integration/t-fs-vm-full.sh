#!/usr/bin/env bash
# The VM's disk fills under a write-through mount (a 1 MiB tmpfs on the VM
# side). Writes are sent behind write() (up to 8 MiB in flight), so the
# server's refusal can come after write() has returned: close() must then
# report it, as it does on NFS and sshfs, and fsync() must too. A program
# that checks close() never believes a truncated file was saved.
. "$top_srcdir/tests/lib.sh"
t_init
PY=$(python3 -c 'import sys; print(sys.executable)')
if [ "$(id -u)" != 0 ]; then
	skip "a full VM disk gives ENOSPC at close" "mounting a small tmpfs needs root"
	t_done
fi
sshd_start vm || { fail "sshd starts"; t_done; }
R=$T/vm M=$T/mnt
mkdir -p "$R/full" "$M"
mount -t tmpfs -o size=1m wakefs-test "$R/full" || { fail "a 1 MiB tmpfs mounts"; t_done; }
t_track_mount "$R/full"
"$WAKEFS" -f -F "$VM_SSH_CONFIG" -o writethrough "vm:$R" "$M" >>"$T/wakefs.log" 2>&1 &
t_track_pid $!
mount_wait "$M" 30 || { fail "wakefs mounts the VM directory"; t_done; }
pass "wakefs mounts the VM directory"

# write() then close() of 3 MiB into 1 MiB: prints where the error surfaced.
errors_of() {
	"$PY" - "$1" "$2" <<-'EOF2'
	import errno, os, sys
	path, how = sys.argv[1], sys.argv[2]
	fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
	where = "none"
	try:
	    for _ in range(3):
	        os.write(fd, os.urandom(1 << 20))
	except OSError as e:
	    where = "write:" + errno.errorcode[e.errno]
	if how == "fsync" and where == "none":
	    try:
	        os.fsync(fd)
	    except OSError as e:
	        where = "fsync:" + errno.errorcode[e.errno]
	try:
	    os.close(fd)
	except OSError as e:
	    if where == "none":
	        where = "close:" + errno.errorcode[e.errno]
	print(where)
	EOF2
}
r=$(errors_of "$M/full/a.bin" close)
ok_eq "3 MiB into a 1 MiB VM disk: ENOSPC at write() or close()" "ENOSPC" "${r#*:}"
r=$(errors_of "$M/full/b.bin" fsync)
ok_eq "the same with fsync: ENOSPC at write() or fsync()" "ENOSPC" "${r#*:}"
rm -f "$R/full/a.bin" "$R/full/b.bin"

# After the error, the mount and the handle-less paths work as before.
printf 'small\n' >"$M/full/small.txt"
ok "a small file still fits and is saved" test "$(cat "$R/full/small.txt" 2>/dev/null)" = small
ok "a file outside the full disk is written" cp /etc/hostname "$M/ok.txt"
ok "and reaches the VM whole" cmp -s /etc/hostname "$R/ok.txt"
head -c $((3 << 20)) /dev/urandom >"$T/big"
ok_not "cp of a file too big for the VM's disk fails" cp "$T/big" "$M/full/c.bin"
ok "unmount" umount_wait "$M"

# With the local layer, the save itself succeeds (the laptop's disk has room);
# the flush to the full VM disk fails, says why, keeps the file dirty and
# sends it once there is room.
rm -f "$R"/full/*
L=$T/layer
"$WAKEFS" -f -F "$VM_SSH_CONFIG" -o "local=$L,debounce_ms=100" "vm:$R" "$M" >>"$T/wakefs.log" 2>&1 &
t_track_pid $!
mount_wait "$M" 30 || { fail "wakefs mounts with a local layer"; t_done; }
ok "a 3 MiB save into the full VM directory succeeds locally" cp "$T/big" "$M/full/d.bin"
status_says() { "$WAKEFS" status "$M" >"$T/status.out" 2>&1; grep -q "$1" "$T/status.out"; }
ok "status names the full disk" wait_for 30 status_says "No space left on device"
ok "and lists the file as dirty" status_says "full/d.bin"
ok "the VM holds no partial file" eval '! [ -e "$R/full/d.bin" ] || ! cmp -s "$T/big" "$R/full/d.bin"'
# Between two attempts (a retry may be writing one at any moment).
ok "no temporary is left on the VM's full disk" wait_for 20 eval '! ls -A "$R/full" | grep -q .'
ok_not "wakefs flush says not everything landed" "$WAKEFS" flush "$M"
umount "$R/full"
ok "with room on the VM, the file lands whole" wait_for 60 cmp -s "$T/big" "$R/full/d.bin"
ok "unmount" umount_wait "$M"
t_done
