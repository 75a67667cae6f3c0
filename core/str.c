/*
 * Growable byte strings (include/postern/str.h). Capacity doubles, so
 * appending n bytes costs O(n) amortised; the data is always NUL-terminated.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core.h"

struct postern_str {
	char *data;
	size_t len;
	size_t cap; /* allocated bytes, including room for the NUL */
};

struct postern_str *postern_str_new(void)
{
	struct postern_str *str = xcalloc(1, sizeof(*str));

	str->cap = 64;
	str->data = xmalloc(str->cap);
	str->data[0] = '\0';
	return str;
}

void postern_str_free(struct postern_str **str)
{
	if (str == NULL || *str == NULL)
		return;
	free((*str)->data);
	free(*str);
	*str = NULL;
}

/* Make room for `extra` more bytes plus the NUL. */
static void str_reserve(struct postern_str *str, size_t extra)
{
	if (extra >= SIZE_MAX - str->len - 1)
		abort(); /* a string this large is a bug, not input */
	size_t need = str->len + extra + 1;

	if (need <= str->cap)
		return;
	while (str->cap < need)
		str->cap = str->cap > SIZE_MAX / 2 ? need : str->cap * 2;
	str->data = xrealloc(str->data, str->cap);
}

void postern_str_append(struct postern_str *str, const void *data, size_t len)
{
	if (len == 0)
		return;
	str_reserve(str, len);
	memcpy(str->data + str->len, data, len);
	str->len += len;
	str->data[str->len] = '\0';
}

void postern_str_append_cstr(struct postern_str *str, const char *cstr)
{
	postern_str_append(str, cstr, strlen(cstr));
}

void postern_str_vprintf(struct postern_str *str, const char *fmt, va_list args)
{
	va_list copy;

	va_copy(copy, args);
	int needed = vsnprintf(str->data + str->len, str->cap - str->len, fmt, copy);
	va_end(copy);
	if (needed < 0)
		return;
	if ((size_t)needed >= str->cap - str->len) {
		str_reserve(str, (size_t)needed);
		vsnprintf(str->data + str->len, str->cap - str->len, fmt, args);
	}
	str->len += (size_t)needed;
}

void postern_str_printf(struct postern_str *str, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	postern_str_vprintf(str, fmt, args);
	va_end(args);
}

void postern_str_truncate(struct postern_str *str, size_t len)
{
	if (len < str->len) {
		str->len = len;
		str->data[len] = '\0';
	}
}

const char *postern_str_data(const struct postern_str *str)
{
	return str->data;
}

size_t postern_str_len(const struct postern_str *str)
{
	return str->len;
}
