/*
 * The asynchronous verifier: a few worker threads run the blocking
 * userdb verify (a password hash takes milliseconds, an LDAP bind longer),
 * so that the daemon's event loop never waits for one.
 *
 * The loop thread submits (user, password, remote ip, ctx); a worker
 * verifies and moves the request to the done list, then writes to an
 * eventfd. The loop watches that fd and calls collect, which runs the
 * callbacks on the loop thread, feeds the failure tracker and logs. The
 * failure tracker and the log callback are therefore only ever touched by
 * the caller's thread.
 *
 * A connection that goes away cancels its requests: queued ones are
 * dropped, a running one is dropped when it finishes, finished ones are
 * removed from the done list, so no callback ever sees a stale ctx.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "auth_private.h"

#define POOL_MAX_THREADS 64

struct request {
	struct request *next;
	char *user, *password, *ip;
	void *ctx;
	bool cancelled;
	enum postern_auth_result result;
	struct postern_auth_user *user_info;
	char *error;
};

struct worker {
	struct postern_auth_pool *pool;
	pthread_t thread;
	struct request *running;
	bool started;
};

struct postern_auth_pool {
	struct postern_userdb *db;
	struct postern_auth_pool_settings set;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct request *queue_head, *queue_tail;
	struct request *done_head, *done_tail;
	unsigned pending;               /* queued + running */
	bool stop;
	struct worker *workers;
	unsigned nworkers;
	int efd;
};

static void wipe_free(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static void request_free(struct request *req)
{
	if (req == NULL)
		return;
	free(req->user);
	wipe_free(req->password);
	free(req->ip);
	free(req->error);
	postern_auth_user_free(&req->user_info);
	free(req);
}

static void list_append(struct request **head, struct request **tail, struct request *req)
{
	req->next = NULL;
	if (*tail != NULL)
		(*tail)->next = req;
	else
		*head = req;
	*tail = req;
}

static void signal_done(struct postern_auth_pool *pool)
{
	uint64_t one = 1;

	/* EAGAIN only when the counter is near overflow: still readable */
	while (write(pool->efd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

static void run_request(struct postern_auth_pool *pool, struct request *req)
{
	const char *error = NULL;

	req->result = postern_userdb_verify(pool->db, req->user, req->password,
					    &req->user_info, &error);
	if (req->result == POSTERN_AUTH_TEMPFAIL)
		req->error = strdup(error != NULL ? error : "userdb failed");
	if (req->result != POSTERN_AUTH_OK)
		postern_auth_user_free(&req->user_info);
	/* the password is not needed any more */
	wipe_free(req->password);
	req->password = NULL;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct postern_auth_pool *pool = w->pool;

	for (;;) {
		struct request *req;
		bool done;

		pthread_mutex_lock(&pool->lock);
		while (!pool->stop && pool->queue_head == NULL)
			pthread_cond_wait(&pool->cond, &pool->lock);
		if (pool->stop) {
			pthread_mutex_unlock(&pool->lock);
			return NULL;
		}
		req = pool->queue_head;
		pool->queue_head = req->next;
		if (pool->queue_head == NULL)
			pool->queue_tail = NULL;
		w->running = req;
		pthread_mutex_unlock(&pool->lock);

		run_request(pool, req);

		pthread_mutex_lock(&pool->lock);
		w->running = NULL;
		pool->pending--;
		done = !req->cancelled;
		if (done)
			list_append(&pool->done_head, &pool->done_tail, req);
		pthread_mutex_unlock(&pool->lock);
		if (done)
			signal_done(pool);
		else
			request_free(req);
	}
}

POSTERN_API int postern_auth_pool_create(struct postern_userdb *db,
					 const struct postern_auth_pool_settings *set,
					 struct postern_auth_pool **pool_r, const char **error_r)
{
	struct postern_auth_pool *pool;

	*pool_r = NULL;
	if (db == NULL || set == NULL || set->struct_size < sizeof(*set)) {
		*error_r = auth_error("auth pool: need a userdb and settings with struct_size %zu "
				      "(use POSTERN_AUTH_POOL_SETTINGS_INIT)", sizeof(*set));
		return -1;
	}
	pool = calloc(1, sizeof(*pool));
	if (pool == NULL) {
		*error_r = auth_error("out of memory");
		return -1;
	}
	pool->db = db;
	pool->set = *set;
	pool->nworkers = set->threads == 0 ? 2 : set->threads;
	if (pool->nworkers > POOL_MAX_THREADS)
		pool->nworkers = POOL_MAX_THREADS;
	if (pool->set.max_pending == 0)
		pool->set.max_pending = 256;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->cond, NULL);
	pool->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	pool->workers = calloc(pool->nworkers, sizeof(*pool->workers));
	if (pool->efd < 0 || pool->workers == NULL) {
		*error_r = auth_error("auth pool: %s", pool->efd < 0 ? strerror(errno) :
				      "out of memory");
		postern_auth_pool_free(&pool);
		return -1;
	}
	for (unsigned i = 0; i < pool->nworkers; i++) {
		int err;

		pool->workers[i].pool = pool;
		err = pthread_create(&pool->workers[i].thread, NULL, worker_main,
				     &pool->workers[i]);
		if (err != 0) {
			*error_r = auth_error("auth pool: pthread_create: %s", strerror(err));
			postern_auth_pool_free(&pool);
			return -1;
		}
		pool->workers[i].started = true;
	}
	*pool_r = pool;
	return 0;
}

static void list_free(struct request *req)
{
	while (req != NULL) {
		struct request *next = req->next;

		request_free(req);
		req = next;
	}
}

POSTERN_API void postern_auth_pool_free(struct postern_auth_pool **poolp)
{
	struct postern_auth_pool *pool = poolp == NULL ? NULL : *poolp;

	if (pool == NULL)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->stop = true;
	pthread_cond_broadcast(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
	for (unsigned i = 0; pool->workers != NULL && i < pool->nworkers; i++) {
		if (pool->workers[i].started)
			pthread_join(pool->workers[i].thread, NULL);
	}
	/* a worker that was running when stop came finished its request
	 * into the done list before it looked at the flag */
	list_free(pool->queue_head);
	list_free(pool->done_head);
	free(pool->workers);
	if (pool->efd >= 0)
		close(pool->efd);
	pthread_cond_destroy(&pool->cond);
	pthread_mutex_destroy(&pool->lock);
	free(pool);
	*poolp = NULL;
}

POSTERN_API int postern_auth_pool_fd(const struct postern_auth_pool *pool)
{
	return pool->efd;
}

static struct request *request_new(const char *user, const char *password, const char *ip,
				   void *ctx)
{
	struct request *req = calloc(1, sizeof(*req));

	if (req == NULL)
		return NULL;
	req->ctx = ctx;
	req->user = strdup(user);
	req->password = strdup(password);
	req->ip = strdup(ip);
	if (req->user == NULL || req->password == NULL || req->ip == NULL) {
		request_free(req);
		return NULL;
	}
	return req;
}

POSTERN_API int postern_auth_pool_submit(struct postern_auth_pool *pool, const char *user,
					 const char *password, const char *remote_ip, void *ctx,
					 const char **error_r)
{
	struct request *req;
	bool blocked;

	if (user == NULL || password == NULL || remote_ip == NULL) {
		*error_r = auth_error("auth pool: user, password and remote ip are required");
		return -1;
	}
	blocked = pool->set.failures != NULL &&
		postern_auth_failures_blocked(pool->set.failures, remote_ip) > 0;
	if ((req = request_new(user, blocked ? "" : password, remote_ip, ctx)) == NULL) {
		*error_r = auth_error("out of memory");
		return -1;
	}
	pthread_mutex_lock(&pool->lock);
	if (blocked) {
		/* answered without hashing: a blocked address costs no CPU */
		req->result = POSTERN_AUTH_BLOCKED;
		list_append(&pool->done_head, &pool->done_tail, req);
		pthread_mutex_unlock(&pool->lock);
		signal_done(pool);
		return 0;
	}
	if (pool->pending >= pool->set.max_pending) {
		pthread_mutex_unlock(&pool->lock);
		request_free(req);
		*error_r = auth_error("auth pool: %u requests pending: queue full",
				      pool->set.max_pending);
		return -1;
	}
	list_append(&pool->queue_head, &pool->queue_tail, req);
	pool->pending++;
	pthread_cond_signal(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
	return 0;
}

/* Remove requests with ctx from a list; returns how many. */
static unsigned list_remove_ctx(struct request **head, struct request **tail, void *ctx)
{
	struct request **link = head, *last = NULL;
	unsigned n = 0;

	while (*link != NULL) {
		struct request *req = *link;

		if (req->ctx == ctx) {
			*link = req->next;
			request_free(req);
			n++;
		} else {
			last = req;
			link = &req->next;
		}
	}
	*tail = last;
	return n;
}

POSTERN_API void postern_auth_pool_cancel(struct postern_auth_pool *pool, void *ctx)
{
	pthread_mutex_lock(&pool->lock);
	pool->pending -= list_remove_ctx(&pool->queue_head, &pool->queue_tail, ctx);
	(void)list_remove_ctx(&pool->done_head, &pool->done_tail, ctx);
	for (unsigned i = 0; i < pool->nworkers; i++) {
		if (pool->workers[i].running != NULL && pool->workers[i].running->ctx == ctx)
			pool->workers[i].running->cancelled = true;
	}
	pthread_mutex_unlock(&pool->lock);
}

/* Count a failure and log it; returns the delay for the answer. */
static unsigned account(struct postern_auth_pool *pool, const struct request *req)
{
	char user[AUTH_USER_MAX * 4 + 8], ip[200];
	unsigned delay = 0, count = 0;

	auth_printable(user, sizeof(user), req->user, 64);
	auth_printable(ip, sizeof(ip), req->ip, 46);
	switch (req->result) {
	case POSTERN_AUTH_OK:
		auth_log(pool->set.log, pool->set.log_ctx, POSTERN_AUTH_LOG_DEBUG,
			 "auth ok: user=<%s> rip=%s", user, ip);
		break;
	case POSTERN_AUTH_FAILED:
	case POSTERN_AUTH_UNKNOWN_USER:
		if (pool->set.failures != NULL) {
			delay = postern_auth_failures_add(pool->set.failures, req->ip);
			count = postern_auth_failures_count(pool->set.failures, req->ip);
		}
		auth_log(pool->set.log, pool->set.log_ctx, POSTERN_AUTH_LOG_INFO,
			 "auth failed: user=<%s> rip=%s reason=%s failures=%u delay=%ums", user,
			 ip, postern_auth_result_str(req->result), count, delay);
		break;
	case POSTERN_AUTH_BLOCKED:
		if (pool->set.failures != NULL)
			delay = auth_failures_max_delay(pool->set.failures);
		auth_log(pool->set.log, pool->set.log_ctx, POSTERN_AUTH_LOG_WARNING,
			 "auth blocked: user=<%s> rip=%s: too many failures from this address",
			 user, ip);
		break;
	case POSTERN_AUTH_TEMPFAIL:
		auth_log(pool->set.log, pool->set.log_ctx, POSTERN_AUTH_LOG_ERROR,
			 "auth temporary failure: user=<%s> rip=%s: %s", user, ip,
			 req->error != NULL ? req->error : "?");
		break;
	}
	return delay;
}

POSTERN_API unsigned postern_auth_pool_collect(struct postern_auth_pool *pool,
					       postern_auth_done_cb *cb)
{
	uint64_t counter;
	unsigned n = 0, limit = 0;

	/* clear the fd first: a result finished after this is signalled
	 * again, so none is left without a wake-up */
	while (read(pool->efd, &counter, sizeof(counter)) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&pool->lock);
	for (struct request *r = pool->done_head; r != NULL; r = r->next)
		limit++;
	pthread_mutex_unlock(&pool->lock);
	/* One at a time from the shared list: a callback may cancel another
	 * ctx, whose finished requests must then not be delivered. Those
	 * that finish while we run are left for the next wake-up. */
	while (n < limit) {
		struct request *req;
		struct postern_auth_reply reply;

		pthread_mutex_lock(&pool->lock);
		req = pool->done_head;
		if (req != NULL) {
			pool->done_head = req->next;
			if (pool->done_head == NULL)
				pool->done_tail = NULL;
		}
		pthread_mutex_unlock(&pool->lock);
		if (req == NULL)
			break;
		reply = (struct postern_auth_reply){
			.result = req->result,
			.ctx = req->ctx,
			.user = req->user,
			.remote_ip = req->ip,
			.user_info = req->user_info,
			.error = req->error,
		};
		reply.delay_ms = account(pool, req);
		req->user_info = NULL;
		cb(&reply);
		postern_auth_user_free(&reply.user_info);
		request_free(req);
		n++;
	}
	return n;
}
