#!/usr/bin/env bash
# scripts/demo end to end with the binaries already built
# (WAKEFS_DEMO_NO_SETUP): it exits 0, its key lines are there in order (the
# "VM" deallocated, started by the mount, the edit on the VM, ignored and
# untracked files and .git local, a timed commit, status, the "VM" stopped by
# umount), the user's own configuration is neither read nor touched, and it
# leaves nothing mounted, running or on disk. A step that fails (a git that
# refuses the commit) makes it exit non-zero naming the step, and it still
# cleans up, as it does when killed while mounted; missing binaries are named.
. "$top_srcdir/tests/lib.sh"
t_init

export WAKEFS_DEMO_NO_SETUP=1 TMPDIR=$T

# run_demo NAME [VAR=VALUE...]: run scripts/demo; stdout, stderr and status in $T/NAME.*
run_demo() {
	local name=$1
	shift
	env "$@" timeout 600 bash "$top_srcdir/scripts/demo" >"$T/$name.out" 2>"$T/$name.err"
	echo $? >"$T/$name.rc"
}
rc() { cat "$T/$1.rc"; }
out_has() { grep -qE -- "$2" "$T/$1.out"; }
# in_order NAME PATTERN...: each pattern matches a line of NAME.out after the previous one's
in_order() {
	local name=$1 line=0 n
	shift
	for p in "$@"; do
		n=$(tail -n +$((line + 1)) "$T/$name.out" | grep -nE -m1 -- "$p" | cut -d: -f1)
		[ -n "$n" ] || { echo "not found after line $line: $p"; return 1; }
		line=$((line + n))
	done
}
# The processes whose command line names a demo dir (the "VM"'s sshd, a wakefs daemon).
leftover_pids() {
	local p cmd
	for p in /proc/[0-9]*; do
		cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
		[[ $cmd == *"$T/wakefs-demo."* ]] && echo "${p#/proc/}"
	done
	return 0
}
leftover_mounts() { grep -F " $T/wakefs-demo." /proc/mounts; }
nothing_left() { [ -z "$(leftover_pids)" ] && ! leftover_mounts; }
# After each run: whatever a broken demo left is stopped by the cleanup.
track_leftovers() {
	local p m
	for p in $(leftover_pids); do t_track_pid "$p"; done
	for m in $(leftover_mounts | awk '{print $2}'); do t_track_mount "$m"; done
	return 0
}
demo_dirs() { find "$T" -maxdepth 1 -name 'wakefs-demo.*' | wc -l; }

# The user's own configuration: a config that would break the demo, a HOME.
mkdir -p "$T/user/home" "$T/user/config/wakefs"
printf '[demo]\nprovider = azure\nno_such_key = 1\n' >"$T/user/config/wakefs/config"
cp "$T/user/config/wakefs/config" "$T/user/config.orig"
user_env=(HOME="$T/user/home" XDG_CONFIG_HOME="$T/user/config"
	WAKEFS_CONFIG="$T/user/config/wakefs/config" XDG_STATE_HOME="$T/user/state"
	XDG_DATA_HOME="$T/user/data" XDG_RUNTIME_DIR="$T/user/run")

run_demo demo "${user_env[@]}"
track_leftovers
ok_eq "the demo exits 0" 0 "$(rc demo)"
[ "$(rc demo)" = 0 ] || diag "its stderr: $(tail -n 5 "$T/demo.err" | tr '\n' '|')"
ok "it skips the setup" out_has demo "using the binaries already built"
ok "its steps and results come in order" in_order demo \
	'^demo: deallocated$' \
	'== wakefs mount demo' \
	'^demo: running since' \
	'== an edit of a tracked file reaches' \
	'^train\.py reached the "VM" [0-9]+ ms after the save' \
	'^print\("epoch", 1\)$' \
	'== an ignored file and an untracked file stay on the laptop' \
	'^run\.log: on the laptop only$' \
	'^notes\.txt: on the laptop only$' \
	'^\.git: on the laptop only$' \
	'== git commit from the mountpoint' \
	'^git commit took [0-9]+ ms$' \
	'log the epoch$' \
	'== wakefs status' \
	'^connection: +up$' \
	'^dirty: +0$' \
	'^  /notes\.txt$' \
	'== wakefs umount' \
	'^demo: running since' \
	"^deallocated 'demo': billing stops$" \
	'^demo: deallocated$' \
	'== done'
ok_eq "nothing on its stderr but the VM's start" "" \
	"$(grep -v "^wakefs: start 'demo': \(starting\|running\)$" "$T/demo.err")"
ok "nothing of the demo is left mounted or running" wait_for 20 nothing_left
ok_eq "its temp dir is removed" 0 "$(demo_dirs)"
ok "the user's config is untouched" cmp "$T/user/config.orig" "$T/user/config/wakefs/config"
ok_eq "nothing was written to the user's HOME or XDG dirs" "" \
	"$(cd "$T/user" && find . -mindepth 1 ! -path ./home ! -path ./config ! -path ./config.orig \
		! -path ./config/wakefs ! -path ./config/wakefs/config)"
diag "$(grep -oE '^(train\.py reached the "VM" [0-9]+ ms|git commit took [0-9]+ ms)' "$T/demo.out" | paste -sd';')"

# A step that fails: a git that refuses the second commit.
mkdir -p "$T/fakebin"
cat >"$T/fakebin/git" <<EOF
#!/bin/sh
for a; do
	[ "\$a" = "log the epoch" ] && { echo "fake git: refusing this commit" >&2; exit 1; }
done
exec $(command -v git) "\$@"
EOF
chmod +x "$T/fakebin/git"
run_demo failing PATH="$T/fakebin:$PATH"
track_leftovers
ok_not "a failing step makes the demo fail" test "$(rc failing)" = 0
ok "it names the step" grep -qF "demo: failed at step: git commit from the mountpoint" "$T/failing.err"
ok_not "it did not go on" out_has failing "== wakefs status"
ok "it unmounts and stops the VM anyway" wait_for 20 nothing_left
ok_eq "and removes its temp dir" 0 "$(demo_dirs)"

# Interrupted while mounted (as by Ctrl-C or a kill): it still cleans up.
# A git that hangs in the second commit holds the demo there until the kill.
mkdir -p "$T/hangbin"
cat >"$T/hangbin/git" <<EOF
#!/bin/sh
for a; do
	[ "\$a" = "log the epoch" ] && { echo \$\$ >"$T/git.pid"; exec sleep 600; }
done
exec $(command -v git) "\$@"
EOF
chmod +x "$T/hangbin/git"
PATH="$T/hangbin:$PATH" bash "$top_srcdir/scripts/demo" >"$T/term.out" 2>"$T/term.err" &
demo_pid=$!
t_track_pid "$demo_pid"
if wait_for 300 test -s "$T/git.pid"; then
	t_track_pid "$(cat "$T/git.pid")"
	kill -TERM "$demo_pid"
	stop_pid "$(cat "$T/git.pid")"	# the demo acts on the signal once its git has ended
	wait "$demo_pid"
	ok_eq "a demo sent SIGTERM while mounted exits 130" 130 $?
	track_leftovers
	ok "it unmounted and stopped the VM" wait_for 20 nothing_left
	ok_eq "and removed its temp dir" 0 "$(demo_dirs)"
else
	fail "the demo to interrupt gets to its second commit"
fi

run_demo nobin WAKEFS="$T/no/wakefs"
ok_eq "a missing wakefs binary: status 1" 1 "$(rc nobin)"
ok "it is named, with what to do" grep -qF "demo: '$T/no/wakefs' is not an executable: build wakefs first" "$T/nobin.err"
ok_eq "and no temp dir is left" 0 "$(demo_dirs)"
t_done
