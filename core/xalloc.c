/*
 * Allocation that cannot fail: on out-of-memory the daemon logs and aborts,
 * because every caller would otherwise need an error path that no test can
 * reach. Used by the core only; libraries for modules report errors instead.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core.h"

static void out_of_memory(size_t size)
{
	fprintf(stderr, "posternd: out of memory allocating %zu bytes\n", size);
	abort();
}

void *xmalloc(size_t size)
{
	void *ptr = malloc(size == 0 ? 1 : size);

	if (ptr == NULL)
		out_of_memory(size);
	return ptr;
}

void *xcalloc(size_t count, size_t size)
{
	void *ptr = calloc(count == 0 ? 1 : count, size == 0 ? 1 : size);

	if (ptr == NULL)
		out_of_memory(count * size);
	return ptr;
}

void *xrealloc(void *ptr, size_t size)
{
	void *new_ptr = realloc(ptr, size == 0 ? 1 : size);

	if (new_ptr == NULL)
		out_of_memory(size);
	return new_ptr;
}

char *xstrdup(const char *str)
{
	return xstrndup(str, strlen(str));
}

char *xstrndup(const char *str, size_t len)
{
	char *copy = xmalloc(len + 1);

	memcpy(copy, str, len);
	copy[len] = '\0';
	return copy;
}

char *xvasprintf(const char *fmt, va_list args)
{
	char *result;

	if (vasprintf(&result, fmt, args) < 0)
		out_of_memory(strlen(fmt));
	return result;
}

char *xasprintf(const char *fmt, ...)
{
	va_list args;
	char *result;

	va_start(args, fmt);
	if (vasprintf(&result, fmt, args) < 0)
		out_of_memory(strlen(fmt));
	va_end(args);
	return result;
}
