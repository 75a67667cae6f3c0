/*
 * The back-end directory: the list of back-ends, their names, addresses
 * and pools, and the accessors the proxy reads. Hashing and failover order
 * live in ring.c, up/down state and session counts in health.c.
 *
 * Memory: the directory owns every back-end; allocation failure aborts,
 * as everywhere in Postern (a proxy without memory cannot route anyone).
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "directory_private.h"

static void *dir_alloc(size_t size)
{
	void *ptr = calloc(1, size);

	if (ptr == NULL)
		abort();
	return ptr;
}

static char *dir_strdup(const char *str)
{
	char *copy = strdup(str);

	if (copy == NULL)
		abort();
	return copy;
}

static uint64_t dir_monotonic_ms(void *ctx)
{
	struct timespec ts;

	(void)ctx;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t directory_now(const struct postern_directory *dir)
{
	return dir->clock_ms(dir->clock_ctx);
}

/* Names end up in logs, JSON and control output: keep them plain. */
static bool dir_name_valid(const char *name)
{
	size_t len = name != NULL ? strlen(name) : 0;

	if (len == 0 || len > POSTERN_BACKEND_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!isalnum(c) && c != '.' && c != '_' && c != '-')
			return false;
	}
	return true;
}

int postern_directory_new(const struct postern_directory_settings *set,
			  struct postern_directory **dir_r, const char **error_r)
{
	struct postern_directory_settings s = POSTERN_DIRECTORY_SETTINGS_INIT;

	if (set == NULL || set->struct_size < offsetof(struct postern_directory_settings, clock_ctx)) {
		*error_r = "directory settings: bad struct_size";
		return -1;
	}
	memcpy(&s, set, set->struct_size < sizeof(s) ? set->struct_size : sizeof(s));
	if (s.vnodes > POSTERN_DIRECTORY_MAX_VNODES) {
		*error_r = "directory: vnodes above 1024";
		return -1;
	}
	if (s.default_pool != NULL && !dir_name_valid(s.default_pool)) {
		*error_r = "directory: invalid default pool name";
		return -1;
	}

	struct postern_directory *dir = dir_alloc(sizeof(*dir));

	dir->vnodes = s.vnodes != 0 ? s.vnodes : DIRECTORY_DEFAULT_VNODES;
	dir->default_pool = dir_strdup(s.default_pool != NULL ? s.default_pool :
							       DIRECTORY_DEFAULT_POOL);
	dir->clock_ms = s.clock_ms != NULL ? s.clock_ms : dir_monotonic_ms;
	dir->clock_ctx = s.clock_ctx;
	*dir_r = dir;
	return 0;
}

void postern_directory_free(struct postern_directory **dirp)
{
	struct postern_directory *dir = *dirp;

	if (dir == NULL)
		return;
	*dirp = NULL;
	ring_free(dir);
	for (unsigned i = 0; i < dir->count; i++) {
		struct postern_backend *be = dir->backends[i];

		free(be->name);
		free(be->pool);
		free(be->host);
		free(be->address);
		free(be);
	}
	free(dir->backends);
	free(dir->default_pool);
	free(dir);
}

static int dir_check_config(const struct postern_directory *dir,
			    const struct postern_backend_config *cfg, const char **error_r)
{
	unsigned char addr[16];

	if (!dir_name_valid(cfg->name)) {
		*error_r = "back-end name: 1-64 letters, digits, '.', '_' or '-'";
		return -1;
	}
	if (cfg->pool != NULL && !dir_name_valid(cfg->pool)) {
		*error_r = "pool name: 1-64 letters, digits, '.', '_' or '-'";
		return -1;
	}
	if (cfg->host == NULL || (inet_pton(AF_INET, cfg->host, addr) != 1 &&
				  inet_pton(AF_INET6, cfg->host, addr) != 1)) {
		*error_r = "back-end address: a numeric IPv4 or IPv6 address";
		return -1;
	}
	if (cfg->port == 0 || cfg->port > 65535) {
		*error_r = "back-end port: 1-65535";
		return -1;
	}
	if (postern_directory_find((struct postern_directory *)dir, cfg->name) != NULL) {
		*error_r = "back-end name used twice";
		return -1;
	}
	if (dir->count >= POSTERN_DIRECTORY_MAX_BACKENDS) {
		*error_r = "too many back-ends (1024 at most)";
		return -1;
	}
	if (dir->rings_built) {
		*error_r = "back-ends must be added before the first route";
		return -1;
	}
	return 0;
}

int postern_directory_add(struct postern_directory *dir, const struct postern_backend_config *config,
			  const char **error_r)
{
	struct postern_backend_config cfg = POSTERN_BACKEND_CONFIG_INIT;

	if (config == NULL || config->struct_size < offsetof(struct postern_backend_config, max_sessions)) {
		*error_r = "back-end config: bad struct_size";
		return -1;
	}
	memcpy(&cfg, config, config->struct_size < sizeof(cfg) ? config->struct_size : sizeof(cfg));
	if (dir_check_config(dir, &cfg, error_r) < 0)
		return -1;

	struct postern_backend *be = dir_alloc(sizeof(*be));
	bool v6 = strchr(cfg.host, ':') != NULL;
	size_t size = strlen(cfg.host) + 9;

	be->dir = dir;
	be->index = dir->count;
	be->name = dir_strdup(cfg.name);
	be->pool = dir_strdup(cfg.pool != NULL ? cfg.pool : DIRECTORY_DEFAULT_POOL);
	be->host = dir_strdup(cfg.host);
	be->port = cfg.port;
	be->address = dir_alloc(size);
	snprintf(be->address, size, v6 ? "[%s]:%u" : "%s:%u", cfg.host, cfg.port);
	be->tls = cfg.tls;
	be->max_sessions = cfg.max_sessions;
	be->up = true;
	be->last_change_ms = directory_now(dir);

	struct postern_backend **grown = realloc(dir->backends, (dir->count + 1) * sizeof(*grown));

	if (grown == NULL)
		abort();
	dir->backends = grown;
	dir->backends[dir->count++] = be;
	return 0;
}

unsigned postern_directory_count(const struct postern_directory *dir)
{
	return dir->count;
}

struct postern_backend *postern_directory_backend(struct postern_directory *dir, unsigned index)
{
	return index < dir->count ? dir->backends[index] : NULL;
}

struct postern_backend *postern_directory_find(struct postern_directory *dir, const char *name)
{
	for (unsigned i = 0; i < dir->count; i++) {
		if (strcmp(dir->backends[i]->name, name) == 0)
			return dir->backends[i];
	}
	return NULL;
}

bool postern_directory_has_pool(const struct postern_directory *dir, const char *pool)
{
	for (unsigned i = 0; i < dir->count; i++) {
		if (strcmp(dir->backends[i]->pool, pool) == 0)
			return true;
	}
	return false;
}

const char *postern_backend_name(const struct postern_backend *be)
{
	return be->name;
}

const char *postern_backend_pool(const struct postern_backend *be)
{
	return be->pool;
}

const char *postern_backend_host(const struct postern_backend *be)
{
	return be->host;
}

unsigned postern_backend_port(const struct postern_backend *be)
{
	return be->port;
}

const char *postern_backend_address(const struct postern_backend *be)
{
	return be->address;
}

bool postern_backend_tls(const struct postern_backend *be)
{
	return be->tls;
}

unsigned postern_backend_index(const struct postern_backend *be)
{
	return be->index;
}

void postern_backend_set_data(struct postern_backend *be, void *data)
{
	be->data = data;
}

void *postern_backend_data(const struct postern_backend *be)
{
	return be->data;
}
