/*
 * Unit tests for libpostern-protocol: network lists, base64, SASL PLAIN.
 */
#include <check.h>
#include "check_main.h"
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <postern/cidr.h>
#include <postern/sasl.h>

static struct postern_cidr cidr(const char *text)
{
	struct postern_cidr result;
	const char *error = NULL;

	ck_assert_msg(postern_cidr_parse(text, &result, &error) == 0, "%s: %s", text, error);
	return result;
}

START_TEST(cidr_parses_networks_and_hosts)
{
	struct postern_cidr c = cidr("192.0.2.0/24");

	ck_assert_int_eq(c.family, AF_INET);
	ck_assert_uint_eq(c.prefix, 24);
	ck_assert_uint_eq(cidr("192.0.2.7").prefix, 32);
	ck_assert_uint_eq(cidr("2001:db8::/32").prefix, 32);
	ck_assert_uint_eq(cidr("::1").prefix, 128);
	ck_assert_uint_eq(cidr("0.0.0.0/0").prefix, 0);
}
END_TEST

START_TEST(cidr_refuses_junk)
{
	static const char *const bad[] = {
		"", "/24", "192.0.2.0/", "192.0.2.0/33", "192.0.2.0/-1", "192.0.2.0/24x",
		"192.0.2.1/24", "2001:db8::/129", "example.com", "192.0.2", "1.2.3.4/ 8",
		"999.1.1.1", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	};
	struct postern_cidr c;
	const char *error;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		error = NULL;
		ck_assert_msg(postern_cidr_parse(bad[i], &c, &error) == -1, "accepted '%s'", bad[i]);
		ck_assert_ptr_nonnull(error);
	}
}
END_TEST

START_TEST(cidr_matches_at_prefix_boundaries)
{
	struct postern_cidr list[] = { cidr("192.0.2.0/25"), cidr("2001:db8:1::/48"),
				       cidr("10.1.2.3") };

	ck_assert(postern_cidr_match(list, 3, "192.0.2.0"));
	ck_assert(postern_cidr_match(list, 3, "192.0.2.127"));
	ck_assert(!postern_cidr_match(list, 3, "192.0.2.128"));
	ck_assert(postern_cidr_match(list, 3, "::ffff:192.0.2.5"));
	ck_assert(postern_cidr_match(list, 3, "2001:db8:1:ffff::1"));
	ck_assert(!postern_cidr_match(list, 3, "2001:db8:2::1"));
	ck_assert(postern_cidr_match(list, 3, "10.1.2.3"));
	ck_assert(!postern_cidr_match(list, 3, "10.1.2.4"));
	ck_assert(!postern_cidr_match(list, 3, "not an ip"));
	ck_assert(!postern_cidr_match(list, 3, NULL));
	ck_assert(!postern_cidr_match(list, 0, "192.0.2.1"));
	struct postern_cidr all = cidr("0.0.0.0/0");
	ck_assert(postern_cidr_match(&all, 1, "203.0.113.9"));
	ck_assert(!postern_cidr_match(&all, 1, "2001:db8::1"));
}
END_TEST

START_TEST(base64_round_trips_every_length)
{
	unsigned char data[64], decoded[64];
	char encoded[100];

	for (unsigned i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 37 + 11);
	for (size_t len = 0; len <= sizeof(data); len++) {
		long n = postern_base64_encode(data, len, encoded, sizeof(encoded));

		ck_assert_int_eq(n, (long)(4 * ((len + 2) / 3)));
		ck_assert_int_eq(postern_base64_decode(encoded, (size_t)n, decoded, sizeof(decoded)),
				 (long)len);
		ck_assert_int_eq(memcmp(data, decoded, len), 0);
	}
	ck_assert_int_eq(postern_base64_encode("abc", 3, encoded, 4), -1);
}
END_TEST

START_TEST(base64_is_strict)
{
	static const char *const bad[] = {
		"Zm9", "Zm9v=", "Zg=", "Z===", "Zm=v", "Zm9v\n", "Zm 9v", "Zh==", "Zm9=",
		"Zm9v!!!!", "=Zm9", "Zg==Zg==",
	};
	unsigned char out[16];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(postern_base64_decode(bad[i], strlen(bad[i]), out, sizeof(out)) == -1,
			      "accepted '%s'", bad[i]);
	ck_assert_int_eq(postern_base64_decode("Zg==", 4, out, sizeof(out)), 1);
	ck_assert_int_eq(postern_base64_decode("Zm8=", 4, out, sizeof(out)), 2);
	ck_assert_int_eq(postern_base64_decode("Zm9v", 4, out, 2), -1); /* does not fit */
	ck_assert_int_eq(postern_base64_decode("", 0, out, sizeof(out)), 0);
}
END_TEST

static enum postern_sasl_plain_result plain(const char *raw, size_t len, const char **user_r,
					    const char **password_r)
{
	static char buf[POSTERN_SASL_PLAIN_MAX + 1];
	char b64[2048];

	ck_assert_int_ge(postern_base64_encode(raw, len, b64, sizeof(b64)), 0);
	return postern_sasl_plain_decode(b64, strlen(b64), buf, user_r, password_r);
}

START_TEST(sasl_plain_decodes)
{
	const char *user, *password;

	ck_assert_int_eq(plain("\0alice\0secret", 13, &user, &password), POSTERN_SASL_PLAIN_OK);
	ck_assert_str_eq(user, "alice");
	ck_assert_str_eq(password, "secret");
	ck_assert_int_eq(plain("alice\0alice\0pw", 14, &user, &password), POSTERN_SASL_PLAIN_OK);
	ck_assert_int_eq(plain("bob\0alice\0pw", 12, &user, &password),
			 POSTERN_SASL_PLAIN_AUTHZID);
}
END_TEST

START_TEST(sasl_plain_refuses_malformed)
{
	const char *user, *password;
	char big[600];
	char buf[POSTERN_SASL_PLAIN_MAX + 1];

	ck_assert_int_eq(plain("alice", 5, &user, &password), POSTERN_SASL_PLAIN_MALFORMED);
	ck_assert_int_eq(plain("\0alice", 6, &user, &password), POSTERN_SASL_PLAIN_MALFORMED);
	ck_assert_int_eq(plain("\0\0pw", 4, &user, &password), POSTERN_SASL_PLAIN_MALFORMED);
	ck_assert_int_eq(plain("\0alice\0", 7, &user, &password), POSTERN_SASL_PLAIN_MALFORMED);
	ck_assert_int_eq(plain("\0alice\0p\0w", 10, &user, &password),
			 POSTERN_SASL_PLAIN_MALFORMED);
	/* A 256-octet user name is over RFC 4616's limit. */
	memset(big, 'u', sizeof(big));
	big[0] = '\0';
	big[257] = '\0';
	memcpy(big + 258, "pw", 2);
	ck_assert_int_eq(plain(big, 260, &user, &password), POSTERN_SASL_PLAIN_MALFORMED);
	ck_assert_int_eq(postern_sasl_plain_decode("not base64!", 11, buf, &user, &password),
			 POSTERN_SASL_PLAIN_BAD_BASE64);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("protocol");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, cidr_parses_networks_and_hosts);
	tcase_add_test(tc, cidr_refuses_junk);
	tcase_add_test(tc, cidr_matches_at_prefix_boundaries);
	tcase_add_test(tc, base64_round_trips_every_length);
	tcase_add_test(tc, base64_is_strict);
	tcase_add_test(tc, sasl_plain_decodes);
	tcase_add_test(tc, sasl_plain_refuses_malformed);
	suite_add_tcase(suite, tc);
	return check_run(srunner_create(suite), NULL);
}
