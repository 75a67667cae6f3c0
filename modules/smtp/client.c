/*
 * One outbound SMTP conversation with one host, for one job: greeting,
 * EHLO (HELO if refused), opportunistic STARTTLS, MAIL/RCPT/DATA
 * (pipelined when offered), the message dot-stuffed from the queue file,
 * and a result per recipient.
 *
 * A remote server is not trusted: every wait has a timer (greeting,
 * each command, each block of data, the final reply), replies go through
 * the bounded parser in reply.c, and anything malformed, too long or
 * missing ends the attempt as a temporary failure. The client reports to
 * its job exactly once (smtp_job_attempt_done) and frees itself when its
 * connection is CLOSED.
 *
 * Message bodies: 8BITMIME is passed on when offered; an 8-bit body to a
 * server without 8BITMIME is sent anyway (what Postfix and most MTAs do:
 * a downgrade to 7 bit would need MIME rewriting). An SMTPUTF8 message to
 * a server without SMTPUTF8 fails permanently (553 5.6.7, RFC 6531 3.4);
 * a message larger than the server's SIZE fails permanently (552 5.3.4).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "outbound.h"

#define CLIENT_CHUNK 32768
/* Keep at most this much queued for the peer while sending the message. */
#define CLIENT_OUTPUT_HIGH 131072

enum client_state {
	CLIENT_CONNECTING = 0,
	CLIENT_GREETING,
	CLIENT_EHLO,
	CLIENT_HELO,
	CLIENT_STARTTLS,
	CLIENT_TLS,
	CLIENT_MAIL,
	CLIENT_RCPT,
	CLIENT_DATA,
	CLIENT_SENDING,
	CLIENT_DOT,
	CLIENT_QUIT,
};

static const char *const state_names[] = {
	[CLIENT_CONNECTING] = "connect", [CLIENT_GREETING] = "greeting",
	[CLIENT_EHLO] = "EHLO",          [CLIENT_HELO] = "HELO",
	[CLIENT_STARTTLS] = "STARTTLS",  [CLIENT_TLS] = "TLS handshake",
	[CLIENT_MAIL] = "MAIL FROM",     [CLIENT_RCPT] = "RCPT TO",
	[CLIENT_DATA] = "DATA",          [CLIENT_SENDING] = "message data",
	[CLIENT_DOT] = "end of data",    [CLIENT_QUIT] = "QUIT",
};

struct smtp_client {
	struct smtp_job *job;       /* NULL once it has been told */
	struct smtp_outbound *out;
	struct postern_conn *conn;
	struct postern_timer *timer;
	char *host;                 /* for SNI and messages */
	char *peer;                 /* "host[ip]:port" */
	enum client_state state;
	struct smtp_reply reply;
	unsigned extensions;
	uint64_t size_limit;
	bool tls_allowed, pipelining;
	bool closed;                /* CLOSED arrived: the connection is gone */
	unsigned rcpt_sent, rcpt_replied, accepted;
	uint64_t sent;
	struct smtp_dotstuff stuff;
	char *buf;
};

static void client_send_quit(struct smtp_client *client);

static void client_close(struct smtp_client *client, const char *why)
{
	if (!client->closed)
		postern_conn_close(client->conn, why);
}

static void client_timer(struct smtp_client *client, uint64_t ms);

static void client_log(struct smtp_client *client, enum postern_log_level level, const char *fmt,
		       ...) POSTERN_PRINTF(3, 4);

static void client_log(struct smtp_client *client, enum postern_log_level level, const char *fmt,
		       ...)
{
	va_list args;
	char buf[600];

	va_start(args, fmt);
	vsnprintf(buf, sizeof(buf), fmt, args);
	va_end(args);
	postern_log(client->out->smtp->mod, level, "%s %s: %s",
		    client->job != NULL ? client->job->queue_id : "-", client->peer, buf);
}

/* Tell the job, once; then the connection goes. */
static void client_report(struct smtp_client *client, enum smtp_attempt attempt)
{
	struct smtp_job *job = client->job;

	if (job == NULL)
		return;
	client->job = NULL;
	postern_timer_stop(client->timer);
	smtp_job_attempt_done(job, attempt);
}

/* A failure with nothing learnt about recipients: the next host. */
static void client_fail_host(struct smtp_client *client, enum smtp_attempt attempt,
			     const char *why)
{
	if (client->job != NULL)
		smtp_job_set_error(client->job, "%s: %s (during %s)", client->peer, why,
				   state_names[client->state]);
	client_log(client, POSTERN_LOG_INFO, "%s during %s", why, state_names[client->state]);
	client_report(client, attempt);
	client_close(client, why);
}

/* Every recipient without a result gets this one. */
static void client_result_all(struct smtp_client *client, unsigned code, const char *enhanced,
			      const char *text, bool accepted_only)
{
	struct smtp_job *job = client->job;

	for (unsigned i = 0; job != NULL && i < job->rcpt_count; i++) {
		if (job->results[i].final)
			continue;
		if (accepted_only && !job->results[i].accepted)
			continue;
		smtp_job_rcpt_result(job, i, code, enhanced, text);
	}
}

/* The connection broke or the server misbehaved after the transaction
 * began: what is unknown is temporary. */
static void client_fail(struct smtp_client *client, const char *why)
{
	if (client->state < CLIENT_MAIL) {
		client_fail_host(client, client->state == CLIENT_TLS ? SMTP_ATTEMPT_RETRY_PLAIN :
								       SMTP_ATTEMPT_NEXT_HOST,
				 why);
		return;
	}
	char *text = smtp_asprintf("%s: %s (during %s)", client->peer, why,
				   state_names[client->state]);

	client_log(client, POSTERN_LOG_INFO, "%s during %s", why, state_names[client->state]);
	client_result_all(client, 0, "4.4.2", text, false);
	free(text);
	client_report(client, SMTP_ATTEMPT_DONE);
	client_close(client, why);
}

static void client_write(struct smtp_client *client, const char *fmt, ...) POSTERN_PRINTF(2, 3);

static void client_write(struct smtp_client *client, const char *fmt, ...)
{
	va_list args;
	struct postern_str *str = postern_str_new();

	va_start(args, fmt);
	postern_str_vprintf(str, fmt, args);
	va_end(args);
	postern_str_append(str, "\r\n", 2);
	postern_conn_write(client->conn, postern_str_data(str), postern_str_len(str));
	postern_str_free(&str);
}

static void expect(struct smtp_client *client, enum client_state state, bool ehlo,
		   uint64_t timeout)
{
	client->state = state;
	smtp_reply_init(&client->reply, ehlo);
	client_timer(client, timeout);
}

static char *reply_text(struct smtp_client *client, const char *command)
{
	return smtp_asprintf("%s said: %u %s (in reply to %s)", client->peer, client->reply.code,
			     client->reply.text, command);
}

/* A reply that decides for some recipients. */
static void result_from_reply(struct smtp_client *client, unsigned i, const char *command)
{
	char *text = reply_text(client, command);

	smtp_job_rcpt_result(client->job, i, client->reply.code, client->reply.enhanced, text);
	free(text);
}

static void result_all_from_reply(struct smtp_client *client, const char *command,
				  bool accepted_only)
{
	char *text = reply_text(client, command);

	client_result_all(client, client->reply.code, client->reply.enhanced, text,
			  accepted_only);
	free(text);
}

static void finish(struct smtp_client *client)
{
	client_report(client, SMTP_ATTEMPT_DONE);
	client_send_quit(client);
}

static void send_ehlo(struct smtp_client *client)
{
	client_write(client, "EHLO %s", client->out->smtp->set.helo_name);
	expect(client, CLIENT_EHLO, true, client->out->smtp->set.outbound_command_timeout);
}

static const char *notify_text(unsigned notify, char *buf, size_t size)
{
	if (notify & POSTERN_NOTIFY_NEVER)
		return "NEVER";
	snprintf(buf, size, "%s%s%s", (notify & POSTERN_NOTIFY_SUCCESS) ? "SUCCESS," : "",
		 (notify & POSTERN_NOTIFY_FAILURE) ? "FAILURE," : "",
		 (notify & POSTERN_NOTIFY_DELAY) ? "DELAY," : "");
	size_t len = strlen(buf);

	if (len > 0)
		buf[len - 1] = '\0';
	return buf;
}

static void send_rcpt(struct smtp_client *client, unsigned i)
{
	const struct postern_queue_rcpt *rcpt = &client->job->rcpts[i];
	struct postern_str *str = postern_str_new();

	postern_str_printf(str, "RCPT TO:<%s>", rcpt->address);
	if (client->extensions & SMTP_EXT_DSN) {
		char buf[64], xtext[SMTP_MAX_ORCPT * 3 + 1];
		const char *semi = rcpt->orcpt != NULL ? strchr(rcpt->orcpt, ';') : NULL;

		if (rcpt->notify != 0)
			postern_str_printf(str, " NOTIFY=%s",
					   notify_text(rcpt->notify, buf, sizeof(buf)));
		if (semi != NULL && smtp_xtext_encode(semi + 1, strlen(semi + 1), xtext,
						      sizeof(xtext)) >= 0)
			postern_str_printf(str, " ORCPT=%.*s;%s", (int)(semi - rcpt->orcpt),
					   rcpt->orcpt, xtext);
	}
	client_write(client, "%s", postern_str_data(str));
	postern_str_free(&str);
	client->rcpt_sent++;
}

static void send_mail(struct smtp_client *client)
{
	struct smtp_job *job = client->job;
	struct postern_str *str = postern_str_new();

	postern_str_printf(str, "MAIL FROM:<%s>", job->sender);
	if (client->extensions & SMTP_EXT_SIZE)
		postern_str_printf(str, " SIZE=%llu", (unsigned long long)job->message_size);
	if (job->body_8bitmime && (client->extensions & SMTP_EXT_8BITMIME))
		postern_str_append_cstr(str, " BODY=8BITMIME");
	if (job->smtputf8)
		postern_str_append_cstr(str, " SMTPUTF8");
	if (client->extensions & SMTP_EXT_DSN) {
		char xtext[SMTP_MAX_ENVID * 3 + 1];

		if (job->ret != POSTERN_RET_DEFAULT)
			postern_str_printf(str, " RET=%s",
					   job->ret == POSTERN_RET_FULL ? "FULL" : "HDRS");
		if (job->envid != NULL &&
		    smtp_xtext_encode(job->envid, strlen(job->envid), xtext, sizeof(xtext)) >= 0)
			postern_str_printf(str, " ENVID=%s", xtext);
	}
	client_write(client, "%s", postern_str_data(str));
	postern_str_free(&str);
}

/* After EHLO (and TLS): the transaction, pipelined if offered. */
static void begin_transaction(struct smtp_client *client)
{
	struct smtp_job *job = client->job;
	const struct smtp_settings *set = &client->out->smtp->set;
	char *text;

	if (job->smtputf8 && !(client->extensions & SMTP_EXT_SMTPUTF8)) {
		text = smtp_asprintf("%s does not support SMTPUTF8, which this message needs",
				     client->peer);
		client_result_all(client, 553, "5.6.7", text, false);
		free(text);
		finish(client);
		return;
	}
	if ((client->extensions & SMTP_EXT_SIZE) && client->size_limit != 0 &&
	    job->message_size > client->size_limit) {
		text = smtp_asprintf("%s: message of %llu bytes exceeds the server's limit of %llu",
				     client->peer, (unsigned long long)job->message_size,
				     (unsigned long long)client->size_limit);
		client_result_all(client, 552, "5.3.4", text, false);
		free(text);
		finish(client);
		return;
	}
	client->pipelining = (client->extensions & SMTP_EXT_PIPELINING) != 0;
	send_mail(client);
	if (client->pipelining) {
		for (unsigned i = 0; i < job->rcpt_count; i++)
			send_rcpt(client, i);
		client_write(client, "DATA");
	}
	expect(client, CLIENT_MAIL, false, set->outbound_command_timeout);
}

static void send_message_chunk(struct smtp_client *client)
{
	struct smtp_job *job = client->job;
	const struct smtp_settings *set = &client->out->smtp->set;

	while (client->sent < job->message_size &&
	       postern_conn_output_size(client->conn) < CLIENT_OUTPUT_HIGH) {
		uint64_t left = job->message_size - client->sent;
		size_t want = left < CLIENT_CHUNK ? (size_t)left : CLIENT_CHUNK;
		char in[CLIENT_CHUNK];
		ssize_t got = pread(job->message_fd, in, want,
				    (off_t)(job->message_offset + client->sent));

		if (got <= 0) {
			/* Never send the final dot after a short read: the
			 * remote side would deliver a truncated message. */
			char *text = smtp_asprintf("local error reading the queue file: %s",
						   got < 0 ? strerror(errno) : "file too short");

			client_log(client, POSTERN_LOG_ERROR, "%s", text);
			client_result_all(client, 0, "4.3.0", text, false);
			free(text);
			client_report(client, SMTP_ATTEMPT_DONE);
			postern_conn_close(client->conn, "queue file read error");
			return;
		}
		size_t n = smtp_dotstuff(&client->stuff, in, (size_t)got, client->buf);

		postern_conn_write(client->conn, client->buf, n);
		client->sent += (uint64_t)got;
		client_timer(client, set->outbound_data_timeout);
	}
	if (client->sent == job->message_size) {
		size_t n = smtp_dotstuff_end(&client->stuff, client->buf);

		postern_conn_write(client->conn, client->buf, n);
		expect(client, CLIENT_DOT, false, set->outbound_final_timeout);
	}
}

static void rcpt_reply(struct smtp_client *client)
{
	struct smtp_job *job = client->job;
	unsigned i = client->rcpt_replied++;
	const struct smtp_settings *set = &client->out->smtp->set;

	if (client->reply.code / 100 == 2) {
		job->results[i].accepted = true;
		client->accepted++;
	} else {
		result_from_reply(client, i, "RCPT TO");
	}
	if (client->rcpt_replied < job->rcpt_count) {
		if (!client->pipelining)
			send_rcpt(client, client->rcpt_replied);
		expect(client, CLIENT_RCPT, false, set->outbound_command_timeout);
		return;
	}
	if (client->accepted == 0 && !client->pipelining) {
		finish(client);
		return;
	}
	if (!client->pipelining)
		client_write(client, "DATA");
	expect(client, CLIENT_DATA, false, set->outbound_command_timeout);
}

static void data_reply(struct smtp_client *client)
{
	if (client->reply.code != 354) {
		if (client->accepted > 0)
			result_all_from_reply(client, "DATA", true);
		finish(client);
		return;
	}
	if (client->accepted == 0) {
		/* RFC 2920 3.1: DATA was accepted though no recipient was;
		 * end the empty message. */
		postern_conn_write(client->conn, ".\r\n", 3);
		expect(client, CLIENT_DOT, false, client->out->smtp->set.outbound_final_timeout);
		return;
	}
	client->state = CLIENT_SENDING;
	smtp_dotstuff_init(&client->stuff);
	client->buf = smtp_alloc(CLIENT_CHUNK * 2 + 8);
	send_message_chunk(client);
}

static void ehlo_reply(struct smtp_client *client)
{
	const struct smtp_settings *set = &client->out->smtp->set;
	const char *error;

	if (client->reply.code / 100 != 2) {
		if (client->state == CLIENT_EHLO && client->reply.code / 100 == 5) {
			client_write(client, "HELO %s", set->helo_name);
			expect(client, CLIENT_HELO, false, set->outbound_command_timeout);
			return;
		}
		char *why = smtp_asprintf("%s refused: %u %s",
					  client->state == CLIENT_EHLO ? "EHLO" : "HELO",
					  client->reply.code, client->reply.text);

		client_fail_host(client, SMTP_ATTEMPT_NEXT_HOST, why);
		free(why);
		return;
	}
	if (client->state == CLIENT_EHLO) {
		client->extensions = client->reply.extensions;
		client->size_limit = client->reply.size_limit;
	} else {
		client->extensions = 0;
	}
	if ((client->extensions & SMTP_EXT_STARTTLS) && client->tls_allowed &&
	    set->outbound_starttls && client->out->tls_client != NULL &&
	    !postern_conn_is_tls(client->conn)) {
		client_write(client, "STARTTLS");
		expect(client, CLIENT_STARTTLS, false, set->outbound_command_timeout);
		return;
	}
	(void)error;
	begin_transaction(client);
}

/* RFC 6066 3: an address is never sent as a server name (relay_host
 * "[192.0.2.1]" and address-literal domains reach us as the bare address).
 * The core uses the name for SNI and for certificate checks alike, so an
 * address still goes in when the certificate is verified against it. */
static void starttls_reply(struct smtp_client *client)
{
	const char *error;

	if (client->reply.code != 220) {
		/* Opportunistic: go on in plain text. */
		client_log(client, POSTERN_LOG_INFO, "STARTTLS refused: %u %s", client->reply.code,
			   client->reply.text);
		begin_transaction(client);
		return;
	}
	client->state = CLIENT_TLS;
	client_timer(client, client->out->smtp->set.outbound_connect_timeout);
	if (postern_conn_starttls(client->conn, client->out->tls_client, client->host,
				  &error) < 0)
		client_fail(client, error);
}

static void handle_reply(struct smtp_client *client)
{
	unsigned code = client->reply.code;

	switch (client->state) {
	case CLIENT_GREETING:
		if (code / 100 != 2) {
			char *why = smtp_asprintf("greeting %u %s", code, client->reply.text);

			client_fail_host(client, SMTP_ATTEMPT_NEXT_HOST, why);
			free(why);
			return;
		}
		send_ehlo(client);
		return;
	case CLIENT_EHLO:
	case CLIENT_HELO:
		ehlo_reply(client);
		return;
	case CLIENT_STARTTLS:
		starttls_reply(client);
		return;
	case CLIENT_MAIL:
		if (code / 100 != 2) {
			result_all_from_reply(client, "MAIL FROM", false);
			finish(client);
			return;
		}
		if (!client->pipelining)
			send_rcpt(client, 0);
		expect(client, CLIENT_RCPT, false, client->out->smtp->set.outbound_command_timeout);
		return;
	case CLIENT_RCPT:
		rcpt_reply(client);
		return;
	case CLIENT_DATA:
		data_reply(client);
		return;
	case CLIENT_DOT:
		result_all_from_reply(client, "end of DATA", true);
		finish(client);
		return;
	case CLIENT_QUIT:
		postern_conn_close(client->conn, "quit");
		return;
	default:
		client_fail(client, "unexpected reply");
		return;
	}
}

static void client_input(struct smtp_client *client)
{
	struct postern_line line;
	enum postern_read_status status;
	const char *error;

	while (!postern_conn_is_closing(client->conn) &&
	       (status = postern_conn_read_line(client->conn, &line)) != POSTERN_READ_NONE) {
		if (client->state == CLIENT_SENDING || client->state == CLIENT_CONNECTING ||
		    client->state == CLIENT_TLS) {
			client_fail(client, "reply when none was expected");
			return;
		}
		enum smtp_reply_status rs = smtp_reply_feed(&client->reply, line.data, line.len,
							    status == POSTERN_READ_TOO_LONG,
							    &error);

		if (rs == SMTP_REPLY_ERROR) {
			client_fail(client, error);
			return;
		}
		if (rs == SMTP_REPLY_DONE)
			handle_reply(client);
	}
}

static void client_send_quit(struct smtp_client *client)
{
	if (client->closed || postern_conn_is_closing(client->conn))
		return;
	client_write(client, "QUIT");
	client->state = CLIENT_QUIT;
	smtp_reply_init(&client->reply, false);
	client_timer(client, client->out->smtp->set.outbound_command_timeout);
	postern_conn_close_after_flush(client->conn, "done");
}

static void client_free(struct smtp_client *client)
{
	struct smtp_outbound *out = client->out;

	postern_timer_remove(&client->timer);
	out->smtp->stats.out_connections--;
	free(client->buf);
	free(client->host);
	free(client->peer);
	free(client);
}

static void client_event(struct postern_conn *conn, enum postern_conn_event event, void *ctx)
{
	struct smtp_client *client = ctx;

	switch (event) {
	case POSTERN_CONN_OPEN:
		expect(client, CLIENT_GREETING, false,
		       client->out->smtp->set.outbound_greeting_timeout);
		break;
	case POSTERN_CONN_INPUT:
		client_input(client);
		break;
	case POSTERN_CONN_DRAINED:
		if (client->state == CLIENT_SENDING && client->job != NULL)
			send_message_chunk(client);
		break;
	case POSTERN_CONN_TLS_READY:
		client_log(client, POSTERN_LOG_INFO, "TLS: %s",
			   postern_conn_tls_description(conn));
		send_ehlo(client);
		break;
	case POSTERN_CONN_EOF:
		if (client->job != NULL)
			client_fail(client, "connection closed by the server");
		break;
	case POSTERN_CONN_ERROR:
		if (client->job != NULL)
			client_fail(client, postern_conn_error(conn));
		break;
	case POSTERN_CONN_TIMEOUT:
		break;
	case POSTERN_CONN_CLOSED:
		client->closed = true;
		if (client->job != NULL)
			client_fail(client, "connection lost");
		client_free(client);
		break;
	default:
		break;
	}
}

static void client_timer_fired(struct postern_timer *timer, void *ctx)
{
	struct smtp_client *client = ctx;

	if (client->job == NULL) {
		/* QUIT took too long: just go. */
		postern_conn_close(client->conn, "quit timeout");
		return;
	}
	client_fail(client, "timeout");
}

static void client_timer(struct smtp_client *client, uint64_t ms)
{
	postern_timer_reset(client->timer, ms > 0 ? ms : 1);
}

struct smtp_client *smtp_client_start(struct smtp_job *job, const struct smtp_host *host,
				      bool tls_allowed)
{
	struct smtp_outbound *out = job->out;
	const struct smtp_settings *set = &out->smtp->set;
	struct postern_connect_settings cs = POSTERN_CONNECT_SETTINGS_INIT;
	struct smtp_client *client = smtp_alloc(sizeof(*client));
	const char *error;
	bool v6 = strchr(host->ip, ':') != NULL;
	char *address = smtp_asprintf(v6 ? "[%s]:%u" : "%s:%u", host->ip, host->port);

	client->job = job;
	client->out = out;
	client->tls_allowed = tls_allowed;
	client->host = smtp_strdup(host->name);
	client->peer = smtp_asprintf("%s[%s]:%u", host->name, host->ip, host->port);
	client->timer = postern_timer_add(out->smtp->mod, set->outbound_connect_timeout + 1000,
					  false, client_timer_fired, client);
	cs.address = address;
	cs.timeout_ms = set->outbound_connect_timeout;
	cs.max_line = set->outbound_max_reply_line;
	out->smtp->stats.out_connections++;
	client->conn = postern_connect(out->smtp->mod, &cs, client_event, client, &error);
	free(address);
	if (client->conn == NULL) {
		smtp_job_set_error(job, "%s: %s", client->peer, error);
		client_free(client);
		return NULL;
	}
	postern_conn_set_idle_timeout(client->conn, 0);
	postern_conn_set_state(client->conn, "CONNECT");
	return client;
}

void smtp_client_abort(struct smtp_client *client)
{
	client->job = NULL;
	postern_conn_close(client->conn, "cancelled");
}
