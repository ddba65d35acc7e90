# mk/engine.mk: sources and tests of this area (appends to Makefile.am's variables).
# The SSH/SFTP engine: transport (ssh), ssh_config (sshconf), codec (sftp),
# multiplexer (conn) and the filesystem-level operations (remote).
libwakefs_a_SOURCES += fs/ssh.c fs/ssh.h fs/sshconf.c fs/sshconf.h fs/sftp.c fs/sftp.h \
	fs/conn.c fs/conn.h fs/remote.c fs/remote.h fs/forward.c fs/forward.h

noinst_PROGRAMS += tests/tools/remote-cli
tests_tools_remote_cli_SOURCES = tests/tools/remote-cli.c
tests_tools_remote_cli_LDADD = libwakefs.a libvmctl.a $(WAKEFS_LIBS)

INTEGRATION_TESTS += tests/integration/t-engine-login.sh
INTEGRATION_TESTS += tests/integration/t-engine-ops.sh

UNIT_TESTS += tests/unit/check_sftp tests/unit/check_ssh tests/unit/check_sshconf
tests_unit_check_sftp_SOURCES = tests/unit/check_sftp.c
tests_unit_check_sftp_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_sftp_LDADD = $(UNIT_LIBS)
tests_unit_check_ssh_SOURCES = tests/unit/check_ssh.c
tests_unit_check_ssh_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_ssh_LDADD = $(UNIT_LIBS)
tests_unit_check_sshconf_SOURCES = tests/unit/check_sshconf.c
tests_unit_check_sshconf_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_sshconf_LDADD = $(UNIT_LIBS)
INTEGRATION_TESTS += tests/integration/t-engine-bigfile.sh
INTEGRATION_TESTS += tests/integration/t-engine-reconnect.sh
INTEGRATION_TESTS += tests/integration/t-engine-hostile.sh
INTEGRATION_TESTS += tests/integration/t-engine-stall.sh
EXTRA_DIST += tests/tools/evil-sftp.py
INTEGRATION_TESTS += tests/integration/t-engine-fuzz.sh
EXTRA_DIST += tests/fuzz/fuzz_sftp.c
