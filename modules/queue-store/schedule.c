/*
 * When things happen to a queued message, as pure arithmetic on times in
 * milliseconds since the epoch, so it can be tested with any clock:
 *
 *   - attempt n+1 comes min(retry_min * 2^(n-1), retry_max) after the n-th
 *     failure, shortened by a random quarter at most: a big deferred queue
 *     (a destination that was down) does not come due at one instant, and
 *     the configured maximum is never exceeded;
 *   - the delay notice is due delay_warning after arrival (0: never);
 *   - the message expires max_lifetime after arrival.
 *
 * Held messages are not scheduled at all (the caller leaves them out).
 */
#include "queue_store.h"

uint64_t sched_backoff(const struct qtiming *timing, unsigned attempts)
{
	uint64_t delay = timing->retry_min_ms;

	for (unsigned i = 1; i < attempts && delay < timing->retry_max_ms; i++)
		delay = delay > UINT64_MAX / 2 ? UINT64_MAX : delay * 2;
	if (delay > timing->retry_max_ms)
		delay = timing->retry_max_ms;
	return delay;
}

uint64_t sched_jitter(uint64_t delay, uint32_t random)
{
	uint64_t quarter = delay / 4;

	/* quarter * random / 2^32 without overflow for any delay. */
	uint64_t cut = (quarter >> 32) * random + (((quarter & 0xffffffffu) * random) >> 32);

	return delay - cut;
}

uint64_t sched_next_attempt(const struct qtiming *timing, uint64_t now, unsigned attempts,
			    uint32_t random)
{
	return now + sched_jitter(sched_backoff(timing, attempts), random);
}

uint64_t sched_warn_at(const struct qtiming *timing, uint64_t arrival_ms)
{
	return timing->delay_warning_ms == 0 ? 0 : arrival_ms + timing->delay_warning_ms;
}

uint64_t sched_expire_at(const struct qtiming *timing, uint64_t arrival_ms)
{
	return arrival_ms + timing->max_lifetime_ms;
}

bool sched_attempted(const struct qrcpt *rcpt, uint64_t released_ms)
{
	return rcpt->attempts > 0 && rcpt->last_ms >= released_ms;
}

uint64_t sched_due(const struct qtiming *timing, const struct qenvelope *env, bool warned,
		   uint64_t released_ms)
{
	uint64_t due = UINT64_MAX;
	bool attempted = false;

	for (unsigned i = 0; i < env->rcpt_count; i++) {
		const struct qrcpt *rcpt = &env->rcpts[i];

		if (rcpt->state != QR_PENDING)
			continue;
		if (rcpt->next_ms < due)
			due = rcpt->next_ms;
		if (sched_attempted(rcpt, released_ms))
			attempted = true;
	}
	/* Notices and expiry concern recipients that were tried: a message
	 * released after a long hold gets its attempt first. */
	if (attempted) {
		uint64_t warn_at = sched_warn_at(timing, env->arrival_ms);
		uint64_t expire_at = sched_expire_at(timing, env->arrival_ms);

		if (!warned && warn_at != 0 && warn_at < due)
			due = warn_at;
		if (expire_at < due)
			due = expire_at;
	}
	return due;
}
