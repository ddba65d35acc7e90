#!/bin/bash
# The git policy decides what leaves the laptop: tracked files go, untracked
# ones are held until `git add`, .git never goes; unignored and all widen it.
. "$top_srcdir/tests/lib.sh"
t_init
. "$top_srcdir/tests/tools/flush-lib.sh"
sshd_start || { fail "sshd starts"; t_done; }
V=$T/vm
L=$T/layer
mkdir -p "$V" "$L"
g() { git -C "$L" -c user.name=t -c user.email=t@t "$@"; }
g init -q || { fail "git init"; t_done; }
printf '*.log\n' >"$L/.gitignore"

drive_start "$L" "$V" tracked 200 || { fail "flush-drive starts"; t_done; }
ok "a new file is taken" d write /train.py v1
ok "untracked, it is held" wait_for 20 state_is /train.py held
ok_not "the VM does not have the held file" test -e "$V/train.py"
g add train.py
ok "after git add the VM has it" wait_for 20 file_is "$V/train.py" v1
ok "and it is clean" wait_for 20 state_is /train.py clean

ok "an edit of a tracked file is taken" d write /train.py v2
ok "the VM has the edit" wait_for 20 file_is "$V/train.py" v2

ok "a write under .git is taken" d write /.git/wakefs-probe secret
ok "it is held" wait_for 20 state_is /.git/wakefs-probe held
ok "an ignored file is taken" d write /run.log noise
ok "it is held" wait_for 20 state_is /run.log held
ok "fsync of a held file succeeds without sending" d fsync /run.log

mkdir -p "$L/sub"
g -C sub init -q 2>/dev/null || git -C "$L/sub" init -q
ok "a file of a nested repository is taken" d write /sub/inner.txt in
ok "the nested repository holds it" wait_for 20 state_is /sub/inner.txt held
git -C "$L/sub" add inner.txt
ok "added there, the VM has it" wait_for 20 file_is "$V/sub/inner.txt" in

# Delete and rename of tracked files, also when git changed the index first.
g add .gitignore && g commit -qm one
ok "everything settles" d all 30000
g rm -qf train.py
ok "git rm then the unlink" d rm /train.py
ok "the tracked delete reaches the VM" wait_for 20 eval '! test -e "$V/train.py"'

drive_stop
ok "nothing under .git reached the VM" eval '! test -e "$V/.git"'
ok "no ignored file reached the VM" eval '! test -e "$V/run.log"'

# unignored: untracked files go unless ignored.
drive_start "$L" "$V" unignored 200 || { fail "flush-drive restarts"; t_done; }
ok "an untracked file is taken" d write /notes.md hi
ok "unignored: the VM has it" wait_for 20 file_is "$V/notes.md" hi
ok "an ignored file is taken" d write /run2.log noise
ok "unignored: it is held" wait_for 20 state_is /run2.log held
ok "unignored: the earlier held ignored file is still held" state_is /run.log held
drive_stop

# all: everything but .git.
drive_start "$L" "$V" all 200 || { fail "flush-drive restarts"; t_done; }
ok "all: the held ignored file is sent at startup" wait_for 20 file_is "$V/run.log" noise
ok "all: .git stays held" state_is /.git/wakefs-probe held
ok "all: flush all" d all 30000
ok "all: still nothing under .git on the VM" eval '! test -e "$V/.git"'
drive_stop
t_done
