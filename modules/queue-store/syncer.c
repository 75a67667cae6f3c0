/*
 * Group commit. Everything that makes the queue durable goes through here
 * as an op: a received message (fsync its file in incoming/, rename it into
 * queue/), a state file (write a temp file, fsync, rename over the old
 * one), a removal (unlink). Ops submitted while a batch runs wait for the
 * next one; each batch ends with ONE fsync of the queue directory that
 * makes all of its renames and unlinks durable. Only then are the ops'
 * done callbacks run (on the loop), so no commit is confirmed before the
 * fsync that covers it, and N concurrent commits cost one directory fsync.
 *
 * The batch runs in its own thread: the loop goes on receiving meanwhile.
 * Its file fsyncs run in parallel on the sync_threads of a fan (fanout.c),
 * which returns only when all are finished; the renames and the directory
 * fsync come after that, so the order above is unchanged.
 * A removal unlinks the message file before the directory fsync and its
 * state file after it, so a crash can never leave a message without its
 * state (which would make it look new).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <postern/postern.h>

#include "queue_store.h"

struct qbatch {
	struct qjob job;
	struct qsyncer *syncer;
	struct qlist ops;
	struct qfan *fan;
	struct qsync_op **files;  /* the NEW and STATE ops, for the fan */
	size_t file_count;
	int queue_dfd, incoming_dfd;
	uint64_t run_us;          /* time the worker spent on it */
};

struct qsyncer {
	struct qs *qs;
	struct qpool *pool;
	struct qfan *fan;         /* used by the syncer pool's one thread only */
	struct qlist pending;
	struct qbatch *inflight;
	struct postern_timer *kick;
	bool kick_armed;
	unsigned seq;
	uint64_t batches, ops;
	uint64_t busy_us, max_batch;
};

struct qsync_op *qsync_op_new(enum qsync_kind kind, const char *id)
{
	struct qsync_op *op = q_calloc(1, sizeof(*op));

	op->kind = kind;
	op->fd = -1;
	snprintf(op->id, sizeof(op->id), "%s", id);
	return op;
}

static void op_free(struct qsync_op *op)
{
	if (op->fd >= 0)
		close(op->fd);
	qbuf_free(&op->state);
	free(op);
}

static void op_fail(struct qsync_op *op, const char *step, int error)
{
	if (op->error == 0) {
		op->error = error != 0 ? error : EIO;
		op->step = step;
	}
}

static void tmp_name(const struct qsync_op *op, char *buf, size_t size)
{
	snprintf(buf, size, "st.%s.%u", op->id, op->seq);
}

/* ---- in the worker thread ---- */

/* Start writing a file back without waiting: the allocations of every
 * file of the batch then go into one journal transaction, and the
 * fdatasync() calls that follow wait for it once instead of committing
 * one transaction per file (ext4 with delayed allocation). */
static void start_writeback(int fd)
{
	(void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

/* In a fan thread: only op is touched, and the directory fds are not
 * closed before the batch is done. */
static void batch_prepare_new(struct qbatch *batch, struct qsync_op *op)
{
	if (op->write_errno != 0)
		op_fail(op, "write", op->write_errno);
	else if (fdatasync(op->fd) < 0)
		op_fail(op, "fsync", errno);
	if (close(op->fd) < 0)
		op_fail(op, "close", errno);
	op->fd = -1;
	if (op->error != 0)
		(void)unlinkat(batch->incoming_dfd, op->file, 0);
}

/* Write a state file's temp file; its fd stays in op->fd for the fsync. */
static void batch_write_state(struct qbatch *batch, struct qsync_op *op)
{
	char name[64];

	tmp_name(op, name, sizeof(name));
	op->fd = openat(batch->incoming_dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			0600);
	if (op->fd < 0) {
		op_fail(op, "create", errno);
		return;
	}
	if (q_write_all(op->fd, op->state.data, op->state.len) < 0)
		op_fail(op, "write", errno);
	else
		start_writeback(op->fd);
}

static void batch_prepare_state(struct qbatch *batch, struct qsync_op *op)
{
	char name[64];

	if (op->fd < 0)
		return;
	if (op->error == 0 && fdatasync(op->fd) < 0)
		op_fail(op, "fsync", errno);
	if (close(op->fd) < 0)
		op_fail(op, "close", errno);
	op->fd = -1;
	if (op->error != 0) {
		tmp_name(op, name, sizeof(name));
		(void)unlinkat(batch->incoming_dfd, name, 0);
	}
}

static void batch_prepare_file(void *item, void *ctx)
{
	struct qsync_op *op = item;
	struct qbatch *batch = ctx;

	if (op->kind == QSYNC_NEW)
		batch_prepare_new(batch, op);
	else
		batch_prepare_state(batch, op);
}

static int rename_noreplace(int from_dfd, const char *from, int to_dfd, const char *to)
{
	if (renameat2(from_dfd, from, to_dfd, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	/* A file system without RENAME_NOREPLACE: the id is unique anyway. */
	return renameat(from_dfd, from, to_dfd, to);
}

/* A removed message's file, now in incoming/: emptied to become a spare
 * once no crash can bring the message back. */
static void batch_recycle(struct qbatch *batch, struct qsync_op *op)
{
	int fd = openat(batch->incoming_dfd, op->file, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW);

	if (fd >= 0 && close(fd) == 0) {
		op->recycled = true;
		return;
	}
	(void)unlinkat(batch->incoming_dfd, op->file, 0);
}

/* Returns whether the directory changed. */
static bool batch_apply(struct qbatch *batch, struct qsync_op *op)
{
	char from[64], to[64];

	if (op->error != 0)
		return false;
	switch (op->kind) {
	case QSYNC_NEW:
		snprintf(to, sizeof(to), "%s.msg", op->id);
		if (rename_noreplace(batch->incoming_dfd, op->file, batch->queue_dfd, to) < 0) {
			op_fail(op, "rename", errno);
			(void)unlinkat(batch->incoming_dfd, op->file, 0);
			return false;
		}
		return true;
	case QSYNC_STATE:
		tmp_name(op, from, sizeof(from));
		snprintf(to, sizeof(to), "%s.st", op->id);
		if (renameat(batch->incoming_dfd, from, batch->queue_dfd, to) < 0) {
			op_fail(op, "rename", errno);
			(void)unlinkat(batch->incoming_dfd, from, 0);
			return false;
		}
		return true;
	case QSYNC_REMOVE:
		snprintf(from, sizeof(from), "%s.msg", op->id);
		if (op->file[0] != '\0' &&
		    renameat(batch->queue_dfd, from, batch->incoming_dfd, op->file) == 0)
			return true;
		op->file[0] = '\0';
		if (unlinkat(batch->queue_dfd, from, 0) < 0 && errno != ENOENT) {
			op_fail(op, "unlink", errno);
			return false;
		}
		return true;
	}
	return false;
}

static void batch_dir_failed(struct qbatch *batch, int error)
{
	char name[64];

	for (struct qlist *item = batch->ops.next; item != &batch->ops; item = item->next) {
		struct qsync_op *op = QLIST_ENTRY(item, struct qsync_op, link);

		if (op->error != 0)
			continue;
		op_fail(op, "fsync of the queue directory", error);
		/* Not confirmed, so not queued: take it back out. */
		if (op->kind == QSYNC_NEW) {
			snprintf(name, sizeof(name), "%s.msg", op->id);
			(void)unlinkat(batch->queue_dfd, name, 0);
		}
	}
}

static uint64_t monotonic_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void batch_run(struct qjob *job)
{
	struct qbatch *batch = (struct qbatch *)job;
	uint64_t started = monotonic_us();
	bool changed = false;
	char name[64];

	for (struct qlist *item = batch->ops.next; item != &batch->ops; item = item->next) {
		struct qsync_op *op = QLIST_ENTRY(item, struct qsync_op, link);

		if (op->kind == QSYNC_NEW && op->write_errno == 0)
			start_writeback(op->fd);
		else if (op->kind == QSYNC_STATE)
			batch_write_state(batch, op);
	}
	/* Returns when every file's fsync is finished. */
	qfan_run(batch->fan, batch_prepare_file, (void *const *)batch->files,
		 batch->file_count, batch);
	/* New messages first: a notice is in the queue before the state
	 * that says it was sent. */
	for (enum qsync_kind kind = QSYNC_NEW; kind <= QSYNC_REMOVE; kind++) {
		for (struct qlist *item = batch->ops.next; item != &batch->ops; item = item->next) {
			struct qsync_op *op = QLIST_ENTRY(item, struct qsync_op, link);

			if (op->kind == kind && batch_apply(batch, op))
				changed = true;
		}
	}
	if (changed && fsync(batch->queue_dfd) < 0)
		batch_dir_failed(batch, errno);
	for (struct qlist *item = batch->ops.next; item != &batch->ops; item = item->next) {
		struct qsync_op *op = QLIST_ENTRY(item, struct qsync_op, link);

		if (op->kind != QSYNC_REMOVE || op->error != 0)
			continue;
		snprintf(name, sizeof(name), "%s.st", op->id);
		(void)unlinkat(batch->queue_dfd, name, 0);
		if (op->file[0] != '\0')
			batch_recycle(batch, op);
	}
	batch->run_us = monotonic_us() - started;
}

/* ---- on the loop ---- */

static void syncer_start_batch(struct qsyncer *syncer);

static void batch_done(struct qjob *job)
{
	struct qbatch *batch = (struct qbatch *)job;
	struct qsyncer *syncer = batch->syncer;

	syncer->inflight = NULL;
	syncer->busy_us += batch->run_us;
	while (!qlist_empty(&batch->ops)) {
		struct qsync_op *op = QLIST_ENTRY(batch->ops.next, struct qsync_op, link);

		qlist_del(&op->link);
		if (op->done != NULL)
			op->done(op, op->ctx);
		op_free(op);
	}
	free(batch->files);
	free(batch);
	if (!qlist_empty(&syncer->pending))
		syncer_start_batch(syncer);
}

static void syncer_start_batch(struct qsyncer *syncer)
{
	struct qbatch *batch;
	uint64_t count = 0;

	if (syncer->inflight != NULL || qlist_empty(&syncer->pending))
		return;
	batch = q_calloc(1, sizeof(*batch));
	batch->job.run = batch_run;
	batch->job.done = batch_done;
	batch->syncer = syncer;
	batch->fan = syncer->fan;
	batch->queue_dfd = syncer->qs->queue_dfd;
	batch->incoming_dfd = syncer->qs->incoming_dfd;
	qlist_init(&batch->ops);
	while (!qlist_empty(&syncer->pending)) {
		struct qlist *item = syncer->pending.next;

		qlist_del(item);
		qlist_add_tail(&batch->ops, item);
		syncer->ops++;
		count++;
	}
	batch->files = q_calloc(count, sizeof(*batch->files));
	for (struct qlist *item = batch->ops.next; item != &batch->ops; item = item->next) {
		struct qsync_op *op = QLIST_ENTRY(item, struct qsync_op, link);

		if (op->kind == QSYNC_NEW || op->kind == QSYNC_STATE)
			batch->files[batch->file_count++] = op;
	}
	if (count > syncer->max_batch)
		syncer->max_batch = count;
	syncer->batches++;
	syncer->inflight = batch;
	qpool_submit(syncer->pool, &batch->job);
}

static void syncer_on_kick(struct postern_timer *timer, void *ctx)
{
	struct qsyncer *syncer = ctx;

	(void)timer;
	syncer->kick_armed = false;
	syncer_start_batch(syncer);
}

int qsyncer_create(struct qs *qs, const char **error_r)
{
	struct qsyncer *syncer = q_calloc(1, sizeof(*syncer));

	syncer->qs = qs;
	qlist_init(&syncer->pending);
	if (qfan_create((unsigned)qs->set.sync_threads, &syncer->fan, error_r) < 0) {
		free(syncer);
		return -1;
	}
	/* One thread: one batch at a time, so the fan has one user. */
	if (qpool_create(qs->mod, 1, "syncer", &syncer->pool, error_r) < 0) {
		qfan_free(&syncer->fan);
		free(syncer);
		return -1;
	}
	/* A zero timer runs after the current loop iteration: every commit
	 * of this iteration joins the same batch. */
	syncer->kick = postern_timer_add(qs->mod, 0, false, syncer_on_kick, syncer);
	postern_timer_stop(syncer->kick);
	qs->syncer = syncer;
	return 0;
}

void qsyncer_submit(struct qs *qs, struct qsync_op *op)
{
	struct qsyncer *syncer = qs->syncer;

	if (op->kind == QSYNC_STATE)
		op->seq = ++syncer->seq;
	qlist_add_tail(&syncer->pending, &op->link);
	if (syncer->inflight == NULL && !syncer->kick_armed) {
		syncer->kick_armed = true;
		postern_timer_reset(syncer->kick, 0);
	}
}

void qsyncer_flush(struct qs *qs)
{
	struct qsyncer *syncer = qs->syncer;

	if (syncer == NULL)
		return;
	if (syncer->kick_armed) {
		postern_timer_stop(syncer->kick);
		syncer->kick_armed = false;
	}
	syncer_start_batch(syncer);
	qpool_drain(syncer->pool);
}

void qsyncer_free(struct qs *qs)
{
	struct qsyncer *syncer = qs->syncer;

	if (syncer == NULL)
		return;
	qsyncer_flush(qs);
	qpool_free(&syncer->pool);
	qfan_free(&syncer->fan);
	postern_timer_remove(&syncer->kick);
	free(syncer);
	qs->syncer = NULL;
}

void qsyncer_stats(const struct qs *qs, struct qsync_stats *stats_r)
{
	const struct qsyncer *syncer = qs->syncer;

	memset(stats_r, 0, sizeof(*stats_r));
	if (syncer == NULL)
		return;
	stats_r->batches = syncer->batches;
	stats_r->ops = syncer->ops;
	stats_r->busy_ms = syncer->busy_us / 1000;
	stats_r->max_batch = syncer->max_batch;
}
