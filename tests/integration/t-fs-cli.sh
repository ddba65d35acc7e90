#!/usr/bin/env bash
# The wakefs command line: clear errors for bad input, -p / -o identity /
# -o known_hosts, host keys (unknown refused, accept_new_hostkey records it,
# then it is trusted), the background mode returning only once mounted,
# `mount -t fuse.wakefs` with an fstab-style -o list, -o ro, a dir missing
# on the VM (or a file) refused before mounting, and a mount
# that is private unless allow_other is given.
. "$top_srcdir/tests/lib.sh"
t_init

# run_cli NAME ARGS...: run wakefs, keep stdout, stderr and status in $T/NAME.*
run_cli() {
	local name=$1
	shift
	timeout 60 "$WAKEFS" "$@" >"$T/$name.out" 2>"$T/$name.err"
	echo $? >"$T/$name.rc"
}
rc() { cat "$T/$1.rc"; }
err_has() { grep -qF -- "$2" "$T/$1.err"; }

# --- without a VM ---------------------------------------------------------------
run_cli version --version
ok_eq "--version exits 0" "0" "$(rc version)"
ok "--version prints the version" grep -qE '^wakefs [0-9]+\.[0-9]+' "$T/version.out"
run_cli help --help
ok_eq "--help exits 0" "0" "$(rc help)"
ok "--help shows the usage and the options" grep -q 'reconnect_timeout' "$T/help.out"
run_cli noargs
ok_eq "no arguments: status 2" "2" "$(rc noargs)"
ok "no arguments: says what is missing" err_has noargs "wakefs: missing"
mkdir -p "$T/mnt"
M=$T/mnt
run_cli badopt -o colour=blue host: "$M"
ok_eq "an unknown -o option: status 2" "2" "$(rc badopt)"
ok "an unknown -o option is named, with what is expected" \
	err_has badopt "wakefs: bad option 'colour=blue': expected"
run_cli badflag -x host: "$M"
ok "an unknown flag is named" err_has badflag "wakefs: bad option '-x'"
run_cli badport -p 70000 host: "$M"
ok "a bad port is explained" err_has badport "wakefs: bad port '70000': expected a number from 1 to 65535"
run_cli badtimeout -o reconnect_timeout=soon host: "$M"
ok "a bad timeout is explained" err_has badtimeout "bad option 'reconnect_timeout=soon': expected reconnect_timeout=SECONDS"
run_cli badsrc justahost "$M"
ok "a remote without ':' is explained" err_has badsrc "wakefs: bad remote 'justahost': expected [user@]host:[dir]"
run_cli badmnt host: "$T/no/such/dir"
ok "a missing mountpoint is explained" err_has badmnt "cannot mount on '$T/no/such/dir': No such file or directory"
run_cli extra host: "$M" more
ok "a third argument is refused" err_has extra "too many arguments: 'more'"
run_cli uid -o uid=1000 host: "$M"
ok "uid remapping is refused as unsupported" err_has uid "uid/gid remapping is not supported"

sshd_start vm || { fail "sshd starts"; t_done; }
R=$T/vm
mkdir -p "$R"
echo "on the vm" >"$R/f"
chmod 644 "$R/f"
direct=(-p "$VM_PORT" -o "identity=$VM_KEY" -o writethrough)

# --- connecting ---------------------------------------------------------------
dead=$(free_port)
run_cli refused -p "$dead" -o "identity=$VM_KEY,known_hosts=$VM_KNOWN_HOSTS" "127.0.0.1:$R" "$M"
ok_eq "a refused connection: status 1" "1" "$(rc refused)"
ok "a refused connection is reported on the terminal" grep -qi "refused" "$T/refused.err"
ok_not "and nothing is mounted" is_mounted "$M"

# The directory to mount is checked on the VM before anything is mounted.
kh_opts="identity=$VM_KEY,known_hosts=$VM_KNOWN_HOSTS"
run_cli nodir -p "$VM_PORT" -o "$kh_opts,local=$T/nodir-layer" "127.0.0.1:$R/nosuch" "$M"
ok_eq "a dir missing on the VM: status 1" "1" "$(rc nodir)"
ok "it is named, with what to do" \
	err_has nodir "wakefs: '127.0.0.1:$R/nosuch' does not exist on the VM; create it or pick another dir"
ok_not "and nothing is mounted" is_mounted "$M"
ok_not "and no local layer is made for it" test -e "$T/nodir-layer"
run_cli nodir_wt -p "$VM_PORT" -o "$kh_opts,writethrough" "127.0.0.1:$R/f/sub" "$M"
ok_eq "a dir under a file on the VM (writethrough): status 1" "1" "$(rc nodir_wt)"
ok "it is named as missing" err_has nodir_wt "'127.0.0.1:$R/f/sub' does not exist on the VM"
run_cli notdir -p "$VM_PORT" -o "$kh_opts,writethrough" "127.0.0.1:$R/f" "$M"
ok_eq "a file, not a dir: status 1" "1" "$(rc notdir)"
ok "it says it is not a directory" err_has notdir "wakefs: '127.0.0.1:$R/f' is not a directory on the VM; pick a directory to mount"
ok_not "and nothing is mounted" is_mounted "$M"

# Background mode: the command returns once the mount is usable.
t_track_mount "$M"
ok "-p, -o identity, -o known_hosts mount in the background" \
	bash -c "'$WAKEFS' ${direct[*]} -o 'known_hosts=$VM_KNOWN_HOSTS' '127.0.0.1:$R' '$M' && cat '$M/f' >'$T/bg.out'"
ok_eq "the mount is usable as soon as wakefs returns" "on the vm" "$(cat "$T/bg.out")"
ok "the mount shows as fuse.wakefs" bash -c "grep -F ' $M ' /proc/mounts | grep -q 'fuse.wakefs'"
ok "unmount ends it" umount_wait "$M"

# --- host keys ------------------------------------------------------------------
kh=$T/new_known_hosts
: >"$kh"
run_cli unknown "${direct[@]}" -o "known_hosts=$kh" "127.0.0.1:$R" "$M"
ok_eq "an unknown host key: status 1" "1" "$(rc unknown)"
ok "an unknown host key is refused with a message" grep -qi "host key" "$T/unknown.err"
ok_not "and nothing is mounted" is_mounted "$M"
ok_eq "and nothing is recorded" "0" "$(wc -l <"$kh")"
"$WAKEFS" -f "${direct[@]}" -o "known_hosts=$kh,accept_new_hostkey" "127.0.0.1:$R" "$M" >>"$T/wakefs.log" 2>&1 &
t_track_pid $!
ok "accept_new_hostkey accepts an unknown key" mount_wait "$M" 30
ok "and records it" grep -q "ssh-ed25519" "$kh"
ok "unmount" umount_wait "$M"
"$WAKEFS" -f "${direct[@]}" -o "known_hosts=$kh" "127.0.0.1:$R" "$M" >>"$T/wakefs.log" 2>&1 &
t_track_pid $!
ok "the recorded key is trusted on the next mount" mount_wait "$M" 30
ok_eq "which works" "on the vm" "$(cat "$M/f" 2>&1)"
ok "unmount" umount_wait "$M"

# --- -s and -d ---------------------------------------------------------------------
"$WAKEFS" -s -d "${direct[@]}" -o "known_hosts=$VM_KNOWN_HOSTS" "127.0.0.1:$R" "$M" >"$T/debug.log" 2>&1 &
dpid=$!
t_track_pid $dpid
ok "-s -d mounts" mount_wait "$M" 30
ok_eq "and serves on one thread" "on the vm" "$(cat "$M/f" 2>&1)"
ok "-d stays in the foreground" kill -0 "$dpid"
ok "-d traces FUSE requests on stderr" grep -q "LOOKUP" "$T/debug.log"
ok "unmount" umount_wait "$M"

# --- mount -t fuse.wakefs ---------------------------------------------------------
# For "mount -t fuse.wakefs SRC MNT -o LIST" (and fstab), mount(8) runs
# "mount.fuse3 SRC MNT -t fuse.wakefs -o LIST", which runs "wakefs SRC MNT -o
# LIST" from PATH. mount(8) resets PATH to the system's, where an installed
# wakefs lives; the built one is not there, so run mount.fuse3 as mount(8)
# would, with the build directory on PATH.
if command -v mount.fuse3 >/dev/null; then
	ok "mount.fuse3 -t fuse.wakefs with an fstab-style -o list" \
		env PATH="$(dirname "$WAKEFS"):$PATH" timeout 60 mount.fuse3 "127.0.0.1:$R" "$M" -t fuse.wakefs \
		-o "rw,noauto,_netdev,nofail,defaults,writethrough,port=$VM_PORT,identity=$VM_KEY,known_hosts=$VM_KNOWN_HOSTS,reconnect_timeout=30"
	ok_eq "the fstab-style mount works" "on the vm" "$(cat "$M/f" 2>&1)"
	ok "unmount" umount_wait "$M"
else
	skip "mount.fuse3 -t fuse.wakefs" "mount.fuse3 is not installed"
fi

# --- private by default; allow_other; ro ---------------------------------------------
# A second user reads through the mount. As root no user_allow_other is
# needed in /etc/fuse.conf, so the test does not touch it.
user=wakefs-t$$
if [ "$(id -u)" != 0 ] || ! useradd -M -N -r -s /usr/sbin/nologin "$user" 2>>"$T/useradd.log"; then
	skip "another user cannot read a private mount" "needs root and useradd to make a second user"
	skip "with allow_other another user can read, checked by mode bits" "needs root and useradd to make a second user"
else
	as_user_made=1
	trap 'rc=$?; userdel "$user" 2>/dev/null; (exit $rc); t_cleanup' EXIT
	chmod 711 "$T"	# let the other user reach the mountpoint
	as_user() { setpriv --reuid="$user" --regid="$(id -g "$user")" --clear-groups "$@"; }
	"$WAKEFS" -f -F "$VM_SSH_CONFIG" -o writethrough "vm:$R" "$M" >>"$T/wakefs.log" 2>&1 &
	t_track_pid $!
	if mount_wait "$M" 30; then
		ok_not "another user cannot read a private mount" as_user cat "$M/f"
		ok_eq "its owner can" "on the vm" "$(cat "$M/f")"
		umount_wait "$M"
	else
		fail "the private mount comes up"
	fi
	"$WAKEFS" -f -F "$VM_SSH_CONFIG" -o writethrough,allow_other "vm:$R" "$M" >>"$T/wakefs.log" 2>&1 &
	t_track_pid $!
	if mount_wait "$M" 30; then
		ok_eq "with allow_other another user can read" "on the vm" "$(as_user cat "$M/f" 2>&1)"
		ok "with default_permissions it cannot write a file it does not own" \
			bash -c "setpriv --reuid='$user' --regid='$(id -g "$user")' --clear-groups sh -c \"echo x >>'$M/f'\" 2>&1 | grep -q 'Permission denied'"
		ok "the owner can append" sh -c "echo y >>'$M/f'"
		ok_eq "and only the owner's write reached the VM" "on the vm|y|" "$(vm_ssh "cat '$R/f'" | tr '\n' '|')"
		umount_wait "$M"
	else
		fail "the allow_other mount comes up"
	fi
fi
"$WAKEFS" -f -F "$VM_SSH_CONFIG" -o writethrough,ro "vm:$R" "$M" >>"$T/wakefs.log" 2>&1 &
t_track_pid $!
if mount_wait "$M" 30; then
	ok_eq "ro: reads work" "on the vm" "$(head -n 1 "$M/f")"
	ok "ro: writes fail with EROFS" bash -c "{ echo x >'$M/new'; } 2>&1 | grep -q 'Read-only file system'"
	ok_not "ro: nothing reached the VM" vm_ssh "test -e '$R/new'"
	umount_wait "$M"
else
	fail "the ro mount comes up"
fi
if [ -n "${as_user_made:-}" ]; then
	userdel "$user" 2>/dev/null
	ok_not "the second user is removed" id "$user"
fi
t_done
