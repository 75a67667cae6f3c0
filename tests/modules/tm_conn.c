/*
 * Test module: opens one outgoing connection to the `address` in its
 * settings and watches core.conn.closed. When the module is unloaded with
 * the connection still open, the core frees the connection (publishing
 * core.conn.closed) after deinit: this module records it if the event
 * still reaches it then, which it must not.
 */
#include <stdbool.h>
#include "recorder.h"

static bool deinited;

static void tm_conn_event(struct postern_conn *conn, enum postern_conn_event event, void *ctx)
{
	if (event == POSTERN_CONN_OPEN)
		test_record(ctx, "open");
	else if (event == POSTERN_CONN_CLOSED)
		test_record(ctx, "conn-closed");
}

static void tm_conn_on_closed(const struct postern_event *event, void *ctx)
{
	test_record(ctx, deinited ? "BUG-event-after-deinit" : "ev-closed");
}

static int tm_conn_init(struct postern_mod *mod, const struct postern_cfg *cfg,
			const char **error_r)
{
	struct postern_connect_settings settings = POSTERN_CONNECT_SETTINGS_INIT;

	deinited = false;
	settings.address = postern_cfg_string(postern_cfg_lookup(cfg, "address"));
	settings.timeout_ms = 5000;
	if (settings.address == NULL) {
		*error_r = "tm_conn needs an address setting";
		return -1;
	}
	if (postern_bus_subscribe(mod, POSTERN_TOPIC_CONN_CLOSED, POSTERN_EV_CONN_TYPE,
				  POSTERN_BUS_PRIO_DEFAULT, tm_conn_on_closed, mod, error_r) == NULL)
		return -1;
	return postern_connect(mod, &settings, tm_conn_event, mod, error_r) == NULL ? -1 : 0;
}

static void tm_conn_deinit(struct postern_mod *mod)
{
	deinited = true;
	test_record(mod, "deinit");
}

POSTERN_MODULE_DEFINE(
	.name = "tm_conn",
	.version = "1",
	.init = tm_conn_init,
	.deinit = tm_conn_deinit,
);
