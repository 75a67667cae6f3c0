/*
 * The smtp module's private interfaces: the module context, its settings,
 * the inbound session and the outbound transport. Which file does what:
 *
 *   smtp.c          module hooks, settings table, listeners, `smtp stats`
 *   session.c       an inbound connection: events, input loop, replies,
 *                   timeouts, shutdown
 *   session_cmd.c   the command table and the envelope commands
 *   session_data.c  DATA and BDAT: scanner, message, queue hand-off
 *   session_auth.c  AUTH PLAIN/LOGIN through lib/auth's pool
 *   received.c      the Received header and submission's Date/Message-ID
 *   command.c, address.c, params.c   command-line parsers (parse.h)
 *   data_scanner.c  end of DATA, dot-stuffing, line checks (data_scanner.h)
 *   message.c       the message as queued (message.h)
 *   transport.c     the "transport.smtp" service: jobs, destinations,
 *                   routes (relay_host or MX), per-destination limits
 *   client.c        one outbound SMTP conversation
 *   reply.c         reply parser and dot-stuffing (wire.h)
 *   dns.c           c-ares on the event loop
 *   util.c          allocation helpers
 */
#ifndef SMTP_PRIVATE_H
#define SMTP_PRIVATE_H

#include <postern/postern.h>
#include <postern/queue.h>
#include <postern/transport.h>
#include <postern/auth.h>
#include <postern/auth_settings.h>
#include "parse.h"
#include "data_scanner.h"
#include "message.h"
#include <postern/cidr.h>
#include "wire.h"

/* ---- util.c ------------------------------------------------------------ */

/* Allocation that aborts on out-of-memory, like the core's. */
void *smtp_alloc(size_t size);
void *smtp_realloc(void *ptr, size_t size);
char *smtp_strdup(const char *str);
char *smtp_asprintf(const char *fmt, ...) POSTERN_PRINTF(1, 2);

/* ---- settings ---------------------------------------------------------- */

struct smtp_settings {
	/* Listeners by kind. */
	char **listen;
	char **submission_listen;
	char **submission_tls_listen;
	char *hostname;
	char *greeting;
	char *cert_file, *key_file;
	char *tls_min_protocol;
	uint64_t max_connections, max_per_ip;
	uint64_t submission_max_connections, submission_max_per_ip;
	/* Input limits. */
	uint64_t max_command_line, max_auth_line, max_text_line;
	uint64_t max_recipients, max_message_size, max_errors, max_hops;
	uint64_t command_timeout, data_timeout;
	/* Policy. */
	char **relay_networks;
	bool smtp_auth;
	bool auth_without_tls;
	bool submission_add_headers;
	/* AUTH (lib/auth). */
	struct postern_auth_config auth;
	/* Outbound. */
	char *relay_host;
	uint64_t outbound_port;
	char *helo_name;
	bool outbound_starttls;
	bool outbound_tls_verify;
	char *outbound_tls_ca_file;
	uint64_t outbound_connect_timeout, outbound_greeting_timeout;
	uint64_t outbound_command_timeout, outbound_data_timeout, outbound_final_timeout;
	uint64_t outbound_max_per_destination, outbound_max_connections;
	uint64_t outbound_max_reply_line;
	uint64_t outbound_max_mx;
	bool outbound_ipv6;
	char *dns_servers;
	uint64_t dns_timeout;
};

extern const struct postern_setting_def smtp_setting_defs[];

/* ---- the module -------------------------------------------------------- */

enum smtp_kind {
	SMTP_KIND_SMTP = 0,        /* port 25: AUTH optional, relay by policy */
	SMTP_KIND_SUBMISSION,      /* RFC 6409 with STARTTLS */
	SMTP_KIND_SUBMISSIONS,     /* RFC 8314 implicit TLS */
	SMTP_KIND_COUNT
};

struct smtp;

/* What a listener's sessions need to know: the policy of their kind. */
struct smtp_listener_ctx {
	struct smtp *smtp;
	enum smtp_kind kind;
};

struct smtp_stats {
	uint64_t connections, sessions_active;
	uint64_t messages_accepted, messages_rejected, recipients_accepted;
	uint64_t recipients_rejected, auth_ok, auth_failed, tls_started;
	uint64_t protocol_errors, relay_denied;
	uint64_t out_jobs, out_jobs_active, out_connections, out_delivered, out_deferred,
		out_bounced;
};

struct smtp_session;
struct smtp_outbound;

struct smtp {
	struct postern_mod *mod;
	struct smtp_settings set;
	struct postern_tls *tls_server;
	const struct postern_queue_ops *queue;
	struct postern_cidr *relay_nets;
	unsigned relay_net_count;
	struct smtp_listener_ctx kinds[SMTP_KIND_COUNT];
	/* AUTH: NULL pool when no passwd_file is set. */
	struct postern_userdb *userdb;
	struct postern_auth_failures *failures;
	struct postern_auth_pool *auth_pool;
	struct postern_io *auth_io;
	struct smtp_session *sessions; /* every open inbound session */
	struct smtp_outbound *outbound;
	struct smtp_stats stats;
	uint64_t next_session_id;
};

const char *smtp_kind_name(enum smtp_kind kind);

/* ---- session.c --------------------------------------------------------- */

enum smtp_phase {
	SMTP_PHASE_INIT = 0,  /* no HELO/EHLO yet */
	SMTP_PHASE_READY,     /* greeted, no transaction */
	SMTP_PHASE_MAIL,      /* MAIL accepted */
	SMTP_PHASE_RCPT,      /* at least one RCPT accepted */
};

enum smtp_mode {
	SMTP_MODE_COMMAND = 0,
	SMTP_MODE_DATA,       /* reading DATA up to the end marker */
	SMTP_MODE_BDAT,       /* reading a BDAT chunk's bytes */
	SMTP_MODE_AUTH,       /* waiting for a SASL response line */
	SMTP_MODE_WAIT,       /* input paused: auth check, commit or a delayed reply */
	SMTP_MODE_TLS,        /* STARTTLS handshake running */
};

struct smtp_txn {
	char *sender;
	struct smtp_mail_args mail; /* address, envid, auth point into owned copies */
	char *envid;
	struct postern_queue_rcpt *rcpts;
	unsigned rcpt_count, rcpt_alloc;
	/* DATA/BDAT. */
	struct postern_queue_msg *msg;
	struct smtp_message *message;
	struct smtp_data_scanner scanner;
	bool data_started;        /* DATA or a first BDAT was accepted */
	bool bdat;                /* the message comes in BDAT chunks */
	bool bdat_failed;         /* an earlier chunk failed: discard the rest */
	char queue_error[256];    /* why the queue's write() failed */
	uint64_t bdat_remaining;  /* bytes of the current chunk still to read */
	bool bdat_last;
	bool committing;          /* commit() called, done not yet */
	bool bdat_discard;        /* this chunk is read and thrown away */
	const char *bdat_discard_reply; /* the reply once it has been read */
};

struct smtp_session {
	struct smtp *smtp;
	struct smtp_session *prev, *next;
	struct postern_conn *conn;
	enum smtp_kind kind;
	uint64_t id;
	enum smtp_phase phase;
	enum smtp_mode mode;
	bool esmtp;
	char *helo;
	char *auth_user;
	unsigned errors;
	bool quitting;
	/* AUTH exchange. */
	int auth_mech;            /* enum in session_auth.c */
	unsigned auth_step;
	char *auth_login_user;
	struct postern_timer *delay_timer;
	char *delayed_reply;      /* sent when delay_timer fires */
	bool close_after_delay;
	/* The line being handled, copied so parsing can work in place. */
	char *line;
	size_t line_size;
	struct smtp_txn txn;
};

void smtp_session_event(struct postern_conn *conn, enum postern_conn_event event, void *ctx);
/* Send one reply line (CRLF added). */
void smtp_reply(struct smtp_session *session, const char *fmt, ...) POSTERN_PRINTF(2, 3);
/* Count a protocol error; past max_errors the session is ended. */
void smtp_session_error(struct smtp_session *session);
/* Stop reading until smtp_session_resume() (async work pending). */
void smtp_session_wait(struct smtp_session *session);
/* Back to command mode and go on with buffered input. */
void smtp_session_resume(struct smtp_session *session);
/* End the session with a final reply (421/221), flushed first. */
void smtp_session_close(struct smtp_session *session, const char *reply, const char *reason);
/* Graceful shutdown began: end idle sessions now, others after their
 * current command. */
void smtp_sessions_shutdown(struct smtp *smtp);
/* Forget the transaction (RSET, HELO, after a message). */
void smtp_txn_reset(struct smtp_session *session);
bool smtp_session_is_submission(const struct smtp_session *session);
bool smtp_session_tls_offered(const struct smtp_session *session);
bool smtp_session_auth_offered(const struct smtp_session *session);

/* ---- session_cmd.c ----------------------------------------------------- */

/* Handle one complete command line (len bytes, NUL-terminated copy). */
void smtp_session_command(struct smtp_session *session, char *line, size_t len);

/* ---- session_data.c ---------------------------------------------------- */

void smtp_cmd_data(struct smtp_session *session, char *args);
void smtp_cmd_bdat(struct smtp_session *session, char *args);
/* Feed buffered input in DATA or BDAT mode; returns bytes consumed. */
size_t smtp_session_data_input(struct smtp_session *session, const void *data, size_t len);
/* The connection is gone: abort or detach the message. */
void smtp_session_data_gone(struct smtp_session *session);

/* ---- session_auth.c ---------------------------------------------------- */

int smtp_auth_init(struct smtp *smtp, const char **error_r);
void smtp_auth_deinit(struct smtp *smtp);
void smtp_cmd_auth(struct smtp_session *session, char *args);
/* A line in SMTP_MODE_AUTH. */
void smtp_auth_response(struct smtp_session *session, char *line, size_t len);
/* The session is going away: forget its pending verification. */
void smtp_auth_session_gone(struct smtp_session *session);

/* ---- received.c -------------------------------------------------------- */

/* The Received header for the current transaction (malloc'd, CRLF lines). */
char *smtp_received_header(struct smtp_session *session);
/* "Date: ..." and "Message-ID: <...>" for submission (malloc'd, no CRLF). */
char *smtp_date_header(void);
char *smtp_message_id_header(struct smtp_session *session);
/* RFC 5322 date-time of `t`, local time with numeric zone. */
void smtp_format_date(time_t t, char *buf, size_t size);

/* ---- transport.c ------------------------------------------------------- */

int smtp_outbound_init(struct smtp *smtp, const char **error_r);
void smtp_outbound_deinit(struct smtp *smtp);
void smtp_outbound_stats(struct smtp *smtp, struct postern_json *json, struct postern_str *text);

#endif
