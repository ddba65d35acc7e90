#!/usr/bin/env bash
# A fresh layer mount learns the VM's tree in one scan, so lookups and
# listings need no round trip per name (and listings carry attributes, so
# the kernel asks no LOOKUP per name); while the change feed keeps
# scanning, what it learnt stays valid past the caches' 20 s lifetime, and
# what changes on the VM still shows. "No round trip" is checked for real:
# the VM's SSH session is frozen (SIGSTOP) while the tree is walked through
# the mount, so any request to the VM would hang the walk.
. "$top_srcdir/tests/lib.sh"
t_init
PY=$(python3 -c 'import sys; print(sys.executable)')
sshd_start vm || { fail "sshd starts"; t_done; }
R=$T/vm M=$T/mnt
export XDG_DATA_HOME=$T/xdg
mkdir -p "$R" "$M"
"$PY" - "$R" <<-'EOF2'
	import os, sys
	r = sys.argv[1]
	for d in range(40):
	    os.makedirs("%s/d%02d/sub" % (r, d))
	    for i in range(10):
	        with open("%s/d%02d/f%d.txt" % (r, d, i), "w") as f:
	            f.write("x" * (d * 10 + i))
	    open("%s/d%02d/sub/deep" % (r, d), "w").close()
	open(r + "/with space", "w").write("s")
	open(r + "/new\nline", "w").write("n")
	os.symlink("d00/f1.txt", r + "/link")
	os.chmod(r + "/d01/f2.txt", 0o600)
	os.makedirs(r + "/.git/objects")
	open(r + "/.git/objects/inside", "w").close()
EOF2
# The feed's scans overlap by two seconds (ctime has one-second steps): let
# the tree age past that, so that its first scans drop nothing learnt.
sleep 3
# Every path but what lies under .git: .git itself is listed, not entered.
want=$(cd "$R" && find . -path ./.git/\* -prune -o -printf . | wc -c)
diag "the VM has $want paths"

"$WAKEFS" -f -d -F "$VM_SSH_CONFIG" -o flush=all "vm:$R" "$M" >>"$T/wakefs.log" 2>&1 &
t_track_pid $!
mount_wait "$M" 30 || { fail "wakefs mounts the VM directory"; t_done; }
pass "wakefs mounts the VM directory"

learned() { "$WAKEFS" status "$M" --json | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["learned"])'; }
learned_some() { [ "$(learned)" -gt 0 ] 2>/dev/null; }
ok "the mount learns the tree" wait_for 60 learned_some
ok_eq "every path on the VM was learnt in the scan" "$want" "$(learned)"
ok "status says so" bash -c "'$WAKEFS' status '$M' | grep -q '^cache: *$want paths learnt from the VM in one scan'"

# The listings carry their entries' attributes (READDIRPLUS with offsets):
# the kernel sends no LOOKUP per name (counted in the daemon's -d output).
lookups() { grep -c 'opcode: LOOKUP ' "$T/wakefs.log"; }
before=$(lookups)
ok "ls -lR of the mount" bash -c "ls -lR '$M' >/dev/null"
n=$(($(lookups) - before))
diag "ls -lR of $want paths sent $n LOOKUPs"
ok "with no LOOKUP per name ($n for $want paths)" test "$n" -lt $((want / 5))

# The processes that serve our SSH connection on the VM side: sshd's
# children (one per connection) and theirs.
vm_session_pids() {
	local p
	for p in $(pgrep -P "$VM_SSHD_PID"); do
		echo "$p"
		pgrep -P "$p"
	done
}
FROZEN=()
freeze() { FROZEN=($(vm_session_pids)); [ ${#FROZEN[@]} -gt 0 ] && kill -STOP "${FROZEN[@]}"; }
thaw() { [ ${#FROZEN[@]} -gt 0 ] && kill -CONT "${FROZEN[@]}"; FROZEN=(); }
trap 'rc=$?; thaw 2>/dev/null; (exit $rc); t_cleanup' EXIT

# What the walk shows: path, type, size, mode, mtime (whole seconds), owner.
walk() { (cd "$1" && find . -mindepth 1 -path ./.git -prune -o -printf '%p %y %s %m %Ts %U\n' | sort); }
walk "$R" >"$T/vm.walk"

ok "freeze the VM's SSH session" freeze
timeout 30 bash -c "$(declare -f walk); walk '$M'" >"$T/mnt.walk" 2>"$T/walk.err"
rc=$?
ok_eq "a walk of the whole tree finishes with the VM frozen (nothing asked of it)" 0 "$rc"
ok "what the walk shows matches the VM (types, sizes, modes, mtimes, owners)" \
	diff "$T/vm.walk" "$T/mnt.walk"
ok "a name the VM lacks is absent at once" timeout 10 test ! -e "$M/d03/nonexistent"
thaw
ok_eq "the symlink reads back (its target is asked of the VM)" d00/f1.txt "$(timeout 30 readlink "$M/link")"

# Past the caches' 20 s lifetime: while the feed scans, nothing expires.
sleep 21
touch "$R/d05/fresh"
ok "a file made on the VM shows up (the feed dropped its directory's listing)" \
	wait_for 30 test -e "$M/d05/fresh"
ok "its directory lists it (read again from the VM)" bash -c "ls '$M/d05' | grep -qx fresh"
ok "freeze the VM's SSH session again" freeze
timeout 30 bash -c "$(declare -f walk); walk '$M'" >"$T/mnt.walk2" 2>"$T/walk.err"
rc=$?
ok_eq "after 21 s the walk is still served without the VM" 0 "$rc"
ok "and still matches the VM" diff <(walk "$R") "$T/mnt.walk2"
thaw

# What changes on the VM still shows.
printf 'longer content now' >"$R/d07/f3.txt"
size_is() { [ "$(stat -c %s "$M/d07/f3.txt")" = "$1" ]; }
ok "a file changed on the VM shows its new size" wait_for 30 size_is 18
ok_eq "and its new content" "longer content now" "$(cat "$M/d07/f3.txt")"
rm "$R/d08/f4.txt"
ok "a file deleted on the VM goes" wait_for 30 test ! -e "$M/d08/f4.txt"
ok "and leaves its directory's listing" bash -c "! ls '$M/d08' | grep -qx f4.txt"
mv "$R/d09/f5.txt" "$R/d09/renamed"
ok "a rename on the VM shows" wait_for 30 test -e "$M/d09/renamed"
ok "and the old name goes" wait_for 30 test ! -e "$M/d09/f5.txt"

ok "unmount" umount_wait "$M"
t_done
