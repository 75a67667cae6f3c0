/*
 * Authentication and the user database, shared by pop3be, imap4be, the
 * pop3fe/imap4fe proxies and queue-store.
 *
 * - A user database is anything that implements struct postern_userdb_ops
 *   (lookup, verify, free): the passwd-file one here, an LDAP one later.
 * - The passwd-file userdb reads Dovecot's format, so an admin can bring
 *   an existing file: user@domain:{SCHEME}hash:uid:gid:gecos:home:shell:extra
 * - Passwords: SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT and yescrypt through
 *   libcrypt (CRYPT for any of them), PLAIN for tests only; compared in
 *   constant time; wiped from memory after use.
 * - Hashing blocks for milliseconds, so daemons verify through the
 *   asynchronous pool: worker threads, completion signalled on an eventfd
 *   the caller watches on its event loop.
 * - A per-IP failure tracker tells how long to delay a failure answer and
 *   when an address is blocked.
 *
 * lib/auth/README.md has the file format and the settings a module should
 * expose. This library does not use the core (malloc, error strings, a log
 * callback); error strings live in a per-thread buffer valid until the next
 * call into the library from the same thread.
 */
#ifndef POSTERN_AUTH_H
#define POSTERN_AUTH_H

#include <postern/common.h>

enum postern_auth_log_level {
	POSTERN_AUTH_LOG_DEBUG = 0,
	POSTERN_AUTH_LOG_INFO,
	POSTERN_AUTH_LOG_WARNING,
	POSTERN_AUTH_LOG_ERROR,
};

/* Log callback. The library never passes a password to it. */
typedef void postern_auth_log_cb(void *ctx, enum postern_auth_log_level level, const char *msg);

/* ---- Users --------------------------------------------------------------- */

struct postern_auth_field {
	char *key;      /* as written, e.g. "host", "userdb_mail", "proxy" */
	char *value;    /* "" for a bare flag such as "nologin" */
};

/* What a userdb knows about a user. Owned by whoever received it; free
 * with postern_auth_user_free(). Strings are NULL when not set. */
struct postern_auth_user {
	char *name;             /* the canonical (lowercased) login name */
	long uid, gid;          /* -1 when not set */
	char *home;
	/* The mail location as configured ("maildir:~/Maildir" with '~'
	 * expanded to home), or NULL. */
	char *mail;
	/* The Maildir path: from a "maildir:" mail location, else home +
	 * "/Maildir", else NULL (the module then applies its own default). */
	char *maildir;
	struct postern_auth_field *fields;  /* extra fields in file order */
	unsigned field_count;
};

/* The value of an extra field: `key` itself, else "userdb_" + key. NULL
 * when absent. (The proxies read "host", "port", "proxy", "nologin".) */
POSTERN_API const char *postern_auth_user_field(const struct postern_auth_user *user,
						const char *key);
POSTERN_API struct postern_auth_user *postern_auth_user_dup(const struct postern_auth_user *user);
/* NULL and *user == NULL are fine; *user becomes NULL. */
POSTERN_API void postern_auth_user_free(struct postern_auth_user **user);

/* ---- The userdb interface --------------------------------------------------- */

enum postern_auth_result {
	POSTERN_AUTH_OK = 0,
	POSTERN_AUTH_FAILED,        /* wrong password (or none usable) */
	POSTERN_AUTH_UNKNOWN_USER,  /* tell the client the same as FAILED */
	POSTERN_AUTH_BLOCKED,       /* too many failures from this address */
	POSTERN_AUTH_TEMPFAIL,      /* backend error: "try again later" */
};

POSTERN_API const char *postern_auth_result_str(enum postern_auth_result result);

struct postern_userdb;

/*
 * What a user database implements. lookup and verify are called from
 * several worker threads at once and must be thread-safe; they may block
 * (a network query, a password hash). On OK they give the caller a user
 * record it owns (user_r may be NULL when the caller does not want one).
 * On TEMPFAIL they set *error_r.
 */
struct postern_userdb_ops {
	const char *name;           /* "passwd-file", "ldap", ... */
	enum postern_auth_result (*lookup)(struct postern_userdb *db, const char *user,
					   struct postern_auth_user **user_r,
					   const char **error_r);
	enum postern_auth_result (*verify)(struct postern_userdb *db, const char *user,
					   const char *password,
					   struct postern_auth_user **user_r,
					   const char **error_r);
	void (*free)(struct postern_userdb *db);
};

/* The base every userdb embeds first. */
struct postern_userdb {
	const struct postern_userdb_ops *ops;
};

/* Find a user (no password check): delivery and the proxies' routing. */
POSTERN_API enum postern_auth_result postern_userdb_lookup(struct postern_userdb *db,
							   const char *user,
							   struct postern_auth_user **user_r,
							   const char **error_r);
/* Check a password, blocking: use the pool below from an event loop. */
POSTERN_API enum postern_auth_result postern_userdb_verify(struct postern_userdb *db,
							   const char *user, const char *password,
							   struct postern_auth_user **user_r,
							   const char **error_r);
/* NULL and *db == NULL are fine; *db becomes NULL. */
POSTERN_API void postern_userdb_free(struct postern_userdb **db);

/* ---- passwd-file ------------------------------------------------------------ */

struct postern_passwd_file_settings {
	uint32_t struct_size;        /* sizeof(struct postern_passwd_file_settings) */
	const char *path;            /* required */
	/* stat() the file at most this often to see whether it changed
	 * (mtime, size or inode) and reload it; 0: before every lookup. */
	unsigned check_interval_ms;
	size_t max_line;             /* longer lines are rejected; 0: 4096 */
	size_t max_file_size;        /* 0: 64 MiB */
	/* Accept {PLAIN} passwords. Off: such users cannot log in. Either
	 * way each PLAIN entry is logged as a warning when the file loads. */
	bool allow_plain;
	postern_auth_log_cb *log;
	void *log_ctx;
};

#define POSTERN_PASSWD_FILE_SETTINGS_INIT \
	{ .struct_size = sizeof(struct postern_passwd_file_settings), .check_interval_ms = 1000 }

/*
 * Open a passwd-file userdb. The file is read now: a file that cannot be
 * read is an error; malformed lines are skipped, each logged with its line
 * number. Later reloads that fail keep the previous contents.
 */
POSTERN_API int postern_passwd_file_open(const struct postern_passwd_file_settings *set,
					 struct postern_userdb **db_r, const char **error_r);
/* Users loaded and lines rejected by the last (re)load. */
POSTERN_API void postern_passwd_file_counts(struct postern_userdb *db, unsigned *users_r,
					    unsigned *bad_lines_r);

/* ---- Passwords ---------------------------------------------------------------- */

/* Longest password checked; longer ones never match (the SHA-crypt cost
 * grows with the length: a megabyte password is a denial of service). */
#define POSTERN_PASSWORD_MAX 1024

/*
 * Check `password` against a stored "{SCHEME}hash" (a bare "$..." crypt
 * hash counts as {CRYPT}, as in Dovecot's passwd-file). The computed hash
 * is compared in constant time. Returns 1 match, 0 mismatch, -1 when the
 * stored value is unusable (unknown scheme, malformed hash, hash not of
 * the named scheme): an error, never a match.
 */
POSTERN_API int postern_password_verify(const char *stored, const char *password,
					const char **error_r);
/*
 * Hash a password: scheme "SHA512-CRYPT", "SHA256-CRYPT", "BLF-CRYPT",
 * "YESCRYPT" or "PLAIN" (case-insensitive; NULL: the default). rounds 0
 * takes the scheme's default (libcrypt's, and cost 10 for BLF-CRYPT). The
 * salt comes from getrandom(). *hash_r is malloc'd "{SCHEME}hash"; yescrypt
 * is written "{CRYPT}$y$..." because that is how Dovecot reads it.
 * Returns 0 or -1.
 */
POSTERN_API int postern_password_hash(const char *scheme, const char *password, unsigned rounds,
				      char **hash_r, const char **error_r);
/* "YESCRYPT" when libcrypt here supports it, else "SHA512-CRYPT". */
POSTERN_API const char *postern_password_default_scheme(void);
/* Is the stored value's scheme one for tests only (PLAIN)? */
POSTERN_API bool postern_password_is_test_only(const char *stored);
/* Can this libcrypt hash with the scheme? */
POSTERN_API bool postern_password_scheme_supported(const char *scheme);

/* Compare in time that depends only on the lengths. */
POSTERN_API bool postern_auth_ct_equal(const void *a, size_t a_len, const void *b, size_t b_len);

/* ---- Per-IP failure tracking ------------------------------------------------------ */

struct postern_auth_failures;

struct postern_auth_failures_settings {
	uint32_t struct_size;        /* sizeof(struct postern_auth_failures_settings) */
	unsigned max_entries;        /* addresses remembered (LRU); 0: 4096 */
	unsigned window_secs;        /* failures older than this are forgotten; 0: 600 */
	unsigned block_after;        /* failures in the window that block; 0: 10 */
	unsigned block_secs;         /* how long a block lasts; 0: 600 */
	unsigned delay_initial_ms;   /* delay after the first failure; 0: 500 */
	unsigned delay_max_ms;       /* doubling up to this; 0: 15000 */
	unsigned ipv6_prefix;        /* IPv6 addresses count per prefix; 0: 64 */
	/* The clock in milliseconds (tests inject one); NULL: monotonic. */
	uint64_t (*clock_ms)(void *ctx);
	void *clock_ctx;
};

#define POSTERN_AUTH_FAILURES_SETTINGS_INIT \
	{ .struct_size = sizeof(struct postern_auth_failures_settings) }

/* Fixed memory: max_entries slots allocated once. Not thread-safe: use it
 * from one thread (the pool uses it only inside submit and collect). */
POSTERN_API int postern_auth_failures_create(const struct postern_auth_failures_settings *set,
					     struct postern_auth_failures **failures_r,
					     const char **error_r);
POSTERN_API void postern_auth_failures_free(struct postern_auth_failures **failures);
/* Count a failed login from `ip` (text form; anything unparsable counts
 * as one address). Returns how long to delay the failure answer, in ms. */
POSTERN_API unsigned postern_auth_failures_add(struct postern_auth_failures *failures,
					       const char *ip);
/* 0 when `ip` may try; else milliseconds until its block ends. */
POSTERN_API uint64_t postern_auth_failures_blocked(struct postern_auth_failures *failures,
						   const char *ip);
/* Failures of `ip` in the current window. */
POSTERN_API unsigned postern_auth_failures_count(struct postern_auth_failures *failures,
						 const char *ip);

/* ---- The asynchronous verifier ------------------------------------------------------ */

struct postern_auth_pool;

struct postern_auth_pool_settings {
	uint32_t struct_size;        /* sizeof(struct postern_auth_pool_settings) */
	unsigned threads;            /* worker threads; 0: 2 */
	/* Requests queued or running at most; more are refused (answer
	 * "try again later"). 0: 256. */
	unsigned max_pending;
	/* Optional, not owned: consulted on submit (blocked addresses are
	 * answered BLOCKED at once, without hashing) and fed on failures. */
	struct postern_auth_failures *failures;
	/* Called from postern_auth_pool_collect(), on the caller's thread:
	 * one line per failure ("user=... rip=..."), never the password. */
	postern_auth_log_cb *log;
	void *log_ctx;
};

#define POSTERN_AUTH_POOL_SETTINGS_INIT { .struct_size = sizeof(struct postern_auth_pool_settings) }

/* A finished request, handed to the collect callback. */
struct postern_auth_reply {
	enum postern_auth_result result;
	void *ctx;                       /* as given to submit */
	const char *user;                /* as submitted */
	const char *remote_ip;           /* as submitted */
	/* On OK: the user record. The callback may keep it by setting this
	 * to NULL; otherwise it is freed after the callback. */
	struct postern_auth_user *user_info;
	/* Not OK: wait this long before answering the client (a timer, not
	 * a sleep). */
	unsigned delay_ms;
	const char *error;               /* TEMPFAIL: for the log, not the client */
};

typedef void postern_auth_done_cb(struct postern_auth_reply *reply);

/* Start the worker threads. `db` is not owned and must outlive the pool. */
POSTERN_API int postern_auth_pool_create(struct postern_userdb *db,
					 const struct postern_auth_pool_settings *set,
					 struct postern_auth_pool **pool_r, const char **error_r);
/* Stop and join the workers; unfinished requests are dropped without
 * their callback. *pool becomes NULL. */
POSTERN_API void postern_auth_pool_free(struct postern_auth_pool **pool);
/* The eventfd to watch for reading (non-blocking): readable when results
 * wait for postern_auth_pool_collect(). */
POSTERN_API int postern_auth_pool_fd(const struct postern_auth_pool *pool);
/*
 * Queue a password check. user, password and remote_ip are copied (the
 * copy of the password is wiped after the check; the caller wipes its
 * own). `ctx` comes back in the reply. Returns 0, or -1 when the queue is
 * full or on a bad argument (answer the client "try again later").
 */
POSTERN_API int postern_auth_pool_submit(struct postern_auth_pool *pool, const char *user,
					 const char *password, const char *remote_ip, void *ctx,
					 const char **error_r);
/* Forget every request with this ctx (its connection went away): no
 * callback will be made for them. */
POSTERN_API void postern_auth_pool_cancel(struct postern_auth_pool *pool, void *ctx);
/* Call `cb` for each finished request; returns how many. Call it when the
 * fd is readable (it also clears the fd). */
POSTERN_API unsigned postern_auth_pool_collect(struct postern_auth_pool *pool,
					       postern_auth_done_cb *cb);

#endif
