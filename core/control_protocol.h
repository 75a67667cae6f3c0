/*
 * The control socket's wire protocol, shared by the server (control.c) and
 * the client (posternctl.c) so that both ends encode and decode alike.
 *
 * One request per connection, over a UNIX stream socket:
 *
 *   client: ARG SP ARG SP ... LF
 *   server: "OK" LF  BODY          (then closes)
 *       or: "ERR " MESSAGE LF      (then closes; no body)
 *
 * - Arguments are separated by exactly one space, so "a  b" is the three
 *   arguments "a", "", "b". An empty line is a request with no arguments
 *   (and is refused): the command word can therefore never be empty.
 * - Inside an argument, '%', space, CR, LF, NUL and every other byte below
 *   0x20 are sent as %XX (two hex digits, either case on input, upper case
 *   on output). All other bytes, UTF-8 included, go as they are. A raw byte
 *   below 0x20 or a '%' not followed by two hex digits is malformed.
 * - An argument "--json" (after decoding, anywhere in the line) is removed
 *   by the server and asks for a JSON body instead of text.
 * - The line is at most CONTROL_MAX_REQUEST bytes without its LF; a longer
 *   one is answered with ERR. A client that stays idle for
 *   CONTROL_IDLE_TIMEOUT_MS is disconnected.
 * - The status line is one line: the server replaces control bytes in the
 *   message so that it cannot break the framing, and caps its length.
 * - BODY is text (ending in LF when not empty) or one JSON document followed
 *   by LF; it ends when the server closes the connection.
 *
 * What this file does not do: sockets, permissions, dispatch.
 */
#ifndef POSTERN_CONTROL_PROTOCOL_H
#define POSTERN_CONTROL_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>

struct postern_str;

/* The longest request line, without its LF. */
#define CONTROL_MAX_REQUEST (64 * 1024)
/* The longest status line message the server sends (longer ones are cut). */
#define CONTROL_MAX_MESSAGE 1024
/* A request that is not complete after this much idle time is dropped. */
#define CONTROL_IDLE_TIMEOUT_MS 30000
/* The argument that selects JSON output. */
#define CONTROL_JSON_ARG "--json"

/* A decoded request. argv[i] is NUL-terminated but may hold NUL bytes of its
 * own: lens[i] is the true length. argv[argc] is NULL. */
struct control_args {
	int argc;
	char **argv;
	size_t *lens;
	bool json;
};

/* Append one argument, encoded, to `out`. */
void control_arg_encode(struct postern_str *out, const void *arg, size_t len);

/* Append the whole request line for argv[0..argc-1], LF included. */
void control_request_encode(struct postern_str *out, int argc, const char *const *argv);

/*
 * Decode a request line (without its LF). Every "--json" is removed and sets
 * args_r->json. Returns 0, or -1 with *error_r (a static string) for a
 * malformed or overlong line; nothing needs freeing then.
 */
int control_request_decode(const char *line, size_t len, struct control_args *args_r,
			   const char **error_r);
void control_args_free(struct control_args *args);

/* Append the status line: "OK\n" when error is NULL, else "ERR error\n"
 * with control bytes replaced and the message cut to CONTROL_MAX_MESSAGE. */
void control_status_encode(struct postern_str *out, const char *error);

enum control_status {
	CONTROL_STATUS_OK,
	CONTROL_STATUS_ERR,
	CONTROL_STATUS_INVALID,
};

/* Classify a status line (without LF; a trailing CR is ignored). For ERR,
 * *message_r points into `line` after "ERR ", with *message_len_r bytes. */
enum control_status control_status_decode(const char *line, size_t len,
					  const char **message_r, size_t *message_len_r);

#endif
