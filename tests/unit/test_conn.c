/*
 * The connection manager, driven through real sockets on 127.0.0.1 (and a
 * UNIX socket) with a hand-built core: line reading at and over the limit,
 * odd line ends, 1-byte reads, EOF, back-pressure, closing from callbacks,
 * limits, idle timeouts, outgoing connects and fd hygiene.
 */
#include <poll.h>
#include <sys/stat.h>
#include <sys/un.h>
#include "conn_harness.h"
#include "line_reader.h"

/* ---- Lines -------------------------------------------------------------- */

START_TEST(test_line_ends_and_flags)
{
	struct server srv = { .n = 0 };
	static const char input[] = "one\r\ntwo\nthr\ree\r\nnu\0l\r\n\r\nx\r\r\nlast";

	server_listen(&srv, NULL);
	struct client *c = server_client(&srv);
	struct rec *r = &srv.recs[0];

	ck_assert_uint_eq(r->counts[POSTERN_CONN_OPEN], 1);
	ck_assert(!postern_conn_is_outgoing(r->conn));
	ck_assert_str_eq(postern_conn_peer_ip(r->conn), "127.0.0.1");
	ck_assert(strncmp(postern_conn_peer(r->conn), "127.0.0.1:", 10) == 0);
	ck_assert_str_eq(postern_conn_local(r->conn), postern_listener_address(srv.listener));

	client_send(c, input, sizeof(input) - 1);
	WAIT_FOR(r->nlines == 6, 2000);
	assert_line(r, 0, "one", 3, POSTERN_LINE_CRLF);
	assert_line(r, 1, "two", 3, POSTERN_LINE_BARE_LF);
	assert_line(r, 2, "thr\ree", 6, POSTERN_LINE_CRLF | POSTERN_LINE_HAS_CR);
	assert_line(r, 3, "nu\0l", 4, POSTERN_LINE_CRLF | POSTERN_LINE_HAS_NUL);
	assert_line(r, 4, "", 0, POSTERN_LINE_CRLF);
	assert_line(r, 5, "x\r", 2, POSTERN_LINE_CRLF | POSTERN_LINE_HAS_CR);

	/* The unterminated rest stays as bytes. */
	size_t len;
	const char *rest = postern_conn_input(r->conn, &len);

	ck_assert_uint_eq(len, 4);
	ck_assert(memcmp(rest, "last", 4) == 0);
	client_free(c);
}
END_TEST

/* The input that exercises the limit of 16, and what must come out. */
static const char limit_input[] =
	"aaaaaaaaaaaaaaaa\r\n"   /* exactly 16: accepted */
	"bbbbbbbbbbbbbbbbb\r\n"  /* 17: too long */
	"ccccccccccccccccc\n"    /* 17 bare: too long */
	"dddddddddddddddd\r\r\n" /* 16 + CR: too long */
	"eeeeeeeeeeeeeeee\n"     /* 16 bare: accepted */
	"next\r\n";

static void assert_limit_lines(const struct rec *r)
{
	ck_assert_uint_eq(r->nlines, 6);
	assert_line(r, 0, "aaaaaaaaaaaaaaaa", 16, POSTERN_LINE_CRLF);
	ck_assert(r->lines[1].too_long);
	ck_assert(r->lines[2].too_long);
	ck_assert(r->lines[3].too_long);
	assert_line(r, 4, "eeeeeeeeeeeeeeee", 16, POSTERN_LINE_BARE_LF);
	assert_line(r, 5, "next", 4, POSTERN_LINE_CRLF);
}

START_TEST(test_line_limit)
{
	struct server srv = { .n = 0 };
	struct postern_listen_settings set = POSTERN_LISTEN_SETTINGS_INIT;

	set.max_line = 16;
	server_listen(&srv, &set);
	struct client *c = server_client(&srv);
	struct rec *r = &srv.recs[0];

	client_send(c, limit_input, sizeof(limit_input) - 1);
	WAIT_FOR(r->nlines == 6, 2000);
	assert_limit_lines(r);
	client_free(c);
}
END_TEST

START_TEST(test_line_huge_is_never_buffered)
{
	struct server srv = { .n = 0 };
	struct postern_listen_settings set = POSTERN_LISTEN_SETTINGS_INIT;
	char chunk[4096];

	set.max_line = 100;
	server_listen(&srv, &set);
	struct client *c = server_client(&srv);
	struct rec *r = &srv.recs[0];

	memset(chunk, 'z', sizeof(chunk));
	/* 4 MiB without a line end: the buffer must stay at its limit and
	 * the reader must keep going (no pause for ever). */
	for (int i = 0; i < 1024; i++) {
		client_send(c, chunk, sizeof(chunk));
		pump(0);
		ck_assert_uint_le(line_reader_len(&r->conn->in), r->conn->in.limit);
		ck_assert_uint_le(r->conn->in.size, r->conn->in.limit);
	}
	client_send_str(c, "\r\nafter\r\n");
	WAIT_FOR(r->nlines == 2, 5000);
	ck_assert(r->lines[0].too_long);
	assert_line(r, 1, "after", 5, POSTERN_LINE_CRLF);
	/* Read and empty: an idle connection keeps no input buffer. */
	ck_assert_ptr_null(r->conn->in.buf);
	client_free(c);
}
END_TEST

START_TEST(test_line_one_byte_reads)
{
	struct server srv = { .n = 0 };
	struct postern_listen_settings set = POSTERN_LISTEN_SETTINGS_INIT;

	set.max_line = 16;
	server_listen(&srv, &set);
	struct client *c = server_client(&srv);
	struct rec *r = &srv.recs[0];

	for (size_t i = 0; i < sizeof(limit_input) - 1; i++) {
		size_t before = line_reader_len(&r->conn->in);
		unsigned lines = r->nlines;

		client_send(c, &limit_input[i], 1);
		/* Each byte arrives in a read of its own. */
		WAIT_FOR(line_reader_len(&r->conn->in) != before || r->nlines != lines ||
				 r->conn->in.discarding,
			 2000);
	}
	WAIT_FOR(r->nlines == 6, 2000);
	assert_limit_lines(r);
	client_free(c);
}
END_TEST

START_TEST(test_set_max_line)
{
	struct server srv = { .n = 0 };

	server_listen(&srv, NULL);
	struct client *c = server_client(&srv);
	struct rec *r = &srv.recs[0];

	postern_conn_set_max_line(r->conn, 3);
	client_send_str(c, "abc\r\nabcd\r\n");
	WAIT_FOR(r->nlines == 2, 2000);
	assert_line(r, 0, "abc", 3, POSTERN_LINE_CRLF);
	ck_assert(r->lines[1].too_long);
	client_free(c);
}
END_TEST

static void eof_bye(struct rec *r, enum postern_conn_event event)
{
	if (event == POSTERN_CONN_EOF && r->user != NULL) {
		postern_conn_printf(r->conn, "bye %u\r\n", r->nlines);
		postern_conn_close_after_flush(r->conn, "eof");
	}
}

START_TEST(test_eof_mid_line)
{
	struct server srv = { .n = 0 };

	server_listen(&srv, NULL);
	struct client *c = server_client(&srv);
	struct rec *r = &srv.recs[0];

	client_send_str(c, "abc\r\npart");
	ck_assert_int_eq(shutdown(c->fd, SHUT_WR), 0);
	WAIT_FOR(r->counts[POSTERN_CONN_CLOSED] == 1, 2000);
	ck_assert_uint_eq(r->nlines, 1);
	assert_line(r, 0, "abc", 3, POSTERN_LINE_CRLF);
	ck_assert_uint_eq(r->counts[POSTERN_CONN_EOF], 1);
	/* INPUT before EOF, EOF before CLOSED. */
	ck_assert_int_eq(LAST_EVENT(r, 0), POSTERN_CONN_CLOSED);
	ck_assert_int_eq(LAST_EVENT(r, 1), POSTERN_CONN_EOF);
	ck_assert(!r->nested);
	WAIT_FOR(c->eof, 2000);
	ck_assert_uint_eq(c->len, 0);
	ck_assert_uint_eq(conn_count(H.core.conns), 0);
	client_free(c);
}
END_TEST

START_TEST(test_eof_reply_then_close)
{
	struct server srv = { .n = 0, .on_event = eof_bye, .user = &srv };

	server_listen(&srv, NULL);
	struct client *c = server_client(&srv);
	struct rec *r = &srv.recs[0];

	client_send_str(c, "one\r\ntwo\r\n");
	ck_assert_int_eq(shutdown(c->fd, SHUT_WR), 0);
	WAIT_FOR(c->eof, 2000);
	ck_assert_str_eq(c->buf, "bye 2\r\n");
	WAIT_FOR(r->counts[POSTERN_CONN_CLOSED] == 1, 2000);
	client_free(c);
}
END_TEST

/* ---- Half-closed peers (ABI 1.1) ----------------------------------------- */

/* The answer is not ready at EOF (think: an authentication in progress):
 * finish_later keeps the connection, a timer answers and closes. */
static void late_answer_cb(struct postern_timer *timer, void *ctx)
{
	struct rec *r = ctx;

	postern_conn_printf(r->conn, "late answer to %u lines\r\n", r->nlines);
	postern_conn_close_after_flush(r->conn, "answered");
}

static void eof_finish_later(struct rec *r, enum postern_conn_event event)
{
	if (event == POSTERN_CONN_EOF) {
		postern_conn_finish_later(r->conn);
		r->user = postern_timer_add(&H.mod, 30, false, late_answer_cb, r);
	}
}

START_TEST(test_finish_later_answers_after_eof)
{
	struct server srv = { .n = 0, .on_event = eof_finish_later };

	server_listen(&srv, NULL);
	struct client *c = server_client(&srv);
	struct rec *r = &srv.recs[0];

	client_send_str(c, "one\r\ntwo\r\n");
	ck_assert_int_eq(shutdown(c->fd, SHUT_WR), 0);
	WAIT_FOR(c->eof, 2000);
	ck_assert_str_eq(c->buf, "late answer to 2 lines\r\n");
	WAIT_FOR(r->counts[POSTERN_CONN_CLOSED] == 1, 2000);
	ck_assert_uint_eq(r->counts[POSTERN_CONN_EOF], 1);
	ck_assert_uint_eq(r->counts[POSTERN_CONN_INPUT] >= 1, 1);
	postern_timer_remove((struct postern_timer **)&r->user);
	client_free(c);
}
END_TEST

/* shutdown_write: what was queued arrives, then EOF; the peer may still
 * send, and what it sends is reported. */
static void open_bye_shutdown(struct rec *r, enum postern_conn_event event)
{
	if (event == POSTERN_CONN_OPEN) {
		postern_conn_write(r->conn, "bye\r\n", 5);
		postern_conn_shutdown_write(r->conn);
		postern_conn_write(r->conn, "dropped\r\n", 9);
	}
}

START_TEST(test_shutdown_write_keeps_reading)
{
	struct server srv = { .n = 0, .on_event = open_bye_shutdown };

	server_listen(&srv, NULL);
	struct client *c = server_client(&srv);
	struct rec *r = &srv.recs[0];

	WAIT_FOR(c->eof, 2000);
	ck_assert_str_eq(c->buf, "bye\r\n");
	client_send_str(c, "still here\r\n");
	WAIT_FOR(r->nlines == 1, 2000);
	assert_line(r, 0, "still here", 10, POSTERN_LINE_CRLF);
	ck_assert_uint_eq(r->counts[POSTERN_CONN_CLOSED], 0);
	client_free(c);
	WAIT_FOR(r->counts[POSTERN_CONN_CLOSED] == 1, 2000);
}
END_TEST

/* ---- Pausing ------------------------------------------------------------ */

static void pause_on_line(struct rec *r, const struct postern_line *line)
{
	postern_conn_pause_input(r->conn, true);
}

static void resume_cb(struct postern_timer *timer, void *ctx)
{
	struct rec *r = ctx;

	r->on_line = NULL;
	postern_conn_pause_input(r->conn, false);
}

START_TEST(test_pause_resume_keeps_input_and_eof)
{
	struct server srv = { .n = 0, .on_line = pause_on_line };

	server_listen(&srv, NULL);
	struct client *c = server_client(&srv);
	struct rec *r = &srv.recs[0];

	client_send_str(c, "first\r\nsecond\r\n");
	WAIT_FOR(r->nlines == 1, 2000);
	client_send_str(c, "third\r\n");
	ck_assert_int_eq(shutdown(c->fd, SHUT_WR), 0);
	pump_for(100);
	/* Paused: nothing more, and no EOF yet. */
	ck_assert_uint_eq(r->nlines, 1);
	ck_assert_uint_eq(r->counts[POSTERN_CONN_EOF], 0);

	struct postern_timer *timer = postern_timer_add(&H.mod, 10, false, resume_cb, r);

	WAIT_FOR(r->counts[POSTERN_CONN_CLOSED] == 1, 2000);
	ck_assert_uint_eq(r->nlines, 3);
	assert_line(r, 1, "second", 6, POSTERN_LINE_CRLF);
	assert_line(r, 2, "third", 5, POSTERN_LINE_CRLF);
	ck_assert_uint_eq(r->counts[POSTERN_CONN_EOF], 1);
	postern_timer_remove(&timer);
	client_free(c);
}
END_TEST

/* Pausing keeps the read interest until input actually arrives (no
 * epoll_ctl per command); input while paused drops it and stays
 * buffered in the socket; resuming reads it. */
static void pause_on_first_line(struct rec *r, const struct postern_line *line)
{
	if (r->nlines == 1)
		postern_conn_pause_input(r->conn, true);
}

START_TEST(test_pause_drops_read_interest_lazily)
{
	struct server srv = { .n = 0, .on_line = pause_on_first_line };

	server_listen(&srv, NULL);
	struct client *c = server_client(&srv);
	struct rec *r = &srv.recs[0];

	client_send_str(c, "first\r\n");
	WAIT_FOR(r->nlines == 1, 2000);
	pump_for(20);
	ck_assert(r->conn->paused_user);
	ck_assert_uint_ne(r->conn->io_events & POSTERN_IO_READ, 0);
	client_send_str(c, "second\r\n");
	pump_for(50);
	ck_assert_uint_eq(r->nlines, 1);
	ck_assert_uint_eq(r->conn->io_events & POSTERN_IO_READ, 0);
	postern_conn_pause_input(r->conn, false);
	WAIT_FOR(r->nlines == 2, 2000);
	assert_line(r, 1, "second", 6, POSTERN_LINE_CRLF);
	ck_assert_uint_ne(r->conn->io_events & POSTERN_IO_READ, 0);
	client_free(c);
}
END_TEST

/* ---- Back-pressure ------------------------------------------------------ */

#define FLOOD_SIZE (1024 * 1024)

static void flood_on_open(struct rec *r, enum postern_conn_event event)
{
	if (event != POSTERN_CONN_OPEN)
		return;

	int small = 4096;
	char *chunk = malloc(4096);

	/* Keep the kernel's buffers small so that ours must fill. */
	ck_assert_int_eq(setsockopt(r->conn->fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	memset(chunk, 'x', 4096);
	for (size_t done = 0; done < FLOOD_SIZE; done += 4096)
		postern_conn_write(r->conn, chunk, 4096);
	free(chunk);
	/* What the small socket buffer took at once went straight out;
	 * the rest waits in ours. */
	ck_assert_uint_le(postern_conn_output_size(r->conn), FLOOD_SIZE);
	ck_assert_uint_ge(postern_conn_output_size(r->conn), FLOOD_SIZE - 64 * 1024);
}

/* Small writes gather; a big write with nothing queued goes to the socket
 * at once; one with something queued waits behind it. Order is kept. */
#define THROUGH_SIZE 8192

static void write_through_on_open(struct rec *r, enum postern_conn_event event)
{
	static char big[THROUGH_SIZE];

	if (event != POSTERN_CONN_OPEN)
		return;
	memset(big, 'b', sizeof(big));
	postern_conn_write(r->conn, big, sizeof(big));
	ck_assert_uint_eq(postern_conn_output_size(r->conn), 0);
	postern_conn_write(r->conn, "a", 1);
	ck_assert_uint_eq(postern_conn_output_size(r->conn), 1);
	memset(big, 'c', sizeof(big));
	postern_conn_write(r->conn, big, sizeof(big));
	ck_assert_uint_eq(postern_conn_output_size(r->conn), 1 + THROUGH_SIZE);
	postern_conn_write(r->conn, "d", 1);
}

START_TEST(test_big_write_goes_through_in_order)
{
	struct server srv = { .n = 0, .on_event = write_through_on_open };

	server_listen(&srv, NULL);

	struct client *c = client_new(postern_listener_address(srv.listener));

	WAIT_FOR(c->len == 2 * THROUGH_SIZE + 2, 2000);
	for (size_t i = 0; i < THROUGH_SIZE; i++)
		ck_assert_int_eq(c->buf[i], 'b');
	ck_assert_int_eq(c->buf[THROUGH_SIZE], 'a');
	for (size_t i = THROUGH_SIZE + 1; i < 2 * THROUGH_SIZE + 1; i++)
		ck_assert_int_eq(c->buf[i], 'c');
	ck_assert_int_eq(c->buf[2 * THROUGH_SIZE + 1], 'd');
	client_free(c);
}
END_TEST

START_TEST(test_backpressure)
{
	struct server srv = { .n = 0, .on_event = flood_on_open };

	server_listen(&srv, NULL);

	struct client *c = client_new_fd(connect_fd(postern_listener_address(srv.listener), 4096));
	struct rec *r = &srv.recs[0];

	c->reading = false;
	WAIT_FOR(srv.n == 1, 2000);
	pump_for(50);
	/* The peer does not read: output stays above high water and the
	 * connection's own input is paused. */
	ck_assert_uint_gt(postern_conn_output_size(r->conn), CONN_DEFAULT_HIGH_WATER);
	ck_assert(r->conn->paused_output);
	client_send_str(c, "ping\r\n");
	pump_for(100);
	ck_assert_uint_eq(r->nlines, 0);
	ck_assert_uint_eq(r->counts[POSTERN_CONN_DRAINED], 0);

	/* The peer reads everything: DRAINED below low water, then input. */
	c->reading = true;
	WAIT_FOR(c->len == FLOOD_SIZE && r->nlines == 1, 5000);
	ck_assert_uint_eq(r->counts[POSTERN_CONN_DRAINED], 1);
	ck_assert_uint_lt(r->drained_at, CONN_DEFAULT_HIGH_WATER / 4);
	assert_line(r, 0, "ping", 4, POSTERN_LINE_CRLF);
	for (size_t i = 0; i < FLOOD_SIZE; i++)
		ck_assert(c->buf[i] == 'x');
	/* Flushed: no output buffer kept. */
	ck_assert_ptr_null(r->conn->out.buf);
	client_free(c);
}
END_TEST

START_TEST(test_output_limit_setting)
{
	struct server srv = { .n = 0 };

	server_listen(&srv, NULL);
	struct client *c = client_new_fd(connect_fd(postern_listener_address(srv.listener), 4096));
	struct rec *r;
	char chunk[1024];
	int small = 4096;

	c->reading = false;
	WAIT_FOR(srv.n == 1, 2000);
	r = &srv.recs[0];
	ck_assert_int_eq(setsockopt(r->conn->fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	postern_conn_set_output_limit(r->conn, 8192);
	memset(chunk, 'y', sizeof(chunk));
	for (int i = 0; i < 256; i++)
		postern_conn_write(r->conn, chunk, sizeof(chunk));
	pump_for(50);
	ck_assert(r->conn->paused_output);
	c->reading = true;
	WAIT_FOR(c->len == 256 * 1024 && r->counts[POSTERN_CONN_DRAINED] == 1, 5000);
	ck_assert(!r->conn->paused_output);
	client_free(c);
}
END_TEST

/* ---- Closing ------------------------------------------------------------ */

static void close_on_line(struct rec *r, const struct postern_line *line)
{
	const char *error;
	struct postern_line other;
	size_t len;

	if (strcmp(line->data, "kill") == 0) {
		struct rec *victim = r->user;

		postern_conn_close(victim->conn, "killed");
		ck_assert_uint_eq(victim->counts[POSTERN_CONN_CLOSED], 0);
		return;
	}
	if (strcmp(line->data, "close") != 0)
		return;
	postern_conn_close(r->conn, "asked to");
	/* Every call on a closing connection is a harmless no-op. */
	ck_assert(postern_conn_is_closing(r->conn));
	postern_conn_close(r->conn, "again");
	postern_conn_close_after_flush(r->conn, "again");
	postern_conn_write(r->conn, "x", 1);
	postern_conn_printf(r->conn, "%s", "y");
	ck_assert_uint_eq(postern_conn_output_size(r->conn), 0);
	postern_conn_pause_input(r->conn, true);
	postern_conn_pause_input(r->conn, false);
	postern_conn_set_idle_timeout(r->conn, 10);
	postern_conn_set_max_line(r->conn, 10);
	postern_conn_set_output_limit(r->conn, 10);
	postern_conn_set_state(r->conn, "GONE");
	ck_assert_int_eq(postern_conn_read_line(r->conn, &other), POSTERN_READ_NONE);
	(void)postern_conn_input(r->conn, &len);
	ck_assert_uint_eq(len, 0);
	postern_conn_consume(r->conn, 0);
	ck_assert_int_eq(postern_conn_starttls(r->conn, NULL, NULL, &error), -1);
	ck_assert_int_eq(postern_conn_set_keepalive(r->conn, 1, 1, 1), -1);
	ck_assert_uint_gt(postern_conn_id(r->conn), 0);
	ck_assert_ptr_eq(postern_conn_mod(r->conn), &H.mod);
	/* CLOSED comes after this callback returned. */
	ck_assert_uint_eq(r->counts[POSTERN_CONN_CLOSED], 0);
}

START_TEST(test_close_inside_callback)
{
	struct server srv = { .n = 0, .on_line = close_on_line };

	server_listen(&srv, NULL);
	struct client *c = server_client(&srv);
	struct rec *r = &srv.recs[0];

	client_send_str(c, "close\r\nmore\r\n");
	WAIT_FOR(r->counts[POSTERN_CONN_CLOSED] == 1, 2000);
	ck_assert(!r->nested);
	ck_assert_uint_eq(r->nlines, 1);
	ck_assert_int_eq(LAST_EVENT(r, 0), POSTERN_CONN_CLOSED);
	WAIT_FOR(c->eof, 2000);
	ck_assert_uint_eq(c->len, 0);
	pump_for(30);
	ck_assert_uint_eq(r->counts[POSTERN_CONN_CLOSED], 1);
	ck_assert_uint_eq(conn_count(H.core.conns), 0);
	client_free(c);
}
END_TEST

START_TEST(test_close_other_from_callback)
{
	struct server srv = { .n = 0, .on_line = close_on_line };

	server_listen(&srv, NULL);
	struct client *a = server_client(&srv);
	struct client *b = server_client(&srv);

	srv.recs[0].user = &srv.recs[1];
	client_send_str(a, "kill\r\n");
	WAIT_FOR(srv.recs[1].counts[POSTERN_CONN_CLOSED] == 1, 2000);
	WAIT_FOR(b->eof, 2000);
	ck_assert(!srv.recs[0].nested && !srv.recs[1].nested);
	ck_assert_uint_eq(srv.recs[0].counts[POSTERN_CONN_CLOSED], 0);
	ck_assert_str_eq(postern_conn_peer_ip(srv.recs[0].conn), "127.0.0.1");
	client_free(a);
	client_free(b);
}
END_TEST

static void quit_on_line(struct rec *r, const struct postern_line *line)
{
	if (strcmp(line->data, "QUIT") == 0) {
		size_t *big = r->user;

		if (big != NULL && *big > 0) {
			char *data = malloc(*big);

			memset(data, 'b', *big);
			postern_conn_write(r->conn, data, *big);
			free(data);
		}
		postern_conn_printf(r->conn, "221 Bye\r\n");
		postern_conn_close_after_flush(r->conn, "quit");
		ck_assert(postern_conn_is_closing(r->conn));
	}
}

START_TEST(test_close_after_flush)
{
	struct server srv = { .n = 0, .on_line = quit_on_line };

	server_listen(&srv, NULL);
	struct client *c = server_client(&srv);
	struct rec *r = &srv.recs[0];

	/* The line after QUIT is never read. */
	client_send_str(c, "QUIT\r\nNOOP\r\n");
	WAIT_FOR(c->eof, 2000);
	ck_assert_str_eq(c->buf, "221 Bye\r\n");
	WAIT_FOR(r->counts[POSTERN_CONN_CLOSED] == 1, 2000);
	ck_assert_uint_eq(r->nlines, 1);
	client_free(c);
}
END_TEST

static void small_sndbuf(struct rec *r, enum postern_conn_event event)
{
	int small = 4096;

	if (event == POSTERN_CONN_OPEN)
		ck_assert_int_eq(setsockopt(r->conn->fd, SOL_SOCKET, SO_SNDBUF, &small,
					    sizeof(small)), 0);
}

START_TEST(test_close_after_flush_large)
{
	size_t big = 600 * 1024;
	struct server srv = { .n = 0, .on_line = quit_on_line, .on_event = small_sndbuf,
			      .user = &big };

	server_listen(&srv, NULL);
	struct client *c = client_new_fd(connect_fd(postern_listener_address(srv.listener), 4096));

	WAIT_FOR(srv.n == 1, 2000);
	c->reading = false;
	client_send_str(c, "QUIT\r\n");
	pump_for(50);
	ck_assert_uint_eq(srv.recs[0].counts[POSTERN_CONN_CLOSED], 0);
	c->reading = true;
	WAIT_FOR(c->eof, 5000);
	ck_assert_uint_eq(c->len, big + 9);
	ck_assert(memcmp(c->buf + big, "221 Bye\r\n", 9) == 0);
	WAIT_FOR(srv.recs[0].counts[POSTERN_CONN_CLOSED] == 1, 2000);
	client_free(c);
}
END_TEST

START_TEST(test_close_all_and_release_module)
{
	struct server srv = { .n = 0 };

	server_listen(&srv, NULL);
	struct client *a = server_client(&srv);
	struct client *b = server_client(&srv);

	ck_assert_uint_eq(conn_count_module(H.core.conns, &H.mod), 2);
	ck_assert_uint_eq(conn_count_module(H.core.conns, &H.self), 0);
	conn_close_all(H.core.conns, &H.mod, "shutdown");
	/* Not in the caller's stack: CLOSED waits for the loop. */
	ck_assert_uint_eq(srv.closed, 0);
	loop_run_once(H.core.loop, 0);
	ck_assert_uint_eq(srv.closed, 2);
	ck_assert_uint_eq(conn_count(H.core.conns), 0);
	WAIT_FOR(a->eof && b->eof, 2000);

	/* Release: the listener goes, no callbacks for what is left. */
	struct client *c = server_client(&srv);

	conn_release_module(H.core.conns, &H.mod);
	ck_assert_uint_eq(conn_count(H.core.conns), 0);
	ck_assert_uint_eq(srv.closed, 2);
	WAIT_FOR(c->eof, 2000);
	client_free(a);
	client_free(b);
	client_free(c);
}
END_TEST

/* ---- Limits ------------------------------------------------------------- */

START_TEST(test_limit_per_ip)
{
	struct server srv = { .n = 0 };
	struct postern_listen_settings set = POSTERN_LISTEN_SETTINGS_INIT;

	set.max_per_ip = 2;
	set.limit_reply = "421 4.7.0 Too many connections";
	server_listen(&srv, &set);
	struct client *a = server_client(&srv);
	struct client *b = server_client(&srv);
	struct client *c = client_new(postern_listener_address(srv.listener));

	WAIT_FOR(c->eof, 2000);
	ck_assert_str_eq(c->buf, "421 4.7.0 Too many connections\r\n");
	ck_assert_uint_eq(srv.n, 2);
	ck_assert(!a->eof && !b->eof);

	/* A closed client gives its place back. */
	client_free(a);
	WAIT_FOR(srv.closed == 1, 2000);
	struct client *d = server_client(&srv);

	ck_assert(!d->eof);
	ck_assert_uint_eq(srv.n, 3);
	/* Also when the server side closes (idle timeout, module). */
	postern_conn_close(srv.recs[1].conn, "test");
	WAIT_FOR(srv.closed == 2, 2000);
	struct client *e = server_client(&srv);

	ck_assert_uint_eq(srv.n, 4);
	client_free(b);
	client_free(c);
	client_free(d);
	client_free(e);
}
END_TEST

START_TEST(test_limit_listener)
{
	struct server srv = { .n = 0 };
	struct postern_listen_settings set = POSTERN_LISTEN_SETTINGS_INIT;

	set.max_connections = 1;
	set.limit_reply = "-ERR busy";
	server_listen(&srv, &set);
	struct client *a = server_client(&srv);
	struct client *b = client_new(postern_listener_address(srv.listener));

	WAIT_FOR(b->eof, 2000);
	ck_assert_str_eq(b->buf, "-ERR busy\r\n");
	client_free(a);
	WAIT_FOR(srv.closed == 1, 2000);
	struct client *c = server_client(&srv);

	ck_assert_uint_eq(srv.n, 2);
	client_free(b);
	client_free(c);
}
END_TEST

START_TEST(test_limit_global)
{
	struct server one = { .n = 0 }, two = { .n = 0 };

	H.core.settings.max_connections = 2;
	server_listen(&one, NULL);
	server_listen(&two, NULL);
	struct client *a = server_client(&one);
	struct client *b = server_client(&two);
	/* No limit_reply: just closed. */
	struct client *c = client_new(postern_listener_address(two.listener));

	WAIT_FOR(c->eof, 2000);
	ck_assert_uint_eq(c->len, 0);
	ck_assert_uint_eq(one.n + two.n, 2);
	postern_conn_close(one.recs[0].conn, "make room");
	WAIT_FOR(one.closed == 1, 2000);
	struct client *d = server_client(&two);

	ck_assert_uint_eq(two.n, 2);
	client_free(a);
	client_free(b);
	client_free(c);
	client_free(d);
}
END_TEST

START_TEST(test_refused_while_shutting_down)
{
	struct server srv = { .n = 0 };
	struct postern_listen_settings set = POSTERN_LISTEN_SETTINGS_INIT;

	set.limit_reply = "421 shutting down";
	server_listen(&srv, &set);
	H.core.shutting_down = true;
	struct client *c = client_new(postern_listener_address(srv.listener));

	WAIT_FOR(c->eof, 2000);
	ck_assert_str_eq(c->buf, "421 shutting down\r\n");
	ck_assert_uint_eq(srv.n, 0);
	client_free(c);
}
END_TEST

/* ---- Timeouts ----------------------------------------------------------- */

static void extend_once(struct rec *r, enum postern_conn_event event)
{
	if (event == POSTERN_CONN_TIMEOUT && r->counts[POSTERN_CONN_TIMEOUT] == 1)
		postern_conn_set_idle_timeout(r->conn, 100);
}

START_TEST(test_idle_timeout)
{
	struct server srv = { .n = 0 };
	struct postern_listen_settings set = POSTERN_LISTEN_SETTINGS_INIT;

	set.idle_timeout_ms = 100;
	server_listen(&srv, &set);
	uint64_t start = postern_now_ms();
	struct client *c = server_client(&srv);
	struct rec *r = &srv.recs[0];

	/* Activity resets the countdown. */
	for (int i = 0; i < 6; i++) {
		client_send_str(c, "noop\r\n");
		pump_for(40);
	}
	ck_assert_uint_eq(r->counts[POSTERN_CONN_TIMEOUT], 0);
	WAIT_FOR(r->counts[POSTERN_CONN_CLOSED] == 1, 2000);
	ck_assert_uint_eq(r->counts[POSTERN_CONN_TIMEOUT], 1);
	ck_assert_uint_ge(postern_now_ms() - start, 200 + 100);
	ck_assert_int_eq(LAST_EVENT(r, 1), POSTERN_CONN_TIMEOUT);
	WAIT_FOR(c->eof, 2000);
	client_free(c);
}
END_TEST

START_TEST(test_idle_timeout_reset_in_callback)
{
	struct server srv = { .n = 0, .on_event = extend_once };
	struct postern_listen_settings set = POSTERN_LISTEN_SETTINGS_INIT;

	set.idle_timeout_ms = 50;
	server_listen(&srv, &set);
	uint64_t start = postern_now_ms();
	struct client *c = server_client(&srv);
	struct rec *r = &srv.recs[0];

	WAIT_FOR(r->counts[POSTERN_CONN_TIMEOUT] == 1, 2000);
	pump_for(20);
	ck_assert_uint_eq(r->counts[POSTERN_CONN_CLOSED], 0);
	WAIT_FOR(r->counts[POSTERN_CONN_CLOSED] == 1, 2000);
	ck_assert_uint_eq(r->counts[POSTERN_CONN_TIMEOUT], 2);
	ck_assert_uint_ge(postern_now_ms() - start, 150);
	client_free(c);
}
END_TEST

/* ---- Outgoing connections ----------------------------------------------- */

/* A plain listening socket the test accepts on itself. */
static int raw_listener(int backlog, char *address, size_t size)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(fd, backlog), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	snprintf(address, size, "127.0.0.1:%u", (unsigned)ntohs(sin.sin_port));
	return fd;
}

START_TEST(test_connect_success)
{
	struct rec r = { .nevents = 0 };
	struct postern_connect_settings set = POSTERN_CONNECT_SETTINGS_INIT;
	char address[64];
	const char *error = NULL;
	int lfd = raw_listener(8, address, sizeof(address));

	set.address = address;
	set.source = "127.0.0.1";
	r.conn = postern_connect(&H.mod, &set, rec_cb, &r, &error);
	ck_assert_msg(r.conn != NULL, "connect: %s", error);
	/* Nothing from inside the call. */
	ck_assert_uint_eq(r.nevents, 0);
	ck_assert(postern_conn_is_outgoing(r.conn));
	/* Output queued before the connection is up goes out once it is. */
	postern_conn_printf(r.conn, "EHLO %s\r\n", "test");
	WAIT_FOR(r.counts[POSTERN_CONN_OPEN] == 1, 2000);
	ck_assert_str_eq(postern_conn_peer(r.conn), address);
	ck_assert(strncmp(postern_conn_local(r.conn), "127.0.0.1:", 10) == 0);
	ck_assert_int_eq(postern_conn_set_keepalive(r.conn, 60, 10, 3), 0);

	int server = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	struct client *s = client_new_fd(server);

	WAIT_FOR(s->len == 11, 2000);
	ck_assert_str_eq(s->buf, "EHLO test\r\n");
	client_send_str(s, "250 ok\r\n");
	WAIT_FOR(r.nlines == 1, 2000);
	assert_line(&r, 0, "250 ok", 6, POSTERN_LINE_CRLF);
	postern_conn_close(r.conn, "done");
	WAIT_FOR(r.counts[POSTERN_CONN_CLOSED] == 1 && s->eof, 2000);
	client_free(s);
	close(lfd);
}
END_TEST

START_TEST(test_connect_refused)
{
	struct rec r = { .nevents = 0 };
	struct postern_connect_settings set = POSTERN_CONNECT_SETTINGS_INIT;
	char address[64];
	const char *error = NULL;

	/* A port that was just free: nobody listens there. */
	close(raw_listener(1, address, sizeof(address)));
	set.address = address;
	r.conn = postern_connect(&H.mod, &set, rec_cb, &r, &error);
	ck_assert_ptr_nonnull(r.conn);
	WAIT_FOR(r.counts[POSTERN_CONN_CLOSED] == 1, 2000);
	ck_assert_uint_eq(r.counts[POSTERN_CONN_OPEN], 0);
	ck_assert_uint_eq(r.counts[POSTERN_CONN_ERROR], 1);
	ck_assert_str_eq(r.error, "connection refused");
	ck_assert_int_eq(r.events[0], POSTERN_CONN_ERROR);
	ck_assert_uint_eq(conn_count(H.core.conns), 0);
}
END_TEST

START_TEST(test_connect_timeout)
{
	struct rec r = { .nevents = 0 };
	struct postern_connect_settings set = POSTERN_CONNECT_SETTINGS_INIT;
	char address[64];
	const char *error = NULL;
	int fillers[8], nfill = 0;
	int lfd = raw_listener(0, address, sizeof(address));
	struct sockaddr_storage addr;
	socklen_t len;

	/* Fill the accept queue of a listener that never accepts: further
	 * SYNs are dropped and a connect hangs. */
	ck_assert_int_eq(conn_parse_address(address, false, &addr, &len, NULL, &error), 0);
	for (; nfill < 8; nfill++) {
		struct pollfd pfd;

		fillers[nfill] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		(void)connect(fillers[nfill], (struct sockaddr *)&addr, len);
		pfd.fd = fillers[nfill];
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, 200) == 0) {
			nfill++;
			break;
		}
	}
	set.address = address;
	set.timeout_ms = 200;
	uint64_t start = postern_now_ms();

	r.conn = postern_connect(&H.mod, &set, rec_cb, &r, &error);
	ck_assert_ptr_nonnull(r.conn);
	WAIT_FOR(r.counts[POSTERN_CONN_CLOSED] == 1, 3000);
	ck_assert_uint_eq(r.counts[POSTERN_CONN_OPEN], 0);
	ck_assert_str_eq(r.error, "connect timeout");
	ck_assert_uint_ge(postern_now_ms() - start, 200);
	for (int i = 0; i < nfill; i++)
		close(fillers[i]);
	close(lfd);
}
END_TEST

START_TEST(test_connect_bad_settings)
{
	struct postern_connect_settings set = POSTERN_CONNECT_SETTINGS_INIT;
	struct rec r = { .nevents = 0 };
	const char *error = NULL;
	static const char *const bad[] = {
		"localhost:25", "1.2.3.4", "[::1]", "1.2.3.4:70000", "1.2.3.4:", ":25",
		"[::1:25", "::1:25", "*:25", "1.2.3.4:2x",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		error = NULL;
		set.address = bad[i];
		ck_assert_msg(postern_connect(&H.mod, &set, rec_cb, &r, &error) == NULL, "%s",
			      bad[i]);
		ck_assert_ptr_nonnull(error);
	}
	set.address = "127.0.0.1:25";
	set.source = "::1";
	ck_assert_ptr_null(postern_connect(&H.mod, &set, rec_cb, &r, &error));
	set.struct_size = 0;
	ck_assert_ptr_null(postern_connect(&H.mod, &set, rec_cb, &r, &error));
	ck_assert_uint_eq(conn_count(H.core.conns), 0);
}
END_TEST

/* An outgoing connection and an accepted one in the same loop. */
START_TEST(test_connect_to_own_listener)
{
	struct server srv = { .n = 0 };
	struct rec r = { .nevents = 0 };
	struct postern_connect_settings set = POSTERN_CONNECT_SETTINGS_INIT;
	const char *error;

	server_listen(&srv, NULL);
	set.address = postern_listener_address(srv.listener);
	r.conn = postern_connect(&H.mod, &set, rec_cb, &r, &error);
	WAIT_FOR(r.counts[POSTERN_CONN_OPEN] == 1 && srv.n == 1, 2000);
	postern_conn_write(r.conn, "hi\r\n", 4);
	WAIT_FOR(srv.recs[0].nlines == 1, 2000);
	postern_conn_write(srv.recs[0].conn, "yo\n", 3);
	WAIT_FOR(r.nlines == 1, 2000);
	assert_line(&r, 0, "yo", 2, POSTERN_LINE_BARE_LF);
	ck_assert_str_eq(postern_conn_peer(srv.recs[0].conn), postern_conn_local(r.conn));
	postern_conn_close(r.conn, "done");
	WAIT_FOR(srv.recs[0].counts[POSTERN_CONN_CLOSED] == 1, 2000);
	ck_assert_uint_eq(srv.recs[0].counts[POSTERN_CONN_EOF], 1);
}
END_TEST

/* ---- Listeners ---------------------------------------------------------- */

START_TEST(test_listen_addresses)
{
	struct server srv = { .n = 0 };
	struct postern_listen_settings set = POSTERN_LISTEN_SETTINGS_INIT;
	const char *error = NULL;

	set.address = "127.0.0.1:0";
	server_listen(&srv, &set);
	const char *address = postern_listener_address(srv.listener);

	ck_assert(strncmp(address, "127.0.0.1:", 10) == 0);
	ck_assert_int_ne(atoi(address + 10), 0);

	/* The same port again is in use. */
	char copy[64];

	snprintf(copy, sizeof(copy), "%s", address);
	set.address = copy;
	ck_assert_ptr_null(postern_listen(&H.mod, &set, server_cb, &srv, &error));
	ck_assert_ptr_nonnull(strstr(error, "in use"));

	set.address = "nonsense";
	ck_assert_ptr_null(postern_listen(&H.mod, &set, server_cb, &srv, &error));
	set.address = NULL;
	ck_assert_ptr_null(postern_listen(&H.mod, &set, server_cb, &srv, &error));

	/* "*": both families on one port. */
	struct server any = { .n = 0 };

	set.address = "*:0";
	server_listen(&any, &set);
	address = postern_listener_address(any.listener);
	ck_assert(strncmp(address, "*:", 2) == 0);

	char target[64];

	snprintf(target, sizeof(target), "127.0.0.1:%s", address + 2);
	struct client *a = client_new(target);

	WAIT_FOR(any.n == 1, 2000);
	int v6 = socket(AF_INET6, SOCK_STREAM, 0);
	struct sockaddr_in6 loop6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };

	/* Only where the system has IPv6 on loopback. */
	if (v6 >= 0 && bind(v6, (struct sockaddr *)&loop6, sizeof(loop6)) == 0) {
		snprintf(target, sizeof(target), "[::1]:%s", address + 2);
		struct client *b = client_new(target);

		WAIT_FOR(any.n == 2, 2000);
		ck_assert_str_eq(postern_conn_peer_ip(any.recs[1].conn), "::1");
		ck_assert(strncmp(postern_conn_peer(any.recs[1].conn), "[::1]:", 6) == 0);
		client_free(b);
	}
	if (v6 >= 0)
		close(v6);

	/* After closing, nobody accepts; the address is still known. */
	listener_close_all(H.core.conns, &H.mod);
	ck_assert(strncmp(postern_listener_address(any.listener), "*:", 2) == 0);
	snprintf(target, sizeof(target), "127.0.0.1:%s", address + 2);

	struct sockaddr_storage addr;
	socklen_t len;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_eq(conn_parse_address(target, false, &addr, &len, NULL, &error), 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&addr, len), -1);
	ck_assert_int_eq(errno, ECONNREFUSED);
	close(fd);
	client_free(a);
}
END_TEST

START_TEST(test_listen_old_settings_struct)
{
	struct server srv = { .n = 0 };
	struct postern_listen_settings set = POSTERN_LISTEN_SETTINGS_INIT;
	const char *error;

	/* A module built when the struct ended before max_line: what lies
	 * beyond its size is not read. */
	set.struct_size = (uint32_t)offsetof(struct postern_listen_settings, max_line);
	set.max_line = 4;
	set.idle_timeout_ms = 1;
	server_listen(&srv, &set);
	struct client *c = server_client(&srv);

	client_send_str(c, "longer than four\r\n");
	WAIT_FOR(srv.recs[0].nlines == 1, 2000);
	ck_assert(!srv.recs[0].lines[0].too_long);
	pump_for(30);
	ck_assert_uint_eq(srv.recs[0].counts[POSTERN_CONN_TIMEOUT], 0);

	set.struct_size = 0;
	ck_assert_ptr_null(postern_listen(&H.mod, &set, server_cb, &srv, &error));
	client_free(c);
}
END_TEST

START_TEST(test_unix_listener)
{
	char dir[] = "/tmp/postern-conn-XXXXXX";
	char path[96], address[128];
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct server srv = { .n = 0 }, again = { .n = 0 };
	struct postern_listen_settings set = POSTERN_LISTEN_SETTINGS_INIT;
	struct stat st;
	const char *error;
	uid_t uid;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sock", dir);
	snprintf(address, sizeof(address), "unix:%s", path);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);

	/* A stale socket file from a process that is gone. */
	int stale = socket(AF_UNIX, SOCK_STREAM, 0);

	ck_assert_int_eq(bind(stale, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(stale);

	set.address = address;
	server_listen(&srv, &set);
	ck_assert_str_eq(postern_listener_address(srv.listener), address);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	ck_assert_int_eq(listener_unix_chown(srv.listener, getuid(), getgid(), &error), 0);

	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	struct client *c = client_new_fd(fd);

	WAIT_FOR(srv.n == 1, 2000);
	struct rec *r = &srv.recs[0];

	ck_assert_int_eq(conn_peer_uid(r->conn, &uid), 0);
	ck_assert_uint_eq(uid, getuid());
	ck_assert_str_eq(postern_conn_peer(r->conn), "unix");
	client_send_str(c, "hello\r\n");
	WAIT_FOR(r->nlines == 1, 2000);
	postern_conn_write(r->conn, "ok\n", 3);
	WAIT_FOR(c->len == 3, 2000);

	/* TCP connections have no peer uid. */
	struct server tcp = { .n = 0 };

	server_listen(&tcp, NULL);
	struct client *t = server_client(&tcp);

	ck_assert_int_eq(conn_peer_uid(tcp.recs[0].conn, &uid), -1);
	ck_assert_int_eq(listener_unix_chown(tcp.listener, getuid(), getgid(), &error), -1);

	/* A live socket is not taken over (the probe that finds out is a
	 * connection the live listener sees come and go). */
	ck_assert_ptr_null(postern_listen(&H.mod, &set, server_cb, &again, &error));
	ck_assert_ptr_nonnull(strstr(error, "in use"));
	WAIT_FOR(srv.closed == 1, 2000);
	ck_assert_int_eq(stat(path, &st), 0);

	listener_close_all(H.core.conns, NULL);
	ck_assert_int_eq(stat(path, &st), -1);
	client_free(c);
	client_free(t);
	rmdir(dir);
}
END_TEST

static void close_on_open(struct rec *r, enum postern_conn_event event)
{
	if (event == POSTERN_CONN_OPEN)
		postern_conn_close(r->conn, "go away");
}

START_TEST(test_fd_count_after_many_cycles)
{
	struct server srv = { .n = 0, .on_event = close_on_open };
	struct postern_connect_settings set = POSTERN_CONNECT_SETTINGS_INIT;
	const char *error;

	server_listen(&srv, NULL);
	set.address = postern_listener_address(srv.listener);
	unsigned baseline = count_fds();

	for (unsigned i = 0; i < 1000; i++) {
		if (i % 2 == 0) {
			/* A client of ours, closed by the server on OPEN. */
			struct client *c = client_new(set.address);

			WAIT_FOR(c->eof, 2000);
			client_free(c);
		} else {
			/* An outgoing connection of the core to itself. */
			struct rec r = { .nevents = 0 };

			r.conn = postern_connect(&H.mod, &set, rec_cb, &r, &error);
			ck_assert_ptr_nonnull(r.conn);
			WAIT_FOR(r.counts[POSTERN_CONN_CLOSED] == 1, 2000);
			ck_assert_uint_eq(r.counts[POSTERN_CONN_EOF], 1);
		}
		srv.n = 0; /* recorders are reused: all closed by now */
		WAIT_FOR(conn_count(H.core.conns) == 0, 2000);
	}
	ck_assert_uint_eq(count_fds(), baseline);
}
END_TEST

/* ---- Registry ----------------------------------------------------------- */

START_TEST(test_registry_describe)
{
	struct server srv = { .n = 0 };

	server_listen(&srv, NULL);
	struct client *a = server_client(&srv);
	struct client *b = server_client(&srv);

	postern_conn_set_state(srv.recs[0].conn, "AUTH");
	postern_conn_set_user(srv.recs[0].conn, "bob");
	postern_conn_set_user(srv.recs[1].conn, "eve");
	postern_conn_set_user(srv.recs[1].conn, NULL);
	ck_assert_uint_lt(postern_conn_id(srv.recs[0].conn), postern_conn_id(srv.recs[1].conn));

	struct postern_str *text = postern_str_new(), *out = postern_str_new();
	struct postern_json *json = postern_json_new(out);

	conn_registry_describe(H.core.conns, json, text);
	postern_json_free(&json);

	const char *t = postern_str_data(text), *j = postern_str_data(out);
	char id[32];

	snprintf(id, sizeof(id), "c%llu test ",
		 (unsigned long long)postern_conn_id(srv.recs[0].conn));
	ck_assert_ptr_nonnull(strstr(t, id));
	ck_assert_ptr_nonnull(strstr(t, "state=AUTH user=bob"));
	ck_assert_ptr_null(strstr(t, "eve"));
	/* One line per connection. */
	unsigned lines = 0;

	for (const char *p = t; *p != '\0'; p++)
		lines += *p == '\n';
	ck_assert_uint_eq(lines, 2);
	ck_assert_int_eq(j[0], '[');
	ck_assert_ptr_nonnull(strstr(j, "\"bob\""));
	ck_assert_ptr_nonnull(strstr(j, "\"AUTH\""));
	ck_assert_ptr_nonnull(strstr(j, "\"test\""));
	postern_str_free(&text);
	postern_str_free(&out);
	client_free(a);
	client_free(b);
}
END_TEST

/* ---- Bus events --------------------------------------------------------- */

struct bus_rec {
	unsigned opened, closed;
	uint64_t opened_id, closed_id;
	char module[32], reason[64], peer[64];
	bool from_core;
};

static void bus_cb(const struct postern_event *event, void *ctx)
{
	struct bus_rec *b = ctx;
	const struct postern_ev_conn *ev = event->payload;

	ck_assert_str_eq(event->payload_type, POSTERN_EV_CONN_TYPE);
	ck_assert_uint_ge(ev->struct_size, sizeof(*ev));
	b->from_core = event->publisher == NULL;
	snprintf(b->module, sizeof(b->module), "%s", ev->module);
	snprintf(b->peer, sizeof(b->peer), "%s", ev->peer);
	if (strcmp(event->topic, POSTERN_TOPIC_CONN_OPENED) == 0) {
		b->opened++;
		b->opened_id = ev->conn_id;
	} else {
		b->closed++;
		b->closed_id = ev->conn_id;
		snprintf(b->reason, sizeof(b->reason), "%s", ev->reason);
	}
}

START_TEST(test_bus_events)
{
	struct server srv = { .n = 0 };
	struct bus_rec b = { .opened = 0 };
	const char *error = NULL;

	H.core.bus = event_bus_new(&H.core);
	ck_assert_ptr_nonnull(postern_bus_subscribe(&H.mod, "core.conn.*", POSTERN_EV_CONN_TYPE,
						    POSTERN_BUS_PRIO_DEFAULT, bus_cb, &b, &error));
	server_listen(&srv, NULL);
	struct client *c = server_client(&srv);
	struct rec *r = &srv.recs[0];

	ck_assert_uint_eq(b.opened, 1);
	ck_assert_uint_eq(b.opened_id, postern_conn_id(r->conn));
	ck_assert_str_eq(b.module, "test");
	ck_assert_str_eq(b.peer, postern_conn_peer(r->conn));
	ck_assert(b.from_core);
	client_free(c);
	WAIT_FOR(r->counts[POSTERN_CONN_CLOSED] == 1, 2000);
	ck_assert_uint_eq(b.closed, 1);
	ck_assert_uint_eq(b.closed_id, b.opened_id);
	ck_assert_str_eq(b.reason, "peer closed");

	/* A refused client was never opened: no events. */
	struct postern_connect_settings set = POSTERN_CONNECT_SETTINGS_INIT;
	struct rec out = { .nevents = 0 };
	char address[64];

	snprintf(address, sizeof(address), "%s", postern_listener_address(srv.listener));
	listener_close_all(H.core.conns, NULL);
	set.address = address;
	out.conn = postern_connect(&H.mod, &set, rec_cb, &out, &error);
	WAIT_FOR(out.counts[POSTERN_CONN_CLOSED] == 1, 2000);
	ck_assert_uint_eq(b.opened, 1);
	ck_assert_uint_eq(b.closed, 1);
	conn_registry_free(&H.core.conns);
	event_bus_release_module(H.core.bus, &H.mod);
	event_bus_free(&H.core.bus);
}
END_TEST

/* A trimmed reader holds no buffer, and the next one starts at the size
 * the last grew to (a relay does not regrow from 2 KiB for every burst). */
START_TEST(test_line_reader_trim_remembers_size)
{
	struct line_reader reader;
	struct postern_line line;
	char chunk[1000];

	line_reader_init(&reader, 8192, 65536);
	memset(chunk, 'x', sizeof(chunk));
	chunk[sizeof(chunk) - 1] = '\n';
	for (int i = 0; i < 20; i++)
		ck_assert_uint_eq(line_reader_append(&reader, chunk, sizeof(chunk)), sizeof(chunk));
	size_t grown = reader.size;
	ck_assert_uint_ge(grown, 20000);
	while (line_reader_next(&reader, &line) == POSTERN_READ_LINE)
		ck_assert_uint_eq(line.len, sizeof(chunk) - 1);
	line_reader_consume(&reader, 0); /* release the held line */
	line_reader_trim(&reader);
	ck_assert_ptr_null(reader.buf);
	ck_assert_uint_eq(line_reader_append(&reader, "a\n", 2), 2);
	ck_assert_uint_eq(reader.size, grown);
	ck_assert_int_eq(line_reader_next(&reader, &line), POSTERN_READ_LINE);
	ck_assert_str_eq(line.data, "a");
	line_reader_deinit(&reader);
}
END_TEST

Suite *conn_suite(void)
{
	Suite *suite = suite_create("conn");
	TCase *tc = tcase_create("conn");

	tcase_add_checked_fixture(tc, harness_setup, harness_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_line_ends_and_flags);
	tcase_add_test(tc, test_line_reader_trim_remembers_size);
	tcase_add_test(tc, test_line_limit);
	tcase_add_test(tc, test_line_huge_is_never_buffered);
	tcase_add_test(tc, test_line_one_byte_reads);
	tcase_add_test(tc, test_set_max_line);
	tcase_add_test(tc, test_eof_mid_line);
	tcase_add_test(tc, test_eof_reply_then_close);
	tcase_add_test(tc, test_pause_resume_keeps_input_and_eof);
	tcase_add_test(tc, test_backpressure);
	tcase_add_test(tc, test_pause_drops_read_interest_lazily);
	tcase_add_test(tc, test_finish_later_answers_after_eof);
	tcase_add_test(tc, test_shutdown_write_keeps_reading);
	tcase_add_test(tc, test_big_write_goes_through_in_order);
	tcase_add_test(tc, test_output_limit_setting);
	tcase_add_test(tc, test_close_inside_callback);
	tcase_add_test(tc, test_close_other_from_callback);
	tcase_add_test(tc, test_close_after_flush);
	tcase_add_test(tc, test_close_after_flush_large);
	tcase_add_test(tc, test_close_all_and_release_module);
	tcase_add_test(tc, test_limit_per_ip);
	tcase_add_test(tc, test_limit_listener);
	tcase_add_test(tc, test_limit_global);
	tcase_add_test(tc, test_refused_while_shutting_down);
	tcase_add_test(tc, test_idle_timeout);
	tcase_add_test(tc, test_idle_timeout_reset_in_callback);
	tcase_add_test(tc, test_connect_success);
	tcase_add_test(tc, test_connect_refused);
	tcase_add_test(tc, test_connect_timeout);
	tcase_add_test(tc, test_connect_bad_settings);
	tcase_add_test(tc, test_connect_to_own_listener);
	tcase_add_test(tc, test_listen_addresses);
	tcase_add_test(tc, test_listen_old_settings_struct);
	tcase_add_test(tc, test_unix_listener);
	tcase_add_test(tc, test_fd_count_after_many_cycles);
	tcase_add_test(tc, test_registry_describe);
	tcase_add_test(tc, test_bus_events);
	suite_add_tcase(suite, tc);
	return suite;
}
