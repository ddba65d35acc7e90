#!/bin/bash
# vmctl create/delete/accept-terms/autoshutdown against the fake ARM server:
# the template deployment (resource group, network, NSG, public IP, NIC, VM)
# writes the classic .vm-id/.vm-ip, the marketplace agreement is read, set
# accepted and put back, the DevTestLab schedule is set and removed, and a
# delete needs --yes when there is no terminal to confirm on.
. "$top_srcdir/tests/lib.sh"; t_init
. "$top_srcdir/tests/fake-arm/fake-arm.sh"
fake_arm_start || { fail "fake ARM server starts"; t_done; }

state() {	# state PYTHON-EXPR over the fake's state document d
	fake_get /_state | python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"
}

ssh-keygen -q -t ed25519 -N '' -f "$T/key" || { fail "ssh-keygen"; t_done; }
cat >>"$T/config" <<EOF2

[newvm]
provider = azure
subscription = $FAKE_SUB
resource_group = rg2
vm = gpu1
location = westeurope
vm_size = Standard_NC4as_T4_v3
ssh_public_key = $T/key.pub
arm_endpoint = $ARM
authority_host = $ARM
EOF2

mkdir -p "$T/proj/infra"
(cd "$T/proj" && vmctl --profile newvm create)
ok "create succeeds" test $? -eq 0
ok_eq "the resource group was created in the profile's location" westeurope "$(state 'd["rgs"].get("rg2")')"
ok_eq "the deployment ran" "['wakefs-gpu1']" "$(state 'd["deployments"]')"
ok_eq "the VM exists and runs" running "$(state 'd["vms"]["rg2/gpu1"]["power"]')"
ok_eq ".vm-id holds the VM's id" \
	"/subscriptions/$FAKE_SUB/resourceGroups/rg2/providers/Microsoft.Compute/virtualMachines/gpu1" \
	"$(cat "$T/proj/infra/.vm-id")"
ok ".vm-ip holds its public IP" grep -Eq '^127\.0\.0\.[0-9]+$' "$T/proj/infra/.vm-ip"

sed 's/^ssh_public_key = .*/ssh_public_key = \/nonexistent.pub/' "$T/config" >"$T/config2"
vmctl --config "$T/config2" --profile newvm create
ok_eq "create without a public key exits 2" 2 "$?"
ok "and says which key to set" grep -q "set ssh_public_key" "$T/err"

ok "accept-terms" vmctl --profile newvm accept-terms
ok "accept-terms reports it accepted" grep -q "^terms accepted" "$T/out"
ok_eq "the agreement is accepted in the fake" True \
	"$(state 'd["terms"].get("microsoft-dsvm:ubuntu-2204:2204-gen2")')"
ok "accept-terms again" vmctl --profile newvm accept-terms
ok "says they were already accepted" grep -q "already accepted" "$T/out"

ok "autoshutdown 19:30 --tz 'W. Europe Standard Time'" \
	vmctl --profile newvm autoshutdown 19:30 --tz "W. Europe Standard Time"
ok_eq "the schedule is set daily at 1930" 1930 \
	"$(state 'd["schedules"]["rg2/shutdown-computevm-gpu1"]["properties"]["dailyRecurrence"]["time"]')"
ok_eq "in the given time zone" "W. Europe Standard Time" \
	"$(state 'd["schedules"]["rg2/shutdown-computevm-gpu1"]["properties"]["timeZoneId"]')"
ok_eq "for the VM" "/subscriptions/$FAKE_SUB/resourceGroups/rg2/providers/Microsoft.Compute/virtualMachines/gpu1" \
	"$(state 'd["schedules"]["rg2/shutdown-computevm-gpu1"]["properties"]["targetResourceId"]')"
vmctl --profile newvm autoshutdown 2561
ok_eq "a bad time exits 2" 2 "$?"
ok "autoshutdown off" vmctl --profile newvm autoshutdown off
ok_eq "the schedule is gone" "{}" "$(state 'd["schedules"]')"

vmctl --profile newvm delete
ok_eq "delete without --yes and without a terminal is refused (exit 2)" 2 "$?"
ok_eq "and deletes nothing" westeurope "$(state 'd["rgs"].get("rg2")')"
ok "delete --yes" vmctl --profile newvm delete --yes
ok_eq "the resource group is gone" None "$(state 'd["rgs"].get("rg2")')"
ok_eq "with its VM" "False" "$(state '"rg2/gpu1" in d["vms"]')"
vmctl --profile newvm delete --yes
ok_eq "deleting it again: not found (exit 4)" 4 "$?"
ok "ResourceGroupNotFound is shown" grep -q "ResourceGroupNotFound: " "$T/err"

vmctl --config "$T/config" list --bogus
ok_eq "an unknown option exits 2" 2 "$?"
printf '[n]\nprovider = none\nhost = h\n' >"$T/none.conf"
vmctl --config "$T/none.conf" create
ok_eq "create on a non-Azure profile exits 2" 2 "$?"
ok "and says it needs Azure" grep -q "needs an Azure profile" "$T/err"
t_done
