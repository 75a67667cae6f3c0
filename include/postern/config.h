/*
 * Reading a module's configuration group.
 *
 * The configuration is a libconfig file; each module's settings live in a
 * group named after the module:
 *
 *   smtp = { listen = ("127.0.0.1:2525"); max_recipients = 1000; };
 *
 * A module describes its settings as data, a table of postern_setting_def,
 * and postern_cfg_parse() fills a struct from it: defaults, types, units
 * ("30s", "5m", "10M"), range checks and unknown keys are handled in one
 * place, errors carry file and line, and `posternd -n` can print every
 * setting with its value. Nodes are borrowed: they are valid only during the
 * hook call that received them; copy what you keep (parse does).
 */
#ifndef POSTERN_CONFIG_H
#define POSTERN_CONFIG_H

#include <postern/common.h>

struct postern_cfg;

enum postern_setting_type {
	POSTERN_SET_STRING = 1, /* char *, malloc'ed; NULL when unset without default */
	POSTERN_SET_PATH,       /* char *, made absolute against base_dir */
	POSTERN_SET_INT,        /* int64_t */
	POSTERN_SET_UINT,       /* uint64_t */
	POSTERN_SET_BOOL,       /* bool */
	POSTERN_SET_DURATION,   /* uint64_t milliseconds; "250ms", "30s", "5m", "4h", "5d" or an integer of seconds */
	POSTERN_SET_SIZE,       /* uint64_t bytes; "512", "64k", "10M", "1G" */
	POSTERN_SET_STRLIST,    /* char **, NULL-terminated; a string or a list of strings */
	POSTERN_SET_NODE,       /* const struct postern_cfg *: the raw node, for the module to walk (NULL if unset) */
};

struct postern_setting_def {
	const char *name;
	enum postern_setting_type type;
	size_t offset;             /* offsetof() the field in the module's settings struct */
	const char *default_value; /* in config syntax, as text: "30s", "true", "(\"a\", \"b\")"; NULL for none */
	const char *help;          /* one line, shown by `posternd -n` and in generated docs */
	/* Inclusive bounds for INT, UINT, DURATION and SIZE (in their units);
	 * both 0 means unbounded, and a max below min means no upper bound. */
	int64_t min, max;
};

/* Terminates a postern_setting_def table. */
#define POSTERN_SETTING_END { .name = NULL }

/*
 * Fill `dest` from the group `cfg` (which may be NULL: defaults only).
 * Unknown keys, wrong types and out-of-range values are errors, reported
 * with file and line. On error nothing needs freeing. Returns 0 or -1.
 */
POSTERN_API int postern_cfg_parse(struct postern_mod *mod, const struct postern_cfg *cfg,
				  const struct postern_setting_def *defs, void *dest,
				  const char **error_r);
/* Free what postern_cfg_parse() allocated in `dest` (strings, lists). */
POSTERN_API void postern_cfg_free(const struct postern_setting_def *defs, void *dest);

/*
 * For a reload hook (ABI 1.2): the settings named in `keys` (a NULL-ended
 * list; "auth_failure_*" matches by prefix) take effect only at a restart.
 * Where the freshly parsed `next` differs from `running`, the running value
 * is moved into `next` and the new one into `running` (freed with it), and
 * a warning names the key. Both structs come from postern_cfg_parse() with
 * the same table. Returns how many settings differed.
 */
POSTERN_API unsigned postern_cfg_keep_running(struct postern_mod *mod,
					      const struct postern_setting_def *defs,
					      const char *const *keys, void *next, void *running);

/* Walking nodes by hand, for nested groups and lists of groups. */
POSTERN_API const struct postern_cfg *postern_cfg_lookup(const struct postern_cfg *group,
							 const char *key);
/* Elements of a list, array or group; 0 for a scalar. */
POSTERN_API unsigned postern_cfg_count(const struct postern_cfg *node);
POSTERN_API const struct postern_cfg *postern_cfg_elem(const struct postern_cfg *node,
						       unsigned index);
/* The node's own name, NULL for list elements. */
POSTERN_API const char *postern_cfg_name(const struct postern_cfg *node);
POSTERN_API bool postern_cfg_is_group(const struct postern_cfg *node);
/* The node's value as a string; NULL when it is not a string. */
POSTERN_API const char *postern_cfg_string(const struct postern_cfg *node);
POSTERN_API const char *postern_cfg_file(const struct postern_cfg *node);
POSTERN_API unsigned postern_cfg_line(const struct postern_cfg *node);

/*
 * Format an error about a node as "file:line: message" (just the message
 * when `node` is NULL) into a buffer that
 * stays valid until the next call from the same module; returns it, ready
 * to be stored in *error_r.
 */
POSTERN_API const char *postern_cfg_error(struct postern_mod *mod, const struct postern_cfg *node,
					  const char *fmt, ...) POSTERN_PRINTF(3, 4);

/* Parse "30s", "5m", ... into milliseconds; 0 or -1. For values that do
 * not come from the config file (control commands). */
POSTERN_API int postern_parse_duration(const char *text, uint64_t *msecs_r);
/* Parse "64k", "10M", ... into bytes; 0 or -1. */
POSTERN_API int postern_parse_size(const char *text, uint64_t *bytes_r);

#endif
