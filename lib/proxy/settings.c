/*
 * The proxy's settings: one table shared by every front-end module (their
 * configuration groups have the same keys), the list of back-ends (a list
 * of groups, each parsed with its own small table so errors carry file and
 * line), and the trusted networks allowed to send XCLIENT.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "proxy_private.h"

#define S(field) offsetof(struct proxy_settings, field)

const struct postern_setting_def proxy_setting_defs[] = {
	/* Listening */
	{ "listen", POSTERN_SET_STRLIST, S(listen), "()",
	  "plain listeners (STLS/STARTTLS when a certificate is set); restart to change", 0, 0 },
	{ "tls_listen", POSTERN_SET_STRLIST, S(tls_listen), "()",
	  "implicit-TLS listeners; restart to change", 0, 0 },
	{ "cert_file", POSTERN_SET_PATH, S(cert_file), NULL, "TLS certificate chain (PEM)", 0, 0 },
	{ "key_file", POSTERN_SET_PATH, S(key_file), NULL, "TLS private key (PEM)", 0, 0 },
	{ "max_connections", POSTERN_SET_UINT, S(max_connections), "0",
	  "client connections per listener; 0: no limit", 0, 0 },
	{ "max_per_ip", POSTERN_SET_UINT, S(max_per_ip), "0",
	  "client connections per IP per listener; 0: no limit", 0, 0 },
	/* Authentication */
	POSTERN_AUTH_SETTING_DEFS(struct proxy_settings, auth),
	{ "allow_plaintext_auth", POSTERN_SET_BOOL, S(allow_plaintext_auth), "false",
	  "accept passwords without TLS from non-loopback clients", 0, 0 },
	{ "max_bad_commands", POSTERN_SET_UINT, S(max_bad_commands), "10",
	  "bad commands before login that end the session", 1, 1000 },
	{ "max_auth_attempts", POSTERN_SET_UINT, S(max_auth_attempts), "3",
	  "failed logins per connection that end it", 1, 100 },
	/* Client leg */
	{ "login_idle_timeout", POSTERN_SET_DURATION, S(login_idle_timeout), "3m",
	  "a client idle this long before logging in is disconnected", 1000, 86400000 },
	{ "client_idle_timeout", POSTERN_SET_DURATION, S(client_idle_timeout), "10m",
	  "a logged-in session with no traffic this long is closed", 1000, 86400000 },
	/* Back-ends */
	{ "backends", POSTERN_SET_NODE, S(backends), NULL,
	  "list of back-end groups: name, address, port, tls, pool, max_sessions, tls_server_name",
	  0, 0 },
	{ "default_pool", POSTERN_SET_STRING, S(default_pool), "\"default\"",
	  "the pool of users without host=", 0, 0 },
	{ "hash_vnodes", POSTERN_SET_UINT, S(hash_vnodes), "160",
	  "points per back-end on the consistent-hash ring", 1, 1024 },
	{ "connect_timeout", POSTERN_SET_DURATION, S(connect_timeout), "5s",
	  "TCP connect (and TLS handshake) to a back-end", 10, 300000 },
	{ "login_timeout", POSTERN_SET_DURATION, S(login_timeout), "10s",
	  "greeting, XCLIENT and login on a back-end, from its connect", 10, 300000 },
	{ "backend_timeout", POSTERN_SET_DURATION, S(backend_timeout), "60s",
	  "after login: a back-end that leaves a command unanswered or a line unfinished this long is dropped",
	  100, 86400000 },
	{ "backend_max_sessions", POSTERN_SET_UINT, S(backend_max_sessions), "0",
	  "sessions per back-end (a back-end's own max_sessions wins); 0: no limit", 0, 10000000 },
	{ "max_attempts", POSTERN_SET_UINT, S(max_attempts), "0",
	  "back-ends tried per login; 0: every one in the user's list", 0, PROXY_MAX_ROUTE },
	{ "backend_keepalive_idle", POSTERN_SET_DURATION, S(backend_keepalive_idle), "60s",
	  "TCP keepalive on back-end connections: idle time before probes; 0: off", 0, 86400000 },
	{ "backend_keepalive_interval", POSTERN_SET_DURATION, S(backend_keepalive_interval), "10s",
	  "between keepalive probes", 1000, 3600000 },
	{ "backend_keepalive_count", POSTERN_SET_UINT, S(backend_keepalive_count), "3",
	  "unanswered probes before the connection is dropped", 1, 100 },
	{ "health_check_interval", POSTERN_SET_DURATION, S(health_check_interval), "5s",
	  "active check of every back-end (connect and greeting); 0: off", 0, 86400000 },
	{ "health_check_timeout", POSTERN_SET_DURATION, S(health_check_timeout), "3s",
	  "a health check without a good greeting by then fails", 10, 300000 },
	{ "trusted_networks", POSTERN_SET_STRLIST, S(trusted_networks), "()",
	  "front-ends allowed to send XCLIENT (CIDR, e.g. \"10.0.0.0/8\")", 0, 0 },
	{ "max_hops", POSTERN_SET_UINT, S(max_hops), "5",
	  "proxies a session may pass; more is a loop and refused", 1, 100 },
	{ "backend_xclient", POSTERN_SET_BOOL, S(backend_xclient), "true",
	  "tell back-ends the real client address with XCLIENT", 0, 0 },
	{ "backend_login", POSTERN_SET_STRING, S(backend_login), "\"user\"",
	  "how to log in on back-ends: \"user\" (USER/PASS, LOGIN) or \"plain\" (SASL PLAIN)", 0, 0 },
	{ "backend_tls_ca_file", POSTERN_SET_PATH, S(backend_tls_ca_file), NULL,
	  "CAs to verify tls back-ends with; unset: the system's", 0, 0 },
	{ "backend_tls_verify", POSTERN_SET_BOOL, S(backend_tls_verify), "true",
	  "refuse tls back-ends whose certificate does not verify", 0, 0 },
	{ "relay_buffer", POSTERN_SET_SIZE, S(relay_buffer), "256k",
	  "bytes buffered towards a slow peer before the other side is paused", 4096, 67108864 },
	POSTERN_SETTING_END,
};

#undef S
#define B(field) offsetof(struct proxy_backend_settings, field)

const struct postern_setting_def proxy_backend_setting_defs[] = {
	{ "name", POSTERN_SET_STRING, B(name), NULL, "unique name (logs, events, host=)", 0, 0 },
	{ "address", POSTERN_SET_STRING, B(address), NULL, "numeric IPv4 or IPv6 address", 0, 0 },
	{ "port", POSTERN_SET_UINT, B(port), NULL, "TCP port (required)", 1, 65535 },
	{ "tls", POSTERN_SET_BOOL, B(tls), "false", "TLS from the start", 0, 0 },
	{ "pool", POSTERN_SET_STRING, B(pool), "\"default\"", "the pool it belongs to", 0, 0 },
	{ "max_sessions", POSTERN_SET_UINT, B(max_sessions), "0",
	  "sessions at once; 0: backend_max_sessions", 0, 10000000 },
	{ "tls_server_name", POSTERN_SET_STRING, B(tls_server_name), NULL,
	  "name to verify the certificate against; unset: the address", 0, 0 },
	POSTERN_SETTING_END,
};

#undef B

bool proxy_ip_is_loopback(const char *ip)
{
	static struct postern_cidr loopback[2];
	static bool parsed;
	const char *error;

	if (!parsed) {
		/* Constants: they parse. */
		(void)postern_cidr_parse("127.0.0.0/8", &loopback[0], &error);
		(void)postern_cidr_parse("::1", &loopback[1], &error);
		parsed = true;
	}
	return postern_cidr_match(loopback, 2, ip);
}

static int proxy_settings_check(struct postern_mod *mod, const struct postern_cfg *cfg,
				const struct proxy_settings *set, const char **error_r)
{
	struct postern_cidr cidr;
	const char *error;
	unsigned count = 0;

	if (set->auth.passwd_file == NULL) {
		*error_r = postern_cfg_error(mod, cfg, "passwd_file is required");
		return -1;
	}
	if ((set->cert_file == NULL) != (set->key_file == NULL)) {
		*error_r = postern_cfg_error(mod, cfg, "cert_file and key_file go together");
		return -1;
	}
	if (set->tls_listen[0] != NULL && set->cert_file == NULL) {
		*error_r = postern_cfg_error(mod, postern_cfg_lookup(cfg, "tls_listen"),
					     "tls_listen needs cert_file and key_file");
		return -1;
	}
	if (strcmp(set->backend_login, "user") != 0 && strcmp(set->backend_login, "plain") != 0) {
		*error_r = postern_cfg_error(mod, postern_cfg_lookup(cfg, "backend_login"),
					     "backend_login is \"user\" or \"plain\"");
		return -1;
	}
	for (char **net = set->trusted_networks; *net != NULL; net++, count++) {
		if (count >= PROXY_TRUSTED_MAX) {
			*error_r = postern_cfg_error(mod, postern_cfg_lookup(cfg, "trusted_networks"),
						     "trusted_networks: at most %d networks",
						     PROXY_TRUSTED_MAX);
			return -1;
		}
		if (postern_cidr_parse(*net, &cidr, &error) < 0) {
			*error_r = postern_cfg_error(mod, postern_cfg_lookup(cfg, "trusted_networks"),
						     "trusted_networks: %s: %s", *net, error);
			return -1;
		}
	}
	if (postern_auth_config_check(&set->auth, &error) < 0) {
		*error_r = postern_cfg_error(mod, postern_cfg_lookup(cfg, "auth_failure_delay_max"),
					     "%s", error);
		return -1;
	}
	return 0;
}

int proxy_settings_parse(struct postern_mod *mod, const struct postern_cfg *cfg,
			 struct proxy_settings *set, const char **error_r)
{
	memset(set, 0, sizeof(*set));
	if (postern_cfg_parse(mod, cfg, proxy_setting_defs, set, error_r) < 0)
		return -1;
	if (proxy_settings_check(mod, cfg, set, error_r) < 0 ||
	    proxy_backends_parse(mod, set, NULL, NULL, error_r) < 0) {
		postern_cfg_free(proxy_setting_defs, set);
		return -1;
	}
	return 0;
}

void proxy_settings_free(struct proxy_settings *set)
{
	postern_cfg_free(proxy_setting_defs, set);
	memset(set, 0, sizeof(*set));
}

static int proxy_backend_add(struct postern_mod *mod, const struct proxy_settings *set,
			     const struct postern_cfg *node, struct postern_directory *dir,
			     char ***sni_r, const char **error_r)
{
	struct proxy_backend_settings bs;
	struct postern_backend_config cfg = POSTERN_BACKEND_CONFIG_INIT;
	const char *error;
	int ret = -1;

	if (postern_cfg_parse(mod, node, proxy_backend_setting_defs, &bs, error_r) < 0)
		return -1;
	if (bs.name == NULL || bs.address == NULL || bs.port == 0) {
		*error_r = postern_cfg_error(mod, node, "a back-end needs name, address and port");
		goto out;
	}
	cfg.name = bs.name;
	cfg.host = bs.address;
	cfg.port = (unsigned)bs.port;
	cfg.tls = bs.tls;
	cfg.pool = bs.pool;
	cfg.max_sessions = (unsigned)(bs.max_sessions != 0 ? bs.max_sessions :
							    set->backend_max_sessions);
	if (postern_directory_add(dir, &cfg, &error) < 0) {
		*error_r = postern_cfg_error(mod, node, "back-end %s: %s", bs.name, error);
		goto out;
	}
	if (sni_r != NULL) {
		unsigned n = postern_directory_count(dir);
		char **grown = realloc(*sni_r, n * sizeof(*grown));

		if (grown == NULL)
			abort();
		*sni_r = grown;
		grown[n - 1] = NULL;
		if (bs.tls_server_name != NULL) {
			grown[n - 1] = strdup(bs.tls_server_name);
			if (grown[n - 1] == NULL)
				abort();
		}
	}
	ret = 0;
out:
	postern_cfg_free(proxy_backend_setting_defs, &bs);
	return ret;
}

int proxy_backends_parse(struct postern_mod *mod, const struct proxy_settings *set,
			 struct postern_directory *dir, char ***sni_r, const char **error_r)
{
	struct postern_directory_settings dset = POSTERN_DIRECTORY_SETTINGS_INIT;
	struct postern_directory *scratch = NULL;
	const struct postern_cfg *list = set->backends;
	unsigned count = postern_cfg_count(list);
	const char *error;
	int ret = 0;

	if (list == NULL || count == 0) {
		*error_r = postern_cfg_error(mod, list, "backends: at least one back-end is needed");
		return -1;
	}
	if (postern_cfg_is_group(list)) {
		*error_r = postern_cfg_error(mod, list,
					     "backends is a list of groups: ( { name = ...; }, ... )");
		return -1;
	}
	if (dir == NULL) {
		dset.vnodes = (unsigned)set->hash_vnodes;
		dset.default_pool = set->default_pool;
		if (postern_directory_new(&dset, &scratch, &error) < 0) {
			*error_r = postern_cfg_error(mod, list, "%s", error);
			return -1;
		}
		dir = scratch;
	}
	for (unsigned i = 0; i < count && ret == 0; i++) {
		const struct postern_cfg *node = postern_cfg_elem(list, i);

		if (!postern_cfg_is_group(node)) {
			*error_r = postern_cfg_error(mod, node, "backends: each back-end is a group");
			ret = -1;
			break;
		}
		ret = proxy_backend_add(mod, set, node, dir, sni_r, error_r);
	}
	if (ret == 0 && !postern_directory_has_pool(dir, set->default_pool)) {
		*error_r = postern_cfg_error(mod, list, "default_pool \"%s\" has no back-ends",
					     set->default_pool);
		ret = -1;
	}
	postern_directory_free(&scratch);
	return ret;
}
