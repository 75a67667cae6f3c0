/*
 * A connection's input buffer and the line splitter on top of it, kept free
 * of sockets so that the fuzzer drives exactly the code conn.c uses.
 *
 * The buffer holds at most `limit` bytes (at least max_line + 2, so that a
 * longest legal line with its CRLF fits). It is allocated on first use,
 * grows by doubling up to the limit and may be freed again when empty, so
 * an idle connection costs no buffer at all.
 *
 * A line longer than max_line is discarded as it arrives: once max_line + 2
 * bytes without a LF are buffered they are dropped and the reader skips to
 * the next LF, then reports the line once as POSTERN_READ_TOO_LONG. The
 * output (lines and TOO_LONG reports) depends only on the byte stream, never
 * on how it was cut into reads.
 */
#ifndef POSTERN_LINE_READER_H
#define POSTERN_LINE_READER_H

#include <postern/conn.h>

/* First allocation; the buffer doubles from here up to the limit. */
#define LINE_READER_INITIAL_SIZE 2048

struct line_reader {
	char *buf;          /* NULL until data arrives, and again when trimmed */
	size_t size;        /* allocated bytes */
	/* What to allocate when data arrives again after a trim: the size the
	 * last buffer grew to, so a busy relay does not regrow from 2 KiB for
	 * every burst while an idle connection still holds no buffer. */
	size_t next_size;
	size_t start, end;  /* unread input is buf[start, end) */
	size_t limit;       /* most unread bytes buffered */
	size_t max_line;    /* longest line, without its line end */
	size_t scanned;     /* bytes from start known to hold no LF */
	bool discarding;    /* inside an overlong line, skipping to its LF */
	/* A line or the input returned to the caller still points into buf:
	 * do not move or free the buffer until the next call that invalidates
	 * it (next, consume, clear). */
	bool held;
};

/* An empty reader; no allocation happens here. */
void line_reader_init(struct line_reader *reader, size_t max_line, size_t limit);
void line_reader_deinit(struct line_reader *reader);
/* Change the limits; the buffer limit never falls below max_line + 2 nor
 * below what is already buffered. */
void line_reader_set_limits(struct line_reader *reader, size_t max_line, size_t limit);

/* Room to append input at: *avail_r bytes at the returned pointer, or NULL
 * and 0 when the buffer is at its limit (stop reading until the caller
 * takes some input). Follow with line_reader_commit(). */
void *line_reader_space(struct line_reader *reader, size_t *avail_r);
void line_reader_commit(struct line_reader *reader, size_t len);
/* Copy in as much of `data` as fits; returns the bytes taken. */
size_t line_reader_append(struct line_reader *reader, const void *data, size_t len);

/* The next line (see postern_conn_read_line()). */
enum postern_read_status line_reader_next(struct line_reader *reader,
					  struct postern_line *line_r);

/* Unread bytes, as they are. */
const void *line_reader_data(struct line_reader *reader, size_t *len_r);
size_t line_reader_len(const struct line_reader *reader);
bool line_reader_full(const struct line_reader *reader);
void line_reader_consume(struct line_reader *reader, size_t len);
/* Drop every unread byte and any overlong line in progress (STARTTLS); the
 * line returned last stays valid until the next read. */
void line_reader_clear(struct line_reader *reader);
/* Free the buffer if it is empty and nothing points into it. */
void line_reader_trim(struct line_reader *reader);

#endif
