/*
 * pop3load: a POP3 load generator for bench/pop3/run. One thread, epoll,
 * non-blocking sockets, so that the server, not the client, is measured.
 *
 *   pop3load run  HOST PORT CLIENTS USERFMT PASSWORD [MAX_RETR]
 *   pop3load hold HOST PORT CLIENTS USERFMT PASSWORD
 *
 * Client i logs in as printf(USERFMT, i) ("u%d@bench.test") with USER/PASS.
 * run:  STAT, LIST, then RETR 1..N one at a time (N = STAT's count, or
 *       MAX_RETR if smaller), QUIT; all CLIENTS sessions at once. Prints one
 *       line: "sessions S messages M bytes B seconds T errors E".
 * hold: logs every client in and does STAT and LIST, prints "ready", waits
 *       for standard input to close, then QUITs them all.
 *
 * Responses are checked (+OK, the multi-line terminator), not parsed
 * further; the bytes of each RETR are counted.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum step { GREETING, USER, PASS, STAT, LIST, RETR, QUIT, HOLD, DONE };

struct client {
	int fd;
	unsigned index;
	enum step step;
	bool multiline;      /* the current response ends with ".\r\n" */
	bool status_seen;    /* its first line (+OK/-ERR) arrived */
	char line[512];      /* the status line so far */
	size_t line_len;
	char tail[4];        /* the last bytes of a multi-line response */
	size_t tail_len;
	unsigned count, next;
	uint64_t bytes;
};

static const char *host, *userfmt, *password;
static int port;
static unsigned max_retr = UINT32_MAX;
static unsigned done_sessions, errors, ready;
static uint64_t total_messages, total_bytes;
static bool hold_mode;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	perror(what);
	exit(2);
}

static void send_line(struct client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void send_line(struct client *c, const char *fmt, ...)
{
	char buf[512];
	va_list args;
	int len;

	va_start(args, fmt);
	len = vsnprintf(buf, sizeof(buf) - 2, fmt, args);
	va_end(args);
	memcpy(buf + len, "\r\n", 2);
	/* commands are small and the client never has more than one in
	 * flight: the socket buffer always has room */
	if (write(c->fd, buf, (size_t)len + 2) != len + 2)
		die("write");
}

static void expect(struct client *c, enum step step, bool multiline)
{
	c->step = step;
	c->multiline = multiline;
	c->status_seen = false;
	c->line_len = 0;
	c->tail_len = 0;
}

static void finish(struct client *c, bool ok)
{
	if (!ok)
		errors++;
	done_sessions++;
	close(c->fd);
	c->fd = -1;
	c->step = DONE;
}

static void advance(struct client *c)
{
	char user[256];
	bool ok = strncmp(c->line, "+OK", 3) == 0;

	if (!ok && c->step != QUIT) {
		fprintf(stderr, "client %u: step %d: %.*s\n", c->index, c->step,
			(int)(c->line_len > 200 ? 200 : c->line_len), c->line);
		finish(c, false);
		return;
	}
	switch (c->step) {
	case GREETING:
		snprintf(user, sizeof(user), userfmt, c->index);
		send_line(c, "USER %s", user);
		expect(c, USER, false);
		break;
	case USER:
		send_line(c, "PASS %s", password);
		expect(c, PASS, false);
		break;
	case PASS:
		send_line(c, "STAT");
		expect(c, STAT, false);
		break;
	case STAT:
		c->count = (unsigned)strtoul(c->line + 4, NULL, 10);
		if (c->count > max_retr)
			c->count = max_retr;
		send_line(c, "LIST");
		expect(c, LIST, true);
		break;
	case LIST:
	case RETR:
		if (c->step == RETR) {
			total_messages++;
			total_bytes += c->bytes;
		}
		if (hold_mode) {
			c->step = HOLD;
			ready++;
			break;
		}
		if (c->next < c->count) {
			c->next++;
			c->bytes = 0;
			send_line(c, "RETR %u", c->next);
			expect(c, RETR, true);
			break;
		}
		send_line(c, "QUIT");
		expect(c, QUIT, false);
		break;
	case QUIT:
		finish(c, ok);
		break;
	case HOLD:
	case DONE:
		break;
	}
}

/* Feed received bytes; returns true when the response is complete. */
static bool consume(struct client *c, const char *data, size_t len)
{
	size_t pos = 0;

	if (!c->status_seen) {
		while (pos < len) {
			char ch = data[pos++];

			if (c->line_len < sizeof(c->line) - 1)
				c->line[c->line_len++] = ch;
			if (ch == '\n') {
				c->status_seen = true;
				c->line[c->line_len] = '\0';
				break;
			}
		}
		if (!c->status_seen)
			return false;
		/* the status line's CRLF can be the start of the terminator
		 * of an empty multi-line answer */
		memcpy(c->tail, "\r\n", 2);
		c->tail_len = 2;
		if (!c->multiline || strncmp(c->line, "+OK", 3) != 0) {
			if (pos != len)
				fprintf(stderr, "client %u: unexpected data after response\n",
					c->index);
			return true;
		}
	}
	c->bytes += len - pos;
	/* look for "\r\n.\r\n" across the boundary, then inside */
	char joined[16];
	size_t head = len - pos < 4 ? len - pos : 4;

	memcpy(joined, c->tail, c->tail_len);
	memcpy(joined + c->tail_len, data + pos, head);
	if (memmem(joined, c->tail_len + head, "\r\n.\r\n", 5) != NULL)
		return true;
	if (len - pos >= 5 && memmem(data + pos, len - pos, "\r\n.\r\n", 5) != NULL)
		return true;
	/* keep the last 4 bytes */
	if (len - pos >= 4) {
		memcpy(c->tail, data + len - 4, 4);
		c->tail_len = 4;
	} else {
		size_t keep = c->tail_len + (len - pos) > 4 ? 4 - (len - pos) : c->tail_len;

		memmove(c->tail, c->tail + c->tail_len - keep, keep);
		memcpy(c->tail + keep, data + pos, len - pos);
		c->tail_len = keep + (len - pos);
	}
	return false;
}

static void on_readable(struct client *c, char *buf, size_t size)
{
	for (;;) {
		ssize_t n = read(c->fd, buf, size);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			fprintf(stderr, "client %u: read: %s\n", c->index, strerror(errno));
			finish(c, false);
			return;
		}
		if (n == 0) {
			if (c->step != QUIT)
				fprintf(stderr, "client %u: server closed in step %d\n", c->index,
					c->step);
			finish(c, c->step == QUIT);
			return;
		}
		if (c->step == HOLD || c->step == DONE)
			continue;
		if (consume(c, buf, (size_t)n)) {
			advance(c);
			if (c->step == DONE)
				return;
		}
	}
}

static int connect_one(int epfd, struct client *c)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int one = 1;

	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		die("inet_pton");
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		die("socket");
	if (connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		die("connect");
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
	expect(c, GREETING, false);

	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
}

int main(int argc, char **argv)
{
	if (argc < 7) {
		fprintf(stderr, "usage: pop3load run|hold HOST PORT CLIENTS USERFMT PASSWORD "
				"[MAX_RETR]\n");
		return 2;
	}
	hold_mode = strcmp(argv[1], "hold") == 0;
	host = argv[2];
	port = atoi(argv[3]);
	unsigned nclients = (unsigned)atoi(argv[4]);

	userfmt = argv[5];
	password = argv[6];
	if (argc > 7)
		max_retr = (unsigned)strtoul(argv[7], NULL, 10);

	struct client *clients = calloc(nclients, sizeof(*clients));
	size_t bufsize = 1 << 18;
	char *buf = malloc(bufsize);
	int epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event events[256];
	double start = now();

	if (clients == NULL || buf == NULL || epfd < 0)
		die("setup");
	for (unsigned i = 0; i < nclients; i++) {
		clients[i].index = i;
		if (connect_one(epfd, &clients[i]) < 0)
			die("epoll_ctl");
	}
	while (done_sessions < nclients) {
		if (hold_mode && ready + done_sessions == nclients && ready > 0) {
			printf("ready %u\n", ready);
			fflush(stdout);
			/* wait for stdin to close */
			while (read(0, buf, bufsize) > 0)
				;
			hold_mode = false;
			ready = 0;
			for (unsigned i = 0; i < nclients; i++) {
				if (clients[i].step == HOLD) {
					send_line(&clients[i], "QUIT");
					expect(&clients[i], QUIT, false);
				}
			}
		}
		int n = epoll_wait(epfd, events, 256, 30000);

		if (n < 0 && errno != EINTR)
			die("epoll_wait");
		if (n == 0) {
			fprintf(stderr, "pop3load: no progress for 30 s\n");
			break;
		}
		for (int i = 0; i < n; i++) {
			struct client *c = events[i].data.ptr;

			if (c->fd >= 0)
				on_readable(c, buf, bufsize);
		}
	}
	printf("sessions %u messages %llu bytes %llu seconds %.3f errors %u\n", done_sessions,
	       (unsigned long long)total_messages, (unsigned long long)total_bytes, now() - start,
	       errors + (nclients - done_sessions));
	return errors == 0 && done_sessions == nclients ? 0 : 1;
}
