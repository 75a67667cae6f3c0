/*
 * The outbound client's wire format: parsing the replies of a remote SMTP
 * server (multi-line, EHLO keywords, enhanced status codes) and
 * dot-stuffing the message on its way out.
 *
 * A remote server is not trusted: a reply line that is not "NNN" followed
 * by SP, "-" or the line end, a code that changes within a multi-line
 * reply, a reply of more than SMTP_REPLY_MAX_LINES lines, or a line the
 * connection reported as too long makes the reply an error, which the
 * client turns into a failed attempt (a 4xx-like result), never a crash.
 * Reply text kept for logs and DSNs is cut at SMTP_REPLY_TEXT_MAX bytes and
 * has control bytes replaced.
 *
 * Pure code (no core): driven by the client, the unit tests and the fuzzer.
 */
#ifndef SMTP_WIRE_H
#define SMTP_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMTP_REPLY_MAX_LINES 100
#define SMTP_REPLY_TEXT_MAX 512

/* EHLO keywords the client uses. */
enum smtp_ext {
	SMTP_EXT_PIPELINING = 1 << 0,
	SMTP_EXT_SIZE = 1 << 1,
	SMTP_EXT_8BITMIME = 1 << 2,
	SMTP_EXT_STARTTLS = 1 << 3,
	SMTP_EXT_SMTPUTF8 = 1 << 4,
	SMTP_EXT_DSN = 1 << 5,
	SMTP_EXT_ENHANCEDSTATUSCODES = 1 << 6,
	SMTP_EXT_CHUNKING = 1 << 7,
};

struct smtp_reply {
	bool ehlo;              /* parse EHLO keywords from lines 2..n */
	unsigned code;          /* set once the reply is complete */
	unsigned lines;
	char enhanced[16];      /* "4.2.1" or "" */
	char text[SMTP_REPLY_TEXT_MAX]; /* "250-a / 250 b" style: the lines' text joined by "; " */
	size_t text_len;
	unsigned extensions;    /* enum smtp_ext bits (EHLO replies) */
	uint64_t size_limit;    /* EHLO SIZE value, 0 if none given */
};

enum smtp_reply_status {
	SMTP_REPLY_MORE = 0,    /* a continuation line: feed the next one */
	SMTP_REPLY_DONE,        /* complete: code, text, enhanced are set */
	SMTP_REPLY_ERROR,       /* malformed: *error_r says how */
};

/* Begin a reply. `ehlo`: collect EHLO keywords. */
void smtp_reply_init(struct smtp_reply *reply, bool ehlo);
/* Feed one line, without its line end. `too_long`: the connection dropped
 * an overlong line (line and len are then ignored). */
enum smtp_reply_status smtp_reply_feed(struct smtp_reply *reply, const char *line, size_t len,
				       bool too_long, const char **error_r);

/*
 * Dot-stuffing (RFC 5321 4.5.2) over a stream cut anywhere. The queued
 * message has CR LF line ends; any bare CR or bare LF that got into it
 * anyway is sent as CR LF, so the remote side never sees a line end that
 * some implementation might take for the end of data.
 */
struct smtp_dotstuff {
	bool line_start;        /* the next byte begins a line */
	bool pending_cr;        /* a CR was the last byte seen */
};

void smtp_dotstuff_init(struct smtp_dotstuff *stuff);
/* Stuff `len` bytes into `out`, which must hold 2 * len + 2 bytes.
 * Returns the bytes written. */
size_t smtp_dotstuff(struct smtp_dotstuff *stuff, const char *in, size_t len, char *out);
/* The end: a CR LF if the message did not end with one, then ".\r\n".
 * `out` must hold 8 bytes. Returns the bytes written. */
size_t smtp_dotstuff_end(struct smtp_dotstuff *stuff, char *out);

#endif
