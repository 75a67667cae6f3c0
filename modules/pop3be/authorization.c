/*
 * The AUTHORIZATION state: CAPA, USER/PASS, AUTH PLAIN, STLS and XCLIENT,
 * and the login that follows a password: the auth pool checks it on its
 * threads, a failure is answered after the failure tracker's delay (a core
 * timer), a success opens the mailbox on a worker (lock, sync, snapshot) and
 * enters TRANSACTION.
 *
 * The log says who failed from where (the XCLIENT address when a trusted
 * front-end gave one) and never the password; the client learns only
 * "[AUTH] Authentication failed", whatever the reason.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server.h"

struct pop3_open_job {
	struct pop3_job job;
	struct pop3be *be;
	struct pop3_session *s;     /* NULL once cancelled */
	char *root;
	enum pop3_drop_status status;
	char *error;
	struct pop3_maildrop *drop;
};

struct pop3_close_job {
	struct pop3_job job;
	struct pop3_maildrop *drop;
};

bool pop3_plaintext_allowed(const struct pop3_session *s)
{
	return s->listener->plaintext_auth || postern_conn_is_tls(s->conn);
}

static bool stls_available(const struct pop3_session *s)
{
	return s->be->tls != NULL && !postern_conn_is_tls(s->conn) && !s->listener->implicit_tls;
}

static bool peer_trusted(const struct pop3_session *s)
{
	const struct pop3_config *config = &s->be->config;

	return postern_cidr_match(config->trusted, config->trusted_count,
				  postern_conn_peer_ip(s->conn));
}

void pop3_cmd_capa(struct pop3_session *s, struct pop3_command *cmd)
{
	(void)cmd;
	pop3_reply(s, "+OK Capability list follows");
	pop3_reply(s, "TOP");
	pop3_reply(s, "UIDL");
	pop3_reply(s, "RESP-CODES");
	pop3_reply(s, "AUTH-RESP-CODE");
	pop3_reply(s, "PIPELINING");
	if (s->state == POP3_STATE_AUTHORIZATION) {
		if (pop3_plaintext_allowed(s)) {
			pop3_reply(s, "USER");
			pop3_reply(s, "SASL PLAIN");
		}
		if (stls_available(s))
			pop3_reply(s, "STLS");
		if (peer_trusted(s) && !s->xclient_done)
			pop3_reply(s, "XCLIENT");
	}
	pop3_reply(s, "IMPLEMENTATION Postern");
	pop3_reply(s, ".");
}

static bool refuse_plaintext(struct pop3_session *s)
{
	if (pop3_plaintext_allowed(s))
		return false;
	pop3_reply(s, "-ERR [AUTH] Plaintext authentication disallowed on non-secure "
		      "connections: use STLS");
	pop3_session_bad_command(s);
	return true;
}

void pop3_cmd_user(struct pop3_session *s, struct pop3_command *cmd)
{
	if (refuse_plaintext(s))
		return;
	free(s->user);
	s->user = pop3_strdup(cmd->args[0]);
	/* the same answer for every name: USER must not tell who exists */
	pop3_reply(s, "+OK");
}

/* ---- the login ------------------------------------------------------------------ */

static void login_start(struct pop3_session *s, const char *user, const char *password,
			const char *method)
{
	const char *error;

	s->auth_method = method;
	if (postern_auth_pool_submit(s->be->auth_pool, user, password, s->rip, s, &error) < 0) {
		postern_conn_log(s->conn, POSTERN_LOG_WARNING, "auth pool: %s", error);
		pop3_reply(s, "-ERR [SYS/TEMP] Authentication service busy, try again later");
		return;
	}
	s->auth_submitted = true;
	pop3_session_wait(s, POP3_WAIT_AUTH);
}

void pop3_cmd_pass(struct pop3_session *s, struct pop3_command *cmd)
{
	if (refuse_plaintext(s))
		return;
	if (s->user == NULL) {
		pop3_reply(s, "-ERR USER first");
		pop3_session_bad_command(s);
		return;
	}

	char *user = s->user;

	s->user = NULL;
	login_start(s, user, cmd->args[0], "USER");
	free(user);
}

static void plain_response(struct pop3_session *s, const char *b64, size_t len)
{
	char buf[POSTERN_SASL_PLAIN_MAX + 1];
	const char *user, *password;
	enum postern_sasl_plain_result result;

	/* RFC 5034: "=" is an empty initial response */
	if (len == 1 && b64[0] == '=')
		len = 0;
	result = postern_sasl_plain_decode(b64, len, buf, &user, &password);
	switch (result) {
	case POSTERN_SASL_PLAIN_OK:
		login_start(s, user, password, "PLAIN");
		break;
	case POSTERN_SASL_PLAIN_BAD_BASE64:
		pop3_reply(s, "-ERR Invalid base64 in AUTH response");
		pop3_session_bad_command(s);
		break;
	case POSTERN_SASL_PLAIN_MALFORMED:
		pop3_reply(s, "-ERR Malformed AUTH PLAIN response");
		pop3_session_bad_command(s);
		break;
	case POSTERN_SASL_PLAIN_AUTHZID:
		pop3_reply(s, "-ERR [AUTH] Authorization identity must be empty or the user");
		pop3_session_bad_command(s);
		break;
	}
	explicit_bzero(buf, sizeof(buf));
}

void pop3_cmd_auth(struct pop3_session *s, struct pop3_command *cmd)
{
	if (cmd->argc == 0) {
		/* the pre-CAPA way to list mechanisms (RFC 1734 clients) */
		pop3_reply(s, "+OK");
		if (pop3_plaintext_allowed(s))
			pop3_reply(s, "PLAIN");
		pop3_reply(s, ".");
		return;
	}
	if (strcasecmp(cmd->args[0], "PLAIN") != 0) {
		pop3_reply(s, "-ERR Unsupported authentication mechanism");
		pop3_session_bad_command(s);
		return;
	}
	if (refuse_plaintext(s))
		return;
	if (cmd->argc == 2) {
		plain_response(s, cmd->args[1], strlen(cmd->args[1]));
		return;
	}
	postern_conn_write(s->conn, "+ \r\n", 4);
	pop3_session_wait(s, POP3_WAIT_SASL);
}

void pop3_sasl_response(struct pop3_session *s, char *line, size_t len)
{
	/* the exchange is over whatever the line says: commands follow */
	s->wait = POP3_WAIT_NONE;
	if (len == 1 && line[0] == '*') {
		pop3_reply(s, "-ERR Authentication cancelled");
		pop3_session_resume(s);
		return;
	}
	plain_response(s, line, len);
	if (s->wait == POP3_WAIT_NONE)
		pop3_session_resume(s);
}

/* ---- answers after the password check ------------------------------------------- */

static void delay_fired(struct postern_timer *timer, void *ctx)
{
	struct pop3_session *s = ctx;
	char *reply = s->delayed_reply;

	(void)timer;
	postern_timer_remove(&s->delay_timer);
	s->delayed_reply = NULL;
	pop3_reply(s, "%s", reply);
	free(reply);
	if (s->delayed_close) {
		pop3_reply(s, "-ERR Too many authentication failures, closing connection");
		postern_conn_close_after_flush(s->conn, "too many authentication failures");
		return;
	}
	pop3_session_resume(s);
}

/* Answer a failed login, after `delay_ms` when there is one. */
static void login_failed(struct pop3_session *s, const char *reply, unsigned delay_ms,
			 bool count)
{
	struct pop3be *be = s->be;

	if (count) {
		s->auth_failures++;
		be->stats.login_failures++;
	}
	s->delayed_close = s->auth_failures >= be->config.set.max_auth_attempts;
	s->wait = POP3_WAIT_NONE;
	if (delay_ms == 0) {
		pop3_reply(s, "%s", reply);
		if (s->delayed_close) {
			postern_conn_close_after_flush(s->conn, "too many authentication failures");
			return;
		}
		pop3_session_resume(s);
		return;
	}
	s->delayed_reply = pop3_strdup(reply);
	s->delay_timer = postern_timer_add(be->mod, delay_ms, false, delay_fired, s);
	pop3_session_wait(s, POP3_WAIT_AUTH_DELAY);
}

/* Where the user's Maildir is: the userdb's mail location (relative paths
 * against base_dir, like every path in the config), else mail_root. */
static char *maildir_of(struct pop3_session *s, const struct postern_auth_user *user)
{
	const char *root = s->be->config.set.mail_root;

	if (user->maildir != NULL && user->maildir[0] != '\0')
		return postern_mod_path(s->be->mod, user->maildir);
	if (root == NULL)
		return NULL;

	const char *at = strrchr(user->name, '@');
	size_t local_len = at == NULL ? strlen(user->name) : (size_t)(at - user->name);
	const char *domain = at == NULL ? "" : at + 1;
	char *path = NULL;

	/* the name becomes path components: refuse anything that could
	 * leave mail_root */
	if (local_len == 0 || user->name[0] == '.' || strchr(user->name, '/') != NULL ||
	    domain[0] == '.')
		return NULL;
	if (*domain == '\0') {
		if (asprintf(&path, "%s/%.*s/Maildir", root, (int)local_len, user->name) < 0)
			abort();
	} else if (asprintf(&path, "%s/%s/%.*s/Maildir", root, domain, (int)local_len,
			    user->name) < 0) {
		abort();
	}
	return path;
}

static void open_run(struct pop3_job *job)
{
	struct pop3_open_job *oj = (struct pop3_open_job *)job;

	oj->status = pop3_maildrop_open(&oj->be->drop_set, oj->root, &oj->drop, &oj->error);
}

static void close_run(struct pop3_job *job)
{
	pop3_maildrop_close(&((struct pop3_close_job *)job)->drop);
}

static void close_done(struct pop3_job *job)
{
	free(job);
}

void pop3_drop_release(struct pop3be *be, struct pop3_maildrop **drop)
{
	struct pop3_close_job *cj;

	if (*drop == NULL)
		return;
	cj = pop3_zalloc(sizeof(*cj));
	cj->job.run = close_run;
	cj->job.done = close_done;
	cj->drop = *drop;
	*drop = NULL;
	pop3_workers_submit(be->workers, &cj->job);
}

static void enter_transaction(struct pop3_session *s, struct pop3_maildrop *drop)
{
	struct pop3be *be = s->be;

	s->drop = drop;
	s->marks = pop3_zalloc(drop->count == 0 ? 1 : drop->count);
	s->state = POP3_STATE_TRANSACTION;
	be->stats.logins++;
	postern_conn_set_user(s->conn, s->login_user);
	postern_conn_set_idle_timeout(s->conn, be->config.set.idle_timeout_ms);
	postern_conn_log(s->conn, POSTERN_LOG_INFO,
			 "login: user=<%s> method=%s rip=%s messages=%u octets=%llu%s",
			 s->login_user, s->auth_method, s->rip, drop->count,
			 (unsigned long long)drop->total_octets, postern_conn_is_tls(s->conn) ?
			 " tls" : "");
	pop3_reply(s, "+OK Logged in, %u messages (%llu octets)", drop->count,
		   (unsigned long long)drop->total_octets);
	pop3_session_resume(s);
}

static void open_done(struct pop3_job *job)
{
	struct pop3_open_job *oj = (struct pop3_open_job *)job;
	struct pop3_session *s = oj->s;

	if (job->cancelled || s == NULL) {
		/* the session went away: close on a worker (releases the lock) */
		pop3_drop_release(oj->be, &oj->drop);
	} else {
		s->open_job = NULL;
		s->wait = POP3_WAIT_NONE;
		switch (oj->status) {
		case POP3_DROP_OK:
			enter_transaction(s, oj->drop);
			oj->drop = NULL;
			break;
		case POP3_DROP_IN_USE:
			postern_conn_log(s->conn, POSTERN_LOG_INFO,
					 "mailbox in use: user=<%s> rip=%s", s->login_user, s->rip);
			pop3_reply(s, "-ERR [IN-USE] Mailbox is locked by another POP3 session");
			break;
		case POP3_DROP_TEMP:
		case POP3_DROP_PERM:
			postern_conn_log(s->conn, POSTERN_LOG_ERROR, "cannot open mailbox of "
					 "user=<%s> (%s): %s", s->login_user, oj->root,
					 oj->error != NULL ? oj->error : "?");
			pop3_reply(s, "-ERR [%s] Cannot open the mailbox, try again later",
				   oj->status == POP3_DROP_PERM ? "SYS/PERM" : "SYS/TEMP");
			break;
		}
		if (s->state == POP3_STATE_AUTHORIZATION) {
			free(s->login_user);
			s->login_user = NULL;
			pop3_session_resume(s);
		}
	}
	pop3_maildrop_close(&oj->drop);
	free(oj->root);
	free(oj->error);
	free(oj);
}

static void login_ok(struct pop3_session *s, struct postern_auth_user *user)
{
	char *root = maildir_of(s, user);
	char name[300];

	s->login_user = pop3_strdup(user->name);
	if (root == NULL) {
		postern_conn_log(s->conn, POSTERN_LOG_ERROR,
				 "user=<%s> has no mail location and mail_root is not set (or the "
				 "name cannot be a path)", pop3_safe(user->name, name, sizeof(name)));
		free(s->login_user);
		s->login_user = NULL;
		s->wait = POP3_WAIT_NONE;
		pop3_reply(s, "-ERR [SYS/PERM] No mailbox for this user");
		pop3_session_resume(s);
		return;
	}

	struct pop3_open_job *oj = pop3_zalloc(sizeof(*oj));

	oj->job.run = open_run;
	oj->job.done = open_done;
	oj->be = s->be;
	oj->s = s;
	oj->root = root;
	s->open_job = oj;
	s->wait = POP3_WAIT_OPEN;
	postern_conn_set_state(s->conn, "OPENING");
	pop3_workers_submit(s->be->workers, &oj->job);
}

static void auth_done(struct postern_auth_reply *reply)
{
	struct pop3_session *s = reply->ctx;
	char name[300];

	s->auth_submitted = false;
	switch (reply->result) {
	case POSTERN_AUTH_OK:
		login_ok(s, reply->user_info);
		return;
	case POSTERN_AUTH_FAILED:
	case POSTERN_AUTH_UNKNOWN_USER:
		break;
	case POSTERN_AUTH_BLOCKED:
		postern_conn_log(s->conn, POSTERN_LOG_NOTICE,
				 "login refused: user=<%s> method=%s rip=%s: address blocked after "
				 "too many failures", pop3_safe(reply->user, name, sizeof(name)),
				 s->auth_method, s->rip);
		login_failed(s, "-ERR [LOGIN-DELAY] Too many failed logins from your address, "
			     "try again later", reply->delay_ms, true);
		return;
	case POSTERN_AUTH_TEMPFAIL:
		postern_conn_log(s->conn, POSTERN_LOG_ERROR,
				 "login temporary failure: user=<%s> rip=%s: %s",
				 pop3_safe(reply->user, name, sizeof(name)), s->rip,
				 reply->error != NULL ? reply->error : "?");
		login_failed(s, "-ERR [SYS/TEMP] Temporary authentication failure",
			     reply->delay_ms, false);
		return;
	}
	postern_conn_log(s->conn, POSTERN_LOG_INFO,
			 "login failed: user=<%s> method=%s rip=%s reason=%s delay=%ums",
			 pop3_safe(reply->user, name, sizeof(name)), s->auth_method, s->rip,
			 postern_auth_result_str(reply->result), reply->delay_ms);
	login_failed(s, "-ERR [AUTH] Authentication failed", reply->delay_ms, true);
}

void pop3_auth_io(struct postern_io *io, int fd, unsigned events, void *ctx)
{
	struct pop3be *be = ctx;

	(void)io;
	(void)fd;
	(void)events;
	postern_auth_pool_collect(be->auth_pool, auth_done);
}

void pop3_workers_io(struct postern_io *io, int fd, unsigned events, void *ctx)
{
	struct pop3be *be = ctx;

	(void)io;
	(void)fd;
	(void)events;
	pop3_workers_collect(be->workers);
}

void pop3_login_cancel(struct pop3_session *s)
{
	if (s->auth_submitted) {
		postern_auth_pool_cancel(s->be->auth_pool, s);
		s->auth_submitted = false;
	}
	if (s->open_job != NULL) {
		s->open_job->s = NULL;
		s->open_job->job.cancelled = true;
		s->open_job = NULL;
	}
}

/* ---- STLS and XCLIENT ---------------------------------------------------------- */

void pop3_cmd_stls(struct pop3_session *s, struct pop3_command *cmd)
{
	const char *error;

	(void)cmd;
	if (!stls_available(s)) {
		pop3_reply(s, postern_conn_is_tls(s->conn) ?
			   "-ERR Command not permitted when TLS active" : "-ERR STLS not available");
		pop3_session_bad_command(s);
		return;
	}
	pop3_reply(s, "+OK Begin TLS negotiation");
	if (postern_conn_starttls(s->conn, s->be->tls, NULL, &error) < 0) {
		postern_conn_log(s->conn, POSTERN_LOG_ERROR, "STLS: %s", error);
		postern_conn_close_after_flush(s->conn, "STLS failed");
		return;
	}
	/* RFC 2595: forget what was said in the clear */
	free(s->user);
	s->user = NULL;
	s->stls_pending = true;
}

void pop3_cmd_xclient(struct pop3_session *s, struct pop3_command *cmd)
{
	struct pop3_xclient xc;
	const char *error;
	char login[300];

	if (!peer_trusted(s)) {
		postern_conn_log(s->conn, POSTERN_LOG_WARNING,
				 "XCLIENT from untrusted peer %s refused", postern_conn_peer(s->conn));
		pop3_reply(s, "-ERR XCLIENT not allowed");
		pop3_session_bad_command(s);
		return;
	}
	if (s->xclient_done || s->user != NULL || s->auth_failures > 0) {
		pop3_reply(s, "-ERR XCLIENT must come once, before USER or AUTH");
		pop3_session_bad_command(s);
		return;
	}
	if (pop3_xclient_parse(cmd->args, cmd->argc, &xc, &error) < 0) {
		pop3_reply(s, "-ERR %s", error);
		pop3_session_bad_command(s);
		return;
	}
	if (xc.hop > s->be->config.set.xclient_max_hops) {
		postern_conn_log(s->conn, POSTERN_LOG_WARNING,
				 "XCLIENT from %s refused: HOP=%u is over xclient_max_hops=%llu "
				 "(a proxy loop?)", postern_conn_peer(s->conn), xc.hop,
				 (unsigned long long)s->be->config.set.xclient_max_hops);
		pop3_reply(s, "-ERR [SYS/PERM] Too many proxy hops");
		pop3_session_bad_command(s);
		return;
	}
	snprintf(s->rip, sizeof(s->rip), "%s", xc.addr);
	s->rport = xc.port;
	s->xclient_done = true;
	postern_conn_log(s->conn, POSTERN_LOG_INFO,
			 "XCLIENT: client rip=%s rport=%u hop=%u%s%s%s via proxy %s", s->rip,
			 s->rport, xc.hop, xc.login[0] != '\0' ? " login=<" : "",
			 xc.login[0] != '\0' ? pop3_safe(xc.login, login, sizeof(login)) : "",
			 xc.login[0] != '\0' ? ">" : "", postern_conn_peer(s->conn));
	pop3_reply(s, "+OK");
}
