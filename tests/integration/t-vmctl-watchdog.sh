#!/bin/bash
# vmctl watchdog install|status|remove onto a real sshd standing in for the
# VM (an Azure profile whose public IP is that sshd, through the fake ARM),
# with the test hooks: WAKEFS_WATCHDOG_ROOT (install under a directory of the
# test) and WAKEFS_SYSTEMCTL (a fake systemctl that records its arguments).
# Then the installed script runs as its unit would, against the fake's IMDS
# and ARM: a fresh heartbeat, a busy CPU or GPU, a VM just booted keep the VM;
# a stale heartbeat on an idle VM deallocates it with a managed identity
# token; IMDS or ARM failures say why and exit non-zero. The token never
# shows in any output or file.
. "$top_srcdir/tests/lib.sh"; t_init
. "$top_srcdir/tests/fake-arm/fake-arm.sh"
sshd_start wd || { fail "sshd starts"; t_done; }
fake_arm_start || { fail "fake ARM server starts"; t_done; }

VM_ID_DSVM="/subscriptions/$FAKE_SUB/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/dsvm"
fake_vm_profile wd "watchdog_minutes = 30"
cat >>"$T/config" <<EOF

[plain]
provider = none
host = 127.0.0.1
port = $VM_PORT
EOF
SSH_OPTS=(-- -o "UserKnownHostsFile=$VM_KNOWN_HOSTS" -o BatchMode=yes -o StrictHostKeyChecking=yes)

# the fake systemctl: records its arguments, remembers enable/disable
mkdir -p "$T/bin"
cat >"$T/bin/systemctl" <<EOF
#!/bin/sh
echo "\$*" >>"$T/systemctl.log"
case "\$1 \$2" in
"enable --now") touch "$T/timer.on" ;;
"disable --now") rm -f "$T/timer.on" ;;
"is-enabled "*) [ -e "$T/timer.on" ] && echo enabled || { echo disabled; exit 1; } ;;
"is-active "*) [ -e "$T/timer.on" ] && echo active || { echo inactive; exit 3; } ;;
esac
exit 0
EOF
chmod +x "$T/bin/systemctl"
export WAKEFS_WATCHDOG_ROOT="$T/root" WAKEFS_SYSTEMCTL="$T/bin/systemctl"
R=$T/root
LIB=$R/usr/local/lib/wakefs
UNITS=$R/etc/systemd/system

fake_ctl '{"next_ip": "127.0.0.1"}'
ok "the VM starts (its address is the test's sshd)" vmctl -p wd start

# ---- not for other providers, and usage ----
vmctl -p plain watchdog install "${SSH_OPTS[@]}"
ok_eq "a provider none profile is refused (exit 2)" 2 "$?"
ok "and the error says the watchdog is Azure-only" grep -q "the watchdog is Azure-only.*uses provider none" "$T/err"
vmctl -p wd watchdog
ok_eq "watchdog without an action is a usage error (exit 2)" 2 "$?"
vmctl -p wd watchdog frob
ok_eq "an unknown action is a usage error (exit 2)" 2 "$?"
ok "and it names the actions" grep -q "install, status, remove" "$T/err"

# ---- a VM without systemd ----
WAKEFS_WATCHDOG_ROOT="$T/root-nosd" WAKEFS_SYSTEMCTL="$T/bin/no-systemctl" \
	vmctl -p wd watchdog install "${SSH_OPTS[@]}"
ok_eq "install on a VM without systemctl fails (exit 1)" 1 "$?"
ok "and says that the VM has no systemctl" grep -q "'wd' has no systemctl .*does not run systemd" "$T/err"
ok "nothing was installed there" test ! -e "$T/root-nosd"

# ---- install ----
ok "watchdog status before install" vmctl -p wd watchdog status "${SSH_OPTS[@]}"
ok "says it is not installed" grep -q "not installed on 'wd'" "$T/out"
ok "watchdog install" vmctl -p wd watchdog install "${SSH_OPTS[@]}"
ok "says what it installed" grep -q "watchdog installed on 'wd': it deallocates the VM after 30 min" "$T/out"
ok_eq "the script landed, mode 755" 755 "$(stat -c %a "$LIB/wakefs-watchdog.sh" 2>&1)"
ok_eq "its configuration, mode 644" 644 "$(stat -c %a "$LIB/wakefs-watchdog.conf" 2>&1)"
ok_eq "the service, mode 644" 644 "$(stat -c %a "$UNITS/wakefs-watchdog.service" 2>&1)"
ok_eq "the timer, mode 644" 644 "$(stat -c %a "$UNITS/wakefs-watchdog.timer" 2>&1)"
ok "the script is scripts/wakefs-watchdog.sh, byte for byte" \
	cmp "$LIB/wakefs-watchdog.sh" "$top_srcdir/scripts/wakefs-watchdog.sh"
ok "the timer is scripts/wakefs-watchdog.timer" \
	cmp "$UNITS/wakefs-watchdog.timer" "$top_srcdir/scripts/wakefs-watchdog.timer"
ok "the timer fires every five minutes" grep -qx "OnUnitActiveSec=5min" "$UNITS/wakefs-watchdog.timer"
execstart=$(sed -n 's/^ExecStart=//p' "$UNITS/wakefs-watchdog.service")
ok_eq "the service runs the installed script" "$LIB/wakefs-watchdog.sh" "$execstart"
ok "as a oneshot" grep -qx "Type=oneshot" "$UNITS/wakefs-watchdog.service"
ok_eq "systemctl: daemon-reload, then enable --now the timer" \
	"daemon-reload|enable --now wakefs-watchdog.timer" "$(paste -sd'|' "$T/systemctl.log")"
vmhome=$(vm_ssh 'printf %s "$HOME"')
conf=$LIB/wakefs-watchdog.conf
ok "the configuration names the VM" grep -qx "WAKEFS_WATCHDOG_VM_ID=$VM_ID_DSVM" "$conf"
ok "the profile's ARM endpoint" grep -qx "WAKEFS_WATCHDOG_ARM=$ARM" "$conf"
ok "watchdog_minutes" grep -qx "WAKEFS_WATCHDOG_MINUTES=30" "$conf"
ok "the login user's heartbeat (under the root hook)" \
	grep -qx "WAKEFS_WATCHDOG_HEARTBEAT=$R$vmhome/.cache/wakefs/heartbeat" "$conf"
ok "the state directory (under the root hook)" grep -qx "WAKEFS_WATCHDOG_STATE=$R/var/lib/wakefs-watchdog" "$conf"
ok "install again (idempotent)" vmctl -p wd watchdog install "${SSH_OPTS[@]}"
ok "still the same script" cmp "$LIB/wakefs-watchdog.sh" "$top_srcdir/scripts/wakefs-watchdog.sh"

# ---- an unprivileged login: sudo -n, or a message saying what it needs ----
ROOT_VM_KNOWN_HOSTS=$VM_KNOWN_HOSTS
if sshd_start --user wakefs-wd wdu; then
	fake_vm_profile wdu
	mkdir -p "$T/root-user"
	chown "$VM_USER" "$T/root-user"
	U_OPTS=(-- -o "UserKnownHostsFile=$VM_KNOWN_HOSTS" -o BatchMode=yes -o StrictHostKeyChecking=yes)
	if ! vm_ssh 'command -v sudo' >/dev/null 2>&1; then
		WAKEFS_WATCHDOG_ROOT="$T/root-user" vmctl -p wdu watchdog install "${U_OPTS[@]}"
		ok_eq "not root and no sudo on the VM: install fails (exit 1)" 1 "$?"
		ok "and says so" grep -q "'wdu': wakefs-wd is not root and the VM has no sudo (log in as root, or install sudo)" "$T/err"
		ok "nothing was installed" test ! -e "$T/root-user/usr"
	elif ! vm_ssh 'sudo -n true' >/dev/null 2>&1; then
		WAKEFS_WATCHDOG_ROOT="$T/root-user" vmctl -p wdu watchdog install "${U_OPTS[@]}"
		ok_eq "not root, sudo asks for a password: install fails (exit 1)" 1 "$?"
		ok "and says what it needs" grep -q "'wdu': sudo -n does not work for wakefs-wd on the VM (it needs passwordless sudo" "$T/err"
		ok "nothing was installed" test ! -e "$T/root-user/usr"
	else
		WAKEFS_WATCHDOG_ROOT="$T/root-user" vmctl -p wdu watchdog install "${U_OPTS[@]}"
		ok "not root, passwordless sudo: install works through sudo" test $? -eq 0
		ok_eq "the script belongs to root" root "$(stat -c %U "$T/root-user/usr/local/lib/wakefs/wakefs-watchdog.sh" 2>&1)"
		ok "the heartbeat is the login user's" grep -qx "WAKEFS_WATCHDOG_HEARTBEAT=$T/root-user$VM_HOME/.cache/wakefs/heartbeat" \
			"$T/root-user/usr/local/lib/wakefs/wakefs-watchdog.conf"
	fi
else
	fail "an sshd logging in as an unprivileged user starts"
fi
VM_KNOWN_HOSTS=$ROOT_VM_KNOWN_HOSTS
: >"$T/systemctl.log"

# ---- the script, run as the unit runs it (clean environment) ----
HB=$R$vmhome/.cache/wakefs/heartbeat
mkdir -p "$(dirname "$HB")"
echo "0.00 0.01 0.02 1/123 4567" >"$T/load-idle"
echo "3.90 3.50 3.10 5/123 4567" >"$T/load-busy"
echo "100000.00 190000.00" >"$T/uptime-long"
echo "600.00 1100.00" >"$T/uptime-short"
cat >"$T/bin/nvidia-smi" <<EOF
#!/bin/sh
if [ -e "$T/gpu-broken" ]; then
	echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."
	exit 9
fi
case "\$1" in
--query-gpu=*) cat "$T/gpu-util" ;;
--query-compute-apps=*) cat "$T/gpu-apps" ;;
*) exit 9 ;;
esac
EOF
chmod +x "$T/bin/nvidia-smi"
LOADAVG=$T/load-idle UPTIME=$T/uptime-long NVSMI=$T/bin/no-nvidia-smi IMDS=$ARM
run_wd() {
	local rc=0
	env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin WAKEFS_WATCHDOG_IMDS="$IMDS" \
		WAKEFS_WATCHDOG_LOADAVG="$LOADAVG" WAKEFS_WATCHDOG_UPTIME="$UPTIME" \
		WAKEFS_WATCHDOG_NVIDIA_SMI="$NVSMI" "$@" "$execstart" >"$T/wd.out" 2>&1 || rc=$?
	{ echo "\$ watchdog $* -> $rc"; cat "$T/wd.out"; } >>"$T/watchdog.log"
	return $rc
}
deallocs() {
	fake_get /_requests | python3 -c '
import json, sys
print(sum(1 for r in json.load(sys.stdin) if r["method"] == "POST" and r["path"].endswith("/deallocate")))'
}
imds_calls() {
	fake_get /_requests | python3 -c '
import json, sys
print(sum(1 for r in json.load(sys.stdin) if r["path"].startswith("/metadata/")))'
}

touch "$HB"
ok "fresh heartbeat: the script exits 0" run_wd
ok "it keeps the VM and says why" grep -q "keep: a mount's heartbeat [0-9]* min ago (limit 30 min)" "$T/wd.out"
ok_eq "no deallocation" 0 "$(deallocs)"
ok_eq "and not even a token asked for" 0 "$(imds_calls)"
ok "the decision is recorded" grep -q "keep: a mount's heartbeat" "$R/var/lib/wakefs-watchdog/last"

touch -d '2 hours ago' "$HB"
LOADAVG=$T/load-busy
ok "stale heartbeat, busy CPU: exits 0" run_wd
ok "keeps the VM: the CPU is busy" grep -q "keep: heartbeat 1[0-9][0-9] min ago, but the CPU is busy (15-minute load 3.10, limit 0.5)" "$T/wd.out"
ok "a higher threshold from the environment counts (dry run)" \
	run_wd WAKEFS_WATCHDOG_LOAD_MAX=5 WAKEFS_WATCHDOG_DRY_RUN=1
ok "then the load is idle" grep -q "would deallocate (dry run): .*15-minute load 3.10" "$T/wd.out"
ok_eq "no deallocation" 0 "$(deallocs)"
LOADAVG=$T/load-idle

UPTIME=$T/uptime-short
ok "stale heartbeat, but the VM just booted" run_wd
ok "keeps it: up 10 min" grep -q "keep: up 10 min, heartbeat 1[0-9][0-9] min ago (limit 30 min)" "$T/wd.out"
UPTIME=$T/uptime-long

NVSMI=$T/bin/nvidia-smi
printf '0\n35\n' >"$T/gpu-util"
: >"$T/gpu-apps"
ok "stale heartbeat, idle CPU, a busy GPU" run_wd
ok "keeps the VM: a GPU is busy" grep -q "but a GPU is busy (utilization 35%)" "$T/wd.out"
printf '0\n0\n' >"$T/gpu-util"
echo "4242, python3" >"$T/gpu-apps"
ok "GPUs at 0% but a compute process runs" run_wd
ok "keeps the VM and names the process" grep -q "but GPU compute processes run (4242, python3)" "$T/wd.out"
: >"$T/gpu-apps"
printf '0\n[N/A]\n' >"$T/gpu-util"
ok "a GPU without a utilization counter is not busy (dry run)" run_wd WAKEFS_WATCHDOG_DRY_RUN=1
ok "so it would deallocate" grep -q "would deallocate (dry run): .*GPUs idle" "$T/wd.out"
touch "$T/gpu-broken"
ok "nvidia-smi failing (no driver) does not count as busy (dry run)" run_wd WAKEFS_WATCHDOG_DRY_RUN=1
ok "and the decision says nvidia-smi failed" \
	grep -q "would deallocate (dry run): .*nvidia-smi failed (NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.), GPUs not counted as busy" "$T/wd.out"
rm -f "$T/gpu-broken"
printf '0\n0\n' >"$T/gpu-util"
ok "dry run on an idle VM" run_wd WAKEFS_WATCHDOG_DRY_RUN=1
ok "says it would deallocate" grep -q "would deallocate (dry run): heartbeat 1[0-9][0-9] min ago (limit 30 min), 15-minute load 0.02, GPUs idle" "$T/wd.out"
ok_eq "no deallocation so far" 0 "$(deallocs)"

# ---- IMDS failures ----
fake_ctl '{"imds": "none"}'
run_wd
ok_eq "no managed identity: the script exits 1" 1 "$?"
ok "and says IMDS gave no token, and why" \
	grep -q "got no managed identity token from IMDS ($ARM): HTTP 400: Identity not found (give the VM a system-assigned identity" "$T/wd.out"
fake_ctl '{"imds": null}'
closed=$(free_port)
IMDS=http://127.0.0.1:$closed
run_wd
ok_eq "IMDS unreachable: exits 1" 1 "$?"
ok "and says so with curl's reason" grep -q "got no managed identity token from IMDS (http://127.0.0.1:$closed): HTTP 000: curl: " "$T/wd.out"
ok "the error is the recorded decision" grep -q "^[0-9TZ:-]* error: would deallocate" "$R/var/lib/wakefs-watchdog/last"
IMDS=$ARM
ok_eq "no deallocation after the failures" 0 "$(deallocs)"

# ---- ARM refuses ----
fake_ctl '{"forbidden": 1}'
run_wd
ok_eq "ARM answers 403: exits 1" 1 "$?"
ok "and names the role the identity needs" \
	grep -q "HTTP 403: AuthorizationFailed: .*deallocate/action on the VM, e.g. the Virtual Machine Contributor role" "$T/wd.out"

# ---- the deallocation ----
ok_eq "the VM still runs" running "$(vm_power dsvm)"
ok "stale heartbeat, idle CPU and GPUs: exits 0" run_wd
ok "says it deallocates, and why" \
	grep -q "deallocate: heartbeat 1[0-9][0-9] min ago (limit 30 min), 15-minute load 0.02, GPUs idle; ARM accepted the deallocation of $VM_ID_DSVM (HTTP 202)" "$T/wd.out"
ok "the fake saw one deallocation of dsvm with a managed identity token and the api-version" python3 -c '
import json, sys, urllib.request
log = json.load(urllib.request.urlopen(sys.argv[1] + "/_requests"))
d = [r for r in log if r["method"] == "POST" and r["path"].endswith("/deallocate")]
ok = [r for r in d if r["path"] == sys.argv[2] + "/deallocate" and r["token"] == "mi"
      and r["query"] == "api-version=2024-03-01"]
sys.exit(0 if len(d) == 2 and len(ok) == 2 else 1)' "$ARM" "$VM_ID_DSVM"
ok "the token was asked for the ARM endpoint as resource" python3 -c '
import json, sys, urllib.parse, urllib.request
log = json.load(urllib.request.urlopen(sys.argv[1] + "/_requests"))
t = [urllib.parse.parse_qs(r["query"]) for r in log if r["path"] == "/metadata/identity/oauth2/token"]
sys.exit(0 if t and all(q["resource"] == [sys.argv[1] + "/"] and q["api-version"] == ["2018-02-01"]
                        for q in t) else 1)' "$ARM"
ok "the fake VM deallocates" wait_for 30 eval '[ "$(vm_power dsvm)" != running ]'

# the VM id from IMDS when the configuration has none
fake_ctl '{"imds_vm": "other"}'
ok "without a VM id, the script asks IMDS for it" run_wd WAKEFS_WATCHDOG_VM_ID=
ok "and deallocates the VM IMDS named" grep -q "ARM accepted the deallocation of .*/virtualMachines/other (HTTP 202)" "$T/wd.out"
ok "the fake's VM 'other' deallocates" wait_for 30 eval '[ "$(vm_power other)" != running ]'

ok "the script logged every decision to its state log" \
	test "$(grep -c . "$R/var/lib/wakefs-watchdog/log")" -ge 12
ok "no managed identity token in any output or file of the test" \
	eval '! grep -rq "mi-token-" "$T"'

# ---- status ----
ok "watchdog status" vmctl -p wd watchdog status "${SSH_OPTS[@]}"
ok "installed, timer enabled and active" grep -q "watchdog: installed on 'wd', timer enabled, active" "$T/out"
ok "the limit" grep -q "deallocate after 30 min without a heartbeat" "$T/out"
ok "the heartbeat's age" grep -q "heartbeat: 1[0-9][0-9] min ago ($HB)" "$T/out"
ok "the last decision" grep -q "last decision: [0-9TZ:-]* deallocate: .*/virtualMachines/other" "$T/out"

# ---- remove ----
: >"$T/systemctl.log"
ok "watchdog remove" vmctl -p wd watchdog remove "${SSH_OPTS[@]}"
ok "says so" grep -q "watchdog removed from 'wd'" "$T/out"
ok_eq "systemctl: disable --now the timer, then daemon-reload" \
	"disable --now wakefs-watchdog.timer|daemon-reload" "$(paste -sd'|' "$T/systemctl.log")"
ok "the script, its configuration and directory are gone" test ! -e "$LIB"
ok "the units are gone" test ! -e "$UNITS/wakefs-watchdog.service" -a ! -e "$UNITS/wakefs-watchdog.timer"
ok "the state is gone" test ! -e "$R/var/lib/wakefs-watchdog"
ok "status after remove" vmctl -p wd watchdog status "${SSH_OPTS[@]}"
ok "says it is not installed" grep -q "not installed on 'wd'" "$T/out"
ok "remove again" vmctl -p wd watchdog remove "${SSH_OPTS[@]}"
ok "says there was nothing to remove" grep -q "nothing to remove" "$T/out"
t_done
