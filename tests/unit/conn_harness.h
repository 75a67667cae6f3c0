/*
 * A test harness for connection tests (test_conn.c, test_tls.c): a
 * hand-built core with just a loop and a registry, plain socket clients
 * that the loop pumps, and a recorder module callback that writes down
 * every event and line it sees. Every function is static: each suite gets
 * its own copy.
 */
#ifndef TESTS_UNIT_CONN_HARNESS_H
#define TESTS_UNIT_CONN_HARNESS_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "../../core/conn_private.h"
#include "suites.h"

#define HARNESS_FN static __attribute__((unused))

/* ---- Harness: a core with just a loop and a registry -------------------- */

HARNESS_FN struct {
	struct postern_core core;
	struct postern_mod mod, self;
} H;

HARNESS_FN void harness_setup(void)
{
	memset(&H, 0, sizeof(H));
	signal(SIGPIPE, SIG_IGN);
	H.core.loop = loop_new();
	H.self.core = &H.core;
	H.self.name = (char *)"core";
	H.core.self = &H.self;
	H.mod.core = &H.core;
	H.mod.name = (char *)"test";
	H.core.conns = conn_registry_new(&H.core);
}

HARNESS_FN void harness_teardown(void)
{
	conn_registry_free(&H.core.conns);
	loop_free(&H.core.loop);
	free(H.core.error_buf);
}

/* ---- Test clients: plain non-blocking sockets ---------------------------- */

#define CLIENT_BUF (2 * 1024 * 1024)

struct client {
	int fd;
	char *buf;
	size_t len;
	bool eof;
	bool reading;   /* pump() reads for it */
};

#define MAX_CLIENTS 16
HARNESS_FN struct client *clients[MAX_CLIENTS];

HARNESS_FN void client_poll(struct client *c)
{
	while (c->reading && !c->eof && c->len < CLIENT_BUF - 1) {
		ssize_t ret = recv(c->fd, c->buf + c->len, CLIENT_BUF - 1 - c->len, MSG_DONTWAIT);

		if (ret > 0) {
			c->len += (size_t)ret;
			c->buf[c->len] = '\0';
		} else {
			if (ret == 0 || (errno != EAGAIN && errno != EINTR))
				c->eof = true;
			break;
		}
	}
}

/* One loop iteration, then let every client read what arrived. */
HARNESS_FN void pump(int wait_ms)
{
	loop_run_once(H.core.loop, wait_ms);
	for (unsigned i = 0; i < MAX_CLIENTS; i++) {
		if (clients[i] != NULL)
			client_poll(clients[i]);
	}
}

#define WAIT_FOR(cond, ms)                                                       \
	do {                                                                     \
		uint64_t deadline_ = postern_now_ms() + (ms);                    \
		while (!(cond) && postern_now_ms() < deadline_)                  \
			pump(5);                                                 \
		ck_assert_msg((cond), "timed out waiting for: %s", #cond);       \
	} while (0)

HARNESS_FN void pump_for(int ms)
{
	uint64_t deadline = postern_now_ms() + (uint64_t)ms;

	while (postern_now_ms() < deadline)
		pump(5);
}

HARNESS_FN int connect_fd(const char *address, int rcvbuf)
{
	struct sockaddr_storage addr;
	socklen_t len;
	const char *error;
	int fd;

	ck_assert_int_eq(conn_parse_address(address, false, &addr, &len, NULL, &error), 0);
	fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	if (rcvbuf > 0)
		ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
	/* Blocking connect on loopback completes in the kernel, without
	 * the server's loop having to run. */
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&addr, len), 0);
	ck_assert_int_eq(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	return fd;
}

HARNESS_FN struct client *client_new_fd(int fd)
{
	struct client *c = calloc(1, sizeof(*c));

	c->fd = fd;
	c->buf = malloc(CLIENT_BUF);
	c->buf[0] = '\0';
	c->reading = true;
	for (unsigned i = 0; i < MAX_CLIENTS; i++) {
		if (clients[i] == NULL) {
			clients[i] = c;
			return c;
		}
	}
	ck_abort_msg("too many clients");
	return NULL;
}

HARNESS_FN struct client *client_new(const char *address)
{
	return client_new_fd(connect_fd(address, 0));
}

HARNESS_FN void client_free(struct client *c)
{
	for (unsigned i = 0; i < MAX_CLIENTS; i++) {
		if (clients[i] == c)
			clients[i] = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	free(c);
}

/* Write everything, running the loop while the socket is full. */
HARNESS_FN void client_send(struct client *c, const void *data, size_t len)
{
	size_t done = 0;
	uint64_t deadline = postern_now_ms() + 5000;

	while (done < len) {
		ssize_t ret = send(c->fd, (const char *)data + done, len - done,
				   MSG_DONTWAIT | MSG_NOSIGNAL);

		if (ret > 0) {
			done += (size_t)ret;
			continue;
		}
		ck_assert_msg(ret < 0 && errno == EAGAIN, "send: %s", strerror(errno));
		ck_assert_msg(postern_now_ms() < deadline, "send timed out");
		pump(5);
	}
}

HARNESS_FN void client_send_str(struct client *c, const char *str)
{
	client_send(c, str, strlen(str));
}

/* ---- Recorder: a module callback that writes down what it sees ---------- */

#define MAX_EVENTS 512
/* The k-th event from the end (0: the last one). */
#define LAST_EVENT(r, k) ((r)->events[((r)->nevents - 1 - (k)) % MAX_EVENTS])
#define MAX_LINES 32

struct rec_line {
	char data[512];
	size_t len;
	unsigned flags;
	bool too_long;
};

struct rec;
typedef void rec_line_hook(struct rec *r, const struct postern_line *line);
typedef void rec_event_hook(struct rec *r, enum postern_conn_event event);

struct rec {
	struct server *srv;
	struct postern_conn *conn;
	enum postern_conn_event events[MAX_EVENTS];
	unsigned nevents;
	unsigned counts[POSTERN_CONN_CLOSED + 1];
	struct rec_line lines[MAX_LINES];
	unsigned nlines;
	bool in_cb, nested;
	bool no_read;          /* do not read lines on INPUT */
	char error[256];
	size_t drained_at;     /* output size when DRAINED came */
	rec_line_hook *on_line;
	rec_event_hook *on_event;
	void *user;
};

/* A listener's context: one recorder per accepted connection. */
struct server {
	struct postern_listener *listener;
	struct rec recs[16];
	unsigned n;
	unsigned closed;
	rec_line_hook *on_line;
	rec_event_hook *on_event;
	bool no_read;
	void *user;
};

HARNESS_FN void rec_read_lines(struct rec *r)
{
	struct postern_line line;

	for (;;) {
		enum postern_read_status status = postern_conn_read_line(r->conn, &line);

		if (status == POSTERN_READ_NONE)
			break;
		ck_assert_uint_lt(r->nlines, MAX_LINES);

		struct rec_line *rl = &r->lines[r->nlines++];

		if (status == POSTERN_READ_TOO_LONG) {
			rl->too_long = true;
			continue;
		}
		ck_assert_uint_lt(line.len, sizeof(rl->data));
		ck_assert_int_eq(line.data[line.len], '\0');
		memcpy(rl->data, line.data, line.len + 1);
		rl->len = line.len;
		rl->flags = line.flags;
		if (r->on_line != NULL)
			r->on_line(r, &line);
		/* A module that closes or pauses stops reading. */
		if (postern_conn_is_closing(r->conn) || r->conn->paused_user)
			break;
	}
}

HARNESS_FN void rec_cb(struct postern_conn *conn, enum postern_conn_event event, void *ctx)
{
	struct rec *r = ctx;

	ck_assert_ptr_eq(conn, r->conn);
	if (r->in_cb)
		r->nested = true;
	r->in_cb = true;
	/* A ring: the last MAX_EVENTS events (see LAST_EVENT). */
	r->events[r->nevents++ % MAX_EVENTS] = event;
	r->counts[event]++;
	/* Nothing may follow CLOSED. */
	ck_assert_uint_le(r->counts[POSTERN_CONN_CLOSED], 1);
	if (event != POSTERN_CONN_CLOSED)
		ck_assert_uint_eq(r->counts[POSTERN_CONN_CLOSED], 0);

	switch (event) {
	case POSTERN_CONN_INPUT:
		if (!r->no_read)
			rec_read_lines(r);
		break;
	case POSTERN_CONN_ERROR:
		snprintf(r->error, sizeof(r->error), "%s", postern_conn_error(conn));
		break;
	case POSTERN_CONN_DRAINED:
		r->drained_at = postern_conn_output_size(conn);
		break;
	case POSTERN_CONN_CLOSED:
		if (r->srv != NULL)
			r->srv->closed++;
		break;
	default:
		break;
	}
	if (r->on_event != NULL)
		r->on_event(r, event);
	r->in_cb = false;
}

HARNESS_FN void server_cb(struct postern_conn *conn, enum postern_conn_event event, void *ctx)
{
	struct server *srv = ctx;

	ck_assert_int_eq(event, POSTERN_CONN_OPEN);
	ck_assert_uint_lt(srv->n, 16);

	struct rec *r = &srv->recs[srv->n++];

	memset(r, 0, sizeof(*r));
	r->srv = srv;
	r->conn = conn;
	r->on_line = srv->on_line;
	r->on_event = srv->on_event;
	r->no_read = srv->no_read;
	r->user = srv->user;
	postern_conn_set_handler(conn, rec_cb, r);
	rec_cb(conn, event, r);
}

HARNESS_FN struct postern_listener *server_listen(struct server *srv,
					      struct postern_listen_settings *set)
{
	struct postern_listen_settings defaults = POSTERN_LISTEN_SETTINGS_INIT;
	const char *error = NULL;

	if (set == NULL)
		set = &defaults;
	if (set->address == NULL)
		set->address = "127.0.0.1:0";
	srv->listener = postern_listen(&H.mod, set, server_cb, srv, &error);
	ck_assert_msg(srv->listener != NULL, "listen: %s", error);
	return srv->listener;
}

HARNESS_FN struct client *server_client(struct server *srv)
{
	unsigned before = srv->n;
	struct client *c = client_new(postern_listener_address(srv->listener));

	WAIT_FOR(srv->n == before + 1, 2000);
	return c;
}

HARNESS_FN void assert_line(const struct rec *r, unsigned i, const char *data, size_t len,
			unsigned flags)
{
	ck_assert_uint_lt(i, r->nlines);
	ck_assert_msg(!r->lines[i].too_long, "line %u is TOO_LONG", i);
	ck_assert_uint_eq(r->lines[i].len, len);
	ck_assert(memcmp(r->lines[i].data, data, len) == 0);
	ck_assert_uint_eq(r->lines[i].flags, flags);
}

HARNESS_FN unsigned count_fds(void)
{
	DIR *dir = opendir("/proc/self/fd");
	unsigned count = 0;
	struct dirent *ent;

	ck_assert_ptr_nonnull(dir);
	while ((ent = readdir(dir)) != NULL) {
		if (ent->d_name[0] != '.')
			count++;
	}
	closedir(dir);
	return count;
}

#endif
