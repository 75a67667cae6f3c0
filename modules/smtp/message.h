/*
 * Building the message as it is handed to the queue, from the scanner's
 * lines: our trace header first, the client's header section watched line
 * by line (Received headers counted for the hop limit; Date and Message-ID
 * noted so submission can add the missing ones at the end of the header
 * section), the size limit enforced, and the bytes passed on in large
 * chunks through a write callback.
 *
 * Pure code (no core): the session supplies the write callback and the
 * header texts; the unit tests supply a buffer.
 */
#ifndef SMTP_MESSAGE_H
#define SMTP_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "data_scanner.h"

/* A header line longer than this is passed on without being classified
 * past its first bytes (it is overlong for SMTP anyway). */
#define SMTP_MESSAGE_HOLD_MAX 1024
#define SMTP_MESSAGE_OUT_SIZE 65536

typedef int smtp_message_write_fn(void *ctx, const void *data, size_t len,
				  const char **error_r);

struct smtp_message {
	smtp_message_write_fn *write;
	void *write_ctx;
	uint64_t max_size;       /* client bytes allowed; 0: no limit */
	unsigned max_hops;       /* Received headers allowed; 0: no limit */
	/* Full header lines ("Date: ...", no CR LF) to add when the client's
	 * header section lacks them; NULL: add nothing. */
	const char *add_date, *add_message_id;

	/* What was found. */
	uint64_t size;           /* client bytes, as queued (CR LF line ends) */
	unsigned received;       /* Received header fields of the client */
	bool seen_date, seen_message_id;
	bool too_big, too_many_hops;
	bool write_failed;       /* the write callback failed: error in write_error */
	const char *write_error;
	bool added_date, added_message_id;

	/* Internal. */
	bool in_headers;
	bool hold_overflow;      /* the current header line is being passed on */
	bool line_is_header;     /* classification of a passed-on line */
	size_t hold_len;
	char hold[SMTP_MESSAGE_HOLD_MAX];
	size_t out_len;
	char out[SMTP_MESSAGE_OUT_SIZE];
};

/* Set up; `message` is large (the output buffer): allocate it. */
void smtp_message_init(struct smtp_message *message, smtp_message_write_fn *write,
		       void *write_ctx);
/* Put `len` bytes out ahead of the client's message (our Received). */
void smtp_message_prepend(struct smtp_message *message, const char *data, size_t len);
/* The sink to give the scanner. */
void smtp_message_sink(struct smtp_message *message, struct smtp_data_sink *sink_r);
/* The client's message is complete: add missing headers if the header
 * section never ended, flush. Returns 0, or -1 when writing failed. */
int smtp_message_finish(struct smtp_message *message);
/* Nothing will be written any more (the message is being thrown away). */
bool smtp_message_failed(const struct smtp_message *message);

#endif
