/*
 * conncount: an example third-party Postern module.
 *
 * It listens on the event bus for connections opening and closing, keeps a
 * count per module, and answers `posternctl conncount [--json]`. It uses
 * only the installed headers (<postern/postern.h>) and builds out of tree:
 * see the Makefile and README.md beside it.
 *
 * Settings (group `conncount`):
 *   log_every  log a summary line every N connections (default 0: never)
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <postern/postern.h>

#define MAX_TRACKED_MODULES 32

struct conncount_settings {
	uint64_t log_every;
};

static const struct postern_setting_def conncount_setting_defs[] = {
	{ .name = "log_every", .type = POSTERN_SET_UINT,
	  .offset = offsetof(struct conncount_settings, log_every), .default_value = "0",
	  .help = "log a summary every N connections (0: never)" },
	POSTERN_SETTING_END,
};

struct module_count {
	char name[64];
	uint64_t total; /* connections opened since start */
	uint64_t open;  /* connections open now */
};

struct conncount {
	struct postern_mod *mod;
	struct conncount_settings settings;
	struct postern_subscription *subscription;
	struct module_count counts[MAX_TRACKED_MODULES];
	unsigned count_used;
	uint64_t total;
};

static struct module_count *conncount_find(struct conncount *cc, const char *name)
{
	for (unsigned i = 0; i < cc->count_used; i++) {
		if (strcmp(cc->counts[i].name, name) == 0)
			return &cc->counts[i];
	}
	if (cc->count_used == MAX_TRACKED_MODULES)
		return NULL;
	struct module_count *count = &cc->counts[cc->count_used++];
	strncpy(count->name, name, sizeof(count->name) - 1);
	return count;
}

/* One handler for both topics, subscribed with the "core.conn.*" prefix. */
static void conncount_on_conn(const struct postern_event *event, void *ctx)
{
	struct conncount *cc = ctx;
	const struct postern_ev_conn *conn = event->payload;
	struct module_count *count = conncount_find(cc, conn->module);

	if (count == NULL)
		return;
	if (strcmp(event->topic, POSTERN_TOPIC_CONN_OPENED) == 0) {
		count->total++;
		count->open++;
		cc->total++;
		if (cc->settings.log_every != 0 && cc->total % cc->settings.log_every == 0)
			postern_log(cc->mod, POSTERN_LOG_INFO, "%llu connections so far",
				    (unsigned long long)cc->total);
	} else if (strcmp(event->topic, POSTERN_TOPIC_CONN_CLOSED) == 0 && count->open > 0) {
		count->open--;
	}
}

static int conncount_command(struct postern_control_req *req, int argc,
			     const char *const *argv, void *ctx)
{
	struct conncount *cc = ctx;
	struct postern_str *out = postern_control_output(req);

	(void)argv; /* the command takes no arguments beyond its name */
	if (argc != 1)
		return postern_control_fail(req, "usage: conncount [--json]");
	if (!postern_control_json(req)) {
		for (unsigned i = 0; i < cc->count_used; i++)
			postern_str_printf(out, "%s open=%llu total=%llu\n", cc->counts[i].name,
					   (unsigned long long)cc->counts[i].open,
					   (unsigned long long)cc->counts[i].total);
		return 0;
	}
	struct postern_json *json = postern_json_new(out);
	postern_json_object_begin(json);
	for (unsigned i = 0; i < cc->count_used; i++) {
		postern_json_key(json, cc->counts[i].name);
		postern_json_object_begin(json);
		postern_json_key(json, "open");
		postern_json_uint(json, cc->counts[i].open);
		postern_json_key(json, "total");
		postern_json_uint(json, cc->counts[i].total);
		postern_json_object_end(json);
	}
	postern_json_object_end(json);
	postern_json_free(&json);
	return 0;
}

static int conncount_check_config(struct postern_mod *mod, const struct postern_cfg *cfg,
				  const char **error_r)
{
	struct conncount_settings settings;

	if (postern_cfg_parse(mod, cfg, conncount_setting_defs, &settings, error_r) < 0)
		return -1;
	postern_cfg_free(conncount_setting_defs, &settings);
	return 0;
}

static int conncount_init(struct postern_mod *mod, const struct postern_cfg *cfg,
			  const char **error_r)
{
	struct conncount *cc = calloc(1, sizeof(*cc));

	if (cc == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	cc->mod = mod;
	postern_mod_set_data(mod, cc);
	if (postern_cfg_parse(mod, cfg, conncount_setting_defs, &cc->settings, error_r) < 0)
		return -1;
	cc->subscription = postern_bus_subscribe(mod, "core.conn.*", POSTERN_EV_CONN_TYPE,
						 POSTERN_BUS_PRIO_LAST, conncount_on_conn, cc,
						 error_r);
	if (cc->subscription == NULL)
		return -1;
	return postern_control_register(mod, "conncount", "conncount [--json]",
					conncount_command, cc, error_r);
}

static int conncount_reload(struct postern_mod *mod, const struct postern_cfg *cfg,
			    const char **error_r)
{
	struct conncount *cc = postern_mod_data(mod);

	return postern_cfg_parse(mod, cfg, conncount_setting_defs, &cc->settings, error_r);
}

/* Subscriptions and the control command are released by the core. */
static void conncount_deinit(struct postern_mod *mod)
{
	free(postern_mod_data(mod));
}

POSTERN_MODULE_DEFINE(
	.name = "conncount",
	.version = "1.0",
	.check_config = conncount_check_config,
	.init = conncount_init,
	.reload = conncount_reload,
	.deinit = conncount_deinit,
);
