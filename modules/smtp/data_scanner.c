/*
 * The DATA/BDAT scanner (see data_scanner.h for the policy). A byte-at-a-
 * time state machine, but runs of ordinary text go to the sink in one call
 * so that a large message costs a memchr-like loop, not a call per byte.
 */
#include <assert.h>
#include <string.h>
#include "data_scanner.h"

void smtp_data_scanner_init(struct smtp_data_scanner *scanner, bool dot_mode,
			    uint64_t max_line)
{
	memset(scanner, 0, sizeof(*scanner));
	scanner->state = SMTP_SCAN_LINE_START;
	scanner->dot_mode = dot_mode;
	scanner->max_line = max_line;
}

bool smtp_data_scanner_done(const struct smtp_data_scanner *scanner)
{
	return scanner->state == SMTP_SCAN_DONE;
}

bool smtp_data_scanner_clean(const struct smtp_data_scanner *scanner)
{
	return !scanner->bare_cr && !scanner->bare_lf && !scanner->nul && !scanner->long_line;
}

static void count(struct smtp_data_scanner *scanner, uint64_t n)
{
	scanner->line_len += n;
	if (scanner->max_line != 0 && scanner->line_len > scanner->max_line)
		scanner->long_line = true;
}

static void emit(const struct smtp_data_sink *sink, const char *data, size_t len)
{
	if (len > 0)
		sink->text(sink->ctx, data, len);
}

static void end_line(struct smtp_data_scanner *scanner, const struct smtp_data_sink *sink)
{
	sink->eol(sink->ctx);
	scanner->line_len = 0;
	scanner->lines++;
	scanner->state = SMTP_SCAN_LINE_START;
}

/* Ordinary text from p: how many bytes before the next CR, LF or NUL. */
static size_t text_run(const unsigned char *p, size_t len)
{
	size_t i = 0;

	while (i < len && p[i] != '\r' && p[i] != '\n' && p[i] != '\0')
		i++;
	return i;
}

size_t smtp_data_scan(struct smtp_data_scanner *scanner, const void *data, size_t len,
		      const struct smtp_data_sink *sink)
{
	const unsigned char *p = data;
	size_t i = 0;

	while (i < len && scanner->state != SMTP_SCAN_DONE) {
		unsigned char c = p[i];

		switch (scanner->state) {
		case SMTP_SCAN_LINE_START:
			if (c == '.' && scanner->dot_mode) {
				count(scanner, 1);
				scanner->state = SMTP_SCAN_DOT;
				i++;
				continue;
			}
			scanner->state = SMTP_SCAN_TEXT;
			continue; /* look at c again as text */
		case SMTP_SCAN_DOT:
			if (c == '\r') {
				scanner->state = SMTP_SCAN_DOT_CR;
				i++;
				continue;
			}
			/* RFC 5321 4.5.2: a leading dot followed by more
			 * text is removed; c is ordinary line content. */
			scanner->state = SMTP_SCAN_TEXT;
			continue;
		case SMTP_SCAN_DOT_CR:
			if (c == '\n') {
				scanner->state = SMTP_SCAN_DONE;
				i++;
				continue;
			}
			/* ".\r" + something: a bare CR inside a line. */
			scanner->bare_cr = true;
			emit(sink, "\r", 1);
			count(scanner, 1);
			scanner->state = SMTP_SCAN_TEXT;
			continue;
		case SMTP_SCAN_CR:
			if (c == '\n') {
				end_line(scanner, sink);
				i++;
				continue;
			}
			scanner->bare_cr = true;
			emit(sink, "\r", 1);
			count(scanner, 1);
			scanner->state = SMTP_SCAN_TEXT;
			continue;
		case SMTP_SCAN_TEXT:
			if (c == '\r') {
				scanner->state = SMTP_SCAN_CR;
				i++;
				continue;
			}
			if (c == '\n') {
				/* A bare LF: not a line end, and above all
				 * not the start of a line that "." could end. */
				scanner->bare_lf = true;
				emit(sink, "\n", 1);
				count(scanner, 1);
				i++;
				continue;
			}
			if (c == '\0')
				scanner->nul = true;
			size_t run = c == '\0' ? 1 : text_run(p + i, len - i);

			emit(sink, (const char *)p + i, run);
			count(scanner, run);
			i += run;
			continue;
		case SMTP_SCAN_DONE:
			break;
		}
	}
	return i;
}

bool smtp_data_scanner_finish(struct smtp_data_scanner *scanner,
			      const struct smtp_data_sink *sink)
{
	assert(!scanner->dot_mode);
	switch (scanner->state) {
	case SMTP_SCAN_LINE_START:
		break;
	case SMTP_SCAN_CR:
		scanner->bare_cr = true;
		end_line(scanner, sink);
		break;
	default:
		end_line(scanner, sink);
		break;
	}
	return smtp_data_scanner_clean(scanner);
}
