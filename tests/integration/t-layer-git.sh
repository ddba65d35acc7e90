#!/usr/bin/env bash
# git in the mount: init, add, commit, branches, stash and git's lock files
# work at local speed; .git and untracked files stay on the laptop, tracked
# files reach the VM, and a checkout ends with the VM holding the tree.
. "$top_srcdir/tests/lib.sh"
t_init

sshd_start vm || { fail "sshd starts"; t_done; }
R=$T/vm
M=$T/mnt
L=$T/layer
mkdir -p "$R" "$M"
"$WAKEFS" -f -F "$VM_SSH_CONFIG" -o "local=$L,debounce_ms=200" "vm:$R" "$M" >>"$T/wakefs.log" 2>&1 &
t_track_pid $!
mount_wait "$M" 30 || { fail "wakefs mounts with a local layer"; t_done; }
pass "wakefs mounts with a local layer"

g() { git -C "$M/proj" -c user.name=t -c user.email=t@t -c init.defaultBranch=main "$@"; }
file_is() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

mkdir "$M/proj"
ok "git init in the mount" g init -q
ok ".git lives in the local layer" test -d "$L/proj/.git"
printf 'print(1)\n' >"$M/proj/train.py"
printf '*.log\n' >"$M/proj/.gitignore"
printf 'noise\n' >"$M/proj/run.log"
printf 'scratch\n' >"$M/proj/notes.txt"
ok "git add" g add train.py .gitignore
ok "git commit" g commit -qm one
ok "the tracked file reaches the VM" wait_for 20 file_is "$R/proj/train.py" "print(1)"
ok "the VM has .gitignore" wait_for 20 test -f "$R/proj/.gitignore"
ok "wakefs flush" "$WAKEFS" flush "$M"
ok_not "nothing of .git is on the VM" test -e "$R/proj/.git"
ok_not "the ignored file stays on the laptop" test -e "$R/proj/run.log"
ok_not "the untracked file stays on the laptop" test -e "$R/proj/notes.txt"
ok_eq "git status is clean but for the untracked file" "?? notes.txt" "$(g status --porcelain)"
ok "after git add, the untracked file reaches the VM" eval 'g add notes.txt && wait_for 20 file_is "$R/proj/notes.txt" scratch'

# Branches: the VM follows the checkout of tracked files.
ok "git checkout -b" g checkout -qb feature
printf 'print(2)\n' >"$M/proj/train.py"
printf 'new\n' >"$M/proj/feature.py"
ok "commit on the branch" eval 'g add -A . && g commit -qm two'
ok "the branch's version reaches the VM" wait_for 20 file_is "$R/proj/train.py" "print(2)"
ok "the branch's new file reaches the VM" wait_for 20 file_is "$R/proj/feature.py" "new"
ok "git checkout main" g checkout -q main
ok_eq "the mount shows main's version" "print(1)" "$(cat "$M/proj/train.py")"
ok "the VM gets main's version back" wait_for 20 file_is "$R/proj/train.py" "print(1)"
ok_not "the file main lacks is gone from the mount" test -e "$M/proj/feature.py"

# Stash: a dirty tree saved and restored.
printf 'print(3)\n' >"$M/proj/train.py"
ok "git stash" g stash -q
ok_eq "the stash restored the committed version" "print(1)" "$(cat "$M/proj/train.py")"
ok "git stash pop" g stash pop -q
ok_eq "the change is back" "print(3)" "$(cat "$M/proj/train.py")"
ok "the VM ends with the working tree's version" wait_for 20 file_is "$R/proj/train.py" "print(3)"

# Lock files: config.lock/index.lock created, renamed over and removed quickly.
locks_ok=1
for i in $(seq 1 40); do
	g config "test.key$i" "value$i" || { locks_ok=0; break; }
	g update-index --refresh -q >/dev/null 2>&1
done
ok_eq "40 git config writes (config.lock renamed over config) succeed" 1 "$locks_ok"
ok_eq "the config holds every key" "value40" "$(g config test.key40)"
ok "the config is intact" g config --list
ok_not "no lock file is left behind" eval 'ls "$M/proj/.git" | grep -q "\.lock$"'
ok "git fsck is happy" g fsck --no-progress
ok "git log shows both commits" eval '[ "$(g rev-list --all | wc -l)" -ge 2 ]'
ok_not "the VM still has no .git" test -e "$R/proj/.git"

ok "unmount" umount_wait "$M"
t_done
