# mk/lifecycle.mk: sources and tests of this area (appends to Makefile.am's variables).
