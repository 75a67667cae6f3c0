/*
 * DATA and BDAT: the message itself. Bytes go through the scanner
 * (data_scanner.c: end marker, dot-stuffing, bare CR/LF, line lengths) and
 * the message builder (message.c: Received first, hop count, submission's
 * missing headers, size) into the queue's write(). Nothing is answered 250
 * before the queue's commit callback says the message is durable.
 *
 * Failure rules: a message with a bare CR, a bare LF or a NUL is refused
 * whole with 550 5.6.11 after its end marker; a line longer than
 * max_text_line with 500 5.5.2; a message over max_message_size with
 * 552 5.3.4; one with too many Received headers with 554 5.4.6; a local
 * failure (disk full) with 452 4.3.1. In each case the queue's message is
 * aborted, so nothing partial is kept, and the rest of the message is read
 * and thrown away up to its end (DATA) or the end of its chunk (BDAT).
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "smtp_private.h"

/* Does a queue error look like a full disk (452 4.3.1 rather than 451)? */
static bool storage_error(const char *error)
{
	return error != NULL && (strstr(error, "space") != NULL || strstr(error, "full") != NULL ||
				 strstr(error, "quota") != NULL || strstr(error, "ENOSPC") != NULL);
}

static void reply_local_error(struct smtp_session *session, const char *error)
{
	postern_conn_log(session->conn, POSTERN_LOG_WARNING, "queue: %s",
			 error != NULL ? error : "unknown error");
	if (storage_error(error))
		smtp_reply(session, "452 4.3.1 Insufficient system storage, try again later");
	else
		smtp_reply(session, "451 4.3.0 Local error in processing, try again later");
}

static int queue_write(void *ctx, const void *data, size_t len, const char **error_r)
{
	struct smtp_session *session = ctx;
	struct smtp_txn *txn = &session->txn;

	if (txn->msg == NULL) {
		*error_r = "message already aborted";
		return -1;
	}
	if (session->smtp->queue->write(txn->msg, data, len, error_r) < 0) {
		/* Kept: the queue's string may go with the aborted message. */
		snprintf(txn->queue_error, sizeof(txn->queue_error), "%s",
			 *error_r != NULL ? *error_r : "write failed");
		*error_r = txn->queue_error;
		return -1;
	}
	return 0;
}

/* Give the message up now, while its bytes are still coming: a message
 * that can no longer succeed must not fill the disk. */
static void drop_message(struct smtp_session *session)
{
	struct smtp_txn *txn = &session->txn;

	if (txn->msg != NULL && !txn->committing) {
		session->smtp->queue->abort(txn->msg);
		txn->msg = NULL;
	}
}

static int start_message(struct smtp_session *session, bool dot_mode)
{
	struct smtp *smtp = session->smtp;
	struct smtp_txn *txn = &session->txn;
	struct postern_queue_envelope env = { .struct_size = sizeof(env) };
	const char *error = NULL;

	env.sender = txn->sender;
	env.rcpts = txn->rcpts;
	env.rcpt_count = txn->rcpt_count;
	env.ret = txn->mail.ret;
	env.envid = txn->envid;
	env.body_8bitmime = txn->mail.body == SMTP_BODY_8BITMIME;
	env.smtputf8 = txn->mail.smtputf8;
	env.client_address = postern_conn_peer_ip(session->conn);
	env.client_name = session->helo;
	env.auth_user = session->auth_user;
	env.received_by = smtp_session_is_submission(session) ? "submission" : "smtp";
	txn->msg = smtp->queue->begin(smtp->queue->ctx, &env, &error);
	if (txn->msg == NULL) {
		reply_local_error(session, error);
		return -1;
	}
	txn->message = smtp_alloc(sizeof(*txn->message));
	smtp_message_init(txn->message, queue_write, session);
	txn->message->max_size = smtp->set.max_message_size;
	txn->message->max_hops = (unsigned)smtp->set.max_hops;
	smtp_data_scanner_init(&txn->scanner, dot_mode, smtp->set.max_text_line - 2);

	char *received = smtp_received_header(session);

	smtp_message_prepend(txn->message, received, strlen(received));
	free(received);
	txn->data_started = true;
	return 0;
}

static void add_submission_headers(struct smtp_session *session)
{
	struct smtp_message *message = session->txn.message;

	if (!smtp_session_is_submission(session) || !session->smtp->set.submission_add_headers)
		return;
	/* Kept in the session's transaction, freed with it. */
	message->add_date = smtp_date_header();
	message->add_message_id = smtp_message_id_header(session);
}

static void free_submission_headers(struct smtp_message *message)
{
	if (message == NULL)
		return;
	free((char *)message->add_date);
	free((char *)message->add_message_id);
	message->add_date = message->add_message_id = NULL;
}

static void commit_done(void *ctx, int status, const char *queue_id, const char *error)
{
	struct smtp_session *session = ctx;
	struct smtp_txn *txn = &session->txn;

	txn->msg = NULL; /* the queue has let go of the handle */
	txn->committing = false;
	if (status == 0) {
		session->smtp->stats.messages_accepted++;
		postern_conn_log(session->conn, POSTERN_LOG_INFO,
				 "queued as %s: from=<%s> nrcpt=%u size=%llu", queue_id,
				 txn->sender, txn->rcpt_count,
				 (unsigned long long)txn->message->size);
		smtp_reply(session, "250 2.0.0 Ok: queued as %s", queue_id);
	} else {
		session->smtp->stats.messages_rejected++;
		reply_local_error(session, error);
	}
	free_submission_headers(txn->message);
	smtp_txn_reset(session);
	smtp_session_resume(session);
}

/* Say why a finished message is refused; NULL when it is fine. */
static const char *message_verdict(struct smtp_session *session, char *buf, size_t size)
{
	struct smtp_txn *txn = &session->txn;
	const struct smtp_data_scanner *scanner = &txn->scanner;
	const struct smtp_message *message = txn->message;

	if (scanner->bare_cr || scanner->bare_lf || scanner->nul)
		return "550 5.6.11 Message refused: bare CR, bare LF or NUL in the text; "
		       "lines must end with CR LF";
	if (scanner->long_line) {
		snprintf(buf, size, "500 5.5.2 Message refused: a line is longer than %llu bytes",
			 (unsigned long long)session->smtp->set.max_text_line);
		return buf;
	}
	if (message->too_big)
		return "552 5.3.4 Message size exceeds fixed limit";
	if (message->too_many_hops)
		return "554 5.4.6 Too many hops (Received headers): mail loop";
	return NULL;
}

/* The message is complete (DATA's end marker, BDAT LAST): refuse it or
 * commit it. */
static void message_end(struct smtp_session *session)
{
	struct smtp_txn *txn = &session->txn;
	char buf[128];
	const char *refusal = message_verdict(session, buf, sizeof(buf));

	session->mode = SMTP_MODE_COMMAND;
	postern_conn_set_idle_timeout(session->conn, session->smtp->set.command_timeout);
	if (refusal != NULL) {
		postern_conn_log(session->conn, POSTERN_LOG_INFO, "message refused: %s", refusal);
		session->smtp->stats.messages_rejected++;
		smtp_reply(session, "%s", refusal);
		free_submission_headers(txn->message);
		smtp_txn_reset(session);
		return;
	}
	if (txn->msg == NULL || smtp_message_finish(txn->message) < 0) {
		session->smtp->stats.messages_rejected++;
		reply_local_error(session, txn->message->write_error);
		free_submission_headers(txn->message);
		smtp_txn_reset(session);
		return;
	}
	txn->committing = true;
	smtp_session_wait(session);
	postern_conn_set_state(session->conn, "COMMIT");
	session->smtp->queue->commit(txn->msg, commit_done, session);
}

void smtp_cmd_data(struct smtp_session *session, char *args)
{
	struct smtp_txn *txn = &session->txn;

	if (*args != '\0') {
		smtp_reply(session, "501 5.5.4 Syntax: DATA");
		smtp_session_error(session);
		return;
	}
	if (txn->data_started) {
		smtp_reply(session, "503 5.5.1 Error: BDAT in progress");
		smtp_session_error(session);
		return;
	}
	if (session->phase != SMTP_PHASE_RCPT) {
		if (session->phase == SMTP_PHASE_MAIL)
			smtp_reply(session, "554 5.5.1 Error: no valid recipients");
		else
			smtp_reply(session, "503 5.5.1 Error: need %s command",
				   session->phase == SMTP_PHASE_INIT ? "HELO/EHLO" : "MAIL");
		smtp_session_error(session);
		return;
	}
	if (start_message(session, true) < 0) {
		smtp_txn_reset(session);
		return;
	}
	add_submission_headers(session);
	session->mode = SMTP_MODE_DATA;
	postern_conn_set_state(session->conn, "DATA");
	postern_conn_set_idle_timeout(session->conn, session->smtp->set.data_timeout);
	smtp_reply(session, "354 End data with <CR><LF>.<CR><LF>");
}

/* Read this chunk, throw it away, then answer `reply`. */
static void bdat_discard(struct smtp_session *session, uint64_t size, const char *reply)
{
	struct smtp_txn *txn = &session->txn;

	txn->bdat_discard = true;
	txn->bdat_discard_reply = reply;
	txn->bdat_remaining = size;
	session->mode = SMTP_MODE_BDAT;
	postern_conn_set_idle_timeout(session->conn, session->smtp->set.data_timeout);
	if (size == 0)
		smtp_session_data_input(session, "", 0);
}

/* Why this BDAT cannot add to a message, or NULL. */
static const char *bdat_refusal(struct smtp_session *session)
{
	if (!session->esmtp)
		return session->phase == SMTP_PHASE_INIT ? "503 5.5.1 Error: send EHLO first" :
							   "502 5.5.1 BDAT needs EHLO";
	if (smtp_session_is_submission(session) && session->auth_user == NULL)
		return "530 5.7.0 Authentication required";
	switch (session->phase) {
	case SMTP_PHASE_INIT:
	case SMTP_PHASE_READY:
		return "503 5.5.1 Error: need MAIL command";
	case SMTP_PHASE_MAIL:
		return "554 5.5.1 Error: no valid recipients";
	case SMTP_PHASE_RCPT:
		break;
	}
	return NULL;
}

void smtp_cmd_bdat(struct smtp_session *session, char *args)
{
	struct smtp_txn *txn = &session->txn;
	uint64_t size;
	bool last;
	const char *error;

	if (smtp_parse_bdat(args, &size, &last, &error) < 0) {
		/* Without a size the chunk's end cannot be found: anything
		 * read as commands from here could be message text. */
		smtp_reply(session, "%s", error);
		smtp_session_close(session, "421 4.5.0 Cannot continue after a bad BDAT", "bad BDAT");
		return;
	}
	const char *refusal = bdat_refusal(session);

	if (refusal != NULL) {
		smtp_session_error(session);
		bdat_discard(session, size, refusal);
		return;
	}
	if (!txn->data_started) {
		if (start_message(session, false) < 0) {
			smtp_txn_reset(session);
			bdat_discard(session, size, NULL);
			return;
		}
		add_submission_headers(session);
		txn->bdat = true;
	}
	txn->bdat_discard = false;
	txn->bdat_remaining = size;
	txn->bdat_last = last;
	session->mode = SMTP_MODE_BDAT;
	postern_conn_set_state(session->conn, "BDAT");
	postern_conn_set_idle_timeout(session->conn, session->smtp->set.data_timeout);
	if (size == 0)
		smtp_session_data_input(session, "", 0);
}

static void bdat_chunk_end(struct smtp_session *session)
{
	struct smtp_txn *txn = &session->txn;
	char buf[128];
	struct smtp_data_sink sink;

	session->mode = SMTP_MODE_COMMAND;
	postern_conn_set_idle_timeout(session->conn, session->smtp->set.command_timeout);
	if (txn->bdat_discard) {
		/* A refused chunk; NULL: start_message() already replied. */
		if (txn->bdat_discard_reply != NULL)
			smtp_reply(session, "%s", txn->bdat_discard_reply);
		txn->bdat_discard = false;
		return;
	}
	if (txn->bdat_last) {
		smtp_message_sink(txn->message, &sink);
		smtp_data_scanner_finish(&txn->scanner, &sink);
		message_end(session);
		return;
	}
	const char *refusal = message_verdict(session, buf, sizeof(buf));

	if (refusal == NULL && txn->message->write_failed) {
		reply_local_error(session, txn->message->write_error);
		session->smtp->stats.messages_rejected++;
		free_submission_headers(txn->message);
		smtp_txn_reset(session);
		return;
	}
	if (refusal != NULL) {
		/* RFC 3030 3: the transaction failed; later chunks already
		 * pipelined are read and refused (503, no transaction). */
		session->smtp->stats.messages_rejected++;
		smtp_reply(session, "%s", refusal);
		free_submission_headers(txn->message);
		smtp_txn_reset(session);
		return;
	}
	smtp_reply(session, "250 2.0.0 Ok: %llu octets", (unsigned long long)txn->message->size);
	postern_conn_set_state(session->conn, "RCPT");
}

size_t smtp_session_data_input(struct smtp_session *session, const void *data, size_t len)
{
	struct smtp_txn *txn = &session->txn;
	struct smtp_data_sink sink;

	if (session->mode == SMTP_MODE_DATA) {
		smtp_message_sink(txn->message, &sink);
		size_t used = smtp_data_scan(&txn->scanner, data, len, &sink);

		if (smtp_message_failed(txn->message) || !smtp_data_scanner_clean(&txn->scanner))
			drop_message(session);
		if (smtp_data_scanner_done(&txn->scanner))
			message_end(session);
		return used;
	}
	assert(session->mode == SMTP_MODE_BDAT);
	size_t n = len < txn->bdat_remaining ? len : (size_t)txn->bdat_remaining;

	if (!txn->bdat_discard) {
		smtp_message_sink(txn->message, &sink);
		smtp_data_scan(&txn->scanner, data, n, &sink);
		if (smtp_message_failed(txn->message) || !smtp_data_scanner_clean(&txn->scanner))
			drop_message(session);
	}
	txn->bdat_remaining -= n;
	if (txn->bdat_remaining == 0)
		bdat_chunk_end(session);
	return n;
}

void smtp_session_data_gone(struct smtp_session *session)
{
	struct smtp_txn *txn = &session->txn;

	if (txn->committing)
		postern_conn_log(session->conn, POSTERN_LOG_INFO,
				 "client gone after the final dot: the commit goes on");
	free_submission_headers(txn->message);
	/* smtp_txn_reset() aborts an uncommitted message, detaches one
	 * whose commit is pending. */
}
