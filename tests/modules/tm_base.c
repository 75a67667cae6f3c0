/*
 * Test module: a well-formed module with no requirements. Its hooks record
 * their calls; check_config refuses a group with a `reject` key; init
 * subscribes to core.module.started (first in line) so the test can see
 * the module's subscription work and end when the module is unloaded.
 */
#include "recorder.h"

static struct postern_subscription *started_sub;

static void base_on_started(const struct postern_event *event, void *ctx)
{
	const struct postern_ev_module *ev = event->payload;
	struct test_recorder *rec = ctx;
	size_t used = strlen(rec->log);

	snprintf(rec->log + used, sizeof(rec->log) - used, " seen:%s", ev->name);
}

static int base_check_config(struct postern_mod *mod, const struct postern_cfg *cfg,
			     const char **error_r)
{
	const struct postern_cfg *reject = postern_cfg_lookup(cfg, "reject");

	test_record(mod, "check");
	if (reject != NULL) {
		*error_r = postern_cfg_error(mod, reject, "rejected by the test");
		return -1;
	}
	return 0;
}

static int base_init(struct postern_mod *mod, const struct postern_cfg *cfg, const char **error_r)
{
	test_record(mod, "init");
	if (postern_mod_data(mod) == NULL)
		return 0;
	started_sub = postern_bus_subscribe(mod, POSTERN_TOPIC_MODULE_STARTED,
					    POSTERN_EV_MODULE_TYPE, POSTERN_BUS_PRIO_FIRST,
					    base_on_started, postern_mod_data(mod), error_r);
	return started_sub == NULL ? -1 : 0;
}

POSTERN_MODULE_DEFINE(
	.name = "tm_base",
	.version = "1.2.3",
	.check_config = base_check_config,
	.init = base_init,
	.start = test_record_start,
	.reload = test_record_reload,
	.stop = test_record_stop,
	.deinit = test_record_deinit,
);
