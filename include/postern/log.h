/*
 * Logging for modules. Every line carries the module name and, for the
 * connection variants, the connection id, so a session can be followed
 * through the log with one grep: "smtp[c17]: ...".
 * Output goes to syslog (facility mail), or to stderr with `posternd -F`.
 */
#ifndef POSTERN_LOG_H
#define POSTERN_LOG_H

#include <stdarg.h>
#include <postern/common.h>

struct postern_conn;

enum postern_log_level {
	POSTERN_LOG_DEBUG = 0,
	POSTERN_LOG_INFO,
	POSTERN_LOG_NOTICE,
	POSTERN_LOG_WARNING,
	POSTERN_LOG_ERROR,
	POSTERN_LOG_CRIT,
};

/* Log one line as the module. A trailing newline is not needed. */
POSTERN_API void postern_log(struct postern_mod *mod, enum postern_log_level level,
			     const char *fmt, ...) POSTERN_PRINTF(3, 4);
POSTERN_API void postern_logv(struct postern_mod *mod, enum postern_log_level level,
			      const char *fmt, va_list args) POSTERN_PRINTF(3, 0);

/* Log one line about a connection: the owner module's name and the
 * connection id are added. */
POSTERN_API void postern_conn_log(struct postern_conn *conn, enum postern_log_level level,
				  const char *fmt, ...) POSTERN_PRINTF(3, 4);

/* True when a line at this level would be written: skip expensive
 * formatting of debug output. */
POSTERN_API bool postern_log_enabled(enum postern_log_level level);

#endif
