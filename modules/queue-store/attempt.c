/*
 * One delivery attempt of a message: the recipients that are due are split
 * into the local ones (one job in a delivery thread, local.c) and the
 * remote ones (one transport request per domain, remote.c). Each result is
 * applied as it arrives (rcpt.c), published and logged; results that
 * arrive while other parts still run are saved at once, so a remote
 * recipient is marked done durably the moment its delivery is confirmed.
 * The last part ends the attempt: the message is then removed, or its state
 * saved and the message rescheduled (sched_settle).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <postern/postern.h>

#include "queue_store.h"

static void attempt_finish(struct qattempt *attempt)
{
	struct qmsg *msg = attempt->msg;
	struct qs *qs = msg->qs;

	if (attempt->fd >= 0)
		close(attempt->fd);
	msg->attempt = NULL;
	msg->busy = false;
	/* A finished message needs no state: its removal is the record. */
	if (attempt->unsaved && (qmsg_pending(msg) > 0 || qmsg_owed(msg) != 0 ||
				 msg->delete_requested))
		sched_save_state(msg);
	free(attempt);
	sched_attempt_done(qs);
	sched_settle(msg);
}

void attempt_part_done(struct qattempt *attempt)
{
	if (--attempt->parts_pending > 0) {
		if (attempt->unsaved) {
			attempt->unsaved = false;
			sched_save_state(attempt->msg);
		}
		return;
	}
	attempt_finish(attempt);
}

void attempt_result(struct qmsg *msg, unsigned index, const struct qresult *result,
		    const char *mailbox)
{
	struct qs *qs = msg->qs;
	struct qrcpt *rcpt = &msg->env.rcpts[index];
	uint64_t now = q_wall_ms();
	const char *topic;

	rcpt->in_flight = false;
	if (rcpt->state != QR_PENDING)
		return;
	switch (qrcpt_apply(rcpt, result, &msg->env, &qs->timing, now, q_random32())) {
	case QR_DELIVERED:
		free(rcpt->mailbox);
		rcpt->mailbox = q_strdup_or_null(mailbox);
		rcpt->maybe_delivered = false;
		topic = POSTERN_TOPIC_QUEUE_DELIVERED;
		qs->n_delivered++;
		break;
	case QR_BOUNCED:
		topic = POSTERN_TOPIC_QUEUE_BOUNCED;
		qs->n_bounced++;
		break;
	case QR_EXPIRED:
		topic = POSTERN_TOPIC_QUEUE_EXPIRED;
		qs->n_expired++;
		break;
	case QR_PENDING:
	default:
		topic = POSTERN_TOPIC_QUEUE_DEFERRED;
		qs->n_deferred++;
		break;
	}
	if (msg->attempt != NULL)
		msg->attempt->unsaved = true;
	events_rcpt(qs, msg, rcpt, topic, now - msg->env.arrival_ms);
}

/* The file is gone from under us (removed by hand): list what is left as
 * quarantined instead of retrying a message that cannot be read. */
static void attempt_vanished(struct qmsg *msg)
{
	struct qs *qs = msg->qs;
	char id[QID_SIZE];

	memcpy(id, msg->env.id, QID_SIZE);
	sched_forget(msg);
	qtable_remove(&qs->table, msg);
	qmsg_free(msg);
	spool_quarantine(qs, id, "the message file vanished from the queue directory");
}

void attempt_start(struct qmsg *msg)
{
	struct qs *qs = msg->qs;
	uint64_t now = q_wall_ms();
	int fd = spool_open_msg(qs, msg->env.id);
	int open_errno = errno;

	if (fd < 0 && open_errno == ENOENT) {
		attempt_vanished(msg);
		return;
	}
	unsigned *local = q_calloc(msg->env.rcpt_count, sizeof(*local));
	unsigned *remote = q_calloc(msg->env.rcpt_count, sizeof(*remote));
	unsigned local_count = 0, remote_count = 0;
	struct qattempt *attempt;

	for (unsigned i = 0; i < msg->env.rcpt_count; i++) {
		struct qrcpt *rcpt = &msg->env.rcpts[i];

		if (rcpt->state != QR_PENDING || rcpt->next_ms > now || rcpt->in_flight)
			continue;
		rcpt->in_flight = true;
		if (rcpt->local)
			local[local_count++] = i;
		else
			remote[remote_count++] = i;
	}
	attempt = q_calloc(1, sizeof(*attempt));
	attempt->msg = msg;
	attempt->started_ms = now;
	qlist_init(&attempt->remote_parts);
	msg->attempt = attempt;
	msg->busy = true;
	qs->active++;
	/* Held by this function until every part is under way, so a part
	 * that completes at once cannot end the attempt early. */
	attempt->parts_pending = 1;
	attempt->fd = fd;
	if (attempt->fd < 0) {
		struct qresult result = { .code = 451, .status = "4.3.0",
					  .text = q_error("cannot open the queue file: %s",
							  strerror(open_errno)) };
		char *text = q_strdup(result.text);

		result.text = text;
		for (unsigned i = 0; i < local_count; i++)
			attempt_result(msg, local[i], &result, NULL);
		for (unsigned i = 0; i < remote_count; i++)
			attempt_result(msg, remote[i], &result, NULL);
		free(text);
	} else {
		if (local_count > 0)
			local_start(attempt, local, local_count);
		if (remote_count > 0)
			remote_start(attempt, remote, remote_count);
	}
	free(local);
	free(remote);
	attempt_part_done(attempt);
}

void attempt_cancel_remote(struct qattempt *attempt)
{
	remote_cancel_all(attempt);
}
