# tests/fake-arm/fake-arm.sh: helpers for the t-vmctl-*.sh tests (source
# after tests/lib.sh and t_init).
#
#   fake_arm_start          start fake_arm.py on a free 127.0.0.1 port (by pid),
#                           set ARM (its URL) and write $T/config with profile
#                           [dsvm] (azure, points at the fake), export
#                           WAKEFS_CONFIG and the service principal variables
#   fake_ctl JSON           switch a scenario (POST /_control)
#   fake_get PATH           GET a control document (/_requests, /_state)
#   fake_vm_profile NAME [LINES]
#                           append to $WAKEFS_CONFIG the profile [NAME]: the
#                           fake's VM dsvm, logged in to as the last
#                           sshd_start says (VM_USER, VM_PORT, VM_KEY), plus
#                           LINES (more key = value lines)
#   vmctl ARGS...           run $VMCTL, stdout to $T/out, stderr to $T/err,
#                           both appended to $T/all.log; returns its exit code

FAKE_SECRET="fake-secret-3f9a-$$-do-not-print"
FAKE_SUB=00000000-0000-0000-0000-000000000001

fake_arm_start() {
	FAKE_ARM_SECRET=$FAKE_SECRET python3 "$top_srcdir/tests/fake-arm/fake_arm.py" \
		--port-file "$T/arm.port" 2>>"$T/fake-arm.log" &
	FAKE_ARM_PID=$!
	t_track_pid "$FAKE_ARM_PID"
	wait_for 20 test -s "$T/arm.port" || { diag "the fake ARM server did not start"; return 1; }
	ARM="http://127.0.0.1:$(cat "$T/arm.port")"
	cat >"$T/config" <<-CONF
		# written by tests/fake-arm/fake-arm.sh
		[dsvm]
		provider = azure
		subscription = $FAKE_SUB
		resource_group = rg1
		vm = dsvm
		user = azureuser
		arm_endpoint = $ARM
		authority_host = $ARM
	CONF
	export WAKEFS_CONFIG="$T/config"
	export AZURE_TENANT_ID=tenant1 AZURE_CLIENT_ID=client1 AZURE_CLIENT_SECRET=$FAKE_SECRET
	unset AZURE_AUTHORITY_HOST
	export WAKEFS_IMDS_ENDPOINT="$ARM"
	# loopback never goes through a proxy the environment may name
	export no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}" NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
	# a real az must not answer: shadow it with one that behaves as if it
	# were not installed (exit 127, silent); tests that want the fake az put
	# it in front of this one
	mkdir -p "$T/noaz"
	printf '#!/bin/sh\nexit 127\n' >"$T/noaz/az"
	chmod +x "$T/noaz/az"
	export PATH="$T/noaz:$PATH"
}

fake_vm_profile() {
	cat >>"$WAKEFS_CONFIG" <<-CONF

		[$1]
		provider = azure
		subscription = $FAKE_SUB
		resource_group = rg1
		vm = dsvm
		user = $VM_USER
		port = $VM_PORT
		identity = $VM_KEY
		arm_endpoint = $ARM
		authority_host = $ARM
		${2:-}
	CONF
}

fake_ctl() {
	python3 -c 'import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(sys.argv[1] + "/_control", data=sys.argv[2].encode()), timeout=30).read()' "$ARM" "$1"
}
fake_get() {
	python3 -c 'import sys, urllib.request
sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=30).read().decode())' "$ARM$1"
}

vmctl() {
	local rc=0
	"$VMCTL" "$@" >"$T/out" 2>"$T/err" </dev/null || rc=$?
	{ echo "\$ vmctl $* -> $rc"; cat "$T/out" "$T/err"; } >>"$T/all.log"
	return $rc
}

# vm_power NAME: the fake's power state of VM NAME in rg1
vm_power() {
	fake_get /_state | python3 -c "import json,sys; print(json.load(sys.stdin)['vms']['rg1/$1']['power'])"
}
