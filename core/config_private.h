/*
 * What the configuration files share and the rest of the core does not
 * need: the struct behind `struct config`, the one cast between the public
 * opaque node and libconfig's node, error formatting with file and line,
 * value parsing in config syntax, the settings-table engine and the writer.
 *
 *   config.c           loading, base_dir, module groups, the core's settings
 *   config_node.c      the public node walkers and postern_cfg_error()
 *   config_override.c  -o PATH=VALUE, value parsing, deep copies of nodes
 *   settings.c         postern_cfg_parse(), durations and sizes
 *   config_dump.c      `posternd -n`: writing a tree back in config syntax
 */
#ifndef POSTERN_CONFIG_PRIVATE_H
#define POSTERN_CONFIG_PRIVATE_H

#include <stdarg.h>
#include <libconfig.h>
#include "core.h"

/* Used when the file says nothing about base_dir. */
#ifndef POSTERN_DEFAULT_BASE_DIR
#define POSTERN_DEFAULT_BASE_DIR "/var/lib/postern"
#endif

struct config {
	config_t lc;       /* the tree; its root's hook points back here */
	config_t spare;    /* an empty root group, for config_module_group() when
			    * the name cannot be a group of lc */
	char *file;        /* as given to config_load() */
	char *dir;         /* directory of `file` as given ("etc", "."): the include dir */
	char *base_dir;    /* absolute and normalised */
	/* Strings that nodes' `file` fields point at instead of libconfig's
	 * own: included files joined with `dir`, and "-o PATH=VALUE" labels
	 * for nodes that came from the command line. */
	char **names;
	unsigned name_count;
	char *error_buf;   /* the last error returned for this config */
};

/* The only place where the public opaque node and libconfig's node meet:
 * a struct postern_cfg is a config_setting_t seen from outside. */
static inline const config_setting_t *cfg_node(const struct postern_cfg *cfg)
{
	return (const config_setting_t *)(const void *)cfg;
}

static inline const struct postern_cfg *cfg_public(const config_setting_t *node)
{
	return (const struct postern_cfg *)(const void *)node;
}

/* ---- config.c ----------------------------------------------------------- */
/* The config a node belongs to (through its root's hook), or NULL for nodes
 * of a scratch tree (defaults, -o values being parsed). */
struct config *config_of_node(const config_setting_t *node);
/* Keep `name` for the config's lifetime; returns the kept copy (one copy
 * per distinct string). */
const char *config_intern(struct config *config, const char *name);
/* `path` made absolute against `base_dir` (itself absolute) and normalised
 * lexically: no ".", "..", "//" or trailing "/". Malloc'ed. */
char *config_path_resolve(const char *base_dir, const char *path);
/* The core's settings table, also walked by config_dump(). */
extern const struct postern_setting_def core_setting_defs[];

/* ---- config_node.c ------------------------------------------------------ */
/* The file a node came from: its own, an ancestor's, or the config's file;
 * NULL when none is known. */
const char *config_node_file(const config_setting_t *node);
/* "smtp.tls", "smtp.rules[2]"; "" for the root. Malloc'ed. */
char *config_node_path(const config_setting_t *node);
/* "a string", "a list", ...: for "must be X, not Y" messages. */
const char *config_type_name(int type);
/* Format "file:line: message" (or "file: message" when the line is not
 * known, or just the message without a node) into *buf, freeing the old
 * contents only after formatting, so an argument may be the old *buf. */
const char *config_verror(char **buf, const config_setting_t *node, const char *fmt,
			  va_list args) POSTERN_PRINTF(3, 0);
const char *config_error(char **buf, const config_setting_t *node, const char *fmt, ...)
	POSTERN_PRINTF(3, 4);

/* ---- config_override.c -------------------------------------------------- */
/*
 * Parse `text`, a value in config syntax, by reading the document
 * "v = TEXT" into `scratch` (initialised by the caller, destroyed by the
 * caller after using the value). A bare word that is not valid config
 * syntax (30s, info, /var/spool, 127.0.0.1:25) is taken as a string, so
 * that defaults and -o values need no quotes for the common cases.
 * Returns 0 with *value_r, or -1 with a message in *error_buf.
 */
int config_value_parse(config_t *scratch, const char *text, const config_setting_t **value_r,
		       char **error_buf);
/* Add a deep copy of `src` to `parent` (a group: under `name`; a list or
 * an array: appended). Every copied node gets `file` (which must live as
 * long as the tree: config_intern() it) and line 0, since src's file and
 * line belong to a scratch document. Returns the copy, or NULL when
 * libconfig refuses it (a name that is not valid, a duplicate). */
config_setting_t *config_node_copy(config_setting_t *parent, const char *name,
				   const config_setting_t *src, const char *file);
/* Apply one "PATH=VALUE". 0, or -1 with *error_r in config->error_buf. */
int config_apply_override(struct config *config, const char *override, const char **error_r);

/* ---- settings.c --------------------------------------------------------- */
/*
 * The settings-table engine behind postern_cfg_parse() and
 * config_core_settings(). PATH settings resolve against `base_dir`
 * (absolute). `group` may be NULL: defaults only. With
 * `top_level`, members that are groups and not in `defs` are skipped: they
 * belong to modules. Errors go to *error_buf.
 */
int settings_parse(const char *base_dir, const config_setting_t *group,
		   const struct postern_setting_def *defs, void *dest, bool top_level,
		   char **error_buf, const char **error_r);
/* "30s", "1500ms", "2h": the shortest exact form of a duration. */
void settings_format_duration(uint64_t msecs, char *buf, size_t size);
/* "10M", "1500": the shortest exact form of a size. */
void settings_format_size(uint64_t bytes, char *buf, size_t size);

/* ---- config_dump.c ------------------------------------------------------ */
/* Write `node` as "name = value;" (or just the value inside a list) in
 * config syntax, indented by `depth` tabs. */
void config_write_setting(struct postern_str *out, const config_setting_t *node, unsigned depth);
/* A string as a config-syntax literal with quotes and escapes. */
void config_write_string(struct postern_str *out, const char *str);
/* Every setting of `defs` with its value in `src`, preceded by its help. */
void settings_dump(const struct postern_setting_def *defs, const void *src,
		   struct postern_str *out);

#endif
