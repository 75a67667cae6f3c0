/*
 * Unit tests of the smtp module's pure parts: the command-line parsers
 * (verbs, paths, ESMTP parameters, xtext), the DATA/BDAT scanner
 * (every smuggling variant, chunk boundaries at every byte position), the
 * message builder (hop count, Date/Message-ID insertion, size), the
 * client's reply parser (multi-line, overlong, garbage, endless),
 * dot-stuffing and relay networks. One suite per concept, fork mode.
 */
#include <check.h>
#include "check_main.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "parse.h"
#include "data_scanner.h"
#include "message.h"
#include "wire.h"

/* ---- command line ------------------------------------------------------- */

static int parse_line(const char *text, struct smtp_command *cmd, char *buf, size_t size,
		      const char **error)
{
	size_t len = strlen(text);

	ck_assert_uint_lt(len, size);
	memcpy(buf, text, len + 1);
	return smtp_command_parse(buf, len, cmd, error);
}

START_TEST(test_command_verbs)
{
	static const struct {
		const char *line;
		enum smtp_verb verb;
		const char *args;
	} cases[] = {
		{ "HELO example.org", SMTP_VERB_HELO, "example.org" },
		{ "ehlo  example.org  ", SMTP_VERB_EHLO, "example.org" },
		{ "MAIL FROM:<a@b.c>", SMTP_VERB_MAIL, "FROM:<a@b.c>" },
		{ "rcpt TO:<a@b.c>", SMTP_VERB_RCPT, "TO:<a@b.c>" },
		{ "DATA", SMTP_VERB_DATA, "" },
		{ "BDAT 10 LAST", SMTP_VERB_BDAT, "10 LAST" },
		{ "RSET", SMTP_VERB_RSET, "" },
		{ "NOOP anything", SMTP_VERB_NOOP, "anything" },
		{ "QUIT", SMTP_VERB_QUIT, "" },
		{ "VRFY postmaster", SMTP_VERB_VRFY, "postmaster" },
		{ "EXPN list", SMTP_VERB_EXPN, "list" },
		{ "HELP", SMTP_VERB_HELP, "" },
		{ "StartTLS", SMTP_VERB_STARTTLS, "" },
		{ "AUTH PLAIN AGFsaWNlAGFsaWNl", SMTP_VERB_AUTH, "PLAIN AGFsaWNlAGFsaWNl" },
		{ "MAILX FROM:<a@b.c>", SMTP_VERB_UNKNOWN, "FROM:<a@b.c>" },
		{ "", SMTP_VERB_UNKNOWN, "" },
		{ "GET / HTTP/1.1", SMTP_VERB_UNKNOWN, "/ HTTP/1.1" },
	};
	char buf[128];
	struct smtp_command cmd;
	const char *error;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_int_eq(parse_line(cases[i].line, &cmd, buf, sizeof(buf), &error), 0);
		ck_assert_int_eq(cmd.verb, cases[i].verb);
		ck_assert_str_eq(cmd.args, cases[i].args);
	}
}
END_TEST

START_TEST(test_command_control_bytes)
{
	static const char *const bad[] = { "MAIL FROM:<a@b.c>\r", "NO\nOP", "NOOP \x01",
					   "NOOP \x7f" };
	char buf[64];
	struct smtp_command cmd;
	const char *error;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(parse_line(bad[i], &cmd, buf, sizeof(buf), &error), -1);
		ck_assert(strncmp(error, "500 5.5.2", 9) == 0);
	}
	/* A NUL inside the line (len covers it). */
	memcpy(buf, "NOOP a\0b", 9);
	ck_assert_int_eq(smtp_command_parse(buf, 8, &cmd, &error), -1);
	/* TAB is allowed as a blank. */
	ck_assert_int_eq(parse_line("NOOP\tx", &cmd, buf, sizeof(buf), &error), 0);
	ck_assert_str_eq(cmd.args, "x");
}
END_TEST

START_TEST(test_bdat_args)
{
	uint64_t size;
	bool last;
	const char *error;

	ck_assert_int_eq(smtp_parse_bdat("100", &size, &last, &error), 0);
	ck_assert_uint_eq(size, 100);
	ck_assert(!last);
	ck_assert_int_eq(smtp_parse_bdat("0 last", &size, &last, &error), 0);
	ck_assert_uint_eq(size, 0);
	ck_assert(last);
	ck_assert_int_eq(smtp_parse_bdat("", &size, &last, &error), -1);
	ck_assert_int_eq(smtp_parse_bdat("-1", &size, &last, &error), -1);
	ck_assert_int_eq(smtp_parse_bdat("10 FIRST", &size, &last, &error), -1);
	ck_assert_int_eq(smtp_parse_bdat("10x", &size, &last, &error), -1);
	ck_assert_int_eq(smtp_parse_bdat("99999999999999999999999", &size, &last, &error), -1);
}
END_TEST

/* ---- addresses ------------------------------------------------------------ */

START_TEST(test_mailbox_syntax)
{
	static const char *const good[] = {
		"a@b.c",
		"first.last@example.org",
		"x+tag@sub-domain.example.org",
		"\"quoted local\"@example.org",
		"\"with \\\"escape\\\"\"@example.org",
		"\"a@b\"@example.org",
		"user@[192.0.2.1]",
		"user@[IPv6:2001:db8::1]",
		"user@[IPv6:::1]",
		"user@[IPv6:2001:db8:0:0:0:0:0:1]",
		"user@[IPv6:::ffff:192.0.2.1]",
		"!#$%&'*+-/=?^_`{|}~@example.org",
	};
	static const char *const bad[] = {
		"",
		"a",
		"@b.c",
		"a@",
		".a@b.c",
		"a.@b.c",
		"a..b@b.c",
		"a b@c.d",
		"a@b..c",
		"a@-b.c",
		"a@b-.c",
		"a@b_c.d",
		"\"unterminated@b.c",
		"\"bad\x01\"@b.c",
		"user@[192.0.2.256]",
		"user@[1.2.3]",
		"user@[IPv6:2001:db8::1::2]",
		"user@[IPv6:12345::]",
		"user@[tag:content]",
		"a@b.c\r",
		"a(comment)@b.c",
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(smtp_mailbox_valid(good[i], false, NULL), "should be valid: %s",
			      good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!smtp_mailbox_valid(bad[i], false, NULL), "should be invalid: %s",
			      bad[i]);
}
END_TEST

START_TEST(test_mailbox_lengths)
{
	char local[80], mailbox[400];

	memset(local, 'a', 64);
	local[64] = '\0';
	snprintf(mailbox, sizeof(mailbox), "%s@example.org", local);
	ck_assert(smtp_mailbox_valid(mailbox, false, NULL));
	local[64] = 'a';
	local[65] = '\0';
	snprintf(mailbox, sizeof(mailbox), "%s@example.org", local);
	ck_assert(!smtp_mailbox_valid(mailbox, false, NULL));
	/* A label of 64 bytes. */
	char label[70];

	memset(label, 'b', 64);
	label[64] = '\0';
	snprintf(mailbox, sizeof(mailbox), "a@%s.org", label);
	ck_assert(!smtp_mailbox_valid(mailbox, false, NULL));
}
END_TEST

START_TEST(test_mailbox_utf8)
{
	bool non_ascii;

	ck_assert(!smtp_mailbox_valid("j\xc3\xb6rg@example.org", false, &non_ascii));
	ck_assert(non_ascii);
	ck_assert(smtp_mailbox_valid("j\xc3\xb6rg@example.org", true, &non_ascii));
	ck_assert(smtp_mailbox_valid("user@b\xc3\xbc\x63her.example", true, NULL));
	ck_assert(smtp_mailbox_valid("\"q\xc3\xb6\"@example.org", true, NULL));
	/* Malformed UTF-8: truncated, overlong, surrogate, invalid lead. */
	ck_assert(!smtp_mailbox_valid("j\xc3@example.org", true, NULL));
	ck_assert(!smtp_mailbox_valid("j\xc0\xaf@example.org", true, NULL));
	ck_assert(!smtp_mailbox_valid("j\xed\xa0\x80@example.org", true, NULL));
	ck_assert(!smtp_mailbox_valid("j\xff@example.org", true, NULL));
	ck_assert(smtp_utf8_valid("\xf0\x9f\x98\x80", 4));
	ck_assert(!smtp_utf8_valid("\xf4\x90\x80\x80", 4));
}
END_TEST

START_TEST(test_domain_syntax)
{
	ck_assert(smtp_domain_valid("example.org", 11, false));
	ck_assert(smtp_domain_valid("localhost", 9, false));
	ck_assert(smtp_domain_valid("[127.0.0.1]", 11, false));
	ck_assert(!smtp_domain_valid("", 0, false));
	ck_assert(!smtp_domain_valid("exa mple", 8, false));
	ck_assert(!smtp_domain_valid("example.", 8, false));
	ck_assert(!smtp_domain_valid("[127.0.0.1", 10, false));
}
END_TEST

/* ---- MAIL and RCPT parameters -------------------------------------------- */

static const struct smtp_parse_options all_options = { true, true, true, true, true };

static int mail(const char *text, struct smtp_mail_args *args, const char **error,
		char *buf, size_t size)
{
	snprintf(buf, size, "%s", text);
	return smtp_parse_mail(buf, &all_options, args, error);
}

START_TEST(test_mail_params)
{
	char buf[512];
	struct smtp_mail_args args;
	const char *error;

	ck_assert_int_eq(mail("FROM:<a@b.c>", &args, &error, buf, sizeof(buf)), 0);
	ck_assert_str_eq(args.address, "a@b.c");
	ck_assert_int_eq(mail("from: <>", &args, &error, buf, sizeof(buf)), 0);
	ck_assert_str_eq(args.address, "");
	ck_assert_int_eq(mail("FROM:<@relay.example:a@b.c>", &args, &error, buf, sizeof(buf)),
			 0);
	ck_assert_str_eq(args.address, "a@b.c");
	ck_assert_int_eq(mail("FROM:<a@b.c> SIZE=1000 BODY=8BITMIME SMTPUTF8 RET=HDRS "
			      "ENVID=QQ+2B1 AUTH=<>",
			      &args, &error, buf, sizeof(buf)),
			 0);
	ck_assert(args.size_given);
	ck_assert_uint_eq(args.size, 1000);
	ck_assert_int_eq(args.body, SMTP_BODY_8BITMIME);
	ck_assert(args.smtputf8);
	ck_assert_int_eq(args.ret, POSTERN_RET_HDRS);
	ck_assert_str_eq(args.envid, "QQ+1");
	ck_assert_str_eq(args.auth, "<>");
	ck_assert_int_eq(mail("FROM:<a@b.c> body=7bit ret=full", &args, &error, buf,
			      sizeof(buf)),
			 0);
	ck_assert_int_eq(args.body, SMTP_BODY_7BIT);
	ck_assert_int_eq(args.ret, POSTERN_RET_FULL);
	/* A quoted local part holding '>' and a space. */
	ck_assert_int_eq(mail("FROM:<\"a> b\"@b.c> SIZE=1", &args, &error, buf, sizeof(buf)), 0);
	ck_assert_str_eq(args.address, "\"a> b\"@b.c");
}
END_TEST

START_TEST(test_mail_errors)
{
	static const struct {
		const char *text;
		const char *code;
	} cases[] = {
		{ "FROM:a@b.c", "501 5.5.4" },
		{ "TO:<a@b.c>", "501 5.5.4" },
		{ "FROM:<a@b.c", "501 5.5.4" },
		{ "FROM:<a@b.c>x", "501 5.5.4" },
		{ "FROM:<a@b.c> SIZE=abc", "501 5.5.4" },
		{ "FROM:<a@b.c> SIZE=", "501 5.5.4" },
		{ "FROM:<a@b.c> SIZE=1 SIZE=2", "501 5.5.4" },
		{ "FROM:<a@b.c> BODY=BINARYMIME", "501 5.5.4" },
		{ "FROM:<a@b.c> SMTPUTF8=yes", "501 5.5.4" },
		{ "FROM:<a@b.c> RET=ALL", "501 5.5.4" },
		{ "FROM:<a@b.c> ENVID=a+0D+0Ab", "501 5.5.4" },
		{ "FROM:<a@b.c> ENVID=a+00b", "501 5.5.4" },
		{ "FROM:<a@b.c> ENVID=bad+zz", "501 5.5.4" },
		{ "FROM:<a@b.c> XFOO=1", "555 5.5.4" },
		{ "FROM:<a@b.c> -BAD=1", "501 5.5.4" },
		{ "FROM:<a b@b.c>", "553 5.1.7" },
		{ "FROM:<j\xc3\xb6rg@b.c>", "553 5.6.7" },
	};
	char buf[512];
	struct smtp_mail_args args;
	const char *error;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_msg(mail(cases[i].text, &args, &error, buf, sizeof(buf)) == -1,
			      "should fail: %s", cases[i].text);
		ck_assert_msg(strncmp(error, cases[i].code, strlen(cases[i].code)) == 0,
			      "%s: got %s, want %s", cases[i].text, error, cases[i].code);
	}
	/* UTF-8 is fine with SMTPUTF8. */
	ck_assert_int_eq(mail("FROM:<j\xc3\xb6rg@b.c> SMTPUTF8", &args, &error, buf, sizeof(buf)),
			 0);
	/* A path over 256 bytes. */
	char big[400];

	memset(big, 'a', sizeof(big));
	memcpy(big, "FROM:<", 6);
	memcpy(big + 300, "@b.c>", 6);
	ck_assert_int_eq(mail(big, &args, &error, buf, sizeof(buf)), -1);
}
END_TEST

START_TEST(test_mail_extensions_off)
{
	const struct smtp_parse_options none = { 0 };
	char buf[128];
	struct smtp_mail_args args;
	const char *error;

	snprintf(buf, sizeof(buf), "FROM:<a@b.c> SIZE=10");
	ck_assert_int_eq(smtp_parse_mail(buf, &none, &args, &error), -1);
	ck_assert(strncmp(error, "555", 3) == 0);
}
END_TEST

START_TEST(test_rcpt_params)
{
	char buf[512];
	struct smtp_rcpt_args args;
	const char *error;

	snprintf(buf, sizeof(buf), "TO:<a@b.c> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;a+2Bx@b.c");
	ck_assert_int_eq(smtp_parse_rcpt(buf, &all_options, false, &args, &error), 0);
	ck_assert_str_eq(args.address, "a@b.c");
	ck_assert_uint_eq(args.notify, POSTERN_NOTIFY_SUCCESS | POSTERN_NOTIFY_DELAY);
	ck_assert_str_eq(args.orcpt, "rfc822;a+x@b.c");
	snprintf(buf, sizeof(buf), "TO:<Postmaster>");
	ck_assert_int_eq(smtp_parse_rcpt(buf, &all_options, false, &args, &error), 0);
	ck_assert_str_eq(args.address, "Postmaster");
	snprintf(buf, sizeof(buf), "TO:<a@b.c> NOTIFY=never");
	ck_assert_int_eq(smtp_parse_rcpt(buf, &all_options, false, &args, &error), 0);
	ck_assert_uint_eq(args.notify, POSTERN_NOTIFY_NEVER);

	static const char *const bad[] = {
		"TO:<a@b.c> NOTIFY=NEVER,SUCCESS",
		"TO:<a@b.c> NOTIFY=SUCCESS,",
		"TO:<a@b.c> NOTIFY=SUCCESS,SUCCESS",
		"TO:<a@b.c> NOTIFY=SOMETIMES",
		"TO:<a@b.c> ORCPT=a@b.c",
		"TO:<a@b.c> ORCPT=;a@b.c",
		"TO:<a@b.c> ORCPT=rfc822;a+0Db@b.c",
		"TO:<a@b.c> SIZE=10",
		"TO:<user>",
		"TO:<>",
		"TO:<a@b.c",
		"FROM:<a@b.c>",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(buf, sizeof(buf), "%s", bad[i]);
		ck_assert_msg(smtp_parse_rcpt(buf, &all_options, false, &args, &error) == -1,
			      "should fail: %s", bad[i]);
	}
	snprintf(buf, sizeof(buf), "TO:<\xc3\xa9@b.c>");
	ck_assert_int_eq(smtp_parse_rcpt(buf, &all_options, false, &args, &error), -1);
	ck_assert(strncmp(error, "553 5.6.7", 9) == 0);
	snprintf(buf, sizeof(buf), "TO:<\xc3\xa9@b.c>");
	ck_assert_int_eq(smtp_parse_rcpt(buf, &all_options, true, &args, &error), 0);
}
END_TEST

/* ---- xtext ------------------------------------------------------------------ */

START_TEST(test_xtext)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "abc+2B+3Ddef");
	ck_assert_int_eq(smtp_xtext_decode(buf), 8);
	ck_assert_str_eq(buf, "abc+=def");
	static const char *const bad[] = { "a+2", "a+2b", "a+G0", "a=b", "a b", "+0A", "+7F",
					   "+1F" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(buf, sizeof(buf), "%s", bad[i]);
		ck_assert_msg(smtp_xtext_decode(buf) == -1, "should fail: %s", bad[i]);
	}
	char out[64];

	ck_assert_int_eq(smtp_xtext_encode("a+b=c d", 7, out, sizeof(out)), 13);
	ck_assert_str_eq(out, "a+2Bb+3Dc+20d");
	ck_assert_int_eq(smtp_xtext_encode("a+b", 3, out, 4), -1);
	/* Round trip of every printable byte. */
	char all[96], enc[400];

	for (int i = 0; i < 94; i++)
		all[i] = (char)(33 + i);
	all[94] = '\0';
	ck_assert_int_ge(smtp_xtext_encode(all, 94, enc, sizeof(enc)), 94);
	ck_assert_int_eq(smtp_xtext_decode(enc), 94);
	ck_assert_str_eq(enc, all);
}
END_TEST


/* ---- DATA scanner ---------------------------------------------------------- */

struct collect {
	char buf[8192];
	size_t len;
};

static void collect_text(void *ctx, const char *data, size_t len)
{
	struct collect *c = ctx;

	ck_assert_uint_le(c->len + len, sizeof(c->buf));
	memcpy(c->buf + c->len, data, len);
	c->len += len;
}

static void collect_eol(void *ctx)
{
	collect_text(ctx, "\r\n", 2);
}

/* Scan `input` cut into pieces at `cut` (0: whole); returns bytes used. */
static size_t scan(struct smtp_data_scanner *scanner, const char *input, size_t len,
		   size_t cut, struct collect *out)
{
	struct smtp_data_sink sink = { collect_text, collect_eol, out };
	size_t used = 0;

	if (cut == 0 || cut >= len)
		return smtp_data_scan(scanner, input, len, &sink);
	used = smtp_data_scan(scanner, input, cut, &sink);
	if (used == cut)
		used += smtp_data_scan(scanner, input + cut, len - cut, &sink);
	return used;
}

START_TEST(test_scanner_basic)
{
	static const char input[] = "Subject: x\r\n\r\n..dot\r\n.x\r\nbody\r\n.\r\nQUIT\r\n";
	size_t len = sizeof(input) - 1, end = strstr(input, "QUIT") - input;

	/* Every cut position gives the same result. */
	for (size_t cut = 0; cut < len; cut++) {
		struct smtp_data_scanner scanner;
		struct collect out = { .len = 0 };

		smtp_data_scanner_init(&scanner, true, 998);
		ck_assert_uint_eq(scan(&scanner, input, len, cut, &out), end);
		ck_assert(smtp_data_scanner_done(&scanner));
		ck_assert(smtp_data_scanner_clean(&scanner));
		ck_assert_uint_eq(out.len, strlen("Subject: x\r\n\r\n.dot\r\nx\r\nbody\r\n"));
		ck_assert(memcmp(out.buf, "Subject: x\r\n\r\n.dot\r\nx\r\nbody\r\n", out.len) == 0);
	}
}
END_TEST

START_TEST(test_scanner_empty_message)
{
	struct smtp_data_scanner scanner;
	struct collect out = { .len = 0 };

	smtp_data_scanner_init(&scanner, true, 998);
	ck_assert_uint_eq(scan(&scanner, ".\r\nNOOP\r\n", 9, 0, &out), 3);
	ck_assert(smtp_data_scanner_done(&scanner));
	ck_assert_uint_eq(out.len, 0);
}
END_TEST

/* Every SMTP smuggling variant: none ends the message, each is reported,
 * at every cut position; only the real CRLF.CRLF at the end does. */
START_TEST(test_scanner_smuggling)
{
	static const char *const variants[] = {
		"\n.\n", "\n.\r\n", "\r.\r\n", "\r\n.\n", "\r\n.\r", "\r.\n", "\n.\r",
		".\n",   "\r\n.\rX\r\n", "\r\n.\r\r\n",
	};
	char input[256];

	for (size_t v = 0; v < sizeof(variants) / sizeof(variants[0]); v++) {
		int n = snprintf(input, sizeof(input),
				 "From: a\r\n\r\nx%sMAIL FROM:<evil@x>\r\nRCPT TO:<v@y>\r\nDATA\r\n"
				 "smuggled\r\n.\r\nQUIT\r\n",
				 variants[v]);
		size_t len = (size_t)n;
		const char *first_end = strstr(input, "\r\n.\r\nQUIT");
		size_t end = (size_t)(first_end - input) + 5;

		for (size_t cut = 0; cut < len; cut++) {
			struct smtp_data_scanner scanner;
			struct collect out = { .len = 0 };

			smtp_data_scanner_init(&scanner, true, 998);
			size_t used = scan(&scanner, input, len, cut, &out);

			ck_assert_msg(used == end, "variant %zu cut %zu: used %zu, want %zu", v, cut,
				      used, end);
			ck_assert(smtp_data_scanner_done(&scanner));
			ck_assert_msg(!smtp_data_scanner_clean(&scanner), "variant %zu not reported",
				      v);
			ck_assert(scanner.bare_cr || scanner.bare_lf);
		}
	}
}
END_TEST

/* Bare CR or LF anywhere in a line is reported, at every cut position. */
START_TEST(test_scanner_bare_bytes)
{
	static const char *const inputs[] = { "a\rb\r\n.\r\n", "a\nb\r\n.\r\n", "\r\r\n.\r\n",
					      "\n\r\n.\r\n", "ab\r\r\r\n.\r\n", "a\0b\r\n.\r\n" };
	static const size_t lens[] = { 8, 8, 6, 6, 9, 8 };

	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		for (size_t cut = 0; cut < lens[i]; cut++) {
			struct smtp_data_scanner scanner;
			struct collect out = { .len = 0 };

			smtp_data_scanner_init(&scanner, true, 998);
			ck_assert_uint_eq(scan(&scanner, inputs[i], lens[i], cut, &out), lens[i]);
			ck_assert(smtp_data_scanner_done(&scanner));
			ck_assert_msg(!smtp_data_scanner_clean(&scanner), "input %zu", i);
		}
	}
}
END_TEST

START_TEST(test_scanner_line_length)
{
	char input[2100];
	struct smtp_data_scanner scanner;
	struct collect out = { .len = 0 };

	/* Exactly 998 bytes: fine; 999: too long. The stuffed dot counts. */
	memset(input, 'a', 998);
	memcpy(input + 998, "\r\n.\r\n", 5);
	smtp_data_scanner_init(&scanner, true, 998);
	ck_assert_uint_eq(scan(&scanner, input, 1003, 500, &out), 1003);
	ck_assert(smtp_data_scanner_clean(&scanner));
	input[0] = '.';
	memset(input + 1, '.', 998);
	memcpy(input + 999, "\r\n.\r\n", 5);
	smtp_data_scanner_init(&scanner, true, 998);
	out.len = 0;
	ck_assert_uint_eq(scan(&scanner, input, 1004, 0, &out), 1004);
	ck_assert(scanner.long_line);
	ck_assert_uint_eq(out.len, 998 + 2); /* the leading dot removed */
}
END_TEST

START_TEST(test_scanner_bdat)
{
	struct smtp_data_scanner scanner;
	struct collect out = { .len = 0 };
	struct smtp_data_sink sink = { collect_text, collect_eol, &out };

	smtp_data_scanner_init(&scanner, false, 998);
	/* No dot handling: ".\r\n" is text, "..x" stays. */
	ck_assert_uint_eq(smtp_data_scan(&scanner, "..x\r\n.\r\nend", 11, &sink), 11);
	ck_assert(!smtp_data_scanner_done(&scanner));
	ck_assert(smtp_data_scanner_finish(&scanner, &sink));
	ck_assert_uint_eq(out.len, 13);
	ck_assert(memcmp(out.buf, "..x\r\n.\r\nend\r\n", 13) == 0);
	/* A trailing bare CR is a bare CR. */
	smtp_data_scanner_init(&scanner, false, 998);
	smtp_data_scan(&scanner, "x\r", 2, &sink);
	ck_assert(!smtp_data_scanner_finish(&scanner, &sink));
	/* A bare LF in a chunk. */
	smtp_data_scanner_init(&scanner, false, 998);
	smtp_data_scan(&scanner, "x\ny\r\n", 5, &sink);
	ck_assert(!smtp_data_scanner_finish(&scanner, &sink));
}
END_TEST

/* ---- message builder --------------------------------------------------------- */

struct sinkbuf {
	char data[200000];
	size_t len;
	size_t fail_after; /* 0: never */
};

static int sinkbuf_write(void *ctx, const void *data, size_t len, const char **error_r)
{
	struct sinkbuf *s = ctx;

	if (s->fail_after != 0 && s->len + len > s->fail_after) {
		*error_r = "No space left on device";
		return -1;
	}
	ck_assert_uint_le(s->len + len, sizeof(s->data));
	memcpy(s->data + s->len, data, len);
	s->len += len;
	s->data[s->len] = '\0';
	return 0;
}

/* Run a DATA body (with end marker) through scanner and message. */
static struct smtp_message *build(const char *body, struct sinkbuf *out, bool add,
				  unsigned max_hops, uint64_t max_size)
{
	struct smtp_message *message = calloc(1, sizeof(*message));
	struct smtp_data_scanner scanner;
	struct smtp_data_sink sink;

	ck_assert_ptr_nonnull(message);
	smtp_message_init(message, sinkbuf_write, out);
	message->max_hops = max_hops;
	message->max_size = max_size;
	if (add) {
		message->add_date = "Date: Thu, 1 Jan 2026 00:00:00 +0000";
		message->add_message_id = "Message-ID: <x@y>";
	}
	smtp_message_prepend(message, "Received: ours\r\n", 16);
	smtp_message_sink(message, &sink);
	smtp_data_scanner_init(&scanner, true, 998);
	smtp_data_scan(&scanner, body, strlen(body), &sink);
	ck_assert(smtp_data_scanner_done(&scanner));
	smtp_message_finish(message);
	return message;
}

START_TEST(test_message_adds_headers)
{
	struct sinkbuf *out = calloc(1, sizeof(*out));
	struct smtp_message *m = build("Subject: hi\r\n\r\nbody\r\n.\r\n", out, true, 50, 0);

	ck_assert_str_eq(out->data, "Received: ours\r\nSubject: hi\r\n"
				    "Date: Thu, 1 Jan 2026 00:00:00 +0000\r\nMessage-ID: <x@y>\r\n"
				    "\r\nbody\r\n");
	ck_assert(m->added_date && m->added_message_id);
	free(m);
	out->len = 0;
	m = build("Date: x\r\nmessage-id: <a@b>\r\n\r\nbody\r\n.\r\n", out, true, 50, 0);
	ck_assert_str_eq(out->data, "Received: ours\r\nDate: x\r\nmessage-id: <a@b>\r\n\r\nbody\r\n");
	ck_assert(!m->added_date && !m->added_message_id);
	free(m);
	/* No empty line: body text starts the body; headers go before it. */
	out->len = 0;
	m = build("Subject: hi\r\njust text\r\n.\r\n", out, true, 50, 0);
	ck_assert_str_eq(out->data, "Received: ours\r\nSubject: hi\r\n"
				    "Date: Thu, 1 Jan 2026 00:00:00 +0000\r\nMessage-ID: <x@y>\r\n"
				    "\r\njust text\r\n");
	free(m);
	/* Only headers. */
	out->len = 0;
	m = build("Subject: hi\r\n.\r\n", out, true, 50, 0);
	ck_assert_str_eq(out->data, "Received: ours\r\nSubject: hi\r\n"
				    "Date: Thu, 1 Jan 2026 00:00:00 +0000\r\nMessage-ID: <x@y>\r\n");
	free(m);
	/* A Date in the body does not count; a continuation does not either. */
	out->len = 0;
	m = build("Subject: a\r\n Date: folded\r\n\r\nDate: body\r\n.\r\n", out, true, 50, 0);
	ck_assert(m->added_date);
	free(m);
	free(out);
}
END_TEST

START_TEST(test_message_hops)
{
	struct sinkbuf *out = calloc(1, sizeof(*out));
	char body[4096] = "";

	for (int i = 0; i < 50; i++)
		strcat(body, "Received: from x\r\n");
	strcat(body, "\r\nReceived: in the body\r\n.\r\n");
	struct smtp_message *m = build(body, out, false, 50, 0);

	ck_assert_uint_eq(m->received, 50);
	ck_assert(!m->too_many_hops);
	free(m);
	memmove(body + 18, body, strlen(body) + 1);
	memcpy(body, "received: from y\r\n", 18);
	out->len = 0;
	m = build(body, out, false, 50, 0);
	ck_assert_uint_eq(m->received, 51);
	ck_assert(m->too_many_hops);
	ck_assert(smtp_message_failed(m));
	free(m);
	free(out);
}
END_TEST

START_TEST(test_message_size_and_write_failure)
{
	struct sinkbuf *out = calloc(1, sizeof(*out));
	struct smtp_message *m = build("Subject: 12345\r\n\r\n.\r\n", out, false, 50, 18);

	ck_assert(!m->too_big); /* 16 + 2 = 18 bytes: at the limit */
	free(m);
	out->len = 0;
	m = build("Subject: 123456\r\n\r\n.\r\n", out, false, 50, 18);
	ck_assert(m->too_big);
	free(m);
	out->len = 0;
	out->fail_after = 10;
	m = build("Subject: 123456\r\n\r\nbody\r\n.\r\n", out, false, 50, 0);
	ck_assert(m->write_failed);
	ck_assert_str_eq(m->write_error, "No space left on device");
	ck_assert_uint_eq(out->len, 0);
	free(m);
	free(out);
}
END_TEST

START_TEST(test_message_long_header_line)
{
	struct sinkbuf *out = calloc(1, sizeof(*out));
	char body[4000];

	memcpy(body, "X-Long: ", 8);
	memset(body + 8, 'a', 2000);
	strcpy(body + 2008, "\r\nReceived: x\r\n\r\nb\r\n.\r\n");
	struct smtp_message *m = build(body, out, false, 50, 0);

	/* Passed on whole; the Received after it is still counted. */
	ck_assert_uint_eq(m->received, 1);
	ck_assert_uint_eq(out->len, 16 + 2010 + 13 + 2 + 3);
	free(m);
	free(out);
}
END_TEST

/* ---- reply parser -------------------------------------------------------------- */

static enum smtp_reply_status feed(struct smtp_reply *reply, const char *line,
				   const char **error)
{
	return smtp_reply_feed(reply, line, strlen(line), false, error);
}

START_TEST(test_reply_single_and_multi)
{
	struct smtp_reply reply;
	const char *error;

	smtp_reply_init(&reply, false);
	ck_assert_int_eq(feed(&reply, "250 2.1.0 Ok", &error), SMTP_REPLY_DONE);
	ck_assert_uint_eq(reply.code, 250);
	ck_assert_str_eq(reply.enhanced, "2.1.0");
	ck_assert_str_eq(reply.text, "2.1.0 Ok");
	smtp_reply_init(&reply, false);
	ck_assert_int_eq(feed(&reply, "220", &error), SMTP_REPLY_DONE);
	ck_assert_str_eq(reply.enhanced, "");
	smtp_reply_init(&reply, true);
	ck_assert_int_eq(feed(&reply, "250-mx.example.org", &error), SMTP_REPLY_MORE);
	ck_assert_int_eq(feed(&reply, "250-PIPELINING", &error), SMTP_REPLY_MORE);
	ck_assert_int_eq(feed(&reply, "250-SIZE 10240000", &error), SMTP_REPLY_MORE);
	ck_assert_int_eq(feed(&reply, "250-starttls", &error), SMTP_REPLY_MORE);
	ck_assert_int_eq(feed(&reply, "250-8BITMIME", &error), SMTP_REPLY_MORE);
	ck_assert_int_eq(feed(&reply, "250-DSN", &error), SMTP_REPLY_MORE);
	ck_assert_int_eq(feed(&reply, "250-SMTPUTF8", &error), SMTP_REPLY_MORE);
	ck_assert_int_eq(feed(&reply, "250-SIZEX", &error), SMTP_REPLY_MORE);
	ck_assert_int_eq(feed(&reply, "250 ENHANCEDSTATUSCODES", &error), SMTP_REPLY_DONE);
	ck_assert_uint_eq(reply.extensions,
			  SMTP_EXT_PIPELINING | SMTP_EXT_SIZE | SMTP_EXT_STARTTLS |
				  SMTP_EXT_8BITMIME | SMTP_EXT_DSN | SMTP_EXT_SMTPUTF8 |
				  SMTP_EXT_ENHANCEDSTATUSCODES);
	ck_assert_uint_eq(reply.size_limit, 10240000);
	ck_assert_uint_eq(reply.lines, 9);
	/* Enhanced codes must match the class. */
	smtp_reply_init(&reply, false);
	ck_assert_int_eq(feed(&reply, "550 4.1.1 mismatch", &error), SMTP_REPLY_DONE);
	ck_assert_str_eq(reply.enhanced, "");
	smtp_reply_init(&reply, false);
	ck_assert_int_eq(feed(&reply, "550 5.1.10 null mx", &error), SMTP_REPLY_DONE);
	ck_assert_str_eq(reply.enhanced, "5.1.10");
	/* SIZE with no argument at the very end of the line (a heap copy of
	 * exactly its bytes: under ASan, a read past it is caught). */
	static const char size_alone[] = { '2', '5', '0', ' ', 'S', 'I', 'Z', 'E' };
	char *line = malloc(sizeof(size_alone));

	ck_assert_ptr_nonnull(line);
	memcpy(line, size_alone, sizeof(size_alone));
	smtp_reply_init(&reply, true);
	ck_assert_int_eq(feed(&reply, "250-mx.example.org", &error), SMTP_REPLY_MORE);
	ck_assert_int_eq(smtp_reply_feed(&reply, line, sizeof(size_alone), false, &error),
			 SMTP_REPLY_DONE);
	ck_assert_uint_eq(reply.extensions, SMTP_EXT_SIZE);
	ck_assert_uint_eq(reply.size_limit, 0);
	free(line);
}
END_TEST

START_TEST(test_reply_garbage)
{
	static const char *const bad[] = { "", "25", "hello", "2500 x", "250x", "650 x",
					   "1xx", "25a ok", "-250 x" };
	struct smtp_reply reply;
	const char *error;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		smtp_reply_init(&reply, false);
		ck_assert_msg(feed(&reply, bad[i], &error) == SMTP_REPLY_ERROR, "should fail: %s",
			      bad[i]);
	}
	/* The code changes within a reply. */
	smtp_reply_init(&reply, false);
	ck_assert_int_eq(feed(&reply, "250-a", &error), SMTP_REPLY_MORE);
	ck_assert_int_eq(feed(&reply, "251 b", &error), SMTP_REPLY_ERROR);
	/* NUL in a line. */
	smtp_reply_init(&reply, false);
	ck_assert_int_eq(smtp_reply_feed(&reply, "250 a\0b", 7, false, &error), SMTP_REPLY_ERROR);
	/* Overlong (reported by the connection). */
	smtp_reply_init(&reply, false);
	ck_assert_int_eq(smtp_reply_feed(&reply, "", 0, true, &error), SMTP_REPLY_ERROR);
	/* Control bytes are not kept in the text. */
	smtp_reply_init(&reply, false);
	ck_assert_int_eq(feed(&reply, "550 bad\x1b[31m\x7f", &error), SMTP_REPLY_DONE);
	ck_assert_str_eq(reply.text, "bad?[31m?");
}
END_TEST

START_TEST(test_reply_endless)
{
	struct smtp_reply reply;
	const char *error;
	enum smtp_reply_status status = SMTP_REPLY_MORE;
	unsigned lines = 0;

	smtp_reply_init(&reply, true);
	while (status == SMTP_REPLY_MORE && lines < 100000) {
		status = feed(&reply, "250-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
			      &error);
		lines++;
	}
	ck_assert_int_eq(status, SMTP_REPLY_ERROR);
	ck_assert_uint_eq(lines, SMTP_REPLY_MAX_LINES + 1);
	ck_assert_uint_lt(reply.text_len, SMTP_REPLY_TEXT_MAX);
}
END_TEST

/* ---- dot-stuffing -------------------------------------------------------------- */

START_TEST(test_dotstuff)
{
	static const char input[] = ".a\r\nb\r\n..c\r\n.\r\nbare\nlf\rcr\r\nend";
	static const char want[] = "..a\r\nb\r\n...c\r\n..\r\nbare\r\nlf\r\ncr\r\nend\r\n.\r\n";
	size_t len = sizeof(input) - 1;

	for (size_t cut = 0; cut < len; cut++) {
		struct smtp_dotstuff stuff;
		char out[256];
		size_t o;

		smtp_dotstuff_init(&stuff);
		o = smtp_dotstuff(&stuff, input, cut, out);
		o += smtp_dotstuff(&stuff, input + cut, len - cut, out + o);
		o += smtp_dotstuff_end(&stuff, out + o);
		ck_assert_uint_eq(o, sizeof(want) - 1);
		ck_assert(memcmp(out, want, o) == 0);
	}
	/* A message ending with CR LF gets no extra line end. */
	struct smtp_dotstuff stuff;
	char out[32];
	size_t o;

	smtp_dotstuff_init(&stuff);
	o = smtp_dotstuff(&stuff, "x\r\n", 3, out);
	o += smtp_dotstuff_end(&stuff, out + o);
	ck_assert_uint_eq(o, 6);
	ck_assert(memcmp(out, "x\r\n.\r\n", 6) == 0);
}
END_TEST


static Suite *smtp_suite(void)
{
	Suite *s = suite_create("smtp");
	TCase *tc;

	tc = tcase_create("command");
	tcase_add_test(tc, test_command_verbs);
	tcase_add_test(tc, test_command_control_bytes);
	tcase_add_test(tc, test_bdat_args);
	suite_add_tcase(s, tc);
	tc = tcase_create("address");
	tcase_add_test(tc, test_mailbox_syntax);
	tcase_add_test(tc, test_mailbox_lengths);
	tcase_add_test(tc, test_mailbox_utf8);
	tcase_add_test(tc, test_domain_syntax);
	suite_add_tcase(s, tc);
	tc = tcase_create("params");
	tcase_add_test(tc, test_mail_params);
	tcase_add_test(tc, test_mail_errors);
	tcase_add_test(tc, test_mail_extensions_off);
	tcase_add_test(tc, test_rcpt_params);
	tcase_add_test(tc, test_xtext);
	suite_add_tcase(s, tc);
	tc = tcase_create("data_scanner");
	tcase_add_test(tc, test_scanner_basic);
	tcase_add_test(tc, test_scanner_empty_message);
	tcase_add_test(tc, test_scanner_smuggling);
	tcase_add_test(tc, test_scanner_bare_bytes);
	tcase_add_test(tc, test_scanner_line_length);
	tcase_add_test(tc, test_scanner_bdat);
	suite_add_tcase(s, tc);
	tc = tcase_create("message");
	tcase_add_test(tc, test_message_adds_headers);
	tcase_add_test(tc, test_message_hops);
	tcase_add_test(tc, test_message_size_and_write_failure);
	tcase_add_test(tc, test_message_long_header_line);
	suite_add_tcase(s, tc);
	tc = tcase_create("reply");
	tcase_add_test(tc, test_reply_single_and_multi);
	tcase_add_test(tc, test_reply_garbage);
	tcase_add_test(tc, test_reply_endless);
	tcase_add_test(tc, test_dotstuff);
	suite_add_tcase(s, tc);
	return s;
}

int main(int argc, char **argv)
{
	return check_run(srunner_create(smtp_suite()), argc > 1 ? argv[1] : NULL);
}
