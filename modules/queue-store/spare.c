/*
 * Recycled queue files. A message that leaves the queue is not unlinked:
 * the syncer renames queue/<id>.msg into incoming/spare.<n> (the same
 * directory change as an unlink, before the same directory fsync) and
 * truncates it once that fsync is done. The next message received is
 * written into such a spare instead of a new file.
 *
 * Why: creating a file allocates an inode, and that is not always cheap.
 * On ext4 without a journal, an allocation right after many deletions
 * scans past every recently freed inode and reads inode tables from disk;
 * a burst after a big queue run took 70% of the event loop in openat().
 * begin() runs on the loop, so it must not allocate while spares exist:
 * taking one is an open of an existing, empty file.
 *
 * Spares live only on the loop (names, no fds held); incoming/ is emptied
 * at every start, so numbering restarts there.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue_store.h"

/* More spares than messages received at once buys nothing; this bounds
 * the empty files a quiet queue keeps after a burst. */
#define SPARES_MAX 1024u

void spares_name(unsigned seq, char name[QFILE_NAME_SIZE])
{
	snprintf(name, QFILE_NAME_SIZE, "spare.%u", seq);
}

bool spares_reserve(struct qs *qs, char name[QFILE_NAME_SIZE])
{
	struct qspares *spares = &qs->spares;

	if (spares->count + spares->incoming >= SPARES_MAX)
		return false;
	spares->incoming++;
	spares_name(spares->next_seq++, name);
	return true;
}

void spares_arrived(struct qs *qs, const char *name, bool usable)
{
	struct qspares *spares = &qs->spares;
	unsigned seq;

	spares->incoming--;
	if (!usable || sscanf(name, "spare.%u", &seq) != 1)
		return;
	if (spares->count == spares->size) {
		spares->size = spares->size == 0 ? 64 : spares->size * 2;
		spares->seqs = q_realloc(spares->seqs, spares->size * sizeof(*spares->seqs));
	}
	spares->seqs[spares->count++] = seq;
}

int spares_take(struct qs *qs, char name[QFILE_NAME_SIZE])
{
	struct qspares *spares = &qs->spares;

	while (spares->count > 0) {
		/* Most recent first: its inode is the likeliest in cache. */
		spares_name(spares->seqs[--spares->count], name);
		int fd = openat(qs->incoming_dfd, name, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
		struct stat st;

		/* Not O_TRUNC: on a journalled file system that would start a
		 * transaction (and may wait for one) right here on the loop. */
		if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0) {
			spares->reused++;
			return fd;
		}
		/* Removed or changed behind our back: not ours to write into. */
		if (fd >= 0)
			close(fd);
	}
	return -1;
}

void spares_clear(struct qs *qs)
{
	free(qs->spares.seqs);
	qs->spares = (struct qspares){ 0 };
}
