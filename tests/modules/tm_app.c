/* Test module: well-formed, requires tm_base; records its hooks and
 * refuses a group with a `reject` key in check_config. */
#include "recorder.h"

static const char *const app_requires[] = { "tm_base", NULL };

static int app_check_config(struct postern_mod *mod, const struct postern_cfg *cfg,
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

POSTERN_MODULE_DEFINE(
	.name = "tm_app",
	.version = "0.9",
	.requires = app_requires,
	.check_config = app_check_config,
	.init = test_record_init,
	.start = test_record_start,
	.reload = test_record_reload,
	.stop = test_record_stop,
	.deinit = test_record_deinit,
);
