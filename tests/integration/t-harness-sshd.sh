#!/usr/bin/env bash
# The harness itself: a throwaway sshd answers on loopback with its own keys,
# the host key is verified under its alias, and cleanup stops it by pid.
. "$top_srcdir/tests/lib.sh"
t_init
ok "sshd starts on a free loopback port" sshd_start vm
ok "key login runs a command on the VM" vm_ssh true
ok_eq "the VM runs commands as the test user" "$(id -un)" "$(vm_ssh id -un)"
ok "sftp lists a directory" bash -c "echo 'ls /' | sftp -q -F '$VM_SSH_CONFIG' -b - '$VM_ALIAS'"
# A wrong host key under the alias is refused.
bad=$T/bad_known_hosts
ssh-keygen -q -t ed25519 -N '' -f "$T/other" -C other
printf '%s %s\n' "$VM_ALIAS" "$(cut -d' ' -f1,2 "$T/other.pub")" >"$bad"
ok_not "a changed host key is refused" ssh -F "$VM_SSH_CONFIG" -o UserKnownHostsFile="$bad" "$VM_ALIAS" true
pid=$VM_SSHD_PID
sshd_stop
ok_not "sshd is stopped by pid" kill -0 "$pid"
t_done
