# pop3fe: the POP3 front-end proxy (a protocol descriptor over
# libpostern-proxy, which brings the directory and auth libraries).
module_LTLIBRARIES += modules/pop3fe.la
modules_pop3fe_la_SOURCES = modules/pop3fe/pop3fe.h modules/pop3fe/pop3fe.c \
	modules/pop3fe/command.c modules/pop3fe/client.c modules/pop3fe/backend.c
modules_pop3fe_la_LDFLAGS = $(module_ldflags)
modules_pop3fe_la_LIBADD = lib/libpostern-proxy.la lib/libpostern-protocol.la
dist_man_MANS += modules/pop3fe/postern-pop3fe.8
EXTRA_DIST += modules/pop3fe/README.md

# Unit tests: the parser before login, XCLIENT, the PLAIN encoder, the login replies.
check_PROGRAMS += tests/unit/check_pop3fe
tests_unit_check_pop3fe_SOURCES = tests/unit/check_pop3fe.c modules/pop3fe/command.c \
	modules/pop3fe/pop3fe.h
tests_unit_check_pop3fe_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/modules/pop3fe
tests_unit_check_pop3fe_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_pop3fe_LDADD = lib/libpostern-protocol.la $(CHECK_LIBS)
TESTS += tests/unit/check_pop3fe

# A test-only module that logs backend.down/backend.up with their payload.
check_LTLIBRARIES += tests/modules/pop3fe_events.la
tests_modules_pop3fe_events_la_SOURCES = tests/modules/pop3fe_events.c
tests_modules_pop3fe_events_la_LDFLAGS = $(testmodule_ldflags)
