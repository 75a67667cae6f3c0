/*
 * POP3 before login, as the front-end answers it itself: CAPA, STLS,
 * USER/PASS, AUTH PLAIN (initial response or continuation, "*" cancels),
 * XCLIENT from trusted front-ends, NOOP, QUIT. Everything else waits for
 * the login; after it, the client talks to its back-end through the relay
 * and nothing here sees its commands.
 */
#include "config.h"

#include <string.h>

#include "pop3fe.h"

static struct pop3fe_session *pop3fe_session(struct postern_proxy_session *session)
{
	return postern_proxy_session_data(session);
}

static void pop3fe_forget_user(struct pop3fe_session *ps)
{
	explicit_bzero(ps->user, sizeof(ps->user));
	ps->have_user = false;
	ps->state = POP3FE_STATE_AUTHORIZATION;
}

/* An answer that also counts as a bad command. */
static void pop3fe_bad(struct postern_proxy_session *session, const char *reply)
{
	postern_proxy_printf(session, "-ERR %s\r\n", reply);
	(void)postern_proxy_bad_command(session);
}

void pop3fe_client_greet(struct postern_proxy_session *session)
{
	postern_proxy_printf(session, "+OK Postern POP3 ready.\r\n");
}

void pop3fe_client_tls_ready(struct postern_proxy_session *session)
{
	/* RFC 2595: forget what was said in clear. */
	pop3fe_forget_user(pop3fe_session(session));
}

void pop3fe_client_reply(struct postern_proxy_session *session, enum postern_proxy_reply kind,
			 const char *text)
{
	pop3fe_forget_user(pop3fe_session(session));
	switch (kind) {
	case POSTERN_PROXY_REPLY_AUTH_FAILED:
		postern_proxy_printf(session, "-ERR [AUTH] Authentication failed.\r\n");
		break;
	case POSTERN_PROXY_REPLY_BLOCKED:
		postern_proxy_printf(session,
				     "-ERR [AUTH] Too many failed logins, try again later.\r\n");
		break;
	case POSTERN_PROXY_REPLY_LOST:
		postern_proxy_printf(session, "-ERR [SYS/TEMP] back-end connection lost\r\n");
		break;
	case POSTERN_PROXY_REPLY_IDLE:
		postern_proxy_printf(session, "-ERR Disconnected for inactivity.\r\n");
		break;
	case POSTERN_PROXY_REPLY_SHUTDOWN:
		postern_proxy_printf(session, "-ERR [SYS/TEMP] Server shutting down.\r\n");
		break;
	case POSTERN_PROXY_REPLY_TEMPFAIL:
	default:
		postern_proxy_printf(session, "-ERR [SYS/TEMP] %s\r\n",
				     text != NULL ? text : "Temporary failure, try again later");
		break;
	}
}

static void pop3fe_capa(struct postern_proxy_session *session)
{
	postern_proxy_printf(session, "+OK Capability list follows\r\n"
				      "TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n"
				      "PIPELINING\r\n");
	if (postern_proxy_plaintext_allowed(session))
		postern_proxy_printf(session, "USER\r\nSASL PLAIN\r\n");
	if (postern_proxy_tls_available(session))
		postern_proxy_printf(session, "STLS\r\n");
	postern_proxy_printf(session, "IMPLEMENTATION Postern\r\n.\r\n");
}

static void pop3fe_stls(struct postern_proxy_session *session)
{
	const char *error;

	if (!postern_proxy_tls_available(session)) {
		pop3fe_bad(session, "TLS not available.");
		return;
	}
	postern_proxy_printf(session, "+OK Begin TLS negotiation now.\r\n");
	if (postern_proxy_starttls(session, &error) < 0) {
		postern_proxy_log(session, POSTERN_LOG_ERROR, "STLS: %s", error);
		postern_proxy_quit(session, "STLS failed");
	}
}

/* A user name or password that could smuggle a command to the back-end
 * (a CR or LF decoded from SASL) is refused before anything else. */
static bool pop3fe_clean(const char *text)
{
	return strpbrk(text, "\r\n") == NULL;
}

static void pop3fe_login(struct postern_proxy_session *session, const char *user,
			 const char *password)
{
	if (user[0] == '\0' || strlen(user) > POP3FE_USER_MAX || !pop3fe_clean(user) ||
	    !pop3fe_clean(password)) {
		postern_proxy_printf(session, "-ERR [AUTH] Authentication failed.\r\n");
		(void)postern_proxy_bad_command(session);
		return;
	}
	postern_proxy_login(session, user, password);
}

static bool pop3fe_plaintext_ok(struct postern_proxy_session *session)
{
	if (postern_proxy_plaintext_allowed(session))
		return true;
	pop3fe_bad(session, "[AUTH] Plaintext authentication disallowed on non-secure "
			    "connections.");
	return false;
}

static void pop3fe_user(struct postern_proxy_session *session, const struct pop3fe_command *cmd)
{
	struct pop3fe_session *ps = pop3fe_session(session);

	if (!pop3fe_plaintext_ok(session))
		return;
	if (cmd->rest_len == 0 || cmd->rest_len > POP3FE_USER_MAX) {
		pop3fe_bad(session, "Bad user name.");
		return;
	}
	memcpy(ps->user, cmd->rest, cmd->rest_len);
	ps->user[cmd->rest_len] = '\0';
	ps->have_user = true;
	postern_proxy_printf(session, "+OK\r\n");
}

static void pop3fe_pass(struct postern_proxy_session *session, const struct pop3fe_command *cmd)
{
	struct pop3fe_session *ps = pop3fe_session(session);
	char password[POP3FE_PASSWORD_MAX + 1];

	if (!ps->have_user) {
		pop3fe_bad(session, "No user name given.");
		return;
	}
	if (cmd->rest_len == 0 || cmd->rest_len > POP3FE_PASSWORD_MAX) {
		pop3fe_forget_user(ps);
		pop3fe_bad(session, "[AUTH] Authentication failed.");
		return;
	}
	memcpy(password, cmd->rest, cmd->rest_len);
	password[cmd->rest_len] = '\0';
	pop3fe_login(session, ps->user, password);
	explicit_bzero(password, sizeof(password));
	pop3fe_forget_user(ps);
}

static void pop3fe_auth_plain_response(struct postern_proxy_session *session, const char *data,
				       size_t len)
{
	char buf[POSTERN_SASL_PLAIN_MAX + 1];
	const char *user, *password;

	pop3fe_session(session)->state = POP3FE_STATE_AUTHORIZATION;
	if (len == 1 && data[0] == '*') {
		postern_proxy_printf(session, "-ERR [AUTH] Authentication cancelled.\r\n");
		return;
	}
	switch (postern_sasl_plain_decode(data, len, buf, &user, &password)) {
	case POSTERN_SASL_PLAIN_OK:
		pop3fe_login(session, user, password);
		break;
	case POSTERN_SASL_PLAIN_BAD_BASE64:
		pop3fe_bad(session, "[AUTH] Invalid base64 data.");
		break;
	case POSTERN_SASL_PLAIN_AUTHZID:
		pop3fe_bad(session, "[AUTH] Authorization identity not allowed.");
		break;
	case POSTERN_SASL_PLAIN_MALFORMED:
	default:
		pop3fe_bad(session, "[AUTH] Invalid PLAIN response.");
		break;
	}
	explicit_bzero(buf, sizeof(buf));
}

static void pop3fe_auth(struct postern_proxy_session *session, const struct pop3fe_command *cmd)
{
	if (cmd->argc == 0) {
		postern_proxy_printf(session, "+OK\r\nPLAIN\r\n.\r\n");
		return;
	}
	if (strcasecmp(cmd->argv[0], "PLAIN") != 0) {
		pop3fe_bad(session, "Unsupported authentication mechanism.");
		return;
	}
	if (!pop3fe_plaintext_ok(session))
		return;
	if (cmd->argc > 2) {
		pop3fe_bad(session, "Too many arguments.");
		return;
	}
	if (cmd->argc == 1) {
		pop3fe_session(session)->state = POP3FE_STATE_AUTH_PLAIN;
		postern_proxy_printf(session, "+ \r\n");
		return;
	}
	/* RFC 5034: "=" is an empty initial response; PLAIN cannot be empty. */
	pop3fe_auth_plain_response(session, cmd->argv[1], strlen(cmd->argv[1]));
}

static void pop3fe_xclient(struct postern_proxy_session *session, const struct pop3fe_command *cmd)
{
	struct pop3fe_session *ps = pop3fe_session(session);
	struct pop3fe_xclient xc;
	const char *error;

	/* To anyone else it is an unknown command. */
	if (!postern_proxy_peer_trusted(session)) {
		pop3fe_bad(session, "Unknown command.");
		return;
	}
	if (ps->have_user || ps->xclient_seen) {
		pop3fe_bad(session, "XCLIENT only once and before login.");
		return;
	}
	if (pop3fe_xclient_parse(cmd->argv, cmd->argc, &xc, &error) < 0) {
		pop3fe_bad(session, error);
		return;
	}
	if (postern_proxy_set_client(session, xc.addr, xc.port, xc.hop, &error) < 0) {
		postern_proxy_log(session, POSTERN_LOG_ERROR, "XCLIENT ADDR=%s HOP=%u refused: %s",
				  xc.addr, xc.hop, error);
		postern_proxy_printf(session, "-ERR [SYS/PERM] %s\r\n", error);
		postern_proxy_quit(session, error);
		return;
	}
	ps->xclient_seen = true;
	postern_proxy_printf(session, "+OK\r\n");
}

void pop3fe_client_line(struct postern_proxy_session *session, const struct postern_line *line)
{
	struct pop3fe_session *ps = pop3fe_session(session);
	struct pop3fe_command cmd;
	enum pop3fe_parse_result result = pop3fe_parse(line->data, line->len, &cmd);

	if (ps->state == POP3FE_STATE_AUTH_PLAIN) {
		if (result != POP3FE_PARSE_OK) {
			ps->state = POP3FE_STATE_AUTHORIZATION;
			pop3fe_bad(session, "[AUTH] Invalid response.");
			return;
		}
		pop3fe_auth_plain_response(session, line->data, line->len);
		return;
	}
	if (result == POP3FE_PARSE_BAD_CHARS) {
		pop3fe_bad(session, "Invalid characters in command.");
		return;
	}
	if (result == POP3FE_PARSE_TOO_MANY) {
		pop3fe_bad(session, "Too many arguments.");
		return;
	}
	switch (cmd.verb) {
	case POP3FE_CAPA:
		pop3fe_capa(session);
		break;
	case POP3FE_STLS:
		pop3fe_stls(session);
		break;
	case POP3FE_USER:
		pop3fe_user(session, &cmd);
		break;
	case POP3FE_PASS:
		pop3fe_pass(session, &cmd);
		break;
	case POP3FE_AUTH:
		pop3fe_auth(session, &cmd);
		break;
	case POP3FE_XCLIENT:
		pop3fe_xclient(session, &cmd);
		break;
	case POP3FE_NOOP:
		postern_proxy_printf(session, "+OK\r\n");
		break;
	case POP3FE_QUIT:
		postern_proxy_printf(session, "+OK Logging out.\r\n");
		postern_proxy_quit(session, "quit");
		break;
	case POP3FE_LATER:
		pop3fe_bad(session, "Log in first.");
		break;
	case POP3FE_EMPTY:
		pop3fe_bad(session, "Empty command.");
		break;
	case POP3FE_UNKNOWN:
	default:
		pop3fe_bad(session, "Unknown command.");
		break;
	}
	explicit_bzero(cmd.buf, sizeof(cmd.buf));
}

void pop3fe_client_line_too_long(struct postern_proxy_session *session)
{
	pop3fe_session(session)->state = POP3FE_STATE_AUTHORIZATION;
	pop3fe_bad(session, "Line too long.");
}
