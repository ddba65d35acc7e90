#!/usr/bin/env bash
# Large files through the engine: a 64 MiB round trip (put, get, and reads in
# FUSE-sized blocks through the read-ahead window) compared by SHA-256 on
# both sides, and a sparse file over 4 GiB: its size, a read and a write at
# 4.5 GiB, and a truncate beyond it.
. "$top_srcdir/tests/lib.sh"
t_init
unset SSH_AUTH_SOCK
CLI=$top_builddir/tests/tools/remote-cli
sshd_start vm || { fail "sshd starts"; t_done; }
R() { "$CLI" -o "identity=$VM_KEY,known_hosts=$VM_KNOWN_HOSTS,host_key_alias=vm" "127.0.0.1:$VM_PORT" "$@"; }
D=$T/vmroot
mkdir -p "$D"
sha() { sha256sum | cut -d' ' -f1; }

head -c $((64 * 1024 * 1024 + 12345)) /dev/urandom >"$T/big"
want=$(sha <"$T/big")
ok "put of a 64 MiB file" R put "$T/big" "$D/big"
ok_eq "the VM has the same bytes (sha256 on the VM)" "$want" "$(vm_ssh sha256sum "$D/big" | cut -d' ' -f1)"
ok "get of the 64 MiB file" R get "$D/big" "$T/back"
ok_eq "get brought back the same bytes" "$want" "$(sha <"$T/back")"
head -c 20000000 "$T/big" >"$D/mid"
ok_eq "reads of 128 KiB (read-ahead) give the same bytes" "$(sha <"$D/mid")" "$(R catbs "$D/mid" 131072 | sha)"
head -c 5000000 "$T/big" >"$D/mid"
ok_eq "reads of odd sizes give the same bytes" "$(sha <"$D/mid")" "$(R catbs "$D/mid" 100003 | sha)"
ok_eq "reads of 4 KiB give the same bytes" "$(sha <"$D/mid")" "$(R catbs "$D/mid" 4096 | sha)"
ok_eq "one read of 3 MB at an odd offset" "$(tail -c +12346 "$D/mid" | head -c 3000000 | sha)" \
	"$(R read "$D/big" 12345 3000000 | sha)"
ok_eq "a read across the end returns the tail" "$(tail -c 1000 "$T/big" | sha)" \
	"$(R read "$D/big" $((64 * 1024 * 1024 + 12345 - 1000)) 5000 | sha)"

# Over 4 GiB: sizes and offsets need 64 bits all the way.
G=$((1024 * 1024 * 1024))
truncate -s $((5 * G)) "$D/sparse"
printf 'MARK' | dd of="$D/sparse" bs=1 seek=$((9 * G / 2)) conv=notrunc status=none
ok_eq "stat of a 5 GiB sparse file" "size=$((5 * G))" "$(R stat "$D/sparse" | grep -o 'size=[0-9]*')"
ok_eq "a read at 4.5 GiB" "MARK" "$(R read "$D/sparse" $((9 * G / 2)) 4)"
ok_eq "a read in the hole gives zeros" "000000000000" "$(R read "$D/sparse" $((3 * G)) 6 | od -An -tx1 | tr -d ' \n')"
printf 'HIGH' | R write "$D/sparse" $((9 * G / 2 + 100))
ok_eq "a write at 4.5 GiB lands there on the VM" "HIGH" \
	"$(dd if="$D/sparse" bs=1 skip=$((9 * G / 2 + 100)) count=4 status=none)"
ok "truncate to 6 GiB" R truncate "$D/sparse" $((6 * G))
ok_eq "the VM sees 6 GiB" $((6 * G)) "$(stat -c %s "$D/sparse")"
t_done
