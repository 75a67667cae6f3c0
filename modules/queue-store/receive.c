/*
 * The "queue" service (include/postern/queue.h): how a receiving module
 * hands a message over. begin() starts a file in incoming/ (a recycled
 * one if possible, see spare.c) with the envelope,
 * write() appends the message through a buffer while the checksum runs
 * along, commit() adds the trailer and gives the file to the syncer, which
 * fsyncs it, renames it into queue/ and fsyncs the directory, in a batch
 * with every other commit of the moment. Only then does done(0) run: the
 * receiver's 250 can never precede the fsync that covers its message.
 *
 * A write error (a full disk) makes the message unusable; commit then
 * reports it and nothing of the message remains. Messages the queue
 * generates itself (notices) use the same path.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <postern/postern.h>

#include "queue_store.h"

#define RECEIVE_BUF_SIZE (64u * 1024u)

/* The envelope as the oldest (1.0) header defined it. */
#define ENVELOPE_MIN_SIZE \
	(offsetof(struct postern_queue_envelope, received_by) + sizeof(const char *))

static const char *errno_text(int error, const char *step)
{
	if (error == ENOSPC || error == EDQUOT)
		return q_error("disk full: queue file %s: %s", step, strerror(error));
	return q_error("queue file %s: %s", step, strerror(error));
}

static void receive_free(struct postern_queue_msg *msg)
{
	if (qlist_linked(&msg->link))
		qlist_del(&msg->link);
	if (msg->fd >= 0)
		close(msg->fd);
	qenvelope_clear(&msg->env);
	free(msg->buf);
	free(msg);
}

static int flush_buf(struct postern_queue_msg *msg)
{
	if (msg->buf_len == 0 || msg->write_errno != 0)
		return msg->write_errno == 0 ? 0 : -1;
	if (q_write_all(msg->fd, msg->buf, msg->buf_len) < 0) {
		msg->write_errno = errno;
		return -1;
	}
	msg->buf_len = 0;
	return 0;
}

/* A unique id, not in the queue, and a file to write the message into:
 * a recycled spare if there is one (spare.c), else incoming/<id> created
 * exclusively. A spare's id is not reserved by a file, but an id is
 * microseconds plus 32 random bits and the commit's rename never replaces
 * a file: a collision would fail that one commit, never mix messages. */
static int open_incoming(struct qs *qs, struct qenvelope *env, char file[QFILE_NAME_SIZE],
			 const char **error_r)
{
	int spare = spares_take(qs, file);

	for (int tries = 0; tries < 100; tries++) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		qid_generate((uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u,
			     q_random32(), env->id);
		if (qtable_find(&qs->table, env->id) != NULL)
			continue;
		if (spare >= 0)
			return spare;
		int fd = openat(qs->incoming_dfd, env->id,
				O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

		if (fd >= 0) {
			snprintf(file, QFILE_NAME_SIZE, "%s", env->id);
			return fd;
		}
		if (errno != EEXIST) {
			*error_r = errno_text(errno, "create");
			return -1;
		}
	}
	if (spare >= 0) {
		close(spare);
		(void)unlinkat(qs->incoming_dfd, file, 0);
	}
	*error_r = "cannot find an unused queue id";
	return -1;
}

struct postern_queue_msg *receive_begin(struct qs *qs, const struct qenvelope *env,
					const char **error_r)
{
	struct postern_queue_msg *msg;
	struct qbuf header = { 0 };

	if (qfile_envelope_valid(env, error_r) < 0)
		return NULL;
	if (qs->incoming_dfd < 0) {
		*error_r = "the queue is not open";
		return NULL;
	}
	msg = q_calloc(1, sizeof(*msg));
	msg->qs = qs;
	msg->env = *env;
	msg->env.arrival_ms = q_wall_ms();
	msg->fd = open_incoming(qs, &msg->env, msg->file, error_r);
	if (msg->fd < 0) {
		memset(&msg->env, 0, sizeof(msg->env));
		free(msg);
		return NULL;
	}
	qfile_format_header(&header, &msg->env);
	msg->header_len = header.len;
	msg->crc = crc32c_update(0, header.data, header.len);
	if (q_write_all(msg->fd, header.data, header.len) < 0) {
		*error_r = errno_text(errno, "write");
		qbuf_free(&header);
		(void)unlinkat(qs->incoming_dfd, msg->file, 0);
		memset(&msg->env, 0, sizeof(msg->env));
		close(msg->fd);
		free(msg);
		return NULL;
	}
	qbuf_free(&header);
	msg->buf = q_malloc(RECEIVE_BUF_SIZE);
	qlist_add_tail(&qs->receiving, &msg->link);
	return msg;
}

int receive_write(struct postern_queue_msg *msg, const void *data, size_t len,
		  const char **error_r)
{
	const char *p = data;
	uint64_t max = msg->qs->set.max_message_size;

	assert(!msg->committing);
	if (msg->write_errno == 0 && max != 0 && msg->body_size + len > max)
		msg->write_errno = EFBIG;
	if (msg->write_errno != 0) {
		*error_r = msg->write_errno == EFBIG ? "message exceeds max_message_size"
						     : errno_text(msg->write_errno, "write");
		return -1;
	}
	msg->crc = crc32c_update(msg->crc, data, len);
	msg->body_size += len;
	while (len > 0) {
		size_t room = RECEIVE_BUF_SIZE - msg->buf_len;
		size_t n = len < room ? len : room;

		memcpy(msg->buf + msg->buf_len, p, n);
		msg->buf_len += n;
		p += n;
		len -= n;
		if (msg->buf_len == RECEIVE_BUF_SIZE && flush_buf(msg) < 0) {
			*error_r = errno_text(msg->write_errno, "write");
			return -1;
		}
	}
	return 0;
}

static void commit_done(struct qsync_op *op, void *ctx)
{
	struct postern_queue_msg *msg = ctx;
	struct qs *qs = msg->qs;
	struct qmsg *queued = NULL;
	const char *error = NULL;
	char id[QID_SIZE];

	memcpy(id, msg->env.id, QID_SIZE);
	if (op->error != 0) {
		error = op->error == EFBIG ? "message exceeds max_message_size"
					   : errno_text(op->error, op->step);
		postern_log(qs->mod, POSTERN_LOG_ERROR, "%s: not queued: %s", id, error);
	} else {
		queued = qmsg_new(qs);
		queued->env = msg->env;
		memset(&msg->env, 0, sizeof(msg->env));
		queued->info.header_len = msg->header_len;
		queued->info.body_size = msg->body_size;
		queued->info.file_size = msg->header_len + msg->body_size + QFILE_TRAILER_LEN;
		for (unsigned i = 0; i < queued->env.rcpt_count; i++)
			queued->env.rcpts[i].local =
				recipient_domain_is_local(qs, queued->env.rcpts[i].address);
		qtable_add(&qs->table, queued);
		qs->n_accepted++;
		events_accepted(qs, queued);
	}
	if (msg->internal_done != NULL)
		msg->internal_done(qs, queued, error, msg->internal_ctx);
	else if (!msg->detached)
		msg->done(msg->done_ctx, error == NULL ? 0 : -1, error == NULL ? id : NULL, error);
	receive_free(msg);
	/* Scheduled last: a first attempt may start at once. */
	if (queued != NULL)
		sched_add(queued);
}

static void commit_submit(struct postern_queue_msg *msg)
{
	struct qsync_op *op = qsync_op_new(QSYNC_NEW, msg->env.id);
	char trailer[QFILE_TRAILER_LEN + 1];

	msg->committing = true;
	if (flush_buf(msg) == 0) {
		qfile_format_trailer(trailer, msg->body_size, msg->crc);
		if (q_write_all(msg->fd, trailer, QFILE_TRAILER_LEN) < 0)
			msg->write_errno = errno;
	}
	op->fd = msg->fd;
	msg->fd = -1;
	memcpy(op->file, msg->file, sizeof(op->file));
	op->write_errno = msg->write_errno;
	op->done = commit_done;
	op->ctx = msg;
	qsyncer_submit(msg->qs, op);
}

void receive_commit_internal(struct postern_queue_msg *msg,
			     void (*done)(struct qs *qs, struct qmsg *msg, const char *error,
					  void *ctx),
			     void *ctx)
{
	msg->internal_done = done;
	msg->internal_ctx = ctx;
	commit_submit(msg);
}

void receive_abort(struct postern_queue_msg *msg)
{
	if (msg == NULL)
		return;
	assert(!msg->committing);
	(void)unlinkat(msg->qs->incoming_dfd, msg->file, 0);
	receive_free(msg);
}

void receive_free_all(struct qs *qs)
{
	/* Messages still being written (their receiver is gone): the files
	 * are dropped; incoming/ is cleaned at the next start anyway. */
	while (!qlist_empty(&qs->receiving)) {
		struct postern_queue_msg *msg =
			QLIST_ENTRY(qs->receiving.next, struct postern_queue_msg, link);

		/* Commits completed when the syncer was flushed. */
		assert(!msg->committing);
		receive_abort(msg);
	}
}

/* ---- the service ops ---- */

static enum postern_rcpt_status op_check_recipient(void *ctx, const char *address)
{
	return recipient_check(ctx, address);
}

/* Same mailbox: the domain is case-insensitive, the local part is not. */
static bool same_address(const char *a, const char *b)
{
	const char *at_a = strrchr(a, '@'), *at_b = strrchr(b, '@');

	if (at_a == NULL || at_b == NULL)
		return strcmp(a, b) == 0;
	return at_a - a == at_b - b && strncmp(a, b, (size_t)(at_a - a)) == 0 &&
	       strcasecmp(at_a, at_b) == 0;
}

static void envelope_from_public(struct qenvelope *env, const struct postern_queue_envelope *in)
{
	memset(env, 0, sizeof(*env));
	env->sender = q_strdup(in->sender != NULL ? in->sender : "");
	env->ret = in->ret;
	env->envid = q_strdup_or_null(in->envid);
	env->body_8bitmime = in->body_8bitmime;
	env->smtputf8 = in->smtputf8;
	env->client_address = q_strdup_or_null(in->client_address);
	env->client_name = q_strdup_or_null(in->client_name);
	env->auth_user = q_strdup_or_null(in->auth_user);
	env->received_by = q_strdup_or_null(in->received_by);
	env->kind = QK_NORMAL;
	env->rcpts = q_calloc(in->rcpt_count, sizeof(*env->rcpts));
	for (unsigned i = 0; i < in->rcpt_count; i++) {
		const struct postern_queue_rcpt *rcpt = &in->rcpts[i];
		bool duplicate = false;

		for (unsigned j = 0; j < env->rcpt_count && !duplicate; j++)
			duplicate = same_address(env->rcpts[j].address, rcpt->address);
		if (duplicate)
			continue;
		env->rcpts[env->rcpt_count].address = q_strdup(rcpt->address);
		env->rcpts[env->rcpt_count].orcpt = q_strdup_or_null(rcpt->orcpt);
		env->rcpts[env->rcpt_count].notify = rcpt->notify;
		env->rcpt_count++;
	}
}

static struct postern_queue_msg *op_begin(void *ctx, const struct postern_queue_envelope *envelope,
					  const char **error_r)
{
	struct qs *qs = ctx;
	struct postern_queue_envelope in;
	struct qenvelope env;
	struct postern_queue_msg *msg;

	if (envelope == NULL || envelope->struct_size < ENVELOPE_MIN_SIZE) {
		*error_r = "bad envelope (struct_size)";
		return NULL;
	}
	/* Fields a newer receiver knows and we do not are ignored; fields
	 * an older one did not have are zero. */
	memset(&in, 0, sizeof(in));
	memcpy(&in, envelope, envelope->struct_size < sizeof(in) ? envelope->struct_size : sizeof(in));
	if (in.rcpt_count == 0 || in.rcpts == NULL) {
		*error_r = "no recipients";
		return NULL;
	}
	for (unsigned i = 0; i < in.rcpt_count; i++) {
		if (in.rcpts[i].address == NULL) {
			*error_r = "recipient without address";
			return NULL;
		}
	}
	envelope_from_public(&env, &in);
	msg = receive_begin(qs, &env, error_r);
	if (msg == NULL) {
		postern_log(qs->mod, POSTERN_LOG_ERROR, "cannot begin a message from <%s>: %s",
			    env.sender, *error_r);
		qenvelope_clear(&env);
	}
	return msg;
}

static int op_write(struct postern_queue_msg *msg, const void *data, size_t len,
		    const char **error_r)
{
	return receive_write(msg, data, len, error_r);
}

static void op_commit(struct postern_queue_msg *msg, postern_queue_commit_cb *done,
		      void *done_ctx)
{
	msg->done = done;
	msg->done_ctx = done_ctx;
	commit_submit(msg);
}

static void op_abort(struct postern_queue_msg *msg)
{
	receive_abort(msg);
}

static void op_detach(struct postern_queue_msg *msg)
{
	/* Only a commit can be detached; anything else is dropped, so a
	 * receiver's mistake cannot leak a half-written message. */
	if (!msg->committing) {
		receive_abort(msg);
		return;
	}
	msg->detached = true;
}

void receive_init_ops(struct qs *qs)
{
	qs->ops.struct_size = sizeof(qs->ops);
	qs->ops.ctx = qs;
	qs->ops.check_recipient = op_check_recipient;
	qs->ops.begin = op_begin;
	qs->ops.write = op_write;
	qs->ops.commit = op_commit;
	qs->ops.abort = op_abort;
	qs->ops.detach = op_detach;
}
