/*
 * queue-store: the private interfaces between the files of the module.
 *
 * The module keeps every accepted message durably in one directory and
 * delivers it: locally into Maildir (lib/mailstore), remotely through the
 * "transport.smtp" service. Which file does what:
 *
 *   util.c       allocation, growable buffers, lists, error strings, clocks
 *   crc32c.c     the checksum of queue files
 *   record.c     the escaped text records queue and state files are made of
 *   qid.c        queue ids: unique, sortable, safe as file names
 *   qfile.c      the message file format (envelope, body, trailer) and checks
 *   qstate.c     the per-recipient state file format
 *   schedule.c   retry, delay-warning and lifetime arithmetic (pure)
 *   rcpt.c       a recipient's state transitions on a result (pure)
 *   dsn.c        RFC 3464 delivery status notifications (pure)
 *   pool.c       worker threads whose completions run on the event loop
 *   fanout.c     helper threads that run the fsyncs of one batch in parallel
 *   syncer.c     group commit: fsync, rename and unlink in batches
 *   table.c      the in-memory index of messages, their listed state
 *   spool.c      directories, the queue lock, the scan at start, quarantine
 *   receive.c    the "queue" service: check_recipient, begin ... commit
 *   recipient.c  local domains and the user database
 *   scheduler.c  the timer heap, the ready list and message settling
 *   attempt.c    one delivery attempt of a message, local and remote parts
 *   local.c      local delivery into Maildir (runs in a worker thread)
 *   remote.c     remote delivery through the transport service
 *   notify.c     queueing the DSNs a message owes
 *   events.c     bus events and delivery log lines
 *   control.c    `posternctl queue ...`
 *   module.c     settings, hooks
 *
 * Threads: everything runs on the event loop thread except the bodies of
 * pool jobs (the syncer's batch, local deliveries), which get copies of
 * what they need and touch no shared state.
 */
#ifndef QUEUE_STORE_H
#define QUEUE_STORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <postern/mailstore.h>
#include <postern/queue.h>

/* ---- util.c ------------------------------------------------------------- */

void *q_malloc(size_t size);
void *q_calloc(size_t count, size_t size);
void *q_realloc(void *ptr, size_t size);
char *q_strdup(const char *str);
char *q_strndup(const char *str, size_t len);
char *q_strdup_or_null(const char *str);
char *q_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* An error message in a per-thread buffer, valid until the next q_error()
 * of the same thread. */
const char *q_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growable byte buffer, always NUL-terminated. */
struct qbuf {
	char *data;
	size_t len, size;
};
void qbuf_append(struct qbuf *buf, const void *data, size_t len);
void qbuf_puts(struct qbuf *buf, const char *str);
void qbuf_printf(struct qbuf *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void qbuf_free(struct qbuf *buf);

/* An intrusive doubly linked list; a head is a qlist linked to itself. */
struct qlist {
	struct qlist *prev, *next;
};
void qlist_init(struct qlist *head);
bool qlist_empty(const struct qlist *head);
void qlist_add_tail(struct qlist *head, struct qlist *item);
void qlist_del(struct qlist *item);
bool qlist_linked(const struct qlist *item);
/* The struct that embeds `ptr` as `member`. */
#define QLIST_ENTRY(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Milliseconds since the epoch (wall clock). */
uint64_t q_wall_ms(void);
/* 32 random bits (not for secrets). */
uint32_t q_random32(void);
/* "Thu, 21 Nov 2026 12:00:00 +0000" (RFC 5322, UTC). */
void q_rfc5322_date(uint64_t ms, char *buf, size_t size);
/* "2026-11-21T12:00:00Z". */
void q_iso_date(uint64_t ms, char *buf, size_t size);
/* write() all of it; 0 or -1 with errno. */
int q_write_all(int fd, const void *data, size_t len);
/* Lowercase ASCII in place. */
void q_lowercase(char *str);
/* The domain of an address (after the last '@'), or NULL. */
const char *q_address_domain(const char *address);

/* ---- crc32c.c ---------------------------------------------------------- */

uint32_t crc32c_update(uint32_t crc, const void *data, size_t len);
/* The same without the CPU instruction (tests compare the two). */
uint32_t crc32c_update_portable(uint32_t crc, const void *data, size_t len);

/* ---- record.c ----------------------------------------------------------- */

/*
 * Queue and state files are lines of space-separated fields. A string field
 * is "-" for NULL or "+" followed by the value with every byte outside
 * 0x21..0x7e and every '%' written as %XX, so any bytes survive and no field
 * ever holds a space, a line end or a NUL.
 */
void record_put_string(struct qbuf *buf, const char *value);
/* Split `line` (NUL-terminated, no LF) into at most `max` fields in place;
 * returns the count, or -1 when there are more. */
int record_split(char *line, char **fields, int max);
/* Decode a string field: 0 with *value_r (malloc'd, NULL for "-"), or -1. */
int record_get_string(const char *field, char **value_r);
/* A decimal number without sign, at most `max`: 0 or -1. */
int record_get_u64(const char *field, uint64_t max, uint64_t *value_r);

/* ---- qid.c -------------------------------------------------------------- */

/* 16 upper-case hex digits: 8 of seconds, 5 of microseconds, 3 random. */
#define QID_LEN 16
#define QID_SIZE (QID_LEN + 1)
void qid_generate(uint64_t wall_us, uint32_t random, char id_r[QID_SIZE]);
bool qid_valid(const char *id);

/* ---- the message and its recipients -------------------------------------- */

enum qrcpt_state {
	QR_PENDING = 0,
	QR_DELIVERED,
	QR_BOUNCED,   /* permanent failure (5xx, unknown user, deleted with --bounce) */
	QR_EXPIRED,   /* still failing temporarily when max_lifetime passed */
};
#define QR_STATE_COUNT 4
const char *qrcpt_state_name(enum qrcpt_state state);
bool qrcpt_state_parse(const char *name, enum qrcpt_state *state_r);

/* DSNs a recipient is owed (not yet queued). */
enum qdsn_kind {
	QDSN_FAILURE = 1 << 0,
	QDSN_DELAY = 1 << 1,
	QDSN_SUCCESS = 1 << 2,
};
#define QDSN_ALL (QDSN_FAILURE | QDSN_DELAY | QDSN_SUCCESS)

struct qrcpt {
	/* From the envelope (the message file). */
	char *address;
	char *orcpt;
	unsigned notify;          /* enum postern_dsn_notify bits */
	/* The state (the state file). */
	enum qrcpt_state state;
	unsigned attempts;
	uint64_t last_ms;         /* last attempt, 0: none */
	uint64_t next_ms;         /* next attempt (pending only), 0: at once */
	unsigned code;            /* last answer, 0: none */
	char *status;             /* last enhanced status code, or NULL */
	char *text;               /* last answer or local error text, or NULL */
	char *remote_mta;         /* who answered, or NULL */
	unsigned owed;            /* enum qdsn_kind bits */
	/* In memory only. */
	bool local;               /* a local domain (decided at load) */
	/* A local delivery may have happened without being recorded (loaded
	 * at start, or the last attempt failed in an unknown way): ask the
	 * mailbox before delivering again. */
	bool maybe_delivered;
	bool in_flight;
	char *mailbox;            /* local: where it was delivered */
};
void qrcpt_clear(struct qrcpt *rcpt);
bool qrcpt_final(const struct qrcpt *rcpt);

enum qkind {
	QK_NORMAL = 0,
	QK_DSN,                   /* a notification we generated */
};

/* What the message file holds besides the body. */
struct qenvelope {
	char id[QID_SIZE];
	uint64_t arrival_ms;
	char *sender;             /* "" for the null sender */
	enum postern_dsn_ret ret;
	char *envid;
	bool body_8bitmime, smtputf8;
	char *client_address, *client_name, *auth_user, *received_by;
	enum qkind kind;
	unsigned rcpt_count;
	struct qrcpt *rcpts;
};
void qenvelope_clear(struct qenvelope *env);

/* ---- qfile.c ------------------------------------------------------------ */

/*
 * queue/<id>.msg:
 *
 *   POSTERN-QUEUE 1\n
 *   id +<id>\n  arrival <ms>\n  sender +<...>\n  ... rcpt <notify> <orcpt> <address>\n
 *   \n
 *   <the message, CRLF lines, exactly body_size bytes>
 *   \nPOSTERN-END <16 hex: body size> <8 hex: crc32c of all bytes before>\n
 *
 * The trailer has a fixed length, so a file is complete exactly when it ends
 * with a trailer whose size and checksum match.
 */
#define QFILE_VERSION 1
#define QFILE_MAGIC "POSTERN-QUEUE"
#define QFILE_TRAILER_LEN 39
#define QFILE_MAX_HEADER (4u << 20)
#define QFILE_MAX_RCPTS 50000u
#define QFILE_MAX_FIELD 4096u

struct qfile_info {
	uint64_t header_len;      /* offset of the message */
	uint64_t body_size;
	uint64_t file_size;
};

/* Append the header (magic, envelope, blank line) to `out`. */
void qfile_format_header(struct qbuf *out, const struct qenvelope *env);
/* The trailer for a body of `body_size` whose preceding bytes have `crc`. */
void qfile_format_trailer(char out[QFILE_TRAILER_LEN + 1], uint64_t body_size, uint32_t crc);
/*
 * Parse a header at the start of data[0..len). Returns 1 with *env_r and
 * *header_len_r filled, 0 when more bytes are needed (no blank line yet and
 * len below the limit), -1 with *error_r for a bad header.
 */
int qfile_parse_header(const char *data, size_t len, struct qenvelope *env_r,
		       size_t *header_len_r, const char **error_r);
/* Read and check a whole file: header, size, checksum, trailer. */
int qfile_read_fd(int fd, struct qenvelope *env_r, struct qfile_info *info_r,
		  const char **error_r);
/* Check a whole file held in memory (tests, and the fuzz-like unit cases). */
int qfile_check_buffer(const char *data, size_t len, struct qenvelope *env_r,
		       struct qfile_info *info_r, const char **error_r);
/* Check an envelope given to begin(): 0 or -1 with *error_r. */
int qfile_envelope_valid(const struct qenvelope *env, const char **error_r);

/* ---- qstate.c ----------------------------------------------------------- */

/*
 * queue/<id>.st, replaced as a whole (temp file, fsync, rename):
 *
 *   POSTERN-STATE 1\n
 *   id +<id>\n  held 0|1\n  warned 0|1\n
 *   r <index> <state> <attempts> <last_ms> <next_ms> <code> <owed> <status> <mta> <text>\n
 *   POSTERN-END <8 hex: crc32c of all bytes before>\n
 *
 * A message without a state file has all recipients pending, unattempted.
 */
#define QSTATE_VERSION 1
#define QSTATE_MAGIC "POSTERN-STATE"

void qstate_format(struct qbuf *out, const struct qenvelope *env, bool held, bool warned);
/* Apply a state file to the recipients of `env`. 0, or -1 with *error_r. */
int qstate_parse(const char *data, size_t len, struct qenvelope *env, bool *held_r,
		 bool *warned_r, const char **error_r);

/* ---- schedule.c --------------------------------------------------------- */

struct qtiming {
	uint64_t retry_min_ms, retry_max_ms;
	uint64_t delay_warning_ms;   /* 0: no delay notices */
	uint64_t max_lifetime_ms;
};

/* The nominal wait before attempt attempts+1: retry_min doubled per earlier
 * failure, at most retry_max. */
uint64_t sched_backoff(const struct qtiming *timing, unsigned attempts);
/* A random wait in [3/4 delay, delay], so retries spread out. */
uint64_t sched_jitter(uint64_t delay, uint32_t random);
/* When to try again after the attempts-th failure at `now`. */
uint64_t sched_next_attempt(const struct qtiming *timing, uint64_t now, unsigned attempts,
			    uint32_t random);
/* When the delay notice is due (0: never) and when the message expires. */
uint64_t sched_warn_at(const struct qtiming *timing, uint64_t arrival_ms);
uint64_t sched_expire_at(const struct qtiming *timing, uint64_t arrival_ms);
/* The next moment anything is due for a message that is not held: the
 * earliest retry of a pending recipient, the delay notice, the expiry.
 * Notices and expiry wait for an attempt made at or after `released_ms`
 * (a message released after its lifetime gets one more try). UINT64_MAX
 * when nothing is pending. */
uint64_t sched_due(const struct qtiming *timing, const struct qenvelope *env, bool warned,
		   uint64_t released_ms);
/* Was the recipient tried since `released_ms`? (What notices and expiry
 * are about.) */
bool sched_attempted(const struct qrcpt *rcpt, uint64_t released_ms);

/* ---- rcpt.c ------------------------------------------------------------- */

struct qresult {
	unsigned code;            /* 250, 451, 550 ...; 0: no answer */
	const char *status;       /* "5.1.1" or NULL */
	const char *text;
	const char *remote_mta;   /* or NULL */
};

/* Which notices a recipient wants (NOTIFY; 0 means FAILURE and DELAY). */
bool qrcpt_wants(const struct qrcpt *rcpt, enum qdsn_kind kind);
/*
 * Record the result of an attempt on a pending recipient at `now`: 2xx
 * delivered, 5xx bounced, anything else deferred (with the next attempt
 * set) or, past the message's lifetime, expired. Notices the sender is
 * owed are added to rcpt->owed (never for the null sender). Returns the
 * new state.
 */
enum qrcpt_state qrcpt_apply(struct qrcpt *rcpt, const struct qresult *result,
			     const struct qenvelope *env, const struct qtiming *timing,
			     uint64_t now, uint32_t random);
/* Give up on a pending recipient: expired (lifetime) or bounced (deleted
 * by the admin), with a notice owed when the sender wants one. */
void qrcpt_expire(struct qrcpt *rcpt, const struct qenvelope *env, uint64_t now);
void qrcpt_bounce_admin(struct qrcpt *rcpt, const struct qenvelope *env, uint64_t now);
/* The delay notice is due: owe it to each pending, attempted recipient
 * that wants one. Returns how many. */
unsigned qrcpt_owe_delay(struct qenvelope *env);
/* A sensible enhanced status for a result without one. */
const char *qresult_status(const struct qresult *result);

/* ---- dsn.c -------------------------------------------------------------- */

struct dsn_rcpt {
	const struct qrcpt *rcpt;
	const char *action;       /* "failed", "delayed", "delivered", "relayed" */
};

struct dsn_report {
	enum qdsn_kind kind;
	const char *reporting_mta;     /* our host name */
	const struct qenvelope *env;   /* the message reported on */
	uint64_t now_ms;
	uint64_t will_retry_until_ms;  /* delays */
	const char *dsn_id;            /* the queue id of the notice (Message-ID, boundary) */
	const struct dsn_rcpt *rcpts;
	unsigned rcpt_count;
	/* The original message (CRLF): all of it when RET=FULL allows,
	 * else at least its header section; `truncated` says the body was
	 * left out although RET=FULL asked for it (too big). */
	const char *message;
	size_t message_len;
	bool return_full;
	bool too_big;
};

/* Build the notice (CRLF lines) into `out`. */
void dsn_build(struct qbuf *out, const struct dsn_report *report);
/* Length of the header section of a CRLF message, including the empty
 * line (or all of it when there is no empty line). */
size_t dsn_header_section_len(const char *message, size_t len);

/* ---- pool.c ------------------------------------------------------------- */

struct postern_mod;
struct qpool;
struct qjob {
	struct qlist link;
	void (*run)(struct qjob *job);   /* in a worker thread */
	void (*done)(struct qjob *job);  /* on the event loop, after run */
};
int qpool_create(struct postern_mod *mod, unsigned threads, const char *name,
		 struct qpool **pool_r, const char **error_r);
void qpool_submit(struct qpool *pool, struct qjob *job);
/* Wait for every submitted job and run the done callbacks of all. */
void qpool_drain(struct qpool *pool);
/* Drain, stop the threads, free. */
void qpool_free(struct qpool **pool);
unsigned qpool_busy(const struct qpool *pool);

/* ---- fanout.c ----------------------------------------------------------- */

struct qfan;
/* threads (1..64) counts the caller: threads - 1 helpers are started. */
int qfan_create(unsigned threads, struct qfan **fan_r, const char **error_r);
/* Run fn(items[i], ctx) for every item, in parallel, and return when all
 * are finished. One run at a time. */
void qfan_run(struct qfan *fan, void (*fn)(void *item, void *ctx), void *const *items,
	      size_t count, void *ctx);
/* Stop and join the helpers, free. */
void qfan_free(struct qfan **fan);

/* ---- spare.c ------------------------------------------------------------ */

/* A file name in incoming/: a message id or a spare's "spare.<n>". */
#define QFILE_NAME_SIZE 32

/* Recycled queue files, on the loop only. */
struct qspares {
	unsigned *seqs;           /* empty spares ready to take */
	unsigned count, size;
	unsigned incoming;        /* removals on their way to becoming spares */
	unsigned next_seq;
	uint64_t reused;          /* messages written into a spare */
};

struct qs;
void spares_name(unsigned seq, char name[QFILE_NAME_SIZE]);
/* For a removal: a name to move the message file to, or false when there
 * are spares enough (the file is then unlinked). */
bool spares_reserve(struct qs *qs, char name[QFILE_NAME_SIZE]);
/* The removal that reserved name is done; usable: the file is there, empty. */
void spares_arrived(struct qs *qs, const char *name, bool usable);
/* An empty spare opened for writing, its name in name; -1 if none. */
int spares_take(struct qs *qs, char name[QFILE_NAME_SIZE]);
/* Forget every spare (incoming/ is being emptied; deinit). */
void spares_clear(struct qs *qs);

/* ---- syncer.c ----------------------------------------------------------- */

enum qsync_kind {
	QSYNC_NEW = 1,     /* fsync incoming/<file>, rename to queue/<id>.msg */
	QSYNC_STATE,       /* write a state file via a temp file, rename */
	QSYNC_REMOVE,      /* unlink queue/<id>.msg (or move it to
	                    * incoming/<file> as a spare), then, after the
	                    * directory fsync, unlink queue/<id>.st (and
	                    * truncate the spare) */
};

struct qsync_op {
	struct qlist link;
	enum qsync_kind kind;
	char id[QID_SIZE];
	int fd;                   /* NEW: written incoming file (the syncer closes it) */
	char file[QFILE_NAME_SIZE]; /* NEW: its name; REMOVE: the spare's, or "" */
	bool reserved_spare;      /* REMOVE: file was reserved by spares_reserve() */
	bool recycled;            /* REMOVE: the spare is there, empty */
	int write_errno;          /* NEW: writing already failed with this errno */
	struct qbuf state;        /* STATE: the content */
	unsigned seq;             /* STATE: names the temp file */
	/* Result. */
	int error;                /* errno, 0 on success */
	const char *step;         /* what failed: "fsync", "rename", ... */
	void (*done)(struct qsync_op *op, void *ctx);
	void *ctx;
};

struct qs;
int qsyncer_create(struct qs *qs, const char **error_r);
/* Queue an op for the next batch; done() runs on the loop afterwards. */
void qsyncer_submit(struct qs *qs, struct qsync_op *op);
/* Run everything pending now and wait for it (deinit). */
void qsyncer_flush(struct qs *qs);
void qsyncer_free(struct qs *qs);
struct qsync_op *qsync_op_new(enum qsync_kind kind, const char *id);
/* For `queue stats`: batches run, ops they held, the time the syncer
 * thread spent on them (fsync latency, mostly), the largest batch. */
struct qsync_stats {
	uint64_t batches, ops, busy_ms, max_batch;
};
void qsyncer_stats(const struct qs *qs, struct qsync_stats *stats_r);

/* ---- table.c: messages in memory ------------------------------------------ */

struct qattempt;

struct qmsg {
	struct qs *qs;
	struct qenvelope env;
	struct qfile_info info;
	bool held;
	bool warned;
	bool busy;                /* a delivery attempt runs */
	unsigned dsn_inflight;    /* notices about it being queued */
	uint64_t notify_after_ms; /* queueing a notice failed: retry then */
	uint64_t released_ms;     /* last release from hold (memory only) */
	bool delete_requested, delete_bounce;
	/* The state file: a write is in flight / another one is needed. */
	bool st_writing, st_dirty;
	uint64_t due_ms;          /* in the heap: when */
	int heap_index;           /* -1: not in the heap */
	bool ready;               /* in the ready list */
	struct qlist ready_link;
	struct qattempt *attempt;
	struct qmsg *hash_next;
};

/* A file in queue/ that is not a loadable message: kept, listed, never
 * delivered. */
struct qbad {
	struct qlist link;
	char *name;               /* file name in queue/ */
	char *id;                 /* the queue id, or the file name */
	char *reason;
	uint64_t size;
	uint64_t mtime_ms;
};

struct qtable {
	struct qmsg **buckets;
	unsigned bucket_count, count;
};

void qtable_init(struct qtable *table);
void qtable_free(struct qtable *table);
struct qmsg *qtable_find(const struct qtable *table, const char *id);
void qtable_add(struct qtable *table, struct qmsg *msg);
void qtable_remove(struct qtable *table, struct qmsg *msg);
/* Every message, sorted by id (= by arrival): malloc'd array, count in *count_r. */
struct qmsg **qtable_sorted(const struct qtable *table, unsigned *count_r);

struct qmsg *qmsg_new(struct qs *qs);
void qmsg_free(struct qmsg *msg);
/* What `queue list` calls it. */
const char *qmsg_state_name(const struct qmsg *msg);
/* Pending recipients left. */
unsigned qmsg_pending(const struct qmsg *msg);
unsigned qmsg_owed(const struct qmsg *msg);

/* ---- module context ------------------------------------------------------- */

struct qs_settings {
	char *queue_dir;
	char **local_domains;
	char *passwd_file;
	uint64_t passwd_file_check_interval;
	char *mail_root;
	uint64_t quota_bytes;
	uint64_t quota_messages;
	uint64_t mailbox_lock_timeout;
	uint64_t mailbox_lock_stale;
	uint64_t retry_min, retry_max, delay_warning, max_lifetime;
	uint64_t max_parallel_deliveries;
	uint64_t delivery_threads;
	uint64_t sync_threads;
	char *hostname;
	uint64_t bounce_size_limit;
	uint64_t max_message_size;
};

struct postern_timer;
struct postern_userdb;
struct postern_transport_ops;
struct qsyncer;

struct qs {
	struct postern_mod *mod;
	struct qs_settings set;
	struct qtiming timing;
	char *hostname;           /* Reporting-MTA, DSN From */
	char *base_dir;           /* for relative mail locations */

	/* spool.c */
	char *dir;                /* queue_dir */
	int lock_fd, queue_dfd, incoming_dfd;

	/* recipient.c */
	struct postern_userdb *userdb;

	/* table.c */
	struct qtable table;
	struct qlist quarantine;  /* struct qbad */
	struct qlist receiving;   /* struct postern_queue_msg */

	/* spare.c */
	struct qspares spares;

	/* scheduler.c */
	struct qmsg **heap;
	unsigned heap_count, heap_size;
	struct postern_timer *timer;
	struct qlist ready;
	unsigned active;          /* attempts running */
	struct postern_timer *retry_timer; /* failed state writes and notices */

	/* pools */
	struct qsyncer *syncer;
	struct qpool *delivery_pool;
	/* Deliveries into one Maildir at once share its directory fsync. */
	struct mailstore_dirsync *dirsync;

	/* remote.c */
	const struct postern_transport_ops *transport;

	bool started, stopping;
	struct postern_queue_ops ops;

	/* counters for `queue stats` */
	uint64_t n_accepted, n_delivered, n_deferred, n_bounced, n_expired, n_dsn;
};

/* ---- spool.c ------------------------------------------------------------ */

/* Create the directories (as root in init, then given to the run user),
 * take the queue lock. */
int spool_open(struct qs *qs, const char **error_r);
void spool_close(struct qs *qs);
/* Empty incoming/, then load every file of queue/ (start). */
int spool_load(struct qs *qs, const char **error_r);
/* Move a message's files aside as quarantined and list them. */
void spool_quarantine(struct qs *qs, const char *id, const char *reason);
/* Remove a quarantined entry's file. 0 or -1 with *error_r. */
int spool_delete_bad(struct qs *qs, struct qbad *bad, const char **error_r);
/* Open queue/<id>.msg for reading: fd or -1 with errno. */
int spool_open_msg(struct qs *qs, const char *id);

/* ---- receive.c ---------------------------------------------------------- */

struct postern_queue_msg {
	struct qs *qs;
	struct qlist link;        /* qs->receiving */
	struct qenvelope env;
	int fd;
	char file[QFILE_NAME_SIZE]; /* its name in incoming/ */
	char *buf;                /* write buffer */
	size_t buf_len;
	uint32_t crc;
	uint64_t body_size;
	uint64_t header_len;
	int write_errno;          /* writing failed: the message is unusable */
	bool committing, detached;
	postern_queue_commit_cb *done;
	void *done_ctx;
	/* Internal messages (notices) complete through this instead. */
	void (*internal_done)(struct qs *qs, struct qmsg *msg, const char *error, void *ctx);
	void *internal_ctx;
};

void receive_init_ops(struct qs *qs);
/* Start a message from an envelope of our own (notices, and begin()): on
 * success the message takes over the envelope's strings; on failure the
 * caller still owns them. */
struct postern_queue_msg *receive_begin(struct qs *qs, const struct qenvelope *env,
					const char **error_r);
int receive_write(struct postern_queue_msg *msg, const void *data, size_t len,
		  const char **error_r);
void receive_commit_internal(struct postern_queue_msg *msg,
			     void (*done)(struct qs *qs, struct qmsg *msg, const char *error,
					  void *ctx),
			     void *ctx);
void receive_abort(struct postern_queue_msg *msg);
/* deinit: drop every message still being received. */
void receive_free_all(struct qs *qs);

/* ---- recipient.c -------------------------------------------------------- */

int recipient_init(struct qs *qs, const char **error_r);
void recipient_deinit(struct qs *qs);
bool recipient_domain_is_local(const struct qs *qs, const char *address);
enum postern_rcpt_status recipient_check(struct qs *qs, const char *address);

/* Where a local user's mail goes. */
struct qmailbox {
	char *root;               /* the Maildir, absolute; malloc'd */
	uint64_t quota_bytes, quota_messages;
};
/* 1 found, 0 no such user, -1 cannot tell now (*error_r). */
int recipient_mailbox(struct qs *qs, const char *address, struct qmailbox *box_r,
		      const char **error_r);

/* ---- scheduler.c -------------------------------------------------------- */

void sched_init(struct qs *qs);
void sched_deinit(struct qs *qs);
/* Recompute when the message is due and (re)place it in the heap, or act
 * now: queue notices, remove it when nothing is left. The one function to
 * call after anything about a message changed. */
void sched_settle(struct qmsg *msg);
/* A message becomes known (accepted, loaded at start). */
void sched_add(struct qmsg *msg);
/* Forget a message (deleted, finished): out of heap and ready list. */
void sched_forget(struct qmsg *msg);
/* Persist the message's state (coalesced, serialised per message). */
void sched_save_state(struct qmsg *msg);
/* Remove a finished or deleted message from disk and memory. */
void sched_remove(struct qmsg *msg);
/* An attempt ended: free the slot, start what waits. */
void sched_attempt_done(struct qs *qs);
/* Everything not held is due now (flush); one message with `msg`. */
void sched_flush(struct qs *qs, struct qmsg *msg);
/* A reload changed the settings. */
void sched_settings_changed(struct qs *qs);
void sched_start(struct qs *qs);

/* ---- attempt.c ---------------------------------------------------------- */

struct qattempt {
	struct qmsg *msg;
	int fd;                   /* the message file, for the parts */
	unsigned parts_pending;
	bool unsaved;             /* results not yet in the state file */
	uint64_t started_ms;
	struct qlist remote_parts;
};

void attempt_start(struct qmsg *msg);
/* Apply one recipient's result, publish, persist. */
void attempt_result(struct qmsg *msg, unsigned index, const struct qresult *result,
		    const char *mailbox);
/* A part finished; the attempt ends with the last one. */
void attempt_part_done(struct qattempt *attempt);
/* Stop remote parts (shutdown, delete). */
void attempt_cancel_remote(struct qattempt *attempt);

/* ---- local.c ------------------------------------------------------------ */

struct qlocal_job;
/* Deliver the given local recipients in a worker thread. */
void local_start(struct qattempt *attempt, const unsigned *indexes, unsigned count);

/* ---- remote.c ----------------------------------------------------------- */

void remote_start(struct qattempt *attempt, const unsigned *indexes, unsigned count);
void remote_cancel_all(struct qattempt *attempt);

/* ---- notify.c ----------------------------------------------------------- */

/* Queue the notices the message owes; 0 started (settle follows when they
 * are durable), -1 nothing to do or failed (logged, retried later). */
int notify_owed(struct qmsg *msg);

/* ---- events.c ----------------------------------------------------------- */

int events_declare(struct qs *qs, const char **error_r);
void events_accepted(struct qs *qs, const struct qmsg *msg);
void events_rcpt(struct qs *qs, const struct qmsg *msg, const struct qrcpt *rcpt,
		 const char *topic, uint64_t delay_ms);

/* ---- control.c ---------------------------------------------------------- */

int control_register(struct qs *qs, const char **error_r);

#endif
