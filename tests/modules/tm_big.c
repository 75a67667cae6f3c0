/* Test module: claims the current minor but a descriptor larger than the
 * core's, which only a newer minor could have. */
#include <postern/postern.h>

struct big_module {
	struct postern_module base;
	void *later[2];
};

POSTERN_API const struct big_module postern_module = {
	.base = {
		.magic = POSTERN_MODULE_MAGIC,
		.abi_version = POSTERN_ABI_VERSION,
		.struct_size = sizeof(struct big_module),
		.name = "tm_big",
	},
};
