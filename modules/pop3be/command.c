/*
 * The POP3 command parser and the verb table: which verbs exist, in which
 * session states each is allowed, how many arguments it takes.
 *
 * This is data and pure parsing only. The handlers are bound to the verbs
 * in session.c (an array indexed by enum pop3_verb_id), so that the parser
 * can be unit-tested and fuzzed without a daemon. Bad input is never an
 * error of ours: every outcome is a result code the session answers with
 * "-ERR".
 */
#include <assert.h>
#include <limits.h>
#include <string.h>
#include <strings.h>

#include "pop3be.h"

#define AUTHZ POP3_IN(POP3_STATE_AUTHORIZATION)
#define TRANS POP3_IN(POP3_STATE_TRANSACTION)

/* RFC 1939 section 3: keywords are case-insensitive, arguments are
 * separated by single spaces. In enum order. */
const struct pop3_verb pop3_verbs[POP3_VERB_COUNT] = {
	{ "CAPA", POP3_VERB_CAPA, AUTHZ | TRANS, 0, 0, 0 },
	{ "QUIT", POP3_VERB_QUIT, AUTHZ | TRANS, 0, 0, 0 },
	{ "USER", POP3_VERB_USER, AUTHZ, 1, 1, POP3_VERB_REST },
	{ "PASS", POP3_VERB_PASS, AUTHZ, 1, 1, POP3_VERB_REST | POP3_VERB_SECRET },
	/* AUTH [mechanism [initial-response]] (RFC 5034; bare AUTH lists the
	 * mechanisms, as many clients expect) */
	{ "AUTH", POP3_VERB_AUTH, AUTHZ, 0, 2, POP3_VERB_SECRET },
	{ "STLS", POP3_VERB_STLS, AUTHZ, 0, 0, 0 },
	{ "XCLIENT", POP3_VERB_XCLIENT, AUTHZ, 1, POP3_MAX_ARGS, 0 },
	{ "STAT", POP3_VERB_STAT, TRANS, 0, 0, 0 },
	{ "LIST", POP3_VERB_LIST, TRANS, 0, 1, 0 },
	{ "UIDL", POP3_VERB_UIDL, TRANS, 0, 1, 0 },
	{ "RETR", POP3_VERB_RETR, TRANS, 1, 1, 0 },
	{ "TOP", POP3_VERB_TOP, TRANS, 2, 2, 0 },
	{ "DELE", POP3_VERB_DELE, TRANS, 1, 1, 0 },
	{ "RSET", POP3_VERB_RSET, TRANS, 0, 0, 0 },
	{ "NOOP", POP3_VERB_NOOP, TRANS, 0, 0, 0 },
};

static const char *const state_names[POP3_STATE_COUNT] = {
	[POP3_STATE_AUTHORIZATION] = "AUTHORIZATION",
	[POP3_STATE_TRANSACTION] = "TRANSACTION",
	[POP3_STATE_UPDATE] = "UPDATE",
};

const char *pop3_state_name(enum pop3_state state)
{
	assert(state < POP3_STATE_COUNT);
	return state_names[state];
}

const struct pop3_verb *pop3_verb_find(const char *name, size_t len)
{
	if (len == 0 || len > POP3_VERB_MAX)
		return NULL;
	for (unsigned i = 0; i < POP3_VERB_COUNT; i++) {
		assert(pop3_verbs[i].id == (enum pop3_verb_id)i);
		if (strlen(pop3_verbs[i].name) == len &&
		    strncasecmp(pop3_verbs[i].name, name, len) == 0)
			return &pop3_verbs[i];
	}
	return NULL;
}

bool pop3_verb_allowed(const struct pop3_verb *verb, enum pop3_state state)
{
	assert(state < POP3_STATE_COUNT);
	return (verb->states & POP3_IN(state)) != 0;
}

/* Printable ASCII, space and high bytes (UTF-8 user names) are fine; NUL,
 * CR and other control bytes never belong in a command. */
static bool line_bytes_ok(const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

/* Split `rest` at spaces into cmd->args. Runs of spaces count as one
 * separator (lenient toward sloppy clients); a trailing space adds no
 * empty argument. */
static bool split_args(char *rest, struct pop3_command *cmd)
{
	char *p = rest;

	while (*p != '\0') {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		if (cmd->argc == POP3_MAX_ARGS)
			return false;
		cmd->args[cmd->argc++] = p;
		while (*p != '\0' && *p != ' ')
			p++;
		if (*p == ' ')
			*p++ = '\0';
	}
	return true;
}

enum pop3_parse_result pop3_command_parse(char *buf, size_t len, enum pop3_state state,
					  struct pop3_command *cmd_r)
{
	size_t verb_len = 0;

	memset(cmd_r, 0, sizeof(*cmd_r));
	buf[len] = '\0';
	if (len == 0)
		return POP3_PARSE_EMPTY;
	if (!line_bytes_ok(buf, len))
		return POP3_PARSE_BAD_BYTES;
	while (verb_len < len && buf[verb_len] != ' ')
		verb_len++;
	cmd_r->verb = pop3_verb_find(buf, verb_len);
	if (cmd_r->verb == NULL)
		return POP3_PARSE_UNKNOWN;
	if (!pop3_verb_allowed(cmd_r->verb, state))
		return POP3_PARSE_WRONG_STATE;

	char *rest = buf + verb_len;

	if (*rest == ' ')
		rest++;
	if ((cmd_r->verb->flags & POP3_VERB_REST) != 0) {
		/* one argument: everything after the single separating space */
		if (*rest != '\0')
			cmd_r->args[cmd_r->argc++] = rest;
	} else if (!split_args(rest, cmd_r)) {
		return POP3_PARSE_BAD_ARGS;
	}
	if (cmd_r->argc < cmd_r->verb->min_args || cmd_r->argc > cmd_r->verb->max_args)
		return POP3_PARSE_BAD_ARGS;
	return POP3_PARSE_OK;
}

int pop3_parse_msgno(const char *arg, unsigned max, unsigned *msgno_r)
{
	unsigned long value = 0;

	if (*arg == '\0')
		return -1;
	for (const char *p = arg; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		value = value * 10 + (unsigned long)(*p - '0');
		if (value > UINT_MAX)
			return -1;
	}
	if (value == 0 || value > max)
		return -1;
	*msgno_r = (unsigned)value;
	return 0;
}

int pop3_parse_count(const char *arg, uint64_t *count_r)
{
	uint64_t value = 0;

	if (*arg == '\0')
		return -1;
	for (const char *p = arg; *p != '\0'; p++) {
		unsigned digit;

		if (*p < '0' || *p > '9')
			return -1;
		digit = (unsigned)(*p - '0');
		value = value > (UINT64_MAX - digit) / 10 ? UINT64_MAX : value * 10 + digit;
	}
	*count_r = value;
	return 0;
}
