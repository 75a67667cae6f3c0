/*
 * A POP3 connection: its events, the input loop that parses commands and
 * hands them to the handler the verb table names, replies, timeouts and the
 * end of the session.
 *
 * Commands are handled one at a time, in order. A handler that starts
 * something asynchronous (a password check, opening the mailbox, streaming a
 * message, QUIT's deletions) puts the session in a wait; input is then
 * paused and pipelined commands stay buffered until pop3_session_resume().
 * That is all PIPELINING needs: answers come in command order.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server.h"

/* The handler of each verb (the verb table in command.c says in which
 * states each is allowed; the parser enforces it before we get here). */
static pop3_handler *const handlers[POP3_VERB_COUNT] = {
	[POP3_VERB_CAPA] = pop3_cmd_capa,
	[POP3_VERB_QUIT] = pop3_cmd_quit,
	[POP3_VERB_USER] = pop3_cmd_user,
	[POP3_VERB_PASS] = pop3_cmd_pass,
	[POP3_VERB_AUTH] = pop3_cmd_auth,
	[POP3_VERB_STLS] = pop3_cmd_stls,
	[POP3_VERB_XCLIENT] = pop3_cmd_xclient,
	[POP3_VERB_STAT] = pop3_cmd_stat,
	[POP3_VERB_LIST] = pop3_cmd_list,
	[POP3_VERB_UIDL] = pop3_cmd_uidl,
	[POP3_VERB_RETR] = pop3_cmd_retr,
	[POP3_VERB_TOP] = pop3_cmd_top,
	[POP3_VERB_DELE] = pop3_cmd_dele,
	[POP3_VERB_RSET] = pop3_cmd_rset,
	[POP3_VERB_NOOP] = pop3_cmd_noop,
};

static const char *const wait_names[] = {
	[POP3_WAIT_NONE] = NULL,
	[POP3_WAIT_AUTH] = "AUTH-CHECK",
	[POP3_WAIT_AUTH_DELAY] = "AUTH-DELAY",
	[POP3_WAIT_SASL] = "AUTH-SASL",
	[POP3_WAIT_OPEN] = "OPENING",
	[POP3_WAIT_SEND] = "SENDING",
	[POP3_WAIT_UPDATE] = "UPDATE",
};

const char *pop3_safe(const char *text, char *buf, size_t size)
{
	size_t n = 0;

	for (const char *p = text; *p != '\0' && n + 5 < size; p++) {
		unsigned char c = (unsigned char)*p;

		if (p - text >= 64) {
			memcpy(buf + n, "...", 3);
			n += 3;
			break;
		}
		if (c < 0x20 || c == 0x7f || c == '\\' || c == '>')
			n += (size_t)snprintf(buf + n, size - n, "\\x%02x", c);
		else
			buf[n++] = (char)c;
	}
	buf[n] = '\0';
	return buf;
}

void pop3_reply(struct pop3_session *s, const char *fmt, ...)
{
	char buf[1024];
	va_list args;
	int len;

	va_start(args, fmt);
	len = vsnprintf(buf, sizeof(buf) - 2, fmt, args);
	va_end(args);
	if (len < 0)
		return;
	if ((size_t)len > sizeof(buf) - 3)
		len = (int)(sizeof(buf) - 3);
	buf[len++] = '\r';
	buf[len++] = '\n';
	postern_conn_write(s->conn, buf, (size_t)len);
}

static void update_conn_state(struct pop3_session *s)
{
	const char *name = wait_names[s->wait];

	postern_conn_set_state(s->conn, name != NULL ? name : pop3_state_name(s->state));
}

void pop3_session_wait(struct pop3_session *s, enum pop3_wait wait)
{
	assert(s->wait == POP3_WAIT_NONE && wait != POP3_WAIT_NONE);
	s->wait = wait;
	/* SASL waits for the client's next line: keep reading */
	if (wait != POP3_WAIT_SASL)
		postern_conn_pause_input(s->conn, true);
	update_conn_state(s);
}

void pop3_session_bad_command(struct pop3_session *s)
{
	if (++s->bad_commands < s->be->config.set.max_bad_commands)
		return;
	postern_conn_log(s->conn, POSTERN_LOG_INFO, "too many bad commands, disconnecting rip=%s",
			 s->rip);
	pop3_reply(s, "-ERR Too many bad commands, closing connection");
	postern_conn_close_after_flush(s->conn, "too many bad commands");
}

static void answer_parse_error(struct pop3_session *s, enum pop3_parse_result result,
			       const struct pop3_command *cmd)
{
	switch (result) {
	case POP3_PARSE_OK:
		assert(!"not an error");
		break;
	case POP3_PARSE_EMPTY:
		pop3_reply(s, "-ERR Empty command");
		break;
	case POP3_PARSE_BAD_BYTES:
		pop3_reply(s, "-ERR Invalid characters in command");
		break;
	case POP3_PARSE_UNKNOWN:
		pop3_reply(s, "-ERR Unknown command");
		break;
	case POP3_PARSE_WRONG_STATE:
		pop3_reply(s, "-ERR %s not allowed in the %s state", cmd->verb->name,
			   pop3_state_name(s->state));
		break;
	case POP3_PARSE_BAD_ARGS:
		pop3_reply(s, "-ERR Wrong arguments for %s", cmd->verb->name);
		break;
	}
	pop3_session_bad_command(s);
}

/* One line from the client. It is copied into the module's line buffer
 * (the core's copy is read-only), which the parser splits in place and
 * which is wiped afterwards in the AUTHORIZATION state: passwords pass
 * through it. */
static void handle_line(struct pop3_session *s, const struct postern_line *line)
{
	char *buf = s->be->line_buf;
	bool secret = s->state == POP3_STATE_AUTHORIZATION;
	struct pop3_command cmd;
	enum pop3_parse_result result;

	assert(line->len < POP3_LINE_BUF);
	memcpy(buf, line->data, line->len);
	buf[line->len] = '\0';
	if (s->wait == POP3_WAIT_SASL) {
		/* an AUTH response: a NUL or CR in it is broken base64 */
		if ((line->flags & (POSTERN_LINE_HAS_NUL | POSTERN_LINE_HAS_CR)) != 0)
			buf[0] = '!';
		pop3_sasl_response(s, buf, line->len);
	} else if ((line->flags & POSTERN_LINE_HAS_NUL) != 0) {
		/* the parser sees a C string: tell it about the NUL */
		answer_parse_error(s, POP3_PARSE_BAD_BYTES, NULL);
	} else if ((result = pop3_command_parse(buf, line->len, s->state, &cmd)) != POP3_PARSE_OK) {
		answer_parse_error(s, result, &cmd);
	} else {
		handlers[cmd.verb->id](s, &cmd);
	}
	if (secret)
		explicit_bzero(buf, line->len + 1);
}

static void process_input(struct pop3_session *s)
{
	struct postern_line line;
	enum postern_read_status status;

	if (s->in_input)
		return; /* resumed from a handler: the running loop goes on */
	s->in_input = true;
	while ((s->wait == POP3_WAIT_NONE || s->wait == POP3_WAIT_SASL) && !s->stls_pending) {
		if (postern_conn_is_closing(s->conn))
			break;
		status = postern_conn_read_line(s->conn, &line);
		if (status == POSTERN_READ_NONE)
			break;
		if (status == POSTERN_READ_TOO_LONG) {
			if (s->wait == POP3_WAIT_SASL) {
				/* the AUTH exchange ends with it */
				s->wait = POP3_WAIT_NONE;
				update_conn_state(s);
				pop3_reply(s, "-ERR [AUTH] Response too long");
			} else {
				pop3_reply(s, "-ERR Line too long");
			}
			pop3_session_bad_command(s);
			continue;
		}
		/* after STLS (stls_pending) the core discards what the client
		 * sent before the handshake: the loop stops there (RFC 2595) */
		handle_line(s, &line);
	}
	s->in_input = false;
}

void pop3_session_resume(struct pop3_session *s)
{
	if (s->wait != POP3_WAIT_SASL)
		postern_conn_pause_input(s->conn, false);
	s->wait = POP3_WAIT_NONE;
	update_conn_state(s);
	if (s->shutting_down) {
		pop3_session_shutdown(s);
		return;
	}
	process_input(s);
}

void pop3_session_shutdown(struct pop3_session *s)
{
	s->shutting_down = true;
	/* busy sessions end when their work is done (a QUIT's deletions must
	 * be applied, a message being sent may finish) */
	if (s->wait != POP3_WAIT_NONE && s->wait != POP3_WAIT_SASL &&
	    s->wait != POP3_WAIT_AUTH_DELAY)
		return;
	pop3_reply(s, "-ERR [SYS/TEMP] Server shutting down");
	postern_conn_close_after_flush(s->conn, "shutdown");
}

static void session_open(struct pop3_listener *listener, struct postern_conn *conn)
{
	struct pop3be *be = listener->be;
	struct pop3_session *s = pop3_zalloc(sizeof(*s));

	s->be = be;
	s->conn = conn;
	s->listener = listener;
	s->state = POP3_STATE_AUTHORIZATION;
	s->started_ms = postern_now_ms();
	snprintf(s->rip, sizeof(s->rip), "%s", postern_conn_peer_ip(conn));
	s->next = be->sessions;
	if (be->sessions != NULL)
		be->sessions->prev = s;
	be->sessions = s;
	be->session_count++;
	be->stats.connections++;
	postern_conn_set_handler(conn, pop3_session_event, s);
	postern_conn_set_idle_timeout(conn, be->config.set.auth_timeout_ms);
	update_conn_state(s);
	if (postern_mod_shutting_down(be->mod)) {
		pop3_reply(s, "-ERR [SYS/TEMP] Server shutting down");
		postern_conn_close_after_flush(conn, "shutdown");
		return;
	}
	pop3_reply(s, "+OK %s", be->config.set.greeting);
}

void pop3_session_free(struct pop3_session *s)
{
	struct pop3be *be = s->be;

	pop3_login_cancel(s);
	pop3_update_cancel(s);
	pop3_sender_free(s);
	postern_timer_remove(&s->delay_timer);
	/* no QUIT: nothing is deleted; the worker closes the mailbox and
	 * releases the lock */
	pop3_drop_release(be, &s->drop);
	free(s->marks);
	free(s->user);
	free(s->login_user);
	free(s->delayed_reply);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		be->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	be->session_count--;
	free(s);
}

static void session_timeout(struct pop3_session *s)
{
	if (s->wait == POP3_WAIT_UPDATE || s->wait == POP3_WAIT_OPEN || s->wait == POP3_WAIT_AUTH) {
		/* our own work is slow, not the client: keep waiting */
		postern_conn_set_idle_timeout(s->conn, s->be->config.set.idle_timeout_ms);
		return;
	}
	postern_conn_log(s->conn, POSTERN_LOG_INFO, "idle timeout in %s state%s%s",
			 pop3_state_name(s->state), s->login_user != NULL ? ", user=" : "",
			 s->login_user != NULL ? s->login_user : "");
	pop3_reply(s, "-ERR Disconnected for inactivity");
	postern_conn_close_after_flush(s->conn, "idle timeout");
}

void pop3_session_event(struct postern_conn *conn, enum postern_conn_event event, void *ctx)
{
	struct pop3_session *s;

	if (event == POSTERN_CONN_OPEN) {
		session_open(ctx, conn);
		return;
	}
	s = ctx;
	switch (event) {
	case POSTERN_CONN_INPUT:
		process_input(s);
		break;
	case POSTERN_CONN_DRAINED:
		if (s->wait == POP3_WAIT_SEND)
			pop3_sender_pump(s);
		break;
	case POSTERN_CONN_TLS_READY:
		s->stls_pending = false;
		postern_conn_log(conn, POSTERN_LOG_DEBUG, "STLS: %s",
				 postern_conn_tls_description(conn));
		/* RFC 2595: the client starts over with CAPA; nothing to send */
		process_input(s);
		break;
	case POSTERN_CONN_TIMEOUT:
		session_timeout(s);
		break;
	case POSTERN_CONN_EOF:
		if (s->state == POP3_STATE_TRANSACTION && s->deleted_count > 0)
			postern_conn_log(conn, POSTERN_LOG_INFO,
					 "disconnected without QUIT: %u deletions not applied, "
					 "user=%s", s->deleted_count, s->login_user);
		break;
	case POSTERN_CONN_CLOSED:
		pop3_session_free(s);
		break;
	default:
		break;
	}
}
