/*
 * The core's private view of itself: the daemon context and the interfaces
 * its subsystems offer each other. Nothing here is visible to modules; they
 * see include/postern/ only.
 *
 * Subsystems, one per file:
 *   loop.c           epoll loop, timers (min-heap), fd watchers, clock cache
 *   conn.c           connections: buffers, line reader, output, close, registry
 *   listener.c       bind/accept, per-IP and global limits, UNIX sockets
 *   connect.c        outgoing non-blocking connect with timeout
 *   tls.c            OpenSSL contexts and the TLS transport under a connection
 *   event_bus.c      topics, subscriptions, dispatch
 *   module_loader.c  dlopen, descriptor checks, dependency order, hook calls
 *   config.c         libconfig file, -o overrides, settings tables
 *   log.c            syslog/stderr logging
 *   control.c        control socket server and the built-in commands
 *   service.c        named APIs that modules offer each other
 *   daemon.c         startup, privileges, pidfile, signals, reload, shutdown
 *   str.c, json.c    string buffers and the JSON writer
 *   error.c          error messages with details, kept in the core
 */
#ifndef POSTERN_CORE_H
#define POSTERN_CORE_H

#include <stdarg.h>
#include <sys/types.h>
#include <postern/postern.h>

struct loop;
struct config;
struct event_bus;
struct conn_registry;
struct control;
struct service;

/* Settings of the top level of the configuration file. */
struct core_settings {
	char **modules;         /* names, in config order */
	char *module_dir;
	char *base_dir;         /* absolute; relative paths in settings resolve against it */
	char *user, *group;     /* drop to these after init when started as root */
	char *pid_file;
	char *control_socket;
	char *log_level;        /* "debug", "info", "notice", "warning", "error" */
	char *syslog_facility;  /* "mail" */
	uint64_t max_connections;    /* process-wide, all listeners; 0 = no limit */
	uint64_t shutdown_timeout_ms; /* graceful shutdown deadline */
	uint64_t busy_poll_us;  /* poll this long before the loop sleeps; 0 = off */
};

/* The daemon: one per process, created by main() and passed everywhere. */
struct postern_core {
	struct loop *loop;
	struct config *config;          /* in force */
	struct core_settings settings;  /* parsed from config */
	char *config_file;
	unsigned generation;            /* config generation: 1, +1 per accepted reload */

	struct postern_mod *self;       /* the pseudo-module "core", owner of core conns */
	struct postern_mod **mods;      /* loaded modules in dependency order */
	unsigned mod_count;

	struct event_bus *bus;
	struct conn_registry *conns;
	struct control *control;
	struct service *services;       /* service registry (service.c) */
	struct postern_tls *tls_contexts; /* every TLS context of this core (tls.c) */
	char *error_buf;                /* the last core_error() message (error.c) */

	bool foreground;
	bool shutting_down;
	bool reload_requested;
	time_t started;
	uid_t run_uid;                  /* the user the daemon runs as after the drop */
	gid_t run_gid;
};

enum mod_state {
	MOD_LOADED = 0, /* descriptor checked */
	MOD_INITED,
	MOD_STARTED,
	MOD_STOPPED,
};

/* A loaded module. For the pseudo-module "core", desc is NULL. */
struct postern_mod {
	struct postern_core *core;
	struct postern_module desc;     /* copy, zero-filled past the module's struct_size */
	bool has_desc;
	void *dl_handle;
	char *name;
	char *path;
	void *data;                     /* the module's own context */
	enum mod_state state;
	char *error_buf;                /* postern_cfg_error() result */
};

/* ---- xalloc.c: allocation that aborts on out-of-memory ------------------ */
void *xmalloc(size_t size);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *str);
char *xstrndup(const char *str, size_t len);
char *xasprintf(const char *fmt, ...) POSTERN_PRINTF(1, 2);
char *xvasprintf(const char *fmt, va_list args) POSTERN_PRINTF(1, 0);

/* ---- error.c: error messages for error_r -------------------------------- */
/* Format a message into core->error_buf and return it, for *error_r. It
 * stays valid until the next core_error() of this core; an argument may be
 * the previous message. The daemon frees core->error_buf at exit. */
const char *core_error(struct postern_core *core, const char *fmt, ...) POSTERN_PRINTF(2, 3);
/* The same into *storage (freeing what was there), for an object that
 * lives without a core: the loop. */
const char *error_set(char **storage, const char *fmt, ...) POSTERN_PRINTF(2, 3);

/* ---- loop.c ------------------------------------------------------------- */
struct loop *loop_new(void);
void loop_free(struct loop **loop);
/* Wait up to max_wait_ms (-1: until the next timer) for I/O, run the
 * callbacks and the due timers, then the end-of-iteration hooks. */
void loop_run_once(struct loop *loop, int max_wait_ms);
/* Before sleeping, poll for I/O for up to `usecs` (0: sleep at once). */
void loop_set_busy_poll(struct loop *loop, uint64_t usecs);
/* Called at the end of every iteration (conn.c frees closed connections here). */
void loop_set_iteration_hook(struct loop *loop, void (*hook)(void *ctx), void *ctx);
/* Timers and watchers with an owner; owner NULL or core->self for the core. */
struct postern_timer *loop_timer_add(struct loop *loop, struct postern_mod *owner,
				     uint64_t msecs, bool repeat, postern_timer_cb *cb, void *ctx);
struct postern_io *loop_io_add(struct loop *loop, struct postern_mod *owner, int fd,
			       unsigned events, postern_io_cb *cb, void *ctx,
			       const char **error_r);
/* Free every timer and watcher the owner still has. */
void loop_release_owner(struct loop *loop, struct postern_mod *owner);
unsigned loop_timer_count(const struct loop *loop);
void loop_update_clock(void);

/* ---- conn.c, listener.c, connect.c -------------------------------------- */
struct conn_registry *conn_registry_new(struct postern_core *core);
void conn_registry_free(struct conn_registry **reg);
unsigned conn_count(const struct conn_registry *reg);
unsigned conn_count_module(const struct conn_registry *reg, const struct postern_mod *mod);
/* `posternctl conns`: one line per connection, or a JSON array. */
void conn_registry_describe(const struct conn_registry *reg, struct postern_json *json,
			    struct postern_str *text);
/* Close every connection (of `mod`, or all when NULL) with `reason`. */
void conn_close_all(struct conn_registry *reg, const struct postern_mod *mod, const char *reason);
/* Stop accepting: close every listener (of `mod`, or all when NULL). */
void listener_close_all(struct conn_registry *reg, const struct postern_mod *mod);
/* Free listeners and connections of a module that is being unloaded. */
void conn_release_module(struct conn_registry *reg, const struct postern_mod *mod);
/* The peer's uid on a UNIX-socket connection (SO_PEERCRED), or -1. */
int conn_peer_uid(const struct postern_conn *conn, uid_t *uid_r);
/* chown a UNIX-socket listener's path; 0 or -1 with *error_r. */
int listener_unix_chown(struct postern_listener *listener, uid_t uid, gid_t gid,
			const char **error_r);

/* ---- tls.c -------------------------------------------------------------- */
int tls_global_init(struct postern_core *core, const char **error_r);
/* Re-read the files of every server and client context. If any fails, none
 * is changed and -1 is returned with *error_r. */
int tls_reload_all(struct postern_core *core, const char **error_r);
/* Free contexts of a module (dropping its references). */
void tls_release_module(struct postern_core *core, const struct postern_mod *mod);

/* ---- event_bus.c -------------------------------------------------------- */
struct event_bus *event_bus_new(struct postern_core *core);
void event_bus_free(struct event_bus **bus);
/* End every subscription of `mod` (and its declarations). */
void event_bus_release_module(struct event_bus *bus, const struct postern_mod *mod);
/* `posternctl bus`: topics with their type, declarers and subscribers in
 * dispatch order. */
void event_bus_describe(const struct event_bus *bus, struct postern_json *json,
			struct postern_str *text);

/* ---- module_loader.c ---------------------------------------------------- */
/* The pseudo-module "core". */
struct postern_mod *module_core_new(struct postern_core *core);
void module_free(struct postern_mod **mod);
/* dlopen the `names` from `dir`, check each descriptor, order by
 * dependencies, store in core->mods. On any error nothing stays loaded and
 * *error_r names the file and what was found and needed. */
int modules_load(struct postern_core *core, const char *const *names, const char *dir,
		 const char **error_r);
/* Run every module's check_config on `config`; all errors are logged, the
 * first is returned. */
int modules_check_config(struct postern_core *core, struct config *config,
			 const char **error_r);
int modules_init(struct postern_core *core, const char **error_r);
int modules_start(struct postern_core *core, const char **error_r);
int modules_reload(struct postern_core *core, struct config *config, const char **error_r);
void modules_stop(struct postern_core *core);
/* deinit in reverse order, release everything each module owns, dlclose. */
void modules_unload(struct postern_core *core);
void modules_describe(const struct postern_core *core, struct postern_json *json,
		      struct postern_str *text);

/* ---- config.c ----------------------------------------------------------- */
/* Read `file`, apply `-o PATH=VALUE` overrides in order. Errors carry file
 * and line ("etc/postern.conf:12: syntax error"). On failure there is no
 * config left to keep the message in: *error_r is allocated and the caller
 * frees it. */
struct config *config_load(const char *file, const char *const *overrides,
			   unsigned override_count, char **error_r);
void config_free(struct config **config);
/* Parse the top-level settings (module groups are skipped). */
int config_core_settings(struct config *config, struct core_settings *settings,
			 const char **error_r);
void config_core_settings_free(struct core_settings *settings);
/* The module's group; an empty group when the file has none. Never NULL. */
const struct postern_cfg *config_module_group(struct config *config, const char *name);
/* `posternd -n`: the core's and every module's settings with values. */
void config_dump(struct config *config, struct postern_str *out);
/* Used by postern_cfg_parse for PATH settings: the base dir of the config
 * being parsed. */
const char *config_base_dir(const struct config *config);

/* ---- log.c -------------------------------------------------------------- */
/* Log to stderr (foreground) or syslog with the given facility. */
int log_open(bool foreground, const char *facility, const char **error_r);
int log_set_level(const char *level, const char **error_r);
void log_core(enum postern_log_level level, const char *fmt, ...) POSTERN_PRINTF(2, 3);

/* ---- control.c ---------------------------------------------------------- */
int control_open(struct postern_core *core, const char *path, const char **error_r);
void control_close(struct postern_core *core);
/* Free commands a module registered. */
void control_release_module(struct postern_core *core, const struct postern_mod *mod);

/* ---- service.c ---------------------------------------------------------- */
/* Withdraw the services of `mod` (all when NULL). */
void service_release_module(struct postern_core *core, const struct postern_mod *mod);

/* ---- daemon.c ----------------------------------------------------------- */
/* Ask the main loop to reload the configuration at the end of this
 * iteration (SIGHUP). */
void daemon_request_reload(struct postern_core *core);
/* Reload now (`posternctl reload`): re-read the config file with the
 * original -o overrides, check it with every module, and apply it only if
 * all accept. Returns 0 with the new generation in force, or -1 with
 * *error_r saying why the old configuration stays. */
int daemon_reload(struct postern_core *core, const char **error_r);

#endif
