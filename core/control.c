/*
 * The control socket: a UNIX socket on which posternctl asks the running
 * daemon for its state and tells it to act (reload). This file keeps the
 * table of control commands that modules and the core register, runs one
 * request per connection and answers it in the format of
 * control_protocol.h. It decides who may talk to the daemon: root and the
 * user the daemon runs as, by the peer's credentials, not only by the
 * file's mode.
 *
 * The built-in commands live in control_builtin.c; the wire encoding in
 * control_protocol.c. Commands run on the event loop and must not block.
 */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core.h"
#include "control_private.h"
#include "control_protocol.h"

/* A connection that passed the permission check. */
struct control_client {
	struct control *control;   /* NULL once control_close() let go of it */
	struct postern_conn *conn;
	struct control_client *prev, *next;
	bool answered;
};

/* ---- The command table ------------------------------------------------ */

struct control *control_get(struct postern_core *core)
{
	if (core->control != NULL)
		return core->control;
	assert(core->self != NULL);

	struct control *control = xcalloc(1, sizeof(*control));
	control->core = core;
	core->control = control;
	control_builtin_register(core);
	return control;
}

static void control_cmd_free(struct control_cmd *cmd)
{
	free(cmd->word);
	free(cmd->usage);
	free(cmd);
}

static struct control_cmd *control_lookup(const struct control *control, const char *word)
{
	for (unsigned i = 0; i < control->cmd_count; i++) {
		if (strcmp(control->cmds[i]->word, word) == 0)
			return control->cmds[i];
	}
	return NULL;
}

/* Command words are typed by operators and shown by help: keep them plain.
 * A leading '-' is refused so that no word can look like an option. */
static bool control_word_valid(const char *word)
{
	size_t len = strlen(word);

	if (len == 0 || len > CONTROL_MAX_WORD || word[0] == '-' || word[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = word[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
		if (!ok)
			return false;
	}
	return true;
}

static const char *mod_name(const struct postern_mod *mod)
{
	return mod->name != NULL ? mod->name : "?";
}

int postern_control_register(struct postern_mod *mod, const char *command, const char *usage,
			     postern_control_cb *cb, void *ctx, const char **error_r)
{
	assert(mod != NULL && mod->core != NULL);
	assert(command != NULL && cb != NULL);

	struct control *control = control_get(mod->core);

	if (!control_word_valid(command)) {
		*error_r = core_error(mod->core, "control command '%.64s' is not a valid word "
				      "(letters, digits, '-', '_', '.'; at most %d)",
				      command, CONTROL_MAX_WORD);
		return -1;
	}
	const struct control_cmd *taken = control_lookup(control, command);
	if (taken != NULL) {
		*error_r = core_error(mod->core,
				      "control command '%s' is already registered by module %s",
				      command, mod_name(taken->mod));
		return -1;
	}

	struct control_cmd *cmd = xcalloc(1, sizeof(*cmd));
	cmd->word = xstrdup(command);
	cmd->usage = xstrdup(usage != NULL ? usage : "");
	cmd->mod = mod;
	cmd->cb = cb;
	cmd->ctx = ctx;

	if (control->cmd_count == control->cmd_alloc) {
		control->cmd_alloc = control->cmd_alloc == 0 ? 16 : control->cmd_alloc * 2;
		control->cmds = xrealloc(control->cmds,
					 control->cmd_alloc * sizeof(*control->cmds));
	}
	unsigned pos = 0;
	while (pos < control->cmd_count && strcmp(control->cmds[pos]->word, command) < 0)
		pos++;
	memmove(control->cmds + pos + 1, control->cmds + pos,
		(control->cmd_count - pos) * sizeof(*control->cmds));
	control->cmds[pos] = cmd;
	control->cmd_count++;
	return 0;
}

void control_release_module(struct postern_core *core, const struct postern_mod *mod)
{
	struct control *control = core->control;

	if (control == NULL)
		return;
	unsigned kept = 0;
	for (unsigned i = 0; i < control->cmd_count; i++) {
		if (control->cmds[i]->mod == mod)
			control_cmd_free(control->cmds[i]);
		else
			control->cmds[kept++] = control->cmds[i];
	}
	control->cmd_count = kept;
}

/* ---- Requests ----------------------------------------------------------- */

bool postern_control_json(const struct postern_control_req *req)
{
	return req->json;
}

struct postern_str *postern_control_output(struct postern_control_req *req)
{
	return req->output;
}

int postern_control_fail(struct postern_control_req *req, const char *fmt, ...)
{
	va_list args;

	/* The first failure is the cause; later ones are consequences. */
	if (req->failed)
		return -1;
	req->failed = true;
	req->error = postern_str_new();
	va_start(args, fmt);
	postern_str_vprintf(req->error, fmt, args);
	va_end(args);
	return -1;
}

static void control_answer_error(struct postern_str *reply, const char *fmt, ...)
	POSTERN_PRINTF(2, 3);
static void control_answer_error(struct postern_str *reply, const char *fmt, ...)
{
	char msg[CONTROL_MAX_MESSAGE + 1];
	va_list args;

	va_start(args, fmt);
	vsnprintf(msg, sizeof(msg), fmt, args);
	va_end(args);
	control_status_encode(reply, msg);
}

/* Call the command and turn its outcome into the answer. */
static void control_call(const struct control_cmd *cmd, const struct control_args *args,
			 struct postern_str *reply)
{
	struct postern_control_req req = {
		.json = args->json,
		.output = postern_str_new(),
	};
	/* The handler may register or release commands (a reload does): keep
	 * nothing of `cmd` across the call. */
	postern_control_cb *cb = cmd->cb;
	void *ctx = cmd->ctx;
	char *word = xstrdup(cmd->word);

	int ret = cb(&req, args->argc, (const char *const *)args->argv, ctx);

	if (ret != 0 && !req.failed) {
		log_core(POSTERN_LOG_WARNING,
			 "control: command '%s' failed without saying why", word);
		postern_control_fail(&req, "command '%s' failed", word);
	}
	if (req.failed) {
		log_core(POSTERN_LOG_INFO, "control: %s: %s", word,
			 postern_str_data(req.error));
		/* A failed command's partial output is not a coherent answer. */
		control_status_encode(reply, postern_str_data(req.error));
	} else {
		size_t len = postern_str_len(req.output);
		control_status_encode(reply, NULL);
		postern_str_append(reply, postern_str_data(req.output), len);
		if (len > 0 && postern_str_data(req.output)[len - 1] != '\n')
			postern_str_append(reply, "\n", 1);
	}
	free(word);
	postern_str_free(&req.output);
	postern_str_free(&req.error);
}

void control_run_line(struct control *control, const char *line, size_t len,
		      struct postern_str *reply)
{
	struct control_args args;
	const char *error;

	if (control_request_decode(line, len, &args, &error) < 0) {
		control_status_encode(reply, error);
		return;
	}
	if (args.argc == 0) {
		control_status_encode(reply, "empty request");
		control_args_free(&args);
		return;
	}
	for (int i = 0; i < args.argc; i++) {
		if (strlen(args.argv[i]) != args.lens[i]) {
			control_answer_error(reply, "argument %d holds a NUL byte", i + 1);
			control_args_free(&args);
			return;
		}
	}

	const struct control_cmd *cmd = control_lookup(control, args.argv[0]);
	if (cmd == NULL) {
		control_answer_error(reply, "unknown command '%.64s' (try 'help')",
				     args.argv[0]);
	} else {
		log_core(POSTERN_LOG_DEBUG, "control: running '%s'", cmd->word);
		control_call(cmd, &args, reply);
	}
	control_args_free(&args);
}

/* ---- The socket --------------------------------------------------------- */

bool control_uid_allowed(uid_t peer_uid, uid_t run_uid)
{
	return peer_uid == 0 || peer_uid == run_uid;
}

static void control_client_unlink(struct control_client *client)
{
	struct control *control = client->control;

	if (control == NULL)
		return;
	if (client->prev != NULL)
		client->prev->next = client->next;
	else
		control->clients = client->next;
	if (client->next != NULL)
		client->next->prev = client->prev;
	client->prev = client->next = NULL;
}

static void control_client_answer(struct control_client *client, struct postern_str *reply)
{
	client->answered = true;
	postern_conn_set_state(client->conn, "ANSWER");
	postern_conn_write(client->conn, postern_str_data(reply), postern_str_len(reply));
	postern_conn_close_after_flush(client->conn, "control request answered");
}

static void control_client_input(struct control_client *client)
{
	struct postern_line line;
	struct postern_str *reply;

	while (!client->answered) {
		switch (postern_conn_read_line(client->conn, &line)) {
		case POSTERN_READ_NONE:
			return;
		case POSTERN_READ_TOO_LONG:
			reply = postern_str_new();
			control_answer_error(reply, "request too long (max %d bytes)",
					     CONTROL_MAX_REQUEST);
			control_client_answer(client, reply);
			postern_str_free(&reply);
			return;
		case POSTERN_READ_LINE:
			reply = postern_str_new();
			if (client->control == NULL)
				control_status_encode(reply, "the control socket is closing");
			else
				control_run_line(client->control, line.data, line.len, reply);
			control_client_answer(client, reply);
			postern_str_free(&reply);
			return;
		}
	}
}

static void control_client_cb(struct postern_conn *conn, enum postern_conn_event event,
			      void *ctx)
{
	struct control_client *client = ctx;

	assert(client->conn == conn);
	switch (event) {
	case POSTERN_CONN_INPUT:
		control_client_input(client);
		break;
	case POSTERN_CONN_TIMEOUT:
		if (!client->answered) {
			struct postern_str *reply = postern_str_new();
			control_status_encode(reply, "timed out waiting for the request");
			control_client_answer(client, reply);
			postern_str_free(&reply);
		}
		break;
	case POSTERN_CONN_CLOSED:
		control_client_unlink(client);
		free(client);
		break;
	default:
		/* EOF before a whole line, ERROR: the core closes it. */
		break;
	}
}

/* Refused connections keep no state: only CLOSED follows. */
static void control_refused_cb(struct postern_conn *conn, enum postern_conn_event event,
			       void *ctx)
{
	(void)conn;
	(void)event;
	(void)ctx;
}

static void control_accept_cb(struct postern_conn *conn, enum postern_conn_event event,
			      void *ctx)
{
	struct control *control = ctx;
	uid_t uid = (uid_t)-1;

	if (event != POSTERN_CONN_OPEN)
		return;
	if (conn_peer_uid(conn, &uid) < 0 ||
	    !control_uid_allowed(uid, control->core->run_uid)) {
		log_core(POSTERN_LOG_WARNING, "control: refused a connection from uid %ld",
			 uid == (uid_t)-1 ? -1L : (long)uid);
		postern_conn_set_handler(conn, control_refused_cb, NULL);
		postern_conn_printf(conn, "ERR permission denied\n");
		postern_conn_close_after_flush(conn, "control: permission denied");
		return;
	}

	struct control_client *client = xcalloc(1, sizeof(*client));
	client->control = control;
	client->conn = conn;
	client->next = control->clients;
	if (control->clients != NULL)
		control->clients->prev = client;
	control->clients = client;
	postern_conn_set_handler(conn, control_client_cb, client);
	postern_conn_set_state(conn, "REQUEST");
}

/* Create the socket's directory if it is missing, owned by the daemon's
 * user so that it can reach (and at exit remove) the socket. */
static int control_make_dir(struct postern_core *core, const char *path,
			    const char **error_r)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL || slash == path)
		return 0;
	char *dir = xstrndup(path, (size_t)(slash - path));
	int ret = 0;
	if (mkdir(dir, 0750) == 0) {
		if (geteuid() == 0 && chown(dir, core->run_uid, core->run_gid) < 0) {
			*error_r = core_error(core, "chown(%s): %s", dir, strerror(errno));
			ret = -1;
		}
	} else if (errno != EEXIST) {
		*error_r = core_error(core, "mkdir(%s): %s", dir, strerror(errno));
		ret = -1;
	}
	free(dir);
	return ret;
}

/* Stop serving: drop the clients, close the listener (which removes the
 * socket file if it is still the one it made). */
static void control_close_socket(struct control *control)
{
	struct postern_core *core = control->core;

	/* Let go of the clients first: their CLOSED may come after this
	 * context is gone. */
	struct control_client *client = control->clients, *next;
	for (; client != NULL; client = next) {
		next = client->next;
		client->control = NULL;
		client->prev = client->next = NULL;
		if (client->answered)
			postern_conn_close_after_flush(client->conn, "control socket closing");
		else
			postern_conn_close(client->conn, "control socket closing");
	}
	control->clients = NULL;

	if (control->listener != NULL) {
		/* The control socket is the only listener the core owns. */
		listener_close_all(core->conns, core->self);
		control->listener = NULL;
	}
	free(control->path);
	control->path = NULL;
}

int control_open(struct postern_core *core, const char *path, const char **error_r)
{
	struct control *control = control_get(core);
	struct postern_listen_settings set = POSTERN_LISTEN_SETTINGS_INIT;

	if (control->listener != NULL) {
		*error_r = core_error(core, "control socket already open on %s", control->path);
		return -1;
	}
	if (path == NULL || path[0] == '\0') {
		*error_r = "control socket path is empty";
		return -1;
	}
	if (control_make_dir(core, path, error_r) < 0)
		return -1;

	/* The listener removes a stale socket file and refuses one that a
	 * running daemon still answers on. */
	char *address = xasprintf("unix:%s", path);
	set.address = address;
	set.max_connections = CONTROL_MAX_CLIENTS;
	set.limit_reply = "ERR too many control connections";
	set.max_line = CONTROL_MAX_REQUEST;
	set.idle_timeout_ms = CONTROL_IDLE_TIMEOUT_MS;
	const char *error;
	control->listener = postern_listen(core->self, &set, control_accept_cb, control, &error);
	free(address);
	if (control->listener == NULL) {
		*error_r = core_error(core, "control socket %s: %s", path, error);
		return -1;
	}
	control->path = xstrdup(path);
	/* Only root can give a file away; otherwise it is ours already. */
	if (geteuid() == 0 &&
	    listener_unix_chown(control->listener, core->run_uid, core->run_gid, &error) < 0) {
		*error_r = core_error(core, "control socket %s: %s", path, error);
		control_close_socket(control);
		return -1;
	}
	return 0;
}

void control_close(struct postern_core *core)
{
	struct control *control = core->control;

	if (control == NULL)
		return;
	control_close_socket(control);
	for (unsigned i = 0; i < control->cmd_count; i++)
		control_cmd_free(control->cmds[i]);
	free(control->cmds);
	free(control);
	core->control = NULL;
}
