/*
 * Test module: simulates a module built against an older minor ABI, whose
 * descriptor ended with the deinit hook and had no reserved room. The
 * loader must accept it and zero-fill the fields past its struct_size.
 */
#include "recorder.h"

struct small_module {
	uint32_t magic;
	uint32_t abi_version;
	uint32_t struct_size;
	uint32_t flags;
	const char *name;
	const char *version;
	const char *const *requires;
	int (*check_config)(struct postern_mod *, const struct postern_cfg *, const char **);
	int (*init)(struct postern_mod *, const struct postern_cfg *, const char **);
	int (*start)(struct postern_mod *, const char **);
	int (*reload)(struct postern_mod *, const struct postern_cfg *, const char **);
	void (*stop)(struct postern_mod *);
	void (*deinit)(struct postern_mod *);
};

POSTERN_API const struct small_module postern_module = {
	.magic = POSTERN_MODULE_MAGIC,
	.abi_version = (POSTERN_ABI_MAJOR << 16) | 0,
	.struct_size = sizeof(struct small_module),
	.name = "tm_small",
	.version = "old",
	.init = test_record_init,
	.deinit = test_record_deinit,
};
