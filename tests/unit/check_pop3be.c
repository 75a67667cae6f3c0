/*
 * Unit tests of pop3be's parts that need no daemon: the command parser and
 * the verb table's states, XCLIENT, the byte-stuffing converter (sizes must equal the mailstore's CRLF size),
 * the mailbox snapshot, its session lock, UPDATE, and the worker pool.
 * Fork mode: one crashing test cannot hide the others.
 */
#include <check.h>
#include "check_main.h"
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <postern/mailstore.h>

#include "pop3be.h"

/* ---- parser and verb table -------------------------------------------------- */

static enum pop3_parse_result parse(const char *text, enum pop3_state state,
				    struct pop3_command *cmd, char *buf, size_t size)
{
	size_t len = strlen(text);

	ck_assert_uint_lt(len, size);
	memcpy(buf, text, len + 1);
	return pop3_command_parse(buf, len, state, cmd);
}

START_TEST(parse_simple)
{
	struct pop3_command cmd;
	char buf[256];

	ck_assert_int_eq(parse("STAT", POP3_STATE_TRANSACTION, &cmd, buf, sizeof(buf)),
			 POP3_PARSE_OK);
	ck_assert_int_eq(cmd.verb->id, POP3_VERB_STAT);
	ck_assert_uint_eq(cmd.argc, 0);
	ck_assert_int_eq(parse("top 3 10", POP3_STATE_TRANSACTION, &cmd, buf, sizeof(buf)),
			 POP3_PARSE_OK);
	ck_assert_int_eq(cmd.verb->id, POP3_VERB_TOP);
	ck_assert_uint_eq(cmd.argc, 2);
	ck_assert_str_eq(cmd.args[0], "3");
	ck_assert_str_eq(cmd.args[1], "10");
	/* lenient: several spaces, trailing space */
	ck_assert_int_eq(parse("LiSt  2 ", POP3_STATE_TRANSACTION, &cmd, buf, sizeof(buf)),
			 POP3_PARSE_OK);
	ck_assert_uint_eq(cmd.argc, 1);
	ck_assert_str_eq(cmd.args[0], "2");
}
END_TEST

START_TEST(parse_pass_keeps_spaces)
{
	struct pop3_command cmd;
	char buf[256];

	ck_assert_int_eq(parse("PASS my secret  pw ", POP3_STATE_AUTHORIZATION, &cmd, buf,
			       sizeof(buf)), POP3_PARSE_OK);
	ck_assert_uint_eq(cmd.argc, 1);
	ck_assert_str_eq(cmd.args[0], "my secret  pw ");
	ck_assert(cmd.verb->flags & POP3_VERB_SECRET);
	ck_assert_int_eq(parse("PASS", POP3_STATE_AUTHORIZATION, &cmd, buf, sizeof(buf)),
			 POP3_PARSE_BAD_ARGS);
	ck_assert_int_eq(parse("PASS ", POP3_STATE_AUTHORIZATION, &cmd, buf, sizeof(buf)),
			 POP3_PARSE_BAD_ARGS);
}
END_TEST

START_TEST(parse_errors)
{
	struct pop3_command cmd;
	char buf[256];

	ck_assert_int_eq(parse("", POP3_STATE_AUTHORIZATION, &cmd, buf, sizeof(buf)),
			 POP3_PARSE_EMPTY);
	ck_assert_int_eq(parse("FOO", POP3_STATE_AUTHORIZATION, &cmd, buf, sizeof(buf)),
			 POP3_PARSE_UNKNOWN);
	ck_assert_ptr_null(cmd.verb);
	ck_assert_int_eq(parse("STATX", POP3_STATE_TRANSACTION, &cmd, buf, sizeof(buf)),
			 POP3_PARSE_UNKNOWN);
	ck_assert_int_eq(parse("RETR", POP3_STATE_TRANSACTION, &cmd, buf, sizeof(buf)),
			 POP3_PARSE_BAD_ARGS);
	ck_assert_int_eq(parse("RETR 1 2", POP3_STATE_TRANSACTION, &cmd, buf, sizeof(buf)),
			 POP3_PARSE_BAD_ARGS);
	ck_assert_int_eq(parse("STAT x", POP3_STATE_TRANSACTION, &cmd, buf, sizeof(buf)),
			 POP3_PARSE_BAD_ARGS);
	ck_assert_int_eq(parse("STAT\t", POP3_STATE_TRANSACTION, &cmd, buf, sizeof(buf)),
			 POP3_PARSE_BAD_BYTES);
	ck_assert_int_eq(parse("ST\rAT", POP3_STATE_TRANSACTION, &cmd, buf, sizeof(buf)),
			 POP3_PARSE_BAD_BYTES);
	ck_assert_int_eq(parse("XCLIENT a b c d e f g h i", POP3_STATE_AUTHORIZATION, &cmd,
			       buf, sizeof(buf)), POP3_PARSE_BAD_ARGS);
	/* a verb longer than any we know */
	ck_assert_int_eq(parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", POP3_STATE_AUTHORIZATION,
			       &cmd, buf, sizeof(buf)), POP3_PARSE_UNKNOWN);

	/* a NUL in the middle of the line */
	char nul[] = "STAT\0X";

	ck_assert_int_eq(pop3_command_parse(nul, 6, POP3_STATE_TRANSACTION, &cmd),
			 POP3_PARSE_BAD_BYTES);
}
END_TEST

/* Every verb is allowed in exactly the states RFC 1939/2449/2595/5034 give
 * it, and the parser enforces the table. */
START_TEST(state_table)
{
	static const struct {
		const char *line;
		bool authz, trans;
	} cases[] = {
		{ "CAPA", true, true }, { "QUIT", true, true }, { "USER a", true, false },
		{ "PASS a", true, false }, { "AUTH PLAIN", true, false }, { "STLS", true, false },
		{ "XCLIENT ADDR=1.2.3.4", true, false }, { "STAT", false, true },
		{ "LIST", false, true }, { "UIDL", false, true }, { "RETR 1", false, true },
		{ "TOP 1 0", false, true }, { "DELE 1", false, true }, { "RSET", false, true },
		{ "NOOP", false, true },
	};
	struct pop3_command cmd;
	char buf[256];

	ck_assert_uint_eq(sizeof(cases) / sizeof(cases[0]), POP3_VERB_COUNT);
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_int_eq(parse(cases[i].line, POP3_STATE_AUTHORIZATION, &cmd, buf,
				       sizeof(buf)),
				 cases[i].authz ? POP3_PARSE_OK : POP3_PARSE_WRONG_STATE);
		ck_assert_int_eq(parse(cases[i].line, POP3_STATE_TRANSACTION, &cmd, buf,
				       sizeof(buf)),
				 cases[i].trans ? POP3_PARSE_OK : POP3_PARSE_WRONG_STATE);
		/* UPDATE accepts nothing */
		ck_assert_int_eq(parse(cases[i].line, POP3_STATE_UPDATE, &cmd, buf, sizeof(buf)),
				 POP3_PARSE_WRONG_STATE);
	}
	for (unsigned i = 0; i < POP3_VERB_COUNT; i++)
		ck_assert_int_eq(pop3_verbs[i].id, (int)i);
	ck_assert_str_eq(pop3_state_name(POP3_STATE_TRANSACTION), "TRANSACTION");
}
END_TEST

START_TEST(msgno_and_count)
{
	unsigned n;
	uint64_t c;

	ck_assert_int_eq(pop3_parse_msgno("1", 3, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(pop3_parse_msgno("3", 3, &n), 0);
	ck_assert_int_eq(pop3_parse_msgno("4", 3, &n), -1);
	ck_assert_int_eq(pop3_parse_msgno("0", 3, &n), -1);
	ck_assert_int_eq(pop3_parse_msgno("-1", 3, &n), -1);
	ck_assert_int_eq(pop3_parse_msgno("+1", 3, &n), -1);
	ck_assert_int_eq(pop3_parse_msgno("1x", 3, &n), -1);
	ck_assert_int_eq(pop3_parse_msgno("", 3, &n), -1);
	ck_assert_int_eq(pop3_parse_msgno("99999999999999999999", 3, &n), -1);
	ck_assert_int_eq(pop3_parse_count("0", &c), 0);
	ck_assert_uint_eq(c, 0);
	ck_assert_int_eq(pop3_parse_count("99999999999999999999999", &c), 0);
	ck_assert(c == UINT64_MAX);
	ck_assert_int_eq(pop3_parse_count("1a", &c), -1);
}
END_TEST

/* ---- XCLIENT and CIDR --------------------------------------------------------------- */

static int xclient(const char *line, struct pop3_xclient *xc, const char **error)
{
	static char buf[512];
	char *args[POP3_MAX_ARGS];
	unsigned argc = 0;

	snprintf(buf, sizeof(buf), "%s", line);
	for (char *tok = strtok(buf, " "); tok != NULL; tok = strtok(NULL, " "))
		args[argc++] = tok;
	return pop3_xclient_parse(args, argc, xc, error);
}

START_TEST(xclient_parse)
{
	struct pop3_xclient xc;
	const char *error;

	ck_assert_int_eq(xclient("ADDR=192.0.2.7 PORT=51234 HOP=2", &xc, &error), 0);
	ck_assert_str_eq(xc.addr, "192.0.2.7");
	ck_assert_uint_eq(xc.port, 51234);
	ck_assert_uint_eq(xc.hop, 2);
	ck_assert_str_eq(xc.login, "");
	ck_assert_int_eq(xclient("addr=IPV6:2001:DB8::0:1 login=a+40b.c", &xc, &error), 0);
	ck_assert_str_eq(xc.addr, "2001:db8::1");
	ck_assert_str_eq(xc.login, "a@b.c");
	ck_assert_uint_eq(xc.hop, 1);
	ck_assert_int_eq(xclient("ADDR=::1", &xc, &error), 0);
	ck_assert_str_eq(xc.addr, "::1");

	ck_assert_int_eq(xclient("PORT=1", &xc, &error), -1);             /* no ADDR */
	ck_assert_int_eq(xclient("ADDR=999.1.1.1", &xc, &error), -1);
	ck_assert_int_eq(xclient("ADDR=host.example", &xc, &error), -1);
	ck_assert_int_eq(xclient("ADDR=1.2.3.4 ADDR=1.2.3.5", &xc, &error), -1);
	ck_assert_int_eq(xclient("ADDR=1.2.3.4 PORT=70000", &xc, &error), -1);
	ck_assert_int_eq(xclient("ADDR=1.2.3.4 PORT=0", &xc, &error), -1);
	ck_assert_int_eq(xclient("ADDR=1.2.3.4 HOP=0", &xc, &error), -1);
	ck_assert_int_eq(xclient("ADDR=1.2.3.4 HOP=x", &xc, &error), -1);
	ck_assert_int_eq(xclient("ADDR=1.2.3.4 FOO=1", &xc, &error), -1);
	ck_assert_int_eq(xclient("ADDR=1.2.3.4 =1", &xc, &error), -1);
	ck_assert_int_eq(xclient("ADDR", &xc, &error), -1);
	ck_assert_int_eq(xclient("ADDR=1.2.3.4 LOGIN=a+0Ab", &xc, &error), -1); /* LF */
	ck_assert_int_eq(xclient("ADDR=1.2.3.4 LOGIN=a+4", &xc, &error), -1);
	ck_assert_int_eq(xclient("ADDR=1.2.3.4 LOGIN=a=b", &xc, &error), -1);
}
END_TEST

/* ---- byte-stuffing ------------------------------------------------------------------- */

/* The mailstore's CRLF size: the size plus one per LF without a CR. */
static uint64_t crlf_size(const char *msg, size_t len)
{
	uint64_t size = len;

	for (size_t i = 0; i < len; i++)
		if (msg[i] == '\n' && (i == 0 || msg[i - 1] != '\r'))
			size++;
	return size;
}

/* Run the converter over `msg` in chunks of `chunk` bytes. */
static char *stuff_all(const char *msg, size_t len, size_t chunk, uint64_t lines,
		       struct pop3_stuffer *st, size_t *out_len)
{
	char *out = malloc(2 * len + 16);
	size_t n = 0;

	pop3_stuffer_init(st, lines);
	for (size_t pos = 0; pos < len; pos += chunk) {
		size_t take = len - pos < chunk ? len - pos : chunk;

		n += pop3_stuff(st, msg + pos, take, out + n);
	}
	n += pop3_stuff_finish(st, out + n);
	out[n] = '\0';
	*out_len = n;
	return out;
}

/* Undo what the client does: strip the terminator, un-stuff dots. */
static char *unstuff(const char *wire, size_t len, size_t *out_len)
{
	char *out = malloc(len + 1);
	size_t n = 0;
	bool line_start = true;

	ck_assert(len >= 3 && memcmp(wire + len - 3, ".\r\n", 3) == 0);
	len -= 3;
	for (size_t i = 0; i < len; i++) {
		if (line_start && wire[i] == '.') {
			ck_assert(i + 1 < len && wire[i + 1] == '.');
			i++;
		}
		out[n++] = wire[i];
		line_start = wire[i] == '\n';
	}
	*out_len = n;
	return out;
}

START_TEST(stuffing_exact)
{
	static const char *const msgs[] = {
		"Subject: x\r\n\r\nbody\r\n",
		"Subject: x\n\nbody\n.\n..\n.x\nend",
		".starts with a dot\r\n\r\n.\r\n",
		"bare\rcr\r\nmixed\nlines\r\n\r\n",
		"",
		"no newline at all",
		"ends with cr\r",
		"\n\n\n",
		"a\r\r\nb\n\r\n.\r\n",
	};

	for (unsigned m = 0; m < sizeof(msgs) / sizeof(msgs[0]); m++) {
		for (size_t chunk = 1; chunk <= 7; chunk += 3) {
			const char *msg = msgs[m];
			size_t len = strlen(msg), wire_len, back_len;
			struct pop3_stuffer st;
			char *wire = stuff_all(msg, len, chunk, UINT64_MAX, &st, &wire_len);

			/* what was sent, less framing, is the CRLF size */
			ck_assert_uint_eq(st.content_bytes, crlf_size(msg, len));
			/* every line on the wire ends in CRLF */
			for (size_t i = 0; i < wire_len; i++)
				if (wire[i] == '\n')
					ck_assert(i > 0 && wire[i - 1] == '\r');

			char *back = unstuff(wire, wire_len, &back_len);
			/* the client's view equals the CRLF form, plus a final
			 * CRLF when the message had none */
			ck_assert_uint_ge(back_len, st.content_bytes);
			ck_assert_uint_le(back_len, st.content_bytes + 2);
			free(back);
			free(wire);
		}
	}
}
END_TEST

START_TEST(stuffing_wire)
{
	struct pop3_stuffer st;
	size_t n;
	char *wire = stuff_all(".a\n..b\nc.\n", 10, 4, UINT64_MAX, &st, &n);

	ck_assert_str_eq(wire, "..a\r\n...b\r\nc.\r\n.\r\n");
	free(wire);
	wire = stuff_all("x", 1, 1, UINT64_MAX, &st, &n);
	ck_assert_str_eq(wire, "x\r\n.\r\n");
	ck_assert_uint_eq(st.content_bytes, 1);
	free(wire);
	wire = stuff_all("", 0, 1, UINT64_MAX, &st, &n);
	ck_assert_str_eq(wire, ".\r\n");
	free(wire);
}
END_TEST

START_TEST(stuffing_top)
{
	static const char msg[] = "A: 1\nB: 2\n\nline1\n.line2\nline3\n";
	struct pop3_stuffer st;
	size_t n;
	char *wire;

	wire = stuff_all(msg, sizeof(msg) - 1, 3, 0, &st, &n);
	ck_assert_str_eq(wire, "A: 1\r\nB: 2\r\n\r\n.\r\n");
	free(wire);
	wire = stuff_all(msg, sizeof(msg) - 1, 5, 2, &st, &n);
	ck_assert_str_eq(wire, "A: 1\r\nB: 2\r\n\r\nline1\r\n..line2\r\n.\r\n");
	free(wire);
	wire = stuff_all(msg, sizeof(msg) - 1, 64, 100, &st, &n);
	ck_assert_str_eq(wire, "A: 1\r\nB: 2\r\n\r\nline1\r\n..line2\r\nline3\r\n.\r\n");
	free(wire);
	/* CRLF header end; no body at all; header only */
	wire = stuff_all("A: 1\r\n\r\nx\r\n", 11, 1, 0, &st, &n);
	ck_assert_str_eq(wire, "A: 1\r\n\r\n.\r\n");
	free(wire);
	wire = stuff_all("A: 1\nB: 2", 9, 2, 0, &st, &n);
	ck_assert_str_eq(wire, "A: 1\r\nB: 2\r\n.\r\n");
	free(wire);
}
END_TEST

/* ---- the mailbox: snapshot, lock, UPDATE ---------------------------------------------- */

static char tmp_root[256];

static void make_root(void)
{
	snprintf(tmp_root, sizeof(tmp_root), "/tmp/check_pop3be.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmp_root));
	strcat(tmp_root, "/Maildir");
}

static void rm_rf(const char *path)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	ck_assert_int_eq(system(cmd), 0);
}

static void deliver(const char *text)
{
	struct mailstore_settings set = MAILSTORE_SETTINGS_INIT;
	struct mailstore_delivery d = MAILSTORE_DELIVERY_INIT;
	const char *error;

	set.root = tmp_root;
	set.no_fsync = true;
	d.data = text;
	d.size = strlen(text);
	ck_assert_int_eq(mailstore_deliver(&set, &d, NULL, &error), MAILSTORE_DELIVERED);
}

static const struct pop3_drop_settings drop_set = {
	.lock_timeout_secs = 5, .lock_stale_secs = 60, .no_fsync = true, .flag_updates = true,
};

static unsigned count_files(const char *sub)
{
	char path[512];
	unsigned n = 0;
	DIR *dir;
	struct dirent *de;

	snprintf(path, sizeof(path), "%s/%s", tmp_root, sub);
	ck_assert_ptr_nonnull(dir = opendir(path));
	while ((de = readdir(dir)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(dir);
	return n;
}

START_TEST(maildrop_snapshot_and_update)
{
	struct pop3_maildrop *drop, *again;
	char *error = NULL, uidl[17], uidl2[17];
	unsigned expunged;

	make_root();
	deliver("Subject: one\n\nfirst\n");
	deliver("Subject: two\r\n\r\nsecond\r\n");
	deliver("Subject: three\n\n.dot\n");
	ck_assert_int_eq(pop3_maildrop_open(&drop_set, tmp_root, &drop, &error), POP3_DROP_OK);
	ck_assert_uint_eq(drop->count, 3);
	ck_assert_uint_eq(drop->msgs[0].octets, crlf_size("Subject: one\n\nfirst\n", 20));
	ck_assert_uint_eq(drop->total_octets,
			  drop->msgs[0].octets + drop->msgs[1].octets + drop->msgs[2].octets);
	ck_assert_uint_eq(count_files("new"), 0); /* flag_updates moved them */
	pop3_maildrop_uidl(drop, 1, uidl);
	ck_assert_uint_eq(strlen(uidl), 16);

	/* a delivery during the session is not in its view */
	deliver("Subject: four\n\nlate\n");
	ck_assert_uint_eq(drop->count, 3);

	/* a second session of the same process is refused */
	ck_assert_int_eq(pop3_maildrop_open(&drop_set, tmp_root, &again, &error),
			 POP3_DROP_IN_USE);
	ck_assert_ptr_null(again);
	free(error);
	error = NULL;

	/* and so is one of another process */
	pid_t pid = fork();

	if (pid == 0) {
		struct pop3_maildrop *d;
		char *e;

		_exit(pop3_maildrop_open(&drop_set, tmp_root, &d, &e) == POP3_DROP_IN_USE ? 0 : 1);
	}
	int status;

	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	/* QUIT: delete message 2, message 1 was retrieved */
	unsigned char marks[3] = { POP3_MARK_RETRIEVED, POP3_MARK_DELETED, 0 };

	ck_assert_uint_eq(pop3_maildrop_update(drop, marks, true, &expunged, &error), 0);
	ck_assert_uint_eq(expunged, 1);
	pop3_maildrop_close(&drop);

	/* the next session sees the late delivery; UIDLs are stable */
	ck_assert_int_eq(pop3_maildrop_open(&drop_set, tmp_root, &drop, &error), POP3_DROP_OK);
	ck_assert_uint_eq(drop->count, 3);
	pop3_maildrop_uidl(drop, 1, uidl2);
	ck_assert_uint_ne(drop->msgs[1].uid, 2);
	ck_assert_uint_eq(drop->msgs[0].uid, 1);
	ck_assert(mailstore_msg(drop->box, drop->msgs[0].seq)->flags & MAILSTORE_FLAG_SEEN);
	ck_assert(!(mailstore_msg(drop->box, drop->msgs[1].seq)->flags & MAILSTORE_FLAG_SEEN));
	pop3_maildrop_close(&drop);
	rm_rf(tmp_root);
}
END_TEST

START_TEST(maildrop_lock_released_by_death)
{
	struct pop3_maildrop *drop;
	char *error = NULL;
	int pipefd[2];
	char c;

	make_root();
	deliver("Subject: x\n\ny\n");
	ck_assert_int_eq(pipe(pipefd), 0);

	pid_t pid = fork();

	if (pid == 0) {
		struct pop3_maildrop *d;
		char *e;

		if (pop3_maildrop_open(&drop_set, tmp_root, &d, &e) != POP3_DROP_OK)
			_exit(1);
		(void)write(pipefd[1], "x", 1);
		pause();
		_exit(0);
	}
	ck_assert_int_eq(read(pipefd[0], &c, 1), 1);
	ck_assert_int_eq(pop3_maildrop_open(&drop_set, tmp_root, &drop, &error),
			 POP3_DROP_IN_USE);
	free(error);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	ck_assert_int_eq(pop3_maildrop_open(&drop_set, tmp_root, &drop, &error), POP3_DROP_OK);
	pop3_maildrop_close(&drop);
	rm_rf(tmp_root);
}
END_TEST

/* ---- workers -------------------------------------------------------------------------- */

struct test_job {
	struct pop3_job job;
	int value;
	bool ran;
	int *done_count;
};

static void test_run(struct pop3_job *job)
{
	struct test_job *tj = (struct test_job *)job;

	tj->value *= 2;
	tj->ran = true;
}

static void test_done(struct pop3_job *job)
{
	struct test_job *tj = (struct test_job *)job;

	ck_assert(tj->ran);
	(*tj->done_count)++;
}

START_TEST(workers_run_and_drain)
{
	struct pop3_workers *w;
	char *error;
	struct test_job jobs[50];
	int done = 0;

	ck_assert_int_eq(pop3_workers_create(3, NULL, NULL, &w, &error), 0);
	for (int i = 0; i < 50; i++) {
		jobs[i] = (struct test_job){ .job = { .run = test_run, .done = test_done },
					     .value = i, .done_count = &done };
		pop3_workers_submit(w, &jobs[i].job);
	}
	/* collect some on "the loop" */
	for (int tries = 0; tries < 200 && done < 10; tries++) {
		struct pollfd pfd = { .fd = pop3_workers_fd(w), .events = POLLIN };

		poll(&pfd, 1, 50);
		pop3_workers_collect(w);
	}
	ck_assert_int_ge(done, 10);
	/* free runs the rest to its end */
	pop3_workers_free(&w);
	ck_assert_ptr_null(w);
	ck_assert_int_eq(done, 50);
	for (int i = 0; i < 50; i++)
		ck_assert_int_eq(jobs[i].value, 2 * i);
}
END_TEST

static int log_lines;

static void count_log(void *ctx, int level, const char *msg)
{
	(void)ctx;
	(void)level;
	ck_assert_str_eq(msg, "hello");
	log_lines++;
}

START_TEST(workers_log_queue)
{
	struct pop3_workers *w;
	char *error;

	ck_assert_int_eq(pop3_workers_create(1, count_log, NULL, &w, &error), 0);
	pop3_workers_log(w, 1, "hello");
	pop3_workers_log(w, 1, "hello");
	ck_assert_int_eq(log_lines, 0);
	pop3_workers_collect(w);
	ck_assert_int_eq(log_lines, 2);
	pop3_workers_free(&w);
}
END_TEST

static Suite *pop3be_suite(void)
{
	Suite *s = suite_create("pop3be");
	TCase *tc;

	tc = tcase_create("parser");
	tcase_add_test(tc, parse_simple);
	tcase_add_test(tc, parse_pass_keeps_spaces);
	tcase_add_test(tc, parse_errors);
	tcase_add_test(tc, state_table);
	tcase_add_test(tc, msgno_and_count);
	suite_add_tcase(s, tc);

	tc = tcase_create("xclient");
	tcase_add_test(tc, xclient_parse);
	suite_add_tcase(s, tc);

	tc = tcase_create("dotstuff");
	tcase_add_test(tc, stuffing_exact);
	tcase_add_test(tc, stuffing_wire);
	tcase_add_test(tc, stuffing_top);
	suite_add_tcase(s, tc);

	tc = tcase_create("maildrop");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, maildrop_snapshot_and_update);
	tcase_add_test(tc, maildrop_lock_released_by_death);
	suite_add_tcase(s, tc);

	tc = tcase_create("workers");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, workers_run_and_drain);
	tcase_add_test(tc, workers_log_queue);
	suite_add_tcase(s, tc);
	return s;
}

int main(int argc, char **argv)
{
	return check_run(srunner_create(pop3be_suite()), argc > 1 ? argv[1] : NULL);
}
