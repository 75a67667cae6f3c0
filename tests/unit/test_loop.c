/*
 * The event loop: timer order and repetition, timers changed from inside
 * callbacks, many timers at once, fd watchers, owners and the hook.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "../../core/core.h"
#include "suites.h"

struct fired {
	int order[64];
	unsigned count;
};

struct tagged {
	struct fired *fired;
	int tag;
	struct postern_timer *timer;
	struct postern_timer **other;   /* removed by this timer's callback */
	unsigned remove_after;          /* remove own timer after this many runs */
	unsigned runs;
};

static void tagged_cb(struct postern_timer *timer, void *ctx)
{
	struct tagged *t = ctx;

	ck_assert_ptr_eq(timer, t->timer);
	if (t->fired->count < 64)
		t->fired->order[t->fired->count++] = t->tag;
	t->runs++;
	if (t->other != NULL)
		postern_timer_remove(t->other);
	if (t->remove_after != 0 && t->runs == t->remove_after)
		postern_timer_remove(&t->timer);
}

/* Run the loop until `done` or the deadline; false on timeout. */
static bool run_until(struct loop *loop, const unsigned *counter, unsigned target,
		      uint64_t timeout_ms)
{
	uint64_t deadline = postern_now_ms() + timeout_ms;

	while (*counter < target) {
		if (postern_now_ms() > deadline)
			return false;
		loop_run_once(loop, 20);
	}
	return true;
}

START_TEST(test_timer_order)
{
	struct loop *loop = loop_new();
	struct fired fired = { .count = 0 };
	struct tagged t[4] = {
		{ .fired = &fired, .tag = 30 }, { .fired = &fired, .tag = 10 },
		{ .fired = &fired, .tag = 20 }, { .fired = &fired, .tag = 11 },
	};
	uint64_t delays[4] = { 30, 10, 20, 10 };
	uint64_t start = postern_now_ms();

	for (unsigned i = 0; i < 4; i++)
		t[i].timer = loop_timer_add(loop, NULL, delays[i], false, tagged_cb, &t[i]);
	ck_assert_uint_eq(loop_timer_count(loop), 4);
	ck_assert(run_until(loop, &fired.count, 4, 2000));
	ck_assert_uint_ge(postern_now_ms() - start, 30);
	/* Equal due times fire in the order they were added. */
	ck_assert_int_eq(fired.order[0], 10);
	ck_assert_int_eq(fired.order[1], 11);
	ck_assert_int_eq(fired.order[2], 20);
	ck_assert_int_eq(fired.order[3], 30);
	/* One-shot timers stay allocated until removed. */
	ck_assert_uint_eq(loop_timer_count(loop), 4);
	for (unsigned i = 0; i < 4; i++) {
		postern_timer_remove(&t[i].timer);
		ck_assert_ptr_null(t[i].timer);
	}
	ck_assert_uint_eq(loop_timer_count(loop), 0);
	loop_free(&loop);
	ck_assert_ptr_null(loop);
}
END_TEST

START_TEST(test_timer_repeat_and_self_remove)
{
	struct loop *loop = loop_new();
	struct fired fired = { .count = 0 };
	struct tagged t = { .fired = &fired, .tag = 1, .remove_after = 3 };
	uint64_t start = postern_now_ms();

	t.timer = loop_timer_add(loop, NULL, 5, true, tagged_cb, &t);
	ck_assert(run_until(loop, &fired.count, 3, 2000));
	ck_assert_ptr_null(t.timer);
	ck_assert_uint_ge(postern_now_ms() - start, 15);
	ck_assert_uint_eq(loop_timer_count(loop), 0);
	/* Removed from inside its callback: it never runs again. */
	for (int i = 0; i < 5; i++)
		loop_run_once(loop, 10);
	ck_assert_uint_eq(fired.count, 3);
	loop_free(&loop);
}
END_TEST

START_TEST(test_timer_remove_other_from_callback)
{
	struct loop *loop = loop_new();
	struct fired fired = { .count = 0 };
	struct tagged a = { .fired = &fired, .tag = 1 }, b = { .fired = &fired, .tag = 2 };

	/* Same due time: a runs first and removes b, which must not run. */
	a.timer = loop_timer_add(loop, NULL, 10, false, tagged_cb, &a);
	b.timer = loop_timer_add(loop, NULL, 10, false, tagged_cb, &b);
	a.other = &b.timer;
	ck_assert(run_until(loop, &fired.count, 1, 2000));
	for (int i = 0; i < 5; i++)
		loop_run_once(loop, 10);
	ck_assert_uint_eq(fired.count, 1);
	ck_assert_int_eq(fired.order[0], 1);
	ck_assert_ptr_null(b.timer);
	ck_assert_uint_eq(loop_timer_count(loop), 1);
	postern_timer_remove(&a.timer);
	loop_free(&loop);
}
END_TEST

struct resetter {
	struct postern_timer *target;
	unsigned runs;
};

static void reset_other_cb(struct postern_timer *timer, void *ctx)
{
	struct resetter *r = ctx;

	r->runs++;
	postern_timer_reset(r->target, 150);
}

static void count_cb(struct postern_timer *timer, void *ctx)
{
	(*(unsigned *)ctx)++;
}

START_TEST(test_timer_reset_and_stop)
{
	struct loop *loop = loop_new();
	unsigned target_runs = 0;
	struct resetter r = { .runs = 0 };
	struct postern_timer *target = loop_timer_add(loop, NULL, 40, false, count_cb, &target_runs);
	struct postern_timer *resetter;
	uint64_t start = postern_now_ms();

	r.target = target;
	/* At 10 ms, push the 40 ms timer out to 150 ms from then. */
	resetter = loop_timer_add(loop, NULL, 10, false, reset_other_cb, &r);
	ck_assert(run_until(loop, &target_runs, 1, 2000));
	ck_assert_uint_eq(r.runs, 1);
	ck_assert_uint_ge(postern_now_ms() - start, 160);

	/* Reset with 0 keeps the interval; stop keeps it allocated. */
	uint64_t again = postern_now_ms();

	postern_timer_reset(target, 0);
	ck_assert(run_until(loop, &target_runs, 2, 2000));
	ck_assert_uint_ge(postern_now_ms() - again, 150);
	postern_timer_reset(target, 20);
	postern_timer_stop(target);
	for (int i = 0; i < 4; i++)
		loop_run_once(loop, 20);
	ck_assert_uint_eq(target_runs, 2);
	postern_timer_stop(target); /* stopping twice is fine */
	postern_timer_remove(&target);
	postern_timer_remove(&resetter);
	postern_timer_remove(&resetter); /* NULL is fine */
	postern_timer_remove(NULL);
	loop_free(&loop);
}
END_TEST

/* ---- Many timers -------------------------------------------------------- */

struct many {
	uint64_t last_due;
	unsigned fired;
	bool out_of_order;
	struct postern_timer **timers;
};

struct many_timer {
	struct many *many;
	uint64_t due;
	unsigned index;
};

static void many_cb(struct postern_timer *timer, void *ctx)
{
	struct many_timer *mt = ctx;
	struct many *m = mt->many;

	if (mt->due < m->last_due)
		m->out_of_order = true;
	m->last_due = mt->due;
	m->fired++;
	/* Every tenth one removes itself at once; the rest stay. */
	if (mt->index % 10 == 0)
		postern_timer_remove(&m->timers[mt->index]);
}

START_TEST(test_timer_many)
{
	enum { COUNT = 10000 };
	struct loop *loop = loop_new();
	struct many m = { .last_due = 0 };
	struct many_timer *mts = calloc(COUNT, sizeof(*mts));
	uint64_t base = postern_now_ms();

	m.timers = calloc(COUNT, sizeof(*m.timers));
	srand(42);
	for (unsigned i = 0; i < COUNT; i++) {
		uint64_t delay = (uint64_t)(rand() % 200);

		mts[i] = (struct many_timer){ .many = &m, .due = base + delay, .index = i };
		m.timers[i] = loop_timer_add(loop, NULL, delay, false, many_cb, &mts[i]);
	}
	/* Remove a quarter before they fire: the heap must stay consistent. */
	for (unsigned i = 1; i < COUNT; i += 4)
		postern_timer_remove(&m.timers[i]);
	ck_assert_uint_eq(loop_timer_count(loop), COUNT - COUNT / 4);
	ck_assert(run_until(loop, &m.fired, COUNT - COUNT / 4, 5000));
	ck_assert(!m.out_of_order);
	for (int i = 0; i < 3; i++)
		loop_run_once(loop, 10);
	ck_assert_uint_eq(m.fired, COUNT - COUNT / 4);
	for (unsigned i = 0; i < COUNT; i++)
		postern_timer_remove(&m.timers[i]);
	ck_assert_uint_eq(loop_timer_count(loop), 0);
	loop_free(&loop);
	free(m.timers);
	free(mts);
}
END_TEST

static void zero_repeat_cb(struct postern_timer *timer, void *ctx)
{
	(*(unsigned *)ctx)++;
}

START_TEST(test_timer_zero_repeat_does_not_lock)
{
	struct loop *loop = loop_new();
	unsigned runs = 0;
	struct postern_timer *timer = loop_timer_add(loop, NULL, 0, true, zero_repeat_cb, &runs);

	/* A 0 ms repeating timer runs once per iteration, not for ever. */
	loop_run_once(loop, 0);
	ck_assert_uint_eq(runs, 1);
	loop_run_once(loop, 0);
	ck_assert_uint_eq(runs, 2);
	postern_timer_remove(&timer);
	loop_free(&loop);
}
END_TEST

/* ---- Watchers ----------------------------------------------------------- */

struct io_rec {
	unsigned reads, writes;
	int fd_seen;
	struct postern_io *io;
	bool remove_in_cb;
	char buf[16];
};

static void io_rec_cb(struct postern_io *io, int fd, unsigned events, void *ctx)
{
	struct io_rec *r = ctx;

	r->fd_seen = fd;
	if ((events & POSTERN_IO_READ) != 0) {
		r->reads++;
		(void)read(fd, r->buf, sizeof(r->buf));
	}
	if ((events & POSTERN_IO_WRITE) != 0)
		r->writes++;
	if (r->remove_in_cb)
		postern_io_remove(&r->io);
}

/* Busy polling: I/O that comes while the loop polls is dispatched, an
 * idle loop still sleeps until its timer, and the timer is not late by
 * the poll. */
static void *write_later(void *arg)
{
	int fd = *(int *)arg;

	usleep(500);
	(void)!write(fd, "z", 1);
	return NULL;
}

START_TEST(test_busy_poll)
{
	struct loop *loop = loop_new();
	struct io_rec rd = { .reads = 0 };
	const char *error = NULL;
	int fds[2];
	pthread_t writer;

	ck_assert_int_eq(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
	rd.io = loop_io_add(loop, NULL, fds[0], POSTERN_IO_READ, io_rec_cb, &rd, &error);
	ck_assert_ptr_nonnull(rd.io);
	loop_set_busy_poll(loop, 5000);

	ck_assert_int_eq(pthread_create(&writer, NULL, write_later, &fds[1]), 0);
	loop_run_once(loop, 1000);
	pthread_join(writer, NULL);
	ck_assert_uint_eq(rd.reads, 1);
	ck_assert_int_eq(rd.buf[0], 'z');

	/* Nothing comes: the loop polls its 5 ms before it gives up. */
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	loop_run_once(loop, 1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_int_ge((t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000,
			 5000);

	unsigned fired = 0;
	struct postern_timer *timer = loop_timer_add(loop, NULL, 30, false, count_cb, &fired);
	uint64_t start = postern_now_ms();

	while (fired == 0)
		loop_run_once(loop, -1);
	ck_assert_uint_ge(postern_now_ms() - start, 30);
	ck_assert_uint_lt(postern_now_ms() - start, 30 + 100);
	postern_timer_remove(&timer);
	postern_io_remove(&rd.io);
	close(fds[0]);
	close(fds[1]);
	loop_free(&loop);
}
END_TEST

START_TEST(test_io_watcher)
{
	struct loop *loop = loop_new();
	struct io_rec rd = { .reads = 0 }, wr = { .reads = 0 };
	const char *error = NULL;
	int fds[2];

	ck_assert_int_eq(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
	rd.io = loop_io_add(loop, NULL, fds[0], POSTERN_IO_READ, io_rec_cb, &rd, &error);
	ck_assert_ptr_nonnull(rd.io);
	wr.io = loop_io_add(loop, NULL, fds[1], 0, io_rec_cb, &wr, &error);
	ck_assert_ptr_nonnull(wr.io);
	/* The same fd twice is refused with a reason. */
	ck_assert_ptr_null(loop_io_add(loop, NULL, fds[0], POSTERN_IO_READ, io_rec_cb, &rd,
				       &error));
	ck_assert_ptr_nonnull(error);

	loop_run_once(loop, 10);
	ck_assert_uint_eq(rd.reads, 0);
	ck_assert_uint_eq(wr.writes, 0);

	ck_assert_int_eq(write(fds[1], "x", 1), 1);
	loop_run_once(loop, 100);
	ck_assert_uint_eq(rd.reads, 1);
	ck_assert_int_eq(rd.fd_seen, fds[0]);
	ck_assert_int_eq(rd.buf[0], 'x');

	postern_io_set_events(wr.io, POSTERN_IO_WRITE);
	wr.remove_in_cb = true;
	loop_run_once(loop, 100);
	ck_assert_uint_eq(wr.writes, 1);
	ck_assert_ptr_null(wr.io);
	loop_run_once(loop, 10);
	ck_assert_uint_eq(wr.writes, 1);

	/* Stop watching for reads: data waits, no callback. */
	postern_io_set_events(rd.io, 0);
	ck_assert_int_eq(write(fds[1], "y", 1), 1);
	loop_run_once(loop, 20);
	ck_assert_uint_eq(rd.reads, 1);
	postern_io_set_events(rd.io, POSTERN_IO_READ);
	loop_run_once(loop, 100);
	ck_assert_uint_eq(rd.reads, 2);

	postern_io_remove(&rd.io);
	ck_assert_ptr_null(rd.io);
	postern_io_remove(&rd.io);
	close(fds[0]);
	close(fds[1]);
	loop_free(&loop);
}
END_TEST

struct pair_rec {
	struct postern_io *a, *b;
	unsigned calls;
};

/* Both ends are ready in the same batch; the first callback removes the
 * other watcher, whose event is still pending: it must not run. */
static void pair_cb(struct postern_io *io, int fd, unsigned events, void *ctx)
{
	struct pair_rec *p = ctx;

	p->calls++;
	if (io == p->a)
		postern_io_remove(&p->b);
	else
		postern_io_remove(&p->a);
}

START_TEST(test_io_remove_other_in_batch)
{
	struct loop *loop = loop_new();
	struct pair_rec p = { .calls = 0 };
	const char *error;
	int fds[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
	p.a = loop_io_add(loop, NULL, fds[0], POSTERN_IO_WRITE, pair_cb, &p, &error);
	p.b = loop_io_add(loop, NULL, fds[1], POSTERN_IO_WRITE, pair_cb, &p, &error);
	loop_run_once(loop, 100);
	ck_assert_uint_eq(p.calls, 1);
	ck_assert(p.a == NULL || p.b == NULL);
	postern_io_remove(&p.a);
	postern_io_remove(&p.b);
	close(fds[0]);
	close(fds[1]);
	loop_free(&loop);
}
END_TEST

static void hook_cb(void *ctx)
{
	(*(unsigned *)ctx)++;
}

START_TEST(test_release_owner_and_hook)
{
	struct loop *loop = loop_new();
	struct postern_mod mod_a = { .name = (char *)"a" }, mod_b = { .name = (char *)"b" };
	unsigned runs_a = 0, runs_b = 0, hooks = 0;
	const char *error;
	int fds[2];

	ck_assert_int_eq(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
	loop_set_iteration_hook(loop, hook_cb, &hooks);
	(void)loop_timer_add(loop, &mod_a, 10, true, count_cb, &runs_a);
	(void)loop_timer_add(loop, &mod_a, 20, false, count_cb, &runs_a);
	struct postern_timer *b = loop_timer_add(loop, &mod_b, 10, false, count_cb, &runs_b);
	ck_assert_ptr_nonnull(loop_io_add(loop, &mod_a, fds[0], POSTERN_IO_READ, io_rec_cb,
					  NULL, &error));
	ck_assert_uint_eq(loop_timer_count(loop), 3);

	loop_release_owner(loop, &mod_a);
	ck_assert_uint_eq(loop_timer_count(loop), 1);
	ck_assert(run_until(loop, &runs_b, 1, 2000));
	for (int i = 0; i < 3; i++)
		loop_run_once(loop, 10);
	ck_assert_uint_eq(runs_a, 0);
	ck_assert_uint_ge(hooks, 4);
	/* The watcher is gone too: data on the pipe calls nobody (io_rec_cb
	 * with a NULL ctx would crash). */
	ck_assert_int_eq(write(fds[1], "x", 1), 1);
	loop_run_once(loop, 20);
	postern_timer_remove(&b);
	close(fds[0]);
	close(fds[1]);
	loop_free(&loop);
}
END_TEST

START_TEST(test_clock)
{
	struct loop *loop = loop_new();
	uint64_t before = postern_now_ms();
	time_t wall = postern_time();

	ck_assert_uint_gt(before, 0);
	ck_assert(wall > 1600000000);
	/* Cached: unchanged inside an iteration, moves with the loop. */
	usleep(20000);
	ck_assert_uint_eq(postern_now_ms(), before);
	loop_run_once(loop, 0);
	ck_assert_uint_ge(postern_now_ms(), before + 20);
	ck_assert(postern_time() >= wall);
	loop_free(&loop);
}
END_TEST

Suite *loop_suite(void)
{
	Suite *suite = suite_create("loop");
	TCase *tc = tcase_create("loop");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_timer_order);
	tcase_add_test(tc, test_timer_repeat_and_self_remove);
	tcase_add_test(tc, test_timer_remove_other_from_callback);
	tcase_add_test(tc, test_timer_reset_and_stop);
	tcase_add_test(tc, test_timer_many);
	tcase_add_test(tc, test_timer_zero_repeat_does_not_lock);
	tcase_add_test(tc, test_io_watcher);
	tcase_add_test(tc, test_io_remove_other_in_batch);
	tcase_add_test(tc, test_release_owner_and_hook);
	tcase_add_test(tc, test_clock);
	tcase_add_test(tc, test_busy_poll);
	suite_add_tcase(suite, tc);
	return suite;
}
