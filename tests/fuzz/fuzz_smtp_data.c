/*
 * libFuzzer target for the DATA/BDAT scanner and the message builder
 * (modules/smtp/data_scanner.c, message.c): the input is fed in
 * pseudo-random chunks and must give exactly what a whole-stream scan
 * gives (end position, findings, output), so the network's cuts can never
 * change where a message ends. The end position must be right after the
 * first CR LF "." CR LF that starts a line (or the stream's start). A clean
 * message's output holds only CR LF line ends.
 *
 * Byte 0: BDAT mode (bit 0), chunk seed (the rest). Byte 1: max line / 4.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fuzz_check.h"
#include "data_scanner.h"
#include "message.h"

struct out {
	char *buf;
	size_t len, size;
};

static int out_write(void *ctx, const void *data, size_t len, const char **error_r)
{
	struct out *out = ctx;

	FUZZ_CHECK(out->len + len <= out->size);
	memcpy(out->buf + out->len, data, len);
	out->len += len;
	return 0;
}

struct run {
	size_t used;
	bool done, clean, too_big;
	unsigned received;
	struct out out;
};

static void run(const uint8_t *input, size_t len, bool bdat, uint64_t max_line, unsigned seed,
		bool chunked, struct run *r)
{
	struct smtp_message *message = calloc(1, sizeof(*message));
	struct smtp_data_scanner scanner;
	struct smtp_data_sink sink;

	FUZZ_CHECK(message != NULL);
	r->out.size = len * 2 + 256;
	r->out.buf = malloc(r->out.size);
	r->out.len = 0;
	FUZZ_CHECK(r->out.buf != NULL);
	smtp_message_init(message, out_write, &r->out);
	message->max_hops = 50;
	message->max_size = 4096;
	message->add_date = "Date: x";
	message->add_message_id = "Message-ID: <y>";
	smtp_message_sink(message, &sink);
	smtp_data_scanner_init(&scanner, !bdat, max_line);
	r->used = 0;
	while (r->used < len && !smtp_data_scanner_done(&scanner)) {
		size_t n = len - r->used;

		if (chunked) {
			seed = seed * 1103515245u + 12345u;
			n = 1 + (seed >> 16) % 17;
			if (n > len - r->used)
				n = len - r->used;
		}
		size_t got = smtp_data_scan(&scanner, input + r->used, n, &sink);

		FUZZ_CHECK(got <= n);
		r->used += got;
		if (got < n)
			FUZZ_CHECK(smtp_data_scanner_done(&scanner));
	}
	if (bdat)
		smtp_data_scanner_finish(&scanner, &sink);
	r->done = smtp_data_scanner_done(&scanner);
	r->clean = smtp_data_scanner_clean(&scanner);
	smtp_message_finish(message);
	r->too_big = message->too_big;
	r->received = message->received;
	free(message);
}

/* The reference: where does the first CRLF.CRLF at a line start end? */
static size_t reference_end(const uint8_t *p, size_t len)
{
	if (len >= 3 && memcmp(p, ".\r\n", 3) == 0)
		return 3;
	for (size_t i = 0; i + 5 <= len; i++)
		if (memcmp(p + i, "\r\n.\r\n", 5) == 0)
			return i + 5;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run whole, pieces;

	if (size < 2 || size > 65536)
		return 0;
	bool bdat = data[0] & 1;
	unsigned seed = data[0] >> 1;
	uint64_t max_line = (uint64_t)data[1] * 4;
	const uint8_t *input = data + 2;
	size_t len = size - 2;

	run(input, len, bdat, max_line, seed, false, &whole);
	run(input, len, bdat, max_line, seed, true, &pieces);
	FUZZ_CHECK(whole.used == pieces.used);
	FUZZ_CHECK(whole.done == pieces.done);
	FUZZ_CHECK(whole.clean == pieces.clean);
	FUZZ_CHECK(whole.too_big == pieces.too_big);
	FUZZ_CHECK(whole.received == pieces.received);
	if (!whole.too_big) {
		FUZZ_CHECK(whole.out.len == pieces.out.len);
		FUZZ_CHECK(memcmp(whole.out.buf, pieces.out.buf, whole.out.len) == 0);
	}
	if (!bdat) {
		size_t end = reference_end(input, len);

		FUZZ_CHECK(whole.done == (end != 0));
		if (end != 0)
			FUZZ_CHECK(whole.used == end);
	}
	if (whole.clean && !whole.too_big) {
		/* Only CR LF pairs, never a lone CR or LF. */
		for (size_t i = 0; i < whole.out.len; i++) {
			if (whole.out.buf[i] == '\r')
				FUZZ_CHECK(i + 1 < whole.out.len && whole.out.buf[i + 1] == '\n');
			if (whole.out.buf[i] == '\n')
				FUZZ_CHECK(i > 0 && whole.out.buf[i - 1] == '\r');
		}
	}
	free(whole.out.buf);
	free(pieces.out.buf);
	return 0;
}
