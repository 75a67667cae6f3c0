/*
 * Logging a session in on a back-end: the user's failover list from the
 * directory, one connection attempt ("leg") after the other, the
 * protocol's login dialogue within login_timeout, and the verdict on each
 * back-end: try the next (refused, timed out, garbage), stop (the back-end
 * refused credentials we verified: a configuration mismatch), or pass the
 * answer on (the user's own problem, like a mailbox in use).
 *
 * Passive health marking happens here: a connect failure, a connect or
 * login timeout, a connection lost during login or a greeting that is not
 * the protocol marks the back-end down until a health check passes.
 *
 * Each leg is its own object, freed on its CLOSED, so an attempt that is
 * still closing never mixes with the next one, and its per-back-end
 * session count is given back exactly once.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy_private.h"

static void backend_try_next(struct postern_proxy_session *s);

/* A back-end's line for a log message: printable, bounded. */
static const char *backend_describe_line(const struct postern_line *line, char *buf, size_t size)
{
	size_t o = 0;

	for (size_t i = 0; i < line->len && o + 5 < size; i++) {
		unsigned char c = (unsigned char)line->data[i];

		if (c >= 0x20 && c < 0x7f) {
			buf[o++] = (char)c;
		} else {
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
		}
	}
	buf[o] = '\0';
	return buf;
}

static void leg_unlink(struct postern_proxy *proxy, struct proxy_leg *leg)
{
	if (leg->prev != NULL)
		leg->prev->next = leg->next;
	else
		proxy->legs = leg->next;
	if (leg->next != NULL)
		leg->next->prev = leg->prev;
	leg->prev = leg->next = NULL;
}

void proxy_leg_free(struct postern_proxy *proxy, struct proxy_leg *leg)
{
	leg_unlink(proxy, leg);
	proxy_retired_leg_gone(proxy, leg);
	free(leg);
}

static int backend_connect(struct postern_proxy_session *s, struct postern_backend *be)
{
	struct postern_proxy *proxy = s->proxy;
	struct postern_connect_settings cs = POSTERN_CONNECT_SETTINGS_INIT;
	struct proxy_leg *leg = calloc(1, sizeof(*leg));
	const char *error;

	if (leg == NULL)
		abort();
	cs.address = postern_backend_address(be);
	cs.timeout_ms = proxy->set.connect_timeout;
	if (postern_backend_tls(be)) {
		const char *sni = proxy->backend_sni[postern_backend_index(be)];

		cs.tls = proxy->backend_tls;
		cs.tls_server_name = sni != NULL ? sni : postern_backend_host(be);
	}
	leg->session = s;
	leg->backend = be;
	leg->conn = postern_connect(proxy->mod, &cs, proxy_leg_event, leg, &error);
	if (leg->conn == NULL) {
		postern_proxy_log(s, POSTERN_LOG_ERROR, "back-end %s: cannot connect: %s",
				  postern_backend_name(be), error);
		postern_backend_note_error(be, error);
		free(leg);
		return -1;
	}
	leg->next = proxy->legs;
	if (proxy->legs != NULL)
		proxy->legs->prev = leg;
	proxy->legs = leg;
	s->leg = leg;
	s->legs++;
	s->attempts++;
	postern_backend_session_begin(be);
	leg->counted = true;
	postern_conn_set_state(leg->conn, "CONNECT");
	postern_conn_set_user(leg->conn, s->user);
	/* The connect has the core's deadline; login_timeout starts at OPEN. */
	if (s->timer != NULL)
		postern_timer_stop(s->timer);
	postern_proxy_log(s, POSTERN_LOG_DEBUG, "user=<%s>: connecting to back-end %s (%s)",
			  s->user, postern_backend_name(be), postern_backend_address(be));
	return 0;
}

static void backend_try_next(struct postern_proxy_session *s)
{
	struct postern_proxy *proxy = s->proxy;

	while (s->route_pos < s->route_count) {
		struct postern_backend *be = s->route[s->route_pos++];

		if (proxy->set.max_attempts != 0 && s->attempts >= proxy->set.max_attempts)
			break;
		if (!postern_backend_usable(be)) {
			postern_proxy_log(s, POSTERN_LOG_DEBUG, "user=<%s>: skipping back-end %s (%s)",
					  s->user, postern_backend_name(be),
					  postern_backend_is_up(be) ? "at its session limit" : "down");
			continue;
		}
		if (backend_connect(s, be) == 0)
			return;
	}
	postern_proxy_log(s, POSTERN_LOG_WARNING,
			  "user=<%s>: no back-end left to try (%u tried of %u)", s->user,
			  s->attempts, s->route_count);
	proxy_session_fail(s, POSTERN_PROXY_REPLY_TEMPFAIL,
			   "No back-end server available, try again later", "no back-end left");
}

void proxy_backend_begin(struct postern_proxy_session *s)
{
	struct postern_proxy *proxy = s->proxy;
	const char *host = NULL, *port_text = NULL, *error = NULL;
	unsigned port = 0;
	int count;

	proxy_session_set_phase(s, PROXY_PHASE_BACKEND);
	proxy_session_set_state(s, "BACKEND");
	if (s->user_info != NULL) {
		host = postern_auth_user_field(s->user_info, "host");
		port_text = postern_auth_user_field(s->user_info, "port");
	}
	if (port_text != NULL) {
		char *end;
		unsigned long value = strtoul(port_text, &end, 10);

		if (*port_text != '\0' && *end == '\0' && value > 0 && value <= 65535)
			port = (unsigned)value;
	}
	count = postern_directory_route(proxy->dir, s->user, host, port, s->route,
					PROXY_MAX_ROUTE, &error);
	if (count < 0) {
		/* The user database and the back-end list disagree: loud. */
		postern_proxy_log(s, POSTERN_LOG_ERROR, "user=<%s>: %s", s->user, error);
		proxy_session_fail(s, POSTERN_PROXY_REPLY_TEMPFAIL,
				   "No back-end server available, try again later", "routing failed");
		return;
	}
	s->route_count = (unsigned)count;
	s->route_pos = 0;
	s->attempts = 0;
	backend_try_next(s);
}

void proxy_backend_drop(struct postern_proxy_session *s, const char *reason)
{
	struct proxy_leg *leg = s->leg;

	if (leg == NULL)
		return;
	s->leg = NULL;
	if (s->timer != NULL && s->phase == PROXY_PHASE_BACKEND)
		postern_timer_stop(s->timer);
	postern_conn_close(leg->conn, reason);
}

void proxy_backend_failed(struct postern_proxy_session *s, const char *error, bool mark_down)
{
	struct proxy_leg *leg = s->leg;
	struct postern_backend *be;

	if (leg == NULL)
		return;
	be = leg->backend;
	postern_proxy_log(s, POSTERN_LOG_WARNING, "user=<%s>: back-end %s (%s) failed: %s%s",
			  s->user, postern_backend_name(be), postern_backend_address(be), error,
			  s->route_pos < s->route_count ? "; trying the next one" : "");
	if (mark_down)
		proxy_mark_down(s->proxy, be, error);
	else
		postern_backend_note_error(be, error);
	proxy_backend_drop(s, error);
	if (s->client == NULL || postern_conn_is_closing(s->client))
		return;
	backend_try_next(s);
}

void proxy_backend_timeout(struct postern_proxy_session *s)
{
	struct proxy_leg *leg = s->leg;

	if (leg == NULL)
		return;
	/* A back-end that greeted is alive, only slow (overloaded): try the
	 * next one for this session, but do not take it out of service for
	 * everyone, which would pile its load onto the others. */
	if (leg->greeted)
		proxy_backend_failed(s, "login timeout after the greeting", false);
	else
		proxy_backend_failed(s, leg->opened ? "no greeting in time" : "connect timeout",
				     true);
}

/* A line of the login dialogue, judged by the protocol. */
static void leg_login_input(struct postern_proxy_session *s, struct proxy_leg *leg)
{
	const struct postern_proxy_protocol *protocol = s->proxy->protocol;
	struct postern_line line;
	char text[160], error[200];

	while (s->leg == leg && s->phase == PROXY_PHASE_BACKEND) {
		enum postern_read_status status = postern_conn_read_line(leg->conn, &line);

		if (status == POSTERN_READ_NONE)
			return;
		if (status == POSTERN_READ_TOO_LONG) {
			proxy_backend_failed(s, "overlong line during login", true);
			return;
		}
		leg->greeted = true;
		switch (protocol->backend_line(s, &line)) {
		case POSTERN_PROXY_STEP_CONTINUE:
			break;
		case POSTERN_PROXY_STEP_LOGGED_IN:
			leg->logged_in = true;
			if (s->timer != NULL)
				postern_timer_stop(s->timer);
			proxy_relay_start(s);
			return;
		case POSTERN_PROXY_STEP_FAILOVER:
			snprintf(error, sizeof(error), "refused: %s",
				 backend_describe_line(&line, text, sizeof(text)));
			proxy_backend_failed(s, error, false);
			return;
		case POSTERN_PROXY_STEP_BROKEN:
			snprintf(error, sizeof(error), "not %s: %s", protocol->name,
				 backend_describe_line(&line, text, sizeof(text)));
			proxy_backend_failed(s, error, true);
			return;
		case POSTERN_PROXY_STEP_MISMATCH:
			snprintf(error, sizeof(error), "refused verified credentials: %s",
				 backend_describe_line(&line, text, sizeof(text)));
			postern_proxy_log(s, POSTERN_LOG_ERROR,
					  "user=<%s>: back-end %s %s: its user database or password "
					  "differs from this front-end's (configuration mismatch)",
					  s->user, postern_backend_name(leg->backend), error);
			postern_backend_note_error(leg->backend, error);
			proxy_session_fail(s, POSTERN_PROXY_REPLY_TEMPFAIL,
					   "Temporary login failure, try again later",
					   "back-end refused credentials");
			return;
		case POSTERN_PROXY_STEP_PASS_ON:
			postern_proxy_log(s, POSTERN_LOG_INFO, "user=<%s>: back-end %s: %s", s->user,
					  postern_backend_name(leg->backend),
					  backend_describe_line(&line, text, sizeof(text)));
			proxy_backend_drop(s, "login refused");
			proxy_session_wipe_password(s);
			proxy_session_resume(s);
			return;
		default:
			proxy_backend_failed(s, "protocol error", true);
			return;
		}
	}
}

static void leg_closed(struct proxy_leg *leg)
{
	struct postern_proxy_session *s = leg->session;
	struct postern_proxy *proxy = s->proxy;

	if (leg->counted)
		postern_backend_session_end(leg->backend);
	if (s->leg == leg) {
		/* Closed behind our back (shutdown closes every connection):
		 * the client cannot go on without it. */
		s->leg = NULL;
		if (s->client != NULL && !postern_conn_is_closing(s->client)) {
			if (s->phase == PROXY_PHASE_RELAY)
				proxy_relay_backend_lost(s, "back-end connection closed", true);
			else
				proxy_session_fail(s, POSTERN_PROXY_REPLY_TEMPFAIL,
						   "Back-end connection lost", "back-end closed");
		}
	}
	proxy_leg_free(proxy, leg);
	s->legs--;
	proxy_session_maybe_free(s);
}

void proxy_leg_event(struct postern_conn *conn, enum postern_conn_event event, void *ctx)
{
	struct proxy_leg *leg = ctx;
	struct postern_proxy_session *s = leg->session;
	const struct proxy_settings *set = &s->proxy->set;

	if (event == POSTERN_CONN_CLOSED) {
		leg_closed(leg);
		return;
	}
	if (s->leg != leg)
		return; /* an old attempt on its way out */
	switch (event) {
	case POSTERN_CONN_OPEN:
		leg->opened = true;
		if (set->backend_keepalive_idle != 0)
			(void)postern_conn_set_keepalive(
				conn, (unsigned)((set->backend_keepalive_idle + 999) / 1000),
				(unsigned)((set->backend_keepalive_interval + 999) / 1000),
				(unsigned)set->backend_keepalive_count);
		postern_conn_set_state(conn, "LOGIN");
		proxy_session_timer(s, set->login_timeout);
		if (s->proxy->protocol->backend_open != NULL)
			s->proxy->protocol->backend_open(s);
		break;
	case POSTERN_CONN_INPUT:
		if (s->phase == PROXY_PHASE_BACKEND)
			leg_login_input(s, leg);
		else if (s->phase == PROXY_PHASE_RELAY)
			proxy_relay_backend_input(s);
		break;
	case POSTERN_CONN_DRAINED:
		if (s->phase == PROXY_PHASE_RELAY)
			proxy_relay_backend_drained(s);
		break;
	case POSTERN_CONN_EOF:
		if (s->phase == PROXY_PHASE_RELAY)
			proxy_relay_backend_lost(s, "back-end closed the connection", true);
		else
			proxy_backend_failed(s, "connection closed during login", true);
		break;
	case POSTERN_CONN_ERROR:
	case POSTERN_CONN_TIMEOUT: {
		const char *error = event == POSTERN_CONN_TIMEOUT ? "idle timeout" :
				    postern_conn_error(conn) != NULL ? postern_conn_error(conn) :
								       "connection error";

		if (s->phase == PROXY_PHASE_RELAY)
			proxy_relay_backend_lost(s, error, false);
		else
			proxy_backend_failed(s, error, true);
		break;
	}
	default:
		break;
	}
}
