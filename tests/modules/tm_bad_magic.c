/* Test module: a descriptor with the wrong magic number. */
#include <postern/postern.h>

POSTERN_API const struct postern_module postern_module = {
	.magic = 0xdeadbeefu,
	.abi_version = POSTERN_ABI_VERSION,
	.struct_size = sizeof(struct postern_module),
	.name = "tm_bad_magic",
};
