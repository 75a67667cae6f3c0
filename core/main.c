/*
 * posternd: command-line parsing only; the lifecycle is in daemon.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "config.h"
#include "core.h"
#include "daemon.h"

#define DEFAULT_CONFIG_FILE SYSCONFDIR "/postern/postern.conf"
#define MAX_OVERRIDES 256

static void usage(FILE *out)
{
	fprintf(out,
		"usage: posternd [-c FILE] [-F] [-o PATH=VALUE]...\n"
		"       posternd -t [-c FILE] [-o PATH=VALUE]...  check config and modules\n"
		"       posternd -n [-c FILE] [-o PATH=VALUE]...  print the effective config\n"
		"       posternd -V                               print the version\n"
		"  -c FILE          configuration file (default %s)\n"
		"  -F               stay in the foreground and log to stderr\n"
		"  -o PATH=VALUE    override one setting, e.g. -o 'smtp.listen=(\"127.0.0.1:25\")'\n",
		DEFAULT_CONFIG_FILE);
}

int main(int argc, char **argv)
{
	static const char *overrides[MAX_OVERRIDES];
	struct daemon_options options = {
		.config_file = DEFAULT_CONFIG_FILE,
		.overrides = overrides,
	};
	bool check = false, dump = false;
	int opt;

	while ((opt = getopt(argc, argv, "c:Fo:tnVh")) != -1) {
		switch (opt) {
		case 'c':
			options.config_file = optarg;
			break;
		case 'F':
			options.foreground = true;
			break;
		case 'o':
			if (strchr(optarg, '=') == NULL) {
				fprintf(stderr, "posternd: -o %s: expected PATH=VALUE\n", optarg);
				return 2;
			}
			if (options.override_count == MAX_OVERRIDES) {
				fprintf(stderr, "posternd: more than %d -o options\n", MAX_OVERRIDES);
				return 2;
			}
			overrides[options.override_count++] = optarg;
			break;
		case 't':
			check = true;
			break;
		case 'n':
			dump = true;
			break;
		case 'V':
			printf("posternd %s (module ABI %u.%u)\n", PACKAGE_VERSION,
			       POSTERN_ABI_MAJOR, POSTERN_ABI_MINOR);
			return EXIT_SUCCESS;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (check)
		return daemon_check(&options);
	if (dump)
		return daemon_dump_config(&options);
	return daemon_run(&options);
}
