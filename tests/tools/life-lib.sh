# tests/tools/life-lib.sh: the set-up the t-life-*.sh tests of a profile mount
# on the fake Azure share (source after tests/lib.sh and t_init).
#
#   life_azure_setup [CONFIG_LINES]
#       private XDG dirs under $T; R (the VM's project dir, $T/vm/proj) and M
#       (the mountpoint); a throwaway sshd as the "VM" (host key alias dsvm),
#       the fake ARM server, $T/known_hosts holding the VM's key under the
#       profile name only, and the profile [dsvm] (provider = azure at the
#       fake, the sshd's user, port and key, remote_dir = $R) plus
#       CONFIG_LINES. Returns non-zero (after a failed check) when a part does
#       not start.
#   life_mount LOG OPTIONS        `wakefs mount dsvm $M -f` with the profile's known_hosts
#                                 and OPTIONS, in the background, output to LOG; LIFE_PID
#                                 is the daemon; fails if not mounted within 120 s
#   fake_requests METHOD SUFFIX   how many requests the fake logged whose path ends so
#   run OUT CMD...                CMD's output to OUT and to $T/cmds.log (shown when a check fails)
#   file_is FILE TEXT             FILE exists and holds TEXT
#   gone PID                      the process has exited

. "$top_srcdir/tests/fake-arm/fake-arm.sh"

VMPATH=/virtualMachines/dsvm

life_azure_setup() {
	export XDG_STATE_HOME=$T/state XDG_RUNTIME_DIR=$T/run XDG_DATA_HOME=$T/data
	mkdir -p "$T/run" "$T/vm/proj" "$T/mnt" && chmod 700 "$T/run"
	R=$T/vm/proj
	M=$T/mnt
	sshd_start dsvm || { fail "sshd starts"; return 1; }
	fake_arm_start || { fail "the fake ARM server starts"; return 1; }
	grep '^dsvm ' "$VM_KNOWN_HOSTS" >"$T/known_hosts"
	: >"$WAKEFS_CONFIG"	# only this profile
	fake_vm_profile dsvm "remote_dir = $R
${1:-}"
}

life_mount() {
	"$WAKEFS" mount dsvm "$M" -f -o "known_hosts=$T/known_hosts,$2" >>"$1" 2>&1 &
	LIFE_PID=$!
	t_track_pid "$LIFE_PID"
	mount_wait "$M" 120
}

fake_requests() {
	fake_get /_requests | python3 -c '
import json, sys
print(sum(1 for r in json.load(sys.stdin) if r["method"] == sys.argv[1] and r["path"].endswith(sys.argv[2])))' "$1" "$2"
}

run() {
	local out=$1 rc=0
	shift
	"$@" >"$out" 2>&1 </dev/null || rc=$?
	{ echo "\$ $* -> $rc"; cat "$out"; } >>"$T/cmds.log"
	return $rc
}

file_is() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }
gone() { ! kill -0 "$1" 2>/dev/null; }
