#!/bin/bash
# The control socket behind `wakefs status|flush|push|resolve`: what each
# command prints and its exit status, --json that parses, clear usage errors.
. "$top_srcdir/tests/lib.sh"
t_init
. "$top_srcdir/tests/tools/flush-lib.sh"
sshd_start || { fail "sshd starts"; t_done; }
V=$T/vm
L=$T/layer
M=$T/mnt
mkdir -p "$V" "$L" "$M"
git -C "$L" init -q || { fail "git init"; t_done; }
CLI=$FLUSH_DRIVE	# the same client code as `wakefs status|flush|push|resolve`

ok_not "status without a daemon fails" "$CLI" status "$M"
"$CLI" status "$M" >/dev/null 2>"$T/err.out"
ok_eq "its exit status is 2" "2" "$?"
ok "and it says why" grep -q "no wakefs daemon serves '$M'" "$T/err.out"

drive_start "$L" "$V" tracked 200 || { fail "flush-drive starts"; t_done; }
ok "serve the control socket" d control "$M"
ok "a held file" d write /notes.txt private
ok "it is held" wait_for 20 state_is /notes.txt held
ok "a .git file" d write /.git/probe x
ok "it is held" wait_for 20 state_is /.git/probe held

"$CLI" status "$M" >"$T/status.out" 2>&1
ok_eq "status exits 0" "0" "$?"
ok "status names the mount" grep -q "^mount: *$M " "$T/status.out"
ok "status says the connection is up" grep -q '^connection: *up' "$T/status.out"
ok "status counts the held files" grep -q '^held: *2 (1 under .git/, not listed)' "$T/status.out"
ok "status lists the held file" grep -q '^  /notes.txt$' "$T/status.out"
ok_not "status does not list .git files" grep -q '/.git/probe' "$T/status.out"

"$WAKEFS" status "$M" >"$T/status2.out" 2>&1
ok_eq "wakefs status prints the same" "$(cat "$T/status.out")" "$(cat "$T/status2.out")"
ok "wakefs flush answers" "$WAKEFS" flush "$M" --timeout=30
"$CLI" status "$M" --json >"$T/status.json" 2>&1
ok "status --json parses" python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/status.json"
ok_eq "it lists the held file" "['/notes.txt']" \
	"$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["held"])' "$T/status.json")"
ok_eq "it says connected" "True" \
	"$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["connected"])' "$T/status.json")"

ok "push a held file (a path inside the mountpoint)" "$CLI" push "$M" "$M/notes.txt"
ok "the VM has it" file_is "$V/notes.txt" private
ok_not "push of a .git file is refused" "$CLI" push "$M" .git/probe
"$CLI" push "$M" .git/probe 2>"$T/err.out"
ok "and says why" grep -q "cannot push '/.git/probe': .git" "$T/err.out"
ok_not "the VM has no .git" test -e "$V/.git"
ok_not "push of a missing file fails" "$CLI" push "$M" missing.txt
ok_not "push of a path outside the mount fails" "$CLI" push "$M" /etc/hostname

ok "a tracked-by-nobody directory: a relative path from inside the mountpoint" \
	d write /sub/x.txt sub
ok "it is held" wait_for 20 state_is /sub/x.txt held
ok "push it from a working directory inside the mountpoint" \
	bash -c "cd '$M' && mkdir -p sub && cd sub && '$CLI' push '$M' x.txt"
ok "the VM has it" file_is "$V/sub/x.txt" sub

ok "flush with everything sent exits 0" "$CLI" flush "$M"
ok "flush with a timeout exits 0" "$CLI" flush "$M" --timeout=30

ok_not "resolve of a path not in conflict fails" "$CLI" resolve "$M" notes.txt --keep=local
"$CLI" resolve "$M" notes.txt --keep=sideways 2>"$T/err.out"
ok_eq "resolve with a bad --keep exits 2" "2" "$?"
"$CLI" resolve "$M" notes.txt 2>"$T/err.out"
ok_eq "resolve without --keep exits 2" "2" "$?"
"$CLI" push "$M" 2>"$T/err.out"
ok_eq "push without a path exits 2" "2" "$?"
"$CLI" status "$M" --bogus 2>"$T/err.out"
ok_eq "an unknown option exits 2" "2" "$?"
ok "and names it" grep -q "bad option '--bogus'" "$T/err.out"

mkdir -p "$T/layer2"
echo "control $M/" | "$FLUSH_DRIVE" "$T/layer2" "$V" tracked 200 >"$T/second.out" 2>&1
ok "a second daemon for the same mountpoint is refused" grep -q "^err $(python3 -c 'import errno; print(errno.EADDRINUSE)') " "$T/second.out"
ok "the first one still answers" "$CLI" status "$M"
drive_kill
ok_not "status after the daemon died fails" "$CLI" status "$M"
drive_start "$L" "$V" tracked 200 || { fail "flush-drive restarts"; t_done; }
ok "a restarted daemon replaces the stale socket" d control "$M"
ok "status answers again" "$CLI" status "$M"
drive_stop
t_done
