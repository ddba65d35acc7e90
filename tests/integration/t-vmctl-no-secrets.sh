#!/bin/bash
# Every vmctl command at --debug, with each credential source, against the
# fake ARM server: neither the client secret nor any access token the fake
# issued appears in any output, log or file vmctl wrote.
. "$top_srcdir/tests/lib.sh"; t_init
. "$top_srcdir/tests/fake-arm/fake-arm.sh"
fake_arm_start || { fail "fake ARM server starts"; t_done; }

ssh-keygen -q -t ed25519 -N '' -f "$T/key" || { fail "ssh-keygen"; t_done; }
# the fake's public IPs are loopback addresses; nothing listens on this port
printf 'ssh_public_key = %s\nport = %s\n' "$T/key.pub" "$(free_port)" >>"$T/config"
mkdir -p "$T/proj/infra"
cd "$T/proj" || exit 1

all() {	# run every command at --debug; count the ones that failed
	local failed=0 c
	for c in status "status --json" start ip list "ssh --print" accept-terms \
		"autoshutdown 1900" "autoshutdown off" "stop --power-off" stop create \
		"wait --timeout 1" "delete --yes"; do
		# shellcheck disable=SC2086
		vmctl --debug $c
		case "$c:$?" in
		wait*:6 | *:0) ;;
		*) failed=$((failed + 1)); diag "vmctl $c failed: $(cat "$T/err")" ;;
		esac
	done
	return $failed
}

ok "every command runs with a service principal" all
fake_ctl '{"expire_token": 1}'
ok "a call with a token renewal" vmctl --debug accept-terms

unset AZURE_TENANT_ID AZURE_CLIENT_ID AZURE_CLIENT_SECRET
ok "a call with a managed identity" vmctl --debug accept-terms
mkdir -p "$T/bin"
cp "$top_srcdir/tests/fake-arm/az" "$T/bin/az"
ok "a call with the Azure CLI" env PATH="$T/bin:$PATH" "$VMCTL" --debug accept-terms
AZURE_TENANT_ID=tenant1 AZURE_CLIENT_ID=client1 AZURE_CLIENT_SECRET="$FAKE_SECRET-wrong" \
	vmctl --debug status
ok "a wrong secret fails" test $? -ne 0

ok "vmctl printed debug output" grep -q "vmctl: debug: GET" "$T/all.log"
ok "the debug output shows requests with tokens were made" grep -q "token from service principal" "$T/all.log"
files=$(find "$T" -type f ! -name 'fake-arm.log' ! -path "$T/bin/*")
leaks() {	# leaks PATTERN: files holding PATTERN
	# shellcheck disable=SC2086
	grep -l -F -e "$1" $files 2>/dev/null
}
ok_eq "the client secret appears nowhere" "" "$(leaks "$FAKE_SECRET")"
ok_eq "no service principal token appears anywhere" "" "$(leaks fake-token-)"
ok_eq "no managed identity token appears anywhere" "" "$(leaks mi-token-)"
ok_eq "no Azure CLI token appears anywhere" "" "$(leaks cli-valid-)"
ok_eq "no Authorization header appears anywhere" "" "$(leaks Bearer)"
t_done
