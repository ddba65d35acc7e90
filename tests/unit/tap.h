/*
 * tap.h: the main() of every unit test. Check runs the suite (forking each
 * test unless CK_FORK=no, as under valgrind) and prints TAP on stdout, so the
 * automake TAP driver counts every test case once.
 */
#ifndef WAKEFS_TAP_H
#define WAKEFS_TAP_H

#include <check.h>
#include <stdlib.h>

#define TAP_MAIN(suite_fn)                                       \
	int main(void)                                           \
	{                                                        \
		SRunner *sr = srunner_create(suite_fn());        \
		int failed;                                      \
		srunner_set_tap(sr, "-");                        \
		srunner_run_all(sr, CK_SILENT);                  \
		failed = srunner_ntests_failed(sr);              \
		srunner_free(sr);                                \
		return failed ? EXIT_FAILURE : EXIT_SUCCESS;     \
	}

#endif
