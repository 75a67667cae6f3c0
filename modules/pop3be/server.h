/*
 * pop3be's server side: the module context, listeners and sessions, shared
 * by the files that talk to the core (settings.c, session.c,
 * authorization.c, transaction.c, sender.c, module.c). The pure parts are
 * in pop3be.h.
 */
#ifndef POP3BE_SERVER_H
#define POP3BE_SERVER_H

#include <postern/postern.h>
#include <postern/auth.h>
#include <postern/auth_settings.h>
#include <postern/cidr.h>
#include <postern/sasl.h>

#include "pop3be.h"

/* ---- settings.c ------------------------------------------------------------ */

/* One entry of `listeners`. */
struct pop3_listener_settings {
	char *address;
	bool implicit_tls;     /* port 995 semantics: TLS from the first byte */
	bool plaintext_auth;   /* allow USER/PASS and AUTH PLAIN without TLS */
	uint64_t max_connections;
	uint64_t max_per_ip;
};

struct pop3_settings {
	const struct postern_cfg *listeners;  /* the raw list; parsed by hand */
	char *cert_file, *key_file;
	char *tls_min_protocol;
	char *greeting;
	uint64_t max_line;
	uint64_t auth_timeout_ms;
	uint64_t idle_timeout_ms;
	uint64_t max_auth_attempts;
	uint64_t max_bad_commands;
	char **trusted_proxies;
	uint64_t xclient_max_hops;
	struct postern_auth_config auth;
	/* mailbox store */
	char *mail_root;
	uint64_t mailbox_threads;
	uint64_t lock_timeout_ms;
	uint64_t lock_stale_ms;
	bool fsync;
	bool flag_updates;
};

extern const struct postern_setting_def pop3_setting_defs[];

/* Everything parsed from the module's group. */
struct pop3_config {
	struct pop3_settings set;
	struct pop3_listener_settings *listeners;
	unsigned listener_count;
	struct postern_cidr *trusted;
	unsigned trusted_count;
};

/* Parse and check the group; on error nothing needs freeing. */
int pop3_config_parse(struct postern_mod *mod, const struct postern_cfg *cfg,
		      struct pop3_config *config_r, const char **error_r);
void pop3_config_free(struct pop3_config *config);

/* ---- module context --------------------------------------------------------- */

struct pop3_session;
struct pop3be;

/* What a session needs to know about the listener that accepted it. */
struct pop3_listener {
	struct pop3be *be;
	bool implicit_tls;
	bool plaintext_auth;
};

/* Allocation that aborts on out-of-memory, as the core's does. */
void *pop3_zalloc(size_t size);
char *pop3_strdup(const char *text);

struct pop3_stats {
	uint64_t connections, logins, login_failures, retrieved, retrieved_octets, deleted;
};

struct pop3be {
	struct postern_mod *mod;
	struct pop3_config config;
	/* One per bound listener, the ctx of its connections; fixed at init
	 * (listeners change with a restart). */
	struct pop3_listener *listeners;
	unsigned listener_count;
	struct postern_tls *tls;
	struct postern_userdb *userdb;
	struct postern_auth_failures *failures;
	struct postern_auth_pool *auth_pool;
	struct postern_io *auth_io;
	struct pop3_workers *workers;
	struct postern_io *workers_io;
	/* read by worker threads: set in init, never changed after */
	struct pop3_drop_settings drop_set;
	struct pop3_session *sessions;     /* doubly linked, every open session */
	unsigned session_count;
	struct pop3_stats stats;
	/* Scratch buffers: the loop is single-threaded, so one set serves
	 * every session. line_buf holds the command being handled. */
	char *read_buf, *send_buf;
	char *line_buf;
};

/* ---- session.c ----------------------------------------------------------------- */

/* What a session waits for; while it waits, its input is not processed
 * (pipelined commands stay buffered, in order). */
enum pop3_wait {
	POP3_WAIT_NONE = 0,
	POP3_WAIT_AUTH,          /* the auth pool checks a password */
	POP3_WAIT_AUTH_DELAY,    /* a failure answer waits for its delay */
	POP3_WAIT_SASL,          /* AUTH PLAIN sent "+ ": the next line is the response */
	POP3_WAIT_OPEN,          /* a worker locks and lists the mailbox */
	POP3_WAIT_SEND,          /* RETR/TOP streams a message */
	POP3_WAIT_UPDATE,        /* QUIT: a worker applies the deletions */
};

struct pop3_open_job;
struct pop3_update_job;
struct pop3_sender;

struct pop3_session {
	struct pop3_session *prev, *next;
	struct pop3be *be;
	struct postern_conn *conn;
	const struct pop3_listener *listener;
	enum pop3_state state;
	enum pop3_wait wait;
	bool shutting_down;
	bool in_input;               /* process_input() is running */
	bool stls_pending;           /* STLS answered, handshake not done */

	/* the client: the TCP peer, or what a trusted XCLIENT said */
	char rip[64];
	unsigned rport;
	bool xclient_done;

	char *user;                  /* USER argument, until PASS */
	char *login_user;            /* the canonical name once logged in */
	const char *auth_method;     /* "USER" or "PLAIN", for the log */
	unsigned auth_failures;
	unsigned bad_commands;
	char *delayed_reply;         /* the answer a delay timer will send */
	bool delayed_close;
	struct postern_timer *delay_timer;
	bool auth_submitted;

	struct pop3_open_job *open_job;  /* in flight */
	struct pop3_update_job *update_job; /* QUIT in flight */
	struct pop3_maildrop *drop;      /* TRANSACTION: the snapshot */
	unsigned char *marks;            /* enum pop3_mark per message */
	unsigned deleted_count;
	uint64_t deleted_octets;

	struct pop3_sender *sender;      /* RETR/TOP in progress */
	uint64_t retrieved, sent_octets;
	uint64_t started_ms;
};

/* The connection callback of every listener. */
void pop3_session_event(struct postern_conn *conn, enum postern_conn_event event, void *ctx);

/* Send one line, CRLF added. */
void pop3_reply(struct pop3_session *s, const char *fmt, ...) POSTERN_PRINTF(2, 3);
/* Start waiting: input processing stops, input is paused. */
void pop3_session_wait(struct pop3_session *s, enum pop3_wait wait);
/* The wait is over: process pipelined commands that are buffered. */
void pop3_session_resume(struct pop3_session *s);
/* Count a bad command; closes the session after max_bad_commands. */
void pop3_session_bad_command(struct pop3_session *s);
/* Graceful shutdown: end the session as soon as it is idle. */
void pop3_session_shutdown(struct pop3_session *s);
/* A connection that is still open when the module is unloaded. */
void pop3_session_free(struct pop3_session *s);
/* Log-safe copy of client text: control bytes escaped, cut at 64. */
const char *pop3_safe(const char *text, char *buf, size_t size);

/* ---- authorization.c ------------------------------------------------------------ */

typedef void pop3_handler(struct pop3_session *s, struct pop3_command *cmd);

void pop3_cmd_capa(struct pop3_session *s, struct pop3_command *cmd);
void pop3_cmd_user(struct pop3_session *s, struct pop3_command *cmd);
void pop3_cmd_pass(struct pop3_session *s, struct pop3_command *cmd);
void pop3_cmd_auth(struct pop3_session *s, struct pop3_command *cmd);
void pop3_cmd_stls(struct pop3_session *s, struct pop3_command *cmd);
void pop3_cmd_xclient(struct pop3_session *s, struct pop3_command *cmd);
/* The line after "+ " of AUTH PLAIN (its buffer is wiped by the caller). */
void pop3_sasl_response(struct pop3_session *s, char *line, size_t len);
/* The auth pool's eventfd is readable. */
void pop3_auth_io(struct postern_io *io, int fd, unsigned events, void *ctx);
/* The workers' eventfd is readable. */
void pop3_workers_io(struct postern_io *io, int fd, unsigned events, void *ctx);
/* Forget the session's pending login work (connection closed). */
void pop3_login_cancel(struct pop3_session *s);
/* Hand the mailbox to a worker to close it (and release the lock). */
void pop3_drop_release(struct pop3be *be, struct pop3_maildrop **drop);
/* Is plaintext authentication allowed on this connection now? */
bool pop3_plaintext_allowed(const struct pop3_session *s);

/* ---- transaction.c --------------------------------------------------------------- */

void pop3_cmd_quit(struct pop3_session *s, struct pop3_command *cmd);
void pop3_cmd_stat(struct pop3_session *s, struct pop3_command *cmd);
void pop3_cmd_list(struct pop3_session *s, struct pop3_command *cmd);
void pop3_cmd_uidl(struct pop3_session *s, struct pop3_command *cmd);
void pop3_cmd_retr(struct pop3_session *s, struct pop3_command *cmd);
void pop3_cmd_top(struct pop3_session *s, struct pop3_command *cmd);
void pop3_cmd_dele(struct pop3_session *s, struct pop3_command *cmd);
void pop3_cmd_rset(struct pop3_session *s, struct pop3_command *cmd);
void pop3_cmd_noop(struct pop3_session *s, struct pop3_command *cmd);
/* The connection is gone: QUIT's job goes on without answering. */
void pop3_update_cancel(struct pop3_session *s);

/* ---- sender.c ---------------------------------------------------------------------- */

/* The longest line a listener may accept (max_line's upper bound), + NUL. */
#define POP3_LINE_BUF (65536 + 1)

/* Scratch sizes: a read of READ_CHUNK becomes at most twice as much. */
#define POP3_READ_CHUNK 65536
#define POP3_SEND_BUF (2 * POP3_READ_CHUNK + 16)
/* Fill the output buffer up to this much, then wait for DRAINED. Above
 * the core's low-water mark (64 KiB by default), so DRAINED is armed. */
#define POP3_SEND_TARGET (128 * 1024)

/* Start sending message `i` of the view (RETR: body_lines UINT64_MAX). */
void pop3_sender_start(struct pop3_session *s, unsigned i, uint64_t body_lines);
/* DRAINED: send more. */
void pop3_sender_pump(struct pop3_session *s);
void pop3_sender_free(struct pop3_session *s);

#endif
