/*
 * The SASL PLAIN message (RFC 4616): "authzid NUL authcid NUL password".
 */
#include <string.h>
#include <postern/sasl.h>

enum postern_sasl_plain_result postern_sasl_plain_decode(const char *b64, size_t len, char *buf,
							 const char **user_r,
							 const char **password_r)
{
	long n = postern_base64_decode(b64, len, (unsigned char *)buf, POSTERN_SASL_PLAIN_MAX);

	if (n < 0)
		return POSTERN_SASL_PLAIN_BAD_BASE64;
	buf[n] = '\0';

	const char *end = buf + n;
	const char *authzid = buf;
	const char *nul1 = memchr(buf, '\0', (size_t)n);
	if (nul1 == NULL)
		return POSTERN_SASL_PLAIN_MALFORMED;
	const char *authcid = nul1 + 1;
	const char *nul2 = memchr(authcid, '\0', (size_t)(end - authcid));
	if (nul2 == NULL)
		return POSTERN_SASL_PLAIN_MALFORMED;
	const char *password = nul2 + 1;

	/* No third NUL, no empty user or password, each part within 255. */
	if (memchr(password, '\0', (size_t)(end - password)) != NULL || *authcid == '\0' ||
	    *password == '\0' || nul1 - authzid > 255 || nul2 - authcid > 255 ||
	    end - password > 255)
		return POSTERN_SASL_PLAIN_MALFORMED;
	/* One user may not act as another: authzid is empty or the same. */
	if (*authzid != '\0' && strcmp(authzid, authcid) != 0)
		return POSTERN_SASL_PLAIN_AUTHZID;
	*user_r = authcid;
	*password_r = password;
	return POSTERN_SASL_PLAIN_OK;
}
