/*
 * Local delivery into Maildir++ through lib/mailstore, in a delivery
 * thread (each delivery fsyncs a file and a directory).
 *
 * Who the recipient is and where the mail goes is resolved on the loop
 * before the job starts (the user database is used from the loop only); the
 * job gets the Maildir, the quota and the message file descriptor.
 *
 * Exactly once across crashes: every delivery carries the id
 * "<queue id>/<recipient>", which mailstore puts into the file name. When a
 * delivery may have happened without being recorded (the message was
 * loaded at start, or the last attempt failed in a way that may have left
 * the message in the Maildir), the job first asks mailstore_delivered()
 * and does not write again when the message is there.
 *
 * The message is stored with LF line ends, as Dovecot's and Postfix's
 * local delivery do, after a Return-Path and a Delivered-To header.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <postern/postern.h>
#include <postern/mailstore.h>

#include "queue_store.h"

#define LOCAL_PREFIX_MAX (2 * QFILE_MAX_FIELD + 64)

struct qlocal_item {
	unsigned index;
	char *address;
	struct qmailbox box;
	bool check_first;
	/* Results, filled in the worker. */
	unsigned code;
	const char *status;
	char *text;
	char *mailbox;
	bool uncertain;
};

struct qlocal_job {
	struct qjob job;
	struct qattempt *attempt;
	char id[QID_SIZE];
	char *sender;
	int fd;
	uint64_t header_len, body_size, file_size;
	unsigned lock_timeout_secs, lock_stale_secs;
	struct mailstore_dirsync *dirsync;
	struct qlocal_item *items;
	unsigned count;
	char *job_error;          /* the message could not be read at all */
};

/* ---- in the worker ---- */

/* CRLF to LF, leaving room in front for the longest header prefix. */
static char *local_body(const char *body, size_t size, size_t room, size_t *len_r)
{
	char *buf = q_malloc(room + size + 1);
	char *out = buf + room;

	for (size_t i = 0; i < size; i++) {
		if (body[i] == '\r' && i + 1 < size && body[i + 1] == '\n')
			continue;
		*out++ = body[i];
	}
	*len_r = (size_t)(out - buf - room);
	return buf;
}

static void item_result(struct qlocal_item *item, unsigned code, const char *status,
			const char *text)
{
	item->code = code;
	item->status = status;
	item->text = q_strdup(text);
}

static void local_deliver_one(struct qlocal_job *job, struct qlocal_item *item, char *buf,
			      size_t room, size_t body_len)
{
	struct mailstore_settings set = MAILSTORE_SETTINGS_INIT;
	struct mailstore_delivery delivery = MAILSTORE_DELIVERY_INIT;
	char *id = q_asprintf("%s/%s", job->id, item->address);
	char prefix[LOCAL_PREFIX_MAX];
	char *filename = NULL;
	const char *error;
	int len;

	set.root = item->box.root;
	set.quota_bytes = item->box.quota_bytes;
	set.quota_messages = item->box.quota_messages;
	set.lock_timeout_secs = job->lock_timeout_secs;
	set.lock_stale_secs = job->lock_stale_secs;
	set.dirsync = job->dirsync;
	if (item->check_first) {
		int found = mailstore_delivered(&set, NULL, id, &error);

		if (found != 0) {
			if (found > 0)
				item_result(item, 250, "2.0.0",
					    "already in the mailbox (delivered before a restart)");
			else
				item_result(item, 451, "4.3.0", error);
			item->uncertain = found < 0;
			item->mailbox = q_strdup(item->box.root);
			free(id);
			return;
		}
	}
	len = snprintf(prefix, sizeof(prefix), "Return-Path: <%s>\nDelivered-To: %s\n",
		       job->sender, item->address);
	if (len < 0 || (size_t)len > room)
		len = 0;
	memcpy(buf + room - (size_t)len, prefix, (size_t)len);
	delivery.data = buf + room - (size_t)len;
	delivery.size = (size_t)len + body_len;
	delivery.id = id;
	switch (mailstore_deliver(&set, &delivery, &filename, &error)) {
	case MAILSTORE_DELIVERED:
		item->text = q_asprintf("delivered to maildir as new/%s", filename);
		item->code = 250;
		item->status = "2.0.0";
		/* The bus event names the Maildir (queue.h), the log the file. */
		item->mailbox = q_strdup(item->box.root);
		break;
	case MAILSTORE_DELIVER_OVER_QUOTA:
		item->text = q_asprintf("mailbox full: %s", error);
		item->code = 452;
		item->status = "4.2.2";
		break;
	case MAILSTORE_DELIVER_FAILED:
	default:
		item_result(item, 451, "4.3.0", error);
		/* It may have failed after the link (the directory fsync): ask
		 * the mailbox before trying again. */
		item->uncertain = true;
		break;
	}
	free(filename);
	free(id);
}

static void local_run(struct qjob *qjob)
{
	struct qlocal_job *job = (struct qlocal_job *)qjob;
	size_t room = LOCAL_PREFIX_MAX, body_len;
	void *map;

	map = mmap(NULL, (size_t)job->file_size, PROT_READ, MAP_PRIVATE, job->fd, 0);
	if (map == MAP_FAILED) {
		job->job_error = q_asprintf("cannot read the queue file: %s", strerror(errno));
		return;
	}
	char *buf = local_body((const char *)map + job->header_len, (size_t)job->body_size, room,
			       &body_len);

	munmap(map, (size_t)job->file_size);
	for (unsigned i = 0; i < job->count; i++)
		local_deliver_one(job, &job->items[i], buf, room, body_len);
	free(buf);
}

/* ---- on the loop ---- */

static void local_free(struct qlocal_job *job)
{
	for (unsigned i = 0; i < job->count; i++) {
		free(job->items[i].address);
		free(job->items[i].box.root);
		free(job->items[i].text);
		free(job->items[i].mailbox);
	}
	free(job->items);
	free(job->sender);
	free(job->job_error);
	free(job);
}

static void local_done(struct qjob *qjob)
{
	struct qlocal_job *job = (struct qlocal_job *)qjob;
	struct qattempt *attempt = job->attempt;
	struct qmsg *msg = attempt->msg;

	for (unsigned i = 0; i < job->count; i++) {
		struct qlocal_item *item = &job->items[i];
		struct qresult result = { .code = item->code, .status = item->status,
					  .text = item->text };

		if (job->job_error != NULL)
			result = (struct qresult){ .code = 451, .status = "4.3.0",
						   .text = job->job_error };
		else
			msg->env.rcpts[item->index].maybe_delivered = item->uncertain;
		attempt_result(msg, item->index, &result, item->mailbox);
	}
	local_free(job);
	attempt_part_done(attempt);
}

void local_start(struct qattempt *attempt, const unsigned *indexes, unsigned count)
{
	struct qmsg *msg = attempt->msg;
	struct qs *qs = msg->qs;
	struct qlocal_job *job = q_calloc(1, sizeof(*job));
	const char *error;

	job->items = q_calloc(count, sizeof(*job->items));
	for (unsigned i = 0; i < count; i++) {
		struct qrcpt *rcpt = &msg->env.rcpts[indexes[i]];
		struct qlocal_item *item = &job->items[job->count];
		struct qresult result = { 0 };

		switch (recipient_mailbox(qs, rcpt->address, &item->box, &error)) {
		case 1:
			item->index = indexes[i];
			item->address = q_strdup(rcpt->address);
			item->check_first = rcpt->maybe_delivered;
			job->count++;
			continue;
		case 0:
			result = (struct qresult){ .code = 550, .status = "5.1.1",
						   .text = "no such user here" };
			break;
		default:
			result = (struct qresult){ .code = 451, .status = "4.3.0", .text = error };
			break;
		}
		char *text = q_strdup(result.text);

		result.text = text;
		attempt_result(msg, indexes[i], &result, NULL);
		free(text);
	}
	if (job->count == 0) {
		local_free(job);
		return;
	}
	job->job.run = local_run;
	job->job.done = local_done;
	job->attempt = attempt;
	memcpy(job->id, msg->env.id, QID_SIZE);
	job->sender = q_strdup(msg->env.sender);
	job->fd = attempt->fd;
	job->header_len = msg->info.header_len;
	job->body_size = msg->info.body_size;
	job->file_size = msg->info.file_size;
	job->lock_timeout_secs = (unsigned)(qs->set.mailbox_lock_timeout / 1000);
	job->lock_stale_secs = (unsigned)(qs->set.mailbox_lock_stale / 1000);
	job->dirsync = qs->dirsync;
	attempt->parts_pending++;
	qpool_submit(qs->delivery_pool, &job->job);
}
