/*
 * The message as handed to the queue (see message.h). While the client's
 * header section lasts, each line is held (up to SMTP_MESSAGE_HOLD_MAX
 * bytes) until its end, so that it can be classified as a header field, a
 * continuation, the empty line that ends the section, or a body line that
 * came without one; missing Date and Message-ID headers are inserted
 * before whichever ends the section.
 */
#include <string.h>
#include <strings.h>
#include "message.h"

void smtp_message_init(struct smtp_message *message, smtp_message_write_fn *write,
		       void *write_ctx)
{
	memset(message, 0, offsetof(struct smtp_message, hold));
	message->write = write;
	message->write_ctx = write_ctx;
	message->in_headers = true;
}

bool smtp_message_failed(const struct smtp_message *message)
{
	return message->write_failed || message->too_big || message->too_many_hops;
}

static void flush(struct smtp_message *message)
{
	if (message->out_len == 0)
		return;
	if (!smtp_message_failed(message) &&
	    message->write(message->write_ctx, message->out, message->out_len,
			   &message->write_error) < 0)
		message->write_failed = true;
	message->out_len = 0;
}

static void put(struct smtp_message *message, const char *data, size_t len)
{
	while (len > 0 && !smtp_message_failed(message)) {
		size_t room = sizeof(message->out) - message->out_len;
		size_t n = len < room ? len : room;

		memcpy(message->out + message->out_len, data, n);
		message->out_len += n;
		data += n;
		len -= n;
		if (message->out_len == sizeof(message->out))
			flush(message);
	}
}

void smtp_message_prepend(struct smtp_message *message, const char *data, size_t len)
{
	put(message, data, len);
}

static void add_missing_headers(struct smtp_message *message)
{
	if (message->add_date != NULL && !message->seen_date) {
		put(message, message->add_date, strlen(message->add_date));
		put(message, "\r\n", 2);
		message->added_date = true;
	}
	if (message->add_message_id != NULL && !message->seen_message_id) {
		put(message, message->add_message_id, strlen(message->add_message_id));
		put(message, "\r\n", 2);
		message->added_message_id = true;
	}
}

/* RFC 5322 field name: printable ASCII but ':', then ':'. Returns the
 * name's length, or 0 when the line is not a header field. */
static size_t field_name_len(const char *line, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c == ':')
			return i;
		if (c < 33 || c > 126)
			return 0;
	}
	return 0;
}

static bool name_is(const char *name, size_t len, const char *want)
{
	return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

static void note_field(struct smtp_message *message, const char *name, size_t len)
{
	if (name_is(name, len, "Received")) {
		message->received++;
		if (message->max_hops != 0 && message->received > message->max_hops)
			message->too_many_hops = true;
	} else if (name_is(name, len, "Date")) {
		message->seen_date = true;
	} else if (name_is(name, len, "Message-ID")) {
		message->seen_message_id = true;
	}
}

/*
 * Classify the held header line (complete, or its first bytes when it is
 * being passed on) and act on it. Returns false when it ended the header
 * section, having put out the missing headers and an empty line.
 */
static bool header_line(struct smtp_message *message)
{
	const char *line = message->hold;
	size_t len = message->hold_len;

	if (len > 0 && (line[0] == ' ' || line[0] == '\t'))
		return true; /* a continuation */
	size_t name_len = field_name_len(line, len);

	if (name_len > 0) {
		note_field(message, line, name_len);
		return true;
	}
	/* Body text without the empty line before it: end the section
	 * here, as RFC 5322 would have it. */
	add_missing_headers(message);
	put(message, "\r\n", 2);
	message->in_headers = false;
	return false;
}

static void count_size(struct smtp_message *message, size_t len)
{
	message->size += len;
	if (message->max_size != 0 && message->size > message->max_size)
		message->too_big = true;
}

static void message_text(void *ctx, const char *data, size_t len)
{
	struct smtp_message *message = ctx;

	count_size(message, len);
	if (message->in_headers && !message->hold_overflow) {
		size_t room = sizeof(message->hold) - message->hold_len;

		if (len <= room) {
			memcpy(message->hold + message->hold_len, data, len);
			message->hold_len += len;
			return;
		}
		/* Too long to hold: classify by its start and pass it on. */
		memcpy(message->hold + message->hold_len, data, room);
		message->hold_len += room;
		data += room;
		len -= room;
		message->hold_overflow = true;
		header_line(message);
		put(message, message->hold, message->hold_len);
		message->hold_len = 0;
	}
	put(message, data, len);
}

static void message_eol(void *ctx)
{
	struct smtp_message *message = ctx;

	count_size(message, 2);
	if (message->in_headers) {
		if (message->hold_overflow) {
			message->hold_overflow = false;
		} else if (message->hold_len == 0) {
			add_missing_headers(message);
			message->in_headers = false;
		} else {
			header_line(message);
			put(message, message->hold, message->hold_len);
		}
		message->hold_len = 0;
	}
	put(message, "\r\n", 2);
}

void smtp_message_sink(struct smtp_message *message, struct smtp_data_sink *sink_r)
{
	sink_r->text = message_text;
	sink_r->eol = message_eol;
	sink_r->ctx = message;
}

int smtp_message_finish(struct smtp_message *message)
{
	if (message->in_headers) {
		/* Only headers, no empty line and no body. */
		if (message->hold_len > 0) {
			header_line(message);
			put(message, message->hold, message->hold_len);
			put(message, "\r\n", 2);
			message->hold_len = 0;
		}
		if (message->in_headers)
			add_missing_headers(message);
		message->in_headers = false;
	}
	flush(message);
	return message->write_failed ? -1 : 0;
}
