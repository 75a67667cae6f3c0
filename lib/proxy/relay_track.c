/*
 * Where the back-end's answer stands, for the relay's watchdog (relay.c):
 * the first bytes and the length of the line being received, how many
 * lines came since the client's last bytes, and since when the answer has
 * been unfinished. Pure (the clock is passed in), so the fuzz target
 * tests/fuzz/fuzz_proxy_relay.c runs it on any byte stream cut anywhere.
 */
#include "config.h"

#include <string.h>

#include "proxy_private.h"

/* Keep the first bytes of the back-end's current line and count its length. */
static void relay_line_append(struct postern_proxy_session *s, const char *data, size_t len)
{
	if (s->line_len < sizeof(s->line_head)) {
		size_t room = sizeof(s->line_head) - s->line_len;

		memcpy(s->line_head + s->line_len, data, len < room ? len : room);
	}
	s->line_len += len;
}

/* Does the line just completed end an answer (the protocol's call)? */
static bool relay_line_done(struct postern_proxy_session *s, bool first)
{
	const struct postern_proxy_protocol *protocol = s->proxy->protocol;
	size_t len = s->line_len;

	if (len <= sizeof(s->line_head) && len > 0 && s->line_head[len - 1] == '\r')
		len--;
	if (protocol->response_done == NULL)
		return true;
	return protocol->response_done(s->line_head,
				       len < sizeof(s->line_head) ? len : sizeof(s->line_head), len,
				       first);
}

/*
 * Follow where the back-end's answer stands after a chunk, for the
 * watchdog. Only the last complete line and the one still open matter,
 * so this is a couple of memrchr() calls, not a scan of every line.
 */
void proxy_relay_track(struct postern_proxy_session *s, const char *data, size_t len,
		       uint64_t now)
{
	const char *last_nl = memrchr(data, '\n', len);

	if (last_nl == NULL) {
		/* Still the same line: its clock keeps running (a trickle). */
		relay_line_append(s, data, len);
		if (s->stall_since == 0 || !s->stall_midline) {
			s->stall_since = now;
			s->stall_midline = true;
		}
		return;
	}

	const char *prev_nl = last_nl > data ? memrchr(data, '\n', (size_t)(last_nl - data)) : NULL;
	bool first = s->lines_since_client == 0 && prev_nl == NULL;

	if (prev_nl != NULL) {
		s->line_len = 0;
		relay_line_append(s, prev_nl + 1, (size_t)(last_nl - prev_nl - 1));
	} else {
		relay_line_append(s, data, (size_t)(last_nl - data));
	}
	s->lines_since_client += prev_nl == NULL ? 1 : 2;

	bool done = relay_line_done(s, first);

	s->line_len = 0;
	if (last_nl + 1 < data + len) {
		relay_line_append(s, last_nl + 1, (size_t)(data + len - last_nl - 1));
		s->stall_since = now;
		s->stall_midline = true;
	} else {
		/* At a line end: fine if it ends the answer, else the next
		 * line must come within backend_timeout. */
		s->stall_since = done ? 0 : now;
		s->stall_midline = false;
	}
}
