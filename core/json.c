/*
 * A streaming JSON writer (include/postern/json.h). It knows only where
 * commas go; the caller is trusted to nest correctly, which is asserted.
 * String escaping accepts arbitrary bytes: control bytes become \u00XX and
 * invalid UTF-8 becomes U+FFFD, so the output is always valid JSON.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core.h"

#define JSON_MAX_DEPTH 32

struct postern_json {
	struct postern_str *out;
	unsigned depth;
	/* Per level: has a value been written (so the next needs a comma),
	 * and is it an object (whose values follow keys). */
	bool has_value[JSON_MAX_DEPTH + 1];
	bool is_object[JSON_MAX_DEPTH + 1];
	bool after_key;
};

struct postern_json *postern_json_new(struct postern_str *out)
{
	struct postern_json *json = xcalloc(1, sizeof(*json));

	json->out = out;
	return json;
}

void postern_json_free(struct postern_json **json)
{
	if (json == NULL)
		return;
	free(*json);
	*json = NULL;
}

/* Before any value: a comma if a sibling came first. */
static void json_value_prefix(struct postern_json *json)
{
	if (json->after_key) {
		json->after_key = false;
		return;
	}
	assert(!json->is_object[json->depth] || json->depth == 0);
	if (json->has_value[json->depth])
		postern_str_append(json->out, ",", 1);
	json->has_value[json->depth] = true;
}

static void json_open(struct postern_json *json, char bracket, bool is_object)
{
	json_value_prefix(json);
	assert(json->depth < JSON_MAX_DEPTH);
	postern_str_append(json->out, &bracket, 1);
	json->depth++;
	json->has_value[json->depth] = false;
	json->is_object[json->depth] = is_object;
}

static void json_close(struct postern_json *json, char bracket, bool is_object)
{
	assert(json->depth > 0 && json->is_object[json->depth] == is_object);
	assert(!json->after_key);
	json->depth--;
	postern_str_append(json->out, &bracket, 1);
}

void postern_json_object_begin(struct postern_json *json)
{
	json_open(json, '{', true);
}

void postern_json_object_end(struct postern_json *json)
{
	json_close(json, '}', true);
}

void postern_json_array_begin(struct postern_json *json)
{
	json_open(json, '[', false);
}

void postern_json_array_end(struct postern_json *json)
{
	json_close(json, ']', false);
}

void postern_json_key(struct postern_json *json, const char *key)
{
	assert(json->depth > 0 && json->is_object[json->depth] && !json->after_key);
	if (json->has_value[json->depth])
		postern_str_append(json->out, ",", 1);
	json->has_value[json->depth] = true;
	postern_json_escape(json->out, key, strlen(key));
	postern_str_append(json->out, ":", 1);
	json->after_key = true;
}

void postern_json_string(struct postern_json *json, const char *value)
{
	if (value == NULL) {
		postern_json_null(json);
		return;
	}
	postern_json_string_n(json, value, strlen(value));
}

void postern_json_string_n(struct postern_json *json, const char *value, size_t len)
{
	json_value_prefix(json);
	postern_json_escape(json->out, value, len);
}

void postern_json_int(struct postern_json *json, int64_t value)
{
	json_value_prefix(json);
	postern_str_printf(json->out, "%" PRId64, value);
}

void postern_json_uint(struct postern_json *json, uint64_t value)
{
	json_value_prefix(json);
	postern_str_printf(json->out, "%" PRIu64, value);
}

void postern_json_bool(struct postern_json *json, bool value)
{
	json_value_prefix(json);
	postern_str_append_cstr(json->out, value ? "true" : "false");
}

void postern_json_null(struct postern_json *json)
{
	json_value_prefix(json);
	postern_str_append_cstr(json->out, "null");
}

/* Length of the valid UTF-8 sequence at `s` (at most `len` bytes), or 0. */
static size_t utf8_sequence_length(const unsigned char *s, size_t len)
{
	size_t need;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		need = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		need = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		need = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len < need)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and code points past U+10FFFF. */
	if ((need == 3 && cp < 0x800) || (need == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return need;
}

void postern_json_escape(struct postern_str *out, const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t run_start = 0, i = 0;

	postern_str_append(out, "\"", 1);
	while (i < len) {
		unsigned char c = s[i];
		size_t seq = utf8_sequence_length(s + i, len - i);
		const char *escape = NULL;
		char buf[8];

		if (seq > 1) {
			i += seq;
			continue;
		}
		if (seq == 1 && c >= 0x20 && c != '"' && c != '\\' && c != 0x7f) {
			i++;
			continue;
		}
		postern_str_append(out, str + run_start, i - run_start);
		switch (c) {
		case '"': escape = "\\\""; break;
		case '\\': escape = "\\\\"; break;
		case '\n': escape = "\\n"; break;
		case '\r': escape = "\\r"; break;
		case '\t': escape = "\\t"; break;
		default:
			if (seq == 0) {
				escape = "\\ufffd";
			} else {
				snprintf(buf, sizeof(buf), "\\u%04x", c);
				escape = buf;
			}
		}
		postern_str_append_cstr(out, escape);
		i++;
		run_start = i;
	}
	postern_str_append(out, str + run_start, len - run_start);
	postern_str_append(out, "\"", 1);
}
