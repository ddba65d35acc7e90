#!/usr/bin/env bash
# The local layer's disk fills up (a 4 MiB tmpfs as the layer): the write
# that does not fit fails with ENOSPC, and nothing written before is lost,
# locally or on its way to the VM.
. "$top_srcdir/tests/lib.sh"
t_init

S=$T/small
mkdir -p "$S"
if [ "$(id -u)" != 0 ]; then
	skip "a full layer disk gives ENOSPC" "mounting a small tmpfs needs root"
	t_done
fi
mount -t tmpfs -o size=4m wakefs-test "$S" || { fail "a 4 MiB tmpfs mounts"; t_done; }
t_track_mount "$S"

sshd_start vm || { fail "sshd starts"; t_done; }
R=$T/vm
M=$T/mnt
L=$S/layer
mkdir -p "$R" "$M"
same_file() { [ -f "$2" ] && cmp -s "$1" "$2"; }
"$WAKEFS" -f -F "$VM_SSH_CONFIG" -o "local=$L,debounce_ms=200" "vm:$R" "$M" >>"$T/wakefs.log" 2>&1 &
t_track_pid $!
mount_wait "$M" 30 || { fail "wakefs mounts with the layer on a small disk"; t_done; }
pass "wakefs mounts with the layer on a small disk"

head -c $((1024 * 1024)) /dev/urandom >"$T/one"
ok "a 1 MiB file fits" cp "$T/one" "$M/one.bin"
ok "it reaches the VM" wait_for 30 same_file "$T/one" "$R/one.bin"
head -c $((8 * 1024 * 1024)) /dev/urandom >"$T/big"
dd if="$T/big" of="$M/big.bin" bs=64k 2>"$T/dd.err"
rc=$?
ok_not "an 8 MiB file does not fit" test "$rc" = 0
ok "the error is ENOSPC" grep -q 'No space left on device' "$T/dd.err"
ok "the file written before is intact in the mount" same_file "$T/one" "$M/one.bin"
ok "and in the layer" same_file "$T/one" "$L/one.bin"
# The flusher may be sending the partial file (a file the write failed on is
# still a file, and dirty) when it is deleted: its open copy keeps the space
# until that upload ends.
room() { [ "$(df --output=avail -k "$S" | tail -n 1)" -gt 1024 ]; }
ok "deleting the partial file" rm -f "$M/big.bin"
ok "frees the space" wait_for 30 room
printf 'after\n' >"$M/after.txt"
ok "a small save works again" test "$(cat "$M/after.txt")" = after
ok "and reaches the VM" wait_for 30 eval '[ "$(cat "$R/after.txt" 2>/dev/null)" = after ]'
ok "the VM still has the first file" same_file "$T/one" "$R/one.bin"
gone() { [ ! -e "$1" ]; }
ok "the VM does not keep the deleted partial file" wait_for 30 gone "$R/big.bin"
ok "unmount" umount_wait "$M"
t_done
