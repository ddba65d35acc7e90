#!/usr/bin/env bash
# A VM directory that is a git clone: the first mount copies the VM's .git into
# the local layer once (before serving), git works in the mount, the VM's .git
# is never written, tracked edits reach the VM and ignored files do not; a
# second mount does not copy again. A .git file on the VM is left alone with a
# note. And the union: a VM directory made local by a write keeps showing the
# VM's other children.
. "$top_srcdir/tests/lib.sh"
t_init

command -v git >/dev/null || { skip "git in the mount" "git is not installed"; t_done; }
sshd_start vm || { fail "sshd starts"; t_done; }
R=$T/vm
M=$T/mnt
L=$T/layer
mkdir -p "$R" "$M"

vg() { git -C "$R" -c user.name=t -c user.email=t@t -c init.defaultBranch=main "$@"; }
g() { git -C "$M" -c user.name=t -c user.email=t@t "$@"; }
file_is() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }
gone() { ! kill -0 "$1" 2>/dev/null; }
# Names, sizes, modes and contents of everything under the VM's .git.
vm_git_sum() {
	(cd "$R" && find .git -printf '%p %s %m %y\n' | LC_ALL=C sort &&
		find .git -type f -exec sha256sum {} + | LC_ALL=C sort) | sha256sum
}

# The VM's clone: a few dozen tracked files in directories, an ignore
# pattern, three commits.
vg init -q
for d in src lib data; do
	mkdir -p "$R/$d"
	for i in $(seq 1 12); do printf '%s %s\n' "$d" "$i" >"$R/$d/f$i.txt"; done
done
printf '*.log\n' >"$R/.gitignore"
vg add -A . && vg commit -qm one
printf 'two\n' >>"$R/src/f1.txt" && vg commit -qam two
printf 'three\n' >>"$R/lib/f2.txt" && vg commit -qam three
printf 'old noise\n' >"$R/old.log"
# The working tree is an hour old and the VM's index knows it (not racily
# clean): git on the VM reads none of the files to call them unchanged.
find "$R" -path "$R/.git" -prune -o -type f -exec touch -d '1 hour ago' {} +
vg update-index -q --refresh
before=$(vm_git_sum)
# Names and contents of the files under DIR/.git, but for the index, which a
# mount gives its own stat data (its entries are compared with ls-files -s).
git_files() {
	(cd "$1" && find .git -type f ! -path .git/index -exec sha256sum {} + | LC_ALL=C sort &&
		git -C "$1" ls-files -s | sha256sum)
}
vm_files=$(git_files "$R")

mount_layer() {
	"$WAKEFS" -f -F "$VM_SSH_CONFIG" -o "local=$L,debounce_ms=200" "vm:$R" "$M" >"$T/$1.log" 2>&1 &
	WPID=$!
	t_track_pid "$WPID"
	mount_wait "$M" "$2"
}

# The VM archives .git through a login shell, which may be slow to start.
ok "the first mount (layer mode) starts" mount_layer mount1 300
ok "it said it copied the VM's .git, with the size" grep -q "copying the VM's .git .*iB" "$T/mount1.log"
ok "the local layer holds .git" test -f "$L/.git/HEAD"
ok "the layer's .git has the VM's files, byte for byte" eval '[ "$(git_files "$L")" = "$vm_files" ]'
ok_not "no temporary copy is left in the layer" eval 'ls "$L/.wakefs/tmp" | grep -q git-boot'
learned() { "$WAKEFS" status "$M" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["learned"])'; }
learned_some() { [ "$(learned)" -gt 0 ] 2>/dev/null; }
ok "the mount learns the VM's tree" wait_for 60 learned_some
t0=$(date +%s.%N)
st=$(g status --porcelain 2>&1)
ok_eq "git status in the mount is clean" "" "$st"
# The copied index was given the mount's stat data: git compared no content,
# so of the 37 tracked files only .gitignore (whose patterns git reads) was
# fetched into the layer's cache.
ok_eq "the first git status read no tracked file over the link but .gitignore" 1 \
	"$(find "$L/.wakefs/cache" -type f | wc -l)"
st=$(g status --porcelain 2>&1)
t1=$(date +%s.%N)
ok_eq "and again" "" "$st"
diag "two git status runs over $(g ls-files | wc -l) tracked files: $(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }") s"
ok_eq "git log shows the VM's history" "three two one" "$(g log --format=%s | tr '\n' ' ' | sed 's/ $//')"

printf 'edited\n' >"$M/src/f3.txt"
printf 'noise\n' >"$M/run.log"
ok "git add of a tracked edit" g add src/f3.txt
ok "git commit" g commit -qm four
ok "the tracked edit reaches the VM" wait_for 30 file_is "$R/src/f3.txt" edited
ok "wakefs flush" "$WAKEFS" flush "$M"
ok_not "the ignored new file stays on the laptop" test -e "$R/run.log"
ok "the VM's ignored file shows in the mount" file_is "$M/old.log" "old noise"
ok_eq "git status is clean after the commit" "" "$(g status --porcelain 2>&1)"
ok_eq "the VM's .git is unchanged" "$before" "$(vm_git_sum)"
ok_eq "the VM's own git still sees three commits" 3 "$(vg rev-list --count HEAD)"

ok "unmount" umount_wait "$M" 60
ok "the first wakefs exits" wait_for 60 gone "$WPID"
wait "$WPID"
ok_eq "with status 0" 0 "$?"
ok_eq "the VM's .git is still unchanged" "$before" "$(vm_git_sum)"

# For the union check below: a VM directory the mount has not seen yet.
mkdir -p "$R/d" && printf 'A\n' >"$R/d/a" && printf 'B\n' >"$R/d/b"
ok "the second mount starts" mount_layer mount2 60
ok_not "it does not copy .git again" grep -q "copying the VM's .git" "$T/mount2.log"
ok_eq "git log shows the local commit" "four three two one" "$(g log --format=%s | tr '\n' ' ' | sed 's/ $//')"
ok_eq "git status is clean but for the VM's new directory" "?? d/" "$(g status --porcelain 2>&1)"
# The union: a VM directory that becomes local by a write keeps the VM's children.
ok "a VM directory shows in the mount" test -f "$M/d/b"
printf 'C\n' >"$M/d/c"
ok "the new file makes the directory local" test -d "$L/d"
ok_eq "the directory lists the VM's and the new children" "a b c" "$(ls "$M/d" | tr '\n' ' ' | sed 's/ $//')"
ok_eq "a VM child still reads" "A" "$(cat "$M/d/a")"
ok "the VM's child can be edited" eval 'printf "A2\n" >"$M/d/a" && file_is "$M/d/a" A2'
ok_eq "the other VM child still lists" "a b c" "$(ls "$M/d" | tr '\n' ' ' | sed 's/ $//')"

ok "unmount again" umount_wait "$M" 60
ok "the second wakefs exits" wait_for 60 gone "$WPID"
wait "$WPID"
ok_eq "with status 0" 0 "$?"

# A .git file (a worktree's pointer): not followed, the mount works, a note.
R2=$T/vm2
L2=$T/layer2
mkdir -p "$R2" "$L2/.wakefs/tmp/git-boot.stale/x/.git"
printf 'gitdir: /nonexistent/repo/.git/worktrees/w\n' >"$R2/.git"
printf 'hello\n' >"$R2/a.txt"
"$WAKEFS" -f -F "$VM_SSH_CONFIG" -o "local=$L2" "vm:$R2" "$M" >"$T/mount3.log" 2>&1 &
WPID=$!
t_track_pid "$WPID"
ok "a VM directory with a .git file mounts" mount_wait "$M" 60
ok "a note says its .git is not copied" grep -q "not a directory" "$T/mount3.log"
ok_not "the layer has no .git" test -e "$L2/.git"
ok_not "a crashed bootstrap's leftovers are removed" test -e "$L2/.wakefs/tmp/git-boot.stale"
ok_eq "the files show" "hello" "$(cat "$M/a.txt")"
ok "unmount the third mount" umount_wait "$M" 60
ok "the third wakefs exits" wait_for 60 gone "$WPID"
wait "$WPID"
ok_eq "with status 0" 0 "$?"
ok_eq "the VM's .git file is unchanged" "gitdir: /nonexistent/repo/.git/worktrees/w" "$(cat "$R2/.git")"

# A VM that cannot make an archive (no shell or tar: here a test hook): the
# copy is made file by file over SFTP, with the same result.
L3=$T/layer3
WAKEFS_TEST_BOOTSTRAP_SFTP=1 "$WAKEFS" -f -F "$VM_SSH_CONFIG" -o "local=$L3" "vm:$R" "$M" >"$T/mount4.log" 2>&1 &
WPID=$!
t_track_pid "$WPID"
ok "a mount copying .git file by file starts" mount_wait "$M" 120
ok "it said so" grep -q "file by file" "$T/mount4.log"
ok "the layer's .git has the VM's files, byte for byte" eval '[ "$(git_files "$L3")" = "$vm_files" ]'
ok "git fsck in the mount is happy" g fsck --no-progress
ok_eq "git log shows the VM's history" "three two one" "$(g log --format=%s | tr '\n' ' ' | sed 's/ $//')"
ok_eq "git status shows the VM's working tree against it" " M src/f3.txt|?? d/" "$(g status --porcelain 2>&1 | tr '\n' '|' | sed 's/|$//')"
ok "unmount the fourth mount" umount_wait "$M" 60
ok "the fourth wakefs exits" wait_for 60 gone "$WPID"
wait "$WPID"
ok_eq "with status 0" 0 "$?"
ok_eq "the VM's .git is still unchanged" "$before" "$(vm_git_sum)"
# -o writethrough has no local layer: nothing is copied, git reads the VM's .git.
"$WAKEFS" -f -F "$VM_SSH_CONFIG" -o writethrough "vm:$R" "$M" >"$T/mount5.log" 2>&1 &
WPID=$!
t_track_pid "$WPID"
ok "a write-through mount starts" mount_wait "$M" 60
ok_not "it copies no .git" grep -q "copying" "$T/mount5.log"
ok_eq "git log in it reads the VM's history" "three two one" "$(g log --format=%s | tr '\n' ' ' | sed 's/ $//')"
ok "unmount the write-through mount" umount_wait "$M" 60
ok "the fifth wakefs exits" wait_for 60 gone "$WPID"
wait "$WPID"
ok_eq "with status 0" 0 "$?"
t_done
