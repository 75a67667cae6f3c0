/*
 * The module ABI: what a module exports and what the core checks before it
 * trusts anything else in the file.
 *
 * A module is a shared object that exports exactly one symbol,
 * `postern_module`, a `const struct postern_module`. The core checks magic,
 * ABI version and struct size first, then calls the hooks. Modules reach the
 * core only through functions (never through core structs, which are all
 * opaque), so a core with a newer minor ABI runs every module built against
 * an older minor of the same major without a rebuild. See docs/module-api.md
 * for the rules on bumping the major and minor numbers.
 */
#ifndef POSTERN_MODULE_H
#define POSTERN_MODULE_H

#include <sys/types.h>
#include <postern/common.h>

struct postern_cfg;

/* "PSTN": the first four bytes of every module descriptor. */
#define POSTERN_MODULE_MAGIC 0x5053544eu

/* Bump the major for any incompatible change, the minor for additions.
 * Every bump gets a dated line in docs/module-api.md. */
#define POSTERN_ABI_MAJOR 1
#define POSTERN_ABI_MINOR 2
#define POSTERN_ABI_VERSION ((uint32_t)((POSTERN_ABI_MAJOR << 16) | POSTERN_ABI_MINOR))
#define POSTERN_ABI_VERSION_MAJOR(v) ((uint32_t)(v) >> 16)
#define POSTERN_ABI_VERSION_MINOR(v) ((uint32_t)(v) & 0xffffu)

/* The name of the symbol every module exports. */
#define POSTERN_MODULE_SYMBOL "postern_module"

struct postern_module {
	uint32_t magic;       /* POSTERN_MODULE_MAGIC */
	uint32_t abi_version; /* POSTERN_ABI_VERSION the module was built against */
	uint32_t struct_size; /* sizeof(struct postern_module) at build time */
	uint32_t flags;       /* none defined yet: must be 0 */

	const char *name;    /* must equal the file name without ".so" */
	const char *version; /* the module's own version, free-form */
	/* Names of modules that must be loaded and started before this one,
	 * NULL-terminated; NULL for none. */
	const char *const *requires;

	/*
	 * Validate a configuration without side effects: used by `posternd -t`
	 * and before a reload is accepted. `cfg` is the module's own group
	 * (possibly empty, never NULL) and is valid only during the call.
	 * Return 0, or -1 with *error_r set (the core adds file and line when
	 * the message came from postern_cfg_error()). May be NULL.
	 */
	int (*check_config)(struct postern_mod *mod, const struct postern_cfg *cfg,
			    const char **error_r);
	/*
	 * Set up: parse settings into the module's context, bind listeners,
	 * declare and subscribe to bus topics, register control commands.
	 * Runs with the privileges the daemon was started with (root, usually),
	 * before they are dropped. May be NULL.
	 */
	int (*init)(struct postern_mod *mod, const struct postern_cfg *cfg,
		    const char **error_r);
	/* Begin work, after privileges are dropped. May be NULL. */
	int (*start)(struct postern_mod *mod, const char **error_r);
	/*
	 * Apply a new configuration that check_config() already accepted.
	 * Open connections stay open. May be NULL (settings then need a restart).
	 */
	int (*reload)(struct postern_mod *mod, const struct postern_cfg *cfg,
		      const char **error_r);
	/*
	 * Graceful shutdown has begun: the core has closed the listeners; the
	 * module should finish or end its sessions (the core force-closes what
	 * is still open at the deadline). May be NULL.
	 */
	void (*stop)(struct postern_mod *mod);
	/* Free everything. Timers, listeners, subscriptions, control commands
	 * and connections the module still owns are released by the core after
	 * this returns. May be NULL. */
	void (*deinit)(struct postern_mod *mod);

	/* Room for hooks added in later minor versions: leave zeroed. */
	void *reserved[8];
};

/*
 * Define a module descriptor with the right magic, ABI version and size:
 *
 *   POSTERN_MODULE_DEFINE(
 *       .name = "smtp", .version = PACKAGE_VERSION,
 *       .requires = smtp_requires,
 *       .init = smtp_init, .deinit = smtp_deinit,
 *   );
 */
#define POSTERN_MODULE_DEFINE(...)                                         \
	POSTERN_API const struct postern_module postern_module = {         \
		.magic = POSTERN_MODULE_MAGIC,                             \
		.abi_version = POSTERN_ABI_VERSION,                        \
		.struct_size = sizeof(struct postern_module),              \
		__VA_ARGS__}

/* The module's name, as loaded. */
POSTERN_API const char *postern_mod_name(const struct postern_mod *mod);

/* Attach the module's private context; the module owns and frees it. */
POSTERN_API void postern_mod_set_data(struct postern_mod *mod, void *data);
POSTERN_API void *postern_mod_data(const struct postern_mod *mod);

/*
 * Resolve a path from the configuration: absolute paths are returned as they
 * are, relative ones are taken relative to the daemon's base_dir. The result
 * is malloc'ed and owned by the caller.
 */
POSTERN_API char *postern_mod_path(const struct postern_mod *mod, const char *path);

/*
 * The uid and gid the daemon runs as once init is over (its own when it
 * does not drop privileges). A module that creates files or directories in
 * init, still as root, gives them to this user.
 */
POSTERN_API void postern_mod_run_ids(const struct postern_mod *mod, uid_t *uid_r, gid_t *gid_r);

/* True once graceful shutdown has begun (the stop hooks have been called). */
POSTERN_API bool postern_mod_shutting_down(const struct postern_mod *mod);

/* The core's version string and its ABI version. */
POSTERN_API const char *postern_core_version(void);
POSTERN_API uint32_t postern_core_abi_version(void);

#endif
