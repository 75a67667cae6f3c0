/*
 * testecho: a tiny line protocol used by the core's integration tests to
 * drive the connection manager through the public API only, the way a real
 * protocol module does. Not installed.
 *
 *   greeting  "+OK testecho ready"
 *   ECHO text  -> "+OK text"
 *   STARTTLS   -> "+OK begin TLS", then the TLS handshake
 *   TLS        -> "+OK tls" or "+OK plain"
 *   STATE x    -> sets the registry state shown by posternctl conns
 *   QUIT       -> "+OK bye", flushed, then closed
 *   a line over max_line -> "-ERR line too long"
 *   a line with NUL or bare LF -> "-ERR bad line"
 *
 * Settings: listen, tls_listen (implicit TLS), cert_file, key_file,
 * max_connections, max_per_ip, idle_timeout, max_line, greeting.
 * Control command: `testecho stats` (connections seen on the bus).
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <postern/postern.h>

struct testecho_settings {
	char **listen;
	char **tls_listen;
	char *cert_file;
	char *key_file;
	uint64_t max_connections;
	uint64_t max_per_ip;
	uint64_t idle_timeout;
	uint64_t max_line;
	char *greeting;
};

static const struct postern_setting_def testecho_setting_defs[] = {
	{ "listen", POSTERN_SET_STRLIST, offsetof(struct testecho_settings, listen), "()",
	  "plain listeners", 0, 0 },
	{ "tls_listen", POSTERN_SET_STRLIST, offsetof(struct testecho_settings, tls_listen), "()",
	  "implicit-TLS listeners", 0, 0 },
	{ "cert_file", POSTERN_SET_PATH, offsetof(struct testecho_settings, cert_file), NULL,
	  "TLS certificate", 0, 0 },
	{ "key_file", POSTERN_SET_PATH, offsetof(struct testecho_settings, key_file), NULL,
	  "TLS key", 0, 0 },
	{ "max_connections", POSTERN_SET_UINT,
	  offsetof(struct testecho_settings, max_connections), "0", "per listener", 0, 0 },
	{ "max_per_ip", POSTERN_SET_UINT, offsetof(struct testecho_settings, max_per_ip), "0",
	  "per client IP", 0, 0 },
	{ "idle_timeout", POSTERN_SET_DURATION,
	  offsetof(struct testecho_settings, idle_timeout), "60s", "idle timeout", 0, 0 },
	{ "max_line", POSTERN_SET_SIZE, offsetof(struct testecho_settings, max_line), "1024",
	  "longest line", 1, 1048576 },
	{ "greeting", POSTERN_SET_STRING, offsetof(struct testecho_settings, greeting),
	  "\"testecho ready\"", "greeting text", 0, 0 },
	POSTERN_SETTING_END,
};

struct testecho {
	struct postern_mod *mod;
	struct testecho_settings settings;
	struct postern_tls *tls;
	struct postern_subscription *opened_sub, *closed_sub;
	uint64_t opened, closed;
};

static void testecho_reply(struct postern_conn *conn, const char *text)
{
	postern_conn_printf(conn, "%s\r\n", text);
}

static void testecho_command(struct testecho *echo, struct postern_conn *conn,
			     const struct postern_line *line)
{
	const char *error;

	if (line->flags & (POSTERN_LINE_HAS_NUL | POSTERN_LINE_BARE_LF | POSTERN_LINE_HAS_CR)) {
		testecho_reply(conn, "-ERR bad line");
	} else if (strncasecmp(line->data, "ECHO ", 5) == 0) {
		postern_conn_printf(conn, "+OK %s\r\n", line->data + 5);
	} else if (strcasecmp(line->data, "STARTTLS") == 0) {
		if (echo->tls == NULL || postern_conn_is_tls(conn)) {
			testecho_reply(conn, "-ERR TLS not available");
			return;
		}
		testecho_reply(conn, "+OK begin TLS");
		if (postern_conn_starttls(conn, echo->tls, NULL, &error) < 0)
			postern_conn_log(conn, POSTERN_LOG_ERROR, "starttls: %s", error);
	} else if (strcasecmp(line->data, "TLS") == 0) {
		testecho_reply(conn, postern_conn_is_tls(conn) ? "+OK tls" : "+OK plain");
	} else if (strncasecmp(line->data, "STATE ", 6) == 0) {
		postern_conn_set_state(conn, line->data + 6);
		testecho_reply(conn, "+OK");
	} else if (strcasecmp(line->data, "QUIT") == 0) {
		testecho_reply(conn, "+OK bye");
		postern_conn_close_after_flush(conn, "quit");
	} else {
		testecho_reply(conn, "-ERR unknown command");
	}
}

static void testecho_input(struct testecho *echo, struct postern_conn *conn)
{
	struct postern_line line;
	enum postern_read_status status;

	/* Stop at a STARTTLS: what follows it is discarded by the core. */
	while (!postern_conn_is_closing(conn) &&
	       (status = postern_conn_read_line(conn, &line)) != POSTERN_READ_NONE) {
		if (status == POSTERN_READ_TOO_LONG) {
			testecho_reply(conn, "-ERR line too long");
			continue;
		}
		testecho_command(echo, conn, &line);
		if (strcasecmp(line.data, "STARTTLS") == 0)
			break;
	}
}

static void testecho_event(struct postern_conn *conn, enum postern_conn_event event, void *ctx)
{
	struct testecho *echo = ctx;

	switch (event) {
	case POSTERN_CONN_OPEN:
		postern_conn_set_state(conn, "COMMAND");
		postern_conn_printf(conn, "+OK %s\r\n", echo->settings.greeting);
		break;
	case POSTERN_CONN_INPUT:
		testecho_input(echo, conn);
		break;
	case POSTERN_CONN_TLS_READY:
		testecho_reply(conn, "+OK TLS ready");
		break;
	case POSTERN_CONN_TIMEOUT:
		testecho_reply(conn, "-ERR idle timeout");
		postern_conn_close_after_flush(conn, "idle timeout");
		break;
	default:
		break;
	}
}

static void testecho_on_conn_event(const struct postern_event *event, void *ctx)
{
	struct testecho *echo = ctx;
	const struct postern_ev_conn *conn_event = event->payload;

	if (strcmp(conn_event->module, "testecho") != 0)
		return;
	if (strcmp(event->topic, POSTERN_TOPIC_CONN_OPENED) == 0)
		echo->opened++;
	else
		echo->closed++;
}

static int testecho_stats(struct postern_control_req *req, int argc, const char *const *argv,
			  void *ctx)
{
	struct testecho *echo = ctx;

	if (argc != 2 || strcmp(argv[1], "stats") != 0)
		return postern_control_fail(req, "usage: testecho stats");
	postern_str_printf(postern_control_output(req), "opened %llu\nclosed %llu\n",
			   (unsigned long long)echo->opened, (unsigned long long)echo->closed);
	return 0;
}

static int testecho_listen_all(struct testecho *echo, char **addresses, bool tls,
			       const char **error_r)
{
	for (char **address = addresses; *address != NULL; address++) {
		struct postern_listen_settings listen = POSTERN_LISTEN_SETTINGS_INIT;

		listen.address = *address;
		listen.tls = tls ? echo->tls : NULL;
		listen.max_connections = (unsigned)echo->settings.max_connections;
		listen.max_per_ip = (unsigned)echo->settings.max_per_ip;
		listen.limit_reply = "-ERR too many connections";
		listen.max_line = echo->settings.max_line;
		listen.idle_timeout_ms = echo->settings.idle_timeout;
		if (postern_listen(echo->mod, &listen, testecho_event, echo, error_r) == NULL)
			return -1;
	}
	return 0;
}

static int testecho_check_config(struct postern_mod *mod, const struct postern_cfg *cfg,
				 const char **error_r)
{
	struct testecho_settings settings;

	if (postern_cfg_parse(mod, cfg, testecho_setting_defs, &settings, error_r) < 0)
		return -1;
	postern_cfg_free(testecho_setting_defs, &settings);
	return 0;
}

static void testecho_free(struct testecho *echo)
{
	postern_bus_unsubscribe(&echo->opened_sub);
	postern_bus_unsubscribe(&echo->closed_sub);
	postern_tls_unref(&echo->tls);
	postern_cfg_free(testecho_setting_defs, &echo->settings);
	free(echo);
}

static int testecho_init(struct postern_mod *mod, const struct postern_cfg *cfg,
			 const char **error_r)
{
	struct testecho *echo = calloc(1, sizeof(*echo));

	if (echo == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	echo->mod = mod;
	postern_mod_set_data(mod, echo);
	if (postern_cfg_parse(mod, cfg, testecho_setting_defs, &echo->settings, error_r) < 0)
		goto fail;
	if (echo->settings.cert_file != NULL) {
		struct postern_tls_settings tls = POSTERN_TLS_SETTINGS_INIT;

		tls.cert_file = echo->settings.cert_file;
		tls.key_file = echo->settings.key_file;
		echo->tls = postern_tls_server_new(mod, &tls, error_r);
		if (echo->tls == NULL)
			goto fail;
	}
	if (testecho_listen_all(echo, echo->settings.listen, false, error_r) < 0 ||
	    testecho_listen_all(echo, echo->settings.tls_listen, true, error_r) < 0)
		goto fail;
	echo->opened_sub = postern_bus_subscribe(mod, POSTERN_TOPIC_CONN_OPENED,
						 POSTERN_EV_CONN_TYPE, POSTERN_BUS_PRIO_DEFAULT,
						 testecho_on_conn_event, echo, error_r);
	echo->closed_sub = postern_bus_subscribe(mod, POSTERN_TOPIC_CONN_CLOSED,
						 POSTERN_EV_CONN_TYPE, POSTERN_BUS_PRIO_DEFAULT,
						 testecho_on_conn_event, echo, error_r);
	if (echo->opened_sub == NULL || echo->closed_sub == NULL ||
	    postern_control_register(mod, "testecho", "testecho stats", testecho_stats, echo,
				     error_r) < 0)
		goto fail;
	return 0;
fail:
	postern_mod_set_data(mod, NULL);
	testecho_free(echo);
	return -1;
}

/* Only the greeting can change without a restart; listeners stay. */
static int testecho_reload(struct postern_mod *mod, const struct postern_cfg *cfg,
			   const char **error_r)
{
	struct testecho *echo = postern_mod_data(mod);
	struct testecho_settings settings;

	if (postern_cfg_parse(mod, cfg, testecho_setting_defs, &settings, error_r) < 0)
		return -1;
	char *greeting = settings.greeting;
	settings.greeting = echo->settings.greeting;
	echo->settings.greeting = greeting;
	postern_cfg_free(testecho_setting_defs, &settings);
	return 0;
}

static void testecho_deinit(struct postern_mod *mod)
{
	struct testecho *echo = postern_mod_data(mod);

	if (echo != NULL)
		testecho_free(echo);
}

POSTERN_MODULE_DEFINE(
	.name = "testecho",
	.version = "1.0",
	.check_config = testecho_check_config,
	.init = testecho_init,
	.reload = testecho_reload,
	.deinit = testecho_deinit,
);
