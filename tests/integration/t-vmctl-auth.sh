#!/bin/bash
# vmctl's credential sources against the fake token service: a service
# principal (wrong secret, unknown tenant: AADSTS errors shown), the Azure CLI
# through a fake `az` (ok, expired token, not logged in), a managed identity
# through the fake IMDS, and the refusal to send a token over plain http to a
# non-loopback host.
. "$top_srcdir/tests/lib.sh"; t_init
. "$top_srcdir/tests/fake-arm/fake-arm.sh"
fake_arm_start || { fail "fake ARM server starts"; t_done; }

ok "a service principal works" vmctl status

AZURE_CLIENT_SECRET=wrong vmctl status
ok_eq "a wrong secret exits 3" 3 "$?"
ok "the wrong secret shows AADSTS7000215" grep -q "invalid_client: AADSTS7000215: Invalid client secret" "$T/err"
ok "and names the variables to check" grep -q "AZURE_CLIENT_SECRET" "$T/err"

AZURE_TENANT_ID=nosuchtenant vmctl status
ok_eq "an unknown tenant exits 3" 3 "$?"
ok "the unknown tenant shows AADSTS90002" grep -q "AADSTS90002: Tenant 'nosuchtenant' not found" "$T/err"

AZURE_AUTHORITY_HOST=http://127.0.0.1:1 vmctl status
ok_eq "AZURE_AUTHORITY_HOST overrides the profile (nothing listens there: exit 3)" 3 "$?"

# the Azure CLI: no service principal in the environment
unset AZURE_TENANT_ID AZURE_CLIENT_ID AZURE_CLIENT_SECRET
mkdir -p "$T/bin"
cp "$top_srcdir/tests/fake-arm/az" "$T/bin/az"
export FAKE_AZ_LOG="$T/az.log"
PATH="$T/bin:$PATH" vmctl status
ok_eq "the Azure CLI's token works" 0 "$?"
ok "az was asked for a token for the ARM endpoint" grep -q "get-access-token --resource $ARM -o json" "$T/az.log"
fake_ctl '{"imds": "none"}'
FAKE_AZ_MODE=expired PATH="$T/bin:$PATH" vmctl status
ok_eq "an expired CLI token exits 3" 3 "$?"
ok "and says to log in again" grep -q "token has expired (run 'az login' again)" "$T/err"

FAKE_AZ_MODE=notloggedin PATH="$T/bin:$PATH" vmctl status
ok_eq "not logged in to az and no managed identity exits 3" 3 "$?"
ok "the az error is shown" grep -q "run 'az login'" "$T/err"

# a managed identity: no service principal, no az
fake_ctl '{"imds": "ok"}'
ok "a managed identity works" vmctl --debug status
ok "--debug names the source" grep -q "token from managed identity" "$T/err"

WAKEFS_IMDS_ENDPOINT=http://127.0.0.1:1 vmctl status
ok_eq "no credentials at all exits 3" 3 "$?"
ok "and lists the ways to provide them" grep -q "no Azure credentials: set AZURE_TENANT_ID" "$T/err"

# plain http to anything but loopback is refused before any connection
export AZURE_TENANT_ID=tenant1 AZURE_CLIENT_ID=client1 AZURE_CLIENT_SECRET=$FAKE_SECRET
sed -i "s|^authority_host = .*|authority_host = http://login.example.invalid|" "$T/config"
vmctl status
ok_eq "a secret for a plain-http authority is refused (exit 3)" 3 "$?"
ok "with a clear message" grep -q "refusing to send credentials over plain http to 'login.example.invalid'" "$T/err"
sed -i "s|^authority_host = .*|authority_host = $ARM|; s|^arm_endpoint = .*|arm_endpoint = http://arm.example.invalid|" "$T/config"
vmctl status
ok_eq "a token for a plain-http ARM endpoint is refused" 1 "$?"
ok "with a clear message" grep -q "refusing to send credentials over plain http to 'arm.example.invalid'" "$T/err"
t_done
