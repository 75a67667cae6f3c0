/*
 * queue-store: the module descriptor, its settings and its hooks.
 *
 * init (as root): settings, the queue directories and their lock, the user
 * database, the bus topics, the `queue` command and the "queue" service
 * (receivers look it up in their own init). start (as the run user): the
 * syncer and delivery threads, the scan of the queue, the scheduler. stop:
 * no new attempts, remote ones cancelled (the transport is still there).
 * deinit: local deliveries and pending commits finish, then everything is
 * released.
 *
 * Durability is not a setting: every commit is fsync'd.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <postern/postern.h>

#include "queue_store.h"

#define QS_FIELD(name) offsetof(struct qs_settings, name)

static const struct postern_setting_def qs_setting_defs[] = {
	{ "queue_dir", POSTERN_SET_PATH, QS_FIELD(queue_dir), "\"queue\"",
	  "the queue directory (restart to change)", 0, 0 },
	{ "local_domains", POSTERN_SET_STRLIST, QS_FIELD(local_domains), "()",
	  "domains delivered into local mailboxes", 0, 0 },
	{ "passwd_file", POSTERN_SET_PATH, QS_FIELD(passwd_file), NULL,
	  "the user database of the local domains (Dovecot passwd-file format)", 0, 0 },
	{ "passwd_file_check_interval", POSTERN_SET_DURATION,
	  QS_FIELD(passwd_file_check_interval), "1s",
	  "look for changes of passwd_file at most this often", 0, 86400000 },
	{ "mail_root", POSTERN_SET_PATH, QS_FIELD(mail_root), "\"mail\"",
	  "Maildirs of users without a mail location: mail_root/DOMAIN/USER/Maildir", 0, 0 },
	{ "quota_bytes", POSTERN_SET_SIZE, QS_FIELD(quota_bytes), "0",
	  "Maildir++ storage limit per user, 0 for none (userdb field quota_bytes overrides)",
	  0, 0 },
	{ "quota_messages", POSTERN_SET_UINT, QS_FIELD(quota_messages), "0",
	  "Maildir++ message limit per user, 0 for none (userdb field quota_messages overrides)",
	  0, 0 },
	{ "mailbox_lock_timeout", POSTERN_SET_DURATION, QS_FIELD(mailbox_lock_timeout), "30s",
	  "wait this long for a mailbox's uid list lock", 1000, 3600000 },
	{ "mailbox_lock_stale", POSTERN_SET_DURATION, QS_FIELD(mailbox_lock_stale), "120s",
	  "a mailbox lock older than this was left by a crash", 1000, 86400000 },
	{ "retry_min", POSTERN_SET_DURATION, QS_FIELD(retry_min), "5m",
	  "wait after the first failed attempt; doubled after each further one", 100, 0 },
	{ "retry_max", POSTERN_SET_DURATION, QS_FIELD(retry_max), "1h",
	  "the longest wait between attempts", 100, 0 },
	{ "delay_warning", POSTERN_SET_DURATION, QS_FIELD(delay_warning), "4h",
	  "send the sender a delay notice when a message is this old, 0 for never", 0, 0 },
	{ "max_lifetime", POSTERN_SET_DURATION, QS_FIELD(max_lifetime), "5d",
	  "bounce what is still undelivered when a message is this old", 1000, 0 },
	{ "max_parallel_deliveries", POSTERN_SET_UINT, QS_FIELD(max_parallel_deliveries), "20",
	  "messages in delivery at the same time", 1, 100000 },
	{ "delivery_threads", POSTERN_SET_UINT, QS_FIELD(delivery_threads), "4",
	  "threads writing into local mailboxes", 1, 64 },
	{ "sync_threads", POSTERN_SET_UINT, QS_FIELD(sync_threads), "8",
	  "threads flushing the files of one commit batch to disk at the same time", 1, 64 },
	{ "hostname", POSTERN_SET_STRING, QS_FIELD(hostname), NULL,
	  "Reporting-MTA and the From of notices (default: the system host name)", 0, 0 },
	{ "bounce_size_limit", POSTERN_SET_SIZE, QS_FIELD(bounce_size_limit), "1M",
	  "return at most this much of a message in a failure notice (RET=FULL); "
	  "larger ones get their headers returned", 0, 0 },
	{ "max_message_size", POSTERN_SET_SIZE, QS_FIELD(max_message_size), "0",
	  "refuse to queue bigger messages, 0 for no limit of the queue's own", 0, 0 },
	POSTERN_SETTING_END,
};

static int qs_validate(struct postern_mod *mod, const struct qs_settings *set,
		       const struct postern_cfg *cfg, const char **error_r)
{
	if (set->retry_min > set->retry_max) {
		*error_r = postern_cfg_error(mod, postern_cfg_lookup(cfg, "retry_min"),
					     "retry_min (%llums) is larger than retry_max (%llums)",
					     (unsigned long long)set->retry_min,
					     (unsigned long long)set->retry_max);
		return -1;
	}
	if (set->hostname != NULL &&
	    (set->hostname[0] == '\0' || strpbrk(set->hostname, " \t\r\n<>@\"") != NULL)) {
		*error_r = postern_cfg_error(mod, postern_cfg_lookup(cfg, "hostname"),
					     "hostname must be a plain host name");
		return -1;
	}
	if (set->passwd_file != NULL && access(set->passwd_file, R_OK) < 0) {
		*error_r = postern_cfg_error(mod, postern_cfg_lookup(cfg, "passwd_file"),
					     "passwd_file %s: %s", set->passwd_file,
					     strerror(errno));
		return -1;
	}
	if (set->local_domains[0] != NULL && set->passwd_file == NULL) {
		*error_r = postern_cfg_error(mod, postern_cfg_lookup(cfg, "local_domains"),
					     "local_domains need passwd_file (the local users)");
		return -1;
	}
	return 0;
}

/* Parse and check the group: 0 with *set the caller's to free, or -1 with
 * nothing left. */
static int qs_load_settings(struct postern_mod *mod, const struct postern_cfg *cfg,
			    struct qs_settings *set, const char **error_r)
{
	if (postern_cfg_parse(mod, cfg, qs_setting_defs, set, error_r) < 0)
		return -1;
	if (qs_validate(mod, set, cfg, error_r) < 0) {
		postern_cfg_free(qs_setting_defs, set);
		return -1;
	}
	return 0;
}

static int qs_check_config(struct postern_mod *mod, const struct postern_cfg *cfg,
			   const char **error_r)
{
	struct qs_settings set;

	if (qs_load_settings(mod, cfg, &set, error_r) < 0)
		return -1;
	postern_cfg_free(qs_setting_defs, &set);
	return 0;
}

static void qs_free(struct qs *qs)
{
	qtable_free(&qs->table);
	sched_deinit(qs);
	spool_close(qs);
	recipient_deinit(qs);
	spares_clear(qs);
	postern_cfg_free(qs_setting_defs, &qs->set);
	free(qs->hostname);
	free(qs->dir);
	free(qs);
}

static char *system_hostname(void)
{
	char name[256];

	if (gethostname(name, sizeof(name) - 1) < 0 || name[0] == '\0')
		return q_strdup("localhost");
	name[sizeof(name) - 1] = '\0';
	return q_strdup(name);
}

static void qs_apply_settings(struct qs *qs)
{
	qs->timing.retry_min_ms = qs->set.retry_min;
	qs->timing.retry_max_ms = qs->set.retry_max;
	qs->timing.delay_warning_ms = qs->set.delay_warning;
	qs->timing.max_lifetime_ms = qs->set.max_lifetime;
	free(qs->hostname);
	qs->hostname = qs->set.hostname != NULL ? q_strdup(qs->set.hostname) : system_hostname();
}

static int qs_init(struct postern_mod *mod, const struct postern_cfg *cfg, const char **error_r)
{
	struct qs *qs = q_calloc(1, sizeof(*qs));

	qs->mod = mod;
	qs->lock_fd = qs->queue_dfd = qs->incoming_dfd = -1;
	qlist_init(&qs->quarantine);
	qlist_init(&qs->receiving);
	qtable_init(&qs->table);
	sched_init(qs);
	if (qs_load_settings(mod, cfg, &qs->set, error_r) < 0)
		goto fail_unparsed; /* nothing of the settings to free */
	qs_apply_settings(qs);
	qs->dir = q_strdup(qs->set.queue_dir);
	receive_init_ops(qs);
	if (spool_open(qs, error_r) < 0 || recipient_init(qs, error_r) < 0 ||
	    events_declare(qs, error_r) < 0 || control_register(qs, error_r) < 0 ||
	    postern_service_register(mod, POSTERN_QUEUE_SERVICE, POSTERN_QUEUE_VERSION, &qs->ops,
				     error_r) < 0)
		goto fail;
	postern_mod_set_data(mod, qs);
	return 0;
fail:
	/* *error_r may point into a per-thread buffer a later call reuses:
	 * nothing below formats an error. */
	qs_free(qs);
	return -1;
fail_unparsed:
	qtable_free(&qs->table);
	sched_deinit(qs);
	free(qs);
	return -1;
}

static unsigned local_domain_count(const struct qs *qs)
{
	unsigned count = 0;

	while (qs->set.local_domains[count] != NULL)
		count++;
	return count;
}

static int qs_start(struct postern_mod *mod, const char **error_r)
{
	struct qs *qs = postern_mod_data(mod);

	qs->dirsync = mailstore_dirsync_new();
	if (qs->dirsync == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	if (qsyncer_create(qs, error_r) < 0 ||
	    qpool_create(mod, (unsigned)qs->set.delivery_threads, "delivery", &qs->delivery_pool,
			 error_r) < 0)
		return -1;
	qs->started = true;
	if (spool_load(qs, error_r) < 0)
		return -1;
	sched_start(qs);
	postern_log(mod, POSTERN_LOG_INFO,
		    "queue %s: %u messages, %u local domains; retries %llus..%llus, "
		    "delay notice after %llus, lifetime %llus",
		    qs->dir, qs->table.count, local_domain_count(qs),
		    (unsigned long long)qs->set.retry_min / 1000,
		    (unsigned long long)qs->set.retry_max / 1000,
		    (unsigned long long)qs->set.delay_warning / 1000,
		    (unsigned long long)qs->set.max_lifetime / 1000);
	return 0;
}

static void qs_stop(struct postern_mod *mod)
{
	struct qs *qs = postern_mod_data(mod);
	unsigned count;
	struct qmsg **all;

	qs->stopping = true;
	postern_timer_stop(qs->timer);
	/* The transport's provider is still there now (it stopped first, its
	 * deinit comes later): hand back what it holds. */
	all = qtable_sorted(&qs->table, &count);
	for (unsigned i = 0; i < count; i++) {
		/* Cancelling may end and remove this message, no other. */
		if (all[i]->attempt != NULL)
			attempt_cancel_remote(all[i]->attempt);
	}
	free(all);
}

static void qs_deinit(struct postern_mod *mod)
{
	struct qs *qs = postern_mod_data(mod);

	if (qs == NULL)
		return;
	qs->stopping = true;
	/* Local deliveries under way finish and are recorded; then every
	 * pending commit and state write is made durable. */
	qpool_free(&qs->delivery_pool);
	mailstore_dirsync_free(qs->dirsync);
	qs->dirsync = NULL;
	qsyncer_free(qs);
	receive_free_all(qs);
	qs_free(qs);
	postern_mod_set_data(mod, NULL);
}

/* What a reload leaves alone: the queue's place and the threads and user
 * database opened at start. */
static const char *const qs_restart_only[] = {
	"queue_dir", "passwd_file", "passwd_file_check_interval", "delivery_threads",
	"sync_threads", NULL,
};

/* Domains, mailbox defaults, limits, schedule and notices apply at once:
 * to recipients accepted from now on (a queued recipient stays local or
 * remote as it was accepted) and to every retry computed from now on. */
static int qs_reload(struct postern_mod *mod, const struct postern_cfg *cfg,
		     const char **error_r)
{
	struct qs *qs = postern_mod_data(mod);
	struct qs_settings next;

	if (qs_load_settings(mod, cfg, &next, error_r) < 0)
		return -1;
	(void)postern_cfg_keep_running(mod, qs_setting_defs, qs_restart_only, &next, &qs->set);
	postern_cfg_free(qs_setting_defs, &qs->set);
	qs->set = next;
	qs_apply_settings(qs);
	sched_settings_changed(qs);
	return 0;
}

POSTERN_MODULE_DEFINE(
	.name = "queue-store",
	.version = "1.0",
	.check_config = qs_check_config,
	.init = qs_init,
	.start = qs_start,
	.reload = qs_reload,
	.stop = qs_stop,
	.deinit = qs_deinit,
);
