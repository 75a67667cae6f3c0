/*
 * The mailbox store: Maildir++ mailboxes with stable IMAP/POP3 UIDs, shared
 * by local delivery (queue-store), pop3be and imap4be.
 *
 * On disk it is plain Maildir++ (tmp/ new/ cur/, flags in ":2,FLAGS", folders
 * as ".Name" directories with a maildirfolder file, Maildir++ quota in
 * maildirsize), so Dovecot and Courier can read what Postern writes and the
 * other way round. UIDs live in a per-folder "postern-uidlist" file, updated
 * under a dotlock and replaced with rename(). lib/mailstore/README.md has
 * the formats, the locking protocol and the settings a module should expose.
 *
 * This library does not use the core: it allocates with malloc, reports
 * errors through `const char **error_r` and logs through an optional
 * callback, so it can be tested alone and used from any process. Error
 * strings live in a per-thread buffer and stay valid until the next call
 * into this library from the same thread: copy them if you keep them.
 *
 * A struct mailstore (one open folder) is not thread-safe: use it from one
 * thread at a time. Different handles, processes and hosts (on shared
 * storage) may work on the same folder at once.
 */
#ifndef POSTERN_MAILSTORE_H
#define POSTERN_MAILSTORE_H

#include <sys/types.h>
#include <time.h>
#include <postern/common.h>

struct mailstore;

enum mailstore_log_level {
	MAILSTORE_LOG_DEBUG = 0,
	MAILSTORE_LOG_INFO,
	MAILSTORE_LOG_WARNING,
	MAILSTORE_LOG_ERROR,
};

/* Called for events worth a log line that are not errors of the call in
 * progress (a stale lock broken, a message that vanished, a corrupt
 * uidlist rebuilt). May be called from any thread that calls the library. */
typedef void mailstore_log_cb(void *ctx, enum mailstore_log_level level, const char *msg);

/* Where a user's mail is and how to treat it. Zero means "default" for every
 * number; MAILSTORE_SETTINGS_INIT fills nothing else. */
struct mailstore_settings {
	uint32_t struct_size;       /* sizeof(struct mailstore_settings) */
	const char *root;           /* the Maildir root ("~/Maildir", expanded); required */
	/* Seconds to wait for the uidlist lock before failing (temporarily);
	 * default 30. */
	unsigned lock_timeout_secs;
	/* A lock file older than this is considered left by a crash and is
	 * broken; default 120. A holder refreshes its lock while it works. */
	unsigned lock_stale_secs;
	/* Maildir++ quota limits; 0 = no limit of that kind. When both are 0
	 * and a maildirsize file exists, its header's limits apply (as
	 * Dovecot does with "quota=maildir" and no rules). */
	uint64_t quota_bytes;
	uint64_t quota_messages;
	/* Skip fsync() of messages and directories (tests only: a crash can
	 * then lose mail that was acknowledged). */
	bool no_fsync;
	mailstore_log_cb *log;      /* may be NULL */
	void *log_ctx;
	/* Added in 0.2 (library version-info 1:0:1); a caller built with the
	 * older, shorter struct gets NULL here. Shares the fsync of new/
	 * between deliveries into one folder that run at the same time (see
	 * mailstore_dirsync_new); NULL: each delivery fsyncs on its own. */
	struct mailstore_dirsync *dirsync;
};

#define MAILSTORE_SETTINGS_INIT { .struct_size = sizeof(struct mailstore_settings) }

/* Standard Maildir flags (the ":2," info letters D F P R S T). */
enum mailstore_flags {
	MAILSTORE_FLAG_DRAFT = 1 << 0,    /* D */
	MAILSTORE_FLAG_FLAGGED = 1 << 1,  /* F */
	MAILSTORE_FLAG_PASSED = 1 << 2,   /* P: forwarded */
	MAILSTORE_FLAG_REPLIED = 1 << 3,  /* R: \Answered */
	MAILSTORE_FLAG_SEEN = 1 << 4,     /* S */
	MAILSTORE_FLAG_TRASHED = 1 << 5,  /* T: \Deleted */
};
#define MAILSTORE_FLAGS_ALL 0x3fu

/* A size that has not been computed yet. */
#define MAILSTORE_SIZE_UNKNOWN UINT64_MAX

/* One message of an open folder, as of the last mailstore_sync(). The
 * pointer stays valid until the next sync or close of the folder. */
struct mailstore_msg {
	uint32_t uid;
	unsigned flags;          /* enum mailstore_flags */
	uint64_t size;           /* bytes on disk (",S=" or stat, cached) */
	/* Size with CRLF line ends (RFC822.SIZE, POP3 octets): from ",W=",
	 * the uidlist cache, or MAILSTORE_SIZE_UNKNOWN until
	 * mailstore_msg_vsize() computed it. */
	uint64_t vsize;
	const char *filename;    /* current name inside new/ or cur/ */
	bool in_new;             /* still in new/ (not seen by any client) */
	bool expunged;           /* expunged through this handle */
};

enum mailstore_open_flags {
	/* Create the folder's directories (and the Maildir root for INBOX)
	 * when they are missing. */
	MAILSTORE_OPEN_CREATE = 1 << 0,
	/* On every sync, move messages from new/ to cur/ (what a POP3 or
	 * IMAP session does when it opens: they are no longer "recent"). */
	MAILSTORE_OPEN_MOVE_NEW = 1 << 1,
};

/*
 * Open a folder of the Maildir at set->root: "INBOX" (or NULL) is the root
 * itself, anything else a Maildir++ folder name such as "Sent" or
 * "Lists.postern" ('.' is the hierarchy separator; names are used as given,
 * IMAP modified UTF-7 is the caller's business). The settings are copied.
 * No message is listed until mailstore_sync().
 * Returns 0, or -1 with *error_r set.
 */
POSTERN_API int mailstore_open(const struct mailstore_settings *set, const char *folder,
			       unsigned open_flags, struct mailstore **box_r,
			       const char **error_r);
/* Write cached sizes if any were computed, release everything; *box becomes
 * NULL. NULL and *box == NULL are fine. */
POSTERN_API void mailstore_close(struct mailstore **box);

/*
 * Bring the message list up to date: under the uidlist lock, read the
 * uidlist, list new/ and cur/ (names only: message files are not opened,
 * and stat() is used only for names without ",S=", once per message),
 * give UIDs to messages seen for the first time, forget expunged ones,
 * move new/ to cur/ with MAILSTORE_OPEN_MOVE_NEW, and save the uidlist.
 * Returns 0, or -1 with *error_r set (a lock timeout is an error: retry
 * later). After an error the list holds no message without a saved UID:
 * new messages wait for the next successful sync.
 */
POSTERN_API int mailstore_sync(struct mailstore *box, const char **error_r);

POSTERN_API uint32_t mailstore_uidvalidity(const struct mailstore *box);
/* The UID the next new message will get. */
POSTERN_API uint32_t mailstore_uidnext(const struct mailstore *box);
/* The mailbox's 128-bit GUID, 32 hex digits. */
POSTERN_API const char *mailstore_guid(const struct mailstore *box);

/* Messages as of the last sync, in ascending UID order: seq 0 .. count-1. */
POSTERN_API unsigned mailstore_count(const struct mailstore *box);
POSTERN_API const struct mailstore_msg *mailstore_msg(const struct mailstore *box, unsigned seq);
/* The seq of the message with this UID, or -1. Binary search. */
POSTERN_API int mailstore_find_uid(const struct mailstore *box, uint32_t uid);

/*
 * The message's CRLF size. Reads the file once when neither the name nor
 * the uidlist has it; the result is kept and written to the uidlist at the
 * next sync or close, so no message is read twice for this.
 * Returns 1 with *vsize_r set, 0 when the message was expunged meanwhile,
 * -1 with *error_r set.
 */
POSTERN_API int mailstore_msg_vsize(struct mailstore *box, unsigned seq, uint64_t *vsize_r,
				    const char **error_r);

/*
 * Open the message for reading (O_RDONLY|O_CLOEXEC); the caller closes the
 * fd. A message renamed by another process (new flags) is found again.
 * Returns 1 with *fd_r set, 0 when it was expunged meanwhile, -1 with
 * *error_r set.
 */
POSTERN_API int mailstore_msg_open(struct mailstore *box, unsigned seq, int *fd_r,
				   const char **error_r);

/*
 * Add then remove flags (enum mailstore_flags) by renaming the file to
 * ":2,<flags>" in cur/ (a message in new/ moves to cur/). Letters the
 * library does not know (Dovecot keywords a-z) and anything after a ','
 * in the info part are kept. Returns 1, 0 when expunged meanwhile, -1.
 */
POSTERN_API int mailstore_set_flags(struct mailstore *box, unsigned seq, unsigned add,
				    unsigned remove, const char **error_r);

/*
 * Delete the message file now and update maildirsize. A message that is
 * already gone counts as expunged. The entry stays in the list (with
 * `expunged` set) until the next sync. Returns 0 or -1.
 */
POSTERN_API int mailstore_expunge(struct mailstore *box, unsigned seq, const char **error_r);

/* ---- Delivery ---------------------------------------------------------- */

enum mailstore_deliver_result {
	MAILSTORE_DELIVERED = 0,
	/* A temporary failure (I/O error, missing folder, bad id): defer
	 * with 4xx, *error_r says why. */
	MAILSTORE_DELIVER_FAILED = -1,
	/* The message would exceed the user's quota: defer with 4xx (e.g.
	 * "452 4.2.2 Mailbox full"); *error_r says which limit. Nothing was
	 * written. */
	MAILSTORE_DELIVER_OVER_QUOTA = -2,
};

struct mailstore_delivery {
	uint32_t struct_size;     /* sizeof(struct mailstore_delivery) */
	const char *folder;       /* NULL or "INBOX" for the root */
	/* Either a buffer (data, size) or a readable fd (fd >= 0, read to
	 * EOF from its current offset; data must be NULL). Stored byte for
	 * byte: LF or CRLF line ends as given. */
	const void *data;
	size_t size;
	int fd;
	/* A stable id for this delivery (queue id + recipient): it becomes
	 * part of the file name so that mailstore_delivered() can tell, after
	 * a crash, whether this delivery already happened. NULL for none.
	 * Any bytes, at most MAILSTORE_DELIVERY_ID_MAX. */
	const char *id;
	/* Nonzero: store straight into cur/ with these flags (IMAP APPEND).
	 * Zero: into new/ (a delivery). */
	unsigned flags;
	time_t received;          /* file mtime (IMAP INTERNALDATE); 0: now */
	/* Create the folder when missing (INBOX is always created). */
	bool create_folder;
};

#define MAILSTORE_DELIVERY_INIT { .struct_size = sizeof(struct mailstore_delivery), .fd = -1 }
#define MAILSTORE_DELIVERY_ID_MAX 1024

/*
 * Deliver one message: write it to tmp/ under a unique name, fsync it,
 * check the quota, link it into new/ (or cur/) as
 * "<time>.M<usec>P<pid>Q<n>.<host>,S=<size>,W=<crlf size>[,D=<id hash>]",
 * fsync the directory, update maildirsize. When this returns
 * MAILSTORE_DELIVERED the message is on stable storage. It needs no lock
 * and no open folder; UIDs are given at the readers' next sync.
 * If filename_r is not NULL it gets the new file's name (malloc'd; the
 * caller frees it).
 */
POSTERN_API enum mailstore_deliver_result
mailstore_deliver(const struct mailstore_settings *set, const struct mailstore_delivery *delivery,
		  char **filename_r, const char **error_r);

/*
 * Group commit for the directory fsync of deliveries. After linking its
 * file into new/, a delivery must fsync new/; when threads deliver into
 * one folder at once, one fsync that starts after all their links covers
 * them all, so a busy mailbox costs a fraction of a directory fsync per
 * message. Create one per process (or per delivery pool), put it in
 * mailstore_settings.dirsync for every delivery; thread-safe. Free it
 * only when no delivery is running.
 */
struct mailstore_dirsync;
POSTERN_API struct mailstore_dirsync *mailstore_dirsync_new(void);
POSTERN_API void mailstore_dirsync_free(struct mailstore_dirsync *dirsync);
/* Directory fsyncs run, and deliveries that needed one, so far. */
POSTERN_API void mailstore_dirsync_stats(struct mailstore_dirsync *dirsync, uint64_t *fsyncs_r,
					 uint64_t *deliveries_r);

/*
 * Is a message delivered with this id in the folder's new/ or cur/? Lists
 * the directories' names (no file is opened). This is what makes local
 * delivery exactly-once across crashes: before re-trying a delivery whose
 * earlier attempt may have been interrupted, ask this first.
 * Returns 1 yes, 0 no (or the folder does not exist), -1 error.
 */
POSTERN_API int mailstore_delivered(const struct mailstore_settings *set, const char *folder,
				    const char *id, const char **error_r);

/* ---- Quota and folders -------------------------------------------------- */

struct mailstore_quota {
	uint64_t bytes, messages;              /* in use */
	uint64_t bytes_limit, messages_limit;  /* 0: none */
};

/*
 * The user's Maildir++ quota usage, read from maildirsize (recalculated
 * from the directories first when it is missing, too big, stale or
 * corrupt, or its limits differ from the settings). Returns 1 with
 * *quota_r set, 0 when no quota applies (no limits set and no maildirsize
 * file), -1 on error.
 */
POSTERN_API int mailstore_quota_get(const struct mailstore_settings *set,
				    struct mailstore_quota *quota_r, const char **error_r);

/* Recount every folder and rewrite maildirsize now (`posternctl` and
 * tests). Returns 0 or -1. */
POSTERN_API int mailstore_quota_recalc(const struct mailstore_settings *set,
				       const char **error_r);

/*
 * Create a Maildir++ folder (".Name" with tmp/ new/ cur/ and the
 * maildirfolder marker) and the Maildir root if needed. An existing
 * folder is fine. Returns 0 or -1.
 */
POSTERN_API int mailstore_folder_create(const struct mailstore_settings *set, const char *folder,
					const char **error_r);

typedef void mailstore_folder_cb(const char *folder, void *ctx);
/* Call cb for INBOX and every folder of the Maildir (unsorted). Returns 0
 * or -1. */
POSTERN_API int mailstore_folder_list(const struct mailstore_settings *set,
				      mailstore_folder_cb *cb, void *ctx, const char **error_r);

/* Is this a folder name the library accepts? (non-empty, at most 200
 * bytes, no '/', no NUL or control characters, no empty hierarchy level,
 * no leading '.', not "." or ".."). */
POSTERN_API bool mailstore_folder_name_valid(const char *folder);

#endif
