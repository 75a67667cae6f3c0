/*
 * A fixed set of helper threads that run one function over an array of
 * items in parallel, for the syncer: a batch's fdatasync() calls wait for
 * the disk, and a disk serves several flushes at once much faster than one
 * after the other. qfan_run() returns only when every item is finished, so
 * what the caller does next (renames, the directory fsync) comes after all
 * of them, exactly as if they had run in a loop. The calling thread works
 * on the items too: a fan of N threads has N - 1 helpers.
 *
 * Helpers touch only the items handed to them; they never call the core.
 */
#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "queue_store.h"

#define QFAN_MAX_THREADS 64

struct qfan {
	pthread_mutex_t lock;
	pthread_cond_t work_cond;  /* items to take, or stop */
	pthread_cond_t done_cond;  /* the last item finished */
	void (*fn)(void *item, void *ctx);
	void *ctx;
	void *const *items;
	size_t count;              /* items of the current run, 0 between runs */
	size_t next;               /* the first one nobody took yet */
	size_t finished;
	bool stop;
	pthread_t helpers[QFAN_MAX_THREADS];
	unsigned helper_count;
};

/* With the lock held: take and run items until none is left to take. */
static void qfan_work(struct qfan *fan)
{
	while (fan->next < fan->count) {
		void *item = fan->items[fan->next++];

		pthread_mutex_unlock(&fan->lock);
		fan->fn(item, fan->ctx);
		pthread_mutex_lock(&fan->lock);
		if (++fan->finished == fan->count)
			pthread_cond_signal(&fan->done_cond);
	}
}

static void *qfan_helper(void *arg)
{
	struct qfan *fan = arg;

	pthread_mutex_lock(&fan->lock);
	for (;;) {
		while (fan->next >= fan->count && !fan->stop)
			pthread_cond_wait(&fan->work_cond, &fan->lock);
		if (fan->stop)
			break;
		qfan_work(fan);
	}
	pthread_mutex_unlock(&fan->lock);
	return NULL;
}

int qfan_create(unsigned threads, struct qfan **fan_r, const char **error_r)
{
	struct qfan *fan = q_calloc(1, sizeof(*fan));
	int ret;

	assert(threads >= 1 && threads <= QFAN_MAX_THREADS);
	pthread_mutex_init(&fan->lock, NULL);
	pthread_cond_init(&fan->work_cond, NULL);
	pthread_cond_init(&fan->done_cond, NULL);
	for (unsigned i = 0; i + 1 < threads; i++) {
		ret = pthread_create(&fan->helpers[i], NULL, qfan_helper, fan);
		if (ret != 0) {
			*error_r = "cannot start a sync thread";
			qfan_free(&fan);
			return -1;
		}
		fan->helper_count++;
	}
	*fan_r = fan;
	return 0;
}

void qfan_run(struct qfan *fan, void (*fn)(void *item, void *ctx), void *const *items,
	      size_t count, void *ctx)
{
	if (count == 0)
		return;
	pthread_mutex_lock(&fan->lock);
	assert(fan->count == 0);
	fan->fn = fn;
	fan->ctx = ctx;
	fan->items = items;
	fan->count = count;
	fan->next = 0;
	fan->finished = 0;
	if (count > 1)
		pthread_cond_broadcast(&fan->work_cond);
	qfan_work(fan);
	while (fan->finished < fan->count)
		pthread_cond_wait(&fan->done_cond, &fan->lock);
	/* Every item is through fn and no helper holds one: the items may go. */
	fan->count = 0;
	fan->next = 0;
	fan->items = NULL;
	pthread_mutex_unlock(&fan->lock);
}

void qfan_free(struct qfan **_fan)
{
	struct qfan *fan = *_fan;

	if (fan == NULL)
		return;
	*_fan = NULL;
	pthread_mutex_lock(&fan->lock);
	assert(fan->count == 0);
	fan->stop = true;
	pthread_cond_broadcast(&fan->work_cond);
	pthread_mutex_unlock(&fan->lock);
	for (unsigned i = 0; i < fan->helper_count; i++)
		pthread_join(fan->helpers[i], NULL);
	pthread_cond_destroy(&fan->done_cond);
	pthread_cond_destroy(&fan->work_cond);
	pthread_mutex_destroy(&fan->lock);
	free(fan);
}
