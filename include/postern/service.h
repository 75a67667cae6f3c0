/*
 * Services: how one module offers an API to others without either
 * including the other's private headers or linking against it.
 *
 * The provider registers a table of function pointers under a name
 * ("queue") with a version; the table's struct lives in a public header
 * (include/postern/queue.h), begins with uint32_t struct_size and only grows
 * at the end within a major version. A consumer lists the provider in its
 * descriptor's `requires` (so the provider's init runs first) and looks the
 * service up in its own init. The table must stay valid until the
 * provider's deinit; consumers are deinitialised before their providers.
 */
#ifndef POSTERN_SERVICE_H
#define POSTERN_SERVICE_H

#include <postern/common.h>

/* Offer `ops` under `name`. A name can be registered once. */
POSTERN_API int postern_service_register(struct postern_mod *mod, const char *name,
					 uint32_t version, const void *ops,
					 const char **error_r);

/*
 * Find a service. Fails when nobody offers `name`, or when the provider's
 * major version (version >> 16) differs from `version`'s or its minor is
 * older. Returns the ops table (cast it to the public struct) or NULL with
 * *error_r set.
 */
POSTERN_API const void *postern_service_lookup(struct postern_mod *mod, const char *name,
					       uint32_t version, const char **error_r);

#endif
