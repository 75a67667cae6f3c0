/*
 * Delivery status notifications (RFC 3464), built as pure text from a
 * report description: a multipart/report; report-type=delivery-status with
 * a human-readable part, the message/delivery-status part (per-message
 * fields, then one group per recipient) and the returned message
 * (message/rfc822 for RET=FULL when it is small enough, else
 * text/rfc822-headers). CRLF line ends, as every queued message.
 *
 * Whether a notice is owed at all (NOTIFY, the null sender) is decided in
 * rcpt.c; queueing it in notify.c. Values that came from the network
 * (addresses, remote replies) are made printable ASCII here, so they
 * cannot break the structure of the report.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue_store.h"

/* Every line stays below the 998 bytes RFC 5322 allows, whatever a client
 * or a remote server sent: texts, addresses and host names are cut. */
#define DSN_MAX_TEXT 400
#define DSN_MAX_ADDRESS 500
#define DSN_MAX_HOST 255

/* Printable ASCII: controls and 8-bit bytes become '?'. */
static void put_printable(struct qbuf *out, const char *text, size_t max)
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
		if (n++ == max) {
			qbuf_puts(out, "...");
			return;
		}
		char c = *p >= 0x20 && *p < 0x7f ? (char)*p : '?';

		qbuf_append(out, &c, 1);
	}
}

static bool is_ascii(const char *text)
{
	for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
		if (*p >= 0x80)
			return false;
	}
	return true;
}

/* One UTF-8 code point at *p; U+FFFD for a bad sequence (one byte eaten). */
static unsigned utf8_next(const unsigned char **p)
{
	const unsigned char *s = *p;
	unsigned cp, len;

	if (s[0] < 0xc2 || s[0] > 0xf4) {
		*p = s + 1;
		return 0xfffd;
	}
	len = s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : 4;
	cp = s[0] & (0x7fu >> len);
	for (unsigned i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80) {
			*p = s + 1;
			return 0xfffd;
		}
		cp = cp << 6 | (s[i] & 0x3fu);
	}
	*p = s + len;
	return cp;
}

/* "rfc822; addr", or RFC 6533 "utf-8; " utf-8-addr-xtext for an address
 * that is not ASCII. */
static void put_address(struct qbuf *out, const char *address)
{
	if (is_ascii(address)) {
		qbuf_puts(out, "rfc822; ");
		put_printable(out, address, DSN_MAX_ADDRESS);
		return;
	}
	qbuf_puts(out, "utf-8; ");
	size_t start = out->len;

	for (const unsigned char *p = (const unsigned char *)address; *p != '\0';) {
		if (out->len - start >= DSN_MAX_ADDRESS) {
			qbuf_puts(out, "...");
			return;
		}
		if (*p > 0x20 && *p < 0x7f && *p != '+' && *p != '=' && *p != '\\') {
			qbuf_append(out, p++, 1);
			continue;
		}
		unsigned cp = *p < 0x80 ? *p++ : utf8_next(&p);

		qbuf_printf(out, "\\x{%X}", cp);
	}
}

/* ORCPT arrives as "type;address" (decoded); anything else is taken as an
 * rfc822 address. */
static void put_orcpt(struct qbuf *out, const char *orcpt)
{
	const char *semi = strchr(orcpt, ';');

	if (semi == NULL || semi == orcpt || semi - orcpt > 32) {
		put_address(out, orcpt);
		return;
	}
	char *type = q_strndup(orcpt, (size_t)(semi - orcpt));

	put_printable(out, type, 32);
	free(type);
	qbuf_puts(out, "; ");
	semi++;
	while (*semi == ' ')
		semi++;
	put_printable(out, semi, DSN_MAX_ADDRESS);
}

static void put_date_field(struct qbuf *out, const char *name, uint64_t ms)
{
	char date[64];

	q_rfc5322_date(ms, date, sizeof(date));
	qbuf_printf(out, "%s: %s\r\n", name, date);
}

static const char *subject_of(enum qdsn_kind kind)
{
	switch (kind) {
	case QDSN_DELAY:
		return "Delayed Mail (still being retried)";
	case QDSN_SUCCESS:
		return "Successful Mail Delivery Report";
	case QDSN_FAILURE:
		break;
	}
	return "Undelivered Mail Returned to Sender";
}

static void put_reason(struct qbuf *out, const struct qrcpt *rcpt)
{
	if (rcpt->code != 0)
		qbuf_printf(out, "%u %s ", rcpt->code, rcpt->status != NULL ? rcpt->status : "");
	put_printable(out, rcpt->text != NULL ? rcpt->text : "(no details)", DSN_MAX_TEXT);
	if (rcpt->remote_mta != NULL) {
		qbuf_puts(out, " (remote host ");
		put_printable(out, rcpt->remote_mta, DSN_MAX_HOST);
		qbuf_puts(out, ")");
	}
}

static void put_human_part(struct qbuf *out, const struct dsn_report *report)
{
	char until[64];

	qbuf_puts(out, "Content-Description: Notification\r\n"
		       "Content-Type: text/plain; charset=us-ascii\r\n\r\n");
	qbuf_puts(out, "This is the mail system at host ");
	put_printable(out, report->reporting_mta, 255);
	qbuf_puts(out, ".\r\n\r\n");
	switch (report->kind) {
	case QDSN_FAILURE:
		qbuf_puts(out, "Your message could not be delivered to one or more\r\n"
			       "recipients. The reasons are below.\r\n");
		qbuf_puts(out, report->return_full && !report->too_big
				       ? "The message is attached.\r\n"
				       : "The headers of the message are attached.\r\n");
		if (report->too_big)
			qbuf_puts(out, "(The message was too big to return in full.)\r\n");
		break;
	case QDSN_DELAY:
		q_rfc5322_date(report->will_retry_until_ms, until, sizeof(until));
		qbuf_printf(out, "Your message could not be delivered yet to one or more\r\n"
				 "recipients. The mail system will keep trying until\r\n"
				 "%s; you do not need to send it again.\r\n", until);
		break;
	case QDSN_SUCCESS:
		qbuf_puts(out, "Your message was delivered to the recipients below,\r\n"
			       "as you asked with NOTIFY=SUCCESS.\r\n");
		break;
	}
	qbuf_puts(out, "\r\n");
	for (unsigned i = 0; i < report->rcpt_count; i++) {
		const struct qrcpt *rcpt = report->rcpts[i].rcpt;

		qbuf_puts(out, "<");
		put_printable(out, rcpt->address, DSN_MAX_ADDRESS);
		qbuf_puts(out, ">:\r\n    ");
		if (report->kind == QDSN_SUCCESS)
			qbuf_puts(out, rcpt->remote_mta != NULL ? "relayed" : "delivered");
		else
			put_reason(out, rcpt);
		qbuf_puts(out, "\r\n");
	}
}

static void put_rcpt_fields(struct qbuf *out, const struct dsn_report *report,
			    const struct dsn_rcpt *entry)
{
	const struct qrcpt *rcpt = entry->rcpt;

	qbuf_puts(out, "\r\n");
	if (rcpt->orcpt != NULL) {
		qbuf_puts(out, "Original-Recipient: ");
		put_orcpt(out, rcpt->orcpt);
		qbuf_puts(out, "\r\n");
	}
	qbuf_puts(out, "Final-Recipient: ");
	put_address(out, rcpt->address);
	qbuf_printf(out, "\r\nAction: %s\r\n", entry->action);
	qbuf_printf(out, "Status: %s\r\n", rcpt->status != NULL ? rcpt->status
				  : report->kind == QDSN_SUCCESS ? "2.0.0"
				  : report->kind == QDSN_DELAY ? "4.0.0" : "5.0.0");
	if (rcpt->remote_mta != NULL) {
		qbuf_puts(out, "Remote-MTA: dns; ");
		put_printable(out, rcpt->remote_mta, DSN_MAX_HOST);
		qbuf_puts(out, "\r\n");
	}
	if (rcpt->code != 0 || rcpt->text != NULL) {
		qbuf_puts(out, rcpt->code != 0 ? "Diagnostic-Code: smtp; " : "Diagnostic-Code: x-postern; ");
		if (rcpt->code != 0)
			qbuf_printf(out, "%u %s ", rcpt->code, rcpt->status != NULL ? rcpt->status : "");
		put_printable(out, rcpt->text != NULL ? rcpt->text : "", DSN_MAX_TEXT);
		qbuf_puts(out, "\r\n");
	}
	if (rcpt->last_ms != 0)
		put_date_field(out, "Last-Attempt-Date", rcpt->last_ms);
	if (report->kind == QDSN_DELAY)
		put_date_field(out, "Will-Retry-Until", report->will_retry_until_ms);
}

static void put_status_part(struct qbuf *out, const struct dsn_report *report)
{
	const struct qenvelope *env = report->env;

	qbuf_puts(out, "Content-Description: Delivery report\r\n"
		       "Content-Type: message/delivery-status\r\n\r\n");
	qbuf_puts(out, "Reporting-MTA: dns; ");
	put_printable(out, report->reporting_mta, 255);
	qbuf_printf(out, "\r\nX-Postern-Queue-ID: %s\r\n", env->id);
	qbuf_puts(out, "X-Postern-Sender: ");
	put_address(out, env->sender);
	qbuf_puts(out, "\r\n");
	if (env->envid != NULL) {
		qbuf_puts(out, "Original-Envelope-Id: ");
		put_printable(out, env->envid, DSN_MAX_TEXT);
		qbuf_puts(out, "\r\n");
	}
	put_date_field(out, "Arrival-Date", env->arrival_ms);
	for (unsigned i = 0; i < report->rcpt_count; i++)
		put_rcpt_fields(out, report, &report->rcpts[i]);
}

static bool has_8bit(const char *data, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)data[i] >= 0x80)
			return true;
	}
	return false;
}

size_t dsn_header_section_len(const char *message, size_t len)
{
	if (len >= 2 && message[0] == '\r' && message[1] == '\n')
		return 2;
	const char *end = memmem(message, len, "\r\n\r\n", 4);

	return end == NULL ? len : (size_t)(end - message) + 4;
}

void dsn_build(struct qbuf *out, const struct dsn_report *report)
{
	const struct qenvelope *env = report->env;
	bool full = report->return_full && !report->too_big;
	size_t returned_len = full ? report->message_len
				   : dsn_header_section_len(report->message, report->message_len);
	bool eight_bit = has_8bit(report->message, returned_len) || !is_ascii(env->sender);
	char boundary[70]; /* RFC 2046: at most 70 characters */
	char date[64];

	snprintf(boundary, sizeof(boundary), "%s/report", report->dsn_id);
	for (char *p = boundary; *p != '\0'; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '/' || *p == '-'))
			*p = '-';
	}
	q_rfc5322_date(report->now_ms, date, sizeof(date));
	qbuf_printf(out, "Date: %s\r\n", date);
	qbuf_puts(out, "From: Mail Delivery System <MAILER-DAEMON@");
	put_printable(out, report->reporting_mta, 255);
	qbuf_puts(out, ">\r\nTo: <");
	/* The sender as it was given: it may be an SMTPUTF8 address. */
	for (const char *p = env->sender; *p != '\0' && p - env->sender < DSN_MAX_ADDRESS; p++) {
		char c = (unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p;

		qbuf_append(out, &c, 1);
	}
	qbuf_printf(out, ">\r\nSubject: %s\r\n", subject_of(report->kind));
	qbuf_printf(out, "Message-ID: <%s.dsn@", report->dsn_id);
	put_printable(out, report->reporting_mta, 255);
	qbuf_puts(out, ">\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n");
	qbuf_printf(out, "Content-Type: multipart/report; report-type=delivery-status;\r\n"
			 "\tboundary=\"%s\"\r\n", boundary);
	qbuf_printf(out, "Content-Transfer-Encoding: %s\r\n\r\n", eight_bit ? "8bit" : "7bit");
	qbuf_puts(out, "This is a MIME-encapsulated message.\r\n\r\n");

	qbuf_printf(out, "--%s\r\n", boundary);
	put_human_part(out, report);
	qbuf_printf(out, "\r\n--%s\r\n", boundary);
	put_status_part(out, report);
	qbuf_printf(out, "\r\n--%s\r\n", boundary);
	if (full) {
		qbuf_puts(out, "Content-Description: Undelivered Message\r\n"
			       "Content-Type: message/rfc822\r\n");
	} else {
		qbuf_puts(out, "Content-Description: Message Headers\r\n"
			       "Content-Type: text/rfc822-headers\r\n");
	}
	if (has_8bit(report->message, returned_len))
		qbuf_puts(out, "Content-Transfer-Encoding: 8bit\r\n");
	qbuf_puts(out, "\r\n");
	qbuf_append(out, report->message, returned_len);
	if (returned_len < 2 || memcmp(report->message + returned_len - 2, "\r\n", 2) != 0)
		qbuf_puts(out, "\r\n");
	qbuf_printf(out, "\r\n--%s--\r\n", boundary);
}
