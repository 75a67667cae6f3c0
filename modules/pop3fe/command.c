/*
 * Parsing a POP3 client line before login (RFC 1939, 2449, 2595, 5034)
 * and the attributes of XCLIENT. Pure: no I/O, no core calls; the unit
 * tests and the fuzz target drive it directly.
 *
 * A line is a keyword, then arguments separated by single spaces.
 * Keywords are case-insensitive. USER and PASS take the whole rest of the
 * line (passwords may contain spaces); the others are split. Bad input is
 * never an error of ours: the caller answers -ERR and reads on.
 */
#include "config.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include "pop3fe.h"

static const struct {
	const char *word;
	enum pop3fe_verb verb;
} pop3fe_verbs[] = {
	{ "CAPA", POP3FE_CAPA },
	{ "STLS", POP3FE_STLS },
	{ "USER", POP3FE_USER },
	{ "PASS", POP3FE_PASS },
	{ "AUTH", POP3FE_AUTH },
	{ "QUIT", POP3FE_QUIT },
	{ "NOOP", POP3FE_NOOP },
	{ "XCLIENT", POP3FE_XCLIENT },
	/* The transaction state's: known, but not before login. */
	{ "STAT", POP3FE_LATER }, { "LIST", POP3FE_LATER }, { "RETR", POP3FE_LATER },
	{ "DELE", POP3FE_LATER }, { "RSET", POP3FE_LATER }, { "TOP", POP3FE_LATER },
	{ "UIDL", POP3FE_LATER }, { "APOP", POP3FE_LATER },
};

static enum pop3fe_verb pop3fe_verb_of(const char *word, size_t len)
{
	for (size_t i = 0; i < sizeof(pop3fe_verbs) / sizeof(pop3fe_verbs[0]); i++) {
		if (strlen(pop3fe_verbs[i].word) == len &&
		    strncasecmp(pop3fe_verbs[i].word, word, len) == 0)
			return pop3fe_verbs[i].verb;
	}
	return POP3FE_UNKNOWN;
}

enum pop3fe_parse_result pop3fe_parse(const char *line, size_t len, struct pop3fe_command *cmd_r)
{
	size_t verb_len = 0;

	cmd_r->verb = POP3FE_EMPTY;
	cmd_r->rest = "";
	cmd_r->rest_len = 0;
	cmd_r->argc = 0;
	cmd_r->buf[0] = '\0';
	if (memchr(line, '\0', len) != NULL || memchr(line, '\r', len) != NULL ||
	    memchr(line, '\n', len) != NULL)
		return POP3FE_PARSE_BAD_CHARS;
	while (verb_len < len && line[verb_len] != ' ')
		verb_len++;
	if (verb_len == 0) {
		/* "" or a leading space: nothing we can name. */
		cmd_r->verb = len == 0 ? POP3FE_EMPTY : POP3FE_UNKNOWN;
		return POP3FE_PARSE_OK;
	}
	cmd_r->verb = pop3fe_verb_of(line, verb_len);
	if (verb_len < len) {
		cmd_r->rest = line + verb_len + 1;
		cmd_r->rest_len = len - verb_len - 1;
	}

	/* Split a bounded copy of the rest at spaces. */
	size_t copy = cmd_r->rest_len < POP3FE_MAX_LINE ? cmd_r->rest_len : POP3FE_MAX_LINE;
	char *p = cmd_r->buf, *end = cmd_r->buf + copy;

	memcpy(cmd_r->buf, cmd_r->rest, copy);
	cmd_r->buf[copy] = '\0';
	while (p < end) {
		char *space = memchr(p, ' ', (size_t)(end - p));

		if (cmd_r->argc == POP3FE_MAX_ARGS)
			return POP3FE_PARSE_TOO_MANY;
		cmd_r->argv[cmd_r->argc++] = p;
		if (space == NULL)
			break;
		*space = '\0';
		p = space + 1;
		if (p == end) {
			/* A trailing space is an empty last argument. */
			if (cmd_r->argc == POP3FE_MAX_ARGS)
				return POP3FE_PARSE_TOO_MANY;
			cmd_r->argv[cmd_r->argc++] = p;
		}
	}
	return POP3FE_PARSE_OK;
}

static int xclient_uint(const char *text, unsigned max, unsigned *value_r)
{
	unsigned long value = 0;

	if (*text == '\0' || strlen(text) > 7)
		return -1;
	for (const char *p = text; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		value = value * 10 + (unsigned long)(*p - '0');
	}
	if (value == 0 || value > max)
		return -1;
	*value_r = (unsigned)value;
	return 0;
}

static int xclient_addr(const char *text, char *out, size_t size)
{
	unsigned char bin[16];
	int family = AF_INET;

	if (strncasecmp(text, "IPV6:", 5) == 0) {
		text += 5;
		family = AF_INET6;
	} else if (strchr(text, ':') != NULL) {
		family = AF_INET6;
	}
	if (inet_pton(family, text, bin) != 1)
		return -1;
	return inet_ntop(family, bin, out, (socklen_t)size) == NULL ? -1 : 0;
}

int pop3fe_xclient_parse(char *const *argv, unsigned argc, struct pop3fe_xclient *xc_r,
			 const char **error_r)
{
	bool seen_addr = false, seen_port = false, seen_hop = false;

	memset(xc_r, 0, sizeof(*xc_r));
	xc_r->hop = 1;
	for (unsigned i = 0; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');
		size_t name_len = eq != NULL ? (size_t)(eq - argv[i]) : 0;

		if (name_len == 0) {
			*error_r = "XCLIENT attributes are NAME=value";
			return -1;
		}
#define IS(name) (name_len == sizeof(name) - 1 && strncasecmp(argv[i], name, name_len) == 0)
		if (IS("ADDR")) {
			if (seen_addr || xclient_addr(eq + 1, xc_r->addr, sizeof(xc_r->addr)) < 0) {
				*error_r = "Bad XCLIENT ADDR";
				return -1;
			}
			seen_addr = true;
		} else if (IS("PORT")) {
			if (seen_port || xclient_uint(eq + 1, 65535, &xc_r->port) < 0) {
				*error_r = "Bad XCLIENT PORT";
				return -1;
			}
			seen_port = true;
		} else if (IS("HOP")) {
			if (seen_hop || xclient_uint(eq + 1, 1000000, &xc_r->hop) < 0) {
				*error_r = "Bad XCLIENT HOP";
				return -1;
			}
			seen_hop = true;
		} else if (!IS("LOGIN")) {
			*error_r = "Unknown XCLIENT attribute";
			return -1;
		}
#undef IS
	}
	if (!seen_addr) {
		*error_r = "XCLIENT needs ADDR";
		return -1;
	}
	return 0;
}

/* ---- Replies of a back-end ------------------------------------------------------ */

bool pop3fe_starts(const char *line, size_t len, const char *word)
{
	size_t n = strlen(word);

	return len >= n && strncasecmp(line, word, n) == 0 && (len == n || line[n] == ' ');
}

static bool pop3fe_has_code(const char *line, size_t len, const char *code)
{
	size_t n = strlen(code);

	/* "-ERR [CODE] text": the code right after "-ERR ". */
	return len >= 5 + n && strncasecmp(line + 5, code, n) == 0;
}

enum postern_proxy_step pop3fe_login_reply(const char *line, size_t len)
{
	if (memchr(line, '\0', len) != NULL)
		return POSTERN_PROXY_STEP_BROKEN;
	if (pop3fe_starts(line, len, "+OK"))
		return POSTERN_PROXY_STEP_LOGGED_IN;
	if (!pop3fe_starts(line, len, "-ERR"))
		return POSTERN_PROXY_STEP_BROKEN;
	if (pop3fe_has_code(line, len, "[SYS/TEMP]"))
		return POSTERN_PROXY_STEP_FAILOVER;
	if (pop3fe_has_code(line, len, "[IN-USE]") || pop3fe_has_code(line, len, "[SYS/PERM]") ||
	    pop3fe_has_code(line, len, "[LOGIN-DELAY]"))
		return POSTERN_PROXY_STEP_PASS_ON;
	return POSTERN_PROXY_STEP_MISMATCH;
}


/*
 * For the relay's watchdog: does this back-end line end an answer? The
 * first line after a command is a status line ("+OK", "-ERR"): it ends a
 * single-line answer, and the relay cannot know (it does not parse the
 * client's commands) whether a multi-line one follows, so it counts as an
 * end. Any later line ends an answer only if it is the terminator ".".
 */
bool pop3fe_response_done(const char *head, size_t head_len, size_t len, bool first)
{
	if (first)
		return pop3fe_starts(head, head_len, "+OK") || pop3fe_starts(head, head_len, "-ERR");
	return len == 1 && head_len == 1 && head[0] == '.';
}

long pop3fe_plain_encode(const char *user, const char *password, char *out, size_t size)
{
	char raw[POP3FE_USER_MAX + POP3FE_PASSWORD_MAX + 2];
	size_t ulen = strlen(user), plen = strlen(password);
	long ret;

	if (ulen > POP3FE_USER_MAX || plen > POP3FE_PASSWORD_MAX)
		return -1;
	raw[0] = '\0';
	memcpy(raw + 1, user, ulen);
	raw[1 + ulen] = '\0';
	memcpy(raw + 2 + ulen, password, plen);
	ret = postern_base64_encode(raw, ulen + plen + 2, out, size);
	explicit_bzero(raw, sizeof(raw));
	return ret;
}
