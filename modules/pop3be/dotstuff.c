/*
 * The POP3 multi-line form of a message file (RFC 1939 section 3): every
 * line ends in CRLF (a bare LF on disk gets its CR), a line that starts
 * with '.' gets one more, and the response ends with ".\r\n". TOP stops
 * after the header, the empty line and N body lines.
 *
 * The octet counts LIST and STAT announce are the mailstore's CRLF size:
 * the file size plus one for each LF not preceded by CR. This converter
 * adds exactly those CRs and nothing else (lone CRs pass unchanged), so
 * what RETR sends, without the stuffed dots and the final ".\r\n", has
 * exactly that size (unit-tested). Input arrives in chunks of any size:
 * the state carries across them. Pure.
 */
#include <assert.h>
#include <string.h>

#include "pop3be.h"

void pop3_stuffer_init(struct pop3_stuffer *st, uint64_t body_lines)
{
	memset(st, 0, sizeof(*st));
	st->body_lines = body_lines;
	st->at_line_start = true;
}

/* A line feed ends the current line. A line is empty when it held
 * nothing, or only the CR of its CRLF. */
static size_t end_line(struct pop3_stuffer *st, char *out)
{
	size_t n = 0;
	bool empty = st->line_len == 0 || (st->line_len == 1 && st->prev_cr);

	if (!st->prev_cr) {
		out[n++] = '\r';
		st->content_bytes++;
	}
	out[n++] = '\n';
	st->content_bytes++;
	if (st->in_body)
		st->body_lines_sent++;
	else if (empty)
		st->in_body = true; /* the empty line that ends the header */
	st->at_line_start = true;
	st->line_len = 0;
	st->prev_cr = false;
	return n;
}

size_t pop3_stuff(struct pop3_stuffer *st, const char *in, size_t len, char *out)
{
	size_t pos = 0, n = 0;

	while (pos < len && !st->done) {
		if (st->at_line_start) {
			if (st->in_body && st->body_lines_sent >= st->body_lines) {
				st->done = true;
				break;
			}
			if (in[pos] == '.')
				out[n++] = '.'; /* stuffing: not part of the octets */
		}

		const char *lf = memchr(in + pos, '\n', len - pos);
		size_t seg = (lf == NULL ? len : (size_t)(lf - in)) - pos;

		if (seg > 0) {
			memcpy(out + n, in + pos, seg);
			n += seg;
			st->content_bytes += seg;
			st->line_len = st->line_len + seg > 2 ? 2 : st->line_len + (unsigned)seg;
			st->prev_cr = in[pos + seg - 1] == '\r';
			st->at_line_start = false;
			pos += seg;
		}
		if (lf != NULL) {
			n += end_line(st, out + n);
			pos++;
		}
	}
	assert(n <= 2 * len);
	return n;
}

size_t pop3_stuff_finish(struct pop3_stuffer *st, char *out)
{
	size_t n = 0;

	if (!st->at_line_start) {
		/* an unterminated last line: the CRLF we add is framing, not
		 * part of the message's octets */
		if (!st->prev_cr)
			out[n++] = '\r';
		out[n++] = '\n';
	}
	memcpy(out + n, ".\r\n", 3);
	return n + 3;
}
