#!/bin/bash
# The flusher behind a real mount: fsync() returns when the VM has the file
# (and only fsync sends before the debounce); both sides changing a file ends
# in a conflict that `wakefs status` shows, `wakefs flush` reports and
# `wakefs resolve` settles; `wakefs push` sends a held file; the change feed
# brings the VM's new files into cached listings.
. "$top_srcdir/tests/lib.sh"
t_init
sshd_start vm || { fail "sshd starts"; t_done; }
R=$T/vm
M=$T/mnt
L=$T/layer
mkdir -p "$R" "$M" "$L"
git -C "$L" init -q || { fail "git init"; t_done; }
file_is() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }
echo v1 >"$R/shared.txt"
touch -d '2020-01-01 00:00:00' "$R/shared.txt"

"$WAKEFS" -f -F "$VM_SSH_CONFIG" -o "local=$L,debounce_ms=60000,flush=all" "vm:$R" "$M" >>"$T/wakefs.log" 2>&1 &
t_track_pid $!
mount_wait "$M" 30 || { fail "wakefs mounts"; t_done; }
pass "wakefs mounts with a long debounce"

# --- fsync ------------------------------------------------------------------------
printf 'later\n' >"$M/plain.txt"
sleep 1
ok_not "before the debounce the VM does not have a closed file" test -e "$R/plain.txt"
ok "write and fsync through the mount" python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, b"synced\n")
os.fsync(fd)
os.close(fd)' "$M/synced.txt"
ok "the VM has it when fsync returns" file_is "$R/synced.txt" synced
ok_not ".git stays on the laptop" test -e "$R/.git"

# --- a conflict -----------------------------------------------------------------------
ok_eq "the VM's file shows through" "v1" "$(cat "$M/shared.txt")"
echo local >>"$M/shared.txt"
echo "vm side" >"$R/shared.txt"
touch -d '2021-01-01 00:00:00' "$R/shared.txt"
ok_not "wakefs flush reports the conflict" "$WAKEFS" flush "$M"
ok_eq "the VM's version is not overwritten" "vm side" "$(cat "$R/shared.txt")"
ok_eq "the mount keeps the local version" "v1 local" "$(tr '\n' ' ' <"$M/shared.txt" | sed 's/ $//')"
"$WAKEFS" status "$M" >"$T/status.out" 2>&1
ok "wakefs status shows the conflict" grep -q '^conflict: *1' "$T/status.out"
ok "wakefs status names it" grep -q '^  /shared.txt ' "$T/status.out"
"$WAKEFS" status "$M" --json >"$T/status.json" 2>&1
ok_eq "status --json lists it" "/shared.txt" \
	"$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["conflict"][0]["path"])' "$T/status.json")"
ok "the VM's version is kept in the layer" grep -q "vm side" "$L/.wakefs/conflicts/shared.txt"
ok "wakefs resolve --keep=local" "$WAKEFS" resolve "$M" "$M/shared.txt" --keep=local
ok_eq "the VM has the local version" "v1 local" "$(tr '\n' ' ' <"$R/shared.txt" | sed 's/ $//')"
ok "wakefs flush succeeds now" "$WAKEFS" flush "$M"
ok "the closed file was sent by the flush" file_is "$R/plain.txt" later
ok "unmount" umount_wait "$M"

# --- push of a held file (flush=tracked) -------------------------------------------------
"$WAKEFS" -f -F "$VM_SSH_CONFIG" -o "local=$L,debounce_ms=200" "vm:$R" "$M" >>"$T/wakefs.log" 2>&1 &
t_track_pid $!
mount_wait "$M" 30 || { fail "wakefs mounts again"; t_done; }
printf 'draft\n' >"$M/draft.md"
held() { "$WAKEFS" status "$M" | grep -q '^  /draft.md$'; }
ok "an untracked file is held" wait_for 20 held
ok_not "the VM does not have it" test -e "$R/draft.md"
ok "wakefs push sends it" "$WAKEFS" push "$M" "$M/draft.md"
ok "the VM has it" file_is "$R/draft.md" draft

# --- the change feed: a file made on the VM shows in a cached listing ----------------------
ls "$M" >/dev/null
echo vm >"$R/from-vm.txt"
listed() { ls "$M" | grep -qx from-vm.txt; }
ok "a file made on the VM shows in the listing well before the cache expires" wait_for 12 listed
ok "unmount" umount_wait "$M"
t_done
