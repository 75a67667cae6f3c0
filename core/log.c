/*
 * Logging: syslog, or stderr in the foreground (`posternd -F`).
 *
 * The log sink is process-wide state by nature (syslog is), so it lives
 * here rather than in a context passed around. Every line names its module
 * and, for connections, the connection id. Control bytes in messages are
 * escaped as \xNN: log lines often quote client input, and a client must
 * not be able to forge or split log lines.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include "core.h"

#define LOG_LINE_MAX 4096

static struct {
	bool foreground;
	bool opened;
	enum postern_log_level min_level;
} log_state = { .foreground = true, .min_level = POSTERN_LOG_INFO };

static const struct {
	const char *name;
	enum postern_log_level level;
	int syslog_priority;
} log_levels[] = {
	{ "debug", POSTERN_LOG_DEBUG, LOG_DEBUG },
	{ "info", POSTERN_LOG_INFO, LOG_INFO },
	{ "notice", POSTERN_LOG_NOTICE, LOG_NOTICE },
	{ "warning", POSTERN_LOG_WARNING, LOG_WARNING },
	{ "error", POSTERN_LOG_ERROR, LOG_ERR },
	{ "crit", POSTERN_LOG_CRIT, LOG_CRIT },
};

static const struct {
	const char *name;
	int facility;
} log_facilities[] = {
	{ "mail", LOG_MAIL },     { "daemon", LOG_DAEMON }, { "user", LOG_USER },
	{ "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 }, { "local2", LOG_LOCAL2 },
	{ "local3", LOG_LOCAL3 }, { "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
	{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
};

int log_open(bool foreground, const char *facility, const char **error_r)
{
	int syslog_facility = -1;

	for (size_t i = 0; i < sizeof(log_facilities) / sizeof(log_facilities[0]); i++) {
		if (strcasecmp(facility, log_facilities[i].name) == 0)
			syslog_facility = log_facilities[i].facility;
	}
	if (syslog_facility < 0) {
		*error_r = "unknown syslog facility";
		return -1;
	}
	log_state.foreground = foreground;
	if (!foreground && !log_state.opened) {
		openlog("posternd", LOG_PID | LOG_NDELAY, syslog_facility);
		log_state.opened = true;
	}
	return 0;
}

int log_set_level(const char *level, const char **error_r)
{
	for (size_t i = 0; i < sizeof(log_levels) / sizeof(log_levels[0]); i++) {
		if (strcasecmp(level, log_levels[i].name) == 0) {
			log_state.min_level = log_levels[i].level;
			return 0;
		}
	}
	*error_r = "unknown log level (use debug, info, notice, warning or error)";
	return -1;
}

bool postern_log_enabled(enum postern_log_level level)
{
	return level >= log_state.min_level;
}

/* Copy `src` to `dst` with control bytes escaped; always terminates. */
static void log_escape(char *dst, size_t dst_size, const char *src)
{
	size_t out = 0;

	for (; *src != '\0' && out + 5 < dst_size; src++) {
		unsigned char c = (unsigned char)*src;

		if (c < 0x20 || c == 0x7f) {
			out += (size_t)snprintf(dst + out, dst_size - out, "\\x%02x", c);
		} else {
			dst[out++] = (char)c;
		}
	}
	dst[out] = '\0';
}

static void log_write(enum postern_log_level level, const char *prefix, const char *fmt,
		      va_list args) POSTERN_PRINTF(3, 0);

static void log_write(enum postern_log_level level, const char *prefix, const char *fmt,
		      va_list args)
{
	char message[LOG_LINE_MAX], escaped[LOG_LINE_MAX];

	if (!postern_log_enabled(level))
		return;
	vsnprintf(message, sizeof(message), fmt, args);
	log_escape(escaped, sizeof(escaped), message);

	if (level > POSTERN_LOG_CRIT)
		level = POSTERN_LOG_CRIT;
	if (!log_state.foreground) {
		syslog(log_levels[level].syslog_priority, "%s: %s", prefix, escaped);
		return;
	}
	struct timeval now;
	struct tm tm;
	char stamp[32];

	gettimeofday(&now, NULL);
	gmtime_r(&now.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ posternd[%ld]: %s: %s: %s\n", stamp,
		(long)(now.tv_usec / 1000), (long)getpid(), prefix, log_levels[level].name,
		escaped);
}

void postern_logv(struct postern_mod *mod, enum postern_log_level level, const char *fmt,
		  va_list args)
{
	log_write(level, mod != NULL ? postern_mod_name(mod) : "core", fmt, args);
}

void postern_log(struct postern_mod *mod, enum postern_log_level level, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	postern_logv(mod, level, fmt, args);
	va_end(args);
}

void postern_conn_log(struct postern_conn *conn, enum postern_log_level level, const char *fmt,
		      ...)
{
	char prefix[128];
	va_list args;

	snprintf(prefix, sizeof(prefix), "%s[c%llu]", postern_mod_name(postern_conn_mod(conn)),
		 (unsigned long long)postern_conn_id(conn));
	va_start(args, fmt);
	log_write(level, prefix, fmt, args);
	va_end(args);
}

void log_core(enum postern_log_level level, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	log_write(level, "core", fmt, args);
	va_end(args);
}
