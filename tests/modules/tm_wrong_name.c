/* Test module: the descriptor's name differs from the file name. */
#include <postern/postern.h>

POSTERN_MODULE_DEFINE(
	.name = "tm_other",
);
