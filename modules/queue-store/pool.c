/*
 * Worker threads for the queue's blocking work (fsync batches, Maildir
 * deliveries), so the event loop never waits for a disk. A job's run()
 * executes in a worker; its done() runs afterwards on the event loop, when
 * the pool's eventfd is readable. Jobs carry copies of what they need: a
 * worker touches nothing else of the module.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <postern/postern.h>

#include "queue_store.h"

#define QPOOL_MAX_THREADS 64

struct qpool {
	struct postern_mod *mod;
	char *name;
	pthread_mutex_t lock;
	pthread_cond_t cond;       /* work arrived, or stop */
	pthread_cond_t idle_cond;  /* a job finished (drain waits) */
	struct qlist todo, finished;
	unsigned submitted;        /* not yet through done() */
	unsigned running;
	bool stop;
	pthread_t threads[QPOOL_MAX_THREADS];
	unsigned thread_count;
	int event_fd;
	struct postern_io *io;
};

static void *qpool_thread(void *arg)
{
	struct qpool *pool = arg;

	pthread_mutex_lock(&pool->lock);
	for (;;) {
		while (qlist_empty(&pool->todo) && !pool->stop)
			pthread_cond_wait(&pool->cond, &pool->lock);
		if (qlist_empty(&pool->todo))
			break;
		struct qlist *item = pool->todo.next;

		qlist_del(item);
		pool->running++;
		pthread_mutex_unlock(&pool->lock);

		struct qjob *job = QLIST_ENTRY(item, struct qjob, link);

		job->run(job);

		pthread_mutex_lock(&pool->lock);
		pool->running--;
		qlist_add_tail(&pool->finished, &job->link);
		pthread_cond_broadcast(&pool->idle_cond);
		uint64_t one = 1;

		(void)!write(pool->event_fd, &one, sizeof(one));
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

/* Run the done() of every finished job, on the loop thread. */
static void qpool_collect(struct qpool *pool)
{
	struct qlist finished;

	qlist_init(&finished);
	pthread_mutex_lock(&pool->lock);
	if (!qlist_empty(&pool->finished)) {
		finished = pool->finished;
		finished.next->prev = &finished;
		finished.prev->next = &finished;
		qlist_init(&pool->finished);
	}
	pthread_mutex_unlock(&pool->lock);
	while (!qlist_empty(&finished)) {
		struct qlist *item = finished.next;

		qlist_del(item);
		pool->submitted--;
		struct qjob *job = QLIST_ENTRY(item, struct qjob, link);

		job->done(job);
	}
}

static void qpool_on_event(struct postern_io *io, int fd, unsigned events, void *ctx)
{
	uint64_t value;

	(void)io;
	(void)events;
	while (read(fd, &value, sizeof(value)) < 0 && errno == EINTR)
		;
	qpool_collect(ctx);
}

int qpool_create(struct postern_mod *mod, unsigned threads, const char *name,
		 struct qpool **pool_r, const char **error_r)
{
	struct qpool *pool = q_calloc(1, sizeof(*pool));

	pool->mod = mod;
	pool->name = q_strdup(name);
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->cond, NULL);
	pthread_cond_init(&pool->idle_cond, NULL);
	qlist_init(&pool->todo);
	qlist_init(&pool->finished);
	pool->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (pool->event_fd < 0) {
		*error_r = q_error("eventfd: %s", strerror(errno));
		goto fail;
	}
	pool->io = postern_io_add(mod, pool->event_fd, POSTERN_IO_READ, qpool_on_event, pool,
				  error_r);
	if (pool->io == NULL)
		goto fail;
	if (threads == 0)
		threads = 1;
	if (threads > QPOOL_MAX_THREADS)
		threads = QPOOL_MAX_THREADS;
	for (unsigned i = 0; i < threads; i++) {
		int ret = pthread_create(&pool->threads[i], NULL, qpool_thread, pool);

		if (ret != 0) {
			*error_r = q_error("%s: cannot start a thread: %s", name, strerror(ret));
			goto fail;
		}
		pool->thread_count++;
	}
	*pool_r = pool;
	return 0;
fail:
	qpool_free(&pool);
	return -1;
}

void qpool_submit(struct qpool *pool, struct qjob *job)
{
	pthread_mutex_lock(&pool->lock);
	qlist_add_tail(&pool->todo, &job->link);
	pool->submitted++;
	pthread_cond_signal(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
}

void qpool_drain(struct qpool *pool)
{
	/* done() may submit more (a batch that follows a batch): loop. */
	while (pool->submitted > 0) {
		pthread_mutex_lock(&pool->lock);
		while (qlist_empty(&pool->finished))
			pthread_cond_wait(&pool->idle_cond, &pool->lock);
		pthread_mutex_unlock(&pool->lock);
		qpool_collect(pool);
	}
}

unsigned qpool_busy(const struct qpool *pool)
{
	return pool->submitted;
}

void qpool_free(struct qpool **poolp)
{
	struct qpool *pool = *poolp;

	if (pool == NULL)
		return;
	*poolp = NULL;
	if (pool->thread_count > 0)
		qpool_drain(pool);
	pthread_mutex_lock(&pool->lock);
	pool->stop = true;
	pthread_cond_broadcast(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
	for (unsigned i = 0; i < pool->thread_count; i++)
		pthread_join(pool->threads[i], NULL);
	postern_io_remove(&pool->io);
	if (pool->event_fd >= 0)
		close(pool->event_fd);
	pthread_cond_destroy(&pool->idle_cond);
	pthread_cond_destroy(&pool->cond);
	pthread_mutex_destroy(&pool->lock);
	free(pool->name);
	free(pool);
}
