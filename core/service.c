/*
 * The service registry (include/postern/service.h): named, versioned tables
 * of functions that one module offers to others. A handful of entries per
 * process, so a list is enough.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core.h"

struct service {
	struct service *next;
	struct postern_mod *owner;
	char *name;
	uint32_t version;
	const void *ops;
};

static struct service *service_find(struct postern_core *core, const char *name)
{
	for (struct service *service = core->services; service != NULL; service = service->next) {
		if (strcmp(service->name, name) == 0)
			return service;
	}
	return NULL;
}

int postern_service_register(struct postern_mod *mod, const char *name, uint32_t version,
			     const void *ops, const char **error_r)
{
	struct postern_core *core = mod->core;
	struct service *existing = service_find(core, name);

	if (existing != NULL) {
		*error_r = postern_cfg_error(mod, NULL, "service '%s' is already offered by %s",
					     name, postern_mod_name(existing->owner));
		return -1;
	}
	struct service *service = xcalloc(1, sizeof(*service));
	service->owner = mod;
	service->name = xstrdup(name);
	service->version = version;
	service->ops = ops;
	service->next = core->services;
	core->services = service;
	return 0;
}

const void *postern_service_lookup(struct postern_mod *mod, const char *name, uint32_t version,
				   const char **error_r)
{
	struct service *service = service_find(mod->core, name);

	if (service == NULL) {
		*error_r = postern_cfg_error(mod, NULL,
					     "no module offers the service '%s' (is its module "
					     "in 'modules' and in this module's requires?)", name);
		return NULL;
	}
	if ((service->version >> 16) != (version >> 16) ||
	    (service->version & 0xffff) < (version & 0xffff)) {
		*error_r = postern_cfg_error(mod, NULL,
					     "service '%s' of %s has version %u.%u, need %u.%u",
					     name, postern_mod_name(service->owner),
					     service->version >> 16, service->version & 0xffff,
					     version >> 16, version & 0xffff);
		return NULL;
	}
	return service->ops;
}

void service_release_module(struct postern_core *core, const struct postern_mod *mod)
{
	struct service **link = &core->services;

	while (*link != NULL) {
		struct service *service = *link;

		if (mod == NULL || service->owner == mod) {
			*link = service->next;
			free(service->name);
			free(service);
		} else {
			link = &service->next;
		}
	}
}
