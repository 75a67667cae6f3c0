/* Test module: built for a newer minor ABI than this core's. */
#include <postern/postern.h>

POSTERN_API const struct postern_module postern_module = {
	.magic = POSTERN_MODULE_MAGIC,
	.abi_version = (POSTERN_ABI_MAJOR << 16) | (POSTERN_ABI_MINOR + 3),
	.struct_size = sizeof(struct postern_module),
	.name = "tm_abi_minor",
};
