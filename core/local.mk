# The core: a convenience library (shared by posternd and the unit tests)
# built with hidden visibility, so that only POSTERN_API symbols are
# exported from posternd to the modules it loads.
noinst_LTLIBRARIES += core/libpostern-core.la
core_libpostern_core_la_SOURCES = \
	core/core.h core/xalloc.c core/error.c core/str.c core/json.c core/log.c \
	core/loop.c core/conn_private.h core/conn.c core/conn_address.c \
	core/line_reader.h core/line_reader.c core/listener.c core/connect.c core/tls.c \
	core/event_bus.c core/module_loader.c \
	core/config_private.h core/config.c core/config_node.c core/config_override.c \
	core/settings.c core/config_dump.c \
	core/control.c core/control_private.h core/control_builtin.c \
	core/control_protocol.c core/control_protocol.h core/service.c core/daemon.c core/daemon.h
core_libpostern_core_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden \
	$(LIBCONFIG_CFLAGS) $(OPENSSL_CFLAGS)
core_libpostern_core_la_LIBADD = $(LIBCONFIG_LIBS) $(OPENSSL_LIBS) $(DL_LIBS)

sbin_PROGRAMS += core/posternd core/posternctl
core_posternd_SOURCES = core/main.c
core_posternd_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden $(LIBCONFIG_CFLAGS)
core_posternd_LDADD = core/libpostern-core.la
core_posternd_LDFLAGS = $(AM_LDFLAGS) -export-dynamic

core_posternctl_SOURCES = core/posternctl.c
core_posternctl_CFLAGS = $(AM_CFLAGS) $(LIBCONFIG_CFLAGS)
core_posternctl_LDADD = core/libpostern-core.la lib/libpostern-auth.la
