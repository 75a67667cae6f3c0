/*
 * The state file of a message (queue_store.h has the layout): whether it
 * is held, whether its delay notice went out, and for each recipient that
 * left the initial state its state, attempts, times, last answer and the
 * notices it is owed. The message file never changes after commit; this
 * small file is replaced as a whole (temp file, fsync, rename), so it is
 * either the old or the new one, and its checksum catches damage.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue_store.h"

#define QSTATE_END "POSTERN-END "
#define QSTATE_END_LEN (sizeof(QSTATE_END) - 1 + 8 + 1)
#define QSTATE_FIELDS 11
#define QSTATE_MAX_SIZE (64u << 20)

static bool rcpt_is_initial(const struct qrcpt *rcpt)
{
	return rcpt->state == QR_PENDING && rcpt->attempts == 0 && rcpt->owed == 0 &&
	       rcpt->next_ms == 0 && rcpt->code == 0 && rcpt->text == NULL;
}

void qstate_format(struct qbuf *out, const struct qenvelope *env, bool held, bool warned)
{
	size_t start = out->len;

	qbuf_printf(out, "%s %d\nid ", QSTATE_MAGIC, QSTATE_VERSION);
	record_put_string(out, env->id);
	qbuf_printf(out, "\nheld %d\nwarned %d\n", held ? 1 : 0, warned ? 1 : 0);
	for (unsigned i = 0; i < env->rcpt_count; i++) {
		const struct qrcpt *rcpt = &env->rcpts[i];

		if (rcpt_is_initial(rcpt))
			continue;
		qbuf_printf(out, "r %u %s %u %" PRIu64 " %" PRIu64 " %u %u ", i,
			    qrcpt_state_name(rcpt->state), rcpt->attempts, rcpt->last_ms,
			    rcpt->next_ms, rcpt->code, rcpt->owed);
		record_put_string(out, rcpt->status);
		qbuf_append(out, " ", 1);
		record_put_string(out, rcpt->remote_mta);
		qbuf_append(out, " ", 1);
		record_put_string(out, rcpt->text);
		qbuf_append(out, "\n", 1);
	}
	qbuf_printf(out, "%s%08" PRIX32 "\n", QSTATE_END,
		    crc32c_update(0, out->data + start, out->len - start));
}

static int check_end(const char *data, size_t len, const char **error_r)
{
	char expect[QSTATE_END_LEN + 1];

	if (len < QSTATE_END_LEN || len > QSTATE_MAX_SIZE) {
		*error_r = "state file truncated";
		return -1;
	}
	size_t body = len - QSTATE_END_LEN;

	if (body > 0 && data[body - 1] != '\n') {
		*error_r = "state file truncated or damaged: no end marker";
		return -1;
	}
	snprintf(expect, sizeof(expect), "%s%08" PRIX32 "\n", QSTATE_END,
		 crc32c_update(0, data, body));
	if (memcmp(expect, data + body, QSTATE_END_LEN) != 0) {
		*error_r = memcmp(QSTATE_END, data + body, sizeof(QSTATE_END) - 1) == 0
				   ? "state file checksum mismatch: the file is damaged"
				   : "state file truncated or damaged: no end marker";
		return -1;
	}
	return 0;
}

static int parse_rcpt_record(char **f, struct qenvelope *env)
{
	uint64_t index, attempts, last_ms, next_ms, code, owed;
	enum qrcpt_state state;
	char *status = NULL, *mta = NULL, *text = NULL;

	if (record_get_u64(f[1], env->rcpt_count - 1, &index) < 0 ||
	    !qrcpt_state_parse(f[2], &state) ||
	    record_get_u64(f[3], UINT32_MAX, &attempts) < 0 ||
	    record_get_u64(f[4], UINT64_MAX / 2, &last_ms) < 0 ||
	    record_get_u64(f[5], UINT64_MAX / 2, &next_ms) < 0 ||
	    record_get_u64(f[6], 999, &code) < 0 || record_get_u64(f[7], QDSN_ALL, &owed) < 0)
		return -1;
	if (record_get_string(f[8], &status) < 0 || record_get_string(f[9], &mta) < 0 ||
	    record_get_string(f[10], &text) < 0) {
		free(status);
		free(mta);
		return -1;
	}
	struct qrcpt *rcpt = &env->rcpts[index];

	free(rcpt->status);
	free(rcpt->remote_mta);
	free(rcpt->text);
	rcpt->state = state;
	rcpt->attempts = (unsigned)attempts;
	rcpt->last_ms = last_ms;
	rcpt->next_ms = next_ms;
	rcpt->code = (unsigned)code;
	rcpt->owed = (unsigned)owed;
	rcpt->status = status;
	rcpt->remote_mta = mta;
	rcpt->text = text;
	return 0;
}

static int parse_line(char *line, unsigned line_no, struct qenvelope *env, bool *held_r,
		      bool *warned_r, bool *have_id)
{
	char *f[QSTATE_FIELDS + 1];
	int count = record_split(line, f, QSTATE_FIELDS + 1);

	if (line_no == 1) {
		char expect[32];

		snprintf(expect, sizeof(expect), "%s %d", QSTATE_MAGIC, QSTATE_VERSION);
		return count == 2 && strcmp(f[0], QSTATE_MAGIC) == 0 &&
		       strcmp(f[1], expect + sizeof(QSTATE_MAGIC)) == 0 ? 0 : -1;
	}
	if (count == QSTATE_FIELDS && strcmp(f[0], "r") == 0)
		return parse_rcpt_record(f, env);
	if (count != 2)
		return count > 0 && strcmp(f[0], "r") != 0 ? 0 : -1;
	if (strcmp(f[0], "id") == 0) {
		char *id;
		int ret = -1;

		if (record_get_string(f[1], &id) == 0 && id != NULL)
			ret = strcmp(id, env->id) == 0 ? 0 : -2;
		free(id);
		*have_id = ret == 0;
		return ret;
	}
	if (strcmp(f[0], "held") == 0 || strcmp(f[0], "warned") == 0) {
		bool *dest = f[0][0] == 'h' ? held_r : warned_r;

		if (strcmp(f[1], "0") != 0 && strcmp(f[1], "1") != 0)
			return -1;
		*dest = f[1][0] == '1';
		return 0;
	}
	/* A record of a later minor change. */
	return 0;
}

int qstate_parse(const char *data, size_t len, struct qenvelope *env, bool *held_r,
		 bool *warned_r, const char **error_r)
{
	bool have_id = false;
	int ret = 0;

	if (check_end(data, len, error_r) < 0)
		return -1;
	if (memchr(data, '\0', len) != NULL) {
		*error_r = "NUL byte in the state file";
		return -1;
	}
	*held_r = *warned_r = false;

	char *text = q_strndup(data, len - QSTATE_END_LEN);
	char *line = text, *end;
	unsigned line_no = 1;

	for (; (end = strchr(line, '\n')) != NULL; line = end + 1, line_no++) {
		*end = '\0';
		int err = parse_line(line, line_no, env, held_r, warned_r, &have_id);

		if (err < 0) {
			*error_r = line_no == 1 ? "not a state file of this version"
				   : err == -2 ? "state file of another message"
				   : q_error("state file line %u is malformed", line_no);
			ret = -1;
			break;
		}
	}
	free(text);
	if (ret == 0 && !have_id) {
		*error_r = "state file of another message";
		ret = -1;
	}
	return ret;
}
