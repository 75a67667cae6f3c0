/*
 * Small helpers of the authentication library: error strings in a
 * per-thread buffer (the library cannot use the core's pools), the log
 * callback, and printing of client-supplied text into log lines.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth_private.h"

static _Thread_local char auth_errbuf[512];

const char *auth_error(const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	vsnprintf(auth_errbuf, sizeof(auth_errbuf), fmt, args);
	va_end(args);
	return auth_errbuf;
}

void auth_log(postern_auth_log_cb *log, void *ctx, enum postern_auth_log_level level,
	      const char *fmt, ...)
{
	char buf[1024];
	va_list args;

	if (log == NULL)
		return;
	va_start(args, fmt);
	vsnprintf(buf, sizeof(buf), fmt, args);
	va_end(args);
	log(ctx, level, buf);
}

void auth_printable(char *buf, size_t size, const char *text, size_t max)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, i;

	if (size == 0)
		return;
	for (i = 0; text[i] != '\0' && i < max; i++) {
		unsigned char c = (unsigned char)text[i];

		if (o + 8 >= size)
			break;
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			buf[o++] = (char)c;
		} else {
			buf[o++] = '\\';
			buf[o++] = 'x';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 15];
		}
	}
	if (text[i] != '\0' && o + 4 < size) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
}

char *auth_user_canonical(const char *user)
{
	size_t len = user == NULL ? 0 : strlen(user);
	char *out;

	if (len == 0 || len > AUTH_USER_MAX)
		return NULL;
	out = malloc(len + 1);
	if (out == NULL)
		return NULL;
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = (unsigned char)user[i];

		if (i < len && (c < 0x20 || c == 0x7f || c == ':')) {
			free(out);
			return NULL;
		}
		out[i] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
	}
	return out;
}
