/*
 * Maildir++ folders: INBOX is the Maildir root itself; folder "A.B" is the
 * directory ".A.B" in the root, with tmp/ new/ cur/ and an empty
 * "maildirfolder" file that tells delivery agents (and Dovecot's quota
 * code) that the Maildir++ root is one level up.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "mailstore_private.h"

#define FOLDER_NAME_MAX 200

bool ms_folder_is_inbox(const char *folder)
{
	return folder == NULL || strcasecmp(folder, "INBOX") == 0;
}

POSTERN_API bool mailstore_folder_name_valid(const char *folder)
{
	size_t len;
	const char *p;

	if (folder == NULL)
		return false;
	len = strlen(folder);
	if (len == 0 || len > FOLDER_NAME_MAX || folder[0] == '.' || folder[len - 1] == '.')
		return false;
	for (p = folder; *p != '\0'; p++) {
		if (*p == '/' || (unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
		if (p[0] == '.' && p[1] == '.')
			return false;	/* an empty hierarchy level */
	}
	return true;
}

int ms_folder_dir(const char *root, const char *folder, char **dir_r, const char **error_r)
{
	size_t rlen;
	char *dir;

	if (ms_folder_is_inbox(folder)) {
		dir = strdup(root);
	} else {
		if (!mailstore_folder_name_valid(folder)) {
			*error_r = ms_error("invalid folder name");
			return -1;
		}
		rlen = strlen(root);
		dir = malloc(rlen + strlen(folder) + 3);
		if (dir != NULL) {
			memcpy(dir, root, rlen);
			dir[rlen] = '/';
			dir[rlen + 1] = '.';
			strcpy(dir + rlen + 2, folder);
		}
	}
	if (dir == NULL) {
		*error_r = ms_error("out of memory");
		return -1;
	}
	*dir_r = dir;
	return 0;
}

/* mkdir -p for the root, which may be several levels deep. */
static int mkdir_parents(char *path, const char **error_r)
{
	for (char *p = path + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0700) < 0 && errno != EEXIST) {
			*error_r = ms_error_errno("mkdir(%s)", path);
			*p = '/';
			return -1;
		}
		*p = '/';
	}
	return ms_mkdir(path, error_r);
}

/* dir and its tmp/ new/ cur/ */
static int make_maildir(const char *dir, const char **error_r)
{
	static const char *const subs[] = { "tmp", "new", "cur" };

	if (ms_mkdir(dir, error_r) < 0)
		return -1;
	for (size_t i = 0; i < 3; i++) {
		char *path = ms_path(dir, subs[i]);
		int ret;

		if (path == NULL) {
			*error_r = ms_error("out of memory");
			return -1;
		}
		ret = ms_mkdir(path, error_r);
		free(path);
		if (ret < 0)
			return -1;
	}
	return 0;
}

int ms_folder_make(const struct mailstore_settings *set, const char *dir, bool is_inbox,
		   const char **error_r)
{
	char *copy = strdup(set->root), *path;
	int fd, ret;

	if (copy == NULL) {
		*error_r = ms_error("out of memory");
		return -1;
	}
	/* the root is INBOX: a folder needs it (its tmp/ holds maildirsize
	 * while that is rewritten) */
	ret = mkdir_parents(copy, error_r);
	free(copy);
	if (ret < 0 || make_maildir(set->root, error_r) < 0)
		return -1;
	if (is_inbox)
		return 0;
	if (make_maildir(dir, error_r) < 0)
		return -1;
	if ((path = ms_path(dir, "maildirfolder")) == NULL) {
		*error_r = ms_error("out of memory");
		return -1;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		*error_r = ms_error_errno("open(%s)", path);
		free(path);
		return -1;
	}
	close(fd);
	free(path);
	return 0;
}

POSTERN_API int mailstore_folder_create(const struct mailstore_settings *set_in,
					const char *folder, const char **error_r)
{
	struct mailstore_settings set;
	char *dir;
	int ret;

	if (!ms_settings_copy(set_in, &set, error_r) ||
	    ms_folder_dir(set.root, folder, &dir, error_r) < 0)
		return -1;
	ret = ms_folder_make(&set, dir, ms_folder_is_inbox(folder), error_r);
	free(dir);
	return ret;
}

POSTERN_API int mailstore_folder_list(const struct mailstore_settings *set_in,
				      mailstore_folder_cb *cb, void *ctx, const char **error_r)
{
	struct mailstore_settings set;
	struct dirent *de;
	DIR *dir;

	if (!ms_settings_copy(set_in, &set, error_r))
		return -1;
	dir = opendir(set.root);
	if (dir == NULL) {
		*error_r = ms_error_errno("opendir(%s)", set.root);
		return -1;
	}
	cb("INBOX", ctx);
	while ((de = readdir(dir)) != NULL) {
		struct stat st;

		if (de->d_name[0] != '.' || !mailstore_folder_name_valid(de->d_name + 1))
			continue;
		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;
		if (fstatat(dirfd(dir), de->d_name, &st, 0) < 0 || !S_ISDIR(st.st_mode))
			continue;
		cb(de->d_name + 1, ctx);
	}
	closedir(dir);
	return 0;
}
