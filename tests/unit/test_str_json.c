/* Unit tests for core/str.c, core/json.c and core/error.c. */
#include <stdlib.h>
#include <string.h>
#include "../../core/core.h"
#include "suites.h"

START_TEST(str_grows_and_keeps_nul_bytes)
{
	struct postern_str *str = postern_str_new();

	for (int i = 0; i < 1000; i++)
		postern_str_append(str, "ab\0", 3);
	ck_assert_uint_eq(postern_str_len(str), 3000);
	ck_assert_int_eq(postern_str_data(str)[2], '\0');
	ck_assert_int_eq(postern_str_data(str)[2999], '\0');
	ck_assert_int_eq(postern_str_data(str)[3000], '\0');
	postern_str_truncate(str, 4);
	ck_assert_uint_eq(postern_str_len(str), 4);
	ck_assert_str_eq(postern_str_data(str) + 3, "a");
	postern_str_free(&str);
	ck_assert_ptr_null(str);
	postern_str_free(&str);
}
END_TEST

START_TEST(str_printf_longer_than_initial_capacity)
{
	struct postern_str *str = postern_str_new();
	char big[500];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	postern_str_printf(str, "%s-%d", "head", 7);
	postern_str_printf(str, "[%s]", big);
	ck_assert_uint_eq(postern_str_len(str), 6 + 2 + 499);
	ck_assert_int_eq(strncmp(postern_str_data(str), "head-7[xx", 9), 0);
	ck_assert_int_eq(postern_str_data(str)[postern_str_len(str) - 1], ']');
	postern_str_free(&str);
}
END_TEST

static char *escape(const char *in, size_t len)
{
	struct postern_str *out = postern_str_new();
	char *result;

	postern_json_escape(out, in, len);
	result = xstrdup(postern_str_data(out));
	postern_str_free(&out);
	return result;
}

START_TEST(json_escapes_controls_quotes_and_bad_utf8)
{
	char *s;

	s = escape("a\"b\\c\n\r\t\x01\x7f", 10);
	ck_assert_str_eq(s, "\"a\\\"b\\\\c\\n\\r\\t\\u0001\\u007f\"");
	free(s);
	/* Valid UTF-8 passes; a NUL, a lone continuation byte, an overlong
	 * form and a truncated sequence do not. */
	s = escape("\xc3\xa9\0\x80\xc0\xaf\xe2\x82", 8);
	ck_assert_str_eq(s, "\"\xc3\xa9\\u0000\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\"");
	free(s);
	/* Surrogates encoded in UTF-8 are invalid. */
	s = escape("\xed\xa0\x80", 3);
	ck_assert_str_eq(s, "\"\\ufffd\\ufffd\\ufffd\"");
	free(s);
}
END_TEST

START_TEST(json_writer_places_commas)
{
	struct postern_str *out = postern_str_new();
	struct postern_json *json = postern_json_new(out);

	postern_json_object_begin(json);
	postern_json_key(json, "name");
	postern_json_string(json, "smtp");
	postern_json_key(json, "conns");
	postern_json_array_begin(json);
	postern_json_uint(json, 1);
	postern_json_int(json, -2);
	postern_json_object_begin(json);
	postern_json_object_end(json);
	postern_json_array_end(json);
	postern_json_key(json, "tls");
	postern_json_bool(json, true);
	postern_json_key(json, "user");
	postern_json_string(json, NULL);
	postern_json_key(json, "empty");
	postern_json_array_begin(json);
	postern_json_array_end(json);
	postern_json_object_end(json);
	ck_assert_str_eq(postern_str_data(out),
			 "{\"name\":\"smtp\",\"conns\":[1,-2,{}],\"tls\":true,\"user\":null,"
			 "\"empty\":[]}");
	postern_json_free(&json);
	postern_str_free(&out);
}
END_TEST

START_TEST(json_top_level_sequence_of_values)
{
	struct postern_str *out = postern_str_new();
	struct postern_json *json = postern_json_new(out);

	postern_json_array_begin(json);
	postern_json_array_begin(json);
	postern_json_array_end(json);
	postern_json_string_n(json, "a\0b", 3);
	postern_json_array_end(json);
	ck_assert_str_eq(postern_str_data(out), "[[],\"a\\u0000b\"]");
	postern_json_free(&json);
	postern_str_free(&out);
}
END_TEST

/* core_error(): the message may quote the one before it, is not cut at
 * some buffer size, and stays until the next error of the same core. */
START_TEST(core_error_quotes_previous_and_keeps_length)
{
	struct postern_core core = { 0 }, other = { 0 };
	char path[3000];

	memset(path, 'p', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	const char *inner = core_error(&core, "bind %s: %s", path, "address in use");
	const char *theirs = core_error(&other, "another core");
	const char *outer = core_error(&core, "control socket %s: %s", "/run/ctl", inner);

	size_t want = strlen("control socket /run/ctl: bind ") + strlen(path) +
		      strlen(": address in use");

	ck_assert_ptr_eq(outer, core.error_buf);
	ck_assert_uint_eq(strlen(outer), want);
	ck_assert_int_eq(strncmp(outer, "control socket /run/ctl: bind ppp", 33), 0);
	ck_assert_str_eq(outer + strlen(outer) - 16, ": address in use");
	ck_assert_str_eq(theirs, "another core");
	free(core.error_buf);
	free(other.error_buf);

	char *storage = NULL;

	ck_assert_str_eq(error_set(&storage, "watching fd %d: %s", 7, "already watched"),
			 "watching fd 7: already watched");
	ck_assert_str_eq(error_set(&storage, "again: %s", storage),
			 "again: watching fd 7: already watched");
	free(storage);
}
END_TEST

Suite *str_json_suite(void)
{
	Suite *suite = suite_create("str_json");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, str_grows_and_keeps_nul_bytes);
	tcase_add_test(tc, str_printf_longer_than_initial_capacity);
	tcase_add_test(tc, json_escapes_controls_quotes_and_bad_utf8);
	tcase_add_test(tc, json_writer_places_commas);
	tcase_add_test(tc, json_top_level_sequence_of_values);
	tcase_add_test(tc, core_error_quotes_previous_and_keeps_length);
	suite_add_tcase(suite, tc);
	return suite;
}
