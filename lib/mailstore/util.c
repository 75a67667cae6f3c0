/*
 * Small helpers of the mailbox store: error strings in a per-thread buffer
 * (the library cannot use the core's pools), the optional log callback,
 * path building, directory fsync and creation, settings defaults.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailstore_private.h"

/* Valid until the next call into the library from the same thread, as the
 * public header promises. */
static _Thread_local char ms_errbuf[1024];

const char *ms_error(const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	vsnprintf(ms_errbuf, sizeof(ms_errbuf), fmt, args);
	va_end(args);
	return ms_errbuf;
}

const char *ms_error_errno(const char *fmt, ...)
{
	int saved = errno;
	va_list args;
	size_t len;

	va_start(args, fmt);
	vsnprintf(ms_errbuf, sizeof(ms_errbuf), fmt, args);
	va_end(args);
	len = strlen(ms_errbuf);
	snprintf(ms_errbuf + len, sizeof(ms_errbuf) - len, ": %s", strerror(saved));
	errno = saved;
	return ms_errbuf;
}

void ms_log(const struct mailstore_settings *set, enum mailstore_log_level level,
	    const char *fmt, ...)
{
	char buf[1024];
	va_list args;

	if (set == NULL || set->log == NULL)
		return;
	va_start(args, fmt);
	vsnprintf(buf, sizeof(buf), fmt, args);
	va_end(args);
	set->log(set->log_ctx, level, buf);
}

char *ms_path(const char *dir, const char *name)
{
	size_t dlen = strlen(dir), nlen = strlen(name);
	char *path = malloc(dlen + nlen + 2);

	if (path == NULL)
		return NULL;
	memcpy(path, dir, dlen);
	path[dlen] = '/';
	memcpy(path + dlen + 1, name, nlen + 1);
	return path;
}

char *ms_path3(const char *dir, const char *sub, const char *name)
{
	size_t dlen = strlen(dir), slen = strlen(sub), nlen = strlen(name);
	char *path = malloc(dlen + slen + nlen + 3);

	if (path == NULL)
		return NULL;
	memcpy(path, dir, dlen);
	path[dlen] = '/';
	memcpy(path + dlen + 1, sub, slen);
	path[dlen + 1 + slen] = '/';
	memcpy(path + dlen + slen + 2, name, nlen + 1);
	return path;
}

int ms_fsync_dir(const char *dir, const char **error_r)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0) {
		*error_r = ms_error_errno("open(%s)", dir);
		return -1;
	}
	if (fsync(fd) < 0 && errno != EINVAL) {
		*error_r = ms_error_errno("fsync(%s)", dir);
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int ms_mkdir(const char *path, const char **error_r)
{
	if (mkdir(path, 0700) == 0 || errno == EEXIST)
		return 0;
	*error_r = ms_error_errno("mkdir(%s)", path);
	return -1;
}

bool ms_settings_copy(const struct mailstore_settings *in, struct mailstore_settings *out,
		      const char **error_r)
{
	/* A caller built against an older header passes a shorter struct:
	 * the fields it does not know are zero (their defaults). */
	if (in == NULL || in->struct_size < MS_SETTINGS_SIZE_0_1) {
		*error_r = ms_error("mailstore settings: struct_size %u, need at least %zu "
				    "(use MAILSTORE_SETTINGS_INIT)",
				    in == NULL ? 0 : in->struct_size, MS_SETTINGS_SIZE_0_1);
		return false;
	}
	if (in->root == NULL || in->root[0] == '\0') {
		*error_r = ms_error("mailstore settings: no Maildir root");
		return false;
	}
	memset(out, 0, sizeof(*out));
	memcpy(out, in, in->struct_size < sizeof(*out) ? in->struct_size : sizeof(*out));
	out->struct_size = sizeof(*out);
	if (out->lock_timeout_secs == 0)
		out->lock_timeout_secs = MS_DEFAULT_LOCK_TIMEOUT;
	if (out->lock_stale_secs == 0)
		out->lock_stale_secs = MS_DEFAULT_LOCK_STALE;
	return true;
}

void ms_hostname(char *buf, size_t size)
{
	char host[64];
	size_t i, o = 0;

	if (gethostname(host, sizeof(host)) < 0)
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	for (i = 0; host[i] != '\0' && o + 5 < size; i++) {
		const char *esc = NULL;

		switch (host[i]) {
		case '/': esc = "\\057"; break;
		case ':': esc = "\\072"; break;
		case ',': esc = "\\054"; break;
		}
		if (esc != NULL) {
			memcpy(buf + o, esc, 4);
			o += 4;
		} else {
			buf[o++] = host[i];
		}
	}
	buf[o] = '\0';
}
