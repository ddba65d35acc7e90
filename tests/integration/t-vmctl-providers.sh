#!/bin/bash
# vmctl with the `none` and `command` providers and a real sshd as the host:
# config errors name FILE:LINE, the command provider runs the user's commands
# (exit codes, stderr tail, timeout), `wait` polls until SSH answers, and
# `ssh` execs the system ssh with the profile's user, key, port, host key
# alias and the Jupyter forward.
. "$top_srcdir/tests/lib.sh"; t_init
. "$top_srcdir/tests/fake-arm/fake-arm.sh"
sshd_start vm || { fail "sshd starts"; t_done; }

cat >"$T/config" <<EOF2
# profiles for t-vmctl-providers
[vm]
provider = none
host = 127.0.0.1
port = $VM_PORT
user = $VM_USER
identity = $VM_KEY
forward = 6006

[cmd]
provider = command
start_cmd = echo started >>"$T/cmd.log"
stop_cmd = echo "stop power_off=\$WAKEFS_POWER_OFF" >>"$T/cmd.log"
status_cmd = cat "$T/power"
address_cmd = echo 127.0.0.1
command_timeout = 2s

[broken]
provider = command
start_cmd = echo "quota exceeded for GPUs" >&2; exit 7
stop_cmd = sleep 30
status_cmd = echo flying
host = 127.0.0.1
command_timeout = 1
EOF2
export WAKEFS_CONFIG="$T/config"

ok "status of an always-on host" vmctl --profile vm status --json
ok "it is running at its host" grep -q '"power_state":"running",.*"address":"127.0.0.1"' "$T/out"
ok "start of an always-on host is a no-op" vmctl --profile vm start
ok "wait returns once SSH answers" vmctl --profile vm wait --timeout 20
ok "ssh runs a command on the host" vmctl --profile vm ssh --no-forward -- \
	-o UserKnownHostsFile="$VM_KNOWN_HOSTS" -o BatchMode=yes echo hello-from-vm
ok_eq "and its output comes back" hello-from-vm "$(cat "$T/out")"
ok "ssh --print" vmctl --profile vm ssh --print -L 9000:localhost:9000
ok_eq "the ssh command has the alias, port, key and forwards" \
	"ssh -o HostKeyAlias=vm -p $VM_PORT -i $VM_KEY -L 8888:localhost:8888 -L 6006:localhost:6006 -L 9000:localhost:9000 $VM_USER@127.0.0.1" \
	"$(cat "$T/out")"

closed=$(free_port)
printf '[dead]\nprovider = none\nhost = 127.0.0.1\nport = %s\n' "$closed" >"$T/dead.conf"
vmctl --config "$T/dead.conf" wait --timeout 2
ok_eq "wait on a port where nothing answers times out (exit 6)" 6 "$?"
ok "and says so" grep -q "did not answer within 2s" "$T/err"

echo deallocated >"$T/power"
ok "command provider: status" vmctl --profile cmd status
ok_eq "status_cmd's word is the power state" "cmd: deallocated" "$(cat "$T/out")"
ok "command provider: start" vmctl --profile cmd start
ok "command provider: stop --power-off" vmctl --profile cmd stop --power-off
ok_eq "the commands ran, with WAKEFS_POWER_OFF" "started|stop power_off=1" "$(paste -sd'|' "$T/cmd.log")"
ok "command provider: ip" vmctl --profile cmd ip
ok_eq "address_cmd's output is the address" 127.0.0.1 "$(cat "$T/out")"

vmctl --profile broken start
ok_eq "a failing start_cmd exits 1" 1 "$?"
ok "with its exit code and stderr tail" grep -q "start_cmd of \[broken\] exited with 7: quota exceeded for GPUs" "$T/err"
vmctl --profile broken stop
ok_eq "a hanging stop_cmd times out (exit 6)" 6 "$?"
ok "and names command_timeout" grep -q "raise command_timeout" "$T/err"
vmctl --profile broken status
ok_eq "an unknown word from status_cmd exits 1" 1 "$?"
ok "and quotes it" grep -q "printed 'flying'" "$T/err"

printf '[a]\nprovider = none\nhost = x\n\n[b]\nprovider = azur\n' >"$T/bad.conf"
vmctl --config "$T/bad.conf" --profile a status
ok_eq "a bad value anywhere in the file exits 2" 2 "$?"
ok_eq "the error names the file, the line and what was expected" \
	"vmctl: config $T/bad.conf:6: unknown provider 'azur' (expected azure, local, none, command)" \
	"$(cat "$T/err")"
printf '[a]\nprovider = none\nhots = x\n' >"$T/bad.conf"
vmctl --config "$T/bad.conf" status
ok "an unknown key is named with its line" grep -q "bad.conf:3: unknown key 'hots' in \[a\]" "$T/err"
vmctl --config "$T/nonexistent.conf" status
ok_eq "a missing --config file exits 2" 2 "$?"
vmctl --profile nosuch status
ok "an unknown profile is named" grep -q "no profile \[nosuch\] in $T/config" "$T/err"
printf '[a]\nprovider = none\n' >"$T/bad.conf"
vmctl --config "$T/bad.conf" status
ok "provider none without host says what to add" grep -q "sets no 'host'" "$T/err"
vmctl bogus
ok_eq "an unknown command exits 2" 2 "$?"
# an Azure VM whose public IP is this sshd: start, wait, ssh end to end
fake_arm_start || { fail "fake ARM server starts"; t_done; }
fake_vm_profile vm2
fake_ctl '{"next_ip": "127.0.0.1"}'
ok "azure: start" vmctl --profile vm2 start
ok "azure: wait until SSH answers at the resolved IP" vmctl --profile vm2 wait --timeout 20
sed -i 's/^vm /vm2 /' "$VM_KNOWN_HOSTS"	# the host key under the profile's alias
ok "azure: ssh runs a command on the VM" vmctl --profile vm2 ssh --no-forward -- \
	-o UserKnownHostsFile="$VM_KNOWN_HOSTS" -o BatchMode=yes echo hello-from-azure
ok_eq "and its output comes back" hello-from-azure "$(cat "$T/out")"

ok "vmctl version" vmctl version
ok "prints the version" grep -q "^vmctl [0-9]" "$T/out"
ok "vmctl help" vmctl help
ok "help lists the commands" grep -q "autoshutdown TIME" "$T/out"
t_done
