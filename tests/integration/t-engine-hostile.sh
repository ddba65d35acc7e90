#!/usr/bin/env bash
# A hostile SFTP server (tests/tools/evil-sftp.py as sshd's sftp subsystem)
# sends truncated, oversized, wrong-id, wrong-type and garbage replies: the
# engine answers EIO (or the connect fails with a message) in bounded time,
# logs what happened, and never crashes (this also runs in the sanitizer
# build, where an overread or leak aborts the client).
. "$top_srcdir/tests/lib.sh"
t_init
unset SSH_AUTH_SOCK
CLI=$top_builddir/tests/tools/remote-cli
command -v python3 >/dev/null || { skip "hostile server" "python3 is not installed"; t_done; }
sshd_start vm || { fail "sshd starts"; t_done; }
# Same keys and port, but the sftp subsystem is the evil server.
sshd_stop
sed "s|^Subsystem sftp .*|Subsystem sftp python3 $top_srcdir/tests/tools/evil-sftp.py $T/mode|" \
	"$T/sshd/sshd_config" >"$T/sshd/evil_config"
/usr/sbin/sshd -D -e -f "$T/sshd/evil_config" >>"$T/sshd.log" 2>&1 &
VM_SSHD_PID=$!
t_track_pid "$VM_SSHD_PID"
wait_for 20 vm_ssh true || { fail "the evil sshd answers"; t_done; }

# run MODE CMD...: run the client against MODE; sets rc, err (its stderr) and secs.
run() {
	echo "$1" >"$T/mode"
	shift
	local start=$SECONDS
	"$CLI" -o "identity=$VM_KEY,known_hosts=$VM_KNOWN_HOSTS,host_key_alias=vm,request_timeout_ms=3000,connect_timeout_ms=30000" \
		"127.0.0.1:$VM_PORT" "$@" >"$T/out" 2>"$T/err"
	rc=$?
	secs=$((SECONDS - start))
	err=$(cat "$T/err")
	cat "$T/err" >>"$T/client.log"
}
# expect_eio DESC MODE CMD...: the command fails with EIO, exits normally, in bounded time.
expect_eio() {
	local desc=$1
	shift
	run "$@"
	if [ "$rc" = 1 ] && [[ $err == *"(EIO)"* ]] && [ "$secs" -le 40 ]; then
		pass "$desc"
	else
		fail "$desc"
		diag "rc=$rc secs=$secs stderr: $err"
	fi
}

printf 'cat /f\nls /\n' | run sane -
ok_eq "the test server works when it behaves" "$(printf 'x%.0s' $(seq 1000))OK|f|OK" "$(cut -f1 "$T/out" | paste -sd'|')"
printf 'ext\nstatvfs /\nlink /a /b\n' | run no-extensions -
ok_eq "without extensions: none offered, statvfs answers, hardlink is ENOTSUP" "0|OK|OK|ERR ENOTSUP" \
	"$(grep -v '^bsize' "$T/out" | paste -sd'|')"
expect_eio "a truncated STATUS: EIO" truncated stat /f
expect_eio "an ATTRS cut short: EIO" short-attrs stat /f
expect_eio "a reply cut mid-packet by the end of the stream: EIO" cut-stream stat /f
expect_eio "a length prefix of 2 GiB: EIO" oversized stat /f
ok "the oversized reply is logged" grep -q "bad SFTP packet length" "$T/err"
expect_eio "a reply with an unknown id: EIO after the timeout" wrong-id stat /f
ok "the unknown id is logged" grep -q "unknown id" "$T/err"
expect_eio "an ATTRS where HANDLE is due: EIO" wrong-type cat /f
expect_eio "garbage: EIO" garbage stat /f
expect_eio "no reply at all: EIO after the timeout" silent stat /f
expect_eio "a NAME claiming 2^31 entries: EIO" huge-count ls /
expect_eio "a 1000-byte handle: EIO" long-handle cat /f
expect_eio "DATA longer than asked for: EIO" long-data cat /f
run bad-version stat /f
ok_eq "a bad VERSION fails the connect" 1 "$rc"
ok "with a message saying so" grep -q "cannot start SFTP" "$T/err"
t_done
