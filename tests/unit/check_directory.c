/*
 * Unit tests of the back-end directory (lib/directory), its own Check
 * runner in fork mode. `check_directory TCASE` runs one test case.
 *
 * Consistent hashing (even spread, stability, few users moved when a
 * back-end is added or removed), failover order, host= overrides, and
 * health transitions on an injected clock.
 */
#include "config.h"

#include <check.h>
#include "check_main.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <postern/directory.h>

#define USERS 20000

static uint64_t fake_now;

static uint64_t fake_clock(void *ctx)
{
	(void)ctx;
	return fake_now;
}

static struct postern_directory *dir_new(const char *default_pool)
{
	struct postern_directory_settings set = POSTERN_DIRECTORY_SETTINGS_INIT;
	struct postern_directory *dir;
	const char *error = NULL;

	set.clock_ms = fake_clock;
	set.default_pool = default_pool;
	ck_assert_msg(postern_directory_new(&set, &dir, &error) == 0, "%s", error);
	return dir;
}

static void add(struct postern_directory *dir, const char *name, const char *host, unsigned port,
		const char *pool)
{
	struct postern_backend_config cfg = POSTERN_BACKEND_CONFIG_INIT;
	const char *error = NULL;

	cfg.name = name;
	cfg.host = host;
	cfg.port = port;
	cfg.pool = pool;
	ck_assert_msg(postern_directory_add(dir, &cfg, &error) == 0, "%s: %s", name, error);
}

/* A directory with `n` back-ends be0..be{n-1} on 10.0.0.x:110. */
static struct postern_directory *dir_with(unsigned n)
{
	struct postern_directory *dir = dir_new(NULL);
	char name[32], host[32];

	for (unsigned i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "be%u", i);
		snprintf(host, sizeof(host), "10.0.0.%u", i + 1);
		add(dir, name, host, 110, NULL);
	}
	return dir;
}

static void user_name(unsigned i, char *buf, size_t size)
{
	snprintf(buf, size, "user%u@example.test", i);
}

static struct postern_backend *primary(struct postern_directory *dir, const char *user)
{
	struct postern_backend *list[1];
	const char *error = NULL;

	ck_assert_int_eq(postern_directory_route(dir, user, NULL, 0, list, 1, &error), 1);
	return list[0];
}

START_TEST(test_add_validates)
{
	struct postern_directory *dir = dir_new(NULL);
	struct postern_backend_config cfg = POSTERN_BACKEND_CONFIG_INIT;
	const char *error = NULL;

	cfg.name = "be1";
	cfg.host = "example.test";
	cfg.port = 110;
	ck_assert_int_eq(postern_directory_add(dir, &cfg, &error), -1);
	ck_assert_ptr_nonnull(strstr(error, "numeric"));
	cfg.host = "127.0.0.1";
	cfg.port = 0;
	ck_assert_int_eq(postern_directory_add(dir, &cfg, &error), -1);
	cfg.port = 70000;
	ck_assert_int_eq(postern_directory_add(dir, &cfg, &error), -1);
	cfg.port = 110;
	cfg.name = "bad name";
	ck_assert_int_eq(postern_directory_add(dir, &cfg, &error), -1);
	cfg.name = "";
	ck_assert_int_eq(postern_directory_add(dir, &cfg, &error), -1);
	cfg.name = "be1";
	cfg.pool = "a/b";
	ck_assert_int_eq(postern_directory_add(dir, &cfg, &error), -1);
	cfg.pool = NULL;
	ck_assert_int_eq(postern_directory_add(dir, &cfg, &error), 0);
	ck_assert_int_eq(postern_directory_add(dir, &cfg, &error), -1);
	ck_assert_ptr_nonnull(strstr(error, "twice"));
	cfg.name = "be6";
	cfg.host = "::1";
	cfg.tls = true;
	ck_assert_int_eq(postern_directory_add(dir, &cfg, &error), 0);

	ck_assert_uint_eq(postern_directory_count(dir), 2);
	struct postern_backend *be = postern_directory_find(dir, "be6");

	ck_assert_ptr_nonnull(be);
	ck_assert_str_eq(postern_backend_address(be), "[::1]:110");
	ck_assert_str_eq(postern_backend_pool(be), "default");
	ck_assert(postern_backend_tls(be));
	ck_assert_uint_eq(postern_backend_index(be), 1);
	ck_assert_str_eq(postern_backend_address(postern_directory_backend(dir, 0)), "127.0.0.1:110");
	ck_assert_ptr_null(postern_directory_backend(dir, 2));
	ck_assert_ptr_null(postern_directory_find(dir, "nope"));
	ck_assert(postern_directory_has_pool(dir, "default"));
	ck_assert(!postern_directory_has_pool(dir, "other"));

	/* The rings are built at the first route: no adding after it. */
	struct postern_backend *list[4];

	ck_assert_int_eq(postern_directory_route(dir, "u", NULL, 0, list, 4, &error), 2);
	cfg.name = "late";
	cfg.host = "127.0.0.2";
	ck_assert_int_eq(postern_directory_add(dir, &cfg, &error), -1);
	postern_directory_free(&dir);
	ck_assert_ptr_null(dir);
	postern_directory_free(&dir);
}
END_TEST

START_TEST(test_settings_checked)
{
	struct postern_directory_settings set = POSTERN_DIRECTORY_SETTINGS_INIT;
	struct postern_directory *dir = NULL;
	const char *error = NULL;

	set.vnodes = 5000;
	ck_assert_int_eq(postern_directory_new(&set, &dir, &error), -1);
	set.vnodes = 0;
	set.default_pool = "no spaces";
	ck_assert_int_eq(postern_directory_new(&set, &dir, &error), -1);
	set.struct_size = 2;
	set.default_pool = NULL;
	ck_assert_int_eq(postern_directory_new(&set, &dir, &error), -1);
	ck_assert_ptr_null(dir);
}
END_TEST

/* Every back-end of ten gets close to a tenth of the users. */
START_TEST(test_hash_spreads_evenly)
{
	struct postern_directory *dir = dir_with(10);
	unsigned counts[10] = { 0 };
	char user[64];

	for (unsigned i = 0; i < USERS; i++) {
		user_name(i, user, sizeof(user));
		counts[postern_backend_index(primary(dir, user))]++;
	}
	for (unsigned i = 0; i < 10; i++) {
		ck_assert_msg(counts[i] > USERS / 10 * 7 / 10 && counts[i] < USERS / 10 * 13 / 10,
			      "be%u has %u of %u users", i, counts[i], USERS);
	}
	postern_directory_free(&dir);
}
END_TEST

/* Same user, same answer: across calls, directories and the order the
 * back-ends were added in; case does not matter. */
START_TEST(test_hash_is_stable)
{
	struct postern_directory *a = dir_with(5), *b = dir_new(NULL);
	char user[64];

	add(b, "be4", "10.0.0.5", 110, NULL);
	add(b, "be2", "10.0.0.3", 110, NULL);
	add(b, "be0", "10.0.0.1", 110, NULL);
	add(b, "be3", "10.0.0.4", 110, NULL);
	add(b, "be1", "10.0.0.2", 110, NULL);
	for (unsigned i = 0; i < 2000; i++) {
		user_name(i, user, sizeof(user));
		const char *first = postern_backend_name(primary(a, user));

		ck_assert_str_eq(first, postern_backend_name(primary(a, user)));
		ck_assert_str_eq(first, postern_backend_name(primary(b, user)));
	}
	ck_assert_ptr_eq(primary(a, "Alice@Example.TEST"), primary(a, "alice@example.test"));
	/* A known value pins the hash function: changing it would move
	 * every user of every deployment at the upgrade. */
	ck_assert_uint_eq(postern_directory_hash("", 0), postern_directory_hash("", 0));
	ck_assert_uint_ne(postern_directory_hash("a", 1), postern_directory_hash("b", 1));
	ck_assert_uint_eq(postern_directory_hash("be0#0", 5), 0x7f49646f066f4a66ull);
	postern_directory_free(&a);
	postern_directory_free(&b);
}
END_TEST

/* Adding an eleventh back-end to ten moves about 1/11 of the users, and
 * only to the new one. */
START_TEST(test_adding_moves_few)
{
	struct postern_directory *ten = dir_with(10), *eleven = dir_with(11);
	unsigned moved = 0;
	char user[64];

	for (unsigned i = 0; i < USERS; i++) {
		user_name(i, user, sizeof(user));
		const char *before = postern_backend_name(primary(ten, user));
		const char *after = postern_backend_name(primary(eleven, user));

		if (strcmp(before, after) != 0) {
			moved++;
			ck_assert_str_eq(after, "be10");
		}
	}
	/* 1/11 is 9.1 %: accept 6-12 %. */
	ck_assert_msg(moved > USERS * 6 / 100 && moved < USERS * 12 / 100,
		      "%u of %u users moved", moved, USERS);
	postern_directory_free(&ten);
	postern_directory_free(&eleven);
}
END_TEST

/* Removing a back-end moves only its users, each to its own second
 * choice: the failover list is what the ring would give without it. */
START_TEST(test_failover_order)
{
	struct postern_directory *ten = dir_with(10), *nine = dir_new(NULL);
	struct postern_backend *list[16], *list9[16];
	const char *error = NULL;
	char user[64], name[16], host[16];

	for (unsigned i = 0; i < 10; i++) {
		if (i == 3)
			continue;
		snprintf(name, sizeof(name), "be%u", i);
		snprintf(host, sizeof(host), "10.0.0.%u", i + 1);
		add(nine, name, host, 110, NULL);
	}
	for (unsigned i = 0; i < 3000; i++) {
		user_name(i, user, sizeof(user));
		ck_assert_int_eq(postern_directory_route(ten, user, NULL, 0, list, 16, &error), 10);
		ck_assert_int_eq(postern_directory_route(nine, user, NULL, 0, list9, 16, &error), 9);
		/* Every member once. */
		for (unsigned a = 0; a < 10; a++) {
			for (unsigned b = a + 1; b < 10; b++)
				ck_assert_ptr_ne(list[a], list[b]);
		}
		/* The ten-list without be3 is the nine-list. */
		unsigned k = 0;

		for (unsigned a = 0; a < 10; a++) {
			if (strcmp(postern_backend_name(list[a]), "be3") == 0)
				continue;
			ck_assert_str_eq(postern_backend_name(list[a]),
					 postern_backend_name(list9[k]));
			k++;
		}
	}
	/* A short buffer gets the head of the list. */
	ck_assert_int_eq(postern_directory_route(ten, "x", NULL, 0, list, 2, &error), 2);
	ck_assert_int_eq(postern_directory_route(ten, "x", NULL, 0, list9, 10, &error), 10);
	ck_assert_ptr_eq(list[0], list9[0]);
	ck_assert_ptr_eq(list[1], list9[1]);
	postern_directory_free(&ten);
	postern_directory_free(&nine);
}
END_TEST

START_TEST(test_pools_and_host_override)
{
	struct postern_directory *dir = dir_new("main");
	struct postern_backend *list[8];
	const char *error = NULL;
	int n;

	add(dir, "m1", "10.0.0.1", 110, "main");
	add(dir, "m2", "10.0.0.2", 110, "main");
	add(dir, "m3", "10.0.0.2", 1110, "main");
	add(dir, "v1", "10.1.0.1", 110, "vip");
	add(dir, "v2", "2001:db8::2", 110, "vip");

	/* No host=: the default pool only. */
	n = postern_directory_route(dir, "alice", NULL, 0, list, 8, &error);
	ck_assert_int_eq(n, 3);
	for (int i = 0; i < n; i++)
		ck_assert_str_eq(postern_backend_pool(list[i]), "main");
	ck_assert_int_eq(postern_directory_route(dir, "alice", "", 0, list, 8, &error), 3);

	/* host= a pool. */
	n = postern_directory_route(dir, "alice", "vip", 0, list, 8, &error);
	ck_assert_int_eq(n, 2);
	ck_assert_str_eq(postern_backend_pool(list[0]), "vip");
	ck_assert_str_eq(postern_backend_pool(list[1]), "vip");

	/* host= a back-end's name: it first, then its pool. */
	for (unsigned i = 0; i < 50; i++) {
		char user[32];

		snprintf(user, sizeof(user), "u%u", i);
		n = postern_directory_route(dir, user, "m2", 0, list, 8, &error);
		ck_assert_int_eq(n, 3);
		ck_assert_str_eq(postern_backend_name(list[0]), "m2");
		ck_assert_str_ne(postern_backend_name(list[1]), "m2");
		ck_assert_str_ne(postern_backend_name(list[2]), "m2");
	}

	/* host= an address: v4, v4:port, port= field, v6 in both forms. */
	n = postern_directory_route(dir, "alice", "10.0.0.1", 0, list, 8, &error);
	ck_assert_int_eq(n, 3);
	ck_assert_str_eq(postern_backend_name(list[0]), "m1");
	n = postern_directory_route(dir, "alice", "10.0.0.2:1110", 0, list, 8, &error);
	ck_assert_str_eq(postern_backend_name(list[0]), "m3");
	n = postern_directory_route(dir, "alice", "10.0.0.2", 1110, list, 8, &error);
	ck_assert_str_eq(postern_backend_name(list[0]), "m3");
	n = postern_directory_route(dir, "alice", "10.0.0.2", 0, list, 8, &error);
	ck_assert_int_eq(n, 3);
	/* Two back-ends share the address: both before the third. */
	ck_assert_str_ne(postern_backend_name(list[2]), "m2");
	ck_assert_str_ne(postern_backend_name(list[2]), "m3");
	ck_assert_str_eq(postern_backend_name(list[2]), "m1");
	n = postern_directory_route(dir, "alice", "2001:db8::2", 0, list, 8, &error);
	ck_assert_int_eq(n, 2);
	ck_assert_str_eq(postern_backend_name(list[0]), "v2");
	n = postern_directory_route(dir, "alice", "[2001:db8::2]:110", 0, list, 8, &error);
	ck_assert_str_eq(postern_backend_name(list[0]), "v2");

	/* Unknown hosts and ports are errors, not guesses. */
	ck_assert_int_eq(postern_directory_route(dir, "alice", "10.9.9.9", 0, list, 8, &error), -1);
	ck_assert_ptr_nonnull(strstr(error, "10.9.9.9"));
	ck_assert_int_eq(postern_directory_route(dir, "alice", "10.0.0.1:25", 0, list, 8, &error), -1);
	ck_assert_int_eq(postern_directory_route(dir, "alice", "nosuch", 0, list, 8, &error), -1);
	ck_assert_int_eq(postern_directory_route(dir, "alice", "[::1", 0, list, 8, &error), -1);
	ck_assert_int_eq(postern_directory_route(dir, "alice", "1.2.3.4:0", 0, list, 8, &error), -1);
	postern_directory_free(&dir);

	/* A default pool without members routes nobody. */
	dir = dir_new("empty");
	add(dir, "x", "10.0.0.1", 110, "other");
	ck_assert_int_eq(postern_directory_route(dir, "alice", NULL, 0, list, 8, &error), 0);
	postern_directory_free(&dir);
}
END_TEST

START_TEST(test_health_transitions)
{
	struct postern_directory *dir = dir_new(NULL);
	struct postern_backend_config cfg = POSTERN_BACKEND_CONFIG_INIT;
	const char *error = NULL;

	fake_now = 1000;
	cfg.name = "be";
	cfg.host = "127.0.0.1";
	cfg.port = 110;
	cfg.max_sessions = 2;
	ck_assert_int_eq(postern_directory_add(dir, &cfg, &error), 0);

	struct postern_backend *be = postern_directory_find(dir, "be");

	ck_assert(postern_backend_is_up(be));
	ck_assert(postern_backend_usable(be));
	ck_assert_uint_eq(postern_backend_last_change_ms(be), 1000);
	ck_assert_ptr_null(postern_backend_last_error(be));

	fake_now = 2500;
	ck_assert(postern_backend_mark_down(be, "connection refused"));
	ck_assert(!postern_backend_is_up(be));
	ck_assert(!postern_backend_usable(be));
	ck_assert_uint_eq(postern_backend_last_change_ms(be), 2500);
	ck_assert_str_eq(postern_backend_last_error(be), "connection refused");
	ck_assert_uint_eq(postern_backend_down_count(be), 1);

	/* Down again: no transition, but the newer error is kept. */
	fake_now = 3000;
	ck_assert(!postern_backend_mark_down(be, "connect timeout"));
	ck_assert_uint_eq(postern_backend_last_change_ms(be), 2500);
	ck_assert_str_eq(postern_backend_last_error(be), "connect timeout");
	ck_assert_uint_eq(postern_backend_down_count(be), 1);

	fake_now = 4000;
	ck_assert(postern_backend_mark_up(be));
	ck_assert(!postern_backend_mark_up(be));
	ck_assert(postern_backend_usable(be));
	ck_assert_uint_eq(postern_backend_last_change_ms(be), 4000);
	/* The last error stays for the operator to read. */
	ck_assert_str_eq(postern_backend_last_error(be), "connect timeout");
	postern_backend_note_error(be, NULL);
	ck_assert_str_eq(postern_backend_last_error(be), "unknown error");

	/* Session limit. */
	postern_backend_session_begin(be);
	ck_assert(postern_backend_usable(be));
	postern_backend_session_begin(be);
	ck_assert(!postern_backend_usable(be));
	ck_assert(postern_backend_is_up(be));
	ck_assert_uint_eq(postern_backend_sessions(be), 2);
	postern_backend_session_end(be);
	ck_assert(postern_backend_usable(be));
	postern_backend_session_end(be);
	ck_assert_uint_eq(postern_backend_sessions(be), 0);
	ck_assert_uint_eq(postern_backend_total_sessions(be), 2);
	ck_assert_uint_eq(postern_backend_max_sessions(be), 2);

	/* A long error is cut, not overflowed. */
	char long_error[1000];

	memset(long_error, 'e', sizeof(long_error) - 1);
	long_error[sizeof(long_error) - 1] = '\0';
	ck_assert(postern_backend_mark_down(be, long_error));
	ck_assert_uint_eq(strlen(postern_backend_last_error(be)), 255);

	int data;

	postern_backend_set_data(be, &data);
	ck_assert_ptr_eq(postern_backend_data(be), &data);
	postern_directory_free(&dir);
}
END_TEST

/* A session ended more often than begun is a caller bug: it asserts. */
START_TEST(test_session_underflow_asserts)
{
	struct postern_directory *dir = dir_with(1);

	postern_backend_session_end(postern_directory_backend(dir, 0));
}
END_TEST

static Suite *directory_suite(void)
{
	Suite *s = suite_create("directory");
	const struct {
		const char *name;
		const TTest *test;
	} cases[] = {
		{ "add", test_add_validates },
		{ "settings", test_settings_checked },
		{ "spread", test_hash_spreads_evenly },
		{ "stable", test_hash_is_stable },
		{ "adding", test_adding_moves_few },
		{ "failover", test_failover_order },
		{ "host", test_pools_and_host_override },
		{ "health", test_health_transitions },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		TCase *tc = tcase_create(cases[i].name);

		tcase_add_test(tc, cases[i].test);
		suite_add_tcase(s, tc);
	}
#ifdef NDEBUG
	(void)test_session_underflow_asserts;
#else
	TCase *tc = tcase_create("underflow");

	tcase_add_test_raise_signal(tc, test_session_underflow_asserts, SIGABRT);
	suite_add_tcase(s, tc);
#endif
	return s;
}

int main(int argc, char **argv)
{
	return check_run(srunner_create(directory_suite()), argc > 1 ? argv[1] : NULL);
}
