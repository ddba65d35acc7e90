#!/bin/bash
# The VM never sees half a file: a reader looping on the VM while a large file
# is replaced sees only the whole old or the whole new content.
. "$top_srcdir/tests/lib.sh"
t_init
. "$top_srcdir/tests/tools/flush-lib.sh"
sshd_start || { fail "sshd starts"; t_done; }
V=$T/vm
L=$T/layer
mkdir -p "$V" "$L"
MIB=48

drive_start "$L" "$V" tracked 100 || { fail "flush-drive starts"; t_done; }
ok "the old version is written" d big /big.bin $MIB a
ok "and sent" d fsync /big.bin
ok_eq "the VM has all of it" "$((MIB << 20))" "$(stat -c %s "$V/big.bin")"

cat >"$T/reader.py" <<'PY'
import sys, time
path, size, new = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
deadline = time.time() + 90
seen_new = reads = 0
while time.time() < deadline:
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except FileNotFoundError:
        print("missing at read", reads); sys.exit(1)
    reads += 1
    if len(data) != size or data.count(data[:1]) != len(data):
        print("partial or mixed content after", reads, "reads: size", len(data)); sys.exit(1)
    if data[:1] == new:
        seen_new += 1
        if seen_new >= 2:
            print("ok after", reads, "reads"); sys.exit(0)
print("the new content never arrived"); sys.exit(2)
PY
python3 "$T/reader.py" "$V/big.bin" $((MIB << 20)) b >"$T/reader.log" 2>&1 &
READER=$!
t_track_pid "$READER"
ok "the new version is written" d big /big.bin $MIB b
ok "and sent" d fsync /big.bin
wait "$READER"
rc=$?
ok_eq "the reader on the VM saw only whole versions, then the new one" "0" "$rc"
[ "$rc" = 0 ] || diag "$(cat "$T/reader.log")"
ok "no temporary upload is left on the VM" no_tmp "$V"
drive_stop
t_done
