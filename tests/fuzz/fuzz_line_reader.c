/*
 * libFuzzer target for the connection line reader (core/line_reader.c), the
 * first code every byte a client sends goes through.
 *
 * Input layout: byte 0 picks max_line (1..64), byte 1 seeds the chunking,
 * byte 2 adds room to the buffer limit; the rest is the byte stream. The
 * stream is fed in pseudo-random chunks, and what comes out (lines with
 * their flags, TOO_LONG reports) must equal what a naive whole-stream
 * reference splitter says: the result may never depend on how the network
 * cut the stream. Any difference, an unbounded buffer or a stall aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fuzz_check.h"
#include "line_reader.h"

/* The reference: the next LF-terminated segment of the whole stream. */
struct reference {
	const uint8_t *data;
	size_t size, pos;
	size_t max_line;
};

/* Compare one output of the reader with the next one of the reference. */
static void check_output(struct reference *ref, enum postern_read_status status,
			 const struct postern_line *line)
{
	const uint8_t *start = ref->data + ref->pos;
	const uint8_t *lf = memchr(start, '\n', ref->size - ref->pos);

	FUZZ_CHECK(lf != NULL);

	size_t len = (size_t)(lf - start);
	bool crlf = len > 0 && start[len - 1] == '\r';

	if (crlf)
		len--;
	ref->pos += (size_t)(lf - start) + 1;
	if (len > ref->max_line) {
		FUZZ_CHECK(status == POSTERN_READ_TOO_LONG);
		return;
	}
	FUZZ_CHECK(status == POSTERN_READ_LINE);
	FUZZ_CHECK(line->len == len);
	FUZZ_CHECK(memcmp(line->data, start, len) == 0);
	FUZZ_CHECK(line->data[len] == '\0');

	unsigned flags = crlf ? POSTERN_LINE_CRLF : POSTERN_LINE_BARE_LF;

	if (memchr(start, '\r', len) != NULL)
		flags |= POSTERN_LINE_HAS_CR;
	if (memchr(start, '\0', len) != NULL)
		flags |= POSTERN_LINE_HAS_NUL;
	FUZZ_CHECK(line->flags == flags);
}

/* Whether a complete line is left in the reference. */
static bool reference_has_line(const struct reference *ref)
{
	return memchr(ref->data + ref->pos, '\n', ref->size - ref->pos) != NULL;
}

static size_t next_chunk(uint32_t *state)
{
	/* xorshift32: any sequence will do, it only has to be repeatable. */
	*state ^= *state << 13;
	*state ^= *state >> 17;
	*state ^= *state << 5;
	/* Mostly small reads, sometimes big ones. */
	return (*state % 8 == 0) ? 1 + *state % 4096 : 1 + *state % 16;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct line_reader reader;
	struct postern_line line;
	struct reference ref;

	if (size < 3)
		return 0;

	size_t max_line = 1 + data[0] % 64;
	uint32_t state = 0x9e3779b9u ^ data[1];
	size_t limit = max_line + 2 + data[2] % 32;

	ref = (struct reference){ .data = data + 3, .size = size - 3, .max_line = max_line };
	line_reader_init(&reader, max_line, limit);

	size_t fed = 0, stalls = 0;

	while (fed < ref.size) {
		size_t chunk = next_chunk(&state);

		if (chunk > ref.size - fed)
			chunk = ref.size - fed;

		size_t taken = line_reader_append(&reader, ref.data + fed, chunk);

		fed += taken;
		FUZZ_CHECK(line_reader_len(&reader) <= reader.limit);
		FUZZ_CHECK(reader.size <= reader.limit);

		enum postern_read_status status;
		unsigned outputs = 0;

		while ((status = line_reader_next(&reader, &line)) != POSTERN_READ_NONE) {
			check_output(&ref, status, &line);
			outputs++;
		}
		/* A full buffer must always make room by itself (lines out or
		 * an overlong line dropped): never stall. */
		stalls = (taken == 0 && outputs == 0) ? stalls + 1 : 0;
		FUZZ_CHECK(stalls < 2);
		if (state % 3 == 0)
			line_reader_trim(&reader);
	}
	FUZZ_CHECK(!reference_has_line(&ref));

	/* The rest as bytes: at most one unterminated line's worth. */
	size_t rest;

	(void)line_reader_data(&reader, &rest);
	FUZZ_CHECK(rest <= max_line + 1);
	line_reader_consume(&reader, rest);
	line_reader_trim(&reader);
	FUZZ_CHECK(reader.buf == NULL);
	line_reader_deinit(&reader);
	return 0;
}
