#!/bin/bash
# Nothing is lost: a change journaled before a crash (kill -9) is flushed by
# the next start; while the VM is unreachable changes stay dirty, flush all
# says so, and they are sent when it is back.
. "$top_srcdir/tests/lib.sh"
t_init
. "$top_srcdir/tests/tools/flush-lib.sh"
sshd_start || { fail "sshd starts"; t_done; }
V=$T/vm
L=$T/layer
mkdir -p "$V" "$L"

drive_start "$L" "$V" tracked 60000 || { fail "flush-drive starts"; t_done; }
ok "a write under a long debounce" d write /a.txt saved
ok "a delete under a long debounce" d write /gone.txt x
ok "fsync it first" d fsync /gone.txt
ok "then delete it" d rm /gone.txt
drive_kill
ok_not "the VM did not get the write before the crash" test -e "$V/a.txt"
ok "the VM still has the deleted file" test -e "$V/gone.txt"

drive_start "$L" "$V" tracked 60000 || { fail "flush-drive restarts"; t_done; }
ok "after the restart the VM gets the write" wait_for 30 file_is "$V/a.txt" saved
ok "and loses the deleted file" wait_for 30 eval '! test -e "$V/gone.txt"'
ok "the path is clean" wait_for 20 state_is /a.txt clean
drive_stop

drive_start "$L" "$V" tracked 200 || { fail "flush-drive restarts"; t_done; }
vm_down
ok "a write while the VM is unreachable succeeds" d write /b.txt offline
ok_not "flush all reports that it could not send" d all 3000
ok "the path stays dirty" state_is /b.txt dirty
ok_not "the VM does not have it" test -e "$V/b.txt"
ok "the VM comes back" vm_up
ok "the write reaches the VM once it is back" wait_for 60 file_is "$V/b.txt" offline
ok "the path is clean" wait_for 20 state_is /b.txt clean
ok "flush all succeeds" d all 30000
ok "no temporary upload is left on the VM" no_tmp "$V"
drive_stop
t_done
