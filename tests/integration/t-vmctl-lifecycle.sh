#!/bin/bash
# vmctl start/stop/status/ip/list against the fake ARM server: 202 operations
# polled through Azure-AsyncOperation and through Location, power-off only on
# request (with the billing warning), the public IP re-resolved after a
# deallocate, the classic .vm-id/.vm-ip files.
. "$top_srcdir/tests/lib.sh"; t_init
. "$top_srcdir/tests/fake-arm/fake-arm.sh"
fake_arm_start || { fail "fake ARM server starts"; t_done; }

ok "status of a deallocated VM" vmctl status
ok_eq "status says deallocated" "dsvm: deallocated since 2026-01-02T03:04:05Z" "$(cat "$T/out")"
ok_not "ip of a deallocated VM fails" vmctl ip
ok "the ip error says to start the VM" grep -q "start it first" "$T/err"

fake_ctl '{"polls": 3}'
ok "start succeeds" vmctl start
ok_eq "the fake VM runs" running "$(vm_power dsvm)"
polls=$(fake_get /_requests | python3 -c '
import json, sys
print(sum(1 for r in json.load(sys.stdin) if "/operations/" in r["path"]))')
ok_eq "the async operation was polled until it succeeded (3 InProgress + 1)" 4 "$polls"
ok "every ARM request carried an api-version" python3 -c '
import json, sys, urllib.request
log = json.load(urllib.request.urlopen(sys.argv[1] + "/_requests"))
bad = [r for r in log if r["path"].startswith("/subscriptions") and "api-version=" not in r["query"]]
sys.exit(1 if bad else 0)' "$ARM"

ok "ip of the running VM" vmctl ip
ip1=$(cat "$T/out")
ok "the address is the public IP's" grep -Eq '^127\.0\.0\.[0-9]+$' "$T/out"
ok "status --json" vmctl status --json
ok "status --json has power_state and address" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if d["power_state"] == "running" and d["address"] == sys.argv[2] else 1)' "$T/out" "$ip1"

ok "stop deallocates" vmctl stop
ok_eq "the fake VM is deallocated" deallocated "$(vm_power dsvm)"
ok "stop does not warn about billing" test ! -s "$T/err"

fake_ctl '{"poll_mode": "location", "polls": 2}'
ok "start polled through Location" vmctl start
ok_eq "running again" running "$(vm_power dsvm)"
ok "ip after the restart" vmctl ip
ip2=$(cat "$T/out")
ok "the dynamic IP changed after the deallocate and was re-resolved" test -n "$ip2" -a "$ip1" != "$ip2"
fake_ctl '{"poll_mode": "async"}'

fake_ctl '{"retry_after": "1", "polls": 2}'
t0=$(date +%s%N)
ok "stop --power-off" vmctl stop --power-off
t1=$(date +%s%N)
ms=$(((t1 - t0) / 1000000))
ok "Retry-After: 1 was honoured between the polls (3 waits of 1 s, not the 5 s default: ${ms} ms)" \
	test "$ms" -ge 2500 -a "$ms" -lt 12000
fake_ctl '{"retry_after": "0"}'
ok_eq "the fake VM is stopped, not deallocated" stopped "$(vm_power dsvm)"
ok "power-off warns that it still bills" grep -q "still bills" "$T/err"
ok "status of a stopped VM" vmctl status
ok "status notes the stopped VM still bills" grep -q "still bills" "$T/out"

ok "list" vmctl list
ok "list shows both VMs with their state" python3 -c '
import sys
rows = dict(l.split() for l in open(sys.argv[1]) if l.strip())
sys.exit(0 if rows == {"dsvm": "stopped", "other": "running"} else 1)' "$T/out"

# the classic workflow: a .vm-id in ./infra, no VM named in the profile
mkdir -p "$T/proj/infra"
echo "/subscriptions/$FAKE_SUB/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/other" \
	>"$T/proj/infra/.vm-id"
printf '[classic]\nprovider = azure\narm_endpoint = %s\nauthority_host = %s\n' "$ARM" "$ARM" \
	>"$T/classic.conf"
(cd "$T/proj" && vmctl --config "$T/classic.conf" ip)
ok "the classic .vm-id names the VM" test $? -eq 0
ok ".vm-ip was refreshed with the resolved address" \
	test -s "$T/out" -a "$(cat "$T/proj/infra/.vm-ip")" = "$(cat "$T/out")"
(cd "$T" && vmctl --config "$T/classic.conf" ip)
ok_eq "without .vm-id the profile is incomplete (exit 2)" 2 "$?"
ok "the error says what to set" grep -q "set subscription, resource_group" "$T/err"
t_done
