# mk/flush.mk: sources and tests of the flusher area (appends to Makefile.am's variables).
libwakefs_a_SOURCES += fs/policy.c fs/policy.h fs/flush.c fs/flush.h fs/control.c fs/control.h \
	fs/feed.c fs/feed.h

UNIT_TESTS += tests/unit/check_policy
tests_unit_check_policy_SOURCES = tests/unit/check_policy.c
tests_unit_check_policy_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_policy_LDADD = $(UNIT_LIBS)

noinst_PROGRAMS += tests/tools/flush-drive
tests_tools_flush_drive_SOURCES = tests/tools/flush-drive.c
tests_tools_flush_drive_LDADD = libwakefs.a libvmctl.a $(WAKEFS_LIBS)
EXTRA_DIST += tests/tools/flush-lib.sh
INTEGRATION_TESTS += tests/integration/t-flush-basic.sh tests/integration/t-flush-policy.sh \
	tests/integration/t-flush-conflict.sh tests/integration/t-flush-recovery.sh \
	tests/integration/t-flush-atomic.sh
INTEGRATION_TESTS += tests/integration/t-control-cli.sh
INTEGRATION_TESTS += tests/integration/t-flush-feed.sh
INTEGRATION_TESTS += tests/integration/t-flush-mount.sh
