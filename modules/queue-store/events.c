/*
 * The queue's bus events (include/postern/queue.h: queue.accepted,
 * queue.delivered, queue.deferred, queue.bounced, queue.expired, payload
 * struct postern_ev_queue) and the log line that goes with each: one line
 * per message accepted and per recipient result, in a form that greps
 * well ("ID: to=<...>, relay=..., delay=..., status=...").
 */
#include <stdio.h>
#include <string.h>

#include <postern/postern.h>

#include "queue_store.h"

static const char *const topics[] = {
	POSTERN_TOPIC_QUEUE_ACCEPTED, POSTERN_TOPIC_QUEUE_DELIVERED,
	POSTERN_TOPIC_QUEUE_DEFERRED, POSTERN_TOPIC_QUEUE_BOUNCED,
	POSTERN_TOPIC_QUEUE_EXPIRED,
};

int events_declare(struct qs *qs, const char **error_r)
{
	for (unsigned i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
		if (postern_bus_declare(qs->mod, topics[i], POSTERN_EV_QUEUE_TYPE, error_r) < 0)
			return -1;
	}
	return 0;
}

void events_accepted(struct qs *qs, const struct qmsg *msg)
{
	struct postern_ev_queue ev = { .struct_size = sizeof(ev) };

	postern_log(qs->mod, POSTERN_LOG_INFO,
		    "%s: from=<%s>, size=%llu, nrcpt=%u, client=%s, by=%s%s", msg->env.id,
		    msg->env.sender, (unsigned long long)msg->info.body_size, msg->env.rcpt_count,
		    msg->env.client_address != NULL ? msg->env.client_address : "-",
		    msg->env.received_by != NULL ? msg->env.received_by : "-",
		    msg->env.kind == QK_DSN ? " (delivery status notification)" : "");
	ev.queue_id = msg->env.id;
	ev.sender = msg->env.sender;
	(void)postern_bus_publish(qs->mod, POSTERN_TOPIC_QUEUE_ACCEPTED, POSTERN_EV_QUEUE_TYPE,
				  &ev);
}

static const char *status_word(const char *topic)
{
	if (strcmp(topic, POSTERN_TOPIC_QUEUE_DELIVERED) == 0)
		return "sent";
	if (strcmp(topic, POSTERN_TOPIC_QUEUE_DEFERRED) == 0)
		return "deferred";
	if (strcmp(topic, POSTERN_TOPIC_QUEUE_BOUNCED) == 0)
		return "bounced";
	return "expired";
}

void events_rcpt(struct qs *qs, const struct qmsg *msg, const struct qrcpt *rcpt,
		 const char *topic, uint64_t delay_ms)
{
	struct postern_ev_queue ev = { .struct_size = sizeof(ev) };
	char answer[32] = "";

	if (rcpt->code != 0)
		snprintf(answer, sizeof(answer), "%u ", rcpt->code);
	postern_log(qs->mod,
		    strcmp(topic, POSTERN_TOPIC_QUEUE_DELIVERED) == 0 ? POSTERN_LOG_INFO
								       : POSTERN_LOG_NOTICE,
		    "%s: to=<%s>, relay=%s, delay=%llu.%02us, attempts=%u, dsn=%s, status=%s (%s%s)",
		    msg->env.id, rcpt->address,
		    rcpt->local ? "local" : rcpt->remote_mta != NULL ? rcpt->remote_mta : "none",
		    (unsigned long long)(delay_ms / 1000), (unsigned)(delay_ms % 1000) / 10,
		    rcpt->attempts, rcpt->status != NULL ? rcpt->status : "-", status_word(topic),
		    answer, rcpt->text != NULL ? rcpt->text : "");
	ev.queue_id = msg->env.id;
	ev.sender = msg->env.sender;
	ev.recipient = rcpt->address;
	ev.local = rcpt->local;
	ev.mailbox = rcpt->mailbox;
	ev.smtp_code = rcpt->code;
	ev.status = rcpt->status;
	ev.text = rcpt->text;
	(void)postern_bus_publish(qs->mod, topic, POSTERN_EV_QUEUE_TYPE, &ev);
}
