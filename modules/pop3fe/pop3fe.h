/*
 * pop3fe: the POP3 front-end proxy. Its files:
 *
 *   pop3fe.c     the module: hooks and the protocol descriptor handed to
 *                the proxy library (include/postern/proxy.h), which does
 *                everything that is not POP3
 *   command.c    parsing a client line before login, and XCLIENT's
 *                attributes: pure, unit-tested and fuzzed
 *   client.c     the commands before login: CAPA, STLS, USER, PASS,
 *                AUTH PLAIN, XCLIENT, QUIT; the error replies
 *   backend.c    the login dialogue with a back-end: greeting, XCLIENT,
 *                USER/PASS or AUTH PLAIN, and what each answer means
 */
#ifndef POP3FE_H
#define POP3FE_H

#include <postern/postern.h>
#include <postern/auth.h>
#include <postern/proxy.h>
#include <postern/sasl.h>

/* Longest client line before login: an AUTH PLAIN initial response with
 * long names and a long password, base64'd. */
#define POP3FE_MAX_LINE 4096
/* Longest user name accepted with USER. */
#define POP3FE_USER_MAX 255
/* Arguments split out of a line at most (XCLIENT attributes). */
#define POP3FE_MAX_ARGS 8
/* Longest password taken with PASS (lib/auth checks no longer ones). */
#define POP3FE_PASSWORD_MAX POSTERN_PASSWORD_MAX
/* base64 of "\0user\0password" at the longest. */
#define POP3FE_PLAIN_B64_MAX (4 * ((POP3FE_USER_MAX + POP3FE_PASSWORD_MAX + 2 + 2) / 3) + 1)

enum pop3fe_verb {
	POP3FE_EMPTY = 0,   /* nothing but spaces */
	POP3FE_UNKNOWN,     /* a word we do not take before login */
	POP3FE_LATER,       /* a transaction-state command: log in first */
	POP3FE_CAPA,
	POP3FE_STLS,
	POP3FE_USER,
	POP3FE_PASS,
	POP3FE_AUTH,
	POP3FE_QUIT,
	POP3FE_NOOP,
	POP3FE_XCLIENT,
};

enum pop3fe_parse_result {
	POP3FE_PARSE_OK = 0,
	POP3FE_PARSE_BAD_CHARS,   /* NUL or CR inside the line */
	POP3FE_PARSE_TOO_MANY,    /* more arguments than POP3FE_MAX_ARGS */
};

struct pop3fe_command {
	enum pop3fe_verb verb;
	/* Everything after the verb and one space (USER, PASS take it all,
	 * spaces included), "" when none. Points into the line. */
	const char *rest;
	size_t rest_len;
	/* `rest` split at spaces, NUL-terminated copies in `buf`. */
	char *argv[POP3FE_MAX_ARGS];
	unsigned argc;
	char buf[POP3FE_MAX_LINE + 1];
};

/* Parse one line (without its line end). `line` need not be
 * NUL-terminated; `len` may be anything (longer lines are cut to
 * POP3FE_MAX_LINE for the argument split). */
enum pop3fe_parse_result pop3fe_parse(const char *line, size_t len, struct pop3fe_command *cmd_r);

struct pop3fe_xclient {
	char addr[64];
	unsigned port;    /* 0 when not given */
	unsigned hop;     /* 1 when not given */
};

/* XCLIENT's attributes: ADDR=ip (required, "IPV6:" prefix allowed),
 * PORT=n, HOP=n, LOGIN=... (ignored). 0, or -1 with *error_r. */
int pop3fe_xclient_parse(char *const *argv, unsigned argc, struct pop3fe_xclient *xc_r,
			 const char **error_r);

/* The per-session state of the protocol (the proxy allocates it). */
enum pop3fe_client_state {
	POP3FE_STATE_AUTHORIZATION = 0,
	POP3FE_STATE_AUTH_PLAIN,   /* "+ " sent, waiting for the response */
};

enum pop3fe_backend_state {
	POP3FE_BE_GREETING = 0,
	POP3FE_BE_XCLIENT,
	POP3FE_BE_USER,
	POP3FE_BE_PASS,
	POP3FE_BE_AUTH,
};

struct pop3fe_session {
	enum pop3fe_client_state state;
	char user[POP3FE_USER_MAX + 1];
	bool have_user;
	bool xclient_seen;
	enum pop3fe_backend_state be_state;
};

/* client.c */
void pop3fe_client_greet(struct postern_proxy_session *session);
void pop3fe_client_line(struct postern_proxy_session *session, const struct postern_line *line);
void pop3fe_client_line_too_long(struct postern_proxy_session *session);
void pop3fe_client_tls_ready(struct postern_proxy_session *session);
void pop3fe_client_reply(struct postern_proxy_session *session, enum postern_proxy_reply kind,
			 const char *text);

/* backend.c */
bool pop3fe_backend_greeting_ok(const struct postern_line *line);
void pop3fe_backend_open(struct postern_proxy_session *session);
enum postern_proxy_step pop3fe_backend_line(struct postern_proxy_session *session,
					    const struct postern_line *line);
/* command.c: the meaning of a back-end's reply to a login (pure,
 * unit-tested), and whether a line is `word` alone or followed by a space. */
enum postern_proxy_step pop3fe_login_reply(const char *line, size_t len);
bool pop3fe_starts(const char *line, size_t len, const char *word);
bool pop3fe_response_done(const char *head, size_t head_len, size_t len, bool first);
/* AUTH PLAIN's initial response for logging in on a back-end: base64 of
 * "\0user\0password" into `out`; its length, or -1 when too long. */
long pop3fe_plain_encode(const char *user, const char *password, char *out, size_t size);

#endif
