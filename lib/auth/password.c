/*
 * Password schemes, with Dovecot's names so that a passwd-file moves
 * between the two servers unchanged:
 *
 *   SHA512-CRYPT  $6$      SHA256-CRYPT  $5$      BLF-CRYPT  $2y$ $2b$ $2a$
 *   YESCRYPT      $y$      (written as {CRYPT}$y$..., the way Dovecot reads it)
 *   CRYPT         any of the above (an alias, and the scheme of a bare "$...")
 *   PLAIN         the password itself: for tests only
 *
 * All crypt schemes go through libcrypt's crypt_rn(), which is thread-safe
 * with its own crypt_data. DES and MD5 crypt are refused: they are too weak
 * to keep. A stored hash must belong to its named scheme ({SHA512-CRYPT}
 * with a $y$ hash is an error), and an unknown scheme is an error: neither
 * is ever a match. Everything that held the password or state derived from
 * it is wiped with explicit_bzero() before it is freed.
 */
#include "config.h"

#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "auth_private.h"

struct scheme {
	const char *name;
	const char *const *prefixes;  /* NULL: PLAIN */
	const char *gensalt;          /* prefix for crypt_gensalt_rn */
	unsigned default_rounds;      /* 0: libcrypt's default */
	const char *written_as;       /* the {NAME} of hashes we write */
};

static const char *const sha512_prefixes[] = { "$6$", NULL };
static const char *const sha256_prefixes[] = { "$5$", NULL };
static const char *const blf_prefixes[] = { "$2y$", "$2b$", "$2a$", NULL };
static const char *const yescrypt_prefixes[] = { "$y$", NULL };
static const char *const crypt_prefixes[] = { "$6$", "$5$", "$2y$", "$2b$", "$2a$", "$y$", NULL };

static const struct scheme schemes[] = {
	{ "SHA512-CRYPT", sha512_prefixes, "$6$", 0, "SHA512-CRYPT" },
	{ "SHA256-CRYPT", sha256_prefixes, "$5$", 0, "SHA256-CRYPT" },
	/* libcrypt's default bcrypt cost is 5, too cheap today */
	{ "BLF-CRYPT", blf_prefixes, "$2y$", 10, "BLF-CRYPT" },
	{ "YESCRYPT", yescrypt_prefixes, "$y$", 0, "CRYPT" },
	{ "CRYPT", crypt_prefixes, NULL, 0, "CRYPT" },
	{ "PLAIN", NULL, NULL, 0, "PLAIN" },
};

#define SCHEME_NAME_MAX 32

static const struct scheme *scheme_find(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		if (strlen(schemes[i].name) == len && strncasecmp(schemes[i].name, name, len) == 0)
			return &schemes[i];
	}
	return NULL;
}

bool auth_password_scheme_known(const char *name, size_t len)
{
	return scheme_find(name, len) != NULL;
}

/* Split "{SCHEME}value"; a bare "$..." is CRYPT. */
static int split_stored(const char *stored, const struct scheme **scheme_r, const char **value_r,
			const char **error_r)
{
	const char *end;

	if (stored[0] == '$') {
		*scheme_r = scheme_find("CRYPT", 5);
		*value_r = stored;
		return 0;
	}
	if (stored[0] != '{' || (end = strchr(stored, '}')) == NULL ||
	    end - stored - 1 > SCHEME_NAME_MAX || end == stored + 1) {
		*error_r = auth_error("password has no {SCHEME} prefix");
		return -1;
	}
	*scheme_r = scheme_find(stored + 1, (size_t)(end - stored - 1));
	if (*scheme_r == NULL) {
		char name[SCHEME_NAME_MAX * 4 + 8];

		auth_printable(name, sizeof(name), stored + 1, (size_t)(end - stored - 1));
		*error_r = auth_error("unknown password scheme %s", name);
		return -1;
	}
	*value_r = end + 1;
	return 0;
}

POSTERN_API bool postern_auth_ct_equal(const void *a, size_t a_len, const void *b, size_t b_len)
{
	const volatile unsigned char *x = a, *y = b;
	size_t n = a_len < b_len ? a_len : b_len;
	unsigned char diff = a_len != b_len;

	for (size_t i = 0; i < n; i++)
		diff |= x[i] ^ y[i];
	return diff == 0;
}

static bool has_prefix_of(const struct scheme *scheme, const char *hash)
{
	for (const char *const *p = scheme->prefixes; *p != NULL; p++) {
		if (strncmp(hash, *p, strlen(*p)) == 0)
			return true;
	}
	return false;
}

static int verify_crypt(const struct scheme *scheme, const char *hash, const char *password,
			const char **error_r)
{
	struct crypt_data *data;
	const char *computed;
	int ret;

	if (!has_prefix_of(scheme, hash)) {
		*error_r = auth_error("password hash is not a %s hash", scheme->name);
		return -1;
	}
	data = calloc(1, sizeof(*data));
	if (data == NULL) {
		*error_r = auth_error("out of memory");
		return -1;
	}
	computed = crypt_rn(password, hash, data, sizeof(*data));
	if (computed == NULL || computed[0] == '*') {
		*error_r = auth_error("malformed %s hash", scheme->name);
		ret = -1;
	} else {
		ret = postern_auth_ct_equal(computed, strlen(computed), hash, strlen(hash)) ? 1 : 0;
	}
	explicit_bzero(data, sizeof(*data));
	free(data);
	return ret;
}

POSTERN_API int postern_password_verify(const char *stored, const char *password,
					const char **error_r)
{
	const struct scheme *scheme;
	const char *value;

	if (stored == NULL) {
		*error_r = auth_error("no password");
		return -1;
	}
	if (split_stored(stored, &scheme, &value, error_r) < 0)
		return -1;
	if (strlen(password) > POSTERN_PASSWORD_MAX)
		return 0;
	if (scheme->prefixes == NULL)
		return postern_auth_ct_equal(value, strlen(value), password, strlen(password)) ? 1 : 0;
	return verify_crypt(scheme, value, password, error_r);
}

POSTERN_API bool postern_password_is_test_only(const char *stored)
{
	const struct scheme *scheme;
	const char *value, *error;

	return stored != NULL && split_stored(stored, &scheme, &value, &error) == 0 &&
		scheme->prefixes == NULL;
}

/* A crypt setting string with a fresh salt. */
static int make_setting(const struct scheme *scheme, unsigned rounds, char *setting, size_t size,
			const char **error_r)
{
	unsigned char salt[16];

	if (getrandom(salt, sizeof(salt), 0) != (ssize_t)sizeof(salt)) {
		*error_r = auth_error("getrandom: %s", strerror(errno));
		return -1;
	}
	if (crypt_gensalt_rn(scheme->gensalt, rounds != 0 ? rounds : scheme->default_rounds,
			     (const char *)salt, sizeof(salt), setting, (int)size) == NULL) {
		*error_r = auth_error("libcrypt cannot make a %s salt (rounds %u): %s",
				      scheme->name, rounds, strerror(errno));
		explicit_bzero(salt, sizeof(salt));
		return -1;
	}
	explicit_bzero(salt, sizeof(salt));
	return 0;
}

POSTERN_API bool postern_password_scheme_supported(const char *name)
{
	const struct scheme *scheme = name == NULL ? NULL : scheme_find(name, strlen(name));
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	const char *error;

	if (scheme == NULL)
		return false;
	if (scheme->prefixes == NULL)
		return true;
	return scheme->gensalt != NULL &&
		make_setting(scheme, 0, setting, sizeof(setting), &error) == 0;
}

POSTERN_API const char *postern_password_default_scheme(void)
{
	return postern_password_scheme_supported("YESCRYPT") ? "YESCRYPT" : "SHA512-CRYPT";
}

POSTERN_API int postern_password_hash(const char *name, const char *password, unsigned rounds,
				      char **hash_r, const char **error_r)
{
	const struct scheme *scheme;
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *data;
	const char *hash;
	size_t len;

	*hash_r = NULL;
	if (name == NULL)
		name = postern_password_default_scheme();
	scheme = scheme_find(name, strlen(name));
	if (scheme == NULL || (scheme->prefixes != NULL && scheme->gensalt == NULL)) {
		*error_r = auth_error("cannot hash with scheme %s (use SHA512-CRYPT, "
				      "SHA256-CRYPT, BLF-CRYPT, YESCRYPT or PLAIN)", name);
		return -1;
	}
	if (strlen(password) > POSTERN_PASSWORD_MAX) {
		*error_r = auth_error("password longer than %d bytes", POSTERN_PASSWORD_MAX);
		return -1;
	}
	if (scheme->prefixes == NULL) {
		hash = password;
		data = NULL;
	} else {
		if (make_setting(scheme, rounds, setting, sizeof(setting), error_r) < 0)
			return -1;
		if ((data = calloc(1, sizeof(*data))) == NULL) {
			*error_r = auth_error("out of memory");
			return -1;
		}
		hash = crypt_rn(password, setting, data, sizeof(*data));
		if (hash == NULL || hash[0] == '*') {
			*error_r = auth_error("crypt failed for %s: %s", scheme->name,
					      strerror(errno));
			explicit_bzero(data, sizeof(*data));
			free(data);
			return -1;
		}
	}
	len = strlen(scheme->written_as) + strlen(hash) + 3;
	*hash_r = malloc(len);
	if (*hash_r != NULL)
		snprintf(*hash_r, len, "{%s}%s", scheme->written_as, hash);
	else
		*error_r = auth_error("out of memory");
	if (data != NULL) {
		explicit_bzero(data, sizeof(*data));
		free(data);
	}
	return *hash_r == NULL ? -1 : 0;
}
