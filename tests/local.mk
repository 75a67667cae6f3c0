# Unit tests: one Check runner, a suite per subsystem, fork mode.
check_PROGRAMS += tests/unit/check_core
tests_unit_check_core_SOURCES = tests/unit/check_core.c tests/unit/suites.h \
	tests/unit/test_str_json.c tests/unit/test_config.c tests/unit/test_log.c \
	tests/unit/test_loop.c tests/unit/conn_harness.h tests/unit/check_main.h \
	tests/unit/test_conn.c tests/unit/test_tls.c \
	tests/unit/test_event_bus.c tests/unit/test_module_loader.c tests/unit/test_control.c
tests_unit_check_core_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/core
tests_unit_check_core_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(LIBCONFIG_CFLAGS) $(OPENSSL_CFLAGS) \
	-DTEST_MODULE_DIR='"$(abs_top_builddir)/tests/modules/.libs"' \
	-DTEST_SRCDIR='"$(abs_top_srcdir)/tests"'
tests_unit_check_core_LDADD = core/libpostern-core.la $(CHECK_LIBS)
tests_unit_check_core_LDFLAGS = $(AM_LDFLAGS) -export-dynamic
TESTS += tests/unit/check_core

include tests/modules/local.mk
include tests/fuzz/local.mk

# Integration tests: the real daemon on loopback with real clients.
TESTS += tests/integration/run
AM_TESTS_ENVIRONMENT = \
	top_builddir='$(abs_top_builddir)'; top_srcdir='$(abs_top_srcdir)'; \
	export top_builddir top_srcdir;
# Listed one by one: a directory here would be copied from the build tree
# when one of that name exists there, build products and all.
EXTRA_DIST += tests/fuzz/corpus \
	tests/integration/fakesmtp.py \
	tests/integration/docs_util.py \
	tests/integration/harness.py \
	tests/integration/pop3fake.py \
	tests/integration/pop3fe_util.py \
	tests/integration/pop3util.py \
	tests/integration/queue_util.py \
	tests/integration/run \
	tests/integration/smtputil.py \
	tests/integration/test_core.py \
	tests/integration/test_example.py \
	tests/integration/test_pop3be.py \
	tests/integration/test_pop3be_bad.py \
	tests/integration/test_pop3be_interop.py \
	tests/integration/test_pop3be_load.py \
	tests/integration/test_pop3fe.py \
	tests/integration/test_pop3fe_chaos.py \
	tests/integration/test_pop3fe_pop3be.py \
	tests/integration/test_queue.py \
	tests/integration/test_queue_crash.py \
	tests/integration/test_queue_dsn.py \
	tests/integration/test_smtp.py \
	tests/integration/test_smtp_outbound.py \
	tests/integration/test_smtp_remote.py
