/* Test module: requires tm_cycle_b, which requires this one. */
#include <postern/postern.h>

static const char *const cycle_requires[] = { "tm_cycle_b", NULL };

POSTERN_MODULE_DEFINE(
	.name = "tm_cycle_a",
	.requires = cycle_requires,
);
