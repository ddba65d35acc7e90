#!/usr/bin/env bash
# POSIX semantics through a wakefs mount, each checked on the VM side with
# ssh: create/write/read/append, truncate, ftruncate, renames (overwrite,
# RENAME_NOREPLACE, RENAME_EXCHANGE), symlinks, hard links, chmod, chown,
# utimens (with UTIME_OMIT), statfs, fsync, an unlinked file kept open, odd
# names, error codes, a 5 GiB sparse file, and git working in the mount.
# The VM-side state is gathered in a few ssh calls (each one starts a login
# shell on the VM, which is slow on a loaded machine).
. "$top_srcdir/tests/lib.sh"
t_init
PY=$(python3 -c 'import sys; print(sys.executable)')
P=("$PY" "$top_srcdir/tests/tools/posix-ops.py")

sshd_start vm || { fail "sshd starts"; t_done; }
R=$T/vm          # the mounted directory, as the VM sees it
M=$T/mnt
mkdir -p "$R" "$M"
# WAKEFS_POSIX_FS=sshfs runs the same checks on sshfs (t-fs-vs-sshfs.sh).
if [ "${WAKEFS_POSIX_FS:-wakefs}" = sshfs ]; then
	sshfs -f -F "$VM_SSH_CONFIG" "vm:$R" "$M" >>"$T/wakefs.log" 2>&1 &
else
	"$WAKEFS" -f -F "$VM_SSH_CONFIG" -o writethrough "vm:$R" "$M" >>"$T/wakefs.log" 2>&1 &
fi
t_track_pid $!
if ! mount_wait "$M" 30; then
	fail "wakefs mounts the VM directory"
	t_done
fi
pass "wakefs mounts the VM directory"

# One multiplexed ssh connection for the VM-side checks.
ssh -F "$VM_SSH_CONFIG" -M -S "$T/cm" -N "$VM_ALIAS" >>"$T/ssh-master.log" 2>&1 &
t_track_pid $!
wait_for 20 ssh -F "$VM_SSH_CONFIG" -S "$T/cm" -O check "$VM_ALIAS"
vm() { ssh -F "$VM_SSH_CONFIG" -S "$T/cm" "$VM_ALIAS" "$@"; }
vm_hidden_count() { vm "ls -A '$R'" | grep -c '^\.wakefs_hidden_'; }
# vm_state NAME: run the script on stdin on the VM, keep its "key=value" lines.
vm_state() { vm bash -s >"$T/state-$1" 2>>"$T/vm-state.log"; }
# st NAME KEY: one value from a vm_state.
st() { sed -n "s/^$2=//p" "$T/state-$1"; }

big=$((5 * 1024 * 1024 * 1024))
nl=$'new\nline'

# --- the VM prepares what the mount will read -----------------------------------
vm_state setup <<EOF
printf 'from the vm' >'$R/b.txt'
printf x >'$R/made on the vm'
echo one >'$R/r1'
truncate -s $big '$R/vmbig'
printf MARK | dd of='$R/vmbig' bs=1 seek=$((big - 120)) conv=notrunc status=none
echo done=1
EOF
ok_eq "the VM side is prepared" "1" "$(st setup done)"

# --- files ------------------------------------------------------------------------
echo "hello" >"$M/a.txt"
echo "more" >>"$M/a.txt"
ok_eq "a file written on the VM reads back in the mount" "from the vm" "$(cat "$M/b.txt")"
ok_eq "stat shows the VM's size" "11" "$(stat -c %s "$M/b.txt")"
ok "truncate shrinks a file" truncate -s 3 "$M/b.txt"
ok_eq "ftruncate grows an open file" "100" "$("${P[@]}" ftruncate "$M/b.txt" 100)"
echo tr >"$M/t.txt"
ok "truncate to 0" truncate -s 0 "$M/t.txt"
ok_eq "fsync of a written file succeeds" "ok" "$("${P[@]}" fsync "$M/a.txt")"

# --- renames ----------------------------------------------------------------------
echo two >"$M/r2"
ok "rename over an existing file succeeds" mv -f "$M/r1" "$M/r2"
echo three >"$M/r3"
ok_eq "RENAME_NOREPLACE onto an existing file fails with EEXIST" "EEXIST" \
	"$("${P[@]}" renameat2 noreplace "$M/r3" "$M/r2")"
ok_eq "RENAME_NOREPLACE onto a free name succeeds" "ok" \
	"$("${P[@]}" renameat2 noreplace "$M/r3" "$M/r4")"
ok_eq "RENAME_EXCHANGE fails with EINVAL" "EINVAL" \
	"$("${P[@]}" renameat2 exchange "$M/r2" "$M/r4")"
mkdir "$M/dir1"
echo in >"$M/dir1/f"
ok "a directory renames" mv "$M/dir1" "$M/dir2"

# --- links, modes, owners, times --------------------------------------------------
ok "symlink" ln -s "a.txt" "$M/sl"
ok_eq "readlink in the mount" "a.txt" "$(readlink "$M/sl")"
ok_eq "the symlink resolves in the mount" "hello" "$(head -n 1 "$M/sl")"
ok "hard link" ln "$M/a.txt" "$M/hl"
ok "chmod" chmod 0751 "$M/a.txt"
ok_eq "the mount shows the mode" "751" "$(stat -c %a "$M/a.txt")"
echo o >"$M/own"
ok "chown to another uid and gid" chown 1234:2345 "$M/own"
echo o >"$M/own2"
chown 1234:2345 "$M/own2"
ok "chgrp alone" chgrp 3456 "$M/own2"
echo t >"$M/times"
ok "utimens sets both times" touch -d @1000000000 "$M/times"
echo t >"$M/omit"
touch -d @1000000000 "$M/omit"
ok_eq "utimensat with UTIME_OMIT for mtime" "ok" "$("${P[@]}" atime-only "$M/omit" 1200000000)"
echo t >"$M/now"
touch -d @1000000000 "$M/now"
before=$(date +%s)
ok "touch (UTIME_NOW) works" touch "$M/now"
ok "statfs answers" stat -f "$M"
ok "statfs reports a size" test "$(stat -f -c %b "$M")" -gt 0
ok "df works on the mount" df "$M"
ok "access: a readable file is readable" test -r "$M/a.txt"
ok_not "access: a file without x bits is not executable" test -x "$M/r2"

# --- names ------------------------------------------------------------------------
for n in "with space" "ünïcødé-日本語" "$nl"; do printf '%s' "$n" >"$M/$n"; done
ok "a VM-made name with spaces is listed" bash -c "ls -A '$M' | grep -qx 'made on the vm'"
ok_eq "the listing holds the newline name" "1" \
	"$("$PY" -c 'import os,sys; print(sum(n == "new\nline" for n in os.listdir(sys.argv[1])))' "$M")"

# --- directories and error codes ---------------------------------------------------
ok "mkdir" mkdir "$M/d"
touch "$M/d/x"
ok_eq "mkdir of an existing name: EEXIST" "EEXIST" "$("${P[@]}" mkdir "$M/d")"
ok_eq "O_EXCL create of an existing file: EEXIST" "EEXIST" "$("${P[@]}" create-excl "$M/d/x")"
ok_eq "rmdir of a non-empty directory: ENOTEMPTY" "ENOTEMPTY" "$("${P[@]}" rmdir "$M/d")"
ok_eq "unlink of a missing file: ENOENT" "ENOENT" "$("${P[@]}" unlink "$M/nothing")"
ok_eq "stat of a missing file: ENOENT" "ENOENT" "$("${P[@]}" stat "$M/nothing")"
ok_eq "opening a directory for writing: EISDIR" "EISDIR" "$("${P[@]}" open-write "$M/d")"
ok_eq "a file used as a directory: ENOTDIR" "ENOTDIR" "$("${P[@]}" stat "$M/d/x/y")"
ok_eq "a name longer than 255 bytes: ENAMETOOLONG" "ENAMETOOLONG" \
	"$("${P[@]}" create-excl "$M/$(printf 'n%.0s' $(seq 300))")"
mkdir "$M/d2"
touch "$M/d2/x"
rm "$M/d2/x"
ok "rmdir of an emptied directory" rmdir "$M/d2"

# --- files beyond 4 GiB ------------------------------------------------------------
ok "a 5 GiB sparse file is made by truncate" truncate -s "$big" "$M/big"
ok_eq "the mount sees 5 GiB" "$big" "$(stat -c %s "$M/big")"
ok_eq "a read near 5 GiB sees the VM's bytes" "MARK" "$("${P[@]}" pread "$M/vmbig" $((big - 120)) 4)"
ok_eq "a write at 4.5 GB succeeds" "ok" "$("${P[@]}" pwrite "$M/big" 4500000000 HIGH)"

# --- git in the mount ------------------------------------------------------------
g=(git -C "$M/repo" -c user.name=wakefs -c user.email=wakefs@example.invalid)
mkdir "$M/repo"
ok "git init in the mount" "${g[@]}" init -q
printf 'print("hi")\n' >"$M/repo/train.py"
ok "git add" "${g[@]}" add train.py
ok "git commit" "${g[@]}" commit -q -m first
printf 'print("bye")\n' >>"$M/repo/train.py"
ok "git commit -a of an edit" "${g[@]}" commit -q -a -m second
ok_eq "git log shows both commits" "second first" "$("${g[@]}" log --format=%s | tr '\n' ' ' | sed 's/ $//')"
ok_eq "git status is clean" "" "$("${g[@]}" status --porcelain)"

# --- what the VM has now ------------------------------------------------------------
vm_state after <<EOF
cd '$R' || exit 1
echo "a=\$(tr '\n' '|' <a.txt)"
echo "b=\$(stat -c %s b.txt) \$(head -c 3 b.txt)"
echo "t=\$(stat -c %s t.txt)"
echo "r2=\$(cat r2)"
echo "r1=\$(test -e r1 && echo present || echo gone)"
echo "r4=\$(cat r4)"
echo "r3=\$(test -e r3 && echo present || echo gone)"
echo "dir=\$(cat dir2/f) \$(test -e dir1 && echo present || echo gone)"
echo "sl=\$(readlink sl)"
echo "hl=\$(stat -c %h hl) \$(test \$(stat -c %i hl) = \$(stat -c %i a.txt) && echo same)"
echo "mode=\$(stat -c %a a.txt)"
echo "own=\$(stat -c %u:%g own)"
echo "own2=\$(stat -c %u:%g own2)"
echo "times=\$(stat -c '%X %Y' times)"
echo "omit=\$(stat -c '%X %Y' omit)"
echo "now=\$(stat -c %Y now)"
echo "space=\$(cat 'with space')"
echo "uni=\$(cat 'ünïcødé-日本語')"
echo "nl=\$(cat 'new
line' | tr '\n' '|')"
echo "d=\$(test -d d && echo dir) \$(test -e d2 && echo present || echo gone)"
echo "big=\$(stat -c %s big) \$(dd if=big bs=1 skip=4500000000 count=4 status=none)"
echo "git=\$(git -c safe.directory='*' -C repo log -1 --format=%s)"
EOF
ok_eq "a file written in the mount, then appended to, is on the VM" "hello|more|synced|" "$(st after a)"
ok_eq "the VM sees the truncate then the ftruncate" "100 fro" "$(st after b)"
ok_eq "the VM sees a truncate to 0" "0" "$(st after t)"
ok_eq "the VM has the renamed content under the target" "one" "$(st after r2)"
ok_eq "the rename's source is gone on the VM" "gone" "$(st after r1)"
ok_eq "the VM has the RENAME_NOREPLACE target; the failed renames changed nothing" "three" "$(st after r4)"
ok_eq "the RENAME_NOREPLACE source is gone" "gone" "$(st after r3)"
ok_eq "a renamed directory moved with its contents" "in gone" "$(st after dir)"
ok_eq "the VM has the symlink" "a.txt" "$(st after sl)"
ok_eq "the VM sees one inode with two links" "2 same" "$(st after hl)"
ok_eq "the VM has the mode" "751" "$(st after mode)"
ok_eq "the VM has the owner" "1234:2345" "$(st after own)"
ok_eq "chgrp keeps the owner (-1 means unchanged)" "1234:3456" "$(st after own2)"
ok_eq "the VM has both times" "1000000000 1000000000" "$(st after times)"
ok_eq "UTIME_OMIT kept mtime and atime changed" "1200000000 1000000000" "$(st after omit)"
ok "UTIME_NOW set the current time" test "$(st after now)" -ge "$((before - 2))"
ok_eq "a name with spaces" "with space" "$(st after space)"
ok_eq "a unicode name" "ünïcødé-日本語" "$(st after uni)"
ok_eq "a name with a newline" "new|line" "$(st after nl)"
ok_eq "mkdir and rmdir reached the VM" "dir gone" "$(st after d)"
ok_eq "the VM sees 5 GiB and the bytes written at 4.5 GB" "$big HIGH" "$(st after big)"
ok_eq "the VM's copy of the repository agrees" "second" "$(st after git)"
rm -f "$M/big" "$M/vmbig"

# --- an unlinked file that is still open ------------------------------------------
res=$("${P[@]}" unlinked "$M/u.txt")
ok_eq "an unlinked open file stays readable, writable, fchmod-able and ftruncate-able, and unlisted" \
	"gone|before after|12|0o600|before|listed:" "$res"
exec 7<"$M/r2"
rm "$M/r2"
ok_eq "while open, the VM keeps a hidden copy" "1" "$(vm_hidden_count)"
ok_eq "which the mount does not list" "0" "$(ls -A "$M" | grep -c wakefs_hidden)"
ok_eq "the open descriptor still reads" "one" "$(cat <&7)"
exec 7<&-
ok "closing removes the hidden copies" wait_for 10 eval '[ "$(vm_hidden_count)" = 0 ]'
ok_not "the unlinked names are gone on the VM" vm "test -e '$R/u.txt' || test -e '$R/r2'"

# --- real clients -----------------------------------------------------------------
tar -C "$top_srcdir" -cf "$T/src.tar" fs tests/unit
mkdir -p "$T/orig" "$M/untar"
tar -C "$T/orig" -xf "$T/src.tar"
ok "tar x of a source tree into the mount" tar -C "$M/untar" -xf "$T/src.tar"
ok "diff -r against the original through the mount" diff -r "$T/orig" "$M/untar"
ok "and on the VM" vm "diff -r '$T/orig' '$R/untar'"
printf 'v1\n' >"$M/edit.py"
ok_eq "an editor-style save (temp file, fsync, rename over the original)" "v2" \
	"$("$PY" -c 'import os, sys
p = sys.argv[1]
with open(p + ".swp", "w") as f:
    f.write("v2\n"); f.flush(); os.fsync(f.fileno())
os.rename(p + ".swp", p)
print(open(p).read().strip())' "$M/edit.py")"
ok_eq "the VM has the saved version and no temp file" "v2 none" \
	"$(vm "cat '$R/edit.py'; test -e '$R/edit.py.swp' || echo none" | tr '\n' ' ' | sed 's/ $//')"

ok "unmount" umount_wait "$M"
t_done
