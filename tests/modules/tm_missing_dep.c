/* Test module: requires a module that is not in the test's list. */
#include <postern/postern.h>

static const char *const missing_requires[] = { "tm_absent", NULL };

POSTERN_MODULE_DEFINE(
	.name = "tm_missing_dep",
	.requires = missing_requires,
);
