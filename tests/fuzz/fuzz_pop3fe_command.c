/*
 * libFuzzer target for pop3fe's parsing of network input before login
 * (modules/pop3fe/command.c, with lib/protocol's base64 and SASL PLAIN):
 * the command line parser, XCLIENT's attributes, AUTH PLAIN responses and
 * their re-encoding for the back-end, and the classification of a
 * back-end's login replies and answer ends.
 *
 * Byte 0 picks what to drive; the rest is the input. Besides crashes and
 * sanitizer reports, the parser's results must be self-consistent: every
 * argument inside the copy buffer, `rest` inside the line, a decoded SASL
 * response re-encoding to the same, base64 round-tripping.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "pop3fe.h"

static struct pop3fe_command cmd;

static void fuzz_command(const char *line, size_t len)
{
	enum pop3fe_parse_result result = pop3fe_parse(line, len, &cmd);

	if (result == POP3FE_PARSE_BAD_CHARS)
		return;
	FUZZ_CHECK(cmd.argc <= POP3FE_MAX_ARGS);
	if (cmd.rest_len > 0)
		FUZZ_CHECK(cmd.rest >= line && cmd.rest + cmd.rest_len == line + len);
	for (unsigned i = 0; i < cmd.argc; i++) {
		FUZZ_CHECK(cmd.argv[i] >= cmd.buf && cmd.argv[i] <= cmd.buf + POP3FE_MAX_LINE);
		FUZZ_CHECK(strchr(cmd.argv[i], ' ') == NULL);
	}
	if (result != POP3FE_PARSE_OK)
		return;
	if (cmd.verb == POP3FE_XCLIENT) {
		struct pop3fe_xclient xc;
		const char *error;

		if (pop3fe_xclient_parse(cmd.argv, cmd.argc, &xc, &error) == 0) {
			FUZZ_CHECK(xc.addr[0] != '\0' && strlen(xc.addr) < sizeof(xc.addr));
			FUZZ_CHECK(xc.hop >= 1 && xc.port <= 65535);
		}
	}
	if (cmd.verb == POP3FE_AUTH && cmd.argc == 2) {
		char buf[POSTERN_SASL_PLAIN_MAX + 1];
		const char *user, *password;

		if (postern_sasl_plain_decode(cmd.argv[1], strlen(cmd.argv[1]), buf, &user,
					      &password) == POSTERN_SASL_PLAIN_OK)
			FUZZ_CHECK(user[0] != '\0' && password[0] != '\0');
	}
}

static void fuzz_sasl(const char *data, size_t size)
{
	char buf[POSTERN_SASL_PLAIN_MAX + 1], again[POSTERN_SASL_PLAIN_MAX + 1];
	static char encoded[POP3FE_PLAIN_B64_MAX];
	const char *user, *password, *user2, *password2;

	if (postern_sasl_plain_decode(data, size, buf, &user, &password) != POSTERN_SASL_PLAIN_OK)
		return;
	/* What a client's AUTH PLAIN gave us, the back-end login re-encodes:
	 * it must decode to the same. */
	long n = pop3fe_plain_encode(user, password, encoded, sizeof(encoded));

	FUZZ_CHECK(n > 0);
	FUZZ_CHECK(postern_sasl_plain_decode(encoded, (size_t)n, again, &user2, &password2) ==
		   POSTERN_SASL_PLAIN_OK);
	FUZZ_CHECK(strcmp(user, user2) == 0 && strcmp(password, password2) == 0);
}

static void fuzz_base64(const uint8_t *data, size_t size)
{
	static char encoded[4 * (65536 / 3 + 1) + 8];
	static unsigned char decoded[65536];

	if (size > 65536)
		size = 65536;
	long n = postern_base64_encode(data, size, encoded, sizeof(encoded));

	FUZZ_CHECK(n >= 0 && (size_t)n == 4 * ((size + 2) / 3));
	FUZZ_CHECK(postern_base64_decode(encoded, (size_t)n, decoded, sizeof(decoded)) == (long)size);
	FUZZ_CHECK(memcmp(decoded, data, size) == 0);
	/* Any text either decodes within bounds or is refused. */
	long m = postern_base64_decode((const char *)data, size, decoded, sizeof(decoded));

	FUZZ_CHECK(m == -1 || ((size_t)m <= size && size % 4 == 0));
}

static void fuzz_replies(const char *data, size_t size)
{
	enum postern_proxy_step step = pop3fe_login_reply(data, size);

	FUZZ_CHECK(step == POSTERN_PROXY_STEP_LOGGED_IN || step == POSTERN_PROXY_STEP_BROKEN ||
		   step == POSTERN_PROXY_STEP_FAILOVER || step == POSTERN_PROXY_STEP_PASS_ON ||
		   step == POSTERN_PROXY_STEP_MISMATCH);
	size_t head = size < POSTERN_PROXY_LINE_HEAD ? size : POSTERN_PROXY_LINE_HEAD;

	(void)pop3fe_response_done(data, head, size, true);
	(void)pop3fe_response_done(data, head, size, false);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;

	/* A private copy: no NUL terminator the parsers could lean on. */
	size_t len = size - 1;
	char *copy = malloc(len > 0 ? len : 1);

	if (copy == NULL)
		abort();
	memcpy(copy, data + 1, len);
	switch (data[0] % 4) {
	case 0:
		fuzz_command(copy, len);
		break;
	case 1:
		fuzz_sasl(copy, len);
		break;
	case 2:
		fuzz_base64(data + 1, len);
		break;
	case 3:
		fuzz_replies(copy, len);
		break;
	}
	free(copy);
	return 0;
}
