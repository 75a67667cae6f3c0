# Shared libraries for modules (mailbox store, auth, ...): installed, with
# public headers in include/postern/.

# ---- The mailbox store and authentication libraries ----------------------
# Installed libtool libraries that do not use the core (plain malloc, error
# strings, log callbacks), so that any module, tool or test can link them.
# Hidden visibility: only the POSTERN_API functions of their headers are
# exported.
postern_include_HEADERS += include/postern/mailstore.h include/postern/auth.h \
	include/postern/auth_settings.h

lib_LTLIBRARIES = lib/libpostern-mailstore.la lib/libpostern-auth.la

lib_libpostern_mailstore_la_SOURCES = \
	lib/mailstore/mailstore_private.h lib/mailstore/util.c lib/mailstore/name.c \
	lib/mailstore/lock.c lib/mailstore/uidlist.c lib/mailstore/mailbox.c \
	lib/mailstore/sync.c lib/mailstore/deliver.c lib/mailstore/quota.c \
	lib/mailstore/folder.c lib/mailstore/dirsync.c
lib_libpostern_mailstore_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden $(OPENSSL_CFLAGS)
lib_libpostern_mailstore_la_LIBADD = $(OPENSSL_LIBS)
lib_libpostern_mailstore_la_LDFLAGS = $(AM_LDFLAGS) -version-info 1:0:1 -no-undefined

lib_libpostern_auth_la_SOURCES = \
	lib/auth/auth_private.h lib/auth/util.c lib/auth/user.c lib/auth/userdb.c \
	lib/auth/password.c lib/auth/passwd_file.c lib/auth/failures.c lib/auth/pool.c \
	lib/auth/config.c
lib_libpostern_auth_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden -pthread
lib_libpostern_auth_la_LIBADD = $(CRYPT_LIBS)
lib_libpostern_auth_la_LDFLAGS = $(AM_LDFLAGS) -version-info 1:0:1 -no-undefined -pthread

EXTRA_DIST += lib/mailstore/README.md lib/auth/README.md etc/dev-users

# Their unit tests: one Check runner each, fork mode.
check_PROGRAMS += tests/unit/check_mailstore tests/unit/check_auth
tests_unit_check_mailstore_SOURCES = tests/unit/check_mailstore.c
tests_unit_check_mailstore_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_mailstore_LDADD = lib/libpostern-mailstore.la $(CHECK_LIBS)
tests_unit_check_auth_SOURCES = tests/unit/check_auth.c
tests_unit_check_auth_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) -pthread \
	-DTEST_DEV_USERS='"$(abs_top_srcdir)/etc/dev-users"'
tests_unit_check_auth_LDADD = lib/libpostern-auth.la $(CHECK_LIBS)
tests_unit_check_auth_LDFLAGS = $(AM_LDFLAGS) -pthread
TESTS += tests/unit/check_mailstore tests/unit/check_auth

# libtool relinks a library against the ones it uses at install time, so
# those come first: protocol before proxy.
include lib/protocol/local.mk

# The proxies' back-end directory and shared proxy machinery (pop3fe, imap4fe).
include lib/directory/local.mk
include lib/proxy/local.mk
