/*
 * Unit tests of the authentication library (lib/auth), its own Check
 * runner in fork mode. `check_auth TCASE` runs one test case by name.
 *
 * Password schemes against libcrypt and Dovecot-made hashes, the
 * passwd-file parser (good and malformed lines, reload), the per-IP
 * failure tracker on an injected clock, and the asynchronous pool with
 * many concurrent requests, cancellation and a full queue.
 */
#include "config.h"

#include <check.h>
#include "check_main.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <postern/auth.h>
#include <postern/auth_settings.h>

/* made by Dovecot 2.3.19: doveadm pw -s SHA512-CRYPT -p dovecot-vector */
#define DOVECOT_SHA512 "{SHA512-CRYPT}$6$paensVOTB8NI2zvI$gsP1hTbS2akUAtg36psROMyzkTut8qzM3p52H" \
	"fseqg3TrAzR8LHIqb3fVIj7nbmtYZffe2dO4kU28kvyW7uvP/"
/* doveadm pw -s BLF-CRYPT -p dovecot-vector */
#define DOVECOT_BLF "{BLF-CRYPT}$2y$05$FjJKU6WQ.nOVGEJCBLWBW.jdCEaCtOhs3YtgImRMoQRLMq1LjkDQe"

static char dir[256];
static char file[300];
static char logbuf[65536];
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static void test_log(void *ctx, enum postern_auth_log_level level, const char *msg)
{
	size_t len;

	(void)ctx;
	pthread_mutex_lock(&log_lock);
	len = strlen(logbuf);
	snprintf(logbuf + len, sizeof(logbuf) - len, "%d:%s\n", (int)level, msg);
	pthread_mutex_unlock(&log_lock);
}

static void setup(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, sizeof(dir), "%s/check_auth.XXXXXX",
		 tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(file, sizeof(file), "%s/users", dir);
	logbuf[0] = '\0';
}

static void teardown(void)
{
	unlink(file);
	rmdir(dir);
}

static void write_users(const char *content, size_t len)
{
	char tmp[400];
	FILE *f;

	/* replace atomically, as an admin's editor or a deploy would */
	snprintf(tmp, sizeof(tmp), "%s.tmp", file);
	f = fopen(tmp, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(content, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(rename(tmp, file), 0);
}

static char *hash(const char *scheme, const char *password)
{
	char *h = NULL;
	const char *error = NULL;

	ck_assert_msg(postern_password_hash(scheme, password, 0, &h, &error) == 0, "%s: %s",
		      scheme, error);
	return h;
}

static struct postern_userdb *open_db(bool allow_plain)
{
	struct postern_passwd_file_settings set = POSTERN_PASSWD_FILE_SETTINGS_INIT;
	struct postern_userdb *db = NULL;
	const char *error = NULL;

	set.path = file;
	set.check_interval_ms = 0;
	set.allow_plain = allow_plain;
	set.log = test_log;
	ck_assert_msg(postern_passwd_file_open(&set, &db, &error) == 0, "%s", error);
	return db;
}

/* ---- passwords ---- */

START_TEST(t_scheme_round_trips)
{
	static const struct {
		const char *scheme, *prefix;
	} cases[] = {
		{ "SHA512-CRYPT", "{SHA512-CRYPT}$6$" },
		{ "sha256-crypt", "{SHA256-CRYPT}$5$" },
		{ "BLF-CRYPT", "{BLF-CRYPT}$2y$10$" },
		{ "YESCRYPT", "{CRYPT}$y$" },
		{ "PLAIN", "{PLAIN}s3cret pass" },
	};
	const char *error = NULL;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *h1 = hash(cases[i].scheme, "s3cret pass");
		char *h2 = hash(cases[i].scheme, "s3cret pass");

		ck_assert_msg(strncmp(h1, cases[i].prefix, strlen(cases[i].prefix)) == 0,
			      "%s: %s", cases[i].scheme, h1);
		ck_assert_int_eq(postern_password_verify(h1, "s3cret pass", &error), 1);
		ck_assert_int_eq(postern_password_verify(h1, "s3cret Pass", &error), 0);
		ck_assert_int_eq(postern_password_verify(h1, "", &error), 0);
		if (strcmp(cases[i].scheme, "PLAIN") != 0) {
			ck_assert_str_ne(h1, h2);	/* fresh salt each time */
			ck_assert(!postern_password_is_test_only(h1));
		} else {
			ck_assert(postern_password_is_test_only(h1));
		}
		free(h1);
		free(h2);
	}
}
END_TEST

START_TEST(t_dovecot_vectors)
{
	const char *error = NULL;
	const char *bare = strchr(DOVECOT_SHA512, '}') + 1;
	char crypt_named[256], lower[256];

	ck_assert_int_eq(postern_password_verify(DOVECOT_SHA512, "dovecot-vector", &error), 1);
	ck_assert_int_eq(postern_password_verify(DOVECOT_SHA512, "dovecot-vectoR", &error), 0);
	ck_assert_int_eq(postern_password_verify(DOVECOT_BLF, "dovecot-vector", &error), 1);
	ck_assert_int_eq(postern_password_verify(DOVECOT_BLF, "dovecot-vecto", &error), 0);
	/* a bare crypt hash is {CRYPT}, as in Dovecot's passwd-file */
	ck_assert_int_eq(postern_password_verify(bare, "dovecot-vector", &error), 1);
	snprintf(crypt_named, sizeof(crypt_named), "{CRYPT}%s", bare);
	ck_assert_int_eq(postern_password_verify(crypt_named, "dovecot-vector", &error), 1);
	snprintf(lower, sizeof(lower), "{sha512-crypt}%s", bare);
	ck_assert_int_eq(postern_password_verify(lower, "dovecot-vector", &error), 1);
}
END_TEST

START_TEST(t_unusable_stored_values)
{
	const char *error = NULL;
	char *yes = hash("YESCRYPT", "pw"), named[256], big[POSTERN_PASSWORD_MAX + 2];

	/* unknown scheme: an error, never a match */
	ck_assert_int_eq(postern_password_verify("{MD5}pw", "pw", &error), -1);
	ck_assert_msg(strstr(error, "unknown password scheme") != NULL, "%s", error);
	/* no scheme at all */
	ck_assert_int_eq(postern_password_verify("pw", "pw", &error), -1);
	ck_assert_int_eq(postern_password_verify("{SHA512-CRYPT", "pw", &error), -1);
	ck_assert_int_eq(postern_password_verify("{}pw", "pw", &error), -1);
	ck_assert_int_eq(postern_password_verify(NULL, "pw", &error), -1);
	/* a hash of another scheme than named */
	snprintf(named, sizeof(named), "{SHA512-CRYPT}%s", strchr(yes, '}') + 1);
	ck_assert_int_eq(postern_password_verify(named, "pw", &error), -1);
	/* malformed hashes */
	ck_assert_int_eq(postern_password_verify("{BLF-CRYPT}$2y$99$abc", "pw", &error), -1);
	ck_assert_int_eq(postern_password_verify("{SHA512-CRYPT}$6", "pw", &error), -1);
	/* DES crypt is refused */
	ck_assert_int_eq(postern_password_verify("{CRYPT}abJnggxhB/yWI", "pw", &error), -1);
	/* an absurdly long password never matches, not even PLAIN */
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	snprintf(named, sizeof(named), "{PLAIN}%.100s", big);
	ck_assert_int_eq(postern_password_verify(named, big, &error), 0);
	ck_assert_int_eq(postern_password_hash("SHA512-CRYPT", big, 0, &(char *){ NULL }, &error),
			 -1);
	ck_assert_int_eq(postern_password_hash("MD5-CRYPT", "pw", 0, &(char *){ NULL }, &error),
			 -1);
	ck_assert_int_eq(postern_password_hash("CRYPT", "pw", 0, &(char *){ NULL }, &error), -1);
	free(yes);
}
END_TEST

START_TEST(t_constant_time_compare)
{
	ck_assert(postern_auth_ct_equal("abc", 3, "abc", 3));
	ck_assert(postern_auth_ct_equal("", 0, "", 0));
	ck_assert(!postern_auth_ct_equal("abc", 3, "abd", 3));
	ck_assert(!postern_auth_ct_equal("abc", 3, "xbc", 3));
	ck_assert(!postern_auth_ct_equal("abc", 3, "abcd", 4));
	ck_assert(!postern_auth_ct_equal("abcd", 4, "abc", 3));
	ck_assert(!postern_auth_ct_equal("a\0b", 3, "a\0c", 3));
	ck_assert(postern_auth_ct_equal("a\0b", 3, "a\0b", 3));
}
END_TEST

START_TEST(t_default_scheme)
{
	const char *def = postern_password_default_scheme();

	/* this libcrypt (libxcrypt) has yescrypt */
	ck_assert(postern_password_scheme_supported("YESCRYPT"));
	ck_assert_str_eq(def, "YESCRYPT");
	ck_assert(postern_password_scheme_supported("SHA512-CRYPT"));
	ck_assert(postern_password_scheme_supported("BLF-CRYPT"));
	ck_assert(!postern_password_scheme_supported("NOPE"));
	{
		char *h = NULL;
		const char *error;

		ck_assert_int_eq(postern_password_hash(NULL, "pw", 0, &h, &error), 0);
		ck_assert_msg(strncmp(h, "{CRYPT}$y$", 10) == 0, "%s", h);
		free(h);
	}
}
END_TEST

/* ---- passwd-file ---- */

START_TEST(t_passwd_file_lookup_and_verify)
{
	char *sha = hash("SHA512-CRYPT", "alice"), *blf = hash("BLF-CRYPT", "bob"), content[2048];
	struct postern_userdb *db;
	struct postern_auth_user *user = NULL;
	const char *error = NULL;
	unsigned users, bad;

	snprintf(content, sizeof(content),
		 "# Dovecot passwd-file\n"
		 "\n"
		 "   # indented comment\n"
		 "alice@example.test:%s:1000:1000::/home/alice::userdb_mail=maildir:~/Maildir\n"
		 "bob@example.test:%s:::Bob Builder:/home/bob:/bin/false:host=10.0.0.2 proxy "
		 "nologin port=2110\r\n"
		 "carol@example.test:%s\n"
		 "dave@example.test::::::: mail=mdbox:~/mdbox home=/srv/dave\n"
		 "erin@example.test:{PLAIN}erin:::::: userdb_mail=/var/mail/erin",
		 sha, blf, DOVECOT_SHA512);
	write_users(content, strlen(content));
	db = open_db(true);
	postern_passwd_file_counts(db, &users, &bad);
	ck_assert_uint_eq(users, 5);
	ck_assert_uint_eq(bad, 0);

	ck_assert_int_eq(postern_userdb_verify(db, "alice@example.test", "alice", &user, &error),
			 POSTERN_AUTH_OK);
	ck_assert_str_eq(user->name, "alice@example.test");
	ck_assert_int_eq(user->uid, 1000);
	ck_assert_int_eq(user->gid, 1000);
	ck_assert_str_eq(user->home, "/home/alice");
	ck_assert_str_eq(user->mail, "maildir:/home/alice/Maildir");
	ck_assert_str_eq(user->maildir, "/home/alice/Maildir");
	ck_assert_str_eq(postern_auth_user_field(user, "mail"), "maildir:~/Maildir");
	postern_auth_user_free(&user);
	ck_assert_ptr_null(user);

	ck_assert_int_eq(postern_userdb_verify(db, "alice@example.test", "alicE", &user, &error),
			 POSTERN_AUTH_FAILED);
	ck_assert_ptr_null(user);
	ck_assert_int_eq(postern_userdb_verify(db, "nobody@example.test", "x", &user, &error),
			 POSTERN_AUTH_UNKNOWN_USER);
	/* names compare in lowercase */
	ck_assert_int_eq(postern_userdb_verify(db, "Alice@Example.TEST", "alice", NULL, &error),
			 POSTERN_AUTH_OK);
	ck_assert_int_eq(postern_userdb_verify(db, "bob@example.test", "bob", NULL, &error),
			 POSTERN_AUTH_OK);
	ck_assert_int_eq(postern_userdb_verify(db, "carol@example.test", "dovecot-vector", NULL,
					       &error), POSTERN_AUTH_OK);
	/* no password: found by lookup, never logged in */
	ck_assert_int_eq(postern_userdb_verify(db, "dave@example.test", "", NULL, &error),
			 POSTERN_AUTH_FAILED);

	ck_assert_int_eq(postern_userdb_lookup(db, "bob@example.test", &user, &error),
			 POSTERN_AUTH_OK);
	ck_assert_int_eq(user->uid, -1);
	ck_assert_str_eq(postern_auth_user_field(user, "host"), "10.0.0.2");
	ck_assert_str_eq(postern_auth_user_field(user, "port"), "2110");
	ck_assert_str_eq(postern_auth_user_field(user, "proxy"), "");
	ck_assert_str_eq(postern_auth_user_field(user, "nologin"), "");
	ck_assert_ptr_null(postern_auth_user_field(user, "mail"));
	ck_assert_ptr_null(user->mail);
	ck_assert_str_eq(user->maildir, "/home/bob/Maildir");
	ck_assert_uint_eq(user->field_count, 4);
	postern_auth_user_free(&user);

	ck_assert_int_eq(postern_userdb_lookup(db, "dave@example.test", &user, &error),
			 POSTERN_AUTH_OK);
	ck_assert_str_eq(user->home, "/srv/dave");
	ck_assert_str_eq(user->mail, "mdbox:/srv/dave/mdbox");
	ck_assert_ptr_null(user->maildir);	/* not a Maildir */
	postern_auth_user_free(&user);
	ck_assert_int_eq(postern_userdb_lookup(db, "erin@example.test", &user, &error),
			 POSTERN_AUTH_OK);
	ck_assert_str_eq(user->maildir, "/var/mail/erin");
	ck_assert_ptr_null(user->home);
	postern_auth_user_free(&user);
	ck_assert_int_eq(postern_userdb_lookup(db, "", &user, &error), POSTERN_AUTH_UNKNOWN_USER);
	ck_assert_int_eq(postern_userdb_lookup(db, "a:b", &user, &error),
			 POSTERN_AUTH_UNKNOWN_USER);
	postern_userdb_free(&db);
	ck_assert_ptr_null(db);
	free(sha);
	free(blf);
}
END_TEST

START_TEST(t_passwd_file_malformed_lines)
{
	char content[16384], *p = content, longline[6000];
	struct postern_userdb *db;
	const char *error = NULL;
	unsigned users, bad;

	memset(longline, 'x', sizeof(longline) - 1);
	longline[sizeof(longline) - 1] = '\0';
	p += sprintf(p, "good@example.test:{PLAIN}good\n");            /* 1 */
	p += sprintf(p, "justauser\n");                                  /* 2: too few fields */
	p += sprintf(p, "long@example.test:{PLAIN}%s\n", longline);     /* 3: too long */
	p += sprintf(p, "nul@example.test:{PLAIN}a");                    /* 4: NUL byte */
	*p++ = '\0';
	p += sprintf(p, "b\n");
	p += sprintf(p, "noscheme@example.test:secret\n");              /* 5: missing scheme */
	p += sprintf(p, "unknown@example.test:{ROT13}frperg\n");        /* 6: unknown scheme */
	p += sprintf(p, "baduid@example.test:{PLAIN}x:abc:1\n");        /* 7: uid not a number */
	p += sprintf(p, ":{PLAIN}nouser\n");                             /* 8: empty user */
	p += sprintf(p, "ctl\x01@example.test:{PLAIN}x\n");              /* 9: control char */
	p += sprintf(p, "good@example.test:{PLAIN}second\n");           /* 10: duplicate */
	p += sprintf(p, "brace@example.test:{PLAIN\n");                  /* 11: unterminated */
	p += sprintf(p, "last@example.test:{PLAIN}last");               /* 12: no final LF: ok */
	write_users(content, (size_t)(p - content));
	db = open_db(true);
	postern_passwd_file_counts(db, &users, &bad);
	ck_assert_uint_eq(users, 2);
	ck_assert_uint_eq(bad, 10);
	ck_assert_int_eq(postern_userdb_verify(db, "good@example.test", "good", NULL, &error),
			 POSTERN_AUTH_OK);
	ck_assert_int_eq(postern_userdb_verify(db, "good@example.test", "second", NULL, &error),
			 POSTERN_AUTH_FAILED);
	ck_assert_int_eq(postern_userdb_verify(db, "last@example.test", "last", NULL, &error),
			 POSTERN_AUTH_OK);
	ck_assert_int_eq(postern_userdb_verify(db, "noscheme@example.test", "secret", NULL,
					       &error), POSTERN_AUTH_UNKNOWN_USER);
	ck_assert_int_eq(postern_userdb_verify(db, "nul@example.test", "a", NULL, &error),
			 POSTERN_AUTH_UNKNOWN_USER);
	ck_assert_msg(strstr(logbuf, ":2: too few fields") != NULL, "%s", logbuf);
	ck_assert_msg(strstr(logbuf, ":3: line too long") != NULL, "%s", logbuf);
	ck_assert_msg(strstr(logbuf, ":4: NUL byte") != NULL, "%s", logbuf);
	ck_assert_msg(strstr(logbuf, ":5: password has no {SCHEME}") != NULL, "%s", logbuf);
	ck_assert_msg(strstr(logbuf, ":6: unknown password scheme") != NULL, "%s", logbuf);
	ck_assert_msg(strstr(logbuf, ":10: user good@example.test already defined") != NULL,
		      "%s", logbuf);
	/* the file's secrets never reach the log */
	ck_assert_ptr_null(strstr(logbuf, "frperg"));
	ck_assert_ptr_null(strstr(logbuf, "nouser"));
	postern_userdb_free(&db);
}
END_TEST

START_TEST(t_passwd_file_plain_flagged)
{
	struct postern_userdb *db;
	const char *error = NULL;

	write_users("tester@example.test:{PLAIN}pw\n", 30);
	db = open_db(false);
	ck_assert_msg(strstr(logbuf, "PLAIN password: for tests only (refused") != NULL, "%s",
		      logbuf);
	ck_assert_int_eq(postern_userdb_verify(db, "tester@example.test", "pw", NULL, &error),
			 POSTERN_AUTH_FAILED);
	postern_userdb_free(&db);
	logbuf[0] = '\0';
	db = open_db(true);
	ck_assert_msg(strstr(logbuf, "PLAIN password: for tests only\n") != NULL, "%s", logbuf);
	ck_assert_int_eq(postern_userdb_verify(db, "tester@example.test", "pw", NULL, &error),
			 POSTERN_AUTH_OK);
	postern_userdb_free(&db);
}
END_TEST

START_TEST(t_passwd_file_reload)
{
	struct postern_userdb *db;
	struct postern_passwd_file_settings set = POSTERN_PASSWD_FILE_SETTINGS_INIT;
	const char *error = NULL;
	const char *v1 = "alice@example.test:{PLAIN}one\n";
	const char *v2 = "alice@example.test:{PLAIN}two\nbob@example.test:{PLAIN}bob\n";

	write_users(v1, strlen(v1));
	db = open_db(true);
	ck_assert_int_eq(postern_userdb_verify(db, "alice@example.test", "one", NULL, &error),
			 POSTERN_AUTH_OK);
	write_users(v2, strlen(v2));
	ck_assert_int_eq(postern_userdb_verify(db, "alice@example.test", "one", NULL, &error),
			 POSTERN_AUTH_FAILED);
	ck_assert_int_eq(postern_userdb_verify(db, "alice@example.test", "two", NULL, &error),
			 POSTERN_AUTH_OK);
	ck_assert_int_eq(postern_userdb_verify(db, "bob@example.test", "bob", NULL, &error),
			 POSTERN_AUTH_OK);
	ck_assert_msg(strstr(logbuf, "reloaded: 2 users") != NULL, "%s", logbuf);
	/* the file goes away: the users loaded before stay */
	ck_assert_int_eq(unlink(file), 0);
	ck_assert_int_eq(postern_userdb_verify(db, "bob@example.test", "bob", NULL, &error),
			 POSTERN_AUTH_OK);
	ck_assert_msg(strstr(logbuf, "keeping the users loaded before") != NULL, "%s", logbuf);
	write_users(v1, strlen(v1));
	ck_assert_int_eq(postern_userdb_verify(db, "bob@example.test", "bob", NULL, &error),
			 POSTERN_AUTH_UNKNOWN_USER);
	postern_userdb_free(&db);

	/* with a check interval, a change is seen only after it */
	set.path = file;
	set.check_interval_ms = 60000;
	ck_assert_int_eq(postern_passwd_file_open(&set, &db, &error), 0);
	write_users(v2, strlen(v2));
	ck_assert_int_eq(postern_userdb_verify(db, "bob@example.test", "bob", NULL, &error),
			 POSTERN_AUTH_UNKNOWN_USER);
	postern_userdb_free(&db);
	/* a file that cannot be read at open is an error */
	unlink(file);
	ck_assert_int_eq(postern_passwd_file_open(&set, &db, &error), -1);
	ck_assert_ptr_null(db);
	ck_assert_msg(strstr(error, "open(") != NULL, "%s", error);
	set.struct_size = 8;
	ck_assert_int_eq(postern_passwd_file_open(&set, &db, &error), -1);
}
END_TEST

START_TEST(t_dev_users)
{
	struct postern_passwd_file_settings set = POSTERN_PASSWD_FILE_SETTINGS_INIT;
	struct postern_userdb *db;
	struct postern_auth_user *user = NULL;
	const char *error = NULL;
	unsigned users, bad;

	set.path = TEST_DEV_USERS;
	set.log = test_log;
	ck_assert_msg(postern_passwd_file_open(&set, &db, &error) == 0, "%s", error);
	postern_passwd_file_counts(db, &users, &bad);
	ck_assert_uint_eq(users, 2);
	ck_assert_uint_eq(bad, 0);
	ck_assert_int_eq(postern_userdb_verify(db, "alice@example.test", "alice", &user, &error),
			 POSTERN_AUTH_OK);
	ck_assert_str_eq(user->maildir, "var/mail/example.test/alice/Maildir");
	postern_auth_user_free(&user);
	ck_assert_int_eq(postern_userdb_verify(db, "bob@example.test", "bob", &user, &error),
			 POSTERN_AUTH_OK);
	ck_assert_str_eq(user->maildir, "var/mail/example.test/bob/Maildir");
	postern_auth_user_free(&user);
	ck_assert_int_eq(postern_userdb_verify(db, "bob@example.test", "alice", NULL, &error),
			 POSTERN_AUTH_FAILED);
	/* SHA512-CRYPT, so that Dovecot reads the same file */
	ck_assert_ptr_null(strstr(logbuf, "PLAIN"));
	postern_userdb_free(&db);
}
END_TEST

/* ---- failure tracking ---- */

static uint64_t fake_now;

static uint64_t fake_clock(void *ctx)
{
	(void)ctx;
	return fake_now;
}

static struct postern_auth_failures *make_failures(unsigned max_entries)
{
	struct postern_auth_failures_settings set = POSTERN_AUTH_FAILURES_SETTINGS_INIT;
	struct postern_auth_failures *f;
	const char *error = NULL;

	set.max_entries = max_entries;
	set.window_secs = 60;
	set.block_after = 3;
	set.block_secs = 120;
	set.delay_initial_ms = 500;
	set.delay_max_ms = 2000;
	set.clock_ms = fake_clock;
	ck_assert_int_eq(postern_auth_failures_create(&set, &f, &error), 0);
	return f;
}

START_TEST(t_failures_window_and_block)
{
	struct postern_auth_failures *f = make_failures(64);

	fake_now = 1000000;
	ck_assert_uint_eq(postern_auth_failures_blocked(f, "192.0.2.1"), 0);
	ck_assert_uint_eq(postern_auth_failures_add(f, "192.0.2.1"), 500);
	ck_assert_uint_eq(postern_auth_failures_count(f, "192.0.2.1"), 1);
	ck_assert_uint_eq(postern_auth_failures_blocked(f, "192.0.2.1"), 0);
	fake_now += 1000;
	ck_assert_uint_eq(postern_auth_failures_add(f, "192.0.2.1"), 1000);
	ck_assert_uint_eq(postern_auth_failures_blocked(f, "192.0.2.1"), 0);
	ck_assert_uint_eq(postern_auth_failures_add(f, "192.0.2.1"), 2000);
	/* the third failure in the window blocks */
	ck_assert_uint_eq(postern_auth_failures_blocked(f, "192.0.2.1"), 120000);
	ck_assert_uint_eq(postern_auth_failures_add(f, "192.0.2.1"), 2000);	/* capped */
	/* other addresses are not affected */
	ck_assert_uint_eq(postern_auth_failures_blocked(f, "192.0.2.2"), 0);
	ck_assert_uint_eq(postern_auth_failures_add(f, "192.0.2.2"), 500);
	/* the block ends; the window (60 s) passed, so the count starts over */
	fake_now += 119000;
	ck_assert_uint_gt(postern_auth_failures_blocked(f, "192.0.2.1"), 0);
	fake_now += 2000;
	ck_assert_uint_eq(postern_auth_failures_blocked(f, "192.0.2.1"), 0);
	ck_assert_uint_eq(postern_auth_failures_count(f, "192.0.2.1"), 0);
	ck_assert_uint_eq(postern_auth_failures_add(f, "192.0.2.1"), 500);
	/* failures spread wider than the window never block */
	for (int i = 0; i < 10; i++) {
		fake_now += 31000;
		postern_auth_failures_add(f, "198.51.100.7");
		ck_assert_uint_eq(postern_auth_failures_blocked(f, "198.51.100.7"), 0);
	}
	postern_auth_failures_free(&f);
	ck_assert_ptr_null(f);
}
END_TEST

START_TEST(t_failures_address_forms)
{
	struct postern_auth_failures *f = make_failures(64);

	fake_now = 5000;
	/* one IPv6 /64 is one address */
	postern_auth_failures_add(f, "2001:db8:1:2::1");
	postern_auth_failures_add(f, "2001:db8:1:2:ffff::9");
	ck_assert_uint_eq(postern_auth_failures_count(f, "2001:db8:1:2::77"), 2);
	ck_assert_uint_eq(postern_auth_failures_count(f, "2001:db8:1:3::1"), 0);
	ck_assert_uint_eq(postern_auth_failures_count(f, "[2001:db8:1:2::1]"), 2);
	/* IPv4-mapped IPv6 is the IPv4 address */
	postern_auth_failures_add(f, "203.0.113.5");
	ck_assert_uint_eq(postern_auth_failures_count(f, "::ffff:203.0.113.5"), 1);
	ck_assert_uint_eq(postern_auth_failures_count(f, "203.0.113.6"), 0);
	/* anything else counts as itself */
	postern_auth_failures_add(f, "unix");
	ck_assert_uint_eq(postern_auth_failures_count(f, "unix"), 1);
	ck_assert_uint_eq(postern_auth_failures_count(f, "unix2"), 0);
	postern_auth_failures_free(&f);
}
END_TEST

START_TEST(t_failures_fixed_memory_lru)
{
	struct postern_auth_failures *f = make_failures(4);
	char ip[32];

	fake_now = 1000;
	/* 1.1.1.1 gets blocked; then many addresses pass through */
	for (int i = 0; i < 3; i++)
		postern_auth_failures_add(f, "10.1.1.1");
	for (int i = 0; i < 100; i++) {
		snprintf(ip, sizeof(ip), "10.2.0.%d", i);
		postern_auth_failures_add(f, ip);
		fake_now += 10;
	}
	/* the blocked one survived the flood */
	ck_assert_uint_gt(postern_auth_failures_blocked(f, "10.1.1.1"), 0);
	/* the most recent ones are remembered, older ones forgotten */
	ck_assert_uint_eq(postern_auth_failures_count(f, "10.2.0.99"), 1);
	ck_assert_uint_eq(postern_auth_failures_count(f, "10.2.0.98"), 1);
	ck_assert_uint_eq(postern_auth_failures_count(f, "10.2.0.0"), 0);
	ck_assert_uint_eq(postern_auth_failures_count(f, "10.2.0.50"), 0);
	postern_auth_failures_free(&f);
}
END_TEST

/* ---- the asynchronous pool ---- */

struct expect {
	enum postern_auth_result result;
	bool done;
	unsigned delay_ms;
	char user[64];
};

static unsigned replies;

static void on_reply(struct postern_auth_reply *reply)
{
	struct expect *e = reply->ctx;

	ck_assert_msg(!e->done, "reply twice for %s", reply->user);
	ck_assert_msg(reply->result == e->result, "%s: got %s, want %s", reply->user,
		      postern_auth_result_str(reply->result), postern_auth_result_str(e->result));
	ck_assert_str_eq(reply->user, e->user);
	if (reply->result == POSTERN_AUTH_OK) {
		ck_assert_ptr_nonnull(reply->user_info);
		ck_assert_str_eq(reply->user_info->name, e->user);
	} else {
		ck_assert_ptr_null(reply->user_info);
	}
	e->delay_ms = reply->delay_ms;
	e->done = true;
	replies++;
}

/* Wait on the eventfd like an event loop and collect until `want`
 * replies came, or the deadline passes. */
static void collect_until(struct postern_auth_pool *pool, unsigned want, int timeout_ms)
{
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	while (replies < want) {
		struct pollfd pfd = { .fd = postern_auth_pool_fd(pool), .events = POLLIN };
		int left;

		clock_gettime(CLOCK_MONOTONIC, &now);
		left = timeout_ms - (int)((now.tv_sec - start.tv_sec) * 1000 +
					  (now.tv_nsec - start.tv_nsec) / 1000000);
		if (left <= 0)
			break;
		if (poll(&pfd, 1, left) > 0)
			postern_auth_pool_collect(pool, on_reply);
	}
}

START_TEST(t_pool_many_concurrent)
{
	static struct expect expects[400];
	char content[1024], *sha = hash("SHA512-CRYPT", "alice-pw");
	struct postern_auth_pool_settings set = POSTERN_AUTH_POOL_SETTINGS_INIT;
	struct postern_auth_failures_settings fset = POSTERN_AUTH_FAILURES_SETTINGS_INIT;
	struct postern_auth_failures *failures;
	struct postern_auth_pool *pool;
	struct postern_userdb *db;
	const char *error = NULL;
	unsigned n = sizeof(expects) / sizeof(expects[0]);

	snprintf(content, sizeof(content), "alice@example.test:%s\nbob@example.test:{PLAIN}bob-pw\n",
		 sha);
	write_users(content, strlen(content));
	db = open_db(true);
	fset.block_after = 100000;
	ck_assert_int_eq(postern_auth_failures_create(&fset, &failures, &error), 0);
	set.threads = 4;
	set.max_pending = n;
	set.failures = failures;
	set.log = test_log;
	ck_assert_int_eq(postern_auth_pool_create(db, &set, &pool, &error), 0);
	replies = 0;
	for (unsigned i = 0; i < n; i++) {
		struct expect *e = &expects[i];
		const char *pw;
		char ip[32];

		switch (i % 5) {
		case 0: strcpy(e->user, "alice@example.test"); pw = "alice-pw";
			e->result = POSTERN_AUTH_OK; break;
		case 1: strcpy(e->user, "alice@example.test"); pw = "wrong-pw-1";
			e->result = POSTERN_AUTH_FAILED; break;
		case 2: strcpy(e->user, "bob@example.test"); pw = "bob-pw";
			e->result = POSTERN_AUTH_OK; break;
		case 3: strcpy(e->user, "bob@example.test"); pw = "wrong-pw-2";
			e->result = POSTERN_AUTH_FAILED; break;
		default: strcpy(e->user, "mallory@example.test"); pw = "wrong-pw-3";
			e->result = POSTERN_AUTH_UNKNOWN_USER; break;
		}
		snprintf(ip, sizeof(ip), "192.0.2.%u", i % 50);
		ck_assert_msg(postern_auth_pool_submit(pool, e->user, pw, ip, e, &error) == 0,
			      "%s", error);
	}
	collect_until(pool, n, 120000);
	ck_assert_uint_eq(replies, n);
	for (unsigned i = 0; i < n; i++) {
		ck_assert(expects[i].done);
		if (expects[i].result != POSTERN_AUTH_OK)
			ck_assert_uint_ge(expects[i].delay_ms, 500);
		else
			ck_assert_uint_eq(expects[i].delay_ms, 0);
	}
	/* who failed from where, never the password */
	ck_assert_msg(strstr(logbuf, "auth failed: user=<alice@example.test> rip=192.0.2.1 "
			     "reason=wrong password") != NULL, "%s", logbuf);
	ck_assert_msg(strstr(logbuf, "reason=unknown user") != NULL, "%s", logbuf);
	ck_assert_ptr_null(strstr(logbuf, "wrong-pw"));
	ck_assert_ptr_null(strstr(logbuf, "alice-pw"));
	ck_assert_ptr_null(strstr(logbuf, "bob-pw"));
	postern_auth_pool_free(&pool);
	ck_assert_ptr_null(pool);
	postern_auth_failures_free(&failures);
	postern_userdb_free(&db);
	free(sha);
}
END_TEST

START_TEST(t_pool_blocked_and_cancelled)
{
	static struct expect a[3], other, cancelled[20], kept;
	char content[1024], *sha = hash("SHA512-CRYPT", "pw");
	struct postern_auth_pool_settings set = POSTERN_AUTH_POOL_SETTINGS_INIT;
	struct postern_auth_failures_settings fset = POSTERN_AUTH_FAILURES_SETTINGS_INIT;
	struct postern_auth_failures *failures;
	struct postern_auth_pool *pool;
	struct postern_userdb *db;
	const char *error = NULL;

	snprintf(content, sizeof(content), "alice@example.test:%s\n", sha);
	write_users(content, strlen(content));
	db = open_db(false);
	fset.block_after = 2;
	fset.delay_initial_ms = 300;
	fset.delay_max_ms = 5000;
	ck_assert_int_eq(postern_auth_failures_create(&fset, &failures, &error), 0);
	set.threads = 1;
	set.failures = failures;
	set.log = test_log;
	ck_assert_int_eq(postern_auth_pool_create(db, &set, &pool, &error), 0);
	replies = 0;
	for (int i = 0; i < 2; i++) {
		strcpy(a[i].user, "alice@example.test");
		a[i].result = POSTERN_AUTH_FAILED;
		ck_assert_int_eq(postern_auth_pool_submit(pool, a[i].user, "bad", "198.51.100.1",
							  &a[i], &error), 0);
		collect_until(pool, (unsigned)i + 1, 10000);
	}
	ck_assert_uint_eq(a[0].delay_ms, 300);
	ck_assert_uint_eq(a[1].delay_ms, 600);
	/* blocked now: answered at once, even with the right password */
	strcpy(a[2].user, "alice@example.test");
	a[2].result = POSTERN_AUTH_BLOCKED;
	ck_assert_int_eq(postern_auth_pool_submit(pool, a[2].user, "pw", "198.51.100.1", &a[2],
						  &error), 0);
	collect_until(pool, 3, 10000);
	ck_assert_uint_eq(a[2].delay_ms, 5000);
	ck_assert_msg(strstr(logbuf, "auth blocked: user=<alice@example.test> rip=198.51.100.1")
		      != NULL, "%s", logbuf);
	strcpy(other.user, "alice@example.test");
	other.result = POSTERN_AUTH_OK;
	ck_assert_int_eq(postern_auth_pool_submit(pool, other.user, "pw", "198.51.100.2", &other,
						  &error), 0);
	collect_until(pool, 4, 10000);
	ck_assert(other.done);

	/* a connection that goes away takes its requests with it */
	for (int i = 0; i < 20; i++) {
		strcpy(cancelled[i].user, "alice@example.test");
		ck_assert_int_eq(postern_auth_pool_submit(pool, "alice@example.test", "pw",
							  "198.51.100.3", cancelled, &error), 0);
	}
	strcpy(kept.user, "alice@example.test");
	kept.result = POSTERN_AUTH_OK;
	ck_assert_int_eq(postern_auth_pool_submit(pool, kept.user, "pw", "198.51.100.4", &kept,
						  &error), 0);
	postern_auth_pool_cancel(pool, cancelled);
	collect_until(pool, 5, 10000);
	ck_assert(kept.done);
	/* and nothing for the cancelled ctx arrives later either */
	collect_until(pool, 6, 300);
	ck_assert_uint_eq(replies, 5);
	ck_assert(!cancelled[0].done);
	postern_auth_pool_free(&pool);
	postern_auth_failures_free(&failures);
	postern_userdb_free(&db);
	free(sha);
}
END_TEST

/* A userdb of our own through the public interface: verify waits until
 * the test opens a gate, so the pool's queue can be filled for sure. */
struct gate_db {
	struct postern_userdb db;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool open;
	unsigned entered;
};

static enum postern_auth_result gate_lookup(struct postern_userdb *db, const char *user,
					    struct postern_auth_user **user_r,
					    const char **error_r)
{
	(void)db;
	(void)user;
	(void)user_r;
	*error_r = "lookups are not supported here";
	return POSTERN_AUTH_TEMPFAIL;
}

static enum postern_auth_result gate_verify(struct postern_userdb *db, const char *user,
					    const char *password,
					    struct postern_auth_user **user_r,
					    const char **error_r)
{
	struct gate_db *g = (struct gate_db *)db;

	(void)user;
	(void)password;
	(void)user_r;
	pthread_mutex_lock(&g->lock);
	g->entered++;
	pthread_cond_broadcast(&g->cond);
	while (!g->open)
		pthread_cond_wait(&g->cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
	*error_r = "backend unreachable";
	return POSTERN_AUTH_TEMPFAIL;
}

static void gate_free(struct postern_userdb *db)
{
	(void)db;
}

static const struct postern_userdb_ops gate_ops = {
	.name = "gate", .lookup = gate_lookup, .verify = gate_verify, .free = gate_free,
};

START_TEST(t_pool_queue_full_and_custom_userdb)
{
	static struct expect e[3];
	struct gate_db g = { .db = { &gate_ops }, .lock = PTHREAD_MUTEX_INITIALIZER,
			     .cond = PTHREAD_COND_INITIALIZER };
	struct postern_auth_pool_settings set = POSTERN_AUTH_POOL_SETTINGS_INIT;
	struct postern_auth_pool *pool;
	const char *error = NULL;

	set.threads = 1;
	set.max_pending = 2;
	set.log = test_log;
	ck_assert_int_eq(postern_auth_pool_create(&g.db, &set, &pool, &error), 0);
	for (int i = 0; i < 3; i++) {
		strcpy(e[i].user, "u@example.test");
		e[i].result = POSTERN_AUTH_TEMPFAIL;
	}
	ck_assert_int_eq(postern_auth_pool_submit(pool, "u@example.test", "p", "::1", &e[0],
						  &error), 0);
	/* wait until the worker is inside verify: one running */
	pthread_mutex_lock(&g.lock);
	while (g.entered == 0)
		pthread_cond_wait(&g.cond, &g.lock);
	pthread_mutex_unlock(&g.lock);
	ck_assert_int_eq(postern_auth_pool_submit(pool, "u@example.test", "p", "::1", &e[1],
						  &error), 0);
	ck_assert_int_eq(postern_auth_pool_submit(pool, "u@example.test", "p", "::1", &e[2],
						  &error), -1);
	ck_assert_msg(strstr(error, "queue full") != NULL, "%s", error);
	ck_assert_int_eq(postern_userdb_lookup(&g.db, "u@example.test", NULL, &error),
			 POSTERN_AUTH_TEMPFAIL);
	pthread_mutex_lock(&g.lock);
	g.open = true;
	pthread_cond_broadcast(&g.cond);
	pthread_mutex_unlock(&g.lock);
	replies = 0;
	collect_until(pool, 2, 10000);
	ck_assert_uint_eq(replies, 2);
	ck_assert_msg(strstr(logbuf, "auth temporary failure: user=<u@example.test> rip=::1: "
			     "backend unreachable") != NULL, "%s", logbuf);
	/* freeing with requests still queued drops them */
	g.open = false;
	g.entered = 0;
	ck_assert_int_eq(postern_auth_pool_submit(pool, "u@example.test", "p", "::1", &e[0],
						  &error), 0);
	pthread_mutex_lock(&g.lock);
	while (g.entered == 0)
		pthread_cond_wait(&g.cond, &g.lock);
	g.open = true;
	pthread_cond_broadcast(&g.cond);
	pthread_mutex_unlock(&g.lock);
	ck_assert_int_eq(postern_auth_pool_submit(pool, "u@example.test", "p", "::1", &e[1],
						  &error), 0);
	postern_auth_pool_free(&pool);
	ck_assert_ptr_null(pool);
}
END_TEST

START_TEST(t_user_printing_in_log)
{
	char content[256];
	struct postern_auth_pool_settings set = POSTERN_AUTH_POOL_SETTINGS_INIT;
	struct postern_auth_pool *pool;
	struct postern_userdb *db;
	const char *error = NULL;
	static struct expect e;

	snprintf(content, sizeof(content), "alice@example.test:{PLAIN}x\n");
	write_users(content, strlen(content));
	db = open_db(true);
	set.log = test_log;
	ck_assert_int_eq(postern_auth_pool_create(db, &set, &pool, &error), 0);
	/* a user name with a line break and an escape must not forge lines */
	strcpy(e.user, "evil\r\nauth ok: user=<root>\x1b[0m");
	e.result = POSTERN_AUTH_UNKNOWN_USER;
	ck_assert_int_eq(postern_auth_pool_submit(pool, e.user, "x", "127.0.0.1", &e, &error), 0);
	replies = 0;
	collect_until(pool, 1, 10000);
	ck_assert_uint_eq(replies, 1);
	ck_assert_msg(strstr(logbuf, "user=<evil\\x0d\\x0aauth ok: user=<root>\\x1b[0m>") != NULL,
		      "%s", logbuf);
	postern_auth_pool_free(&pool);
	postern_userdb_free(&db);
}
END_TEST

/* ---- the shared settings (auth_settings.h) ---- */

struct test_settings {
	int before;
	struct postern_auth_config auth;
	int after;
};

static const struct postern_setting_def test_setting_defs[] = {
	POSTERN_AUTH_SETTING_DEFS(struct test_settings, auth),
	POSTERN_SETTING_END,
};

START_TEST(t_settings_table_and_conversion)
{
	static const char *const names[] = {
		"passwd_file", "passwd_file_check_interval", "passwd_file_max_line",
		"allow_plain_passwords", "auth_threads", "auth_max_pending", "auth_failure_window",
		"auth_failure_block_after", "auth_block_time", "auth_failure_delay",
		"auth_failure_delay_max", "auth_failure_max_ips", "auth_ipv6_prefix",
	};
	size_t count = 0;

	for (const struct postern_setting_def *def = test_setting_defs; def->name != NULL; def++) {
		ck_assert_uint_lt(count, sizeof(names) / sizeof(names[0]));
		ck_assert_str_eq(def->name, names[count]);
		ck_assert_uint_ge(def->offset, offsetof(struct test_settings, auth));
		ck_assert_uint_lt(def->offset, offsetof(struct test_settings, after));
		count++;
	}
	ck_assert_uint_eq(count, sizeof(names) / sizeof(names[0]));

	struct postern_auth_config config = {
		.passwd_file = "/etc/users", .passwd_file_check_interval = 1500,
		.passwd_file_max_line = 8192, .allow_plain_passwords = true,
		.threads = 3, .max_pending = 99, .failure_window = 1500,
		.failure_block_after = 4, .block_time = 60000, .failure_delay = 250,
		.failure_delay_max = 1ull << 40, .failure_max_ips = 100, .ipv6_prefix = 48,
	};
	struct postern_passwd_file_settings pw = POSTERN_PASSWD_FILE_SETTINGS_INIT;
	struct postern_auth_failures_settings fs = POSTERN_AUTH_FAILURES_SETTINGS_INIT;
	struct postern_auth_pool_settings ps = POSTERN_AUTH_POOL_SETTINGS_INIT;
	const char *error = NULL;

	postern_auth_config_passwd_file(&config, &pw);
	ck_assert_str_eq(pw.path, "/etc/users");
	ck_assert_uint_eq(pw.check_interval_ms, 1500);
	ck_assert_uint_eq(pw.max_line, 8192);
	ck_assert(pw.allow_plain);
	postern_auth_config_failures(&config, &fs);
	ck_assert_uint_eq(fs.window_secs, 2);      /* rounded up, never shorter */
	ck_assert_uint_eq(fs.block_secs, 60);
	ck_assert_uint_eq(fs.block_after, 4);
	ck_assert_uint_eq(fs.delay_initial_ms, 250);
	ck_assert_uint_eq(fs.delay_max_ms, 0xffffffffu); /* clamped */
	ck_assert_uint_eq(fs.max_entries, 100);
	ck_assert_uint_eq(fs.ipv6_prefix, 48);
	postern_auth_config_pool(&config, &ps);
	ck_assert_uint_eq(ps.threads, 3);
	ck_assert_uint_eq(ps.max_pending, 99);
	ck_assert(ps.failures == NULL);

	ck_assert_int_eq(postern_auth_config_check(&config, &error), 0);
	config.failure_delay_max = 100;
	ck_assert_int_eq(postern_auth_config_check(&config, &error), -1);
	ck_assert_str_eq(error, "auth_failure_delay_max is below auth_failure_delay");
}
END_TEST

static Suite *auth_suite(void)
{
	Suite *s = suite_create("auth");
	struct {
		const char *name;
		const TTest *test;
		int timeout;
	} cases[] = {
		{ "schemes", t_scheme_round_trips, 30 },
		{ "dovecot_vectors", t_dovecot_vectors, 10 },
		{ "unusable_stored", t_unusable_stored_values, 10 },
		{ "ct_compare", t_constant_time_compare, 10 },
		{ "default_scheme", t_default_scheme, 10 },
		{ "passwd_file", t_passwd_file_lookup_and_verify, 30 },
		{ "passwd_file_malformed", t_passwd_file_malformed_lines, 10 },
		{ "passwd_file_plain", t_passwd_file_plain_flagged, 10 },
		{ "passwd_file_reload", t_passwd_file_reload, 10 },
		{ "dev_users", t_dev_users, 10 },
		{ "failures_window", t_failures_window_and_block, 10 },
		{ "failures_addresses", t_failures_address_forms, 10 },
		{ "failures_lru", t_failures_fixed_memory_lru, 10 },
		{ "pool_many", t_pool_many_concurrent, 150 },
		{ "pool_blocked_cancel", t_pool_blocked_and_cancelled, 60 },
		{ "pool_queue_full", t_pool_queue_full_and_custom_userdb, 30 },
		{ "pool_log_escaping", t_user_printing_in_log, 10 },
		{ "settings", t_settings_table_and_conversion, 10 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		TCase *tc = tcase_create(cases[i].name);

		/* unchecked: set up and cleaned up in the runner process,
		 * so a failing test leaves no temporary files behind */
		tcase_add_unchecked_fixture(tc, setup, teardown);
		tcase_set_timeout(tc, cases[i].timeout);
		tcase_add_test(tc, cases[i].test);
		suite_add_tcase(s, tc);
	}
	return s;
}

int main(int argc, char **argv)
{
	return check_run(srunner_create(auth_suite()), argc > 1 ? argv[1] : NULL);
}
