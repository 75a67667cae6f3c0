/*
 * The daemon's lifecycle, as main() drives it: check a configuration, or
 * start, serve until SIGTERM, and shut down gracefully.
 */
#ifndef POSTERN_DAEMON_H
#define POSTERN_DAEMON_H

#include <stdbool.h>

struct daemon_options {
	const char *config_file;
	const char *const *overrides; /* "-o PATH=VALUE" arguments, in order */
	unsigned override_count;
	bool foreground;              /* -F: no fork, log to stderr */
};

/* `posternd -t`: load the configuration and every module and run every
 * module's checks; errors go to stderr. Returns the exit status. */
int daemon_check(const struct daemon_options *options);

/* `posternd -n`: print the effective configuration. Returns the exit status. */
int daemon_dump_config(const struct daemon_options *options);

/* Run the daemon until it is told to stop. Returns the exit status. */
int daemon_run(const struct daemon_options *options);

#endif
