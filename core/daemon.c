/*
 * The daemon's lifecycle: configuration, modules, privileges, pidfile,
 * signals, reload and graceful shutdown. The order of startup matters and
 * is the one an admin expects from a mail server:
 *
 *   read config -> load and check modules -> pidfile and control socket ->
 *   init modules (binds listeners as root) -> drop privileges ->
 *   start modules -> serve.
 *
 * Signals arrive through a signalfd on the event loop, so handlers never
 * run in async-signal context. SIGHUP reloads (the old configuration stays
 * in force if any module refuses the new one), SIGTERM and SIGINT stop
 * accepting, let sessions finish until shutdown_timeout, then exit 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core.h"
#include "daemon.h"

/* How long one loop iteration may wait while shutting down, so the
 * deadline is noticed even when nothing happens. */
#define SHUTDOWN_POLL_MS 100

struct daemon {
	struct postern_core core;
	const struct daemon_options *options;
	struct postern_io *signal_io;
	int signal_fd;
	int pid_fd;
	char *pid_path;
	bool stop_requested;
};

static struct daemon *daemon_of(struct postern_core *core)
{
	return (struct daemon *)core; /* core is the first member */
}

/* ---- Configuration ----------------------------------------------------- */

static struct config *daemon_load_config(struct daemon *daemon, struct core_settings *settings,
					 const char **error_r)
{
	const struct daemon_options *options = daemon->options;
	struct config *config;
	char *error;

	config = config_load(options->config_file, options->overrides, options->override_count,
			     &error);
	if (config == NULL) {
		*error_r = core_error(&daemon->core, "%s", error);
		free(error);
		return NULL;
	}
	memset(settings, 0, sizeof(*settings));
	if (config_core_settings(config, settings, error_r) < 0) {
		/* The error string lives in the config: copy it out first. */
		*error_r = core_error(&daemon->core, "%s", *error_r);
		config_free(&config);
		return NULL;
	}
	return config;
}

static int daemon_setup_logging(const struct core_settings *settings, bool foreground,
				const char **error_r)
{
	if (log_open(foreground, settings->syslog_facility, error_r) < 0)
		return -1;
	return log_set_level(settings->log_level, error_r);
}

/* The topics the core publishes, declared before any module subscribes. */
static int daemon_declare_core_topics(struct postern_core *core, const char **error_r)
{
	static const struct {
		const char *topic, *type;
	} topics[] = {
		{ POSTERN_TOPIC_CONN_OPENED, POSTERN_EV_CONN_TYPE },
		{ POSTERN_TOPIC_CONN_CLOSED, POSTERN_EV_CONN_TYPE },
		{ POSTERN_TOPIC_MODULE_STARTED, POSTERN_EV_MODULE_TYPE },
		{ POSTERN_TOPIC_MODULE_STOPPED, POSTERN_EV_MODULE_TYPE },
		{ POSTERN_TOPIC_CONFIG_RELOADED, POSTERN_EV_RELOAD_TYPE },
	};

	for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
		if (postern_bus_declare(core->self, topics[i].topic, topics[i].type, error_r) < 0)
			return -1;
	}
	return 0;
}

/* Create the core, read the configuration and load (not init) the modules. */
static int daemon_prepare(struct daemon *daemon, bool foreground, const char **error_r)
{
	struct postern_core *core = &daemon->core;

	daemon->signal_fd = -1;
	daemon->pid_fd = -1;
	core->config_file = xstrdup(daemon->options->config_file);
	core->foreground = foreground;
	core->started = time(NULL);
	core->run_uid = getuid();
	core->run_gid = getgid();

	if (tls_global_init(core, error_r) < 0)
		return -1;
	core->config = daemon_load_config(daemon, &core->settings, error_r);
	if (core->config == NULL)
		return -1;
	if (daemon_setup_logging(&core->settings, foreground, error_r) < 0)
		return -1;

	core->loop = loop_new();
	loop_set_busy_poll(core->loop, core->settings.busy_poll_us);
	core->self = module_core_new(core);
	core->bus = event_bus_new(core);
	core->conns = conn_registry_new(core);
	core->generation = 1;
	if (daemon_declare_core_topics(core, error_r) < 0)
		return -1;

	if (modules_load(core, (const char *const *)core->settings.modules,
			 core->settings.module_dir, error_r) < 0)
		return -1;
	return modules_check_config(core, core->config, error_r);
}

static void daemon_free(struct daemon *daemon)
{
	struct postern_core *core = &daemon->core;

	if (core->mods != NULL)
		modules_unload(core);
	control_close(core);
	postern_io_remove(&daemon->signal_io);
	if (daemon->signal_fd >= 0)
		close(daemon->signal_fd);
	if (core->conns != NULL)
		conn_registry_free(&core->conns);
	if (core->bus != NULL)
		event_bus_free(&core->bus);
	if (core->self != NULL) {
		if (core->loop != NULL)
			loop_release_owner(core->loop, core->self);
		module_free(&core->self);
	}
	if (core->loop != NULL)
		loop_free(&core->loop);
	config_core_settings_free(&core->settings);
	if (core->config != NULL)
		config_free(&core->config);
	free(core->config_file);
	if (daemon->pid_fd >= 0) {
		unlink(daemon->pid_path);
		close(daemon->pid_fd);
	}
	free(daemon->pid_path);
	/* Last: the caller has shown the startup error, which may live here. */
	free(core->error_buf);
}

/* ---- Privileges -------------------------------------------------------- */

/* Find the uid/gid to run as; without `user` (or when not root) we stay. */
static int daemon_resolve_ids(struct daemon *daemon, const char **error_r)
{
	struct postern_core *core = &daemon->core;
	const struct core_settings *settings = &core->settings;

	if (geteuid() != 0)
		return 0;
	if (settings->user == NULL) {
		log_core(POSTERN_LOG_WARNING,
			 "running as root: set 'user' (and 'group') to an unprivileged account");
		return 0;
	}
	struct passwd *pw = getpwnam(settings->user);
	if (pw == NULL) {
		*error_r = core_error(core, "user '%s' does not exist", settings->user);
		return -1;
	}
	core->run_uid = pw->pw_uid;
	core->run_gid = pw->pw_gid;
	if (settings->group != NULL) {
		struct group *gr = getgrnam(settings->group);
		if (gr == NULL) {
			*error_r = core_error(core, "group '%s' does not exist", settings->group);
			return -1;
		}
		core->run_gid = gr->gr_gid;
	}
	return 0;
}

static int daemon_drop_privileges(struct daemon *daemon, const char **error_r)
{
	struct postern_core *core = &daemon->core;

	if (geteuid() != 0 || core->run_uid == 0)
		return 0;
	if (setgroups(1, &core->run_gid) < 0 || setgid(core->run_gid) < 0 ||
	    setuid(core->run_uid) < 0) {
		*error_r = core_error(core, "cannot drop privileges: %s", strerror(errno));
		return -1;
	}
	/* Make sure there is no way back. */
	if (setuid(0) == 0) {
		*error_r = "privileges could be regained after dropping them";
		return -1;
	}
	log_core(POSTERN_LOG_INFO, "running as uid %u gid %u", (unsigned)core->run_uid,
		 (unsigned)core->run_gid);
	return 0;
}

/* ---- Pidfile ----------------------------------------------------------- */

/* mkdir -p for the parent of `path`, owned by the run user. */
static int make_parent_dir(struct daemon *daemon, const char *path, const char **error_r)
{
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return 0;
	*slash = '\0';
	for (char *p = dir + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;
		*p = '\0';
		if (mkdir(dir, 0755) == 0) {
			if (geteuid() == 0 && chown(dir, daemon->core.run_uid,
						     daemon->core.run_gid) < 0)
				log_core(POSTERN_LOG_WARNING, "chown %s: %s", dir, strerror(errno));
		} else if (errno != EEXIST) {
			*error_r = core_error(&daemon->core, "mkdir %s: %s", dir, strerror(errno));
			return -1;
		}
		*p = saved;
		if (saved == '\0')
			return 0;
	}
}

/*
 * The pidfile is locked for the life of the process: a second posternd
 * finds the lock taken and refuses, and a pidfile left by a process killed
 * with SIGKILL is not locked, so it is simply taken over.
 */
static int daemon_write_pidfile(struct daemon *daemon, const char **error_r)
{
	const char *path = daemon->core.settings.pid_file;
	char buf[32];

	if (make_parent_dir(daemon, path, error_r) < 0)
		return -1;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		*error_r = core_error(&daemon->core, "open pidfile %s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		*error_r = core_error(&daemon->core,
				      "another posternd is running (pid %s, pidfile %s)", buf, path);
		close(fd);
		return -1;
	}
	int len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)len, 0) != len) {
		*error_r = core_error(&daemon->core, "write pidfile %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (geteuid() == 0 && fchown(fd, daemon->core.run_uid, daemon->core.run_gid) < 0)
		log_core(POSTERN_LOG_WARNING, "chown %s: %s", path, strerror(errno));
	daemon->pid_fd = fd;
	daemon->pid_path = xstrdup(path);
	return 0;
}

/* ---- Signals ----------------------------------------------------------- */

static void daemon_begin_shutdown(struct daemon *daemon)
{
	struct postern_core *core = &daemon->core;

	if (core->shutting_down)
		return;
	core->shutting_down = true;
	log_core(POSTERN_LOG_NOTICE, "shutting down: %u connections open, deadline %llu ms",
		 conn_count(core->conns), (unsigned long long)core->settings.shutdown_timeout_ms);
	for (unsigned i = 0; i < core->mod_count; i++)
		listener_close_all(core->conns, core->mods[i]);
	modules_stop(core);
}

static void daemon_on_signal(struct postern_io *io, int fd, unsigned events, void *ctx)
{
	struct daemon *daemon = ctx;
	struct signalfd_siginfo info;

	while (read(fd, &info, sizeof(info)) == sizeof(info)) {
		switch (info.ssi_signo) {
		case SIGHUP:
			daemon_request_reload(&daemon->core);
			break;
		case SIGTERM:
		case SIGINT:
			daemon->stop_requested = true;
			break;
		default:
			break;
		}
	}
}

static int daemon_setup_signals(struct daemon *daemon, const char **error_r)
{
	sigset_t mask;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	/* Blocked in every thread created from now on, too. */
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) {
		*error_r = "sigprocmask failed";
		return -1;
	}
	daemon->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (daemon->signal_fd < 0) {
		*error_r = "signalfd failed";
		return -1;
	}
	daemon->signal_io = loop_io_add(daemon->core.loop, daemon->core.self, daemon->signal_fd,
					POSTERN_IO_READ, daemon_on_signal, daemon, error_r);
	return daemon->signal_io == NULL ? -1 : 0;
}

/* ---- Reload ------------------------------------------------------------ */

void daemon_request_reload(struct postern_core *core)
{
	core->reload_requested = true;
}

static bool strlists_equal(char **a, char **b)
{
	for (; a != NULL && b != NULL && *a != NULL && *b != NULL; a++, b++) {
		if (strcmp(*a, *b) != 0)
			return false;
	}
	return (a == NULL || *a == NULL) && (b == NULL || *b == NULL);
}

static bool str_equal(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Settings that only a restart can change; keep the running values. */
static void keep_restart_only_settings(struct core_settings *next,
				       struct core_settings *current)
{
	static const struct {
		const char *name;
		size_t offset;
	} fixed[] = {
		{ "module_dir", offsetof(struct core_settings, module_dir) },
		{ "base_dir", offsetof(struct core_settings, base_dir) },
		{ "user", offsetof(struct core_settings, user) },
		{ "group", offsetof(struct core_settings, group) },
		{ "pid_file", offsetof(struct core_settings, pid_file) },
		{ "control_socket", offsetof(struct core_settings, control_socket) },
		{ "syslog_facility", offsetof(struct core_settings, syslog_facility) },
	};

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		char **next_value = (char **)((char *)next + fixed[i].offset);
		char **current_value = (char **)((char *)current + fixed[i].offset);

		if (str_equal(*next_value, *current_value))
			continue;
		log_core(POSTERN_LOG_WARNING, "reload: '%s' changes only at restart; keeping %s",
			 fixed[i].name, *current_value != NULL ? *current_value : "(unset)");
		free(*next_value);
		*next_value = *current_value != NULL ? xstrdup(*current_value) : NULL;
	}
}

int daemon_reload(struct postern_core *core, const char **error_r)
{
	struct daemon *daemon = daemon_of(core);
	struct core_settings settings;
	struct config *config;
	const char *level_error;

	core->reload_requested = false;
	if (core->shutting_down) {
		*error_r = "shutting down";
		return -1;
	}
	config = daemon_load_config(daemon, &settings, error_r);
	if (config == NULL)
		goto refused;
	if (!strlists_equal(settings.modules, core->settings.modules)) {
		*error_r = "the 'modules' list changed: that needs a restart";
		goto refused_free;
	}
	if (log_set_level(settings.log_level, &level_error) < 0) {
		*error_r = level_error;
		goto refused_free;
	}
	if (modules_check_config(core, config, error_r) < 0 ||
	    tls_reload_all(core, error_r) < 0 || modules_reload(core, config, error_r) < 0)
		goto refused_free;

	keep_restart_only_settings(&settings, &core->settings);
	config_core_settings_free(&core->settings);
	core->settings = settings;
	loop_set_busy_poll(core->loop, core->settings.busy_poll_us);
	config_free(&core->config);
	core->config = config;
	core->generation++;
	log_core(POSTERN_LOG_NOTICE, "configuration reloaded (generation %u)", core->generation);

	struct postern_ev_reload event = {
		.struct_size = sizeof(event),
		.generation = core->generation,
		.config_file = core->config_file,
	};
	postern_bus_publish(core->self, POSTERN_TOPIC_CONFIG_RELOADED, POSTERN_EV_RELOAD_TYPE,
			    &event);
	return 0;

refused_free:
	log_set_level(core->settings.log_level, &level_error);
	config_core_settings_free(&settings);
	config_free(&config);
refused:
	log_core(POSTERN_LOG_ERROR, "reload refused, previous configuration stays in force: %s",
		 *error_r);
	return -1;
}

/* ---- Entry points ------------------------------------------------------ */

int daemon_check(const struct daemon_options *options)
{
	struct daemon daemon = { .options = options };
	const char *error;
	int status = EXIT_SUCCESS;

	if (daemon_prepare(&daemon, true, &error) < 0) {
		fprintf(stderr, "posternd: %s\n", error);
		status = EXIT_FAILURE;
	} else {
		printf("posternd: %s: configuration OK, %u module%s loaded\n", options->config_file,
		       daemon.core.mod_count, daemon.core.mod_count == 1 ? "" : "s");
	}
	daemon_free(&daemon);
	return status;
}

int daemon_dump_config(const struct daemon_options *options)
{
	struct daemon daemon = { .options = options };
	struct core_settings settings;
	const char *error;

	struct config *config = daemon_load_config(&daemon, &settings, &error);
	if (config == NULL) {
		fprintf(stderr, "posternd: %s\n", error);
		free(daemon.core.error_buf);
		return EXIT_FAILURE;
	}
	struct postern_str *out = postern_str_new();
	config_dump(config, out);
	fwrite(postern_str_data(out), 1, postern_str_len(out), stdout);
	postern_str_free(&out);
	config_core_settings_free(&settings);
	config_free(&config);
	return EXIT_SUCCESS;
}

/* A mail server holds many connections: take every fd the hard limit allows. */
static void raise_fd_limit(void)
{
	struct rlimit limit;

	if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
		limit.rlim_cur = limit.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &limit) < 0)
			log_core(POSTERN_LOG_WARNING, "cannot raise the fd limit: %s",
				 strerror(errno));
	}
}

/* Detach from the terminal; the parent exits once the child is running. */
static int daemon_detach(const char **error_r)
{
	pid_t pid = fork();

	if (pid < 0) {
		*error_r = "fork failed";
		return -1;
	}
	if (pid > 0)
		_exit(EXIT_SUCCESS);
	setsid();
	int null_fd = open("/dev/null", O_RDWR);
	if (null_fd >= 0) {
		dup2(null_fd, STDIN_FILENO);
		dup2(null_fd, STDOUT_FILENO);
		dup2(null_fd, STDERR_FILENO);
		if (null_fd > STDERR_FILENO)
			close(null_fd);
	}
	return 0;
}

static int daemon_startup(struct daemon *daemon, const char **error_r)
{
	struct postern_core *core = &daemon->core;

	if (daemon_prepare(daemon, daemon->options->foreground, error_r) < 0 ||
	    daemon_resolve_ids(daemon, error_r) < 0)
		return -1;
	if (!daemon->options->foreground && daemon_detach(error_r) < 0)
		return -1;
	raise_fd_limit();
	if (daemon_write_pidfile(daemon, error_r) < 0 ||
	    daemon_setup_signals(daemon, error_r) < 0 ||
	    control_open(core, core->settings.control_socket, error_r) < 0 ||
	    modules_init(core, error_r) < 0 || daemon_drop_privileges(daemon, error_r) < 0 ||
	    modules_start(core, error_r) < 0)
		return -1;
	log_core(POSTERN_LOG_NOTICE, "posternd %s started: %u modules, config %s",
		 postern_core_version(), core->mod_count, core->config_file);
	return 0;
}

/* Connections the modules still hold (the control socket's do not count). */
static unsigned module_conn_count(const struct postern_core *core)
{
	unsigned count = 0;

	for (unsigned i = 0; i < core->mod_count; i++)
		count += conn_count_module(core->conns, core->mods[i]);
	return count;
}

static void daemon_serve(struct daemon *daemon)
{
	struct postern_core *core = &daemon->core;
	uint64_t deadline = 0;
	const char *error;

	for (;;) {
		loop_run_once(core->loop, core->shutting_down ? SHUTDOWN_POLL_MS : -1);
		if (core->reload_requested)
			(void)daemon_reload(core, &error);
		if (daemon->stop_requested && !core->shutting_down) {
			daemon_begin_shutdown(daemon);
			deadline = postern_now_ms() + core->settings.shutdown_timeout_ms;
		}
		if (!core->shutting_down)
			continue;
		if (module_conn_count(core) == 0)
			break;
		if (postern_now_ms() >= deadline) {
			log_core(POSTERN_LOG_WARNING,
				 "shutdown deadline passed: closing %u connections",
				 module_conn_count(core));
			conn_close_all(core->conns, NULL, "shutdown deadline");
			loop_run_once(core->loop, 0); /* deliver CLOSED */
			break;
		}
	}
}

int daemon_run(const struct daemon_options *options)
{
	struct daemon daemon = { .options = options };
	const char *error;
	int status = EXIT_SUCCESS;

	if (daemon_startup(&daemon, &error) < 0) {
		/* Before detaching, stderr is still the admin's terminal. */
		fprintf(stderr, "posternd: %s\n", error);
		log_core(POSTERN_LOG_CRIT, "startup failed: %s", error);
		status = EXIT_FAILURE;
	} else {
		daemon_serve(&daemon);
		log_core(POSTERN_LOG_NOTICE, "posternd stopped");
	}
	daemon_free(&daemon);
	return status;
}
