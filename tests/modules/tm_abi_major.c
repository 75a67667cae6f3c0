/* Test module: built for the next major ABI. */
#include <postern/postern.h>

POSTERN_API const struct postern_module postern_module = {
	.magic = POSTERN_MODULE_MAGIC,
	.abi_version = ((POSTERN_ABI_MAJOR + 1) << 16) | 0,
	.struct_size = sizeof(struct postern_module),
	.name = "tm_abi_major",
};
