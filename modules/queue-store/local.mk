# modules/queue-store: durable queue, local delivery into Maildir, retries
# and delivery status notifications. Offers the "queue" service.
module_LTLIBRARIES += modules/queue-store.la
queue_store_core_sources = \
	modules/queue-store/queue_store.h modules/queue-store/util.c \
	modules/queue-store/crc32c.c modules/queue-store/record.c modules/queue-store/qid.c \
	modules/queue-store/qfile.c modules/queue-store/qstate.c \
	modules/queue-store/schedule.c modules/queue-store/rcpt.c modules/queue-store/dsn.c \
	modules/queue-store/fanout.c modules/queue-store/spare.c
modules_queue_store_la_SOURCES = $(queue_store_core_sources) \
	modules/queue-store/pool.c modules/queue-store/syncer.c modules/queue-store/table.c \
	modules/queue-store/spool.c modules/queue-store/receive.c \
	modules/queue-store/recipient.c modules/queue-store/scheduler.c \
	modules/queue-store/attempt.c modules/queue-store/local.c modules/queue-store/remote.c \
	modules/queue-store/notify.c modules/queue-store/events.c modules/queue-store/control.c \
	modules/queue-store/module.c
modules_queue_store_la_CFLAGS = $(AM_CFLAGS) -pthread -fvisibility=hidden
modules_queue_store_la_LDFLAGS = $(module_ldflags) -pthread
modules_queue_store_la_LIBADD = lib/libpostern-mailstore.la lib/libpostern-auth.la
EXTRA_DIST += modules/queue-store/README.md
dist_man_MANS += modules/queue-store/postern-queue-store.8

# Unit tests of the pure parts (file formats, scheduling, transitions,
# notices): compiled in, no core needed.
check_PROGRAMS += tests/unit/check_queue_store
tests_unit_check_queue_store_SOURCES = tests/unit/check_queue_store.c $(queue_store_core_sources)
tests_unit_check_queue_store_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/modules/queue-store
tests_unit_check_queue_store_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) -pthread
tests_unit_check_queue_store_LDADD = $(CHECK_LIBS)
tests_unit_check_queue_store_LDFLAGS = $(AM_LDFLAGS) -pthread
TESTS += tests/unit/check_queue_store
