/*
 * Fuzz target for the queue-store module's parsers and the notice builder:
 * queue files and state files as found on disk after a crash or damage
 * (torn, corrupted, hand-edited), and remote replies and addresses that
 * end up in delivery status notifications. Input:
 *
 *   byte 0 even: a queue file; if it parses, the rest after a NUL is also
 *                tried as its state file
 *   byte 0 odd:  text for a notice (the recipient's address, the remote
 *                reply text, the remote MTA, split at NULs); the built
 *                notice must keep its structure: CRLF lines under 1000 bytes
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "queue_store.h"

static void fuzz_files(const char *data, size_t size)
{
	struct qenvelope env;
	struct qfile_info info;
	const char *error;
	const char *nul = memchr(data, '\0', size);
	size_t file_len = nul != NULL ? (size_t)(nul - data) : size;
	bool held, warned;

	if (qfile_check_buffer(data, file_len, &env, &info, &error) < 0) {
		if (error == NULL)
			abort();
		return;
	}
	if (info.file_size != file_len || info.header_len + info.body_size > file_len)
		abort();
	if (nul != NULL)
		(void)qstate_parse(nul + 1, size - file_len - 1, &env, &held, &warned, &error);
	qenvelope_clear(&env);
}

static char *next_part(const char **p, const char *end)
{
	const char *nul = memchr(*p, '\0', (size_t)(end - *p));
	size_t len = nul != NULL ? (size_t)(nul - *p) : (size_t)(end - *p);
	char *part = q_strndup(*p, len);

	*p += nul != NULL ? len + 1 : len;
	return part;
}

static void fuzz_notice(const char *data, size_t size)
{
	const char *p = data, *end = data + size;
	struct qenvelope env = { 0 };
	struct qrcpt rcpt = { 0 };
	struct dsn_rcpt entry = { &rcpt, "failed" };
	struct dsn_report report = { .kind = QDSN_FAILURE };
	struct qbuf out = { 0 };
	static const char original[] = "Subject: x\r\n\r\nbody\r\n";

	rcpt.address = next_part(&p, end);
	rcpt.text = next_part(&p, end);
	rcpt.remote_mta = next_part(&p, end);
	rcpt.orcpt = next_part(&p, end);
	rcpt.code = 550;
	rcpt.status = q_strdup("5.1.1");
	memcpy(env.id, "6B0230F387D60D11", QID_SIZE);
	env.sender = q_strdup("bob@example.test");
	env.envid = next_part(&p, end);
	report.reporting_mta = "mx.example.test";
	report.env = &env;
	report.dsn_id = "6B0230F387D60D11.f00000";
	report.rcpts = &entry;
	report.rcpt_count = 1;
	report.message = original;
	report.message_len = sizeof(original) - 1;
	dsn_build(&out, &report);
	/* Structure intact: CRLF lines, none over 998 bytes, no NUL. */
	size_t line = 0;

	for (size_t i = 0; i < out.len; i++) {
		if (out.data[i] == '\0')
			abort();
		if (out.data[i] == '\n') {
			if (i == 0 || out.data[i - 1] != '\r' || line > 999)
				abort();
			line = 0;
		} else if (out.data[i] == '\r' && (i + 1 == out.len || out.data[i + 1] != '\n')) {
			abort();
		} else {
			line++;
		}
	}
	qbuf_free(&out);
	qrcpt_clear(&rcpt);
	qenvelope_clear(&env);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0 || size > (1u << 20))
		return 0;
	if ((data[0] & 1) == 0)
		fuzz_files((const char *)data + 1, size - 1);
	else
		fuzz_notice((const char *)data + 1, size - 1);
	return 0;
}
