#!/usr/bin/env bash
# wakefs mount PROFILE on the local provider: the mount starts the "VM" (a
# throwaway sshd), umount stops it, --keep-vm and the guard keep it, and a
# mount that fails after starting it deallocates it again and says so.
. "$top_srcdir/tests/lib.sh"
t_init

export XDG_STATE_HOME=$T/state XDG_RUNTIME_DIR=$T/run XDG_DATA_HOME=$T/data
mkdir -p "$T/run" "$T/vm/proj" "$T/mnt" && chmod 700 "$T/run"
echo hello >"$T/vm/proj/a.txt"
MARK=wakefs-life-job-$$
export WAKEFS_CONFIG=$T/config
cat >"$WAKEFS_CONFIG" <<EOC
[lt]
provider = local
remote_dir = $T/vm/proj
guard_cmd = pgrep -af '[${MARK:0:1}]${MARK:1}'
EOC
STATE=$XDG_STATE_HOME/wakefs/local/lt

vm_state() { "$VMCTL" -p lt status | awk '{print $2}'; }
# Track the "VM" so that cleanup stops it whatever happens.
track_vm() { [ -f "$STATE/sshd.pid" ] && t_track_pid "$(cat "$STATE/sshd.pid")"; }
gone() { ! kill -0 "$1" 2>/dev/null; }

ok_eq "a fresh profile's VM is deallocated" "deallocated" "$(vm_state)"
t_track_mount "$T/mnt"
ok "wakefs mount PROFILE succeeds" "$WAKEFS" mount lt "$T/mnt"
track_vm
ok_eq "the mount started the VM" "running" "$(vm_state)"
ok "the state dir is private" test "$(stat -c %a "$STATE")" = 700
ok "the mount shows the VM's remote_dir" grep -qx hello "$T/mnt/a.txt"
echo world >"$T/mnt/b.txt"
ok "a write reaches the VM" wait_for 20 grep -qx world "$T/vm/proj/b.txt"
pid=$(cat "$STATE/sshd.pid")
"$WAKEFS" umount "$T/mnt" >"$T/umount.out" 2>&1
ok_eq "wakefs umount exits 0" 0 $?
ok "it reports the deallocation" grep -q "deallocated 'lt'" "$T/umount.out"
ok_not "the mountpoint is unmounted" is_mounted "$T/mnt"
ok_eq "the VM is deallocated" "deallocated" "$(vm_state)"
ok "its sshd is gone" wait_for 10 gone "$pid"

ok "mount again" "$WAKEFS" mount lt "$T/mnt"
track_vm
port1=$(cat "$STATE/port")
"$WAKEFS" umount --keep-vm "$T/mnt" >"$T/umount.out" 2>&1
ok_eq "umount --keep-vm exits 0" 0 $?
ok "it says the VM is kept" grep -q "kept 'lt' running (--keep-vm)" "$T/umount.out"
ok_eq "--keep-vm keeps the VM" "running" "$(vm_state)"
ok "a mount of a running VM works" "$WAKEFS" mount lt "$T/mnt"
ok_eq "the port stays the same" "$port1" "$(cat "$STATE/port")"

bash -c "exec -a $MARK sleep 600" &
job=$!
t_track_pid "$job"
"$WAKEFS" umount "$T/mnt" >"$T/umount.out" 2>&1
ok_eq "umount with a job running exits 0" 0 $?
ok "the guard names the job" grep -q "$job $MARK" "$T/umount.out"
ok "and says the VM is kept" grep -q "kept 'lt' running: jobs still run" "$T/umount.out"
ok_eq "the guard kept the VM" "running" "$(vm_state)"
stop_pid "$job"
ok "vmctl stop deallocates it" "$VMCTL" -p lt stop
ok_eq "deallocated" "deallocated" "$(vm_state)"

"$WAKEFS" mount lt "$T/mnt" -o no_such_option >"$T/fail.out" 2>&1
ok_eq "a mount with a bad option fails as a usage error" 2 $?
ok "it says it deallocated the VM again" grep -q "deallocated 'lt' again" "$T/fail.out"
ok_eq "the VM it started is deallocated" "deallocated" "$(vm_state)"
ok_not "nothing is mounted" is_mounted "$T/mnt"

"$WAKEFS" mount nosuch "$T/mnt" >"$T/fail.out" 2>&1
ok_eq "an unknown profile fails" 1 $?
ok "naming the profile and the file" grep -q "no profile \[nosuch\] in .*config" "$T/fail.out"
t_done
