/* Unit tests for core/log.c: levels, prefixes and escaping of control bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "../../core/core.h"
#include "suites.h"

/* Run `emit` with stderr redirected to a temp file; return what was written. */
static char *capture_stderr(void (*emit)(void))
{
	char path[] = "/tmp/postern-log-XXXXXX";
	int fd = mkstemp(path);
	int saved = dup(STDERR_FILENO);
	static char buf[8192];
	ssize_t n;

	ck_assert_int_ge(fd, 0);
	fflush(stderr);
	dup2(fd, STDERR_FILENO);
	emit();
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	unlink(path);
	buf[n < 0 ? 0 : n] = '\0';
	return buf;
}

static void emit_levels(void)
{
	const char *error;

	ck_assert_int_eq(log_open(true, "mail", &error), 0);
	ck_assert_int_eq(log_set_level("warning", &error), 0);
	log_core(POSTERN_LOG_INFO, "hidden %d", 1);
	log_core(POSTERN_LOG_ERROR, "shown %d", 2);
}

START_TEST(levels_filter_lines)
{
	char *out = capture_stderr(emit_levels);

	ck_assert_ptr_null(strstr(out, "hidden"));
	ck_assert_ptr_nonnull(strstr(out, "core: error: shown 2\n"));
}
END_TEST

static void emit_injection(void)
{
	const char *error;

	ck_assert_int_eq(log_open(true, "mail", &error), 0);
	ck_assert_int_eq(log_set_level("debug", &error), 0);
	log_core(POSTERN_LOG_INFO, "user=%s", "evil\r\nFAKE: line\x1b[2J");
}

START_TEST(control_bytes_are_escaped)
{
	char *out = capture_stderr(emit_injection);

	ck_assert_ptr_nonnull(strstr(out, "user=evil\\x0d\\x0aFAKE: line\\x1b[2J\n"));
	/* Exactly one line was written. */
	ck_assert_ptr_eq(strchr(out, '\n'), out + strlen(out) - 1);
}
END_TEST

START_TEST(bad_names_are_refused)
{
	const char *error = NULL;

	ck_assert_int_eq(log_set_level("loud", &error), -1);
	ck_assert_ptr_nonnull(error);
	ck_assert_int_eq(log_open(true, "nosuch", &error), -1);
	ck_assert_int_eq(log_set_level("DEBUG", &error), 0);
	ck_assert(postern_log_enabled(POSTERN_LOG_DEBUG));
}
END_TEST

Suite *log_suite(void)
{
	Suite *suite = suite_create("log");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, levels_filter_lines);
	tcase_add_test(tc, control_bytes_are_escaped);
	tcase_add_test(tc, bad_names_are_refused);
	suite_add_tcase(suite, tc);
	return suite;
}
