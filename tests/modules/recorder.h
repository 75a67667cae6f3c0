/*
 * Shared by the test modules and tests/unit/test_module_loader.c: the test
 * hands each loaded module a recorder with postern_mod_set_data() before
 * calling any hook, and the hooks append "hook:module" to its log, so the
 * test can assert on the order in which the loader called them.
 */
#ifndef TESTS_MODULES_RECORDER_H
#define TESTS_MODULES_RECORDER_H

#include <stdio.h>
#include <string.h>
#include <postern/postern.h>

struct test_recorder {
	char log[2048]; /* space-separated "hook:module" words */
};

static inline void test_record(struct postern_mod *mod, const char *what)
{
	struct test_recorder *rec = postern_mod_data(mod);
	size_t used;

	if (rec == NULL)
		return;
	used = strlen(rec->log);
	snprintf(rec->log + used, sizeof(rec->log) - used, "%s%s:%s", used > 0 ? " " : "",
		 what, postern_mod_name(mod));
}

/* Hooks that only record their call, for modules that need nothing else. */
static inline int test_record_init(struct postern_mod *mod, const struct postern_cfg *cfg,
				   const char **error_r)
{
	test_record(mod, "init");
	return 0;
}

static inline int test_record_start(struct postern_mod *mod, const char **error_r)
{
	test_record(mod, "start");
	return 0;
}

static inline int test_record_reload(struct postern_mod *mod, const struct postern_cfg *cfg,
				     const char **error_r)
{
	test_record(mod, "reload");
	return 0;
}

static inline void test_record_stop(struct postern_mod *mod)
{
	test_record(mod, "stop");
}

static inline void test_record_deinit(struct postern_mod *mod)
{
	test_record(mod, "deinit");
}

#endif
