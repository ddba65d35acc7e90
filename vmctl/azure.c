/*
 * vmctl/azure.c: the Azure provider over ARM REST; the only file that knows
 * Azure's JSON (and the only one that includes cJSON).
 *
 * Every ARM call goes through azure_call(): get a token, send, and on
 *   401            renew the token once and resend;
 *   429, 500, 502, 503, 504
 *                  wait (Retry-After if given, else capped exponential backoff
 *                  with jitter) and resend, up to AZURE_MAX_TRIES times;
 *   anything else  return the response.
 * Long operations (start, deallocate, powerOff, deployments, deletes) answer
 * 201/202: azure_op() then polls Azure-AsyncOperation (status InProgress ->
 * Succeeded | Failed | Canceled), else Location (202 -> 200/204), sleeping
 * Retry-After between polls, and only ever sends the token back to the ARM
 * endpoint's own origin. The public IP is resolved on every call, VM -> NIC
 * -> public IP, since a dynamic IP changes after a deallocate.
 *
 * The VM is named by `vm_id`, by `subscription` + `resource_group` + `vm`, or
 * by the classic `.vm-id` file (./infra/.vm-id, else ./.vm-id); in that last
 * case the `.vm-ip` beside it is refreshed whenever the address is resolved.
 */
#include "azure.h"
#include "auth.h"
#include "config.h"
#include "http.h"
#include "provider.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define API_COMPUTE "2024-03-01"
#define API_NETWORK "2023-09-01"
#define API_RESOURCES "2021-04-01"
#define API_MARKETPLACE "2021-01-01"
#define API_DEVTESTLAB "2018-09-15"

#define AZURE_MAX_TRIES 6
#define AZURE_BACKOFF_CAP_MS 32000
#define AZURE_RETRY_AFTER_CAP_S 120
#define AZURE_DEFAULT_POLL_S 5
#define AZURE_OP_TIMEOUT_S 1800
#define AZURE_ID_MAX 1024

#include "vmctl/azure-template.h"	/* azure_template: scripts/azure-vm.json */

struct azure {
	struct auth *auth;
	char *arm;		/* endpoint, no trailing slash */
	char *ca_bundle;
	char vm_id[AZURE_ID_MAX];
	char sub[128], rg[128], name[128];
	char ipfile[4096];	/* classic .vm-ip to refresh, "" if none */
	long backoff_ms;	/* first backoff step */
};

static struct azure *azure_of(struct vm *vm)
{
	return vm_data(vm);
}

/* ---- JSON helpers ---- */

static const char *json_str(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsString(v) && v->valuestring ? v->valuestring : NULL;
}

static const cJSON *json_path(const cJSON *obj, const char *a, const char *b)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, a);

	if (v && b)
		v = cJSON_GetObjectItemCaseSensitive(v, b);
	return v;
}

static cJSON *json_parse(const char *body, const char *what, struct vm_error *err)
{
	cJSON *root = body ? cJSON_Parse(body) : NULL;

	if (!root || !cJSON_IsObject(root)) {
		cJSON_Delete(root);
		vm_error_set(err, VM_EPARSE, 0, "parse",
			     "unexpected response for %s: not a JSON object", what);
		return NULL;
	}
	return root;
}

static int json_copy(char *dst, size_t len, const char *src)
{
	return (size_t)snprintf(dst, len, "%s", src) >= len ? -1 : 0;
}

/* Printable one-line copy of an untrusted string (control characters dropped). */
static void json_clean(char *dst, size_t len, const char *src)
{
	size_t i = 0;

	for (; src && *src && i + 1 < len; src++)
		if ((unsigned char)*src >= 0x20 && *src != 0x7f)
			dst[i++] = *src;
		else if (*src == '\n' || *src == '\t')
			dst[i++] = ' ';
	dst[i] = 0;
}

/* ---- pure response handlers ---- */

int azure_parse_error(const char *body, char *code, size_t codelen, char *msg, size_t msglen)
{
	cJSON *root = body ? cJSON_Parse(body) : NULL;
	const cJSON *e;
	const char *c = NULL, *m = NULL;
	int rc = -1;

	if (!root || !cJSON_IsObject(root))
		goto out;
	e = cJSON_GetObjectItemCaseSensitive(root, "error");
	if (cJSON_IsObject(e)) {
		c = json_str(e, "code");
		m = json_str(e, "message");
	} else if (cJSON_IsString(e)) {	/* AAD: {"error":"invalid_client","error_description":...} */
		c = e->valuestring;
		m = json_str(root, "error_description");
	}
	if (!c)
		goto out;
	json_clean(code, codelen, c);
	json_clean(msg, msglen, m ? m : "(no message)");
	rc = 0;
out:
	cJSON_Delete(root);
	return rc;
}

int azure_parse_power(const char *body, struct vm_status *st, struct vm_error *err)
{
	cJSON *root = json_parse(body, "the instance view", err);
	const cJSON *statuses, *s;
	time_t prov_time = 0;
	int found = 0;

	st->power = VM_POWER_UNKNOWN;
	st->since = 0;
	if (!root)
		return VM_EPARSE;
	statuses = cJSON_GetObjectItemCaseSensitive(root, "statuses");
	if (!cJSON_IsArray(statuses)) {
		cJSON_Delete(root);
		return vm_error_set(err, VM_EPARSE, 0, "parse",
				    "unexpected instance view: no 'statuses' list");
	}
	cJSON_ArrayForEach(s, statuses) {
		const char *code = json_str(s, "code"), *t = json_str(s, "time");

		if (!code)
			continue;
		if (!strncmp(code, "PowerState/", 11)) {
			st->power = vm_power_parse(code);
			found = 1;
		} else if (!strncmp(code, "ProvisioningState/", 18) && t) {
			struct tm tm = { 0 };

			if (strptime(t, "%Y-%m-%dT%H:%M:%S", &tm))
				prov_time = timegm(&tm);
		}
	}
	cJSON_Delete(root);
	if (!found) {
		/* a VM that is being created or is in a failed state has no PowerState */
		st->power = VM_POWER_UNKNOWN;
		return 0;
	}
	st->since = prov_time;
	return 0;
}

/* The primary entry of an ARM list of {id, properties:{primary}} (else the first). */
static const cJSON *azure_primary(const cJSON *list)
{
	const cJSON *it, *first = NULL;

	cJSON_ArrayForEach(it, list) {
		const cJSON *p;

		if (!cJSON_IsObject(it))
			continue;
		if (!first)
			first = it;
		p = json_path(it, "properties", "primary");
		if (cJSON_IsTrue(p))
			return it;
	}
	return first;
}

int azure_parse_vm_nic(const char *body, char *nic_id, size_t len, char *location,
		       size_t loclen, struct vm_error *err)
{
	cJSON *root = json_parse(body, "the VM", err);
	const cJSON *nics, *nic;
	const char *id, *loc;
	int rc = 0;

	if (!root)
		return VM_EPARSE;
	nics = json_path(json_path(root, "properties", "networkProfile"), "networkInterfaces",
			 NULL);
	nic = cJSON_IsArray(nics) ? azure_primary(nics) : NULL;
	id = nic ? json_str(nic, "id") : NULL;
	if (!id || json_copy(nic_id, len, id)) {
		rc = vm_error_set(err, VM_EPARSE, 0, "parse",
				  "the VM has no network interface in its description");
		goto out;
	}
	loc = json_str(root, "location");
	if (location && loclen)
		json_clean(location, loclen, loc ? loc : "");
out:
	cJSON_Delete(root);
	return rc;
}

int azure_parse_nic_pip(const char *body, char *pip_id, size_t len, struct vm_error *err)
{
	cJSON *root = json_parse(body, "the network interface", err);
	const cJSON *cfgs, *cfg, *pip;
	const char *id;
	int rc = 0;

	if (!root)
		return VM_EPARSE;
	cfgs = json_path(root, "properties", "ipConfigurations");
	cfg = cJSON_IsArray(cfgs) ? azure_primary(cfgs) : NULL;
	if (!cfg) {
		rc = vm_error_set(err, VM_EPARSE, 0, "parse",
				  "the network interface has no IP configuration");
		goto out;
	}
	pip = json_path(json_path(cfg, "properties", "publicIPAddress"), "id", NULL);
	id = cJSON_IsString(pip) ? pip->valuestring : NULL;
	if (!id || json_copy(pip_id, len, id))
		rc = vm_error_set(err, VM_ENOTFOUND, 0, "NoPublicIP",
				  "the VM's network interface has no public IP address "
				  "(attach one, or use provider none with a reachable host)");
out:
	cJSON_Delete(root);
	return rc;
}

static int azure_ip_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > 45)
		return 0;
	return strspn(s, "0123456789abcdefABCDEF.:") == n;
}

int azure_parse_pip_address(const char *body, char *ip, size_t len, struct vm_error *err)
{
	cJSON *root = json_parse(body, "the public IP", err);
	const char *a;
	int rc = 0;

	if (!root)
		return VM_EPARSE;
	a = json_str(json_path(root, "properties", NULL), "ipAddress");
	if (!a) {
		rc = vm_error_set(err, VM_ENOTFOUND, 0, "NoIPAddress",
				  "the public IP has no address yet (a dynamic IP gets one only "
				  "while the VM runs: start it first)");
	} else if (!azure_ip_ok(a) || json_copy(ip, len, a)) {
		rc = vm_error_set(err, VM_EPARSE, 0, "parse",
				  "the public IP resource holds a malformed address");
	}
	cJSON_Delete(root);
	return rc;
}

int azure_parse_async_status(const char *body, struct vm_error *err)
{
	cJSON *root = json_parse(body, "the operation status", err);
	const char *s;
	int rc;

	if (!root)
		return VM_EPARSE;
	s = json_str(root, "status");
	if (!s) {
		rc = vm_error_set(err, VM_EPARSE, 0, "parse",
				  "unexpected operation status: no 'status' field");
	} else if (!strcasecmp(s, "Succeeded")) {
		rc = 1;
	} else if (!strcasecmp(s, "Failed") || !strcasecmp(s, "Canceled")) {
		const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
		const char *c = cJSON_IsObject(e) ? json_str(e, "code") : NULL;
		const char *m = cJSON_IsObject(e) ? json_str(e, "message") : NULL;
		char cc[64], mm[400];

		json_clean(cc, sizeof(cc), c ? c : s);
		json_clean(mm, sizeof(mm), m ? m : "the operation did not complete");
		rc = vm_error_set(err, VM_EHTTP, 0, cc, "%s: %s", cc, mm);
	} else {
		rc = 0;	/* InProgress, Accepted, Running... */
	}
	cJSON_Delete(root);
	return rc;
}

/* "2024-01-01 12:00:00.000000" (local time, as the CLI prints expiresOn). */
static time_t azure_parse_local_time(const char *s)
{
	struct tm tm = { 0 };

	if (!strptime(s, "%Y-%m-%d %H:%M:%S", &tm))
		return 0;
	tm.tm_isdst = -1;
	return mktime(&tm);
}

static time_t azure_json_epoch(const cJSON *v)
{
	if (cJSON_IsNumber(v) && v->valuedouble > 0 && v->valuedouble < 1e11)
		return (time_t)v->valuedouble;
	if (cJSON_IsString(v) && v->valuestring) {
		char *end;
		long long n = strtoll(v->valuestring, &end, 10);

		if (end != v->valuestring && !*end && n > 0 && n < 100000000000LL)
			return (time_t)n;
	}
	return 0;
}

int azure_parse_token(const char *body, enum azure_token_kind kind, char **token,
		      time_t *expires, struct vm_error *err)
{
	cJSON *root = json_parse(body, "the token request", err);
	const char *t;
	const cJSON *v;
	int rc = 0;

	*token = NULL;
	*expires = 0;
	if (!root)
		return VM_EPARSE;
	t = json_str(root, kind == AZURE_TOKEN_CLI ? "accessToken" : "access_token");
	if (!t || !*t || strlen(t) > 65536 || strpbrk(t, " \r\n\t")) {
		rc = vm_error_set(err, VM_EPARSE, 0, "parse", "the token response holds no usable token");
		goto out;
	}
	switch (kind) {
	case AZURE_TOKEN_AAD:
		v = cJSON_GetObjectItemCaseSensitive(root, "expires_in");
		if (cJSON_IsNumber(v) && v->valuedouble > 0 && v->valuedouble < 1e7)
			*expires = time(NULL) + (time_t)v->valuedouble;
		else if (cJSON_IsString(v) && atol(v->valuestring) > 0)
			*expires = time(NULL) + atol(v->valuestring);
		else
			*expires = time(NULL) + 300;	/* unknown: assume short */
		break;
	case AZURE_TOKEN_CLI:
		*expires = azure_json_epoch(cJSON_GetObjectItemCaseSensitive(root, "expires_on"));
		if (!*expires && json_str(root, "expiresOn"))
			*expires = azure_parse_local_time(json_str(root, "expiresOn"));
		break;
	case AZURE_TOKEN_IMDS:
		*expires = azure_json_epoch(cJSON_GetObjectItemCaseSensitive(root, "expires_on"));
		if (!*expires)
			*expires = time(NULL) + 300;
		break;
	}
	*token = strdup(t);
	if (!*token)
		rc = vm_error_set(err, VM_EPARSE, 0, "nomem", "out of memory");
out:
	/* the tree holds a copy of the token: wipe it before freeing */
	if (root) {
		cJSON *tv = cJSON_GetObjectItemCaseSensitive(root, kind == AZURE_TOKEN_CLI ?
							    "accessToken" : "access_token");

		if (cJSON_IsString(tv) && tv->valuestring)
			explicit_bzero(tv->valuestring, strlen(tv->valuestring));
	}
	cJSON_Delete(root);
	return rc;
}

int azure_parse_vm_list(const char *body, void (*cb)(const char *name, void *payload),
			void *payload, char **next, struct vm_error *err)
{
	cJSON *root = json_parse(body, "the VM list", err);
	const cJSON *list, *it;
	const char *nl;

	*next = NULL;
	if (!root)
		return VM_EPARSE;
	list = cJSON_GetObjectItemCaseSensitive(root, "value");
	if (!cJSON_IsArray(list)) {
		cJSON_Delete(root);
		return vm_error_set(err, VM_EPARSE, 0, "parse", "unexpected VM list: no 'value' list");
	}
	cJSON_ArrayForEach(it, list) {
		const char *name = json_str(it, "name");
		char clean[128];

		if (!name)
			continue;
		json_clean(clean, sizeof(clean), name);
		cb(clean, payload);
	}
	nl = json_str(root, "nextLink");
	if (nl && *nl)
		*next = strdup(nl);
	cJSON_Delete(root);
	return 0;
}

int azure_terms_accepted(const char *body, char **out, int *already, struct vm_error *err)
{
	cJSON *root = json_parse(body, "the marketplace agreement", err);
	cJSON *props;
	int rc = 0;

	*out = NULL;
	*already = 0;
	if (!root)
		return VM_EPARSE;
	props = cJSON_GetObjectItemCaseSensitive(root, "properties");
	if (!cJSON_IsObject(props)) {
		rc = vm_error_set(err, VM_EPARSE, 0, "parse",
				  "unexpected marketplace agreement: no 'properties'");
		goto out;
	}
	*already = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(props, "accepted"));
	cJSON_DeleteItemFromObjectCaseSensitive(props, "accepted");
	if (!cJSON_AddTrueToObject(props, "accepted") || !(*out = cJSON_PrintUnformatted(root)))
		rc = vm_error_set(err, VM_EPARSE, 0, "nomem", "out of memory");
out:
	cJSON_Delete(root);
	return rc;
}

/* ---- ARM calls ---- */

static void azure_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int azure_retryable(long status)
{
	return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

/* Is @url on the ARM endpoint's own origin (so it may receive our token)? */
static int azure_same_origin(const struct azure *az, const char *url)
{
	size_t n = strlen(az->arm);

	return !strncasecmp(url, az->arm, n) && (url[n] == '/' || url[n] == '?' || !url[n]);
}

/*
 * One ARM request with token renewal and retries. @url is a full URL.
 * Returns 0 with a response (any status but retried ones exhausted), or an error.
 */
static int azure_call(struct azure *az, const char *method, const char *url, const char *body,
		      struct http_response *resp, struct vm_error *err)
{
	struct http_request req = { 0 };
	const char *token;
	int tries = 0, renewed = 0, rc;
	long backoff = az->backoff_ms;

	if (!azure_same_origin(az, url))
		return vm_error_set(err, VM_EPARSE, 0, "parse",
				    "refusing to send the token to '%.200s': not the ARM endpoint", url);
	for (;;) {
		rc = auth_token(az->auth, &token, err);
		if (rc)
			return rc;
		req.method = method;
		req.url = url;
		req.bearer = token;
		req.body = body;
		req.ca_bundle = az->ca_bundle;
		rc = http_request(&req, resp, err);
		tries++;
		if (rc && tries < AZURE_MAX_TRIES) {
			/* transport errors (reset, timeout) are retried like 503 */
			http_response_release(resp);
			vm_debugf("retrying after a transport error in %ldms", backoff);
			azure_sleep_ms(backoff);
			backoff = backoff * 2 > AZURE_BACKOFF_CAP_MS ? AZURE_BACKOFF_CAP_MS : backoff * 2;
			continue;
		}
		if (rc)
			return rc;
		if (resp->status == 401 && !renewed) {
			renewed = 1;
			vm_debugf("token refused (%s): renewing it once",
				  strstr(resp->www_authenticate, "expired") ||
				  strstr(resp->body, "ExpiredAuthenticationToken") ? "expired" : "401");
			auth_invalidate(az->auth);
			http_response_release(resp);
			continue;
		}
		if (azure_retryable(resp->status) && tries < AZURE_MAX_TRIES) {
			long ra = http_retry_after(resp->retry_after), wait_ms;

			if (ra >= 0) {
				wait_ms = (ra > AZURE_RETRY_AFTER_CAP_S ? AZURE_RETRY_AFTER_CAP_S : ra) * 1000;
			} else {
				/* full jitter in [backoff/2, backoff] */
				wait_ms = backoff / 2 + (backoff > 1 ? random() % (backoff / 2 + 1) : 0);
				backoff = backoff * 2 > AZURE_BACKOFF_CAP_MS ? AZURE_BACKOFF_CAP_MS :
					  backoff * 2;
			}
			vm_debugf("HTTP %ld: retrying in %ldms (try %d of %d)", resp->status, wait_ms,
				  tries + 1, AZURE_MAX_TRIES);
			http_response_release(resp);
			azure_sleep_ms(wait_ms);
			continue;
		}
		return 0;
	}
}

/* An ARM failure status -> error code and "CODE: message". */
static int azure_fail(const struct http_response *r, struct vm_error *err)
{
	char code[64] = "", msg[400] = "";
	int rc;

	if (azure_parse_error(r->body, code, sizeof(code), msg, sizeof(msg)))
		snprintf(code, sizeof(code), "HTTP%ld", r->status), snprintf(msg, sizeof(msg),
			 "the server answered HTTP %ld", r->status);
	switch (r->status) {
	case 401:
	case 403:
		rc = VM_EAUTH;
		break;
	case 404:
		rc = VM_ENOTFOUND;
		break;
	case 409:
		rc = vm_error_set(err, VM_ECONFLICT, 409, code,
				  "%s: %s (the VM is busy with another operation: wait for it "
				  "to finish, then retry)", code, msg);
		return rc;
	default:
		rc = VM_EHTTP;
	}
	return vm_error_set(err, rc, (int)r->status, code, "%s: %s", code, msg);
}

static int azure_url(struct azure *az, char **out, const char *path, const char *api)
{
	if (asprintf(out, "%s%s%sapi-version=%s", az->arm, path, strchr(path, '?') ? "&" : "?",
		     api) < 0) {
		*out = NULL;
		return -1;
	}
	return 0;
}

/* GET @path (an ARM id path) -> 200 body in @resp, else an error. */
static int azure_get(struct azure *az, const char *path, const char *api,
		     struct http_response *resp, struct vm_error *err)
{
	char *url;
	int rc;

	if (azure_url(az, &url, path, api))
		return vm_error_set(err, VM_EHTTP, 0, "nomem", "out of memory");
	rc = azure_call(az, "GET", url, NULL, resp, err);
	free(url);
	if (!rc && resp->status != 200) {
		rc = azure_fail(resp, err);
		http_response_release(resp);
	}
	return rc;
}

/*
 * A possibly long operation: send it, then poll to completion. @what names it
 * in progress messages.
 */
static int azure_op(struct azure *az, const char *what, const char *method, const char *path,
		    const char *api, const char *body, struct vm_error *err)
{
	struct http_response r = { 0 };
	char *url = NULL, poll_url[2048];
	time_t start = time(NULL);
	int rc, by_async;

	if (azure_url(az, &url, path, api))
		return vm_error_set(err, VM_EHTTP, 0, "nomem", "out of memory");
	rc = azure_call(az, method, url, body, &r, err);
	if (rc)
		goto out;
	if (r.status < 200 || r.status > 202) {
		if (!(r.status == 204 && !strcmp(method, "DELETE"))) {
			rc = azure_fail(&r, err);
			goto out;
		}
	}
	by_async = r.async_operation[0] != 0;
	if (by_async)
		snprintf(poll_url, sizeof(poll_url), "%s", r.async_operation);
	else if (r.status == 202 && r.location[0])
		snprintf(poll_url, sizeof(poll_url), "%s", r.location);
	else
		goto out;	/* done synchronously */
	for (;;) {
		long ra = http_retry_after(r.retry_after), elapsed = (long)(time(NULL) - start);

		if (elapsed > AZURE_OP_TIMEOUT_S) {
			rc = vm_error_set(err, VM_ETIMEOUT, 0, "timeout",
					  "%s did not finish within %ds", what, AZURE_OP_TIMEOUT_S);
			goto out;
		}
		vm_progress(what, "in progress", elapsed);
		azure_sleep_ms((ra >= 0 ? (ra > AZURE_RETRY_AFTER_CAP_S ? AZURE_RETRY_AFTER_CAP_S : ra) :
				AZURE_DEFAULT_POLL_S) * 1000L);
		http_response_release(&r);
		rc = azure_call(az, "GET", poll_url, NULL, &r, err);
		if (rc)
			goto out;
		if (by_async) {
			if (r.status != 200) {
				rc = azure_fail(&r, err);
				goto out;
			}
			rc = azure_parse_async_status(r.body, err);
			if (rc == 1) {
				rc = 0;
				goto out;
			}
			if (rc)
				goto out;
		} else if (r.status == 200 || r.status == 204 || r.status == 201) {
			goto out;
		} else if (r.status != 202) {
			rc = azure_fail(&r, err);
			goto out;
		}
	}
out:
	http_response_release(&r);
	free(url);
	return rc;
}

/* ---- the profile ---- */

static int azure_split_id(struct azure *az, const char *id)
{
	char sub[128], rg[128], name[128];

	if (sscanf(id, "/subscriptions/%127[^/]/resourceGroups/%127[^/]/providers/"
		   "Microsoft.Compute/virtualMachines/%127[^/\n ]", sub, rg, name) != 3 &&
	    sscanf(id, "/subscriptions/%127[^/]/resourcegroups/%127[^/]/providers/"
		   "Microsoft.Compute/virtualMachines/%127[^/\n ]", sub, rg, name) != 3)
		return -1;
	if (strspn(sub, "0123456789abcdefABCDEF-") != strlen(sub))
		return -1;
	snprintf(az->sub, sizeof(az->sub), "%s", sub);
	snprintf(az->rg, sizeof(az->rg), "%s", rg);
	snprintf(az->name, sizeof(az->name), "%s", name);
	snprintf(az->vm_id, sizeof(az->vm_id),
		 "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachines/%s",
		 sub, rg, name);
	return 0;
}

/* The classic workflow's .vm-id in ./infra/ or ./; 1 found, 0 none, -1 bad. */
static int azure_classic_id(struct azure *az, char *file, size_t len)
{
	static const char *const dirs[] = { "infra/", "" };
	char buf[AZURE_ID_MAX];
	size_t i;

	for (i = 0; i < 2; i++) {
		FILE *f;
		size_t n;

		snprintf(file, len, "%s.vm-id", dirs[i]);
		f = fopen(file, "r");
		if (!f)
			continue;
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = 0;
		buf[strcspn(buf, "\r\n")] = 0;
		if (azure_split_id(az, buf))
			return -1;
		snprintf(az->ipfile, sizeof(az->ipfile), "%s.vm-ip", dirs[i]);
		return 1;
	}
	return 0;
}

static void azure_cloud_endpoints(const char *cloud, const char **arm, const char **authority)
{
	*arm = "https://management.azure.com";
	*authority = "https://login.microsoftonline.com";
	if (!cloud)
		return;
	if (!strcasecmp(cloud, "AzureChinaCloud")) {
		*arm = "https://management.chinacloudapi.cn";
		*authority = "https://login.chinacloudapi.cn";
	} else if (!strcasecmp(cloud, "AzureUSGovernment")) {
		*arm = "https://management.usgovcloudapi.net";
		*authority = "https://login.microsoftonline.us";
	}
}

static void azure_close(struct vm *vm)
{
	struct azure *az = azure_of(vm);

	if (!az)
		return;
	auth_free(az->auth);
	free(az->arm);
	free(az->ca_bundle);
	free(az);
	vm_set_data(vm, NULL);
}

static int azure_open(struct vm *vm)
{
	struct vm_error *oe = vm_open_err(vm);
	const char *id = vm_profile_get(vm, "vm_id"), *sub = vm_profile_get(vm, "subscription");
	const char *rg = vm_profile_get(vm, "resource_group"), *name = vm_profile_get(vm, "vm");
	const char *arm, *authority, *ca = vm_profile_get(vm, "ca_bundle");
	const char *bo = getenv("WAKEFS_ARM_BACKOFF_MS");
	char file[64];
	struct azure *az = calloc(1, sizeof(*az));
	int rc = 0;

	if (!az)
		return vm_error_set(oe, VM_ECONFIG, 0, "nomem", "out of memory");
	vm_set_data(vm, az);
	azure_cloud_endpoints(vm_profile_get(vm, "cloud"), &arm, &authority);
	if (vm_profile_get(vm, "arm_endpoint"))
		arm = vm_profile_get(vm, "arm_endpoint");
	if (vm_profile_get(vm, "authority_host"))
		authority = vm_profile_get(vm, "authority_host");
	az->backoff_ms = bo && atol(bo) > 0 ? atol(bo) : 1000;
	az->arm = strdup(arm);
	if (ca)
		az->ca_bundle = config_expand_home(ca);
	if (!az->arm || (ca && !az->ca_bundle)) {
		rc = vm_error_set(oe, VM_ECONFIG, 0, "nomem", "out of memory");
		goto out;
	}
	while (strlen(az->arm) > 8 && az->arm[strlen(az->arm) - 1] == '/')
		az->arm[strlen(az->arm) - 1] = 0;
	if (id) {
		if (azure_split_id(az, id))
			rc = vm_error_set(oe, VM_ECONFIG, 0, "config",
					  "%s: bad vm_id '%s' (expected /subscriptions/ID/"
					  "resourceGroups/RG/providers/Microsoft.Compute/"
					  "virtualMachines/NAME)", vm_profile_name(vm), id);
	} else if (sub && rg && name) {
		char full[AZURE_ID_MAX];

		snprintf(full, sizeof(full), "/subscriptions/%s/resourceGroups/%s/providers/"
			 "Microsoft.Compute/virtualMachines/%s", sub, rg, name);
		if (strpbrk(rg, "/?#") || strpbrk(name, "/?#") || azure_split_id(az, full))
			rc = vm_error_set(oe, VM_ECONFIG, 0, "config",
					  "profile [%s]: bad subscription, resource_group or vm "
					  "(expected a subscription GUID and plain names)",
					  vm_profile_name(vm));
	} else {
		int c = azure_classic_id(az, file, sizeof(file));

		if (c < 0)
			rc = vm_error_set(oe, VM_ECONFIG, 0, "config",
					  "%s does not hold a VM resource id", file);
		else if (c == 0)
			rc = vm_error_set(oe, VM_ECONFIG, 0, "config",
					  "profile [%s] names no VM: set subscription, resource_group "
					  "and vm, or vm_id, or run from a directory with .vm-id",
					  vm_profile_name(vm));
	}
	if (!rc && auth_new(&az->auth, az->arm, vm_profile_get(vm, "authority_host") ?
			    authority : (getenv("AZURE_AUTHORITY_HOST") ? NULL : authority),
			    az->ca_bundle))
		rc = vm_error_set(oe, VM_ECONFIG, 0, "nomem", "out of memory");
out:
	if (rc)
		azure_close(vm);
	return rc;
}

const char *azure_vm_id(struct vm *vm)
{
	return azure_of(vm)->vm_id;
}

/* Prefix err->message: @fmt's last conversion is the old message. */
static void azure_wrap(struct vm_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void azure_wrap(struct vm_error *err, const char *fmt, ...)
{
	char msg[sizeof(err->message)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	memcpy(err->message, msg, sizeof(msg));
}

static int azure_prefix(struct vm *vm, const char *what, int rc, struct vm_error *err)
{
	if (rc && err)
		azure_wrap(err, "%s '%s' failed: %s", what, azure_of(vm)->name, err->message);
	return rc;
}

static int azure_start(struct vm *vm, struct vm_error *err)
{
	struct azure *az = azure_of(vm);
	char path[AZURE_ID_MAX + 32];

	snprintf(path, sizeof(path), "%s/start", az->vm_id);
	return azure_prefix(vm, "start", azure_op(az, "start", "POST", path, API_COMPUTE, NULL,
						  err), err);
}

static int azure_stop(struct vm *vm, int power_off, struct vm_error *err)
{
	struct azure *az = azure_of(vm);
	char path[AZURE_ID_MAX + 32];
	const char *what = power_off ? "power off" : "deallocate";

	snprintf(path, sizeof(path), "%s/%s", az->vm_id, power_off ? "powerOff" : "deallocate");
	return azure_prefix(vm, what, azure_op(az, what, "POST", path, API_COMPUTE, NULL, err),
			    err);
}

static int azure_status(struct vm *vm, struct vm_status *st, struct vm_error *err)
{
	struct azure *az = azure_of(vm);
	struct http_response r = { 0 };
	char path[AZURE_ID_MAX + 32];
	int rc;

	snprintf(path, sizeof(path), "%s/instanceView", az->vm_id);
	rc = azure_get(az, path, API_COMPUTE, &r, err);
	if (!rc)
		rc = azure_parse_power(r.body, st, err);
	http_response_release(&r);
	return azure_prefix(vm, "status of", rc, err);
}

/* An ARM id from a response must be a plain path before we append it to our endpoint. */
static int azure_id_ok(const char *id)
{
	return id[0] == '/' && !strpbrk(id, "?#\\ ") && !strstr(id, "..");
}

static int azure_resolve(struct azure *az, char *host, size_t len, char *location,
			 size_t loclen, struct vm_error *err)
{
	struct http_response r = { 0 };
	char nic[AZURE_ID_MAX], pip[AZURE_ID_MAX];
	int rc;

	rc = azure_get(az, az->vm_id, API_COMPUTE, &r, err);
	if (!rc)
		rc = azure_parse_vm_nic(r.body, nic, sizeof(nic), location, loclen, err);
	http_response_release(&r);
	if (rc || !host)
		return rc;
	if (!azure_id_ok(nic))
		return vm_error_set(err, VM_EPARSE, 0, "parse", "the VM names a malformed NIC id");
	rc = azure_get(az, nic, API_NETWORK, &r, err);
	if (!rc)
		rc = azure_parse_nic_pip(r.body, pip, sizeof(pip), err);
	http_response_release(&r);
	if (rc)
		return rc;
	if (!azure_id_ok(pip))
		return vm_error_set(err, VM_EPARSE, 0, "parse", "the NIC names a malformed public IP id");
	rc = azure_get(az, pip, API_NETWORK, &r, err);
	if (!rc)
		rc = azure_parse_pip_address(r.body, host, len, err);
	http_response_release(&r);
	return rc;
}

static void azure_write_file(const char *path, const char *text)
{
	char tmp[4200];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(f, "%s\n", text);
	if (fclose(f) == 0)
		rename(tmp, path);
	else
		unlink(tmp);
}

static int azure_address(struct vm *vm, char *host, size_t len, struct vm_error *err)
{
	struct azure *az = azure_of(vm);
	int rc = azure_resolve(az, host, len, NULL, 0, err);

	if (!rc && az->ipfile[0])
		azure_write_file(az->ipfile, host);
	return azure_prefix(vm, "address of", rc, err);
}

const struct vm_provider vm_provider_azure = {
	.name = "azure",
	.open = azure_open,
	.start = azure_start,
	.stop = azure_stop,
	.status = azure_status,
	.address = azure_address,
	.close = azure_close,
};

/* ---- list ---- */

struct azure_list_acc {
	struct azure_vm_info *v;
	size_t n, cap;
	int nomem;
};

static void azure_list_add(const char *name, void *p)
{
	struct azure_list_acc *a = p;

	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 8;
		struct azure_vm_info *n = realloc(a->v, cap * sizeof(*n));

		if (!n) {
			a->nomem = 1;
			return;
		}
		a->v = n;
		a->cap = cap;
	}
	memset(&a->v[a->n], 0, sizeof(a->v[0]));
	snprintf(a->v[a->n].name, sizeof(a->v[0].name), "%s", name);
	a->n++;
}

int azure_list(struct vm *vm, struct azure_vm_info **out, size_t *n, struct vm_error *err)
{
	struct azure *az = azure_of(vm);
	struct azure_list_acc acc = { 0 };
	struct http_response r = { 0 };
	char path[600], *next = NULL;
	int rc, pages = 0;
	size_t i;

	*out = NULL;
	*n = 0;
	snprintf(path, sizeof(path), "/subscriptions/%s/resourceGroups/%s/providers/"
		 "Microsoft.Compute/virtualMachines", az->sub, az->rg);
	rc = azure_get(az, path, API_COMPUTE, &r, err);
	while (!rc) {
		rc = azure_parse_vm_list(r.body, azure_list_add, &acc, &next, err);
		http_response_release(&r);
		if (rc || !next || ++pages > 100)
			break;
		rc = azure_call(az, "GET", next, NULL, &r, err);
		if (!rc && r.status != 200) {
			rc = azure_fail(&r, err);
			http_response_release(&r);
		}
		free(next);
		next = NULL;
	}
	free(next);
	if (!rc && acc.nomem)
		rc = vm_error_set(err, VM_EPARSE, 0, "nomem", "out of memory");
	for (i = 0; !rc && i < acc.n; i++) {
		struct vm_status st;
		char vp[AZURE_ID_MAX];

		snprintf(vp, sizeof(vp), "/subscriptions/%s/resourceGroups/%s/providers/"
			 "Microsoft.Compute/virtualMachines/%s/instanceView", az->sub, az->rg,
			 acc.v[i].name);
		if (strpbrk(acc.v[i].name, "/?#")) {
			acc.v[i].power = VM_POWER_UNKNOWN;
			continue;
		}
		rc = azure_get(az, vp, API_COMPUTE, &r, err);
		if (!rc)
			rc = azure_parse_power(r.body, &st, err);
		http_response_release(&r);
		acc.v[i].power = rc ? VM_POWER_UNKNOWN : st.power;
	}
	if (rc) {
		free(acc.v);
		if (err) {
			azure_wrap(err, "list of resource group '%s' failed: %s", az->rg, err->message);
		}
		return rc;
	}
	*out = acc.v;
	*n = acc.n;
	return 0;
}

/* ---- create / delete ---- */

/* The profile's image "publisher:offer:sku:version" split in four. */
static int azure_image(struct vm *vm, char parts[4][128], struct vm_error *err)
{
	const char *img = vm_profile_get(vm, "image");

	if (!img)
		img = "microsoft-dsvm:ubuntu-2204:2204-gen2:latest";
	if (sscanf(img, "%127[^:]:%127[^:]:%127[^:]:%127s", parts[0], parts[1], parts[2],
		   parts[3]) != 4 || strpbrk(img, "/?# "))
		return vm_error_set(err, VM_ECONFIG, 0, "config",
				    "bad image '%s' (expected PUBLISHER:OFFER:SKU:VERSION)", img);
	return 0;
}

/* The SSH public key text from ssh_public_key (a file) or the usual defaults. */
static char *azure_ssh_key(struct vm *vm, struct vm_error *err)
{
	static const char *const defaults[] = { "~/.ssh/id_ed25519.pub", "~/.ssh/id_ecdsa.pub",
						"~/.ssh/id_rsa.pub" };
	const char *conf = vm_profile_get(vm, "ssh_public_key");
	char buf[16384];
	size_t i;

	for (i = 0; i < (conf ? 1 : 3); i++) {
		char *path = config_expand_home(conf ? conf : defaults[i]);
		FILE *f = path ? fopen(path, "r") : NULL;
		size_t n;

		free(path);
		if (!f)
			continue;
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = 0;
		buf[strcspn(buf, "\r\n")] = 0;
		if (!strncmp(buf, "ssh-", 4) || !strncmp(buf, "ecdsa-", 6))
			return strdup(buf);
	}
	vm_error_set(err, VM_ECONFIG, 0, "config",
		     conf ? "cannot read an SSH public key from '%s' (set ssh_public_key)" :
		     "no SSH public key found%s (set ssh_public_key = FILE.pub)", conf ? conf : "");
	return NULL;
}

static char *azure_deployment_body(struct vm *vm, const char *location, const char *key,
				   struct vm_error *err)
{
	const char *size = vm_profile_get(vm, "vm_size"), *admin = vm_profile_get(vm, "admin_user");
	char img[4][128];
	cJSON *root = NULL, *props, *params, *tmpl;
	char *out = NULL;

	if (azure_image(vm, img, err))
		return NULL;
	if (!admin)
		admin = vm_profile_get(vm, "user") ? vm_profile_get(vm, "user") : "azureuser";
	tmpl = cJSON_Parse(azure_template);
	root = cJSON_CreateObject();
	props = cJSON_AddObjectToObject(root, "properties");
	if (!tmpl || !props) {
		cJSON_Delete(tmpl);
		vm_error_set(err, VM_EPARSE, 0, "template", "the built-in VM template is not valid JSON");
		goto out;
	}
	cJSON_AddStringToObject(props, "mode", "Incremental");
	cJSON_AddItemToObject(props, "template", tmpl);
	params = cJSON_AddObjectToObject(props, "parameters");
#define PARAM(k, v) cJSON_AddStringToObject(cJSON_AddObjectToObject(params, k), "value", v)
	PARAM("vmName", azure_of(vm)->name);
	PARAM("location", location);
	PARAM("vmSize", size ? size : "Standard_NC4as_T4_v3");
	PARAM("adminUsername", admin);
	PARAM("sshPublicKey", key);
	PARAM("imagePublisher", img[0]);
	PARAM("imageOffer", img[1]);
	PARAM("imageSku", img[2]);
	PARAM("imageVersion", img[3]);
#undef PARAM
	out = cJSON_PrintUnformatted(root);
	if (!out)
		vm_error_set(err, VM_EPARSE, 0, "nomem", "out of memory");
out:
	cJSON_Delete(root);
	return out;
}

int azure_create(struct vm *vm, const char *dir, struct vm_error *err)
{
	struct azure *az = azure_of(vm);
	const char *location = vm_profile_get(vm, "location");
	char path[600], *body = NULL, *key = NULL, ip[64] = "", file[4200];
	cJSON *rg = NULL;
	int rc;

	if (!location)
		location = "eastus";
	key = azure_ssh_key(vm, err);
	if (!key) {
		rc = VM_ECONFIG;
		goto out;
	}
	rg = cJSON_CreateObject();
	cJSON_AddStringToObject(rg, "location", location);
	body = cJSON_PrintUnformatted(rg);
	snprintf(path, sizeof(path), "/subscriptions/%s/resourcegroups/%s", az->sub, az->rg);
	rc = azure_op(az, "create resource group", "PUT", path, API_RESOURCES, body, err);
	free(body);
	body = NULL;
	if (rc)
		goto out;
	body = azure_deployment_body(vm, location, key, err);
	if (!body) {
		rc = err && err->code[0] ? VM_ECONFIG : VM_EPARSE;
		if (err && !strcmp(err->code, "template"))
			rc = VM_EPARSE;
		goto out;
	}
	snprintf(path, sizeof(path), "/subscriptions/%s/resourcegroups/%s/providers/"
		 "Microsoft.Resources/deployments/wakefs-%s", az->sub, az->rg, az->name);
	rc = azure_op(az, "deployment", "PUT", path, API_RESOURCES, body, err);
	if (rc)
		goto out;
	snprintf(file, sizeof(file), "%s/.vm-id", dir);
	azure_write_file(file, az->vm_id);
	if (azure_resolve(az, ip, sizeof(ip), NULL, 0, NULL) == 0) {
		snprintf(file, sizeof(file), "%s/.vm-ip", dir);
		azure_write_file(file, ip);
	}
out:
	cJSON_Delete(rg);
	free(body);
	free(key);
	return azure_prefix(vm, "create", rc, err);
}

int azure_delete(struct vm *vm, struct vm_error *err)
{
	struct azure *az = azure_of(vm);
	char path[600];
	int rc;

	snprintf(path, sizeof(path), "/subscriptions/%s/resourcegroups/%s", az->sub, az->rg);
	rc = azure_op(az, "delete", "DELETE", path, API_RESOURCES, NULL, err);
	if (rc && err) {
		azure_wrap(err, "delete of resource group '%s' failed: %s", az->rg, err->message);
	}
	return rc;
}

int azure_accept_terms(struct vm *vm, int *already, struct vm_error *err)
{
	struct azure *az = azure_of(vm);
	struct http_response r = { 0 };
	char img[4][128], path[900], *body = NULL, *url = NULL;
	int rc;

	*already = 0;
	rc = azure_image(vm, img, err);
	if (rc)
		return rc;
	snprintf(path, sizeof(path), "/subscriptions/%s/providers/Microsoft.MarketplaceOrdering/"
		 "offerTypes/virtualmachine/publishers/%s/offers/%s/plans/%s/agreements/current",
		 az->sub, img[0], img[1], img[2]);
	rc = azure_get(az, path, API_MARKETPLACE, &r, err);
	if (!rc)
		rc = azure_terms_accepted(r.body, &body, already, err);
	http_response_release(&r);
	if (rc || *already)
		goto out;
	if (azure_url(az, &url, path, API_MARKETPLACE)) {
		rc = vm_error_set(err, VM_EHTTP, 0, "nomem", "out of memory");
		goto out;
	}
	rc = azure_call(az, "PUT", url, body, &r, err);
	if (!rc && r.status != 200 && r.status != 201)
		rc = azure_fail(&r, err);
	http_response_release(&r);
out:
	if (rc && err) {
		azure_wrap(err, "accepting the terms of '%s:%s:%s' failed: %s", img[0], img[1],
			   img[2], err->message);
	}
	free(url);
	cJSON_free(body);
	return rc;
}

int azure_autoshutdown(struct vm *vm, const char *hhmm, const char *tz, struct vm_error *err)
{
	struct azure *az = azure_of(vm);
	struct http_response r = { 0 };
	char path[700], location[128] = "", *url = NULL, *body = NULL;
	cJSON *root = NULL, *props;
	int rc;

	snprintf(path, sizeof(path), "/subscriptions/%s/resourceGroups/%s/providers/"
		 "Microsoft.DevTestLab/schedules/shutdown-computevm-%s", az->sub, az->rg, az->name);
	if (azure_url(az, &url, path, API_DEVTESTLAB)) {
		rc = vm_error_set(err, VM_EHTTP, 0, "nomem", "out of memory");
		goto out;
	}
	if (!hhmm) {
		rc = azure_call(az, "DELETE", url, NULL, &r, err);
		if (!rc && r.status != 200 && r.status != 204)
			rc = azure_fail(&r, err);
		goto out;
	}
	rc = azure_resolve(az, NULL, 0, location, sizeof(location), err);
	if (rc)
		goto out;
	root = cJSON_CreateObject();
	cJSON_AddStringToObject(root, "location", location);
	props = cJSON_AddObjectToObject(root, "properties");
	cJSON_AddStringToObject(props, "status", "Enabled");
	cJSON_AddStringToObject(props, "taskType", "ComputeVmShutdownTask");
	cJSON_AddStringToObject(cJSON_AddObjectToObject(props, "dailyRecurrence"), "time", hhmm);
	cJSON_AddStringToObject(props, "timeZoneId", tz ? tz : "UTC");
	cJSON_AddStringToObject(props, "targetResourceId", az->vm_id);
	cJSON_AddStringToObject(cJSON_AddObjectToObject(props, "notificationSettings"), "status",
				"Disabled");
	body = cJSON_PrintUnformatted(root);
	rc = azure_call(az, "PUT", url, body, &r, err);
	if (!rc && r.status != 200 && r.status != 201)
		rc = azure_fail(&r, err);
out:
	http_response_release(&r);
	cJSON_Delete(root);
	cJSON_free(body);
	free(url);
	return azure_prefix(vm, "auto-shutdown of", rc, err);
}
