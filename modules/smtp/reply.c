/*
 * Parsing the replies of a remote SMTP server (see wire.h). One line at a
 * time, so a reply never needs more memory than its bounded text.
 */
#include <string.h>
#include <strings.h>
#include "wire.h"

void smtp_reply_init(struct smtp_reply *reply, bool ehlo)
{
	memset(reply, 0, sizeof(*reply));
	reply->ehlo = ehlo;
}

static void append_text(struct smtp_reply *reply, const char *text, size_t len)
{
	if (reply->text_len > 0 && reply->text_len + 2 < sizeof(reply->text)) {
		memcpy(reply->text + reply->text_len, "; ", 2);
		reply->text_len += 2;
	}
	for (size_t i = 0; i < len && reply->text_len + 1 < sizeof(reply->text); i++) {
		unsigned char c = (unsigned char)text[i];

		/* Into logs, queue records and DSNs: printable only. */
		reply->text[reply->text_len++] = c >= 32 && c < 127 ? (char)c : '?';
	}
	reply->text[reply->text_len] = '\0';
}

/* "4.2.1 " at the start of the first line's text, class matching the code. */
static void parse_enhanced(struct smtp_reply *reply, const char *text, size_t len,
			   unsigned code)
{
	size_t i = 0, dots = 0, digits = 0;

	if (len < 6 || text[0] != (char)('0' + code / 100) || text[1] != '.')
		return;
	for (i = 0; i < len && i < sizeof(reply->enhanced) - 1; i++) {
		char c = text[i];

		if (c == '.') {
			if (digits == 0 || ++dots > 2)
				return;
			digits = 0;
		} else if (c >= '0' && c <= '9') {
			if (++digits > 3)
				return;
		} else {
			break;
		}
	}
	if (dots != 2 || digits == 0 || (i < len && text[i] != ' '))
		return;
	memcpy(reply->enhanced, text, i);
	reply->enhanced[i] = '\0';
}

static bool keyword_is(const char *text, size_t len, const char *keyword, const char **rest_r)
{
	size_t klen = strlen(keyword);

	if (len < klen || strncasecmp(text, keyword, klen) != 0)
		return false;
	if (len > klen && text[klen] != ' ')
		return false;
	*rest_r = text + klen;
	return true;
}

static void parse_ehlo_keyword(struct smtp_reply *reply, const char *text, size_t len)
{
	static const struct {
		const char *keyword;
		unsigned bit;
	} keywords[] = {
		{ "PIPELINING", SMTP_EXT_PIPELINING },
		{ "SIZE", SMTP_EXT_SIZE },
		{ "8BITMIME", SMTP_EXT_8BITMIME },
		{ "STARTTLS", SMTP_EXT_STARTTLS },
		{ "SMTPUTF8", SMTP_EXT_SMTPUTF8 },
		{ "DSN", SMTP_EXT_DSN },
		{ "ENHANCEDSTATUSCODES", SMTP_EXT_ENHANCEDSTATUSCODES },
		{ "CHUNKING", SMTP_EXT_CHUNKING },
	};
	const char *rest, *end = text + len;

	for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++) {
		if (!keyword_is(text, len, keywords[i].keyword, &rest))
			continue;
		reply->extensions |= keywords[i].bit;
		/* "SIZE" may end the line: rest is then at its end, not a byte of it. */
		if (keywords[i].bit == SMTP_EXT_SIZE && rest < end && *rest == ' ') {
			uint64_t size = 0;

			for (rest++; rest < end && *rest >= '0' && *rest <= '9'; rest++) {
				if (size > UINT64_MAX / 10 - 9)
					break;
				size = size * 10 + (uint64_t)(*rest - '0');
			}
			reply->size_limit = size;
		}
		return;
	}
}

enum smtp_reply_status smtp_reply_feed(struct smtp_reply *reply, const char *line, size_t len,
				       bool too_long, const char **error_r)
{
	if (too_long) {
		*error_r = "reply line too long";
		return SMTP_REPLY_ERROR;
	}
	if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
	    line[2] < '0' || line[2] > '9' || (len > 3 && line[3] != ' ' && line[3] != '-')) {
		*error_r = "malformed reply line";
		return SMTP_REPLY_ERROR;
	}
	for (size_t i = 0; i < len; i++) {
		if (line[i] == '\0') {
			*error_r = "NUL in reply";
			return SMTP_REPLY_ERROR;
		}
	}
	unsigned code = (unsigned)((line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0'));

	if (reply->lines > 0 && code != reply->code) {
		*error_r = "reply code changes within a multi-line reply";
		return SMTP_REPLY_ERROR;
	}
	if (++reply->lines > SMTP_REPLY_MAX_LINES) {
		*error_r = "reply has too many lines";
		return SMTP_REPLY_ERROR;
	}
	reply->code = code;
	const char *text = len > 4 ? line + 4 : "";
	size_t text_len = len > 4 ? len - 4 : 0;

	if (reply->lines == 1)
		parse_enhanced(reply, text, text_len, code);
	else if (reply->ehlo)
		parse_ehlo_keyword(reply, text, text_len);
	append_text(reply, text, text_len);
	if (len > 3 && line[3] == '-')
		return SMTP_REPLY_MORE;
	return SMTP_REPLY_DONE;
}

void smtp_dotstuff_init(struct smtp_dotstuff *stuff)
{
	stuff->line_start = true;
	stuff->pending_cr = false;
}

size_t smtp_dotstuff(struct smtp_dotstuff *stuff, const char *in, size_t len, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = in[i];

		if (stuff->pending_cr) {
			stuff->pending_cr = false;
			out[o++] = '\r';
			out[o++] = '\n';
			stuff->line_start = true;
			if (c == '\n')
				continue;
		}
		if (c == '\r') {
			stuff->pending_cr = true;
			continue;
		}
		if (c == '\n') {
			/* A bare LF: sent as a proper line end. */
			out[o++] = '\r';
			out[o++] = '\n';
			stuff->line_start = true;
			continue;
		}
		if (stuff->line_start && c == '.')
			out[o++] = '.';
		stuff->line_start = false;
		out[o++] = c;
	}
	return o;
}

size_t smtp_dotstuff_end(struct smtp_dotstuff *stuff, char *out)
{
	size_t o = 0;

	if (stuff->pending_cr || !stuff->line_start) {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	stuff->pending_cr = false;
	stuff->line_start = true;
	memcpy(out + o, ".\r\n", 3);
	return o + 3;
}
