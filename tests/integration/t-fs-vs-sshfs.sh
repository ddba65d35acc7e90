#!/usr/bin/env bash
# The POSIX suite (t-fs-posix.sh) run on wakefs and on sshfs in the same run:
# both pass counts are printed, and wakefs must pass every check sshfs passes.
. "$top_srcdir/tests/lib.sh"
t_init

if ! command -v sshfs >/dev/null; then
	skip "wakefs passes every POSIX check sshfs passes" "sshfs is not installed (Debian package sshfs)"
	t_done
fi
suite=$top_srcdir/tests/integration/t-fs-posix.sh
# The runs keep their folders when checks fail (sshfs fails some): they go
# inside ours, which the cleanup removes when this test passes. Their VM
# user must be able to reach them through ours.
chmod 711 "$T"
for fs in wakefs sshfs; do
	TMPDIR=$T WAKEFS_POSIX_FS=$fs timeout 300 bash "$suite" >"$T/$fs.tap" 2>"$T/$fs-stderr.log"
done
# passed FS: the descriptions of the checks FS passed, sorted.
passed() { sed -n 's/^ok [0-9]* - //p' "$T/$1.tap" | grep -v '# SKIP' | sort; }
planned() { sed -n 's/^1\.\.//p' "$T/$1.tap"; }
w=$(passed wakefs | wc -l)
s=$(passed sshfs | wc -l)
diag "POSIX suite: wakefs passes $w of $(planned wakefs), sshfs passes $s of $(planned sshfs)"
ok "the suite ran to its end on wakefs" test -n "$(planned wakefs)"
ok "the suite ran to its end on sshfs" test -n "$(planned sshfs)"
ok "sshfs mounted and passed checks (the comparison means something)" test "$s" -gt 10
missing=$(comm -13 <(passed wakefs) <(passed sshfs))
[ -z "$missing" ] || diag "passed by sshfs, failed by wakefs: $missing"
ok_eq "wakefs passes every check sshfs passes" "" "$missing"
ok "wakefs passes at least as many checks as sshfs" test "$w" -ge "$s"
t_done
