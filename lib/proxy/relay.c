/*
 * After login: bytes both ways, unparsed, with back-pressure, and what
 * happens when a leg dies.
 *
 * Back-pressure: when the bytes queued towards one side pass half of
 * relay_buffer, the other side is no longer read (postern_conn_pause_input)
 * until the queue drains (DRAINED). The core does the same on its own for
 * a connection whose peer does not read, so nothing is buffered without
 * bound in either direction.
 *
 * Dead back-ends: EOF and ERROR arrive as events; TCP keepalive turns a
 * silent drop into an ERROR eventually; and a watchdog, one timer for all
 * sessions, catches the rest within backend_timeout:
 *   - the client sent something and the back-end has not answered;
 *   - the back-end began a line and has not finished it (a trickle);
 *   - the back-end stopped after a line that, by the protocol's
 *     response_done(), does not end an answer (half a message).
 * No clock runs while the back-end leg is paused for a slow client. What
 * the watchdog cannot see (an answer that looks complete and is not) ends
 * with the client's idle timeout.
 *
 * What the client is told: if the back-end had not begun to answer the
 * client's last command (or nothing was asked since the login reply), a
 * line of the protocol's (POP3: "-ERR [SYS/TEMP] back-end connection
 * lost") is a valid answer, so it is sent before the close. If some bytes
 * of an answer were relayed, a line from us could be mistaken for part of
 * it: the client connection is just closed, after what was relayed.
 */
#include "config.h"

#include <string.h>

#include "proxy_private.h"

#define WATCHDOG_MIN_MS 50
#define WATCHDOG_MAX_MS 1000

static size_t relay_pause_mark(const struct postern_proxy *proxy)
{
	return (size_t)proxy->set.relay_buffer / 2;
}

void proxy_relay_start(struct postern_proxy_session *s)
{
	struct postern_proxy *proxy = s->proxy;
	struct proxy_leg *leg = s->leg;

	proxy_session_wipe_password(s);
	proxy_session_set_phase(s, PROXY_PHASE_RELAY);
	proxy_session_set_state(s, "PROXY");
	postern_conn_set_state(leg->conn, "PROXY");
	postern_conn_set_idle_timeout(s->client, proxy->set.client_idle_timeout);
	postern_conn_set_output_limit(s->client, (size_t)proxy->set.relay_buffer);
	postern_conn_set_output_limit(leg->conn, (size_t)proxy->set.relay_buffer);
	s->backend_answered = true;
	s->awaiting_since = 0;
	s->stall_since = 0;
	s->line_len = 0;
	s->lines_since_client = 0;
	postern_proxy_log(s, POSTERN_LOG_INFO, "user=<%s> rip=%s: proxying to back-end %s (%s)",
			  s->user, s->client_ip, postern_backend_name(leg->backend),
			  postern_backend_address(leg->backend));
	/* Bytes that came with the login reply, and commands the client
	 * pipelined after its login, are already buffered. */
	proxy_relay_backend_input(s);
	if (s->phase == PROXY_PHASE_RELAY)
		proxy_relay_client_input(s);
}

void proxy_relay_client_input(struct postern_proxy_session *s)
{
	struct proxy_leg *leg = s->leg;
	size_t len;
	const void *data;

	if (leg == NULL || s->client == NULL)
		return;
	data = postern_conn_input(s->client, &len);
	if (len == 0)
		return;
	postern_conn_write(leg->conn, data, len);
	postern_conn_consume(s->client, len);
	s->lines_since_client = 0;
	if (s->backend_answered) {
		s->backend_answered = false;
		s->awaiting_since = postern_now_ms();
	}
	if (!s->client_paused && postern_conn_output_size(leg->conn) > relay_pause_mark(s->proxy)) {
		s->client_paused = true;
		postern_conn_pause_input(s->client, true);
	}
}

void proxy_relay_backend_input(struct postern_proxy_session *s)
{
	struct proxy_leg *leg = s->leg;
	const char *data;
	size_t len;

	if (leg == NULL || s->client == NULL)
		return;
	data = postern_conn_input(leg->conn, &len);
	if (len == 0)
		return;
	postern_conn_write(s->client, data, len);
	proxy_relay_track(s, data, len, postern_now_ms());
	postern_conn_consume(leg->conn, len);
	s->backend_answered = true;
	s->awaiting_since = 0;
	if (!s->backend_paused && postern_conn_output_size(s->client) > relay_pause_mark(s->proxy)) {
		s->backend_paused = true;
		postern_conn_pause_input(leg->conn, true);
	}
}

void proxy_relay_client_drained(struct postern_proxy_session *s)
{
	if (!s->backend_paused || s->leg == NULL)
		return;
	s->backend_paused = false;
	/* The stall clock starts over: the wait was the client's. */
	if (s->stall_since != 0)
		s->stall_since = postern_now_ms();
	if (!s->backend_answered)
		s->awaiting_since = postern_now_ms();
	postern_conn_pause_input(s->leg->conn, false);
}

void proxy_relay_backend_drained(struct postern_proxy_session *s)
{
	if (!s->client_paused || s->client == NULL)
		return;
	s->client_paused = false;
	postern_conn_pause_input(s->client, false);
}

void proxy_relay_backend_lost(struct postern_proxy_session *s, const char *why, bool clean)
{
	struct proxy_leg *leg = s->leg;
	struct postern_backend *be;
	bool waiting = !s->backend_answered;

	if (leg == NULL)
		return;
	be = leg->backend;
	s->leg = NULL;
	postern_conn_close(leg->conn, why);
	/* A back-end that closes after answering (QUIT, its own autologout)
	 * is fine; anything else is worth a look by the health check. */
	if (!clean || waiting) {
		postern_backend_note_error(be, why);
		proxy_health_check_soon(s->proxy, be);
		postern_proxy_log(s, POSTERN_LOG_WARNING,
				  "user=<%s>: back-end %s (%s) lost mid-session: %s", s->user,
				  postern_backend_name(be), postern_backend_address(be), why);
	} else {
		postern_proxy_log(s, POSTERN_LOG_DEBUG, "user=<%s>: back-end %s closed the session",
				  s->user, postern_backend_name(be));
	}
	proxy_session_set_phase(s, PROXY_PHASE_CLOSING);
	if (s->client == NULL || postern_conn_is_closing(s->client))
		return;
	if (waiting)
		s->proxy->protocol->client_reply(s, POSTERN_PROXY_REPLY_LOST,
						 "back-end connection lost");
	postern_conn_close_after_flush(s->client, why);
}

static void relay_watchdog(struct postern_timer *timer, void *ctx)
{
	struct postern_proxy *proxy = ctx;
	uint64_t now = postern_now_ms(), limit = proxy->set.backend_timeout;
	struct postern_proxy_session *s, *next;

	/* Closing only queues CLOSED: no session is freed during the walk. */
	for (s = proxy->sessions; s != NULL; s = next) {
		next = s->next;
		if (s->phase != PROXY_PHASE_RELAY || s->backend_paused)
			continue;
		if (s->awaiting_since != 0 && now - s->awaiting_since >= limit)
			proxy_relay_backend_lost(s, "back-end did not answer in time", false);
		else if (s->stall_since != 0 && now - s->stall_since >= limit)
			proxy_relay_backend_lost(s, s->stall_midline ?
							    "back-end stalled in the middle of a line" :
							    "back-end stalled in the middle of an answer",
						 false);
	}
}

void proxy_relay_watchdog_update(struct postern_proxy *proxy)
{
	if (proxy->relaying == 0) {
		postern_timer_remove(&proxy->watchdog);
		return;
	}
	if (proxy->watchdog == NULL) {
		uint64_t interval = proxy->set.backend_timeout / 4;

		if (interval < WATCHDOG_MIN_MS)
			interval = WATCHDOG_MIN_MS;
		if (interval > WATCHDOG_MAX_MS)
			interval = WATCHDOG_MAX_MS;
		proxy->watchdog = postern_timer_add(proxy->mod, interval, true, relay_watchdog,
						    proxy);
	}
}
