/*
 * The smtp module: inbound SMTP (RFC 5321) and submission (RFC 6409, with
 * STARTTLS or implicit TLS per RFC 8314) handing messages to the queue
 * service, and the outbound SMTP client offered to the queue as the
 * "transport.smtp" service. This file holds the module hooks, the settings
 * table, the listeners and the `smtp stats` control command; the protocol
 * lives in session*.c and client.c.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "smtp_private.h"

#define SET(name, type, field, def, help) \
	{ name, type, offsetof(struct smtp_settings, field), def, help, 0, 0 }
#define SET_RANGE(name, type, field, def, help, lo, hi) \
	{ name, type, offsetof(struct smtp_settings, field), def, help, lo, hi }

const struct postern_setting_def smtp_setting_defs[] = {
	SET("listen", POSTERN_SET_STRLIST, listen, "()",
	    "SMTP (MX) listeners: AUTH optional, relaying by relay_networks or AUTH"),
	SET("submission_listen", POSTERN_SET_STRLIST, submission_listen, "()",
	    "submission listeners (RFC 6409, STARTTLS): AUTH required"),
	SET("submission_tls_listen", POSTERN_SET_STRLIST, submission_tls_listen, "()",
	    "submission listeners with implicit TLS (RFC 8314): AUTH required"),
	SET("hostname", POSTERN_SET_STRING, hostname, NULL,
	    "our name in the greeting, EHLO and Received (default: the host name)"),
	SET("greeting", POSTERN_SET_STRING, greeting, NULL,
	    "text after the 220 code (default: \"HOSTNAME ESMTP Postern\")"),
	SET("cert_file", POSTERN_SET_PATH, cert_file, NULL,
	    "TLS certificate chain (PEM); without it no STARTTLS is offered"),
	SET("key_file", POSTERN_SET_PATH, key_file, NULL, "TLS private key (PEM)"),
	SET("tls_min_protocol", POSTERN_SET_STRING, tls_min_protocol, "\"TLSv1.2\"",
	    "oldest TLS version accepted: TLSv1.2 or TLSv1.3"),
	SET("max_connections", POSTERN_SET_UINT, max_connections, "500",
	    "connections per SMTP listener (0: no limit)"),
	SET("max_per_ip", POSTERN_SET_UINT, max_per_ip, "20",
	    "connections per client IP on an SMTP listener (0: no limit)"),
	SET("submission_max_connections", POSTERN_SET_UINT, submission_max_connections, "200",
	    "connections per submission listener (0: no limit)"),
	SET("submission_max_per_ip", POSTERN_SET_UINT, submission_max_per_ip, "20",
	    "connections per client IP on a submission listener (0: no limit)"),
	SET_RANGE("max_command_line", POSTERN_SET_SIZE, max_command_line, "512",
		  "longest command line in bytes, CR LF included (RFC 5321: 512)", 64, 65536),
	SET_RANGE("max_auth_line", POSTERN_SET_SIZE, max_auth_line, "12288",
		  "longest AUTH command or SASL response line (RFC 4954: 12288)", 512, 65536),
	SET_RANGE("max_text_line", POSTERN_SET_SIZE, max_text_line, "1000",
		  "longest text line in a message, CR LF included (RFC 5321: 1000)", 80,
		  1048576),
	SET_RANGE("max_recipients", POSTERN_SET_UINT, max_recipients, "1000",
		  "recipients per message; more get 452 4.5.3", 1, 100000),
	SET_RANGE("max_message_size", POSTERN_SET_SIZE, max_message_size, "25M",
		  "largest message, announced with SIZE; larger ones get 552 5.3.4", 1024,
		  (int64_t)1 << 40),
	SET_RANGE("max_errors", POSTERN_SET_UINT, max_errors, "20",
		  "protocol errors before the session is ended with 421", 1, 10000),
	SET_RANGE("max_hops", POSTERN_SET_UINT, max_hops, "50",
		  "Received headers a message may have; more is a mail loop (554 5.4.6)", 1,
		  1000),
	SET_RANGE("command_timeout", POSTERN_SET_DURATION, command_timeout, "5m",
		  "waiting for a command (RFC 5321 4.5.3.2.7: 5 minutes)", 1, -1),
	SET_RANGE("data_timeout", POSTERN_SET_DURATION, data_timeout, "3m",
		  "waiting for the next block of DATA or BDAT (RFC 5321: 3 minutes)", 1, -1),
	SET("relay_networks", POSTERN_SET_STRLIST, relay_networks, "()",
	    "client networks (CIDR) that may relay without AUTH; default none"),
	SET("smtp_auth", POSTERN_SET_BOOL, smtp_auth, "true",
	    "offer AUTH on SMTP listeners too (it is always offered on submission)"),
	SET("auth_without_tls", POSTERN_SET_BOOL, auth_without_tls, "false",
	    "offer AUTH on connections without TLS (tests only)"),
	SET("submission_add_headers", POSTERN_SET_BOOL, submission_add_headers, "true",
	    "submission adds a missing Date or Message-ID header (RFC 6409 8)"),
	/* passwd_file unset: no AUTH */
	POSTERN_AUTH_SETTING_DEFS(struct smtp_settings, auth),
	SET("relay_host", POSTERN_SET_STRING, relay_host, NULL,
	    "send all remote mail here: \"host\", \"host:port\" (MX lookup) or "
	    "\"[192.0.2.1]:25\" (no MX lookup)"),
	SET_RANGE("outbound_port", POSTERN_SET_UINT, outbound_port, "25",
		  "port of MX hosts", 1, 65535),
	SET("helo_name", POSTERN_SET_STRING, helo_name, NULL,
	    "name sent in EHLO (default: hostname)"),
	SET("outbound_starttls", POSTERN_SET_BOOL, outbound_starttls, "true",
	    "use STARTTLS when the remote server offers it"),
	SET("outbound_tls_verify", POSTERN_SET_BOOL, outbound_tls_verify, "false",
	    "verify the remote certificate (failure defers the mail)"),
	SET("outbound_tls_ca_file", POSTERN_SET_PATH, outbound_tls_ca_file, NULL,
	    "CAs to verify remote servers with (default: the system's)"),
	SET("outbound_connect_timeout", POSTERN_SET_DURATION, outbound_connect_timeout, "30s",
	    "TCP connect and TLS handshake"),
	SET("outbound_greeting_timeout", POSTERN_SET_DURATION, outbound_greeting_timeout, "5m",
	    "waiting for the 220 greeting (RFC 5321: 5 minutes)"),
	SET("outbound_command_timeout", POSTERN_SET_DURATION, outbound_command_timeout, "5m",
	    "waiting for the reply to EHLO, MAIL, RCPT, DATA (RFC 5321: 5 minutes)"),
	SET("outbound_data_timeout", POSTERN_SET_DURATION, outbound_data_timeout, "3m",
	    "sending one block of the message (RFC 5321: 3 minutes)"),
	SET("outbound_final_timeout", POSTERN_SET_DURATION, outbound_final_timeout, "10m",
	    "waiting for the reply after the final dot (RFC 5321: 10 minutes)"),
	SET_RANGE("outbound_max_per_destination", POSTERN_SET_UINT,
		  outbound_max_per_destination, "10",
		  "connections at once to one destination (domain or relay_host)", 1, 10000),
	SET_RANGE("outbound_max_connections", POSTERN_SET_UINT, outbound_max_connections,
		  "100", "outbound connections at once", 1, 100000),
	SET_RANGE("outbound_max_reply_line", POSTERN_SET_SIZE, outbound_max_reply_line,
		  "2048", "longest reply line accepted from a remote server", 512, 65536),
	SET_RANGE("outbound_max_mx", POSTERN_SET_UINT, outbound_max_mx, "5",
		  "MX hosts tried per attempt", 1, 100),
	SET("outbound_ipv6", POSTERN_SET_BOOL, outbound_ipv6, "true",
	    "look up AAAA records and connect over IPv6 too"),
	SET("dns_servers", POSTERN_SET_STRING, dns_servers, NULL,
	    "DNS servers (\"127.0.0.1:5353,[::1]:53\"); default: /etc/resolv.conf"),
	SET("dns_timeout", POSTERN_SET_DURATION, dns_timeout, "10s",
	    "one DNS lookup, retries included"),
	POSTERN_SETTING_END,
};

const char *smtp_kind_name(enum smtp_kind kind)
{
	switch (kind) {
	case SMTP_KIND_SMTP:
		return "smtp";
	case SMTP_KIND_SUBMISSION:
		return "submission";
	case SMTP_KIND_SUBMISSIONS:
		return "submissions";
	case SMTP_KIND_COUNT:
		break;
	}
	return "?";
}

static int parse_networks(struct postern_mod *mod, char **list, struct postern_cidr **nets_r,
			  unsigned *count_r, const char **error_r)
{
	unsigned count = 0;

	for (char **p = list; p != NULL && *p != NULL; p++)
		count++;
	struct postern_cidr *nets = smtp_alloc(sizeof(*nets) * (count + 1));

	for (unsigned i = 0; i < count; i++) {
		const char *why;

		if (postern_cidr_parse(list[i], &nets[i], &why) < 0) {
			*error_r = postern_cfg_error(mod, NULL,
						     "smtp: relay_networks: '%s': %s",
						     list[i], why);
			free(nets);
			return -1;
		}
	}
	*nets_r = nets;
	*count_r = count;
	return 0;
}

static bool list_empty(char **list)
{
	return list == NULL || list[0] == NULL;
}

/* Checks beyond what the settings table can express (relay_networks is
 * checked by parsing it, in load_settings()). */
static int check_settings(struct postern_mod *mod, const struct smtp_settings *set,
			  const char **error_r)
{
	if ((set->cert_file == NULL) != (set->key_file == NULL)) {
		*error_r = postern_cfg_error(mod, NULL,
					     "smtp: cert_file and key_file go together");
		return -1;
	}
	if (!list_empty(set->submission_tls_listen) && set->cert_file == NULL) {
		*error_r = postern_cfg_error(mod, NULL,
					     "smtp: submission_tls_listen needs cert_file and "
					     "key_file");
		return -1;
	}
	if ((!list_empty(set->submission_listen) || !list_empty(set->submission_tls_listen)) &&
	    set->auth.passwd_file == NULL) {
		*error_r = postern_cfg_error(mod, NULL,
					     "smtp: submission requires AUTH: set passwd_file");
		return -1;
	}
	if (postern_auth_config_check(&set->auth, error_r) < 0) {
		*error_r = postern_cfg_error(mod, NULL, "smtp: %s", *error_r);
		return -1;
	}
	if (set->hostname != NULL && !smtp_domain_valid(set->hostname, strlen(set->hostname),
							 false)) {
		*error_r = postern_cfg_error(mod, NULL, "smtp: hostname '%s' is not a domain",
					     set->hostname);
		return -1;
	}
	return 0;
}

/* Parse and check the group; on success *set and the relay networks are
 * the caller's to free, on failure nothing is left. */
static int load_settings(struct postern_mod *mod, const struct postern_cfg *cfg,
			 struct smtp_settings *set, struct postern_cidr **nets_r,
			 unsigned *count_r, const char **error_r)
{
	if (postern_cfg_parse(mod, cfg, smtp_setting_defs, set, error_r) < 0)
		return -1;
	if (parse_networks(mod, set->relay_networks, nets_r, count_r, error_r) < 0) {
		postern_cfg_free(smtp_setting_defs, set);
		return -1;
	}
	if (check_settings(mod, set, error_r) < 0) {
		free(*nets_r);
		postern_cfg_free(smtp_setting_defs, set);
		return -1;
	}
	return 0;
}

static int smtp_check_config(struct postern_mod *mod, const struct postern_cfg *cfg,
			     const char **error_r)
{
	struct smtp_settings set;
	struct postern_cidr *nets;
	unsigned count;

	if (load_settings(mod, cfg, &set, &nets, &count, error_r) < 0)
		return -1;
	free(nets);
	postern_cfg_free(smtp_setting_defs, &set);
	return 0;
}

static void default_names(struct smtp_settings *set)
{
	if (set->hostname == NULL) {
		char name[256] = "localhost";

		if (gethostname(name, sizeof(name) - 1) < 0 ||
		    !smtp_domain_valid(name, strlen(name), false))
			strcpy(name, "localhost");
		set->hostname = smtp_strdup(name);
	}
	if (set->greeting == NULL)
		set->greeting = smtp_asprintf("%s ESMTP Postern", set->hostname);
	if (set->helo_name == NULL)
		set->helo_name = smtp_strdup(set->hostname);
}

static int listen_kind(struct smtp *smtp, enum smtp_kind kind, const char **error_r)
{
	char **list = kind == SMTP_KIND_SMTP ? smtp->set.listen :
		      kind == SMTP_KIND_SUBMISSION ? smtp->set.submission_listen :
						     smtp->set.submission_tls_listen;
	bool submission = kind != SMTP_KIND_SMTP;
	char *limit_reply = smtp_asprintf("421 4.7.0 %s Too many connections, try again later",
					  smtp->set.hostname);
	int ret = 0;

	smtp->kinds[kind].smtp = smtp;
	smtp->kinds[kind].kind = kind;
	for (char **address = list; address != NULL && *address != NULL; address++) {
		struct postern_listen_settings listen = POSTERN_LISTEN_SETTINGS_INIT;

		listen.address = *address;
		listen.tls = kind == SMTP_KIND_SUBMISSIONS ? smtp->tls_server : NULL;
		listen.max_connections = (unsigned)(submission ? smtp->set.submission_max_connections :
								  smtp->set.max_connections);
		listen.max_per_ip = (unsigned)(submission ? smtp->set.submission_max_per_ip :
							     smtp->set.max_per_ip);
		listen.limit_reply = limit_reply;
		/* The line reader's limit is the larger AUTH one; command
		 * lines are held to max_command_line by the session. */
		listen.max_line = smtp->set.max_auth_line;
		listen.idle_timeout_ms = smtp->set.command_timeout;
		if (postern_listen(smtp->mod, &listen, smtp_session_event, &smtp->kinds[kind],
				   error_r) == NULL) {
			ret = -1;
			break;
		}
	}
	free(limit_reply);
	return ret;
}

static int stats_command(struct postern_control_req *req, int argc, const char *const *argv,
			 void *ctx)
{
	struct smtp *smtp = ctx;
	const struct smtp_stats *st = &smtp->stats;
	struct postern_str *out = postern_control_output(req);
	const struct {
		const char *name;
		uint64_t value;
	} rows[] = {
		{ "connections", st->connections },
		{ "sessions_active", st->sessions_active },
		{ "messages_accepted", st->messages_accepted },
		{ "messages_rejected", st->messages_rejected },
		{ "recipients_accepted", st->recipients_accepted },
		{ "recipients_rejected", st->recipients_rejected },
		{ "relay_denied", st->relay_denied },
		{ "auth_ok", st->auth_ok },
		{ "auth_failed", st->auth_failed },
		{ "tls_started", st->tls_started },
		{ "protocol_errors", st->protocol_errors },
		{ "outbound_jobs", st->out_jobs },
		{ "outbound_jobs_active", st->out_jobs_active },
		{ "outbound_connections", st->out_connections },
		{ "outbound_delivered", st->out_delivered },
		{ "outbound_deferred", st->out_deferred },
		{ "outbound_bounced", st->out_bounced },
	};

	if (argc != 2 || strcmp(argv[1], "stats") != 0)
		return postern_control_fail(req, "usage: smtp stats");
	if (postern_control_json(req)) {
		struct postern_json *json = postern_json_new(out);

		postern_json_object_begin(json);
		for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
			postern_json_key(json, rows[i].name);
			postern_json_uint(json, rows[i].value);
		}
		smtp_outbound_stats(smtp, json, NULL);
		postern_json_object_end(json);
		postern_json_free(&json);
	} else {
		for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
			postern_str_printf(out, "%s %llu\n", rows[i].name,
					   (unsigned long long)rows[i].value);
		smtp_outbound_stats(smtp, NULL, out);
	}
	return 0;
}

static void smtp_free(struct smtp *smtp)
{
	while (smtp->sessions != NULL) {
		struct smtp_session *session = smtp->sessions;

		/* Connections still open at unload get no CLOSED. */
		smtp_session_event(session->conn, POSTERN_CONN_CLOSED, session);
	}
	smtp_outbound_deinit(smtp);
	smtp_auth_deinit(smtp);
	postern_tls_unref(&smtp->tls_server);
	free(smtp->relay_nets);
	postern_cfg_free(smtp_setting_defs, &smtp->set);
	free(smtp);
}

static int init_tls(struct smtp *smtp, const char **error_r)
{
	struct postern_tls_settings tls = POSTERN_TLS_SETTINGS_INIT;

	if (smtp->set.cert_file == NULL)
		return 0;
	tls.cert_file = smtp->set.cert_file;
	tls.key_file = smtp->set.key_file;
	tls.min_protocol = smtp->set.tls_min_protocol;
	smtp->tls_server = postern_tls_server_new(smtp->mod, &tls, error_r);
	return smtp->tls_server == NULL ? -1 : 0;
}

static int smtp_init(struct postern_mod *mod, const struct postern_cfg *cfg,
		     const char **error_r)
{
	struct smtp *smtp = smtp_alloc(sizeof(*smtp));

	smtp->mod = mod;
	if (load_settings(mod, cfg, &smtp->set, &smtp->relay_nets, &smtp->relay_net_count,
			  error_r) < 0) {
		free(smtp);
		return -1;
	}
	default_names(&smtp->set);
	smtp->queue = postern_service_lookup(mod, POSTERN_QUEUE_SERVICE, POSTERN_QUEUE_VERSION,
					     error_r);
	if (smtp->queue == NULL)
		goto fail;
	if (init_tls(smtp, error_r) < 0 || smtp_auth_init(smtp, error_r) < 0)
		goto fail;
	for (unsigned kind = 0; kind < SMTP_KIND_COUNT; kind++)
		if (listen_kind(smtp, (enum smtp_kind)kind, error_r) < 0)
			goto fail;
	if (smtp_outbound_init(smtp, error_r) < 0 ||
	    postern_control_register(mod, "smtp", "smtp stats", stats_command, smtp,
				     error_r) < 0)
		goto fail;
	postern_mod_set_data(mod, smtp);
	return 0;
fail:
	smtp_free(smtp);
	return -1;
}

/* What a reload leaves alone: the listeners with their TLS and limits,
 * AUTH's user database and password checker, and what the outbound client
 * set up at start (relay_host, its TLS context, the DNS resolver). */
static const char *const smtp_restart_only[] = {
	"listen", "submission_listen", "submission_tls_listen", "cert_file", "key_file",
	"tls_min_protocol", "max_connections", "max_per_ip", "submission_max_connections",
	"submission_max_per_ip", "max_command_line", "max_auth_line",
	"passwd_file", "passwd_file_*", "allow_plain_passwords", "auth_threads",
	"auth_max_pending", "auth_failure_*", "auth_block_time", "auth_ipv6_prefix",
	"relay_host", "outbound_port", "outbound_tls_verify", "outbound_tls_ca_file",
	"outbound_ipv6", "dns_servers", "dns_timeout", NULL,
};

/* Policy, limits, names and timeouts apply at once; open sessions see
 * them from their next command on. */
static int smtp_reload(struct postern_mod *mod, const struct postern_cfg *cfg,
		       const char **error_r)
{
	struct smtp *smtp = postern_mod_data(mod);
	struct smtp_settings next;
	struct postern_cidr *nets;
	unsigned count;

	if (load_settings(mod, cfg, &next, &nets, &count, error_r) < 0)
		return -1;
	(void)postern_cfg_keep_running(mod, smtp_setting_defs, smtp_restart_only, &next,
				       &smtp->set);
	default_names(&next);
	postern_cfg_free(smtp_setting_defs, &smtp->set);
	smtp->set = next;
	free(smtp->relay_nets);
	smtp->relay_nets = nets;
	smtp->relay_net_count = count;
	return 0;
}

static void smtp_stop(struct postern_mod *mod)
{
	struct smtp *smtp = postern_mod_data(mod);

	if (smtp != NULL)
		smtp_sessions_shutdown(smtp);
}

static void smtp_deinit(struct postern_mod *mod)
{
	struct smtp *smtp = postern_mod_data(mod);

	if (smtp != NULL)
		smtp_free(smtp);
	postern_mod_set_data(mod, NULL);
}

static const char *const smtp_requires[] = { "queue-store", NULL };

POSTERN_MODULE_DEFINE(
	.name = "smtp",
	.version = "1.0",
	.requires = smtp_requires,
	.check_config = smtp_check_config,
	.init = smtp_init,
	.reload = smtp_reload,
	.stop = smtp_stop,
	.deinit = smtp_deinit,
);
