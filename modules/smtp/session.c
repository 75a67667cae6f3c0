/*
 * An inbound SMTP session: connection events, the input loop that hands
 * command lines to session_cmd.c and message bytes to session_data.c,
 * timeouts, and the end of a session (QUIT, too many errors, shutdown).
 *
 * The input loop stops whenever the session waits for something
 * asynchronous (a password check, a queue commit, a delayed failure
 * answer, a TLS handshake): input is paused, so commands a client
 * pipelined after the final dot or after AUTH are handled only once the
 * reply they follow has been sent, in order.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "smtp_private.h"

bool smtp_session_is_submission(const struct smtp_session *session)
{
	return session->kind != SMTP_KIND_SMTP;
}

bool smtp_session_tls_offered(const struct smtp_session *session)
{
	return session->smtp->tls_server != NULL && !postern_conn_is_tls(session->conn);
}

bool smtp_session_auth_offered(const struct smtp_session *session)
{
	const struct smtp *smtp = session->smtp;

	if (smtp->auth_pool == NULL || session->auth_user != NULL)
		return false;
	if (!smtp_session_is_submission(session) && !smtp->set.smtp_auth)
		return false;
	return postern_conn_is_tls(session->conn) || smtp->set.auth_without_tls;
}

void smtp_reply(struct smtp_session *session, const char *fmt, ...)
{
	va_list args;
	struct postern_str *str = postern_str_new();

	va_start(args, fmt);
	postern_str_vprintf(str, fmt, args);
	va_end(args);
	postern_str_append(str, "\r\n", 2);
	postern_conn_write(session->conn, postern_str_data(str), postern_str_len(str));
	postern_str_free(&str);
}

void smtp_session_close(struct smtp_session *session, const char *reply, const char *reason)
{
	if (reply != NULL)
		smtp_reply(session, "%s", reply);
	session->quitting = true;
	postern_conn_close_after_flush(session->conn, reason);
}

void smtp_session_error(struct smtp_session *session)
{
	session->smtp->stats.protocol_errors++;
	if (++session->errors >= session->smtp->set.max_errors) {
		char *reply = smtp_asprintf("421 4.7.0 %s Too many errors, closing connection",
					    session->smtp->set.hostname);

		smtp_session_close(session, reply, "too many errors");
		free(reply);
	}
}

void smtp_session_wait(struct smtp_session *session)
{
	session->mode = SMTP_MODE_WAIT;
	postern_conn_pause_input(session->conn, true);
	/* What we wait for is bounded by its own means (the pool, the
	 * queue, a timer); the client's silence meanwhile is expected. */
	postern_conn_set_idle_timeout(session->conn, 0);
}

void smtp_session_resume(struct smtp_session *session)
{
	session->mode = SMTP_MODE_COMMAND;
	postern_conn_set_idle_timeout(session->conn, session->smtp->set.command_timeout);
	if (postern_mod_shutting_down(session->smtp->mod) && !session->quitting) {
		char *reply = smtp_asprintf("421 4.3.2 %s Service shutting down",
					    session->smtp->set.hostname);

		smtp_session_close(session, reply, "shutdown");
		free(reply);
		return;
	}
	postern_conn_pause_input(session->conn, false);
}

void smtp_txn_reset(struct smtp_session *session)
{
	struct smtp_txn *txn = &session->txn;
	const struct postern_queue_ops *queue = session->smtp->queue;

	if (txn->msg != NULL) {
		if (txn->committing)
			queue->detach(txn->msg);
		else
			queue->abort(txn->msg);
	}
	free(txn->sender);
	free(txn->envid);
	for (unsigned i = 0; i < txn->rcpt_count; i++) {
		free((char *)txn->rcpts[i].address);
		free((char *)txn->rcpts[i].orcpt);
	}
	free(txn->rcpts);
	free(txn->message);
	memset(txn, 0, sizeof(*txn));
	if (session->phase > SMTP_PHASE_READY)
		session->phase = SMTP_PHASE_READY;
}

static void session_free(struct smtp_session *session)
{
	struct smtp *smtp = session->smtp;

	smtp_auth_session_gone(session);
	smtp_session_data_gone(session);
	smtp_txn_reset(session);
	postern_timer_remove(&session->delay_timer);
	free(session->delayed_reply);
	free(session->helo);
	free(session->auth_user);
	free(session->auth_login_user);
	free(session->line);
	if (session->prev != NULL)
		session->prev->next = session->next;
	else
		smtp->sessions = session->next;
	if (session->next != NULL)
		session->next->prev = session->prev;
	smtp->stats.sessions_active--;
	free(session);
}

static void session_open(struct postern_conn *conn, struct smtp_listener_ctx *listener)
{
	struct smtp *smtp = listener->smtp;
	struct smtp_session *session = smtp_alloc(sizeof(*session));

	session->smtp = smtp;
	session->conn = conn;
	session->kind = listener->kind;
	session->id = ++smtp->next_session_id;
	session->next = smtp->sessions;
	if (smtp->sessions != NULL)
		smtp->sessions->prev = session;
	smtp->sessions = session;
	smtp->stats.connections++;
	smtp->stats.sessions_active++;
	postern_conn_set_handler(conn, smtp_session_event, session);
	postern_conn_set_state(conn, "GREETING");
	postern_conn_set_keepalive(conn, 60, 30, 5);
	postern_conn_log(conn, POSTERN_LOG_INFO, "%s connection from %s%s",
			 smtp_kind_name(session->kind), postern_conn_peer(conn),
			 postern_conn_is_tls(conn) ? " (TLS)" : "");
	smtp_reply(session, "220 %s", smtp->set.greeting);
}

/* Copy the line so that parsers may cut it up in place. */
static char *session_line_copy(struct smtp_session *session, const struct postern_line *line)
{
	if (session->line_size < line->len + 1) {
		session->line_size = line->len + 1;
		session->line = smtp_realloc(session->line, session->line_size);
	}
	memcpy(session->line, line->data, line->len);
	session->line[line->len] = '\0';
	return session->line;
}

static void session_line(struct smtp_session *session, const struct postern_line *line)
{
	if (line->flags & POSTERN_LINE_BARE_LF) {
		/* A command ended by a bare LF: refused, so that a line end
		 * we do not count as one can never frame anything. */
		smtp_reply(session, "500 5.5.2 Syntax error: bare LF; lines end with CR LF");
		smtp_session_error(session);
		return;
	}
	char *copy = session_line_copy(session, line);

	if (session->mode == SMTP_MODE_AUTH)
		smtp_auth_response(session, copy, line->len);
	else
		smtp_session_command(session, copy, line->len);
}

static void session_input(struct smtp_session *session)
{
	struct postern_conn *conn = session->conn;

	while (!postern_conn_is_closing(conn) && !session->quitting) {
		if (session->mode == SMTP_MODE_DATA || session->mode == SMTP_MODE_BDAT) {
			size_t len;
			const void *data = postern_conn_input(conn, &len);

			if (len == 0)
				break;
			size_t used = smtp_session_data_input(session, data, len);

			postern_conn_consume(conn, used);
			continue;
		}
		if (session->mode != SMTP_MODE_COMMAND && session->mode != SMTP_MODE_AUTH)
			break;

		struct postern_line line;
		enum postern_read_status status = postern_conn_read_line(conn, &line);

		if (status == POSTERN_READ_NONE)
			break;
		if (status == POSTERN_READ_TOO_LONG) {
			smtp_reply(session, "500 5.5.2 Line too long");
			smtp_session_error(session);
			if (session->mode == SMTP_MODE_AUTH)
				smtp_auth_response(session, NULL, 0);
			continue;
		}
		session_line(session, &line);
		if (session->mode == SMTP_MODE_TLS)
			break; /* what follows STARTTLS is the core's to drop */
	}
}

static void session_timeout(struct smtp_session *session)
{
	char *reply = smtp_asprintf("421 4.4.2 %s Timeout exceeded, closing connection",
				    session->smtp->set.hostname);

	postern_conn_log(session->conn, POSTERN_LOG_INFO, "timeout in %s",
			 session->mode == SMTP_MODE_DATA || session->mode == SMTP_MODE_BDAT ?
				 "DATA" :
				 "command");
	smtp_session_close(session, reply, "timeout");
	free(reply);
}

static void session_tls_ready(struct smtp_session *session)
{
	/* RFC 3207 4.2: forget everything learnt before TLS. */
	smtp_txn_reset(session);
	free(session->helo);
	session->helo = NULL;
	session->phase = SMTP_PHASE_INIT;
	session->esmtp = false;
	session->mode = SMTP_MODE_COMMAND;
	session->smtp->stats.tls_started++;
	postern_conn_log(session->conn, POSTERN_LOG_INFO, "STARTTLS: %s",
			 postern_conn_tls_description(session->conn));
	postern_conn_set_state(session->conn, "INIT");
	session_input(session);
}

void smtp_session_event(struct postern_conn *conn, enum postern_conn_event event, void *ctx)
{
	struct smtp_session *session = ctx;

	switch (event) {
	case POSTERN_CONN_OPEN:
		session_open(conn, ctx);
		break;
	case POSTERN_CONN_INPUT:
		session_input(session);
		break;
	case POSTERN_CONN_TLS_READY:
		session_tls_ready(session);
		break;
	case POSTERN_CONN_TIMEOUT:
		session_timeout(session);
		break;
	case POSTERN_CONN_EOF:
		if (session->mode == SMTP_MODE_DATA || session->mode == SMTP_MODE_BDAT)
			postern_conn_log(conn, POSTERN_LOG_INFO,
					 "client vanished during the message: nothing kept");
		break;
	case POSTERN_CONN_ERROR:
		postern_conn_log(conn, POSTERN_LOG_INFO, "connection error: %s",
				 postern_conn_error(conn));
		break;
	case POSTERN_CONN_CLOSED:
		session_free(session);
		break;
	default:
		break;
	}
}

void smtp_sessions_shutdown(struct smtp *smtp)
{
	char *reply = smtp_asprintf("421 4.3.2 %s Service shutting down", smtp->set.hostname);

	for (struct smtp_session *session = smtp->sessions; session != NULL;
	     session = session->next) {
		/* A message being received or committed finishes first;
		 * smtp_session_resume() says 421 after its reply. */
		if (session->mode == SMTP_MODE_COMMAND || session->mode == SMTP_MODE_AUTH ||
		    session->mode == SMTP_MODE_TLS)
			smtp_session_close(session, reply, "shutdown");
	}
	free(reply);
}
