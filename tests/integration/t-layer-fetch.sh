#!/usr/bin/env bash
# A VM file opened for reading is served while its local copy arrives: open()
# returns once the VM file is open, a read of bytes already copied returns at
# once, a read further on waits for them. The whole copy is then cached. The
# handle answers for the VM file (its size and mode), not for the partial
# copy; a second open joins the copy still arriving; an unmount in the middle
# of a copy neither hangs nor leaves it behind; a dropped connection in the
# middle of one only delays it. The link is slowed to 40 Mbit/s by the
# latency proxy, so that a 12 MiB copy takes about 2.5 s.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/tools/proxy-lib.sh"
t_init

sshd_start vm || { fail "sshd starts"; t_done; }
proxy_start P "$VM_PORT" --rtt 2 --bandwidth 40 || { fail "the latency proxy starts"; t_done; }
R=$T/vm
M=$T/mnt
L=$T/layer
mkdir -p "$R" "$M"
SIZE=$((12 * 1024 * 1024))
for f in a b c d e f; do head -c "$SIZE" /dev/urandom >"$R/$f.bin"; done
chmod 644 "$R/c.bin"

wmount() {
	"$WAKEFS" -f -p "$P_PORT" \
		-o "identity=$VM_KEY,known_hosts=$VM_KNOWN_HOSTS,host_key_alias=$VM_ALIAS,local=$L,cache_timeout=0" \
		"127.0.0.1:$R" "$M" >>"$T/wakefs.log" 2>&1 &
	WPID=$!
	t_track_pid "$WPID"
	mount_wait "$M" 30
}
partial_copies() { find "$L/.wakefs/tmp" -name 'dl.*' -type f 2>/dev/null | wc -l; }
cached_bytes() { find "$L/.wakefs/cache" -type f -printf '%s\n' 2>/dev/null | awk '{ n += $1 } END { print n + 0 }'; }

wmount || { fail "wakefs mounts through the proxy"; t_done; }
pass "wakefs mounts through the proxy"

# The python probes' common part: read a file whole, and a descriptor to its end.
PYREAD='
import os, sys
def file_bytes(path):
    with open(path, "rb") as f:
        return f.read()
def read_all(fd):
    got = b""
    while True:
        b = os.read(fd, 1 << 20)
        if not b:
            return got
        got += b
'
# One process: open, first read, then what the handle says while the copy is partial.
PROBE=$PYREAD'
path, vm, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
want = file_bytes(vm)
fd = os.open(path, os.O_RDONLY)
head = os.pread(fd, 65536, 0)
print("head", "ok" if head == want[:65536] else "wrong")
print("partial", len([n for n in os.listdir(sys.argv[4]) if n.startswith("dl.")]))
print("seek_end", os.lseek(fd, 0, os.SEEK_END))
print("fstat", os.fstat(fd).st_size)
tail = os.pread(fd, 4096, size - 4096)
print("tail", "ok" if tail == want[-4096:] else "wrong")
os.lseek(fd, 0, os.SEEK_SET)
print("whole", "ok" if read_all(fd) == want else "wrong")
os.close(fd)
'
out=$(python3 -c "$PROBE" "$M/a.bin" "$R/a.bin" "$SIZE" "$L/.wakefs/tmp" 2>>"$T/check.log")
echo "$out" >>"$T/check.log"
ok_eq "the first 64 KiB are the VM's" "head ok" "$(grep '^head' <<<"$out")"
ok_eq "they came while the copy was still arriving" "partial 1" "$(grep '^partial' <<<"$out")"
ok_eq "lseek(SEEK_END) on the handle gives the VM's size, not the copy's" "seek_end $SIZE" "$(grep '^seek_end' <<<"$out")"
ok_eq "fstat gives the VM's size" "fstat $SIZE" "$(grep '^fstat' <<<"$out")"
ok_eq "a read near the end gets the VM's bytes" "tail ok" "$(grep '^tail' <<<"$out")"
ok_eq "the whole file reads the VM's bytes" "whole ok" "$(grep '^whole' <<<"$out")"
ok "the complete copy is cached" wait_for 30 eval '[ "$(cached_bytes)" -ge '"$SIZE"' ] && [ "$(partial_copies)" = 0 ]'
ok "it reads again, from the cache" cmp "$R/a.bin" "$M/a.bin"
ok_eq "reading put nothing in the layer itself" "" "$(ls -A "$L" | grep -v -x .wakefs)"

# Two readers of one file at once: both get the VM's bytes.
cmp "$R/b.bin" "$M/b.bin" >>"$T/check.log" 2>&1 &
r1=$!
cmp "$R/b.bin" "$M/b.bin" >>"$T/check.log" 2>&1
r2=$?
wait "$r1"
ok_eq "two readers at once both read the VM's bytes" "0 0" "$? $r2"

# A second open while the first one's copy arrives joins it: one copy, one download.
SHARE=$PYREAD'
path, vm, tmp = sys.argv[1], sys.argv[2], sys.argv[3]
want = file_bytes(vm)
peek = os.open(path, os.O_RDONLY)
os.pread(peek, 16, 0)
os.close(peek)
fd = os.open(path, os.O_RDONLY)
os.pread(fd, 16, 0)
print("copies", len([n for n in os.listdir(tmp) if n.startswith("dl.")]))
print("whole", "ok" if read_all(fd) == want else "wrong")
'
out=$(python3 -c "$SHARE" "$M/e.bin" "$R/e.bin" "$L/.wakefs/tmp" 2>>"$T/check.log")
echo "$out" >>"$T/check.log"
ok_eq "a reopen while the copy arrives shares it (one copy)" "copies 1" "$(grep '^copies' <<<"$out")"
ok_eq "and reads the VM's bytes" "whole ok" "$(grep '^whole' <<<"$out")"

# The VM's sshd drops the connection in the middle of a copy: the engine
# reconnects, reopens the file, and the copy goes on to the VM's bytes.
DROP=$PYREAD'
import subprocess
path, vm, sshd = sys.argv[1], sys.argv[2], sys.argv[3]
want = file_bytes(vm)
fd = os.open(path, os.O_RDONLY)
os.pread(fd, 65536, 0)
kids = subprocess.run(["ps", "-o", "pid=", "--ppid", sshd], capture_output=True, text=True).stdout.split()
for k in kids:
    os.kill(int(k), 15)
print("dropped", len(kids) > 0)
print("whole", "ok" if read_all(fd) == want else "wrong")
'
out=$(timeout 120 python3 -c "$DROP" "$M/f.bin" "$R/f.bin" "$VM_SSHD_PID" 2>>"$T/check.log")
echo "$out" >>"$T/check.log"
ok_eq "the VM's sessions were dropped in the middle of a copy" "dropped True" "$(grep '^dropped' <<<"$out")"
ok_eq "the copy went on after the reconnect, to the VM's bytes" "whole ok" "$(grep '^whole' <<<"$out")"

# fchmod through a read-only handle changes the VM file, not its copy.
python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.pread(fd, 1, 0)
os.fchmod(fd, 0o600)
os.close(fd)
' "$M/c.bin" >>"$T/check.log" 2>&1
ok_eq "fchmod on a read-only handle shows in the mount" 600 "$(stat -c %a "$M/c.bin")"
ok "and reaches the VM" "$WAKEFS" flush "$M"
ok_eq "the VM file's mode is 600" 600 "$(stat -c %a "$R/c.bin")"
ok "its content is still the VM's" cmp "$R/c.bin" "$M/c.bin"

# Unmount while a copy is arriving: no hang, no partial copy left, no cache entry.
before=$(cached_bytes)
python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.pread(fd, 1, 0)
os.close(fd)
' "$M/d.bin" >>"$T/check.log" 2>&1
ok_eq "a copy is arriving after the reader closed" 1 "$(partial_copies)"
ok "unmount in the middle of it" umount_wait "$M" 30
ok "the daemon exits" wait_for 30 eval '! kill -0 '"$WPID"' 2>/dev/null'
ok_eq "no partial copy is left" 0 "$(partial_copies)"
ok_eq "nothing partial was cached" "$before" "$(cached_bytes)"
ok_not "wakefs logged no crash" grep -qiE 'sanitizer|runtime error|segfault' "$T/wakefs.log"

wmount || { fail "wakefs mounts again"; t_done; }
ok "the file reads whole after the remount" cmp "$R/d.bin" "$M/d.bin"
ok "unmount" umount_wait "$M"

# Reads far ahead of the copy are answered by the VM (a faster link here, and
# a bigger file, so that waiting for the copy would take several times as
# long as the VM's answer): they return while the copy is still early on.
proxy_start Q "$VM_PORT" --rtt 2 --bandwidth 400 || { fail "a second latency proxy starts"; t_done; }
BIG=$((128 * 1024 * 1024))
head -c "$BIG" /dev/urandom >"$R/big.bin"
head -c "$BIG" /dev/urandom >"$R/big2.bin"
head -c "$BIG" /dev/urandom >"$R/new2.bin"
touch -d '2001-01-01' "$R/new2.bin"
"$WAKEFS" -f -p "$Q_PORT" \
	-o "identity=$VM_KEY,known_hosts=$VM_KNOWN_HOSTS,host_key_alias=$VM_ALIAS,local=$T/layer2,cache_timeout=0" \
	"127.0.0.1:$R" "$M" >>"$T/wakefs.log" 2>&1 &
t_track_pid $!
mount_wait "$M" 30 || { fail "wakefs mounts through the faster proxy"; t_done; }
AHEAD=$PYREAD'
path, ref, tmp, repl, vm = sys.argv[1:6]
want = file_bytes(ref)
size = len(want)
def copied():
    return sum(os.path.getsize(os.path.join(tmp, n)) for n in os.listdir(tmp) if n.startswith("dl."))
fd = os.open(path, os.O_RDONLY)
if repl:
    os.rename(repl, vm)    # the VM file is replaced after the open
tail = os.pread(fd, 4096, size - 4096)
print("copied_half", copied() < size // 2)
print("tail", "ok" if tail == want[-4096:] else "wrong")
mid = os.pread(fd, 4096, size // 2 + 12345)
print("mid", "ok" if mid == want[size // 2 + 12345:][:4096] else "wrong")
os.lseek(fd, 0, os.SEEK_SET)
print("whole", "ok" if read_all(fd) == want else "wrong")
os.close(fd)
'
out=$(python3 -c "$AHEAD" "$M/big.bin" "$R/big.bin" "$T/layer2/.wakefs/tmp" "" "" 2>>"$T/check.log")
echo "$out" >>"$T/check.log"
ok_eq "a read at the end of a big file, while its copy arrives, gets the VM's bytes" "tail ok" "$(grep '^tail' <<<"$out")"
ok_eq "it did not wait for the copy (under half of it was there)" "copied_half True" "$(grep '^copied_half' <<<"$out")"
ok_eq "a read in the middle gets the VM's bytes" "mid ok" "$(grep '^mid' <<<"$out")"
ok_eq "the whole file then reads the VM's bytes" "whole ok" "$(grep '^whole' <<<"$out")"
# The VM's file replaced (another version) after the open: the handle reads
# the version it opened, whether from the copy or from the VM.
cp "$R/big2.bin" "$T/big2.orig"
out=$(python3 -c "$AHEAD" "$M/big2.bin" "$T/big2.orig" "$T/layer2/.wakefs/tmp" "$R/new2.bin" "$R/big2.bin" 2>>"$T/check.log")
echo "$out" >>"$T/check.log"
ok_eq "a file replaced on the VM after the open: a read at its end gets the opened version" "tail ok" "$(grep '^tail' <<<"$out")"
ok_eq "and so does the whole file" "whole ok" "$(grep '^whole' <<<"$out")"
ok "unmount" umount_wait "$M"
t_done
