/*
 * posternctl: the operator's command line to a running posternd. It sends
 * one request over the control socket (format: core/control_protocol.h),
 * copies the answer's body to stdout as it arrives and turns the status
 * into an exit code. It knows no commands itself: `posternctl help` asks
 * the daemon, so commands that modules add need no change here.
 *
 * `posternctl pw` is the exception: it hashes a password for a passwd-file
 * locally, with lib/auth, and needs no daemon.
 *
 * Exit codes: 0 OK, 1 the daemon answered ERR (pw: hashing failed), 2 usage
 * error, 3 the daemon could not be reached or gave no valid answer.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <postern/auth.h>
#include <postern/str.h>
#include "core.h"
#include "control_protocol.h"

enum {
	EXIT_OK = 0,
	EXIT_ERR = 1,     /* the daemon answered ERR */
	EXIT_USAGE = 2,
	EXIT_UNREACHABLE = 3,
};

#define DEFAULT_CONFIG SYSCONFDIR "/postern/postern.conf"
/* The daemon answers at once (commands must not block its loop); this only
 * keeps a wedged daemon from hanging scripts forever. */
#define ANSWER_TIMEOUT_MS 60000
/* Status lines are at most "ERR " + CONTROL_MAX_MESSAGE + CR LF. */
#define MAX_STATUS_LINE (CONTROL_MAX_MESSAGE + 16)

#define SYNOPSIS "usage: posternctl [-c FILE] [-s SOCKET] [--json] COMMAND [ARGS...]\n" \
		 "       posternctl pw [-s SCHEME]\n"

static void usage(FILE *out)
{
	fputs(SYNOPSIS
	      "\n"
	      "Send COMMAND to the running posternd and print its answer.\n"
	      "`posternctl help` lists the commands the daemon knows.\n"
	      "`posternctl pw` reads a password and prints its hash for a passwd-file\n"
	      "(-s SCHEME: SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT, YESCRYPT; default\n"
	      "the best this system has).\n"
	      "\n"
	      "  -c, --config FILE    find the control socket in FILE\n"
	      "                       (default " DEFAULT_CONFIG ")\n"
	      "  -s, --socket SOCKET  use this control socket; FILE is not read\n"
	      "      --json           ask for a JSON answer (also after COMMAND)\n"
	      "  -h, --help           show this help\n"
	      "  -V, --version        show the version\n"
	      "\n"
	      "Exit status: 0 OK, 1 the daemon answered ERR, 2 usage error,\n"
	      "3 the daemon cannot be reached.\n", out);
}

static int fail(int code, const char *fmt, ...) POSTERN_PRINTF(2, 3);
static int fail(int code, const char *fmt, ...)
{
	va_list args;

	fputs("posternctl: ", stderr);
	va_start(args, fmt);
	vfprintf(stderr, fmt, args);
	va_end(args);
	fputc('\n', stderr);
	return code;
}

/* ---- Finding the socket ------------------------------------------------- */

static int socket_from_config(const char *file, char **path_r)
{
	struct core_settings settings;
	const char *error;
	char *load_error;
	int ret;

	struct config *config = config_load(file, NULL, 0, &load_error);
	if (config == NULL) {
		ret = fail(EXIT_UNREACHABLE,
			   "cannot find the control socket: %s (use -s SOCKET)", load_error);
		free(load_error);
		return ret;
	}
	memset(&settings, 0, sizeof(settings));
	if (config_core_settings(config, &settings, &error) < 0) {
		/* Before config_free(): the message lives in the config. */
		ret = fail(EXIT_UNREACHABLE,
			   "cannot find the control socket: %s (use -s SOCKET)", error);
		config_free(&config);
		return ret;
	}
	ret = EXIT_OK;
	if (settings.control_socket == NULL || settings.control_socket[0] == '\0')
		ret = fail(EXIT_UNREACHABLE, "%s sets no control_socket (use -s SOCKET)", file);
	else
		*path_r = xstrdup(settings.control_socket);
	config_core_settings_free(&settings);
	config_free(&config);
	return ret;
}

/* ---- Talking to the daemon ---------------------------------------------- */

static int connect_socket(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (const struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* Wait for `events` on fd; 0 when ready, -1 with errno (ETIMEDOUT). */
static int wait_fd(int fd, short events)
{
	struct pollfd pfd = { .fd = fd, .events = events };

	for (;;) {
		int n = poll(&pfd, 1, ANSWER_TIMEOUT_MS);
		if (n > 0)
			return 0;
		if (n == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (errno != EINTR)
			return -1;
	}
}

static int send_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		if (wait_fd(fd, POLLOUT) < 0)
			return -1;
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -1;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read what is there: >0 bytes, 0 at EOF, -1 on error or timeout. */
static ssize_t recv_some(int fd, char *buf, size_t size)
{
	for (;;) {
		if (wait_fd(fd, POLLIN) < 0)
			return -1;
		ssize_t n = recv(fd, buf, size, 0);
		if (n >= 0 || (errno != EINTR && errno != EAGAIN))
			return n;
	}
}

static int write_stdout(const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(STDOUT_FILENO, data, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read the status line, then stream the body to stdout. */
static int read_answer(int fd, const char *path)
{
	char buf[16384];
	size_t have = 0;
	char *lf = NULL;

	while (lf == NULL) {
		if (have >= MAX_STATUS_LINE)
			return fail(EXIT_UNREACHABLE, "%s: answer without a valid status line", path);
		ssize_t n = recv_some(fd, buf + have, MAX_STATUS_LINE - have);
		if (n < 0)
			return fail(EXIT_UNREACHABLE, "%s: no answer: %s", path, strerror(errno));
		if (n == 0)
			return fail(EXIT_UNREACHABLE, "%s: the daemon closed the connection "
				    "without answering", path);
		lf = memchr(buf + have, '\n', (size_t)n);
		have += (size_t)n;
	}

	const char *message;
	size_t message_len;
	size_t line_len = (size_t)(lf - buf);
	switch (control_status_decode(buf, line_len, &message, &message_len)) {
	case CONTROL_STATUS_OK:
		break;
	case CONTROL_STATUS_ERR:
		fprintf(stderr, "posternctl: %.*s\n", (int)message_len, message);
		return EXIT_ERR;
	case CONTROL_STATUS_INVALID:
		return fail(EXIT_UNREACHABLE, "%s: answer without a valid status line", path);
	}

	size_t body = have - line_len - 1;
	if (write_stdout(lf + 1, body) < 0)
		return fail(EXIT_ERR, "writing the answer: %s", strerror(errno));
	for (;;) {
		ssize_t n = recv_some(fd, buf, sizeof(buf));
		if (n == 0)
			return EXIT_OK;
		if (n < 0)
			return fail(EXIT_UNREACHABLE, "%s: answer cut short: %s", path,
				    strerror(errno));
		if (write_stdout(buf, (size_t)n) < 0)
			return fail(EXIT_ERR, "writing the answer: %s", strerror(errno));
	}
}

static int run_request(const char *path, int argc, const char *const *argv)
{
	struct postern_str *request = postern_str_new();

	control_request_encode(request, argc, argv);
	size_t len = postern_str_len(request);
	if (len - 1 > CONTROL_MAX_REQUEST) {
		postern_str_free(&request);
		return fail(EXIT_USAGE, "request too long (%zu bytes, at most %d)", len - 1,
			    CONTROL_MAX_REQUEST);
	}

	int fd = connect_socket(path);
	if (fd < 0) {
		postern_str_free(&request);
		return fail(EXIT_UNREACHABLE, "cannot connect to %s: %s (is posternd running?)",
			    path, strerror(errno));
	}
	/* A refusal (permission denied) may come before the daemon has read
	 * the request: if sending fails, the answer may still be there. */
	int send_errno = send_all(fd, postern_str_data(request), len) < 0 ? errno : 0;
	postern_str_free(&request);
	int ret = read_answer(fd, path);
	if (ret == EXIT_UNREACHABLE && send_errno != 0)
		fprintf(stderr, "posternctl: %s: sending the request failed: %s\n", path,
			strerror(send_errno));
	close(fd);
	return ret;
}

/* ---- pw: hash a password locally ---------------------------------------- */

/* The terminal's settings while echo is off, restored on a signal too. */
static struct termios saved_termios;
static volatile sig_atomic_t echo_off;

static void restore_echo(void)
{
	if (echo_off) {
		(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_termios);
		echo_off = 0;
	}
}

static void pw_signal(int sig)
{
	restore_echo();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Read one line into buf (room for POSTERN_PASSWORD_MAX + 2 bytes), without
 * echo when stdin is a terminal. 0, or -1 with *error_r. */
static int read_password(const char *prompt, bool tty, char *buf, size_t size,
			 const char **error_r)
{
	size_t len = 0;
	bool too_long = false;

	if (tty) {
		struct termios raw;
		fputs(prompt, stderr);
		if (tcgetattr(STDIN_FILENO, &saved_termios) < 0) {
			*error_r = "cannot read the terminal's settings";
			return -1;
		}
		raw = saved_termios;
		raw.c_lflag &= ~(tcflag_t)ECHO;
		raw.c_lflag |= ECHONL;
		echo_off = 1;
		(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw);
	}
	for (;;) {
		char c;
		ssize_t n = read(STDIN_FILENO, &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || c == '\n')
			break;
		if (len < size - 1)
			buf[len++] = c;
		else
			too_long = true;
	}
	restore_echo();
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	buf[len] = '\0';
	if (too_long || len > POSTERN_PASSWORD_MAX) {
		*error_r = "password too long";
		return -1;
	}
	if (len == 0) {
		*error_r = "empty password";
		return -1;
	}
	return 0;
}

static int run_pw(int argc, char **argv)
{
	char password[POSTERN_PASSWORD_MAX + 2], again[POSTERN_PASSWORD_MAX + 2];
	const char *scheme = NULL, *error = NULL;
	char *hash = NULL;
	int ret = EXIT_ERR;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-s") == 0 && i + 1 < argc)
			scheme = argv[++i];
		else
			return fail(EXIT_USAGE, "usage: posternctl pw [-s SCHEME]");
	}
	if (scheme == NULL)
		scheme = postern_password_default_scheme();
	if (!postern_password_scheme_supported(scheme))
		return fail(EXIT_USAGE, "pw: cannot hash with scheme %s here (use SHA512-CRYPT, "
			    "SHA256-CRYPT, BLF-CRYPT, YESCRYPT or PLAIN)", scheme);

	bool tty = isatty(STDIN_FILENO);
	if (tty) {
		signal(SIGINT, pw_signal);
		signal(SIGTERM, pw_signal);
		signal(SIGHUP, pw_signal);
		signal(SIGQUIT, pw_signal);
	}
	if (read_password("Password: ", tty, password, sizeof(password), &error) < 0) {
		fail(EXIT_ERR, "pw: %s", error);
	} else if (tty && read_password("Retype password: ", tty, again, sizeof(again),
					&error) < 0) {
		fail(EXIT_ERR, "pw: %s", error);
	} else if (tty && strcmp(password, again) != 0) {
		fail(EXIT_ERR, "pw: the passwords do not match");
	} else if (postern_password_hash(scheme, password, 0, &hash, &error) < 0) {
		fail(EXIT_ERR, "pw: %s", error);
	} else {
		if (postern_password_is_test_only(hash))
			fprintf(stderr, "posternctl: pw: warning: %s is for tests only\n", scheme);
		printf("%s\n", hash);
		ret = fflush(stdout) == 0 ? EXIT_OK : fail(EXIT_ERR, "pw: writing: %s",
							   strerror(errno));
		explicit_bzero(hash, strlen(hash));
		free(hash);
	}
	explicit_bzero(password, sizeof(password));
	explicit_bzero(again, sizeof(again));
	return ret;
}

/* ---- main --------------------------------------------------------------- */

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_file = DEFAULT_CONFIG;
	const char *socket_opt = NULL;
	bool json = false;
	int opt;

	/* '+': options end at COMMAND, whose own arguments may look like ours
	 * (`posternctl pw -s SCHEME`). */
	while ((opt = getopt_long(argc, argv, "+c:s:hV", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_file = optarg;
			break;
		case 's':
			socket_opt = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			printf("posternctl %s\n", PACKAGE_VERSION);
			return EXIT_OK;
		default:
			fputs(SYNOPSIS "Try 'posternctl --help'.\n", stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fputs(SYNOPSIS "Try 'posternctl --help'.\n", stderr);
		return EXIT_USAGE;
	}
	if (argv[optind][0] == '\0')
		return fail(EXIT_USAGE, "empty command (try 'posternctl help')");
	if (strcmp(argv[optind], "pw") == 0)
		return run_pw(argc - optind, argv + optind);

	/* The request: COMMAND ARGS..., and --json if it came before COMMAND
	 * (one given after COMMAND is passed on as it is; the daemon takes
	 * it out of the arguments). */
	int req_argc = argc - optind;
	const char **req_argv = xcalloc((size_t)req_argc + 2, sizeof(*req_argv));
	for (int i = 0; i < req_argc; i++)
		req_argv[i] = argv[optind + i];
	if (json)
		req_argv[req_argc++] = CONTROL_JSON_ARG;

	char *path = NULL;
	int ret = EXIT_OK;
	if (socket_opt != NULL) {
		if (strncmp(socket_opt, "unix:", 5) == 0)
			socket_opt += 5;
		if (socket_opt[0] == '\0')
			ret = fail(EXIT_USAGE, "-s needs a socket path");
		else
			path = xstrdup(socket_opt);
	} else {
		ret = socket_from_config(config_file, &path);
	}
	if (ret == EXIT_OK)
		ret = run_request(path, req_argc, req_argv);
	free(path);
	free(req_argv);
	return ret;
}
