/*
 * One proxy per front-end module: its settings, the user database and the
 * asynchronous password checker, the back-end directory, the TLS contexts,
 * the listeners and the list of live sessions. The module's hooks call
 * postern_proxy_check_config/new/start/stop/free and nothing else
 * (reload is reload.c's).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "proxy_private.h"

int postern_proxy_check_config(struct postern_mod *mod, const struct postern_cfg *cfg,
			       const char **error_r)
{
	struct proxy_settings set;

	if (proxy_settings_parse(mod, cfg, &set, error_r) < 0)
		return -1;
	proxy_settings_free(&set);
	return 0;
}

static void proxy_auth_log(void *ctx, enum postern_auth_log_level level, const char *msg)
{
	struct postern_proxy *proxy = ctx;
	enum postern_log_level to = POSTERN_LOG_DEBUG;

	switch (level) {
	case POSTERN_AUTH_LOG_DEBUG:
		break;
	case POSTERN_AUTH_LOG_INFO:
		to = POSTERN_LOG_INFO;
		break;
	case POSTERN_AUTH_LOG_WARNING:
		to = POSTERN_LOG_WARNING;
		break;
	case POSTERN_AUTH_LOG_ERROR:
		to = POSTERN_LOG_ERROR;
		break;
	}
	postern_log(proxy->mod, to, "%s", msg);
}

static void proxy_auth_io(struct postern_io *io, int fd, unsigned events, void *ctx)
{
	struct postern_proxy *proxy = ctx;

	(void)postern_auth_pool_collect(proxy->auth_pool, proxy_auth_collected);
}

static int proxy_auth_open(struct postern_proxy *proxy, const char **error_r)
{
	const struct proxy_settings *set = &proxy->set;
	struct postern_passwd_file_settings pset = POSTERN_PASSWD_FILE_SETTINGS_INIT;
	struct postern_auth_failures_settings fset = POSTERN_AUTH_FAILURES_SETTINGS_INIT;
	struct postern_auth_pool_settings aset = POSTERN_AUTH_POOL_SETTINGS_INIT;
	const char *error;

	postern_auth_config_passwd_file(&set->auth, &pset);
	pset.log = proxy_auth_log;
	pset.log_ctx = proxy;
	if (postern_passwd_file_open(&pset, &proxy->userdb, &error) < 0) {
		*error_r = postern_cfg_error(proxy->mod, NULL, "passwd_file: %s", error);
		return -1;
	}
	postern_auth_config_failures(&set->auth, &fset);
	if (postern_auth_failures_create(&fset, &proxy->failures, &error) < 0) {
		*error_r = postern_cfg_error(proxy->mod, NULL, "auth failure tracker: %s", error);
		return -1;
	}
	postern_auth_config_pool(&set->auth, &aset);
	aset.failures = proxy->failures;
	aset.log = proxy_auth_log;
	aset.log_ctx = proxy;
	if (postern_auth_pool_create(proxy->userdb, &aset, &proxy->auth_pool, &error) < 0) {
		*error_r = postern_cfg_error(proxy->mod, NULL, "auth pool: %s", error);
		return -1;
	}
	proxy->auth_io = postern_io_add(proxy->mod, postern_auth_pool_fd(proxy->auth_pool),
					POSTERN_IO_READ, proxy_auth_io, proxy, error_r);
	return proxy->auth_io == NULL ? -1 : 0;
}

static int proxy_tls_open(struct postern_proxy *proxy, const char **error_r)
{
	const struct proxy_settings *set = &proxy->set;

	if (set->cert_file != NULL) {
		struct postern_tls_settings tls = POSTERN_TLS_SETTINGS_INIT;

		tls.cert_file = set->cert_file;
		tls.key_file = set->key_file;
		proxy->server_tls = postern_tls_server_new(proxy->mod, &tls, error_r);
		if (proxy->server_tls == NULL)
			return -1;
	}
	return proxy_backend_tls_open(proxy, proxy->dir, set, &proxy->backend_tls, error_r);
}

static int proxy_listen_all(struct postern_proxy *proxy, char **addresses, bool tls,
			    const char **error_r)
{
	for (char **address = addresses; *address != NULL; address++) {
		struct postern_listen_settings listen = POSTERN_LISTEN_SETTINGS_INIT;

		listen.address = *address;
		listen.tls = tls ? proxy->server_tls : NULL;
		listen.max_connections = (unsigned)proxy->set.max_connections;
		listen.max_per_ip = (unsigned)proxy->set.max_per_ip;
		listen.limit_reply = proxy->protocol->limit_reply;
		listen.max_line = proxy->protocol->max_line;
		listen.idle_timeout_ms = proxy->set.login_idle_timeout;
		if (postern_listen(proxy->mod, &listen, proxy_client_event, proxy, error_r) == NULL)
			return -1;
	}
	return 0;
}

int proxy_directory_build(struct postern_proxy *proxy, const struct proxy_settings *set,
			  struct postern_directory **dir_r, char ***sni_r, const char **error_r)
{
	struct postern_directory_settings dset = POSTERN_DIRECTORY_SETTINGS_INIT;
	const char *error;

	*sni_r = NULL;
	dset.vnodes = (unsigned)set->hash_vnodes;
	dset.default_pool = set->default_pool;
	if (postern_directory_new(&dset, dir_r, &error) < 0) {
		*error_r = postern_cfg_error(proxy->mod, NULL, "directory: %s", error);
		return -1;
	}
	if (proxy_backends_parse(proxy->mod, set, *dir_r, sni_r, error_r) < 0) {
		proxy_directory_free(dir_r, sni_r);
		return -1;
	}
	return 0;
}

void proxy_directory_free(struct postern_directory **dir, char ***sni)
{
	if (*sni != NULL) {
		for (unsigned i = 0; *dir != NULL && i < postern_directory_count(*dir); i++)
			free((*sni)[i]);
		free(*sni);
		*sni = NULL;
	}
	postern_directory_free(dir);
}

int proxy_backend_tls_open(struct postern_proxy *proxy, struct postern_directory *dir,
			   const struct proxy_settings *set, struct postern_tls **tls_r,
			   const char **error_r)
{
	struct postern_tls_settings tls = POSTERN_TLS_SETTINGS_INIT;
	bool any_tls = false;

	*tls_r = NULL;
	for (unsigned i = 0; i < postern_directory_count(dir); i++)
		any_tls = any_tls || postern_backend_tls(postern_directory_backend(dir, i));
	if (!any_tls)
		return 0;
	tls.ca_file = set->backend_tls_ca_file;
	tls.verify_peer = set->backend_tls_verify;
	*tls_r = postern_tls_client_new(proxy->mod, &tls, error_r);
	return *tls_r == NULL ? -1 : 0;
}

void proxy_settings_apply(struct postern_proxy *proxy)
{
	proxy->trusted_count = 0;
	for (char **net = proxy->set.trusted_networks; *net != NULL; net++) {
		const char *error;

		/* Checked by proxy_settings_parse(). */
		(void)postern_cidr_parse(*net, &proxy->trusted[proxy->trusted_count++], &error);
	}
	proxy->login_plain = strcmp(proxy->set.backend_login, "plain") == 0;
}

static bool proxy_protocol_valid(const struct postern_proxy_protocol *p)
{
	return p != NULL && p->struct_size >= sizeof(*p) && p->name != NULL &&
	       p->client_greet != NULL && p->client_line != NULL &&
	       p->client_line_too_long != NULL && p->client_reply != NULL &&
	       p->backend_greeting_ok != NULL && p->backend_line != NULL;
}

int postern_proxy_new(struct postern_mod *mod, const struct postern_cfg *cfg,
		      const struct postern_proxy_protocol *protocol,
		      struct postern_proxy **proxy_r, const char **error_r)
{
	struct postern_proxy *proxy;

	if (!proxy_protocol_valid(protocol)) {
		*error_r = "proxy: incomplete protocol descriptor";
		return -1;
	}
	proxy = calloc(1, sizeof(*proxy));
	if (proxy == NULL)
		abort();
	proxy->mod = mod;
	proxy->protocol = protocol;
	if (proxy_settings_parse(mod, cfg, &proxy->set, error_r) < 0) {
		free(proxy);
		return -1;
	}
	proxy_settings_apply(proxy);
	if (proxy_directory_build(proxy, &proxy->set, &proxy->dir, &proxy->backend_sni,
				  error_r) < 0 ||
	    proxy_tls_open(proxy, error_r) < 0 ||
	    proxy_auth_open(proxy, error_r) < 0 || proxy_health_init(proxy, error_r) < 0 ||
	    postern_bus_declare(mod, POSTERN_TOPIC_BACKEND_DOWN, POSTERN_EV_BACKEND_TYPE,
				error_r) < 0 ||
	    postern_bus_declare(mod, POSTERN_TOPIC_BACKEND_UP, POSTERN_EV_BACKEND_TYPE,
				error_r) < 0 ||
	    proxy_listen_all(proxy, proxy->set.listen, false, error_r) < 0 ||
	    proxy_listen_all(proxy, proxy->set.tls_listen, true, error_r) < 0 ||
	    proxy_control_register(proxy, error_r) < 0) {
		/* The core releases listeners, watchers and declarations. */
		postern_proxy_free(&proxy);
		return -1;
	}
	*proxy_r = proxy;
	return 0;
}

int postern_proxy_start(struct postern_proxy *proxy, const char **error_r)
{
	proxy->started = true;
	proxy_health_start(proxy);
	return 0;
}

void postern_proxy_stop(struct postern_proxy *proxy)
{
	struct postern_proxy_session *session, *next;

	proxy_health_free(proxy);
	for (session = proxy->sessions; session != NULL; session = next) {
		next = session->next;
		if (session->client == NULL || session->phase == PROXY_PHASE_RELAY ||
		    session->phase == PROXY_PHASE_CLOSING)
			continue;
		proxy_session_fail(session, POSTERN_PROXY_REPLY_SHUTDOWN, "server shutting down",
				   "shutdown");
	}
}

void postern_proxy_free(struct postern_proxy **proxyp)
{
	struct postern_proxy *proxy = *proxyp;

	if (proxy == NULL)
		return;
	*proxyp = NULL;
	proxy_control_unregister(proxy);
	proxy_health_free(proxy);
	/* Connections still open are freed by the core after deinit,
	 * without CLOSED: free their sessions here. */
	proxy_session_free_all(proxy);
	postern_timer_remove(&proxy->watchdog);
	postern_io_remove(&proxy->auth_io);
	postern_auth_pool_free(&proxy->auth_pool);
	postern_auth_failures_free(&proxy->failures);
	postern_userdb_free(&proxy->userdb);
	proxy_directory_free(&proxy->dir, &proxy->backend_sni);
	proxy_retired_free_all(proxy);
	postern_tls_unref(&proxy->server_tls);
	postern_tls_unref(&proxy->backend_tls);
	proxy_settings_free(&proxy->set);
	free(proxy);
}

struct postern_directory *postern_proxy_directory(struct postern_proxy *proxy)
{
	return proxy->dir;
}

unsigned postern_proxy_session_count(const struct postern_proxy *proxy)
{
	return proxy->session_count;
}
