/*
 * The module loader: dlopen each module named in `modules`, check its
 * descriptor before trusting anything else in the file, put the modules in
 * dependency order and run their hooks (the contract for module authors is
 * include/postern/module.h and docs/module-api.md).
 *
 * Every refusal is one line that names the file and says what was found
 * and what was needed, because the reader is an administrator who just
 * upgraded something. Loading is all or nothing: on any error every module
 * loaded so far is closed again.
 *
 * Not here: reading the configuration (config.c) and the order of the
 * daemon's phases (daemon.c), which calls these functions.
 */
#include <assert.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "core.h"

#define MODULE_NAME_MAX 64
/* A longer `requires` list is surely a missing NULL terminator. */
#define MODULE_REQUIRES_MAX 64

/*
 * The size of the descriptor in ABI 1.0 without its reserved room: the
 * smallest descriptor any 1.x module can have. A module whose struct_size
 * is smaller than today's sizeof was built against headers where later
 * fields did not exist yet; the copy in struct postern_mod zero-fills them.
 */
#define MODULE_DESC_SIZE_1_0 (offsetof(struct postern_module, deinit) + \
			      sizeof(((struct postern_module *)0)->deinit))

/* ---- errors ------------------------------------------------------------- */

static const char *hook_error(const char *error)
{
	return error != NULL ? error : "failed without saying why";
}

/* ---- the public accessors ------------------------------------------------ */

const char *postern_mod_name(const struct postern_mod *mod)
{
	return mod->name;
}

void postern_mod_set_data(struct postern_mod *mod, void *data)
{
	mod->data = data;
}

void *postern_mod_data(const struct postern_mod *mod)
{
	return mod->data;
}

char *postern_mod_path(const struct postern_mod *mod, const char *path)
{
	const char *base = mod->core->settings.base_dir;

	if (path[0] == '/' || base == NULL || base[0] == '\0')
		return xstrdup(path);
	size_t len = strlen(base);

	return xasprintf("%s%s%s", base, base[len - 1] == '/' ? "" : "/", path);
}

void postern_mod_run_ids(const struct postern_mod *mod, uid_t *uid_r, gid_t *gid_r)
{
	*uid_r = mod->core->run_uid;
	*gid_r = mod->core->run_gid;
}

bool postern_mod_shutting_down(const struct postern_mod *mod)
{
	return mod->core->shutting_down;
}

const char *postern_core_version(void)
{
	return PACKAGE_VERSION;
}

uint32_t postern_core_abi_version(void)
{
	return POSTERN_ABI_VERSION;
}

/* ---- module objects ----------------------------------------------------- */

struct postern_mod *module_core_new(struct postern_core *core)
{
	struct postern_mod *mod = xcalloc(1, sizeof(*mod));

	mod->core = core;
	mod->name = xstrdup("core");
	mod->has_desc = false;
	mod->state = MOD_STARTED;
	return mod;
}

void module_free(struct postern_mod **modp)
{
	struct postern_mod *mod = *modp;

	if (mod == NULL)
		return;
	*modp = NULL;
	/* The descriptor's strings point into the object: forget them
	 * before it goes. */
	memset(&mod->desc, 0, sizeof(mod->desc));
	if (mod->dl_handle != NULL)
		(void)dlclose(mod->dl_handle);
	free(mod->error_buf);
	free(mod->path);
	free(mod->name);
	free(mod);
}

static const char *state_name(enum mod_state state)
{
	switch (state) {
	case MOD_LOADED:
		return "loaded";
	case MOD_INITED:
		return "inited";
	case MOD_STARTED:
		return "started";
	case MOD_STOPPED:
		return "stopped";
	}
	return "?";
}

/* Free everything the module still owns in the core's subsystems, after
 * its deinit. Subscriptions go first: freeing connections publishes
 * core.conn.closed, which must not reach a module that has freed its
 * context. Then connections, which hold TLS contexts, timers and
 * watchers; the loop goes last. */
static void module_release(struct postern_core *core, struct postern_mod *mod)
{
	if (core->bus != NULL)
		event_bus_release_module(core->bus, mod);
	if (core->conns != NULL)
		conn_release_module(core->conns, mod);
	tls_release_module(core, mod);
	control_release_module(core, mod);
	service_release_module(core, mod);
	if (core->loop != NULL)
		loop_release_owner(core->loop, mod);
}

/* ---- loading ------------------------------------------------------------ */

static bool module_name_valid(const char *name)
{
	size_t len = strnlen(name, MODULE_NAME_MAX + 1);

	if (len == 0 || len > MODULE_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* dlerror() usually starts with the path we already print. */
static const char *dl_reason(const char *path)
{
	const char *reason = dlerror();
	size_t len = strlen(path);

	if (reason == NULL)
		return "unknown dlopen error";
	if (strncmp(reason, path, len) == 0 && strncmp(reason + len, ": ", 2) == 0)
		reason += len + 2;
	return reason;
}

/* Magic, ABI version and size: everything we must know before reading
 * further into the descriptor. */
static int desc_check_header(const struct postern_mod *mod, const struct postern_module *desc,
			     const char **error_r)
{
	const char *path = mod->path;
	uint32_t major = POSTERN_ABI_VERSION_MAJOR(desc->abi_version);
	uint32_t minor = POSTERN_ABI_VERSION_MINOR(desc->abi_version);

	if (desc->magic != POSTERN_MODULE_MAGIC) {
		*error_r = core_error(mod->core, "%s: bad magic: found 0x%08x, need 0x%08x: "
				      "not a Postern module descriptor", path,
				      desc->magic, POSTERN_MODULE_MAGIC);
		return -1;
	}
	if (major != POSTERN_ABI_MAJOR) {
		*error_r = core_error(mod->core,
				      "%s: built for module ABI %u.%u, this posternd has %u.%u: "
				      "rebuild the module against Postern %u.x headers",
				      path, major, minor, POSTERN_ABI_MAJOR, POSTERN_ABI_MINOR,
				      POSTERN_ABI_MAJOR);
		return -1;
	}
	if (minor > POSTERN_ABI_MINOR) {
		*error_r = core_error(mod->core,
				      "%s: built for module ABI %u.%u, this posternd has %u.%u: "
				      "upgrade posternd", path, major, minor,
				      POSTERN_ABI_MAJOR, POSTERN_ABI_MINOR);
		return -1;
	}
	if (desc->struct_size < MODULE_DESC_SIZE_1_0 ||
	    desc->struct_size > sizeof(struct postern_module) ||
	    desc->struct_size % sizeof(void *) != 0) {
		*error_r = core_error(mod->core,
				      "%s: descriptor size found %u bytes, need %zu to %zu "
				      "in steps of %zu for module ABI %u.%u",
				      path, desc->struct_size, (size_t)MODULE_DESC_SIZE_1_0,
				      sizeof(struct postern_module), sizeof(void *),
				      major, minor);
		return -1;
	}
	return 0;
}

static struct postern_mod *mods_find(struct postern_mod *const *mods, unsigned count,
				     const char *name)
{
	for (unsigned i = 0; i < count; i++) {
		if (strcmp(mods[i]->name, name) == 0)
			return mods[i];
	}
	return NULL;
}

/* The checks after the header, on the module's copy of the descriptor. */
static int desc_check_body(const struct postern_mod *mod, struct postern_mod *const *loaded,
			   unsigned loaded_count, const char **error_r)
{
	const struct postern_module *desc = &mod->desc;

	if (desc->name == NULL || strcmp(desc->name, mod->name) != 0) {
		*error_r = core_error(mod->core, "%s: descriptor name found '%.*s', need '%s' "
				      "(the file name without .so)", mod->path,
				      MODULE_NAME_MAX,
				      desc->name != NULL ? desc->name : "(null)", mod->name);
		return -1;
	}
	if (mods_find(loaded, loaded_count, mod->name) != NULL) {
		*error_r = core_error(mod->core, "%s: module '%s' is listed twice in 'modules'",
				      mod->path, mod->name);
		return -1;
	}
	if (desc->flags != 0) {
		*error_r = core_error(mod->core, "%s: descriptor flags found 0x%x, need 0: "
				      "no flags are defined in module ABI %u.%u",
				      mod->path, desc->flags, POSTERN_ABI_MAJOR,
				      POSTERN_ABI_MINOR);
		return -1;
	}
	unsigned count = 0;

	for (; desc->requires != NULL && desc->requires[count] != NULL; count++) {
		if (count == MODULE_REQUIRES_MAX) {
			*error_r = core_error(mod->core,
					      "%s: 'requires' found more than %d names, need at "
					      "most %d: is the list NULL-terminated?", mod->path,
					      MODULE_REQUIRES_MAX, MODULE_REQUIRES_MAX);
			return -1;
		}
	}
	return 0;
}

/* Open one module file and check its descriptor; the checks run in the
 * order in which each one makes the next meaningful. */
static struct postern_mod *module_open(struct postern_core *core, const char *dir,
				       const char *name, struct postern_mod *const *loaded,
				       unsigned loaded_count, const char **error_r)
{
	struct stat st;

	if (!module_name_valid(name)) {
		*error_r = core_error(core, "'modules' entry '%.*s' is not a module name "
				      "(letters, digits, '_' and '-', at most %d)",
				      MODULE_NAME_MAX, name, MODULE_NAME_MAX);
		return NULL;
	}

	struct postern_mod *mod = xcalloc(1, sizeof(*mod));

	mod->core = core;
	mod->name = xstrdup(name);
	mod->path = xasprintf("%s/%s.so", dir, name);
	mod->has_desc = true;
	mod->state = MOD_LOADED;

	if (stat(mod->path, &st) < 0 && errno == ENOENT) {
		*error_r = core_error(core, "%s: no such file: module '%s' is in 'modules', "
				      "so module_dir needs %s.so", mod->path, name, name);
		goto fail;
	}
	(void)dlerror();
	mod->dl_handle = dlopen(mod->path, RTLD_NOW | RTLD_LOCAL);
	if (mod->dl_handle == NULL) {
		const char *reason = dl_reason(mod->path);

		*error_r = core_error(core, "%s: cannot load: %s%s", mod->path, reason,
				      strstr(reason, "undefined symbol") != NULL ?
				      " (the module needs a symbol this posternd does not "
				      "export: built for another version?)" : "");
		goto fail;
	}
	(void)dlerror();

	const struct postern_module *desc = dlsym(mod->dl_handle, POSTERN_MODULE_SYMBOL);

	if (desc == NULL) {
		*error_r = core_error(core, "%s: no symbol '%s': not a Postern module",
				      mod->path, POSTERN_MODULE_SYMBOL);
		goto fail;
	}
	if (desc_check_header(mod, desc, error_r) < 0)
		goto fail;
	/* Fields the module's headers did not have stay zero: that is what
	 * lets this core run modules built for an older minor. */
	memset(&mod->desc, 0, sizeof(mod->desc));
	memcpy(&mod->desc, desc, desc->struct_size);
	if (desc_check_body(mod, loaded, loaded_count, error_r) < 0)
		goto fail;
	return mod;
fail:
	module_free(&mod);
	return NULL;
}

static void mods_free(struct postern_mod **mods, unsigned count)
{
	for (unsigned i = count; i > 0; i--)
		module_free(&mods[i - 1]);
}

/* Indexes into `mods` of each module's requirements, checked to exist. */
static int deps_resolve(struct postern_mod *const *mods, unsigned count, unsigned **deps_r,
			unsigned *dep_counts_r, const char **error_r)
{
	for (unsigned i = 0; i < count; i++) {
		const char *const *requires = mods[i]->desc.requires;
		unsigned n = 0;

		while (requires != NULL && requires[n] != NULL)
			n++;
		deps_r[i] = xcalloc(n, sizeof(unsigned));
		dep_counts_r[i] = n;
		for (unsigned j = 0; j < n; j++) {
			unsigned k;

			for (k = 0; k < count; k++) {
				if (strcmp(mods[k]->name, requires[j]) == 0)
					break;
			}
			if (k == count) {
				*error_r = core_error(mods[i]->core,
						      "%s requires %.*s, which is not in 'modules'",
						      mods[i]->name, MODULE_NAME_MAX,
						      requires[j]);
				return -1;
			}
			deps_r[i][j] = k;
		}
	}
	return 0;
}

/* All remaining modules wait for each other: follow unplaced
 * requirements from the first one until a module repeats. */
static const char *cycle_error(struct postern_mod *const *mods, unsigned count,
			       unsigned *const *deps, const unsigned *dep_counts,
			       const bool *placed)
{
	unsigned *path = xcalloc(count + 1, sizeof(unsigned));
	unsigned len = 0, start = 0, node;

	for (node = 0; placed[node]; node++)
		assert(node + 1 < count);
	for (;;) {
		unsigned seen;

		for (seen = 0; seen < len && path[seen] != node; seen++)
			;
		path[len++] = node;
		if (seen < len - 1) {
			start = seen;
			break;
		}
		unsigned next = count;

		for (unsigned j = 0; j < dep_counts[node]; j++) {
			if (!placed[deps[node][j]]) {
				next = deps[node][j];
				break;
			}
		}
		assert(next < count && len <= count);
		node = next;
	}

	struct postern_str *text = postern_str_new();

	postern_str_append_cstr(text, "dependency cycle: ");
	for (unsigned i = start; i < len; i++)
		postern_str_printf(text, "%s%s", i > start ? " -> " : "", mods[path[i]]->name);

	const char *error = core_error(mods[node]->core, "%s", postern_str_data(text));

	postern_str_free(&text);
	free(path);
	return error;
}

/* Order so that every module comes after what it requires. Each step takes
 * the first module in config order whose requirements are all placed, so
 * modules without constraints between them keep the config order. */
static int deps_order(struct postern_mod **mods, unsigned count, const char **error_r)
{
	unsigned **deps = xcalloc(count, sizeof(*deps));
	unsigned *dep_counts = xcalloc(count, sizeof(*dep_counts));
	bool *placed = xcalloc(count, sizeof(*placed));
	struct postern_mod **ordered = xcalloc(count, sizeof(*ordered));
	int ret = 0;

	if (deps_resolve(mods, count, deps, dep_counts, error_r) < 0) {
		ret = -1;
		goto out;
	}
	for (unsigned step = 0; step < count; step++) {
		unsigned i;

		for (i = 0; i < count; i++) {
			if (placed[i])
				continue;
			unsigned j;

			for (j = 0; j < dep_counts[i] && placed[deps[i][j]]; j++)
				;
			if (j == dep_counts[i])
				break;
		}
		if (i == count) {
			*error_r = cycle_error(mods, count, deps, dep_counts, placed);
			ret = -1;
			goto out;
		}
		placed[i] = true;
		ordered[step] = mods[i];
	}
	memcpy(mods, ordered, count * sizeof(*mods));
out:
	for (unsigned i = 0; i < count; i++)
		free(deps[i]);
	free(deps);
	free(dep_counts);
	free(placed);
	free(ordered);
	return ret;
}

int modules_load(struct postern_core *core, const char *const *names, const char *dir,
		 const char **error_r)
{
	unsigned count = 0, loaded = 0;

	assert(core->mods == NULL && core->mod_count == 0);
	while (names != NULL && names[count] != NULL)
		count++;

	struct postern_mod **mods = xcalloc(count, sizeof(*mods));

	for (; loaded < count; loaded++) {
		mods[loaded] = module_open(core, dir, names[loaded], mods, loaded, error_r);
		if (mods[loaded] == NULL)
			goto fail;
	}
	if (deps_order(mods, count, error_r) < 0)
		goto fail;
	core->mods = mods;
	core->mod_count = count;
	for (unsigned i = 0; i < count; i++) {
		log_core(POSTERN_LOG_DEBUG, "loaded module %s %s (ABI %u.%u) from %s",
			 mods[i]->name, mods[i]->desc.version != NULL ? mods[i]->desc.version : "",
			 POSTERN_ABI_VERSION_MAJOR(mods[i]->desc.abi_version),
			 POSTERN_ABI_VERSION_MINOR(mods[i]->desc.abi_version), mods[i]->path);
	}
	return 0;
fail:
	mods_free(mods, loaded);
	free(mods);
	return -1;
}

/* ---- hooks -------------------------------------------------------------- */

static void module_publish(struct postern_core *core, struct postern_mod *mod,
			   const char *topic)
{
	const char *error;

	if (core->bus == NULL || core->self == NULL)
		return;
	/* Declaring again is a no-op; it keeps this independent of who
	 * called first. */
	if (postern_bus_declare(core->self, topic, POSTERN_EV_MODULE_TYPE, &error) < 0) {
		log_core(POSTERN_LOG_ERROR, "%s", error);
		return;
	}

	const struct postern_ev_module event = {
		.struct_size = sizeof(event),
		.name = mod->name,
		.version = mod->desc.version,
	};

	(void)postern_bus_publish(core->self, topic, POSTERN_EV_MODULE_TYPE, &event);
}

int modules_check_config(struct postern_core *core, struct config *config,
			 const char **error_r)
{
	char *first = NULL;

	for (unsigned i = 0; i < core->mod_count; i++) {
		struct postern_mod *mod = core->mods[i];
		const char *error = NULL;

		if (mod->desc.check_config == NULL)
			continue;
		if (mod->desc.check_config(mod, config_module_group(config, mod->name),
					   &error) == 0)
			continue;
		log_core(POSTERN_LOG_ERROR, "%s: %s", mod->name, hook_error(error));
		if (first == NULL)
			first = xasprintf("%s: %s", mod->name, hook_error(error));
	}
	if (first == NULL)
		return 0;
	*error_r = core_error(core, "%s", first);
	free(first);
	return -1;
}

/* init of module `failed` failed: release what it registered, deinit
 * the ones before it in reverse, as if init had never run. */
static void modules_init_rollback(struct postern_core *core, unsigned failed)
{
	module_release(core, core->mods[failed]);
	for (unsigned i = failed; i > 0; i--) {
		struct postern_mod *mod = core->mods[i - 1];

		if (mod->desc.deinit != NULL)
			mod->desc.deinit(mod);
		module_release(core, mod);
		mod->state = MOD_LOADED;
	}
}

int modules_init(struct postern_core *core, const char **error_r)
{
	const char *error;

	/* Declared before any init hook runs, so that a module subscribing
	 * with the wrong type is told at once. */
	if (core->bus != NULL && core->self != NULL &&
	    (postern_bus_declare(core->self, POSTERN_TOPIC_MODULE_STARTED,
				 POSTERN_EV_MODULE_TYPE, &error) < 0 ||
	     postern_bus_declare(core->self, POSTERN_TOPIC_MODULE_STOPPED,
				 POSTERN_EV_MODULE_TYPE, &error) < 0)) {
		*error_r = error;
		return -1;
	}
	for (unsigned i = 0; i < core->mod_count; i++) {
		struct postern_mod *mod = core->mods[i];

		assert(mod->state == MOD_LOADED);
		error = NULL;
		if (mod->desc.init != NULL &&
		    mod->desc.init(mod, config_module_group(core->config, mod->name),
				   &error) < 0) {
			/* The others' deinit hooks may format errors of
			 * their own: keep this one apart until they ran. */
			char *msg = xasprintf("%s: init failed: %s", mod->name, hook_error(error));

			modules_init_rollback(core, i);
			*error_r = core_error(core, "%s", msg);
			free(msg);
			return -1;
		}
		mod->state = MOD_INITED;
	}
	return 0;
}

int modules_start(struct postern_core *core, const char **error_r)
{
	for (unsigned i = 0; i < core->mod_count; i++) {
		struct postern_mod *mod = core->mods[i];
		const char *error = NULL;

		assert(mod->state == MOD_INITED);
		/* On failure the caller stops and unloads: the modules
		 * started so far get their stop hook then. */
		if (mod->desc.start != NULL && mod->desc.start(mod, &error) < 0) {
			*error_r = core_error(core, "%s: start failed: %s", mod->name,
					      hook_error(error));
			return -1;
		}
		mod->state = MOD_STARTED;
		module_publish(core, mod, POSTERN_TOPIC_MODULE_STARTED);
	}
	return 0;
}

int modules_reload(struct postern_core *core, struct config *config, const char **error_r)
{
	char *first = NULL;

	for (unsigned i = 0; i < core->mod_count; i++) {
		struct postern_mod *mod = core->mods[i];
		const char *error = NULL;

		if (mod->state != MOD_STARTED)
			continue;
		if (mod->desc.reload == NULL) {
			log_core(POSTERN_LOG_DEBUG, "%s: no reload hook: its settings "
				 "change at the next restart", mod->name);
			continue;
		}
		if (mod->desc.reload(mod, config_module_group(config, mod->name), &error) == 0)
			continue;
		/* check_config accepted this configuration, so a failure
		 * here is the module's runtime trouble: the others still
		 * get the new settings. */
		log_core(POSTERN_LOG_ERROR, "%s: reload failed: %s", mod->name, hook_error(error));
		if (first == NULL)
			first = xasprintf("%s: reload failed: %s", mod->name, hook_error(error));
	}
	if (first == NULL)
		return 0;
	*error_r = core_error(core, "%s", first);
	free(first);
	return -1;
}

void modules_stop(struct postern_core *core)
{
	core->shutting_down = true;
	for (unsigned i = core->mod_count; i > 0; i--) {
		struct postern_mod *mod = core->mods[i - 1];

		if (mod->state != MOD_STARTED)
			continue;
		if (mod->desc.stop != NULL)
			mod->desc.stop(mod);
		mod->state = MOD_STOPPED;
		module_publish(core, mod, POSTERN_TOPIC_MODULE_STOPPED);
	}
}

void modules_unload(struct postern_core *core)
{
	/* A module that began work always hears stop before deinit, also
	 * when startup failed half-way and nobody called modules_stop(). */
	for (unsigned i = 0; i < core->mod_count; i++) {
		if (core->mods[i]->state == MOD_STARTED) {
			modules_stop(core);
			break;
		}
	}
	/* Each module's subscriptions and commands go right after its
	 * deinit, so a module deinited later cannot reach into freed state
	 * through them; the code stays mapped until all are done, because
	 * a module may still hold callbacks into one unloaded before. */
	for (unsigned i = core->mod_count; i > 0; i--) {
		struct postern_mod *mod = core->mods[i - 1];

		if (mod->state != MOD_LOADED && mod->desc.deinit != NULL)
			mod->desc.deinit(mod);
		mod->state = MOD_LOADED;
		module_release(core, mod);
	}
	mods_free(core->mods, core->mod_count);
	free(core->mods);
	core->mods = NULL;
	core->mod_count = 0;
}

/* ---- `posternctl modules` ----------------------------------------------- */

static void describe_json(const struct postern_mod *mod, struct postern_json *json)
{
	const struct postern_module *desc = &mod->desc;
	char abi[32];

	snprintf(abi, sizeof(abi), "%u.%u", POSTERN_ABI_VERSION_MAJOR(desc->abi_version),
		 POSTERN_ABI_VERSION_MINOR(desc->abi_version));
	postern_json_object_begin(json);
	postern_json_key(json, "name");
	postern_json_string(json, mod->name);
	postern_json_key(json, "version");
	postern_json_string(json, desc->version != NULL ? desc->version : "");
	postern_json_key(json, "abi");
	postern_json_string(json, abi);
	postern_json_key(json, "state");
	postern_json_string(json, state_name(mod->state));
	postern_json_key(json, "file");
	postern_json_string(json, mod->path);
	postern_json_key(json, "requires");
	postern_json_array_begin(json);
	for (unsigned i = 0; desc->requires != NULL && desc->requires[i] != NULL; i++)
		postern_json_string(json, desc->requires[i]);
	postern_json_array_end(json);
	postern_json_object_end(json);
}

static void describe_text(const struct postern_mod *mod, struct postern_str *text)
{
	const struct postern_module *desc = &mod->desc;

	postern_str_printf(text, "%-16s %-10s ABI %u.%u  %-8s %s", mod->name,
			   desc->version != NULL ? desc->version : "-",
			   POSTERN_ABI_VERSION_MAJOR(desc->abi_version),
			   POSTERN_ABI_VERSION_MINOR(desc->abi_version),
			   state_name(mod->state), mod->path);
	for (unsigned i = 0; desc->requires != NULL && desc->requires[i] != NULL; i++)
		postern_str_printf(text, "%s%s", i == 0 ? "  requires " : ",", desc->requires[i]);
	postern_str_append_cstr(text, "\n");
}

void modules_describe(const struct postern_core *core, struct postern_json *json,
		      struct postern_str *text)
{
	/* core->mods is in dependency order: the order hooks run in. */
	if (text != NULL && core->mod_count == 0)
		postern_str_append_cstr(text, "no modules loaded\n");
	if (json != NULL)
		postern_json_array_begin(json);
	for (unsigned i = 0; i < core->mod_count; i++) {
		if (json != NULL)
			describe_json(core->mods[i], json);
		if (text != NULL)
			describe_text(core->mods[i], text);
	}
	if (json != NULL)
		postern_json_array_end(json);
}
