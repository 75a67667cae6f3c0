/*
 * testtransport: a fake "transport.smtp" service (include/postern/
 * transport.h) that answers every recipient as configured, after a delay,
 * so the queue's remote delivery, retries and notices can be tested without
 * the smtp module or a network. Not installed.
 *
 * Settings:
 *   reply = "250 2.0.0 ok";       the answer for every recipient
 *   delay = "10ms";               before the answer
 *   spool_dir = "/path";          accepted messages are saved here as
 *                                 <queue id>.<n>.eml, with a line per
 *                                 request in requests.log
 * Control: `testtransport reply KEY CODE [STATUS [TEXT...]]` where KEY is
 * an address, a domain or "*" (the most specific rule wins); CODE 0 means
 * "no answer" (a connection failure); `testtransport stats` counts
 * requests, recipients and cancels; `testtransport reset` drops the rules.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <postern/postern.h>
#include <postern/transport.h>

#define TT_MAX_RULES 64

struct testtransport_settings {
	char *reply;
	uint64_t delay;
	char *spool_dir;
};

static const struct postern_setting_def tt_setting_defs[] = {
	{ "reply", POSTERN_SET_STRING, offsetof(struct testtransport_settings, reply),
	  "\"250 2.0.0 ok\"", "default answer", 0, 0 },
	{ "delay", POSTERN_SET_DURATION, offsetof(struct testtransport_settings, delay), "10ms",
	  "time before answering", 0, 600000 },
	{ "spool_dir", POSTERN_SET_PATH, offsetof(struct testtransport_settings, spool_dir), NULL,
	  "where accepted messages are saved", 0, 0 },
	POSTERN_SETTING_END,
};

struct tt_rule {
	char *key;
	unsigned code;
	char *status;
	char *text;
};

struct testtransport {
	struct postern_mod *mod;
	struct testtransport_settings settings;
	struct postern_transport_ops ops;
	struct tt_rule rules[TT_MAX_RULES];
	unsigned rule_count;
	struct tt_rule fallback;
	uint64_t requests, rcpts, cancels, saved;
	struct postern_transport_job *jobs; /* outstanding, freed at deinit */
};

struct postern_transport_job {
	struct testtransport *tt;
	struct postern_transport_job *prev, *next;
	struct postern_timer *timer;
	char *queue_id, *domain, *sender, *envid;
	char **addresses;
	unsigned *notify;
	unsigned count;
	int ret;
	char *body;
	size_t body_len;
	postern_transport_done_cb *done;
	void *done_ctx;
};

static char *tt_strdup(const char *str)
{
	char *copy = strdup(str != NULL ? str : "");

	if (copy == NULL)
		abort();
	return copy;
}

static void rule_parse(struct tt_rule *rule, const char *key, const char *spec)
{
	char *copy = tt_strdup(spec), *save = NULL;
	char *code = strtok_r(copy, " ", &save);
	char *status = strtok_r(NULL, " ", &save);
	char *text = strtok_r(NULL, "", &save);

	rule->key = tt_strdup(key);
	rule->code = code != NULL ? (unsigned)strtoul(code, NULL, 10) : 0;
	rule->status = status != NULL ? tt_strdup(status) : NULL;
	rule->text = tt_strdup(text != NULL ? text : "test answer");
	free(copy);
}

static void rule_free(struct tt_rule *rule)
{
	free(rule->key);
	free(rule->status);
	free(rule->text);
	memset(rule, 0, sizeof(*rule));
}

static const struct tt_rule *rule_for(struct testtransport *tt, const char *address)
{
	const char *at = strrchr(address, '@');
	const char *domain = at != NULL ? at + 1 : "";

	for (unsigned i = 0; i < tt->rule_count; i++) {
		if (strcasecmp(tt->rules[i].key, address) == 0)
			return &tt->rules[i];
	}
	for (unsigned i = 0; i < tt->rule_count; i++) {
		if (strcasecmp(tt->rules[i].key, domain) == 0)
			return &tt->rules[i];
	}
	for (unsigned i = 0; i < tt->rule_count; i++) {
		if (strcmp(tt->rules[i].key, "*") == 0)
			return &tt->rules[i];
	}
	return &tt->fallback;
}

static void job_free(struct postern_transport_job *job)
{
	if (job->prev != NULL)
		job->prev->next = job->next;
	else if (job->tt->jobs == job)
		job->tt->jobs = job->next;
	if (job->next != NULL)
		job->next->prev = job->prev;
	postern_timer_remove(&job->timer);
	for (unsigned i = 0; i < job->count; i++)
		free(job->addresses[i]);
	free(job->addresses);
	free(job->notify);
	free(job->queue_id);
	free(job->domain);
	free(job->sender);
	free(job->envid);
	free(job->body);
	free(job);
}

static void save_message(struct testtransport *tt, struct postern_transport_job *job,
			 unsigned accepted)
{
	char path[4096];
	FILE *log;
	int fd;

	if (tt->settings.spool_dir == NULL || accepted == 0)
		return;
	snprintf(path, sizeof(path), "%s/%s.%llu.eml", tt->settings.spool_dir, job->queue_id,
		 (unsigned long long)++tt->saved);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd >= 0) {
		(void)!write(fd, job->body, job->body_len);
		close(fd);
	}
	snprintf(path, sizeof(path), "%s/requests.log", tt->settings.spool_dir);
	log = fopen(path, "a");
	if (log == NULL)
		return;
	fprintf(log, "%s %s <%s> ret=%d envid=%s size=%zu", job->queue_id, job->domain,
		job->sender, job->ret, job->envid != NULL ? job->envid : "-", job->body_len);
	for (unsigned i = 0; i < job->count; i++)
		fprintf(log, " <%s>/%u", job->addresses[i], job->notify[i]);
	fprintf(log, "\n");
	fclose(log);
}

static void job_answer(struct postern_timer *timer, void *ctx)
{
	struct postern_transport_job *job = ctx;
	struct testtransport *tt = job->tt;
	struct postern_transport_rcpt_result *results = calloc(job->count, sizeof(*results));
	char mta[300];
	unsigned accepted = 0;

	(void)timer;
	if (results == NULL)
		abort();
	snprintf(mta, sizeof(mta), "mx.%s", job->domain);
	for (unsigned i = 0; i < job->count; i++) {
		const struct tt_rule *rule = rule_for(tt, job->addresses[i]);

		results[i].smtp_code = rule->code;
		results[i].enhanced_code = rule->status;
		results[i].text = rule->code == 0 ? "connect to test transport: refused" : rule->text;
		results[i].remote_mta = rule->code == 0 ? NULL : mta;
		if (rule->code >= 200 && rule->code < 300)
			accepted++;
	}
	save_message(tt, job, accepted);
	job->done(job->done_ctx, results, job->count);
	free(results);
	job_free(job);
}

static int read_message(struct postern_transport_job *job,
			const struct postern_transport_request *request, const char **error_r)
{
	size_t have = 0;

	job->body = malloc(request->message_size + 1);
	if (job->body == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	while (have < request->message_size) {
		ssize_t n = pread(request->message_fd, job->body + have,
				  request->message_size - have,
				  (off_t)(request->message_offset + have));

		if (n <= 0) {
			*error_r = n < 0 ? strerror(errno) : "short message";
			return -1;
		}
		have += (size_t)n;
	}
	job->body_len = have;
	return 0;
}

static struct postern_transport_job *tt_deliver(void *ctx,
						const struct postern_transport_request *request,
						postern_transport_done_cb *done, void *done_ctx,
						const char **error_r)
{
	struct testtransport *tt = ctx;
	struct postern_transport_job *job = calloc(1, sizeof(*job));

	if (job == NULL || request->rcpt_count == 0) {
		free(job);
		*error_r = "bad request";
		return NULL;
	}
	job->tt = tt;
	job->queue_id = tt_strdup(request->queue_id);
	job->domain = tt_strdup(request->domain);
	job->sender = tt_strdup(request->sender);
	job->envid = request->envid != NULL ? tt_strdup(request->envid) : NULL;
	job->ret = (int)request->ret;
	job->count = request->rcpt_count;
	job->addresses = calloc(job->count, sizeof(*job->addresses));
	job->notify = calloc(job->count, sizeof(*job->notify));
	if (job->addresses == NULL || job->notify == NULL)
		abort();
	for (unsigned i = 0; i < job->count; i++) {
		job->addresses[i] = tt_strdup(request->rcpts[i].address);
		job->notify[i] = request->rcpts[i].notify;
	}
	/* The fd is only promised until done() or cancel: read it now. */
	if (read_message(job, request, error_r) < 0) {
		job_free(job);
		return NULL;
	}
	job->done = done;
	job->done_ctx = done_ctx;
	tt->requests++;
	tt->rcpts += job->count;
	job->next = tt->jobs;
	if (tt->jobs != NULL)
		tt->jobs->prev = job;
	tt->jobs = job;
	job->timer = postern_timer_add(tt->mod, tt->settings.delay == 0 ? 1 : tt->settings.delay,
				       false, job_answer, job);
	return job;
}

static void tt_cancel(struct postern_transport_job *job)
{
	job->tt->cancels++;
	job_free(job);
}

static int tt_command(struct postern_control_req *req, int argc, const char *const *argv,
		      void *ctx)
{
	struct testtransport *tt = ctx;
	struct postern_str *out = postern_control_output(req);

	if (argc == 2 && strcmp(argv[1], "stats") == 0) {
		postern_str_printf(out, "requests %llu\nrcpts %llu\ncancels %llu\n",
				   (unsigned long long)tt->requests, (unsigned long long)tt->rcpts,
				   (unsigned long long)tt->cancels);
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "reset") == 0) {
		for (unsigned i = 0; i < tt->rule_count; i++)
			rule_free(&tt->rules[i]);
		tt->rule_count = 0;
		postern_str_append_cstr(out, "ok\n");
		return 0;
	}
	if (argc >= 4 && strcmp(argv[1], "reply") == 0) {
		char spec[1024] = "";
		unsigned i;

		for (int a = 3; a < argc; a++) {
			if (a > 3)
				strcat(spec, " ");
			strncat(spec, argv[a], sizeof(spec) - strlen(spec) - 2);
		}
		for (i = 0; i < tt->rule_count; i++) {
			if (strcasecmp(tt->rules[i].key, argv[2]) == 0)
				break;
		}
		if (i == TT_MAX_RULES)
			return postern_control_fail(req, "too many rules");
		if (i < tt->rule_count)
			rule_free(&tt->rules[i]);
		else
			tt->rule_count++;
		rule_parse(&tt->rules[i], argv[2], spec);
		postern_str_append_cstr(out, "ok\n");
		return 0;
	}
	return postern_control_fail(req, "usage: testtransport stats|reset|reply KEY CODE "
				    "[STATUS [TEXT]]");
}

static int tt_check_config(struct postern_mod *mod, const struct postern_cfg *cfg,
			   const char **error_r)
{
	struct testtransport_settings settings;

	if (postern_cfg_parse(mod, cfg, tt_setting_defs, &settings, error_r) < 0)
		return -1;
	postern_cfg_free(tt_setting_defs, &settings);
	return 0;
}

static void tt_free(struct testtransport *tt)
{
	while (tt->jobs != NULL)
		job_free(tt->jobs);
	for (unsigned i = 0; i < tt->rule_count; i++)
		rule_free(&tt->rules[i]);
	rule_free(&tt->fallback);
	postern_cfg_free(tt_setting_defs, &tt->settings);
	free(tt);
}

static int tt_init(struct postern_mod *mod, const struct postern_cfg *cfg, const char **error_r)
{
	struct testtransport *tt = calloc(1, sizeof(*tt));

	if (tt == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	tt->mod = mod;
	if (postern_cfg_parse(mod, cfg, tt_setting_defs, &tt->settings, error_r) < 0) {
		free(tt);
		return -1;
	}
	rule_parse(&tt->fallback, "*", tt->settings.reply);
	tt->ops.struct_size = sizeof(tt->ops);
	tt->ops.ctx = tt;
	tt->ops.deliver = tt_deliver;
	tt->ops.cancel = tt_cancel;
	if (postern_service_register(mod, POSTERN_TRANSPORT_SMTP_SERVICE,
				     POSTERN_TRANSPORT_VERSION, &tt->ops, error_r) < 0 ||
	    postern_control_register(mod, "testtransport", "testtransport stats|reset|reply ...",
				     tt_command, tt, error_r) < 0) {
		tt_free(tt);
		return -1;
	}
	postern_mod_set_data(mod, tt);
	return 0;
}

static void tt_deinit(struct postern_mod *mod)
{
	struct testtransport *tt = postern_mod_data(mod);

	if (tt != NULL)
		tt_free(tt);
	postern_mod_set_data(mod, NULL);
}

POSTERN_MODULE_DEFINE(
	.name = "testtransport",
	.version = "1.0",
	.check_config = tt_check_config,
	.init = tt_init,
	.deinit = tt_deinit,
);
