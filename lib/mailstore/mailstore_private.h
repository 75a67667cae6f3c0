/*
 * Internal interfaces between the files of the mailbox store library.
 *
 *   util.c     error strings, logging, paths, directory fsync and creation
 *   name.c     Maildir file names: parse, unique names, flags, delivery ids
 *   lock.c     the uidlist dotlock
 *   uidlist.c  reading and writing postern-uidlist
 *   mailbox.c  open/close, the message list, reading, flags, expunge
 *   sync.c     mailstore_sync(): directory scan and UID assignment
 *   deliver.c  mailstore_deliver(), mailstore_delivered()
 *   quota.c    Maildir++ quota (maildirsize)
 *   folder.c   Maildir++ folders: names, paths, create, list
 *
 * Nothing here is exported: the library is built with hidden visibility.
 */
#ifndef LIB_MAILSTORE_PRIVATE_H
#define LIB_MAILSTORE_PRIVATE_H

#include <stddef.h>
#include <sys/stat.h>
#include <postern/mailstore.h>

#define MS_UIDLIST_NAME "postern-uidlist"
#define MS_UIDLIST_LOCK_NAME "postern-uidlist.lock"
#define MS_MAILDIRSIZE_NAME "maildirsize"
#define MS_NAME_MAX 255              /* longest file name we create or accept */
#define MS_DEFAULT_LOCK_TIMEOUT 30
#define MS_DEFAULT_LOCK_STALE 120
/* Files in tmp/ older than this are leftovers of crashed deliveries
 * (the Maildir spec's 36 hours). */
#define MS_TMP_MAX_AGE_SECS (36 * 3600)
/* struct mailstore_settings as the first release had it (up to log_ctx). */
#define MS_SETTINGS_SIZE_0_1 (offsetof(struct mailstore_settings, log_ctx) + sizeof(void *))

/* ---- util.c ---- */

/* Format an error into this thread's error buffer and return it. */
const char *ms_error(const char *fmt, ...) POSTERN_PRINTF(1, 2);
/* The same with ": strerror(errno)" appended (errno is preserved). */
const char *ms_error_errno(const char *fmt, ...) POSTERN_PRINTF(1, 2);
void ms_log(const struct mailstore_settings *set, enum mailstore_log_level level,
	    const char *fmt, ...) POSTERN_PRINTF(3, 4);
/* "a/b" in a malloc'd string; NULL when out of memory. */
char *ms_path(const char *dir, const char *name);
char *ms_path3(const char *dir, const char *sub, const char *name);
/* fsync() a directory so that a link/rename in it is durable. */
int ms_fsync_dir(const char *dir, const char **error_r);
/* ---- dirsync.c ---- */

/* fsync `dir` after a link into it, shared with concurrent callers of the
 * same dirsync (ds NULL: a plain ms_fsync_dir). */
int ms_dirsync(struct mailstore_dirsync *ds, const char *dir, const char **error_r);

/* mkdir that accepts an existing directory. */
int ms_mkdir(const char *path, const char **error_r);
/* Copy settings, filling defaults; false when they are unusable. */
bool ms_settings_copy(const struct mailstore_settings *in, struct mailstore_settings *out,
		      const char **error_r);
/* Our host name for unique file names, escaped as the Maildir spec says
 * ('/' as \057, ':' as \072, and ',' as \054 since ',' starts our fields). */
void ms_hostname(char *buf, size_t size);

/* ---- name.c ---- */

struct ms_name {
	size_t base_len;      /* bytes before the ':' of the info part */
	uint64_t size;        /* ",S=" or MAILSTORE_SIZE_UNKNOWN */
	uint64_t vsize;       /* ",W=" or MAILSTORE_SIZE_UNKNOWN */
	unsigned flags;       /* standard flags of a ":2," info part */
};

void ms_name_parse(const char *name, struct ms_name *name_r);
/* Is this a directory entry that may be a message? (not hidden, no '/') */
bool ms_name_is_message(const char *name);
/* A new unique base name "<sec>.M<usec>P<pid>Q<n>.<host>". */
int ms_name_unique(char *buf, size_t size, const char **error_r);
/* `name` with its standard flags replaced by `flags`, other info letters
 * and fields kept. -1 when the result would be too long. */
int ms_name_with_flags(const char *name, unsigned flags, char *buf, size_t size);
/* The ",D=<hex>" field that marks a delivery id in file names. */
#define MS_ID_FIELD_LEN (3 + 32)
int ms_name_id_field(const char *id, char buf[MS_ID_FIELD_LEN + 1], const char **error_r);
/* Does the base of `name` carry this ",D=" field? */
bool ms_name_has_id_field(const char *name, const char *field);
/* Order for UID assignment: the delivery time prefix, then the name. */
int ms_name_cmp(const char *a, const char *b);

/* ---- lock.c ---- */

struct ms_lock {
	char *path;           /* NULL when not held */
	dev_t dev;
	ino_t ino;
	int fd;
};

/* Take the dotlock at `path`, waiting up to set->lock_timeout_secs and
 * breaking a stale one. */
int ms_lock_take(const struct mailstore_settings *set, const char *path, struct ms_lock *lock,
		 const char **error_r);
/* Is the lock still ours (not broken by someone who thought it stale)?
 * Refreshes its mtime when it is. */
int ms_lock_verify(const struct mailstore_settings *set, struct ms_lock *lock,
		   const char **error_r);
void ms_lock_release(const struct mailstore_settings *set, struct ms_lock *lock);

/* ---- uidlist.c ---- */

/* One message: the public view first, so &rec->msg is handed out. */
struct ms_rec {
	struct mailstore_msg msg;
	char *name;              /* current file name (msg.filename points here) */
	uint32_t base_len;
	bool seen;               /* found by the current scan */
	bool size_from_name;     /* ",S=" in the name: not stored in the uidlist */
	bool vsize_from_name;    /* ",W=" in the name */
};

struct ms_uidlist {
	uint32_t uidvalidity;
	uint32_t nextuid;
	char guid[33];
	struct ms_rec *recs;     /* ascending uid */
	unsigned count, alloc;
	bool loaded;
	bool needs_rewrite;      /* appending is not safe (partial last line) */
	struct stat st;          /* of the file as last read or written */
};

/* Read the file. Returns 1 loaded, 0 missing or corrupt (the caller starts
 * a new list; *why_r says what was wrong when corrupt, else NULL), -1 on
 * I/O error. */
int ms_uidlist_read(const char *path, struct ms_uidlist *ul, const char **why_r,
		    const char **error_r);
/* Start a new, empty list with a fresh UIDVALIDITY and GUID. */
int ms_uidlist_init_new(struct ms_uidlist *ul, const char **error_r);
/* Replace the file with the whole list: temp file, fsync, verify the lock,
 * rename. */
int ms_uidlist_write(const struct mailstore_settings *set, const char *dir,
		     struct ms_uidlist *ul, struct ms_lock *lock, const char **error_r);
/* Append records [from, count) to the file in one write. */
int ms_uidlist_append(const struct mailstore_settings *set, const char *path,
		      struct ms_uidlist *ul, unsigned from, const char **error_r);
/* Grow the record array for one more; NULL when out of memory. */
struct ms_rec *ms_uidlist_add(struct ms_uidlist *ul);
void ms_uidlist_clear(struct ms_uidlist *ul);

/* ---- mailbox.c ---- */

struct mailstore {
	struct mailstore_settings set;
	char *folder;
	char *dir;                /* the folder's directory */
	char *new_dir, *cur_dir, *tmp_dir;
	char *uidlist_path, *lock_path;
	unsigned open_flags;
	struct ms_uidlist ul;
	bool cache_dirty;         /* sizes computed that the uidlist lacks */
	bool tmp_cleaned;
};

/* Find a message again after it was renamed by someone else: list cur/
 * and new/ for its base. Returns 1 found (rec updated), 0 gone, -1. */
int ms_box_relocate(struct mailstore *box, struct ms_rec *rec, const char **error_r);
/* The full path of a record's file, malloc'd; NULL when out of memory. */
char *ms_box_rec_path(const struct mailstore *box, const struct ms_rec *rec);

/* ---- quota.c ---- */

/* Would a new message of `size` bytes fit? Returns 0 yes (or no quota),
 * 1 no (with *reason_r), -1 on error. */
int ms_quota_check(const struct mailstore_settings *set, uint64_t size, const char **reason_r,
		   const char **error_r);
/* Record a change in maildirsize when the file exists; failures are
 * logged (the next recalculation repairs them). */
void ms_quota_update(const struct mailstore_settings *set, int64_t bytes, int64_t messages);

/* ---- folder.c ---- */

/* The directory of a folder (the root for INBOX), malloc'd. */
int ms_folder_dir(const char *root, const char *folder, char **dir_r, const char **error_r);
/* Create tmp/ new/ cur/ in dir (and dir); the maildirfolder marker too
 * for a folder other than INBOX. */
int ms_folder_make(const struct mailstore_settings *set, const char *dir, bool is_inbox,
		   const char **error_r);
bool ms_folder_is_inbox(const char *folder);

#endif
