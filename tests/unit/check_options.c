/*
 * check_options.c: the command line -> struct options: the remote's forms,
 * flags before and after the positional arguments, -o lists with escapes,
 * fstab words ignored, implied options, and a clear message for each error.
 */
#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "options.h"
#include "remote.h"
#include "tap.h"

static char mnt[64];
static char err[1024];
static struct options o;

static void setup(void)
{
	strcpy(mnt, "/tmp/check_options.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(mnt));
	memset(&o, 0, sizeof(o));
	err[0] = '\0';
}

static void teardown(void)
{
	options_release(&o);
	rmdir(mnt);
}

/* Parse "wakefs" followed by the NULL-terminated arguments; "MNT" is the mountpoint. */
static int parse(const char *first, ...)
{
	char *argv[32];
	const char *a;
	va_list ap;
	int argc = 0;

	argv[argc++] = (char *)"wakefs";
	va_start(ap, first);
	for (a = first; a && argc < 31; a = va_arg(ap, const char *))
		argv[argc++] = strcmp(a, "MNT") == 0 ? mnt : (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	options_release(&o);
	return options_parse(&o, argc, argv, err, sizeof(err));
}

START_TEST(test_source_forms)
{
	ck_assert_int_eq(parse("me@vm:work/p", "MNT", NULL), 0);
	ck_assert_str_eq(o.user, "me");
	ck_assert_str_eq(o.host, "vm");
	ck_assert_str_eq(o.dir, "work/p");
	ck_assert_str_eq(o.source, "me@vm:work/p");
	ck_assert_int_eq(parse("vm:", "MNT", NULL), 0);
	ck_assert_ptr_null(o.user);
	ck_assert_str_eq(o.dir, "");
	ck_assert_int_eq(parse("a@b@[::1]:/srv", "MNT", NULL), 0);
	ck_assert_str_eq(o.user, "a@b");
	ck_assert_str_eq(o.host, "::1");
	ck_assert_str_eq(o.dir, "/srv");
	ck_assert_int_eq(parse("vm:data@2024", "MNT", NULL), 0);
	ck_assert_ptr_null(o.user);
	ck_assert_str_eq(o.host, "vm");
	ck_assert_str_eq(o.dir, "data@2024");
}
END_TEST

START_TEST(test_source_errors)
{
	ck_assert_int_eq(parse("vm", "MNT", NULL), -EINVAL);
	ck_assert_str_eq(err, "bad remote 'vm': expected [user@]host:[dir], e.g. vm:work/project");
	ck_assert_int_eq(parse(":dir", "MNT", NULL), -EINVAL);
	ck_assert_int_eq(parse("@vm:dir", "MNT", NULL), -EINVAL);
	ck_assert_int_eq(parse("[::1/x", "MNT", NULL), -EINVAL);
	ck_assert_int_eq(parse("vm:", NULL), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "missing MOUNTPOINT"));
	ck_assert_int_eq(parse("vm:", "/nonexistent/wakefs", NULL), -EINVAL);
	ck_assert_str_eq(err, "cannot mount on '/nonexistent/wakefs': No such file or directory");
	ck_assert_int_eq(parse("vm:", "MNT", "third", NULL), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "too many arguments: 'third'"));
}
END_TEST

START_TEST(test_flags_anywhere)
{
	struct remote_opts ro;

	ck_assert_int_eq(parse("vm:x", "-p", "2222", "MNT", "-o", "identity=/k,known_hosts=/kh",
			       "-F", "/cfg", "-fs", "-oaccept_new_hostkey", NULL), 0);
	ck_assert_int_eq(o.port, 2222);
	ck_assert_str_eq(o.identity, "/k");
	ck_assert_str_eq(o.known_hosts, "/kh");
	ck_assert_str_eq(o.ssh_config, "/cfg");
	ck_assert_int_eq(o.foreground, 1);
	ck_assert_int_eq(o.single_thread, 1);
	ck_assert_int_eq(o.accept_new_hostkey, 1);
	ck_assert_int_eq(o.reconnect_timeout_s, 60);
	options_remote(&o, &ro);
	ck_assert_str_eq(ro.host, "vm");
	ck_assert_int_eq(ro.port, 2222);
	ck_assert_int_eq(ro.request_timeout_ms, 60000);
	ck_assert_int_eq(ro.accept_new_hostkey, 1);
	ck_assert_int_eq(parse("-p2200", "-o", "port=2201", "vm:", "MNT", NULL), 0);
	ck_assert_int_eq(o.port, 2201);
}
END_TEST

START_TEST(test_fstab_words)
{
	ck_assert_int_eq(parse("vm:", "MNT", "-o",
			       "rw,noauto,user,_netdev,nofail,defaults,dev,suid,x-systemd.automount,"
			       "comment=x,reconnect_timeout=5,nosuid", NULL), 0);
	ck_assert_int_eq(o.reconnect_timeout_s, 5);
	ck_assert_int_eq(o.nosuid, 1);
	ck_assert_int_eq(o.read_only, 0);
	ck_assert_int_eq(parse("vm:", "MNT", "-o", "ro", NULL), 0);
	ck_assert_int_eq(o.read_only, 1);
}
END_TEST

START_TEST(test_escaped_comma)
{
	ck_assert_int_eq(parse("vm:", "MNT", "-o", "identity=/a\\,b,ro", NULL), 0);
	ck_assert_str_eq(o.identity, "/a,b");
	ck_assert_int_eq(o.read_only, 1);
}
END_TEST

START_TEST(test_implied)
{
	ck_assert_int_eq(parse("-d", "vm:", "MNT", NULL), 0);
	ck_assert_int_eq(o.debug, 1);
	ck_assert_int_eq(o.foreground, 1);
	ck_assert_int_eq(parse("vm:", "MNT", NULL), 0);
	ck_assert_int_eq(o.allow_other, 0);
	ck_assert_int_eq(o.default_permissions, 0);
	ck_assert_int_eq(o.foreground, 0);
	ck_assert_int_eq(parse("vm:", "MNT", "-o", "allow_other", NULL), 0);
	ck_assert_int_eq(o.default_permissions, 1);
	ck_assert_int_eq(parse("vm:", "MNT", "-o", "allow_other,allow_root", NULL), -EINVAL);
}
END_TEST

START_TEST(test_bad_options)
{
	ck_assert_int_eq(parse("vm:", "MNT", "-o", "colour=blue", NULL), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "bad option 'colour=blue': expected identity=FILE"));
	ck_assert_int_eq(parse("-x", "vm:", "MNT", NULL), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "bad option '-x'"));
	ck_assert_int_eq(parse("-p", "0", "vm:", "MNT", NULL), -EINVAL);
	ck_assert_str_eq(err, "bad port '0': expected a number from 1 to 65535");
	ck_assert_int_eq(parse("-p", "22x", "vm:", "MNT", NULL), -EINVAL);
	ck_assert_int_eq(parse("vm:", "MNT", "-p", NULL), -EINVAL);
	ck_assert_str_eq(err, "option '-p' needs a value");
	ck_assert_int_eq(parse("vm:", "MNT", "-o", "reconnect_timeout=0", NULL), -EINVAL);
	ck_assert_int_eq(parse("vm:", "MNT", "-o", "identity=", NULL), -EINVAL);
	ck_assert_str_eq(err, "bad option 'identity=': expected identity=VALUE");
	ck_assert_int_eq(parse("vm:", "MNT", "-o", "gid=5", NULL), -EINVAL);
	ck_assert_str_eq(err, "bad option 'gid=5': uid/gid remapping is not supported");
}
END_TEST

START_TEST(test_help_version)
{
	ck_assert_int_eq(parse("--help", NULL), 0);
	ck_assert_int_eq(o.action, OPTIONS_HELP);
	ck_assert_int_eq(parse("-V", NULL), 0);
	ck_assert_int_eq(o.action, OPTIONS_VERSION);
	ck_assert_ptr_nonnull(strstr(options_usage(), "reconnect_timeout"));
}
END_TEST

static Suite *options_suite(void)
{
	Suite *s = suite_create("options");
	struct {
		const char *name;
		const TTest *test;
	} cases[] = {
		{ "source forms", test_source_forms },
		{ "source errors", test_source_errors },
		{ "flags anywhere", test_flags_anywhere },
		{ "fstab words", test_fstab_words },
		{ "escaped comma", test_escaped_comma },
		{ "implied options", test_implied },
		{ "bad options", test_bad_options },
		{ "help and version", test_help_version },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		TCase *tc = tcase_create(cases[i].name);

		tcase_add_checked_fixture(tc, setup, teardown);
		tcase_add_test(tc, cases[i].test);
		suite_add_tcase(s, tc);
	}
	return s;
}

TAP_MAIN(options_suite)
