#!/usr/bin/env bash
# idle_deallocate on provider = azure, against the fake ARM server: after a few
# idle seconds the fake sees a deallocate and the mount stays; while the VM
# sleeps cached files read and writes go to the local layer, without waking
# it; an access of something not cached wakes it (the fake sees a start) and
# gets the VM's content; the writes made while it slept then reach it. Then
# it sleeps again, and a read of a file listed but never read wakes it too.
# The "VM" is a throwaway sshd that a watcher stops (with its sessions, as a
# deallocation would) and starts again as the fake's power state changes.
. "$top_srcdir/tests/lib.sh"
t_init
. "$top_srcdir/tests/tools/life-lib.sh"

life_azure_setup "idle_deallocate = 3s
guard_cmd = pgrep -f '[w]akefs-no-such-job-$$'" || t_done
echo hello >"$R/a.txt"
echo listed >"$R/c.txt"
mkdir "$R/sub" && echo deep >"$R/sub/deep.txt"
# The change feed reports what changed on the VM since two seconds before its
# first scan: files made just before the mount would come back as changes and
# drop the listings the layer learnt, and a new name would then wake the VM.
sleep 3

deallocated() { [ "$(vm_power dsvm)" = deallocated ]; }
conn_down() { "$WAKEFS" status "$M" | grep -q '^connection: *down'; }

# kill_tree PID: the process and its descendants (the sessions of an sshd), by pid.
kill_tree() {
	local kids k
	kids=$(ps -o pid= --ppid "$1" 2>/dev/null)
	kill -9 "$1" 2>/dev/null
	for k in $kids; do kill_tree "$k"; done
}
# The VM follows the fake's power state: its sshd runs while the fake's VM
# starts or runs, and is gone (sessions included) once it deallocates.
vm_sim() {
	local pid=$VM_SSHD_PID p
	trap 'kill_tree "$pid"; exit 0' TERM
	while :; do
		p=$(vm_power dsvm 2>/dev/null)
		case $p in
		deallocating | deallocated | stopping | stopped)
			if [ -n "$pid" ]; then
				kill_tree "$pid"
				pid=
				echo "$p: sshd stopped" >>"$T/sim.log"
			fi
			;;
		starting | running)
			if [ -z "$pid" ]; then
				/usr/sbin/sshd -D -e -f "$T/sshd/sshd_config" >>"$T/sshd.log" 2>&1 &
				pid=$!
				echo "$p: sshd started (pid $pid)" >>"$T/sim.log"
			fi
			;;
		esac
		sleep 0.2
	done
}
vm_sim 2>>"$T/sim.log" &	# (bash reports its killed sshds there too)
t_track_pid $!
ok "the deallocated VM's sshd is down" wait_for 30 eval '! vm_ssh true'

fake_ctl '{"next_ip": "127.0.0.1"}'
life_mount "$T/wakefs.log" debounce_ms=200
rc=$?
WAKEFS_PID=$LIFE_PID
[ $rc = 0 ] || { fail "wakefs mount dsvm mounts"; t_done; }
pass "wakefs mount dsvm mounts"
ok_eq "the mount started the VM" 1 "$(fake_requests POST $VMPATH/start)"
ok_eq "a VM file reads (and is cached)" hello "$(cat "$M/a.txt")"
ok "the directory lists" ls "$M"

# --- idle: deallocated, still mounted -----------------------------------------------------
ok "after 3 idle seconds the fake sees a deallocate" wait_for 60 eval '[ "$(fake_requests POST $VMPATH/deallocate)" -ge 1 ]'
ok "the VM is deallocated" wait_for 60 deallocated
ok "the daemon says why" wait_for 20 grep -q "idle for 3s: deallocated 'dsvm'" "$T/wakefs.log"
ok "the mount stays" is_mounted "$M"
ok "the mount sees the VM gone" wait_for 60 conn_down
starts=$(fake_requests POST $VMPATH/start)

# --- asleep: the layer answers ------------------------------------------------------------
ok_eq "a cached file reads while the VM sleeps" hello "$(timeout -s KILL 20 cat "$M/a.txt")"
ok "a new file is written while it sleeps" timeout -s KILL 20 sh -c "echo asleep >'$M/b.txt'"
ok "a cached file is edited while it sleeps" timeout -s KILL 20 sh -c "echo edited >'$M/a.txt'"
ok_eq "the mount shows both" "asleep edited" "$(timeout -s KILL 20 cat "$M/b.txt" "$M/a.txt" | tr '\n' ' ' | sed 's/ $//')"
ok "status lists them as held in the layer" sh -c "'$WAKEFS' status '$M' | grep -q b.txt"
ok_eq "none of this woke the VM" "$starts" "$(fake_requests POST $VMPATH/start)"
ok_eq "the VM is still deallocated" deallocated "$(vm_power dsvm)"
ok_not "the new file is not on the VM" test -e "$R/b.txt"
ok_eq "the VM's file is unchanged" hello "$(cat "$R/a.txt")"
"$WAKEFS" status "$M" >"$T/status.out" 2>&1
ok "status says the VM is deallocated" grep -Eq '^vm: +dsvm deallocated$' "$T/status.out"

# --- an access the layer cannot answer wakes the VM -----------------------------------------
fake_ctl '{"next_ip": "127.0.0.1"}'
ok_eq "a file in a directory never listed reads with the VM's content" deep \
	"$(timeout -s KILL 300 cat "$M/sub/deep.txt")"
ok_eq "the fake saw a start after the deallocate" $((starts + 1)) "$(fake_requests POST $VMPATH/start)"
ok "the daemon says it woke the VM" grep -q "woke the VM of 'dsvm' for an access" "$T/wakefs.log"
ok "the new file written while it slept reaches the VM" wait_for 60 file_is "$R/b.txt" asleep
ok "and so does the edit" wait_for 60 file_is "$R/a.txt" edited
ok "the directory lists again (c.txt known, its content not)" ls "$M"

# --- asleep again: a file listed but never read (its download waits) wakes it ------------------
ok "idle again: a second deallocate" wait_for 60 eval '[ "$(fake_requests POST $VMPATH/deallocate)" -ge 2 ]'
ok "the VM is deallocated again" wait_for 60 deallocated
ok "the mount sees the VM gone again" wait_for 60 conn_down
starts=$(fake_requests POST $VMPATH/start)
fake_ctl '{"next_ip": "127.0.0.1"}'
ok_eq "a listed file never read reads with the VM's content" listed "$(timeout -s KILL 300 cat "$M/c.txt")"
ok_eq "the fake saw one more start" $((starts + 1)) "$(fake_requests POST $VMPATH/start)"
ok "the daemon says the read waited for the VM" grep -q "an access to 'dsvm' waits for the VM" "$T/wakefs.log"

# --- the end: unmounted, deallocated --------------------------------------------------------
ok "unmount" umount_wait "$M" 60
ok "the daemon ends" wait_for 120 eval '! kill -0 $WAKEFS_PID'
wait $WAKEFS_PID
ok_eq "it exits 0 (everything flushed, the VM deallocated)" 0 $?
ok_not "its log has no sanitizer report" grep -Eq 'Sanitizer|runtime error' "$T/wakefs.log"
ok "the VM is left deallocated" wait_for 60 deallocated
t_done
