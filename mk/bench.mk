# mk/bench.mk: sources and tests of this area (appends to Makefile.am's variables).
# The latency proxy emulating a laptop-to-cloud link (for the tests and
# scripts/bench) and its tests; the benchmark itself stays out of make check.
noinst_PROGRAMS += scripts/latency-proxy scripts/fuse-floor
scripts_latency_proxy_SOURCES = scripts/latency-proxy.c
# A do-nothing FUSE passthrough: the floor under the local-layer rows of the bench.
scripts_fuse_floor_SOURCES = scripts/fuse-floor.c
scripts_fuse_floor_LDADD = $(FUSE_LIBS)
EXTRA_DIST += tests/tools/proxy-peer tests/tools/proxy-lib.sh scripts/bench scripts/BENCHMARKS.md
INTEGRATION_TESTS += tests/integration/t-proxy-rtt.sh tests/integration/t-proxy-integrity.sh \
	tests/integration/t-proxy-many.sh tests/integration/t-proxy-throughput.sh \
	tests/integration/t-proxy-shutdown.sh tests/integration/t-bench-floor.sh
