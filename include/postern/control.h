/*
 * Control commands, reached through the control socket with posternctl.
 *
 * A module registers a command word ("queue"); `posternctl queue list
 * --json` then calls its handler with argv = {"queue", "list"} and the JSON
 * flag set. The handler writes its answer to the request's output and
 * returns; it runs on the event loop, so it must not block.
 */
#ifndef POSTERN_CONTROL_H
#define POSTERN_CONTROL_H

#include <postern/common.h>

struct postern_str;
struct postern_control_req;

/* Return 0 on success, -1 after postern_control_fail(). */
typedef int postern_control_cb(struct postern_control_req *req, int argc,
			       const char *const *argv, void *ctx);

/*
 * Register `command`. `usage` is one line per subcommand, shown by
 * `posternctl help`. Registering a word that is taken is an error.
 * Commands are removed when the module is unloaded.
 */
POSTERN_API int postern_control_register(struct postern_mod *mod, const char *command,
					 const char *usage, postern_control_cb *cb,
					 void *ctx, const char **error_r);

/* True when the client asked for --json (the flag is not in argv). */
POSTERN_API bool postern_control_json(const struct postern_control_req *req);
/* The reply body: text, or one JSON document with --json. */
POSTERN_API struct postern_str *postern_control_output(struct postern_control_req *req);
/* Mark the request failed with a one-line message; returns -1. */
POSTERN_API int postern_control_fail(struct postern_control_req *req, const char *fmt, ...)
	POSTERN_PRINTF(2, 3);

#endif
