/*
 * pop3be's settings: the table every key and default comes from (README.md
 * and postern-pop3be.8 list the same), the `listeners` groups, and the
 * trusted_proxies address list.
 *
 *   pop3be = {
 *     listeners = (
 *       { address = "127.0.0.1:2110"; plaintext_auth = true; },
 *       { address = "*:995"; implicit_tls = true; }
 *     );
 *     passwd_file = "/etc/postern/users";
 *     cert_file = "..."; key_file = "...";
 *   };
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

#define S(field) offsetof(struct pop3_settings, field)

const struct postern_setting_def pop3_setting_defs[] = {
	{ "listeners", POSTERN_SET_NODE, S(listeners), NULL,
	  "list of listener groups: address, implicit_tls, plaintext_auth, max_connections, "
	  "max_per_ip (restart to change)", 0, 0 },
	{ "cert_file", POSTERN_SET_PATH, S(cert_file), NULL,
	  "TLS certificate chain (PEM) for STLS and implicit-TLS listeners", 0, 0 },
	{ "key_file", POSTERN_SET_PATH, S(key_file), NULL, "TLS private key (PEM)", 0, 0 },
	{ "tls_min_protocol", POSTERN_SET_STRING, S(tls_min_protocol), "\"TLSv1.2\"",
	  "oldest TLS version accepted: TLSv1.2 or TLSv1.3", 0, 0 },
	{ "greeting", POSTERN_SET_STRING, S(greeting), "\"Postern POP3 server ready\"",
	  "text of the +OK greeting", 0, 0 },
	{ "max_line", POSTERN_SET_SIZE, S(max_line), "4096",
	  "longest command line (AUTH responses included), without CRLF", 64, 65536 },
	{ "auth_timeout", POSTERN_SET_DURATION, S(auth_timeout_ms), "60s",
	  "idle time allowed in the AUTHORIZATION state", 1000, 3600000 },
	{ "idle_timeout", POSTERN_SET_DURATION, S(idle_timeout_ms), "10m",
	  "idle time allowed in the TRANSACTION state (RFC 1939: at least 10 minutes)", 1000,
	  86400000 },
	{ "max_auth_attempts", POSTERN_SET_UINT, S(max_auth_attempts), "3",
	  "failed logins per connection before it is closed", 1, 100 },
	{ "max_bad_commands", POSTERN_SET_UINT, S(max_bad_commands), "20",
	  "unknown, malformed or misplaced commands per connection before it is closed", 1,
	  10000 },
	{ "trusted_proxies", POSTERN_SET_STRLIST, S(trusted_proxies), "()",
	  "front-ends (CIDR list) allowed to send XCLIENT", 0, 0 },
	{ "xclient_max_hops", POSTERN_SET_UINT, S(xclient_max_hops), "5",
	  "XCLIENT with a larger HOP is refused (proxy loops)", 1, 100 },
	POSTERN_AUTH_SETTING_DEFS(struct pop3_settings, auth),
	{ "mail_root", POSTERN_SET_PATH, S(mail_root), NULL,
	  "users without a mail location get MAIL_ROOT/DOMAIN/LOCALPART/Maildir", 0, 0 },
	{ "mailbox_threads", POSTERN_SET_UINT, S(mailbox_threads), "2",
	  "worker threads opening mailboxes and applying QUIT", 1, 64 },
	{ "lock_timeout", POSTERN_SET_DURATION, S(lock_timeout_ms), "30s",
	  "wait this long for the uid list lock, then answer [SYS/TEMP]", 1000, 3600000 },
	{ "lock_stale", POSTERN_SET_DURATION, S(lock_stale_ms), "120s",
	  "a uid list lock file older than this was left by a crash", 1000, 86400000 },
	{ "fsync", POSTERN_SET_BOOL, S(fsync), "true",
	  "fsync the uid list and directories (false only for tests)", 0, 0 },
	{ "flag_updates", POSTERN_SET_BOOL, S(flag_updates), "true",
	  "move new mail to cur/ at login and mark retrieved messages \\Seen at QUIT", 0, 0 },
	POSTERN_SETTING_END
};

#define L(field) offsetof(struct pop3_listener_settings, field)

static const struct postern_setting_def listener_defs[] = {
	{ "address", POSTERN_SET_STRING, L(address), NULL,
	  "\"127.0.0.1:2110\", \"[::1]:110\", \"*:995\"", 0, 0 },
	{ "implicit_tls", POSTERN_SET_BOOL, L(implicit_tls), "false",
	  "TLS from the first byte (port 995)", 0, 0 },
	{ "plaintext_auth", POSTERN_SET_BOOL, L(plaintext_auth), "false",
	  "allow USER/PASS and AUTH PLAIN before STLS", 0, 0 },
	{ "max_connections", POSTERN_SET_UINT, L(max_connections), "0",
	  "connections on this listener (0: no limit of its own)", 0, 1000000 },
	{ "max_per_ip", POSTERN_SET_UINT, L(max_per_ip), "0",
	  "connections per client address (0: no limit)", 0, 1000000 },
	POSTERN_SETTING_END
};

static void free_listeners(struct pop3_config *config)
{
	for (unsigned i = 0; i < config->listener_count; i++)
		postern_cfg_free(listener_defs, &config->listeners[i]);
	free(config->listeners);
	config->listeners = NULL;
	config->listener_count = 0;
}

static int parse_listeners(struct postern_mod *mod, struct pop3_config *config,
			   const char **error_r)
{
	const struct postern_cfg *list = config->set.listeners;
	unsigned count = list == NULL ? 0 : postern_cfg_count(list);

	if (list != NULL && postern_cfg_is_group(list)) {
		*error_r = postern_cfg_error(mod, list, "listeners must be a list of groups: "
					     "( { address = \"...\"; } )");
		return -1;
	}
	config->listeners = calloc(count == 0 ? 1 : count, sizeof(*config->listeners));
	if (config->listeners == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	for (unsigned i = 0; i < count; i++) {
		const struct postern_cfg *node = postern_cfg_elem(list, i);
		struct pop3_listener_settings *l = &config->listeners[i];

		if (!postern_cfg_is_group(node)) {
			*error_r = postern_cfg_error(mod, node, "listeners[%u] must be a group", i);
			return -1;
		}
		if (postern_cfg_parse(mod, node, listener_defs, l, error_r) < 0)
			return -1;
		config->listener_count++;
		if (l->address == NULL) {
			*error_r = postern_cfg_error(mod, node, "listeners[%u] needs an address", i);
			return -1;
		}
		if (l->implicit_tls && config->set.cert_file == NULL) {
			*error_r = postern_cfg_error(mod, node, "listener %s has implicit_tls but "
						     "cert_file is not set", l->address);
			return -1;
		}
	}
	return 0;
}

static int parse_trusted(struct postern_mod *mod, const struct postern_cfg *cfg,
			 struct pop3_config *config, const char **error_r)
{
	unsigned count = 0;

	for (char **p = config->set.trusted_proxies; p != NULL && *p != NULL; p++)
		count++;
	config->trusted = calloc(count == 0 ? 1 : count, sizeof(*config->trusted));
	if (config->trusted == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	for (unsigned i = 0; i < count; i++) {
		const char *why;

		if (postern_cidr_parse(config->set.trusted_proxies[i], &config->trusted[i],
				       &why) < 0) {
			*error_r = postern_cfg_error(mod, postern_cfg_lookup(cfg, "trusted_proxies"),
						     "trusted_proxies: bad address or CIDR '%s': %s",
						     config->set.trusted_proxies[i], why);
			return -1;
		}
	}
	config->trusted_count = count;
	return 0;
}

int pop3_config_parse(struct postern_mod *mod, const struct postern_cfg *cfg,
		      struct pop3_config *config_r, const char **error_r)
{
	memset(config_r, 0, sizeof(*config_r));
	if (postern_cfg_parse(mod, cfg, pop3_setting_defs, &config_r->set, error_r) < 0)
		return -1;
	if (config_r->set.auth.passwd_file == NULL) {
		*error_r = postern_cfg_error(mod, NULL, "pop3be: passwd_file is required");
		goto fail;
	}
	if ((config_r->set.cert_file == NULL) != (config_r->set.key_file == NULL)) {
		*error_r = postern_cfg_error(mod, NULL,
					     "pop3be: cert_file and key_file go together");
		goto fail;
	}
	if (postern_auth_config_check(&config_r->set.auth, error_r) < 0) {
		*error_r = postern_cfg_error(mod, postern_cfg_lookup(cfg, "auth_failure_delay_max"),
					     "%s", *error_r);
		goto fail;
	}
	if (parse_listeners(mod, config_r, error_r) < 0 ||
	    parse_trusted(mod, cfg, config_r, error_r) < 0)
		goto fail;
	/* the node is borrowed: valid only during this hook */
	config_r->set.listeners = NULL;
	return 0;
fail:
	pop3_config_free(config_r);
	return -1;
}

void pop3_config_free(struct pop3_config *config)
{
	free_listeners(config);
	free(config->trusted);
	config->trusted = NULL;
	config->trusted_count = 0;
	postern_cfg_free(pop3_setting_defs, &config->set);
}
