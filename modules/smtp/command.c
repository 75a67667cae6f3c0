/*
 * Splitting an SMTP command line into its verb and arguments, and the
 * arguments of BDAT. The verb table is data: the session's command table
 * (session_cmd.c) says what each verb does and in which states.
 */
#include <string.h>
#include <strings.h>
#include "parse.h"

static const char *const verb_names[SMTP_VERB_COUNT] = {
	[SMTP_VERB_UNKNOWN] = "",
	[SMTP_VERB_HELO] = "HELO",
	[SMTP_VERB_EHLO] = "EHLO",
	[SMTP_VERB_MAIL] = "MAIL",
	[SMTP_VERB_RCPT] = "RCPT",
	[SMTP_VERB_DATA] = "DATA",
	[SMTP_VERB_BDAT] = "BDAT",
	[SMTP_VERB_RSET] = "RSET",
	[SMTP_VERB_NOOP] = "NOOP",
	[SMTP_VERB_QUIT] = "QUIT",
	[SMTP_VERB_VRFY] = "VRFY",
	[SMTP_VERB_EXPN] = "EXPN",
	[SMTP_VERB_HELP] = "HELP",
	[SMTP_VERB_STARTTLS] = "STARTTLS",
	[SMTP_VERB_AUTH] = "AUTH",
};

int smtp_command_parse(char *line, size_t len, struct smtp_command *cmd_r,
		       const char **error_r)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c == '\0' || c == '\r' || c == '\n') {
			*error_r = "500 5.5.2 Syntax error: CR, LF or NUL in command";
			return -1;
		}
		if ((c < 32 && c != '\t') || c == 127) {
			*error_r = "500 5.5.2 Syntax error: control character in command";
			return -1;
		}
	}
	size_t verb_len = strcspn(line, " \t");

	cmd_r->verb = SMTP_VERB_UNKNOWN;
	cmd_r->name = verb_names[SMTP_VERB_UNKNOWN];
	for (unsigned v = 1; v < SMTP_VERB_COUNT; v++) {
		if (strlen(verb_names[v]) == verb_len &&
		    strncasecmp(line, verb_names[v], verb_len) == 0) {
			cmd_r->verb = (enum smtp_verb)v;
			cmd_r->name = verb_names[v];
			break;
		}
	}
	char *args = line + verb_len;

	/* RFC 5321 says one SP; be liberal with extra blanks, not with
	 * anything else. Trailing blanks are dropped too. */
	while (*args == ' ' || *args == '\t')
		args++;
	size_t args_len = strlen(args);

	while (args_len > 0 && (args[args_len - 1] == ' ' || args[args_len - 1] == '\t'))
		args[--args_len] = '\0';
	cmd_r->args = args;
	return 0;
}

int smtp_parse_bdat(const char *args, uint64_t *size_r, bool *last_r, const char **error_r)
{
	const char *p = args;
	uint64_t size = 0;

	if (*p < '0' || *p > '9') {
		*error_r = "501 5.5.4 Syntax: BDAT size [LAST]";
		return -1;
	}
	for (; *p >= '0' && *p <= '9'; p++) {
		if (size > (UINT64_MAX - 9) / 10) {
			*error_r = "501 5.5.4 BDAT chunk size out of range";
			return -1;
		}
		size = size * 10 + (uint64_t)(*p - '0');
	}
	*last_r = false;
	if (*p == ' ') {
		while (*p == ' ')
			p++;
		if (strcasecmp(p, "LAST") != 0) {
			*error_r = "501 5.5.4 Syntax: BDAT size [LAST]";
			return -1;
		}
		*last_r = true;
	} else if (*p != '\0') {
		*error_r = "501 5.5.4 Syntax: BDAT size [LAST]";
		return -1;
	}
	*size_r = size;
	return 0;
}
