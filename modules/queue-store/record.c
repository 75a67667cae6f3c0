/*
 * The text records queue and state files are made of: one record per line,
 * space-separated fields. String fields are "-" (NULL) or "+" and the value
 * with %XX for every byte that is not a visible ASCII character and for
 * '%' itself, so a value from a client (an address, a remote reply) can
 * never add a field, a line or a NUL, and the files stay readable with less.
 */
#include <stdlib.h>
#include <string.h>

#include "queue_store.h"

static bool record_plain(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '%';
}

void record_put_string(struct qbuf *buf, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";

	if (value == NULL) {
		qbuf_append(buf, "-", 1);
		return;
	}
	qbuf_append(buf, "+", 1);
	for (const unsigned char *p = (const unsigned char *)value; *p != '\0'; p++) {
		const unsigned char *start = p;

		while (*p != '\0' && record_plain(*p))
			p++;
		qbuf_append(buf, start, (size_t)(p - start));
		if (*p == '\0')
			break;
		char esc[3] = { '%', hex[*p >> 4], hex[*p & 15] };

		qbuf_append(buf, esc, 3);
	}
}

int record_split(char *line, char **fields, int max)
{
	int count = 0;
	char *p = line;

	if (*p == '\0')
		return 0;
	for (;;) {
		if (count == max)
			return -1;
		fields[count++] = p;
		p = strchr(p, ' ');
		if (p == NULL)
			return count;
		*p++ = '\0';
	}
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int record_get_string(const char *field, char **value_r)
{
	if (strcmp(field, "-") == 0) {
		*value_r = NULL;
		return 0;
	}
	if (field[0] != '+')
		return -1;
	field++;

	size_t len = strlen(field);
	char *value = q_malloc(len + 1), *out = value;

	for (const char *p = field; *p != '\0'; p++) {
		if (*p != '%') {
			if (!record_plain((unsigned char)*p))
				goto fail;
			*out++ = *p;
			continue;
		}
		int high = hex_value(p[1]), low = high < 0 ? -1 : hex_value(p[2]);

		/* No NUL inside a value: it would cut it short. */
		if (low < 0 || (high == 0 && low == 0))
			goto fail;
		*out++ = (char)(high << 4 | low);
		p += 2;
	}
	*out = '\0';
	*value_r = value;
	return 0;
fail:
	free(value);
	return -1;
}

int record_get_u64(const char *field, uint64_t max, uint64_t *value_r)
{
	uint64_t value = 0;

	if (*field == '\0' || strlen(field) > 20)
		return -1;
	for (const char *p = field; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		unsigned digit = (unsigned)(*p - '0');

		if (value > (UINT64_MAX - digit) / 10)
			return -1;
		value = value * 10 + digit;
	}
	if (value > max)
		return -1;
	*value_r = value;
	return 0;
}
