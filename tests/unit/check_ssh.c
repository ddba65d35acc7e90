/*
 * check_ssh.c: host key fingerprints as OpenSSH prints them (SHA-256,
 * base64 without padding), checked on the standard SHA-256 test vectors,
 * including the lengths around the 55/56/64-byte padding boundaries.
 */
#include <string.h>

#include "ssh.h"
#include "tap.h"

static void fp(const char *s, size_t n, char *out)
{
	ssh_fingerprint((const unsigned char *)s, n, out, 80);
}

START_TEST(test_vectors)
{
	char out[80];
	static char million[1000000];

	fp("", 0, out);
	ck_assert_str_eq(out, "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU");
	fp("abc", 3, out);
	ck_assert_str_eq(out, "SHA256:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0");
	fp("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, out);
	ck_assert_str_eq(out, "SHA256:JI1qYdIGOLjlwCaTDD5gOaM85Flk/yFn9uzt1BnbBsE");
	memset(million, 'a', sizeof(million));
	fp(million, sizeof(million), out);
	ck_assert_str_eq(out, "SHA256:zcduXJkU+5KBocfihNc+Z/GAmkiklyAOBG05zMcRLNA");
	/* The padding boundaries: 55 bytes fit one block, 64 and 119 need another. */
	memset(million, 'x', 119);
	fp(million, 55, out);
	ck_assert_str_eq(out, "SHA256:1eKFaDzU78AtAhpcYgFGlJWJAQBdb3HongmJ+sd+QHI");
	fp(million, 64, out);
	ck_assert_str_eq(out, "SHA256:fOEAlx9k5wAej+WlGXPs3+HO1Cvv5+6NX9YhlQa1OTw");
	fp(million, 119, out);
	ck_assert_str_eq(out, "SHA256:AAtI1O3w+nvuPGI27NJ4W6pdtO64u1Q0GwKeDZ+l+ww");
}
END_TEST

START_TEST(test_short_buffer)
{
	char out[10];

	ssh_fingerprint((const unsigned char *)"abc", 3, out, sizeof(out));
	ck_assert_str_eq(out, "SHA256:un");
}
END_TEST

static Suite *ssh_suite(void)
{
	Suite *s = suite_create("ssh");
	TCase *tc = tcase_create("fingerprints match OpenSSH's SHA256 form");

	tcase_add_test(tc, test_vectors);
	tcase_add_test(tc, test_short_buffer);
	suite_add_tcase(s, tc);
	return s;
}

TAP_MAIN(ssh_suite)
