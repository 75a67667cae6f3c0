/*
 * module_loader_suite: the loader with real shared objects built from
 * tests/modules/ (TEST_MODULE_DIR): hook order in dependency order and
 * reversed on the way down, the bus events of module start and stop, and
 * every way a module file is refused, asserting on the message an
 * administrator would read. A failed load must leave nothing loaded: that
 * is checked with dlopen(RTLD_NOLOAD).
 *
 * The core here is test-local: a bus, the "core" pseudo-module and a real
 * configuration from a temporary file; a loop and the connection registry
 * only where a test needs them; no control socket (the loader skips
 * subsystems that do not exist).
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "suites.h"

#define STR_(x) #x
#define STR(x) STR_(x)
/* "1.2": the ABI the test modules were built with. */
#define ABI_TEXT STR(POSTERN_ABI_MAJOR) "." STR(POSTERN_ABI_MINOR)
#include "../../core/core.h"
#include "../modules/recorder.h"

#ifndef TEST_MODULE_DIR
#error "TEST_MODULE_DIR must name the directory of the test modules"
#endif

#define DIR TEST_MODULE_DIR

static struct postern_core core;
static struct test_recorder rec;
static char conf_path[64];

static void use_config(const char *text)
{
	char *error = NULL;
	FILE *file = fopen(conf_path, "w");

	ck_assert_ptr_nonnull(file);
	ck_assert_int_ge(fputs(text, file), 0);
	ck_assert_int_eq(fclose(file), 0);
	config_free(&core.config);
	core.config = config_load(conf_path, NULL, 0, &error);
	ck_assert_msg(core.config != NULL, "config_load: %s", error);
}

static void setup(void)
{
	int fd;

	memset(&core, 0, sizeof(core));
	memset(&rec, 0, sizeof(rec));
	strcpy(conf_path, "/tmp/postern-loader-test-XXXXXX");
	fd = mkstemp(conf_path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	core.self = module_core_new(&core);
	core.bus = event_bus_new(&core);
	use_config("# no module settings\n");
}

static void teardown(void)
{
	if (core.mods != NULL)
		modules_unload(&core);
	if (core.conns != NULL)
		conn_registry_free(&core.conns);
	event_bus_free(&core.bus);
	if (core.loop != NULL)
		loop_release_owner(core.loop, core.self);
	module_free(&core.self);
	if (core.loop != NULL)
		loop_free(&core.loop);
	config_free(&core.config);
	free(core.error_buf);
	unlink(conf_path);
}

static bool is_loaded(const char *name)
{
	char path[512];
	void *handle;

	snprintf(path, sizeof(path), "%s/%s.so", DIR, name);
	handle = dlopen(path, RTLD_LAZY | RTLD_NOLOAD);
	if (handle == NULL)
		return false;
	dlclose(handle);
	return true;
}

static void attach_recorder(void)
{
	for (unsigned i = 0; i < core.mod_count; i++)
		postern_mod_set_data(core.mods[i], &rec);
}

static void load_ok(const char *const *names)
{
	const char *error = NULL;

	ck_assert_msg(modules_load(&core, names, DIR, &error) == 0, "load: %s", error);
	attach_recorder();
}

static const char *load_fails(const char *const *names)
{
	const char *error = NULL;

	ck_assert_int_eq(modules_load(&core, names, DIR, &error), -1);
	ck_assert_ptr_nonnull(error);
	ck_assert_ptr_null(core.mods);
	ck_assert_uint_eq(core.mod_count, 0);
	/* Nothing stays half-loaded. */
	for (unsigned i = 0; names[i] != NULL; i++)
		ck_assert_msg(!is_loaded(names[i]), "%s is still loaded after: %s", names[i],
			      error);
	return error;
}

static void assert_contains(const char *text, const char *part)
{
	ck_assert_msg(text != NULL && strstr(text, part) != NULL, "'%s' lacks '%s'",
		      text != NULL ? text : "(null)", part);
}

static const char *mod_names(void)
{
	static char names[256];

	names[0] = '\0';
	for (unsigned i = 0; i < core.mod_count; i++) {
		size_t used = strlen(names);

		snprintf(names + used, sizeof(names) - used, "%s%s", i > 0 ? " " : "",
			 core.mods[i]->name);
	}
	return names;
}

/* The test's own view of core.module.*, recorded beside the hooks. */
static void on_module_event(const struct postern_event *event, void *ctx)
{
	const struct postern_ev_module *ev = event->payload;
	size_t used = strlen(rec.log);

	ck_assert_ptr_null(event->publisher);
	ck_assert_uint_ge(ev->struct_size, sizeof(*ev));
	ck_assert_ptr_nonnull(ev->version);
	snprintf(rec.log + used, sizeof(rec.log) - used, " %s:%s",
		 strcmp(event->topic, POSTERN_TOPIC_MODULE_STARTED) == 0 ? "started" : "stopped",
		 ev->name);
}

/* ---- the good path ------------------------------------------------------ */

START_TEST(test_lifecycle_in_dependency_order)
{
	static const char *const names[] = { "tm_app", "tm_base", NULL };
	const char *error = NULL;

	ck_assert_ptr_nonnull(postern_bus_subscribe(core.self, "core.module.*",
						    POSTERN_EV_MODULE_TYPE, 0, on_module_event,
						    NULL, &error));
	load_ok(names);
	ck_assert_str_eq(mod_names(), "tm_base tm_app");
	ck_assert_int_eq(core.mods[0]->state, MOD_LOADED);
	ck_assert(core.mods[0]->has_desc);
	ck_assert_str_eq(core.mods[0]->path, DIR "/tm_base.so");
	ck_assert_str_eq(core.mods[0]->desc.version, "1.2.3");

	ck_assert_int_eq(modules_check_config(&core, core.config, &error), 0);
	ck_assert_int_eq(modules_init(&core, &error), 0);
	ck_assert_int_eq(core.mods[1]->state, MOD_INITED);
	ck_assert_int_eq(modules_start(&core, &error), 0);
	ck_assert_int_eq(core.mods[1]->state, MOD_STARTED);
	ck_assert(!postern_mod_shutting_down(core.mods[0]));
	ck_assert_int_eq(modules_reload(&core, core.config, &error), 0);
	modules_stop(&core);
	ck_assert(postern_mod_shutting_down(core.mods[0]));
	ck_assert_int_eq(core.mods[1]->state, MOD_STOPPED);
	modules_unload(&core);
	ck_assert_ptr_null(core.mods);
	ck_assert_uint_eq(core.mod_count, 0);

	ck_assert_str_eq(rec.log,
			 "check:tm_base check:tm_app "
			 "init:tm_base init:tm_app "
			 "start:tm_base seen:tm_base started:tm_base "
			 "start:tm_app seen:tm_app started:tm_app "
			 "reload:tm_base reload:tm_app "
			 "stop:tm_app stopped:tm_app stop:tm_base stopped:tm_base "
			 "deinit:tm_app deinit:tm_base");

	/* tm_base's subscription ended with it: only ours is left (calling
	 * into the unloaded object would crash here). */
	const struct postern_ev_module ev = { .struct_size = sizeof(ev), .name = "x",
					      .version = "" };
	ck_assert_int_eq(postern_bus_publish(core.self, POSTERN_TOPIC_MODULE_STARTED,
					     POSTERN_EV_MODULE_TYPE, &ev), 1);
	ck_assert(!is_loaded("tm_base"));
	ck_assert(!is_loaded("tm_app"));
}
END_TEST

START_TEST(test_order_is_stable_with_config_order)
{
	static const char *const names[] = { "tm_app", "tm_small", "tm_base", NULL };

	load_ok(names);
	/* tm_small has no requirements and keeps its place before tm_base;
	 * tm_app moves after what it requires. */
	ck_assert_str_eq(mod_names(), "tm_small tm_base tm_app");
}
END_TEST

START_TEST(test_empty_module_list)
{
	static const char *const names[] = { NULL };
	const char *error = NULL;

	ck_assert_int_eq(modules_load(&core, names, DIR, &error), 0);
	ck_assert_uint_eq(core.mod_count, 0);
	ck_assert_int_eq(modules_init(&core, &error), 0);
	ck_assert_int_eq(modules_start(&core, &error), 0);
	modules_stop(&core);
	modules_unload(&core);
}
END_TEST

START_TEST(test_smaller_descriptor_of_older_minor)
{
	static const char *const names[] = { "tm_small", NULL };
	const char *error = NULL;
	const size_t size_1_0 = offsetof(struct postern_module, deinit) + sizeof(void (*)(void));

	load_ok(names);
	ck_assert_uint_eq(core.mods[0]->desc.struct_size, size_1_0);
	ck_assert_uint_lt(size_1_0, sizeof(struct postern_module));
	for (unsigned i = 0; i < sizeof(core.mods[0]->desc.reserved) / sizeof(void *); i++)
		ck_assert_ptr_null(core.mods[0]->desc.reserved[i]);
	ck_assert_str_eq(core.mods[0]->desc.version, "old");
	ck_assert_int_eq(modules_init(&core, &error), 0);
	ck_assert_int_eq(modules_start(&core, &error), 0);
	modules_stop(&core);
	modules_unload(&core);
	ck_assert_str_eq(rec.log, "init:tm_small deinit:tm_small");
}
END_TEST

START_TEST(test_check_config_failure)
{
	static const char *const names[] = { "tm_app", "tm_base", NULL };
	const char *error = NULL;

	use_config("tm_app = {\n  reject = true;\n};\n");
	load_ok(names);
	ck_assert_int_eq(modules_check_config(&core, core.config, &error), -1);
	ck_assert_str_eq(rec.log, "check:tm_base check:tm_app");
	ck_assert_msg(strncmp(error, "tm_app: ", 8) == 0, "%s", error);
	assert_contains(error, "rejected by the test");
	assert_contains(error, conf_path);
	assert_contains(error, ":2");
}
END_TEST

START_TEST(test_init_failure_rolls_back)
{
	static const char *const names[] = { "tm_fail_init", "tm_app", "tm_base", NULL };
	const char *error = NULL;

	load_ok(names);
	ck_assert_str_eq(mod_names(), "tm_base tm_app tm_fail_init");
	ck_assert_int_eq(modules_init(&core, &error), -1);
	ck_assert_str_eq(error, "tm_fail_init: init failed: cannot open the frobnicator "
				"(deliberate test failure)");
	ck_assert_str_eq(rec.log, "init:tm_base init:tm_app init:tm_fail_init "
				  "deinit:tm_app deinit:tm_base");
	for (unsigned i = 0; i < core.mod_count; i++)
		ck_assert_int_eq(core.mods[i]->state, MOD_LOADED);

	/* The subscriptions of tm_base and of the failed module are gone. */
	const struct postern_ev_module ev = { .struct_size = sizeof(ev), .name = "x",
					      .version = "" };
	ck_assert_int_eq(postern_bus_publish(core.self, POSTERN_TOPIC_MODULE_STARTED,
					     POSTERN_EV_MODULE_TYPE, &ev), 0);

	/* Unloading does not deinit a second time. */
	modules_unload(&core);
	ck_assert_str_eq(rec.log, "init:tm_base init:tm_app init:tm_fail_init "
				  "deinit:tm_app deinit:tm_base");
}
END_TEST

START_TEST(test_unload_after_partial_start)
{
	static const char *const names[] = { "tm_app", "tm_base", NULL };
	const char *error = NULL;

	load_ok(names);
	ck_assert_int_eq(modules_init(&core, &error), 0);
	/* Never started: unload still deinits in reverse, without stop. */
	modules_stop(&core);
	modules_unload(&core);
	ck_assert_str_eq(rec.log, "init:tm_base init:tm_app deinit:tm_app deinit:tm_base");
}
END_TEST

START_TEST(test_unload_stops_started_modules)
{
	static const char *const names[] = { "tm_app", "tm_base", NULL };
	const char *error = NULL;

	load_ok(names);
	ck_assert_int_eq(modules_init(&core, &error), 0);
	ck_assert_int_eq(modules_start(&core, &error), 0);
	/* As after a failed startup: unload without modules_stop(). */
	modules_unload(&core);
	ck_assert_str_eq(rec.log, "init:tm_base init:tm_app "
				  "start:tm_base seen:tm_base start:tm_app seen:tm_app "
				  "stop:tm_app stop:tm_base deinit:tm_app deinit:tm_base");
}
END_TEST

/* A listening socket on 127.0.0.1 with a kernel-chosen port. */
static int listen_loopback(unsigned *port_r)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(fd, 4), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port_r = ntohs(sin.sin_port);
	return fd;
}

START_TEST(test_unload_ends_subscriptions_before_connections)
{
	static const char *const names[] = { "tm_conn", NULL };
	const char *error = NULL;
	char conf[128];
	unsigned port;
	int listen_fd = listen_loopback(&port);

	core.loop = loop_new();
	core.conns = conn_registry_new(&core);
	snprintf(conf, sizeof(conf), "tm_conn = { address = \"127.0.0.1:%u\"; };\n", port);
	use_config(conf);
	load_ok(names);
	ck_assert_msg(modules_init(&core, &error) == 0, "%s", error);
	ck_assert_int_eq(modules_start(&core, &error), 0);
	for (unsigned i = 0; i < 50 && strstr(rec.log, "open:tm_conn") == NULL; i++)
		loop_run_once(core.loop, 100);
	ck_assert_str_eq(rec.log, "open:tm_conn");
	ck_assert_uint_eq(conn_count_module(core.conns, core.mods[0]), 1);

	/* The connection is still open: the core frees it after deinit and
	 * publishes core.conn.closed, which must not reach the module. */
	modules_unload(&core);
	ck_assert_str_eq(rec.log, "open:tm_conn deinit:tm_conn");
	ck_assert_uint_eq(conn_count(core.conns), 0);
	close(listen_fd);
}
END_TEST

START_TEST(test_accessors)
{
	static const char *const names[] = { "tm_base", NULL };
	char *path;

	load_ok(names);
	struct postern_mod *mod = core.mods[0];

	ck_assert_str_eq(postern_mod_name(mod), "tm_base");
	ck_assert_str_eq(postern_mod_name(core.self), "core");
	ck_assert(!core.self->has_desc);
	ck_assert_ptr_eq(postern_mod_data(mod), &rec);
	postern_mod_set_data(mod, NULL);
	ck_assert_ptr_null(postern_mod_data(mod));

	core.settings.base_dir = "/srv/postern";
	path = postern_mod_path(mod, "certs/a.pem");
	ck_assert_str_eq(path, "/srv/postern/certs/a.pem");
	free(path);
	path = postern_mod_path(mod, "/etc/ssl/b.pem");
	ck_assert_str_eq(path, "/etc/ssl/b.pem");
	free(path);
	core.settings.base_dir = "/srv/postern/";
	path = postern_mod_path(mod, "c");
	ck_assert_str_eq(path, "/srv/postern/c");
	free(path);
	core.settings.base_dir = NULL;

	ck_assert_uint_eq(postern_core_abi_version(), POSTERN_ABI_VERSION);
	ck_assert_ptr_nonnull(postern_core_version());
	ck_assert_uint_gt(strlen(postern_core_version()), 0);
}
END_TEST

START_TEST(test_describe)
{
	static const char *const names[] = { "tm_app", "tm_base", NULL };
	struct postern_str *out = postern_str_new();
	struct postern_json *json = postern_json_new(out);
	const char *error = NULL;

	load_ok(names);
	ck_assert_int_eq(modules_init(&core, &error), 0);
	ck_assert_int_eq(modules_start(&core, &error), 0);

	modules_describe(&core, json, NULL);
	postern_json_free(&json);
	ck_assert_str_eq(postern_str_data(out),
			 "[{\"name\":\"tm_base\",\"version\":\"1.2.3\",\"abi\":\"" ABI_TEXT "\","
			 "\"state\":\"started\",\"file\":\"" DIR "/tm_base.so\",\"requires\":[]},"
			 "{\"name\":\"tm_app\",\"version\":\"0.9\",\"abi\":\"" ABI_TEXT "\","
			 "\"state\":\"started\",\"file\":\"" DIR "/tm_app.so\","
			 "\"requires\":[\"tm_base\"]}]");

	postern_str_truncate(out, 0);
	modules_describe(&core, NULL, out);
	const char *text = postern_str_data(out);
	const char *base = strstr(text, "tm_base "), *app = strstr(text, "tm_app ");

	ck_assert_ptr_nonnull(base);
	ck_assert_ptr_nonnull(app);
	ck_assert(base < app);
	assert_contains(text, "ABI " ABI_TEXT);
	assert_contains(text, "started");
	assert_contains(text, DIR "/tm_app.so  requires tm_base\n");
	postern_str_free(&out);
}
END_TEST

/* ---- refusals ----------------------------------------------------------- */

START_TEST(test_missing_file)
{
	static const char *const names[] = { "tm_base", "tm_nonexistent", NULL };

	ck_assert_str_eq(load_fails(names),
			 DIR "/tm_nonexistent.so: no such file: module 'tm_nonexistent' is in "
			 "'modules', so module_dir needs tm_nonexistent.so");
}
END_TEST

START_TEST(test_undefined_symbol)
{
	static const char *const names[] = { "tm_base", "tm_undefined", NULL };
	const char *error = load_fails(names);

	ck_assert_msg(strncmp(error, DIR "/tm_undefined.so: cannot load: ",
			      strlen(DIR "/tm_undefined.so: cannot load: ")) == 0, "%s", error);
	assert_contains(error, "undefined symbol: postern_no_such_function");
	/* One line, the path once. */
	ck_assert_ptr_null(strchr(error, '\n'));
	ck_assert_ptr_null(strstr(error + 1, DIR "/tm_undefined.so"));
}
END_TEST

START_TEST(test_no_descriptor_symbol)
{
	static const char *const names[] = { "tm_base", "tm_no_symbol", NULL };

	ck_assert_str_eq(load_fails(names),
			 DIR "/tm_no_symbol.so: no symbol 'postern_module': not a Postern module");
}
END_TEST

START_TEST(test_bad_magic)
{
	static const char *const names[] = { "tm_base", "tm_bad_magic", NULL };

	ck_assert_str_eq(load_fails(names),
			 DIR "/tm_bad_magic.so: bad magic: found 0xdeadbeef, need 0x5053544e: "
			 "not a Postern module descriptor");
}
END_TEST

START_TEST(test_abi_major_differs)
{
	static const char *const names[] = { "tm_base", "tm_abi_major", NULL };
	char expected[512];

	snprintf(expected, sizeof(expected),
		 "%s/tm_abi_major.so: built for module ABI %d.0, this posternd has %d.%d: "
		 "rebuild the module against Postern %d.x headers", DIR,
		 POSTERN_ABI_MAJOR + 1, POSTERN_ABI_MAJOR, POSTERN_ABI_MINOR, POSTERN_ABI_MAJOR);
	ck_assert_str_eq(load_fails(names), expected);
}
END_TEST

START_TEST(test_abi_minor_newer)
{
	static const char *const names[] = { "tm_base", "tm_abi_minor", NULL };
	char expected[512];

	snprintf(expected, sizeof(expected),
		 "%s/tm_abi_minor.so: built for module ABI %d.%d, this posternd has %d.%d: "
		 "upgrade posternd", DIR, POSTERN_ABI_MAJOR, POSTERN_ABI_MINOR + 3,
		 POSTERN_ABI_MAJOR, POSTERN_ABI_MINOR);
	ck_assert_str_eq(load_fails(names), expected);
}
END_TEST

START_TEST(test_descriptor_too_big)
{
	static const char *const names[] = { "tm_base", "tm_big", NULL };
	char expected[512];

	snprintf(expected, sizeof(expected), "%s/tm_big.so: descriptor size found %zu bytes, "
		 "need %zu to %zu", DIR, sizeof(struct postern_module) + 2 * sizeof(void *),
		 offsetof(struct postern_module, deinit) + sizeof(void *),
		 sizeof(struct postern_module));
	assert_contains(load_fails(names), expected);
}
END_TEST

START_TEST(test_wrong_name)
{
	static const char *const names[] = { "tm_base", "tm_wrong_name", NULL };

	ck_assert_str_eq(load_fails(names),
			 DIR "/tm_wrong_name.so: descriptor name found 'tm_other', need "
			 "'tm_wrong_name' (the file name without .so)");
}
END_TEST

START_TEST(test_duplicate)
{
	static const char *const names[] = { "tm_base", "tm_small", "tm_base", NULL };

	ck_assert_str_eq(load_fails(names),
			 DIR "/tm_base.so: module 'tm_base' is listed twice in 'modules'");
}
END_TEST

START_TEST(test_flags)
{
	static const char *const names[] = { "tm_base", "tm_flags", NULL };

	assert_contains(load_fails(names),
			DIR "/tm_flags.so: descriptor flags found 0x1, need 0");
}
END_TEST

START_TEST(test_missing_dependency)
{
	static const char *const names[] = { "tm_base", "tm_missing_dep", NULL };

	ck_assert_str_eq(load_fails(names),
			 "tm_missing_dep requires tm_absent, which is not in 'modules'");
}
END_TEST

START_TEST(test_dependency_cycle)
{
	static const char *const names[] = { "tm_cycle_a", "tm_cycle_b", "tm_base", NULL };

	ck_assert_str_eq(load_fails(names),
			 "dependency cycle: tm_cycle_a -> tm_cycle_b -> tm_cycle_a");
}
END_TEST

START_TEST(test_bad_module_name)
{
	static const char *const names[] = { "tm_base", "../modules/.libs/tm_base", NULL };

	assert_contains(load_fails(names), "is not a module name");
}
END_TEST

START_TEST(test_load_after_failure)
{
	static const char *const bad[] = { "tm_base", "tm_app", "tm_bad_magic", NULL };
	static const char *const good[] = { "tm_app", "tm_base", NULL };

	load_fails(bad);
	load_ok(good);
	ck_assert_str_eq(mod_names(), "tm_base tm_app");
}
END_TEST

Suite *module_loader_suite(void)
{
	Suite *suite = suite_create("module_loader");
	TCase *tc = tcase_create("loader");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_lifecycle_in_dependency_order);
	tcase_add_test(tc, test_order_is_stable_with_config_order);
	tcase_add_test(tc, test_empty_module_list);
	tcase_add_test(tc, test_smaller_descriptor_of_older_minor);
	tcase_add_test(tc, test_check_config_failure);
	tcase_add_test(tc, test_init_failure_rolls_back);
	tcase_add_test(tc, test_unload_after_partial_start);
	tcase_add_test(tc, test_unload_stops_started_modules);
	tcase_add_test(tc, test_unload_ends_subscriptions_before_connections);
	tcase_add_test(tc, test_accessors);
	tcase_add_test(tc, test_describe);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_undefined_symbol);
	tcase_add_test(tc, test_no_descriptor_symbol);
	tcase_add_test(tc, test_bad_magic);
	tcase_add_test(tc, test_abi_major_differs);
	tcase_add_test(tc, test_abi_minor_newer);
	tcase_add_test(tc, test_descriptor_too_big);
	tcase_add_test(tc, test_wrong_name);
	tcase_add_test(tc, test_duplicate);
	tcase_add_test(tc, test_flags);
	tcase_add_test(tc, test_missing_dependency);
	tcase_add_test(tc, test_dependency_cycle);
	tcase_add_test(tc, test_bad_module_name);
	tcase_add_test(tc, test_load_after_failure);
	suite_add_tcase(suite, tc);
	return suite;
}
