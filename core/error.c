/*
 * Error messages with details (a path, an errno text, a module's name) for
 * the `const char **error_r` of the core's functions. Subsystems that have
 * the core format them with core_error() into core->error_buf: one place
 * per daemon rather than a static buffer per file, and a message may quote
 * the one before it ("control socket PATH: bind PATH: ..."). The loop,
 * which lives without a core, keeps its own storage through error_set().
 *
 * A message stays valid until the next one is formatted into the same
 * storage (the daemon is single-threaded); a caller that keeps it longer
 * copies it. Not here: configuration errors, which config_node.c prefixes
 * with file and line and keeps in their config.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdlib.h>
#include "core.h"

static const char *error_vset(char **storage, const char *fmt, va_list args)
	POSTERN_PRINTF(2, 0);

static const char *error_vset(char **storage, const char *fmt, va_list args)
{
	char *msg = xvasprintf(fmt, args);

	/* Only now: an argument may have been the previous message. */
	free(*storage);
	*storage = msg;
	return msg;
}

const char *error_set(char **storage, const char *fmt, ...)
{
	const char *msg;
	va_list args;

	va_start(args, fmt);
	msg = error_vset(storage, fmt, args);
	va_end(args);
	return msg;
}

const char *core_error(struct postern_core *core, const char *fmt, ...)
{
	const char *msg;
	va_list args;

	assert(core != NULL);
	va_start(args, fmt);
	msg = error_vset(&core->error_buf, fmt, args);
	va_end(args);
	return msg;
}
