# mk/layer.mk: the local layer (journal, layer, union operations) and its tests.
libwakefs_a_SOURCES += fs/journal.c fs/journal.h fs/layer.c fs/layer.h fs/lops.c fs/lops.h fs/fetch.c fs/fetch.h fs/presend.c fs/presend.h \
	fs/bootstrap.c fs/bootstrap.h

UNIT_TESTS += tests/unit/check_journal tests/unit/check_layer
tests_unit_check_journal_SOURCES = tests/unit/check_journal.c
tests_unit_check_journal_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_journal_LDADD = $(UNIT_LIBS)
tests_unit_check_layer_SOURCES = tests/unit/check_layer.c
tests_unit_check_layer_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_layer_LDADD = $(UNIT_LIBS)

INTEGRATION_TESTS += tests/integration/t-layer-union.sh tests/integration/t-layer-git.sh \
	tests/integration/t-layer-offline.sh tests/integration/t-layer-crash.sh \
	tests/integration/t-layer-enospc.sh tests/integration/t-layer-sync.sh \
	tests/integration/t-layer-cache.sh tests/integration/t-layer-vmgit.sh \
	tests/integration/t-layer-learn.sh
INTEGRATION_TESTS += tests/integration/t-layer-fetch.sh tests/integration/t-layer-presend.sh
