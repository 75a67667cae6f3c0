/*
 * A small thread pool for the mailbox work a session cannot do on the event
 * loop: opening and syncing a mailbox (which may wait up to lock_timeout for
 * the uidlist lock and list 100,000 names), and the UPDATE state at QUIT.
 *
 * The loop thread submits jobs; a worker runs job->run, moves the job to the
 * done list and writes to an eventfd the loop watches; the loop calls
 * pop3_workers_collect(), which runs job->done there. Jobs are never
 * dropped: an UPDATE must apply the client's DELEs even when the connection
 * is gone, and an open mailbox must be closed to release its lock. Log lines
 * from worker threads (the mailstore's callback) are queued and written by
 * collect on the loop thread, because the core's log is not thread-safe.
 * No core calls.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "pop3be.h"

#define WORKERS_MAX 64
/* Log lines queued at most; more are counted and reported as dropped, so
 * a storm of warnings cannot eat memory. */
#define LOG_QUEUE_MAX 1000

struct log_line {
	struct log_line *next;
	int level;
	char msg[];
};

struct pop3_workers {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct pop3_job *queue_head, *queue_tail;
	struct pop3_job *done_head, *done_tail;
	struct log_line *log_head, *log_tail;
	unsigned log_count, log_dropped;
	unsigned pending;   /* submitted, done not yet run */
	bool stop;
	bool freeing;     /* loop thread only: done runs with cancelled set */
	int efd;
	pthread_t *threads;
	unsigned nthreads;
	pop3_workers_log_fn *log;
	void *log_ctx;
};

static void append(struct pop3_job **head, struct pop3_job **tail, struct pop3_job *job)
{
	job->next = NULL;
	if (*tail != NULL)
		(*tail)->next = job;
	else
		*head = job;
	*tail = job;
}

static void wake_loop(struct pop3_workers *w)
{
	uint64_t one = 1;

	while (write(w->efd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

static void *worker_main(void *arg)
{
	struct pop3_workers *w = arg;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		struct pop3_job *job = w->queue_head;

		/* on stop, the queue is still run to its end */
		if (job == NULL) {
			if (w->stop)
				break;
			pthread_cond_wait(&w->cond, &w->lock);
			continue;
		}
		w->queue_head = job->next;
		if (w->queue_head == NULL)
			w->queue_tail = NULL;
		pthread_mutex_unlock(&w->lock);
		job->run(job);
		pthread_mutex_lock(&w->lock);
		append(&w->done_head, &w->done_tail, job);
		wake_loop(w);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int pop3_workers_create(unsigned threads, pop3_workers_log_fn *log, void *log_ctx,
			struct pop3_workers **workers_r, char **error_r)
{
	struct pop3_workers *w = calloc(1, sizeof(*w));

	*workers_r = NULL;
	if (threads == 0)
		threads = 2;
	if (threads > WORKERS_MAX)
		threads = WORKERS_MAX;
	if (w == NULL || (w->threads = calloc(threads, sizeof(*w->threads))) == NULL) {
		free(w);
		*error_r = strdup("out of memory");
		return -1;
	}
	w->log = log;
	w->log_ctx = log_ctx;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->efd < 0) {
		*error_r = strdup("eventfd failed");
		goto fail;
	}
	for (; w->nthreads < threads; w->nthreads++) {
		int err = pthread_create(&w->threads[w->nthreads], NULL, worker_main, w);

		if (err != 0) {
			char buf[128];

			snprintf(buf, sizeof(buf), "pthread_create: %s", strerror(err));
			*error_r = strdup(buf);
			goto fail;
		}
	}
	*workers_r = w;
	return 0;
fail:
	pop3_workers_free(&w);
	return -1;
}

static void flush_log(struct pop3_workers *w)
{
	struct log_line *lines;
	unsigned dropped;

	pthread_mutex_lock(&w->lock);
	lines = w->log_head;
	dropped = w->log_dropped;
	w->log_head = w->log_tail = NULL;
	w->log_count = w->log_dropped = 0;
	pthread_mutex_unlock(&w->lock);
	while (lines != NULL) {
		struct log_line *next = lines->next;

		if (w->log != NULL)
			w->log(w->log_ctx, lines->level, lines->msg);
		free(lines);
		lines = next;
	}
	if (dropped > 0 && w->log != NULL) {
		char buf[96];

		snprintf(buf, sizeof(buf), "%u mailbox log lines dropped (too many at once)",
			 dropped);
		w->log(w->log_ctx, 2, buf);
	}
}

unsigned pop3_workers_collect(struct pop3_workers *w)
{
	uint64_t counter;
	unsigned n = 0;

	while (read(w->efd, &counter, sizeof(counter)) < 0 && errno == EINTR)
		;
	flush_log(w);
	for (;;) {
		struct pop3_job *job;

		pthread_mutex_lock(&w->lock);
		job = w->done_head;
		if (job != NULL) {
			w->done_head = job->next;
			if (w->done_head == NULL)
				w->done_tail = NULL;
			w->pending--;
		}
		pthread_mutex_unlock(&w->lock);
		if (job == NULL)
			break;
		/* done may submit a follow-up job (closing a mailbox whose
		 * session went away): that is fine, it lands in the queue */
		if (w->freeing)
			job->cancelled = true;
		job->done(job);
		n++;
	}
	return n;
}

void pop3_workers_free(struct pop3_workers **workersp)
{
	struct pop3_workers *w = *workersp;

	if (w == NULL)
		return;
	/* Finish every job, including those a `done` submits (a cancelled
	 * open closes its mailbox in a follow-up job), then stop. */
	w->freeing = true;
	while (w->pending > 0 && w->nthreads > 0) {
		struct pollfd pfd = { .fd = w->efd, .events = POLLIN };

		(void)poll(&pfd, 1, 100);
		pop3_workers_collect(w);
	}
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	for (unsigned i = 0; i < w->nthreads; i++)
		pthread_join(w->threads[i], NULL);
	flush_log(w);
	if (w->efd >= 0)
		close(w->efd);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w->threads);
	free(w);
	*workersp = NULL;
}

int pop3_workers_fd(const struct pop3_workers *w)
{
	return w->efd;
}

void pop3_workers_submit(struct pop3_workers *w, struct pop3_job *job)
{
	pthread_mutex_lock(&w->lock);
	append(&w->queue_head, &w->queue_tail, job);
	w->pending++;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

unsigned pop3_workers_pending(const struct pop3_workers *w)
{
	return w->pending;
}

void pop3_workers_log(void *ctx, int level, const char *msg)
{
	struct pop3_workers *w = ctx;
	size_t len = strlen(msg);
	struct log_line *line;

	if (len > 1000)
		len = 1000;
	line = malloc(sizeof(*line) + len + 1);
	if (line == NULL)
		return;
	line->next = NULL;
	line->level = level;
	memcpy(line->msg, msg, len);
	line->msg[len] = '\0';
	pthread_mutex_lock(&w->lock);
	if (w->log_count >= LOG_QUEUE_MAX) {
		w->log_dropped++;
		pthread_mutex_unlock(&w->lock);
		free(line);
		return;
	}
	if (w->log_tail != NULL)
		w->log_tail->next = line;
	else
		w->log_head = line;
	w->log_tail = line;
	w->log_count++;
	pthread_mutex_unlock(&w->lock);
	wake_loop(w);
}
