/*
 * vmctl/auth.c: access tokens for ARM from the first credential source that
 * is configured (service principal, Azure CLI, managed identity).
 *
 * Choice: a service principal is used when its three variables are set (a
 * wrong secret is then an error, not a reason to try something else); else
 * the Azure CLI when `az` runs; else IMDS. If both the CLI and IMDS fail, the
 * CLI's error is reported since it is the one the user can fix. Responses are
 * parsed by azure.c (the only file that knows JSON). Secrets and tokens are
 * wiped from memory when dropped and never passed to the debug log.
 */
#include "auth.h"
#include "azure.h"
#include "http.h"
#include "proc.h"
#include "provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUTH_DEFAULT_AUTHORITY "https://login.microsoftonline.com"
#define AUTH_DEFAULT_IMDS "http://169.254.169.254"
#define AUTH_MARGIN_S 120

struct auth {
	char *arm;		/* resource, no trailing slash */
	char *authority;	/* no trailing slash */
	char *ca_bundle;
	char *token;		/* cached; wiped on drop */
	time_t expires;
	const char *source;
};

static char *auth_strip(const char *s)
{
	char *c = strdup(s);
	size_t n;

	if (!c)
		return NULL;
	n = strlen(c);
	while (n && c[n - 1] == '/')
		c[--n] = 0;
	return c;
}

int auth_new(struct auth **out, const char *arm, const char *authority, const char *ca_bundle)
{
	const char *env = getenv("AZURE_AUTHORITY_HOST");
	struct auth *a = calloc(1, sizeof(*a));

	*out = NULL;
	if (!a)
		return VM_EAUTH;
	if (env && *env)
		authority = env;
	if (!authority || !*authority)
		authority = AUTH_DEFAULT_AUTHORITY;
	a->arm = auth_strip(arm);
	a->authority = auth_strip(authority);
	a->ca_bundle = ca_bundle ? strdup(ca_bundle) : NULL;
	if (!a->arm || !a->authority || (ca_bundle && !a->ca_bundle)) {
		auth_free(a);
		return VM_EAUTH;
	}
	*out = a;
	return 0;
}

static void auth_wipe(char **s)
{
	if (*s) {
		explicit_bzero(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

void auth_invalidate(struct auth *a)
{
	if (a) {
		auth_wipe(&a->token);
		a->expires = 0;
	}
}

void auth_free(struct auth *a)
{
	if (!a)
		return;
	auth_invalidate(a);
	free(a->arm);
	free(a->authority);
	free(a->ca_bundle);
	free(a);
}

const char *auth_source(const struct auth *a)
{
	return a && a->source ? a->source : "none";
}

/* Turn a token endpoint's failure into a message that says what to fix. */
static int auth_http_fail(const char *who, const struct http_response *r, struct vm_error *err)
{
	char code[64] = "", msg[400] = "";

	if (azure_parse_error(r->body, code, sizeof(code), msg, sizeof(msg)) == 0)
		return vm_error_set(err, VM_EAUTH, (int)r->status, code, "%s: %s: %s", who, code,
				    msg);
	return vm_error_set(err, VM_EAUTH, (int)r->status, "http",
			    "%s: the token endpoint answered HTTP %ld", who, r->status);
}

static int auth_service_principal(struct auth *a, const char *tenant, const char *client,
				  const char *secret, struct vm_error *err)
{
	char *url = NULL, *body = NULL, *e_client = NULL, *e_secret = NULL, *e_scope = NULL;
	char *scope = NULL;
	struct http_response r = { 0 };
	struct http_request req = { 0 };
	int rc;

	if (asprintf(&url, "%s/%s/oauth2/v2.0/token", a->authority, tenant) < 0)
		url = NULL;
	if (asprintf(&scope, "%s/.default", a->arm) < 0)
		scope = NULL;
	e_client = http_escape(client);
	e_secret = http_escape(secret);
	e_scope = scope ? http_escape(scope) : NULL;
	if (!url || !e_client || !e_secret || !e_scope ||
	    asprintf(&body, "grant_type=client_credentials&client_id=%s&client_secret=%s&scope=%s",
		     e_client, e_secret, e_scope) < 0) {
		body = NULL;
		rc = vm_error_set(err, VM_EAUTH, 0, "nomem", "out of memory");
		goto out;
	}
	req.method = "POST";
	req.url = url;
	req.body = body;
	req.body_is_secret = 1;
	req.content_type = "application/x-www-form-urlencoded";
	req.ca_bundle = a->ca_bundle;
	rc = http_request(&req, &r, err);
	if (rc) {
		struct vm_error tmp = { 0 };

		if (err)
			tmp = *err;
		rc = vm_error_set(err, VM_EAUTH, 0, tmp.code, "service principal sign-in failed: %s",
				  tmp.message);
		goto out;
	}
	if (r.status != 200) {
		rc = auth_http_fail("service principal sign-in failed (check AZURE_TENANT_ID, "
				    "AZURE_CLIENT_ID, AZURE_CLIENT_SECRET)", &r, err);
		goto out;
	}
	rc = azure_parse_token(r.body, AZURE_TOKEN_AAD, &a->token, &a->expires, err);
	if (!rc)
		a->source = "service principal";
out:
	if (r.body)
		explicit_bzero(r.body, r.len);
	http_response_release(&r);
	auth_wipe(&body);
	auth_wipe(&e_secret);
	free(url);
	free(scope);
	free(e_client);
	free(e_scope);
	return rc;
}

static int auth_cli(struct auth *a, struct vm_error *err)
{
	const char *argv[] = { "az", "account", "get-access-token", "--resource", a->arm,
			       "-o", "json", NULL };
	struct proc_result res;
	char tail[300];
	int rc;

	rc = proc_run(argv, NULL, 60000, &res);
	if (rc) {
		rc = vm_error_set(err, VM_EAUTH, 0, "nocli", "the Azure CLI ('az') is not installed");
		goto out;
	}
	if (res.timed_out || res.exit_code) {
		proc_tail(res.err, tail, sizeof(tail));
		rc = vm_error_set(err, VM_EAUTH, 0, "cli",
				  "the Azure CLI gave no token (run 'az login'): %s",
				  tail[0] ? tail : res.timed_out ? "timed out" : "no message");
		goto out;
	}
	rc = azure_parse_token(res.out, AZURE_TOKEN_CLI, &a->token, &a->expires, err);
	if (rc)
		goto out;
	if (a->expires && a->expires <= time(NULL)) {
		auth_invalidate(a);
		rc = vm_error_set(err, VM_EAUTH, 0, "cli",
				  "the Azure CLI's token has expired (run 'az login' again)");
		goto out;
	}
	a->source = "azure cli";
out:
	if (res.out)
		explicit_bzero(res.out, res.out_len);
	proc_result_release(&res);
	return rc;
}

static int auth_imds(struct auth *a, struct vm_error *err)
{
	const char *base = getenv("WAKEFS_IMDS_ENDPOINT");
	struct http_request req = { 0 };
	struct http_response r = { 0 };
	char *url = NULL, *res = http_escape(a->arm);
	int rc;

	if (!base || !*base)
		base = AUTH_DEFAULT_IMDS;
	if (!res || asprintf(&url, "%s/metadata/identity/oauth2/token?api-version=2018-02-01"
			     "&resource=%s", base, res) < 0) {
		url = NULL;
		rc = vm_error_set(err, VM_EAUTH, 0, "nomem", "out of memory");
		goto out;
	}
	req.method = "GET";
	req.url = url;
	req.metadata_header = 1;
	req.timeout_s = 10;
	req.connect_timeout_s = 2;
	rc = http_request(&req, &r, err);
	if (rc) {
		rc = vm_error_set(err, VM_EAUTH, 0, "imds", "no managed identity (IMDS unreachable)");
		goto out;
	}
	if (r.status != 200) {
		rc = auth_http_fail("managed identity gave no token", &r, err);
		goto out;
	}
	rc = azure_parse_token(r.body, AZURE_TOKEN_IMDS, &a->token, &a->expires, err);
	if (!rc)
		a->source = "managed identity";
out:
	if (r.body)
		explicit_bzero(r.body, r.len);
	http_response_release(&r);
	free(url);
	free(res);
	return rc;
}

int auth_token(struct auth *a, const char **token, struct vm_error *err)
{
	const char *tenant = getenv("AZURE_TENANT_ID"), *client = getenv("AZURE_CLIENT_ID");
	const char *secret = getenv("AZURE_CLIENT_SECRET");
	struct vm_error cli_err = { 0 };
	int rc;

	if (a->token && (a->expires == 0 || time(NULL) < a->expires - AUTH_MARGIN_S)) {
		*token = a->token;
		return 0;
	}
	auth_invalidate(a);
	if (tenant && *tenant && client && *client && secret && *secret) {
		rc = auth_service_principal(a, tenant, client, secret, err);
		goto out;
	}
	rc = auth_cli(a, &cli_err);
	if (!rc)
		goto out;
	rc = auth_imds(a, err);
	if (rc && err) {
		if (strcmp(cli_err.code, "nocli"))
			*err = cli_err;
		else
			vm_error_set(err, VM_EAUTH, 0, "nocredentials",
				     "no Azure credentials: set AZURE_TENANT_ID, AZURE_CLIENT_ID and "
				     "AZURE_CLIENT_SECRET, or install the Azure CLI and run 'az login'");
	}
out:
	if (!rc) {
		vm_debugf("token from %s, valid for %lds", a->source, (long)(a->expires - time(NULL)));
		*token = a->token;
	}
	return rc;
}
