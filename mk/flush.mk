# mk/flush.mk: sources and tests of the flusher area (appends to Makefile.am's variables).
