#!/usr/bin/env bash
# The daemon of a profile mount (provider = azure, against the fake ARM) is
# killed with saves still in its local layer (a long debounce). Its record
# stays behind: status and umount of the dead mount say so and touch no VM.
# A later `wakefs mount` of the profile finds the VM running, recovers the
# layer and sends the saves; its umount deallocates the VM all the same.
. "$top_srcdir/tests/lib.sh"
t_init
. "$top_srcdir/tests/tools/life-lib.sh"

life_azure_setup "guard_cmd = pgrep -f '[w]akefs-no-such-job-$$'" || t_done
echo hello >"$R/a.txt"

# --- the first mount, killed with unflushed saves ------------------------------------------
fake_ctl '{"next_ip": "127.0.0.1"}'
life_mount "$T/wakefs1.log" debounce_ms=600000
rc=$?
pid1=$LIFE_PID
[ $rc = 0 ] || { fail "the first mount mounts"; t_done; }
pass "the first mount mounts"
ok_eq "it started the VM" 1 "$(fake_requests POST $VMPATH/start)"
ok_eq "a VM file reads" hello "$(cat "$M/a.txt")"
ok "an edit is saved" sh -c "echo edited >'$M/a.txt'"
ok "a new file is saved" sh -c "echo new >'$M/n.txt'"
run "$T/status.out" "$WAKEFS" status "$M"
ok "status lists both as waiting in the layer" sh -c "grep -q a.txt '$T/status.out' && grep -q n.txt '$T/status.out'"
ok_eq "the VM's file is unchanged (long debounce)" hello "$(cat "$R/a.txt")"
ok_not "the new file is not on the VM" test -e "$R/n.txt"
kill -9 $pid1
ok "kill -9 ends the daemon" wait_for 20 gone $pid1
wait $pid1 2>/dev/null
fusermount3 -u -z "$M"
ok "the stale FUSE mount is cleaned" wait_for 20 eval '! is_mounted "$M"'
ok_eq "the VM still runs" running "$(vm_power dsvm)"

# --- what the dead mount left behind ----------------------------------------------------------
run "$T/status.out" timeout 60 "$WAKEFS" status "$M"
ok_not "status of the dead mount fails" test $? -eq 0
ok_not "and says nothing of the VM" grep -q "^vm:" "$T/status.out"
run "$T/umount.out" timeout 60 "$WAKEFS" umount "$M"
rc=$?
ok_not "umount of the dead mount fails" test $rc -eq 0
ok_not "at once (it does not wait for the dead daemon)" test $rc -eq 124
ok "saying it cannot unmount it" grep -q "cannot unmount '$M'" "$T/umount.out"
ok_eq "and deallocates nothing" 0 "$(fake_requests POST $VMPATH/deallocate)"

# --- the next mount recovers the layer ---------------------------------------------------------
life_mount "$T/wakefs2.log" debounce_ms=200
rc=$?
pid2=$LIFE_PID
[ $rc = 0 ] || { fail "the second mount mounts"; t_done; }
pass "the second mount mounts"
ok_eq "it did not start the running VM" 1 "$(fake_requests POST $VMPATH/start)"
ok "the edit saved before the kill reaches the VM" wait_for 60 file_is "$R/a.txt" edited
ok "and so does the new file" wait_for 60 file_is "$R/n.txt" new
ok_eq "the mount shows both" "edited new" "$(cat "$M/a.txt" "$M/n.txt" | tr '\n' ' ' | sed 's/ $//')"
run "$T/status.out" "$WAKEFS" status "$M"
ok "status shows the running VM" grep -Eq '^vm: +dsvm running for ' "$T/status.out"
run "$T/umount.out" "$WAKEFS" umount "$M"
ok_eq "wakefs umount of the second mount exits 0" 0 $?
ok "it reports the deallocation" grep -q "deallocated 'dsvm'" "$T/umount.out"
ok "the daemon is gone" wait_for 20 gone $pid2
ok_eq "the fake saw one deallocate" 1 "$(fake_requests POST $VMPATH/deallocate)"
ok_eq "the VM is left deallocated" deallocated "$(vm_power dsvm)"
ok_eq "no mount record is left" "" "$(find "$T/run" -name '*.life*')"
ok_not "no sanitizer report in the daemons' logs" grep -Eq 'Sanitizer|runtime error' \
	"$T/wakefs1.log" "$T/wakefs2.log"
t_done
