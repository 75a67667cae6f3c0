/*
 * A small streaming JSON writer for `--json` output. It tracks nesting and
 * commas; strings are escaped (control bytes as \u00XX, invalid UTF-8 as
 * U+FFFD) so any bytes a client sent can be written safely.
 */
#ifndef POSTERN_JSON_H
#define POSTERN_JSON_H

#include <postern/common.h>

struct postern_str;
struct postern_json;

/* A writer that appends to `out` (not owned). */
POSTERN_API struct postern_json *postern_json_new(struct postern_str *out);
POSTERN_API void postern_json_free(struct postern_json **json);

POSTERN_API void postern_json_object_begin(struct postern_json *json);
POSTERN_API void postern_json_object_end(struct postern_json *json);
POSTERN_API void postern_json_array_begin(struct postern_json *json);
POSTERN_API void postern_json_array_end(struct postern_json *json);

/* Inside an object: the key of the next value. */
POSTERN_API void postern_json_key(struct postern_json *json, const char *key);

POSTERN_API void postern_json_string(struct postern_json *json, const char *value);
POSTERN_API void postern_json_string_n(struct postern_json *json, const char *value, size_t len);
POSTERN_API void postern_json_int(struct postern_json *json, int64_t value);
POSTERN_API void postern_json_uint(struct postern_json *json, uint64_t value);
POSTERN_API void postern_json_bool(struct postern_json *json, bool value);
POSTERN_API void postern_json_null(struct postern_json *json);

/* Append `str` to `out` as a quoted, escaped JSON string. */
POSTERN_API void postern_json_escape(struct postern_str *out, const char *str, size_t len);

#endif
