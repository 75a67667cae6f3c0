/*
 * The connection manager's private view, shared by conn.c (buffers, events,
 * close, registry), listener.c (accept and limits), connect.c (outgoing
 * connects) and tls.c (the TLS transport). Nothing outside these files
 * looks inside a connection; modules see conn.h only.
 */
#ifndef POSTERN_CONN_PRIVATE_H
#define POSTERN_CONN_PRIVATE_H

#include <sys/socket.h>
#include "core.h"
#include "line_reader.h"

#define CONN_DEFAULT_MAX_LINE 8192
/* Input buffered at most: a few longest lines, so that pipelined commands
 * are read in few system calls; never less than max_line + 2. */
#define CONN_INPUT_LIMIT_MIN (32 * 1024)
#define CONN_DEFAULT_HIGH_WATER (256 * 1024)
#define CONN_DEFAULT_HANDSHAKE_TIMEOUT_MS 30000
#define CONN_DEFAULT_CONNECT_TIMEOUT_MS 30000
/* close_after_flush on a connection without an idle timeout. */
#define CONN_DEFAULT_LINGER_MS 30000

/* How bytes move: plain sockets or TLS. Swapped under a live connection by
 * STARTTLS, so protocol code never knows which it has. */
struct conn_transport {
	const char *name;
	/* > 0 bytes, 0 at EOF, -1 with errno EAGAIN (try again when the
	 * socket is ready), or -1 with conn->error set for a real failure. */
	ssize_t (*read)(struct postern_conn *conn, void *buf, size_t len);
	ssize_t (*write)(struct postern_conn *conn, const void *data, size_t len);
	/* Bytes already decoded and waiting, which no epoll event announces. */
	bool (*pending)(const struct postern_conn *conn);
};

extern const struct conn_transport conn_plain_transport;
extern const struct conn_transport conn_tls_transport;

enum conn_phase {
	CONN_PHASE_CONNECTING = 0, /* outgoing: TCP connect in progress */
	CONN_PHASE_HANDSHAKE,      /* TLS handshake; OPEN or TLS_READY follows */
	CONN_PHASE_OPEN,           /* the module has it */
};

/* What the connection's single timer is counting. */
enum conn_timer_mode {
	CONN_TIMER_NONE = 0,
	CONN_TIMER_IDLE,      /* idle timeout: TIMEOUT to the module */
	CONN_TIMER_DEADLINE,  /* connect or handshake: a fixed deadline */
	CONN_TIMER_LINGER,    /* close_after_flush: give up flushing */
};

/* Work the registry does for a connection at the end of the iteration,
 * outside any module callback. */
enum conn_work {
	CONN_WORK_FLUSH = 1 << 0, /* output was queued */
	CONN_WORK_READ = 1 << 1,  /* input resumed: read and deliver what waits */
	CONN_WORK_ERROR = 1 << 2, /* a failure found outside the loop (connect) */
};

/* The owner of the timers and watchers conn.c, listener.c and connect.c
 * make: neither a module nor core->self, so that loop_release_owner() of a
 * module never frees them behind the connection's back. */
extern struct postern_mod conn_internal_owner;

struct conn_tls; /* tls.c */

struct conn_outbuf {
	char *buf;            /* NULL while empty */
	size_t size, start, end;
};

struct postern_conn {
	struct conn_registry *reg;
	struct postern_mod *mod;
	uint64_t id;
	int fd;
	struct postern_io *io;
	unsigned io_events;   /* POSTERN_IO_* registered */
	struct postern_listener *listener; /* accepted here; NULL once released */

	postern_conn_cb *cb;
	void *ctx;

	enum conn_phase phase;
	const struct conn_transport *transport;
	struct conn_tls *tls;
	/* TLS to start once the socket is ready: after the TCP connect of an
	 * outgoing connection, or (STARTTLS) once the reply queued before it
	 * is out. A reference, and the server name to ask for. */
	struct postern_tls *pending_tls;
	char *pending_tls_name;
	size_t starttls_boundary;  /* output bytes to send in clear first */
	char *tls_description;

	struct line_reader in;
	struct conn_outbuf out;
	size_t high_water, low_water;

	struct postern_timer *timer;
	enum conn_timer_mode timer_mode;
	uint64_t idle_timeout_ms;
	uint64_t handshake_timeout_ms;
	uint64_t timeout_generation;  /* bumped by set_idle_timeout */
	uint64_t last_activity_ms;

	/* Why input is not read. */
	bool paused_user;          /* postern_conn_pause_input() */
	bool paused_output;        /* output above high water, until low water */
	bool input_blocked;        /* buffer full: wait for the module to take some */
	bool eof_seen, eof_delivered;
	bool hup;                  /* epoll said the peer is gone: watcher removed */
	bool write_blocked;        /* the last write would block: wait for the socket */

	bool outgoing;
	bool is_unix;
	bool opened;               /* OPEN was delivered (and core.conn.opened sent) */
	bool closing;
	bool flush_close;          /* close_after_flush() */
	bool finish_later;         /* finish_later(): EOF does not close */
	bool shutdown_write;       /* shutdown_write(): end our side once flushed */
	bool write_shut;           /* ... and it is ended */
	bool drained_armed;        /* output was at or above low water */
	bool tls_read_wants_write, tls_write_wants_read;
	bool hs_want_write;        /* handshake waits for writability (else readability) */

	unsigned work;             /* enum conn_work */
	char *close_reason;
	char *flush_reason;        /* close_after_flush(): the reason, for later */
	char *error;

	char *peer, *peer_ip, *local;
	/* The peer's IP as a key for per-IP limits: family byte + address. */
	unsigned char ip_key[17];
	unsigned char ip_key_len;  /* 0: none (UNIX sockets) */
	char *state, *user;
	time_t created;
	uint64_t created_ms;

	struct postern_conn *prev, *next;           /* registry, all connections */
	struct postern_conn *work_prev, *work_next; /* registry work list */
	struct postern_conn *closed_next;           /* registry closed list */
};

struct conn_registry {
	struct postern_core *core;
	struct postern_conn *conns, *conns_tail;
	unsigned count;          /* registered, closing or not */
	unsigned live;           /* not closing: what limits count */
	struct postern_listener *listeners;
	struct postern_conn *work_head, *work_tail;
	struct postern_conn *closed_head, *closed_tail;
	/* A 0 ms timer armed while work is queued, so that work queued outside
	 * the loop (at startup, by a test) does not wait for an unrelated
	 * event; the iteration hook does the work. */
	struct postern_timer *kick;
	bool kicked;
	bool topics_declared;
	/* The daemon has one registry, so its ids are process-unique. */
	uint64_t next_id;
};

/* ---- conn.c ------------------------------------------------------------- */

/* A new registered connection on a connected or connecting socket (owned
 * from now on). `peer` may be NULL for a UNIX socket. */
struct postern_conn *conn_new(struct conn_registry *reg, struct postern_mod *mod, int fd,
			      bool outgoing, size_t max_line, postern_conn_cb *cb, void *ctx);
/* Set peer and local from the socket (or the given names for UNIX). */
void conn_set_addresses(struct postern_conn *conn, const struct sockaddr *peer,
			socklen_t peer_len);
/* Start watching the fd; -1 with *error_r on failure. */
int conn_watch(struct postern_conn *conn, const char **error_r);
/* Recompute which events the fd is watched for. */
void conn_update_io(struct postern_conn *conn);
/* The module has it: publish core.conn.opened and deliver OPEN. */
void conn_open(struct postern_conn *conn);
/* Fail with `error`: ERROR to the module (if it knows the connection),
 * then close unless it did. */
void conn_fail(struct postern_conn *conn, const char *error);
/* Deliver ERROR later, from the iteration hook (never inside the call
 * that created the connection). */
void conn_fail_later(struct postern_conn *conn, const char *error);
void conn_close_internal(struct postern_conn *conn, const char *reason);
void conn_set_error(struct postern_conn *conn, const char *error);
/* Arm the single timer. */
void conn_timer_set(struct postern_conn *conn, enum conn_timer_mode mode, uint64_t msecs);
void conn_timer_set_open(struct postern_conn *conn);
void conn_queue_work(struct postern_conn *conn, unsigned work);
/* Begin the TLS handshake (phase HANDSHAKE); -1 with conn->error set. */
int conn_start_tls(struct postern_conn *conn, struct postern_tls *tls, const char *server_name);
/* "connection refused" for ECONNREFUSED, ... */
const char *conn_errno_text(int err);

/* Parse a numeric "ip:port" / "[v6]:port" (and "*:port" when `wildcard`
 * is set: then *wildcard_r is true and the address is 0.0.0.0). */
int conn_parse_address(const char *text, bool wildcard, struct sockaddr_storage *addr_r,
		       socklen_t *len_r, bool *wildcard_r, const char **error_r);
/* "ip:port" / "[v6]:port" into buf; the IP alone into ip_buf if not NULL. */
void conn_format_address(const struct sockaddr *addr, char *buf, size_t size, char *ip_buf,
			 size_t ip_size);
#define CONN_ADDRSTRLEN 64

/* Copy a settings struct a module may have built against an older (smaller)
 * or newer (larger) header: min(sizes) bytes, the rest zeroed. */
int conn_copy_settings(void *dest, size_t dest_size, const void *src, const char **error_r);

/* ---- listener.c --------------------------------------------------------- */

/* The connection closes: give back its place in the listener's limits. */
void listener_conn_released(struct postern_listener *listener, struct postern_conn *conn);
void listener_free_all(struct conn_registry *reg, const struct postern_mod *mod);

/* ---- connect.c ---------------------------------------------------------- */

/* The socket of a connecting connection became ready. */
void connect_ready(struct postern_conn *conn);

/* ---- tls.c -------------------------------------------------------------- */

struct postern_tls *tls_ref(struct postern_tls *tls);
void tls_unref(struct postern_tls **tls);
/* Create the SSL for the connection (server role unless outgoing). */
int tls_conn_new(struct postern_conn *conn, struct postern_tls *tls, const char *server_name,
		 const char **error_r);
/* One handshake step: 1 done (transport swapped, description set),
 * 0 again when the socket is ready (conn->hs_want_write says which way),
 * -1 failed with conn->error set. */
int tls_conn_handshake(struct postern_conn *conn);
/* Free the SSL; with `notify`, send a close_notify first (best effort). */
void tls_conn_free(struct postern_conn *conn, bool notify);
/* One non-blocking attempt at sending close_notify (our side ends). */
void tls_conn_close_notify(struct postern_conn *conn);

#endif
