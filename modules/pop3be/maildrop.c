/*
 * A POP3 session's mailbox: the lock that makes it exclusive, the snapshot
 * taken at login, and the UPDATE state that applies DELE at QUIT.
 *
 * The lock is flock(LOCK_EX | LOCK_NB) on POP3_SESSION_LOCK_NAME in the
 * Maildir root, held through an fd for the whole session. flock belongs to
 * the open file description, so it excludes a second session of the same
 * process as well as sessions of other processes and of another posternd
 * on the same storage, and the kernel drops it when the process dies: it
 * cannot outlive its holder, unlike a lock file. The file itself is never
 * removed (removing a file others may be locking opens a race); its
 * presence means nothing. On NFS, Linux emulates flock with POSIX locks,
 * which also exclude other hosts; see README.md for the caveat.
 *
 * Everything here may wait (the uidlist lock, directory listings of big
 * mailboxes, reading messages whose CRLF size is unknown), so it runs on
 * the module's worker threads, never on the event loop. No core calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <postern/mailstore.h>

#include "pop3be.h"

static char *error_dup(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *error_dup(const char *fmt, ...)
{
	char buf[512];
	va_list args;

	va_start(args, fmt);
	vsnprintf(buf, sizeof(buf), fmt, args);
	va_end(args);
	return strdup(buf);
}

static void drop_log(void *ctx, enum mailstore_log_level level, const char *msg)
{
	const struct pop3_drop_settings *set = ctx;

	if (set->log != NULL)
		set->log(set->log_ctx, (int)level, msg);
}

/* Open and flock the session lock file. Returns the fd, -1 (IN_USE) or -2
 * (error, *error_r set). */
static int lock_session(const char *root, char **error_r)
{
	char path[4096];
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", root, POP3_SESSION_LOCK_NAME) >=
	    sizeof(path)) {
		*error_r = error_dup("mailbox path too long");
		return -2;
	}
	/* O_RDWR: NFS emulates flock with write locks, which need it */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		*error_r = error_dup("open(%s): %s", path, strerror(errno));
		return -2;
	}
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int err = errno;

		if (err == EINTR)
			continue;
		close(fd);
		if (err == EWOULDBLOCK)
			return -1;
		*error_r = error_dup("flock(%s): %s", path, strerror(err));
		return -2;
	}
	return fd;
}

/* The view: every message the sync listed with a known CRLF size. A
 * message that vanished meanwhile (another client expunged it) is left
 * out. */
static int build_view(struct pop3_maildrop *drop, char **error_r)
{
	unsigned count = mailstore_count(drop->box);
	const char *error;

	drop->msgs = calloc(count == 0 ? 1 : count, sizeof(*drop->msgs));
	if (drop->msgs == NULL) {
		*error_r = error_dup("out of memory");
		return -1;
	}
	for (unsigned seq = 0; seq < count; seq++) {
		const struct mailstore_msg *msg = mailstore_msg(drop->box, seq);
		uint64_t octets;
		int ret;

		if (msg->expunged)
			continue;
		ret = mailstore_msg_vsize(drop->box, seq, &octets, &error);
		if (ret < 0) {
			*error_r = error_dup("%s", error);
			return -1;
		}
		if (ret == 0)
			continue;
		drop->msgs[drop->count++] = (struct pop3_msg){ seq, msg->uid, octets };
		drop->total_octets += octets;
	}
	return 0;
}

enum pop3_drop_status pop3_maildrop_open(const struct pop3_drop_settings *set, const char *root,
					 struct pop3_maildrop **drop_r, char **error_r)
{
	struct mailstore_settings ms = MAILSTORE_SETTINGS_INIT;
	struct pop3_maildrop *drop = calloc(1, sizeof(*drop));
	unsigned flags = MAILSTORE_OPEN_CREATE;
	const char *error;
	enum pop3_drop_status status = POP3_DROP_TEMP;

	*drop_r = NULL;
	*error_r = NULL;
	if (drop == NULL || (drop->root = strdup(root)) == NULL) {
		free(drop);
		*error_r = error_dup("out of memory");
		return POP3_DROP_TEMP;
	}
	drop->lock_fd = -1;
	ms.root = root;
	ms.lock_timeout_secs = set->lock_timeout_secs;
	ms.lock_stale_secs = set->lock_stale_secs;
	ms.no_fsync = set->no_fsync;
	ms.log = drop_log;
	ms.log_ctx = (void *)set;
	if (set->flag_updates)
		flags |= MAILSTORE_OPEN_MOVE_NEW;
	/* open (creating the Maildir) before locking: the lock file lives in
	 * the root */
	if (mailstore_open(&ms, "INBOX", flags, &drop->box, &error) < 0) {
		*error_r = error_dup("%s", error);
		goto fail;
	}
	drop->lock_fd = lock_session(root, error_r);
	if (drop->lock_fd < 0) {
		status = drop->lock_fd == -1 ? POP3_DROP_IN_USE : POP3_DROP_TEMP;
		goto fail;
	}
	if (mailstore_sync(drop->box, &error) < 0) {
		*error_r = error_dup("%s", error);
		goto fail;
	}
	drop->uidvalidity = mailstore_uidvalidity(drop->box);
	if (build_view(drop, error_r) < 0)
		goto fail;
	*drop_r = drop;
	return POP3_DROP_OK;
fail:
	pop3_maildrop_close(&drop);
	return status;
}

unsigned pop3_maildrop_update(struct pop3_maildrop *drop, const unsigned char *marks,
			      bool flag_updates, unsigned *expunged_r, char **error_r)
{
	unsigned failed = 0;
	const char *error;

	*expunged_r = 0;
	*error_r = NULL;
	for (unsigned i = 0; i < drop->count; i++) {
		unsigned seq = drop->msgs[i].seq;

		if ((marks[i] & POP3_MARK_DELETED) != 0) {
			if (mailstore_expunge(drop->box, seq, &error) < 0) {
				if (failed++ == 0)
					*error_r = error_dup("%s", error);
				continue;
			}
			(*expunged_r)++;
		} else if (flag_updates && (marks[i] & POP3_MARK_RETRIEVED) != 0 &&
			   (mailstore_msg(drop->box, seq)->flags & MAILSTORE_FLAG_SEEN) == 0) {
			/* \Seen is a courtesy to IMAP clients: a failure (the
			 * message was expunged meanwhile) is not the POP3
			 * client's problem */
			(void)mailstore_set_flags(drop->box, seq, MAILSTORE_FLAG_SEEN, 0, &error);
		}
	}
	return failed;
}

void pop3_maildrop_close(struct pop3_maildrop **dropp)
{
	struct pop3_maildrop *drop = *dropp;

	if (drop == NULL)
		return;
	/* close the mailbox first (it may write cached sizes), then let the
	 * next session in */
	mailstore_close(&drop->box);
	if (drop->lock_fd >= 0)
		close(drop->lock_fd);
	free(drop->msgs);
	free(drop->root);
	free(drop);
	*dropp = NULL;
}

void pop3_maildrop_uidl(const struct pop3_maildrop *drop, unsigned i, char *buf)
{
	snprintf(buf, 17, "%08X%08X", (unsigned)drop->msgs[i].uid, (unsigned)drop->uidvalidity);
}
