# mk/lifecycle.mk: sources and tests of this area (appends to Makefile.am's variables).
# The lifecycle: the `local` provider (a throwaway sshd that starts and stops
# like a VM), the profile mount and unmount, idle deallocation, the guard,
# port forwards and the VM-side watchdog.
AM_CPPFLAGS += -DWAKEFS_HAVE_PROVIDER_LOCAL
libvmctl_a_SOURCES += vmctl/provider_local.c
libwakefs_a_SOURCES += fs/lifecycle.c fs/lifecycle.h
INTEGRATION_TESTS += tests/integration/t-life-local.sh
INTEGRATION_TESTS += tests/integration/t-demo.sh
INTEGRATION_TESTS += tests/integration/t-life-azure.sh
INTEGRATION_TESTS += tests/integration/t-life-idle.sh
INTEGRATION_TESTS += tests/integration/t-life-crash.sh
INTEGRATION_TESTS += tests/integration/t-life-forward.sh
UNIT_TESTS += tests/unit/check_forward
tests_unit_check_forward_SOURCES = tests/unit/check_forward.c
tests_unit_check_forward_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_forward_LDADD = $(UNIT_LIBS)
EXTRA_DIST += tests/tools/life-lib.sh
