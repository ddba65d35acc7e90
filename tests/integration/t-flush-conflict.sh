#!/bin/bash
# Both sides changed a file: nothing is overwritten, both versions are kept,
# the path is in conflict until `resolve` keeps one side.
. "$top_srcdir/tests/lib.sh"
t_init
. "$top_srcdir/tests/tools/flush-lib.sh"
sshd_start || { fail "sshd starts"; t_done; }
V=$T/vm
L=$T/layer
M=$T/mnt
mkdir -p "$V" "$L" "$M"
for f in f g h; do
	echo "base $f" >"$V/$f.txt"
	touch -d '2020-01-01 00:00:00' "$V/$f.txt"
done

drive_start "$L" "$V" tracked 200 || { fail "flush-drive starts"; t_done; }
ok "control socket" d control "$M"
for f in f g h; do
	ok "clean copy of $f" d fetch /$f.txt
	echo "vm $f" >"$V/$f.txt"
	touch -d '2021-01-01 00:00:00' "$V/$f.txt"
done

ok "a local edit of a file the VM changed" d write /f.txt local f
ok "it becomes a conflict" wait_for 20 state_is /f.txt conflict
ok_eq "the VM's version is not overwritten" "vm f" "$(cat "$V/f.txt")"
ok_eq "the local version is kept" "local f" "$(cat "$L/f.txt")"
ok_eq "the VM's version is kept beside it" "vm f" "$(cat "$L/.wakefs/conflicts/f.txt")"
ok "no temporary upload is left on the VM" no_tmp "$V"
"$FLUSH_DRIVE" status "$M" >"$T/status.out" 2>&1
ok "status lists the conflict" grep -q '^conflict: *1' "$T/status.out"
ok "status names the path" grep -q '^  /f.txt' "$T/status.out"
ok_not "flush reports the conflict" "$FLUSH_DRIVE" flush "$M"
ok_not "flush all says conflict" d all 10000
ok "keep the local version" d resolve /f.txt local
ok_eq "the VM has the local version" "local f" "$(cat "$V/f.txt")"
ok "the path is clean" state_is /f.txt clean
ok_not "the kept copy is gone" test -e "$L/.wakefs/conflicts/f.txt"

ok "a local edit of g" d write /g.txt local g
ok "g becomes a conflict" wait_for 20 state_is /g.txt conflict
ok "keep the VM's version of g (through the client)" "$FLUSH_DRIVE" resolve "$M" "$M/g.txt" --keep=remote
ok_eq "the local copy is the VM's" "vm g" "$(cat "$L/g.txt")"
ok_eq "the VM still has its version" "vm g" "$(cat "$V/g.txt")"
ok "g is clean" state_is /g.txt clean

ok "a local delete of a file the VM changed" d rm /h.txt
ok "the delete becomes a conflict" wait_for 20 state_is /h.txt conflict
ok_eq "the VM keeps its version" "vm h" "$(cat "$V/h.txt")"
ok "keep the local side: delete it" d resolve /h.txt local
ok_not "the VM no longer has it" test -e "$V/h.txt"
ok "flush succeeds once nothing conflicts" "$FLUSH_DRIVE" flush "$M"
drive_stop
t_done
