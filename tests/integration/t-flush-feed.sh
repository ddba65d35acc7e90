#!/bin/bash
# The change feed: what changes on the VM drops out of the layer's attribute
# and listing caches within a few scans; nothing else does.
. "$top_srcdir/tests/lib.sh"
t_init
. "$top_srcdir/tests/tools/flush-lib.sh"
sshd_start || { fail "sshd starts"; t_done; }
V=$T/vm
L=$T/layer
mkdir -p "$V/d" "$L"
echo a >"$V/a.txt"
echo b >"$V/d/b.txt"
echo c >"$V/d/c.txt"
# The feed overlaps scans by two seconds (ctime has one-second steps): let
# these files age past that, so that only later changes count.
sleep 3

scans_at_least() { d feedstats && [ "$(echo "$REPLY" | sed 's/.*scans=\([0-9]*\).*/\1/')" -ge "$1" ]; }
is_miss() { d "$@" && [ "$REPLY" = "ok miss" ]; }

drive_start "$L" "$V" tracked 200 || { fail "flush-drive starts"; t_done; }
ok "cache the attributes of a file" d attrput /a.txt
ok "cache the listing of a directory" d dirput /d
d_eq "the attributes are cached" "ok hit" attrget /a.txt
d_eq "the listing is cached" "ok hit" dirget /d
ok "start the feed" d feed 200
ok "it scans" wait_for 30 scans_at_least 4
d_eq "without changes the attributes stay cached" "ok hit" attrget /a.txt
d_eq "without changes the listing stays cached" "ok hit" dirget /d

echo changed >>"$V/a.txt"
ok "a change on the VM drops the file's attributes" wait_for 20 is_miss attrget /a.txt
d_eq "and not an unrelated listing" "ok hit" dirget /d

is_answer() { local want=$1; shift; d "$@" && [ "$REPLY" = "$want" ]; }
d_eq "the cached listing lacks a name the VM lacks" "ok no" dirhas /d new.txt
touch "$V/d/new.txt"
ok "a new file on the VM shows in its directory's listing, listed again" \
	wait_for 20 is_answer "ok yes" dirhas /d new.txt
d_eq "the listing is still cached (no round trip for the next lookup)" "ok hit" dirget /d

ok "cache a file's attributes again" d attrput /d/c.txt
rm "$V/d/b.txt"
ok "a delete on the VM takes the name out of the listing" wait_for 20 is_answer "ok no" dirhas /d b.txt
d_eq "and keeps the name beside it" "ok yes" dirhas /d c.txt
d_eq "and the attributes of the file beside it" "ok hit" attrget /d/c.txt

ok "a write of ours is flushed meanwhile" d write /ours.txt x
ok "the VM has it" wait_for 20 file_is "$V/ours.txt" x
drive_stop
t_done
