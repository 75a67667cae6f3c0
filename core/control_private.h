/*
 * Inside the control subsystem: the command table and the request runner
 * shared by control.c (socket server, registry) and control_builtin.c (the
 * core's own commands), and exposed to tests/unit/test_control.c. Nothing
 * outside core/control*.c should include this.
 */
#ifndef POSTERN_CONTROL_PRIVATE_H
#define POSTERN_CONTROL_PRIVATE_H

#include <sys/types.h>
#include <postern/control.h>

struct postern_core;
struct postern_listener;
struct control_client;

/* The longest command word a module may register. */
#define CONTROL_MAX_WORD 32
/* Concurrent control connections; more are refused by the listener. */
#define CONTROL_MAX_CLIENTS 32

struct control_cmd {
	char *word;
	char *usage;                /* one line per subcommand; may be "" */
	struct postern_mod *mod;    /* owner: removed with the module */
	postern_control_cb *cb;
	void *ctx;
};

struct control {
	struct postern_core *core;
	/* Sorted by word, so `help` lists them in order and lookups are
	 * predictable. */
	struct control_cmd **cmds;
	unsigned cmd_count, cmd_alloc;

	struct postern_listener *listener;   /* NULL until control_open() */
	char *path;                          /* of the open socket */
	struct control_client *clients;      /* connections being served */
};

/* One request being run: what the public postern_control_*() functions
 * act on. */
struct postern_control_req {
	bool json;
	bool failed;
	struct postern_str *output;
	struct postern_str *error;
};

/* The control context of the daemon, created with the built-in commands
 * on first use (modules may register commands before the socket opens). */
struct control *control_get(struct postern_core *core);

/* May a peer with this uid use the socket? Root and the daemon's own user
 * only: the socket is also chowned so, but a mode or ownership mistake on
 * the file must not open the daemon to every local user. */
bool control_uid_allowed(uid_t peer_uid, uid_t run_uid);

/* Run one request line (without LF) and append the whole answer, status
 * line and body, to `reply`. */
void control_run_line(struct control *control, const char *line, size_t len,
		      struct postern_str *reply);

/* control_builtin.c: register status, modules, conns, bus, reload, help. */
void control_builtin_register(struct postern_core *core);

#endif
