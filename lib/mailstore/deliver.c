/*
 * Delivery into a Maildir, the qmail way, made durable:
 *
 *   1. create tmp/<unique> with O_EXCL and write the message, counting its
 *      size and its CRLF size as it goes; fsync it;
 *   2. check the quota now that the size is known (over: remove the tmp
 *      file, report MAILSTORE_DELIVER_OVER_QUOTA: nothing was delivered);
 *   3. link() it into new/ as <unique>,S=<size>,W=<crlf>[,D=<id>] (link,
 *      not rename, because link never replaces an existing name);
 *   4. fsync new/ so the name survives a crash (shared with concurrent
 *      deliveries to the folder when settings.dirsync is set, dirsync.c),
 *      then unlink the tmp file;
 *   5. add the message to maildirsize.
 *
 * Only after step 4 is the delivery reported done. A crash before it leaves
 * at most a file in tmp/ (removed after 36 hours by the next sync); a crash
 * after it but before the caller recorded success is what
 * mailstore_delivered() is for: the ",D=" field in the name says "this
 * queue entry and recipient were delivered".
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mailstore_private.h"

struct crlf_counter {
	uint64_t size;
	uint64_t bare_lf;
	char prev;
};

static void count(struct crlf_counter *c, const char *data, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n' && c->prev != '\r')
			c->bare_lf++;
		c->prev = data[i];
	}
	c->size += len;
}

static int write_chunk(int fd, const char *data, size_t len, struct crlf_counter *c)
{
	count(c, data, len);
	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Write the message body to fd. */
static int write_body(int fd, const struct mailstore_delivery *d, struct crlf_counter *c,
		      const char *path, const char **error_r)
{
	char buf[65536];
	ssize_t n;

	if (d->data != NULL) {
		if (write_chunk(fd, d->data, d->size, c) < 0) {
			*error_r = ms_error_errno("write(%s)", path);
			return -1;
		}
		return 0;
	}
	while ((n = read(d->fd, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			*error_r = ms_error_errno("reading the message to deliver");
			return -1;
		}
		if (write_chunk(fd, buf, (size_t)n, c) < 0) {
			*error_r = ms_error_errno("write(%s)", path);
			return -1;
		}
	}
	return 0;
}

/* Create tmp/<unique>, write and fsync it. */
static int write_tmp(const struct mailstore_settings *set, const char *dir,
		     const struct mailstore_delivery *d, char base[MS_NAME_MAX + 1],
		     char **tmp_path_r, struct crlf_counter *c, const char **error_r)
{
	char *path = NULL;
	int fd = -1;

	for (int attempt = 0; attempt < 10 && fd < 0; attempt++) {
		if (ms_name_unique(base, MS_NAME_MAX + 1, error_r) < 0)
			return -1;
		free(path);
		if ((path = ms_path3(dir, "tmp", base)) == NULL) {
			*error_r = ms_error("out of memory");
			return -1;
		}
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0 && errno != EEXIST) {
			*error_r = ms_error_errno("open(%s)", path);
			free(path);
			return -1;
		}
	}
	if (fd < 0) {
		*error_r = ms_error("%s/tmp: could not find a unique name", dir);
		free(path);
		return -1;
	}
	if (write_body(fd, d, c, path, error_r) < 0)
		goto fail;
	if (d->received != 0) {
		struct timespec ts[2] = { { .tv_sec = d->received }, { .tv_sec = d->received } };

		if (futimens(fd, ts) < 0) {
			*error_r = ms_error_errno("futimens(%s)", path);
			goto fail;
		}
	}
	if (!set->no_fsync && fsync(fd) < 0) {
		*error_r = ms_error_errno("fsync(%s)", path);
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		*error_r = ms_error_errno("close(%s)", path);
		goto fail;
	}
	*tmp_path_r = path;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	unlink(path);
	free(path);
	return -1;
}

/* The final name: base, sizes, id, and flags for cur/. */
static int final_name(const char *base, const struct crlf_counter *c, const char *id_field,
		      unsigned flags, char name[MS_NAME_MAX + 1], const char **error_r)
{
	char tmp[MS_NAME_MAX + 1];
	int len = snprintf(tmp, sizeof(tmp), "%s,S=%llu,W=%llu%s", base,
			   (unsigned long long)c->size,
			   (unsigned long long)(c->size + c->bare_lf), id_field);

	if (len < 0 || len > MS_NAME_MAX) {
		*error_r = ms_error("file name too long");
		return -1;
	}
	if (flags == 0) {
		memcpy(name, tmp, (size_t)len + 1);
		return 0;
	}
	if (ms_name_with_flags(tmp, flags, name, MS_NAME_MAX + 1) < 0) {
		*error_r = ms_error("file name too long");
		return -1;
	}
	return 0;
}

static int check_delivery(const struct mailstore_delivery *d, const char **error_r)
{
	if (d == NULL || d->struct_size < sizeof(*d)) {
		*error_r = ms_error("mailstore delivery: struct_size %u, need %zu "
				    "(use MAILSTORE_DELIVERY_INIT)",
				    d == NULL ? 0 : d->struct_size, sizeof(*d));
		return -1;
	}
	if ((d->data == NULL) == (d->fd < 0)) {
		*error_r = ms_error("mailstore delivery: give either data or fd");
		return -1;
	}
	if ((d->flags & ~MAILSTORE_FLAGS_ALL) != 0) {
		*error_r = ms_error("mailstore delivery: unknown flags");
		return -1;
	}
	return 0;
}

/* Make sure the folder exists (INBOX is created on first delivery). */
static int ensure_folder(const struct mailstore_settings *set, const struct mailstore_delivery *d,
			 const char *dir, const char **error_r)
{
	struct stat st;
	char *tmp = ms_path(dir, "tmp");
	int ret;

	if (tmp == NULL) {
		*error_r = ms_error("out of memory");
		return -1;
	}
	ret = stat(tmp, &st);
	free(tmp);
	if (ret == 0)
		return 0;
	if (ms_folder_is_inbox(d->folder) || d->create_folder)
		return ms_folder_make(set, dir, ms_folder_is_inbox(d->folder), error_r);
	*error_r = ms_error("folder %s does not exist", d->folder);
	return -1;
}

POSTERN_API enum mailstore_deliver_result
mailstore_deliver(const struct mailstore_settings *set_in, const struct mailstore_delivery *d,
		  char **filename_r, const char **error_r)
{
	struct mailstore_settings set;
	struct crlf_counter c = { 0, 0, '\0' };
	char base[MS_NAME_MAX + 1], name[MS_NAME_MAX + 1], id_field[MS_ID_FIELD_LEN + 1] = "";
	char *dir = NULL, *tmp_path = NULL, *final_path = NULL, *final_dir = NULL;
	enum mailstore_deliver_result result = MAILSTORE_DELIVER_FAILED;
	const char *reason;
	int ret;

	if (filename_r != NULL)
		*filename_r = NULL;
	if (!ms_settings_copy(set_in, &set, error_r) || check_delivery(d, error_r) < 0)
		return MAILSTORE_DELIVER_FAILED;
	if (d->id != NULL && ms_name_id_field(d->id, id_field, error_r) < 0)
		return MAILSTORE_DELIVER_FAILED;
	if (ms_folder_dir(set.root, d->folder, &dir, error_r) < 0)
		return MAILSTORE_DELIVER_FAILED;
	if (ensure_folder(&set, d, dir, error_r) < 0 ||
	    write_tmp(&set, dir, d, base, &tmp_path, &c, error_r) < 0)
		goto out;
	ret = ms_quota_check(&set, c.size, &reason, error_r);
	if (ret != 0) {
		if (ret > 0) {
			*error_r = reason;
			result = MAILSTORE_DELIVER_OVER_QUOTA;
		}
		unlink(tmp_path);
		goto out;
	}
	if (final_name(base, &c, id_field, d->flags, name, error_r) < 0) {
		unlink(tmp_path);
		goto out;
	}
	final_dir = ms_path(dir, d->flags != 0 ? "cur" : "new");
	final_path = final_dir == NULL ? NULL : ms_path(final_dir, name);
	if (final_path == NULL) {
		*error_r = ms_error("out of memory");
		unlink(tmp_path);
		goto out;
	}
	if (link(tmp_path, final_path) < 0) {
		/* Filesystems without hard links: rename, which is as atomic
		 * but would replace an existing name (ours are unique). */
		if ((errno != EPERM && errno != ENOTSUP && errno != EXDEV) ||
		    rename(tmp_path, final_path) < 0) {
			*error_r = ms_error_errno("link(%s, %s)", tmp_path, final_path);
			unlink(tmp_path);
			goto out;
		}
	}
	if (!set.no_fsync && ms_dirsync(set.dirsync, final_dir, error_r) < 0) {
		/* We cannot promise durability: take it back so the sender
		 * retries, rather than risk losing an acknowledged message. */
		unlink(final_path);
		unlink(tmp_path);
		goto out;
	}
	if (unlink(tmp_path) < 0 && errno != ENOENT)
		ms_log(&set, MAILSTORE_LOG_WARNING, "unlink(%s): %s", tmp_path, strerror(errno));
	ms_quota_update(&set, (int64_t)c.size, 1);
	if (filename_r != NULL)
		*filename_r = strdup(name);
	result = MAILSTORE_DELIVERED;
out:
	free(dir);
	free(tmp_path);
	free(final_dir);
	free(final_path);
	return result;
}

static int dir_has_id(const char *dir, const char *sub, const char *field, const char **error_r)
{
	char *path = ms_path(dir, sub);
	struct dirent *de;
	DIR *d;
	int ret = 0;

	if (path == NULL) {
		*error_r = ms_error("out of memory");
		return -1;
	}
	d = opendir(path);
	if (d == NULL) {
		ret = errno == ENOENT ? 0 : -1;
		if (ret < 0)
			*error_r = ms_error_errno("opendir(%s)", path);
		free(path);
		return ret;
	}
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		if (ms_name_has_id_field(de->d_name, field)) {
			ret = 1;
			break;
		}
		errno = 0;
	}
	if (de == NULL && errno != 0) {
		*error_r = ms_error_errno("readdir(%s)", path);
		ret = -1;
	}
	closedir(d);
	free(path);
	return ret;
}

POSTERN_API int mailstore_delivered(const struct mailstore_settings *set_in, const char *folder,
				    const char *id, const char **error_r)
{
	struct mailstore_settings set;
	char field[MS_ID_FIELD_LEN + 1];
	char *dir;
	int ret;

	if (!ms_settings_copy(set_in, &set, error_r) || id == NULL ||
	    ms_name_id_field(id, field, error_r) < 0 ||
	    ms_folder_dir(set.root, folder, &dir, error_r) < 0) {
		if (id == NULL)
			*error_r = ms_error("no delivery id");
		return -1;
	}
	/* new/ first: cur/ is checked after it, so a message moved from new/
	 * to cur/ while we look is seen in one of them */
	ret = dir_has_id(dir, "new", field, error_r);
	if (ret == 0)
		ret = dir_has_id(dir, "cur", field, error_r);
	free(dir);
	return ret;
}
