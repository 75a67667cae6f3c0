# modules/pop3be: the POP3 back-end server (README.md, postern-pop3be.8).
module_LTLIBRARIES += modules/pop3be.la
pop3be_pure_sources = \
	modules/pop3be/pop3be.h modules/pop3be/command.c modules/pop3be/xclient.c \
	modules/pop3be/dotstuff.c
pop3be_mailbox_sources = modules/pop3be/maildrop.c modules/pop3be/workers.c
modules_pop3be_la_SOURCES = $(pop3be_pure_sources) $(pop3be_mailbox_sources) \
	modules/pop3be/server.h modules/pop3be/settings.c modules/pop3be/session.c \
	modules/pop3be/authorization.c modules/pop3be/transaction.c \
	modules/pop3be/sender.c modules/pop3be/module.c
modules_pop3be_la_CFLAGS = $(AM_CFLAGS) -pthread
modules_pop3be_la_LDFLAGS = $(module_ldflags) -pthread
modules_pop3be_la_LIBADD = lib/libpostern-auth.la lib/libpostern-mailstore.la \
	lib/libpostern-protocol.la
dist_man_MANS += modules/pop3be/postern-pop3be.8
EXTRA_DIST += modules/pop3be/README.md

# Unit tests of the parts that need no daemon: parser, verb table, XCLIENT,
# byte-stuffing, the mailbox snapshot, lock and workers (base64, AUTH PLAIN
# and CIDR are libpostern-protocol's, tested in check_protocol).
check_PROGRAMS += tests/unit/check_pop3be
tests_unit_check_pop3be_SOURCES = tests/unit/check_pop3be.c \
	$(pop3be_pure_sources) $(pop3be_mailbox_sources)
tests_unit_check_pop3be_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/modules/pop3be
tests_unit_check_pop3be_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) -pthread
tests_unit_check_pop3be_LDADD = lib/libpostern-mailstore.la $(CHECK_LIBS)
tests_unit_check_pop3be_LDFLAGS = $(AM_LDFLAGS) -pthread
TESTS += tests/unit/check_pop3be

# A delivery tool for the integration tests and bench/pop3: stores files
# into a Maildir with lib/mailstore, as queue-store does.
check_PROGRAMS += tests/integration/maildeliver
tests_integration_maildeliver_SOURCES = tests/integration/maildeliver.c
tests_integration_maildeliver_LDADD = lib/libpostern-mailstore.la
