/*
 * Strict base64 for SASL responses: a client's AUTH data either decodes
 * exactly or is refused (501 5.5.2); no whitespace, no missing padding.
 */
#include "parse.h"

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int smtp_base64_decode(const char *in, size_t len, unsigned char *out, size_t out_size)
{
	size_t o = 0;

	if (len % 4 != 0)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		int v[4];
		unsigned pad = 0;

		for (unsigned k = 0; k < 4; k++) {
			unsigned char c = (unsigned char)in[i + k];

			if (c == '=' && i + 4 == len && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad > 0)
				return -1; /* data after padding */
			v[k] = b64_value(c);
			if (v[k] < 0)
				return -1;
		}
		if (pad == 1 && in[i + 2] == '=')
			return -1;
		unsigned bytes = 3 - pad;

		if (o + bytes + 1 > out_size)
			return -1;
		unsigned long group = (unsigned long)v[0] << 18 | (unsigned long)v[1] << 12 |
				      (unsigned long)v[2] << 6 | (unsigned long)v[3];

		out[o++] = (unsigned char)(group >> 16);
		if (bytes > 1)
			out[o++] = (unsigned char)(group >> 8);
		if (bytes > 2)
			out[o++] = (unsigned char)group;
	}
	if (o + 1 > out_size)
		return -1;
	out[o] = '\0';
	return (int)o;
}
