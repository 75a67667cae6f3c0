/*
 * fsyncprobe: how many durable small-file creations per second this disk
 * allows, the ceiling for any mail queue that fsyncs before it says 250.
 *
 * One creation is what a queue does to make a message durable: create a
 * file in tmp/, write SIZE bytes, fsync it, close it, rename it into new/,
 * fsync new/ (the rename is only durable once the directory is). Files are
 * unlinked again after the run, outside the timed part.
 *
 *   fsyncprobe DIR COUNT SIZE THREADS
 *
 * THREADS = 1: every creation pays its own directory fsync (no batching).
 * THREADS > 1: the threads create files in parallel and share directory
 * fsyncs (group commit): a thread that renamed its file waits for a
 * directory fsync that began after its rename, starting one itself if none
 * is running, so one fsync covers every rename made before it began and no
 * file is reported durable before the fsync that covers it. The file fsyncs
 * of parallel threads also share journal commits in the file system.
 *
 * Prints "files N seconds S rate R dirsyncs D".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 256
#define MAX_SIZE (1024 * 1024)

static const char *base;
static long total, size;
static char *payload;
static int newdir_fd;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t synced_cond = PTHREAD_COND_INITIALIZER;
static long next_file;		/* next file number to create */
static unsigned long renamed_seq;	/* renames done so far */
static unsigned long synced_seq;	/* renames covered by a finished dir fsync */
static int syncing;
static long dirsyncs;

static void die(const char *what)
{
	fprintf(stderr, "fsyncprobe: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Wait until a directory fsync that started after sequence number `seq`
 * was taken has finished; run it ourselves when nobody is syncing. */
static void dir_commit(unsigned long seq)
{
	pthread_mutex_lock(&lock);
	while (synced_seq < seq) {
		if (!syncing) {
			unsigned long target = renamed_seq;

			syncing = 1;
			pthread_mutex_unlock(&lock);
			if (fsync(newdir_fd) < 0)
				die("fsync new/");
			pthread_mutex_lock(&lock);
			syncing = 0;
			synced_seq = target;
			dirsyncs++;
			pthread_cond_broadcast(&synced_cond);
		} else {
			pthread_cond_wait(&synced_cond, &lock);
		}
	}
	pthread_mutex_unlock(&lock);
}

static void create_one(long n)
{
	char tmp[4096], dst[4096];
	unsigned long seq;
	int fd;

	snprintf(tmp, sizeof(tmp), "%s/tmp/f%ld", base, n);
	snprintf(dst, sizeof(dst), "%s/new/f%ld", base, n);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		die(tmp);
	if (write(fd, payload, size) != size)
		die("write");
	if (fsync(fd) < 0)
		die("fsync");
	if (close(fd) < 0)
		die("close");
	if (rename(tmp, dst) < 0)
		die("rename");
	pthread_mutex_lock(&lock);
	seq = ++renamed_seq;
	pthread_mutex_unlock(&lock);
	dir_commit(seq);
}

static void *worker(void *arg)
{
	(void)arg;
	for (;;) {
		long n;

		pthread_mutex_lock(&lock);
		n = next_file < total ? next_file++ : -1;
		pthread_mutex_unlock(&lock);
		if (n < 0)
			return NULL;
		create_one(n);
	}
}

static void make_dir(const char *sub)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", base, sub);
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		die(path);
}

static void cleanup(void)
{
	char path[4096];

	for (long n = 0; n < total; n++) {
		snprintf(path, sizeof(path), "%s/new/f%ld", base, n);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/new", base);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/tmp", base);
	rmdir(path);
}

int main(int argc, char **argv)
{
	pthread_t threads[MAX_THREADS];
	char path[4096];
	long nthreads;
	double start, seconds;

	if (argc != 5) {
		fprintf(stderr, "usage: fsyncprobe DIR COUNT SIZE THREADS\n");
		return 2;
	}
	base = argv[1];
	total = atol(argv[2]);
	size = atol(argv[3]);
	nthreads = atol(argv[4]);
	if (total <= 0 || size <= 0 || size > MAX_SIZE || nthreads <= 0 ||
	    nthreads > MAX_THREADS) {
		fprintf(stderr, "fsyncprobe: bad COUNT, SIZE or THREADS\n");
		return 2;
	}
	payload = malloc(size);
	if (payload == NULL)
		die("malloc");
	memset(payload, 'x', size);
	make_dir("tmp");
	make_dir("new");
	snprintf(path, sizeof(path), "%s/new", base);
	newdir_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (newdir_fd < 0)
		die(path);

	start = now();
	for (long i = 0; i < nthreads; i++)
		if (pthread_create(&threads[i], NULL, worker, NULL) != 0)
			die("pthread_create");
	for (long i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);
	seconds = now() - start;

	printf("files %ld seconds %.3f rate %.1f dirsyncs %ld\n", total, seconds,
	       total / seconds, dirsyncs);
	cleanup();
	return 0;
}
