/*
 * libFuzzer target for pop3be's parsers of client input: the command line
 * parser in every session state, XCLIENT's attributes, AUTH PLAIN as pop3be
 * feeds it to libpostern-protocol, message numbers, and the byte-stuffing
 * converter that RETR and TOP run over message files.
 *
 * Input: lines separated by LF, each parsed as a command (and as an AUTH
 * response); the whole input is also run through the stuffer in chunks cut
 * by its first byte. Invariants checked: the parser's result is consistent
 * with the verb table, the stuffer's octet count is the CRLF size and its
 * output never exceeds twice the input. Any violation aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/socket.h>
#include <postern/cidr.h>
#include <postern/sasl.h>

#include "fuzz_check.h"
#include "pop3be.h"

static void parse_line(const uint8_t *line, size_t len)
{
	char *buf = malloc(len + 1);
	char plain[POSTERN_SASL_PLAIN_MAX + 1];
	const char *user, *password;

	for (int state = 0; state < POP3_STATE_COUNT; state++) {
		struct pop3_command cmd;
		enum pop3_parse_result result;

		memcpy(buf, line, len);
		result = pop3_command_parse(buf, len, (enum pop3_state)state, &cmd);
		if (result == POP3_PARSE_WRONG_STATE)
			FUZZ_CHECK(!pop3_verb_allowed(cmd.verb, (enum pop3_state)state));
		if (result != POP3_PARSE_OK)
			continue;
		FUZZ_CHECK(pop3_verb_allowed(cmd.verb, (enum pop3_state)state));
		FUZZ_CHECK(cmd.argc >= cmd.verb->min_args && cmd.argc <= cmd.verb->max_args);
		for (unsigned i = 0; i < cmd.argc; i++) {
			unsigned msgno;
			uint64_t count;

			FUZZ_CHECK(cmd.args[i] >= buf && cmd.args[i] <= buf + len);
			if (pop3_parse_msgno(cmd.args[i], 1000, &msgno) == 0)
				FUZZ_CHECK(msgno >= 1 && msgno <= 1000);
			(void)pop3_parse_count(cmd.args[i], &count);
		}
		if (cmd.verb->id == POP3_VERB_XCLIENT) {
			struct pop3_xclient xc;
			const char *error;

			if (pop3_xclient_parse(cmd.args, cmd.argc, &xc, &error) == 0)
				FUZZ_CHECK(xc.addr[0] != '\0' && xc.hop >= 1);
		}
		if (cmd.verb->id == POP3_VERB_AUTH && cmd.argc == 2 &&
		    postern_sasl_plain_decode(cmd.args[1], strlen(cmd.args[1]), plain, &user,
					      &password) == POSTERN_SASL_PLAIN_OK)
			FUZZ_CHECK(*user != '\0' && *password != '\0');
	}
	/* the line as an AUTH continuation response and as a CIDR entry */
	memcpy(buf, line, len);
	buf[len] = '\0';
	if (postern_sasl_plain_decode(buf, len, plain, &user, &password) == POSTERN_SASL_PLAIN_OK)
		FUZZ_CHECK(strlen(user) + strlen(password) + 2 <= len);

	struct postern_cidr cidr;
	const char *why;

	if (postern_cidr_parse(buf, &cidr, &why) == 0) {
		FUZZ_CHECK(cidr.prefix <= (cidr.family == AF_INET ? 32u : 128u));
		(void)postern_cidr_match(&cidr, 1, buf);
	}
	free(buf);
}

static void stuff_all(const uint8_t *data, size_t size)
{
	size_t chunk = size == 0 ? 1 : (size_t)data[0] % 17 + 1;
	uint64_t lines = size > 1 && data[1] < 128 ? data[1] % 8 : UINT64_MAX;
	char *out = malloc(2 * chunk + 8);
	struct pop3_stuffer st;
	uint64_t bare_lf = 0, sent = 0;
	char prev_out = '\0';

	pop3_stuffer_init(&st, lines);
	for (size_t i = 0; i < size; i++)
		if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
			bare_lf++;
	for (size_t pos = 0; pos < size; pos += chunk) {
		size_t take = size - pos < chunk ? size - pos : chunk;
		size_t n = pop3_stuff(&st, (const char *)data + pos, take, out);

		FUZZ_CHECK(n <= 2 * take);
		for (size_t j = 0; j < n; j++) {
			if (out[j] == '\n')
				FUZZ_CHECK((j > 0 ? out[j - 1] : prev_out) == '\r');
		}
		if (n > 0)
			prev_out = out[n - 1];
		sent += n;
	}
	sent += pop3_stuff_finish(&st, out);
	FUZZ_CHECK(sent >= st.content_bytes + 3);
	if (lines == UINT64_MAX)
		FUZZ_CHECK(st.content_bytes == size + bare_lf);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t start = 0;

	for (size_t i = 0; i <= size; i++) {
		if (i == size || data[i] == '\n') {
			size_t len = i - start;

			if (len > 0 && data[start + len - 1] == '\r')
				len--;
			parse_line(data + start, len);
			start = i + 1;
		}
	}
	stuff_all(data, size);
	return 0;
}
