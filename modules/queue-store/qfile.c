/*
 * The message file format (queue_store.h has the layout): writing the
 * envelope header and the trailer, and checking a file completely. A file
 * is only ever trusted after qfile_read_fd() found its header, its size and
 * its checksum right: a torn or damaged file is reported, never delivered.
 *
 * The envelope is text so that an admin can read it; every value from a
 * client is escaped by record.c. Unknown records are ignored (a later
 * minor change may add some), an unknown format version is refused.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue_store.h"

#define QFILE_MAX_FIELDS 8

static const char *const ret_names[] = {
	[POSTERN_RET_DEFAULT] = "default",
	[POSTERN_RET_FULL] = "full",
	[POSTERN_RET_HDRS] = "hdrs",
};

void qenvelope_clear(struct qenvelope *env)
{
	free(env->sender);
	free(env->envid);
	free(env->client_address);
	free(env->client_name);
	free(env->auth_user);
	free(env->received_by);
	for (unsigned i = 0; i < env->rcpt_count; i++)
		qrcpt_clear(&env->rcpts[i]);
	free(env->rcpts);
	memset(env, 0, sizeof(*env));
}

static void put_field(struct qbuf *out, const char *key, const char *value)
{
	qbuf_puts(out, key);
	qbuf_append(out, " ", 1);
	record_put_string(out, value);
	qbuf_append(out, "\n", 1);
}

void qfile_format_header(struct qbuf *out, const struct qenvelope *env)
{
	qbuf_printf(out, "%s %d\n", QFILE_MAGIC, QFILE_VERSION);
	put_field(out, "id", env->id);
	qbuf_printf(out, "arrival %" PRIu64 "\n", env->arrival_ms);
	qbuf_printf(out, "kind %s\n", env->kind == QK_DSN ? "dsn" : "normal");
	put_field(out, "sender", env->sender);
	qbuf_printf(out, "ret %s\n", ret_names[env->ret]);
	put_field(out, "envid", env->envid);
	qbuf_printf(out, "body %s\n", env->body_8bitmime ? "8bitmime" : "7bit");
	qbuf_printf(out, "smtputf8 %d\n", env->smtputf8 ? 1 : 0);
	put_field(out, "client", env->client_address);
	put_field(out, "helo", env->client_name);
	put_field(out, "auth", env->auth_user);
	put_field(out, "by", env->received_by);
	for (unsigned i = 0; i < env->rcpt_count; i++) {
		const struct qrcpt *rcpt = &env->rcpts[i];

		qbuf_printf(out, "rcpt %u ", rcpt->notify);
		record_put_string(out, rcpt->orcpt);
		qbuf_append(out, " ", 1);
		record_put_string(out, rcpt->address);
		qbuf_append(out, "\n", 1);
	}
	qbuf_append(out, "\n", 1);
}

void qfile_format_trailer(char out[QFILE_TRAILER_LEN + 1], uint64_t body_size, uint32_t crc)
{
	int len = snprintf(out, QFILE_TRAILER_LEN + 1, "\nPOSTERN-END %016" PRIX64 " %08" PRIX32 "\n",
			   body_size, crc);

	assert(len == QFILE_TRAILER_LEN);
	(void)len;
}

/* ---- checking an envelope ---- */

static bool field_ok(const char *value, bool required)
{
	if (value == NULL)
		return !required;
	if (strlen(value) > QFILE_MAX_FIELD)
		return false;
	return strpbrk(value, "\r\n") == NULL;
}

static bool notify_ok(unsigned notify)
{
	if ((notify & ~(unsigned)(POSTERN_NOTIFY_NEVER | POSTERN_NOTIFY_SUCCESS |
				  POSTERN_NOTIFY_FAILURE | POSTERN_NOTIFY_DELAY)) != 0)
		return false;
	return !((notify & POSTERN_NOTIFY_NEVER) != 0 && notify != POSTERN_NOTIFY_NEVER);
}

int qfile_envelope_valid(const struct qenvelope *env, const char **error_r)
{
	if (!field_ok(env->sender, true)) {
		*error_r = "bad sender address";
		return -1;
	}
	if (env->rcpt_count == 0 || env->rcpt_count > QFILE_MAX_RCPTS) {
		*error_r = q_error("recipient count %u out of range (1..%u)", env->rcpt_count,
				   QFILE_MAX_RCPTS);
		return -1;
	}
	if ((unsigned)env->ret > POSTERN_RET_HDRS) {
		*error_r = "bad RET value";
		return -1;
	}
	if (!field_ok(env->envid, false) || !field_ok(env->client_address, false) ||
	    !field_ok(env->client_name, false) || !field_ok(env->auth_user, false) ||
	    !field_ok(env->received_by, false)) {
		*error_r = "bad envelope field (too long, or CR or LF in it)";
		return -1;
	}
	for (unsigned i = 0; i < env->rcpt_count; i++) {
		const struct qrcpt *rcpt = &env->rcpts[i];

		if (!field_ok(rcpt->address, true) || rcpt->address[0] == '\0' ||
		    !field_ok(rcpt->orcpt, false)) {
			*error_r = q_error("bad recipient address #%u", i + 1);
			return -1;
		}
		if (!notify_ok(rcpt->notify)) {
			*error_r = q_error("bad NOTIFY value for recipient #%u", i + 1);
			return -1;
		}
	}
	return 0;
}

/* ---- parsing the header ---- */

struct header_parser {
	struct qenvelope *env;
	unsigned rcpt_size;
	bool have_id, have_arrival, have_sender;
	unsigned line_no;
};

static int parse_bool(const char *field, bool *value_r)
{
	if (strcmp(field, "0") == 0)
		*value_r = false;
	else if (strcmp(field, "1") == 0)
		*value_r = true;
	else
		return -1;
	return 0;
}

static int parse_string_once(char **dest, const char *field)
{
	char *value;

	if (*dest != NULL || record_get_string(field, &value) < 0)
		return -1;
	*dest = value;
	return 0;
}

static int parse_rcpt(struct header_parser *parser, char **fields, int count)
{
	struct qenvelope *env = parser->env;
	uint64_t notify;

	if (count != 4 || record_get_u64(fields[1], 0xff, &notify) < 0 ||
	    env->rcpt_count >= QFILE_MAX_RCPTS)
		return -1;
	if (env->rcpt_count == parser->rcpt_size) {
		parser->rcpt_size = parser->rcpt_size == 0 ? 4 : parser->rcpt_size * 2;
		env->rcpts = q_realloc(env->rcpts, parser->rcpt_size * sizeof(*env->rcpts));
	}
	struct qrcpt *rcpt = &env->rcpts[env->rcpt_count];

	memset(rcpt, 0, sizeof(*rcpt));
	if (record_get_string(fields[2], &rcpt->orcpt) < 0)
		return -1;
	if (record_get_string(fields[3], &rcpt->address) < 0 || rcpt->address == NULL) {
		qrcpt_clear(rcpt);
		return -1;
	}
	rcpt->notify = (unsigned)notify;
	env->rcpt_count++;
	return 0;
}

static int parse_record(struct header_parser *parser, char *line)
{
	struct qenvelope *env = parser->env;
	char *fields[QFILE_MAX_FIELDS];
	int count = record_split(line, fields, QFILE_MAX_FIELDS);
	uint64_t number;

	static const char *const known[] = { "rcpt", "id", "arrival", "sender", "kind", "ret",
					     "body", "smtputf8", "envid", "client", "helo",
					     "auth", "by" };
	bool is_known = false;

	if (count == 0)
		return -1;
	for (unsigned i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		is_known = is_known || strcmp(fields[0], known[i]) == 0;
	if (!is_known)
		return 0; /* a record of a later minor change */
	if (count < 2)
		return -1;
	const char *key = fields[0], *value = fields[1];

	if (strcmp(key, "rcpt") == 0)
		return parse_rcpt(parser, fields, count);
	if (count != 2)
		return -1;
	if (strcmp(key, "id") == 0) {
		char *id;

		if (parser->have_id || record_get_string(value, &id) < 0 || id == NULL)
			return -1;
		bool ok = qid_valid(id);

		if (ok)
			memcpy(env->id, id, QID_SIZE);
		free(id);
		parser->have_id = true;
		return ok ? 0 : -1;
	}
	if (strcmp(key, "arrival") == 0) {
		if (parser->have_arrival || record_get_u64(value, UINT64_MAX / 2, &number) < 0)
			return -1;
		env->arrival_ms = number;
		parser->have_arrival = true;
		return 0;
	}
	if (strcmp(key, "sender") == 0) {
		parser->have_sender = true;
		if (parse_string_once(&env->sender, value) < 0 || env->sender == NULL)
			return -1;
		return 0;
	}
	if (strcmp(key, "kind") == 0) {
		if (strcmp(value, "normal") == 0)
			env->kind = QK_NORMAL;
		else if (strcmp(value, "dsn") == 0)
			env->kind = QK_DSN;
		else
			return -1;
		return 0;
	}
	if (strcmp(key, "ret") == 0) {
		for (unsigned i = 0; i < sizeof(ret_names) / sizeof(ret_names[0]); i++) {
			if (strcmp(value, ret_names[i]) == 0) {
				env->ret = (enum postern_dsn_ret)i;
				return 0;
			}
		}
		return -1;
	}
	if (strcmp(key, "body") == 0) {
		if (strcmp(value, "7bit") == 0)
			env->body_8bitmime = false;
		else if (strcmp(value, "8bitmime") == 0)
			env->body_8bitmime = true;
		else
			return -1;
		return 0;
	}
	if (strcmp(key, "smtputf8") == 0)
		return parse_bool(value, &env->smtputf8);
	if (strcmp(key, "envid") == 0)
		return parse_string_once(&env->envid, value);
	if (strcmp(key, "client") == 0)
		return parse_string_once(&env->client_address, value);
	if (strcmp(key, "helo") == 0)
		return parse_string_once(&env->client_name, value);
	if (strcmp(key, "auth") == 0)
		return parse_string_once(&env->auth_user, value);
	if (strcmp(key, "by") == 0)
		return parse_string_once(&env->received_by, value);
	/* A record of a later minor change. */
	return 0;
}

/* The first line, which may not be NUL-terminated yet (a partial read). */
static int parse_magic(const char *data, const char **error_r)
{
	size_t magic_len = strlen(QFILE_MAGIC);
	const char *end = strchr(data, '\n');
	char line[64];
	uint64_t version;

	if (strncmp(data, QFILE_MAGIC " ", magic_len + 1) != 0) {
		*error_r = "not a queue file (no " QFILE_MAGIC " line)";
		return -1;
	}
	snprintf(line, sizeof(line), "%.*s", end == NULL ? 63 : (int)(end - data), data);
	if (record_get_u64(line + magic_len + 1, 1000000, &version) < 0) {
		*error_r = "bad format version";
		return -1;
	}
	if (version != QFILE_VERSION) {
		*error_r = q_error("queue file format version %" PRIu64
				   ", this posternd reads version %d", version, QFILE_VERSION);
		return -1;
	}
	return 0;
}

static int parse_header_lines(struct header_parser *parser, char *text, const char **error_r)
{
	char *line = text, *end;

	for (parser->line_no = 1; (end = strchr(line, '\n')) != NULL; line = end + 1) {
		*end = '\0';
		if (parser->line_no == 1) {
			if (parse_magic(line, error_r) < 0)
				return -1;
		} else if (*line == '\0') {
			break;
		} else if (parse_record(parser, line) < 0) {
			*error_r = q_error("envelope line %u is malformed", parser->line_no);
			return -1;
		}
		parser->line_no++;
	}
	return 0;
}

int qfile_parse_header(const char *data, size_t len, struct qenvelope *env_r,
		       size_t *header_len_r, const char **error_r)
{
	const char *end = memmem(data, len, "\n\n", 2);

	if (end == NULL) {
		if (len >= QFILE_MAX_HEADER) {
			*error_r = "envelope too long";
			return -1;
		}
		const char *lf = memchr(data, '\n', len);

		if (lf != NULL && lf - data < 63) {
			char first[64];

			memcpy(first, data, (size_t)(lf - data) + 1);
			first[lf - data + 1] = '\0';
			if (parse_magic(first, error_r) < 0)
				return -1;
		}
		return 0;
	}
	size_t header_len = (size_t)(end - data) + 2;

	if (header_len > QFILE_MAX_HEADER) {
		*error_r = "envelope too long";
		return -1;
	}
	if (memchr(data, '\0', header_len) != NULL) {
		*error_r = "NUL byte in the envelope";
		return -1;
	}

	char *text = q_strndup(data, header_len);
	struct header_parser parser = { .env = env_r };
	int ret;

	memset(env_r, 0, sizeof(*env_r));
	ret = parse_header_lines(&parser, text, error_r);
	free(text);
	if (ret == 0 && (!parser.have_id || !parser.have_arrival || !parser.have_sender)) {
		*error_r = "envelope without id, arrival or sender";
		ret = -1;
	}
	if (ret == 0 && env_r->rcpt_count == 0) {
		*error_r = "envelope without recipients";
		ret = -1;
	}
	if (ret < 0) {
		qenvelope_clear(env_r);
		return -1;
	}
	*header_len_r = header_len;
	return 1;
}

/* ---- checking a whole file ---- */

static int parse_trailer(const char *trailer, uint64_t *body_size_r, uint32_t *crc_r)
{
	char expect[QFILE_TRAILER_LEN + 1];
	unsigned long long body_size;
	unsigned crc;

	if (memchr(trailer, '\0', QFILE_TRAILER_LEN) != NULL)
		return -1;
	if (sscanf(trailer, "\nPOSTERN-END %16llX %8X\n", &body_size, &crc) != 2)
		return -1;
	/* Only the exact form we write: no signs, spaces or short numbers. */
	qfile_format_trailer(expect, body_size, crc);
	if (memcmp(expect, trailer, QFILE_TRAILER_LEN) != 0)
		return -1;
	*body_size_r = body_size;
	*crc_r = crc;
	return 0;
}

static int check_layout(uint64_t file_size, size_t header_len, const char *trailer,
			struct qfile_info *info_r, uint32_t *crc_r, const char **error_r)
{
	uint64_t body_size;

	if (file_size < header_len + QFILE_TRAILER_LEN) {
		*error_r = "truncated: no end marker";
		return -1;
	}
	if (parse_trailer(trailer, &body_size, crc_r) < 0) {
		*error_r = "truncated or damaged: no valid end marker";
		return -1;
	}
	if (header_len + body_size + QFILE_TRAILER_LEN != file_size) {
		*error_r = q_error("size mismatch: the end marker says %" PRIu64
				   " message bytes, the file holds %" PRIu64,
				   body_size, file_size - header_len - QFILE_TRAILER_LEN);
		return -1;
	}
	info_r->header_len = header_len;
	info_r->body_size = body_size;
	info_r->file_size = file_size;
	return 0;
}

int qfile_check_buffer(const char *data, size_t len, struct qenvelope *env_r,
		       struct qfile_info *info_r, const char **error_r)
{
	size_t header_len;
	uint32_t crc;
	int ret = qfile_parse_header(data, len, env_r, &header_len, error_r);

	if (ret == 0)
		*error_r = "truncated: envelope incomplete";
	if (ret <= 0)
		return -1;
	if (len < header_len + QFILE_TRAILER_LEN ||
	    check_layout(len, header_len, data + len - QFILE_TRAILER_LEN, info_r, &crc,
			 error_r) < 0) {
		if (len < header_len + QFILE_TRAILER_LEN)
			*error_r = "truncated: no end marker";
		qenvelope_clear(env_r);
		return -1;
	}
	if (crc32c_update(0, data, len - QFILE_TRAILER_LEN) != crc) {
		*error_r = "checksum mismatch: the file is damaged";
		qenvelope_clear(env_r);
		return -1;
	}
	return 0;
}

static ssize_t pread_full(int fd, void *buf, size_t len, off_t offset)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, offset + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/* Read until the header is complete; *buf_r holds what was read. */
static int read_header(int fd, uint64_t file_size, struct qbuf *buf, struct qenvelope *env_r,
		       size_t *header_len_r, const char **error_r)
{
	for (;;) {
		size_t want = 65536;
		int ret = qfile_parse_header(buf->data == NULL ? "" : buf->data, buf->len, env_r,
					     header_len_r, error_r);

		if (ret != 0)
			return ret;
		if (buf->len >= file_size) {
			*error_r = "truncated: envelope incomplete";
			return -1;
		}
		if (want > file_size - buf->len)
			want = (size_t)(file_size - buf->len);
		size_t old_len = buf->len;

		buf->data = q_realloc(buf->data, old_len + want + 1);
		buf->size = old_len + want + 1;
		ssize_t n = pread_full(fd, buf->data + old_len, want, (off_t)old_len);

		if (n < 0) {
			*error_r = q_error("read: %s", strerror(errno));
			return -1;
		}
		buf->len = old_len + (size_t)n;
		buf->data[buf->len] = '\0';
		if (n == 0) {
			*error_r = "truncated: envelope incomplete";
			return -1;
		}
	}
}

static int check_crc(int fd, const struct qbuf *head, uint64_t covered, uint32_t expect,
		     const char **error_r)
{
	uint64_t have = head->len < covered ? head->len : covered;
	uint32_t crc = crc32c_update(0, head->data, (size_t)have);
	char *chunk = q_malloc(1 << 17);
	int ret = 0;

	while (have < covered) {
		size_t want = covered - have < (1 << 17) ? (size_t)(covered - have) : (1 << 17);
		ssize_t n = pread_full(fd, chunk, want, (off_t)have);

		if (n <= 0) {
			*error_r = n < 0 ? q_error("read: %s", strerror(errno))
					 : "truncated while reading";
			ret = -1;
			break;
		}
		crc = crc32c_update(crc, chunk, (size_t)n);
		have += (uint64_t)n;
	}
	free(chunk);
	if (ret == 0 && crc != expect) {
		*error_r = "checksum mismatch: the file is damaged";
		ret = -1;
	}
	return ret;
}

int qfile_read_fd(int fd, struct qenvelope *env_r, struct qfile_info *info_r,
		  const char **error_r)
{
	struct qbuf head = { 0 };
	struct stat st;
	char trailer[QFILE_TRAILER_LEN];
	size_t header_len;
	uint32_t crc;

	if (fstat(fd, &st) < 0) {
		*error_r = q_error("fstat: %s", strerror(errno));
		return -1;
	}
	uint64_t file_size = (uint64_t)st.st_size;

	if (read_header(fd, file_size, &head, env_r, &header_len, error_r) < 0) {
		qbuf_free(&head);
		return -1;
	}
	if (file_size < header_len + QFILE_TRAILER_LEN) {
		*error_r = "truncated: no end marker";
		goto fail;
	}
	if (pread_full(fd, trailer, QFILE_TRAILER_LEN,
		       (off_t)(file_size - QFILE_TRAILER_LEN)) != QFILE_TRAILER_LEN) {
		*error_r = q_error("read: %s", errno != 0 ? strerror(errno) : "short read");
		goto fail;
	}
	if (check_layout(file_size, header_len, trailer, info_r, &crc, error_r) < 0 ||
	    check_crc(fd, &head, file_size - QFILE_TRAILER_LEN, crc, error_r) < 0)
		goto fail;
	qbuf_free(&head);
	return 0;
fail:
	qbuf_free(&head);
	qenvelope_clear(env_r);
	return -1;
}
