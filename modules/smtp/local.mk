# modules/smtp: inbound SMTP and submission, and the outbound SMTP client
# offered to the queue as "transport.smtp" (see modules/smtp/README.md).
smtp_parser_sources = modules/smtp/parse.h modules/smtp/command.c \
	modules/smtp/address.c modules/smtp/params.c \
	modules/smtp/data_scanner.h modules/smtp/data_scanner.c \
	modules/smtp/message.h modules/smtp/message.c \
	modules/smtp/wire.h modules/smtp/reply.c

module_LTLIBRARIES += modules/smtp.la
modules_smtp_la_SOURCES = $(smtp_parser_sources) modules/smtp/smtp_private.h \
	modules/smtp/smtp.c modules/smtp/util.c modules/smtp/session.c \
	modules/smtp/session_cmd.c modules/smtp/session_data.c modules/smtp/session_auth.c \
	modules/smtp/received.c modules/smtp/outbound.h modules/smtp/transport.c \
	modules/smtp/client.c modules/smtp/dns.h modules/smtp/dns.c
modules_smtp_la_CFLAGS = $(AM_CFLAGS) $(CARES_CFLAGS)
modules_smtp_la_LDFLAGS = $(module_ldflags)
modules_smtp_la_LIBADD = lib/libpostern-auth.la lib/libpostern-protocol.la $(CARES_LIBS)

dist_man_MANS += modules/smtp/postern-smtp.8
EXTRA_DIST += modules/smtp/README.md

# Unit tests of the parsers, scanner, message builder and reply parser:
# pure code, compiled straight into the runner.
check_PROGRAMS += tests/unit/check_smtp
tests_unit_check_smtp_SOURCES = tests/unit/check_smtp.c $(smtp_parser_sources)
tests_unit_check_smtp_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/modules/smtp
tests_unit_check_smtp_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_smtp_LDADD = lib/libpostern-protocol.la $(CHECK_LIBS)
TESTS += tests/unit/check_smtp
