/*
 * libFuzzer target for the proxy's tracking of a back-end's answer
 * (lib/proxy/relay_track.c): the bytes a back-end sends after login, cut
 * into chunks anywhere, with pop3fe's idea of where an answer ends.
 *
 * Input: byte 0 seeds the chunk lengths, the rest is the stream. After
 * every chunk the tracker must agree with a plain model of the stream:
 * the current line's length is the number of bytes since the last LF, its
 * head is that line's first bytes, the stall clock runs mid-line, and a
 * line count since the client's last bytes only grows.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "proxy_private.h"
#include "pop3fe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct postern_proxy_protocol protocol = {
		.struct_size = sizeof(struct postern_proxy_protocol),
		.response_done = pop3fe_response_done,
	};
	struct postern_proxy proxy;
	struct postern_proxy_session session;
	const char *stream;
	size_t len, pos = 0, line_start = 0;
	unsigned seed, lines = 0;
	uint64_t now = 1;

	if (size < 1 || size > 65536)
		return 0;
	memset(&proxy, 0, sizeof(proxy));
	memset(&session, 0, sizeof(session));
	proxy.protocol = &protocol;
	session.proxy = &proxy;
	seed = data[0];
	stream = (const char *)data + 1;
	len = size - 1;
	while (pos < len) {
		/* Chunk lengths from 1 to 64, driven by the seed. */
		seed = seed * 1103515245u + 12345u;
		size_t chunk = 1 + (seed >> 16) % 64;

		if (chunk > len - pos)
			chunk = len - pos;
		proxy_relay_track(&session, stream + pos, chunk, ++now);
		pos += chunk;
		/* The model: where the current line began. */
		const char *last_nl = memrchr(stream, '\n', pos);

		line_start = last_nl == NULL ? 0 : (size_t)(last_nl - stream) + 1;
		size_t open = pos - line_start;

		FUZZ_CHECK(session.line_len == open);
		size_t head = open < sizeof(session.line_head) ? open : sizeof(session.line_head);

		FUZZ_CHECK(memcmp(session.line_head, stream + line_start, head) == 0);
		if (open > 0) {
			FUZZ_CHECK(session.stall_midline);
			FUZZ_CHECK(session.stall_since != 0 && session.stall_since <= now);
		} else {
			FUZZ_CHECK(!session.stall_midline);
		}
		FUZZ_CHECK(session.lines_since_client >= lines);
		lines = session.lines_since_client;
		if (memchr(stream + pos - chunk, '\n', chunk) != NULL)
			FUZZ_CHECK(lines > 0);
	}
	return 0;
}
