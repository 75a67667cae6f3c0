/*
 * The configuration as loaded: one libconfig file (with its @includes) and
 * the `-o PATH=VALUE` overrides applied over it, plus the core's own
 * top-level settings. The tree is read once and never re-read: a reload
 * loads a new `struct config` and swaps it in only when every module has
 * accepted it.
 *
 * Not here: the settings-table engine (settings.c), the -o machinery
 * (config_override.c), node walking (config_node.c), `posternd -n`
 * (config_dump.c).
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "config_private.h"

#define CORE_FIELD(field) offsetof(struct core_settings, field)

const struct postern_setting_def core_setting_defs[] = {
	{ "modules", POSTERN_SET_STRLIST, CORE_FIELD(modules), "()",
	  "modules to load; each is configured by the group of its name", 0, 0 },
	{ "module_dir", POSTERN_SET_PATH, CORE_FIELD(module_dir), "\"" MODULEDIR "\"",
	  "directory of the module .so files", 0, 0 },
	/* STRING here: config_load() already resolved it into config->base_dir,
	 * which config_core_settings() puts in its place. */
	{ "base_dir", POSTERN_SET_STRING, CORE_FIELD(base_dir), "\"" POSTERN_DEFAULT_BASE_DIR "\"",
	  "relative paths resolve against it; relative itself, against the config file's directory",
	  0, 0 },
	{ "user", POSTERN_SET_STRING, CORE_FIELD(user), NULL,
	  "user to run as after init, when started as root", 0, 0 },
	{ "group", POSTERN_SET_STRING, CORE_FIELD(group), NULL,
	  "group to run as after init (default: the user's group)", 0, 0 },
	{ "pid_file", POSTERN_SET_PATH, CORE_FIELD(pid_file), "\"" RUNSTATEDIR "/postern/posternd.pid\"",
	  "where the daemon writes its pid", 0, 0 },
	{ "control_socket", POSTERN_SET_PATH, CORE_FIELD(control_socket),
	  "\"" RUNSTATEDIR "/postern/postern.sock\"", "UNIX socket of posternctl", 0, 0 },
	{ "log_level", POSTERN_SET_STRING, CORE_FIELD(log_level), "\"info\"",
	  "debug, info, notice, warning or error", 0, 0 },
	{ "syslog_facility", POSTERN_SET_STRING, CORE_FIELD(syslog_facility), "\"mail\"",
	  "syslog facility when not in the foreground", 0, 0 },
	{ "max_connections", POSTERN_SET_UINT, CORE_FIELD(max_connections), "10000",
	  "connections at once, all listeners together; 0 for no limit", 0, 0 },
	{ "shutdown_timeout", POSTERN_SET_DURATION, CORE_FIELD(shutdown_timeout_ms), "\"30s\"",
	  "graceful shutdown deadline; then open connections are closed", 0, 0 },
	{ "busy_poll_us", POSTERN_SET_UINT, CORE_FIELD(busy_poll_us), "0",
	  "microseconds to keep polling for I/O before the loop sleeps (dedicated "
	  "front-end hosts; 0: off)", 0, 10000 },
	POSTERN_SETTING_END
};

static const char *const log_levels[] = {
	"debug", "info", "notice", "warning", "error", NULL
};

static const char *const syslog_facilities[] = {
	"auth", "authpriv", "cron", "daemon", "ftp", "kern", "lpr", "mail", "news",
	"syslog", "user", "uucp", "local0", "local1", "local2", "local3", "local4",
	"local5", "local6", "local7", NULL
};

/* ---- nodes and paths ---------------------------------------------------- */

struct config *config_of_node(const config_setting_t *node)
{
	if (node == NULL)
		return NULL;
	while (node->parent != NULL)
		node = node->parent;
	return config_setting_get_hook(node);
}

const char *config_intern(struct config *config, const char *name)
{
	for (unsigned i = 0; i < config->name_count; i++) {
		if (strcmp(config->names[i], name) == 0)
			return config->names[i];
	}
	config->names = xrealloc(config->names, (config->name_count + 1) * sizeof(char *));
	config->names[config->name_count] = xstrdup(name);
	return config->names[config->name_count++];
}

char *config_path_resolve(const char *base_dir, const char *path)
{
	assert(base_dir != NULL && base_dir[0] == '/');
	char *joined = path[0] == '/' ? xstrdup(path) : xasprintf("%s/%s", base_dir, path);
	char *out = xmalloc(strlen(joined) + 2);
	size_t len = 0;

	/* Walk the components, keeping a stack in `out` itself: ".." pops
	 * back to the previous '/', never above the root. */
	for (char *p = joined; *p != '\0';) {
		while (*p == '/')
			p++;
		char *end = p + strcspn(p, "/");
		size_t n = (size_t)(end - p);

		if (n == 0 || (n == 1 && p[0] == '.')) {
			/* nothing */
		} else if (n == 2 && p[0] == '.' && p[1] == '.') {
			while (len > 0 && out[len - 1] != '/')
				len--;
			if (len > 0)
				len--;
		} else {
			out[len++] = '/';
			memcpy(out + len, p, n);
			len += n;
		}
		p = end;
	}
	if (len == 0)
		out[len++] = '/';
	out[len] = '\0';
	free(joined);
	return out;
}

/* The directory part of `file` as given ("etc/postern.conf" -> "etc"). */
static char *dir_of(const char *file)
{
	const char *slash = strrchr(file, '/');

	if (slash == NULL)
		return xstrdup(".");
	if (slash == file)
		return xstrdup("/");
	return xstrndup(file, (size_t)(slash - file));
}

/* config->dir made absolute. */
static char *abs_dir(struct config *config, const char **error_r)
{
	if (config->dir[0] == '/')
		return config_path_resolve(config->dir, ".");

	char *cwd = getcwd(NULL, 0);

	if (cwd == NULL) {
		*error_r = config_error(&config->error_buf, NULL,
					"cannot resolve the directory of %s: getcwd: %s",
					config->file, strerror(errno));
		return NULL;
	}
	char *dir = config_path_resolve(cwd, config->dir);

	free(cwd);
	return dir;
}

/* ---- loading ------------------------------------------------------------ */

/* libconfig names included files relative to the include dir; name them
 * relative to where we are instead, so that messages can be followed. */
static const char *display_name(struct config *config, const char *file)
{
	if (strcmp(file, config->file) == 0 || file[0] == '/' || strcmp(config->dir, ".") == 0)
		return file;

	char *joined = xasprintf("%s/%s", config->dir, file);
	const char *name = config_intern(config, joined);

	free(joined);
	return name;
}

static void rename_included(struct config *config, config_setting_t *node)
{
	if (node->file != NULL)
		node->file = display_name(config, node->file);
	if (config_setting_is_aggregate(node)) {
		unsigned count = (unsigned)config_setting_length(node);

		for (unsigned i = 0; i < count; i++)
			rename_included(config, config_setting_get_elem(node, i));
	}
}

/* libconfig says only "file I/O error"; find out which and why. Returns 0
 * or an errno. */
static int probe_file(const char *file)
{
	FILE *probe = fopen(file, "r");
	struct stat st;
	int error = 0;

	if (probe == NULL)
		return errno;
	if (fstat(fileno(probe), &st) < 0)
		error = errno;
	else if (S_ISDIR(st.st_mode))
		error = EISDIR;
	fclose(probe);
	return error;
}

static int load_file(struct config *config, const char **error_r)
{
	int error = probe_file(config->file);

	if (error != 0) {
		*error_r = config_error(&config->error_buf, NULL, "cannot read %s: %s",
					config->file, strerror(error));
		return -1;
	}

	config_set_include_dir(&config->lc, config->dir);
	if (config_read_file(&config->lc, config->file) != CONFIG_TRUE) {
		const char *file = config_error_file(&config->lc);

		if (config_error_type(&config->lc) == CONFIG_ERR_FILE_IO) {
			/* libconfig keeps no errno; the probe above caught the
			 * usual causes. */
			*error_r = config_error(&config->error_buf, NULL, "cannot read %s",
						config->file);
			return -1;
		}

		const char *text = config_error_text(&config->lc);

		*error_r = config_error(&config->error_buf, NULL, "%s:%d: %s",
					display_name(config, file != NULL ? file : config->file),
					config_error_line(&config->lc),
					text != NULL ? text : "cannot read");
		return -1;
	}
	/* Reading replaced the root: hook it only now. */
	config_setting_set_hook(config_root_setting(&config->lc), config);
	rename_included(config, config_root_setting(&config->lc));
	return 0;
}

/* base_dir is needed by every PATH setting of every module, so it is
 * resolved once, here, after the overrides. */
static int config_resolve_base_dir(struct config *config, const char **error_r)
{
	const config_setting_t *node =
		config_setting_get_member(config_root_setting(&config->lc), "base_dir");
	const char *value = POSTERN_DEFAULT_BASE_DIR;

	if (node != NULL) {
		if (config_setting_type(node) != CONFIG_TYPE_STRING) {
			*error_r = config_error(&config->error_buf, node,
						"'base_dir' must be a string, not %s",
						config_type_name(config_setting_type(node)));
			return -1;
		}
		value = config_setting_get_string(node);
		if (value[0] == '\0') {
			*error_r = config_error(&config->error_buf, node,
						"'base_dir' must not be empty");
			return -1;
		}
	}
	char *dir = abs_dir(config, error_r);

	if (dir == NULL)
		return -1;
	config->base_dir = config_path_resolve(dir, value);
	free(dir);
	return 0;
}

struct config *config_load(const char *file, const char *const *overrides,
			   unsigned override_count, char **error_r)
{
	assert(file != NULL);
	assert(overrides != NULL || override_count == 0);
	struct config *config = xcalloc(1, sizeof(*config));
	const char *error;
	int ret;

	config_init(&config->lc);
	config_init(&config->spare);
	config_setting_set_hook(config_root_setting(&config->spare), config);
	config->file = xstrdup(file);
	config->dir = dir_of(file);

	ret = load_file(config, &error);
	for (unsigned i = 0; ret == 0 && i < override_count; i++)
		ret = config_apply_override(config, overrides[i], &error);
	if (ret == 0)
		ret = config_resolve_base_dir(config, &error);
	if (ret < 0) {
		/* The message lives in the config about to be freed. */
		*error_r = xstrdup(error);
		config_free(&config);
		return NULL;
	}
	return config;
}

void config_free(struct config **_config)
{
	struct config *config = *_config;

	if (config == NULL)
		return;
	*_config = NULL;
	config_destroy(&config->lc);
	config_destroy(&config->spare);
	for (unsigned i = 0; i < config->name_count; i++)
		free(config->names[i]);
	free(config->names);
	free(config->file);
	free(config->dir);
	free(config->base_dir);
	free(config->error_buf);
	free(config);
}

const char *config_base_dir(const struct config *config)
{
	return config->base_dir;
}

const struct postern_cfg *config_module_group(struct config *config, const char *name)
{
	config_setting_t *root = config_root_setting(&config->lc);
	config_setting_t *group = config_setting_get_member(root, name);

	if (group == NULL)
		group = config_setting_add(root, name, CONFIG_TYPE_GROUP);
	/* A name libconfig refuses, or a non-group of that name (which
	 * config_core_settings() reports): the module sees no settings. */
	if (group == NULL || !config_setting_is_group(group))
		group = config_root_setting(&config->spare);
	return cfg_public(group);
}

/* ---- the core's settings ------------------------------------------------ */

static bool in_list(const char *const *list, const char *word)
{
	for (; *list != NULL; list++) {
		if (strcmp(*list, word) == 0)
			return true;
	}
	return false;
}

static const config_setting_t *top_node(struct config *config, const char *name)
{
	return config_setting_get_member(config_root_setting(&config->lc), name);
}

static int check_core_settings(struct config *config, const struct core_settings *set,
			       const char **error_r)
{
	if (!in_list(log_levels, set->log_level)) {
		*error_r = config_error(&config->error_buf, top_node(config, "log_level"),
					"unknown log_level '%s' (debug, info, notice, warning, error)",
					set->log_level);
		return -1;
	}
	if (!in_list(syslog_facilities, set->syslog_facility)) {
		*error_r = config_error(&config->error_buf, top_node(config, "syslog_facility"),
					"unknown syslog_facility '%s' (mail, daemon, local0..local7, ...)",
					set->syslog_facility);
		return -1;
	}
	for (unsigned i = 0; set->modules[i] != NULL; i++) {
		const char *name = set->modules[i];

		if (name[0] == '\0' || strchr(name, '/') != NULL) {
			*error_r = config_error(&config->error_buf, top_node(config, "modules"),
						"'%s' is not a module name", name);
			return -1;
		}
		for (unsigned j = 0; j < i; j++) {
			if (strcmp(set->modules[j], name) == 0) {
				*error_r = config_error(&config->error_buf,
							top_node(config, "modules"),
							"module '%s' is listed twice", name);
				return -1;
			}
		}
	}
	if ((set->user != NULL && set->user[0] == '\0') ||
	    (set->group != NULL && set->group[0] == '\0')) {
		const char *which = set->user != NULL && set->user[0] == '\0' ? "user" : "group";

		*error_r = config_error(&config->error_buf, top_node(config, which),
					"'%s' must not be empty", which);
		return -1;
	}
	return 0;
}

/* Every top-level group configures a module; one that no listed module
 * reads is almost always a typo ("smpt"), which would silently run the
 * real module with its defaults. */
static int check_module_groups(struct config *config, const struct core_settings *set,
			       const char **error_r)
{
	const config_setting_t *root = config_root_setting(&config->lc);
	unsigned count = (unsigned)config_setting_length(root);

	for (unsigned i = 0; i < count; i++) {
		const config_setting_t *node = config_setting_get_elem(root, i);

		if (!config_setting_is_group(node) ||
		    in_list((const char *const *)set->modules, config_setting_name(node)))
			continue;
		*error_r = config_error(&config->error_buf, node,
					"group '%s' configures no module listed in 'modules'",
					config_setting_name(node));
		return -1;
	}
	return 0;
}

int config_core_settings(struct config *config, struct core_settings *settings,
			 const char **error_r)
{
	if (settings_parse(config->base_dir, config_root_setting(&config->lc), core_setting_defs,
			   settings, true, &config->error_buf, error_r) < 0)
		return -1;
	free(settings->base_dir);
	settings->base_dir = xstrdup(config->base_dir);
	if (check_core_settings(config, settings, error_r) < 0 ||
	    check_module_groups(config, settings, error_r) < 0) {
		config_core_settings_free(settings);
		return -1;
	}
	return 0;
}

void config_core_settings_free(struct core_settings *settings)
{
	postern_cfg_free(core_setting_defs, settings);
}
