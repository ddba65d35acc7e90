/*
 * check_forward.c: forward specs (PORT, LOCALPORT:HOST:REMOTEPORT), the
 * -o forward= option, and a taken local port warning instead of failing.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "forward.h"
#include "options.h"
#include "tap.h"

START_TEST(test_parse_forms)
{
	struct fwd_spec s;
	char err[256];

	ck_assert_int_eq(fwd_parse("8888", &s, err, sizeof(err)), 0);
	ck_assert_int_eq(s.lport, 8888);
	ck_assert_str_eq(s.host, "localhost");
	ck_assert_int_eq(s.rport, 8888);
	ck_assert_int_eq(fwd_parse("9000:10.0.0.5:80", &s, err, sizeof(err)), 0);
	ck_assert_int_eq(s.lport, 9000);
	ck_assert_str_eq(s.host, "10.0.0.5");
	ck_assert_int_eq(s.rport, 80);
	ck_assert_int_eq(fwd_parse("1:[::1]:65535", &s, err, sizeof(err)), 0);
	ck_assert_str_eq(s.host, "::1");
	ck_assert_int_eq(s.rport, 65535);
}
END_TEST

START_TEST(test_parse_errors)
{
	static const char *const bad[] = { "", "0", "65536", "x", "80:host", ":h:80", "80::80",
					   "80:h:", "80:h:0", "80:[]:80", "-1", "8888 ", NULL };
	struct fwd_spec s;
	char err[256];
	int i;

	for (i = 0; bad[i]; i++) {
		err[0] = '\0';
		ck_assert_msg(fwd_parse(bad[i], &s, err, sizeof(err)) < 0, "accepted '%s'", bad[i]);
		ck_assert_msg(strstr(err, "bad forward") != NULL, "message for '%s': %s", bad[i], err);
	}
}
END_TEST

START_TEST(test_option)
{
	struct options o;
	char err[256];
	char *argv[] = { "wakefs", "vm:", "/mnt", "-o", "forward=8888,forward=2000:db:5432", NULL };
	char *bad[] = { "wakefs", "vm:", "/mnt", "-o", "forward=nope", NULL };

	memset(&o, 0, sizeof(o));
	ck_assert_int_eq(options_parse(&o, 5, argv, err, sizeof(err)), 0);
	ck_assert_int_eq(o.nforward, 2);
	ck_assert_int_eq(o.forward[1].lport, 2000);
	ck_assert_str_eq(o.forward[1].host, "db");
	ck_assert_int_eq(o.forward[1].rport, 5432);
	options_release(&o);
	memset(&o, 0, sizeof(o));
	ck_assert_int_lt(options_parse(&o, 5, bad, err, sizeof(err)), 0);
	ck_assert_msg(strstr(err, "bad forward 'nope'") != NULL, "%s", err);
	options_release(&o);
}
END_TEST

START_TEST(test_taken_port)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	struct fwd_spec s[2];
	struct fwd *f = NULL;
	char err[256], spec[16];
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 1), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	snprintf(spec, sizeof(spec), "%d", ntohs(sa.sin_port));
	ck_assert_int_eq(fwd_parse(spec, &s[0], err, sizeof(err)), 0);
	s[1] = s[0];
	/* Both on the taken port: warnings, no listener, and no error. */
	ck_assert_int_eq(fwd_new(&f, s, 2, "unit"), 0);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fwd_max_fds(f), FWD_MAX_CONNS);
	fwd_free(f);
	ck_assert_int_eq(fwd_new(&f, s, 0, "unit"), 0);
	ck_assert_ptr_null(f);
	close(fd);
}
END_TEST

static Suite *forward_suite(void)
{
	Suite *s = suite_create("forward");
	TCase *tc = tcase_create("specs parse");

	tcase_add_test(tc, test_parse_forms);
	tcase_add_test(tc, test_parse_errors);
	tcase_add_test(tc, test_option);
	suite_add_tcase(s, tc);
	tc = tcase_create("a taken local port is a warning");
	tcase_add_test(tc, test_taken_port);
	suite_add_tcase(s, tc);
	return s;
}

TAP_MAIN(forward_suite)
