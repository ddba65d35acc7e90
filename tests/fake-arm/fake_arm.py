#!/usr/bin/env python3
"""fake_arm.py: a fake Azure Resource Manager + token service for vmctl's tests.

Follows the documented shapes of ARM REST (compute VMs, NICs, public IPs,
resource groups, deployments, marketplace agreements, DevTestLab schedules),
the Microsoft identity platform token endpoint (client credentials, AADSTS
errors) and the IMDS managed identity endpoint. Long operations answer 202
with Azure-AsyncOperation (or only Location) and finish after a number of
polls; Retry-After is sent. Scenarios are switched through the control
endpoint POST /_control (JSON object merged into the scenario), e.g.
  {"throttle": 3}          next 3 ARM requests answer 429 (Retry-After: 1)
  {"unavailable": 2}       next 2 ARM requests answer 503
  {"expire_token": 1}      the next ARM request answers 401 ExpiredAuthenticationToken
  {"polls": 3}             long operations need 3 polls
  {"poll_mode": "location"} 202 with Location only (no Azure-AsyncOperation)
  {"fail_start": "AllocationFailed"} the next start operation ends Failed
  {"conflict": 1}          the next start/deallocate answers 409
  {"malformed": "instanceView"} the next instance view is truncated JSON
  {"forbidden": 1}         the next ARM request answers 403 AuthorizationFailed
  {"next_ip": "127.0.0.1"} the next public IP handed out
  {"imds": "none"}         IMDS has no identity for this VM (400 Identity not found)
  {"imds_vm": "other"}     IMDS instance metadata describes VM "other" of rg1 (default dsvm)
  {"snapshot": "FILE"}     each request logged from now on records FILE's content as
                           it arrives ("snapshot": the text, null when missing),
                           e.g. what the VM's disk held when a deallocate came
Each entry of the request log also has its "time" (seconds since the epoch). A VM's
instance view dates its provisioning state at its last start, deallocate or
power-off as Azure does (before any: 2026-01-02T03:04:05Z).
GET /_requests returns the request log (method, path, query; never credentials;
"token" says which kind of bearer token came: "sp", "cli", "mi" or null).
IMDS also serves GET /metadata/instance/compute/resourceId?format=text.

Start: fake_arm.py --port-file FILE. Listens on 127.0.0.1, a free port.
Valid service principal: tenant "tenant1", client "client1", secret in
$FAKE_ARM_SECRET (default "fake-secret-3f9a"). Tokens it issues start with
"fake-token-"; the fake az's tokens start with "cli-valid-"; IMDS ones with
"mi-token-".
"""
import argparse
import json
import os
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SUB = "00000000-0000-0000-0000-000000000001"
SECRET = os.environ.get("FAKE_ARM_SECRET", "fake-secret-3f9a")
LOCK = threading.Lock()


class State:
    def __init__(self):
        self.scenario = {"polls": 2, "poll_mode": "async", "retry_after": "0"}
        self.tokens = set()
        self.revoked = set()
        self.ops = {}
        self.log = []
        self.ip_counter = 10
        self.rgs = {"rg1": "eastus"}
        self.vms = {}
        self.terms = {}
        self.schedules = {}
        self.deployments = {}
        self.add_vm("rg1", "dsvm", "deallocated")
        self.add_vm("rg1", "other", "running")

    def add_vm(self, rg, name, power):
        vm = {"rg": rg, "name": name, "power": power, "ip": None}
        if power in ("running", "stopped"):
            vm["ip"] = self.new_ip()
        self.vms[(rg.lower(), name)] = vm
        return vm

    def new_ip(self):
        if self.scenario.get("next_ip"):  # e.g. the address of a test's sshd
            ip, self.scenario["next_ip"] = self.scenario["next_ip"], None
            return ip
        self.ip_counter += 1
        # loopback addresses: a test that connects to one never leaves the machine
        return "127.0.0.%d" % self.ip_counter


S = State()


def vm_id(vm):
    return "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachines/%s" % (
        SUB, vm["rg"], vm["name"])


def nic_id(vm):
    return "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Network/networkInterfaces/%s-nic" % (
        SUB, vm["rg"], vm["name"])


def pip_id(vm):
    return "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Network/publicIPAddresses/%s-ip" % (
        SUB, vm["rg"], vm["name"])


def arm_error(code, message):
    return {"error": {"code": code, "message": message}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def annotate(self, entry):
        entry["time"] = time.time()
        if S.scenario.get("snapshot"):
            try:
                with open(S.scenario["snapshot"], errors="replace") as f:
                    entry["snapshot"] = f.read()
            except OSError:
                entry["snapshot"] = None

    # ---- plumbing ----
    def reply(self, status, body=None, headers=None, raw=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if data or status not in (204,):
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def base(self):
        return "http://127.0.0.1:%d" % self.server.server_address[1]

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_PUT(self):
        self.route("PUT")

    def do_DELETE(self):
        self.route("DELETE")

    def route(self, method):
        u = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(u.query)
        body = self.read_body()
        parts = [p for p in u.path.split("/") if p]
        with LOCK:
            if u.path != "/_requests":
                S.log.append({"method": method, "path": u.path, "query": u.query,
                              "auth": bool(self.headers.get("Authorization")),
                              "token": self.token_kind()})
            if u.path != "/_requests":
                self.annotate(S.log[-1])
            try:
                self.dispatch(method, u.path, parts, q, body)
            except Exception as e:  # a bug in the fake: say so loudly
                sys.stderr.write("fake_arm: %r\n" % e)
                self.reply(500, arm_error("FakeBug", repr(e)))

    def dispatch(self, method, path, parts, q, body):
        if path == "/_control" and method == "POST":
            S.scenario.update(json.loads(body or b"{}"))
            return self.reply(200, S.scenario)
        if path == "/_requests":
            return self.reply(200, S.log)
        if path == "/_state":
            return self.reply(200, {"vms": {"%s/%s" % k: v for k, v in S.vms.items()},
                                    "rgs": S.rgs, "terms": S.terms, "schedules": S.schedules,
                                    "deployments": list(S.deployments)})
        if len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "token"] and method == "POST":
            return self.token(parts[0], body)
        if path == "/metadata/identity/oauth2/token":
            return self.imds(q)
        if path == "/metadata/instance/compute/resourceId":
            return self.imds_resource_id(q)
        return self.arm(method, path, parts, q, body)

    # ---- identity ----
    def token(self, tenant, body):
        f = urllib.parse.parse_qs(body.decode())
        one = lambda k: (f.get(k) or [""])[0]
        if tenant != "tenant1":
            return self.reply(400, {"error": "invalid_request", "error_description":
                                    "AADSTS90002: Tenant '%s' not found. Check to make sure you have "
                                    "the correct tenant ID and are signing into the correct cloud." % tenant,
                                    "error_codes": [90002]})
        if one("grant_type") != "client_credentials" or not one("scope").endswith("/.default"):
            return self.reply(400, {"error": "invalid_scope", "error_description":
                                    "AADSTS70011: The provided request must include a 'scope' input parameter."})
        if one("client_id") != "client1":
            return self.reply(400, {"error": "unauthorized_client", "error_description":
                                    "AADSTS700016: Application with identifier '%s' was not found "
                                    "in the directory." % one("client_id")})
        if one("client_secret") != SECRET:
            return self.reply(401, {"error": "invalid_client", "error_description":
                                    "AADSTS7000215: Invalid client secret provided. Ensure the secret "
                                    "being sent in the request is the client secret value."})
        tok = "fake-token-" + secrets.token_hex(16)
        S.tokens.add(tok)
        self.reply(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                         "access_token": tok})

    def imds(self, q):
        if self.headers.get("Metadata") != "true":
            return self.reply(400, {"error": "invalid_request", "error_description": "Required metadata header not specified"})
        if S.scenario.get("imds") == "none":
            return self.reply(400, {"error": "invalid_request", "error_description": "Identity not found"})
        tok = "mi-token-" + secrets.token_hex(16)
        S.tokens.add(tok)
        self.reply(200, {"access_token": tok, "expires_on": str(int(time.time()) + 3600),
                         "resource": (q.get("resource") or [""])[0], "token_type": "Bearer"})

    def imds_resource_id(self, q):
        if self.headers.get("Metadata") != "true":
            return self.reply(400, {"error": "invalid_request", "error_description": "Required metadata header not specified"})
        if (q.get("format") or [""])[0] != "text" or "api-version" not in q:
            return self.reply(400, {"error": "Bad request. api-version and format=text required"})
        vm = S.vms.get(("rg1", S.scenario.get("imds_vm", "dsvm")))
        if not vm:
            return self.reply(404, {"error": "Not found"})
        self.reply(200, raw=vm_id(vm).encode())

    def token_kind(self):
        h = self.headers.get("Authorization") or ""
        tok = h[7:] if h.startswith("Bearer ") else ""
        for prefix, kind in (("fake-token-", "sp"), ("cli-valid-", "cli"), ("mi-token-", "mi")):
            if tok.startswith(prefix):
                return kind
        return None

    def authorized(self):
        h = self.headers.get("Authorization") or ""
        if not h.startswith("Bearer "):
            self.reply(401, arm_error("AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."),
                       {"WWW-Authenticate": 'Bearer authorization_uri="%s", error="invalid_token"' % self.base()})
            return False
        tok = h[7:]
        valid = (tok in S.tokens or tok.startswith("cli-valid-")) and tok not in S.revoked
        if valid and S.scenario.get("expire_token", 0) > 0:
            S.scenario["expire_token"] -= 1
            S.revoked.add(tok)
            valid = False
        if not valid:
            self.reply(401, arm_error("ExpiredAuthenticationToken",
                                      "The access token expiry UTC time is earlier than current UTC time."),
                       {"WWW-Authenticate": 'Bearer authorization_uri="%s", error="invalid_token", '
                        'error_description="The access token has expired."' % self.base()})
            return False
        return True

    # ---- ARM ----
    def arm(self, method, path, parts, q, body):
        if not self.authorized():
            return
        sc = S.scenario
        for key, status, code in (("throttle", 429, "TooManyRequests"), ("unavailable", 503, "ServiceUnavailable")):
            if sc.get(key, 0) > 0:
                sc[key] -= 1
                return self.reply(status, arm_error(code, "Please retry later."), {"Retry-After": "1"})
        if sc.get("forbidden", 0) > 0:
            sc["forbidden"] -= 1
            return self.reply(403, arm_error("AuthorizationFailed",
                                             "The client 'client1' does not have authorization to perform "
                                             "action 'Microsoft.Compute/virtualMachines/start/action'."))
        if "api-version" not in q:
            return self.reply(400, arm_error("MissingApiVersionParameter",
                                             "The api-version query parameter (?api-version=) is required for all requests."))
        low = [p.lower() for p in parts]
        if len(parts) >= 2 and low[0] == "subscriptions" and parts[1] != SUB:
            return self.reply(404, arm_error("SubscriptionNotFound", "The subscription '%s' could not be found." % parts[1]))
        if "operations" in low:
            return self.poll(parts[-1], "async")
        if "operationresults" in low:
            return self.poll(parts[-1], "location")
        if len(low) >= 4 and low[2] == "resourcegroups":
            rg = parts[3]
            rest = low[4:]
            if not rest:
                return self.resource_group(method, rg, body)
            if rg.lower() not in {k.lower() for k in S.rgs}:
                return self.reply(404, arm_error("ResourceGroupNotFound", "Resource group '%s' could not be found." % rg))
            prov = "/".join(rest[:3])
            if prov == "providers/microsoft.compute/virtualmachines":
                if len(rest) == 3:
                    vms = [v for k, v in S.vms.items() if k[0] == rg.lower()]
                    return self.reply(200, {"value": [self.vm_doc(v) for v in vms]})
                return self.vm(method, rg, parts[7], rest[4:], body)
            if prov == "providers/microsoft.network/networkinterfaces":
                return self.nic(rg, parts[7])
            if prov == "providers/microsoft.network/publicipaddresses":
                return self.pip(rg, parts[7])
            if prov == "providers/microsoft.resources/deployments":
                return self.deployment(method, rg, parts[7], body)
            if prov == "providers/microsoft.devtestlab/schedules":
                return self.schedule(method, rg, parts[7], body)
        if "microsoft.marketplaceordering" in low:
            return self.terms(method, parts, body)
        self.reply(404, arm_error("InvalidResourceType", "No route for %s %s" % (method, path)))

    def find_vm(self, rg, name):
        vm = S.vms.get((rg.lower(), name))
        if not vm:
            self.reply(404, arm_error("ResourceNotFound",
                                      "The Resource 'Microsoft.Compute/virtualMachines/%s' under resource group "
                                      "'%s' was not found." % (name, rg)))
        return vm

    def vm_doc(self, vm):
        return {"id": vm_id(vm), "name": vm["name"], "type": "Microsoft.Compute/virtualMachines",
                "location": S.rgs.get(vm["rg"], "eastus"),
                "properties": {"vmId": "0000", "hardwareProfile": {"vmSize": "Standard_NC4as_T4_v3"},
                               "provisioningState": "Succeeded",
                               "networkProfile": {"networkInterfaces": [
                                   {"id": nic_id(vm), "properties": {"primary": True}}]}}}

    def vm(self, method, rg, name, rest, body):
        vm = self.find_vm(rg, name)
        if not vm:
            return
        sc = S.scenario
        if method == "GET" and not rest:
            return self.reply(200, self.vm_doc(vm))
        if method == "GET" and rest == ["instanceview"]:
            if sc.get("malformed") == "instanceView":
                sc["malformed"] = None
                return self.reply(200, raw=b'{"statuses": [{"code": "PowerState/runn')
            since = "2026-01-02T03:04:05.1234567+00:00"
            if vm.get("since"):
                since = time.strftime("%Y-%m-%dT%H:%M:%S.0000000+00:00", time.gmtime(vm["since"]))
            return self.reply(200, {"computerName": name, "statuses": [
                {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded",
                 "time": since},
                {"code": "PowerState/" + vm["power"], "level": "Info", "displayStatus": "VM " + vm["power"]}]})
        if method == "POST" and rest and rest[0] in ("start", "deallocate", "poweroff"):
            if sc.get("conflict", 0) > 0:
                sc["conflict"] -= 1
                return self.reply(409, arm_error("OperationNotAllowed",
                                                 "Operation 'start' is not allowed on VM '%s' since the VM is "
                                                 "marked for deletion." % name))
            action = rest[0]
            trans = {"start": ("starting", "running"), "deallocate": ("deallocating", "deallocated"),
                     "poweroff": ("stopping", "stopped")}[action]
            fail = None
            if action == "start" and sc.get("fail_start"):
                fail, sc["fail_start"] = sc["fail_start"], None
            vm["power"] = trans[0]

            def finish(vm=vm, final=trans[1], action=action, fail=fail):
                if fail:
                    vm["power"] = "deallocated"
                    return
                vm["power"] = final
                vm["since"] = time.time()
                if final == "deallocated":
                    vm["ip"] = None  # dynamic: released
                elif final == "running" and not vm["ip"]:
                    vm["ip"] = S.new_ip()
            return self.start_op(finish, fail)
        if method == "DELETE" and not rest:
            del S.vms[(rg.lower(), name)]
            return self.reply(200)
        self.reply(405, arm_error("MethodNotAllowed", "not supported"))

    def nic(self, rg, name):
        vm = next((v for k, v in S.vms.items() if k[0] == rg.lower() and name == v["name"] + "-nic"), None)
        if not vm:
            return self.reply(404, arm_error("ResourceNotFound", "NIC '%s' not found" % name))
        self.reply(200, {"id": nic_id(vm), "name": name, "properties": {"ipConfigurations": [
            {"name": "ipconfig1", "properties": {"primary": True, "privateIPAddress": "10.42.0.4",
                                                 "publicIPAddress": {"id": pip_id(vm)}}}]}})

    def pip(self, rg, name):
        vm = next((v for k, v in S.vms.items() if k[0] == rg.lower() and name == v["name"] + "-ip"), None)
        if not vm:
            return self.reply(404, arm_error("ResourceNotFound", "public IP '%s' not found" % name))
        props = {"publicIPAllocationMethod": "Dynamic", "provisioningState": "Succeeded"}
        if vm["ip"]:
            props["ipAddress"] = vm["ip"]
        self.reply(200, {"id": pip_id(vm), "name": name, "properties": props})

    def resource_group(self, method, rg, body):
        if method == "PUT":
            loc = json.loads(body or b"{}").get("location")
            if not loc:
                return self.reply(400, arm_error("LocationRequired", "The location property is required for this definition."))
            created = rg not in S.rgs
            S.rgs[rg] = loc
            return self.reply(201 if created else 200, {"id": "/subscriptions/%s/resourceGroups/%s" % (SUB, rg),
                                                        "name": rg, "location": loc,
                                                        "properties": {"provisioningState": "Succeeded"}})
        if method == "DELETE":
            if rg not in S.rgs:
                return self.reply(404, arm_error("ResourceGroupNotFound", "Resource group '%s' could not be found." % rg))

            def finish(rg=rg):
                S.rgs.pop(rg, None)
                for k in [k for k in S.vms if k[0] == rg.lower()]:
                    del S.vms[k]
            return self.start_op(finish, None, mode="location")
        if method == "GET":
            if rg not in S.rgs:
                return self.reply(404, arm_error("ResourceGroupNotFound", "Resource group '%s' could not be found." % rg))
            return self.reply(200, {"name": rg, "location": S.rgs[rg]})
        self.reply(405, arm_error("MethodNotAllowed", "not supported"))

    def deployment(self, method, rg, name, body):
        if method != "PUT":
            return self.reply(405, arm_error("MethodNotAllowed", "not supported"))
        try:
            d = json.loads(body)
            props = d["properties"]
            tmpl = props["template"]
            params = {k: v["value"] for k, v in props["parameters"].items()}
            types = {r["type"] for r in tmpl["resources"]}
            assert props["mode"] == "Incremental"
            assert params["sshPublicKey"].startswith("ssh-")
            vm_name = params["vmName"]
        except Exception as e:
            return self.reply(400, arm_error("InvalidTemplate", "Deployment template validation failed: %r" % e))
        need = {"Microsoft.Compute/virtualMachines", "Microsoft.Network/networkInterfaces",
                "Microsoft.Network/publicIPAddresses", "Microsoft.Network/networkSecurityGroups",
                "Microsoft.Network/virtualNetworks"}
        if not need <= types:
            return self.reply(400, arm_error("InvalidTemplate", "missing resources: %s" % sorted(need - types)))
        S.deployments[name] = params

        def finish(rg=rg, vm_name=vm_name):
            S.add_vm(rg, vm_name, "running")
        self.start_op(finish, None, status=201,
                      doc={"id": "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Resources/deployments/%s" % (SUB, rg, name),
                           "name": name, "properties": {"provisioningState": "Accepted"}})

    def schedule(self, method, rg, name, body):
        key = "%s/%s" % (rg, name)
        if method == "PUT":
            d = json.loads(body)
            p = d["properties"]
            if p.get("taskType") != "ComputeVmShutdownTask" or not p.get("targetResourceId"):
                return self.reply(400, arm_error("InvalidSchedule", "bad schedule"))
            S.schedules[key] = d
            return self.reply(201, dict(d, id="/x/" + name, name=name))
        if method == "DELETE":
            existed = S.schedules.pop(key, None)
            return self.reply(200 if existed else 204)
        if key in S.schedules:
            return self.reply(200, S.schedules[key])
        self.reply(404, arm_error("ResourceNotFound", "schedule not found"))

    def terms(self, method, parts, body):
        low = [p.lower() for p in parts]
        try:
            pub = parts[low.index("publishers") + 1]
            offer = parts[low.index("offers") + 1]
            plan = parts[low.index("plans") + 1]
        except (ValueError, IndexError):
            return self.reply(404, arm_error("NotFound", "bad agreement path"))
        key = "%s:%s:%s" % (pub, offer, plan)
        doc = {"id": "/subscriptions/%s/providers/Microsoft.MarketplaceOrdering/offerTypes/VirtualMachine/publishers/%s/offers/%s/plans/%s/agreements/current" % (SUB, pub, offer, plan),
               "name": plan, "type": "Microsoft.MarketplaceOrdering/offertypes",
               "properties": {"publisher": pub, "product": offer, "plan": plan,
                              "licenseTextLink": "https://example.invalid/license",
                              "retrieveDatetime": "2026-01-01T00:00:00Z", "signature": "SIG",
                              "accepted": S.terms.get(key, False)}}
        if method == "GET":
            return self.reply(200, doc)
        if method == "PUT":
            d = json.loads(body)
            if d.get("properties", {}).get("signature") != "SIG":
                return self.reply(400, arm_error("BadRequest", "signature missing"))
            S.terms[key] = bool(d["properties"].get("accepted"))
            doc["properties"]["accepted"] = S.terms[key]
            return self.reply(200, doc)
        self.reply(405, arm_error("MethodNotAllowed", "not supported"))

    # ---- long operations ----
    def start_op(self, finish, fail, status=202, doc=None, mode=None):
        op = secrets.token_hex(8)
        S.ops[op] = {"left": int(S.scenario.get("polls", 2)), "finish": finish, "fail": fail, "done": False}
        mode = mode or S.scenario.get("poll_mode", "async")
        ra = str(S.scenario.get("retry_after", "0"))
        base = self.base() + "/subscriptions/%s/providers/Microsoft.Compute/locations/eastus" % SUB
        h = {"Retry-After": ra, "Location": base + "/operationResults/%s?api-version=2024-03-01" % op}
        if mode == "async":
            h["Azure-AsyncOperation"] = base + "/operations/%s?api-version=2024-03-01" % op
        self.reply(status, doc, h)

    def poll(self, op_id, mode):
        op = S.ops.get(op_id)
        if not op:
            return self.reply(404, arm_error("OperationNotFound", "operation %s not found" % op_id))
        ra = {"Retry-After": str(S.scenario.get("retry_after", "0"))}
        if op["left"] > 0:
            op["left"] -= 1
            if mode == "async":
                return self.reply(200, {"name": op_id, "status": "InProgress",
                                        "startTime": "2026-01-01T00:00:00Z"}, ra)
            return self.reply(202, None, dict(ra, Location=self.base() + self.path))
        if not op["done"]:
            op["done"] = True
            op["finish"]()
        if op["fail"]:
            err = {"code": op["fail"], "message": "Allocation failed. We do not have sufficient capacity "
                   "for the requested VM size in this region."}
            if mode == "async":
                return self.reply(200, {"name": op_id, "status": "Failed", "error": err})
            return self.reply(500, {"error": err})
        if mode == "async":
            return self.reply(200, {"name": op_id, "status": "Succeeded",
                                    "endTime": "2026-01-01T00:00:05Z"})
        self.reply(200, {})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    a = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, a.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
