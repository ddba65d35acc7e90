#!/usr/bin/env bash
# A large file written in order is sent to the VM while it is written (a
# presend): its temporary sibling on the VM grows while the writer still has
# the file open, and the close finishes it without waiting for the debounce.
# Every change a presend cannot follow must make the VM end with exactly the
# local bytes: an overwrite below what was sent, a truncate, a write through
# another handle, a rename, a hard link written through its other name. An
# fsync in the middle returns with the VM holding what was written; a kill -9
# in the middle leaves no partial file at the target, and the next mount
# sends it; a file deleted while its flush runs does not stay on the VM; a
# file the policy holds is never sent. The link is slowed to
# 40 Mbit/s by the latency proxy, so the writer stays ahead of the upload.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/tools/proxy-lib.sh"
t_init

sshd_start vm || { fail "sshd starts"; t_done; }
proxy_start P "$VM_PORT" --rtt 2 --bandwidth 40 || { fail "the latency proxy starts"; t_done; }
R=$T/vm
M=$T/mnt
L=$T/layer
E=$T/expected
mkdir -p "$R" "$M" "$E"

# A debounce far longer than the test: what reaches the VM early was sent by
# the close of a presend, or by `wakefs flush`.
wmount() {
	"$WAKEFS" -f -p "$P_PORT" \
		-o "identity=$VM_KEY,known_hosts=$VM_KNOWN_HOSTS,host_key_alias=$VM_ALIAS,local=$L,debounce_ms=600000" \
		"127.0.0.1:$R" "$M" >>"$T/wakefs.log" 2>&1 &
	WPID=$!
	t_track_pid "$WPID"
	mount_wait "$M" 30
}
temporaries() { find "$R" -name '*.wakefs-tmp.*' 2>/dev/null | wc -l; }

wmount || { fail "wakefs mounts through the proxy"; t_done; }
pass "wakefs mounts through the proxy"

# The writer: one scenario per call. It writes into the mount, prints what it
# saw, and leaves the bytes the file must end with in the expected directory.
WRITER='
import os, sys, time
scenario, mnt, vm, exp = sys.argv[1:5]
MiB = 1 << 20
path = os.path.join(mnt, scenario + ".bin")
vmpath = os.path.join(vm, scenario + ".bin")

def tmp_size(name):
    best = -1
    for n in os.listdir(vm):
        if n.startswith("." + name + ".wakefs-tmp."):
            try:
                best = max(best, os.stat(os.path.join(vm, n)).st_size)
            except FileNotFoundError:
                pass
    return best

def wait_sent(name, n, secs=60):
    end = time.time() + secs
    while time.time() < end:
        if tmp_size(name) >= n:
            return True
        time.sleep(0.05)
    return False

def write_all(fd, data, off):
    for i in range(0, len(data), MiB):
        os.pwrite(fd, data[i:i + MiB], off + i)

def expect(name, data):
    with open(os.path.join(exp, name), "wb") as f:
        f.write(data)

data = bytearray(os.urandom(24 * MiB))
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
write_all(fd, data[:12 * MiB], 0)
name = scenario + ".bin"
print("sent_while_open", wait_sent(name, 9 * MiB))
print("target_absent", not os.path.exists(vmpath))
if scenario == "grow":
    write_all(fd, data[12 * MiB:], 12 * MiB)
elif scenario == "overwrite":
    data[0:4096] = os.urandom(4096)
    os.pwrite(fd, bytes(data[0:4096]), 0)
    write_all(fd, data[12 * MiB:16 * MiB], 12 * MiB)
    data = data[:16 * MiB]
elif scenario == "truncate":
    os.ftruncate(fd, 5 * MiB)
    write_all(fd, data[5 * MiB:7 * MiB], 5 * MiB)
    data = data[:7 * MiB]
elif scenario == "other":
    fd2 = os.open(path, os.O_WRONLY)
    data[10 * MiB:10 * MiB + 100] = os.urandom(100)
    os.pwrite(fd2, bytes(data[10 * MiB:10 * MiB + 100]), 10 * MiB)
    os.close(fd2)
    write_all(fd, data[12 * MiB:16 * MiB], 12 * MiB)
    data = data[:16 * MiB]
elif scenario == "rename":
    os.rename(path, os.path.join(mnt, "renamed.bin"))
    write_all(fd, data[12 * MiB:16 * MiB], 12 * MiB)
    data = data[:16 * MiB]
    name = "renamed.bin"
elif scenario == "link":
    os.link(path, os.path.join(mnt, "alias.bin"))
    fd2 = os.open(os.path.join(mnt, "alias.bin"), os.O_WRONLY)
    data[1 * MiB:1 * MiB + 4096] = os.urandom(4096)
    os.pwrite(fd2, bytes(data[1 * MiB:1 * MiB + 4096]), 1 * MiB)
    os.close(fd2)
    write_all(fd, data[12 * MiB:16 * MiB], 12 * MiB)
    data = data[:16 * MiB]
    expect("alias.bin", data)
elif scenario == "fsync":
    data = data[:12 * MiB]
    os.fsync(fd)
    with open(vmpath, "rb") as f:
        print("after_fsync", f.read() == data)
elif scenario == "kill":
    data = data[:12 * MiB]
    expect(name, data)
    print("ready", flush=True)
    time.sleep(600)
os.close(fd)
expect(name, data)
'
# run_writer SCENARIO: the writer's output, also kept in the check log.
run_writer() {
	local out
	out=$(timeout 300 python3 -c "$WRITER" "$1" "$M" "$R" "$E" 2>>"$T/check.log")
	printf '%s: %s\n' "$1" "$out" >>"$T/check.log"
	printf '%s\n' "$out"
}
# vm_has NAME: the VM's file is the expected bytes, and no temporary is left.
vm_has() { cmp -s "$E/$1" "$R/$1" && [ "$(temporaries)" = 0 ]; }

out=$(run_writer grow)
ok_eq "a file written in order is sent while it is written" "sent_while_open True" \
	"$(grep '^sent_while_open' <<<"$out")"
ok_eq "its target on the VM is not touched before the file is done" "target_absent True" \
	"$(grep '^target_absent' <<<"$out")"
ok "the close finishes it without the debounce: the VM has the whole file" wait_for 60 vm_has grow.bin

# Changes a presend cannot follow: the VM ends with the local bytes anyway.
for s in overwrite truncate other; do
	out=$(run_writer $s)
	ok_eq "$s: it was being sent when the change came" "sent_while_open True" \
		"$(grep '^sent_while_open' <<<"$out")"
	ok "$s: wakefs flush succeeds" "$WAKEFS" flush "$M"
	ok "$s: the VM has exactly the local bytes, no temporary left" wait_for 30 vm_has $s.bin
	ok "$s: the mount reads them too" cmp "$E/$s.bin" "$M/$s.bin"
done

out=$(run_writer rename)
ok_eq "rename: it was being sent when the file was renamed" "sent_while_open True" \
	"$(grep '^sent_while_open' <<<"$out")"
ok "rename: wakefs flush succeeds" "$WAKEFS" flush "$M"
ok "rename: the VM has the new name with the local bytes" wait_for 30 vm_has renamed.bin
ok_not "rename: and not the old name" test -e "$R/rename.bin"

out=$(run_writer link)
ok_eq "link: it was being sent when the hard link came" "sent_while_open True" \
	"$(grep '^sent_while_open' <<<"$out")"
ok "link: wakefs flush succeeds" "$WAKEFS" flush "$M"
ok "link: the VM has the file with the write made through the other name" wait_for 30 vm_has link.bin
ok "link: and the other name with the same bytes" vm_has alias.bin

out=$(run_writer fsync)
ok_eq "fsync in the middle of a presend returns with the VM holding what was written" \
	"after_fsync True" "$(grep '^after_fsync' <<<"$out")"
ok "fsync: after the close the VM still has the file" wait_for 30 vm_has fsync.bin

# Deleted while the close's flush is still sending it (which the debounce no
# longer delays): the delete found nothing on the VM yet, and left no
# whiteout; the VM must not end up with the file anyway.
python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
for i in range(16):
    os.write(fd, os.urandom(1 << 20))
os.close(fd)
' "$M/gone.bin" >>"$T/check.log" 2>&1
sleep 0.5
ok "a file is deleted while its flush sends it" rm "$M/gone.bin"
ok "wakefs flush succeeds" "$WAKEFS" flush "$M"
ok_not "the VM does not keep the deleted file" test -e "$R/gone.bin"
ok_eq "nor a temporary of it" 0 "$(temporaries)"

# A file the policy holds (untracked in a repository) is never sent.
git init -q "$M/repo" >>"$T/check.log" 2>&1
python3 -c '
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
for i in range(12):
    os.write(fd, os.urandom(1 << 20))
time.sleep(3)
os.close(fd)
' "$M/repo/held.bin" >>"$T/check.log" 2>&1
ok "an untracked file: wakefs flush succeeds" "$WAKEFS" flush "$M"
ok_eq "nothing of it reached the VM, not even a temporary" "" \
	"$(ls -A "$R/repo" 2>/dev/null)"

# kill -9 of the daemon while a presend runs: the VM's target is untouched;
# the next mount sends the file, and the temporary is replaced.
coproc KW { timeout 300 python3 -c "$WRITER" kill "$M" "$R" "$E" 2>>"$T/check.log"; }
KWPID=$KW_PID
t_track_pid "$KWPID"
out=""
for _ in 1 2 3; do
	read -r -t 120 line <&"${KW[0]}" || break
	out+="$line"$'\n'
	[ "$line" = ready ] && break
done
echo "kill: $out" >>"$T/check.log"
ok_eq "kill: it was being sent when the daemon was killed" "sent_while_open True" \
	"$(grep '^sent_while_open' <<<"$out")"
kill -9 "$WPID"
wait_for 30 eval '! kill -0 '"$WPID"' 2>/dev/null'
fusermount3 -uz "$M" 2>/dev/null || umount -l "$M" 2>/dev/null
kill "$KWPID" 2>/dev/null
wait "$KWPID" 2>/dev/null
ok_not "kill: the VM has no partial file at the target" test -e "$R/kill.bin"
ok "kill: the layer kept what was written" cmp "$E/kill.bin" "$L/kill.bin"
wmount || { fail "wakefs mounts again"; t_done; }
ok "kill: wakefs flush after the remount succeeds" "$WAKEFS" flush "$M"
ok "kill: the VM has the file, and no temporary is left" wait_for 30 vm_has kill.bin

ok "unmount" umount_wait "$M" 30
ok "the daemon exits" wait_for 30 eval '! kill -0 '"$WPID"' 2>/dev/null'
ok_not "wakefs logged no crash" grep -qiE 'sanitizer|runtime error|segfault' "$T/wakefs.log"
t_done
