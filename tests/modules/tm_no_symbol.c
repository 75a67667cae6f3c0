/* Test module: exports its descriptor under a misspelt name, so the
 * loader finds no `postern_module`. */
#include <postern/postern.h>

POSTERN_API const struct postern_module postern_modul = {
	.magic = POSTERN_MODULE_MAGIC,
	.abi_version = POSTERN_ABI_VERSION,
	.struct_size = sizeof(struct postern_module),
	.name = "tm_no_symbol",
};
