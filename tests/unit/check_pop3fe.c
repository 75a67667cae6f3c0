/*
 * Unit tests of pop3fe's pure parts, its own Check runner in fork mode:
 * the command parser before login (verbs, arguments, bad bytes, limits),
 * XCLIENT attributes, the meaning of a back-end's login replies and answer
 * ends, and the AUTH PLAIN encoder for the back-end login (decoded with
 * lib/protocol). `check_pop3fe TCASE` runs one test case.
 */
#include "config.h"

#include <check.h>
#include "check_main.h"
#include <stdlib.h>
#include <string.h>

#include "pop3fe.h"

static struct pop3fe_command cmd;

static enum pop3fe_parse_result parse(const char *line)
{
	return pop3fe_parse(line, strlen(line), &cmd);
}

START_TEST(test_verbs)
{
	ck_assert_int_eq(parse("CAPA"), POP3FE_PARSE_OK);
	ck_assert_int_eq(cmd.verb, POP3FE_CAPA);
	ck_assert_uint_eq(cmd.argc, 0);
	ck_assert_uint_eq(cmd.rest_len, 0);
	parse("capa");
	ck_assert_int_eq(cmd.verb, POP3FE_CAPA);
	parse("StLs");
	ck_assert_int_eq(cmd.verb, POP3FE_STLS);
	parse("QUIT");
	ck_assert_int_eq(cmd.verb, POP3FE_QUIT);
	parse("NOOP");
	ck_assert_int_eq(cmd.verb, POP3FE_NOOP);
	parse("RETR 1");
	ck_assert_int_eq(cmd.verb, POP3FE_LATER);
	parse("DELE 1");
	ck_assert_int_eq(cmd.verb, POP3FE_LATER);
	parse("CAPAX");
	ck_assert_int_eq(cmd.verb, POP3FE_UNKNOWN);
	parse("CAP");
	ck_assert_int_eq(cmd.verb, POP3FE_UNKNOWN);
	parse("");
	ck_assert_int_eq(cmd.verb, POP3FE_EMPTY);
	parse(" USER x");
	ck_assert_int_eq(cmd.verb, POP3FE_UNKNOWN);
	parse("XCLIENT ADDR=1.2.3.4");
	ck_assert_int_eq(cmd.verb, POP3FE_XCLIENT);
}
END_TEST

START_TEST(test_arguments)
{
	parse("USER alice@example.test");
	ck_assert_int_eq(cmd.verb, POP3FE_USER);
	ck_assert_uint_eq(cmd.rest_len, strlen("alice@example.test"));
	ck_assert(memcmp(cmd.rest, "alice@example.test", cmd.rest_len) == 0);
	/* PASS keeps spaces: the rest of the line is the password. */
	parse("PASS a secret  with spaces ");
	ck_assert_int_eq(cmd.verb, POP3FE_PASS);
	ck_assert_uint_eq(cmd.rest_len, strlen("a secret  with spaces "));
	ck_assert(memcmp(cmd.rest, "a secret  with spaces ", cmd.rest_len) == 0);
	parse("AUTH PLAIN AGFsaWNlAGFsaWNl");
	ck_assert_int_eq(cmd.verb, POP3FE_AUTH);
	ck_assert_uint_eq(cmd.argc, 2);
	ck_assert_str_eq(cmd.argv[0], "PLAIN");
	ck_assert_str_eq(cmd.argv[1], "AGFsaWNlAGFsaWNl");
	/* Empty arguments are kept, not merged. */
	parse("AUTH  PLAIN ");
	ck_assert_uint_eq(cmd.argc, 3);
	ck_assert_str_eq(cmd.argv[0], "");
	ck_assert_str_eq(cmd.argv[1], "PLAIN");
	ck_assert_str_eq(cmd.argv[2], "");
	parse("USER ");
	ck_assert_int_eq(cmd.verb, POP3FE_USER);
	ck_assert_uint_eq(cmd.rest_len, 0);
	ck_assert_uint_eq(cmd.argc, 0);
	ck_assert_int_eq(parse("XCLIENT a b c d e f g h"), POP3FE_PARSE_OK);
	ck_assert_uint_eq(cmd.argc, 8);
	ck_assert_int_eq(parse("XCLIENT a b c d e f g h i"), POP3FE_PARSE_TOO_MANY);
	ck_assert_int_eq(parse("XCLIENT a b c d e f g h "), POP3FE_PARSE_TOO_MANY);
}
END_TEST

START_TEST(test_bad_bytes)
{
	ck_assert_int_eq(pop3fe_parse("USER a\0b", 8, &cmd), POP3FE_PARSE_BAD_CHARS);
	ck_assert_int_eq(parse("USER a\rb"), POP3FE_PARSE_BAD_CHARS);
	ck_assert_int_eq(parse("USER a\nPASS b"), POP3FE_PARSE_BAD_CHARS);
	ck_assert_int_eq(pop3fe_parse("\0", 1, &cmd), POP3FE_PARSE_BAD_CHARS);
	/* High bytes are not ours to judge: an unknown command. */
	ck_assert_int_eq(parse("\xff\xfe"), POP3FE_PARSE_OK);
	ck_assert_int_eq(cmd.verb, POP3FE_UNKNOWN);
}
END_TEST

/* A line longer than the limit (the core cuts them; the parser must cope
 * anyway) is split only up to the limit. */
START_TEST(test_long_line)
{
	size_t len = POP3FE_MAX_LINE * 2;
	char *line = malloc(len);

	memset(line, 'a', len);
	memcpy(line, "PASS ", 5);
	ck_assert_int_eq(pop3fe_parse(line, len, &cmd), POP3FE_PARSE_OK);
	ck_assert_int_eq(cmd.verb, POP3FE_PASS);
	ck_assert_uint_eq(cmd.rest_len, len - 5);
	ck_assert_uint_eq(cmd.argc, 1);
	ck_assert_uint_eq(strlen(cmd.argv[0]), POP3FE_MAX_LINE);
	free(line);
}
END_TEST

static int xclient(const char *line, struct pop3fe_xclient *xc, const char **error)
{
	ck_assert_int_eq(parse(line), POP3FE_PARSE_OK);
	ck_assert_int_eq(cmd.verb, POP3FE_XCLIENT);
	return pop3fe_xclient_parse(cmd.argv, cmd.argc, xc, error);
}

START_TEST(test_xclient)
{
	struct pop3fe_xclient xc;
	const char *error = NULL;

	ck_assert_int_eq(xclient("XCLIENT ADDR=192.0.2.7 PORT=51234 HOP=2", &xc, &error), 0);
	ck_assert_str_eq(xc.addr, "192.0.2.7");
	ck_assert_uint_eq(xc.port, 51234);
	ck_assert_uint_eq(xc.hop, 2);
	ck_assert_int_eq(xclient("xclient addr=IPV6:2001:DB8::7 login=bob", &xc, &error), 0);
	ck_assert_str_eq(xc.addr, "2001:db8::7");
	ck_assert_uint_eq(xc.port, 0);
	ck_assert_uint_eq(xc.hop, 1);
	ck_assert_int_eq(xclient("XCLIENT ADDR=::1", &xc, &error), 0);
	ck_assert_str_eq(xc.addr, "::1");

	const char *bad[] = {
		"XCLIENT", "XCLIENT PORT=1", "XCLIENT ADDR=example.test", "XCLIENT ADDR=1.2.3.4 ADDR=1.2.3.4",
		"XCLIENT ADDR=1.2.3.4 PORT=0", "XCLIENT ADDR=1.2.3.4 PORT=65536",
		"XCLIENT ADDR=1.2.3.4 HOP=0", "XCLIENT ADDR=1.2.3.4 HOP=x", "XCLIENT ADDR=1.2.3.4 HOP=",
		"XCLIENT ADDR=1.2.3.4 HOP=99999999", "XCLIENT ADDR=1.2.3.4 NAME=x",
		"XCLIENT ADDR", "XCLIENT =1", "XCLIENT ADDR=1.2.3.4 PORT=1 PORT=2",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(xclient(bad[i], &xc, &error) == -1, "accepted %s", bad[i]);
}
END_TEST

START_TEST(test_login_replies)
{
#define REPLY(text) pop3fe_login_reply(text, strlen(text))
	ck_assert_int_eq(REPLY("+OK"), POSTERN_PROXY_STEP_LOGGED_IN);
	ck_assert_int_eq(REPLY("+OK Logged in."), POSTERN_PROXY_STEP_LOGGED_IN);
	ck_assert_int_eq(REPLY("+ok fine"), POSTERN_PROXY_STEP_LOGGED_IN);
	ck_assert_int_eq(REPLY("+OKAY"), POSTERN_PROXY_STEP_BROKEN);
	ck_assert_int_eq(REPLY("-ERR [SYS/TEMP] storage down"), POSTERN_PROXY_STEP_FAILOVER);
	ck_assert_int_eq(REPLY("-ERR [IN-USE] mailbox locked"), POSTERN_PROXY_STEP_PASS_ON);
	ck_assert_int_eq(REPLY("-ERR [SYS/PERM] broken"), POSTERN_PROXY_STEP_PASS_ON);
	ck_assert_int_eq(REPLY("-ERR [LOGIN-DELAY] wait"), POSTERN_PROXY_STEP_PASS_ON);
	ck_assert_int_eq(REPLY("-ERR [AUTH] Authentication failed."), POSTERN_PROXY_STEP_MISMATCH);
	ck_assert_int_eq(REPLY("-ERR invalid password"), POSTERN_PROXY_STEP_MISMATCH);
	ck_assert_int_eq(REPLY("-ERR"), POSTERN_PROXY_STEP_MISMATCH);
	ck_assert_int_eq(REPLY(""), POSTERN_PROXY_STEP_BROKEN);
	ck_assert_int_eq(REPLY("* OK IMAP4rev1"), POSTERN_PROXY_STEP_BROKEN);
	ck_assert_int_eq(REPLY("HTTP/1.1 400 Bad Request"), POSTERN_PROXY_STEP_BROKEN);
	ck_assert_int_eq(pop3fe_login_reply("+OK\0x", 5), POSTERN_PROXY_STEP_BROKEN);
#undef REPLY
}
END_TEST

/* The back-end login's AUTH PLAIN response decodes to what was encoded,
 * with lib/protocol's decoder, up to the limits, and not past them. */
START_TEST(test_plain_encode)
{
	char b64[POP3FE_PLAIN_B64_MAX], buf[POSTERN_SASL_PLAIN_MAX + 1];
	const char *user, *password;

	ck_assert_int_gt(pop3fe_plain_encode("alice@example.test", "pass word", b64, sizeof(b64)), 0);
	ck_assert_int_eq(postern_sasl_plain_decode(b64, strlen(b64), buf, &user, &password),
			 POSTERN_SASL_PLAIN_OK);
	ck_assert_str_eq(user, "alice@example.test");
	ck_assert_str_eq(password, "pass word");
	ck_assert_str_eq(b64, "AGFsaWNlQGV4YW1wbGUudGVzdABwYXNzIHdvcmQ=");

	/* The longest name and password fit the buffer. */
	char name[POP3FE_USER_MAX + 2], pw[POP3FE_PASSWORD_MAX + 2];

	memset(name, 'u', sizeof(name));
	memset(pw, 'p', sizeof(pw));
	name[POP3FE_USER_MAX] = pw[POP3FE_PASSWORD_MAX] = '\0';
	ck_assert_int_eq(pop3fe_plain_encode(name, pw, b64, sizeof(b64)),
			 (long)(4 * ((POP3FE_USER_MAX + POP3FE_PASSWORD_MAX + 2 + 2) / 3)));
	name[POP3FE_USER_MAX] = 'u';
	name[POP3FE_USER_MAX + 1] = '\0';
	ck_assert_int_eq(pop3fe_plain_encode(name, "x", b64, sizeof(b64)), -1);
	pw[POP3FE_PASSWORD_MAX] = 'p';
	pw[POP3FE_PASSWORD_MAX + 1] = '\0';
	ck_assert_int_eq(pop3fe_plain_encode("u", pw, b64, sizeof(b64)), -1);

	char small[8];

	ck_assert_int_eq(pop3fe_plain_encode("alice", "secret", small, sizeof(small)), -1);
}
END_TEST

START_TEST(test_response_done)
{
	ck_assert(pop3fe_response_done("+OK 2 messages", 14, 14, true));
	ck_assert(pop3fe_response_done("-ERR no", 7, 7, true));
	ck_assert(!pop3fe_response_done("Subject: x", 10, 10, true));
	ck_assert(pop3fe_response_done(".", 1, 1, false));
	ck_assert(!pop3fe_response_done("..", 2, 2, false));
	ck_assert(!pop3fe_response_done("+OK", 3, 3, false));
	ck_assert(!pop3fe_response_done(".", 1, 500, false));
}
END_TEST

static Suite *pop3fe_suite(void)
{
	Suite *s = suite_create("pop3fe");
	const struct {
		const char *name;
		const TTest *test;
	} cases[] = {
		{ "verbs", test_verbs },
		{ "arguments", test_arguments },
		{ "bad_bytes", test_bad_bytes },
		{ "long_line", test_long_line },
		{ "xclient", test_xclient },
		{ "login_replies", test_login_replies },
		{ "plain_encode", test_plain_encode },
		{ "response_done", test_response_done },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		TCase *tc = tcase_create(cases[i].name);

		tcase_add_test(tc, cases[i].test);
		suite_add_tcase(s, tc);
	}
	return s;
}

int main(int argc, char **argv)
{
	return check_run(srunner_create(pop3fe_suite()), argc > 1 ? argv[1] : NULL);
}
