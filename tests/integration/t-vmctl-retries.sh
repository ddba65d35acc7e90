#!/bin/bash
# vmctl against ARM's failure modes: a burst of 429s and 503s retried with
# Retry-After, a token that expires mid-operation renewed once, and ARM errors
# (409 OperationNotAllowed, AllocationFailed in a failed operation,
# AuthorizationFailed, ResourceNotFound, a malformed body) shown as
# "CODE: message" with vmctl(1)'s exit codes.
. "$top_srcdir/tests/lib.sh"; t_init
. "$top_srcdir/tests/fake-arm/fake-arm.sh"
fake_arm_start || { fail "fake ARM server starts"; t_done; }

count() {	# count PATTERN: requests whose path contains PATTERN
	fake_get /_requests | python3 -c '
import json, sys
print(sum(1 for r in json.load(sys.stdin) if sys.argv[1] in r["path"]))' "$1"
}

fake_ctl '{"throttle": 3}'
ok "status succeeds through a burst of three 429s" vmctl status
ok_eq "the instance view was asked 4 times" 4 "$(count /instanceView)"

fake_ctl '{"unavailable": 2}'
ok "start succeeds through two 503s" vmctl start
ok_eq "the VM runs" running "$(vm_power dsvm)"

tokens_before=$(count /oauth2/v2.0/token)
fake_ctl '{"expire_token": 1, "polls": 3}'
ok "stop succeeds although the token expired mid-operation" vmctl --debug stop
ok_eq "the VM is deallocated" deallocated "$(vm_power dsvm)"
ok_eq "the token was renewed exactly once" $((tokens_before + 2)) "$(count /oauth2/v2.0/token)"
ok "--debug says the token was renewed" grep -q "renewing it once" "$T/err"

fake_ctl '{"expire_token": 5}'
vmctl status
ok_eq "a token refused twice is an authentication failure (exit 3)" 3 "$?"
ok "the error carries the ARM code" grep -q "ExpiredAuthenticationToken: " "$T/err"
fake_ctl '{"expire_token": 0}'

fake_ctl '{"conflict": 1}'
vmctl start
ok_eq "a 409 exits 5" 5 "$?"
ok "the 409 shows CODE: message" grep -q "start 'dsvm' failed: OperationNotAllowed: " "$T/err"
ok "the 409 is explained" grep -q "busy with another operation" "$T/err"

fake_ctl '{"fail_start": "AllocationFailed", "polls": 1}'
vmctl start
ok_eq "a failed operation exits 1" 1 "$?"
ok "AllocationFailed is shown as CODE: message" \
	grep -q "start 'dsvm' failed: AllocationFailed: Allocation failed" "$T/err"

fake_ctl '{"forbidden": 1}'
vmctl start
ok_eq "AuthorizationFailed exits 3" 3 "$?"
ok "AuthorizationFailed is shown" grep -q "AuthorizationFailed: The client" "$T/err"

sed -i 's/^vm = dsvm/vm = nosuchvm/' "$T/config"
vmctl status
ok_eq "an unknown VM exits 4" 4 "$?"
ok "ResourceNotFound is shown" grep -q "ResourceNotFound: " "$T/err"
sed -i 's/^vm = nosuchvm/vm = dsvm/' "$T/config"

fake_ctl '{"malformed": "instanceView"}'
vmctl status
ok_eq "a malformed instance view exits 1" 1 "$?"
ok "and says so" grep -q "not a JSON object" "$T/err"
ok "the next status works again" vmctl status
t_done
