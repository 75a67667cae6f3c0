/*
 * The scheduler: which message is worked on when.
 *
 * Every message that is not held, not being delivered and not waiting for
 * a delivery slot sits in a min-heap by the moment something is next due
 * for it (schedule.c computes that: a retry, the delay notice, the
 * expiry). One loop timer is armed for the top of the heap. Due messages go
 * to the ready list, from which at most max_parallel_deliveries attempts
 * run at a time.
 *
 * sched_settle() is the one place that decides what follows any change to
 * a message: queue the notices it owes, remove it once nothing is left to
 * do, or put it back in the heap. Its state file is written through
 * sched_save_state(): one write in flight per message, later changes
 * coalesced into the next one.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <postern/postern.h>

#include "queue_store.h"

/* Wake up at least this often, whatever the heap says (the wall clock may
 * have been set). */
#define SCHED_MAX_SLEEP_MS (15 * 60 * 1000)
/* Failed state writes and notices are retried after this. */
#define SCHED_RETRY_MS 5000

/* ---- the heap ---- */

static bool heap_less(const struct qmsg *a, const struct qmsg *b)
{
	return a->due_ms < b->due_ms ||
	       (a->due_ms == b->due_ms && strcmp(a->env.id, b->env.id) < 0);
}

static void heap_place(struct qs *qs, unsigned index, struct qmsg *msg)
{
	qs->heap[index] = msg;
	msg->heap_index = (int)index;
}

static void heap_up(struct qs *qs, unsigned index)
{
	struct qmsg *msg = qs->heap[index];

	while (index > 0) {
		unsigned parent = (index - 1) / 2;

		if (!heap_less(msg, qs->heap[parent]))
			break;
		heap_place(qs, index, qs->heap[parent]);
		index = parent;
	}
	heap_place(qs, index, msg);
}

static void heap_down(struct qs *qs, unsigned index)
{
	struct qmsg *msg = qs->heap[index];

	for (;;) {
		unsigned child = index * 2 + 1;

		if (child >= qs->heap_count)
			break;
		if (child + 1 < qs->heap_count && heap_less(qs->heap[child + 1], qs->heap[child]))
			child++;
		if (!heap_less(qs->heap[child], msg))
			break;
		heap_place(qs, index, qs->heap[child]);
		index = child;
	}
	heap_place(qs, index, msg);
}

static void heap_remove(struct qs *qs, struct qmsg *msg)
{
	if (msg->heap_index < 0)
		return;
	unsigned index = (unsigned)msg->heap_index;
	struct qmsg *last = qs->heap[--qs->heap_count];

	msg->heap_index = -1;
	if (last == msg)
		return;
	heap_place(qs, index, last);
	heap_up(qs, index);
	heap_down(qs, (unsigned)last->heap_index);
}

static void heap_set(struct qs *qs, struct qmsg *msg, uint64_t due)
{
	if (msg->heap_index >= 0) {
		msg->due_ms = due;
		heap_up(qs, (unsigned)msg->heap_index);
		heap_down(qs, (unsigned)msg->heap_index);
		return;
	}
	if (qs->heap_count == qs->heap_size) {
		qs->heap_size = qs->heap_size == 0 ? 256 : qs->heap_size * 2;
		qs->heap = q_realloc(qs->heap, qs->heap_size * sizeof(*qs->heap));
	}
	msg->due_ms = due;
	qs->heap[qs->heap_count] = msg;
	msg->heap_index = (int)qs->heap_count++;
	heap_up(qs, (unsigned)msg->heap_index);
}

static void sched_arm(struct qs *qs)
{
	if (qs->timer == NULL)
		return;
	if (qs->heap_count == 0 || qs->stopping) {
		postern_timer_stop(qs->timer);
		return;
	}
	uint64_t now = q_wall_ms(), due = qs->heap[0]->due_ms;
	uint64_t delay = due <= now ? 1 : due - now;

	if (delay > SCHED_MAX_SLEEP_MS)
		delay = SCHED_MAX_SLEEP_MS;
	postern_timer_reset(qs->timer, delay);
}

/* ---- the ready list ---- */

static void sched_run_ready(struct qs *qs)
{
	while (qs->started && !qs->stopping && !qlist_empty(&qs->ready) &&
	       qs->active < qs->set.max_parallel_deliveries) {
		struct qmsg *msg = QLIST_ENTRY(qs->ready.next, struct qmsg, ready_link);

		qlist_del(&msg->ready_link);
		msg->ready = false;
		attempt_start(msg);
	}
}

static void ready_add(struct qs *qs, struct qmsg *msg)
{
	heap_remove(qs, msg);
	if (!msg->ready) {
		msg->ready = true;
		qlist_add_tail(&qs->ready, &msg->ready_link);
	}
}

void sched_settings_changed(struct qs *qs)
{
	/* max_parallel_deliveries may have grown: start what waited for it. */
	sched_run_ready(qs);
}

void sched_attempt_done(struct qs *qs)
{
	assert(qs->active > 0);
	qs->active--;
	sched_run_ready(qs);
}

/* ---- what is due ---- */

static bool has_due_rcpt(const struct qmsg *msg, uint64_t now)
{
	for (unsigned i = 0; i < msg->env.rcpt_count; i++) {
		const struct qrcpt *rcpt = &msg->env.rcpts[i];

		if (rcpt->state == QR_PENDING && rcpt->next_ms <= now)
			return true;
	}
	return false;
}

static bool expire_due(struct qmsg *msg, uint64_t now)
{
	struct qs *qs = msg->qs;
	bool changed = false;

	if (now < sched_expire_at(&qs->timing, msg->env.arrival_ms))
		return false;
	for (unsigned i = 0; i < msg->env.rcpt_count; i++) {
		struct qrcpt *rcpt = &msg->env.rcpts[i];

		if (rcpt->state != QR_PENDING || !sched_attempted(rcpt, msg->released_ms))
			continue;
		qrcpt_expire(rcpt, &msg->env, now);
		qs->n_expired++;
		events_rcpt(qs, msg, rcpt, POSTERN_TOPIC_QUEUE_EXPIRED,
			    now - msg->env.arrival_ms);
		changed = true;
	}
	return changed;
}

static bool warn_due(struct qmsg *msg, uint64_t now)
{
	uint64_t warn_at = sched_warn_at(&msg->qs->timing, msg->env.arrival_ms);
	bool attempted = false;

	if (msg->warned || warn_at == 0 || now < warn_at)
		return false;
	for (unsigned i = 0; i < msg->env.rcpt_count; i++) {
		if (msg->env.rcpts[i].state == QR_PENDING &&
		    sched_attempted(&msg->env.rcpts[i], msg->released_ms))
			attempted = true;
	}
	if (!attempted)
		return false;
	msg->warned = true;
	if (qrcpt_owe_delay(&msg->env) > 0)
		postern_log(msg->qs->mod, POSTERN_LOG_INFO,
			    "%s: still undelivered after %llus: the sender gets a delay notice",
			    msg->env.id, (unsigned long long)(now - msg->env.arrival_ms) / 1000);
	return true;
}

static void sched_process_due(struct qmsg *msg, uint64_t now)
{
	if (msg->held || msg->busy)
		return;
	bool changed = expire_due(msg, now);

	if (warn_due(msg, now))
		changed = true;
	if (changed)
		sched_save_state(msg);
	if (has_due_rcpt(msg, now) && !msg->delete_requested)
		ready_add(msg->qs, msg);
	else
		sched_settle(msg);
}

static void sched_on_timer(struct postern_timer *timer, void *ctx)
{
	struct qs *qs = ctx;
	uint64_t now = q_wall_ms();

	(void)timer;
	while (qs->heap_count > 0 && qs->heap[0]->due_ms <= now && !qs->stopping) {
		struct qmsg *msg = qs->heap[0];

		heap_remove(qs, msg);
		sched_process_due(msg, now);
	}
	sched_run_ready(qs);
	sched_arm(qs);
}

/* ---- settling ---- */

static void sched_delete(struct qmsg *msg)
{
	struct qs *qs = msg->qs;
	uint64_t now = q_wall_ms();

	if (!msg->delete_bounce) {
		postern_log(qs->mod, POSTERN_LOG_NOTICE, "%s: deleted by the administrator",
			    msg->env.id);
		sched_remove(msg);
		return;
	}
	msg->delete_requested = msg->delete_bounce = false;
	for (unsigned i = 0; i < msg->env.rcpt_count; i++) {
		struct qrcpt *rcpt = &msg->env.rcpts[i];

		if (rcpt->state != QR_PENDING)
			continue;
		qrcpt_bounce_admin(rcpt, &msg->env, now);
		qs->n_bounced++;
		events_rcpt(qs, msg, rcpt, POSTERN_TOPIC_QUEUE_BOUNCED, now - msg->env.arrival_ms);
	}
	postern_log(qs->mod, POSTERN_LOG_NOTICE,
		    "%s: deleted by the administrator, the sender is notified", msg->env.id);
	sched_save_state(msg);
	sched_settle(msg);
}

void sched_settle(struct qmsg *msg)
{
	struct qs *qs = msg->qs;

	if (msg->busy || msg->dsn_inflight || msg->ready)
		return;
	if (msg->delete_requested) {
		sched_delete(msg);
		return;
	}
	if (qmsg_owed(msg) != 0 && notify_owed(msg) == 0)
		return; /* settled again when the notices are queued */
	if (qmsg_pending(msg) == 0 && qmsg_owed(msg) == 0) {
		sched_remove(msg);
		return;
	}
	if (msg->held) {
		heap_remove(qs, msg);
		sched_arm(qs);
		return;
	}
	uint64_t due = sched_due(&qs->timing, &msg->env, msg->warned, msg->released_ms);

	/* Notices that could not be queued are tried again. */
	if (qmsg_owed(msg) != 0 && msg->notify_after_ms < due)
		due = msg->notify_after_ms;
	heap_set(qs, msg, due);
	sched_arm(qs);
}

void sched_add(struct qmsg *msg)
{
	sched_settle(msg);
}

void sched_forget(struct qmsg *msg)
{
	struct qs *qs = msg->qs;

	heap_remove(qs, msg);
	if (msg->ready) {
		qlist_del(&msg->ready_link);
		msg->ready = false;
	}
	sched_arm(qs);
}

/* ---- persistence ---- */

static void state_saved(struct qsync_op *op, void *ctx)
{
	struct qs *qs = ctx;
	struct qmsg *msg = qtable_find(&qs->table, op->id);

	if (msg == NULL)
		return; /* removed meanwhile: its removal follows this write */
	msg->st_writing = false;
	if (op->error != 0) {
		postern_log(qs->mod, POSTERN_LOG_ERROR,
			    "%s: cannot save the delivery state (%s: %s); retrying",
			    op->id, op->step, strerror(op->error));
		msg->st_dirty = true;
		postern_timer_reset(qs->retry_timer, SCHED_RETRY_MS);
		return;
	}
	if (msg->st_dirty) {
		msg->st_dirty = false;
		sched_save_state(msg);
	}
}

void sched_save_state(struct qmsg *msg)
{
	struct qs *qs = msg->qs;

	if (msg->st_writing) {
		msg->st_dirty = true;
		return;
	}
	struct qsync_op *op = qsync_op_new(QSYNC_STATE, msg->env.id);

	qstate_format(&op->state, &msg->env, msg->held, msg->warned);
	op->done = state_saved;
	op->ctx = qs;
	msg->st_writing = true;
	msg->st_dirty = false;
	qsyncer_submit(qs, op);
}

static void removed(struct qsync_op *op, void *ctx)
{
	struct qs *qs = ctx;

	if (op->error != 0)
		postern_log(qs->mod, POSTERN_LOG_ERROR,
			    "%s: cannot remove the finished message (%s: %s)", op->id, op->step,
			    strerror(op->error));
	if (op->reserved_spare)
		spares_arrived(qs, op->file, op->recycled);
}

void sched_remove(struct qmsg *msg)
{
	struct qs *qs = msg->qs;
	struct qsync_op *op = qsync_op_new(QSYNC_REMOVE, msg->env.id);

	assert(!msg->busy);
	sched_forget(msg);
	qtable_remove(&qs->table, msg);
	postern_log(qs->mod, POSTERN_LOG_INFO, "%s: removed", msg->env.id);
	op->reserved_spare = spares_reserve(qs, op->file);
	op->done = removed;
	op->ctx = qs;
	qsyncer_submit(qs, op);
	qmsg_free(msg);
}

static void sched_on_retry(struct postern_timer *timer, void *ctx)
{
	struct qs *qs = ctx;
	unsigned count;
	struct qmsg **all = qtable_sorted(&qs->table, &count);

	postern_timer_stop(timer);
	for (unsigned i = 0; i < count; i++) {
		if (all[i]->st_dirty && !all[i]->st_writing)
			sched_save_state(all[i]);
	}
	free(all);
}

/* ---- control ---- */

void sched_flush(struct qs *qs, struct qmsg *only)
{
	unsigned count = 0;
	struct qmsg **all = only != NULL ? NULL : qtable_sorted(&qs->table, &count);
	struct qmsg **list = only != NULL ? &only : all;

	if (only != NULL)
		count = 1;
	for (unsigned i = 0; i < count; i++) {
		struct qmsg *msg = list[i];

		if (msg->held || msg->busy)
			continue;
		for (unsigned r = 0; r < msg->env.rcpt_count; r++) {
			if (msg->env.rcpts[r].state == QR_PENDING)
				msg->env.rcpts[r].next_ms = 0;
		}
		msg->notify_after_ms = 0;
		sched_settle(msg);
	}
	free(all);
}

void sched_init(struct qs *qs)
{
	qlist_init(&qs->ready);
	qs->timer = postern_timer_add(qs->mod, SCHED_MAX_SLEEP_MS, false, sched_on_timer, qs);
	postern_timer_stop(qs->timer);
	qs->retry_timer = postern_timer_add(qs->mod, SCHED_RETRY_MS, false, sched_on_retry, qs);
	postern_timer_stop(qs->retry_timer);
}

void sched_start(struct qs *qs)
{
	qs->started = true;
	sched_arm(qs);
}

void sched_deinit(struct qs *qs)
{
	postern_timer_remove(&qs->timer);
	postern_timer_remove(&qs->retry_timer);
	free(qs->heap);
	qs->heap = NULL;
	qs->heap_count = qs->heap_size = 0;
}
