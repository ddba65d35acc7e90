#!/usr/bin/env bash
# wakefs mount PROFILE with provider = azure, against the fake ARM server: the
# "VM" is a throwaway sshd whose address the fake hands out as the public IP.
# The mount starts the deallocated VM (start, then polls) and mounts it at that
# address with the host key checked under the profile name; umount flushes,
# then deallocates (the fake records what the VM's file held when the
# deallocate came); --keep-vm and the guard keep it; status says how long it
# runs.
. "$top_srcdir/tests/lib.sh"
t_init
. "$top_srcdir/tests/tools/life-lib.sh"

# The VM's host key is known under the profile name only, not under its address.
MARK=wakefs-azure-job-$$
life_azure_setup "guard_cmd = pgrep -af '[${MARK:0:1}]${MARK:1}'" || t_done
echo hello >"$R/a.txt"
KH=known_hosts=$T/known_hosts


ok_eq "the fake's VM is deallocated" deallocated "$(vm_power dsvm)"
fake_ctl '{"next_ip": "127.0.0.1", "polls": 2}'
t_track_mount "$M"
# A long debounce: the edit below stays in the local layer until the unmount.
run "$T/mount.out" "$WAKEFS" mount dsvm "$M" -o "$KH,debounce_ms=600000"
rc=$?
ok_eq "wakefs mount dsvm succeeds" 0 $rc
[ $rc = 0 ] || t_done
ok_eq "the mount started the VM" running "$(vm_power dsvm)"
ok "the fake saw the start and polled it to the end (2 InProgress + Succeeded)" python3 -c '
import json, sys, urllib.request
log = json.load(urllib.request.urlopen(sys.argv[1] + "/_requests"))
i = next(i for i, r in enumerate(log) if r["method"] == "POST" and r["path"].endswith("/virtualMachines/dsvm/start"))
polls = [r for r in log[i + 1:] if "/operations/" in r["path"]]
sys.exit(0 if len(polls) >= 3 else 1)' "$ARM"
ok_eq "the fake handed out the sshd's address" 127.0.0.1 "$(fake_get /_state | python3 -c \
	'import json,sys; print(json.load(sys.stdin)["vms"]["rg1/dsvm"]["ip"])')"
ok "the mount is at that address" sh -c "findmnt -no SOURCE '$M' | grep -q '@127.0.0.1:'"
ok_eq "the mount shows the VM's remote_dir" hello "$(cat "$M/a.txt")"

# --- umount: flush, then deallocate ------------------------------------------------
fake_ctl "{\"snapshot\": \"$T/vm/proj/a.txt\"}"
echo world >"$M/a.txt"
ok_eq "the edit is held in the local layer (long debounce)" hello "$(cat "$T/vm/proj/a.txt")"
run "$T/umount.out" "$WAKEFS" umount "$M"
ok_eq "wakefs umount exits 0" 0 $?
ok "it reports the flush" grep -q "flushed every change to 'dsvm'" "$T/umount.out"
ok "and the deallocation" grep -q "deallocated 'dsvm'" "$T/umount.out"
ok_not "the mountpoint is unmounted" is_mounted "$M"
ok_eq "the fake's VM is deallocated" deallocated "$(vm_power dsvm)"
ok_eq "the fake saw one deallocate" 1 "$(fake_requests POST $VMPATH/deallocate)"
ok_eq "when the deallocate came, the VM's file held the edit" world "$(fake_get /_requests | python3 -c '
import json, sys
print(next(r.get("snapshot") for r in json.load(sys.stdin)
           if r["method"] == "POST" and r["path"].endswith("/virtualMachines/dsvm/deallocate")))')"
fake_ctl '{"snapshot": null}'
ok_eq "the VM's file holds the edit" world "$(cat "$T/vm/proj/a.txt")"
run "$T/status.out" "$WAKEFS" status "$M"
ok_not "status of the unmounted mountpoint fails" test $? -eq 0
ok_not "and says nothing of the VM" grep -q "^vm:" "$T/status.out"

# --- --keep-vm, status -----------------------------------------------------------
fake_ctl '{"next_ip": "127.0.0.1"}'
run "$T/mount.out" "$WAKEFS" mount dsvm "$M" -o "$KH"
ok_eq "mount again" 0 $?
ok_eq "the fake saw a second start" 2 "$(fake_requests POST $VMPATH/start)"
run "$T/status.out" "$WAKEFS" status "$M"
ok_eq "wakefs status exits 0" 0 $?
ok "status shows the VM's power state and how long it runs" \
	grep -Eq '^vm: +dsvm running for ([0-9]+s|[0-9]+m[0-9]{2}s)$' "$T/status.out"
run "$T/status.json" "$WAKEFS" status "$M" --json
ok_eq "wakefs status --json exits 0" 0 $?
ok_eq "status --json carries the VM's profile, power state and running time" "dsvm running True" \
	"$(python3 -c 'import json, sys; v = json.load(open(sys.argv[1]))["vm"]
print(v["profile"], v["power"], isinstance(v["running_s"], int) and v["running_s"] >= 0)' "$T/status.json" 2>&1)"
ok "and the mount's own state" python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); assert "dirty" in d and "connected" in d' "$T/status.json"
run "$T/umount.out" "$WAKEFS" umount --keep-vm "$M"
ok_eq "umount --keep-vm exits 0" 0 $?
ok "it says the VM is kept" grep -q "kept 'dsvm' running (--keep-vm)" "$T/umount.out"
ok_eq "no deallocate came" 1 "$(fake_requests POST $VMPATH/deallocate)"
ok_eq "the fake's VM runs" running "$(vm_power dsvm)"

# --- the guard ---------------------------------------------------------------------
run "$T/mount.out" "$WAKEFS" mount dsvm "$M" -o "$KH"
ok_eq "a mount of the running VM succeeds" 0 $?
ok_eq "and does not start it again" 2 "$(fake_requests POST $VMPATH/start)"
bash -c "exec -a $MARK sleep 600" &
job=$!
t_track_pid "$job"
run "$T/umount.out" "$WAKEFS" umount "$M"
ok_eq "umount with a job running exits 0" 0 $?
ok "the guard names the job" grep -q "$job $MARK" "$T/umount.out"
ok "and says the VM is kept" grep -q "kept 'dsvm' running: jobs still run" "$T/umount.out"
ok_eq "no deallocate came" 1 "$(fake_requests POST $VMPATH/deallocate)"
stop_pid "$job"

# --- the end: nothing left running -------------------------------------------------
run "$T/mount.out" "$WAKEFS" mount dsvm "$M" -o "$KH"
ok_eq "mount once more" 0 $?
run "$T/umount.out" "$WAKEFS" umount "$M"
ok_eq "umount without jobs exits 0" 0 $?
ok_eq "the fake saw the second deallocate" 2 "$(fake_requests POST $VMPATH/deallocate)"
ok_eq "the VM is left deallocated" deallocated "$(vm_power dsvm)"
t_done
