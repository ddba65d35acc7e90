# mk/flush.mk: sources and tests of the flusher area (appends to Makefile.am's variables).
libwakefs_a_SOURCES += fs/policy.h fs/flush.h
