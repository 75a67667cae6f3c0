/*
 * A recipient's life as pure functions: what an attempt's answer, the end
 * of the message's lifetime or the admin's delete does to its state, and
 * which notices (DSNs) the sender is owed. The caller persists the result,
 * publishes the events and queues the notices.
 *
 *   PENDING --2xx--> DELIVERED        (a "delivered" notice if NOTIFY=SUCCESS)
 *   PENDING --5xx--> BOUNCED          (a failure notice unless NOTIFY excludes it)
 *   PENDING --4xx or no answer--> PENDING, next attempt after the backoff,
 *                   or EXPIRED once max_lifetime has passed (failure notice)
 *   PENDING --delete --bounce--> BOUNCED
 *
 * Nobody is ever notified about a message from the null sender.
 */
#include <stdlib.h>
#include <string.h>

#include "queue_store.h"

static const char *const state_names[QR_STATE_COUNT] = {
	[QR_PENDING] = "pending",
	[QR_DELIVERED] = "delivered",
	[QR_BOUNCED] = "bounced",
	[QR_EXPIRED] = "expired",
};

const char *qrcpt_state_name(enum qrcpt_state state)
{
	return (unsigned)state < QR_STATE_COUNT ? state_names[state] : "?";
}

bool qrcpt_state_parse(const char *name, enum qrcpt_state *state_r)
{
	for (unsigned i = 0; i < QR_STATE_COUNT; i++) {
		if (strcmp(name, state_names[i]) == 0) {
			*state_r = (enum qrcpt_state)i;
			return true;
		}
	}
	return false;
}

void qrcpt_clear(struct qrcpt *rcpt)
{
	free(rcpt->address);
	free(rcpt->orcpt);
	free(rcpt->status);
	free(rcpt->text);
	free(rcpt->remote_mta);
	free(rcpt->mailbox);
	memset(rcpt, 0, sizeof(*rcpt));
}

bool qrcpt_final(const struct qrcpt *rcpt)
{
	return rcpt->state != QR_PENDING;
}

bool qrcpt_wants(const struct qrcpt *rcpt, enum qdsn_kind kind)
{
	unsigned notify = rcpt->notify;

	if (notify == 0)
		notify = POSTERN_NOTIFY_FAILURE | POSTERN_NOTIFY_DELAY;
	switch (kind) {
	case QDSN_FAILURE:
		return (notify & POSTERN_NOTIFY_FAILURE) != 0;
	case QDSN_DELAY:
		return (notify & POSTERN_NOTIFY_DELAY) != 0;
	case QDSN_SUCCESS:
		return (notify & POSTERN_NOTIFY_SUCCESS) != 0;
	}
	return false;
}

static void owe(struct qrcpt *rcpt, const struct qenvelope *env, enum qdsn_kind kind)
{
	if (env->sender[0] != '\0' && qrcpt_wants(rcpt, kind))
		rcpt->owed |= kind;
}

static bool status_valid(const char *status)
{
	const char *p = status;

	if (status == NULL || (p[0] != '2' && p[0] != '4' && p[0] != '5') || p[1] != '.')
		return false;
	p += 2;
	for (int part = 0; part < 2; part++) {
		size_t digits = strspn(p, "0123456789");

		if (digits == 0 || digits > 3)
			return false;
		p += digits;
		if (part == 0 && *p++ != '.')
			return false;
	}
	return *p == '\0';
}

const char *qresult_status(const struct qresult *result)
{
	char class = result->code >= 200 && result->code < 300 ? '2'
		     : result->code >= 500 && result->code < 600 ? '5' : '4';

	if (status_valid(result->status) && result->status[0] == class)
		return result->status;
	if (result->code == 0)
		return "4.4.0";
	return class == '2' ? "2.0.0" : class == '5' ? "5.0.0" : "4.0.0";
}

static void set_answer(struct qrcpt *rcpt, const struct qresult *result)
{
	free(rcpt->status);
	free(rcpt->text);
	free(rcpt->remote_mta);
	rcpt->code = result->code;
	rcpt->status = q_strdup(qresult_status(result));
	rcpt->text = q_strdup_or_null(result->text);
	rcpt->remote_mta = q_strdup_or_null(result->remote_mta);
}

enum qrcpt_state qrcpt_apply(struct qrcpt *rcpt, const struct qresult *result,
			     const struct qenvelope *env, const struct qtiming *timing,
			     uint64_t now, uint32_t random)
{
	if (rcpt->state != QR_PENDING)
		return rcpt->state;
	set_answer(rcpt, result);
	rcpt->attempts++;
	rcpt->last_ms = now;
	if (result->code >= 200 && result->code < 300) {
		rcpt->state = QR_DELIVERED;
		rcpt->next_ms = 0;
		rcpt->owed &= ~(unsigned)QDSN_DELAY;
		owe(rcpt, env, QDSN_SUCCESS);
	} else if (result->code >= 500 && result->code < 600) {
		rcpt->state = QR_BOUNCED;
		rcpt->next_ms = 0;
		rcpt->owed &= ~(unsigned)QDSN_DELAY;
		owe(rcpt, env, QDSN_FAILURE);
	} else if (now >= sched_expire_at(timing, env->arrival_ms)) {
		qrcpt_expire(rcpt, env, now);
	} else {
		rcpt->next_ms = sched_next_attempt(timing, now, rcpt->attempts, random);
	}
	return rcpt->state;
}

void qrcpt_expire(struct qrcpt *rcpt, const struct qenvelope *env, uint64_t now)
{
	(void)now;
	rcpt->state = QR_EXPIRED;
	rcpt->next_ms = 0;
	free(rcpt->status);
	rcpt->status = q_strdup("4.4.7");
	if (rcpt->text == NULL)
		rcpt->text = q_strdup("message expired in the queue");
	rcpt->owed &= ~(unsigned)QDSN_DELAY;
	owe(rcpt, env, QDSN_FAILURE);
}

void qrcpt_bounce_admin(struct qrcpt *rcpt, const struct qenvelope *env, uint64_t now)
{
	rcpt->state = QR_BOUNCED;
	rcpt->next_ms = 0;
	rcpt->last_ms = now;
	rcpt->code = 0;
	free(rcpt->status);
	free(rcpt->text);
	free(rcpt->remote_mta);
	rcpt->status = q_strdup("5.0.0");
	rcpt->text = q_strdup("message deleted by the mail system administrator");
	rcpt->remote_mta = NULL;
	rcpt->owed &= ~(unsigned)QDSN_DELAY;
	owe(rcpt, env, QDSN_FAILURE);
}

unsigned qrcpt_owe_delay(struct qenvelope *env)
{
	unsigned count = 0;

	for (unsigned i = 0; i < env->rcpt_count; i++) {
		struct qrcpt *rcpt = &env->rcpts[i];

		if (rcpt->state != QR_PENDING || rcpt->attempts == 0)
			continue;
		unsigned before = rcpt->owed;

		owe(rcpt, env, QDSN_DELAY);
		if (rcpt->owed != before)
			count++;
	}
	return count;
}
