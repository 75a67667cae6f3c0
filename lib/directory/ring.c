/*
 * Consistent hashing and failover order.
 *
 * Every pool has a ring: each member owns `vnodes` points, the hashes of
 * "NAME#0", "NAME#1", ... (of its name, not its address, so that moving a
 * back-end to a new address keeps its users). A user belongs to the first
 * point at or after the hash of the lowercased name; the failover list is
 * the walk on from there, each back-end taken the first time it is met.
 * Adding a member to a pool of N takes about 1/(N+1) of the ring, all of
 * it for the new member; nobody else moves.
 *
 * Rings are built once, at the first route, after every back-end is added.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "directory_private.h"

#define RING_USER_MAX 512

/* FNV-1a, then the murmur3 finaliser: FNV alone spreads similar short
 * keys ("be1#7", "be1#8") badly over the high bits the ring compares. */
uint64_t postern_directory_hash(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

static int ring_point_cmp(const void *a, const void *b)
{
	const struct ring_point *pa = a, *pb = b;

	if (pa->hash != pb->hash)
		return pa->hash < pb->hash ? -1 : 1;
	return pa->backend < pb->backend ? -1 : pa->backend > pb->backend;
}

struct ring_pool *ring_pool_find(const struct postern_directory *dir, const char *name)
{
	for (unsigned i = 0; i < dir->pool_count; i++) {
		if (strcmp(dir->pools[i].name, name) == 0)
			return &dir->pools[i];
	}
	return NULL;
}

static struct ring_pool *ring_pool_get(struct postern_directory *dir, const char *name)
{
	struct ring_pool *pool = ring_pool_find(dir, name);

	if (pool != NULL)
		return pool;

	struct ring_pool *grown = realloc(dir->pools, (dir->pool_count + 1) * sizeof(*grown));

	if (grown == NULL)
		abort();
	dir->pools = grown;
	pool = &dir->pools[dir->pool_count++];
	memset(pool, 0, sizeof(*pool));
	pool->name = strdup(name);
	if (pool->name == NULL)
		abort();
	return pool;
}

static void ring_pool_fill(struct postern_directory *dir, struct ring_pool *pool)
{
	char key[POSTERN_BACKEND_NAME_MAX + 16];
	unsigned n = 0;

	pool->points = calloc((size_t)pool->member_count * dir->vnodes, sizeof(*pool->points));
	if (pool->points == NULL)
		abort();
	for (unsigned m = 0; m < pool->member_count; m++) {
		const struct postern_backend *be = dir->backends[pool->members[m]];

		for (unsigned v = 0; v < dir->vnodes; v++) {
			int len = snprintf(key, sizeof(key), "%s#%u", be->name, v);

			pool->points[n].hash = postern_directory_hash(key, (size_t)len);
			pool->points[n].backend = be->index;
			n++;
		}
	}
	pool->point_count = n;
	qsort(pool->points, n, sizeof(*pool->points), ring_point_cmp);
}

void ring_build(struct postern_directory *dir)
{
	if (dir->rings_built)
		return;
	dir->rings_built = true;
	for (unsigned i = 0; i < dir->count; i++) {
		struct ring_pool *pool = ring_pool_get(dir, dir->backends[i]->pool);
		unsigned *grown = realloc(pool->members, (pool->member_count + 1) * sizeof(*grown));

		if (grown == NULL)
			abort();
		pool->members = grown;
		pool->members[pool->member_count++] = i;
	}
	for (unsigned i = 0; i < dir->pool_count; i++)
		ring_pool_fill(dir, &dir->pools[i]);
}

void ring_free(struct postern_directory *dir)
{
	for (unsigned i = 0; i < dir->pool_count; i++) {
		free(dir->pools[i].name);
		free(dir->pools[i].members);
		free(dir->pools[i].points);
	}
	free(dir->pools);
	dir->pools = NULL;
	dir->pool_count = 0;
}

static uint64_t ring_user_hash(const char *user)
{
	char lower[RING_USER_MAX];
	size_t len = 0;

	/* Names longer than this are cut for hashing only: still stable. */
	for (; user[len] != '\0' && len < sizeof(lower); len++)
		lower[len] = (char)tolower((unsigned char)user[len]);
	return postern_directory_hash(lower, len);
}

/* The pool's members in the user's failover order; returns how many. */
static unsigned ring_walk(const struct postern_directory *dir, const struct ring_pool *pool,
			  uint64_t hash, unsigned *order_r)
{
	unsigned char seen[POSTERN_DIRECTORY_MAX_BACKENDS / 8] = { 0 };
	unsigned lo = 0, hi = pool->point_count, found = 0;

	if (pool->point_count == 0)
		return 0;
	/* The first point at or after the hash (wrapping to the start). */
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;

		if (pool->points[mid].hash < hash)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (unsigned i = 0; i < pool->point_count && found < pool->member_count; i++) {
		unsigned b = pool->points[(lo + i) % pool->point_count].backend;

		if ((seen[b / 8] & (1u << (b % 8))) != 0)
			continue;
		seen[b / 8] |= (unsigned char)(1u << (b % 8));
		order_r[found++] = b;
	}
	(void)dir;
	return found;
}

/* Parse "ip", "ip:port", "[v6]", "[v6]:port" or a bare v6 address into
 * its binary form; 0 or -1. */
static int ring_parse_host(const char *text, unsigned char addr_r[16], int *family_r,
			   unsigned *port_r)
{
	char buf[INET6_ADDRSTRLEN + 8];
	const char *host = text, *port = NULL;
	size_t len = strlen(text);

	*port_r = 0;
	if (len >= sizeof(buf))
		return -1;
	memcpy(buf, text, len + 1);
	if (buf[0] == '[') {
		char *end = strchr(buf, ']');

		if (end == NULL)
			return -1;
		*end = '\0';
		host = buf + 1;
		if (end[1] == ':')
			port = end + 2;
		else if (end[1] != '\0')
			return -1;
	} else {
		char *colon = strchr(buf, ':');

		host = buf;
		if (colon != NULL && strchr(colon + 1, ':') == NULL) {
			*colon = '\0';
			port = colon + 1;
		}
	}
	if (port != NULL) {
		char *end;
		unsigned long value = strtoul(port, &end, 10);

		if (*port == '\0' || *end != '\0' || value == 0 || value > 65535)
			return -1;
		*port_r = (unsigned)value;
	}
	memset(addr_r, 0, 16);
	if (inet_pton(AF_INET, host, addr_r) == 1) {
		*family_r = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, host, addr_r) == 1) {
		*family_r = AF_INET6;
		return 0;
	}
	return -1;
}

static bool ring_backend_matches(const struct postern_backend *be, const unsigned char addr[16],
				 int family, unsigned port)
{
	unsigned char be_addr[16] = { 0 };

	if (port != 0 && be->port != port)
		return false;
	if (inet_pton(family, be->host, be_addr) != 1)
		return false;
	return memcmp(addr, be_addr, family == AF_INET ? 4 : 16) == 0;
}

/* Back-ends named by a host= value that is not a pool: by name, else by
 * address. Marks them in `match`; returns how many. */
static unsigned ring_match_host(const struct postern_directory *dir, const char *host,
				unsigned port, bool *match)
{
	unsigned char addr[16];
	unsigned host_port, count = 0;
	int family;

	for (unsigned i = 0; i < dir->count; i++) {
		if (strcmp(dir->backends[i]->name, host) == 0) {
			match[i] = true;
			return 1;
		}
	}
	if (ring_parse_host(host, addr, &family, &host_port) < 0)
		return 0;
	if (host_port != 0)
		port = host_port;
	for (unsigned i = 0; i < dir->count; i++) {
		if (ring_backend_matches(dir->backends[i], addr, family, port)) {
			match[i] = true;
			count++;
		}
	}
	return count;
}

static int ring_route_host(struct postern_directory *dir, uint64_t hash, const char *host,
			   unsigned port, struct postern_backend **list_r, unsigned max,
			   const char **error_r)
{
	static char error[128 + POSTERN_BACKEND_NAME_MAX];
	bool match[POSTERN_DIRECTORY_MAX_BACKENDS] = { false };
	unsigned order[POSTERN_DIRECTORY_MAX_BACKENDS];
	unsigned first = dir->count, n = 0;

	if (ring_match_host(dir, host, port, match) == 0) {
		snprintf(error, sizeof(error), "host=%.*s names no configured back-end or pool",
			 POSTERN_BACKEND_NAME_MAX, host);
		*error_r = error;
		return -1;
	}
	for (unsigned i = 0; i < dir->count && first == dir->count; i++) {
		if (match[i])
			first = i;
	}

	const struct ring_pool *pool = ring_pool_find(dir, dir->backends[first]->pool);
	unsigned walked = ring_walk(dir, pool, hash, order);

	/* The matches of the first match's pool, in ring order ... */
	for (unsigned i = 0; i < walked && n < max; i++) {
		if (match[order[i]]) {
			list_r[n++] = dir->backends[order[i]];
			match[order[i]] = false;
		}
	}
	/* ... matches in other pools (an address shared across pools) ... */
	for (unsigned i = 0; i < dir->count && n < max; i++) {
		if (match[i])
			list_r[n++] = dir->backends[i];
	}
	/* ... then the rest of the pool as failover. */
	for (unsigned i = 0; i < walked && n < max; i++) {
		bool listed = false;

		for (unsigned j = 0; j < n && !listed; j++)
			listed = list_r[j]->index == order[i];
		if (!listed)
			list_r[n++] = dir->backends[order[i]];
	}
	return (int)n;
}

int postern_directory_route(struct postern_directory *dir, const char *user, const char *host,
			    unsigned port, struct postern_backend **list_r, unsigned max,
			    const char **error_r)
{
	unsigned order[POSTERN_DIRECTORY_MAX_BACKENDS];
	uint64_t hash = ring_user_hash(user);
	const struct ring_pool *pool;

	ring_build(dir);
	if (host != NULL && host[0] != '\0') {
		pool = ring_pool_find(dir, host);
		if (pool == NULL)
			return ring_route_host(dir, hash, host, port, list_r, max, error_r);
	} else {
		pool = ring_pool_find(dir, dir->default_pool);
		if (pool == NULL)
			return 0;
	}

	unsigned walked = ring_walk(dir, pool, hash, order);
	unsigned n = 0;

	for (; n < walked && n < max; n++)
		list_r[n] = dir->backends[order[n]];
	return (int)n;
}
