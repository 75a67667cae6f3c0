/*
 * Connections: buffered line and byte I/O over a plain or TLS transport,
 * events to one callback, idle timeouts, back-pressure, deferred close and
 * the registry behind `posternctl conns`.
 *
 * Three rules keep callbacks safe:
 *   - Module callbacks are only called from the loop (an fd event, the
 *     connection's timer, or the end-of-iteration hook), never from inside
 *     a call the module made. postern_conn_write() only queues; the output
 *     is flushed from the hook, once per iteration, which also coalesces a
 *     reply written in pieces into one send.
 *   - Closing releases the fd, TLS, timers and buffers at once, but the
 *     struct lives on (every call on it a no-op) until the hook has
 *     delivered CLOSED, so a callback may go on touching its connection
 *     after closing it.
 *   - A connection the module never saw (an implicit-TLS client whose
 *     handshake failed) gets no events at all.
 *
 * Not here: accept and limits (listener.c), outgoing connects (connect.c),
 * OpenSSL (tls.c), the line splitting itself (line_reader.c).
 */
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "conn_private.h"

/* Reads per readiness event: enough to empty a socket or a TLS record
 * queue, few enough that one busy peer cannot starve the others. */
#define CONN_READS_PER_WAKEUP 8
/* Rounds of deferred work per hook run; work queued by the last round
 * waits for the next iteration (a callback that keeps queueing work must
 * not lock the loop). */
#define CONN_WORK_ROUNDS 16
/* Bytes read and thrown away before closing after a flush, so that unread
 * input does not turn our FIN into a RST that could destroy the reply. */
#define CONN_LINGER_DRAIN_MAX (64 * 1024)
/* Bytes of pipelined input dropped at STARTTLS before giving up the drain:
 * whatever still follows is fed to the TLS handshake and fails it. */
#define CONN_STARTTLS_DRAIN_MAX (256 * 1024)
#define CONN_PRINTF_STACK 1024
/* From this size on, a write to a connection with nothing queued goes
 * straight to the socket (see conn_write_through). */
#define CONN_WRITE_THROUGH_MIN 2048

struct postern_mod conn_internal_owner;

static void conn_io_cb(struct postern_io *io, int fd, unsigned events, void *ctx);
static void conn_timer_cb(struct postern_timer *timer, void *ctx);
static void conn_flush(struct postern_conn *conn);
static void conn_read(struct postern_conn *conn, bool redeliver);

/* ---- Small helpers ------------------------------------------------------ */

static const char *conn_mod_name(const struct postern_mod *mod)
{
	return mod != NULL && mod->name != NULL ? mod->name : "core";
}

/* The module knows this connection: it may get events and CLOSED. */
static bool conn_known(const struct postern_conn *conn)
{
	return conn->opened || conn->outgoing;
}

/* How long close_after_flush() may take without progress. */
static uint64_t conn_linger_ms(const struct postern_conn *conn)
{
	return conn->idle_timeout_ms != 0 ? conn->idle_timeout_ms : CONN_DEFAULT_LINGER_MS;
}

static size_t conn_input_limit(size_t max_line)
{
	size_t limit = max_line + 2;

	return limit < CONN_INPUT_LIMIT_MIN ? CONN_INPUT_LIMIT_MIN : limit;
}

void conn_set_error(struct postern_conn *conn, const char *error)
{
	char *copy = xstrdup(error != NULL ? error : "unknown error");

	free(conn->error);
	conn->error = copy;
}

const char *conn_errno_text(int err)
{
	switch (err) {
	case ECONNREFUSED:
		return "connection refused";
	case ECONNRESET:
		return "connection reset by peer";
	case ETIMEDOUT:
		return "connection timed out";
	case EHOSTUNREACH:
		return "host unreachable";
	case ENETUNREACH:
		return "network unreachable";
	case EPIPE:
		return "broken pipe";
	case EADDRNOTAVAIL:
		return "address not available";
	case EADDRINUSE:
		return "address in use";
	default:
		return strerror(err);
	}
}

static void conn_dispatch(struct postern_conn *conn, enum postern_conn_event event)
{
	if (conn->closing || conn->cb == NULL || !conn_known(conn))
		return;
	conn->cb(conn, event, conn->ctx);
}

/* ---- Output buffer ------------------------------------------------------ */

static size_t outbuf_len(const struct conn_outbuf *out)
{
	return out->end - out->start;
}

static void outbuf_append(struct conn_outbuf *out, const void *data, size_t len)
{
	size_t used = outbuf_len(out);

	if (out->size - out->end < len && out->start > 0) {
		memmove(out->buf, out->buf + out->start, used);
		out->start = 0;
		out->end = used;
	}
	if (out->size - out->end < len) {
		size_t size = out->size == 0 ? 1024 : out->size;

		while (size - used < len) {
			assert(size < SIZE_MAX / 2);
			size *= 2;
		}
		out->buf = xrealloc(out->buf, size);
		out->size = size;
	}
	memcpy(out->buf + out->end, data, len);
	out->end += len;
}

static void outbuf_consume(struct conn_outbuf *out, size_t len)
{
	assert(len <= outbuf_len(out));
	out->start += len;
	if (out->start == out->end) {
		/* Replies are short and far apart: an idle connection keeps no
		 * output buffer. */
		free(out->buf);
		memset(out, 0, sizeof(*out));
	}
}

static void outbuf_free(struct conn_outbuf *out)
{
	free(out->buf);
	memset(out, 0, sizeof(*out));
}

/* ---- Registry work list and the iteration hook --------------------------- */

static void registry_kick(struct conn_registry *reg)
{
	/* A 0 ms one-shot: the loop iteration does not block, and the hook
	 * at its end does the work. */
	if (!reg->kicked) {
		reg->kicked = true;
		postern_timer_reset(reg->kick, 0);
	}
}

static void registry_kick_cb(struct postern_timer *timer, void *ctx)
{
	struct conn_registry *reg = ctx;

	/* The work itself is done by the iteration hook, right after. */
	reg->kicked = false;
}

static void work_unlink(struct postern_conn *conn)
{
	struct conn_registry *reg = conn->reg;

	if (conn->work == 0)
		return;
	if (conn->work_prev != NULL)
		conn->work_prev->work_next = conn->work_next;
	else
		reg->work_head = conn->work_next;
	if (conn->work_next != NULL)
		conn->work_next->work_prev = conn->work_prev;
	else
		reg->work_tail = conn->work_prev;
	conn->work_prev = conn->work_next = NULL;
	conn->work = 0;
}

void conn_queue_work(struct postern_conn *conn, unsigned work)
{
	struct conn_registry *reg = conn->reg;

	if (conn->closing)
		return;
	if (conn->work == 0) {
		conn->work_prev = reg->work_tail;
		conn->work_next = NULL;
		if (reg->work_tail != NULL)
			reg->work_tail->work_next = conn;
		else
			reg->work_head = conn;
		reg->work_tail = conn;
		registry_kick(reg);
	}
	conn->work |= work;
}

static void conn_do_work(struct postern_conn *conn, unsigned work)
{
	if ((work & CONN_WORK_ERROR) != 0) {
		conn_fail(conn, conn->error);
		return;
	}
	if ((work & CONN_WORK_FLUSH) != 0 && !conn->write_blocked)
		conn_flush(conn);
	if ((work & CONN_WORK_READ) != 0 && !conn->closing)
		conn_read(conn, true);
	if (!conn->closing)
		conn_update_io(conn);
}

/* One round: about as many items as there are connections, so that the
 * work queued when it began is done, whatever callbacks add meanwhile. */
static void registry_run_work(struct conn_registry *reg)
{
	unsigned budget = reg->count + 1;

	while (reg->work_head != NULL && budget-- > 0) {
		struct postern_conn *conn = reg->work_head;
		unsigned work = conn->work;

		work_unlink(conn);
		conn_do_work(conn, work);
	}
}

static void conn_publish(struct postern_conn *conn, const char *topic)
{
	struct postern_core *core = conn->reg->core;
	const char *error;

	if (core->bus == NULL || core->self == NULL)
		return;
	if (!conn->reg->topics_declared) {
		conn->reg->topics_declared = true;
		if (postern_bus_declare(core->self, POSTERN_TOPIC_CONN_OPENED, POSTERN_EV_CONN_TYPE,
					&error) < 0 ||
		    postern_bus_declare(core->self, POSTERN_TOPIC_CONN_CLOSED, POSTERN_EV_CONN_TYPE,
					&error) < 0)
			log_core(POSTERN_LOG_ERROR, "declaring connection topics: %s", error);
	}

	struct postern_ev_conn ev = {
		.struct_size = sizeof(ev),
		.conn_id = conn->id,
		.module = conn_mod_name(conn->mod),
		.peer = conn->peer,
		.local = conn->local,
		.outgoing = conn->outgoing,
		.reason = conn->close_reason,
		.duration_ms = postern_now_ms() - conn->created_ms,
	};
	(void)postern_bus_publish(core->self, topic, POSTERN_EV_CONN_TYPE, &ev);
}

static void conn_unregister_and_free(struct postern_conn *conn)
{
	struct conn_registry *reg = conn->reg;

	assert(conn->closing && conn->work == 0);
	if (conn->prev != NULL)
		conn->prev->next = conn->next;
	else
		reg->conns = conn->next;
	if (conn->next != NULL)
		conn->next->prev = conn->prev;
	else
		reg->conns_tail = conn->prev;
	reg->count--;

	free(conn->close_reason);
	free(conn->flush_reason);
	free(conn->error);
	free(conn->peer);
	free(conn->peer_ip);
	free(conn->local);
	free(conn->state);
	free(conn->user);
	free(conn->tls_description);
	free(conn);
}

/* Deliver CLOSED (once, outside any other callback of the connection) and
 * free the connection. */
static void conn_reap(struct postern_conn *conn)
{
	if (conn->opened)
		conn_publish(conn, POSTERN_TOPIC_CONN_CLOSED);
	if (conn_known(conn) && conn->cb != NULL)
		conn->cb(conn, POSTERN_CONN_CLOSED, conn->ctx);
	conn_unregister_and_free(conn);
}

static void registry_reap(struct conn_registry *reg)
{
	struct postern_conn *list = reg->closed_head;

	reg->closed_head = reg->closed_tail = NULL;
	while (list != NULL) {
		struct postern_conn *conn = list;

		list = conn->closed_next;
		conn_reap(conn);
	}
}

static void registry_hook(void *ctx)
{
	struct conn_registry *reg = ctx;

	for (unsigned round = 0; round < CONN_WORK_ROUNDS; round++) {
		if (reg->work_head == NULL && reg->closed_head == NULL)
			break;
		registry_run_work(reg);
		registry_reap(reg);
	}
	if (reg->work_head == NULL && reg->closed_head == NULL) {
		postern_timer_stop(reg->kick);
		reg->kicked = false;
	} else {
		registry_kick(reg);
	}
}

struct conn_registry *conn_registry_new(struct postern_core *core)
{
	struct conn_registry *reg = xcalloc(1, sizeof(*reg));

	assert(core->loop != NULL);
	reg->core = core;
	reg->next_id = 1;
	reg->kick = loop_timer_add(core->loop, &conn_internal_owner, 0, false, registry_kick_cb,
				   reg);
	postern_timer_stop(reg->kick);
	loop_set_iteration_hook(core->loop, registry_hook, reg);
	return reg;
}

/* Close without any callback and free at once the connections of `mod`
 * (all when `all`): module unload and exit. No CLOSED: the module is gone. */
static void registry_destroy(struct conn_registry *reg, const struct postern_mod *mod, bool all)
{
	struct postern_conn *conn, *next;

	for (conn = reg->conns; conn != NULL; conn = conn->next) {
		if (all || conn->mod == mod)
			conn_close_internal(conn, "released");
	}

	/* Take them off the closed list in one pass. */
	struct postern_conn **link = &reg->closed_head;

	reg->closed_tail = NULL;
	while (*link != NULL) {
		conn = *link;
		if (all || conn->mod == mod) {
			*link = conn->closed_next;
			continue;
		}
		reg->closed_tail = conn;
		link = &conn->closed_next;
	}

	for (conn = reg->conns; conn != NULL; conn = next) {
		next = conn->next;
		if (!all && conn->mod != mod)
			continue;
		if (conn->opened)
			conn_publish(conn, POSTERN_TOPIC_CONN_CLOSED);
		conn_unregister_and_free(conn);
	}
}

void conn_registry_free(struct conn_registry **regp)
{
	struct conn_registry *reg = *regp;

	if (reg == NULL)
		return;
	*regp = NULL;
	registry_destroy(reg, NULL, true);
	listener_free_all(reg, NULL);
	postern_timer_remove(&reg->kick);
	loop_set_iteration_hook(reg->core->loop, NULL, NULL);
	free(reg);
}

void conn_release_module(struct conn_registry *reg, const struct postern_mod *mod)
{
	registry_destroy(reg, mod, false);
	listener_free_all(reg, mod);
}

void conn_close_all(struct conn_registry *reg, const struct postern_mod *mod, const char *reason)
{
	for (struct postern_conn *conn = reg->conns; conn != NULL; conn = conn->next) {
		if (mod == NULL || conn->mod == mod)
			conn_close_internal(conn, reason);
	}
}

unsigned conn_count(const struct conn_registry *reg)
{
	return reg->count;
}

unsigned conn_count_module(const struct conn_registry *reg, const struct postern_mod *mod)
{
	unsigned count = 0;

	for (const struct postern_conn *conn = reg->conns; conn != NULL; conn = conn->next) {
		if (conn->mod == mod)
			count++;
	}
	return count;
}

static const char *conn_phase_name(const struct postern_conn *conn)
{
	if (conn->closing)
		return "closing";
	if (conn->flush_close)
		return "flushing";
	switch (conn->phase) {
	case CONN_PHASE_CONNECTING:
		return "connecting";
	case CONN_PHASE_HANDSHAKE:
		return "handshake";
	case CONN_PHASE_OPEN:
		break;
	}
	return "open";
}

static void conn_describe_json(const struct postern_conn *conn, struct postern_json *json,
			       uint64_t now_ms)
{
	postern_json_object_begin(json);
	postern_json_key(json, "id");
	postern_json_uint(json, conn->id);
	postern_json_key(json, "module");
	postern_json_string(json, conn_mod_name(conn->mod));
	postern_json_key(json, "peer");
	postern_json_string(json, conn->peer);
	postern_json_key(json, "local");
	postern_json_string(json, conn->local);
	postern_json_key(json, "outgoing");
	postern_json_bool(json, conn->outgoing);
	postern_json_key(json, "phase");
	postern_json_string(json, conn_phase_name(conn));
	postern_json_key(json, "state");
	if (conn->state != NULL)
		postern_json_string(json, conn->state);
	else
		postern_json_null(json);
	postern_json_key(json, "user");
	if (conn->user != NULL)
		postern_json_string(json, conn->user);
	else
		postern_json_null(json);
	postern_json_key(json, "tls");
	if (conn->tls_description != NULL)
		postern_json_string(json, conn->tls_description);
	else
		postern_json_null(json);
	postern_json_key(json, "created");
	postern_json_int(json, (int64_t)conn->created);
	postern_json_key(json, "age_ms");
	postern_json_uint(json, now_ms - conn->created_ms);
	postern_json_key(json, "idle_ms");
	postern_json_uint(json, now_ms - conn->last_activity_ms);
	postern_json_key(json, "input_bytes");
	postern_json_uint(json, line_reader_len(&conn->in));
	postern_json_key(json, "output_bytes");
	postern_json_uint(json, outbuf_len(&conn->out));
	postern_json_object_end(json);
}

static void conn_describe_text(const struct postern_conn *conn, struct postern_str *text,
			       uint64_t now_ms)
{
	postern_str_printf(text, "c%llu %s %s %s %s %s state=%s user=%s age=%llus idle=%llus",
			   (unsigned long long)conn->id, conn_mod_name(conn->mod), conn->peer,
			   conn->outgoing ? "->" : "<-", conn->local, conn_phase_name(conn),
			   conn->state != NULL ? conn->state : "-",
			   conn->user != NULL ? conn->user : "-",
			   (unsigned long long)((now_ms - conn->created_ms) / 1000),
			   (unsigned long long)((now_ms - conn->last_activity_ms) / 1000));
	if (conn->tls_description != NULL)
		postern_str_printf(text, " tls=\"%s\"", conn->tls_description);
	postern_str_append(text, "\n", 1);
}

void conn_registry_describe(const struct conn_registry *reg, struct postern_json *json,
			    struct postern_str *text)
{
	uint64_t now_ms = postern_now_ms();

	if (json != NULL)
		postern_json_array_begin(json);
	for (const struct postern_conn *conn = reg->conns; conn != NULL; conn = conn->next) {
		if (json != NULL)
			conn_describe_json(conn, json, now_ms);
		if (text != NULL)
			conn_describe_text(conn, text, now_ms);
	}
	if (json != NULL)
		postern_json_array_end(json);
}

/* ---- Creating ----------------------------------------------------------- */

struct postern_conn *conn_new(struct conn_registry *reg, struct postern_mod *mod, int fd,
			      bool outgoing, size_t max_line, postern_conn_cb *cb, void *ctx)
{
	struct postern_conn *conn = xcalloc(1, sizeof(*conn));

	if (max_line == 0)
		max_line = CONN_DEFAULT_MAX_LINE;
	conn->reg = reg;
	conn->mod = mod;
	conn->id = reg->next_id++;
	conn->fd = fd;
	conn->outgoing = outgoing;
	conn->cb = cb;
	conn->ctx = ctx;
	conn->phase = CONN_PHASE_OPEN;
	conn->transport = &conn_plain_transport;
	line_reader_init(&conn->in, max_line, conn_input_limit(max_line));
	conn->high_water = CONN_DEFAULT_HIGH_WATER;
	conn->low_water = CONN_DEFAULT_HIGH_WATER / 4;
	conn->handshake_timeout_ms = CONN_DEFAULT_HANDSHAKE_TIMEOUT_MS;
	conn->created = postern_time();
	conn->created_ms = postern_now_ms();
	conn->last_activity_ms = conn->created_ms;
	conn->peer = xstrdup("-");
	conn->peer_ip = xstrdup("-");
	conn->local = xstrdup("-");

	conn->prev = reg->conns_tail;
	if (reg->conns_tail != NULL)
		reg->conns_tail->next = conn;
	else
		reg->conns = conn;
	reg->conns_tail = conn;
	reg->count++;
	reg->live++;
	return conn;
}

static void conn_set_string(struct postern_conn *conn, char **field, const char *value)
{
	char *copy = xstrdup(value);

	free(*field);
	*field = copy;
}

void conn_set_addresses(struct postern_conn *conn, const struct sockaddr *peer,
			socklen_t peer_len)
{
	struct sockaddr_storage local;
	socklen_t local_len = sizeof(local);
	char buf[CONN_ADDRSTRLEN], ip[CONN_ADDRSTRLEN];

	if (peer != NULL && peer_len > 0 &&
	    (peer->sa_family == AF_INET || peer->sa_family == AF_INET6)) {
		conn_format_address(peer, buf, sizeof(buf), ip, sizeof(ip));
		conn_set_string(conn, &conn->peer, buf);
		conn_set_string(conn, &conn->peer_ip, ip);
		if (peer->sa_family == AF_INET) {
			conn->ip_key[0] = 4;
			memcpy(conn->ip_key + 1, &((const struct sockaddr_in *)peer)->sin_addr, 4);
			conn->ip_key_len = 5;
		} else {
			conn->ip_key[0] = 6;
			memcpy(conn->ip_key + 1, &((const struct sockaddr_in6 *)peer)->sin6_addr, 16);
			conn->ip_key_len = 17;
		}
	} else if (peer != NULL && peer->sa_family == AF_UNIX) {
		conn->is_unix = true;
		conn_set_string(conn, &conn->peer, "unix");
		conn_set_string(conn, &conn->peer_ip, "unix");
	}
	if (conn->fd >= 0 && getsockname(conn->fd, (struct sockaddr *)&local, &local_len) == 0) {
		if (local.ss_family == AF_INET || local.ss_family == AF_INET6) {
			conn_format_address((struct sockaddr *)&local, buf, sizeof(buf), NULL, 0);
			conn_set_string(conn, &conn->local, buf);
		}
	}
}

int conn_watch(struct postern_conn *conn, const char **error_r)
{
	assert(conn->io == NULL && conn->fd >= 0);
	conn->io = loop_io_add(conn->reg->core->loop, &conn_internal_owner, conn->fd, 0,
			       conn_io_cb, conn, error_r);
	conn->io_events = 0;
	return conn->io == NULL ? -1 : 0;
}

void conn_open(struct postern_conn *conn)
{
	assert(!conn->opened);
	conn->opened = true;
	conn->phase = CONN_PHASE_OPEN;
	conn->last_activity_ms = postern_now_ms();
	conn_timer_set_open(conn);
	conn_publish(conn, POSTERN_TOPIC_CONN_OPENED);
	if (postern_log_enabled(POSTERN_LOG_DEBUG))
		postern_conn_log(conn, POSTERN_LOG_DEBUG, "%s %s (local %s)",
				 conn->outgoing ? "connected to" : "connection from", conn->peer,
				 conn->local);
	conn_dispatch(conn, POSTERN_CONN_OPEN);
	if (!conn->closing) {
		/* TLS may hold application data read with the handshake, and
		 * output may have been queued before the connection was up. */
		conn_queue_work(conn, CONN_WORK_READ | CONN_WORK_FLUSH);
		conn_update_io(conn);
	}
}

/* ---- Watching the socket ------------------------------------------------ */

static bool conn_input_wanted(const struct postern_conn *conn)
{
	return !conn->closing && conn->phase == CONN_PHASE_OPEN && conn->pending_tls == NULL &&
	       !conn->paused_user && !conn->paused_output && !conn->input_blocked &&
	       !conn->eof_seen && !conn->flush_close;
}

/*
 * Register what the connection waits for. Read interest is dropped
 * lazily: a connection pauses its input for a moment on almost every
 * command (the answer is being produced), and usually nothing arrives
 * meanwhile; keeping EPOLLIN saves two epoll_ctl() calls per command. If
 * input does arrive while it is not wanted, conn_io_cb drops the interest
 * then (exact).
 */
static void conn_apply_io(struct postern_conn *conn, bool exact)
{
	unsigned events = 0;

	if (conn->closing)
		return;
	if (conn->io == NULL) {
		/* Hung up: nothing to wait for, but input may still be in the
		 * socket for when the module wants it. */
		if (conn_input_wanted(conn))
			conn_queue_work(conn, CONN_WORK_READ);
		return;
	}
	switch (conn->phase) {
	case CONN_PHASE_CONNECTING:
		events = POSTERN_IO_WRITE;
		break;
	case CONN_PHASE_HANDSHAKE:
		events = conn->hs_want_write ? POSTERN_IO_WRITE : POSTERN_IO_READ;
		break;
	case CONN_PHASE_OPEN:
		if (conn_input_wanted(conn))
			events |= conn->tls_read_wants_write ? POSTERN_IO_WRITE : POSTERN_IO_READ;
		if (conn->write_blocked)
			events |= conn->tls_write_wants_read ? POSTERN_IO_READ : POSTERN_IO_WRITE;
		break;
	}
	bool lazy_read = !exact && conn->phase == CONN_PHASE_OPEN &&
			 conn->io_events == (events | POSTERN_IO_READ);

	if (lazy_read)
		return;
	if (events != conn->io_events) {
		postern_io_set_events(conn->io, events);
		conn->io_events = events;
	}
}

void conn_update_io(struct postern_conn *conn)
{
	conn_apply_io(conn, false);
}

/* Epoll reports an error or hang-up we did not ask about. */
static void conn_hangup(struct postern_conn *conn)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) {
		conn_fail(conn, conn_errno_text(err));
		return;
	}
	/* Gone both ways, but unread input may wait in the socket: stop
	 * watching (epoll would report the hang-up for ever) and read the rest
	 * when the module wants input again. */
	postern_io_remove(&conn->io);
	conn->io_events = 0;
	conn->hup = true;
	if (outbuf_len(&conn->out) > 0) {
		conn->write_blocked = false;
		conn_flush(conn);
	}
}

static void conn_handshake_step(struct postern_conn *conn)
{
	int ret = tls_conn_handshake(conn);

	if (ret == 0) {
		conn_update_io(conn);
		return;
	}
	if (ret < 0) {
		conn_fail(conn, conn->error);
		return;
	}
	conn->phase = CONN_PHASE_OPEN;
	if (!conn->opened) {
		conn_open(conn);
		return;
	}
	conn->last_activity_ms = postern_now_ms();
	conn_timer_set_open(conn);
	if (postern_log_enabled(POSTERN_LOG_DEBUG))
		postern_conn_log(conn, POSTERN_LOG_DEBUG, "STARTTLS: %s", conn->tls_description);
	conn_dispatch(conn, POSTERN_CONN_TLS_READY);
	if (!conn->closing) {
		conn_queue_work(conn, CONN_WORK_READ | CONN_WORK_FLUSH);
		conn_update_io(conn);
	}
}

static void conn_io_cb(struct postern_io *io, int fd, unsigned events, void *ctx)
{
	struct postern_conn *conn = ctx;
	unsigned registered = conn->io_events;
	bool handled = false;

	switch (conn->phase) {
	case CONN_PHASE_CONNECTING:
		connect_ready(conn);
		return;
	case CONN_PHASE_HANDSHAKE:
		conn_handshake_step(conn);
		return;
	case CONN_PHASE_OPEN:
		break;
	}
	if (conn->write_blocked &&
	    (events & (conn->tls_write_wants_read ? POSTERN_IO_READ : POSTERN_IO_WRITE)) != 0) {
		conn->write_blocked = false;
		handled = true;
		conn_flush(conn);
	}
	if (conn_input_wanted(conn) &&
	    (events & (conn->tls_read_wants_write ? POSTERN_IO_WRITE : POSTERN_IO_READ)) != 0) {
		handled = true;
		conn_read(conn, false);
	}
	if (!handled && !conn->closing && (events & POSTERN_IO_READ) != 0) {
		if ((registered & POSTERN_IO_READ) == 0) {
			conn_hangup(conn);
		} else {
			/* Readable while input is not wanted: the read interest
			 * left in place by conn_apply_io goes now. */
			conn_apply_io(conn, true);
			return;
		}
	}
	if (!conn->closing)
		conn_update_io(conn);
}

/* ---- Reading ------------------------------------------------------------ */

/* Offer what is buffered, then EOF once the module has seen the input. */
static void conn_deliver_input(struct postern_conn *conn, bool input)
{
	if (input && line_reader_len(&conn->in) > 0 && !conn->paused_user &&
	    conn->pending_tls == NULL)
		conn_dispatch(conn, POSTERN_CONN_INPUT);
	if (conn->closing)
		return;
	line_reader_trim(&conn->in);
	if (conn->eof_seen && !conn->eof_delivered && !conn->paused_user &&
	    conn->pending_tls == NULL) {
		conn->eof_delivered = true;
		if (postern_log_enabled(POSTERN_LOG_DEBUG))
			postern_conn_log(conn, POSTERN_LOG_DEBUG, "peer closed");
		conn_dispatch(conn, POSTERN_CONN_EOF);
		if (!conn->closing && !conn->flush_close && !conn->finish_later)
			conn_close_internal(conn, "peer closed");
	}
}

static void conn_read(struct postern_conn *conn, bool redeliver)
{
	bool got = false;

	for (unsigned i = 0; i < CONN_READS_PER_WAKEUP && conn_input_wanted(conn); i++) {
		size_t avail;
		void *space = line_reader_space(&conn->in, &avail);

		if (space == NULL) {
			conn->input_blocked = true;
			break;
		}
		ssize_t ret = conn->transport->read(conn, space, avail);

		if (ret > 0) {
			line_reader_commit(&conn->in, (size_t)ret);
			got = true;
			if ((size_t)ret < avail && !conn->transport->pending(conn))
				break;
			continue;
		}
		if (ret == 0) {
			conn->eof_seen = true;
			break;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			break;
		conn_fail(conn, conn->error);
		return;
	}
	if (got)
		conn->last_activity_ms = postern_now_ms();
	conn_deliver_input(conn, got || redeliver);
	if (!conn->closing && conn_input_wanted(conn) && conn->transport->pending(conn))
		conn_queue_work(conn, CONN_WORK_READ);
}

/* The module took input: a full buffer has room again. */
static void conn_input_taken(struct postern_conn *conn)
{
	if (conn->input_blocked && !conn->closing) {
		conn->input_blocked = false;
		conn_queue_work(conn, CONN_WORK_READ);
	}
}

enum postern_read_status postern_conn_read_line(struct postern_conn *conn,
						struct postern_line *line_r)
{
	if (conn->closing || conn->pending_tls != NULL)
		return POSTERN_READ_NONE;

	enum postern_read_status status = line_reader_next(&conn->in, line_r);

	conn_input_taken(conn);
	return status;
}

const void *postern_conn_input(struct postern_conn *conn, size_t *len_r)
{
	if (conn->closing || conn->pending_tls != NULL) {
		*len_r = 0;
		return "";
	}
	return line_reader_data(&conn->in, len_r);
}

void postern_conn_consume(struct postern_conn *conn, size_t len)
{
	if (conn->closing || conn->pending_tls != NULL)
		return;
	line_reader_consume(&conn->in, len);
	conn_input_taken(conn);
}

void postern_conn_finish_later(struct postern_conn *conn)
{
	if (!conn->closing)
		conn->finish_later = true;
}

void postern_conn_shutdown_write(struct postern_conn *conn)
{
	if (conn->closing || conn->shutdown_write)
		return;
	conn->shutdown_write = true;
	conn_queue_work(conn, CONN_WORK_FLUSH);
}

void postern_conn_pause_input(struct postern_conn *conn, bool paused)
{
	if (conn->closing || conn->paused_user == paused)
		return;
	conn->paused_user = paused;
	if (!paused) {
		/* Buffered input, a TLS record or an EOF may be waiting that
		 * no epoll event will announce again. */
		conn_queue_work(conn, CONN_WORK_READ);
	}
	conn_update_io(conn);
}

void postern_conn_set_max_line(struct postern_conn *conn, size_t max_line)
{
	if (conn->closing)
		return;
	if (max_line == 0)
		max_line = CONN_DEFAULT_MAX_LINE;
	line_reader_set_limits(&conn->in, max_line, conn_input_limit(max_line));
	conn_input_taken(conn);
}

/* ---- Writing ------------------------------------------------------------ */

/*
 * A big write while nothing is queued: hand it to the socket now, and
 * queue only what the socket does not take. A relay then copies each
 * chunk once, into the kernel, instead of into our buffer first; small
 * writes still gather in the buffer so that a reply built from many
 * pieces leaves in one send. Returns the bytes sent. A hard error is
 * reported from the loop, never from inside the module's call.
 */
static size_t conn_write_through(struct postern_conn *conn, const char *data, size_t len)
{
	size_t sent = 0;

	if (len < CONN_WRITE_THROUGH_MIN || outbuf_len(&conn->out) != 0 || conn->write_blocked ||
	    conn->phase != CONN_PHASE_OPEN || conn->pending_tls != NULL || conn->flush_close ||
	    conn->hup)
		return 0;
	while (sent < len) {
		ssize_t ret = conn->transport->write(conn, data + sent, len - sent);

		if (ret < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				conn->write_blocked = true;
				conn_update_io(conn);
			} else if (errno != EINTR) {
				conn_fail_later(conn, conn->error);
				return len;
			}
			break;
		}
		sent += (size_t)ret;
	}
	if (sent > 0)
		conn->last_activity_ms = postern_now_ms();
	return sent;
}

void postern_conn_write(struct postern_conn *conn, const void *data, size_t len)
{
	/* After shutdown_write() our side is over: nothing more may follow. */
	if (conn->closing || conn->shutdown_write || len == 0)
		return;

	size_t sent = conn_write_through(conn, data, len);

	if (sent == len)
		return;
	outbuf_append(&conn->out, (const char *)data + sent, len - sent);

	size_t size = outbuf_len(&conn->out);

	if (size >= conn->low_water)
		conn->drained_armed = true;
	if (size > conn->high_water && !conn->paused_output) {
		conn->paused_output = true;
		conn_update_io(conn);
	}
	conn_queue_work(conn, CONN_WORK_FLUSH);
}

void postern_conn_printf(struct postern_conn *conn, const char *fmt, ...)
{
	char stack[CONN_PRINTF_STACK];
	va_list args;
	int len;

	if (conn->closing)
		return;
	va_start(args, fmt);
	len = vsnprintf(stack, sizeof(stack), fmt, args);
	va_end(args);
	if (len < 0)
		return;
	if ((size_t)len < sizeof(stack)) {
		postern_conn_write(conn, stack, (size_t)len);
		return;
	}

	char *heap = xmalloc((size_t)len + 1);

	va_start(args, fmt);
	vsnprintf(heap, (size_t)len + 1, fmt, args);
	va_end(args);
	postern_conn_write(conn, heap, (size_t)len);
	free(heap);
}

size_t postern_conn_output_size(const struct postern_conn *conn)
{
	return outbuf_len(&conn->out);
}

void postern_conn_set_output_limit(struct postern_conn *conn, size_t high_water)
{
	if (conn->closing)
		return;
	if (high_water < 4)
		high_water = 4;
	conn->high_water = high_water;
	conn->low_water = high_water / 4;

	size_t size = outbuf_len(&conn->out);

	if (size > conn->high_water)
		conn->paused_output = true;
	else if (size <= conn->low_water)
		conn->paused_output = false;
	conn_update_io(conn);
}

static void conn_starttls_begin(struct postern_conn *conn);
static void conn_close_graceful(struct postern_conn *conn);

/* Everything queued is sent: end our direction (TLS close_notify, FIN). */
static void conn_end_write(struct postern_conn *conn)
{
	conn->write_shut = true;
	tls_conn_close_notify(conn);
	if (shutdown(conn->fd, SHUT_WR) < 0 && errno != ENOTCONN &&
	    postern_log_enabled(POSTERN_LOG_DEBUG))
		postern_conn_log(conn, POSTERN_LOG_DEBUG, "shutdown: %s", strerror(errno));
}

/* Send what may be sent now. */
static void conn_flush(struct postern_conn *conn)
{
	if (conn->closing || conn->phase != CONN_PHASE_OPEN)
		return;

	bool starttls = conn->pending_tls != NULL;
	size_t limit = starttls ? conn->starttls_boundary : outbuf_len(&conn->out);
	size_t sent = 0;

	while (sent < limit) {
		ssize_t ret = conn->transport->write(conn, conn->out.buf + conn->out.start,
						     limit - sent);

		if (ret < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
				conn->write_blocked = true;
				break;
			}
			conn_fail(conn, conn->error);
			return;
		}
		sent += (size_t)ret;
		outbuf_consume(&conn->out, (size_t)ret);
	}
	if (sent > 0)
		conn->last_activity_ms = postern_now_ms();
	if (starttls)
		conn->starttls_boundary -= sent;

	size_t size = outbuf_len(&conn->out);

	if (conn->paused_output && size <= conn->low_water)
		conn->paused_output = false;
	if (conn->drained_armed && size < conn->low_water) {
		conn->drained_armed = false;
		conn_dispatch(conn, POSTERN_CONN_DRAINED);
		if (conn->closing)
			return;
	}
	if (conn->pending_tls != NULL && conn->starttls_boundary == 0) {
		conn_starttls_begin(conn);
		return;
	}
	if (conn->flush_close && outbuf_len(&conn->out) == 0) {
		conn_close_graceful(conn);
		return;
	}
	if (conn->shutdown_write && !conn->write_shut && outbuf_len(&conn->out) == 0)
		conn_end_write(conn);
	conn_update_io(conn);
}

/* ---- Plain transport ---------------------------------------------------- */

static ssize_t plain_read(struct postern_conn *conn, void *buf, size_t len)
{
	ssize_t ret = recv(conn->fd, buf, len, 0);

	if (ret < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
		conn_set_error(conn, conn_errno_text(errno));
	return ret;
}

static ssize_t plain_write(struct postern_conn *conn, const void *data, size_t len)
{
	ssize_t ret = send(conn->fd, data, len, MSG_NOSIGNAL);

	if (ret < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
		conn_set_error(conn, conn_errno_text(errno));
	return ret;
}

static bool plain_pending(const struct postern_conn *conn)
{
	return false;
}

const struct conn_transport conn_plain_transport = {
	.name = "plain",
	.read = plain_read,
	.write = plain_write,
	.pending = plain_pending,
};

/* ---- Timers ------------------------------------------------------------- */

void conn_timer_set(struct postern_conn *conn, enum conn_timer_mode mode, uint64_t msecs)
{
	if (mode == CONN_TIMER_NONE || msecs == 0) {
		if (conn->timer != NULL)
			postern_timer_stop(conn->timer);
		conn->timer_mode = CONN_TIMER_NONE;
		return;
	}
	conn->timer_mode = mode;
	if (conn->timer == NULL)
		conn->timer = loop_timer_add(conn->reg->core->loop, &conn_internal_owner, msecs,
					     false, conn_timer_cb, conn);
	else
		postern_timer_reset(conn->timer, msecs);
}

/* Connected or handshake done: the idle timeout counts from now on (or the
 * flush deadline, if the module already asked to close). */
void conn_timer_set_open(struct postern_conn *conn)
{
	if (conn->flush_close)
		conn_timer_set(conn, CONN_TIMER_LINGER, conn_linger_ms(conn));
	else
		conn_timer_set(conn, CONN_TIMER_IDLE, conn->idle_timeout_ms);
}

/* For idle-style timers: true when there was activity since it was armed,
 * and then it is armed again for the rest of the interval. Checking at the
 * end instead of resetting the timer on every read and write keeps I/O
 * free of heap operations. */
static bool conn_timer_rearm_if_active(struct postern_conn *conn, uint64_t timeout_ms)
{
	uint64_t idle = postern_now_ms() - conn->last_activity_ms;

	if (idle >= timeout_ms)
		return false;
	postern_timer_reset(conn->timer, timeout_ms - idle);
	return true;
}

static void conn_timer_cb(struct postern_timer *timer, void *ctx)
{
	struct postern_conn *conn = ctx;

	switch (conn->timer_mode) {
	case CONN_TIMER_NONE:
		break;
	case CONN_TIMER_DEADLINE:
		conn_fail(conn, conn->phase == CONN_PHASE_CONNECTING ? "connect timeout" :
								       "TLS handshake timeout");
		break;
	case CONN_TIMER_LINGER:
		if (!conn_timer_rearm_if_active(conn, conn_linger_ms(conn)))
			conn_close_internal(conn, "flush timeout");
		break;
	case CONN_TIMER_IDLE: {
		if (conn_timer_rearm_if_active(conn, conn->idle_timeout_ms))
			break;

		uint64_t generation = conn->timeout_generation;

		conn->timer_mode = CONN_TIMER_NONE;
		conn_dispatch(conn, POSTERN_CONN_TIMEOUT);
		if (!conn->closing && !conn->flush_close && generation == conn->timeout_generation)
			conn_close_internal(conn, "idle timeout");
		break;
	}
	}
}

void postern_conn_set_idle_timeout(struct postern_conn *conn, uint64_t msecs)
{
	if (conn->closing)
		return;
	conn->idle_timeout_ms = msecs;
	conn->timeout_generation++;
	conn->last_activity_ms = postern_now_ms();
	if (conn->phase == CONN_PHASE_OPEN && !conn->flush_close)
		conn_timer_set(conn, CONN_TIMER_IDLE, msecs);
}

/* ---- Closing ------------------------------------------------------------ */

void conn_close_internal(struct postern_conn *conn, const char *reason)
{
	struct conn_registry *reg = conn->reg;

	if (conn->closing)
		return;
	conn->closing = true;
	reg->live--;
	conn->close_reason = xstrdup(reason != NULL ? reason : "closed");
	if (postern_log_enabled(POSTERN_LOG_DEBUG))
		postern_conn_log(conn, POSTERN_LOG_DEBUG, "closed: %s", conn->close_reason);

	postern_io_remove(&conn->io);
	if (conn->tls != NULL)
		tls_conn_free(conn, conn->error == NULL);
	if (conn->fd >= 0) {
		close(conn->fd);
		conn->fd = -1;
	}
	if (conn->listener != NULL) {
		listener_conn_released(conn->listener, conn);
		conn->listener = NULL;
	}
	postern_timer_remove(&conn->timer);
	line_reader_deinit(&conn->in);
	outbuf_free(&conn->out);
	if (conn->pending_tls != NULL)
		tls_unref(&conn->pending_tls);
	free(conn->pending_tls_name);
	conn->pending_tls_name = NULL;
	work_unlink(conn);

	conn->closed_next = NULL;
	if (reg->closed_tail != NULL)
		reg->closed_tail->closed_next = conn;
	else
		reg->closed_head = conn;
	reg->closed_tail = conn;
	registry_kick(reg);
}

/* After close_after_flush: read away what the peer still sent, so that the
 * kernel sends FIN rather than RST (a RST can destroy the reply we just
 * sent before the peer read it). */
static void conn_close_graceful(struct postern_conn *conn)
{
	char buf[4096];
	size_t drained = 0;

	if (conn->tls == NULL && conn->fd >= 0) {
		while (drained < CONN_LINGER_DRAIN_MAX) {
			ssize_t ret = recv(conn->fd, buf, sizeof(buf), MSG_DONTWAIT);

			if (ret <= 0)
				break;
			drained += (size_t)ret;
		}
	}
	conn_close_internal(conn, conn->flush_reason);
}

void postern_conn_close(struct postern_conn *conn, const char *reason)
{
	conn_close_internal(conn, reason);
}

void postern_conn_close_after_flush(struct postern_conn *conn, const char *reason)
{
	if (conn->closing || conn->flush_close)
		return;
	conn->flush_close = true;
	conn->flush_reason = xstrdup(reason != NULL ? reason : "closed");
	if (conn->phase == CONN_PHASE_OPEN && outbuf_len(&conn->out) == 0 &&
	    conn->pending_tls == NULL) {
		conn_close_graceful(conn);
		return;
	}
	conn->last_activity_ms = postern_now_ms();
	conn_timer_set(conn, CONN_TIMER_LINGER, conn_linger_ms(conn));
	conn_queue_work(conn, CONN_WORK_FLUSH);
	conn_update_io(conn);
}

bool postern_conn_is_closing(const struct postern_conn *conn)
{
	return conn->closing || conn->flush_close;
}

void conn_fail(struct postern_conn *conn, const char *error)
{
	if (conn->closing)
		return;
	if (error != NULL && error != conn->error)
		conn_set_error(conn, error);
	else if (conn->error == NULL)
		conn_set_error(conn, "unknown error");
	if (postern_log_enabled(POSTERN_LOG_DEBUG))
		postern_conn_log(conn, POSTERN_LOG_DEBUG, "error: %s", conn->error);
	conn_dispatch(conn, POSTERN_CONN_ERROR);
	if (!conn->closing)
		conn_close_internal(conn, conn->error);
}

void conn_fail_later(struct postern_conn *conn, const char *error)
{
	conn_set_error(conn, error);
	conn_queue_work(conn, CONN_WORK_ERROR);
}

/* ---- TLS ---------------------------------------------------------------- */

int conn_start_tls(struct postern_conn *conn, struct postern_tls *tls, const char *server_name)
{
	const char *error;

	if (tls_conn_new(conn, tls, server_name, &error) < 0) {
		conn_set_error(conn, error);
		return -1;
	}
	conn->phase = CONN_PHASE_HANDSHAKE;
	conn->hs_want_write = false;
	/* An outgoing connection's deadline covers connect and handshake. */
	if (conn->timer_mode != CONN_TIMER_DEADLINE)
		conn_timer_set(conn, CONN_TIMER_DEADLINE, conn->handshake_timeout_ms);
	conn_handshake_step(conn);
	return 0;
}

/* The reply before STARTTLS is out: hand the socket to TLS. */
static void conn_starttls_begin(struct postern_conn *conn)
{
	struct postern_tls *tls = conn->pending_tls;
	char *name = conn->pending_tls_name;

	conn->pending_tls = NULL;
	conn->pending_tls_name = NULL;
	if (conn->eof_seen) {
		conn_fail(conn, "TLS handshake: connection closed by peer");
	} else if (conn_start_tls(conn, tls, name) < 0) {
		conn_fail(conn, conn->error);
	}
	tls_unref(&tls);
	free(name);
}

/* Throw away input the peer sent before it could have seen our go-ahead:
 * both what is buffered and what waits in the socket. */
static void conn_starttls_discard_input(struct postern_conn *conn)
{
	char buf[4096];
	size_t drained = 0;

	line_reader_clear(&conn->in);
	line_reader_trim(&conn->in);
	while (drained < CONN_STARTTLS_DRAIN_MAX) {
		ssize_t ret = recv(conn->fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (ret == 0)
			conn->eof_seen = true;
		if (ret <= 0)
			break;
		drained += (size_t)ret;
	}
	if (drained > 0 && postern_log_enabled(POSTERN_LOG_DEBUG))
		postern_conn_log(conn, POSTERN_LOG_DEBUG,
				 "STARTTLS: dropped %zu bytes sent before the handshake", drained);
}

int postern_conn_starttls(struct postern_conn *conn, struct postern_tls *tls,
			  const char *server_name, const char **error_r)
{
	if (conn->closing) {
		*error_r = "connection is closing";
		return -1;
	}
	if (conn->tls != NULL || conn->pending_tls != NULL) {
		*error_r = "TLS is already active";
		return -1;
	}
	if (conn->phase != CONN_PHASE_OPEN || conn->fd < 0) {
		*error_r = "connection is not open";
		return -1;
	}
	conn->pending_tls = tls_ref(tls);
	conn->pending_tls_name = server_name != NULL ? xstrdup(server_name) : NULL;
	conn->starttls_boundary = outbuf_len(&conn->out);
	/* Drop pipelined input now, before the go-ahead leaves: a client
	 * that follows the protocol sends nothing more until it has read the
	 * reply, so what is here was sent too early to be trusted. Draining
	 * only after the reply is out could also eat a fast client's
	 * ClientHello; whatever arrives early after this point goes to the
	 * handshake and fails it. */
	conn_starttls_discard_input(conn);
	conn->input_blocked = false;
	conn_queue_work(conn, CONN_WORK_FLUSH);
	conn_update_io(conn);
	return 0;
}

bool postern_conn_is_tls(const struct postern_conn *conn)
{
	return conn->tls != NULL && conn->phase == CONN_PHASE_OPEN;
}

const char *postern_conn_tls_description(const struct postern_conn *conn)
{
	return conn->tls_description;
}

/* ---- Identity ----------------------------------------------------------- */

void postern_conn_set_handler(struct postern_conn *conn, postern_conn_cb *cb, void *ctx)
{
	conn->cb = cb;
	conn->ctx = ctx;
}

uint64_t postern_conn_id(const struct postern_conn *conn)
{
	return conn->id;
}

struct postern_mod *postern_conn_mod(const struct postern_conn *conn)
{
	return conn->mod;
}

const char *postern_conn_peer(const struct postern_conn *conn)
{
	return conn->peer;
}

const char *postern_conn_peer_ip(const struct postern_conn *conn)
{
	return conn->peer_ip;
}

const char *postern_conn_local(const struct postern_conn *conn)
{
	return conn->local;
}

bool postern_conn_is_outgoing(const struct postern_conn *conn)
{
	return conn->outgoing;
}

void postern_conn_set_state(struct postern_conn *conn, const char *state)
{
	char *copy = state != NULL ? xstrdup(state) : NULL;

	free(conn->state);
	conn->state = copy;
}

void postern_conn_set_user(struct postern_conn *conn, const char *user)
{
	char *copy = user != NULL ? xstrdup(user) : NULL;

	free(conn->user);
	conn->user = copy;
}

const char *postern_conn_error(const struct postern_conn *conn)
{
	return conn->error;
}

int postern_conn_set_keepalive(struct postern_conn *conn, unsigned idle_s,
			       unsigned interval_s, unsigned count)
{
	int on = 1, idle = (int)idle_s, interval = (int)interval_s, cnt = (int)count;

	if (conn->closing || conn->fd < 0 || conn->is_unix)
		return -1;
	if (setsockopt(conn->fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) < 0 ||
	    (idle > 0 && setsockopt(conn->fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)) < 0) ||
	    (interval > 0 &&
	     setsockopt(conn->fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval)) < 0) ||
	    (cnt > 0 && setsockopt(conn->fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt)) < 0))
		return -1;
	return 0;
}

int conn_peer_uid(const struct postern_conn *conn, uid_t *uid_r)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (conn->closing || conn->fd < 0 || !conn->is_unix ||
	    getsockopt(conn->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -1;
	*uid_r = cred.uid;
	return 0;
}
