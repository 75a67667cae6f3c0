/* Test module: calls a function posternd does not export, so dlopen with
 * RTLD_NOW fails on the undefined symbol. */
#include <postern/postern.h>

void postern_no_such_function(struct postern_mod *mod);

static int undefined_init(struct postern_mod *mod, const struct postern_cfg *cfg,
			  const char **error_r)
{
	postern_no_such_function(mod);
	return 0;
}

POSTERN_MODULE_DEFINE(
	.name = "tm_undefined",
	.init = undefined_init,
);
