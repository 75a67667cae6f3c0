/*
 * The back-end directory's private view, shared by directory.c (back-ends
 * and their lookup), ring.c (consistent hashing and failover order) and
 * health.c (up/down state and session counts).
 */
#ifndef POSTERN_DIRECTORY_PRIVATE_H
#define POSTERN_DIRECTORY_PRIVATE_H

#include <postern/directory.h>

#define DIRECTORY_DEFAULT_VNODES 160
#define DIRECTORY_DEFAULT_POOL "default"
#define DIRECTORY_ERROR_MAX 256

struct postern_backend {
	struct postern_directory *dir;
	unsigned index;
	char *name, *pool, *host, *address;
	unsigned port;
	bool tls;
	unsigned max_sessions;
	void *data;

	bool up;
	unsigned sessions;
	uint64_t total_sessions, down_count;
	uint64_t last_change_ms;
	char last_error[DIRECTORY_ERROR_MAX]; /* "" when none yet */
};

/* One point on a pool's ring. */
struct ring_point {
	uint64_t hash;
	unsigned backend;   /* index in the directory */
};

/* A pool: its name, members and ring, built at the first route. */
struct ring_pool {
	char *name;
	unsigned *members;  /* directory indexes, in the order added */
	unsigned member_count;
	struct ring_point *points;  /* sorted by hash */
	unsigned point_count;
};

struct postern_directory {
	unsigned vnodes;
	char *default_pool;
	uint64_t (*clock_ms)(void *ctx);
	void *clock_ctx;

	struct postern_backend **backends;
	unsigned count;

	struct ring_pool *pools;
	unsigned pool_count;
	bool rings_built;
};

/* directory.c */
uint64_t directory_now(const struct postern_directory *dir);

/* ring.c: build every pool's ring (idempotent, after the last add). */
void ring_build(struct postern_directory *dir);
void ring_free(struct postern_directory *dir);
struct ring_pool *ring_pool_find(const struct postern_directory *dir, const char *name);

#endif
