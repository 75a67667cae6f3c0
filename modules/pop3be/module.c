/*
 * pop3be's module descriptor and hooks: settings, TLS, the user database
 * and its verifier pool, the mailbox workers, the listeners, and the
 * `pop3be` control command (sessions, stats).
 *
 * init runs as root: the listeners are bound and the passwd-file read
 * there. Threads (auth pool, mailbox workers) are started in start, after
 * the daemon dropped its privileges, so that they never run as root.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <postern/auth.h>

#include "server.h"

void *pop3_zalloc(size_t size)
{
	void *p = calloc(1, size);

	if (p == NULL)
		abort();
	return p;
}

char *pop3_strdup(const char *text)
{
	char *p = strdup(text);

	if (p == NULL)
		abort();
	return p;
}

static void auth_log(void *ctx, enum postern_auth_log_level level, const char *msg)
{
	struct pop3be *be = ctx;
	static const enum postern_log_level map[] = {
		[POSTERN_AUTH_LOG_DEBUG] = POSTERN_LOG_DEBUG,
		[POSTERN_AUTH_LOG_INFO] = POSTERN_LOG_INFO,
		[POSTERN_AUTH_LOG_WARNING] = POSTERN_LOG_WARNING,
		[POSTERN_AUTH_LOG_ERROR] = POSTERN_LOG_ERROR,
	};

	postern_log(be->mod, level <= POSTERN_AUTH_LOG_ERROR ? map[level] : POSTERN_LOG_ERROR,
		    "%s", msg);
}

/* Mailstore lines, queued by the workers and written here on the loop. */
static void workers_log(void *ctx, int level, const char *msg)
{
	struct pop3be *be = ctx;
	static const enum postern_log_level map[] = {
		POSTERN_LOG_DEBUG, POSTERN_LOG_INFO, POSTERN_LOG_WARNING, POSTERN_LOG_ERROR,
	};

	postern_log(be->mod, level >= 0 && level <= 3 ? map[level] : POSTERN_LOG_ERROR,
		    "mailstore: %s", msg);
}

/* ---- control: `posternctl pop3be sessions|stats` -------------------------------- */

static void sessions_text(struct pop3be *be, struct postern_str *out)
{
	uint64_t now = postern_now_ms();

	postern_str_printf(out, "%-6s %-14s %-24s %-32s %8s %8s %8s\n", "conn", "state", "rip",
			   "user", "msgs", "retr", "age");
	for (struct pop3_session *s = be->sessions; s != NULL; s = s->next) {
		postern_str_printf(out, "c%-5llu %-14s %-24s %-32s %8u %8llu %7llus\n",
				   (unsigned long long)postern_conn_id(s->conn),
				   pop3_state_name(s->state), s->rip,
				   s->login_user != NULL ? s->login_user : "-",
				   s->drop != NULL ? s->drop->count : 0,
				   (unsigned long long)s->retrieved,
				   (unsigned long long)((now - s->started_ms) / 1000));
	}
}

static void sessions_json(struct pop3be *be, struct postern_str *out)
{
	struct postern_json *json = postern_json_new(out);

	postern_json_array_begin(json);
	for (struct pop3_session *s = be->sessions; s != NULL; s = s->next) {
		postern_json_object_begin(json);
		postern_json_key(json, "conn");
		postern_json_uint(json, postern_conn_id(s->conn));
		postern_json_key(json, "state");
		postern_json_string(json, pop3_state_name(s->state));
		postern_json_key(json, "rip");
		postern_json_string(json, s->rip);
		postern_json_key(json, "xclient");
		postern_json_bool(json, s->xclient_done);
		postern_json_key(json, "user");
		if (s->login_user != NULL)
			postern_json_string(json, s->login_user);
		else
			postern_json_null(json);
		postern_json_key(json, "messages");
		postern_json_uint(json, s->drop != NULL ? s->drop->count : 0);
		postern_json_key(json, "deleted");
		postern_json_uint(json, s->deleted_count);
		postern_json_key(json, "retrieved");
		postern_json_uint(json, s->retrieved);
		postern_json_key(json, "tls");
		postern_json_bool(json, postern_conn_is_tls(s->conn));
		postern_json_object_end(json);
	}
	postern_json_array_end(json);
	postern_json_free(&json);
}

static void stats_out(struct pop3be *be, struct postern_str *out, bool as_json)
{
	const struct pop3_stats *st = &be->stats;

	if (!as_json) {
		postern_str_printf(out,
				   "sessions %u\nconnections %llu\nlogins %llu\nlogin_failures %llu\n"
				   "retrieved %llu\nretrieved_octets %llu\ndeleted %llu\n"
				   "mailbox_jobs %u\n",
				   be->session_count, (unsigned long long)st->connections,
				   (unsigned long long)st->logins,
				   (unsigned long long)st->login_failures,
				   (unsigned long long)st->retrieved,
				   (unsigned long long)st->retrieved_octets,
				   (unsigned long long)st->deleted,
				   be->workers != NULL ? pop3_workers_pending(be->workers) : 0);
		return;
	}

	struct postern_json *json = postern_json_new(out);

	postern_json_object_begin(json);
#define FIELD(name, value) postern_json_key(json, name); postern_json_uint(json, value)
	FIELD("sessions", be->session_count);
	FIELD("connections", st->connections);
	FIELD("logins", st->logins);
	FIELD("login_failures", st->login_failures);
	FIELD("retrieved", st->retrieved);
	FIELD("retrieved_octets", st->retrieved_octets);
	FIELD("deleted", st->deleted);
	FIELD("mailbox_jobs", be->workers != NULL ? pop3_workers_pending(be->workers) : 0);
#undef FIELD
	postern_json_object_end(json);
	postern_json_free(&json);
}

static int control_cb(struct postern_control_req *req, int argc, const char *const *argv,
		      void *ctx)
{
	struct pop3be *be = ctx;
	bool json = postern_control_json(req);

	if (argc == 2 && strcmp(argv[1], "sessions") == 0) {
		if (json)
			sessions_json(be, postern_control_output(req));
		else
			sessions_text(be, postern_control_output(req));
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "stats") == 0) {
		stats_out(be, postern_control_output(req), json);
		return 0;
	}
	return postern_control_fail(req, "usage: pop3be sessions | pop3be stats");
}

/* ---- hooks ------------------------------------------------------------------------ */

static int pop3be_check_config(struct postern_mod *mod, const struct postern_cfg *cfg,
			       const char **error_r)
{
	struct pop3_config config;

	if (pop3_config_parse(mod, cfg, &config, error_r) < 0)
		return -1;
	pop3_config_free(&config);
	return 0;
}

static void pop3be_free(struct pop3be *be)
{
	/* sessions still open at unload get no CLOSED: end them here, which
	 * hands their mailboxes to the workers to close */
	while (be->sessions != NULL)
		pop3_session_free(be->sessions);
	postern_io_remove(&be->workers_io);
	pop3_workers_free(&be->workers);
	postern_io_remove(&be->auth_io);
	postern_auth_pool_free(&be->auth_pool);
	postern_auth_failures_free(&be->failures);
	postern_userdb_free(&be->userdb);
	postern_tls_unref(&be->tls);
	pop3_config_free(&be->config);
	free(be->listeners);
	free(be->read_buf);
	free(be->send_buf);
	free(be->line_buf);
	free(be);
}

static int open_userdb(struct pop3be *be, const char **error_r)
{
	const struct pop3_settings *set = &be->config.set;
	struct postern_passwd_file_settings pf = POSTERN_PASSWD_FILE_SETTINGS_INIT;
	struct postern_auth_failures_settings fs = POSTERN_AUTH_FAILURES_SETTINGS_INIT;

	postern_auth_config_passwd_file(&set->auth, &pf);
	pf.log = auth_log;
	pf.log_ctx = be;
	if (postern_passwd_file_open(&pf, &be->userdb, error_r) < 0)
		return -1;
	postern_auth_config_failures(&set->auth, &fs);
	return postern_auth_failures_create(&fs, &be->failures, error_r);
}

static int open_listeners(struct pop3be *be, const char **error_r)
{
	const struct pop3_config *config = &be->config;

	be->listeners = pop3_zalloc((config->listener_count + 1) * sizeof(*be->listeners));
	for (unsigned i = 0; i < config->listener_count; i++) {
		const struct pop3_listener_settings *ls = &config->listeners[i];
		struct postern_listen_settings listen = POSTERN_LISTEN_SETTINGS_INIT;
		struct pop3_listener *l = &be->listeners[i];

		l->be = be;
		l->implicit_tls = ls->implicit_tls;
		l->plaintext_auth = ls->plaintext_auth;
		listen.address = ls->address;
		listen.tls = ls->implicit_tls ? be->tls : NULL;
		listen.max_connections = (unsigned)ls->max_connections;
		listen.max_per_ip = (unsigned)ls->max_per_ip;
		listen.limit_reply = "-ERR [SYS/TEMP] Too many connections, try again later";
		listen.max_line = config->set.max_line;
		listen.idle_timeout_ms = config->set.auth_timeout_ms;
		if (postern_listen(be->mod, &listen, pop3_session_event, l, error_r) == NULL)
			return -1;
		be->listener_count++;
		postern_log(be->mod, POSTERN_LOG_DEBUG, "listener %s:%s%s", ls->address,
			    ls->implicit_tls ? " implicit TLS," : "",
			    ls->plaintext_auth ? " plaintext auth allowed" : " TLS required for login");
	}
	return 0;
}

static int pop3be_init(struct postern_mod *mod, const struct postern_cfg *cfg,
		       const char **error_r)
{
	struct pop3be *be = pop3_zalloc(sizeof(*be));

	be->mod = mod;
	if (pop3_config_parse(mod, cfg, &be->config, error_r) < 0) {
		free(be);
		return -1;
	}
	postern_mod_set_data(mod, be);

	const struct pop3_settings *set = &be->config.set;

	be->drop_set.lock_timeout_secs = (unsigned)((set->lock_timeout_ms + 999) / 1000);
	be->drop_set.lock_stale_secs = (unsigned)((set->lock_stale_ms + 999) / 1000);
	be->drop_set.no_fsync = !set->fsync;
	be->drop_set.flag_updates = set->flag_updates;
	be->drop_set.log = pop3_workers_log;
	be->read_buf = pop3_zalloc(POP3_READ_CHUNK);
	be->send_buf = pop3_zalloc(POP3_SEND_BUF);
	be->line_buf = pop3_zalloc(POP3_LINE_BUF);
	if (set->cert_file != NULL) {
		struct postern_tls_settings tls = POSTERN_TLS_SETTINGS_INIT;

		tls.cert_file = set->cert_file;
		tls.key_file = set->key_file;
		tls.min_protocol = set->tls_min_protocol;
		if ((be->tls = postern_tls_server_new(mod, &tls, error_r)) == NULL)
			goto fail;
	}
	if (open_userdb(be, error_r) < 0 || open_listeners(be, error_r) < 0 ||
	    postern_control_register(mod, "pop3be", "pop3be sessions\npop3be stats", control_cb,
				     be, error_r) < 0)
		goto fail;
	return 0;
fail:
	postern_mod_set_data(mod, NULL);
	pop3be_free(be);
	return -1;
}

static int pop3be_start(struct postern_mod *mod, const char **error_r)
{
	struct pop3be *be = postern_mod_data(mod);
	const struct pop3_settings *set = &be->config.set;
	struct postern_auth_pool_settings ps = POSTERN_AUTH_POOL_SETTINGS_INIT;
	char *error = NULL;
	static char error_buf[256];

	postern_auth_config_pool(&set->auth, &ps);
	ps.failures = be->failures;
	ps.log = auth_log;
	ps.log_ctx = be;
	if (postern_auth_pool_create(be->userdb, &ps, &be->auth_pool, error_r) < 0)
		return -1;
	be->auth_io = postern_io_add(mod, postern_auth_pool_fd(be->auth_pool), POSTERN_IO_READ,
				     pop3_auth_io, be, error_r);
	if (be->auth_io == NULL)
		return -1;
	if (pop3_workers_create((unsigned)set->mailbox_threads, workers_log, be, &be->workers,
				&error) < 0) {
		snprintf(error_buf, sizeof(error_buf), "mailbox workers: %s",
			 error != NULL ? error : "?");
		free(error);
		*error_r = error_buf;
		return -1;
	}
	/* the mailstore's log lines go through the workers' queue */
	be->drop_set.log_ctx = be->workers;
	be->workers_io = postern_io_add(mod, pop3_workers_fd(be->workers), POSTERN_IO_READ,
					pop3_workers_io, be, error_r);
	return be->workers_io == NULL ? -1 : 0;
}

/* Settings that apply to new commands at once; listeners, TLS, the user
 * database, the auth pool and the mailbox settings need a restart. */
/* What a reload leaves alone: what the listeners, the TLS context, the
 * user database, the failure tracker and the mailbox workers were built
 * with at start (the workers read their settings without a lock). */
static const char *const pop3be_restart_only[] = {
	"cert_file", "key_file", "tls_min_protocol", "max_line", "passwd_file", "passwd_file_*",
	"allow_plain_passwords", "auth_threads", "auth_max_pending", "auth_failure_*",
	"auth_block_time", "auth_ipv6_prefix", "mail_root", "mailbox_threads", "lock_timeout",
	"lock_stale", "fsync", "flag_updates", NULL,
};

static bool listeners_equal(const struct pop3_config *a, const struct pop3_config *b)
{
	if (a->listener_count != b->listener_count)
		return false;
	for (unsigned i = 0; i < a->listener_count; i++) {
		const struct pop3_listener_settings *x = &a->listeners[i], *y = &b->listeners[i];

		if (strcmp(x->address, y->address) != 0 || x->implicit_tls != y->implicit_tls ||
		    x->plaintext_auth != y->plaintext_auth ||
		    x->max_connections != y->max_connections || x->max_per_ip != y->max_per_ip)
			return false;
	}
	return true;
}

static int pop3be_reload(struct postern_mod *mod, const struct postern_cfg *cfg,
			 const char **error_r)
{
	struct pop3be *be = postern_mod_data(mod);
	struct pop3_config config;
	struct pop3_listener_settings *listeners;
	unsigned count;

	if (pop3_config_parse(mod, cfg, &config, error_r) < 0)
		return -1;
	(void)postern_cfg_keep_running(mod, pop3_setting_defs, pop3be_restart_only, &config.set,
				       &be->config.set);
	/* The listeners are bound: keep their settings too. */
	if (!listeners_equal(&config, &be->config))
		postern_log(mod, POSTERN_LOG_WARNING,
			    "reload: listeners changes only at restart; keeping the running value");
	listeners = config.listeners;
	count = config.listener_count;
	config.listeners = be->config.listeners;
	config.listener_count = be->config.listener_count;
	be->config.listeners = listeners;
	be->config.listener_count = count;
	pop3_config_free(&be->config);
	be->config = config;
	return 0;
}

static void pop3be_stop(struct postern_mod *mod)
{
	struct pop3be *be = postern_mod_data(mod);

	for (struct pop3_session *s = be->sessions; s != NULL; s = s->next)
		pop3_session_shutdown(s);
}

static void pop3be_deinit(struct postern_mod *mod)
{
	struct pop3be *be = postern_mod_data(mod);

	if (be != NULL)
		pop3be_free(be);
}

POSTERN_MODULE_DEFINE(
	.name = "pop3be",
	.version = "1.0",
	.check_config = pop3be_check_config,
	.init = pop3be_init,
	.start = pop3be_start,
	.reload = pop3be_reload,
	.stop = pop3be_stop,
	.deinit = pop3be_deinit,
);
