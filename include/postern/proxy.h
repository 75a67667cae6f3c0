/*
 * The proxy machinery of the mail front-ends (pop3fe now, imap4fe later):
 * everything between "a client connected" and "bytes flow both ways to the
 * user's back-end", and the clean-up when either side goes away.
 *
 * A front-end module is a protocol descriptor (struct
 * postern_proxy_protocol) plus its command parsing before login. The proxy
 * library does the rest, the same way for every protocol:
 *
 *   listeners (plain, implicit TLS) ─▶ greeting (descriptor)
 *   ─▶ client lines until a login (descriptor: CAPA, STLS, USER/PASS, AUTH)
 *   ─▶ password check through lib/auth's asynchronous pool
 *   ─▶ the user's failover list from the directory (host= or hash)
 *   ─▶ for each usable back-end: connect (connect_timeout), then the
 *      descriptor's login dialogue (greeting, XCLIENT, login) within
 *      login_timeout; a refusal or a timeout moves on to the next one
 *   ─▶ relay bytes both ways with back-pressure, idle timeouts on both
 *      legs, TCP keepalive on the back-end leg, a stall watchdog
 *   ─▶ either leg gone: the other is told (if it can be) and closed; the
 *      session is freed once, when both connections are CLOSED.
 *
 * It also runs the active health checks (connect and read a greeting,
 * every health_check_interval), marks back-ends down on connect failures
 * and timeouts, publishes backend.down / backend.up on the bus and answers
 * `posternctl backends [--json]`.
 *
 * The library runs inside posternd and calls the core's public API only
 * (include/postern/). The front-end module's settings table is the
 * library's: modules/pop3fe/README.md lists every key; lib/proxy/README.md
 * tells how to write a front-end.
 */
#ifndef POSTERN_PROXY_H
#define POSTERN_PROXY_H

#include <postern/common.h>
#include <postern/auth.h>

struct postern_cfg;
struct postern_conn;
struct postern_line;
struct postern_proxy;
struct postern_proxy_session;

/* ---- Bus events ------------------------------------------------------------------ */

/* "backend.down", "backend.up": payload struct postern_ev_backend. */
#define POSTERN_TOPIC_BACKEND_DOWN "backend.down"
#define POSTERN_TOPIC_BACKEND_UP "backend.up"
#define POSTERN_EV_BACKEND_TYPE "postern_ev_backend"

struct postern_ev_backend {
	uint32_t struct_size;
	const char *module;   /* the front-end: "pop3fe" */
	const char *name;     /* the back-end's name */
	const char *address;  /* "192.0.2.7:110" */
	const char *pool;
	bool up;              /* the new state */
	/* down: why ("connect timeout", "health check: connection refused");
	 * up: NULL. */
	const char *error;
	unsigned sessions;    /* open sessions on it now */
};

/* ---- What the protocol tells the proxy --------------------------------------------- */

/* Replies the proxy asks the protocol to send to the client. */
enum postern_proxy_reply {
	/* Try again later: no back-end could take the session, the user
	 * database failed, the back-end refused what we verified.
	 * POP3 "-ERR [SYS/TEMP] text", IMAP "tag NO [UNAVAILABLE] text". */
	POSTERN_PROXY_REPLY_TEMPFAIL = 1,
	/* Wrong user name or password. POP3 "-ERR [AUTH] ...". */
	POSTERN_PROXY_REPLY_AUTH_FAILED,
	/* The address made too many failed logins. */
	POSTERN_PROXY_REPLY_BLOCKED,
	/* The back-end died while the client waited for a reply: the session
	 * ends. POP3 "-ERR [SYS/TEMP] back-end connection lost", IMAP
	 * "* BYE [UNAVAILABLE] ...". */
	POSTERN_PROXY_REPLY_LOST,
	/* The client was idle too long before logging in; the session ends. */
	POSTERN_PROXY_REPLY_IDLE,
	/* The daemon is shutting down; the session ends. */
	POSTERN_PROXY_REPLY_SHUTDOWN,
};

/* What a line of the back-end's login dialogue means. */
enum postern_proxy_step {
	/* Wait for the next line (the protocol may have written one). */
	POSTERN_PROXY_STEP_CONTINUE = 1,
	/* Logged in: the protocol has written the client's success reply;
	 * relaying starts. */
	POSTERN_PROXY_STEP_LOGGED_IN,
	/* This back-end cannot take the session now (-ERR [SYS/TEMP], a
	 * refused XCLIENT): try the next one; the back-end stays up. */
	POSTERN_PROXY_STEP_FAILOVER,
	/* Not the protocol at all (garbage, a refusing greeting): mark the
	 * back-end down and try the next one. */
	POSTERN_PROXY_STEP_BROKEN,
	/* The back-end refused credentials the front-end verified: a
	 * configuration mismatch. Logged as an error; the client gets
	 * TEMPFAIL; no other back-end is tried (they share the user database). */
	POSTERN_PROXY_STEP_MISMATCH,
	/* The user's own problem ([IN-USE]: the mailbox is locked by another
	 * session): the protocol has passed the reply on to the client; the
	 * back-end connection is closed and the client may try again. */
	POSTERN_PROXY_STEP_PASS_ON,
};

/*
 * A protocol descriptor: the protocol specifics, as data and a few
 * callbacks. Everything else is the library's. Keep one static const
 * instance per module.
 */
struct postern_proxy_protocol {
	uint32_t struct_size;        /* sizeof(struct postern_proxy_protocol) */
	const char *name;            /* "pop3": logs and registry states */
	/* Bytes of the protocol's own per-session state, zeroed at the start
	 * (postern_proxy_session_data()). */
	size_t session_data_size;
	/* Longest client line before login (without CRLF). */
	size_t max_line;
	/* Sent to a back-end before a health check hangs up ("QUIT\r\n"). */
	const char *health_quit;
	/* The line (CRLF added) for a client refused over a connection limit
	 * or during shutdown: "-ERR [SYS/TEMP] Too many connections". */
	const char *limit_reply;

	/* A client is connected (for implicit TLS: after the handshake):
	 * write the greeting. */
	void (*client_greet)(struct postern_proxy_session *session);
	/* One line from the client before login. Answer it with
	 * postern_proxy_write()/printf(); start a login with
	 * postern_proxy_login(). Lines are not offered while a login is
	 * under way, nor after the session has started to close. */
	void (*client_line)(struct postern_proxy_session *session,
			    const struct postern_line *line);
	/* A client line longer than max_line was discarded. */
	void (*client_line_too_long)(struct postern_proxy_session *session);
	/* STLS/STARTTLS finished (postern_proxy_starttls()). The protocol
	 * forgets what it learnt before (a USER name). May be NULL. */
	void (*client_tls_ready)(struct postern_proxy_session *session);
	/* Write `kind` of reply to the client. `text` is a short explanation
	 * for humans (may be NULL). The proxy decides whether the session
	 * goes on or ends. */
	void (*client_reply)(struct postern_proxy_session *session,
			     enum postern_proxy_reply kind, const char *text);

	/* Is this the greeting of a working back-end? Health checks. */
	bool (*backend_greeting_ok)(const struct postern_line *line);
	/* The back-end connection is open; usually nothing to do but wait
	 * for the greeting. May be NULL. */
	void (*backend_open)(struct postern_proxy_session *session);
	/* One line of the back-end during the login dialogue: the greeting,
	 * then replies to what the protocol sent with
	 * postern_proxy_backend_write(). Return what it means. */
	enum postern_proxy_step (*backend_line)(struct postern_proxy_session *session,
						const struct postern_line *line);

	/*
	 * After login, optional: does the back-end's last complete line end
	 * an answer? `head` is the start of that line (at most
	 * POSTERN_PROXY_LINE_HEAD bytes, its line end cut off when it fits),
	 * `len` the line's whole length without the line end, `first` true
	 * when it was the first line since the client last sent something.
	 * The relay never parses commands; this only lets its watchdog catch
	 * a back-end that goes silent in the middle of a multi-line answer.
	 * NULL: every line end counts as a possible end.
	 */
	bool (*response_done)(const char *head, size_t head_len, size_t len, bool first);
};

#define POSTERN_PROXY_LINE_HEAD 16

/* ---- Setting up ------------------------------------------------------------------- */

/*
 * Check the module's configuration group against the proxy's settings
 * table (every key in lib/proxy/README.md), including the back-end list.
 * No side effects: the module's check_config hook.
 */
POSTERN_API int postern_proxy_check_config(struct postern_mod *mod,
					   const struct postern_cfg *cfg,
					   const char **error_r);

/*
 * Create the proxy of a front-end module: parse settings, open the user
 * database and the auth pool, build the directory, bind listeners, declare
 * the bus topics, register `backends`. The module's init hook. `protocol`
 * must outlive the proxy. 0, or -1 with *error_r (nothing left behind).
 */
POSTERN_API int postern_proxy_new(struct postern_mod *mod, const struct postern_cfg *cfg,
				  const struct postern_proxy_protocol *protocol,
				  struct postern_proxy **proxy_r, const char **error_r);
/*
 * Apply a configuration check_config accepted (the reload hook): back-ends,
 * pools, timeouts and limits take effect at once and no session is dropped
 * (sessions on a removed back-end go on until they end). Listeners, their
 * TLS and limits, and the authentication settings keep their running
 * values until a restart (logged). 0, or -1 with *error_r: nothing changed.
 */
POSTERN_API int postern_proxy_reload(struct postern_proxy *proxy, const struct postern_cfg *cfg,
				     const char **error_r);
/* Begin health checks (the start hook: after the privilege drop). */
POSTERN_API int postern_proxy_start(struct postern_proxy *proxy, const char **error_r);
/* Graceful shutdown began: sessions not yet logged in are told and closed;
 * relayed sessions run on until the core's deadline. The stop hook. */
POSTERN_API void postern_proxy_stop(struct postern_proxy *proxy);
/* Free everything (the deinit hook); *proxy becomes NULL. */
POSTERN_API void postern_proxy_free(struct postern_proxy **proxy);

/* The directory behind the proxy (read-only use: state, counts). */
POSTERN_API struct postern_directory *postern_proxy_directory(struct postern_proxy *proxy);
/* Sessions alive (any phase). */
POSTERN_API unsigned postern_proxy_session_count(const struct postern_proxy *proxy);

/* ---- For the protocol, during a session ----------------------------------------------- */

/* The protocol's own state (session_data_size bytes, zeroed at first). */
POSTERN_API void *postern_proxy_session_data(struct postern_proxy_session *session);
POSTERN_API struct postern_proxy *postern_proxy_session_proxy(struct postern_proxy_session *session);

/* Write to the client. */
POSTERN_API void postern_proxy_write(struct postern_proxy_session *session, const void *data,
				     size_t len);
POSTERN_API void postern_proxy_printf(struct postern_proxy_session *session, const char *fmt, ...)
	POSTERN_PRINTF(2, 3);
/* Write to the back-end (login dialogue). */
POSTERN_API void postern_proxy_backend_write(struct postern_proxy_session *session,
					     const void *data, size_t len);
POSTERN_API void postern_proxy_backend_printf(struct postern_proxy_session *session,
					      const char *fmt, ...) POSTERN_PRINTF(2, 3);

/* Log a line about the session (the client connection's id is added). */
POSTERN_API void postern_proxy_log(struct postern_proxy_session *session, int level,
				   const char *fmt, ...) POSTERN_PRINTF(3, 4);

/* Can the client start TLS now (a server certificate is configured and
 * the connection is not TLS yet)? */
POSTERN_API bool postern_proxy_tls_available(const struct postern_proxy_session *session);
/* Start TLS on the client connection after the protocol queued its
 * go-ahead reply. 0, or -1 with *error_r. client_tls_ready follows. */
POSTERN_API int postern_proxy_starttls(struct postern_proxy_session *session,
				       const char **error_r);
/* May the client send a password now: TLS, a loopback client, or
 * allow_plaintext_auth. */
POSTERN_API bool postern_proxy_plaintext_allowed(const struct postern_proxy_session *session);

/* Is the client a trusted front-end (trusted_networks), allowed to tell
 * us the real client's address (XCLIENT)? */
POSTERN_API bool postern_proxy_peer_trusted(const struct postern_proxy_session *session);
/*
 * A trusted front-end told us who the real client is. `ip` must be
 * numeric; `hop` is the hop count it sent (1 when it sent none). Returns
 * -1 with *error_r when the hop count reaches max_hops (a proxy loop) or
 * the address is bad.
 */
POSTERN_API int postern_proxy_set_client(struct postern_proxy_session *session, const char *ip,
					 unsigned port, unsigned hop, const char **error_r);
/* The real client (as told by XCLIENT, else the peer), for XCLIENT lines
 * to the back-end; and the hop count to send (ours + 1). */
POSTERN_API const char *postern_proxy_client_ip(const struct postern_proxy_session *session);
POSTERN_API unsigned postern_proxy_client_port(const struct postern_proxy_session *session);
POSTERN_API unsigned postern_proxy_next_hop(const struct postern_proxy_session *session);
/* Send XCLIENT to back-ends (setting `backend_xclient`)? */
POSTERN_API bool postern_proxy_xclient_enabled(const struct postern_proxy_session *session);
/* Log in on back-ends with "plain" (one SASL PLAIN exchange) or "user"
 * (USER/PASS, LOGIN): setting `backend_login`. */
POSTERN_API bool postern_proxy_backend_login_plain(const struct postern_proxy_session *session);

/*
 * Start a login with `user` and `password` (copied; the caller wipes its
 * own copy). The proxy checks the password, routes, connects and drives
 * backend_line; the protocol gets client_reply() for a failure, or writes
 * the success reply itself from backend_line. No client lines are offered
 * until the login failed (then they are again).
 */
POSTERN_API void postern_proxy_login(struct postern_proxy_session *session, const char *user,
				     const char *password);
/* The user and password being logged in, for the back-end dialogue. */
POSTERN_API const char *postern_proxy_user(const struct postern_proxy_session *session);
POSTERN_API const char *postern_proxy_password(const struct postern_proxy_session *session);

/* A bad command: counted; past max_bad_commands the session ends
 * (returns true: stop reading). */
POSTERN_API bool postern_proxy_bad_command(struct postern_proxy_session *session);
/* Send what is queued, then close the client connection ("QUIT"). */
POSTERN_API void postern_proxy_quit(struct postern_proxy_session *session, const char *reason);

#endif
