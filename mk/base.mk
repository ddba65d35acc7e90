# mk/base.mk: the harness's own checks and the README's commands.
EXTRA_DIST += scripts/deps scripts/test scripts/demo .ci/run
INTEGRATION_TESTS += tests/integration/t-harness-sshd.sh
