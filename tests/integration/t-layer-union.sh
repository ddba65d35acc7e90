#!/usr/bin/env bash
# The union of the local layer and the VM: the VM's files show through, a
# write copies up and wins, deletes leave whiteouts, listings merge, inode
# numbers stay the same across a remount, and saves reach the VM (a plain
# directory, outside any git repository, flushes everything).
. "$top_srcdir/tests/lib.sh"
t_init

sshd_start vm || { fail "sshd starts"; t_done; }
R=$T/vm
M=$T/mnt
L=$T/layer
mkdir -p "$R/sub/deeper" "$R/emptydir" "$M"
printf 'from the vm\n' >"$R/v.txt"
printf 'deep\n' >"$R/sub/deeper/d.txt"
printf 'keep\n' >"$R/sub/k.txt"
ln -s v.txt "$R/link"

# mount_layer [DEBOUNCE_MS]: mount with the local layer (debounce 200 ms).
mount_layer() {
	"$WAKEFS" -f -F "$VM_SSH_CONFIG" -o "local=$L,debounce_ms=${1:-200}" "vm:$R" "$M" >>"$T/wakefs.log" 2>&1 &
	t_track_pid $!
	mount_wait "$M" 30
}
mount_layer || { fail "wakefs mounts with a local layer"; t_done; }
pass "wakefs mounts with a local layer"

# --- the VM shows through -------------------------------------------------------
ok_eq "a VM file reads through the mount" "from the vm" "$(cat "$M/v.txt")"
ok_eq "a VM file in a subdirectory reads" "deep" "$(cat "$M/sub/deeper/d.txt")"
ok_eq "the root lists the VM's entries" "emptydir link sub v.txt" "$(ls "$M" | tr '\n' ' ' | sed 's/ $//')"
ok_eq "a VM symlink reads" "v.txt" "$(readlink "$M/link")"
ok_not "the layer's own state is not shown" test -e "$M/.wakefs"
ok_not "reading does not put the file in the layer" test -e "$L/v.txt"

# --- writes: copy-up, local wins, flushed ------------------------------------------
printf 'local edit\n' >>"$M/v.txt"
ok_eq "an append keeps the VM's content (copy-up)" "$(printf 'from the vm\nlocal edit')" "$(cat "$M/v.txt")"
ok "the edited file is in the layer" test -f "$L/v.txt"
ok "the edit reaches the VM" wait_for 20 grep -q 'local edit' "$R/v.txt"
printf 'new file\n' >"$M/sub/new.txt"
ok "a new file in a VM directory reaches the VM" wait_for 20 grep -q 'new file' "$R/sub/new.txt"
ok_eq "the merged listing has local and VM entries" "deeper k.txt new.txt" \
	"$(ls "$M/sub" | tr '\n' ' ' | sed 's/ $//')"
mkdir -p "$M/made/inner"
printf 'x\n' >"$M/made/inner/x"
ok "new directories and their files reach the VM" wait_for 20 test -f "$R/made/inner/x"

# --- deletes and renames ------------------------------------------------------------
rm "$M/sub/k.txt"
ok_not "an unlinked VM file is gone from the mount" test -e "$M/sub/k.txt"
ls "$M/sub" >/dev/null	# lists the VM, which still has it
ok "the unlink reaches the VM" wait_for 20 test ! -e "$R/sub/k.txt"
ok "wakefs flush" "$WAKEFS" flush "$M"
ok_not "it stays gone once the VM deleted it" test -e "$M/sub/k.txt"
ok_not "and out of the listing" eval 'ls "$M/sub" | grep -qx k.txt'
ok_not "rmdir of a non-empty VM directory fails" rmdir "$M/sub/deeper"
ok "the directory is still there" test -f "$M/sub/deeper/d.txt"
ok "rmdir of an empty VM directory succeeds" rmdir "$M/emptydir"
ok_not "it is gone from the mount" test -e "$M/emptydir"
mv "$M/sub/new.txt" "$M/sub/renamed.txt"
ok_eq "a renamed file reads under its new name" "new file" "$(cat "$M/sub/renamed.txt")"
ok "the rename reaches the VM" wait_for 20 test -f "$R/sub/renamed.txt"
ok "the old name is gone on the VM" wait_for 20 test ! -e "$R/sub/new.txt"
mv "$M/sub/deeper" "$M/moved"
ok_eq "a VM directory moves (mv copies it)" "deep" "$(cat "$M/moved/d.txt")"
ok_not "its old name is gone from the mount" test -e "$M/sub/deeper"
# A new directory the flusher made on the VM only as the parent of a file it
# sent (fsync) is a VM directory from then on: renaming it is EXDEV (mv
# copies), never a local-only rename that leaves the VM with the old tree.
mkdir "$M/fresh"
python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"sent")
os.fsync(fd)
os.close(fd)
' "$M/fresh/f.txt" >>"$T/check.log" 2>&1
ok_eq "fsync sends a file in a new directory" "sent" "$(cat "$R/fresh/f.txt" 2>/dev/null)"
r=$(python3 -c '
import errno, os, sys
try:
    os.rename(sys.argv[1], sys.argv[2])
    print("renamed")
except OSError as e:
    print(errno.errorcode[e.errno])
' "$M/fresh" "$M/fresh2" 2>>"$T/check.log")
ok_eq "renaming that directory is EXDEV, as for any VM directory" "EXDEV" "$r"
mv "$M/fresh" "$M/fresh3"
ok "mv moves it anyway" test -f "$M/fresh3/f.txt"
ok "wakefs flush" "$WAKEFS" flush "$M"
ok "the VM has it under the new name" test -f "$R/fresh3/f.txt"
ok_not "and not under the old one" test -e "$R/fresh"
# The cases below play sequences that end before the flusher runs (only
# fsync sends): on a slow machine a 200 ms debounce (50 ms for directories)
# could let it run in the middle, so they get a mount of their own with 20 s.
ok "unmount before the kind-change cases" umount_wait "$M"
mount_layer 20000 || { fail "remount with a long debounce"; t_done; }
# A name that changes kind: a sent file deleted and made again as a directory
# with a file in it, and a sent directory emptied, deleted and made again as a
# file. fsync of the new file waits for the VM to have it, the change of its
# parent first; neither is a conflict.
out=$(python3 -c '
import os, sys
os.chdir(sys.argv[1])
def sent(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, data)
    os.fsync(fd)
    return fd
def fsync_of(fd):
    try:
        os.fsync(fd)
        return "ok"
    except OSError as e:
        return e.strerror
os.close(sent("kind", b"a file"))
os.unlink("kind")
os.mkdir("kind")
print("file to dir:", fsync_of(sent("kind/inner", b"inner")))
os.mkdir("kind2")
os.close(sent("kind2/x", b"x"))
os.unlink("kind2/x")
os.rmdir("kind2")
print("dir to file:", fsync_of(sent("kind2", b"now a file")))
' "$M" 2>>"$T/check.log")
echo "$out" >>"$T/check.log"
ok_eq "a file made a directory: fsync of a file in it succeeds" "file to dir: ok" "$(grep '^file to dir' <<<"$out")"
ok_eq "the VM has the directory and the file" "inner" "$(cat "$R/kind/inner" 2>/dev/null)"
ok_eq "a directory made a file: fsync of it succeeds" "dir to file: ok" "$(grep '^dir to file' <<<"$out")"
ok_eq "the VM has the file" "now a file" "$(cat "$R/kind2" 2>/dev/null)"
ok "wakefs flush: everything landed, no conflict" "$WAKEFS" flush "$M"
# A sent file deleted and made again as a directory, which is renamed before
# the flusher ran: the VM's file must not show again under the old name.
out=$(python3 -c '
import os, sys
os.chdir(sys.argv[1])
fd = os.open("kind3", os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"x")
os.fsync(fd)
os.close(fd)
os.unlink("kind3")
os.mkdir("kind3")
os.listdir("kind3")
os.rename("kind3", "kind4")
print("old name:", os.path.lexists("kind3"))
' "$M" 2>>"$T/check.log")
ok_eq "a directory made over a deleted VM file, then renamed: the old name stays gone" \
	"old name: False" "$out"
ok "wakefs flush" "$WAKEFS" flush "$M"
ok "the VM has the directory under its new name" test -d "$R/kind4"
ok_not "and not the deleted file" test -e "$R/kind3"
# The same with a sent file renamed away (not deleted) before the directory
# is made at its old name.
# in_mount PYTHON: sent(NAME) makes NAME a file the VM has; then PYTHON runs
# in the mount. move_away FROM TO: mv (a rename, or a copy when the VM has
# the name); prints whether FROM still shows.
in_mount() {
	python3 -c '
import os, sys
os.chdir(sys.argv[1])
def sent(name):
    fd = os.open(name, os.O_WRONLY | os.O_CREAT, 0o644)
    os.fsync(fd)
    os.close(fd)
exec(sys.argv[2])
' "$M" "$1" 2>>"$T/check.log"
}
move_away() {
	mv "$M/$1" "$M/$2" 2>>"$T/check.log"
	echo "old name: $(python3 -c 'import os, sys; print(os.path.lexists(sys.argv[1]))' "$M/$1")"
}
in_mount 'sent("kind5"); os.rename("kind5", "kind6"); os.mkdir("kind5"); os.mkdir("kind5/sub"); os.unlink("kind6")'
out=$(move_away kind5 kind6)
ok_eq "a directory made over a VM file renamed away, then renamed: the old name stays gone" \
	"old name: False" "$out"
ok "wakefs flush" "$WAKEFS" flush "$M"
ok "the VM has the directory under the new name" test -d "$R/kind6/sub"
ok_not "and nothing under the old one" test -e "$R/kind5"
# Whatever is made over a whiteout keeps the VM version it hides: a symlink
# made where a sent file was renamed away, deleted, then a directory made
# there and renamed: the name stays gone, not the VM's file showing through.
in_mount 'sent("kind7"); os.rename("kind7", "kind8"); os.symlink("elsewhere", "kind7")
os.unlink("kind7"); os.mkdir("kind7"); os.close(os.open("kind7/in", os.O_WRONLY | os.O_CREAT, 0o644))'
out=$(move_away kind7 kind9)
ok_eq "a symlink, then a directory, made over a renamed VM file, then moved away: the name stays gone" \
	"old name: False" "$out"
ok "wakefs flush" "$WAKEFS" flush "$M"
ok_not "the VM has no file under the old name" test -e "$R/kind7"
ok "the file is under its new name" test -f "$R/kind8"
ok "and the directory under its own" test -f "$R/kind9/in"
ok "unmount after the kind-change cases" umount_wait "$M"
mount_layer || { fail "remount with the usual debounce"; t_done; }

# --- the VM changes a file nobody wrote -------------------------------------------------
printf 'v2 from the vm, longer\n' >"$R/sub/fresh.txt"
ok "a file made on the VM shows up" wait_for 30 test -f "$M/sub/fresh.txt"
ok_eq "and reads" "v2 from the vm, longer" "$(cat "$M/sub/fresh.txt")"

# --- the VM changes files the mount has read or sent (close-to-open) -----------------------
printf 'cached\n' >"$R/c.txt"
ok "a new VM file shows up (the change feed)" wait_for 30 test -f "$M/c.txt"
ok_eq "a VM file is read (and cached)" "cached" "$(cat "$M/c.txt")"
printf 'cached, then changed on the vm\n' >"$R/c.txt"
ok "the VM's change shows on the next open" \
	wait_for 20 eval "[ \"\$(cat '$M/c.txt')\" = 'cached, then changed on the vm' ]"
ok "wakefs flush sends everything and waits" "$WAKEFS" flush "$M"
printf 'the vm rewrote it\n' >"$R/v.txt"
ok "the VM's change of a file the mount sent shows on the next open" \
	wait_for 20 eval "[ \"\$(cat '$M/v.txt')\" = 'the vm rewrote it' ]"

# --- stable inode numbers ----------------------------------------------------------------
ino_v=$(stat -c %i "$M/v.txt")
ino_d=$(stat -c %i "$M/moved/d.txt")
ok "unmount" umount_wait "$M"
mount_layer || fail "remount"
ok_eq "a local file keeps its inode number across a remount" "$ino_v" "$(stat -c %i "$M/v.txt")"
ok_eq "a moved file keeps its inode number across a remount" "$ino_d" "$(stat -c %i "$M/moved/d.txt")"
ok_eq "the file survives the remount" "the vm rewrote it" "$(cat "$M/v.txt")"
ok_eq "a local-only edit survives the remount" "x" "$(cat "$M/made/inner/x")"
ok_not "an unlinked file stays gone after the remount" test -e "$M/sub/k.txt"
ok "unmount again" umount_wait "$M"
t_done
