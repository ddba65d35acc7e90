#!/usr/bin/env bash
# scripts/fuse-floor, the do-nothing FUSE passthrough scripts/bench measures
# as the floor under wakefs's local-layer rows: it must do the work it is
# timed on (what is written through it is in the directory, an untar is whole,
# renames and deletes happen), or its figures say nothing.
. "$top_srcdir/tests/lib.sh"
t_init

FLOOR=$top_builddir/scripts/fuse-floor
B=$T/back
M=$T/mnt
mkdir -p "$B" "$M" "$T/src/sub"
printf 'before\n' >"$B/old.txt"

ok_not "no directory: usage, exit 2" "$FLOOR"
"$FLOOR" -f "$T/missing" "$M" 2>"$T/err"
ok_eq "a missing directory exits 1" 1 "$?"
ok "... naming it" grep -q "$T/missing" "$T/err"

"$FLOOR" -f "$B" "$M" >>"$T/floor.log" 2>&1 &
t_track_pid $!
ok "it mounts" mount_wait "$M" 20
ok_eq "a file of the directory reads" before "$(cat "$M/old.txt")"
printf 'through the mount\n' >"$M/new.txt"
ok_eq "a write lands in the directory" "through the mount" "$(cat "$B/new.txt")"
head -c 3000000 /dev/urandom >"$T/big"
cp "$T/big" "$M/big"
ok "a large write lands whole" cmp -s "$T/big" "$B/big"
ok "and reads back whole" cmp -s "$T/big" "$M/big"
for i in $(seq 50); do printf 'file %s\n' "$i" >"$T/src/sub/f$i"; done
ln -s sub/f1 "$T/src/link"
chmod 0600 "$T/src/sub/f2"
tar -C "$T" -cf "$T/src.tar" src
ok "tar x into it" tar -C "$M" -xf "$T/src.tar"
ok "the directory holds the same tree" diff -r "$T/src" "$B/src"
ok_eq "modes are kept" 600 "$(stat -c %a "$B/src/sub/f2")"
ok_eq "symlinks are kept" sub/f1 "$(readlink "$B/src/link")"
ok "rename" mv "$M/new.txt" "$M/renamed.txt"
ok "... in the directory" eval 'test -f "$B/renamed.txt" && ! test -e "$B/new.txt"'
ok "rm -r" rm -r "$M/src"
ok_not "... in the directory" test -e "$B/src"
ok_eq "listings show the directory's names" "big old.txt renamed.txt" "$(ls "$M" | tr '\n' ' ' | sed 's/ $//')"
ok "unmount" umount_wait "$M"
t_done
