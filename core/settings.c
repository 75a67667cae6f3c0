/*
 * Settings tables: a module (or the core, for the top level) describes its
 * settings as data and postern_cfg_parse() fills its struct. Defaults,
 * types, units, bounds and unknown keys are handled here once, so every
 * error a module's admin sees has the same shape: "file:line: message".
 *
 * Durations and sizes are read by hand rather than with strtoull(): it
 * accepts blanks, signs and wraps negative numbers around, all of which
 * would turn a typo into a silently huge limit.
 */
#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config_private.h"

/* ---- durations and sizes ------------------------------------------------ */

/* Decimal digits at *text, at least one, without overflow. */
static int parse_digits(const char **text, uint64_t *value_r)
{
	const char *p = *text;
	uint64_t value = 0;

	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		unsigned digit = (unsigned)(*p - '0');

		if (value > (UINT64_MAX - digit) / 10)
			return -1;
		value = value * 10 + digit;
	}
	*text = p;
	*value_r = value;
	return 0;
}

static int scale(uint64_t value, uint64_t unit, uint64_t *result_r)
{
	if (value > UINT64_MAX / unit)
		return -1;
	*result_r = value * unit;
	return 0;
}

int postern_parse_duration(const char *text, uint64_t *msecs_r)
{
	static const struct {
		const char *suffix;
		uint64_t msecs;
	} units[] = {
		{ "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60 * 1000 },
		{ "h", 3600 * 1000 }, { "d", 86400 * 1000 }, { "w", 7 * 86400 * 1000 },
	};
	uint64_t value;

	if (text == NULL || parse_digits(&text, &value) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(text, units[i].suffix) == 0)
			return scale(value, units[i].msecs, msecs_r);
	}
	return -1;
}

int postern_parse_size(const char *text, uint64_t *bytes_r)
{
	uint64_t value, unit = 1;

	if (text == NULL || parse_digits(&text, &value) < 0)
		return -1;
	switch (*text) {
	case 'k': case 'K':
		unit = 1ULL << 10;
		break;
	case 'm': case 'M':
		unit = 1ULL << 20;
		break;
	case 'g': case 'G':
		unit = 1ULL << 30;
		break;
	case 't': case 'T':
		unit = 1ULL << 40;
		break;
	default:
		break;
	}
	if (unit != 1)
		text++;
	/* "10M" and "10MB" alike; "512B" too. */
	if (*text == 'B')
		text++;
	if (*text != '\0')
		return -1;
	return scale(value, unit, bytes_r);
}

void settings_format_duration(uint64_t msecs, char *buf, size_t size)
{
	static const struct {
		const char *suffix;
		uint64_t secs;
	} units[] = {
		{ "w", 7 * 86400 }, { "d", 86400 }, { "h", 3600 }, { "m", 60 }, { "s", 1 },
	};

	if (msecs % 1000 != 0) {
		snprintf(buf, size, "%llums", (unsigned long long)msecs);
		return;
	}
	uint64_t secs = msecs / 1000;

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (secs % units[i].secs == 0 && (secs != 0 || units[i].secs == 1)) {
			snprintf(buf, size, "%llu%s", (unsigned long long)(secs / units[i].secs),
				 units[i].suffix);
			return;
		}
	}
}

void settings_format_size(uint64_t bytes, char *buf, size_t size)
{
	static const char suffixes[] = "TGMk";

	for (unsigned i = 0; i < 4; i++) {
		uint64_t unit = 1ULL << (10 * (4 - i));

		if (bytes != 0 && bytes % unit == 0) {
			snprintf(buf, size, "%llu%c", (unsigned long long)(bytes / unit),
				 suffixes[i]);
			return;
		}
	}
	snprintf(buf, size, "%llu", (unsigned long long)bytes);
}

/* ---- one setting -------------------------------------------------------- */

/* Where a setting's value goes in the destination struct. */
#define FIELD(dest, def, type) ((type *)(void *)((char *)(dest) + (def)->offset))

static void format_bound(const struct postern_setting_def *def, uint64_t value, bool negative,
			 char *buf, size_t size)
{
	if (negative)
		snprintf(buf, size, "%lld", (long long)(int64_t)value);
	else if (def->type == POSTERN_SET_DURATION)
		settings_format_duration(value, buf, size);
	else if (def->type == POSTERN_SET_SIZE)
		settings_format_size(value, buf, size);
	else
		snprintf(buf, size, "%llu", (unsigned long long)value);
}

static bool bounded(const struct postern_setting_def *def)
{
	return def->min != 0 || def->max != 0;
}

/* The range message; `value` is shown as the admin would write it. */
static char *range_error(const struct postern_setting_def *def, const char *value)
{
	char lo[32], hi[32];

	format_bound(def, (uint64_t)def->min, def->min < 0, lo, sizeof(lo));
	/* A max below min means "no upper bound" (min = 1, max = 0). */
	if (def->max < def->min)
		return xasprintf("'%s' must be at least %s, not %s", def->name, lo, value);
	format_bound(def, (uint64_t)def->max, def->max < 0, hi, sizeof(hi));
	return xasprintf("'%s' must be between %s and %s, not %s", def->name, lo, hi, value);
}

static int check_signed(const struct postern_setting_def *def, int64_t value, char **msg_r)
{
	if (!bounded(def) || (value >= def->min && (def->max < def->min || value <= def->max)))
		return 0;

	char text[32];

	snprintf(text, sizeof(text), "%lld", (long long)value);
	*msg_r = range_error(def, text);
	return -1;
}

static int check_unsigned(const struct postern_setting_def *def, uint64_t value, char **msg_r)
{
	if (!bounded(def))
		return 0;

	bool above_min = def->min <= 0 || value >= (uint64_t)def->min;
	bool below_max = def->max < def->min || (def->max >= 0 && value <= (uint64_t)def->max);

	if (above_min && below_max)
		return 0;

	char text[32];

	format_bound(def, value, false, text, sizeof(text));
	*msg_r = range_error(def, text);
	return -1;
}

static bool is_integer(const config_setting_t *node)
{
	int type = config_setting_type(node);

	return type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64;
}

static int64_t get_integer(const config_setting_t *node)
{
	if (config_setting_type(node) == CONFIG_TYPE_INT)
		return config_setting_get_int(node);
	return config_setting_get_int64(node);
}

static char *wrong_type(const struct postern_setting_def *def, const config_setting_t *node,
			const char *expected)
{
	return xasprintf("'%s' must be %s, not %s", def->name, expected,
			 config_type_name(config_setting_type(node)));
}

/* DURATION and SIZE: an integer in the base unit (seconds, bytes) or a
 * string with a unit. */
static int convert_unit(const struct postern_setting_def *def, const config_setting_t *node,
			uint64_t *value_r, char **msg_r)
{
	bool duration = def->type == POSTERN_SET_DURATION;
	const char *expected = duration
		? "a duration (\"250ms\", \"30s\", \"5m\", \"4h\", \"5d\", \"1w\") or an integer of seconds"
		: "a size (\"512\", \"64k\", \"10M\", \"1G\") or an integer of bytes";

	if (is_integer(node)) {
		int64_t value = get_integer(node);

		if (value < 0) {
			*msg_r = xasprintf("'%s' must not be negative", def->name);
			return -1;
		}
		if (scale((uint64_t)value, duration ? 1000 : 1, value_r) < 0) {
			*msg_r = xasprintf("'%s' is too large", def->name);
			return -1;
		}
		return 0;
	}
	if (config_setting_type(node) != CONFIG_TYPE_STRING) {
		*msg_r = wrong_type(def, node, expected);
		return -1;
	}

	const char *text = config_setting_get_string(node);
	int ret = duration ? postern_parse_duration(text, value_r)
			   : postern_parse_size(text, value_r);

	if (ret < 0) {
		*msg_r = xasprintf("'%s' must be %s; \"%s\" is not one, or too large", def->name,
				   expected, text);
		return -1;
	}
	return 0;
}

static int convert_strlist(const struct postern_setting_def *def, const config_setting_t *node,
			   char ***list_r, char **msg_r)
{
	const char *expected = "a string or a list of strings";
	char **list;

	if (config_setting_type(node) == CONFIG_TYPE_STRING) {
		list = xcalloc(2, sizeof(char *));
		list[0] = xstrdup(config_setting_get_string(node));
		*list_r = list;
		return 0;
	}
	if (!config_setting_is_list(node) && !config_setting_is_array(node)) {
		*msg_r = wrong_type(def, node, expected);
		return -1;
	}

	unsigned count = (unsigned)config_setting_length(node);

	list = xcalloc((size_t)count + 1, sizeof(char *));
	for (unsigned i = 0; i < count; i++) {
		const config_setting_t *elem = config_setting_get_elem(node, i);

		if (config_setting_type(elem) != CONFIG_TYPE_STRING) {
			*msg_r = xasprintf("'%s' must be %s; element %u is %s", def->name, expected,
					   i + 1, config_type_name(config_setting_type(elem)));
			for (unsigned j = 0; j < i; j++)
				free(list[j]);
			free(list);
			return -1;
		}
		list[i] = xstrdup(config_setting_get_string(elem));
	}
	*list_r = list;
	return 0;
}

/* Store `node`'s value in dest's field for `def`; -1 with a message
 * (without file and line: the caller knows where the value came from). */
static int convert(const struct postern_setting_def *def, const config_setting_t *node,
		   const char *base_dir, void *dest, char **msg_r)
{
	int type = config_setting_type(node);

	switch (def->type) {
	case POSTERN_SET_STRING:
		if (type != CONFIG_TYPE_STRING) {
			*msg_r = wrong_type(def, node, "a string");
			return -1;
		}
		*FIELD(dest, def, char *) = xstrdup(config_setting_get_string(node));
		return 0;
	case POSTERN_SET_PATH:
		if (type != CONFIG_TYPE_STRING) {
			*msg_r = wrong_type(def, node, "a path (a string)");
			return -1;
		}
		if (config_setting_get_string(node)[0] == '\0') {
			*msg_r = xasprintf("'%s' must not be empty", def->name);
			return -1;
		}
		*FIELD(dest, def, char *) =
			config_path_resolve(base_dir, config_setting_get_string(node));
		return 0;
	case POSTERN_SET_INT: {
		if (!is_integer(node)) {
			*msg_r = wrong_type(def, node, "an integer");
			return -1;
		}
		int64_t value = get_integer(node);

		if (check_signed(def, value, msg_r) < 0)
			return -1;
		*FIELD(dest, def, int64_t) = value;
		return 0;
	}
	case POSTERN_SET_UINT: {
		if (!is_integer(node)) {
			*msg_r = wrong_type(def, node, "an integer");
			return -1;
		}
		int64_t value = get_integer(node);

		if (value < 0) {
			*msg_r = xasprintf("'%s' must not be negative", def->name);
			return -1;
		}
		if (check_unsigned(def, (uint64_t)value, msg_r) < 0)
			return -1;
		*FIELD(dest, def, uint64_t) = (uint64_t)value;
		return 0;
	}
	case POSTERN_SET_BOOL:
		if (type != CONFIG_TYPE_BOOL) {
			*msg_r = wrong_type(def, node, "true or false");
			return -1;
		}
		*FIELD(dest, def, bool) = config_setting_get_bool(node) != 0;
		return 0;
	case POSTERN_SET_DURATION:
	case POSTERN_SET_SIZE: {
		uint64_t value;

		if (convert_unit(def, node, &value, msg_r) < 0 ||
		    check_unsigned(def, value, msg_r) < 0)
			return -1;
		*FIELD(dest, def, uint64_t) = value;
		return 0;
	}
	case POSTERN_SET_STRLIST:
		return convert_strlist(def, node, FIELD(dest, def, char **), msg_r);
	case POSTERN_SET_NODE:
		*FIELD(dest, def, const struct postern_cfg *) = cfg_public(node);
		return 0;
	}
	*msg_r = xasprintf("setting '%s' has an unknown type %d", def->name, (int)def->type);
	return -1;
}

/* A default is text in config syntax, parsed like a -o value. A bad one is
 * the module's bug, but reported like any error rather than aborting. */
static int convert_default(const struct postern_setting_def *def, const char *base_dir,
			   void *dest, char **error_buf, const char **error_r)
{
	config_t scratch;
	const config_setting_t *node;
	char *msg = NULL;
	int ret = 0;

	if (def->type == POSTERN_SET_NODE) {
		/* The node would point into a scratch tree freed below. */
		*error_r = config_error(error_buf, NULL,
					"setting '%s': a NODE setting can have no default",
					def->name);
		return -1;
	}
	config_init(&scratch);
	if (config_value_parse(&scratch, def->default_value, &node, error_buf) < 0) {
		*error_r = config_error(error_buf, NULL, "setting '%s': bad default '%s': %s",
					def->name, def->default_value, *error_buf);
		ret = -1;
	} else if (convert(def, node, base_dir, dest, &msg) < 0) {
		*error_r = config_error(error_buf, NULL, "setting '%s': bad default '%s': %s",
					def->name, def->default_value, msg);
		free(msg);
		ret = -1;
	}
	config_destroy(&scratch);
	return ret;
}

/* ---- a whole group ------------------------------------------------------ */

static const struct postern_setting_def *find_def(const struct postern_setting_def *defs,
						  const char *name)
{
	for (; defs->name != NULL; defs++) {
		if (strcmp(defs->name, name) == 0)
			return defs;
	}
	return NULL;
}

/* Edit distance between two short names, capped: only to suggest. */
static unsigned distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned row[65];

	if (la > 64 || lb > 64)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		row[j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++) {
		unsigned diag = row[0];

		row[0] = (unsigned)i;
		for (size_t j = 1; j <= lb; j++) {
			unsigned up = row[j];
			unsigned best = diag + (a[i - 1] != b[j - 1]);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

static const char *suggest(const struct postern_setting_def *defs, const char *name)
{
	const char *best = NULL;
	unsigned best_distance = 3; /* more than 2 edits is not a typo */

	for (; defs->name != NULL; defs++) {
		unsigned d = distance(defs->name, name);

		if (d < best_distance) {
			best = defs->name;
			best_distance = d;
		}
	}
	return best;
}

static int check_unknown(const config_setting_t *group, const struct postern_setting_def *defs,
			 bool top_level, char **error_buf, const char **error_r)
{
	unsigned count = (unsigned)config_setting_length(group);

	for (unsigned i = 0; i < count; i++) {
		const config_setting_t *node = config_setting_get_elem(group, i);
		const char *name = config_setting_name(node);

		if (find_def(defs, name) != NULL)
			continue;
		if (top_level && config_setting_is_group(node))
			continue; /* a module's group */

		const char *near = suggest(defs, name);
		char *hint = near != NULL ? xasprintf(" (did you mean '%s'?)", near) : xstrdup("");
		char *path = config_node_path(group);

		if (path[0] == '\0')
			*error_r = config_error(error_buf, node, "unknown setting '%s'%s", name,
						hint);
		else
			*error_r = config_error(error_buf, node,
						"unknown setting '%s' in group '%s'%s", name, path,
						hint);
		free(path);
		free(hint);
		return -1;
	}
	return 0;
}

/* So that postern_cfg_free() is safe on any error path. */
static void clear_fields(const struct postern_setting_def *defs, void *dest)
{
	for (; defs->name != NULL; defs++) {
		switch (defs->type) {
		case POSTERN_SET_STRING:
		case POSTERN_SET_PATH:
			*FIELD(dest, defs, char *) = NULL;
			break;
		case POSTERN_SET_INT:
			*FIELD(dest, defs, int64_t) = 0;
			break;
		case POSTERN_SET_UINT:
		case POSTERN_SET_DURATION:
		case POSTERN_SET_SIZE:
			*FIELD(dest, defs, uint64_t) = 0;
			break;
		case POSTERN_SET_BOOL:
			*FIELD(dest, defs, bool) = false;
			break;
		case POSTERN_SET_STRLIST:
			*FIELD(dest, defs, char **) = NULL;
			break;
		case POSTERN_SET_NODE:
			*FIELD(dest, defs, const struct postern_cfg *) = NULL;
			break;
		}
	}
}

int settings_parse(const char *base_dir, const config_setting_t *group,
		   const struct postern_setting_def *defs, void *dest, bool top_level,
		   char **error_buf, const char **error_r)
{
	assert(base_dir != NULL && defs != NULL && dest != NULL);
	clear_fields(defs, dest);

	if (group != NULL && !config_setting_is_group(group)) {
		char *path = config_node_path(group);

		*error_r = config_error(error_buf, group, "'%s' must be a group, not %s", path,
					config_type_name(config_setting_type(group)));
		free(path);
		return -1;
	}
	if (group != NULL && check_unknown(group, defs, top_level, error_buf, error_r) < 0)
		return -1;

	for (const struct postern_setting_def *def = defs; def->name != NULL; def++) {
		const config_setting_t *node =
			group != NULL ? config_setting_get_member(group, def->name) : NULL;
		char *msg = NULL;

		if (node != NULL) {
			if (convert(def, node, base_dir, dest, &msg) < 0) {
				*error_r = config_error(error_buf, node, "%s", msg);
				free(msg);
				postern_cfg_free(defs, dest);
				return -1;
			}
		} else if (def->default_value != NULL) {
			if (convert_default(def, base_dir, dest, error_buf, error_r) < 0) {
				postern_cfg_free(defs, dest);
				return -1;
			}
		}
	}
	return 0;
}

/* ---- the public entry points -------------------------------------------- */

/* The base dir for a module's PATH settings: that of the config the group
 * belongs to, else the one in force, else the default. */
static const char *mod_base_dir(const struct postern_mod *mod, const config_setting_t *group)
{
	const struct config *config = config_of_node(group);

	if (config == NULL && mod->core != NULL)
		config = mod->core->config;
	if (config != NULL)
		return config_base_dir(config);
	if (mod->core != NULL && mod->core->settings.base_dir != NULL)
		return mod->core->settings.base_dir;
	return POSTERN_DEFAULT_BASE_DIR;
}

int postern_cfg_parse(struct postern_mod *mod, const struct postern_cfg *cfg,
		      const struct postern_setting_def *defs, void *dest, const char **error_r)
{
	assert(mod != NULL);
	const config_setting_t *group = cfg_node(cfg);

	return settings_parse(mod_base_dir(mod, group), group, defs, dest, false,
			      &mod->error_buf, error_r);
}

void postern_cfg_free(const struct postern_setting_def *defs, void *dest)
{
	for (; defs->name != NULL; defs++) {
		switch (defs->type) {
		case POSTERN_SET_STRING:
		case POSTERN_SET_PATH:
			free(*FIELD(dest, defs, char *));
			*FIELD(dest, defs, char *) = NULL;
			break;
		case POSTERN_SET_STRLIST: {
			char **list = *FIELD(dest, defs, char **);

			for (unsigned i = 0; list != NULL && list[i] != NULL; i++)
				free(list[i]);
			free(list);
			*FIELD(dest, defs, char **) = NULL;
			break;
		}
		default:
			break;
		}
	}
}

/* ---- reload: settings only a restart changes ---- */

static bool key_listed(const char *name, const char *const *keys)
{
	for (; *keys != NULL; keys++) {
		size_t len = strlen(*keys);

		if (len > 0 && (*keys)[len - 1] == '*' ? strncmp(name, *keys, len - 1) == 0
						       : strcmp(name, *keys) == 0)
			return true;
	}
	return false;
}

static bool str_equal(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool strlist_equal(char *const *a, char *const *b)
{
	for (; a != NULL && b != NULL && *a != NULL && *b != NULL; a++, b++) {
		if (strcmp(*a, *b) != 0)
			return false;
	}
	return (a == NULL || *a == NULL) && (b == NULL || *b == NULL);
}

static size_t setting_size(enum postern_setting_type type)
{
	switch (type) {
	case POSTERN_SET_STRING:
	case POSTERN_SET_PATH:
		return sizeof(char *);
	case POSTERN_SET_INT:
		return sizeof(int64_t);
	case POSTERN_SET_UINT:
	case POSTERN_SET_DURATION:
	case POSTERN_SET_SIZE:
		return sizeof(uint64_t);
	case POSTERN_SET_BOOL:
		return sizeof(bool);
	case POSTERN_SET_STRLIST:
		return sizeof(char **);
	case POSTERN_SET_NODE:
		return sizeof(const struct postern_cfg *);
	}
	return 0;
}

static bool setting_equal(const struct postern_setting_def *def, const void *a, const void *b)
{
	switch (def->type) {
	case POSTERN_SET_STRING:
	case POSTERN_SET_PATH:
		return str_equal(*FIELD(a, def, char *const), *FIELD(b, def, char *const));
	case POSTERN_SET_STRLIST:
		return strlist_equal(*FIELD(a, def, char **const), *FIELD(b, def, char **const));
	case POSTERN_SET_NODE:
		return true; /* borrowed nodes: the module compares what it parsed */
	default:
		return memcmp(FIELD(a, def, const char), FIELD(b, def, const char),
			      setting_size(def->type)) == 0;
	}
}

unsigned postern_cfg_keep_running(struct postern_mod *mod, const struct postern_setting_def *defs,
				  const char *const *keys, void *next, void *running)
{
	unsigned changed = 0;

	for (; defs->name != NULL; defs++) {
		size_t size = setting_size(defs->type);
		char tmp[sizeof(uint64_t)];

		if (!key_listed(defs->name, keys) || setting_equal(defs, next, running))
			continue;
		postern_log(mod, POSTERN_LOG_WARNING,
			    "reload: %s changes only at restart; keeping the running value",
			    defs->name);
		changed++;
		memcpy(tmp, FIELD(next, defs, char), size);
		memcpy(FIELD(next, defs, char), FIELD(running, defs, char), size);
		memcpy(FIELD(running, defs, char), tmp, size);
	}
	return changed;
}
