#!/bin/bash
# The flusher makes the VM match the local layer: a closed file reaches the VM
# after the debounce, parents are made, fsync sends at once, rename and delete
# follow, mode and mtime are kept, no temporary file is left behind.
. "$top_srcdir/tests/lib.sh"
t_init
. "$top_srcdir/tests/tools/flush-lib.sh"
sshd_start || { fail "sshd starts"; t_done; }
V=$T/vm
L=$T/layer
mkdir -p "$V" "$L"

# A plain directory (no git): everything is flushed.
drive_start "$L" "$V" tracked 200 || { fail "flush-drive starts"; t_done; }

ok "a write is taken" d write /a.txt hello world
ok "the VM has it after the debounce" wait_for 20 file_is "$V/a.txt" "hello world"
ok "its state becomes clean" wait_for 20 state_is /a.txt clean
ok_eq "the VM's mtime is the local one" "$(stat -c %Y "$L/a.txt")" "$(stat -c %Y "$V/a.txt")"

ok "a write in new directories is taken" d write /x/y/z.txt deep
ok "the VM gets the parents and the file" wait_for 20 file_is "$V/x/y/z.txt" deep

chmod 0751 "$L/x/y/z.txt"
ok "a mode change is sent" d write /x/y/z.txt deep2
ok "fsync returns after the send" d fsync /x/y/z.txt
ok_eq "the mode reached the VM" "751" "$(stat -c %a "$V/x/y/z.txt")"

ok "a rename is taken" d mv /a.txt /b.txt
ok "flush all" d all 30000
ok "the VM has the new name" file_is "$V/b.txt" "hello world"
ok_not "the VM lost the old name" test -e "$V/a.txt"
ok_eq "the old name is forgotten" "ok none" "$(d state /a.txt; echo "$REPLY")"

ok "a delete is taken" d rm /b.txt
ok "flush all after the delete" d all 30000
ok_not "the VM no longer has it" test -e "$V/b.txt"
ok_eq "the whiteout is gone" "ok none" "$(d state /b.txt; echo "$REPLY")"

# Deleting what the VM no longer has is fine too.
ok "a delete of a missing file" d rm /never-there
ok "flush all settles it" d all 30000

ok "no temporary upload is left on the VM" no_tmp "$V"
d stats
ok_eq "nothing is left queued or dirty" "ok queued=0 dirty=0 held=0 conflict=0" "$REPLY"
drive_stop

# A long debounce: nothing is sent before it, except by fsync.
drive_start "$L" "$V" tracked 60000 || { fail "flush-drive restarts"; t_done; }
ok "a write under a long debounce" d write /slow.txt later
sleep 1
ok_not "the VM does not have it yet" test -e "$V/slow.txt"
ok "fsync sends it now" d fsync /slow.txt
ok "the VM has it when fsync returns" file_is "$V/slow.txt" later
ok "its state is clean when fsync returns" state_is /slow.txt clean
drive_stop
t_done
