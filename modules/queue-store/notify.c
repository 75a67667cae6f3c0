/*
 * Queueing the notices a message owes its sender: one DSN per kind
 * (failure, delay, success) covering every recipient that owes that kind,
 * built by dsn.c and queued durably like any message (from the null
 * sender, to the original sender, local or remote).
 *
 * Order of events, for at-least-once notices: the notice is committed
 * first; only when it is durable are the recipients' "owed" marks cleared
 * and saved. A crash in between sends the notice twice, never zero times.
 * A message is not removed while a notice about it is on its way.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <postern/postern.h>

#include "queue_store.h"

/* Headers of the original larger than this are cut (at a line end). */
#define NOTIFY_MAX_HEADERS (256u * 1024u)

struct notify_ctx {
	char orig_id[QID_SIZE];
	enum qdsn_kind kind;
	unsigned *indexes;
	unsigned count;
};

static const char *kind_name(enum qdsn_kind kind)
{
	return kind == QDSN_FAILURE ? "failure" : kind == QDSN_DELAY ? "delay" : "success";
}

static void notice_committed(struct qs *qs, struct qmsg *queued, const char *error, void *ctx)
{
	struct notify_ctx *notice = ctx;
	struct qmsg *msg = qtable_find(&qs->table, notice->orig_id);

	if (error != NULL) {
		postern_log(qs->mod, POSTERN_LOG_ERROR, "%s: cannot queue the %s notice: %s",
			    notice->orig_id, kind_name(notice->kind), error);
	} else {
		qs->n_dsn++;
		postern_log(qs->mod, POSTERN_LOG_INFO, "%s: sender notified: %s notice %s",
			    notice->orig_id, kind_name(notice->kind), queued->env.id);
	}
	if (msg != NULL) {
		msg->dsn_inflight--;
		if (error == NULL) {
			for (unsigned i = 0; i < notice->count; i++)
				msg->env.rcpts[notice->indexes[i]].owed &= ~(unsigned)notice->kind;
			if (qmsg_pending(msg) > 0 || qmsg_owed(msg) != 0)
				sched_save_state(msg);
		} else {
			msg->notify_after_ms = q_wall_ms() + msg->qs->timing.retry_min_ms;
		}
		if (msg->dsn_inflight == 0)
			sched_settle(msg);
	}
	free(notice->indexes);
	free(notice);
}

/* The original message (or its headers) for the notice; malloc'd. */
static char *read_original(struct qmsg *msg, bool want_full, size_t *len_r, bool *too_big_r,
			   const char **error_r)
{
	uint64_t limit = msg->qs->set.bounce_size_limit;
	bool full = want_full && msg->info.body_size <= limit;
	size_t want = (size_t)msg->info.body_size;
	int fd = spool_open_msg(msg->qs, msg->env.id);

	*too_big_r = want_full && !full;
	if (!full && want > NOTIFY_MAX_HEADERS)
		want = NOTIFY_MAX_HEADERS;
	if (fd < 0) {
		*error_r = q_error("open: %s", strerror(errno));
		return NULL;
	}
	char *data = q_malloc(want + 1);
	size_t have = 0;

	while (have < want) {
		ssize_t n = pread(fd, data + have, want - have,
				  (off_t)(msg->info.header_len + have));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*error_r = n < 0 ? q_error("read: %s", strerror(errno)) : "short read";
			close(fd);
			free(data);
			return NULL;
		}
		have += (size_t)n;
	}
	close(fd);
	if (!full) {
		size_t headers = dsn_header_section_len(data, have);

		/* Cut overlong headers at their last complete line. */
		while (headers == have && headers > 0 && data[headers - 1] != '\n')
			headers--;
		have = headers;
	}
	data[have] = '\0';
	*len_r = have;
	return data;
}

static const char *action_of(enum qdsn_kind kind, const struct qrcpt *rcpt)
{
	switch (kind) {
	case QDSN_DELAY:
		return "delayed";
	case QDSN_SUCCESS:
		/* A remote server may not notify in its turn. */
		return rcpt->local ? "delivered" : "relayed";
	case QDSN_FAILURE:
		break;
	}
	return "failed";
}

/* Build the notice of one kind about every recipient that owes it;
 * `notice` records which recipients it covers. */
static int build_notice(struct qmsg *msg, enum qdsn_kind kind, struct qbuf *text,
			struct notify_ctx *notice, const char **error_r)
{
	struct qs *qs = msg->qs;
	struct dsn_rcpt *entries = q_calloc(msg->env.rcpt_count, sizeof(*entries));
	bool want_full = kind == QDSN_FAILURE && msg->env.ret == POSTERN_RET_FULL;
	struct dsn_report report = { .kind = kind, .return_full = want_full };
	char dsn_id[QID_SIZE + 16];

	for (unsigned i = 0; i < msg->env.rcpt_count; i++) {
		const struct qrcpt *rcpt = &msg->env.rcpts[i];

		if ((rcpt->owed & kind) == 0)
			continue;
		entries[report.rcpt_count].rcpt = rcpt;
		entries[report.rcpt_count].action = action_of(kind, rcpt);
		report.rcpt_count++;
		notice->indexes[notice->count++] = i;
	}
	char *original = read_original(msg, want_full, &report.message_len, &report.too_big,
				       error_r);

	if (original == NULL) {
		free(entries);
		return -1;
	}
	snprintf(dsn_id, sizeof(dsn_id), "%s.%c%05X", msg->env.id, kind_name(kind)[0],
		 q_random32() & 0xfffffu);
	report.reporting_mta = qs->hostname;
	report.env = &msg->env;
	report.now_ms = q_wall_ms();
	report.will_retry_until_ms = sched_expire_at(&qs->timing, msg->env.arrival_ms);
	report.dsn_id = dsn_id;
	report.rcpts = entries;
	report.message = original;
	dsn_build(text, &report);
	free(original);
	free(entries);
	return 0;
}

/* Queue `text` from the null sender to the message's sender. */
static int queue_notice(struct qmsg *msg, const struct qbuf *text, struct notify_ctx *notice,
			const char **error_r)
{
	struct qenvelope env = { 0 };
	struct postern_queue_msg *out;

	env.sender = q_strdup("");
	env.kind = QK_DSN;
	env.smtputf8 = msg->env.smtputf8;
	env.body_8bitmime = true;
	env.received_by = q_strdup("queue-store");
	env.rcpt_count = 1;
	env.rcpts = q_calloc(1, sizeof(*env.rcpts));
	env.rcpts[0].address = q_strdup(msg->env.sender);
	env.rcpts[0].notify = POSTERN_NOTIFY_NEVER;
	out = receive_begin(msg->qs, &env, error_r);
	if (out == NULL) {
		qenvelope_clear(&env);
		return -1;
	}
	if (receive_write(out, text->data, text->len, error_r) < 0) {
		receive_abort(out);
		return -1;
	}
	msg->dsn_inflight++;
	receive_commit_internal(out, notice_committed, notice);
	return 0;
}

static int notify_kind(struct qmsg *msg, enum qdsn_kind kind, const char **error_r)
{
	struct notify_ctx *notice = q_calloc(1, sizeof(*notice));
	struct qbuf text = { 0 };
	int ret;

	notice->indexes = q_calloc(msg->env.rcpt_count, sizeof(*notice->indexes));
	notice->kind = kind;
	memcpy(notice->orig_id, msg->env.id, QID_SIZE);
	ret = build_notice(msg, kind, &text, notice, error_r);
	if (ret == 0)
		ret = queue_notice(msg, &text, notice, error_r);
	if (ret < 0) {
		free(notice->indexes);
		free(notice);
	}
	qbuf_free(&text);
	return ret;
}

int notify_owed(struct qmsg *msg)
{
	static const enum qdsn_kind kinds[] = { QDSN_FAILURE, QDSN_DELAY, QDSN_SUCCESS };
	unsigned owed = qmsg_owed(msg);
	const char *error;
	int started = 0;

	if (owed == 0 || q_wall_ms() < msg->notify_after_ms)
		return -1;
	for (unsigned i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if ((owed & kinds[i]) == 0)
			continue;
		if (notify_kind(msg, kinds[i], &error) == 0) {
			started++;
			continue;
		}
		postern_log(msg->qs->mod, POSTERN_LOG_ERROR,
			    "%s: cannot queue the %s notice to <%s>: %s; retrying later",
			    msg->env.id, kind_name(kinds[i]), msg->env.sender, error);
		msg->notify_after_ms = q_wall_ms() + msg->qs->timing.retry_min_ms;
	}
	return started > 0 ? 0 : -1;
}
