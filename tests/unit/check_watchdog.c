/*
 * tests/unit/check_watchdog.c: the scripts `vmctl watchdog` runs on the VM
 * (vmctl/watchdog.c), without a VM: Azure profiles only, watchdog_minutes
 * checked with FILE:LINE, the prelude's values single-quoted for sh (test
 * hooks included), the cloud's ARM endpoint, the compiled-in files as
 * here-documents for install only, and the whole body in one group that
 * reads nothing more from stdin.
 */
#include "config.h"
#include "provider.h"
#include "watchdog.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VMID "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg1/" \
	"providers/Microsoft.Compute/virtualMachines/dsvm"

/* The script for @action of the only profile of @text; NULL and @err filled on failure. */
static char *script_of(const char *text, enum watchdog_action action, struct vm_error *err,
		       int *rc)
{
	struct config *cfg;
	struct vm *vm = NULL;
	char msg[512], *out = NULL;

	ck_assert_int_eq(config_parse(&cfg, "/cfg", text, msg, sizeof(msg)), 0);
	*rc = vm_open(&vm, cfg, NULL, err);
	if (!*rc)
		*rc = watchdog_script(vm, action, &out, err);
	vm_free(vm);
	config_free(cfg);
	return out;
}

static int count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

START_TEST(test_actions)
{
	ck_assert_int_eq(watchdog_action_parse("install"), WATCHDOG_INSTALL);
	ck_assert_int_eq(watchdog_action_parse("status"), WATCHDOG_STATUS);
	ck_assert_int_eq(watchdog_action_parse("remove"), WATCHDOG_REMOVE);
	ck_assert_int_eq(watchdog_action_parse("Install"), -1);
	ck_assert_int_eq(watchdog_action_parse(""), -1);
	ck_assert_int_eq(watchdog_action_parse(NULL), -1);
}
END_TEST

START_TEST(test_azure_only)
{
	static const char *const profiles[] = {
		"[a]\nprovider = none\nhost = 127.0.0.1\n",
		"[a]\nprovider = command\nstart_cmd = true\nstop_cmd = true\nstatus_cmd = true\n"
		"host = x\n",
	};
	struct vm_error err;
	int rc;

	for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++) {
		ck_assert_ptr_null(script_of(profiles[i], WATCHDOG_INSTALL, &err, &rc));
		ck_assert_int_eq(rc, VM_ECONFIG);
		ck_assert_ptr_nonnull(strstr(err.message, "the watchdog is Azure-only"));
		ck_assert_ptr_nonnull(strstr(err.message, "[a] uses provider"));
	}
}
END_TEST

START_TEST(test_minutes_checked)
{
	struct vm_error err;
	int rc;

	ck_assert_ptr_null(script_of("[a]\nprovider = azure\nvm_id = " VMID "\n"
				     "watchdog_minutes = 0\n", WATCHDOG_INSTALL, &err, &rc));
	ck_assert_int_eq(rc, VM_ECONFIG);
	ck_assert_ptr_nonnull(strstr(err.message, "/cfg:4"));
	ck_assert_ptr_null(script_of("[a]\nprovider = azure\nvm_id = " VMID "\n"
				     "watchdog_minutes = 99999\n", WATCHDOG_STATUS, &err, &rc));
	ck_assert_int_eq(rc, VM_ECONFIG);
}
END_TEST

START_TEST(test_install_script)
{
	struct vm_error err;
	char *s;
	int rc;

	setenv("WAKEFS_WATCHDOG_ROOT", "/t/it's here", 1);
	unsetenv("WAKEFS_SYSTEMCTL");
	s = script_of("[gpu]\nprovider = azure\nvm_id = " VMID "\ncloud = AzureUSGovernment\n"
		      "watchdog_minutes = 45\n", WATCHDOG_INSTALL, &err, &rc);
	unsetenv("WAKEFS_WATCHDOG_ROOT");
	ck_assert_int_eq(rc, 0);
	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_nonnull(strstr(s, "\nP='gpu'\n"));
	ck_assert_ptr_nonnull(strstr(s, "\nR='/t/it'\\''s here'\n"));
	ck_assert_ptr_nonnull(strstr(s, "\nSC='systemctl'\n"));
	ck_assert_ptr_nonnull(strstr(s, "\nVM_ID='" VMID "'\n"));
	ck_assert_ptr_nonnull(strstr(s, "\nARM='https://management.usgovcloudapi.net'\n"));
	ck_assert_ptr_nonnull(strstr(s, "\nMINUTES='45'\n"));
	/* the script and both units, each a quoted here-document */
	ck_assert_int_eq(count(s, "<<'WAKEFS_WATCHDOG_EOF_3c5e'"), 3);
	ck_assert_int_eq(count(s, "\nWAKEFS_WATCHDOG_EOF_3c5e\n"), 3);
	ck_assert_ptr_nonnull(strstr(s, "# wakefs-watchdog: deallocate this Azure VM"));
	ck_assert_ptr_nonnull(strstr(s, "\nOnUnitActiveSec=5min\n"));
	ck_assert_ptr_nonnull(strstr(s, "enable --now wakefs-watchdog.timer"));
	ck_assert_ptr_nonnull(strstr(s, "\n{\n"));
	ck_assert_str_eq(s + strlen(s) - strlen("} </dev/null\n"), "} </dev/null\n");
	free(s);
}
END_TEST

START_TEST(test_status_and_remove)
{
	struct vm_error err;
	char *s;
	int rc;

	setenv("WAKEFS_SYSTEMCTL", "/bin/fake sc", 1);
	s = script_of("[a]\nprovider = azure\nvm_id = " VMID "\narm_endpoint = https://arm.example\n",
		      WATCHDOG_STATUS, &err, &rc);
	ck_assert_int_eq(rc, 0);
	ck_assert_ptr_nonnull(strstr(s, "\nSC='/bin/fake sc'\n"));
	ck_assert_ptr_nonnull(strstr(s, "\nR=''\n"));
	ck_assert_ptr_nonnull(strstr(s, "\nARM='https://arm.example'\n"));
	ck_assert_ptr_nonnull(strstr(s, "\nMINUTES='60'\n"));
	ck_assert_ptr_nonnull(strstr(s, "--status"));
	ck_assert_ptr_null(strstr(s, "WAKEFS_WATCHDOG_EOF"));
	free(s);
	s = script_of("[a]\nprovider = azure\nvm_id = " VMID "\n", WATCHDOG_REMOVE, &err, &rc);
	unsetenv("WAKEFS_SYSTEMCTL");
	ck_assert_int_eq(rc, 0);
	ck_assert_ptr_nonnull(strstr(s, "\nARM='https://management.azure.com'\n"));
	ck_assert_ptr_nonnull(strstr(s, "disable --now wakefs-watchdog.timer"));
	ck_assert_ptr_null(strstr(s, "WAKEFS_WATCHDOG_EOF"));
	free(s);
}
END_TEST

static Suite *watchdog_suite(void)
{
	Suite *s = suite_create("watchdog");
	TCase *tc;

#define CASE(fn)                                \
	tc = tcase_create(#fn);                 \
	tcase_add_test(tc, fn);                 \
	suite_add_tcase(s, tc)
	CASE(test_actions);
	CASE(test_azure_only);
	CASE(test_minutes_checked);
	CASE(test_install_script);
	CASE(test_status_and_remove);
#undef CASE
	return s;
}

TAP_MAIN(watchdog_suite)
