/*
 * maildeliver: store messages into a Maildir with lib/mailstore, the way
 * queue-store delivers, for the integration tests and bench/pop3.
 *
 *   maildeliver [-n] [-i ID] MAILDIR FILE...   ("-" reads standard input)
 *
 * -n skips fsync (tests). Prints each new file name. Exit status 0, 1 on a
 * failed delivery, 75 (EX_TEMPFAIL) when over quota. Not installed.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <postern/mailstore.h>

static int deliver_one(const struct mailstore_settings *set, const char *path, const char *id)
{
	struct mailstore_delivery d = MAILSTORE_DELIVERY_INIT;
	const char *error;
	char *name = NULL;
	int fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		perror(path);
		return 1;
	}
	d.fd = fd;
	d.id = id;
	switch (mailstore_deliver(set, &d, &name, &error)) {
	case MAILSTORE_DELIVERED:
		printf("%s\n", name);
		free(name);
		break;
	case MAILSTORE_DELIVER_OVER_QUOTA:
		fprintf(stderr, "maildeliver: %s: over quota: %s\n", path, error);
		return 75;
	case MAILSTORE_DELIVER_FAILED:
		fprintf(stderr, "maildeliver: %s: %s\n", path, error);
		return 1;
	}
	if (fd != 0)
		close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	struct mailstore_settings set = MAILSTORE_SETTINGS_INIT;
	const char *id = NULL;
	int opt, status = 0;

	while ((opt = getopt(argc, argv, "ni:")) != -1) {
		switch (opt) {
		case 'n':
			set.no_fsync = true;
			break;
		case 'i':
			id = optarg;
			break;
		default:
			fprintf(stderr, "usage: maildeliver [-n] [-i ID] MAILDIR FILE...\n");
			return 2;
		}
	}
	if (argc - optind < 2) {
		fprintf(stderr, "usage: maildeliver [-n] [-i ID] MAILDIR FILE...\n");
		return 2;
	}
	set.root = argv[optind];
	for (int i = optind + 1; i < argc && status == 0; i++)
		status = deliver_one(&set, argv[i], id);
	return status;
}
