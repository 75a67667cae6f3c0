/*
 * Maildir++ quota: the "maildirsize" file in the Maildir root, as Courier,
 * maildrop, Exim and Dovecot read and write it.
 *
 *   <bytes>S[,<messages>C]        limits (0 or absent: none; "0S" if none)
 *   <bytes> <messages>            one line per change, signed; the sum of
 *   ...                           all lines is the usage
 *
 * Writers only append a line, in one write() with O_APPEND, so concurrent
 * deliveries need no lock. The file is rebuilt by counting every folder's
 * new/ and cur/ (names only: ",S=" or stat) when it is missing, at least
 * 5120 bytes long, unreadable, has other limits than configured, or says
 * "over quota" while being older than 15 minutes or holding more than the
 * summary line (the rules Dovecot follows, so both agree). The rebuilt file
 * is written to tmp/ and renamed into place, and is discarded if a folder
 * changed while we counted.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mailstore_private.h"

#define MAILDIRSIZE_MAX 5120
#define MAILDIRSIZE_STALE_SECS (15 * 60)

struct quota_state {
	uint64_t bytes_limit, messages_limit;
	int64_t bytes, messages;
	unsigned lines;           /* change lines after the limits line */
	time_t mtime;
};

static bool parse_limits(const char *line, uint64_t *bytes_r, uint64_t *messages_r)
{
	const char *p = line;

	*bytes_r = *messages_r = 0;
	while (*p != '\0') {
		char *end;
		unsigned long long v;

		if (*p < '0' || *p > '9')
			return false;
		errno = 0;
		v = strtoull(p, &end, 10);
		if (errno != 0)
			return false;
		if (*end == 'S')
			*bytes_r = v;
		else if (*end == 'C')
			*messages_r = v;
		else
			return false;
		p = end + 1;
		if (*p == ',')
			p++;
		else if (*p != '\0')
			return false;
	}
	return true;
}

static bool parse_change(const char *line, int64_t *bytes_r, int64_t *messages_r)
{
	char *end;
	long long b, m;

	errno = 0;
	b = strtoll(line, &end, 10);
	if (errno != 0 || end == line || (*end != ' ' && *end != '\t'))
		return false;
	line = end;
	m = strtoll(line, &end, 10);
	if (errno != 0 || end == line)
		return false;
	while (*end == ' ' || *end == '\t')
		end++;
	if (*end != '\0')
		return false;
	*bytes_r = b;
	*messages_r = m;
	return true;
}

/* Read maildirsize. Returns 1 usable, 0 missing or in need of a rebuild
 * (*exists_r tells which; limits are filled from the header when it could
 * be read), -1 error. */
static int quota_read(const char *path, struct quota_state *q, bool *exists_r,
		      const char **error_r)
{
	char buf[MAILDIRSIZE_MAX + 1], *line, *nl;
	struct stat st;
	ssize_t n;
	size_t len = 0;
	int fd;

	memset(q, 0, sizeof(*q));
	*exists_r = false;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		*error_r = ms_error_errno("open(%s)", path);
		return -1;
	}
	*exists_r = true;
	while (len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			*error_r = ms_error_errno("read(%s)", path);
			close(fd);
			return -1;
		}
		len += (size_t)n;
	}
	if (fstat(fd, &st) < 0) {
		*error_r = ms_error_errno("fstat(%s)", path);
		close(fd);
		return -1;
	}
	close(fd);
	q->mtime = st.st_mtime;
	/* a line being appended right now is not complete: ignore it */
	while (len > 0 && buf[len - 1] != '\n')
		len--;
	buf[len] = '\0';
	if (len == 0 || memchr(buf, '\0', len) != NULL)
		return 0;
	nl = strchr(buf, '\n');
	*nl = '\0';
	if (!parse_limits(buf, &q->bytes_limit, &q->messages_limit))
		return 0;
	if ((size_t)st.st_size >= MAILDIRSIZE_MAX)
		return 0;
	for (line = nl + 1; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
		int64_t b, m;

		*nl = '\0';
		if (!parse_change(line, &b, &m))
			return 0;
		q->bytes += b;
		q->messages += m;
		q->lines++;
	}
	if (q->bytes < 0 || q->messages < 0 || q->lines == 0)
		return 0;
	return 1;
}

/* Add up one new/ or cur/ directory. */
static int sum_dir(const char *path, struct quota_state *q, struct timespec *newest,
		   const char **error_r)
{
	struct dirent *de;
	struct stat st;
	DIR *dir = opendir(path);

	if (dir == NULL) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		*error_r = ms_error_errno("opendir(%s)", path);
		return -1;
	}
	if (fstat(dirfd(dir), &st) == 0 &&
	    (st.st_mtim.tv_sec > newest->tv_sec ||
	     (st.st_mtim.tv_sec == newest->tv_sec && st.st_mtim.tv_nsec > newest->tv_nsec)))
		*newest = st.st_mtim;
	while ((de = readdir(dir)) != NULL) {
		struct ms_name parsed;

		if (!ms_name_is_message(de->d_name))
			continue;
		ms_name_parse(de->d_name, &parsed);
		if (parsed.size == MAILSTORE_SIZE_UNKNOWN) {
			if (fstatat(dirfd(dir), de->d_name, &st, 0) < 0)
				continue;	/* gone meanwhile */
			parsed.size = (uint64_t)st.st_size;
		}
		q->bytes += (int64_t)parsed.size;
		q->messages++;
	}
	closedir(dir);
	return 0;
}

/* Call fn for the new/ and cur/ of INBOX and of every folder. */
static int for_each_msgdir(const char *root,
			   int (*fn)(const char *path, void *ctx, const char **error_r),
			   void *ctx, const char **error_r)
{
	static const char *const subs[] = { "new", "cur" };
	struct dirent *de;
	DIR *dir;
	int ret = 0;

	for (size_t i = 0; i < 2 && ret == 0; i++) {
		char *path = ms_path(root, subs[i]);

		ret = path == NULL ? -1 : fn(path, ctx, error_r);
		free(path);
	}
	if (ret < 0 || (dir = opendir(root)) == NULL)
		return ret < 0 ? -1 : 0;
	while (ret == 0 && (de = readdir(dir)) != NULL) {
		if (de->d_name[0] != '.' || !mailstore_folder_name_valid(de->d_name + 1))
			continue;
		for (size_t i = 0; i < 2 && ret == 0; i++) {
			char *path = ms_path3(root, de->d_name, subs[i]);

			ret = path == NULL ? -1 : fn(path, ctx, error_r);
			free(path);
		}
	}
	closedir(dir);
	return ret;
}

struct recalc_ctx {
	struct quota_state *q;
	struct timespec newest;
	bool changed;
};

static int recalc_sum(const char *path, void *ctx, const char **error_r)
{
	struct recalc_ctx *rc = ctx;

	return sum_dir(path, rc->q, &rc->newest, error_r);
}

static int recalc_check(const char *path, void *ctx, const char **error_r)
{
	struct recalc_ctx *rc = ctx;
	struct stat st;

	if (stat(path, &st) == 0 &&
	    (st.st_mtim.tv_sec > rc->newest.tv_sec ||
	     (st.st_mtim.tv_sec == rc->newest.tv_sec && st.st_mtim.tv_nsec > rc->newest.tv_nsec)))
		rc->changed = true;
	(void)error_r;
	return 0;
}

static int write_maildirsize(const struct mailstore_settings *set, const struct quota_state *q,
			     const char **error_r)
{
	static atomic_uint counter;
	char content[128], tmpname[128], *tmp_path, *path;
	size_t len = 0;
	int fd, ret = -1;

	/* Dovecot's spelling: "0S" when there are no limits */
	if (q->bytes_limit != 0 || q->messages_limit == 0)
		len += (size_t)snprintf(content, sizeof(content), "%" PRIu64 "S", q->bytes_limit);
	if (q->messages_limit != 0)
		len += (size_t)snprintf(content + len, sizeof(content) - len, "%s%" PRIu64 "C",
					len > 0 ? "," : "", q->messages_limit);
	len += (size_t)snprintf(content + len, sizeof(content) - len, "\n%" PRId64 " %" PRId64 "\n",
				q->bytes, q->messages);
	snprintf(tmpname, sizeof(tmpname), "maildirsize.%ld.%u", (long)getpid(),
		 atomic_fetch_add(&counter, 1));
	tmp_path = ms_path3(set->root, "tmp", tmpname);
	path = ms_path(set->root, MS_MAILDIRSIZE_NAME);
	if (tmp_path == NULL || path == NULL) {
		*error_r = ms_error("out of memory");
		goto out;
	}
	fd = open(tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		*error_r = ms_error_errno("open(%s)", tmp_path);
		goto out;
	}
	if (write(fd, content, len) != (ssize_t)len || (!set->no_fsync && fsync(fd) < 0)) {
		*error_r = ms_error_errno("write(%s)", tmp_path);
		close(fd);
		unlink(tmp_path);
		goto out;
	}
	close(fd);
	if (rename(tmp_path, path) < 0) {
		*error_r = ms_error_errno("rename(%s, %s)", tmp_path, path);
		unlink(tmp_path);
		goto out;
	}
	ret = 0;
out:
	free(tmp_path);
	free(path);
	return ret;
}

/* Count everything and write a new maildirsize with the given limits. */
static int recalc(const struct mailstore_settings *set, struct quota_state *q,
		  const char **error_r)
{
	struct recalc_ctx rc = { .q = q };

	q->bytes = q->messages = 0;
	q->lines = 1;
	if (for_each_msgdir(set->root, recalc_sum, &rc, error_r) < 0)
		return -1;
	if (for_each_msgdir(set->root, recalc_check, &rc, error_r) < 0)
		return -1;
	if (rc.changed) {
		/* a delivery or expunge raced with the count: its own line
		 * would be lost if we wrote now. Use the numbers for this one
		 * check and let the next caller count again. */
		ms_log(set, MAILSTORE_LOG_DEBUG, "%s: maildirsize not rewritten, mail changed "
		       "while counting", set->root);
		return 0;
	}
	return write_maildirsize(set, q, error_r);
}

static bool limits_configured(const struct mailstore_settings *set)
{
	return set->quota_bytes != 0 || set->quota_messages != 0;
}

/* The current state, rebuilt when needed. Returns 1, 0 when no quota
 * applies, -1. */
static int quota_load(const struct mailstore_settings *set, struct quota_state *q,
		      const char **error_r)
{
	char *path = ms_path(set->root, MS_MAILDIRSIZE_NAME);
	bool exists, over;
	int ret;

	if (path == NULL) {
		*error_r = ms_error("out of memory");
		return -1;
	}
	ret = quota_read(path, q, &exists, error_r);
	free(path);
	if (ret < 0)
		return -1;
	if (!exists && !limits_configured(set))
		return 0;
	if (limits_configured(set) &&
	    (q->bytes_limit != set->quota_bytes || q->messages_limit != set->quota_messages)) {
		q->bytes_limit = set->quota_bytes;
		q->messages_limit = set->quota_messages;
		ret = 0;
	}
	over = (q->bytes_limit != 0 && (uint64_t)q->bytes > q->bytes_limit) ||
		(q->messages_limit != 0 && (uint64_t)q->messages > q->messages_limit);
	/* "over quota" is worth a second look when the file has collected
	 * changes or is old: expunges by other software may be missing */
	if (ret > 0 && over && (q->lines > 1 || time(NULL) - q->mtime > MAILDIRSIZE_STALE_SECS))
		ret = 0;
	if (ret == 0 && recalc(set, q, error_r) < 0)
		return -1;
	return 1;
}

int ms_quota_check(const struct mailstore_settings *set, uint64_t size, const char **reason_r,
		   const char **error_r)
{
	struct quota_state q;
	int ret = quota_load(set, &q, error_r);

	if (ret <= 0)
		return ret;
	if (q.bytes_limit != 0 && (uint64_t)q.bytes + size > q.bytes_limit) {
		*reason_r = ms_error("Quota exceeded: mailbox is full (%" PRId64 " + %" PRIu64
				     " bytes over the limit of %" PRIu64 ")",
				     q.bytes, size, q.bytes_limit);
		return 1;
	}
	if (q.messages_limit != 0 && (uint64_t)q.messages + 1 > q.messages_limit) {
		*reason_r = ms_error("Quota exceeded: mailbox is full (%" PRId64
				     " messages, limit %" PRIu64 ")",
				     q.messages, q.messages_limit);
		return 1;
	}
	return 0;
}

void ms_quota_update(const struct mailstore_settings *set, int64_t bytes, int64_t messages)
{
	char line[64], *path = ms_path(set->root, MS_MAILDIRSIZE_NAME);
	int fd, len;

	if (path == NULL)
		return;
	/* Never create it here: a file with only change lines has no limits
	 * line. A missing file is rebuilt by the next check. */
	fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno != ENOENT)
			ms_log(set, MAILSTORE_LOG_WARNING, "open(%s): %s", path, strerror(errno));
		free(path);
		return;
	}
	len = snprintf(line, sizeof(line), "%" PRId64 " %" PRId64 "\n", bytes, messages);
	if (write(fd, line, (size_t)len) != len)
		ms_log(set, MAILSTORE_LOG_WARNING, "append to %s: %s", path, strerror(errno));
	close(fd);
	free(path);
}

POSTERN_API int mailstore_quota_get(const struct mailstore_settings *set_in,
				    struct mailstore_quota *quota_r, const char **error_r)
{
	struct mailstore_settings set;
	struct quota_state q;
	int ret;

	if (!ms_settings_copy(set_in, &set, error_r))
		return -1;
	if ((ret = quota_load(&set, &q, error_r)) <= 0)
		return ret;
	quota_r->bytes = (uint64_t)q.bytes;
	quota_r->messages = (uint64_t)q.messages;
	quota_r->bytes_limit = q.bytes_limit;
	quota_r->messages_limit = q.messages_limit;
	return 1;
}

POSTERN_API int mailstore_quota_recalc(const struct mailstore_settings *set_in,
				       const char **error_r)
{
	struct mailstore_settings set;
	struct quota_state q;
	char *path;
	bool exists;

	if (!ms_settings_copy(set_in, &set, error_r))
		return -1;
	if ((path = ms_path(set.root, MS_MAILDIRSIZE_NAME)) == NULL) {
		*error_r = ms_error("out of memory");
		return -1;
	}
	/* keep the file's limits unless the settings have their own */
	if (quota_read(path, &q, &exists, error_r) < 0) {
		free(path);
		return -1;
	}
	free(path);
	if (limits_configured(&set)) {
		q.bytes_limit = set.quota_bytes;
		q.messages_limit = set.quota_messages;
	}
	return recalc(&set, &q, error_r);
}
