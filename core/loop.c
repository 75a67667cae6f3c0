/*
 * The event loop: one epoll instance, timers in a binary min-heap, fd
 * watchers, a cached clock and one end-of-iteration hook.
 *
 * Timers are ordered by (due time, arming sequence), so timers due at the
 * same millisecond fire in the order they were armed. A timer callback may
 * add, reset, stop or remove any timer, its own included: a due timer is
 * taken off the heap (and a repeating one put back) before its callback
 * runs, and the loop never touches it after the callback returned.
 *
 * Removed watchers are not freed at once but after the current batch of
 * epoll events has been dispatched, because a callback may remove a watcher
 * whose event is still waiting in the same batch.
 *
 * Not for: connections (conn.c builds them on top of the watchers here).
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>
#include "core.h"

/* Events fetched from epoll per iteration; more wait for the next one. */
#define LOOP_MAX_EVENTS 256
/* Timer callbacks run per iteration at most: a storm of due timers must not
 * starve I/O. The rest are due at once in the next iteration. */
#define LOOP_MAX_TIMERS_PER_RUN 10000
#define TIMER_NOT_ARMED UINT_MAX

struct postern_timer {
	struct loop *loop;
	struct postern_mod *owner;
	postern_timer_cb *cb;
	void *ctx;
	uint64_t interval_ms;
	uint64_t due_ms;
	uint64_t seq;          /* arming order: tie-break between equal due times */
	unsigned heap_index;   /* TIMER_NOT_ARMED while stopped */
	bool repeat;
	struct postern_timer *prev, *next; /* every timer of the loop */
};

struct postern_io {
	struct loop *loop;
	struct postern_mod *owner;
	postern_io_cb *cb;
	void *ctx;
	int fd;
	unsigned events;       /* POSTERN_IO_* as registered */
	bool dead;             /* removed; freed after the current dispatch */
	struct postern_io *prev, *next; /* live watchers, or the dead list */
};

struct loop {
	int epoll_fd;

	struct postern_timer **heap;
	unsigned heap_count, heap_size;
	uint64_t next_seq;
	struct postern_timer *timers; /* all timers, armed or not */
	unsigned timer_count;

	struct postern_io *ios;       /* live watchers */
	struct postern_io *dead_ios;  /* removed, not yet freed */

	void (*hook)(void *ctx);
	void *hook_ctx;

	uint64_t busy_poll_us;        /* loop_set_busy_poll() */

	char *error_buf;              /* the last error_set() message */
};

/* The clock is process-wide (there is one loop per process), so that
 * postern_now_ms() needs no loop argument. */
static uint64_t clock_now_ms;
static time_t clock_now;

void loop_update_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	clock_now_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	clock_now = time(NULL);
}

uint64_t postern_now_ms(void)
{
	if (clock_now_ms == 0)
		loop_update_clock();
	return clock_now_ms;
}

time_t postern_time(void)
{
	if (clock_now == 0)
		loop_update_clock();
	return clock_now;
}

struct loop *loop_new(void)
{
	struct loop *loop = xcalloc(1, sizeof(*loop));

	loop->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epoll_fd < 0) {
		/* Only fails without memory or fds: nothing can run then. */
		log_core(POSTERN_LOG_CRIT, "epoll_create1: %s", strerror(errno));
		abort();
	}
	loop_update_clock();
	return loop;
}

/* ---- Timer heap ---------------------------------------------------------- */

static bool timer_before(const struct postern_timer *a, const struct postern_timer *b)
{
	if (a->due_ms != b->due_ms)
		return a->due_ms < b->due_ms;
	return a->seq < b->seq;
}

static void heap_place(struct loop *loop, unsigned index, struct postern_timer *timer)
{
	loop->heap[index] = timer;
	timer->heap_index = index;
}

static void heap_sift_up(struct loop *loop, unsigned index)
{
	struct postern_timer *timer = loop->heap[index];

	while (index > 0) {
		unsigned parent = (index - 1) / 2;

		if (!timer_before(timer, loop->heap[parent]))
			break;
		heap_place(loop, index, loop->heap[parent]);
		index = parent;
	}
	heap_place(loop, index, timer);
}

static void heap_sift_down(struct loop *loop, unsigned index)
{
	struct postern_timer *timer = loop->heap[index];

	for (;;) {
		unsigned child = 2 * index + 1;

		if (child >= loop->heap_count)
			break;
		if (child + 1 < loop->heap_count &&
		    timer_before(loop->heap[child + 1], loop->heap[child]))
			child++;
		if (!timer_before(loop->heap[child], timer))
			break;
		heap_place(loop, index, loop->heap[child]);
		index = child;
	}
	heap_place(loop, index, timer);
}

static void heap_insert(struct loop *loop, struct postern_timer *timer)
{
	assert(timer->heap_index == TIMER_NOT_ARMED);
	if (loop->heap_count == loop->heap_size) {
		loop->heap_size = loop->heap_size == 0 ? 64 : loop->heap_size * 2;
		loop->heap = xrealloc(loop->heap, loop->heap_size * sizeof(*loop->heap));
	}
	heap_place(loop, loop->heap_count++, timer);
	heap_sift_up(loop, timer->heap_index);
}

static void heap_remove(struct loop *loop, struct postern_timer *timer)
{
	unsigned index = timer->heap_index;

	assert(index < loop->heap_count && loop->heap[index] == timer);
	timer->heap_index = TIMER_NOT_ARMED;
	loop->heap_count--;
	if (index == loop->heap_count)
		return;
	/* Move the last element into the hole; it may need to go either way. */
	heap_place(loop, index, loop->heap[loop->heap_count]);
	if (index > 0 && timer_before(loop->heap[index], loop->heap[(index - 1) / 2]))
		heap_sift_up(loop, index);
	else
		heap_sift_down(loop, index);
}

static void timer_arm(struct postern_timer *timer, uint64_t from_ms)
{
	struct loop *loop = timer->loop;

	if (timer->heap_index != TIMER_NOT_ARMED)
		heap_remove(loop, timer);
	timer->due_ms = from_ms + timer->interval_ms;
	timer->seq = loop->next_seq++;
	heap_insert(loop, timer);
}

/* ---- Timers ------------------------------------------------------------- */

struct postern_timer *loop_timer_add(struct loop *loop, struct postern_mod *owner,
				     uint64_t msecs, bool repeat, postern_timer_cb *cb, void *ctx)
{
	struct postern_timer *timer = xcalloc(1, sizeof(*timer));

	assert(cb != NULL);
	timer->loop = loop;
	timer->owner = owner;
	timer->cb = cb;
	timer->ctx = ctx;
	timer->interval_ms = msecs;
	timer->repeat = repeat;
	timer->heap_index = TIMER_NOT_ARMED;

	timer->next = loop->timers;
	if (loop->timers != NULL)
		loop->timers->prev = timer;
	loop->timers = timer;
	loop->timer_count++;

	timer_arm(timer, postern_now_ms());
	return timer;
}

struct postern_timer *postern_timer_add(struct postern_mod *mod, uint64_t msecs, bool repeat,
					postern_timer_cb *cb, void *ctx)
{
	assert(mod != NULL && mod->core != NULL && mod->core->loop != NULL);
	return loop_timer_add(mod->core->loop, mod, msecs, repeat, cb, ctx);
}

void postern_timer_reset(struct postern_timer *timer, uint64_t msecs)
{
	if (msecs != 0)
		timer->interval_ms = msecs;
	timer_arm(timer, postern_now_ms());
}

void postern_timer_stop(struct postern_timer *timer)
{
	if (timer->heap_index != TIMER_NOT_ARMED)
		heap_remove(timer->loop, timer);
}

void postern_timer_remove(struct postern_timer **timerp)
{
	struct postern_timer *timer = timerp == NULL ? NULL : *timerp;

	if (timer == NULL)
		return;
	*timerp = NULL;
	struct loop *loop = timer->loop;

	postern_timer_stop(timer);
	if (timer->prev != NULL)
		timer->prev->next = timer->next;
	else
		loop->timers = timer->next;
	if (timer->next != NULL)
		timer->next->prev = timer->prev;
	loop->timer_count--;
	free(timer);
}

unsigned loop_timer_count(const struct loop *loop)
{
	return loop->timer_count;
}

/* Run the timers that are due now. Timers armed while this runs (by a
 * callback, or a repeating timer with a short interval) wait for the next
 * iteration, so a 0 ms repeating timer cannot lock the loop. */
static void loop_run_timers(struct loop *loop)
{
	uint64_t now = postern_now_ms();
	uint64_t seq_limit = loop->next_seq;

	for (unsigned ran = 0; ran < LOOP_MAX_TIMERS_PER_RUN && loop->heap_count > 0; ran++) {
		struct postern_timer *timer = loop->heap[0];

		if (timer->due_ms > now || timer->seq >= seq_limit)
			break;
		heap_remove(loop, timer);
		if (timer->repeat)
			timer_arm(timer, now);
		/* The callback may free the timer: do not touch it afterwards. */
		timer->cb(timer, timer->ctx);
	}
}

/* Milliseconds until the first timer is due, capped by max_wait_ms. */
static int loop_wait_ms(const struct loop *loop, int max_wait_ms)
{
	if (loop->heap_count == 0)
		return max_wait_ms;

	uint64_t due = loop->heap[0]->due_ms, now = postern_now_ms();
	uint64_t wait = due > now ? due - now : 0;

	if (wait > INT_MAX)
		wait = INT_MAX;
	if (max_wait_ms >= 0 && wait > (uint64_t)max_wait_ms)
		wait = (uint64_t)max_wait_ms;
	return (int)wait;
}

/* ---- Watchers ----------------------------------------------------------- */

static uint32_t io_epoll_events(unsigned events)
{
	uint32_t result = 0;

	if ((events & POSTERN_IO_READ) != 0)
		result |= EPOLLIN;
	if ((events & POSTERN_IO_WRITE) != 0)
		result |= EPOLLOUT;
	return result;
}

struct postern_io *loop_io_add(struct loop *loop, struct postern_mod *owner, int fd,
			       unsigned events, postern_io_cb *cb, void *ctx,
			       const char **error_r)
{
	struct postern_io *io = xcalloc(1, sizeof(*io));
	struct epoll_event ev = { .events = io_epoll_events(events), .data.ptr = io };

	assert(cb != NULL);
	if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		*error_r = error_set(&loop->error_buf, "watching fd %d: %s", fd,
				     errno == EEXIST ? "already watched" :
				     errno == EPERM  ? "the fd does not support polling" :
						       strerror(errno));
		free(io);
		return NULL;
	}
	io->loop = loop;
	io->owner = owner;
	io->cb = cb;
	io->ctx = ctx;
	io->fd = fd;
	io->events = events;

	io->next = loop->ios;
	if (loop->ios != NULL)
		loop->ios->prev = io;
	loop->ios = io;
	return io;
}

struct postern_io *postern_io_add(struct postern_mod *mod, int fd, unsigned events,
				  postern_io_cb *cb, void *ctx, const char **error_r)
{
	assert(mod != NULL && mod->core != NULL && mod->core->loop != NULL);
	return loop_io_add(mod->core->loop, mod, fd, events, cb, ctx, error_r);
}

void postern_io_set_events(struct postern_io *io, unsigned events)
{
	struct epoll_event ev = { .events = io_epoll_events(events), .data.ptr = io };

	assert(!io->dead);
	if (io->events == events)
		return;
	if (epoll_ctl(io->loop->epoll_fd, EPOLL_CTL_MOD, io->fd, &ev) < 0) {
		/* The fd is registered and valid, so this cannot fail short of
		 * a kernel out of memory: say so rather than hang silently. */
		log_core(POSTERN_LOG_ERROR, "epoll_ctl(MOD, fd %d): %s", io->fd, strerror(errno));
		return;
	}
	io->events = events;
}

void postern_io_remove(struct postern_io **iop)
{
	struct postern_io *io = iop == NULL ? NULL : *iop;

	if (io == NULL)
		return;
	*iop = NULL;
	struct loop *loop = io->loop;

	assert(!io->dead);
	/* The owner may already have closed the fd; then it left epoll by
	 * itself and ENOENT/EBADF are expected. */
	(void)epoll_ctl(loop->epoll_fd, EPOLL_CTL_DEL, io->fd, NULL);
	if (io->prev != NULL)
		io->prev->next = io->next;
	else
		loop->ios = io->next;
	if (io->next != NULL)
		io->next->prev = io->prev;

	io->dead = true;
	io->prev = NULL;
	io->next = loop->dead_ios;
	loop->dead_ios = io;
}

static void loop_free_dead_ios(struct loop *loop)
{
	while (loop->dead_ios != NULL) {
		struct postern_io *io = loop->dead_ios;

		loop->dead_ios = io->next;
		free(io);
	}
}

/*
 * Busy polling: look for I/O without sleeping for up to busy_poll_us.
 * A peer's data that arrives meanwhile finds us awake, so the kernel has
 * no sleeping task to wake on this CPU (no inter-processor interrupt, no
 * idle exit: in a virtual machine both are expensive, and they are paid
 * by the sender's CPU). For a front-end on its own CPUs; it burns what
 * it polls. Returns the events found, 0 when the time ran out.
 */
static int loop_busy_poll(struct loop *loop, struct epoll_event *events)
{
	struct timespec start, now;
	int count;

	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		count = epoll_wait(loop->epoll_fd, events, LOOP_MAX_EVENTS, 0);
		if (count != 0)
			return count;
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while ((uint64_t)((now.tv_sec - start.tv_sec) * 1000000000L +
			    (now.tv_nsec - start.tv_nsec)) < loop->busy_poll_us * 1000);
	return 0;
}

void loop_set_busy_poll(struct loop *loop, uint64_t usecs)
{
	loop->busy_poll_us = usecs;
}

static void loop_dispatch_io(struct loop *loop, int wait_ms)
{
	struct epoll_event events[LOOP_MAX_EVENTS];
	int count = 0;

	if (loop->busy_poll_us > 0 && wait_ms != 0) {
		count = loop_busy_poll(loop, events);
		/* The poll used part of the wait (timers stay on time). */
		if (count == 0 && wait_ms > 0) {
			int polled_ms = (int)((loop->busy_poll_us + 999) / 1000);

			wait_ms = wait_ms > polled_ms ? wait_ms - polled_ms : 0;
		}
	}
	if (count == 0)
		count = epoll_wait(loop->epoll_fd, events, LOOP_MAX_EVENTS, wait_ms);

	loop_update_clock();
	if (count < 0) {
		if (errno != EINTR)
			log_core(POSTERN_LOG_ERROR, "epoll_wait: %s", strerror(errno));
		return;
	}
	for (int i = 0; i < count; i++) {
		struct postern_io *io = events[i].data.ptr;
		unsigned ready = 0;

		if (io->dead)
			continue;
		if ((events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) != 0)
			ready |= POSTERN_IO_READ;
		if ((events[i].events & EPOLLOUT) != 0)
			ready |= POSTERN_IO_WRITE;
		io->cb(io, io->fd, ready, io->ctx);
	}
	loop_free_dead_ios(loop);
}

/* ---- The loop ----------------------------------------------------------- */

void loop_set_iteration_hook(struct loop *loop, void (*hook)(void *ctx), void *ctx)
{
	loop->hook = hook;
	loop->hook_ctx = ctx;
}

void loop_run_once(struct loop *loop, int max_wait_ms)
{
	loop_update_clock();
	loop_dispatch_io(loop, loop_wait_ms(loop, max_wait_ms));
	loop_run_timers(loop);
	if (loop->hook != NULL)
		loop->hook(loop->hook_ctx);
	loop_free_dead_ios(loop);
}

void loop_release_owner(struct loop *loop, struct postern_mod *owner)
{
	struct postern_timer *timer = loop->timers;

	while (timer != NULL) {
		struct postern_timer *next = timer->next;

		if (timer->owner == owner)
			postern_timer_remove(&timer);
		timer = next;
	}

	struct postern_io *io = loop->ios;

	while (io != NULL) {
		struct postern_io *next = io->next;

		if (io->owner == owner)
			postern_io_remove(&io);
		io = next;
	}
}

void loop_free(struct loop **loopp)
{
	struct loop *loop = *loopp;

	if (loop == NULL)
		return;
	*loopp = NULL;
	while (loop->timers != NULL) {
		struct postern_timer *timer = loop->timers;

		postern_timer_remove(&timer);
	}
	while (loop->ios != NULL) {
		struct postern_io *io = loop->ios;

		postern_io_remove(&io);
	}
	loop_free_dead_ios(loop);
	free(loop->heap);
	close(loop->epoll_fd);
	free(loop->error_buf);
	free(loop);
}
