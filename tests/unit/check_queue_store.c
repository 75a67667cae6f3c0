/*
 * Unit tests of the queue-store module's pure parts, its own Check runner
 * in fork mode: `check_queue_store SUITE` runs one suite by name.
 *
 * What must hold: a queue or state file round-trips; a file cut at any
 * length, with any byte changed, or of another format version is refused;
 * retries back off and spread as documented and notices and expiry come
 * at the configured times (any clock); recipients move between states as
 * rcpt.c says and owe the notices NOTIFY asks for; notices carry the RFC
 * 3464 fields; a recycled file is only ever one that is there and empty,
 * and there are never more spares than the bound. (The notices are parsed
 * by Python's email package in tests/integration/test_queue_dsn.py.)
 */
#include <check.h>
#include "check_main.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "queue_store.h"

#define MIN(a, b) ((a) < (b) ? (a) : (b))

/* ---- helpers ---- */

static void make_envelope(struct qenvelope *env, unsigned rcpts)
{
	memset(env, 0, sizeof(*env));
	memcpy(env->id, "6B0230F387D60D11", QID_SIZE);
	env->arrival_ms = 1795305715123ull;
	env->sender = q_strdup("bob@example.test");
	env->ret = POSTERN_RET_FULL;
	env->envid = q_strdup("env id with spaces % and \x01 control");
	env->body_8bitmime = true;
	env->client_address = q_strdup("192.0.2.7");
	env->client_name = q_strdup("client.example");
	env->received_by = q_strdup("smtp");
	env->rcpt_count = rcpts;
	env->rcpts = q_calloc(rcpts, sizeof(*env->rcpts));
	for (unsigned i = 0; i < rcpts; i++) {
		char address[64];

		snprintf(address, sizeof(address), "user%u@example.test", i);
		env->rcpts[i].address = q_strdup(address);
		env->rcpts[i].notify = i % 2 == 0 ? 0 : POSTERN_NOTIFY_SUCCESS | POSTERN_NOTIFY_FAILURE;
		env->rcpts[i].orcpt = i % 3 == 0 ? q_strdup("rfc822;Orig+2BUser@example.test") : NULL;
	}
}

static const char body[] = "From: bob@example.test\r\nSubject: test\r\n\r\nline 1\r\n"
			   "POSTERN-END 0000000000000000 00000000\r\n.\r\nlast\r\n";

/* A complete queue file in memory. */
static void make_file(struct qbuf *out, const struct qenvelope *env, const char *data, size_t len)
{
	char trailer[QFILE_TRAILER_LEN + 1];
	uint32_t crc;

	qfile_format_header(out, env);
	qbuf_append(out, data, len);
	crc = crc32c_update(0, out->data, out->len);
	qfile_format_trailer(trailer, len, crc);
	qbuf_append(out, trailer, QFILE_TRAILER_LEN);
}

static void assert_same_envelope(const struct qenvelope *a, const struct qenvelope *b)
{
	ck_assert_str_eq(a->id, b->id);
	ck_assert_uint_eq(a->arrival_ms, b->arrival_ms);
	ck_assert_str_eq(a->sender, b->sender);
	ck_assert_int_eq(a->ret, b->ret);
	ck_assert_pstr_eq(a->envid, b->envid);
	ck_assert_int_eq(a->body_8bitmime, b->body_8bitmime);
	ck_assert_int_eq(a->smtputf8, b->smtputf8);
	ck_assert_pstr_eq(a->client_address, b->client_address);
	ck_assert_pstr_eq(a->client_name, b->client_name);
	ck_assert_pstr_eq(a->auth_user, b->auth_user);
	ck_assert_pstr_eq(a->received_by, b->received_by);
	ck_assert_int_eq(a->kind, b->kind);
	ck_assert_uint_eq(a->rcpt_count, b->rcpt_count);
	for (unsigned i = 0; i < a->rcpt_count; i++) {
		ck_assert_str_eq(a->rcpts[i].address, b->rcpts[i].address);
		ck_assert_pstr_eq(a->rcpts[i].orcpt, b->rcpts[i].orcpt);
		ck_assert_uint_eq(a->rcpts[i].notify, b->rcpts[i].notify);
	}
}

/* ---- crc32c ---- */

START_TEST(test_crc_vector)
{
	ck_assert_uint_eq(crc32c_update(0, "123456789", 9), 0xe3069283u);
	ck_assert_uint_eq(crc32c_update_portable(0, "123456789", 9), 0xe3069283u);
	ck_assert_uint_eq(crc32c_update(0, "", 0), 0);
	/* Incremental equals one pass. */
	ck_assert_uint_eq(crc32c_update(crc32c_update(0, "1234", 4), "56789", 5), 0xe3069283u);
}
END_TEST

START_TEST(test_crc_hw_matches_portable)
{
	unsigned char data[1000];

	for (unsigned i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 131 + 7);
	for (unsigned start = 0; start < 9; start++) {
		for (unsigned len = 0; len + start <= sizeof(data); len += 37)
			ck_assert_uint_eq(crc32c_update(5, data + start, len),
					  crc32c_update_portable(5, data + start, len));
	}
}
END_TEST

/* ---- record ---- */

START_TEST(test_record_round_trip_all_bytes)
{
	char value[256];
	struct qbuf buf = { 0 };
	char *fields[4], *decoded;

	for (int i = 1; i < 256; i++)
		value[i - 1] = (char)i;
	value[255] = '\0';
	record_put_string(&buf, value);
	qbuf_puts(&buf, " ");
	record_put_string(&buf, NULL);
	qbuf_puts(&buf, " ");
	record_put_string(&buf, "");
	ck_assert_ptr_null(strpbrk(buf.data, "\r\n\t"));
	ck_assert_int_eq(record_split(buf.data, fields, 4), 3);
	ck_assert_int_eq(record_get_string(fields[0], &decoded), 0);
	ck_assert_str_eq(decoded, value);
	free(decoded);
	ck_assert_int_eq(record_get_string(fields[1], &decoded), 0);
	ck_assert_ptr_null(decoded);
	ck_assert_int_eq(record_get_string(fields[2], &decoded), 0);
	ck_assert_str_eq(decoded, "");
	free(decoded);
	qbuf_free(&buf);
}
END_TEST

START_TEST(test_record_bad_fields)
{
	char *value;
	uint64_t number;
	char line[] = "a b c d e";
	char *fields[3];

	ck_assert_int_eq(record_get_string("plain", &value), -1);
	ck_assert_int_eq(record_get_string("+%0", &value), -1);
	ck_assert_int_eq(record_get_string("+%zz", &value), -1);
	ck_assert_int_eq(record_get_string("+%00", &value), -1); /* no NUL inside */
	ck_assert_int_eq(record_get_string("+a%", &value), -1);
	ck_assert_int_eq(record_get_u64("18446744073709551615", UINT64_MAX, &number), 0);
	ck_assert_uint_eq(number, UINT64_MAX);
	ck_assert_int_eq(record_get_u64("18446744073709551616", UINT64_MAX, &number), -1);
	ck_assert_int_eq(record_get_u64("-1", UINT64_MAX, &number), -1);
	ck_assert_int_eq(record_get_u64("", UINT64_MAX, &number), -1);
	ck_assert_int_eq(record_get_u64("11", 10, &number), -1);
	ck_assert_int_eq(record_split(line, fields, 3), -1);
}
END_TEST

/* ---- qid ---- */

START_TEST(test_qid)
{
	char a[QID_SIZE], b[QID_SIZE];

	qid_generate(1795305715123456ull, 0xabc, a);
	ck_assert_str_eq(a, "6B0230F31E240ABC");
	ck_assert(qid_valid(a));
	qid_generate(1795305715123457ull, 0, b);
	ck_assert_int_lt(strcmp(a, b), 0); /* later sorts after */
	ck_assert(!qid_valid("6B0230F31E240AB"));
	ck_assert(!qid_valid("6B0230F31E240ABCD"));
	ck_assert(!qid_valid("6b0230f31e240abc"));
	ck_assert(!qid_valid("../../etc/passwd"));
}
END_TEST

/* ---- qfile ---- */

START_TEST(test_qfile_round_trip)
{
	struct qenvelope env, parsed;
	struct qfile_info info;
	struct qbuf file = { 0 };
	const char *error = NULL;

	make_envelope(&env, 7);
	make_file(&file, &env, body, sizeof(body) - 1);
	ck_assert_msg(qfile_check_buffer(file.data, file.len, &parsed, &info, &error) == 0,
		      "%s", error);
	assert_same_envelope(&env, &parsed);
	ck_assert_uint_eq(info.body_size, sizeof(body) - 1);
	ck_assert_uint_eq(info.file_size, file.len);
	ck_assert_mem_eq(file.data + info.header_len, body, sizeof(body) - 1);
	qenvelope_clear(&parsed);
	qenvelope_clear(&env);
	qbuf_free(&file);
}
END_TEST

START_TEST(test_qfile_empty_body_and_null_sender)
{
	struct qenvelope env, parsed;
	struct qfile_info info;
	struct qbuf file = { 0 };
	const char *error = NULL;

	make_envelope(&env, 1);
	free(env.sender);
	env.sender = q_strdup("");
	env.kind = QK_DSN;
	make_file(&file, &env, "", 0);
	ck_assert_msg(qfile_check_buffer(file.data, file.len, &parsed, &info, &error) == 0,
		      "%s", error);
	ck_assert_str_eq(parsed.sender, "");
	ck_assert_int_eq(parsed.kind, QK_DSN);
	ck_assert_uint_eq(info.body_size, 0);
	qenvelope_clear(&parsed);
	qenvelope_clear(&env);
	qbuf_free(&file);
}
END_TEST

START_TEST(test_qfile_torn_at_every_length)
{
	struct qenvelope env, parsed;
	struct qfile_info info;
	struct qbuf file = { 0 };
	const char *error;

	make_envelope(&env, 3);
	make_file(&file, &env, body, sizeof(body) - 1);
	for (size_t len = 0; len < file.len; len++) {
		char *copy = q_malloc(len + 1);

		memcpy(copy, file.data, len);
		error = NULL;
		ck_assert_msg(qfile_check_buffer(copy, len, &parsed, &info, &error) == -1,
			      "a file cut at %zu of %zu bytes was accepted", len, file.len);
		ck_assert_ptr_nonnull(error);
		free(copy);
	}
	qenvelope_clear(&env);
	qbuf_free(&file);
}
END_TEST

START_TEST(test_qfile_torn_fd_every_length)
{
	struct qenvelope env, parsed;
	struct qfile_info info;
	struct qbuf file = { 0 };
	const char *error;
	char path[] = "/tmp/check_queue_store.XXXXXX";
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	unlink(path);
	make_envelope(&env, 3);
	make_file(&file, &env, body, sizeof(body) - 1);
	ck_assert_int_eq(q_write_all(fd, file.data, file.len), 0);
	ck_assert_msg(qfile_read_fd(fd, &parsed, &info, &error) == 0, "%s", error);
	assert_same_envelope(&env, &parsed);
	qenvelope_clear(&parsed);
	for (size_t len = file.len; len-- > 0;) {
		ck_assert_int_eq(ftruncate(fd, (off_t)len), 0);
		ck_assert_msg(qfile_read_fd(fd, &parsed, &info, &error) == -1,
			      "a file cut at %zu bytes was accepted", len);
	}
	close(fd);
	qenvelope_clear(&env);
	qbuf_free(&file);
}
END_TEST

START_TEST(test_qfile_any_changed_byte_is_caught)
{
	struct qenvelope env, parsed;
	struct qfile_info info;
	struct qbuf file = { 0 };
	const char *error;

	make_envelope(&env, 2);
	make_file(&file, &env, body, sizeof(body) - 1);
	for (size_t i = 0; i < file.len; i++) {
		file.data[i] ^= 0x04;
		ck_assert_msg(qfile_check_buffer(file.data, file.len, &parsed, &info, &error) == -1,
			      "a change at byte %zu was not noticed", i);
		file.data[i] ^= 0x04;
	}
	ck_assert_int_eq(qfile_check_buffer(file.data, file.len, &parsed, &info, &error), 0);
	qenvelope_clear(&parsed);
	/* A body byte changed: the checksum says so. */
	file.data[file.len - QFILE_TRAILER_LEN - 3] ^= 1;
	ck_assert_int_eq(qfile_check_buffer(file.data, file.len, &parsed, &info, &error), -1);
	ck_assert_ptr_nonnull(strstr(error, "checksum"));
	qenvelope_clear(&env);
	qbuf_free(&file);
}
END_TEST

START_TEST(test_qfile_version_mismatch)
{
	struct qenvelope env, parsed;
	struct qfile_info info;
	struct qbuf file = { 0 };
	const char *error = NULL;

	make_envelope(&env, 1);
	make_file(&file, &env, body, sizeof(body) - 1);
	file.data[strlen(QFILE_MAGIC) + 1] = '2';
	ck_assert_int_eq(qfile_check_buffer(file.data, file.len, &parsed, &info, &error), -1);
	ck_assert_ptr_nonnull(strstr(error, "version 2"));
	/* Also from the first line alone (a torn newer file). */
	ck_assert_int_eq(qfile_parse_header(file.data, 20, &parsed, &info.header_len, &error),
			 -1);
	ck_assert_ptr_nonnull(strstr(error, "version 2"));
	file.data[0] = 'X';
	ck_assert_int_eq(qfile_check_buffer(file.data, file.len, &parsed, &info, &error), -1);
	ck_assert_ptr_nonnull(strstr(error, "not a queue file"));
	qenvelope_clear(&env);
	qbuf_free(&file);
}
END_TEST

static int check_header_text(const char *header, const char **error_r)
{
	struct qbuf file = { 0 };
	struct qenvelope parsed;
	struct qfile_info info;
	char trailer[QFILE_TRAILER_LEN + 1];
	int ret;

	qbuf_puts(&file, header);
	qbuf_puts(&file, "x");
	qfile_format_trailer(trailer, 1, crc32c_update(0, file.data, file.len));
	qbuf_append(&file, trailer, QFILE_TRAILER_LEN);
	ret = qfile_check_buffer(file.data, file.len, &parsed, &info, error_r);
	if (ret == 0)
		qenvelope_clear(&parsed);
	qbuf_free(&file);
	return ret;
}

START_TEST(test_qfile_bad_envelopes)
{
	static const char *const bad[] = {
		/* no recipients */
		"POSTERN-QUEUE 1\nid +6B0230F387D60D11\narrival 1\nsender +a@b\n\n",
		/* no id */
		"POSTERN-QUEUE 1\narrival 1\nsender +a@b\nrcpt 0 - +c@d\n\n",
		/* bad id */
		"POSTERN-QUEUE 1\nid +../x\narrival 1\nsender +a@b\nrcpt 0 - +c@d\n\n",
		/* sender twice */
		"POSTERN-QUEUE 1\nid +6B0230F387D60D11\narrival 1\nsender +a@b\nsender +a@b\n"
		"rcpt 0 - +c@d\n\n",
		/* NULL recipient address */
		"POSTERN-QUEUE 1\nid +6B0230F387D60D11\narrival 1\nsender +a@b\nrcpt 0 - -\n\n",
		/* unescaped junk in a field */
		"POSTERN-QUEUE 1\nid +6B0230F387D60D11\narrival 1x\nsender +a@b\nrcpt 0 - +c@d\n\n",
		/* bad notify */
		"POSTERN-QUEUE 1\nid +6B0230F387D60D11\narrival 1\nsender +a@b\nrcpt 999 - +c@d\n\n",
		/* bad ret */
		"POSTERN-QUEUE 1\nid +6B0230F387D60D11\narrival 1\nsender +a@b\nret maybe\n"
		"rcpt 0 - +c@d\n\n",
	};
	const char *error;

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		error = NULL;
		ck_assert_msg(check_header_text(bad[i], &error) == -1, "bad envelope %u accepted", i);
		ck_assert_ptr_nonnull(error);
	}
	/* Unknown records of a later minor change are ignored. */
	ck_assert_int_eq(check_header_text("POSTERN-QUEUE 1\nid +6B0230F387D60D11\narrival 1\n"
					   "sender +a@b\nfuture +x y z\nrcpt 0 - +c@d\n\n", &error),
			 0);
}
END_TEST

START_TEST(test_qfile_envelope_checks)
{
	struct qenvelope env;
	const char *error;

	make_envelope(&env, 2);
	ck_assert_int_eq(qfile_envelope_valid(&env, &error), 0);
	env.rcpts[1].notify = POSTERN_NOTIFY_NEVER | POSTERN_NOTIFY_SUCCESS;
	ck_assert_int_eq(qfile_envelope_valid(&env, &error), -1);
	env.rcpts[1].notify = 0;
	free(env.rcpts[0].address);
	env.rcpts[0].address = q_strdup("a\r\nRCPT TO:<x@y>");
	ck_assert_int_eq(qfile_envelope_valid(&env, &error), -1);
	free(env.rcpts[0].address);
	env.rcpts[0].address = q_strdup("");
	ck_assert_int_eq(qfile_envelope_valid(&env, &error), -1);
	qenvelope_clear(&env);
}
END_TEST

/* ---- qstate ---- */

static void state_sample(struct qenvelope *env)
{
	make_envelope(env, 4);
	env->rcpts[0].state = QR_DELIVERED;
	env->rcpts[0].attempts = 1;
	env->rcpts[0].last_ms = 1000;
	env->rcpts[0].code = 250;
	env->rcpts[0].status = q_strdup("2.0.0");
	env->rcpts[0].text = q_strdup("delivered to maildir");
	env->rcpts[0].owed = QDSN_SUCCESS;
	env->rcpts[2].attempts = 3;
	env->rcpts[2].last_ms = 2000;
	env->rcpts[2].next_ms = 3000;
	env->rcpts[2].code = 451;
	env->rcpts[2].status = q_strdup("4.4.1");
	env->rcpts[2].remote_mta = q_strdup("mx.remote.test");
	env->rcpts[2].text = q_strdup("try again\twith tabs and \xc3\xa9 and %");
	env->rcpts[3].state = QR_EXPIRED;
	env->rcpts[3].owed = QDSN_FAILURE | QDSN_DELAY;
}

START_TEST(test_qstate_round_trip)
{
	struct qenvelope env, loaded;
	struct qbuf buf = { 0 };
	bool held, warned;
	const char *error = NULL;

	state_sample(&env);
	qstate_format(&buf, &env, true, true);
	make_envelope(&loaded, 4);
	ck_assert_msg(qstate_parse(buf.data, buf.len, &loaded, &held, &warned, &error) == 0,
		      "%s", error);
	ck_assert(held && warned);
	for (unsigned i = 0; i < 4; i++) {
		const struct qrcpt *a = &env.rcpts[i], *b = &loaded.rcpts[i];

		ck_assert_int_eq(a->state, b->state);
		ck_assert_uint_eq(a->attempts, b->attempts);
		ck_assert_uint_eq(a->last_ms, b->last_ms);
		ck_assert_uint_eq(a->next_ms, b->next_ms);
		ck_assert_uint_eq(a->code, b->code);
		ck_assert_uint_eq(a->owed, b->owed);
		ck_assert_pstr_eq(a->status, b->status);
		ck_assert_pstr_eq(a->text, b->text);
		ck_assert_pstr_eq(a->remote_mta, b->remote_mta);
	}
	/* Recipient 1 was never touched: it is not even written. */
	ck_assert_int_eq(loaded.rcpts[1].state, QR_PENDING);
	qenvelope_clear(&loaded);
	qenvelope_clear(&env);
	qbuf_free(&buf);
}
END_TEST

START_TEST(test_qstate_torn_and_damaged)
{
	struct qenvelope env, loaded;
	struct qbuf buf = { 0 };
	bool held, warned;
	const char *error;

	state_sample(&env);
	qstate_format(&buf, &env, false, true);
	make_envelope(&loaded, 4);
	for (size_t len = 0; len < buf.len; len++)
		ck_assert_msg(qstate_parse(buf.data, len, &loaded, &held, &warned, &error) == -1,
			      "state cut at %zu accepted", len);
	for (size_t i = 0; i < buf.len; i++) {
		buf.data[i] ^= 0x10;
		ck_assert_msg(qstate_parse(buf.data, buf.len, &loaded, &held, &warned, &error) == -1,
			      "a change at byte %zu was not noticed", i);
		buf.data[i] ^= 0x10;
	}
	qenvelope_clear(&loaded);
	/* Another message's state. */
	make_envelope(&loaded, 4);
	memcpy(loaded.id, "6B0230F387D60D12", QID_SIZE);
	ck_assert_int_eq(qstate_parse(buf.data, buf.len, &loaded, &held, &warned, &error), -1);
	ck_assert_ptr_nonnull(strstr(error, "another message"));
	qenvelope_clear(&loaded);
	/* A recipient index the message does not have. */
	make_envelope(&loaded, 3);
	ck_assert_int_eq(qstate_parse(buf.data, buf.len, &loaded, &held, &warned, &error), -1);
	qenvelope_clear(&loaded);
	qenvelope_clear(&env);
	qbuf_free(&buf);
}
END_TEST

START_TEST(test_qstate_version_mismatch)
{
	struct qenvelope env, loaded;
	struct qbuf buf = { 0 }, other = { 0 };
	bool held, warned;
	const char *error;
	char *one;

	state_sample(&env);
	qstate_format(&buf, &env, false, false);
	/* Rewrite as version 2 with a correct checksum: still refused. */
	one = strstr(buf.data, " 1\n");
	ck_assert_ptr_nonnull(one);
	one[1] = '2';
	qbuf_append(&other, buf.data, buf.len - (sizeof("POSTERN-END 00000000\n") - 1));
	qbuf_printf(&other, "POSTERN-END %08X\n", crc32c_update(0, other.data, other.len));
	make_envelope(&loaded, 4);
	ck_assert_int_eq(qstate_parse(other.data, other.len, &loaded, &held, &warned, &error), -1);
	ck_assert_ptr_nonnull(strstr(error, "version"));
	qenvelope_clear(&loaded);
	qenvelope_clear(&env);
	qbuf_free(&buf);
	qbuf_free(&other);
}
END_TEST

/* ---- schedule ---- */

static const struct qtiming timing = {
	.retry_min_ms = 5 * 60 * 1000,
	.retry_max_ms = 60 * 60 * 1000,
	.delay_warning_ms = 4 * 3600 * 1000ull,
	.max_lifetime_ms = 5 * 86400 * 1000ull,
};

START_TEST(test_sched_backoff)
{
	static const uint64_t expect[] = { 5, 5, 10, 20, 40, 60, 60, 60 };

	for (unsigned n = 0; n < sizeof(expect) / sizeof(expect[0]); n++)
		ck_assert_uint_eq(sched_backoff(&timing, n), expect[n] * 60 * 1000);
	/* No overflow after very many attempts. */
	ck_assert_uint_eq(sched_backoff(&timing, UINT32_MAX), timing.retry_max_ms);
	struct qtiming huge = { .retry_min_ms = UINT64_MAX / 3, .retry_max_ms = UINT64_MAX };

	ck_assert_uint_eq(sched_backoff(&huge, 10), UINT64_MAX);
}
END_TEST

START_TEST(test_sched_jitter_bounds)
{
	static const uint64_t delays[] = { 0, 1, 3, 4, 1000, 300000, 3600000, UINT64_MAX };

	for (unsigned i = 0; i < sizeof(delays) / sizeof(delays[0]); i++) {
		uint64_t d = delays[i];

		ck_assert_uint_eq(sched_jitter(d, 0), d);
		ck_assert_uint_ge(sched_jitter(d, UINT32_MAX), d - d / 4);
		ck_assert_uint_le(sched_jitter(d, UINT32_MAX), d);
		for (uint32_t r = 1; r != 0 && r < UINT32_MAX / 2; r *= 3) {
			uint64_t j = sched_jitter(d, r);

			ck_assert_uint_le(j, d);
			ck_assert_uint_ge(j, d - d / 4);
		}
	}
	/* It spreads: different random numbers, different waits. */
	ck_assert_uint_ne(sched_jitter(3600000, 0), sched_jitter(3600000, UINT32_MAX / 2));
}
END_TEST

START_TEST(test_sched_deadlines)
{
	struct qenvelope env;
	uint64_t arrival;

	make_envelope(&env, 2);
	arrival = env.arrival_ms;
	ck_assert_uint_eq(sched_warn_at(&timing, arrival), arrival + 4 * 3600 * 1000ull);
	ck_assert_uint_eq(sched_expire_at(&timing, arrival), arrival + 5 * 86400 * 1000ull);
	struct qtiming no_warn = timing;

	no_warn.delay_warning_ms = 0;
	ck_assert_uint_eq(sched_warn_at(&no_warn, arrival), 0);

	/* Fresh: due at once (next_ms 0). */
	ck_assert_uint_eq(sched_due(&timing, &env, false, 0), 0);
	/* Deferred: the earliest retry; the delay notice when it is earlier. */
	env.rcpts[0].attempts = env.rcpts[1].attempts = 1;
	env.rcpts[0].next_ms = arrival + 3600 * 1000;
	env.rcpts[1].next_ms = arrival + 600 * 1000;
	ck_assert_uint_eq(sched_due(&timing, &env, false, 0), arrival + 600 * 1000);
	env.rcpts[1].state = QR_DELIVERED;
	env.rcpts[0].next_ms = arrival + 5 * 3600 * 1000ull;
	ck_assert_uint_eq(sched_due(&timing, &env, false, 0), sched_warn_at(&timing, arrival));
	ck_assert_uint_eq(sched_due(&timing, &env, true, 0), arrival + 5 * 3600 * 1000ull);
	/* The expiry beats a retry planned after it. */
	env.rcpts[0].next_ms = arrival + 6 * 86400 * 1000ull;
	ck_assert_uint_eq(sched_due(&timing, &env, true, 0), sched_expire_at(&timing, arrival));
	/* Released from hold after its lifetime: one more attempt first. */
	env.rcpts[0].last_ms = arrival + 1000;
	ck_assert_uint_eq(sched_due(&timing, &env, true, arrival + 7 * 86400 * 1000ull),
			  env.rcpts[0].next_ms);
	ck_assert(!sched_attempted(&env.rcpts[0], arrival + 2000));
	ck_assert(sched_attempted(&env.rcpts[0], arrival + 1000));
	/* Nothing pending: never. */
	env.rcpts[0].state = QR_BOUNCED;
	ck_assert_uint_eq(sched_due(&timing, &env, false, 0), UINT64_MAX);
	qenvelope_clear(&env);
}
END_TEST

START_TEST(test_sched_injected_clock_walk)
{
	/* A recipient that always fails, walked through time: attempts at
	 * growing intervals, never beyond retry_max, expiry at 5 days. */
	struct qenvelope env;
	uint64_t now, last = 0;
	unsigned attempts = 0;
	struct qresult fail = { .code = 451, .status = "4.4.1", .text = "later" };

	make_envelope(&env, 1);
	now = env.arrival_ms;
	while (env.rcpts[0].state == QR_PENDING) {
		qrcpt_apply(&env.rcpts[0], &fail, &env, &timing, now, q_random32());
		attempts++;
		if (env.rcpts[0].state != QR_PENDING)
			break;
		uint64_t wait = env.rcpts[0].next_ms - now;

		ck_assert_uint_le(wait, timing.retry_max_ms);
		ck_assert_uint_ge(wait, sched_backoff(&timing, attempts) * 3 / 4);
		if (attempts > 1 && sched_backoff(&timing, attempts) > sched_backoff(&timing, attempts - 1))
			ck_assert_uint_ge(wait, last * 3 / 4);
		last = wait;
		now = sched_due(&timing, &env, true, 0);
		ck_assert_uint_le(now, sched_expire_at(&timing, env.arrival_ms));
	}
	ck_assert_int_eq(env.rcpts[0].state, QR_EXPIRED);
	ck_assert_uint_ge(now, sched_expire_at(&timing, env.arrival_ms));
	/* About 5 days at most an hour apart, first ones faster. */
	ck_assert_uint_ge(attempts, 5 * 24);
	ck_assert_uint_le(attempts, 5 * 24 * 4 / 3 + 10);
	ck_assert_uint_eq(env.rcpts[0].owed, QDSN_FAILURE);
	ck_assert_str_eq(env.rcpts[0].status, "4.4.7");
	qenvelope_clear(&env);
}
END_TEST

/* ---- recipient transitions ---- */

START_TEST(test_rcpt_transitions)
{
	struct qenvelope env;
	uint64_t now;
	struct qresult ok = { .code = 250, .text = "ok", .remote_mta = "mx.example" };
	struct qresult temp = { .code = 451, .status = "4.4.1", .text = "later" };
	struct qresult perm = { .code = 550, .status = "5.1.1", .text = "no such user" };
	struct qresult none = { .code = 0, .text = "connection refused" };

	make_envelope(&env, 4);
	now = env.arrival_ms + 1000;
	/* rcpt 0: NOTIFY unset; rcpt 1: SUCCESS,FAILURE. */
	ck_assert_int_eq(qrcpt_apply(&env.rcpts[0], &ok, &env, &timing, now, 0), QR_DELIVERED);
	ck_assert_uint_eq(env.rcpts[0].owed, 0);
	ck_assert_str_eq(env.rcpts[0].status, "2.0.0");
	ck_assert_str_eq(env.rcpts[0].remote_mta, "mx.example");
	ck_assert_int_eq(qrcpt_apply(&env.rcpts[1], &ok, &env, &timing, now, 0), QR_DELIVERED);
	ck_assert_uint_eq(env.rcpts[1].owed, QDSN_SUCCESS);
	/* A final state does not change again. */
	ck_assert_int_eq(qrcpt_apply(&env.rcpts[1], &perm, &env, &timing, now, 0), QR_DELIVERED);
	ck_assert_uint_eq(env.rcpts[1].attempts, 1);

	ck_assert_int_eq(qrcpt_apply(&env.rcpts[2], &temp, &env, &timing, now, 0), QR_PENDING);
	ck_assert_uint_eq(env.rcpts[2].next_ms, now + timing.retry_min_ms);
	ck_assert_uint_eq(env.rcpts[2].owed, 0);
	ck_assert_int_eq(qrcpt_apply(&env.rcpts[2], &none, &env, &timing, now, 0), QR_PENDING);
	ck_assert_str_eq(env.rcpts[2].status, "4.4.0");
	ck_assert_int_eq(qrcpt_apply(&env.rcpts[2], &perm, &env, &timing, now, 0), QR_BOUNCED);
	ck_assert_uint_eq(env.rcpts[2].owed, QDSN_FAILURE);
	ck_assert_str_eq(env.rcpts[2].status, "5.1.1");
	ck_assert_uint_eq(env.rcpts[2].attempts, 3);

	/* Past the lifetime a temporary failure expires. */
	now = sched_expire_at(&timing, env.arrival_ms);
	ck_assert_int_eq(qrcpt_apply(&env.rcpts[3], &temp, &env, &timing, now, 0), QR_EXPIRED);
	ck_assert_uint_eq(env.rcpts[3].owed, QDSN_FAILURE);
	ck_assert_str_eq(env.rcpts[3].text, "later");
	qenvelope_clear(&env);
}
END_TEST

START_TEST(test_rcpt_notify_and_null_sender)
{
	struct qenvelope env;
	struct qresult perm = { .code = 554, .text = "rejected" };
	struct qresult temp = { .code = 421, .text = "later" };

	make_envelope(&env, 4);
	env.rcpts[0].notify = POSTERN_NOTIFY_NEVER;
	env.rcpts[1].notify = POSTERN_NOTIFY_DELAY;
	env.rcpts[2].notify = POSTERN_NOTIFY_SUCCESS;
	env.rcpts[3].notify = 0;
	for (unsigned i = 0; i < 4; i++)
		qrcpt_apply(&env.rcpts[i], i < 2 ? &temp : &perm, &env, &timing, env.arrival_ms, 0);
	ck_assert_uint_eq(env.rcpts[2].owed, 0);           /* SUCCESS only: no failure notice */
	ck_assert_uint_eq(env.rcpts[3].owed, QDSN_FAILURE); /* default */
	ck_assert_str_eq(env.rcpts[3].status, "5.0.0");
	/* Delay notices go to those that want them and were tried. */
	ck_assert_uint_eq(qrcpt_owe_delay(&env), 1);
	ck_assert_uint_eq(env.rcpts[0].owed, 0);
	ck_assert_uint_eq(env.rcpts[1].owed, QDSN_DELAY);
	/* Delivered later: the pending delay notice is moot. */
	struct qresult ok = { .code = 250 };

	qrcpt_apply(&env.rcpts[1], &ok, &env, &timing, env.arrival_ms, 0);
	ck_assert_uint_eq(env.rcpts[1].owed, 0);
	qenvelope_clear(&env);

	/* Nobody is notified about a message from the null sender. */
	make_envelope(&env, 2);
	env.sender[0] = '\0';
	env.rcpts[0].notify = POSTERN_NOTIFY_SUCCESS | POSTERN_NOTIFY_FAILURE | POSTERN_NOTIFY_DELAY;
	qrcpt_apply(&env.rcpts[0], &temp, &env, &timing, env.arrival_ms, 0);
	ck_assert_uint_eq(qrcpt_owe_delay(&env), 0);
	qrcpt_apply(&env.rcpts[0], &perm, &env, &timing, env.arrival_ms, 0);
	qrcpt_bounce_admin(&env.rcpts[1], &env, env.arrival_ms);
	ck_assert_uint_eq(env.rcpts[0].owed | env.rcpts[1].owed, 0);
	qenvelope_clear(&env);
}
END_TEST

START_TEST(test_rcpt_admin_and_expiry)
{
	struct qenvelope env;

	make_envelope(&env, 2);
	qrcpt_bounce_admin(&env.rcpts[0], &env, 5);
	ck_assert_int_eq(env.rcpts[0].state, QR_BOUNCED);
	ck_assert_str_eq(env.rcpts[0].status, "5.0.0");
	ck_assert_uint_eq(env.rcpts[0].owed, QDSN_FAILURE);
	qrcpt_expire(&env.rcpts[1], &env, 5);
	ck_assert_int_eq(env.rcpts[1].state, QR_EXPIRED);
	ck_assert_str_eq(env.rcpts[1].status, "4.4.7");
	ck_assert(qrcpt_final(&env.rcpts[1]));
	qenvelope_clear(&env);
}
END_TEST

START_TEST(test_result_status)
{
	struct qresult r = { .code = 550, .status = "4.1.1" };

	ck_assert_str_eq(qresult_status(&r), "5.0.0"); /* class mismatch */
	r.status = "5.1.10";
	ck_assert_str_eq(qresult_status(&r), "5.1.10");
	r.status = "5.1";
	ck_assert_str_eq(qresult_status(&r), "5.0.0");
	r.status = "5.1.1\r\n";
	ck_assert_str_eq(qresult_status(&r), "5.0.0");
	r.code = 250;
	r.status = NULL;
	ck_assert_str_eq(qresult_status(&r), "2.0.0");
	r.code = 0;
	ck_assert_str_eq(qresult_status(&r), "4.4.0");
	r.status = "4.4.1";
	ck_assert_str_eq(qresult_status(&r), "4.4.1");
}
END_TEST

/* ---- dsn ---- */

static const char original[] = "From: bob@example.test\r\nTo: carol@remote.test\r\n"
			       "Subject: hello\r\n\r\nbody line\r\n";

static void build_dsn(struct qbuf *out, enum qdsn_kind kind, bool full, bool too_big,
		      struct qenvelope *env)
{
	struct dsn_rcpt rcpts[2];
	struct dsn_report report = { .kind = kind };

	make_envelope(env, 2);
	env->rcpts[0].state = QR_BOUNCED;
	env->rcpts[0].code = 550;
	env->rcpts[0].status = q_strdup("5.1.1");
	env->rcpts[0].text = q_strdup("no such user\r\nInjected: header");
	env->rcpts[0].remote_mta = q_strdup("mx.remote.test");
	env->rcpts[0].last_ms = env->arrival_ms + 1000;
	env->rcpts[1].address = (free(env->rcpts[1].address), q_strdup("j\xc3\xb6rg+x@remote.test"));
	env->rcpts[1].code = 451;
	env->rcpts[1].status = q_strdup("4.4.1");
	env->rcpts[1].text = q_strdup("later");
	rcpts[0] = (struct dsn_rcpt){ &env->rcpts[0], kind == QDSN_DELAY ? "delayed" : "failed" };
	rcpts[1] = (struct dsn_rcpt){ &env->rcpts[1], kind == QDSN_DELAY ? "delayed" : "failed" };
	report.reporting_mta = "mx.example.test";
	report.env = env;
	report.now_ms = env->arrival_ms + 2000;
	report.will_retry_until_ms = env->arrival_ms + 5 * 86400000ull;
	report.dsn_id = "6B0230F387D60D11.fABCDE";
	report.rcpts = rcpts;
	report.rcpt_count = 2;
	report.message = original;
	report.message_len = sizeof(original) - 1;
	report.return_full = full;
	report.too_big = too_big;
	dsn_build(out, &report);
}

START_TEST(test_dsn_failure_full)
{
	struct qbuf out = { 0 };
	struct qenvelope env;

	build_dsn(&out, QDSN_FAILURE, true, false, &env);
	ck_assert_ptr_nonnull(strstr(out.data, "Content-Type: multipart/report; "
					       "report-type=delivery-status;"));
	ck_assert_ptr_nonnull(strstr(out.data, "\r\nTo: <bob@example.test>\r\n"));
	ck_assert_ptr_nonnull(strstr(out.data, "\r\nReporting-MTA: dns; mx.example.test\r\n"));
	ck_assert_ptr_nonnull(strstr(out.data, "\r\nOriginal-Envelope-Id: env id with spaces % "
					       "and ? control\r\n"));
	ck_assert_ptr_nonnull(strstr(out.data, "\r\nArrival-Date: "));
	ck_assert_ptr_nonnull(strstr(out.data, "\r\nOriginal-Recipient: rfc822; "
					       "Orig+2BUser@example.test\r\n"
					       "Final-Recipient: rfc822; user0@example.test\r\n"
					       "Action: failed\r\nStatus: 5.1.1\r\n"
					       "Remote-MTA: dns; mx.remote.test\r\n"
					       "Diagnostic-Code: smtp; 550 5.1.1 no such user??"
					       "Injected: header\r\nLast-Attempt-Date: "));
	ck_assert_ptr_nonnull(strstr(out.data, "Final-Recipient: utf-8; j\\x{F6}rg\\x{2B}x@"
					       "remote.test\r\n"));
	ck_assert_ptr_nonnull(strstr(out.data, "Content-Type: message/rfc822\r\n\r\n"
					       "From: bob@example.test\r\n"));
	ck_assert_ptr_nonnull(strstr(out.data, "\r\nbody line\r\n"));
	ck_assert_ptr_null(strstr(out.data, "\r\nInjected: header"));
	ck_assert_ptr_null(strstr(out.data, "Will-Retry-Until"));
	/* Every line ends in CRLF and stays short. */
	for (const char *p = out.data; *p != '\0';) {
		const char *lf = strchr(p, '\n');

		ck_assert_ptr_nonnull(lf);
		ck_assert(lf > p ? lf[-1] == '\r' : false);
		ck_assert_int_lt(lf - p, 998);
		p = lf + 1;
	}
	qbuf_free(&out);
	qenvelope_clear(&env);
}
END_TEST

START_TEST(test_dsn_headers_only)
{
	struct qbuf out = { 0 };
	struct qenvelope env;

	build_dsn(&out, QDSN_FAILURE, false, false, &env);
	ck_assert_ptr_nonnull(strstr(out.data, "Content-Type: text/rfc822-headers\r\n\r\n"
					       "From: bob@example.test\r\n"));
	ck_assert_ptr_null(strstr(out.data, "body line"));
	ck_assert_ptr_null(strstr(out.data, "message/rfc822"));
	qbuf_free(&out);
	qenvelope_clear(&env);

	build_dsn(&out, QDSN_FAILURE, true, true, &env);
	ck_assert_ptr_null(strstr(out.data, "body line"));
	ck_assert_ptr_nonnull(strstr(out.data, "too big to return"));
	qbuf_free(&out);
	qenvelope_clear(&env);
}
END_TEST

START_TEST(test_dsn_delay)
{
	struct qbuf out = { 0 };
	struct qenvelope env;

	build_dsn(&out, QDSN_DELAY, false, false, &env);
	ck_assert_ptr_nonnull(strstr(out.data, "Subject: Delayed Mail"));
	ck_assert_ptr_nonnull(strstr(out.data, "Action: delayed\r\nStatus: 4.4.1\r\n"));
	ck_assert_ptr_nonnull(strstr(out.data, "Will-Retry-Until: "));
	qbuf_free(&out);
	qenvelope_clear(&env);
}
END_TEST

START_TEST(test_dsn_header_section)
{
	ck_assert_uint_eq(dsn_header_section_len("A: b\r\n\r\nbody", 13), 8);
	ck_assert_uint_eq(dsn_header_section_len("\r\nbody", 6), 2);
	ck_assert_uint_eq(dsn_header_section_len("A: b\r\nC: d\r\n", 12), 12);
}
END_TEST

/* ---- fanout ---- */

struct fan_item {
	unsigned runs;
	pthread_t thread;
};

static void fan_count(void *item, void *ctx)
{
	struct fan_item *it = item;

	(void)ctx;
	it->runs++;
	it->thread = pthread_self();
}

START_TEST(test_fan_every_item_once)
{
	const unsigned thread_counts[] = { 1, 2, 8 };
	struct fan_item items[100];
	void *ptrs[100];
	const char *error;

	for (size_t t = 0; t < sizeof(thread_counts) / sizeof(thread_counts[0]); t++) {
		struct qfan *fan = NULL;

		ck_assert_int_eq(qfan_create(thread_counts[t], &fan, &error), 0);
		for (size_t count = 0; count <= 100; count += 7) {
			memset(items, 0, sizeof(items));
			for (size_t i = 0; i < 100; i++)
				ptrs[i] = &items[i];
			qfan_run(fan, fan_count, ptrs, count, NULL);
			for (size_t i = 0; i < 100; i++)
				ck_assert_uint_eq(items[i].runs, i < count ? 1 : 0);
			if (thread_counts[t] == 1) {
				/* No helpers: everything runs in the caller. */
				for (size_t i = 0; i < count; i++)
					ck_assert(pthread_equal(items[i].thread, pthread_self()));
			}
		}
		qfan_free(&fan);
		ck_assert_ptr_null(fan);
	}
}
END_TEST

struct fan_slow {
	pthread_mutex_t lock;
	unsigned active, max_active, finished;
};

static void fan_sleep(void *item, void *ctx)
{
	struct fan_slow *slow = ctx;
	const struct timespec pause = { 0, 100 * 1000 * 1000 };

	(void)item;
	pthread_mutex_lock(&slow->lock);
	if (++slow->active > slow->max_active)
		slow->max_active = slow->active;
	pthread_mutex_unlock(&slow->lock);
	nanosleep(&pause, NULL);
	pthread_mutex_lock(&slow->lock);
	slow->active--;
	slow->finished++;
	pthread_mutex_unlock(&slow->lock);
}

/* Items overlap in time, and qfan_run() returns only after the last. */
START_TEST(test_fan_parallel_and_waits)
{
	struct fan_slow slow = { .lock = PTHREAD_MUTEX_INITIALIZER };
	void *ptrs[4] = { &slow, &slow, &slow, &slow };
	struct qfan *fan = NULL;
	const char *error;

	ck_assert_int_eq(qfan_create(4, &fan, &error), 0);
	for (unsigned round = 1; round <= 3; round++) {
		qfan_run(fan, fan_sleep, ptrs, 4, &slow);
		pthread_mutex_lock(&slow.lock);
		ck_assert_uint_eq(slow.finished, 4 * round);
		ck_assert_uint_eq(slow.active, 0);
		pthread_mutex_unlock(&slow.lock);
	}
	ck_assert_uint_ge(slow.max_active, 2);
	qfan_free(&fan);
}
END_TEST

/* ---- spares (spare.c) ---- */

static int spare_dir(char *path, size_t size)
{
	snprintf(path, size, "/tmp/check-spares-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(path));
	return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static void spare_create(int dfd, const char *name, const char *content)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
}

START_TEST(test_spares_reserve_arrive_take)
{
	struct qs qs;
	char dir[64], name[QFILE_NAME_SIZE], first[QFILE_NAME_SIZE];
	int fd;

	memset(&qs, 0, sizeof(qs));
	qs.incoming_dfd = spare_dir(dir, sizeof(dir));
	ck_assert_int_eq(spares_take(&qs, name), -1);            /* none yet */
	ck_assert(spares_reserve(&qs, first));
	ck_assert(spares_reserve(&qs, name));
	ck_assert_str_ne(first, name);                          /* distinct names */
	spare_create(qs.incoming_dfd, first, "");
	spares_arrived(&qs, first, true);
	spares_arrived(&qs, name, false);                       /* never became one */
	ck_assert_uint_eq(qs.spares.count, 1);
	ck_assert_uint_eq(qs.spares.incoming, 0);
	fd = spares_take(&qs, name);
	ck_assert_int_ge(fd, 0);
	ck_assert_str_eq(name, first);
	ck_assert_uint_eq(qs.spares.reused, 1);
	close(fd);
	/* A spare that is not empty (or gone) is never written into. */
	ck_assert(spares_reserve(&qs, name));
	spare_create(qs.incoming_dfd, name, "stray bytes");
	spares_arrived(&qs, name, true);
	ck_assert(spares_reserve(&qs, name));
	spares_arrived(&qs, name, true);                        /* no such file */
	ck_assert_int_eq(spares_take(&qs, name), -1);
	ck_assert_uint_eq(qs.spares.count, 0);
	/* Bounded: past the limit a removal unlinks instead. */
	unsigned reserved = 0;

	while (spares_reserve(&qs, name))
		reserved++;
	ck_assert_uint_gt(reserved, 100);
	ck_assert_uint_lt(reserved, 100000);
	spares_clear(&qs);
	ck_assert_uint_eq(qs.spares.count + qs.spares.incoming, 0);
	close(qs.incoming_dfd);
	char command[128];

	snprintf(command, sizeof(command), "rm -rf %s", dir);
	ck_assert_int_eq(system(command), 0);
}
END_TEST

/* ---- runner ---- */

static Suite *suite_of(const char *name, const TTest *const *tests)
{
	Suite *suite = suite_create(name);
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, 30);
	for (; *tests != NULL; tests++)
		tcase_add_test(tc, *tests);
	suite_add_tcase(suite, tc);
	return suite;
}

int main(int argc, char **argv)
{
	const TTest *const crc[] = { test_crc_vector, test_crc_hw_matches_portable, NULL };
	const TTest *const record[] = { test_record_round_trip_all_bytes,
					       test_record_bad_fields, test_qid, NULL };
	const TTest *const qfile[] = {
		test_qfile_round_trip, test_qfile_empty_body_and_null_sender,
		test_qfile_torn_at_every_length, test_qfile_torn_fd_every_length,
		test_qfile_any_changed_byte_is_caught, test_qfile_version_mismatch,
		test_qfile_bad_envelopes, test_qfile_envelope_checks, NULL };
	const TTest *const qstate[] = { test_qstate_round_trip, test_qstate_torn_and_damaged,
					       test_qstate_version_mismatch, NULL };
	const TTest *const schedule[] = { test_sched_backoff, test_sched_jitter_bounds,
						 test_sched_deadlines, test_sched_injected_clock_walk,
						 NULL };
	const TTest *const rcpt[] = { test_rcpt_transitions, test_rcpt_notify_and_null_sender,
					     test_rcpt_admin_and_expiry, test_result_status, NULL };
	const TTest *const dsn[] = { test_dsn_failure_full, test_dsn_headers_only,
					    test_dsn_delay, test_dsn_header_section, NULL };
	const TTest *const fanout[] = { test_fan_every_item_once, test_fan_parallel_and_waits,
					       NULL };
	const TTest *const spares[] = { test_spares_reserve_arrive_take, NULL };
	const struct {
		const char *name;
		const TTest *const *tests;
	} suites[] = {
		{ "crc", crc }, { "record", record }, { "qfile", qfile }, { "qstate", qstate },
		{ "schedule", schedule }, { "rcpt", rcpt }, { "dsn", dsn }, { "fanout", fanout },
		{ "spares", spares },
	};
	SRunner *runner = NULL;

	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
		if (argc > 1 && strcmp(argv[1], suites[i].name) != 0)
			continue;
		Suite *suite = suite_of(suites[i].name, suites[i].tests);

		if (runner == NULL)
			runner = srunner_create(suite);
		else
			srunner_add_suite(runner, suite);
	}
	if (runner == NULL) {
		fprintf(stderr, "no suite named %s\n", argc > 1 ? argv[1] : "");
		return EXIT_FAILURE;
	}
	return check_run(runner, NULL);
}
