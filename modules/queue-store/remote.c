/*
 * Remote delivery through the "transport.smtp" service (include/postern/
 * transport.h), offered by the smtp module. The queue does not require
 * smtp (smtp requires the queue), so the service is looked up when it is
 * first needed; without it remote recipients are deferred with a clear
 * error, and delivered once a transport is there.
 *
 * The due remote recipients of a message are grouped by domain; each group
 * is one request. Results arrive per recipient: 2xx done, 4xx or none
 * retried, 5xx bounced (rcpt.c decides).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <postern/postern.h>
#include <postern/transport.h>

#include "queue_store.h"

struct qremote_part {
	struct qlist link;        /* attempt->remote_parts */
	struct qattempt *attempt;
	char *domain;
	unsigned *indexes;
	struct postern_queue_rcpt *rcpts;
	unsigned count;
	struct postern_transport_job *job;
	bool in_deliver;          /* deliver() has not returned yet */
	bool finished;
};

static const struct postern_transport_ops *remote_transport(struct qs *qs)
{
	static bool warned;
	const char *error;

	if (qs->transport != NULL)
		return qs->transport;
	qs->transport = postern_service_lookup(qs->mod, POSTERN_TRANSPORT_SMTP_SERVICE,
					       POSTERN_TRANSPORT_VERSION, &error);
	if (qs->transport == NULL && !warned) {
		warned = true;
		postern_log(qs->mod, POSTERN_LOG_WARNING,
			    "no SMTP transport module loaded (%s): remote recipients are deferred",
			    error);
	}
	return qs->transport;
}

static void part_free(struct qremote_part *part)
{
	if (qlist_linked(&part->link))
		qlist_del(&part->link);
	free(part->domain);
	free(part->indexes);
	free(part->rcpts);
	free(part);
}

static void part_results(struct qremote_part *part,
			 const struct postern_transport_rcpt_result *results, unsigned count)
{
	struct qmsg *msg = part->attempt->msg;

	for (unsigned i = 0; i < part->count; i++) {
		struct qresult result = { .code = 0, .status = "4.4.0",
					  .text = "the transport gave no result" };

		if (i < count) {
			result.code = results[i].smtp_code;
			result.status = results[i].enhanced_code;
			result.text = results[i].text;
			result.remote_mta = results[i].remote_mta;
		}
		attempt_result(msg, part->indexes[i], &result, NULL);
	}
}

static void remote_done(void *ctx, const struct postern_transport_rcpt_result *results,
			unsigned count)
{
	struct qremote_part *part = ctx;
	struct qattempt *attempt = part->attempt;

	if (part->finished)
		return;
	part->finished = true;
	part_results(part, results, count);
	if (part->in_deliver) {
		/* remote_start() finishes it when deliver() returns. */
		return;
	}
	part_free(part);
	attempt_part_done(attempt);
}

static void defer_all(struct qmsg *msg, const unsigned *indexes, unsigned count,
		      const char *status, const char *text)
{
	struct qresult result = { .code = 0, .status = status, .text = text };
	char *copy = q_strdup(text);

	result.text = copy;
	for (unsigned i = 0; i < count; i++)
		attempt_result(msg, indexes[i], &result, NULL);
	free(copy);
}

static void remote_request(struct qattempt *attempt, struct qremote_part *part,
			   const struct postern_transport_ops *transport)
{
	struct qmsg *msg = attempt->msg;
	struct postern_transport_request request = { .struct_size = sizeof(request) };
	const char *error = NULL;

	request.queue_id = msg->env.id;
	request.sender = msg->env.sender;
	request.domain = part->domain;
	request.rcpts = part->rcpts;
	request.rcpt_count = part->count;
	request.message_fd = attempt->fd;
	request.message_offset = msg->info.header_len;
	request.message_size = msg->info.body_size;
	request.body_8bitmime = msg->env.body_8bitmime;
	request.smtputf8 = msg->env.smtputf8;
	request.ret = msg->env.ret;
	request.envid = msg->env.envid;

	attempt->parts_pending++;
	qlist_add_tail(&attempt->remote_parts, &part->link);
	part->in_deliver = true;
	part->job = transport->deliver(transport->ctx, &request, remote_done, part, &error);
	part->in_deliver = false;
	if (part->job == NULL && !part->finished) {
		part->finished = true;
		defer_all(msg, part->indexes, part->count, "4.3.0",
			  q_error("the SMTP transport refused the request: %s",
				  error != NULL ? error : "no reason given"));
	}
	if (part->finished) {
		part_free(part);
		attempt_part_done(attempt);
	}
}

void remote_start(struct qattempt *attempt, const unsigned *indexes, unsigned count)
{
	struct qmsg *msg = attempt->msg;
	const struct postern_transport_ops *transport = remote_transport(msg->qs);
	bool *taken;

	if (transport == NULL) {
		defer_all(msg, indexes, count, "4.3.5", "no SMTP transport module loaded");
		return;
	}
	taken = q_calloc(count, sizeof(*taken));
	for (unsigned i = 0; i < count; i++) {
		if (taken[i])
			continue;
		const char *domain = q_address_domain(msg->env.rcpts[indexes[i]].address);
		struct qremote_part *part = q_calloc(1, sizeof(*part));

		part->attempt = attempt;
		part->domain = q_strdup(domain != NULL ? domain : "");
		q_lowercase(part->domain);
		part->indexes = q_calloc(count, sizeof(*part->indexes));
		part->rcpts = q_calloc(count, sizeof(*part->rcpts));
		for (unsigned j = i; j < count; j++) {
			const struct qrcpt *rcpt = &msg->env.rcpts[indexes[j]];
			const char *other = q_address_domain(rcpt->address);

			if (taken[j] || strcasecmp(other != NULL ? other : "", part->domain) != 0)
				continue;
			taken[j] = true;
			part->indexes[part->count] = indexes[j];
			part->rcpts[part->count].address = rcpt->address;
			part->rcpts[part->count].notify = rcpt->notify;
			part->rcpts[part->count].orcpt = rcpt->orcpt;
			part->count++;
		}
		remote_request(attempt, part, transport);
	}
	free(taken);
}

void remote_cancel_all(struct qattempt *attempt)
{
	const struct postern_transport_ops *transport = attempt->msg->qs->transport;

	/* Held until the loop is over: the last part may end the attempt. */
	attempt->parts_pending++;
	while (!qlist_empty(&attempt->remote_parts)) {
		struct qremote_part *part =
			QLIST_ENTRY(attempt->remote_parts.next, struct qremote_part, link);

		if (transport != NULL && part->job != NULL)
			transport->cancel(part->job);
		/* Not an attempt: the recipients stay as they were. */
		for (unsigned i = 0; i < part->count; i++)
			attempt->msg->env.rcpts[part->indexes[i]].in_flight = false;
		part_free(part);
		attempt_part_done(attempt);
	}
	attempt_part_done(attempt);
}
