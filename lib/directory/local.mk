# libpostern-directory: the back-end directory of the proxies (pop3fe,
# imap4fe): back-ends in pools, consistent hashing, failover order, health
# state. Pure (no core calls, injected clock), so it is unit-tested alone.
postern_include_HEADERS += include/postern/directory.h
lib_LTLIBRARIES += lib/libpostern-directory.la

lib_libpostern_directory_la_SOURCES = \
	lib/directory/directory_private.h lib/directory/directory.c \
	lib/directory/ring.c lib/directory/health.c
lib_libpostern_directory_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden
lib_libpostern_directory_la_LDFLAGS = $(AM_LDFLAGS) -version-info 0:0:0 -no-undefined

EXTRA_DIST += lib/directory/README.md

check_PROGRAMS += tests/unit/check_directory
tests_unit_check_directory_SOURCES = tests/unit/check_directory.c
tests_unit_check_directory_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_directory_LDADD = lib/libpostern-directory.la $(CHECK_LIBS)
TESTS += tests/unit/check_directory
