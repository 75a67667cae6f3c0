/* Test module: requires tm_cycle_a, which requires this one. */
#include <postern/postern.h>

static const char *const cycle_requires[] = { "tm_base", "tm_cycle_a", NULL };

POSTERN_MODULE_DEFINE(
	.name = "tm_cycle_b",
	.requires = cycle_requires,
);
