# mk/fuse.mk: sources and tests of this area (appends to Makefile.am's variables).
libwakefs_a_SOURCES += fs/options.c fs/options.h fs/ops.c fs/ops.h fs/dirlist.c fs/dirlist.h
dist_man1_MANS += man/wakefs.1
INTEGRATION_TESTS += tests/integration/t-fs-posix.sh
EXTRA_DIST += tests/tools/posix-ops.py
EXTRA_DIST += tests/tools/fsx-diff.py
INTEGRATION_TESTS += tests/integration/t-fs-bigdir.sh
INTEGRATION_TESTS += tests/integration/t-fs-cli.sh
INTEGRATION_TESTS += tests/integration/t-fs-reconnect.sh
UNIT_TESTS += tests/unit/check_options
tests_unit_check_options_SOURCES = tests/unit/check_options.c
tests_unit_check_options_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_options_LDADD = $(UNIT_LIBS)
INTEGRATION_TESTS += tests/integration/t-fs-vs-sshfs.sh
INTEGRATION_TESTS += tests/integration/t-fs-listing.sh
INTEGRATION_TESTS += tests/integration/t-fs-vm-full.sh
