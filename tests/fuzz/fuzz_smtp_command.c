/*
 * libFuzzer target for the smtp module's command-line parsers
 * (modules/smtp/command.c, params.c, address.c, lib/protocol/base64.c): the verb split,
 * MAIL and RCPT with every ESMTP parameter, xtext, BDAT arguments, HELO
 * domains and SASL base64, with and without SMTPUTF8.
 *
 * Byte 0 picks the options; the rest is one command line. Whatever parses
 * must hold no CR, LF or NUL in the address or the decoded values that
 * would go into queue records.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <postern/sasl.h>
#include "fuzz_check.h"
#include "parse.h"

static void check_clean(const char *text)
{
	if (text == NULL)
		return;
	FUZZ_CHECK(strpbrk(text, "\r\n") == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_parse_options options;
	struct smtp_command cmd;
	const char *error;

	if (size < 1 || size > 65536)
		return 0;
	options.size = data[0] & 1;
	options.eightbitmime = data[0] & 2;
	options.smtputf8 = data[0] & 4;
	options.dsn = data[0] & 8;
	options.auth = data[0] & 16;
	bool utf8 = data[0] & 32;
	size_t len = size - 1;
	char *line = malloc(len + 1);

	FUZZ_CHECK(line != NULL);
	memcpy(line, data + 1, len);
	line[len] = '\0';
	if (smtp_command_parse(line, len, &cmd, &error) < 0) {
		FUZZ_CHECK(error != NULL && strlen(error) > 4);
		free(line);
		return 0;
	}
	/* From here on the line holds no NUL, CR or LF (trailing blanks
	 * may have been cut off). */
	FUZZ_CHECK(strlen(line) <= len);
	FUZZ_CHECK(strpbrk(line, "\r\n") == NULL);
	switch (cmd.verb) {
	case SMTP_VERB_MAIL: {
		struct smtp_mail_args mail;

		if (smtp_parse_mail(cmd.args, &options, &mail, &error) == 0) {
			check_clean(mail.address);
			check_clean(mail.envid);
			check_clean(mail.auth);
			FUZZ_CHECK(strlen(mail.address) <= SMTP_MAX_PATH);
			FUZZ_CHECK(mail.address[0] == '\0' ||
				   smtp_mailbox_valid(mail.address, mail.smtputf8, NULL));
		}
		break;
	}
	case SMTP_VERB_RCPT: {
		struct smtp_rcpt_args rcpt;

		if (smtp_parse_rcpt(cmd.args, &options, utf8, &rcpt, &error) == 0) {
			check_clean(rcpt.address);
			check_clean(rcpt.orcpt);
			FUZZ_CHECK(rcpt.address[0] != '\0');
		}
		break;
	}
	case SMTP_VERB_BDAT: {
		uint64_t chunk;
		bool last;

		(void)smtp_parse_bdat(cmd.args, &chunk, &last, &error);
		break;
	}
	case SMTP_VERB_HELO:
	case SMTP_VERB_EHLO:
		(void)smtp_domain_valid(cmd.args, strlen(cmd.args), utf8);
		break;
	case SMTP_VERB_AUTH: {
		size_t alen = strlen(cmd.args);
		unsigned char *out = malloc(alen / 4 * 3 + 1);

		FUZZ_CHECK(out != NULL);
		long n = postern_base64_decode(cmd.args, alen, out, alen / 4 * 3 + 1);

		FUZZ_CHECK(n <= (long)(alen / 4 * 3));
		free(out);
		break;
	}
	default: {
		char xt[256];

		if (smtp_xtext_decode(cmd.args) >= 0) {
			check_clean(cmd.args);
			(void)smtp_xtext_encode(cmd.args, strlen(cmd.args), xt, sizeof(xt));
		}
		break;
	}
	}
	free(line);
	return 0;
}
