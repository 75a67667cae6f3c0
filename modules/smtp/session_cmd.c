/*
 * The command table of an inbound session and the commands that build the
 * envelope: HELO, EHLO, MAIL, RCPT, RSET, NOOP, QUIT, VRFY, EXPN, HELP,
 * STARTTLS. DATA and BDAT are in session_data.c, AUTH in session_auth.c.
 * Each command says in which phases it is allowed; the table is checked
 * before any handler runs.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "smtp_private.h"

#define PHASE(p) (1u << (p))
#define ANY_PHASE (PHASE(SMTP_PHASE_INIT) | PHASE(SMTP_PHASE_READY) | PHASE(SMTP_PHASE_MAIL) | \
		   PHASE(SMTP_PHASE_RCPT))

typedef void smtp_cmd_fn(struct smtp_session *session, char *args);

struct smtp_cmd_def {
	smtp_cmd_fn *handler;
	unsigned phases;       /* where it is allowed */
	bool needs_auth;       /* on submission: only after AUTH */
	bool long_line;        /* may use max_auth_line rather than max_command_line */
};

static void reply_bad_sequence(struct smtp_session *session, const char *text)
{
	smtp_reply(session, "503 5.5.1 %s", text);
	smtp_session_error(session);
}

static void set_state(struct smtp_session *session)
{
	static const char *const names[] = { "INIT", "READY", "MAIL", "RCPT" };

	postern_conn_set_state(session->conn, names[session->phase]);
}

static int take_helo(struct smtp_session *session, const char *verb, char *args)
{
	if (*args == '\0' || strchr(args, ' ') != NULL ||
	    !smtp_domain_valid(args, strlen(args), false)) {
		smtp_reply(session, "501 5.5.4 Syntax: %s domain or address literal", verb);
		smtp_session_error(session);
		return -1;
	}
	smtp_txn_reset(session);
	free(session->helo);
	session->helo = smtp_strdup(args);
	session->phase = SMTP_PHASE_READY;
	set_state(session);
	return 0;
}

static void cmd_helo(struct smtp_session *session, char *args)
{
	if (take_helo(session, "HELO", args) < 0)
		return;
	session->esmtp = false;
	smtp_reply(session, "250 %s", session->smtp->set.hostname);
}

static void cmd_ehlo(struct smtp_session *session, char *args)
{
	const struct smtp *smtp = session->smtp;

	if (take_helo(session, "EHLO", args) < 0)
		return;
	session->esmtp = true;
	smtp_reply(session, "250-%s", smtp->set.hostname);
	smtp_reply(session, "250-PIPELINING");
	smtp_reply(session, "250-SIZE %llu", (unsigned long long)smtp->set.max_message_size);
	smtp_reply(session, "250-8BITMIME");
	smtp_reply(session, "250-ENHANCEDSTATUSCODES");
	if (smtp_session_tls_offered(session))
		smtp_reply(session, "250-STARTTLS");
	if (smtp_session_auth_offered(session))
		smtp_reply(session, "250-AUTH PLAIN LOGIN");
	smtp_reply(session, "250-DSN");
	smtp_reply(session, "250-SMTPUTF8");
	smtp_reply(session, "250 CHUNKING");
}

static struct smtp_parse_options session_options(const struct smtp_session *session)
{
	struct smtp_parse_options options = { 0 };

	if (session->esmtp) {
		options.size = true;
		options.eightbitmime = true;
		options.smtputf8 = true;
		options.dsn = true;
		options.auth = true;
	}
	return options;
}

static void cmd_mail(struct smtp_session *session, char *args)
{
	struct smtp_parse_options options = session_options(session);
	struct smtp_mail_args mail;
	const char *error;
	struct smtp_txn *txn = &session->txn;

	if (smtp_parse_mail(args, &options, &mail, &error) < 0) {
		smtp_reply(session, "%s", error);
		smtp_session_error(session);
		return;
	}
	if (mail.size_given && mail.size > session->smtp->set.max_message_size) {
		smtp_reply(session, "552 5.3.4 Message size exceeds fixed limit");
		return;
	}
	smtp_txn_reset(session);
	txn->sender = smtp_strdup(mail.address);
	txn->envid = mail.envid != NULL ? smtp_strdup(mail.envid) : NULL;
	txn->mail = mail;
	/* The parsed strings point into the line: keep only our copies. */
	txn->mail.address = txn->sender;
	txn->mail.envid = txn->envid;
	txn->mail.auth = NULL;
	session->phase = SMTP_PHASE_MAIL;
	set_state(session);
	smtp_reply(session, "250 2.1.0 Ok");
}

static bool relay_allowed(const struct smtp_session *session)
{
	const struct smtp *smtp = session->smtp;

	return session->auth_user != NULL ||
	       postern_cidr_match(smtp->relay_nets, smtp->relay_net_count,
			       postern_conn_peer_ip(session->conn));
}

/* May `address` be a recipient here? Replies and returns false if not. */
static bool rcpt_policy(struct smtp_session *session, const char *address)
{
	struct smtp *smtp = session->smtp;
	enum postern_rcpt_status status = smtp->queue->check_recipient(smtp->queue->ctx, address);

	switch (status) {
	case POSTERN_RCPT_LOCAL:
		return true;
	case POSTERN_RCPT_REMOTE:
		if (relay_allowed(session))
			return true;
		smtp->stats.relay_denied++;
		postern_conn_log(session->conn, POSTERN_LOG_INFO,
				 "relay denied: from=<%s> to=<%s>", session->txn.sender, address);
		smtp_reply(session, "554 5.7.1 <%s>: Relay access denied", address);
		break;
	case POSTERN_RCPT_UNKNOWN:
		smtp_reply(session, "550 5.1.1 <%s>: Recipient address rejected: User unknown",
			   address);
		break;
	case POSTERN_RCPT_TEMPFAIL:
	default:
		smtp_reply(session, "451 4.3.0 <%s>: Temporary lookup failure, try again later",
			   address);
		smtp->stats.recipients_rejected++;
		return false;
	}
	smtp->stats.recipients_rejected++;
	smtp_session_error(session);
	return false;
}

static void cmd_rcpt(struct smtp_session *session, char *args)
{
	struct smtp_parse_options options = session_options(session);
	struct smtp_rcpt_args rcpt;
	const char *error;
	struct smtp_txn *txn = &session->txn;

	if (txn->data_started) {
		reply_bad_sequence(session, "Error: message data already started");
		return;
	}
	if (txn->rcpt_count >= session->smtp->set.max_recipients) {
		smtp_reply(session, "452 4.5.3 Error: too many recipients");
		return;
	}
	if (smtp_parse_rcpt(args, &options, txn->mail.smtputf8, &rcpt, &error) < 0) {
		smtp_reply(session, "%s", error);
		smtp_session_error(session);
		return;
	}
	if (!rcpt_policy(session, rcpt.address))
		return;
	if (txn->rcpt_count == txn->rcpt_alloc) {
		txn->rcpt_alloc = txn->rcpt_alloc == 0 ? 4 : txn->rcpt_alloc * 2;
		txn->rcpts = smtp_realloc(txn->rcpts, txn->rcpt_alloc * sizeof(*txn->rcpts));
	}
	struct postern_queue_rcpt *r = &txn->rcpts[txn->rcpt_count++];

	r->address = smtp_strdup(rcpt.address);
	r->notify = rcpt.notify;
	r->orcpt = rcpt.orcpt != NULL ? smtp_strdup(rcpt.orcpt) : NULL;
	session->smtp->stats.recipients_accepted++;
	session->phase = SMTP_PHASE_RCPT;
	set_state(session);
	smtp_reply(session, "250 2.1.5 Ok");
}

static void cmd_rset(struct smtp_session *session, char *args)
{
	if (*args != '\0') {
		smtp_reply(session, "501 5.5.4 Syntax: RSET");
		smtp_session_error(session);
		return;
	}
	smtp_txn_reset(session);
	set_state(session);
	smtp_reply(session, "250 2.0.0 Ok");
}

static void cmd_noop(struct smtp_session *session, char *args)
{
	smtp_reply(session, "250 2.0.0 Ok");
}

static void cmd_quit(struct smtp_session *session, char *args)
{
	char *reply = smtp_asprintf("221 2.0.0 %s Bye", session->smtp->set.hostname);

	smtp_txn_reset(session);
	smtp_session_close(session, reply, "quit");
	free(reply);
}

static void cmd_vrfy(struct smtp_session *session, char *args)
{
	/* RFC 5321 3.5.3: never tell who exists. */
	smtp_reply(session, "252 2.5.2 Cannot VRFY user, but will accept message and attempt "
			    "delivery");
}

static void cmd_expn(struct smtp_session *session, char *args)
{
	smtp_reply(session, "502 5.5.1 EXPN not available");
}

static void cmd_help(struct smtp_session *session, char *args)
{
	smtp_reply(session, "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT "
			    "VRFY HELP STARTTLS AUTH; see RFC 5321");
}

static void cmd_starttls(struct smtp_session *session, char *args)
{
	const char *error;

	if (*args != '\0') {
		smtp_reply(session, "501 5.5.4 Syntax: STARTTLS");
		smtp_session_error(session);
		return;
	}
	if (postern_conn_is_tls(session->conn)) {
		reply_bad_sequence(session, "Error: TLS already active");
		return;
	}
	if (!smtp_session_tls_offered(session)) {
		smtp_reply(session, "502 5.5.1 STARTTLS not available");
		smtp_session_error(session);
		return;
	}
	smtp_txn_reset(session);
	smtp_reply(session, "220 2.0.0 Ready to start TLS");
	session->mode = SMTP_MODE_TLS;
	postern_conn_set_state(session->conn, "STARTTLS");
	/* The core flushes our 220 and drops every byte the client sent
	 * before the handshake (RFC 3207 4.2, pipelined commands). */
	if (postern_conn_starttls(session->conn, session->smtp->tls_server, NULL, &error) < 0) {
		postern_conn_log(session->conn, POSTERN_LOG_ERROR, "STARTTLS: %s", error);
		postern_conn_close(session->conn, "starttls failed");
	}
}

static const struct smtp_cmd_def command_table[SMTP_VERB_COUNT] = {
	[SMTP_VERB_HELO] = { cmd_helo, ANY_PHASE, false, false },
	[SMTP_VERB_EHLO] = { cmd_ehlo, ANY_PHASE, false, false },
	[SMTP_VERB_MAIL] = { cmd_mail, PHASE(SMTP_PHASE_READY), true, false },
	[SMTP_VERB_RCPT] = { cmd_rcpt, PHASE(SMTP_PHASE_MAIL) | PHASE(SMTP_PHASE_RCPT), true,
			     false },
	/* DATA and BDAT check their phase themselves: BDAT's chunk must be
	 * read even when the command is refused. */
	[SMTP_VERB_DATA] = { smtp_cmd_data, ANY_PHASE, true, false },
	[SMTP_VERB_BDAT] = { smtp_cmd_bdat, ANY_PHASE, false, false },
	[SMTP_VERB_RSET] = { cmd_rset, ANY_PHASE, false, false },
	[SMTP_VERB_NOOP] = { cmd_noop, ANY_PHASE, false, false },
	[SMTP_VERB_QUIT] = { cmd_quit, ANY_PHASE, false, false },
	[SMTP_VERB_VRFY] = { cmd_vrfy, ANY_PHASE, false, false },
	[SMTP_VERB_EXPN] = { cmd_expn, ANY_PHASE, false, false },
	[SMTP_VERB_HELP] = { cmd_help, ANY_PHASE, false, false },
	[SMTP_VERB_STARTTLS] = { cmd_starttls, PHASE(SMTP_PHASE_INIT) | PHASE(SMTP_PHASE_READY),
				 false, false },
	[SMTP_VERB_AUTH] = { smtp_cmd_auth, PHASE(SMTP_PHASE_READY), false, true },
};

static void wrong_phase(struct smtp_session *session, enum smtp_verb verb)
{
	switch (session->phase) {
	case SMTP_PHASE_INIT:
		reply_bad_sequence(session, "Error: send HELO/EHLO first");
		break;
	case SMTP_PHASE_READY:
		reply_bad_sequence(session, "Error: need MAIL command");
		break;
	case SMTP_PHASE_MAIL:
	case SMTP_PHASE_RCPT:
		reply_bad_sequence(session, verb == SMTP_VERB_MAIL ?
						    "Error: nested MAIL command" :
						    "Error: MAIL transaction in progress");
		break;
	}
}

void smtp_session_command(struct smtp_session *session, char *line, size_t len)
{
	struct smtp_command cmd;
	const char *error;

	if (smtp_command_parse(line, len, &cmd, &error) < 0) {
		smtp_reply(session, "%s", error);
		smtp_session_error(session);
		return;
	}
	const struct smtp_cmd_def *def = &command_table[cmd.verb];

	if (def->handler == NULL) {
		smtp_reply(session, "500 5.5.1 Error: command not recognized");
		smtp_session_error(session);
		return;
	}
	/* RFC 5321 4.5.3.1.4: 512 octets with CR LF. */
	if (!def->long_line && len + 2 > session->smtp->set.max_command_line) {
		smtp_reply(session, "500 5.5.2 Line too long");
		smtp_session_error(session);
		if (cmd.verb == SMTP_VERB_BDAT) {
			/* Its chunk cannot be found: stop here. */
			smtp_session_close(session, "421 4.5.0 Cannot continue after a bad BDAT",
					   "bad BDAT");
		}
		return;
	}
	if ((def->phases & PHASE(session->phase)) == 0) {
		wrong_phase(session, cmd.verb);
		return;
	}
	if (def->needs_auth && smtp_session_is_submission(session) && session->auth_user == NULL) {
		smtp_reply(session, "530 5.7.0 Authentication required");
		smtp_session_error(session);
		return;
	}
	def->handler(session, cmd.args);
}
