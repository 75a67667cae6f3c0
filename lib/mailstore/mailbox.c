/*
 * An open folder: its paths, the message list of the last sync, and the
 * per-message operations (CRLF size, reading, flags, expunge).
 *
 * Other processes rename and delete message files at any time (a flag
 * change by another session, Dovecot, a MUA), so every operation that
 * finds its file missing looks for the message's base name again before
 * deciding it was expunged.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailstore_private.h"

POSTERN_API int mailstore_open(const struct mailstore_settings *set, const char *folder,
			       unsigned open_flags, struct mailstore **box_r,
			       const char **error_r)
{
	struct mailstore *box = calloc(1, sizeof(*box));
	struct stat st;

	*box_r = NULL;
	if (box == NULL) {
		*error_r = ms_error("out of memory");
		return -1;
	}
	if (!ms_settings_copy(set, &box->set, error_r))
		goto fail;
	/* own the root before anything can fail: mailstore_close() frees it */
	box->set.root = strdup(set->root);
	if (box->set.root == NULL) {
		*error_r = ms_error("out of memory");
		goto fail;
	}
	if (ms_folder_dir(box->set.root, folder, &box->dir, error_r) < 0)
		goto fail;
	box->folder = strdup(ms_folder_is_inbox(folder) ? "INBOX" : folder);
	box->new_dir = ms_path(box->dir, "new");
	box->cur_dir = ms_path(box->dir, "cur");
	box->tmp_dir = ms_path(box->dir, "tmp");
	box->uidlist_path = ms_path(box->dir, MS_UIDLIST_NAME);
	box->lock_path = ms_path(box->dir, MS_UIDLIST_LOCK_NAME);
	if (box->set.root == NULL || box->folder == NULL || box->new_dir == NULL ||
	    box->cur_dir == NULL || box->tmp_dir == NULL || box->uidlist_path == NULL ||
	    box->lock_path == NULL) {
		*error_r = ms_error("out of memory");
		goto fail;
	}
	box->open_flags = open_flags;
	if ((open_flags & MAILSTORE_OPEN_CREATE) != 0 &&
	    ms_folder_make(&box->set, box->dir, ms_folder_is_inbox(folder), error_r) < 0)
		goto fail;
	if (stat(box->cur_dir, &st) < 0 || stat(box->new_dir, &st) < 0) {
		if (errno == ENOENT)
			*error_r = ms_error("folder %s does not exist (%s)", box->folder, box->dir);
		else
			*error_r = ms_error_errno("stat(%s)", box->cur_dir);
		goto fail;
	}
	*box_r = box;
	return 0;
fail:
	mailstore_close(&box);
	return -1;
}

/* Write sizes learned by reading messages: a sync does it. It must not
 * move new/ to cur/ now: messages delivered during the session were never
 * shown to its client and must stay "recent" for the next one. */
static void box_flush_cache(struct mailstore *box)
{
	unsigned flags = box->open_flags;
	const char *error;

	if (!box->cache_dirty)
		return;
	box->open_flags &= ~(unsigned)MAILSTORE_OPEN_MOVE_NEW;
	if (mailstore_sync(box, &error) < 0)
		ms_log(&box->set, MAILSTORE_LOG_WARNING, "%s: saving cached sizes: %s",
		       box->dir, error);
	box->open_flags = flags;
}

POSTERN_API void mailstore_close(struct mailstore **boxp)
{
	struct mailstore *box = boxp == NULL ? NULL : *boxp;

	if (box == NULL)
		return;
	if (box->uidlist_path != NULL && box->ul.loaded)
		box_flush_cache(box);
	ms_uidlist_clear(&box->ul);
	free((char *)box->set.root);
	free(box->folder);
	free(box->dir);
	free(box->new_dir);
	free(box->cur_dir);
	free(box->tmp_dir);
	free(box->uidlist_path);
	free(box->lock_path);
	free(box);
	*boxp = NULL;
}

POSTERN_API uint32_t mailstore_uidvalidity(const struct mailstore *box)
{
	return box->ul.uidvalidity;
}

POSTERN_API uint32_t mailstore_uidnext(const struct mailstore *box)
{
	return box->ul.nextuid;
}

POSTERN_API const char *mailstore_guid(const struct mailstore *box)
{
	return box->ul.guid;
}

POSTERN_API unsigned mailstore_count(const struct mailstore *box)
{
	return box->ul.count;
}

POSTERN_API const struct mailstore_msg *mailstore_msg(const struct mailstore *box, unsigned seq)
{
	if (seq >= box->ul.count)
		return NULL;
	return &box->ul.recs[seq].msg;
}

POSTERN_API int mailstore_find_uid(const struct mailstore *box, uint32_t uid)
{
	unsigned lo = 0, hi = box->ul.count;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		uint32_t muid = box->ul.recs[mid].msg.uid;

		if (muid == uid)
			return (int)mid;
		if (muid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

char *ms_box_rec_path(const struct mailstore *box, const struct ms_rec *rec)
{
	return ms_path(rec->msg.in_new ? box->new_dir : box->cur_dir, rec->name);
}

static int rec_set_name(struct ms_rec *rec, const char *name, bool in_new)
{
	char *copy;

	if (strcmp(rec->name, name) != 0) {
		if ((copy = strdup(name)) == NULL)
			return -1;
		free(rec->name);
		rec->name = copy;
		rec->msg.filename = copy;
	}
	rec->msg.in_new = in_new;
	return 0;
}

/* Look for rec's base in one directory. 1 found, 0 not, -1 error. */
static int relocate_in(struct mailstore *box, struct ms_rec *rec, const char *dirpath,
		       bool in_new, const char **error_r)
{
	struct dirent *de;
	DIR *dir = opendir(dirpath);
	int ret = 0;

	if (dir == NULL) {
		*error_r = ms_error_errno("opendir(%s)", dirpath);
		return -1;
	}
	while ((de = readdir(dir)) != NULL) {
		if (strncmp(de->d_name, rec->name, rec->base_len) != 0 ||
		    (de->d_name[rec->base_len] != '\0' && de->d_name[rec->base_len] != ':'))
			continue;
		if (rec_set_name(rec, de->d_name, in_new) < 0) {
			*error_r = ms_error("out of memory");
			ret = -1;
		} else {
			struct ms_name parsed;

			ms_name_parse(de->d_name, &parsed);
			rec->msg.flags = parsed.flags;
			ret = 1;
		}
		break;
	}
	closedir(dir);
	(void)box;
	return ret;
}

int ms_box_relocate(struct mailstore *box, struct ms_rec *rec, const char **error_r)
{
	int ret = relocate_in(box, rec, box->cur_dir, false, error_r);

	if (ret == 0)
		ret = relocate_in(box, rec, box->new_dir, true, error_r);
	return ret;
}

static struct ms_rec *box_rec(struct mailstore *box, unsigned seq)
{
	return seq < box->ul.count ? &box->ul.recs[seq] : NULL;
}

/* Open the record's file, finding it again if it was renamed. */
static int rec_open(struct mailstore *box, struct ms_rec *rec, int *fd_r, const char **error_r)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		char *path = ms_box_rec_path(box, rec);
		int fd, ret;

		if (path == NULL) {
			*error_r = ms_error("out of memory");
			return -1;
		}
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd >= 0) {
			free(path);
			*fd_r = fd;
			return 1;
		}
		if (errno != ENOENT) {
			*error_r = ms_error_errno("open(%s)", path);
			free(path);
			return -1;
		}
		free(path);
		if ((ret = ms_box_relocate(box, rec, error_r)) <= 0)
			return ret;
	}
	*error_r = ms_error("%s: message keeps moving", rec->name);
	return -1;
}

POSTERN_API int mailstore_msg_open(struct mailstore *box, unsigned seq, int *fd_r,
				   const char **error_r)
{
	struct ms_rec *rec = box_rec(box, seq);

	if (rec == NULL) {
		*error_r = ms_error("no message %u", seq + 1);
		return -1;
	}
	if (rec->msg.expunged)
		return 0;
	return rec_open(box, rec, fd_r, error_r);
}

/* Size and CRLF size of an open file, by reading it once. */
static int count_crlf_size(int fd, uint64_t *size_r, uint64_t *vsize_r)
{
	char buf[65536];
	uint64_t size = 0, bare_lf = 0;
	char prev = '\0';
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == '\n' && prev != '\r')
				bare_lf++;
			prev = buf[i];
		}
		size += (uint64_t)n;
	}
	*size_r = size;
	*vsize_r = size + bare_lf;
	return 0;
}

POSTERN_API int mailstore_msg_vsize(struct mailstore *box, unsigned seq, uint64_t *vsize_r,
				    const char **error_r)
{
	struct ms_rec *rec = box_rec(box, seq);
	uint64_t size, vsize;
	int fd, ret;

	if (rec == NULL) {
		*error_r = ms_error("no message %u", seq + 1);
		return -1;
	}
	if (rec->msg.vsize != MAILSTORE_SIZE_UNKNOWN) {
		*vsize_r = rec->msg.vsize;
		return 1;
	}
	if (rec->msg.expunged)
		return 0;
	if ((ret = rec_open(box, rec, &fd, error_r)) <= 0)
		return ret;
	if (count_crlf_size(fd, &size, &vsize) < 0) {
		*error_r = ms_error_errno("read(%s)", rec->name);
		close(fd);
		return -1;
	}
	close(fd);
	rec->msg.vsize = vsize;
	if (rec->msg.size == MAILSTORE_SIZE_UNKNOWN)
		rec->msg.size = size;
	box->cache_dirty = true;
	*vsize_r = vsize;
	return 1;
}

POSTERN_API int mailstore_set_flags(struct mailstore *box, unsigned seq, unsigned add,
				    unsigned remove, const char **error_r)
{
	struct ms_rec *rec = box_rec(box, seq);
	char newname[MS_NAME_MAX + 1];

	if (rec == NULL) {
		*error_r = ms_error("no message %u", seq + 1);
		return -1;
	}
	if (rec->msg.expunged)
		return 0;
	for (int attempt = 0; attempt < 2; attempt++) {
		unsigned flags = (rec->msg.flags | add) & ~remove & MAILSTORE_FLAGS_ALL;
		char *from, *to;
		int ret;

		if (ms_name_with_flags(rec->name, flags, newname, sizeof(newname)) < 0) {
			*error_r = ms_error("%s: name too long for new flags", rec->name);
			return -1;
		}
		if (!rec->msg.in_new && strcmp(newname, rec->name) == 0) {
			rec->msg.flags = flags;
			return 1;
		}
		from = ms_box_rec_path(box, rec);
		to = ms_path(box->cur_dir, newname);
		if (from == NULL || to == NULL) {
			free(from);
			free(to);
			*error_r = ms_error("out of memory");
			return -1;
		}
		ret = rename(from, to);
		if (ret < 0 && errno != ENOENT)
			*error_r = ms_error_errno("rename(%s, %s)", from, to);
		free(from);
		free(to);
		if (ret == 0) {
			if (rec_set_name(rec, newname, false) < 0) {
				*error_r = ms_error("out of memory");
				return -1;
			}
			rec->msg.flags = flags;
			return 1;
		}
		if (errno != ENOENT)
			return -1;
		if ((ret = ms_box_relocate(box, rec, error_r)) <= 0)
			return ret;
	}
	*error_r = ms_error("%s: message keeps moving", rec->name);
	return -1;
}

POSTERN_API int mailstore_expunge(struct mailstore *box, unsigned seq, const char **error_r)
{
	struct ms_rec *rec = box_rec(box, seq);

	if (rec == NULL) {
		*error_r = ms_error("no message %u", seq + 1);
		return -1;
	}
	if (rec->msg.expunged)
		return 0;
	for (int attempt = 0; attempt < 2; attempt++) {
		char *path = ms_box_rec_path(box, rec);
		int ret;

		if (path == NULL) {
			*error_r = ms_error("out of memory");
			return -1;
		}
		ret = unlink(path);
		if (ret < 0 && errno != ENOENT)
			*error_r = ms_error_errno("unlink(%s)", path);
		free(path);
		if (ret == 0) {
			rec->msg.expunged = true;
			/* only the process that removed the file counts it */
			if (rec->msg.size != MAILSTORE_SIZE_UNKNOWN)
				ms_quota_update(&box->set, -(int64_t)rec->msg.size, -1);
			return 0;
		}
		if (errno != ENOENT)
			return -1;
		if ((ret = ms_box_relocate(box, rec, error_r)) < 0)
			return -1;
		if (ret == 0) {
			rec->msg.expunged = true;	/* someone else expunged it */
			return 0;
		}
	}
	*error_r = ms_error("%s: message keeps moving", rec->name);
	return -1;
}
