/*
 * Allocation helpers: out of memory aborts, as in the core, so callers
 * never carry a failure path for it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "smtp_private.h"

static void out_of_memory(void)
{
	fputs("smtp: out of memory\n", stderr);
	abort();
}

void *smtp_alloc(size_t size)
{
	void *ptr = calloc(1, size != 0 ? size : 1);

	if (ptr == NULL)
		out_of_memory();
	return ptr;
}

void *smtp_realloc(void *ptr, size_t size)
{
	void *grown = realloc(ptr, size != 0 ? size : 1);

	if (grown == NULL)
		out_of_memory();
	return grown;
}

char *smtp_strdup(const char *str)
{
	char *copy = strdup(str);

	if (copy == NULL)
		out_of_memory();
	return copy;
}

char *smtp_asprintf(const char *fmt, ...)
{
	va_list args;
	char *result;

	va_start(args, fmt);
	int ret = vasprintf(&result, fmt, args);
	va_end(args);
	if (ret < 0)
		out_of_memory();
	return result;
}
