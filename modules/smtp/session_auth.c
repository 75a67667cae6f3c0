/*
 * SMTP AUTH (RFC 4954) with the PLAIN (RFC 4616) and LOGIN mechanisms.
 * Passwords are checked by lib/auth's verifier pool on its worker threads;
 * the session waits with its input paused, and a failure is answered only
 * after the delay the failure tracker asks for (a core timer, never a
 * sleep). AUTH is offered only over TLS unless auth_without_tls is set.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <postern/sasl.h>
#include "smtp_private.h"

enum smtp_auth_mech {
	AUTH_MECH_NONE = 0,
	AUTH_MECH_PLAIN,
	AUTH_MECH_LOGIN,
};

/* "Username:" and "Password:" in base64, as every LOGIN client expects. */
#define LOGIN_USER_PROMPT "334 VXNlcm5hbWU6"
#define LOGIN_PASS_PROMPT "334 UGFzc3dvcmQ6"

static void auth_log(void *ctx, enum postern_auth_log_level level, const char *msg)
{
	struct smtp *smtp = ctx;
	enum postern_log_level map = level == POSTERN_AUTH_LOG_ERROR ? POSTERN_LOG_ERROR :
				     level == POSTERN_AUTH_LOG_WARNING ? POSTERN_LOG_WARNING :
				     level == POSTERN_AUTH_LOG_INFO ? POSTERN_LOG_INFO :
								       POSTERN_LOG_DEBUG;

	postern_log(smtp->mod, map, "%s", msg);
}

static void auth_done(struct postern_auth_reply *reply);

static void auth_fd_ready(struct postern_io *io, int fd, unsigned events, void *ctx)
{
	struct smtp *smtp = ctx;

	postern_auth_pool_collect(smtp->auth_pool, auth_done);
}

int smtp_auth_init(struct smtp *smtp, const char **error_r)
{
	const struct smtp_settings *set = &smtp->set;
	struct postern_passwd_file_settings pw = POSTERN_PASSWD_FILE_SETTINGS_INIT;
	struct postern_auth_failures_settings fs = POSTERN_AUTH_FAILURES_SETTINGS_INIT;
	struct postern_auth_pool_settings ps = POSTERN_AUTH_POOL_SETTINGS_INIT;

	if (set->auth.passwd_file == NULL)
		return 0;
	postern_auth_config_passwd_file(&set->auth, &pw);
	pw.log = auth_log;
	pw.log_ctx = smtp;
	if (postern_passwd_file_open(&pw, &smtp->userdb, error_r) < 0)
		return -1;
	postern_auth_config_failures(&set->auth, &fs);
	if (postern_auth_failures_create(&fs, &smtp->failures, error_r) < 0)
		return -1;
	postern_auth_config_pool(&set->auth, &ps);
	ps.failures = smtp->failures;
	ps.log = auth_log;
	ps.log_ctx = smtp;
	if (postern_auth_pool_create(smtp->userdb, &ps, &smtp->auth_pool, error_r) < 0)
		return -1;
	smtp->auth_io = postern_io_add(smtp->mod, postern_auth_pool_fd(smtp->auth_pool),
				       POSTERN_IO_READ, auth_fd_ready, smtp, error_r);
	return smtp->auth_io == NULL ? -1 : 0;
}

void smtp_auth_deinit(struct smtp *smtp)
{
	postern_io_remove(&smtp->auth_io);
	postern_auth_pool_free(&smtp->auth_pool);
	postern_auth_failures_free(&smtp->failures);
	postern_userdb_free(&smtp->userdb);
}

void smtp_auth_session_gone(struct smtp_session *session)
{
	if (session->smtp->auth_pool != NULL)
		postern_auth_pool_cancel(session->smtp->auth_pool, session);
}

static void auth_finish(struct smtp_session *session)
{
	session->auth_mech = AUTH_MECH_NONE;
	session->auth_step = 0;
	if (session->auth_login_user != NULL) {
		explicit_bzero(session->auth_login_user, strlen(session->auth_login_user));
		free(session->auth_login_user);
		session->auth_login_user = NULL;
	}
	if (session->mode == SMTP_MODE_AUTH)
		session->mode = SMTP_MODE_COMMAND;
}

static void delay_fired(struct postern_timer *timer, void *ctx)
{
	struct smtp_session *session = ctx;

	postern_timer_remove(&session->delay_timer);
	smtp_reply(session, "%s", session->delayed_reply);
	free(session->delayed_reply);
	session->delayed_reply = NULL;
	smtp_session_resume(session);
}

/* Answer a failure after `delay_ms`, input paused meanwhile. */
static void reply_later(struct smtp_session *session, unsigned delay_ms, const char *reply)
{
	if (delay_ms == 0) {
		smtp_reply(session, "%s", reply);
		smtp_session_resume(session);
		return;
	}
	free(session->delayed_reply);
	session->delayed_reply = smtp_strdup(reply);
	session->delay_timer = postern_timer_add(session->smtp->mod, delay_ms, false, delay_fired,
						 session);
}

static void auth_done(struct postern_auth_reply *reply)
{
	struct smtp_session *session = reply->ctx;
	struct smtp *smtp = session->smtp;

	switch (reply->result) {
	case POSTERN_AUTH_OK:
		free(session->auth_user);
		session->auth_user = smtp_strdup(reply->user_info != NULL &&
							 reply->user_info->name != NULL ?
						 reply->user_info->name :
						 reply->user);
		postern_conn_set_user(session->conn, session->auth_user);
		postern_conn_log(session->conn, POSTERN_LOG_INFO, "AUTH ok: user=<%s>",
				 session->auth_user);
		smtp->stats.auth_ok++;
		smtp_reply(session, "235 2.7.0 Authentication successful");
		smtp_session_resume(session);
		return;
	case POSTERN_AUTH_TEMPFAIL:
		reply_later(session, 0, "454 4.7.0 Temporary authentication failure");
		return;
	case POSTERN_AUTH_BLOCKED:
		smtp->stats.auth_failed++;
		reply_later(session, reply->delay_ms,
			    "454 4.7.0 Too many failed logins from your address, try again later");
		return;
	case POSTERN_AUTH_FAILED:
	case POSTERN_AUTH_UNKNOWN_USER:
	default:
		smtp->stats.auth_failed++;
		session->errors++;
		reply_later(session, reply->delay_ms, "535 5.7.8 Authentication credentials invalid");
		return;
	}
}

/* Hand user and password to the pool; the password is wiped by the caller. */
static void auth_verify(struct smtp_session *session, const char *user, const char *password)
{
	const char *error;

	auth_finish(session);
	if (*user == '\0' || strlen(password) > POSTERN_PASSWORD_MAX) {
		smtp_reply(session, "535 5.7.8 Authentication credentials invalid");
		smtp_session_error(session);
		return;
	}
	smtp_session_wait(session);
	postern_conn_set_state(session->conn, "AUTH");
	if (postern_auth_pool_submit(session->smtp->auth_pool, user, password,
				     postern_conn_peer_ip(session->conn), session, &error) < 0) {
		postern_conn_log(session->conn, POSTERN_LOG_WARNING, "AUTH: %s", error);
		smtp_reply(session, "454 4.7.0 Temporary authentication failure");
		smtp_session_resume(session);
	}
}

static bool text_clean(const unsigned char *text, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (text[i] < 32 || text[i] == 127)
			return false;
	return true;
}

/* PLAIN: authzid NUL authcid NUL password. */
static void auth_plain(struct smtp_session *session, unsigned char *data, size_t len)
{
	unsigned char *nul1 = memchr(data, '\0', len);
	unsigned char *nul2 = nul1 != NULL ? memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - data)) : NULL;

	if (nul2 == NULL || memchr(nul2 + 1, '\0', len - (size_t)(nul2 + 1 - data)) != NULL) {
		auth_finish(session);
		smtp_reply(session, "501 5.5.2 Malformed PLAIN response");
		smtp_session_error(session);
		return;
	}
	const char *authzid = (const char *)data, *authcid = (const char *)nul1 + 1;
	const char *password = (const char *)nul2 + 1;

	if (!text_clean((const unsigned char *)authzid, strlen(authzid)) ||
	    !text_clean((const unsigned char *)authcid, strlen(authcid)) ||
	    (*authzid != '\0' && strcmp(authzid, authcid) != 0)) {
		/* No proxy authorization: only as oneself. */
		auth_finish(session);
		smtp_reply(session, "535 5.7.8 Authentication credentials invalid");
		smtp_session_error(session);
		return;
	}
	auth_verify(session, authcid, password);
}

/* One SASL response, decoded. */
static void auth_step(struct smtp_session *session, unsigned char *data, size_t len)
{
	if (session->auth_mech == AUTH_MECH_PLAIN) {
		auth_plain(session, data, len);
		return;
	}
	if (memchr(data, '\0', len) != NULL || !text_clean(data, len)) {
		auth_finish(session);
		smtp_reply(session, "501 5.5.2 Malformed LOGIN response");
		smtp_session_error(session);
		return;
	}
	if (session->auth_step == 0) {
		session->auth_login_user = smtp_strdup((const char *)data);
		session->auth_step = 1;
		session->mode = SMTP_MODE_AUTH;
		smtp_reply(session, LOGIN_PASS_PROMPT);
		return;
	}
	char *user = session->auth_login_user;

	session->auth_login_user = NULL;
	auth_verify(session, user, (const char *)data);
	explicit_bzero(user, strlen(user));
	free(user);
}

/* Decode a response line (or initial response) and go on. */
static void auth_decode(struct smtp_session *session, const char *text, size_t len)
{
	size_t size = len / 4 * 3 + 1;
	unsigned char *buf = smtp_alloc(size);
	long decoded;

	if (len == 1 && text[0] == '=')
		decoded = 0; /* RFC 4954 4: an empty initial response */
	else
		decoded = postern_base64_decode(text, len, buf, size);
	if (decoded < 0) {
		auth_finish(session);
		smtp_reply(session, "501 5.5.2 Cannot decode the response");
		smtp_session_error(session);
	} else {
		buf[decoded] = '\0';
		auth_step(session, buf, (size_t)decoded);
	}
	explicit_bzero(buf, size);
	free(buf);
}

void smtp_auth_response(struct smtp_session *session, char *line, size_t len)
{
	if (line == NULL) {
		/* An overlong response: the exchange is over. */
		auth_finish(session);
		return;
	}
	if (len == 1 && line[0] == '*') {
		auth_finish(session);
		smtp_reply(session, "501 5.0.0 Authentication cancelled");
		return;
	}
	auth_decode(session, line, len);
	explicit_bzero(line, len);
}

void smtp_cmd_auth(struct smtp_session *session, char *args)
{
	struct smtp *smtp = session->smtp;
	char *mech = args, *initial = NULL;
	char *space = strchr(args, ' ');

	if (space != NULL) {
		*space = '\0';
		initial = space + 1;
	}
	if (session->auth_user != NULL) {
		smtp_reply(session, "503 5.5.1 Error: already authenticated");
		smtp_session_error(session);
		return;
	}
	if (!smtp_session_auth_offered(session)) {
		if (smtp->auth_pool != NULL && !postern_conn_is_tls(session->conn) &&
		    (smtp_session_is_submission(session) || smtp->set.smtp_auth))
			smtp_reply(session, "538 5.7.11 Encryption required for requested "
					    "authentication mechanism");
		else
			smtp_reply(session, "502 5.5.1 AUTH not available");
		smtp_session_error(session);
		return;
	}
	if (strcasecmp(mech, "PLAIN") == 0) {
		session->auth_mech = AUTH_MECH_PLAIN;
	} else if (strcasecmp(mech, "LOGIN") == 0) {
		session->auth_mech = AUTH_MECH_LOGIN;
	} else {
		smtp_reply(session, "504 5.5.4 Unrecognized authentication type");
		smtp_session_error(session);
		return;
	}
	session->auth_step = 0;
	if (initial != NULL) {
		if (strcmp(initial, "*") == 0) {
			auth_finish(session);
			smtp_reply(session, "501 5.0.0 Authentication cancelled");
			return;
		}
		auth_decode(session, initial, strlen(initial));
		explicit_bzero(initial, strlen(initial));
		return;
	}
	session->mode = SMTP_MODE_AUTH;
	postern_conn_set_state(session->conn, "AUTH");
	smtp_reply(session, "%s", session->auth_mech == AUTH_MECH_PLAIN ? "334 " :
									    LOGIN_USER_PROMPT);
}
