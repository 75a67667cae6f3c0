/*
 * Decoding what clients send during SASL authentication: strict base64
 * (RFC 4648: padding required, no whitespace, no stray bits) and the PLAIN
 * message (RFC 4616). Shared by every module that speaks AUTH (smtp, pop3be,
 * the front-ends). Pure functions over client bytes. Part of
 * libpostern-protocol.
 */
#ifndef POSTERN_SASL_H
#define POSTERN_SASL_H

#include <postern/common.h>

/* RFC 4616 limits each of authzid, authcid and password to 255 octets. */
#define POSTERN_SASL_PLAIN_MAX (3 * 255 + 2)

/* Decode `len` bytes of base64 into `out`. Returns the decoded length, or
 * -1 for anything that is not canonical base64 or does not fit. */
POSTERN_API long postern_base64_decode(const char *in, size_t len, unsigned char *out,
				       size_t out_size);
/* Encode into `out` (NUL-terminated); `out_size` must be at least
 * 4 * ((len + 2) / 3) + 1. Returns the encoded length, or -1 if too small. */
POSTERN_API long postern_base64_encode(const void *in, size_t len, char *out, size_t out_size);

enum postern_sasl_plain_result {
	POSTERN_SASL_PLAIN_OK = 0,
	POSTERN_SASL_PLAIN_BAD_BASE64, /* not base64, or longer than the limits */
	POSTERN_SASL_PLAIN_MALFORMED,  /* not authzid NUL authcid NUL password, or empty parts */
	POSTERN_SASL_PLAIN_AUTHZID,    /* authzid names another user: not supported */
};

/*
 * Decode a base64 PLAIN response into `buf` (at least
 * POSTERN_SASL_PLAIN_MAX + 1 bytes); on OK, *user_r and *password_r point
 * into it. The caller wipes `buf` (explicit_bzero) when done.
 */
POSTERN_API enum postern_sasl_plain_result
postern_sasl_plain_decode(const char *b64, size_t len, char *buf, const char **user_r,
			  const char **password_r);

#endif
