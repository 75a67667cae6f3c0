/*
 * A growable byte string. Always NUL-terminated for convenience, but may
 * hold NUL bytes: use postern_str_len(), not strlen().
 * Used for control replies, JSON output and anything a module builds up.
 */
#ifndef POSTERN_STR_H
#define POSTERN_STR_H

#include <stdarg.h>
#include <postern/common.h>

struct postern_str;

/* Allocate an empty string. Aborts on out-of-memory, like all core allocators. */
POSTERN_API struct postern_str *postern_str_new(void);
/* Free the string (NULL is fine) and set *str to NULL. */
POSTERN_API void postern_str_free(struct postern_str **str);

POSTERN_API void postern_str_append(struct postern_str *str, const void *data, size_t len);
POSTERN_API void postern_str_append_cstr(struct postern_str *str, const char *cstr);
POSTERN_API void postern_str_printf(struct postern_str *str, const char *fmt, ...)
	POSTERN_PRINTF(2, 3);
POSTERN_API void postern_str_vprintf(struct postern_str *str, const char *fmt, va_list args)
	POSTERN_PRINTF(2, 0);
POSTERN_API void postern_str_truncate(struct postern_str *str, size_t len);

POSTERN_API const char *postern_str_data(const struct postern_str *str);
POSTERN_API size_t postern_str_len(const struct postern_str *str);

#endif
