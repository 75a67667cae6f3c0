/*
 * testqueue: a stand-in for queue-store in the smtp module's tests. It is
 * built as "queue-store.so" in tests/modules/testqueue/.libs (so that the
 * smtp module's `requires` is met) and offers the "queue" service with
 * knobs the real queue does not have: a write() that fails like a full
 * disk after N bytes, a commit that fails, a commit that takes a while.
 * Each committed message is written to DIR/N.eml with its envelope in
 * DIR/N.env; an aborted one leaves nothing. Not installed.
 *
 * Settings: dir, local_domains, users (local addresses that exist),
 * fail_write_after (bytes, 0: never), fail_commit, commit_delay.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <postern/postern.h>
#include <postern/queue.h>

struct tq_settings {
	char *dir;
	char **local_domains;
	char **users;
	uint64_t fail_write_after;
	bool fail_commit;
	uint64_t commit_delay;
};

static const struct postern_setting_def tq_defs[] = {
	{ "dir", POSTERN_SET_PATH, offsetof(struct tq_settings, dir), "\"testqueue\"",
	  "where messages go", 0, 0 },
	{ "local_domains", POSTERN_SET_STRLIST, offsetof(struct tq_settings, local_domains),
	  "()", "local domains", 0, 0 },
	{ "users", POSTERN_SET_STRLIST, offsetof(struct tq_settings, users), "()",
	  "local addresses that exist", 0, 0 },
	{ "fail_write_after", POSTERN_SET_SIZE, offsetof(struct tq_settings, fail_write_after),
	  "0", "write() fails past this many bytes", 0, 0 },
	{ "fail_commit", POSTERN_SET_BOOL, offsetof(struct tq_settings, fail_commit), "false",
	  "commit() fails", 0, 0 },
	{ "commit_delay", POSTERN_SET_DURATION, offsetof(struct tq_settings, commit_delay), "0",
	  "time commit() takes", 0, 0 },
	POSTERN_SETTING_END,
};

struct tq {
	struct postern_mod *mod;
	struct tq_settings set;
	struct postern_queue_ops ops;
	unsigned next_id;
};

struct postern_queue_msg {
	struct tq *tq;
	unsigned id;
	FILE *file;
	char *path;
	char *envelope;
	uint64_t written;
	bool failed, detached;
	postern_queue_commit_cb *done;
	void *done_ctx;
	struct postern_timer *timer;
};

static bool in_list(char **list, const char *value)
{
	for (char **p = list; p != NULL && *p != NULL; p++)
		if (strcasecmp(*p, value) == 0)
			return true;
	return false;
}

static enum postern_rcpt_status tq_check(void *ctx, const char *address)
{
	struct tq *tq = ctx;
	const char *at = strrchr(address, '@');

	if (strncasecmp(address, "tempfail@", 9) == 0)
		return POSTERN_RCPT_TEMPFAIL;
	if (at == NULL || !in_list(tq->set.local_domains, at + 1))
		return at == NULL ? POSTERN_RCPT_UNKNOWN : POSTERN_RCPT_REMOTE;
	return in_list(tq->set.users, address) ? POSTERN_RCPT_LOCAL : POSTERN_RCPT_UNKNOWN;
}

static struct postern_queue_msg *tq_begin(void *ctx, const struct postern_queue_envelope *env,
					  const char **error_r)
{
	struct tq *tq = ctx;
	struct postern_queue_msg *msg = calloc(1, sizeof(*msg));
	struct postern_str *str = postern_str_new();

	if (msg == NULL)
		abort();
	msg->tq = tq;
	msg->id = ++tq->next_id;
	if (asprintf(&msg->path, "%s/%u.tmp", tq->set.dir, msg->id) < 0)
		abort();
	msg->file = fopen(msg->path, "w");
	if (msg->file == NULL) {
		*error_r = strerror(errno);
		free(msg->path);
		free(msg);
		postern_str_free(&str);
		return NULL;
	}
	postern_str_printf(str, "sender %s\nby %s\nclient %s\nhelo %s\nauth %s\nret %d\n",
			   env->sender, env->received_by, env->client_address,
			   env->client_name != NULL ? env->client_name : "-",
			   env->auth_user != NULL ? env->auth_user : "-", (int)env->ret);
	postern_str_printf(str, "envid %s\n8bitmime %d\nsmtputf8 %d\n",
			   env->envid != NULL ? env->envid : "-", env->body_8bitmime,
			   env->smtputf8);
	for (unsigned i = 0; i < env->rcpt_count; i++)
		postern_str_printf(str, "rcpt %s notify=%u orcpt=%s\n", env->rcpts[i].address,
				   env->rcpts[i].notify,
				   env->rcpts[i].orcpt != NULL ? env->rcpts[i].orcpt : "-");
	msg->envelope = strdup(postern_str_data(str));
	postern_str_free(&str);
	return msg;
}

static int tq_write(struct postern_queue_msg *msg, const void *data, size_t len,
		    const char **error_r)
{
	uint64_t limit = msg->tq->set.fail_write_after;

	if (msg->failed || (limit != 0 && msg->written + len > limit)) {
		msg->failed = true;
		*error_r = "No space left on device";
		return -1;
	}
	if (fwrite(data, 1, len, msg->file) != len) {
		msg->failed = true;
		*error_r = strerror(errno);
		return -1;
	}
	msg->written += len;
	return 0;
}

static void msg_free(struct postern_queue_msg *msg, bool keep)
{
	if (msg->file != NULL)
		fclose(msg->file);
	if (!keep)
		unlink(msg->path);
	postern_timer_remove(&msg->timer);
	free(msg->envelope);
	free(msg->path);
	free(msg);
}

static void tq_finish(struct postern_timer *timer, void *ctx)
{
	struct postern_queue_msg *msg = ctx;
	struct tq *tq = msg->tq;
	char *eml = NULL, *env = NULL, id[32];
	int status = -1;
	const char *error = "commit failed (testqueue fail_commit)";

	snprintf(id, sizeof(id), "TQ%u", msg->id);
	fclose(msg->file);
	msg->file = NULL;
	if (!tq->set.fail_commit && !msg->failed &&
	    asprintf(&eml, "%s/%u.eml", tq->set.dir, msg->id) >= 0 &&
	    asprintf(&env, "%s/%u.env", tq->set.dir, msg->id) >= 0) {
		FILE *f = fopen(env, "w");

		if (f != NULL) {
			fputs(msg->envelope, f);
			fclose(f);
			if (rename(msg->path, eml) == 0) {
				status = 0;
				error = NULL;
			}
		}
	}
	if (!msg->detached)
		msg->done(msg->done_ctx, status, id, error);
	free(eml);
	free(env);
	msg_free(msg, status == 0);
}

static void tq_commit(struct postern_queue_msg *msg, postern_queue_commit_cb *done,
		      void *done_ctx)
{
	msg->done = done;
	msg->done_ctx = done_ctx;
	/* Never from inside commit(): always a timer. */
	msg->timer = postern_timer_add(msg->tq->mod, msg->tq->set.commit_delay + 1, false,
				       tq_finish, msg);
}

static void tq_abort(struct postern_queue_msg *msg)
{
	msg_free(msg, false);
}

static void tq_detach(struct postern_queue_msg *msg)
{
	msg->detached = true;
}

static int tq_init(struct postern_mod *mod, const struct postern_cfg *cfg,
		   const char **error_r)
{
	struct tq *tq = calloc(1, sizeof(*tq));

	if (tq == NULL)
		abort();
	tq->mod = mod;
	if (postern_cfg_parse(mod, cfg, tq_defs, &tq->set, error_r) < 0) {
		free(tq);
		return -1;
	}
	tq->ops.struct_size = sizeof(tq->ops);
	tq->ops.ctx = tq;
	tq->ops.check_recipient = tq_check;
	tq->ops.begin = tq_begin;
	tq->ops.write = tq_write;
	tq->ops.commit = tq_commit;
	tq->ops.abort = tq_abort;
	tq->ops.detach = tq_detach;
	postern_mod_set_data(mod, tq);
	return postern_service_register(mod, POSTERN_QUEUE_SERVICE, POSTERN_QUEUE_VERSION,
					&tq->ops, error_r);
}

static void tq_deinit(struct postern_mod *mod)
{
	struct tq *tq = postern_mod_data(mod);

	if (tq == NULL)
		return;
	postern_cfg_free(tq_defs, &tq->set);
	free(tq);
}

POSTERN_MODULE_DEFINE(
	.name = "queue-store",
	.version = "test",
	.init = tq_init,
	.deinit = tq_deinit,
);
