/*
 * `posternd -n`: the configuration in force, written back in config syntax
 * so that it can be read again (and diffed, and kept). The core's settings
 * are shown with their effective values, defaults included; module groups
 * as the file and the -o overrides left them, since only a module knows its
 * own defaults.
 *
 * libconfig has a writer, but it writes to a FILE and does not say which
 * values were defaulted; ours writes to a postern_str.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config_private.h"

static void indent(struct postern_str *out, unsigned depth)
{
	for (unsigned i = 0; i < depth; i++)
		postern_str_append(out, "\t", 1);
}

void config_write_string(struct postern_str *out, const char *str)
{
	postern_str_append(out, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)str; *p != '\0'; p++) {
		switch (*p) {
		case '"':
			postern_str_append_cstr(out, "\\\"");
			break;
		case '\\':
			postern_str_append_cstr(out, "\\\\");
			break;
		case '\n':
			postern_str_append_cstr(out, "\\n");
			break;
		case '\r':
			postern_str_append_cstr(out, "\\r");
			break;
		case '\t':
			postern_str_append_cstr(out, "\\t");
			break;
		case '\f':
			postern_str_append_cstr(out, "\\f");
			break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				postern_str_printf(out, "\\x%02X", *p);
			else
				postern_str_append(out, p, 1);
			break;
		}
	}
	postern_str_append(out, "\"", 1);
}

/* The shortest text that reads back as the same double, always with a '.'
 * or an exponent: libconfig would read "2" back as an integer. */
static void write_float(struct postern_str *out, double value)
{
	char buf[64];

	for (int precision = 1; precision <= 17; precision++) {
		snprintf(buf, sizeof(buf), "%.*g", precision, value);
		if (strtod(buf, NULL) == value)
			break;
	}
	if (strpbrk(buf, ".eEn") == NULL)
		strcat(buf, ".0");
	postern_str_append_cstr(out, buf);
}

/* Lists of scalars fit on one line; anything holding a group does not. */
static bool is_flat(const config_setting_t *node)
{
	unsigned count = (unsigned)config_setting_length(node);

	for (unsigned i = 0; i < count; i++) {
		const config_setting_t *elem = config_setting_get_elem(node, i);

		if (config_setting_is_group(elem) ||
		    (config_setting_is_aggregate(elem) && !is_flat(elem)))
			return false;
	}
	return true;
}

static void write_value(struct postern_str *out, const config_setting_t *node, unsigned depth);

static void write_aggregate(struct postern_str *out, const config_setting_t *node,
			    unsigned depth, char open, char close)
{
	unsigned count = (unsigned)config_setting_length(node);
	bool flat = is_flat(node);

	if (count == 0) {
		postern_str_printf(out, "%c%c", open, close);
		return;
	}
	postern_str_printf(out, "%c%s", open, flat ? " " : "\n");
	for (unsigned i = 0; i < count; i++) {
		if (!flat)
			indent(out, depth + 1);
		write_value(out, config_setting_get_elem(node, i), depth + 1);
		if (i + 1 < count)
			postern_str_append_cstr(out, flat ? ", " : ",");
		if (!flat)
			postern_str_append_cstr(out, "\n");
	}
	if (flat) {
		postern_str_printf(out, " %c", close);
	} else {
		indent(out, depth);
		postern_str_printf(out, "%c", close);
	}
}

static void write_value(struct postern_str *out, const config_setting_t *node, unsigned depth)
{
	bool hex = config_setting_get_format(node) == CONFIG_FORMAT_HEX;

	switch (config_setting_type(node)) {
	case CONFIG_TYPE_INT:
		if (hex)
			postern_str_printf(out, "0x%X", (unsigned)config_setting_get_int(node));
		else
			postern_str_printf(out, "%d", config_setting_get_int(node));
		break;
	case CONFIG_TYPE_INT64:
		if (hex)
			postern_str_printf(out, "0x%llXL",
					   (unsigned long long)config_setting_get_int64(node));
		else
			postern_str_printf(out, "%lldL", config_setting_get_int64(node));
		break;
	case CONFIG_TYPE_FLOAT:
		write_float(out, config_setting_get_float(node));
		break;
	case CONFIG_TYPE_STRING:
		config_write_string(out, config_setting_get_string(node));
		break;
	case CONFIG_TYPE_BOOL:
		postern_str_append_cstr(out, config_setting_get_bool(node) ? "true" : "false");
		break;
	case CONFIG_TYPE_ARRAY:
		write_aggregate(out, node, depth, '[', ']');
		break;
	case CONFIG_TYPE_LIST:
		write_aggregate(out, node, depth, '(', ')');
		break;
	case CONFIG_TYPE_GROUP: {
		unsigned count = (unsigned)config_setting_length(node);

		if (count == 0) {
			postern_str_append_cstr(out, "{ }");
			break;
		}
		postern_str_append_cstr(out, "{\n");
		for (unsigned i = 0; i < count; i++)
			config_write_setting(out, config_setting_get_elem(node, i), depth + 1);
		indent(out, depth);
		postern_str_append_cstr(out, "}");
		break;
	}
	default:
		assert(!"setting of no type");
	}
}

void config_write_setting(struct postern_str *out, const config_setting_t *node, unsigned depth)
{
	indent(out, depth);
	if (config_setting_name(node) != NULL)
		postern_str_printf(out, "%s = ", config_setting_name(node));
	write_value(out, node, depth);
	postern_str_append_cstr(out, ";\n");
}

/* An integer that libconfig reads back as the same value: 64-bit ones
 * need the L suffix, or it truncates them to 32 bits. */
static void write_int(struct postern_str *out, int64_t value)
{
	bool wide = value < INT32_MIN || value > INT32_MAX;

	postern_str_printf(out, "%" PRId64 "%s", value, wide ? "L" : "");
}

static void dump_one(const struct postern_setting_def *def, const void *src,
		     struct postern_str *out)
{
	const char *base = (const char *)src + def->offset;
	char buf[32];

	switch (def->type) {
	case POSTERN_SET_STRING:
	case POSTERN_SET_PATH: {
		const char *value = *(char *const *)(const void *)base;

		if (value == NULL) {
			postern_str_printf(out, "# %s is not set\n", def->name);
			return;
		}
		postern_str_printf(out, "%s = ", def->name);
		config_write_string(out, value);
		break;
	}
	case POSTERN_SET_INT:
		postern_str_printf(out, "%s = ", def->name);
		write_int(out, *(const int64_t *)(const void *)base);
		break;
	case POSTERN_SET_UINT: {
		uint64_t value = *(const uint64_t *)(const void *)base;

		postern_str_printf(out, "%s = ", def->name);
		if (value > INT64_MAX)
			postern_str_printf(out, "%" PRIu64 " /* beyond what the file can say */",
					   value);
		else
			write_int(out, (int64_t)value);
		break;
	}
	case POSTERN_SET_BOOL:
		postern_str_printf(out, "%s = %s", def->name,
				   *(const bool *)(const void *)base ? "true" : "false");
		break;
	case POSTERN_SET_DURATION:
		settings_format_duration(*(const uint64_t *)(const void *)base, buf, sizeof(buf));
		postern_str_printf(out, "%s = \"%s\"", def->name, buf);
		break;
	case POSTERN_SET_SIZE:
		settings_format_size(*(const uint64_t *)(const void *)base, buf, sizeof(buf));
		postern_str_printf(out, "%s = \"%s\"", def->name, buf);
		break;
	case POSTERN_SET_STRLIST: {
		char *const *list = *(char *const *const *)(const void *)base;

		postern_str_printf(out, "%s = (", def->name);
		for (unsigned i = 0; list != NULL && list[i] != NULL; i++) {
			postern_str_append_cstr(out, i == 0 ? " " : ", ");
			config_write_string(out, list[i]);
		}
		postern_str_append_cstr(out, list != NULL && list[0] != NULL ? " )" : ")");
		break;
	}
	case POSTERN_SET_NODE: {
		const struct postern_cfg *node =
			*(const struct postern_cfg *const *)(const void *)base;

		if (node == NULL)
			postern_str_printf(out, "# %s is not set\n", def->name);
		else
			config_write_setting(out, cfg_node(node), 0);
		return;
	}
	}
	postern_str_append_cstr(out, ";\n");
}

void settings_dump(const struct postern_setting_def *defs, const void *src,
		   struct postern_str *out)
{
	for (const struct postern_setting_def *def = defs; def->name != NULL; def++) {
		if (def != defs)
			postern_str_append_cstr(out, "\n");
		if (def->help != NULL && def->help[0] != '\0')
			postern_str_printf(out, "# %s\n", def->help);
		dump_one(def, src, out);
	}
}

void config_dump(struct config *config, struct postern_str *out)
{
	const config_setting_t *root = config_root_setting(&config->lc);
	unsigned count = (unsigned)config_setting_length(root);
	struct core_settings settings;
	const char *error;

	postern_str_printf(out, "# The configuration in force, read from %s.\n", config->file);
	if (config_core_settings(config, &settings, &error) == 0) {
		settings_dump(core_setting_defs, &settings, out);
		config_core_settings_free(&settings);
	} else {
		/* Still show what is there: -n is how one finds out why. */
		postern_str_printf(out, "# The core settings are not valid: %s\n", error);
		for (unsigned i = 0; i < count; i++) {
			const config_setting_t *node = config_setting_get_elem(root, i);

			if (!config_setting_is_group(node))
				config_write_setting(out, node, 0);
		}
	}
	for (unsigned i = 0; i < count; i++) {
		const config_setting_t *node = config_setting_get_elem(root, i);

		if (config_setting_is_group(node)) {
			postern_str_append_cstr(out, "\n");
			config_write_setting(out, node, 0);
		}
	}
}
