/* Test module: requires tm_app; its init subscribes to a topic and then
 * fails, so the loader must release the subscription and roll back. */
#include "recorder.h"

static const char *const fail_requires[] = { "tm_app", NULL };

static void fail_on_started(const struct postern_event *event, void *ctx)
{
	test_record(ctx, "BUG-called-after-rollback");
}

static int fail_init(struct postern_mod *mod, const struct postern_cfg *cfg,
		     const char **error_r)
{
	test_record(mod, "init");
	if (postern_bus_subscribe(mod, POSTERN_TOPIC_MODULE_STARTED, POSTERN_EV_MODULE_TYPE,
				  POSTERN_BUS_PRIO_DEFAULT, fail_on_started, mod, error_r) == NULL)
		return -1;
	*error_r = "cannot open the frobnicator (deliberate test failure)";
	return -1;
}

POSTERN_MODULE_DEFINE(
	.name = "tm_fail_init",
	.version = "1",
	.requires = fail_requires,
	.init = fail_init,
	.deinit = test_record_deinit,
);
