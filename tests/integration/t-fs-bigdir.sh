#!/usr/bin/env bash
# A directory of 100,000 entries lists completely and in bounded time through
# the mount (readdir must not be quadratic), with attributes that match the
# VM's, and hidden names stay out of the listing.
. "$top_srcdir/tests/lib.sh"
t_init
PY=$(python3 -c 'import sys; print(sys.executable)')
N=100000

sshd_start vm || { fail "sshd starts"; t_done; }
# The VM directory lives on tmpfs when there is one: making 100,000 files on a
# loaded disk takes longer than listing them.
R=$T/vm
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
	R=$(mktemp -d /dev/shm/wakefs-bigdir.XXXXXX) || R=$T/vm
	trap 'rc=$?; [ "$R" != "$T/vm" ] && rm -rf "$R"; (exit $rc); t_cleanup' EXIT
fi
M=$T/mnt
mkdir -p "$R" "$M"
# The "VM" is this machine: its python makes the files faster than touch.
ok "the VM makes $N files" vm_ssh "mkdir '$R/big' && cd '$R/big' && '$PY' -c 'for i in range(1, $N + 1): open(\"entry-%06d\" % i, \"w\")' && printf 12345 >entry-000077 && touch .wakefs_hidden_0001"
"$WAKEFS" -f -F "$VM_SSH_CONFIG" -o writethrough "vm:$R" "$M" >>"$T/wakefs.log" 2>&1 &
t_track_pid $!
if ! mount_wait "$M" 30; then
	fail "wakefs mounts the VM directory"
	t_done
fi
pass "wakefs mounts the VM directory"

# listing: count, distinct names, first/last, hidden names, elapsed seconds.
list() {
	"$PY" - "$1" <<-'EOF'
		import os, sys, time
		t = time.monotonic()
		names = os.listdir(sys.argv[1])
		el = time.monotonic() - t
		print(len(names), len(set(names)), min(names), max(names),
		      sum(n.startswith(".wakefs_hidden_") for n in names), int(el))
	EOF
}
read -r count distinct first last hidden secs < <(timeout 300 bash -c "$(declare -f list); PY='$PY' list '$M/big'")
diag "listing $N entries took about ${secs:-?} s"
ok_eq "all $N entries are listed" "$N" "$count"
ok_eq "each once" "$N" "$distinct"
ok_eq "from the first" "entry-000001" "$first"
ok_eq "to the last" "entry-100000" "$last"
ok_eq "hidden names are not listed" "0" "$hidden"
ok "in bounded time (under 120 s on a loaded machine)" test "${secs:-999}" -lt 120
ok_eq "an entry's size comes with the listing" "5" "$(stat -c %s "$M/big/entry-000077")"
ok_eq "find sees every entry as a file" "$N" "$(timeout 300 find "$M/big" -type f -name 'entry-*' | wc -l)"
ok "unmount" umount_wait "$M"
t_done
