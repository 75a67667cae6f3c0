/*
 * Per-IP login failure tracking in fixed memory.
 *
 * Each address (IPv6 per /64 by default, so one host cannot dodge the
 * count by hopping through its prefix) has a failure count in a time
 * window. Each failure is answered after a delay that doubles from
 * delay_initial_ms up to delay_max_ms; block_after failures within the
 * window block the address for block_secs. A success does not reset the
 * count: otherwise an attacker holding one valid account could interleave
 * logins to guess another's password without ever being slowed down.
 *
 * The table holds max_entries addresses, allocated once; when it is full
 * the least recently failed address is forgotten, skipping (for a few
 * steps) addresses that are blocked, so that a flood from many addresses
 * does not easily free a blocked one.
 */
#include "config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth_private.h"

#define NONE UINT32_MAX
#define KEY_LEN 17
#define EVICT_SCAN 8

struct fentry {
	unsigned char key[KEY_LEN];   /* family tag, then 16 bytes */
	uint32_t chain;               /* next in the hash bucket */
	uint32_t prev, next;          /* LRU list, head = most recent */
	uint64_t window_start;
	uint64_t blocked_until;
	unsigned count;
};

struct postern_auth_failures {
	struct postern_auth_failures_settings set;
	struct fentry *entries;
	uint32_t used;
	uint32_t *buckets;
	uint32_t mask;
	uint32_t head, tail;
};

static uint64_t default_clock(void *ctx)
{
	struct timespec ts;

	(void)ctx;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

POSTERN_API int postern_auth_failures_create(const struct postern_auth_failures_settings *set,
					     struct postern_auth_failures **failures_r,
					     const char **error_r)
{
	struct postern_auth_failures *f;
	uint32_t nbuckets = 16;

	*failures_r = NULL;
	if (set == NULL || set->struct_size < sizeof(*set)) {
		*error_r = auth_error("failure tracker settings: need struct_size %zu "
				      "(use POSTERN_AUTH_FAILURES_SETTINGS_INIT)", sizeof(*set));
		return -1;
	}
	f = calloc(1, sizeof(*f));
	if (f == NULL) {
		*error_r = auth_error("out of memory");
		return -1;
	}
	f->set = *set;
	if (f->set.max_entries == 0)
		f->set.max_entries = 4096;
	if (f->set.max_entries > 16 * 1024 * 1024)
		f->set.max_entries = 16 * 1024 * 1024;
	if (f->set.window_secs == 0)
		f->set.window_secs = 600;
	if (f->set.block_after == 0)
		f->set.block_after = 10;
	if (f->set.block_secs == 0)
		f->set.block_secs = 600;
	if (f->set.delay_initial_ms == 0)
		f->set.delay_initial_ms = 500;
	if (f->set.delay_max_ms == 0)
		f->set.delay_max_ms = 15000;
	if (f->set.delay_max_ms < f->set.delay_initial_ms)
		f->set.delay_max_ms = f->set.delay_initial_ms;
	if (f->set.ipv6_prefix == 0 || f->set.ipv6_prefix > 128)
		f->set.ipv6_prefix = 64;
	if (f->set.clock_ms == NULL)
		f->set.clock_ms = default_clock;
	while (nbuckets < f->set.max_entries)
		nbuckets *= 2;
	f->entries = calloc(f->set.max_entries, sizeof(*f->entries));
	f->buckets = malloc(nbuckets * sizeof(*f->buckets));
	if (f->entries == NULL || f->buckets == NULL) {
		postern_auth_failures_free(&f);
		*error_r = auth_error("out of memory");
		return -1;
	}
	memset(f->buckets, 0xff, nbuckets * sizeof(*f->buckets));
	f->mask = nbuckets - 1;
	f->head = f->tail = NONE;
	*failures_r = f;
	return 0;
}

POSTERN_API void postern_auth_failures_free(struct postern_auth_failures **fp)
{
	struct postern_auth_failures *f = fp == NULL ? NULL : *fp;

	if (f == NULL)
		return;
	free(f->entries);
	free(f->buckets);
	free(f);
	*fp = NULL;
}

/* The address as a fixed-size key. */
static void make_key(const struct postern_auth_failures *f, const char *ip,
		     unsigned char key[KEY_LEN])
{
	char buf[64];
	size_t len = strlen(ip);
	unsigned char addr[16];

	memset(key, 0, KEY_LEN);
	if (len >= 2 && len < sizeof(buf) && ip[0] == '[' && ip[len - 1] == ']') {
		memcpy(buf, ip + 1, len - 2);
		buf[len - 2] = '\0';
		ip = buf;
	}
	if (inet_pton(AF_INET, ip, addr) == 1) {
		key[0] = 4;
		memcpy(key + 1, addr, 4);
	} else if (inet_pton(AF_INET6, ip, addr) == 1) {
		static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

		if (memcmp(addr, mapped, 12) == 0) {
			key[0] = 4;
			memcpy(key + 1, addr + 12, 4);
			return;
		}
		key[0] = 6;
		for (unsigned bit = 0; bit < 128; bit++) {
			if (bit >= f->set.ipv6_prefix)
				addr[bit / 8] &= (unsigned char)~(0x80u >> (bit % 8));
		}
		memcpy(key + 1, addr, 16);
	} else {
		/* not an address ("unix socket", garbage): two FNV-1a hashes */
		uint64_t h1 = 14695981039346656037ull, h2 = 1099511628211ull * 31;

		for (const char *p = ip; *p != '\0'; p++) {
			h1 = (h1 ^ (unsigned char)*p) * 1099511628211ull;
			h2 = (h2 ^ (unsigned char)*p) * 1099511628211ull + 7;
		}
		key[0] = 1;
		memcpy(key + 1, &h1, 8);
		memcpy(key + 9, &h2, 8);
	}
}

static uint32_t key_hash(const unsigned char key[KEY_LEN])
{
	uint32_t h = 2166136261u;

	for (unsigned i = 0; i < KEY_LEN; i++)
		h = (h ^ key[i]) * 16777619u;
	return h;
}

static uint32_t find(const struct postern_auth_failures *f, const unsigned char key[KEY_LEN])
{
	for (uint32_t i = f->buckets[key_hash(key) & f->mask]; i != NONE; i = f->entries[i].chain) {
		if (memcmp(f->entries[i].key, key, KEY_LEN) == 0)
			return i;
	}
	return NONE;
}

static void lru_unlink(struct postern_auth_failures *f, uint32_t i)
{
	struct fentry *e = &f->entries[i];

	if (e->prev != NONE)
		f->entries[e->prev].next = e->next;
	else
		f->head = e->next;
	if (e->next != NONE)
		f->entries[e->next].prev = e->prev;
	else
		f->tail = e->prev;
	e->prev = e->next = NONE;
}

static void lru_push_head(struct postern_auth_failures *f, uint32_t i)
{
	struct fentry *e = &f->entries[i];

	e->prev = NONE;
	e->next = f->head;
	if (f->head != NONE)
		f->entries[f->head].prev = i;
	f->head = i;
	if (f->tail == NONE)
		f->tail = i;
}

static void bucket_remove(struct postern_auth_failures *f, uint32_t i)
{
	uint32_t *link = &f->buckets[key_hash(f->entries[i].key) & f->mask];

	while (*link != i) {
		/* every used entry is in the chain of its bucket */
		assert(*link != NONE);
		link = &f->entries[*link].chain;
	}
	*link = f->entries[i].chain;
}

/* A slot for a new address: a free one, or the least recently used
 * that is not blocked (within a few steps from the tail). */
static uint32_t take_slot(struct postern_auth_failures *f, uint64_t now)
{
	uint32_t victim = f->tail;

	if (f->used < f->set.max_entries)
		return f->used++;
	for (uint32_t i = f->tail, n = 0; i != NONE && n < EVICT_SCAN; i = f->entries[i].prev, n++) {
		if (f->entries[i].blocked_until <= now) {
			victim = i;
			break;
		}
	}
	lru_unlink(f, victim);
	bucket_remove(f, victim);
	return victim;
}

POSTERN_API unsigned postern_auth_failures_add(struct postern_auth_failures *f, const char *ip)
{
	unsigned char key[KEY_LEN];
	uint64_t now = f->set.clock_ms(f->set.clock_ctx);
	uint64_t window = (uint64_t)f->set.window_secs * 1000;
	uint32_t i;
	struct fentry *e;
	unsigned delay;

	make_key(f, ip, key);
	i = find(f, key);
	if (i == NONE) {
		uint32_t b;

		i = take_slot(f, now);
		e = &f->entries[i];
		memset(e, 0, sizeof(*e));
		memcpy(e->key, key, KEY_LEN);
		e->window_start = now;
		b = key_hash(key) & f->mask;
		e->chain = f->buckets[b];
		f->buckets[b] = i;
	} else {
		lru_unlink(f, i);
		e = &f->entries[i];
	}
	lru_push_head(f, i);
	if (now - e->window_start >= window) {
		e->window_start = now;
		e->count = 0;
	}
	e->count++;
	if (e->count >= f->set.block_after)
		e->blocked_until = now + (uint64_t)f->set.block_secs * 1000;
	delay = f->set.delay_initial_ms;
	for (unsigned n = 1; n < e->count && delay < f->set.delay_max_ms; n++)
		delay = delay > f->set.delay_max_ms / 2 ? f->set.delay_max_ms : delay * 2;
	return delay < f->set.delay_max_ms ? delay : f->set.delay_max_ms;
}

POSTERN_API uint64_t postern_auth_failures_blocked(struct postern_auth_failures *f,
						   const char *ip)
{
	unsigned char key[KEY_LEN];
	uint64_t now = f->set.clock_ms(f->set.clock_ctx);
	uint32_t i;

	make_key(f, ip, key);
	i = find(f, key);
	if (i == NONE || f->entries[i].blocked_until <= now)
		return 0;
	return f->entries[i].blocked_until - now;
}

POSTERN_API unsigned postern_auth_failures_count(struct postern_auth_failures *f,
						 const char *ip)
{
	unsigned char key[KEY_LEN];
	uint64_t now = f->set.clock_ms(f->set.clock_ctx);
	uint32_t i;

	make_key(f, ip, key);
	i = find(f, key);
	if (i == NONE || now - f->entries[i].window_start >= (uint64_t)f->set.window_secs * 1000)
		return 0;
	return f->entries[i].count;
}

unsigned auth_failures_max_delay(const struct postern_auth_failures *f)
{
	return f->set.delay_max_ms;
}
