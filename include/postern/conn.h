/*
 * Connections: listeners, accepted and outgoing connections with buffered
 * line and byte I/O, TLS, idle timeouts, back-pressure and limits.
 *
 * A connection reports events, not bytes, to one callback. The core owns the
 * fd, the buffers, the TLS state and the timers; whatever path closes a
 * connection (the module, the peer, an error, a timeout, shutdown), the core
 * releases all of them and delivers POSTERN_CONN_CLOSED exactly once, after
 * the callback that is running has returned. It is therefore always safe for
 * a callback to close the connection it was called for, or another one, and
 * to go on touching its own session state until it returns; the session is
 * freed on CLOSED.
 *
 * Every connection is registered with its module, peer, state and age and
 * listed by `posternctl conns`.
 */
#ifndef POSTERN_CONN_H
#define POSTERN_CONN_H

#include <sys/types.h>
#include <postern/common.h>

struct postern_conn;
struct postern_listener;
struct postern_tls;

enum postern_conn_event {
	/* Accepted (for implicit-TLS listeners: once the handshake is done;
	 * a connection whose implicit-TLS handshake fails is closed without
	 * any event, since the module never saw it), or an outgoing
	 * connection is established. */
	POSTERN_CONN_OPEN = 1,
	/* New input is buffered: read lines or bytes until there are none. */
	POSTERN_CONN_INPUT,
	/* The output buffer drained below the low-water mark (see
	 * postern_conn_output_size()); a relay resumes the other side now. */
	POSTERN_CONN_DRAINED,
	/* postern_conn_starttls() finished its handshake. */
	POSTERN_CONN_TLS_READY,
	/* The peer closed its side. Input that was buffered before has been
	 * offered with INPUT first. Unless the callback closes the connection
	 * (or calls postern_conn_close_after_flush() or, since ABI 1.1,
	 * postern_conn_finish_later()), the core closes it when the callback
	 * returns. Not reported while input is paused: a module that pauses
	 * until its pending work is done sees the EOF after it. */
	POSTERN_CONN_EOF,
	/* The idle timeout passed. If the callback neither closes nor resets
	 * the timeout, the core closes the connection when it returns. */
	POSTERN_CONN_TIMEOUT,
	/* Connect, I/O or TLS failure; postern_conn_error() says what. The
	 * core closes the connection when the callback returns. */
	POSTERN_CONN_ERROR,
	/* The connection is gone: free the session state now. Delivered once,
	 * on every path. No other event follows. */
	POSTERN_CONN_CLOSED,
};

/* Handlers must ignore events they do not know: later minor versions may
 * add some. */
typedef void postern_conn_cb(struct postern_conn *conn, enum postern_conn_event event,
			     void *ctx);

/* ---- Listening --------------------------------------------------------- */

struct postern_listen_settings {
	uint32_t struct_size;      /* sizeof(struct postern_listen_settings) */
	const char *address;       /* "127.0.0.1:2525", "[::1]:2525", "*:25" (all v4+v6) */
	struct postern_tls *tls;   /* non-NULL: implicit TLS (the core takes a reference) */
	unsigned max_connections;  /* on this listener; 0 for no limit of its own */
	unsigned max_per_ip;       /* per client IP on this listener; 0 for none */
	/* A protocol line sent (CRLF added) to a client refused over a limit
	 * or during shutdown, e.g. "421 4.7.0 Too many connections". */
	const char *limit_reply;
	size_t max_line;           /* longest line accepted, without CRLF; 0: 8192 */
	uint64_t idle_timeout_ms;  /* initial idle timeout of accepted connections; 0: none */
	uint64_t tls_handshake_timeout_ms; /* 0: 30 s */
};

#define POSTERN_LISTEN_SETTINGS_INIT { .struct_size = sizeof(struct postern_listen_settings) }

/*
 * Bind and listen. Call from the init hook (binding happens before the
 * daemon drops privileges). Each accepted connection starts with `cb` and
 * `ctx`; it gets POSTERN_CONN_OPEN first. NULL with *error_r set on failure.
 * Listeners close when graceful shutdown begins and are freed with the module.
 */
POSTERN_API struct postern_listener *postern_listen(struct postern_mod *mod,
						    const struct postern_listen_settings *settings,
						    postern_conn_cb *cb, void *ctx,
						    const char **error_r);
/* The address actually bound ("127.0.0.1:41234" after asking for port 0). */
POSTERN_API const char *postern_listener_address(const struct postern_listener *listener);

/* ---- Connecting -------------------------------------------------------- */

struct postern_connect_settings {
	uint32_t struct_size;     /* sizeof(struct postern_connect_settings) */
	const char *address;      /* numeric "192.0.2.1:25" or "[2001:db8::1]:25"; no DNS here */
	const char *source;       /* numeric local address to bind, or NULL */
	uint64_t timeout_ms;      /* for the TCP connect and the TLS handshake; 0: 30 s */
	struct postern_tls *tls;  /* non-NULL: TLS from the start (client side) */
	const char *tls_server_name; /* SNI and name to verify; an IP literal is
	                              * verified but not sent as SNI (RFC 6066) */
	size_t max_line;          /* 0: 8192 */
};

#define POSTERN_CONNECT_SETTINGS_INIT { .struct_size = sizeof(struct postern_connect_settings) }

/*
 * Start a non-blocking connect. The callback gets POSTERN_CONN_OPEN once
 * connected (and, with tls, after the handshake), or POSTERN_CONN_ERROR.
 * Returns NULL with *error_r set only for bad settings (an unparsable
 * address); network failures arrive as events.
 */
POSTERN_API struct postern_conn *postern_connect(struct postern_mod *mod,
						 const struct postern_connect_settings *settings,
						 postern_conn_cb *cb, void *ctx,
						 const char **error_r);

/* ---- Events and ownership ---------------------------------------------- */

/* Change the callback and its context (a module allocates its session on
 * OPEN and passes it as ctx from then on). */
POSTERN_API void postern_conn_set_handler(struct postern_conn *conn, postern_conn_cb *cb,
					  void *ctx);

/* ---- Reading ----------------------------------------------------------- */

enum postern_line_flags {
	POSTERN_LINE_CRLF = 1 << 0,    /* ended with CR LF */
	POSTERN_LINE_BARE_LF = 1 << 1, /* ended with a LF not preceded by CR */
	POSTERN_LINE_HAS_CR = 1 << 2,  /* holds a CR that is not part of the line end */
	POSTERN_LINE_HAS_NUL = 1 << 3, /* holds a NUL byte */
};

struct postern_line {
	const char *data; /* NUL-terminated copy of the line, without its line end */
	size_t len;       /* bytes before the line end (data may hold NULs: see flags) */
	unsigned flags;   /* enum postern_line_flags */
};

enum postern_read_status {
	POSTERN_READ_NONE = 0, /* no complete line buffered: wait for INPUT */
	POSTERN_READ_LINE,     /* *line_r is filled */
	/* A line longer than the connection's max_line ended; its bytes were
	 * discarded as they came, so the peer cannot make us buffer it. Answer
	 * with a protocol error and go on reading: the next line is intact. */
	POSTERN_READ_TOO_LONG,
};

/* Take the next line from the input buffer. The line stays valid until the
 * next read, consume or close on this connection. */
POSTERN_API enum postern_read_status postern_conn_read_line(struct postern_conn *conn,
							    struct postern_line *line_r);
/* The buffered input as bytes, for binary relays and literals. */
POSTERN_API const void *postern_conn_input(struct postern_conn *conn, size_t *len_r);
/* Drop `len` bytes from the front of the input buffer. */
POSTERN_API void postern_conn_consume(struct postern_conn *conn, size_t len);
/* Stop or resume reading from the socket (a relay pauses the side whose
 * peer cannot take more output). Input already buffered stays. */
POSTERN_API void postern_conn_pause_input(struct postern_conn *conn, bool paused);
POSTERN_API void postern_conn_set_max_line(struct postern_conn *conn, size_t max_line);

/* ---- Writing ----------------------------------------------------------- */

/* Queue bytes for sending; never blocks and never fails for a live
 * connection (writes to a closing connection are dropped). While the output
 * buffer is above the connection's high-water mark the core stops reading
 * its input, so a peer that does not read cannot make us buffer without
 * bound; DRAINED is reported when it falls below the low-water mark. */
POSTERN_API void postern_conn_write(struct postern_conn *conn, const void *data, size_t len);
POSTERN_API void postern_conn_printf(struct postern_conn *conn, const char *fmt, ...)
	POSTERN_PRINTF(2, 3);
/* Bytes queued and not yet sent. */
POSTERN_API size_t postern_conn_output_size(const struct postern_conn *conn);
/* Output high-water mark (default 256 KiB); low-water is a quarter of it. */
POSTERN_API void postern_conn_set_output_limit(struct postern_conn *conn, size_t high_water);

/* ---- Closing ----------------------------------------------------------- */

/* Close now: queued output is dropped. CLOSED follows once the running
 * callback has returned. Closing twice is harmless. */
POSTERN_API void postern_conn_close(struct postern_conn *conn, const char *reason);
/* Stop reading, send what is queued (bounded by the idle timeout), then
 * close. For "221 Bye" and "-ERR ... " before hanging up. */
POSTERN_API void postern_conn_close_after_flush(struct postern_conn *conn, const char *reason);
POSTERN_API bool postern_conn_is_closing(const struct postern_conn *conn);

/*
 * Half-closed peers (ABI 1.1). A client may send its last commands and
 * shut down its sending side while it still reads the answers.
 *
 * postern_conn_finish_later(): called from the EOF callback, keeps the
 * connection open although the peer's side has ended, because answers are
 * still to come (an authentication or a back-end's reply in progress). No
 * more INPUT or EOF follows; the idle timeout still applies; the module
 * closes the connection itself (usually with close_after_flush()).
 *
 * postern_conn_shutdown_write(): send what is queued, then end our side
 * (over TLS a close_notify, then a TCP FIN); the peer's data is still read
 * and reported. Writes after it are dropped. A proxy passes a client's
 * half-close on to the back-end this way.
 */
POSTERN_API void postern_conn_finish_later(struct postern_conn *conn);
POSTERN_API void postern_conn_shutdown_write(struct postern_conn *conn);

/* ---- Timeouts ---------------------------------------------------------- */

/* Idle timeout: TIMEOUT is reported after `msecs` without any successful
 * read or write. 0 disables. Setting it restarts the countdown. */
POSTERN_API void postern_conn_set_idle_timeout(struct postern_conn *conn, uint64_t msecs);
/* TCP keepalive, to notice peers that vanished without a FIN. */
POSTERN_API int postern_conn_set_keepalive(struct postern_conn *conn, unsigned idle_s,
					   unsigned interval_s, unsigned count);

/* ---- TLS --------------------------------------------------------------- */

/*
 * Upgrade to TLS (STARTTLS, STLS): every byte buffered or in flight from the
 * peer before the handshake is discarded, so commands pipelined after
 * STARTTLS cannot be injected into the TLS session. Call it after queueing
 * the protocol's "go ahead" reply; that reply is flushed first. Accepted
 * connections take the server role, outgoing ones the client role.
 * TLS_READY or ERROR follows. Returns -1 with *error_r set if TLS is
 * already active.
 */
POSTERN_API int postern_conn_starttls(struct postern_conn *conn, struct postern_tls *tls,
				      const char *server_name, const char **error_r);
POSTERN_API bool postern_conn_is_tls(const struct postern_conn *conn);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384", or NULL without TLS. */
POSTERN_API const char *postern_conn_tls_description(const struct postern_conn *conn);

/* ---- Identity and registry --------------------------------------------- */

/* A process-unique id, also used in log lines ("c17"). */
POSTERN_API uint64_t postern_conn_id(const struct postern_conn *conn);
POSTERN_API struct postern_mod *postern_conn_mod(const struct postern_conn *conn);
/* "192.0.2.7:51234" / "[2001:db8::7]:51234", and the IP alone. */
POSTERN_API const char *postern_conn_peer(const struct postern_conn *conn);
POSTERN_API const char *postern_conn_peer_ip(const struct postern_conn *conn);
POSTERN_API const char *postern_conn_local(const struct postern_conn *conn);
POSTERN_API bool postern_conn_is_outgoing(const struct postern_conn *conn);
/* The protocol state shown by `posternctl conns` ("AUTH", "DATA"); copied. */
POSTERN_API void postern_conn_set_state(struct postern_conn *conn, const char *state);
/* The authenticated user shown by `posternctl conns`; copied; NULL clears. */
POSTERN_API void postern_conn_set_user(struct postern_conn *conn, const char *user);
/* Why the last ERROR happened ("connection refused", "TLS: ..."). */
POSTERN_API const char *postern_conn_error(const struct postern_conn *conn);

#endif
