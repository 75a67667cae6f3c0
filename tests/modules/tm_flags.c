/* Test module: sets a descriptor flag, none of which are defined. */
#include <postern/postern.h>

POSTERN_MODULE_DEFINE(
	.name = "tm_flags",
	.flags = 1,
);
