/*
 * check_sshconf.c: parsing `ssh -G` output and tilde expansion.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sshconf.h"
#include "tap.h"

START_TEST(test_parse)
{
	struct sshconf c;
	const char *text = "host vm\nuser alice\nhostname 10.0.0.4\nport 2222\n"
			   "identityfile ~/.ssh/id_vm\nidentityfile /k/id_other\n"
			   "userknownhostsfile /kh/one /kh/two\nhostkeyalias vm-alias\n"
			   "stricthostkeychecking yes\n";

	memset(&c, 0, sizeof(c));
	setenv("HOME", "/home/alice", 1);
	ck_assert_int_eq(sshconf_parse(text, &c), 0);
	ck_assert_str_eq(c.hostname, "10.0.0.4");
	ck_assert_str_eq(c.user, "alice");
	ck_assert_int_eq(c.port, 2222);
	ck_assert_int_eq(c.nidentities, 2);
	ck_assert_str_eq(c.identities[0], "/home/alice/.ssh/id_vm");
	ck_assert_str_eq(c.identities[1], "/k/id_other");
	ck_assert_str_eq(c.known_hosts, "/kh/one");
	ck_assert_str_eq(c.host_key_alias, "vm-alias");
	sshconf_release(&c);
}
END_TEST

START_TEST(test_parse_incomplete)
{
	struct sshconf c;

	memset(&c, 0, sizeof(c));
	ck_assert_int_lt(sshconf_parse("port 22\n", &c), 0);
	sshconf_release(&c);
	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(sshconf_parse("hostname h\r\nuser u\r\nnonsense\n", &c), 0);
	ck_assert_str_eq(c.hostname, "h");
	ck_assert_ptr_null(c.host_key_alias);
	sshconf_release(&c);
}
END_TEST

START_TEST(test_expand)
{
	char *s;

	setenv("HOME", "/h", 1);
	s = sshconf_expand("~/x");
	ck_assert_str_eq(s, "/h/x");
	free(s);
	s = sshconf_expand("~");
	ck_assert_str_eq(s, "/h");
	free(s);
	s = sshconf_expand("~other/x");
	ck_assert_str_eq(s, "~other/x");
	free(s);
	s = sshconf_expand("/abs");
	ck_assert_str_eq(s, "/abs");
	free(s);
}
END_TEST

START_TEST(test_resolve_runs_ssh)
{
	struct sshconf c;
	char err[256];
	FILE *f;
	char path[] = "/tmp/check_sshconf.XXXXXX";
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	fprintf(f, "Host myvm\n  HostName 127.0.0.9\n  Port 2200\n  User bob\n  HostKeyAlias myvm\n");
	fclose(f);
	if (sshconf_resolve("myvm", path, &c, err, sizeof(err)) == 0) {
		ck_assert_str_eq(c.hostname, "127.0.0.9");
		ck_assert_int_eq(c.port, 2200);
		ck_assert_str_eq(c.user, "bob");
		ck_assert_str_eq(c.host_key_alias, "myvm");
		sshconf_release(&c);
	} else {
		unlink(path);
		ck_abort_msg("sshconf_resolve failed: %s", err);
	}
	unlink(path);
}
END_TEST

static Suite *sshconf_suite(void)
{
	Suite *s = suite_create("sshconf");
	TCase *tc = tcase_create("ssh -G output is parsed");

	tcase_add_test(tc, test_parse);
	tcase_add_test(tc, test_parse_incomplete);
	tcase_add_test(tc, test_expand);
	suite_add_tcase(s, tc);
	tc = tcase_create("a Host alias resolves through ssh -G");
	tcase_add_test(tc, test_resolve_runs_ssh);
	suite_add_tcase(s, tc);
	return s;
}

TAP_MAIN(sshconf_suite)
