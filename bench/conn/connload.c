/*
 * connload: a load generator for connection-manager benchmarks.
 *
 *   connload hold HOST PORT COUNT
 *       open COUNT connections, read each one's greeting line, print
 *       "held COUNT" and keep them open until stdin closes.
 *   connload churn HOST PORT TOTAL CONCURRENCY
 *       connect, read the first greeting byte, close; TOTAL times with
 *       CONCURRENCY in flight; print "churn TOTAL in S s: R conn/s".
 *
 * One epoll loop, non-blocking sockets, source addresses spread over
 * 127.0.0.0/8 so that 10,000s of connections do not run out of ports.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in target;
static unsigned source_counter;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

/* Start a non-blocking connect from 127.0.0.(2..254) for loopback targets. */
static int start_connect(int epfd)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	if ((ntohl(target.sin_addr.s_addr) >> 24) == 127) {
		struct sockaddr_in source = { .sin_family = AF_INET };
		source.sin_addr.s_addr = htonl(0x7f000002u + (source_counter++ % 253));
		if (bind(fd, (struct sockaddr *)&source, sizeof(source)) < 0)
			die("bind");
	}
	if (connect(fd, (struct sockaddr *)&target, sizeof(target)) < 0 && errno != EINPROGRESS)
		die("connect");
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.fd = fd };
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		die("epoll_ctl");
	return fd;
}

static void raise_nofile(void)
{
	struct rlimit limit;

	if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
		limit.rlim_cur = limit.rlim_max;
		setrlimit(RLIMIT_NOFILE, &limit);
	}
}

static int hold(unsigned count)
{
	int epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event events[256];
	unsigned greeted = 0, started = 0;
	char buf[512];

	while (greeted < count) {
		/* Keep at most 200 handshakes in flight, like a real crowd. */
		while (started < count && started - greeted < 200) {
			start_connect(epfd);
			started++;
		}
		int n = epoll_wait(epfd, events, 256, 10000);
		if (n <= 0)
			die("epoll_wait (server stopped answering)");
		for (int i = 0; i < n; i++) {
			int fd = events[i].data.fd;
			ssize_t got = read(fd, buf, sizeof(buf));
			if (got <= 0) {
				fprintf(stderr, "connection %u closed by the server\n", greeted);
				return 1;
			}
			/* Greeted: stop watching; the connection stays open. */
			epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
			greeted++;
		}
	}
	printf("held %u\n", count);
	fflush(stdout);
	while (read(STDIN_FILENO, buf, sizeof(buf)) > 0)
		;
	return 0;
}

static int churn(unsigned total, unsigned concurrency)
{
	int epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event events[256];
	unsigned started = 0, done = 0;
	char buf[512];
	double t0 = now_s();

	while (done < total) {
		while (started < total && started - done < concurrency) {
			start_connect(epfd);
			started++;
		}
		int n = epoll_wait(epfd, events, 256, 10000);
		if (n <= 0)
			die("epoll_wait (server stopped answering)");
		for (int i = 0; i < n; i++) {
			int fd = events[i].data.fd;
			(void)read(fd, buf, sizeof(buf));
			/* Reset instead of FIN: no TIME_WAIT pile-up on our side. */
			struct linger linger = { .l_onoff = 1, .l_linger = 0 };
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, sizeof(linger));
			close(fd);
			done++;
		}
	}
	double elapsed = now_s() - t0;
	printf("churn %u in %.3f s: %.0f conn/s\n", total, elapsed, total / elapsed);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: connload hold HOST PORT COUNT\n"
				"       connload churn HOST PORT TOTAL CONCURRENCY\n");
		return 2;
	}
	raise_nofile();
	target.sin_family = AF_INET;
	target.sin_port = htons((uint16_t)atoi(argv[3]));
	if (inet_pton(AF_INET, argv[2], &target.sin_addr) != 1) {
		fprintf(stderr, "bad address %s\n", argv[2]);
		return 2;
	}
	if (strcmp(argv[1], "hold") == 0)
		return hold((unsigned)atoi(argv[4]));
	if (strcmp(argv[1], "churn") == 0 && argc == 6)
		return churn((unsigned)atoi(argv[4]), (unsigned)atoi(argv[5]));
	fprintf(stderr, "unknown mode %s\n", argv[1]);
	return 2;
}
