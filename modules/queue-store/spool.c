/*
 * The queue on disk, and the scan that rebuilds the index at start.
 *
 *   queue_dir/
 *     lock         flock()ed while a posternd uses this queue (a lock that
 *                  dies with its process: no stale lock files)
 *     incoming/    messages being received, temp state files and empty
 *                  spares (recycled message files, spare.c); emptied
 *                  at start: nothing here was ever confirmed
 *     queue/       <id>.msg  a message (immutable once committed)
 *                  <id>.st   its state, when it left the initial one
 *                  <id>.bad, <id>.badst  a quarantined message and state
 *
 * One scan of queue/ therefore finds every message in every state; there
 * is no other table. Every file there that is not a loadable message is
 * listed as quarantined (with the reason), so nothing in the directory is
 * ever hidden from `posternctl queue list`.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <postern/postern.h>

#include "queue_store.h"

#define STATE_MAX_SIZE (64u << 20)

static int make_dir(struct qs *qs, const char *path, const char **error_r)
{
	uid_t uid;
	gid_t gid;

	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		*error_r = q_error("mkdir %s: %s", path, strerror(errno));
		return -1;
	}
	postern_mod_run_ids(qs->mod, &uid, &gid);
	if (geteuid() == 0 && chown(path, uid, gid) < 0) {
		*error_r = q_error("chown %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* mkdir -p for the parents the admin did not create (dev and test
 * setups); the queue directory itself gets mode 0700. */
static int make_parents(const char *path, const char **error_r)
{
	char *copy = q_strdup(path);

	for (char *p = copy + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdir(copy, 0755) < 0 && errno != EEXIST) {
			*error_r = q_error("mkdir %s: %s", copy, strerror(errno));
			free(copy);
			return -1;
		}
		*p = '/';
	}
	free(copy);
	return 0;
}

static int open_dir(const char *dir, const char *sub, const char **error_r)
{
	char *path = q_asprintf("%s/%s", dir, sub);
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		*error_r = q_error("open %s: %s", path, strerror(errno));
	free(path);
	return fd;
}

static int take_lock(struct qs *qs, const char **error_r)
{
	char *path = q_asprintf("%s/lock", qs->dir);
	char pid[32] = "";
	uid_t uid;
	gid_t gid;

	qs->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (qs->lock_fd < 0) {
		*error_r = q_error("open %s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	postern_mod_run_ids(qs->mod, &uid, &gid);
	if (geteuid() == 0)
		(void)!fchown(qs->lock_fd, uid, gid);
	if (flock(qs->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		ssize_t n = pread(qs->lock_fd, pid, sizeof(pid) - 1, 0);

		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		*error_r = q_error("queue_dir %s is in use by another posternd%s%s%s", qs->dir,
				   pid[0] != '\0' ? " (pid " : "", pid, pid[0] != '\0' ? ")" : "");
		free(path);
		return -1;
	}
	free(path);
	/* For the admin only: the flock is the lock. */
	int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());

	if (ftruncate(qs->lock_fd, 0) == 0)
		(void)!pwrite(qs->lock_fd, pid, (size_t)len, 0);
	return 0;
}

int spool_open(struct qs *qs, const char **error_r)
{
	char *queue = q_asprintf("%s/queue", qs->dir);
	char *incoming = q_asprintf("%s/incoming", qs->dir);
	int ret = -1;

	qs->lock_fd = qs->queue_dfd = qs->incoming_dfd = -1;
	if (make_parents(qs->dir, error_r) == 0 && make_dir(qs, qs->dir, error_r) == 0 &&
	    make_dir(qs, queue, error_r) == 0 && make_dir(qs, incoming, error_r) == 0 &&
	    take_lock(qs, error_r) == 0) {
		qs->queue_dfd = open_dir(qs->dir, "queue", error_r);
		qs->incoming_dfd = qs->queue_dfd < 0 ? -1 : open_dir(qs->dir, "incoming", error_r);
		ret = qs->incoming_dfd < 0 ? -1 : 0;
	}
	free(queue);
	free(incoming);
	if (ret < 0)
		spool_close(qs);
	return ret;
}

void spool_close(struct qs *qs)
{
	if (qs->incoming_dfd >= 0)
		close(qs->incoming_dfd);
	if (qs->queue_dfd >= 0)
		close(qs->queue_dfd);
	if (qs->lock_fd >= 0)
		close(qs->lock_fd); /* releases the flock */
	qs->lock_fd = qs->queue_dfd = qs->incoming_dfd = -1;
	while (!qlist_empty(&qs->quarantine)) {
		struct qbad *bad = QLIST_ENTRY(qs->quarantine.next, struct qbad, link);

		qlist_del(&bad->link);
		free(bad->name);
		free(bad->id);
		free(bad->reason);
		free(bad);
	}
}

int spool_open_msg(struct qs *qs, const char *id)
{
	char name[QID_SIZE + 8];

	snprintf(name, sizeof(name), "%s.msg", id);
	return openat(qs->queue_dfd, name, O_RDONLY | O_CLOEXEC);
}

/* ---- the scan ---- */

struct scan {
	char **names;
	unsigned count, size;
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list_dir(int dfd, struct scan *scan, const char **error_r)
{
	int fd = dup(dfd);
	DIR *dir = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *entry;

	if (dir == NULL) {
		*error_r = q_error("opendir: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	rewinddir(dir);
	while ((errno = 0, entry = readdir(dir)) != NULL) {
		if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
			continue;
		if (scan->count == scan->size) {
			scan->size = scan->size == 0 ? 64 : scan->size * 2;
			scan->names = q_realloc(scan->names, scan->size * sizeof(*scan->names));
		}
		scan->names[scan->count++] = q_strdup(entry->d_name);
	}
	int saved = errno;

	closedir(dir);
	if (saved != 0) {
		*error_r = q_error("readdir: %s", strerror(saved));
		return -1;
	}
	if (scan->count > 0)
		qsort(scan->names, scan->count, sizeof(*scan->names), cmp_str);
	return 0;
}

static void scan_free(struct scan *scan)
{
	for (unsigned i = 0; i < scan->count; i++)
		free(scan->names[i]);
	free(scan->names);
}

static bool scan_has(const struct scan *scan, const char *name)
{
	return scan->count > 0 &&
	       bsearch(&name, scan->names, scan->count, sizeof(*scan->names), cmp_str) != NULL;
}

/* The id of "<id><suffix>", or false. */
static bool name_is(const char *name, const char *suffix, char id_r[QID_SIZE])
{
	size_t len = strlen(name), suffix_len = strlen(suffix);

	if (len != QID_LEN + suffix_len || strcmp(name + QID_LEN, suffix) != 0)
		return false;
	memcpy(id_r, name, QID_LEN);
	id_r[QID_LEN] = '\0';
	return qid_valid(id_r);
}

static void add_bad(struct qs *qs, const char *name, const char *id, const char *reason)
{
	struct qbad *bad = q_calloc(1, sizeof(*bad));
	struct stat st;

	bad->name = q_strdup(name);
	bad->id = q_strdup(id);
	bad->reason = q_strdup(reason);
	if (fstatat(qs->queue_dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		bad->size = (uint64_t)st.st_size;
		bad->mtime_ms = (uint64_t)st.st_mtim.tv_sec * 1000 +
				(uint64_t)st.st_mtim.tv_nsec / 1000000;
	}
	qlist_add_tail(&qs->quarantine, &bad->link);
}

void spool_quarantine(struct qs *qs, const char *id, const char *reason)
{
	char from[QID_SIZE + 8], to[QID_SIZE + 8];
	bool moved;

	snprintf(from, sizeof(from), "%s.msg", id);
	snprintf(to, sizeof(to), "%s.bad", id);
	moved = renameat(qs->queue_dfd, from, qs->queue_dfd, to) == 0;
	if (!moved)
		postern_log(qs->mod, POSTERN_LOG_ERROR, "%s: rename %s to %s: %s", id, from, to,
			    strerror(errno));
	snprintf(from, sizeof(from), "%s.st", id);
	snprintf(to, sizeof(to), "%s.badst", id);
	if (renameat(qs->queue_dfd, from, qs->queue_dfd, to) < 0 && errno != ENOENT)
		postern_log(qs->mod, POSTERN_LOG_ERROR, "%s: rename %s to %s: %s", id, from, to,
			    strerror(errno));
	(void)fsync(qs->queue_dfd);
	postern_log(qs->mod, POSTERN_LOG_ERROR,
		    "%s: quarantined, never delivered: %s (kept as queue/%s.bad; "
		    "`posternctl queue delete %s` removes it)", id, reason, id, id);
	snprintf(to, sizeof(to), "%s.%s", id, moved ? "bad" : "msg");
	add_bad(qs, to, id, reason);
}

int spool_delete_bad(struct qs *qs, struct qbad *bad, const char **error_r)
{
	char name[QID_SIZE + 8];

	if (unlinkat(qs->queue_dfd, bad->name, 0) < 0 && errno != ENOENT) {
		*error_r = q_error("unlink queue/%s: %s", bad->name, strerror(errno));
		return -1;
	}
	if (qid_valid(bad->id)) {
		snprintf(name, sizeof(name), "%s.badst", bad->id);
		(void)unlinkat(qs->queue_dfd, name, 0);
	}
	(void)fsync(qs->queue_dfd);
	qlist_del(&bad->link);
	free(bad->name);
	free(bad->id);
	free(bad->reason);
	free(bad);
	return 0;
}

/* Empties incoming/ and returns how many unfinished receptions it held.
 * Empty files are spares (spare.c), not receptions; a spare whose
 * truncation a crash interrupted counts as one, harmlessly. */
static unsigned clean_incoming(struct qs *qs)
{
	struct scan scan = { 0 };
	const char *error;
	unsigned unfinished = 0;

	spares_clear(qs);
	if (list_dir(qs->incoming_dfd, &scan, &error) < 0) {
		postern_log(qs->mod, POSTERN_LOG_ERROR, "%s/incoming: %s", qs->dir, error);
		return 0;
	}
	for (unsigned i = 0; i < scan.count; i++) {
		struct stat st;
		bool empty = fstatat(qs->incoming_dfd, scan.names[i], &st,
				     AT_SYMLINK_NOFOLLOW) == 0 && st.st_size == 0;

		if (unlinkat(qs->incoming_dfd, scan.names[i], 0) == 0)
			unfinished += empty ? 0 : 1;
		else
			postern_log(qs->mod, POSTERN_LOG_ERROR, "unlink %s/incoming/%s: %s",
				    qs->dir, scan.names[i], strerror(errno));
	}
	scan_free(&scan);
	return unfinished;
}

static int read_small_file(int dfd, const char *name, struct qbuf *buf, const char **error_r)
{
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
	char chunk[8192];
	ssize_t n;

	if (fd < 0) {
		*error_r = q_error("open: %s", strerror(errno));
		return -1;
	}
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || buf->len + (size_t)n > STATE_MAX_SIZE) {
			*error_r = n < 0 ? q_error("read: %s", strerror(errno)) : "state file too big";
			close(fd);
			return -1;
		}
		qbuf_append(buf, chunk, (size_t)n);
	}
	close(fd);
	return 0;
}

static int load_state(struct qs *qs, struct qmsg *msg, const char **error_r)
{
	char name[QID_SIZE + 8];
	struct qbuf buf = { 0 };
	int ret;

	snprintf(name, sizeof(name), "%s.st", msg->env.id);
	ret = read_small_file(qs->queue_dfd, name, &buf, error_r);
	if (ret == 0)
		ret = qstate_parse(buf.data == NULL ? "" : buf.data, buf.len, &msg->env, &msg->held,
				   &msg->warned, error_r);
	qbuf_free(&buf);
	return ret;
}

static void load_message(struct qs *qs, const char *id, bool has_state, unsigned *loaded)
{
	struct qmsg *msg = qmsg_new(qs);
	const char *error;
	int fd = spool_open_msg(qs, id);

	if (fd < 0) {
		spool_quarantine(qs, id, q_error("open: %s", strerror(errno)));
		qmsg_free(msg);
		return;
	}
	if (qfile_read_fd(fd, &msg->env, &msg->info, &error) < 0) {
		close(fd);
		spool_quarantine(qs, id, error);
		qmsg_free(msg);
		return;
	}
	close(fd);
	if (strcmp(msg->env.id, id) != 0) {
		spool_quarantine(qs, id, q_error("the file holds message %s", msg->env.id));
		qmsg_free(msg);
		return;
	}
	if (has_state && load_state(qs, msg, &error) < 0) {
		spool_quarantine(qs, id, error);
		qmsg_free(msg);
		return;
	}
	if (qtable_find(&qs->table, id) != NULL) {
		qmsg_free(msg);
		return;
	}
	for (unsigned i = 0; i < msg->env.rcpt_count; i++) {
		struct qrcpt *rcpt = &msg->env.rcpts[i];

		rcpt->local = recipient_domain_is_local(qs, rcpt->address);
		/* An attempt of an earlier run may have delivered it. */
		rcpt->maybe_delivered = rcpt->local && rcpt->state == QR_PENDING;
	}
	qtable_add(&qs->table, msg);
	sched_add(msg);
	(*loaded)++;
}

static void load_bad(struct qs *qs, const char *name, const char *id)
{
	int fd = openat(qs->queue_dfd, name, O_RDONLY | O_CLOEXEC);
	struct qenvelope env;
	struct qfile_info info;
	const char *error = "quarantined by an earlier run";

	if (fd < 0)
		error = q_error("open: %s", strerror(errno));
	else if (qfile_read_fd(fd, &env, &info, &error) == 0)
		qenvelope_clear(&env);
	if (fd >= 0)
		close(fd);
	add_bad(qs, name, id, error);
}

int spool_load(struct qs *qs, const char **error_r)
{
	struct scan scan = { 0 };
	unsigned removed = clean_incoming(qs), loaded = 0, orphans = 0;
	char id[QID_SIZE], name[QID_SIZE + 8];

	if (list_dir(qs->queue_dfd, &scan, error_r) < 0)
		return -1;
	for (unsigned i = 0; i < scan.count; i++) {
		const char *entry = scan.names[i];

		if (name_is(entry, ".msg", id)) {
			snprintf(name, sizeof(name), "%s.st", id);
			load_message(qs, id, scan_has(&scan, name), &loaded);
		} else if (name_is(entry, ".st", id)) {
			snprintf(name, sizeof(name), "%s.msg", id);
			if (scan_has(&scan, name))
				continue;
			/* Left by a removal interrupted after its message was
			 * unlinked: nothing to deliver. */
			(void)unlinkat(qs->queue_dfd, entry, 0);
			orphans++;
		} else if (name_is(entry, ".bad", id)) {
			load_bad(qs, entry, id);
		} else if (name_is(entry, ".badst", id)) {
			continue;
		} else {
			add_bad(qs, entry, entry, "not a queue file");
			postern_log(qs->mod, POSTERN_LOG_WARNING,
				    "%s/queue/%s: not a queue file; listed as quarantined",
				    qs->dir, entry);
		}
	}
	scan_free(&scan);
	unsigned bad = 0;

	for (struct qlist *item = qs->quarantine.next; item != &qs->quarantine; item = item->next)
		bad++;
	postern_log(qs->mod, bad > 0 ? POSTERN_LOG_WARNING : POSTERN_LOG_INFO,
		    "queue %s: %u messages loaded, %u quarantined, %u unfinished receptions "
		    "and %u leftover state files removed", qs->dir, loaded, bad, removed, orphans);
	return 0;
}
