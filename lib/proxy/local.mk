# libpostern-proxy: the proxy machinery of the mail front-ends (pop3fe,
# imap4fe): client sessions until login, authentication, routing through
# the directory, back-end login with failover, the byte relay, health
# checks, `posternctl backends`. It runs inside posternd and calls the
# core's public API, resolved from posternd when a front-end module is
# loaded: hence no -no-undefined here.
postern_include_HEADERS += include/postern/proxy.h
lib_LTLIBRARIES += lib/libpostern-proxy.la

lib_libpostern_proxy_la_SOURCES = \
	lib/proxy/proxy_private.h lib/proxy/settings.c lib/proxy/proxy.c \
	lib/proxy/session.c lib/proxy/backend.c lib/proxy/relay.c \
	lib/proxy/relay_track.c lib/proxy/health.c lib/proxy/control.c lib/proxy/reload.c
lib_libpostern_proxy_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden
lib_libpostern_proxy_la_LIBADD = lib/libpostern-auth.la lib/libpostern-directory.la \
	lib/libpostern-protocol.la
lib_libpostern_proxy_la_LDFLAGS = $(AM_LDFLAGS) -version-info 1:0:1

EXTRA_DIST += lib/proxy/README.md
