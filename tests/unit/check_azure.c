/*
 * tests/unit/check_azure.c: the Azure provider's response handling over the
 * recorded ARM JSON in tests/fixtures/arm/ (instance views, VM -> NIC ->
 * public IP, async operations, ARM and AAD errors, tokens, lists, marketplace
 * agreements), including malformed, truncated, wrongly typed and hostile
 * bodies: each must give a clear error, never crash. Also the helpers around
 * it: power-state names, Retry-After, the plain-http rule.
 */
#include "azure.h"
#include "http.h"
#include "provider.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *fixture(const char *name)
{
	char path[1024];
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/arm/%s", FIXTURES_DIR, name);
	f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "missing fixture %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = 0;
	fclose(f);
	return buf;
}

static const char *const all_fixtures[] = {
	"instance-view-running.json", "instance-view-deallocated.json", "instance-view-starting.json",
	"instance-view-no-power.json", "instance-view-wrong-types.json",
	"instance-view-statuses-object.json", "vm.json", "vm-no-nic.json", "nic.json",
	"nic-no-public-ip.json", "pip.json", "pip-no-address.json", "pip-hostile.json", "pip-ipv6.json",
	"async-in-progress.json", "async-succeeded.json", "async-failed.json", "async-canceled.json",
	"async-no-status.json", "error-not-found.json", "error-authorization.json",
	"error-conflict.json", "error-expired-token.json", "error-control-chars.json",
	"aad-invalid-client.json", "token-aad.json", "token-cli.json", "token-cli-old.json",
	"token-imds.json", "token-wrong-types.json", "token-with-space.json", "vm-list.json",
	"terms.json", "terms-accepted.json", "truncated.json", "not-object.json", "empty.json",
	"html-error.json", "deep-nesting.json", "huge-string.json",
};

START_TEST(test_power_state)
{
	struct vm_status st;
	struct vm_error err = { 0 };
	char *b = fixture("instance-view-running.json");

	ck_assert_int_eq(azure_parse_power(b, &st, &err), 0);
	ck_assert_int_eq(st.power, VM_POWER_RUNNING);
	ck_assert_int_eq((long)st.since, 1714979289L);	/* 2024-05-06T07:08:09Z */
	free(b);
	b = fixture("instance-view-deallocated.json");
	ck_assert_int_eq(azure_parse_power(b, &st, &err), 0);
	ck_assert_int_eq(st.power, VM_POWER_DEALLOCATED);
	free(b);
	b = fixture("instance-view-starting.json");
	ck_assert_int_eq(azure_parse_power(b, &st, &err), 0);
	ck_assert_int_eq(st.power, VM_POWER_STARTING);
	free(b);
	b = fixture("instance-view-no-power.json");
	ck_assert_int_eq(azure_parse_power(b, &st, &err), 0);
	ck_assert_int_eq(st.power, VM_POWER_UNKNOWN);
	free(b);
	/* wrongly typed entries are skipped; the one good entry still counts */
	b = fixture("instance-view-wrong-types.json");
	ck_assert_int_eq(azure_parse_power(b, &st, &err), 0);
	ck_assert_int_eq(st.power, VM_POWER_RUNNING);
	free(b);
}
END_TEST

START_TEST(test_power_malformed)
{
	static const char *const bad[] = { "truncated.json", "not-object.json", "empty.json",
					   "html-error.json", "deep-nesting.json",
					   "instance-view-statuses-object.json" };
	struct vm_status st;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vm_error err = { 0 };
		char *b = fixture(bad[i]);

		ck_assert_int_eq(azure_parse_power(b, &st, &err), VM_EPARSE);
		ck_assert_msg(strstr(err.message, "instance view") != NULL, "%s: '%s'", bad[i],
			      err.message);
		free(b);
	}
	ck_assert_int_eq(azure_parse_power(NULL, &st, NULL), VM_EPARSE);
}
END_TEST

START_TEST(test_address_chain)
{
	struct vm_error err = { 0 };
	char id[1024], loc[64], ip[64];
	char *b = fixture("vm.json");

	ck_assert_int_eq(azure_parse_vm_nic(b, id, sizeof(id), loc, sizeof(loc), &err), 0);
	ck_assert_str_eq(id, "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/"
			 "rg1/providers/Microsoft.Network/networkInterfaces/dsvm-nic");	/* primary */
	ck_assert_str_eq(loc, "westeurope");
	free(b);
	b = fixture("nic.json");
	ck_assert_int_eq(azure_parse_nic_pip(b, id, sizeof(id), &err), 0);
	ck_assert_ptr_nonnull(strstr(id, "/publicIPAddresses/dsvm-ip"));
	free(b);
	b = fixture("pip.json");
	ck_assert_int_eq(azure_parse_pip_address(b, ip, sizeof(ip), &err), 0);
	ck_assert_str_eq(ip, "20.51.3.77");
	free(b);
	b = fixture("pip-ipv6.json");
	ck_assert_int_eq(azure_parse_pip_address(b, ip, sizeof(ip), &err), 0);
	ck_assert_str_eq(ip, "2001:db8::7");
	free(b);
}
END_TEST

START_TEST(test_address_missing)
{
	struct vm_error err = { 0 };
	char id[1024], ip[64];
	char *b = fixture("vm-no-nic.json");

	ck_assert_int_eq(azure_parse_vm_nic(b, id, sizeof(id), NULL, 0, &err), VM_EPARSE);
	ck_assert_ptr_nonnull(strstr(err.message, "no network interface"));
	free(b);
	b = fixture("nic-no-public-ip.json");
	ck_assert_int_eq(azure_parse_nic_pip(b, id, sizeof(id), &err), VM_ENOTFOUND);
	ck_assert_ptr_nonnull(strstr(err.message, "no public IP address"));
	free(b);
	b = fixture("pip-no-address.json");
	ck_assert_int_eq(azure_parse_pip_address(b, ip, sizeof(ip), &err), VM_ENOTFOUND);
	ck_assert_ptr_nonnull(strstr(err.message, "start it first"));
	free(b);
	/* an address that could smuggle shell or ssh options is rejected */
	b = fixture("pip-hostile.json");
	ck_assert_int_eq(azure_parse_pip_address(b, ip, sizeof(ip), &err), VM_EPARSE);
	ck_assert_ptr_nonnull(strstr(err.message, "malformed address"));
	free(b);
	/* too small a buffer is an error, not a truncated id */
	b = fixture("nic.json");
	ck_assert_int_eq(azure_parse_nic_pip(b, id, 10, &err), VM_ENOTFOUND);
	free(b);
}
END_TEST

START_TEST(test_async)
{
	struct vm_error err = { 0 };
	char *b = fixture("async-in-progress.json");

	ck_assert_int_eq(azure_parse_async_status(b, &err), 0);
	free(b);
	b = fixture("async-succeeded.json");
	ck_assert_int_eq(azure_parse_async_status(b, &err), 1);
	free(b);
	b = fixture("async-failed.json");
	ck_assert_int_eq(azure_parse_async_status(b, &err), VM_EHTTP);
	ck_assert_str_eq(err.code, "AllocationFailed");
	ck_assert_str_eq(err.message, "AllocationFailed: Allocation failed. We do not have sufficient "
			 "capacity for the requested VM size in this region.");
	free(b);
	b = fixture("async-canceled.json");
	ck_assert_int_eq(azure_parse_async_status(b, &err), VM_EHTTP);
	ck_assert_str_eq(err.code, "Canceled");
	free(b);
	b = fixture("async-no-status.json");
	ck_assert_int_eq(azure_parse_async_status(b, &err), VM_EPARSE);
	ck_assert_ptr_nonnull(strstr(err.message, "no 'status'"));
	free(b);
	b = fixture("truncated.json");
	ck_assert_int_eq(azure_parse_async_status(b, &err), VM_EPARSE);
	free(b);
}
END_TEST

START_TEST(test_errors)
{
	char code[64], msg[400];
	char *b = fixture("error-not-found.json");

	ck_assert_int_eq(azure_parse_error(b, code, sizeof(code), msg, sizeof(msg)), 0);
	ck_assert_str_eq(code, "ResourceNotFound");
	ck_assert_ptr_nonnull(strstr(msg, "was not found"));
	free(b);
	b = fixture("aad-invalid-client.json");
	ck_assert_int_eq(azure_parse_error(b, code, sizeof(code), msg, sizeof(msg)), 0);
	ck_assert_str_eq(code, "invalid_client");
	ck_assert_str_eq(msg, "AADSTS7000215: Invalid client secret provided.");
	free(b);
	/* terminal escapes and newlines from a server never reach the user's terminal */
	b = fixture("error-control-chars.json");
	ck_assert_int_eq(azure_parse_error(b, code, sizeof(code), msg, sizeof(msg)), 0);
	ck_assert_str_eq(code, "Bad[31mCode");
	ck_assert_str_eq(msg, "line1 line2]0;pwned");
	free(b);
	b = fixture("huge-string.json");
	ck_assert_int_eq(azure_parse_error(b, code, sizeof(code), msg, sizeof(msg)), 0);
	ck_assert_uint_eq(strlen(code), sizeof(code) - 1);
	ck_assert_uint_eq(strlen(msg), sizeof(msg) - 1);
	free(b);
	b = fixture("html-error.json");
	ck_assert_int_eq(azure_parse_error(b, code, sizeof(code), msg, sizeof(msg)), -1);
	free(b);
	ck_assert_int_eq(azure_parse_error(NULL, code, sizeof(code), msg, sizeof(msg)), -1);
}
END_TEST

START_TEST(test_tokens)
{
	struct vm_error err = { 0 };
	char *tok;
	time_t exp, now = time(NULL);
	char *b = fixture("token-aad.json");

	ck_assert_int_eq(azure_parse_token(b, AZURE_TOKEN_AAD, &tok, &exp, &err), 0);
	ck_assert_str_eq(tok, "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.payload.sig");
	ck_assert(exp >= now + 3590 && exp <= now + 3700);
	free(tok);
	free(b);
	b = fixture("token-cli.json");
	ck_assert_int_eq(azure_parse_token(b, AZURE_TOKEN_CLI, &tok, &exp, &err), 0);
	ck_assert_str_eq(tok, "cli-token-value");
	ck_assert_int_eq((long)exp, 1893553445L);	/* expires_on preferred */
	free(tok);
	free(b);
	b = fixture("token-cli-old.json");	/* older CLIs: expiresOn, local time */
	ck_assert_int_eq(azure_parse_token(b, AZURE_TOKEN_CLI, &tok, &exp, &err), 0);
	ck_assert(exp > 1893000000L && exp < 1894000000L);
	free(tok);
	free(b);
	b = fixture("token-imds.json");
	ck_assert_int_eq(azure_parse_token(b, AZURE_TOKEN_IMDS, &tok, &exp, &err), 0);
	ck_assert_str_eq(tok, "mi-token-value");
	ck_assert_int_eq((long)exp, 1893553445L);
	free(tok);
	free(b);
}
END_TEST

START_TEST(test_tokens_bad)
{
	static const char *const bad[] = { "token-wrong-types.json", "token-with-space.json",
					   "truncated.json", "empty.json", "not-object.json",
					   "aad-invalid-client.json" };
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vm_error err = { 0 };
		char *tok = (char *)1, *b = fixture(bad[i]);
		time_t exp;

		ck_assert_int_eq(azure_parse_token(b, AZURE_TOKEN_AAD, &tok, &exp, &err), VM_EPARSE);
		ck_assert_ptr_null(tok);
		ck_assert_msg(err.message[0], "%s: no message", bad[i]);
		free(b);
	}
}
END_TEST

static void collect(const char *name, void *p)
{
	char *acc = p;

	strcat(acc, name);
	strcat(acc, ",");
}

START_TEST(test_vm_list)
{
	struct vm_error err = { 0 };
	char names[256] = "", *next;
	char *b = fixture("vm-list.json");

	ck_assert_int_eq(azure_parse_vm_list(b, collect, names, &next, &err), 0);
	ck_assert_str_eq(names, "dsvm,gpu2,");
	ck_assert_str_eq(next, "https://management.azure.com/next?page=2");
	free(next);
	free(b);
	b = fixture("instance-view-running.json");
	ck_assert_int_eq(azure_parse_vm_list(b, collect, names, &next, &err), VM_EPARSE);
	ck_assert_ptr_null(next);
	free(b);
}
END_TEST

START_TEST(test_terms)
{
	struct vm_error err = { 0 };
	char *out;
	int already;
	char *b = fixture("terms.json");

	ck_assert_int_eq(azure_terms_accepted(b, &out, &already, &err), 0);
	ck_assert_int_eq(already, 0);
	ck_assert_ptr_nonnull(strstr(out, "\"accepted\":true"));
	ck_assert_ptr_nonnull(strstr(out, "\"signature\":\"SIG\""));	/* the rest is kept */
	free(out);
	free(b);
	b = fixture("terms-accepted.json");
	ck_assert_int_eq(azure_terms_accepted(b, &out, &already, &err), 0);
	ck_assert_int_eq(already, 1);
	free(out);
	free(b);
	b = fixture("not-object.json");
	ck_assert_int_eq(azure_terms_accepted(b, &out, &already, &err), VM_EPARSE);
	free(b);
}
END_TEST

/* Every handler over every fixture: any answer is fine, a crash or leak is not. */
START_TEST(test_every_handler_every_fixture)
{
	size_t i;

	for (i = 0; i < sizeof(all_fixtures) / sizeof(all_fixtures[0]); i++) {
		struct vm_error err;
		struct vm_status st;
		char buf[1024], loc[64], code[64], msg[400], names[4096] = "", *tok, *next, *out;
		char *b = fixture(all_fixtures[i]);
		time_t exp;
		int already;

		azure_parse_power(b, &st, &err);
		azure_parse_vm_nic(b, buf, sizeof(buf), loc, sizeof(loc), &err);
		azure_parse_nic_pip(b, buf, sizeof(buf), &err);
		azure_parse_pip_address(b, buf, sizeof(buf), &err);
		azure_parse_async_status(b, &err);
		azure_parse_error(b, code, sizeof(code), msg, sizeof(msg));
		for (int k = AZURE_TOKEN_AAD; k <= AZURE_TOKEN_IMDS; k++) {
			if (azure_parse_token(b, (enum azure_token_kind)k, &tok, &exp, &err) == 0)
				free(tok);
		}
		if (azure_parse_vm_list(b, collect, names, &next, &err) == 0)
			free(next);
		names[0] = 0;
		if (azure_terms_accepted(b, &out, &already, &err) == 0)
			free(out);
		free(b);
	}
}
END_TEST

START_TEST(test_power_names)
{
	ck_assert_str_eq(vm_power_name(VM_POWER_DEALLOCATED), "deallocated");
	ck_assert_int_eq(vm_power_parse("PowerState/deallocating"), VM_POWER_DEALLOCATING);
	ck_assert_int_eq(vm_power_parse("VM running"), VM_POWER_RUNNING);
	ck_assert_int_eq(vm_power_parse("  Stopped\n"), VM_POWER_STOPPED);
	ck_assert_int_eq(vm_power_parse("flying"), VM_POWER_UNKNOWN);
	ck_assert_int_eq(vm_power_parse(NULL), VM_POWER_UNKNOWN);
	ck_assert_str_eq(vm_strerror(VM_ECONFLICT), "conflict: another operation is in progress");
}
END_TEST

START_TEST(test_http_rules)
{
	ck_assert(http_url_secure("https://management.azure.com/x"));
	ck_assert(http_url_secure("http://127.0.0.1:8080/x"));
	ck_assert(http_url_secure("http://localhost/x"));
	ck_assert(http_url_secure("http://[::1]:99/x"));
	ck_assert(!http_url_secure("http://management.azure.com/x"));
	ck_assert(!http_url_secure("http://127.0.0.1.evil.example/x"));
	ck_assert(!http_url_secure("http://127.0.0.1@evil.example/x"));
	ck_assert(!http_url_secure("http://evil.example/?h=127.0.0.1"));
	ck_assert(!http_url_secure("ftp://127.0.0.1/x"));
	ck_assert_int_eq(http_retry_after("7"), 7);
	ck_assert_int_eq(http_retry_after(""), -1);
	ck_assert_int_eq(http_retry_after("soon"), -1);
	ck_assert_int_eq(http_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), 0);	/* past */
}
END_TEST

START_TEST(test_http_refuses_plain_credentials)
{
	struct http_request req = { .method = "GET", .url = "http://example.invalid/x",
				    .bearer = "secret-token" };
	struct http_response r;
	struct vm_error err = { 0 };

	ck_assert_int_eq(http_request(&req, &r, &err), VM_EHTTP);
	ck_assert_str_eq(err.message, "refusing to send credentials over plain http to "
			 "'example.invalid' (use an https:// endpoint)");
	ck_assert_ptr_null(strstr(err.message, "secret-token"));
	http_response_release(&r);
}
END_TEST

static Suite *azure_suite(void)
{
	Suite *s = suite_create("azure");
	TCase *tc;

#define CASE(fn)                                \
	tc = tcase_create(#fn);                 \
	tcase_add_test(tc, fn);                 \
	suite_add_tcase(s, tc)
	CASE(test_power_state);
	CASE(test_power_malformed);
	CASE(test_address_chain);
	CASE(test_address_missing);
	CASE(test_async);
	CASE(test_errors);
	CASE(test_tokens);
	CASE(test_tokens_bad);
	CASE(test_vm_list);
	CASE(test_terms);
	CASE(test_every_handler_every_fixture);
	CASE(test_power_names);
	CASE(test_http_rules);
	CASE(test_http_refuses_plain_credentials);
#undef CASE
	return s;
}

TAP_MAIN(azure_suite)
