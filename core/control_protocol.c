/*
 * Encoding and decoding of control requests and status lines; the format is
 * described in control_protocol.h. Used by the daemon and by posternctl, so
 * it only builds strings: no I/O here.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <postern/str.h>
#include "core.h"
#include "control_protocol.h"

static const char hex_upper[] = "0123456789ABCDEF";

static bool arg_byte_needs_escape(unsigned char c)
{
	/* Below 0x20 covers NUL, CR and LF. */
	return c < 0x20 || c == ' ' || c == '%';
}

void control_arg_encode(struct postern_str *out, const void *arg, size_t len)
{
	const unsigned char *p = arg;
	size_t start = 0;

	for (size_t i = 0; i < len; i++) {
		if (!arg_byte_needs_escape(p[i]))
			continue;
		/* Copy the plain run before the escape in one go. */
		postern_str_append(out, p + start, i - start);
		char esc[3] = { '%', hex_upper[p[i] >> 4], hex_upper[p[i] & 0x0f] };
		postern_str_append(out, esc, sizeof(esc));
		start = i + 1;
	}
	postern_str_append(out, p + start, len - start);
}

void control_request_encode(struct postern_str *out, int argc, const char *const *argv)
{
	for (int i = 0; i < argc; i++) {
		if (i > 0)
			postern_str_append(out, " ", 1);
		control_arg_encode(out, argv[i], strlen(argv[i]));
	}
	postern_str_append(out, "\n", 1);
}

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode one argument of `len` bytes into `dest` (room for len + 1);
 * returns the decoded length, or -1. */
static ssize_t arg_decode(const unsigned char *src, size_t len, char *dest,
			  const char **error_r)
{
	size_t out = 0;

	for (size_t i = 0; i < len; i++) {
		if (src[i] < 0x20) {
			*error_r = "malformed request: raw control byte (send it as %XX)";
			return -1;
		}
		if (src[i] != '%') {
			dest[out++] = (char)src[i];
			continue;
		}
		/* Both hex digits must lie inside this argument. */
		int hi = i + 2 < len ? hex_value(src[i + 1]) : -1;
		int lo = hi >= 0 ? hex_value(src[i + 2]) : -1;
		if (hi < 0 || lo < 0) {
			*error_r = "malformed request: '%' not followed by two hex digits";
			return -1;
		}
		dest[out++] = (char)(hi << 4 | lo);
		i += 2;
	}
	dest[out] = '\0';
	return (ssize_t)out;
}

int control_request_decode(const char *line, size_t len, struct control_args *args_r,
			   const char **error_r)
{
	memset(args_r, 0, sizeof(*args_r));
	if (len > CONTROL_MAX_REQUEST) {
		*error_r = "request too long";
		return -1;
	}
	if (len == 0) {
		*error_r = "empty request";
		return -1;
	}

	/* Single spaces separate arguments: n spaces make n + 1 arguments. */
	size_t count = 1;
	for (size_t i = 0; i < len; i++)
		count += line[i] == ' ';

	char **argv = xcalloc(count + 1, sizeof(*argv));
	size_t *lens = xcalloc(count + 1, sizeof(*lens));
	const unsigned char *p = (const unsigned char *)line;
	size_t start = 0;
	int argc = 0;
	bool json = false;

	for (size_t i = 0; i <= len; i++) {
		if (i < len && line[i] != ' ')
			continue;
		size_t arg_len = i - start;
		char *arg = xmalloc(arg_len + 1);
		ssize_t decoded = arg_decode(p + start, arg_len, arg, error_r);
		start = i + 1;
		if (decoded < 0) {
			free(arg);
			struct control_args partial = { .argc = argc, .argv = argv, .lens = lens };
			control_args_free(&partial);
			return -1;
		}
		if ((size_t)decoded == strlen(CONTROL_JSON_ARG) &&
		    memcmp(arg, CONTROL_JSON_ARG, (size_t)decoded) == 0) {
			json = true;
			free(arg);
			continue;
		}
		argv[argc] = arg;
		lens[argc] = (size_t)decoded;
		argc++;
	}
	assert((size_t)argc <= count);
	args_r->argc = argc;
	args_r->argv = argv;
	args_r->lens = lens;
	args_r->json = json;
	return 0;
}

void control_args_free(struct control_args *args)
{
	if (args->argv != NULL) {
		for (int i = 0; i < args->argc; i++)
			free(args->argv[i]);
	}
	free(args->argv);
	free(args->lens);
	memset(args, 0, sizeof(*args));
}

void control_status_encode(struct postern_str *out, const char *error)
{
	if (error == NULL) {
		postern_str_append(out, "OK\n", 3);
		return;
	}

	size_t len = strlen(error);
	if (len > CONTROL_MAX_MESSAGE)
		len = CONTROL_MAX_MESSAGE;
	/* Cutting may split a UTF-8 sequence; the client only prints it. */
	char msg[CONTROL_MAX_MESSAGE];
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)error[i];
		if (c == '\n' || c == '\r' || c == '\t')
			c = ' ';
		else if (c < 0x20 || c == 0x7f)
			c = '?';
		msg[i] = (char)c;
	}
	postern_str_append(out, "ERR ", 4);
	postern_str_append(out, msg, len);
	postern_str_append(out, "\n", 1);
}

enum control_status control_status_decode(const char *line, size_t len,
					  const char **message_r, size_t *message_len_r)
{
	*message_r = NULL;
	*message_len_r = 0;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len == 2 && memcmp(line, "OK", 2) == 0)
		return CONTROL_STATUS_OK;
	if (len >= 4 && memcmp(line, "ERR ", 4) == 0) {
		*message_r = line + 4;
		*message_len_r = len - 4;
		return CONTROL_STATUS_ERR;
	}
	if (len == 3 && memcmp(line, "ERR", 3) == 0) {
		*message_r = line + 3;
		return CONTROL_STATUS_ERR;
	}
	return CONTROL_STATUS_INVALID;
}
