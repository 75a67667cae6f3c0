# Modules used only by the tests (never installed). -rpath makes libtool
# build real shared objects in tests/modules/.libs/.
testmodule_ldflags = $(module_ldflags) -rpath /nowhere

# The module loader's test modules (tests/unit/test_module_loader.c): one
# good pair, one whose init fails, one holding a connection at unload, and
# one for each way a file is refused.
check_LTLIBRARIES += tests/modules/tm_base.la
tests_modules_tm_base_la_SOURCES = tests/modules/tm_base.c tests/modules/recorder.h
tests_modules_tm_base_la_LDFLAGS = $(testmodule_ldflags)
check_LTLIBRARIES += tests/modules/tm_app.la
tests_modules_tm_app_la_SOURCES = tests/modules/tm_app.c tests/modules/recorder.h
tests_modules_tm_app_la_LDFLAGS = $(testmodule_ldflags)
check_LTLIBRARIES += tests/modules/tm_fail_init.la
tests_modules_tm_fail_init_la_SOURCES = tests/modules/tm_fail_init.c tests/modules/recorder.h
tests_modules_tm_fail_init_la_LDFLAGS = $(testmodule_ldflags)
check_LTLIBRARIES += tests/modules/tm_conn.la
tests_modules_tm_conn_la_SOURCES = tests/modules/tm_conn.c tests/modules/recorder.h
tests_modules_tm_conn_la_LDFLAGS = $(testmodule_ldflags)
check_LTLIBRARIES += tests/modules/tm_small.la
tests_modules_tm_small_la_SOURCES = tests/modules/tm_small.c tests/modules/recorder.h
tests_modules_tm_small_la_LDFLAGS = $(testmodule_ldflags)
check_LTLIBRARIES += tests/modules/tm_bad_magic.la
tests_modules_tm_bad_magic_la_SOURCES = tests/modules/tm_bad_magic.c
tests_modules_tm_bad_magic_la_LDFLAGS = $(testmodule_ldflags)
check_LTLIBRARIES += tests/modules/tm_abi_major.la
tests_modules_tm_abi_major_la_SOURCES = tests/modules/tm_abi_major.c
tests_modules_tm_abi_major_la_LDFLAGS = $(testmodule_ldflags)
check_LTLIBRARIES += tests/modules/tm_abi_minor.la
tests_modules_tm_abi_minor_la_SOURCES = tests/modules/tm_abi_minor.c
tests_modules_tm_abi_minor_la_LDFLAGS = $(testmodule_ldflags)
check_LTLIBRARIES += tests/modules/tm_big.la
tests_modules_tm_big_la_SOURCES = tests/modules/tm_big.c
tests_modules_tm_big_la_LDFLAGS = $(testmodule_ldflags)
check_LTLIBRARIES += tests/modules/tm_no_symbol.la
tests_modules_tm_no_symbol_la_SOURCES = tests/modules/tm_no_symbol.c
tests_modules_tm_no_symbol_la_LDFLAGS = $(testmodule_ldflags)
check_LTLIBRARIES += tests/modules/tm_undefined.la
tests_modules_tm_undefined_la_SOURCES = tests/modules/tm_undefined.c
tests_modules_tm_undefined_la_LDFLAGS = $(testmodule_ldflags)
check_LTLIBRARIES += tests/modules/tm_missing_dep.la
tests_modules_tm_missing_dep_la_SOURCES = tests/modules/tm_missing_dep.c
tests_modules_tm_missing_dep_la_LDFLAGS = $(testmodule_ldflags)
check_LTLIBRARIES += tests/modules/tm_cycle_a.la
tests_modules_tm_cycle_a_la_SOURCES = tests/modules/tm_cycle_a.c
tests_modules_tm_cycle_a_la_LDFLAGS = $(testmodule_ldflags)
check_LTLIBRARIES += tests/modules/tm_cycle_b.la
tests_modules_tm_cycle_b_la_SOURCES = tests/modules/tm_cycle_b.c
tests_modules_tm_cycle_b_la_LDFLAGS = $(testmodule_ldflags)
check_LTLIBRARIES += tests/modules/tm_wrong_name.la
tests_modules_tm_wrong_name_la_SOURCES = tests/modules/tm_wrong_name.c
tests_modules_tm_wrong_name_la_LDFLAGS = $(testmodule_ldflags)
check_LTLIBRARIES += tests/modules/tm_flags.la
tests_modules_tm_flags_la_SOURCES = tests/modules/tm_flags.c
tests_modules_tm_flags_la_LDFLAGS = $(testmodule_ldflags)

# testecho: a line protocol for the core's integration tests.
check_LTLIBRARIES += tests/modules/testecho.la
tests_modules_testecho_la_SOURCES = tests/modules/testecho.c
tests_modules_testecho_la_LDFLAGS = $(testmodule_ldflags)

# testsubmit: a line protocol onto the "queue" service, and testtransport:
# a fake "transport.smtp" (the queue-store module's integration tests).
check_LTLIBRARIES += tests/modules/testsubmit.la tests/modules/testtransport.la
tests_modules_testsubmit_la_SOURCES = tests/modules/testsubmit.c
tests_modules_testsubmit_la_LDFLAGS = $(testmodule_ldflags)
tests_modules_testtransport_la_SOURCES = tests/modules/testtransport.c
tests_modules_testtransport_la_LDFLAGS = $(testmodule_ldflags)

# testqueue: the smtp module's stand-in for queue-store (a "queue" service
# with a failing write, a failing or slow commit), built as queue-store.so
# in its own directory so that only the tests that ask for it get it.
check_LTLIBRARIES += tests/modules/testqueue/queue-store.la
tests_modules_testqueue_queue_store_la_SOURCES = tests/modules/testqueue.c
tests_modules_testqueue_queue_store_la_LDFLAGS = $(testmodule_ldflags)
