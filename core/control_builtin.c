/*
 * The core's own control commands: status, modules, conns, bus, reload and
 * help. They are registered by the pseudo-module "core" through the same
 * public API a module uses, so they are listed, dispatched and released
 * like any other command. What each subsystem shows is that subsystem's
 * business (modules_describe, conn_registry_describe, ...); this file only
 * routes the request and formats the core's own facts.
 */
#include "config.h"

#include <assert.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <postern/control.h>
#include <postern/json.h>
#include <postern/str.h>
#include "core.h"
#include "control_private.h"

/* Commands that take no arguments refuse extra ones: a typo such as
 * `posternctl status all` should not silently do something else. */
static int builtin_no_args(struct postern_control_req *req, int argc,
			   const char *const *argv)
{
	if (argc > 1)
		return postern_control_fail(req, "usage: %s (no arguments)", argv[0]);
	return 0;
}

/* Run a subsystem's describe function with a JSON writer or the text
 * output, whichever the client asked for. */
typedef void describe_fn(const void *subject, struct postern_json *json,
			 struct postern_str *text);

static void builtin_describe(struct postern_control_req *req, describe_fn *describe,
			     const void *subject)
{
	struct postern_str *out = postern_control_output(req);

	if (postern_control_json(req)) {
		struct postern_json *json = postern_json_new(out);
		describe(subject, json, NULL);
		postern_json_free(&json);
	} else {
		describe(subject, NULL, out);
	}
}

/* ---- status ------------------------------------------------------------- */

static void format_uptime(struct postern_str *out, uint64_t secs)
{
	uint64_t days = secs / 86400, hours = secs / 3600 % 24;
	uint64_t mins = secs / 60 % 60, rest = secs % 60;

	if (days > 0)
		postern_str_printf(out, "%llud ", (unsigned long long)days);
	if (days > 0 || hours > 0)
		postern_str_printf(out, "%lluh ", (unsigned long long)hours);
	if (days > 0 || hours > 0 || mins > 0)
		postern_str_printf(out, "%llum ", (unsigned long long)mins);
	postern_str_printf(out, "%llus", (unsigned long long)rest);
}

static int builtin_status(struct postern_control_req *req, int argc,
			  const char *const *argv, void *ctx)
{
	const struct postern_core *core = ctx;
	struct postern_str *out = postern_control_output(req);

	if (builtin_no_args(req, argc, argv) < 0)
		return -1;
	time_t now = time(NULL);
	uint64_t uptime = now > core->started ? (uint64_t)(now - core->started) : 0;
	unsigned conns = core->conns != NULL ? conn_count(core->conns) : 0;

	if (postern_control_json(req)) {
		struct postern_json *json = postern_json_new(out);
		postern_json_object_begin(json);
		postern_json_key(json, "version");
		postern_json_string(json, PACKAGE_VERSION);
		postern_json_key(json, "pid");
		postern_json_int(json, (int64_t)getpid());
		postern_json_key(json, "started");
		postern_json_int(json, (int64_t)core->started);
		postern_json_key(json, "uptime_s");
		postern_json_uint(json, uptime);
		postern_json_key(json, "config_file");
		if (core->config_file != NULL)
			postern_json_string(json, core->config_file);
		else
			postern_json_null(json);
		postern_json_key(json, "generation");
		postern_json_uint(json, core->generation);
		postern_json_key(json, "connections");
		postern_json_uint(json, conns);
		postern_json_key(json, "modules");
		postern_json_uint(json, core->mod_count);
		postern_json_key(json, "shutting_down");
		postern_json_bool(json, core->shutting_down);
		postern_json_object_end(json);
		postern_json_free(&json);
		return 0;
	}

	postern_str_printf(out, "version:       %s\n", PACKAGE_VERSION);
	postern_str_printf(out, "pid:           %ld\n", (long)getpid());
	postern_str_append_cstr(out, "uptime:        ");
	format_uptime(out, uptime);
	postern_str_printf(out, "\nconfig file:   %s\n",
			   core->config_file != NULL ? core->config_file : "(none)");
	postern_str_printf(out, "generation:    %u\n", core->generation);
	postern_str_printf(out, "connections:   %u\n", conns);
	postern_str_printf(out, "modules:       %u\n", core->mod_count);
	postern_str_printf(out, "shutting down: %s\n", core->shutting_down ? "yes" : "no");
	return 0;
}

/* ---- modules, conns, bus ------------------------------------------------ */

static void describe_modules(const void *core, struct postern_json *json,
			     struct postern_str *text)
{
	modules_describe(core, json, text);
}

static void describe_conns(const void *reg, struct postern_json *json,
			   struct postern_str *text)
{
	conn_registry_describe(reg, json, text);
}

static void describe_bus(const void *bus, struct postern_json *json,
			 struct postern_str *text)
{
	event_bus_describe(bus, json, text);
}

static int builtin_modules(struct postern_control_req *req, int argc,
			   const char *const *argv, void *ctx)
{
	if (builtin_no_args(req, argc, argv) < 0)
		return -1;
	builtin_describe(req, describe_modules, ctx);
	return 0;
}

static int builtin_conns(struct postern_control_req *req, int argc,
			 const char *const *argv, void *ctx)
{
	const struct postern_core *core = ctx;

	if (builtin_no_args(req, argc, argv) < 0)
		return -1;
	builtin_describe(req, describe_conns, core->conns);
	return 0;
}

static int builtin_bus(struct postern_control_req *req, int argc,
		       const char *const *argv, void *ctx)
{
	const struct postern_core *core = ctx;

	if (builtin_no_args(req, argc, argv) < 0)
		return -1;
	builtin_describe(req, describe_bus, core->bus);
	return 0;
}

/* ---- reload ------------------------------------------------------------- */

static int builtin_reload(struct postern_control_req *req, int argc,
			  const char *const *argv, void *ctx)
{
	struct postern_core *core = ctx;
	struct postern_str *out = postern_control_output(req);
	const char *error = NULL;

	if (builtin_no_args(req, argc, argv) < 0)
		return -1;
	if (daemon_reload(core, &error) < 0) {
		return postern_control_fail(req,
			"reload refused: %s; the previous configuration stays in force",
			error != NULL ? error : "unknown error");
	}
	if (postern_control_json(req)) {
		struct postern_json *json = postern_json_new(out);
		postern_json_object_begin(json);
		postern_json_key(json, "reloaded");
		postern_json_bool(json, true);
		postern_json_key(json, "generation");
		postern_json_uint(json, core->generation);
		postern_json_object_end(json);
		postern_json_free(&json);
	} else {
		postern_str_printf(out, "configuration generation %u in force\n",
				   core->generation);
	}
	return 0;
}

/* ---- help --------------------------------------------------------------- */

/* Usage lines are shown as "WORD ..." even when a module wrote them
 * without its command word. */
static void help_text_cmd(struct postern_str *out, const struct control_cmd *cmd)
{
	size_t word_len = strlen(cmd->word);
	const char *line = cmd->usage;

	if (*line == '\0') {
		postern_str_printf(out, "%s\n", cmd->word);
		return;
	}
	while (*line != '\0') {
		const char *end = strchr(line, '\n');
		size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
		bool has_word = len >= word_len && strncmp(line, cmd->word, word_len) == 0 &&
				(len == word_len || line[word_len] == ' ');
		if (len > 0) {
			if (!has_word)
				postern_str_printf(out, "%s ", cmd->word);
			postern_str_append(out, line, len);
			postern_str_append(out, "\n", 1);
		}
		line += len;
		if (*line == '\n')
			line++;
	}
}

static void help_json_cmd(struct postern_json *json, const struct control_cmd *cmd)
{
	const char *line = cmd->usage;

	postern_json_object_begin(json);
	postern_json_key(json, "command");
	postern_json_string(json, cmd->word);
	postern_json_key(json, "module");
	postern_json_string(json, cmd->mod->name != NULL ? cmd->mod->name : "?");
	postern_json_key(json, "usage");
	postern_json_array_begin(json);
	while (*line != '\0') {
		const char *end = strchr(line, '\n');
		size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
		if (len > 0)
			postern_json_string_n(json, line, len);
		line += len;
		if (*line == '\n')
			line++;
	}
	postern_json_array_end(json);
	postern_json_object_end(json);
}

static int builtin_help(struct postern_control_req *req, int argc,
			const char *const *argv, void *ctx)
{
	struct postern_core *core = ctx;
	const struct control *control = control_get(core);
	struct postern_str *out = postern_control_output(req);
	const char *only = argc > 1 ? argv[1] : NULL;
	bool found = false;

	if (argc > 2)
		return postern_control_fail(req, "usage: help [COMMAND]");
	for (unsigned i = 0; i < control->cmd_count && !found; i++)
		found = only == NULL || strcmp(control->cmds[i]->word, only) == 0;
	if (!found && only != NULL)
		return postern_control_fail(req, "unknown command '%.64s'", only);

	struct postern_json *json = NULL;
	if (postern_control_json(req)) {
		json = postern_json_new(out);
		postern_json_array_begin(json);
	}
	for (unsigned i = 0; i < control->cmd_count; i++) {
		const struct control_cmd *cmd = control->cmds[i];
		if (only != NULL && strcmp(cmd->word, only) != 0)
			continue;
		if (json != NULL)
			help_json_cmd(json, cmd);
		else
			help_text_cmd(out, cmd);
	}
	if (json != NULL) {
		postern_json_array_end(json);
		postern_json_free(&json);
	}
	return 0;
}

/* ---- Registration ------------------------------------------------------- */

static const struct {
	const char *word;
	const char *usage;
	postern_control_cb *cb;
} builtins[] = {
	{ "status", "status -- version, pid, uptime, configuration file and generation, "
		    "connection and module counts, shutdown state", builtin_status },
	{ "modules", "modules -- the loaded modules and their state", builtin_modules },
	{ "conns", "conns -- open connections: module, peer, state, user, age", builtin_conns },
	{ "bus", "bus -- event bus topics with their type, declarers and subscribers "
		 "in dispatch order", builtin_bus },
	{ "reload", "reload -- re-read the configuration; if any module refuses it, "
		    "the previous one stays in force", builtin_reload },
	{ "help", "help [COMMAND] -- every command with its usage, or one command's",
	  builtin_help },
};

void control_builtin_register(struct postern_core *core)
{
	for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
		const char *error = NULL;
		int ret = postern_control_register(core->self, builtins[i].word,
						   builtins[i].usage, builtins[i].cb, core,
						   &error);
		/* The table starts empty, so the core's words cannot be taken. */
		assert(ret == 0);
		(void)ret;
	}
}
