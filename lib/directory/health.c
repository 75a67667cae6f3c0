/*
 * Back-end health as the directory records it: up or down, open sessions,
 * the last error and when the state last changed. The directory does not
 * check anything itself: the proxy reports connect failures, timeouts and
 * health-check outcomes here, and announces the transitions these
 * functions report.
 */
#include "config.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "directory_private.h"

bool postern_backend_is_up(const struct postern_backend *be)
{
	return be->up;
}

bool postern_backend_usable(const struct postern_backend *be)
{
	return be->up && (be->max_sessions == 0 || be->sessions < be->max_sessions);
}

void postern_backend_note_error(struct postern_backend *be, const char *error)
{
	snprintf(be->last_error, sizeof(be->last_error), "%s",
		 error != NULL && error[0] != '\0' ? error : "unknown error");
}

bool postern_backend_mark_down(struct postern_backend *be, const char *error)
{
	postern_backend_note_error(be, error);
	if (!be->up)
		return false;
	be->up = false;
	be->down_count++;
	be->last_change_ms = directory_now(be->dir);
	return true;
}

bool postern_backend_mark_up(struct postern_backend *be)
{
	if (be->up)
		return false;
	be->up = true;
	be->last_change_ms = directory_now(be->dir);
	return true;
}

void postern_backend_session_begin(struct postern_backend *be)
{
	be->sessions++;
	be->total_sessions++;
}

void postern_backend_session_end(struct postern_backend *be)
{
	/* A session ended twice would leak capacity or underflow: a bug in
	 * the caller's accounting, not something to paper over. */
	assert(be->sessions > 0);
	be->sessions--;
}

unsigned postern_backend_sessions(const struct postern_backend *be)
{
	return be->sessions;
}

unsigned postern_backend_max_sessions(const struct postern_backend *be)
{
	return be->max_sessions;
}

const char *postern_backend_last_error(const struct postern_backend *be)
{
	return be->last_error[0] != '\0' ? be->last_error : NULL;
}

uint64_t postern_backend_last_change_ms(const struct postern_backend *be)
{
	return be->last_change_ms;
}

uint64_t postern_backend_total_sessions(const struct postern_backend *be)
{
	return be->total_sessions;
}

uint64_t postern_backend_down_count(const struct postern_backend *be)
{
	return be->down_count;
}
