/*
 * The login dialogue with a POP3 back-end, for the proxy library:
 *
 *   <- +OK greeting
 *   -> XCLIENT ADDR=<client ip> PORT=<client port> HOP=<n>   (backend_xclient)
 *   <- +OK
 *   -> USER name / PASS password      or      AUTH PLAIN <base64>
 *   <- +OK ...   relayed to the client as the answer to its own login
 *
 * What an answer means (RFC 2449/3206 response codes):
 *   -ERR in the greeting, -ERR [SYS/TEMP], a refused XCLIENT: try the
 *     next back-end (this one stays up);
 *   anything that is not POP3 at all: the back-end is broken, down;
 *   -ERR [IN-USE], -ERR [SYS/PERM]: the user's own problem, passed on;
 *   -ERR [AUTH] or a bare -ERR to credentials the front-end verified: a
 *     configuration mismatch (logged loudly; the client gets [SYS/TEMP]).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "pop3fe.h"

bool pop3fe_backend_greeting_ok(const struct postern_line *line)
{
	return (line->flags & POSTERN_LINE_HAS_NUL) == 0 &&
	       pop3fe_starts(line->data, line->len, "+OK");
}

static void pop3fe_send_login(struct postern_proxy_session *session, struct pop3fe_session *ps)
{
	const char *user = postern_proxy_user(session);

	if (postern_proxy_backend_login_plain(session)) {
		char b64[POP3FE_PLAIN_B64_MAX];

		/* Names and passwords were checked against these limits. */
		if (pop3fe_plain_encode(user, postern_proxy_password(session), b64,
					sizeof(b64)) < 0)
			b64[0] = '\0';
		postern_proxy_backend_printf(session, "AUTH PLAIN %s\r\n", b64);
		explicit_bzero(b64, sizeof(b64));
		ps->be_state = POP3FE_BE_AUTH;
	} else {
		postern_proxy_backend_printf(session, "USER %s\r\n", user);
		ps->be_state = POP3FE_BE_USER;
	}
}

void pop3fe_backend_open(struct postern_proxy_session *session)
{
	struct pop3fe_session *ps = postern_proxy_session_data(session);

	ps->be_state = POP3FE_BE_GREETING;
}

static enum postern_proxy_step pop3fe_logged_in(struct postern_proxy_session *session,
						const struct postern_line *line)
{
	enum postern_proxy_step step = pop3fe_login_reply(line->data, line->len);

	/* The back-end's answer is the answer to the client's PASS/AUTH. */
	if (step == POSTERN_PROXY_STEP_LOGGED_IN || step == POSTERN_PROXY_STEP_PASS_ON) {
		postern_proxy_write(session, line->data, line->len);
		postern_proxy_write(session, "\r\n", 2);
	}
	return step;
}

enum postern_proxy_step pop3fe_backend_line(struct postern_proxy_session *session,
					    const struct postern_line *line)
{
	struct pop3fe_session *ps = postern_proxy_session_data(session);
	const char *data = line->data;
	size_t len = line->len;

	if ((line->flags & POSTERN_LINE_HAS_NUL) != 0)
		return POSTERN_PROXY_STEP_BROKEN;
	switch (ps->be_state) {
	case POP3FE_BE_GREETING:
		if (pop3fe_starts(data, len, "-ERR"))
			return POSTERN_PROXY_STEP_FAILOVER;
		if (!pop3fe_starts(data, len, "+OK"))
			return POSTERN_PROXY_STEP_BROKEN;
		if (postern_proxy_xclient_enabled(session)) {
			unsigned port = postern_proxy_client_port(session);

			if (port != 0)
				postern_proxy_backend_printf(session, "XCLIENT ADDR=%s PORT=%u HOP=%u\r\n",
							     postern_proxy_client_ip(session), port,
							     postern_proxy_next_hop(session));
			else
				postern_proxy_backend_printf(session, "XCLIENT ADDR=%s HOP=%u\r\n",
							     postern_proxy_client_ip(session),
							     postern_proxy_next_hop(session));
			ps->be_state = POP3FE_BE_XCLIENT;
			return POSTERN_PROXY_STEP_CONTINUE;
		}
		pop3fe_send_login(session, ps);
		return POSTERN_PROXY_STEP_CONTINUE;
	case POP3FE_BE_XCLIENT:
		if (pop3fe_starts(data, len, "+OK")) {
			pop3fe_send_login(session, ps);
			return POSTERN_PROXY_STEP_CONTINUE;
		}
		if (pop3fe_starts(data, len, "-ERR")) {
			postern_proxy_log(session, POSTERN_LOG_ERROR,
					  "a back-end refused XCLIENT: is this front-end in its "
					  "trusted list? (%.*s)", (int)(len > 120 ? 120 : len), data);
			return POSTERN_PROXY_STEP_FAILOVER;
		}
		return POSTERN_PROXY_STEP_BROKEN;
	case POP3FE_BE_USER:
		if (pop3fe_starts(data, len, "+OK")) {
			postern_proxy_backend_printf(session, "PASS %s\r\n",
						     postern_proxy_password(session));
			ps->be_state = POP3FE_BE_PASS;
			return POSTERN_PROXY_STEP_CONTINUE;
		}
		/* An -ERR to USER means what it would mean to PASS. */
		return pop3fe_logged_in(session, line);
	case POP3FE_BE_PASS:
	case POP3FE_BE_AUTH:
		return pop3fe_logged_in(session, line);
	}
	return POSTERN_PROXY_STEP_BROKEN;
}
