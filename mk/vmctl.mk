# mk/vmctl.mk: sources and tests of this area (appends to Makefile.am's variables).
libvmctl_a_SOURCES += vmctl/config.c vmctl/config.h vmctl/provider.c vmctl/provider.h \
	vmctl/proc.c vmctl/proc.h vmctl/http.c vmctl/http.h vmctl/auth.c vmctl/auth.h \
	vmctl/azure.c vmctl/azure.h

# The VM template is compiled into the binary (vmctl create works from anywhere).
EXTRA_DIST += scripts/azure-vm.json
CLEANFILES += vmctl/azure-template.h
vmctl/azure-template.h: $(top_srcdir)/scripts/azure-vm.json
	@mkdir -p vmctl
	$(AM_V_GEN)$(AWK) 'BEGIN { print "static const char azure_template[] =" } \
		{ gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); print "\t\"" $$0 "\\n\"" } \
		END { print ";" }' $(top_srcdir)/scripts/azure-vm.json > $@.tmp && mv $@.tmp $@
vmctl/azure.$(OBJEXT) vmctl/libvmctl_a-azure.$(OBJEXT): vmctl/azure-template.h

# The fake Azure (ARM + token service + IMDS) and the fake Azure CLI.
EXTRA_DIST += tests/fake-arm/fake_arm.py tests/fake-arm/fake-arm.sh tests/fake-arm/az
INTEGRATION_TESTS += tests/integration/t-vmctl-lifecycle.sh tests/integration/t-vmctl-retries.sh \
	tests/integration/t-vmctl-auth.sh tests/integration/t-vmctl-create.sh \
	tests/integration/t-vmctl-no-secrets.sh tests/integration/t-vmctl-providers.sh \
	tests/integration/t-vmctl-fuzz.sh

UNIT_TESTS += tests/unit/check_config
tests_unit_check_config_SOURCES = tests/unit/check_config.c
tests_unit_check_config_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_config_LDADD = $(UNIT_LIBS)

UNIT_TESTS += tests/unit/check_azure
tests_unit_check_azure_SOURCES = tests/unit/check_azure.c
tests_unit_check_azure_CPPFLAGS = $(AM_CPPFLAGS) -DFIXTURES_DIR='"$(abs_top_srcdir)/tests/fixtures"'
tests_unit_check_azure_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_azure_LDADD = $(UNIT_LIBS)
EXTRA_DIST += tests/fixtures/arm

dist_man1_MANS += man/vmctl.1

# The libFuzzer target of the ARM response handling (a plain corpus runner here).
noinst_PROGRAMS += tests/fuzz/fuzz_arm
tests_fuzz_fuzz_arm_SOURCES = tests/fuzz/fuzz_arm.c
tests_fuzz_fuzz_arm_LDADD = libvmctl.a $(VMCTL_LIBS)

# The VM-side watchdog: its script and systemd units are compiled into vmctl
# (`vmctl watchdog install` works from anywhere).
libvmctl_a_SOURCES += vmctl/watchdog.c vmctl/watchdog.h
EXTRA_DIST += scripts/wakefs-watchdog.sh scripts/wakefs-watchdog.service \
	scripts/wakefs-watchdog.timer
CLEANFILES += vmctl/watchdog-files.h
vmctl/watchdog-files.h: $(top_srcdir)/scripts/wakefs-watchdog.sh \
		$(top_srcdir)/scripts/wakefs-watchdog.service $(top_srcdir)/scripts/wakefs-watchdog.timer
	@mkdir -p vmctl
	$(AM_V_GEN)for f in sh service timer; do \
		$(AWK) -v name="watchdog_$$f" 'BEGIN { print "static const char " name "[] =" } \
			{ gsub(/\\/, "&&"); gsub(/"/, "\\\""); print "\t\"" $$0 "\\n\"" } \
			END { print ";" }' $(top_srcdir)/scripts/wakefs-watchdog.$$f || exit 1; \
	done > $@.tmp && mv $@.tmp $@
vmctl/watchdog.$(OBJEXT) vmctl/libvmctl_a-watchdog.$(OBJEXT): vmctl/watchdog-files.h
INTEGRATION_TESTS += tests/integration/t-vmctl-watchdog.sh
UNIT_TESTS += tests/unit/check_watchdog
tests_unit_check_watchdog_SOURCES = tests/unit/check_watchdog.c
tests_unit_check_watchdog_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_watchdog_LDADD = $(UNIT_LIBS)
