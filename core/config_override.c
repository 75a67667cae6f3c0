/*
 * `posternd -o PATH=VALUE`: change one setting of the loaded file from the
 * command line, without editing the file (tests, one-off debugging runs).
 * PATH is dotted through groups (`smtp.listen`, `queue-store.delay_warning`,
 * `log_level`) and groups along it are created when missing; VALUE is in
 * config syntax (`"20s"`, `5`, `true`, `("smtp", "pop3be")`, `{ a = 1; }`).
 *
 * A value is parsed by reading the tiny document "v = VALUE" and grafting
 * a deep copy of the parsed node into the tree (libconfig can neither parse
 * a lone value nor copy a node). The same parser reads the default values
 * of settings tables.
 */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config_private.h"

/* Characters of a value that may be written without quotes. Deliberately
 * no brackets, quotes, commas, '=' or blanks: text with those is meant as
 * config syntax and its errors are reported, not papered over. */
static bool is_bare_word(const char *text)
{
	if (*text == '\0')
		return false;
	for (const char *p = text; *p != '\0'; p++) {
		if (!isalnum((unsigned char)*p) && strchr("_.:/@+-", *p) == NULL)
			return false;
	}
	return true;
}

/* libconfig 1.5 reads a decimal integer beyond 32 bits without its L
 * suffix as a truncated 32-bit one, silently. Where we still have the
 * text, add the L; a number beyond 64 bits is an error. 0 or -1. */
static int widen_integer(const char *text, char **doc_r)
{
	const char *p = text + (*text == '-');
	char *end;

	if (*p == '\0' || strspn(p, "0123456789") != strlen(p))
		return 0;
	errno = 0;
	long long value = strtoll(text, &end, 10);

	if (errno == ERANGE)
		return -1;
	if (value < INT32_MIN || value > INT32_MAX)
		*doc_r = xasprintf("v = %sL;\n", text);
	return 0;
}

int config_value_parse(config_t *scratch, const char *text, const config_setting_t **value_r,
		       char **error_buf)
{
	char *doc = NULL;

	if (widen_integer(text, &doc) < 0) {
		config_error(error_buf, NULL, "integer out of range");
		return -1;
	}
	/* The newline before ';' keeps a trailing // comment from eating it. */
	if (doc == NULL)
		doc = xasprintf("v = %s\n;\n", text);
	int ok = config_read_string(scratch, doc);

	free(doc);
	if (ok != CONFIG_TRUE && is_bare_word(text)) {
		/* A bare word holds no quote or backslash: safe to wrap. */
		doc = xasprintf("v = \"%s\";\n", text);
		ok = config_read_string(scratch, doc);
		free(doc);
	}
	if (ok != CONFIG_TRUE) {
		const char *why = config_error_text(scratch);

		config_error(error_buf, NULL, "%s", why != NULL ? why : "not a value");
		return -1;
	}

	const config_setting_t *root = config_root_setting(scratch);
	const config_setting_t *value = config_setting_get_member(root, "v");

	/* "1; w = 2" reads as two settings: that is not one value. */
	if (value == NULL || config_setting_length(root) != 1) {
		config_error(error_buf, NULL, "not a single value");
		return -1;
	}
	*value_r = value;
	return 0;
}

/* Undo a half-made copy. */
static void remove_node(config_setting_t *node)
{
	config_setting_t *parent = config_setting_parent(node);
	int index = config_setting_index(node);

	assert(parent != NULL && index >= 0);
	config_setting_remove_elem(parent, (unsigned)index);
}

static int copy_value(config_setting_t *dst, const config_setting_t *src, const char *file)
{
	switch (config_setting_type(src)) {
	case CONFIG_TYPE_INT:
		config_setting_set_int(dst, config_setting_get_int(src));
		config_setting_set_format(dst, config_setting_get_format(src));
		return 0;
	case CONFIG_TYPE_INT64:
		config_setting_set_int64(dst, config_setting_get_int64(src));
		config_setting_set_format(dst, config_setting_get_format(src));
		return 0;
	case CONFIG_TYPE_FLOAT:
		config_setting_set_float(dst, config_setting_get_float(src));
		return 0;
	case CONFIG_TYPE_STRING:
		config_setting_set_string(dst, config_setting_get_string(src));
		return 0;
	case CONFIG_TYPE_BOOL:
		config_setting_set_bool(dst, config_setting_get_bool(src));
		return 0;
	case CONFIG_TYPE_GROUP:
	case CONFIG_TYPE_LIST:
	case CONFIG_TYPE_ARRAY: {
		unsigned count = (unsigned)config_setting_length(src);

		for (unsigned i = 0; i < count; i++) {
			const config_setting_t *elem = config_setting_get_elem(src, i);

			if (config_node_copy(dst, config_setting_name(elem), elem, file) == NULL)
				return -1;
		}
		return 0;
	}
	default:
		return -1;
	}
}

config_setting_t *config_node_copy(config_setting_t *parent, const char *name,
				   const config_setting_t *src, const char *file)
{
	assert(config_setting_is_aggregate(parent));
	/* Only groups name their members. */
	const char *member = config_setting_is_group(parent) ? name : NULL;
	config_setting_t *dst = config_setting_add(parent, member, config_setting_type(src));

	if (dst == NULL)
		return NULL;
	/* `file` outlives the node: an interned string of its config. */
	dst->file = file;
	dst->line = 0;
	if (copy_value(dst, src, file) < 0) {
		remove_node(dst);
		return NULL;
	}
	return dst;
}

/* libconfig's rule for setting names, checked here so that -o reports the
 * name instead of a bare failure. */
static bool is_setting_name(const char *name, size_t len)
{
	if (len == 0 || !isalpha((unsigned char)name[0]))
		return false;
	for (size_t i = 1; i < len; i++) {
		if (!isalnum((unsigned char)name[i]) && name[i] != '-' && name[i] != '_')
			return false;
	}
	return true;
}

/* Find or create the groups along `path` up to its last component; return
 * the parent group and the last name in *leaf_r. */
static config_setting_t *walk_path(struct config *config, const char *override,
				   const char *path, const char *label, char **leaf_r,
				   const char **error_r)
{
	config_setting_t *group = config_root_setting(&config->lc);
	const char *p = path;

	for (;;) {
		size_t len = strcspn(p, ".");

		if (!is_setting_name(p, len)) {
			*error_r = config_error(&config->error_buf, NULL,
						"-o %s: '%.*s' is not a valid setting name in '%s'",
						override, (int)len, p, path);
			return NULL;
		}
		char *name = xstrndup(p, len);

		if (p[len] == '\0') {
			*leaf_r = name;
			return group;
		}
		config_setting_t *next = config_setting_get_member(group, name);

		if (next == NULL) {
			next = config_setting_add(group, name, CONFIG_TYPE_GROUP);
			assert(next != NULL); /* the name is valid and not taken */
			next->file = label;
			next->line = 0;
		} else if (!config_setting_is_group(next)) {
			*error_r = config_error(&config->error_buf, NULL,
						"-o %s: '%.*s' is %s, not a group", override,
						(int)(p + len - path), path,
						config_type_name(config_setting_type(next)));
			free(name);
			return NULL;
		}
		free(name);
		group = next;
		p += len + 1;
	}
}

int config_apply_override(struct config *config, const char *override, const char **error_r)
{
	const char *eq = strchr(override, '=');

	if (eq == NULL) {
		*error_r = config_error(&config->error_buf, NULL,
					"-o %s: expected PATH=VALUE", override);
		return -1;
	}

	char *path = xstrndup(override, (size_t)(eq - override));
	char *label_text = xasprintf("-o %s", override);
	const char *label = config_intern(config, label_text);
	config_t scratch;
	const config_setting_t *value;
	char *leaf = NULL;
	int ret = -1;

	free(label_text);
	config_init(&scratch);
	if (config_value_parse(&scratch, eq + 1, &value, &config->error_buf) < 0) {
		*error_r = config_error(&config->error_buf, NULL, "-o %s: %s", override,
					config->error_buf);
		goto out;
	}

	config_setting_t *group = walk_path(config, override, path, label, &leaf, error_r);

	if (group == NULL)
		goto out;
	if (config_setting_get_member(group, leaf) != NULL)
		config_setting_remove(group, leaf);
	if (config_node_copy(group, leaf, value, label) == NULL) {
		*error_r = config_error(&config->error_buf, NULL, "-o %s: cannot set '%s'",
					override, path);
		goto out;
	}
	ret = 0;
out:
	config_destroy(&scratch);
	free(leaf);
	free(path);
	return ret;
}
