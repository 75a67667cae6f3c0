/*
 * The uidlist dotlock: "postern-uidlist.lock" created with O_CREAT|O_EXCL.
 *
 * Why a dotlock and not fcntl(): it works the same for two servers sharing
 * the storage over NFS (O_EXCL is atomic on NFSv3 and later, while fcntl
 * locks there depend on a lock daemon that is often missing or broken),
 * and it excludes threads of one process from each other, which fcntl
 * locks (owned by the process, and silently dropped when any fd of the
 * file is closed) do not. Its cost is staleness after a crash, handled
 * here: the file holds "<pid> <host>"; a lock of a dead process on this
 * host is broken at once, any other lock once its mtime is older than
 * lock_stale_secs (the holder refreshes the mtime while it works).
 *
 * Breaking is done by renaming the stale file aside and checking that what
 * was renamed is the file judged stale; if a contender replaced it in the
 * meantime, it is put back. The holder re-checks that the lock is still
 * its own (same inode) right before it renames a new uidlist into place,
 * so a lock broken by mistake makes the write fail instead of two writers
 * racing.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mailstore_private.h"

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Is the lock at `path`, as `st` describes it, left by a crash? */
static bool lock_is_stale(const struct mailstore_settings *set, const char *path,
			  const struct stat *st)
{
	char buf[256], host[200], *sp;
	long pid;
	ssize_t n;
	int fd;

	if (time(NULL) - st->st_mtime > (time_t)set->lock_stale_secs)
		return true;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;	/* being written right now, or odd: wait */
	buf[n] = '\0';
	pid = strtol(buf, &sp, 10);
	if (pid <= 0 || *sp != ' ')
		return false;
	sp++;
	sp[strcspn(sp, "\n")] = '\0';
	ms_hostname(host, sizeof(host));
	if (strcmp(sp, host) != 0)
		return false;	/* another host: only the age can tell */
	return kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

/* Move a stale lock out of the way. Returns true when the way is free. */
static bool lock_break(const struct mailstore_settings *set, const char *path,
		       const struct stat *stale)
{
	static atomic_uint counter;
	char aside[4096];
	struct stat st;

	snprintf(aside, sizeof(aside), "%s.stale.%ld.%u", path, (long)getpid(),
		 atomic_fetch_add(&counter, 1));
	if (rename(path, aside) < 0)
		return errno == ENOENT;
	if (lstat(aside, &st) == 0 && (st.st_ino != stale->st_ino || st.st_dev != stale->st_dev)) {
		/* A contender broke the stale lock first and took a fresh one
		 * that we just moved: give it back. */
		if (link(aside, path) < 0)
			ms_log(set, MAILSTORE_LOG_WARNING,
			       "lock %s: could not restore a lock moved by mistake: %s",
			       path, strerror(errno));
		unlink(aside);
		return false;
	}
	unlink(aside);
	ms_log(set, MAILSTORE_LOG_WARNING, "lock %s: broke a stale lock (age %lds)", path,
	       (long)(time(NULL) - stale->st_mtime));
	return true;
}

static int lock_create(const char *path, struct ms_lock *lock, const char **error_r)
{
	char content[256], host[200];
	struct stat st;
	int fd, len;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			return 0;
		*error_r = ms_error_errno("open(%s, O_EXCL)", path);
		return -1;
	}
	ms_hostname(host, sizeof(host));
	len = snprintf(content, sizeof(content), "%ld %s\n", (long)getpid(), host);
	if (write(fd, content, (size_t)len) != len || fstat(fd, &st) < 0) {
		*error_r = ms_error_errno("write(%s)", path);
		close(fd);
		unlink(path);
		return -1;
	}
	lock->path = strdup(path);
	if (lock->path == NULL) {
		*error_r = ms_error("out of memory");
		close(fd);
		unlink(path);
		return -1;
	}
	lock->fd = fd;
	lock->dev = st.st_dev;
	lock->ino = st.st_ino;
	return 1;
}

int ms_lock_take(const struct mailstore_settings *set, const char *path, struct ms_lock *lock,
		 const char **error_r)
{
	uint64_t deadline = now_ms() + (uint64_t)set->lock_timeout_secs * 1000;
	unsigned wait = 1;
	int ret;

	lock->path = NULL;
	lock->fd = -1;
	for (;;) {
		struct stat st;

		if ((ret = lock_create(path, lock, error_r)) != 0)
			return ret < 0 ? -1 : 0;
		if (lstat(path, &st) == 0 && lock_is_stale(set, path, &st) &&
		    lock_break(set, path, &st))
			continue;
		if (now_ms() >= deadline) {
			*error_r = ms_error("timed out after %us waiting for lock %s",
					    set->lock_timeout_secs, path);
			return -1;
		}
		/* back off up to 50 ms, with jitter so that waiters spread */
		sleep_ms(wait + (unsigned)(now_ms() % 3));
		if (wait < 50)
			wait *= 2;
	}
}

int ms_lock_verify(const struct mailstore_settings *set, struct ms_lock *lock,
		   const char **error_r)
{
	struct stat st;

	if (lock->path == NULL) {
		*error_r = ms_error("lock not held");
		return -1;
	}
	if (lstat(lock->path, &st) < 0 || st.st_ino != lock->ino || st.st_dev != lock->dev) {
		*error_r = ms_error("lock %s was broken by another process "
				    "(held longer than %us?)", lock->path, set->lock_stale_secs);
		return -1;
	}
	/* refresh: we are alive and working */
	(void)futimens(lock->fd, NULL);
	return 0;
}

void ms_lock_release(const struct mailstore_settings *set, struct ms_lock *lock)
{
	struct stat st;

	if (lock->path == NULL)
		return;
	/* Never remove a lock that is no longer ours. */
	if (lstat(lock->path, &st) == 0 && st.st_ino == lock->ino && st.st_dev == lock->dev) {
		if (unlink(lock->path) < 0)
			ms_log(set, MAILSTORE_LOG_ERROR, "unlink(%s): %s", lock->path,
			       strerror(errno));
	} else {
		ms_log(set, MAILSTORE_LOG_WARNING, "lock %s was broken while we held it",
		       lock->path);
	}
	close(lock->fd);
	free(lock->path);
	lock->path = NULL;
	lock->fd = -1;
}
