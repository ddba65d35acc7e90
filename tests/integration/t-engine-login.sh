#!/usr/bin/env bash
# The engine's login: key authentication, the host key checked against
# known_hosts under the alias (or [host]:port), unknown keys refused unless
# accept-new (which records them), changed keys refused naming both
# fingerprints, and ssh -G resolution of a Host alias.
. "$top_srcdir/tests/lib.sh"
t_init
unset SSH_AUTH_SOCK
CLI=$top_builddir/tests/tools/remote-cli
sshd_start vm || { fail "sshd starts"; t_done; }
HOSTFP=$(ssh-keygen -lf "$T/sshd/host_ed25519.pub" | awk '{print $2}')
HOSTKEY=$(cut -d' ' -f1,2 "$T/sshd/host_ed25519.pub")
cli() { "$CLI" "$@"; }
base="identity=$VM_KEY"

ok "key login with the host key checked under the alias" \
	cli -o "$base,known_hosts=$VM_KNOWN_HOSTS,host_key_alias=vm" "127.0.0.1:$VM_PORT" stat /
ok "without an alias the key is looked up as [host]:port" \
	cli -o "$base,known_hosts=$VM_KNOWN_HOSTS" "127.0.0.1:$VM_PORT" stat /

# The alias decides: a file holding only [127.0.0.1]:port does not vouch for "other".
ok_not "a key known under another name is refused" \
	cli -o "$base,known_hosts=$VM_KNOWN_HOSTS,host_key_alias=other" "127.0.0.1:$VM_PORT" stat /

# Unknown key.
: >"$T/empty_kh"
cli -o "$base,known_hosts=$T/empty_kh,host_key_alias=vm" "127.0.0.1:$VM_PORT" stat / 2>"$T/unknown.err"
ok_eq "an unknown host key is refused" 1 "$?"
ok "the refusal names the key's SHA256 fingerprint" grep -qF "$HOSTFP" "$T/unknown.err"
ok_eq "a refused key is not recorded" 0 "$(wc -c <"$T/empty_kh")"

# accept-new records it under the alias, then it is known.
ok "accept_new_hostkey accepts an unknown key" \
	cli -o "$base,known_hosts=$T/empty_kh,host_key_alias=vm,accept_new_hostkey" "127.0.0.1:$VM_PORT" stat /
ok_eq "accept-new recorded the key under the alias" "vm $HOSTKEY" "$(cut -d' ' -f1-3 "$T/empty_kh")"
ok "the recorded key is accepted afterwards" \
	cli -o "$base,known_hosts=$T/empty_kh,host_key_alias=vm" "127.0.0.1:$VM_PORT" stat /
ok "ssh itself accepts the line we recorded" \
	ssh -F "$VM_SSH_CONFIG" -o UserKnownHostsFile="$T/empty_kh" vm true
printf '# a comment\n' >"$T/kh_port"
ok "accept-new without an alias records [host]:port" \
	cli -o "$base,known_hosts=$T/kh_port,accept_new_hostkey" "127.0.0.1:$VM_PORT" stat /
ok_eq "the line is under [127.0.0.1]:port" "[127.0.0.1]:$VM_PORT $HOSTKEY" "$(tail -n1 "$T/kh_port" | cut -d' ' -f1-3)"

# Changed key: refused even with accept-new, naming both fingerprints.
ssh-keygen -q -t ed25519 -N '' -f "$T/other" -C other
OTHERFP=$(ssh-keygen -lf "$T/other.pub" | awk '{print $2}')
printf 'vm %s\n' "$(cut -d' ' -f1,2 "$T/other.pub")" >"$T/changed_kh"
cli -o "$base,known_hosts=$T/changed_kh,host_key_alias=vm,accept_new_hostkey" "127.0.0.1:$VM_PORT" stat / 2>"$T/changed.err"
ok_eq "a changed host key is refused" 1 "$?"
ok "the refusal names the recorded fingerprint" grep -qF "$OTHERFP" "$T/changed.err"
ok "the refusal names the server's fingerprint" grep -qF "$HOSTFP" "$T/changed.err"
ok "the refusal says the key changed" grep -q "CHANGED" "$T/changed.err"
ok_eq "a changed key is never recorded" 1 "$(wc -l <"$T/changed_kh")"

# Hashed known_hosts entries (HashKnownHosts yes).
printf '[127.0.0.1]:%s %s\n' "$VM_PORT" "$HOSTKEY" >"$T/hashed_kh"
ssh-keygen -q -H -f "$T/hashed_kh" >/dev/null 2>&1
rm -f "$T/hashed_kh.old"
ok "the known_hosts line is hashed" grep -q '^|1|' "$T/hashed_kh"
ok "a hashed known_hosts entry is accepted" \
	cli -o "$base,known_hosts=$T/hashed_kh" "127.0.0.1:$VM_PORT" stat /

# ssh -G: HostName, Port, User, IdentityFile, UserKnownHostsFile, HostKeyAlias from the config.
ok "a Host alias is resolved with ssh -G" cli -o "ssh_config=$VM_SSH_CONFIG" vm stat /
ok_eq "the alias's user is used" "$(id -u)" \
	"$(cli -o "ssh_config=$VM_SSH_CONFIG" vm exec id -u | head -n1)"
cat >"$T/ssh_config_bad" <<EOC
Host vm
    HostName 127.0.0.1
    Port $VM_PORT
    IdentityFile $VM_KEY
    UserKnownHostsFile $T/changed_kh
    HostKeyAlias vm
EOC
ok_not "the alias's UserKnownHostsFile is the one checked" cli -o "ssh_config=$T/ssh_config_bad" vm stat /
ok "an explicit known_hosts overrides the alias's" \
	cli -o "ssh_config=$T/ssh_config_bad,known_hosts=$VM_KNOWN_HOSTS" vm stat /

# Authentication and connection failures are reported, not hung on.
ssh-keygen -q -t ed25519 -N '' -f "$T/stranger" -C stranger
cli -o "identity=$T/stranger,known_hosts=$VM_KNOWN_HOSTS,host_key_alias=vm" "127.0.0.1:$VM_PORT" stat / 2>"$T/auth.err"
ok_eq "a key the server does not know is refused" 1 "$?"
ok "the message says the login failed" grep -q "cannot log in" "$T/auth.err"
port=$(free_port)
start=$SECONDS
cli -o "$base,known_hosts=$VM_KNOWN_HOSTS,connect_timeout_ms=5000" "127.0.0.1:$port" stat / 2>"$T/refused.err"
ok_eq "a closed port fails" 1 "$?"
ok "the message says the connection failed" grep -q "cannot connect to '127.0.0.1' (127.0.0.1:$port)" "$T/refused.err"
ok "and fails fast" test $((SECONDS - start)) -lt 10
t_done
