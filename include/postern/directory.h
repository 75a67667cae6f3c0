/*
 * The back-end directory: where a proxied user's sessions go, and which
 * back-ends can take them now. Shared by the pop3fe and imap4fe proxies.
 *
 * - Back-ends are named (address, port, TLS) and grouped in pools.
 * - A user goes to the back-end or pool named by the `host=` field of the
 *   user database, or else to a back-end of the default pool chosen by a
 *   consistent hash of the user name: every back-end owns `vnodes` points
 *   on a ring, a user belongs to the first point at or after the hash of
 *   the name, so adding one back-end to a pool of N moves about 1/(N+1)
 *   of the users and no one else.
 * - Each user has an ordered failover list: the primary first, then the
 *   next distinct back-ends met walking the ring.
 * - Each back-end has a health state (up/down, open sessions, the last
 *   error and when the state last changed); a down back-end is not
 *   offered new sessions until something (the proxy's health check)
 *   marks it up again.
 *
 * The library is pure: no core calls, no I/O, no threads, and the clock is
 * injected, so it is unit-testable on its own. Checking health (connecting,
 * reading a greeting) is the proxy's job (include/postern/proxy.h); it
 * reports the outcomes here. Not thread-safe: use it from one thread.
 * lib/directory/README.md has the settings a proxy exposes.
 */
#ifndef POSTERN_DIRECTORY_H
#define POSTERN_DIRECTORY_H

#include <postern/common.h>

struct postern_directory;
struct postern_backend;

/* Longest back-end and pool name. */
#define POSTERN_BACKEND_NAME_MAX 64
/* Back-ends in one directory at most. */
#define POSTERN_DIRECTORY_MAX_BACKENDS 1024
/* Points per back-end on the ring at most. */
#define POSTERN_DIRECTORY_MAX_VNODES 1024

struct postern_directory_settings {
	uint32_t struct_size;   /* sizeof(struct postern_directory_settings) */
	/* Points per back-end on a pool's ring; 0: 160. More points spread
	 * users more evenly at the cost of memory (16 bytes a point). */
	unsigned vnodes;
	/* The pool of users without a host= field; NULL: "default". */
	const char *default_pool;
	/* The clock in milliseconds (tests inject one); NULL: monotonic. */
	uint64_t (*clock_ms)(void *ctx);
	void *clock_ctx;
};

#define POSTERN_DIRECTORY_SETTINGS_INIT \
	{ .struct_size = sizeof(struct postern_directory_settings) }

/* What a back-end is. Strings are copied. */
struct postern_backend_config {
	uint32_t struct_size;   /* sizeof(struct postern_backend_config) */
	const char *name;       /* unique: letters, digits, '.', '_', '-' */
	const char *host;       /* numeric IPv4 or IPv6 address (no DNS) */
	unsigned port;          /* 1..65535 */
	bool tls;               /* TLS from the start of the connection */
	const char *pool;       /* NULL: "default" */
	/* Sessions at once on this back-end; 0: no limit. */
	unsigned max_sessions;
};

#define POSTERN_BACKEND_CONFIG_INIT { .struct_size = sizeof(struct postern_backend_config) }

/* An empty directory. 0, or -1 with *error_r set (bad settings). */
POSTERN_API int postern_directory_new(const struct postern_directory_settings *set,
				      struct postern_directory **dir_r, const char **error_r);
/* NULL and *dir == NULL are fine; *dir becomes NULL. Every back-end
 * pointer handed out dies with it. */
POSTERN_API void postern_directory_free(struct postern_directory **dir);

/*
 * Add a back-end (before the first route). Names must be unique, the
 * address numeric. Back-ends start up: a new one gets sessions until it
 * fails. 0, or -1 with *error_r set.
 */
POSTERN_API int postern_directory_add(struct postern_directory *dir,
				      const struct postern_backend_config *config,
				      const char **error_r);

/* Back-ends in the order they were added. */
POSTERN_API unsigned postern_directory_count(const struct postern_directory *dir);
POSTERN_API struct postern_backend *postern_directory_backend(struct postern_directory *dir,
							      unsigned index);
/* By name; NULL when unknown. */
POSTERN_API struct postern_backend *postern_directory_find(struct postern_directory *dir,
							   const char *name);
/* Does a pool of this name have members? */
POSTERN_API bool postern_directory_has_pool(const struct postern_directory *dir,
					    const char *pool);

/*
 * The user's ordered failover list: every member of the user's pool,
 * primary first, whatever their health (the caller skips the ones that
 * cannot take a session when it gets to them: postern_backend_usable()).
 *
 * `host` is the user's host= field or NULL:
 *   - NULL or "": the default pool, by the hash of `user`;
 *   - the name of a pool: that pool, by the hash of `user`;
 *   - the name of a back-end, or its address ("192.0.2.7", "192.0.2.7:110",
 *     "[2001:db8::7]:110"): the back-ends that match come first (in ring
 *     order when an address without port matches several), then the rest
 *     of the first match's pool in ring order.
 * `port` (the user's port= field, or 0) narrows an address match.
 *
 * Writes at most `max` back-ends to list_r and returns how many (0 when the
 * pool is empty). Returns -1 with *error_r set when `host` names nothing
 * known: that is a configuration mismatch to report, not to guess around.
 * `user` is compared in lowercase.
 */
POSTERN_API int postern_directory_route(struct postern_directory *dir, const char *user,
					const char *host, unsigned port,
					struct postern_backend **list_r, unsigned max,
					const char **error_r);

/* The 64-bit hash of the ring (exposed for tests and tools). */
POSTERN_API uint64_t postern_directory_hash(const void *data, size_t len);

/* ---- One back-end ---------------------------------------------------------- */

POSTERN_API const char *postern_backend_name(const struct postern_backend *be);
POSTERN_API const char *postern_backend_pool(const struct postern_backend *be);
/* The numeric host, its port, and "host:port" / "[v6]:port" for connecting. */
POSTERN_API const char *postern_backend_host(const struct postern_backend *be);
POSTERN_API unsigned postern_backend_port(const struct postern_backend *be);
POSTERN_API const char *postern_backend_address(const struct postern_backend *be);
POSTERN_API bool postern_backend_tls(const struct postern_backend *be);
/* Index in the directory (postern_directory_backend()). */
POSTERN_API unsigned postern_backend_index(const struct postern_backend *be);

/* The caller's own per-back-end data (a health-check timer). */
POSTERN_API void postern_backend_set_data(struct postern_backend *be, void *data);
POSTERN_API void *postern_backend_data(const struct postern_backend *be);

/* ---- Health ------------------------------------------------------------------ */

POSTERN_API bool postern_backend_is_up(const struct postern_backend *be);
/* Up and below its session limit: may be offered a new session now. */
POSTERN_API bool postern_backend_usable(const struct postern_backend *be);

/*
 * Report a failure (connect refused or timed out, no greeting, a failed
 * health check): the back-end is down from now on. `error` is copied (and
 * cut at 255 bytes). Returns true when this changed the state (it was up):
 * the caller announces it (backend.down).
 */
POSTERN_API bool postern_backend_mark_down(struct postern_backend *be, const char *error);
/* Report a success (a passing health check). Returns true when the
 * back-end was down: the caller announces it (backend.up). */
POSTERN_API bool postern_backend_mark_up(struct postern_backend *be);
/* Record an error that does not change the state (shown as last error). */
POSTERN_API void postern_backend_note_error(struct postern_backend *be, const char *error);

/* Sessions: begin when a connection to the back-end is started, end when
 * that connection is gone. Every begin has exactly one end. */
POSTERN_API void postern_backend_session_begin(struct postern_backend *be);
POSTERN_API void postern_backend_session_end(struct postern_backend *be);

POSTERN_API unsigned postern_backend_sessions(const struct postern_backend *be);
POSTERN_API unsigned postern_backend_max_sessions(const struct postern_backend *be);
/* The last error reported, NULL when none yet. */
POSTERN_API const char *postern_backend_last_error(const struct postern_backend *be);
/* Clock value of the last up/down change (of the creation at first). */
POSTERN_API uint64_t postern_backend_last_change_ms(const struct postern_backend *be);
/* Sessions ever begun; up->down transitions ever. */
POSTERN_API uint64_t postern_backend_total_sessions(const struct postern_backend *be);
POSTERN_API uint64_t postern_backend_down_count(const struct postern_backend *be);

#endif
