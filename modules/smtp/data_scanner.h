/*
 * The DATA and BDAT byte scanner: finds the end of a DATA message, removes
 * dot-stuffing and checks every text line, on a byte stream cut anywhere.
 *
 * Only CR LF "." CR LF ends DATA (the CR LF before the dot being the end of
 * the previous line, or of the DATA command itself at the start). A bare LF
 * or a bare CR never starts a line for this purpose, so none of the
 * smuggling variants ("\n.\n", "\n.\r\n", "\r.\r\n", "\r\n.\n",
 * "\r\n.\r", ...) ends the message; they are reported as bare CR / bare LF
 * and the session rejects the whole message after the real end marker.
 * That is the policy: reject, never normalise, so nothing stray is passed
 * on and no second message can be smuggled through us.
 *
 * Output is the message as it will be queued: for each line its text
 * (dot-stuffing removed) through `text`, and `eol` at its CR LF. Bytes of
 * a line that is malformed (bare CR or LF) may reach `text`; the session
 * throws the message away in that case. The scanner keeps no buffer: it
 * holds at most a pending CR and whether a line began with a dot.
 *
 * Pure code (no core), driven by the session and by the fuzzer.
 */
#ifndef SMTP_DATA_SCANNER_H
#define SMTP_DATA_SCANNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum smtp_scan_state {
	SMTP_SCAN_LINE_START = 0, /* after CR LF (or at the start) */
	SMTP_SCAN_DOT,            /* "." at the start of a line */
	SMTP_SCAN_DOT_CR,         /* "." CR at the start of a line */
	SMTP_SCAN_TEXT,           /* inside a line */
	SMTP_SCAN_CR,             /* a CR inside a line, LF not yet seen */
	SMTP_SCAN_DONE,           /* the end marker was seen (DATA only) */
};

struct smtp_data_sink {
	/* Text of the current line, in pieces, never holding CR LF. */
	void (*text)(void *ctx, const char *data, size_t len);
	/* The current line ended with CR LF. */
	void (*eol)(void *ctx);
	void *ctx;
};

struct smtp_data_scanner {
	enum smtp_scan_state state;
	bool dot_mode;          /* DATA: end marker and dot-stuffing; BDAT: neither */
	uint64_t max_line;      /* longest line in bytes without CR LF; 0: none */
	uint64_t line_len;      /* bytes of the current line as sent (stuffing counted) */
	/* Sticky findings, for the reply at the end. */
	bool bare_cr, bare_lf, nul, long_line;
	uint64_t lines;
};

void smtp_data_scanner_init(struct smtp_data_scanner *scanner, bool dot_mode,
			    uint64_t max_line);
/*
 * Scan `len` bytes. Returns how many were taken: all of them, or in DATA
 * mode the bytes up to and including the end marker (the rest belongs to
 * the next command, pipelined after the final dot).
 */
size_t smtp_data_scan(struct smtp_data_scanner *scanner, const void *data, size_t len,
		      const struct smtp_data_sink *sink);
/* DATA: the end marker was seen. */
bool smtp_data_scanner_done(const struct smtp_data_scanner *scanner);
/*
 * BDAT LAST: close the message. A last line without CR LF gets one (as
 * Postfix does); a trailing bare CR is a bare CR. Returns whether the
 * message is clean (no bare CR/LF, NUL or overlong line).
 */
bool smtp_data_scanner_finish(struct smtp_data_scanner *scanner,
			      const struct smtp_data_sink *sink);
/* No bare CR/LF, NUL or overlong line so far. */
bool smtp_data_scanner_clean(const struct smtp_data_scanner *scanner);

#endif
