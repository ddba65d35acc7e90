# tests/lib.sh: the harness every integration test sources.
#
# It gives each test its own temp dir ($T), TAP output (ok/not ok, plan at the
# end), a throwaway OpenSSH sshd on a free 127.0.0.1 port standing in for the
# VM, and a cleanup that always runs (EXIT trap): every mount the test made is
# unmounted and every pid it started is stopped, by pid, never by name. The
# temp dir is kept, and its path printed, when a check failed.
#
#   . "$top_srcdir/tests/lib.sh"
#   t_init
#   sshd_start                       # VM_HOST, VM_PORT, VM_KEY, VM_KNOWN_HOSTS, VM_SSH_CONFIG
#   ok "the VM answers" vm_ssh true
#   t_done

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
: "${WAKEFS:=$top_builddir/fs/wakefs}"
: "${VMCTL:=$top_builddir/vmctl/vmctl}"
export top_srcdir top_builddir WAKEFS VMCTL
# Debian's tools first: the tests rely on the packages scripts/deps installs,
# not on whatever a user's PATH puts ahead of them (a pyenv shim costs a
# process tree per python3 call).
export PATH="/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin:$PATH"

T_N=0
T_FAILED=0
T_PIDS=()
T_MOUNTS=()
T_USERS=()
T_NAME=$(basename "$0" .sh)

t_init() {
	T=$(mktemp -d "${TMPDIR:-/tmp}/wakefs-test.XXXXXX") || exit 99
	export T
	trap t_cleanup EXIT
	trap 'exit 130' INT TERM
}

# --- TAP -----------------------------------------------------------------

pass() { T_N=$((T_N + 1)); echo "ok $T_N - $*"; }
fail() { T_N=$((T_N + 1)); T_FAILED=$((T_FAILED + 1)); echo "not ok $T_N - $*"; }
# skip DESC REASON: only for what is genuinely unavailable; the reason is printed.
skip() { T_N=$((T_N + 1)); echo "ok $T_N - $1 # SKIP $2"; }
diag() { echo "# $*"; }

# ok DESC CMD...: one check that CMD succeeds; its output goes to the log.
ok() {
	local desc=$1
	shift
	if "$@" >>"$T/check.log" 2>&1; then pass "$desc"; else fail "$desc"; diag "failed: $*"; fi
}
# ok_not DESC CMD...: one check that CMD fails.
ok_not() {
	local desc=$1
	shift
	if "$@" >>"$T/check.log" 2>&1; then fail "$desc"; diag "unexpectedly succeeded: $*"; else pass "$desc"; fi
}
# ok_eq DESC EXPECTED ACTUAL
ok_eq() {
	if [ "$2" = "$3" ]; then pass "$1"; else fail "$1"; diag "expected '$2', got '$3'"; fi
}

t_done() {
	echo "1..$T_N"
	exit 0
}

# --- processes and mounts --------------------------------------------------

t_track_pid() { T_PIDS+=("$1"); }
t_track_mount() { T_MOUNTS+=("$1"); }

# stop_pid PID: TERM, wait up to 5 s, then KILL.
stop_pid() {
	local pid=$1 i
	kill "$pid" 2>/dev/null || return 0
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

is_mounted() { mountpoint -q "$1" 2>/dev/null; }

# wait_for SECONDS CMD...: poll CMD every 0.1 s until it succeeds.
wait_for() {
	local limit=$1 i
	shift
	for i in $(seq $((limit * 10))); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

mount_wait() { t_track_mount "$1"; wait_for "${2:-20}" is_mounted "$1"; }

# umount_wait DIR [SECONDS]: unmount and wait until the mount is gone.
umount_wait() {
	fusermount3 -u "$1" 2>/dev/null || umount "$1" 2>/dev/null
	wait_for "${2:-20}" eval "! is_mounted '$1'"
}

t_cleanup() {
	local rc=$? m p
	for m in "${T_MOUNTS[@]}"; do
		if is_mounted "$m"; then
			fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
		fi
	done
	for ((p = ${#T_PIDS[@]} - 1; p >= 0; p--)); do
		stop_pid "${T_PIDS[$p]}"
	done
	for m in "${T_USERS[@]}"; do
		# userdel refuses while a process of the user runs: the sshd
		# sessions end soon after their server and clients have stopped
		wait_for 20 userdel "$m" || echo "# $T_NAME: could not remove the user '$m'" >&2
	done
	if [ -n "${T:-}" ] && [ -d "$T" ]; then
		if [ "$T_FAILED" -gt 0 ] || [ "$rc" -ne 0 ]; then
			echo "# $T_NAME: logs kept in $T" >&2
			for f in "$T"/*.log; do
				[ -f "$f" ] || continue
				echo "# --- $f (last 30 lines)"
				tail -n 30 "$f" | sed 's/^/#   /'
			done
		else
			rm -rf "$T"
		fi
	fi
	exit "$rc"
}

# --- the "VM": a throwaway sshd on loopback ----------------------------------

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# sshd_start [--user NAME] [ALIAS]: start sshd on a free 127.0.0.1 port with
# throwaway host and client keys. Sets VM_HOST (127.0.0.1), VM_PORT, VM_USER,
# VM_KEY (client private key), VM_KNOWN_HOSTS (holds [127.0.0.1]:PORT and
# ALIAS, default "vm"), VM_ALIAS, VM_SSH_CONFIG (an ssh_config with Host
# ALIAS), VM_SSHD_PID.
# --user NAME (root only): the VM user is NAME instead of the test's user, so
# the server's file permissions apply as on a real VM (root passes them all).
# NAME is made with t_user_add when it does not exist (removed again by the
# cleanup), else reused; VM_HOME is its login directory. $T becomes
# traversable (711) so that NAME reaches the test's files. A second call
# (e.g. a root server and a --user one) keeps the first server running; the
# VM_* variables then describe the second.
sshd_start() {
	local user="" alias d="$T/sshd" hk
	if [ "${1:-}" = --user ]; then
		user=${2:?sshd_start: --user needs a user name}
		shift 2
	fi
	alias=${1:-vm}
	[ -e "$d" ] && d="$T/sshd-$alias-$user"
	mkdir -p "$d" /run/sshd
	chmod 700 "$d"
	ssh-keygen -q -t ed25519 -N '' -f "$d/host_ed25519" -C wakefs-test-host || return 1
	ssh-keygen -q -t ed25519 -N '' -f "$d/client" -C wakefs-test-client || return 1
	cp "$d/client.pub" "$d/authorized_keys"
	VM_PORT=$(free_port)
	VM_HOST=127.0.0.1
	VM_USER=$(id -un)
	VM_HOME=$(getent passwd "$VM_USER" | cut -d: -f6)
	if [ -n "$user" ]; then
		t_user_add "$user" || return 1
		VM_USER=$user
		VM_HOME=$(getent passwd "$user" | cut -d: -f6)
		# sshd reads authorized_keys as the user: let it through $T and $d
		chmod 711 "$T" "$d"
		chmod 644 "$d/authorized_keys"
	fi
	VM_ALIAS=$alias
	VM_KEY=$d/client
	cat >"$d/sshd_config" <<-EOF
		ListenAddress 127.0.0.1:$VM_PORT
		HostKey $d/host_ed25519
		PidFile none
		AuthorizedKeysFile $d/authorized_keys
		StrictModes no
		PasswordAuthentication no
		KbdInteractiveAuthentication no
		PermitRootLogin prohibit-password
		UsePAM no
		Subsystem sftp internal-sftp
		AllowTcpForwarding yes
		LogLevel ${SSHD_LOGLEVEL:-INFO}
		MaxSessions 50
		MaxStartups 50
		# bash, as the login shell of a command run by sshd, sources ~/.bashrc only
		# at shell level 1: the "VM" runs commands without the host user's
		# interactive set-up (e.g. a pyenv rehash that waits up to a minute on a lock).
		SetEnv SHLVL=1
	EOF
	/usr/sbin/sshd -D -e -f "$d/sshd_config" >>"$T/sshd.log" 2>&1 &
	VM_SSHD_PID=$!
	t_track_pid "$VM_SSHD_PID"
	hk=$(cut -d' ' -f1,2 "$d/host_ed25519.pub")
	VM_KNOWN_HOSTS=$d/known_hosts
	printf '[127.0.0.1]:%s %s\n%s %s\n' "$VM_PORT" "$hk" "$alias" "$hk" >"$VM_KNOWN_HOSTS"
	VM_SSH_CONFIG=$d/ssh_config
	cat >"$VM_SSH_CONFIG" <<-EOF
		Host $alias
		    HostName 127.0.0.1
		    Port $VM_PORT
		    User $VM_USER
		    IdentityFile $VM_KEY
		    IdentitiesOnly yes
		    UserKnownHostsFile $VM_KNOWN_HOSTS
		    HostKeyAlias $alias
		    StrictHostKeyChecking yes
		    BatchMode yes
		    ConnectTimeout 10
	EOF
	export VM_HOST VM_PORT VM_USER VM_HOME VM_KEY VM_KNOWN_HOSTS VM_ALIAS VM_SSH_CONFIG VM_SSHD_PID
	wait_for 20 vm_ssh true || { diag "sshd did not answer on port $VM_PORT"; return 1; }
}

# t_user_add NAME: make NAME a local account the test can log in as over SSH
# (shell /bin/sh, no password but not locked, home $T/home-NAME owned by it),
# unless it exists; one made here is removed by the cleanup. Needs root.
# Returns 1, with a diag saying why, when it cannot.
t_user_add() {
	local name=$1 home="$T/home-$1" i old
	if id "$name" >/dev/null 2>&1; then
		old=$(getent passwd "$name" | cut -d: -f6)
		# left by a test that was killed before its cleanup: make it afresh
		case $old in
		*/wakefs-test.*/home-"$name") [ -d "$old" ] || userdel "$name" 2>>"$T/useradd.log" ;;
		esac
		id "$name" >/dev/null 2>&1 && return 0
	fi
	if [ "$(id -u)" != 0 ]; then
		diag "cannot make the user '$name': that needs root"
		return 1
	fi
	mkdir -p "$home"
	chmod 711 "$T"
	# useradd waits for the passwd lock only so long: tests run in parallel
	for i in 1 2 3 4 5; do
		useradd -r -M -N -d "$home" -s /bin/sh -p '*' "$name" 2>>"$T/useradd.log" && break
		id "$name" >/dev/null 2>&1 && break
		sleep 1
	done
	if ! id "$name" >/dev/null 2>&1; then
		diag "cannot make the user '$name': useradd failed (see $T/useradd.log)"
		return 1
	fi
	T_USERS+=("$name")
	chown "$name:" "$home" 2>/dev/null || chown "$name" "$home"
}

# vm_ssh CMD...: run a command on the "VM".
vm_ssh() { ssh -F "$VM_SSH_CONFIG" "$VM_ALIAS" "$@"; }

# sshd_stop: stop the test's sshd (the VM "goes away").
sshd_stop() { stop_pid "$VM_SSHD_PID"; }
