# mk/flush.mk: sources and tests of the flusher area (appends to Makefile.am's variables).
libwakefs_a_SOURCES += fs/policy.c fs/policy.h fs/flush.c fs/flush.h fs/control.c fs/control.h

UNIT_TESTS += tests/unit/check_policy
tests_unit_check_policy_SOURCES = tests/unit/check_policy.c
tests_unit_check_policy_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_policy_LDADD = $(UNIT_LIBS)
