/*
 * Walking configuration nodes from a module (the postern_cfg_* accessors)
 * and saying where a node came from: errors about a setting always carry
 * the file and line the admin has to edit.
 *
 * Not here: typed settings tables (settings.c).
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config_private.h"

/* ---- where a node came from --------------------------------------------- */

const char *config_node_file(const config_setting_t *node)
{
	for (const config_setting_t *n = node; n != NULL; n = n->parent) {
		if (n->file != NULL)
			return n->file;
	}
	/* Groups created on demand have no file of their own. */
	struct config *config = config_of_node(node);

	return config != NULL ? config->file : NULL;
}

char *config_node_path(const config_setting_t *node)
{
	if (node == NULL || node->parent == NULL)
		return xstrdup("");

	char *parent = config_node_path(node->parent);
	char *path;

	if (node->name != NULL)
		path = parent[0] == '\0' ? xstrdup(node->name)
					 : xasprintf("%s.%s", parent, node->name);
	else
		path = xasprintf("%s[%d]", parent, config_setting_index(node));
	free(parent);
	return path;
}

const char *config_type_name(int type)
{
	switch (type) {
	case CONFIG_TYPE_GROUP:
		return "a group";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		return "an integer";
	case CONFIG_TYPE_FLOAT:
		return "a float";
	case CONFIG_TYPE_STRING:
		return "a string";
	case CONFIG_TYPE_BOOL:
		return "a boolean";
	case CONFIG_TYPE_ARRAY:
		return "an array";
	case CONFIG_TYPE_LIST:
		return "a list";
	default:
		return "nothing";
	}
}

static char *xvasprintf_local(const char *fmt, va_list args) POSTERN_PRINTF(1, 0);

static char *xvasprintf_local(const char *fmt, va_list args)
{
	va_list copy;

	va_copy(copy, args);
	int len = vsnprintf(NULL, 0, fmt, copy);
	va_end(copy);
	if (len < 0)
		return xstrdup("(error message could not be formatted)");

	char *str = xmalloc((size_t)len + 1);

	vsnprintf(str, (size_t)len + 1, fmt, args);
	return str;
}

const char *config_verror(char **buf, const config_setting_t *node, const char *fmt,
			  va_list args)
{
	char *msg = xvasprintf_local(fmt, args);
	const char *file = node != NULL ? config_node_file(node) : NULL;
	unsigned line = node != NULL ? node->line : 0;
	char *full;

	if (file != NULL && line > 0)
		full = xasprintf("%s:%u: %s", file, line, msg);
	else if (file != NULL)
		full = xasprintf("%s: %s", file, msg);
	else
		full = xstrdup(msg);
	free(msg);
	/* Only now: an argument may have been the old message. */
	free(*buf);
	*buf = full;
	return full;
}

const char *config_error(char **buf, const config_setting_t *node, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	const char *error = config_verror(buf, node, fmt, args);
	va_end(args);
	return error;
}

/* ---- the public walkers ------------------------------------------------- */

const struct postern_cfg *postern_cfg_lookup(const struct postern_cfg *group, const char *key)
{
	const config_setting_t *node = cfg_node(group);

	if (node == NULL || key == NULL || !config_setting_is_group(node))
		return NULL;
	/* libconfig's lookup takes a non-const node but does not change it. */
	return cfg_public(config_setting_lookup((config_setting_t *)node, key));
}

unsigned postern_cfg_count(const struct postern_cfg *cfg)
{
	const config_setting_t *node = cfg_node(cfg);

	if (node == NULL || !config_setting_is_aggregate(node))
		return 0;
	return (unsigned)config_setting_length(node);
}

const struct postern_cfg *postern_cfg_elem(const struct postern_cfg *cfg, unsigned index)
{
	if (index >= postern_cfg_count(cfg))
		return NULL;
	return cfg_public(config_setting_get_elem(cfg_node(cfg), index));
}

const char *postern_cfg_name(const struct postern_cfg *cfg)
{
	const config_setting_t *node = cfg_node(cfg);

	return node != NULL ? config_setting_name(node) : NULL;
}

bool postern_cfg_is_group(const struct postern_cfg *cfg)
{
	const config_setting_t *node = cfg_node(cfg);

	return node != NULL && config_setting_is_group(node);
}

const char *postern_cfg_string(const struct postern_cfg *cfg)
{
	const config_setting_t *node = cfg_node(cfg);

	if (node == NULL || config_setting_type(node) != CONFIG_TYPE_STRING)
		return NULL;
	return config_setting_get_string(node);
}

const char *postern_cfg_file(const struct postern_cfg *cfg)
{
	const config_setting_t *node = cfg_node(cfg);

	return node != NULL ? config_node_file(node) : NULL;
}

unsigned postern_cfg_line(const struct postern_cfg *cfg)
{
	const config_setting_t *node = cfg_node(cfg);

	return node != NULL ? node->line : 0;
}

const char *postern_cfg_error(struct postern_mod *mod, const struct postern_cfg *cfg,
			      const char *fmt, ...)
{
	assert(mod != NULL);
	va_list args;

	va_start(args, fmt);
	const char *error = config_verror(&mod->error_buf, cfg_node(cfg), fmt, args);
	va_end(args);
	return error;
}
