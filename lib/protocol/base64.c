/*
 * Strict base64 (include/postern/sasl.h). Strict because a lenient decoder
 * only hides broken clients and gives two spellings to one secret.
 */
#include <postern/sasl.h>

static const char base64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int base64_value(unsigned char c)
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

/* Decode one group of four characters; the number of bytes, or -1. */
static int decode_quad(const char *in, bool last, unsigned char out[3])
{
	int v[4];
	int pad = 0;

	for (int j = 0; j < 4; j++) {
		if (in[j] == '=' && last && j >= 2) {
			v[j] = 0;
			pad++;
			continue;
		}
		if (pad > 0 || (v[j] = base64_value((unsigned char)in[j])) < 0)
			return -1; /* data after padding, or not base64 */
	}
	/* The bits padding drops must be zero: one spelling per value. */
	if ((pad == 2 && (v[1] & 0x0f) != 0) || (pad == 1 && (v[2] & 0x03) != 0))
		return -1;
	unsigned long group = ((unsigned long)v[0] << 18) | ((unsigned long)v[1] << 12) |
			      ((unsigned long)v[2] << 6) | (unsigned long)v[3];
	out[0] = (unsigned char)(group >> 16);
	out[1] = (unsigned char)(group >> 8);
	out[2] = (unsigned char)group;
	return 3 - pad;
}

long postern_base64_decode(const char *in, size_t len, unsigned char *out, size_t out_size)
{
	size_t out_len = 0;

	if (len % 4 != 0)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		unsigned char bytes[3];
		int n = decode_quad(in + i, i + 4 == len, bytes);

		if (n < 0 || out_len + (size_t)n > out_size)
			return -1;
		for (int j = 0; j < n; j++)
			out[out_len++] = bytes[j];
	}
	return (long)out_len;
}

long postern_base64_encode(const void *in, size_t len, char *out, size_t out_size)
{
	const unsigned char *src = in;
	size_t need = 4 * ((len + 2) / 3) + 1, o = 0;

	if (out_size < need)
		return -1;
	for (size_t i = 0; i < len; i += 3) {
		unsigned long group = (unsigned long)src[i] << 16;

		if (i + 1 < len)
			group |= (unsigned long)src[i + 1] << 8;
		if (i + 2 < len)
			group |= src[i + 2];
		out[o++] = base64_alphabet[(group >> 18) & 63];
		out[o++] = base64_alphabet[(group >> 12) & 63];
		out[o++] = i + 1 < len ? base64_alphabet[(group >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? base64_alphabet[group & 63] : '=';
	}
	out[o] = '\0';
	return (long)o;
}
