# libpostern-protocol: pure helpers every protocol module needs (network
# lists, strict base64, SASL PLAIN), so that no module carries its own copy.
postern_include_HEADERS += include/postern/cidr.h include/postern/sasl.h
lib_LTLIBRARIES += lib/libpostern-protocol.la
lib_libpostern_protocol_la_SOURCES = lib/protocol/cidr.c lib/protocol/base64.c \
	lib/protocol/sasl_plain.c
lib_libpostern_protocol_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden
lib_libpostern_protocol_la_LDFLAGS = $(AM_LDFLAGS) -version-info 0:0:0 -no-undefined

check_PROGRAMS += tests/unit/check_protocol
tests_unit_check_protocol_SOURCES = tests/unit/check_protocol.c
tests_unit_check_protocol_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_protocol_LDADD = lib/libpostern-protocol.la $(CHECK_LIBS)
TESTS += tests/unit/check_protocol
