/*
 * pop3be: the POP3 back-end server (RFC 1939, CAPA RFC 2449, STLS RFC 2595,
 * AUTH PLAIN RFC 5034), serving the users' Maildirs through lib/mailstore
 * and authenticating through lib/auth.
 *
 * This private header ties the module's files together. Files, one concept
 * each:
 *
 *   command.c      the command parser and the verb table (which states each
 *                  verb is allowed in): pure, no core calls (unit tests, fuzz)
 *   xclient.c      the XCLIENT attributes: pure
 *   dotstuff.c     CRLF conversion, byte-stuffing and TOP's line limit: pure
 *   maildrop.c     a session's locked mailbox snapshot (runs in workers)
 *   workers.c      the thread pool that runs mailbox jobs off the loop
 *   settings.c     the settings table and the listener groups
 *   session.c      connections: input loop, dispatch, replies, timeouts
 *   authorization.c USER, PASS, AUTH, STLS, XCLIENT, CAPA and the login
 *   transaction.c  STAT, LIST, UIDL, RETR, TOP, DELE, RSET, NOOP, QUIT
 *   sender.c       streaming RETR/TOP with output back-pressure
 *   module.c       the module descriptor, hooks and the control command
 *
 * The pure files and maildrop.c/workers.c do not call the core, so that the
 * unit tests and the fuzz target can use them without a daemon. Base64, AUTH
 * PLAIN and the trusted_proxies lists come from libpostern-protocol
 * (postern/sasl.h, postern/cidr.h), shared with the other protocol modules.
 */
#ifndef POP3BE_H
#define POP3BE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mailstore;
struct postern_auth_user;

/* ---- command.c: parser and verb table ----------------------------------- */

/* The session states of RFC 1939. UPDATE is entered by QUIT in
 * TRANSACTION and accepts no command. */
enum pop3_state {
	POP3_STATE_AUTHORIZATION = 0,
	POP3_STATE_TRANSACTION,
	POP3_STATE_UPDATE,
	POP3_STATE_COUNT
};

#define POP3_IN(state) (1u << (state))

enum pop3_verb_id {
	POP3_VERB_CAPA = 0,
	POP3_VERB_QUIT,
	POP3_VERB_USER,
	POP3_VERB_PASS,
	POP3_VERB_AUTH,
	POP3_VERB_STLS,
	POP3_VERB_XCLIENT,
	POP3_VERB_STAT,
	POP3_VERB_LIST,
	POP3_VERB_UIDL,
	POP3_VERB_RETR,
	POP3_VERB_TOP,
	POP3_VERB_DELE,
	POP3_VERB_RSET,
	POP3_VERB_NOOP,
	POP3_VERB_COUNT
};

enum pop3_verb_flags {
	/* The whole rest of the line is one argument (PASS: passwords may
	 * hold spaces; USER likewise). */
	POP3_VERB_REST = 1 << 0,
	/* The line holds a secret: never log it. */
	POP3_VERB_SECRET = 1 << 1,
};

struct pop3_verb {
	const char *name;
	enum pop3_verb_id id;
	unsigned states;     /* POP3_IN() mask */
	unsigned min_args, max_args;
	unsigned flags;      /* enum pop3_verb_flags */
};

#define POP3_MAX_ARGS 8
/* Longest verb we look up; longer words are unknown commands. */
#define POP3_VERB_MAX 16

enum pop3_parse_result {
	POP3_PARSE_OK = 0,
	POP3_PARSE_EMPTY,        /* an empty line */
	POP3_PARSE_BAD_BYTES,    /* NUL, a lone CR or another control byte */
	POP3_PARSE_UNKNOWN,      /* no such verb */
	POP3_PARSE_WRONG_STATE,  /* known verb, not allowed in this state */
	POP3_PARSE_BAD_ARGS,     /* too few or too many arguments */
};

struct pop3_command {
	const struct pop3_verb *verb;
	unsigned argc;
	/* Pointers into the caller's buffer, which the parser splits with
	 * NULs; valid as long as that buffer. */
	char *args[POP3_MAX_ARGS];
};

/* The verb table, POP3_VERB_COUNT entries in enum order. */
extern const struct pop3_verb pop3_verbs[POP3_VERB_COUNT];

/* Look a verb up, case-insensitively; NULL when unknown. */
const struct pop3_verb *pop3_verb_find(const char *name, size_t len);
bool pop3_verb_allowed(const struct pop3_verb *verb, enum pop3_state state);
const char *pop3_state_name(enum pop3_state state);

/*
 * Parse one command line (without its line end) of `len` bytes in `buf`,
 * which is modified (arguments are split in place; buf[len] must be
 * writable and is set to NUL). cmd_r->verb is set whenever the verb was
 * recognised, even when the result is not OK.
 */
enum pop3_parse_result pop3_command_parse(char *buf, size_t len, enum pop3_state state,
					  struct pop3_command *cmd_r);

/* A POP3 message number: 1..max, decimal digits only. 0 or -1. */
int pop3_parse_msgno(const char *arg, unsigned max, unsigned *msgno_r);
/* A non-negative decimal (TOP's line count), saturating at UINT64_MAX. */
int pop3_parse_count(const char *arg, uint64_t *count_r);

/* ---- xclient.c --------------------------------------------------------------- */

struct pop3_xclient {
	char addr[64];      /* the client's IP, canonical text form */
	unsigned port;      /* 0: not given */
	char login[256];    /* LOGIN= hint, "" when absent (never authenticates) */
	unsigned hop;       /* HOP=, 1 when absent */
};

/* Parse XCLIENT's attributes (NAME=value words). Returns 0, or -1 with
 * *error_r set to a static message for the client. */
int pop3_xclient_parse(char *const *args, unsigned argc, struct pop3_xclient *xc_r,
		       const char **error_r);

/* ---- dotstuff.c ---------------------------------------------------------------- */

/* Turns a message file's bytes into the POP3 multi-line form: bare LF
 * becomes CRLF (a CR before LF is kept, lone CRs pass as they are), a line
 * starting with '.' gets another, and TOP stops after the header and
 * `body_lines` lines of the body. The bytes sent, minus the stuffed dots,
 * are exactly the mailstore's CRLF size (vsize). */
struct pop3_stuffer {
	uint64_t body_lines;      /* TOP limit; UINT64_MAX for RETR */
	uint64_t body_lines_sent;
	uint64_t content_bytes;   /* bytes sent, without stuffing: the octets */
	bool at_line_start;
	bool prev_cr;
	bool in_body;
	unsigned line_len;        /* bytes of the current line, counted up to 2 */
	bool done;                /* TOP reached its limit: ignore the rest */
};

void pop3_stuffer_init(struct pop3_stuffer *st, uint64_t body_lines);
/* Convert `len` input bytes; output goes to `out`, which must have room
 * for 2 * len bytes. Returns the bytes written. Stops early (all input
 * counted as consumed) once st->done. */
size_t pop3_stuff(struct pop3_stuffer *st, const char *in, size_t len, char *out);
/* The end of the message: CRLF if the last line was not terminated, then
 * ".\r\n". Writes at most 5 bytes; returns how many. */
size_t pop3_stuff_finish(struct pop3_stuffer *st, char *out);

/* ---- maildrop.c: a session's mailbox (runs in worker threads) ---------------- */

/* One message of the session's view, fixed at login. */
struct pop3_msg {
	uint32_t seq;     /* in the mailstore handle */
	uint32_t uid;
	uint64_t octets;  /* CRLF size */
};

struct pop3_maildrop {
	char *root;
	struct mailstore *box;
	int lock_fd;
	uint32_t uidvalidity;
	unsigned count;
	struct pop3_msg *msgs;
	uint64_t total_octets;
};

enum pop3_drop_status {
	POP3_DROP_OK = 0,
	POP3_DROP_IN_USE,   /* another session holds the lock */
	POP3_DROP_TEMP,     /* try again later (I/O error, lock timeout) */
	POP3_DROP_PERM,     /* unusable (no such directory and cannot create) */
};

/* The file in the Maildir root whose flock() marks a POP3 session. */
#define POP3_SESSION_LOCK_NAME "postern-pop3-session"

struct pop3_drop_settings {
	unsigned lock_timeout_secs;
	unsigned lock_stale_secs;
	bool no_fsync;
	bool flag_updates;   /* move new/ to cur/ at login, \Seen at QUIT */
	void (*log)(void *ctx, int level, const char *msg); /* thread-safe */
	void *log_ctx;
};

/* Lock the mailbox (flock on POP3_SESSION_LOCK_NAME, never waits), open
 * and sync it, compute every message's CRLF size, take the snapshot.
 * *error_r is malloc'd (caller frees) when not OK. */
enum pop3_drop_status pop3_maildrop_open(const struct pop3_drop_settings *set, const char *root,
					 struct pop3_maildrop **drop_r, char **error_r);

/* Marks per message of the view, kept by the session. */
enum pop3_mark {
	POP3_MARK_DELETED = 1 << 0,
	POP3_MARK_RETRIEVED = 1 << 1,
};

/* The UPDATE state: expunge the messages marked deleted, flag \Seen the
 * retrieved ones (with flag_updates). Returns how many deletions failed
 * (messages already gone count as removed); *error_r (malloc'd) tells the
 * first failure. */
unsigned pop3_maildrop_update(struct pop3_maildrop *drop, const unsigned char *marks,
			      bool flag_updates, unsigned *expunged_r, char **error_r);

/* Close the mailbox and release the lock. NULL is fine. */
void pop3_maildrop_close(struct pop3_maildrop **drop);

/* The UIDL of message `i` (0-based) into buf (at least 17 bytes): 8 hex
 * digits of the UID, 8 of UIDVALIDITY (Dovecot's default %08Xu%08Xv). */
void pop3_maildrop_uidl(const struct pop3_maildrop *drop, unsigned i, char *buf);

/* ---- workers.c: jobs off the event loop ------------------------------------- */

struct pop3_workers;
struct pop3_job;

typedef void pop3_job_fn(struct pop3_job *job);

/* Embed first in a job struct. `run` runs on a worker thread; `done` on
 * the loop thread, from pop3_workers_collect(), also for cancelled jobs
 * (it must check `cancelled` and clean up). */
struct pop3_job {
	struct pop3_job *next;
	pop3_job_fn *run;
	pop3_job_fn *done;
	bool cancelled;   /* set and read on the loop thread only */
};

typedef void pop3_workers_log_fn(void *ctx, int level, const char *msg);

int pop3_workers_create(unsigned threads, pop3_workers_log_fn *log, void *log_ctx,
			struct pop3_workers **workers_r, char **error_r);
/* Run every queued job to its end (UPDATE jobs must not be lost), running
 * their `done` with `cancelled` set, then join the threads. */
void pop3_workers_free(struct pop3_workers **workers);
int pop3_workers_fd(const struct pop3_workers *workers);
void pop3_workers_submit(struct pop3_workers *workers, struct pop3_job *job);
/* Run the `done` of finished jobs and flush queued log lines. */
unsigned pop3_workers_collect(struct pop3_workers *workers);
/* Queue a log line from any thread; written by the next collect. */
void pop3_workers_log(void *workers, int level, const char *msg);
unsigned pop3_workers_pending(const struct pop3_workers *workers);

#endif
