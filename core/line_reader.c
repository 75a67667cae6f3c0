/*
 * The input buffer and line splitter of a connection (see line_reader.h).
 * Pure memory work: no sockets, no loop, so that it can be fuzzed alone.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include "core.h"
#include "line_reader.h"

static size_t reader_min_limit(size_t max_line)
{
	/* The longest legal line plus its CR LF must fit. */
	return max_line + 2;
}

void line_reader_init(struct line_reader *reader, size_t max_line, size_t limit)
{
	memset(reader, 0, sizeof(*reader));
	line_reader_set_limits(reader, max_line, limit);
}

void line_reader_deinit(struct line_reader *reader)
{
	free(reader->buf);
	memset(reader, 0, sizeof(*reader));
}

void line_reader_set_limits(struct line_reader *reader, size_t max_line, size_t limit)
{
	assert(max_line > 0 && max_line < SIZE_MAX / 4);
	if (limit < reader_min_limit(max_line))
		limit = reader_min_limit(max_line);
	if (limit < reader->end - reader->start)
		limit = reader->end - reader->start;
	reader->max_line = max_line;
	reader->limit = limit;
}

size_t line_reader_len(const struct line_reader *reader)
{
	return reader->end - reader->start;
}

bool line_reader_full(const struct line_reader *reader)
{
	return line_reader_len(reader) >= reader->limit;
}

/* Everything is read: rewind to the start of the buffer for free. */
static void reader_rewind_if_empty(struct line_reader *reader)
{
	if (reader->start == reader->end && !reader->held) {
		reader->start = reader->end = 0;
		reader->scanned = 0;
	}
}

void *line_reader_space(struct line_reader *reader, size_t *avail_r)
{
	size_t buffered = line_reader_len(reader);

	*avail_r = 0;
	if (buffered >= reader->limit)
		return NULL;
	if (reader->buf == NULL) {
		size_t initial = reader->next_size > LINE_READER_INITIAL_SIZE ?
					 reader->next_size : LINE_READER_INITIAL_SIZE;

		reader->size = reader->limit < initial ? reader->limit : initial;
		reader->buf = xmalloc(reader->size);
		reader->start = reader->end = 0;
	}
	if (!reader->held && reader->start > 0 &&
	    (reader->end == reader->size || reader->size - reader->end < reader->size / 4)) {
		/* Little room at the tail: move the unread part to the front. */
		memmove(reader->buf, reader->buf + reader->start, buffered);
		reader->start = 0;
		reader->end = buffered;
	}
	if (!reader->held && reader->end == reader->size && reader->size < reader->limit) {
		size_t size = reader->size * 2;

		if (size > reader->limit)
			size = reader->limit;
		reader->buf = xrealloc(reader->buf, size);
		reader->size = size;
	}

	size_t avail = reader->size - reader->end;

	if (avail > reader->limit - buffered)
		avail = reader->limit - buffered;
	if (avail == 0)
		return NULL;
	*avail_r = avail;
	return reader->buf + reader->end;
}

void line_reader_commit(struct line_reader *reader, size_t len)
{
	assert(len <= reader->size - reader->end);
	reader->end += len;
}

size_t line_reader_append(struct line_reader *reader, const void *data, size_t len)
{
	size_t taken = 0;

	while (taken < len) {
		size_t avail;
		char *space = line_reader_space(reader, &avail);

		if (space == NULL)
			break;
		if (avail > len - taken)
			avail = len - taken;
		memcpy(space, (const char *)data + taken, avail);
		line_reader_commit(reader, avail);
		taken += avail;
	}
	return taken;
}

/* Drop everything buffered, in the middle of an overlong line. */
static void reader_drop_all(struct line_reader *reader)
{
	reader->start = reader->end;
	reader->scanned = 0;
	reader_rewind_if_empty(reader);
}

static unsigned line_flags(const char *data, size_t len, bool crlf)
{
	unsigned flags = crlf ? POSTERN_LINE_CRLF : POSTERN_LINE_BARE_LF;

	if (memchr(data, '\r', len) != NULL)
		flags |= POSTERN_LINE_HAS_CR;
	if (memchr(data, '\0', len) != NULL)
		flags |= POSTERN_LINE_HAS_NUL;
	return flags;
}

enum postern_read_status line_reader_next(struct line_reader *reader,
					  struct postern_line *line_r)
{
	reader->held = false;
	reader_rewind_if_empty(reader);

	size_t avail = line_reader_len(reader);

	if (avail == 0)
		return POSTERN_READ_NONE;

	char *start = reader->buf + reader->start;
	char *lf = memchr(start + reader->scanned, '\n', avail - reader->scanned);

	if (lf == NULL) {
		reader->scanned = avail;
		/* Even a CR LF arriving next would leave more than max_line
		 * bytes: the line is too long, and nothing of it is kept. */
		if (reader->discarding || avail >= reader_min_limit(reader->max_line)) {
			reader->discarding = true;
			reader_drop_all(reader);
		}
		return POSTERN_READ_NONE;
	}

	size_t len = (size_t)(lf - start);

	reader->start += len + 1;
	reader->scanned = 0;
	if (reader->discarding) {
		reader->discarding = false;
		reader_rewind_if_empty(reader);
		return POSTERN_READ_TOO_LONG;
	}

	bool crlf = len > 0 && start[len - 1] == '\r';

	if (crlf)
		len--;
	if (len > reader->max_line) {
		reader_rewind_if_empty(reader);
		return POSTERN_READ_TOO_LONG;
	}
	/* The line end is consumed: its first byte becomes the terminator. */
	start[len] = '\0';
	line_r->data = start;
	line_r->len = len;
	line_r->flags = line_flags(start, len, crlf);
	reader->held = true;
	return POSTERN_READ_LINE;
}

const void *line_reader_data(struct line_reader *reader, size_t *len_r)
{
	*len_r = line_reader_len(reader);
	if (*len_r == 0)
		return "";
	reader->held = true;
	return reader->buf + reader->start;
}

void line_reader_consume(struct line_reader *reader, size_t len)
{
	assert(len <= line_reader_len(reader));
	reader->held = false;
	reader->start += len;
	reader->scanned = reader->scanned > len ? reader->scanned - len : 0;
	reader_rewind_if_empty(reader);
}

/* The line returned last stays valid (held) until the next read: a module
 * may still be looking at the command that made it discard the rest. */
void line_reader_clear(struct line_reader *reader)
{
	reader->discarding = false;
	reader_drop_all(reader);
}

void line_reader_trim(struct line_reader *reader)
{
	if (reader->buf == NULL || reader->held || reader->start != reader->end)
		return;
	free(reader->buf);
	reader->buf = NULL;
	reader->next_size = reader->size;
	reader->size = reader->start = reader->end = reader->scanned = 0;
}
