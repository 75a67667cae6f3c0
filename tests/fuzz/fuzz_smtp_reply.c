/*
 * libFuzzer target for the outbound client's reply parser and dot-stuffer
 * (modules/smtp/reply.c): the input is split into lines as the connection
 * would (overlong ones reported as such) and fed until a reply completes
 * or fails; the kept text stays bounded and printable. The same bytes are
 * dot-stuffed in two cuts, which must agree, and the result may never hold
 * a line "." or a bare CR or LF.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fuzz_check.h"
#include "wire.h"

#define MAX_LINE 512

static void replies(const uint8_t *data, size_t size)
{
	struct smtp_reply reply;
	const char *error;
	size_t pos = 0;

	smtp_reply_init(&reply, size > 0 && (data[0] & 1));
	while (pos < size) {
		const uint8_t *lf = memchr(data + pos, '\n', size - pos);
		size_t len = lf != NULL ? (size_t)(lf - (data + pos)) : size - pos;
		size_t next = pos + len + (lf != NULL ? 1 : 0);

		if (len > 0 && data[pos + len - 1] == '\r')
			len--;
		enum smtp_reply_status status =
			smtp_reply_feed(&reply, (const char *)data + pos, len, len > MAX_LINE, &error);

		FUZZ_CHECK(reply.text_len < sizeof(reply.text));
		FUZZ_CHECK(strlen(reply.text) == reply.text_len);
		for (size_t i = 0; i < reply.text_len; i++)
			FUZZ_CHECK(reply.text[i] >= 32 && reply.text[i] < 127);
		if (status == SMTP_REPLY_DONE) {
			FUZZ_CHECK(reply.code >= 200 && reply.code <= 599);
			smtp_reply_init(&reply, false);
		} else if (status == SMTP_REPLY_ERROR) {
			FUZZ_CHECK(error != NULL);
			smtp_reply_init(&reply, false);
		}
		pos = next;
	}
}

static size_t stuff(const uint8_t *data, size_t size, size_t cut, char *out)
{
	struct smtp_dotstuff state;
	size_t o;

	smtp_dotstuff_init(&state);
	o = smtp_dotstuff(&state, (const char *)data, cut, out);
	o += smtp_dotstuff(&state, (const char *)data + cut, size - cut, out + o);
	o += smtp_dotstuff_end(&state, out + o);
	return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	replies(data, size);

	char *a = malloc(2 * size + 16), *b = malloc(2 * size + 16);

	FUZZ_CHECK(a != NULL && b != NULL);
	size_t la = stuff(data, size, 0, a);
	size_t lb = stuff(data, size, size / 2, b);

	FUZZ_CHECK(la == lb && memcmp(a, b, la) == 0);
	FUZZ_CHECK(la >= 3 && memcmp(a + la - 3, ".\r\n", 3) == 0);
	/* Line ends are CR LF only; no line but the last is a lone ".". */
	size_t line_start = 0;

	for (size_t i = 0; i < la; i++) {
		if (a[i] == '\r')
			FUZZ_CHECK(i + 1 < la && a[i + 1] == '\n');
		if (a[i] == '\n') {
			FUZZ_CHECK(i > 0 && a[i - 1] == '\r');
			if (i + 1 < la)
				FUZZ_CHECK(!(i - line_start == 2 && a[line_start] == '.'));
			line_start = i + 1;
		}
	}
	free(a);
	free(b);
	return 0;
}
