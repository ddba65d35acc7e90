#!/usr/bin/env bash
# Reading VM files: small ones are cached whole in the layer (bounded by
# cache_max, least recently used evicted), large ones are streamed; every
# read returns the VM's bytes, and a change on the VM shows on the next open.
. "$top_srcdir/tests/lib.sh"
t_init

sshd_start vm || { fail "sshd starts"; t_done; }
R=$T/vm
M=$T/mnt
L=$T/layer
mkdir -p "$R" "$M"
head -c $((2 * 1024 * 1024)) /dev/urandom >"$R/big.bin"
for i in 1 2 3 4 5 6 7 8; do head -c $((200 * 1024)) /dev/urandom >"$R/s$i.bin"; done
cache_bytes() { find "$L/.wakefs/cache" -type f -printf '%s\n' | awk '{ n += $1 } END { print n + 0 }'; }

"$WAKEFS" -f -F "$VM_SSH_CONFIG" -o "local=$L,cache_max=1M" "vm:$R" "$M" >>"$T/wakefs.log" 2>&1 &
t_track_pid $!
mount_wait "$M" 30 || { fail "wakefs mounts with cache_max=1M"; t_done; }
pass "wakefs mounts with cache_max=1M"

ok "a 2 MiB file (over the per-file limit) reads the VM's bytes" cmp "$R/big.bin" "$M/big.bin"
ok "it reads again" cmp "$R/big.bin" "$M/big.bin"
ok_eq "it was streamed, not cached" 0 "$(cache_bytes)"
all=1
for i in 1 2 3 4 5 6 7 8; do cmp -s "$R/s$i.bin" "$M/s$i.bin" || all=0; done
ok_eq "eight 200 KiB files read the VM's bytes" 1 "$all"
used=$(cache_bytes)
ok "their cached copies stay within cache_max ($used bytes)" test "$used" -le $((1024 * 1024))
ok "some are cached" test "$used" -ge $((200 * 1024))
ok "the most recent one is served again" cmp "$R/s8.bin" "$M/s8.bin"
ok_eq "reading puts nothing in the layer itself" "" "$(ls -A "$L" | grep -v -x .wakefs)"
head -c $((100 * 1024)) /dev/urandom >"$R/s8.bin"
ok "a change on the VM shows on the next open" wait_for 20 cmp -s "$R/s8.bin" "$M/s8.bin"
ok "and stat shows the new size" wait_for 10 eval '[ "$(stat -c %s "$M/s8.bin")" = 102400 ]'
ok "unmount" umount_wait "$M"
t_done
