# mk/layer.mk: the local layer (journal, layer, union operations) and its tests.
libwakefs_a_SOURCES += fs/journal.c fs/journal.h fs/layer.h

UNIT_TESTS += tests/unit/check_journal
tests_unit_check_journal_SOURCES = tests/unit/check_journal.c
tests_unit_check_journal_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_journal_LDADD = $(UNIT_LIBS)
