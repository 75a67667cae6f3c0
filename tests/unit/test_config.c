/*
 * Unit tests for the configuration: core/config.c (loading, base_dir, the
 * core's settings), config_override.c (-o), settings.c (settings tables,
 * durations, sizes), config_node.c (walkers, errors) and config_dump.c
 * (`posternd -n`). Every file is written to a fresh temporary directory.
 */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../../core/core.h"
#include "suites.h"

static char tmpdir[] = "/tmp/postern-config-test-XXXXXX";

static void setup(void)
{
	strcpy(tmpdir, "/tmp/postern-config-test-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void teardown(void)
{
	nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Write `text` to tmpdir/name (creating directories on the way); return
 * the full path, malloc'ed. */
static char *write_file(const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", tmpdir, name);

	for (char *slash = strchr(path + strlen(tmpdir) + 1, '/'); slash != NULL;
	     slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		if (mkdir(path, 0700) < 0)
			ck_assert_int_eq(errno, EEXIST);
		*slash = '/';
	}

	FILE *file = fopen(path, "w");

	ck_assert_ptr_nonnull(file);
	fputs(text, file);
	ck_assert_int_eq(fclose(file), 0);
	return path;
}

static struct config *load_ok(const char *path, const char *const *overrides, unsigned count)
{
	char *error = NULL;
	struct config *config = config_load(path, overrides, count, &error);

	ck_assert_msg(config != NULL, "config_load(%s): %s", path, error);
	return config;
}

/* config_load() must fail; returns its error, malloc'ed. */
static char *load_fail(const char *path, const char *const *overrides, unsigned count)
{
	char *error = NULL;
	struct config *config = config_load(path, overrides, count, &error);

	ck_assert_ptr_null(config);
	ck_assert_ptr_nonnull(error);
	return error;
}

/* ---- a module with a setting of every type ------------------------------ */

struct test_settings {
	char *name;
	char *spool;
	int64_t offset;
	uint64_t max_rcpt;
	bool tls;
	uint64_t timeout_ms;
	uint64_t max_size;
	char **listen;
	const struct postern_cfg *rules;
};

#define TF(field) offsetof(struct test_settings, field)

static const struct postern_setting_def test_defs[] = {
	{ "name", POSTERN_SET_STRING, TF(name), "\"mx.example\"", "host name", 0, 0 },
	{ "spool", POSTERN_SET_PATH, TF(spool), "spool/in", "spool directory", 0, 0 },
	{ "offset", POSTERN_SET_INT, TF(offset), "-5", "a signed number", -100, 100 },
	{ "max_rcpt", POSTERN_SET_UINT, TF(max_rcpt), "1000", "recipients", 1, 100000 },
	{ "tls", POSTERN_SET_BOOL, TF(tls), "true", "offer STARTTLS", 0, 0 },
	{ "timeout", POSTERN_SET_DURATION, TF(timeout_ms), "5m", "idle timeout", 1000,
	  86400 * 1000 },
	{ "max_size", POSTERN_SET_SIZE, TF(max_size), "\"10M\"", "message size", 1024, 0 },
	{ "listen", POSTERN_SET_STRLIST, TF(listen), "(\"127.0.0.1:25\", \"[::1]:25\")",
	  "addresses", 0, 0 },
	{ "rules", POSTERN_SET_NODE, TF(rules), NULL, "raw rules", 0, 0 },
	POSTERN_SETTING_END
};

struct fake {
	struct postern_core core;
	struct postern_mod mod;
};

static void fake_init(struct fake *fake, struct config *config)
{
	memset(fake, 0, sizeof(*fake));
	fake->core.config = config;
	fake->mod.core = &fake->core;
	fake->mod.name = (char *)"smtp";
}

static void fake_deinit(struct fake *fake)
{
	free(fake->mod.error_buf);
}

/* Parse group `smtp` of `text`: 0 or -1; the error is copied to *error_r. */
static int parse_smtp(const char *text, struct test_settings *set, char **error_r)
{
	char *path = write_file("postern.conf", text);
	struct config *config = load_ok(path, NULL, 0);
	struct fake fake;
	const char *error = NULL;

	fake_init(&fake, config);
	int ret = postern_cfg_parse(&fake.mod, config_module_group(config, "smtp"), test_defs,
				    set, &error);

	*error_r = ret < 0 ? xstrdup(error) : NULL;
	if (ret == 0)
		ck_assert_ptr_null(set->rules); /* would dangle after config_free */
	fake_deinit(&fake);
	config_free(&config);
	free(path);
	return ret;
}

static void expect_smtp_error(const char *text, unsigned line, const char *message)
{
	struct test_settings set;
	char *error;

	ck_assert_int_eq(parse_smtp(text, &set, &error), -1);
	char *expected = xasprintf("%s/postern.conf:%u: %s", tmpdir, line, message);

	ck_assert_str_eq(error, expected);
	/* Nothing allocated is left behind. */
	ck_assert_ptr_null(set.name);
	ck_assert_ptr_null(set.spool);
	ck_assert_ptr_null(set.listen);
	free(expected);
	free(error);
}

/* ---- loading ------------------------------------------------------------ */

START_TEST(load_good_file_with_core_settings)
{
	char *path = write_file("etc/postern.conf",
				"# a comment\n"
				"modules = (\"smtp\", \"pop3be\");\n"
				"base_dir = \"/srv/postern\";\n"
				"user = \"mail\";\n"
				"group = \"mail\";\n"
				"pid_file = \"run/p.pid\";\n"
				"control_socket = \"/run/postern.sock\";\n"
				"module_dir = \"mods\";\n"
				"log_level = \"debug\";\n"
				"syslog_facility = \"local3\";\n"
				"max_connections = 42;\n"
				"shutdown_timeout = \"2m\";\n"
				"smtp = { listen = (\"127.0.0.1:2525\"); };\n"
				"pop3be = { };\n");
	struct config *config = load_ok(path, NULL, 0);
	struct core_settings set;
	const char *error = NULL;

	ck_assert_msg(config_core_settings(config, &set, &error) == 0, "%s", error);
	ck_assert_str_eq(set.modules[0], "smtp");
	ck_assert_str_eq(set.modules[1], "pop3be");
	ck_assert_ptr_null(set.modules[2]);
	ck_assert_str_eq(set.base_dir, "/srv/postern");
	ck_assert_str_eq(config_base_dir(config), "/srv/postern");
	ck_assert_str_eq(set.user, "mail");
	ck_assert_str_eq(set.group, "mail");
	ck_assert_str_eq(set.pid_file, "/srv/postern/run/p.pid");
	ck_assert_str_eq(set.control_socket, "/run/postern.sock");
	ck_assert_str_eq(set.module_dir, "/srv/postern/mods");
	ck_assert_str_eq(set.log_level, "debug");
	ck_assert_str_eq(set.syslog_facility, "local3");
	ck_assert_uint_eq(set.max_connections, 42);
	ck_assert_uint_eq(set.shutdown_timeout_ms, 120000);
	config_core_settings_free(&set);
	ck_assert_ptr_null(set.modules);
	ck_assert_ptr_null(set.base_dir);
	config_free(&config);
	ck_assert_ptr_null(config);
	config_free(&config);
	free(path);
}
END_TEST

START_TEST(core_defaults)
{
	char *path = write_file("postern.conf", "");
	struct config *config = load_ok(path, NULL, 0);
	struct core_settings set;
	const char *error = NULL;

	ck_assert_msg(config_core_settings(config, &set, &error) == 0, "%s", error);
	ck_assert_ptr_nonnull(set.modules);
	ck_assert_ptr_null(set.modules[0]);
	ck_assert_str_eq(set.module_dir, MODULEDIR);
	ck_assert_str_eq(set.base_dir, "/var/lib/postern");
	ck_assert_ptr_null(set.user);
	ck_assert_ptr_null(set.group);
	ck_assert_str_eq(set.pid_file, RUNSTATEDIR "/postern/posternd.pid");
	ck_assert_str_eq(set.control_socket, RUNSTATEDIR "/postern/postern.sock");
	ck_assert_str_eq(set.log_level, "info");
	ck_assert_str_eq(set.syslog_facility, "mail");
	ck_assert_uint_eq(set.max_connections, 10000);
	ck_assert_uint_eq(set.shutdown_timeout_ms, 30000);
	config_core_settings_free(&set);
	config_free(&config);
	free(path);
}
END_TEST

START_TEST(core_settings_are_validated)
{
	static const struct {
		const char *text;
		const char *message;
	} cases[] = {
		{ "log_level = \"loud\";", "unknown log_level 'loud' (debug, info, notice, warning, error)" },
		{ "syslog_facility = \"mial\";", "unknown syslog_facility 'mial' (mail, daemon, local0..local7, ...)" },
		{ "modules = (\"a\", \"a\");", "module 'a' is listed twice" },
		{ "modules = (\"\");", "'' is not a module name" },
		{ "user = \"\";", "'user' must not be empty" },
		{ "max_connections = -1;", "'max_connections' must not be negative" },
		{ "shutdown_timeout = \"soon\";",
		  "'shutdown_timeout' must be a duration (\"250ms\", \"30s\", \"5m\", \"4h\", \"5d\", \"1w\") "
		  "or an integer of seconds; \"soon\" is not one, or too large" },
		{ "lg_level = \"info\";", "unknown setting 'lg_level' (did you mean 'log_level'?)" },
		{ "modules = 5;", "'modules' must be a string or a list of strings, not an integer" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *text = xasprintf("\n%s\n", cases[i].text);
		char *path = write_file("postern.conf", text);
		struct config *config = load_ok(path, NULL, 0);
		struct core_settings set;
		const char *error = NULL;
		char *expected = xasprintf("%s:2: %s", path, cases[i].message);

		ck_assert_int_eq(config_core_settings(config, &set, &error), -1);
		ck_assert_str_eq(error, expected);
		free(expected);
		config_free(&config);
		free(path);
		free(text);
	}
}
END_TEST

START_TEST(group_for_unlisted_module_is_an_error)
{
	char *path = write_file("postern.conf",
				"modules = (\"smtp\");\n"
				"smtp = { };\n"
				"\n"
				"smpt = { listen = \"x\"; };\n");
	struct config *config = load_ok(path, NULL, 0);
	struct core_settings set;
	const char *error = NULL;
	char *expected = xasprintf("%s:4: group 'smpt' configures no module listed in 'modules'",
				   path);

	ck_assert_int_eq(config_core_settings(config, &set, &error), -1);
	ck_assert_str_eq(error, expected);
	free(expected);
	config_free(&config);
	free(path);
}
END_TEST

START_TEST(syntax_error_has_file_and_line)
{
	char *path = write_file("postern.conf", "a = 1;\nb = 2;\nc = (;\n");
	char *error = load_fail(path, NULL, 0);
	char *expected = xasprintf("%s:3: syntax error", path);

	ck_assert_str_eq(error, expected);
	free(expected);
	free(error);
	free(path);
}
END_TEST

START_TEST(missing_file_says_why)
{
	char *path = xasprintf("%s/nope.conf", tmpdir);
	char *error = load_fail(path, NULL, 0);
	char *expected = xasprintf("cannot read %s: No such file or directory", path);

	ck_assert_str_eq(error, expected);
	free(expected);
	free(error);

	error = load_fail(tmpdir, NULL, 0);
	expected = xasprintf("cannot read %s: Is a directory", tmpdir);
	ck_assert_str_eq(error, expected);
	free(expected);
	free(error);
	free(path);
}
END_TEST

START_TEST(include_is_relative_to_the_config_file)
{
	char *inc = write_file("etc/inc/smtp.conf", "smtp = {\n  listen = \"1.2.3.4:25\";\n};\n");
	char *path = write_file("etc/postern.conf",
				"modules = (\"smtp\");\n@include \"inc/smtp.conf\"\n");
	char cwd[PATH_MAX];

	/* From another directory, by a relative path: the include must
	 * still be found beside the file, and named so it can be found. */
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	ck_assert_int_eq(chdir(tmpdir), 0);
	struct config *config = load_ok("etc/postern.conf", NULL, 0);
	const struct postern_cfg *smtp = config_module_group(config, "smtp");
	const struct postern_cfg *listen = postern_cfg_lookup(smtp, "listen");

	ck_assert_ptr_nonnull(listen);
	ck_assert_str_eq(postern_cfg_string(listen), "1.2.3.4:25");
	ck_assert_str_eq(postern_cfg_file(listen), "etc/inc/smtp.conf");
	ck_assert_uint_eq(postern_cfg_line(listen), 2);
	config_free(&config);

	/* An error inside the included file names it. */
	free(write_file("etc/inc/smtp.conf", "smtp = {\n  listen = ;\n};\n"));
	char *error = load_fail("etc/postern.conf", NULL, 0);

	ck_assert_str_eq(error, "etc/inc/smtp.conf:2: syntax error");
	free(error);
	ck_assert_int_eq(chdir(cwd), 0);
	free(inc);
	free(path);
}
END_TEST

START_TEST(base_dir_relative_to_the_config_file)
{
	char *path = write_file("etc/postern.conf",
				"modules = (\"smtp\");\n"
				"base_dir = \"./data/../state//\";\n"
				"pid_file = \"../run/p.pid\";\n"
				"smtp = { spool = \"q\"; };\n");
	struct config *config = load_ok(path, NULL, 0);
	char *base = xasprintf("%s/etc/state", tmpdir);
	struct core_settings set;
	const char *error = NULL;

	ck_assert_str_eq(config_base_dir(config), base);
	ck_assert_msg(config_core_settings(config, &set, &error) == 0, "%s", error);
	ck_assert_str_eq(set.base_dir, base);
	char *pid = xasprintf("%s/etc/run/p.pid", tmpdir);

	ck_assert_str_eq(set.pid_file, pid);
	config_core_settings_free(&set);

	/* A module's PATH setting resolves against the same base_dir. */
	struct fake fake;
	struct test_settings mod_set;

	fake_init(&fake, config);
	ck_assert_int_eq(postern_cfg_parse(&fake.mod, config_module_group(config, "smtp"),
					   test_defs, &mod_set, &error), 0);
	char *spool = xasprintf("%s/q", base);

	ck_assert_str_eq(mod_set.spool, spool);
	postern_cfg_free(test_defs, &mod_set);
	fake_deinit(&fake);
	config_free(&config);
	free(spool);
	free(pid);
	free(base);
	free(path);
}
END_TEST

START_TEST(base_dir_must_be_a_string)
{
	char *path = write_file("postern.conf", "\nbase_dir = 5;\n");
	char *error = load_fail(path, NULL, 0);
	char *expected = xasprintf("%s:2: 'base_dir' must be a string, not an integer", path);

	ck_assert_str_eq(error, expected);
	free(expected);
	free(error);
	free(path);
}
END_TEST

/* ---- settings tables ---------------------------------------------------- */

START_TEST(every_setting_type)
{
	struct test_settings set;
	char *error;

	ck_assert_int_eq(parse_smtp("base_dir = \"/b\";\n"
				    "smtp = {\n"
				    "  name = \"mail.example\";\n"
				    "  spool = \"/var/spool/x/../y\";\n"
				    "  offset = -42;\n"
				    "  max_rcpt = 5000000000L;\n"
				    "  tls = false;\n"
				    "  timeout = \"250ms\";\n"
				    "  max_size = 2048;\n"
				    "  listen = \"0.0.0.0:25\";\n"
				    "};\n",
				    &set, &error),
			 -1);
	/* max_rcpt is above its max: the message says so in its units. */
	char *expected = xasprintf("%s/postern.conf:6: 'max_rcpt' must be between 1 and 100000, "
				   "not 5000000000", tmpdir);

	ck_assert_str_eq(error, expected);
	free(expected);
	free(error);

	ck_assert_int_eq(parse_smtp("base_dir = \"/b\";\n"
				    "smtp = {\n"
				    "  name = \"mail.example\";\n"
				    "  spool = \"/var/spool/x/../y\";\n"
				    "  offset = -42;\n"
				    "  max_rcpt = 100000L;\n"
				    "  tls = false;\n"
				    "  timeout = \"2500ms\";\n"
				    "  max_size = 2048;\n"
				    "  listen = [\"0.0.0.0:25\", \"0.0.0.0:587\"];\n"
				    "};\n",
				    &set, &error),
			 0);
	ck_assert_str_eq(set.name, "mail.example");
	ck_assert_str_eq(set.spool, "/var/spool/y");
	ck_assert_int_eq(set.offset, -42);
	ck_assert_uint_eq(set.max_rcpt, 100000);
	ck_assert(!set.tls);
	ck_assert_uint_eq(set.timeout_ms, 2500);
	ck_assert_uint_eq(set.max_size, 2048);
	ck_assert_str_eq(set.listen[0], "0.0.0.0:25");
	ck_assert_str_eq(set.listen[1], "0.0.0.0:587");
	ck_assert_ptr_null(set.listen[2]);
	postern_cfg_free(test_defs, &set);
	ck_assert_ptr_null(set.name);
	ck_assert_ptr_null(set.listen);
}
END_TEST

START_TEST(node_setting_walks_the_raw_tree)
{
	char *path = write_file("postern.conf",
				"smtp = {\n"
				"  rules = (\n"
				"    { match = \"a\"; action = \"reject\"; },\n"
				"    { match = \"b\"; }\n"
				"  );\n"
				"};\n");
	struct config *config = load_ok(path, NULL, 0);
	struct fake fake;
	struct test_settings set;
	const char *error = NULL;

	fake_init(&fake, config);
	ck_assert_int_eq(postern_cfg_parse(&fake.mod, config_module_group(config, "smtp"),
					   test_defs, &set, &error), 0);
	const struct postern_cfg *rules = set.rules;

	ck_assert_ptr_nonnull(rules);
	ck_assert_str_eq(postern_cfg_name(rules), "rules");
	ck_assert(!postern_cfg_is_group(rules));
	ck_assert_uint_eq(postern_cfg_count(rules), 2);
	ck_assert_ptr_null(postern_cfg_elem(rules, 2));

	const struct postern_cfg *first = postern_cfg_elem(rules, 0);

	ck_assert(postern_cfg_is_group(first));
	ck_assert_ptr_null(postern_cfg_name(first));
	ck_assert_uint_eq(postern_cfg_count(first), 2);
	ck_assert_str_eq(postern_cfg_name(postern_cfg_elem(first, 1)), "action");
	ck_assert_str_eq(postern_cfg_string(postern_cfg_lookup(first, "action")), "reject");
	ck_assert_ptr_null(postern_cfg_lookup(first, "nope"));
	ck_assert_ptr_null(postern_cfg_lookup(rules, "match")); /* not a group */
	ck_assert_ptr_null(postern_cfg_string(rules));
	ck_assert_uint_eq(postern_cfg_count(postern_cfg_lookup(first, "match")), 0);
	ck_assert_str_eq(postern_cfg_file(first), path);
	ck_assert_uint_eq(postern_cfg_line(first), 3);

	/* A nested group parsed with its own table: unknown keys are named
	 * with the path to them. */
	static const struct postern_setting_def rule_defs[] = {
		{ "match", POSTERN_SET_STRING, 0, NULL, "", 0, 0 },
		{ "action", POSTERN_SET_STRING, sizeof(char *), "\"accept\"", "", 0, 0 },
		POSTERN_SETTING_END
	};
	char *rule[2];

	ck_assert_int_eq(postern_cfg_parse(&fake.mod, postern_cfg_elem(rules, 1), rule_defs,
					   rule, &error), 0);
	ck_assert_str_eq(rule[0], "b");
	ck_assert_str_eq(rule[1], "accept");
	postern_cfg_free(rule_defs, rule);

	static const struct postern_setting_def narrow_defs[] = {
		{ "match", POSTERN_SET_STRING, 0, NULL, "", 0, 0 },
		POSTERN_SETTING_END
	};
	ck_assert_int_eq(postern_cfg_parse(&fake.mod, first, narrow_defs, rule, &error), -1);
	char *expected = xasprintf("%s:3: unknown setting 'action' in group 'smtp.rules[0]'",
				   path);

	ck_assert_str_eq(error, expected);
	ck_assert_ptr_eq(error, fake.mod.error_buf);
	free(expected);

	/* A list is not a group. */
	ck_assert_int_eq(postern_cfg_parse(&fake.mod, rules, narrow_defs, rule, &error), -1);
	expected = xasprintf("%s:2: 'smtp.rules' must be a group, not a list", path);
	ck_assert_str_eq(error, expected);
	free(expected);

	postern_cfg_free(test_defs, &set);
	fake_deinit(&fake);
	config_free(&config);
	free(path);
}
END_TEST

/* Parse group `smtp` of `text` with a fake module that stays (for logging). */
static void parse_smtp_ok(const char *text, struct test_settings *set)
{
	char *error;

	ck_assert_int_eq(parse_smtp(text, set, &error), 0);
}

START_TEST(keep_running_values_of_restart_only_settings)
{
	static const char *const keys[] = { "name", "listen", "max_*", "rules", NULL };
	struct test_settings running, next;
	char *path = write_file("empty.conf", "");
	struct config *config = load_ok(path, NULL, 0);
	struct fake fake;

	parse_smtp_ok("smtp = { name = \"a.example\"; listen = (\"127.0.0.1:25\");\n"
		      "  max_rcpt = 10; max_size = 4096; tls = true; };\n", &running);
	parse_smtp_ok("smtp = { name = \"b.example\"; listen = (\"127.0.0.1:25\");\n"
		      "  max_rcpt = 20; max_size = 4096; tls = false; };\n", &next);
	fake_init(&fake, config);
	/* name and max_rcpt differ and are kept; listen and max_size are the
	 * same; tls is not listed, so the new value stands. */
	ck_assert_uint_eq(postern_cfg_keep_running(&fake.mod, test_defs, keys, &next, &running), 2);
	ck_assert_str_eq(next.name, "a.example");
	ck_assert_str_eq(running.name, "b.example");
	ck_assert_uint_eq(next.max_rcpt, 10);
	ck_assert_uint_eq(running.max_rcpt, 20);
	ck_assert_str_eq(next.listen[0], "127.0.0.1:25");
	ck_assert_ptr_null(next.listen[1]);
	ck_assert(!next.tls);
	/* Lists: a different length is a difference (running now holds
	 * what the first call rejected). */
	postern_cfg_free(test_defs, &next);
	parse_smtp_ok("smtp = { name = \"b.example\"; max_rcpt = 20; max_size = 4096;\n"
		      "  listen = (\"127.0.0.1:25\", \"127.0.0.1:587\"); };\n",
		      &next);
	ck_assert_uint_eq(postern_cfg_keep_running(&fake.mod, test_defs, keys, &next, &running), 1);
	ck_assert_ptr_null(next.listen[1]);
	ck_assert_str_eq(running.listen[1], "127.0.0.1:587");
	postern_cfg_free(test_defs, &next);
	postern_cfg_free(test_defs, &running);
	fake_deinit(&fake);
	config_free(&config);
	free(path);
}
END_TEST

START_TEST(defaults_fill_unset_settings)
{
	struct config *config;
	char *path = write_file("postern.conf", "base_dir = \"/srv\";\n");
	struct fake fake;
	struct test_settings set;
	const char *error = NULL;

	config = load_ok(path, NULL, 0);
	fake_init(&fake, config);
	/* No group at all (NULL) and an empty group give the same. */
	for (int round = 0; round < 2; round++) {
		const struct postern_cfg *cfg = round == 0 ? NULL : config_module_group(config, "smtp");

		memset(&set, 0xa5, sizeof(set)); /* parse must not trust dest */
		ck_assert_msg(postern_cfg_parse(&fake.mod, cfg, test_defs, &set, &error) == 0,
			      "%s", error);
		ck_assert_str_eq(set.name, "mx.example");
		ck_assert_str_eq(set.spool, "/srv/spool/in");
		ck_assert_int_eq(set.offset, -5);
		ck_assert_uint_eq(set.max_rcpt, 1000);
		ck_assert(set.tls);
		ck_assert_uint_eq(set.timeout_ms, 300000);
		ck_assert_uint_eq(set.max_size, 10 * 1024 * 1024);
		ck_assert_str_eq(set.listen[0], "127.0.0.1:25");
		ck_assert_str_eq(set.listen[1], "[::1]:25");
		ck_assert_ptr_null(set.listen[2]);
		ck_assert_ptr_null(set.rules);
		postern_cfg_free(test_defs, &set);
	}
	/* The group made on demand is a real, empty, named group. */
	const struct postern_cfg *group = config_module_group(config, "pop3be");

	ck_assert_ptr_nonnull(group);
	ck_assert(postern_cfg_is_group(group));
	ck_assert_uint_eq(postern_cfg_count(group), 0);
	ck_assert_str_eq(postern_cfg_name(group), "pop3be");
	ck_assert_str_eq(postern_cfg_file(group), path);
	ck_assert_ptr_eq(config_module_group(config, "pop3be"), group);
	/* Even for a name no group can have. */
	group = config_module_group(config, "not a name");
	ck_assert_ptr_nonnull(group);
	ck_assert_uint_eq(postern_cfg_count(group), 0);

	fake_deinit(&fake);
	config_free(&config);
	free(path);
}
END_TEST

START_TEST(bad_default_is_reported)
{
	static const struct postern_setting_def defs[] = {
		{ "a", POSTERN_SET_STRING, 0, "\"ok\"", "", 0, 0 },
		{ "b", POSTERN_SET_STRLIST, sizeof(char *), "(\"x\", ", "", 0, 0 },
		POSTERN_SETTING_END
	};
	static const struct postern_setting_def defs2[] = {
		{ "n", POSTERN_SET_UINT, 0, "lots", "", 0, 0 },
		POSTERN_SETTING_END
	};
	struct fake fake;
	char *dest[2];
	const char *error = NULL;

	fake_init(&fake, NULL);
	ck_assert_int_eq(postern_cfg_parse(&fake.mod, NULL, defs, dest, &error), -1);
	ck_assert_str_eq(error, "setting 'b': bad default '(\"x\", ': syntax error");
	ck_assert_ptr_null(dest[0]);
	ck_assert_ptr_null(dest[1]);
	ck_assert_int_eq(postern_cfg_parse(&fake.mod, NULL, defs2, dest, &error), -1);
	ck_assert_str_eq(error,
			 "setting 'n': bad default 'lots': 'n' must be an integer, not a string");
	fake_deinit(&fake);
}
END_TEST

START_TEST(unknown_key_is_an_error)
{
	expect_smtp_error("modules = (\"smtp\");\n"
			  "smtp = {\n"
			  "  name = \"x\";\n"
			  "  listne = (\"127.0.0.1:25\");\n"
			  "};\n",
			  4, "unknown setting 'listne' in group 'smtp' (did you mean 'listen'?)");
	expect_smtp_error("smtp = {\n  frobnicate = 1;\n};\n", 2,
			  "unknown setting 'frobnicate' in group 'smtp'");
	/* Only the top level holds groups of other owners. */
	expect_smtp_error("smtp = {\n  name = \"x\";\n  extra = { a = 1; };\n};\n", 3,
			  "unknown setting 'extra' in group 'smtp'");
}
END_TEST

START_TEST(wrong_types_are_errors)
{
	static const struct {
		const char *setting;
		const char *message;
	} cases[] = {
		{ "name = 5;", "'name' must be a string, not an integer" },
		{ "spool = true;", "'spool' must be a path (a string), not a boolean" },
		{ "spool = \"\";", "'spool' must not be empty" },
		{ "offset = \"3\";", "'offset' must be an integer, not a string" },
		{ "offset = 1.5;", "'offset' must be an integer, not a float" },
		{ "max_rcpt = -3;", "'max_rcpt' must not be negative" },
		{ "tls = \"yes\";", "'tls' must be true or false, not a string" },
		{ "timeout = (1);",
		  "'timeout' must be a duration (\"250ms\", \"30s\", \"5m\", \"4h\", \"5d\", \"1w\") "
		  "or an integer of seconds, not a list" },
		{ "timeout = \"5x\";",
		  "'timeout' must be a duration (\"250ms\", \"30s\", \"5m\", \"4h\", \"5d\", \"1w\") "
		  "or an integer of seconds; \"5x\" is not one, or too large" },
		{ "timeout = -1;", "'timeout' must not be negative" },
		{ "max_size = \"10 M\";",
		  "'max_size' must be a size (\"512\", \"64k\", \"10M\", \"1G\") or an integer of "
		  "bytes; \"10 M\" is not one, or too large" },
		{ "listen = { a = 1; };", "'listen' must be a string or a list of strings, not a group" },
		{ "listen = (\"a\", 5);",
		  "'listen' must be a string or a list of strings; element 2 is an integer" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *text = xasprintf("smtp = {\n\n  %s\n};\n", cases[i].setting);

		expect_smtp_error(text, 3, cases[i].message);
		free(text);
	}
}
END_TEST

START_TEST(bounds_are_checked)
{
	static const struct {
		const char *setting;
		const char *message; /* NULL: accepted */
	} cases[] = {
		{ "offset = -100;", NULL },
		{ "offset = 100;", NULL },
		{ "offset = -101;", "'offset' must be between -100 and 100, not -101" },
		{ "offset = 101;", "'offset' must be between -100 and 100, not 101" },
		{ "max_rcpt = 0;", "'max_rcpt' must be between 1 and 100000, not 0" },
		{ "max_rcpt = 1;", NULL },
		{ "timeout = \"1s\";", NULL },
		{ "timeout = \"1d\";", NULL },
		{ "timeout = \"999ms\";", "'timeout' must be between 1s and 1d, not 999ms" },
		{ "timeout = \"86401s\";", "'timeout' must be between 1s and 1d, not 86401s" },
		{ "timeout = 86400;", NULL },
		/* min only (max 0 < min): no upper bound. */
		{ "max_size = \"1k\";", NULL },
		{ "max_size = \"1023\";", "'max_size' must be at least 1k, not 1023" },
		{ "max_size = \"16T\";", NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *text = xasprintf("smtp = {\n  %s\n};\n", cases[i].setting);

		if (cases[i].message != NULL) {
			expect_smtp_error(text, 2, cases[i].message);
		} else {
			struct test_settings set;
			char *error;

			ck_assert_msg(parse_smtp(text, &set, &error) == 0, "%s: %s",
				      cases[i].setting, error);
			postern_cfg_free(test_defs, &set);
		}
		free(text);
	}
}
END_TEST

START_TEST(durations)
{
	static const struct {
		const char *text;
		uint64_t msecs;
	} good[] = {
		{ "0", 0 }, { "30", 30000 }, { "250ms", 250 }, { "30s", 30000 },
		{ "5m", 300000 }, { "4h", 14400000 }, { "5d", 432000000 },
		{ "1w", 604800000 }, { "18446744073709551615ms", UINT64_MAX },
		{ "18446744073709551s", 18446744073709551000ULL },
	};
	static const char *const bad[] = {
		"", "5x", "-1s", "+1s", " 1s", "1s ", "1 s", "s", "1.5s", "1S", "5mm", "0x10",
		"99999999999999999999d", "18446744073709551616ms", "18446744073709552s",
		"30500568905w",
	};
	uint64_t msecs;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		msecs = 12345;
		ck_assert_msg(postern_parse_duration(good[i].text, &msecs) == 0, "%s", good[i].text);
		ck_assert_uint_eq(msecs, good[i].msecs);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		msecs = 12345;
		ck_assert_msg(postern_parse_duration(bad[i], &msecs) == -1, "'%s' accepted", bad[i]);
		ck_assert_uint_eq(msecs, 12345);
	}
	ck_assert_int_eq(postern_parse_duration(NULL, &msecs), -1);
}
END_TEST

START_TEST(sizes)
{
	static const struct {
		const char *text;
		uint64_t bytes;
	} good[] = {
		{ "0", 0 }, { "512", 512 }, { "512B", 512 }, { "64k", 65536 }, { "64K", 65536 },
		{ "10M", 10485760 }, { "10MB", 10485760 }, { "1G", 1073741824 },
		{ "2T", 2ULL << 40 }, { "18446744073709551615", UINT64_MAX },
		{ "16777215T", 16777215ULL << 40 },
	};
	static const char *const bad[] = {
		"", "5x", "-1", "-1k", " 1k", "1k ", "1 k", "k", "1.5M", "10Mb", "1kk", "0x10",
		"99999999999999999999", "18446744073709551616", "16777216T", "17179869184G",
	};
	uint64_t bytes;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		bytes = 12345;
		ck_assert_msg(postern_parse_size(good[i].text, &bytes) == 0, "%s", good[i].text);
		ck_assert_uint_eq(bytes, good[i].bytes);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		bytes = 12345;
		ck_assert_msg(postern_parse_size(bad[i], &bytes) == -1, "'%s' accepted", bad[i]);
		ck_assert_uint_eq(bytes, 12345);
	}
}
END_TEST

START_TEST(duration_from_integer_overflow)
{
	/* 2^60 seconds does not fit in milliseconds. */
	expect_smtp_error("smtp = {\n  timeout = 1152921504606846976L;\n};\n", 2,
			  "'timeout' is too large");
}
END_TEST

START_TEST(cfg_error_formats_file_and_line)
{
	char *path = write_file("postern.conf", "smtp = {\n\n  x = 1;\n};\n");
	struct config *config = load_ok(path, NULL, 0);
	struct fake fake;

	fake_init(&fake, config);
	const struct postern_cfg *x = postern_cfg_lookup(config_module_group(config, "smtp"), "x");
	const char *error = postern_cfg_error(&fake.mod, x, "bad %s %d", "thing", 7);
	char *expected = xasprintf("%s:3: bad thing 7", path);

	ck_assert_str_eq(error, expected);
	ck_assert_ptr_eq(error, fake.mod.error_buf);
	/* The previous message may be an argument of the next. */
	error = postern_cfg_error(&fake.mod, x, "again: %s", error);
	free(expected);
	expected = xasprintf("%s:3: again: %s:3: bad thing 7", path, path);
	ck_assert_str_eq(error, expected);
	/* Without a node: just the message. */
	ck_assert_str_eq(postern_cfg_error(&fake.mod, NULL, "plain"), "plain");
	free(expected);
	fake_deinit(&fake);
	config_free(&config);
	free(path);
}
END_TEST

/* ---- -o overrides ------------------------------------------------------- */

START_TEST(override_existing_scalar_and_order)
{
	char *path = write_file("postern.conf",
				"modules = (\"smtp\");\nsmtp = { max_rcpt = 5; name = \"a\"; };\n");
	const char *const overrides[] = {
		"smtp.max_rcpt=7", "smtp.name=\"first\"", "smtp.name=\"second\"", "log_level=debug",
		"base_dir=/srv/a/../b//", "max_connections=5000000000",
	};
	struct config *config = load_ok(path, overrides, 6);
	struct fake fake;
	struct test_settings set;
	struct core_settings core;
	const char *error = NULL;

	fake_init(&fake, config);
	ck_assert_msg(postern_cfg_parse(&fake.mod, config_module_group(config, "smtp"), test_defs,
					&set, &error) == 0, "%s", error);
	ck_assert_uint_eq(set.max_rcpt, 7);
	ck_assert_str_eq(set.name, "second");
	postern_cfg_free(test_defs, &set);
	ck_assert_int_eq(config_core_settings(config, &core, &error), 0);
	ck_assert_str_eq(core.log_level, "debug"); /* a bare word is a string */
	ck_assert_str_eq(core.base_dir, "/srv/b");
	/* Not truncated to 32 bits, as libconfig 1.5 would without the L. */
	ck_assert_uint_eq(core.max_connections, 5000000000ULL);
	config_core_settings_free(&core);
	fake_deinit(&fake);
	config_free(&config);
	free(path);
}
END_TEST

START_TEST(override_new_key_in_new_group)
{
	char *path = write_file("postern.conf", "modules = (\"queue-store\");\n");
	const char *const overrides[] = {
		"queue-store.delay_warning=\"20s\"", "queue-store.deep.er.key=5",
	};
	struct config *config = load_ok(path, overrides, 2);
	const struct postern_cfg *group = config_module_group(config, "queue-store");
	const struct postern_cfg *node = postern_cfg_lookup(group, "delay_warning");

	ck_assert_ptr_nonnull(node);
	ck_assert_str_eq(postern_cfg_string(node), "20s");
	/* Errors about it point at the command line. */
	ck_assert_str_eq(postern_cfg_file(node), "-o queue-store.delay_warning=\"20s\"");
	ck_assert_uint_eq(postern_cfg_line(node), 0);
	node = postern_cfg_lookup(group, "deep.er.key");
	ck_assert_ptr_nonnull(node);
	ck_assert(postern_cfg_is_group(postern_cfg_lookup(group, "deep.er")));
	config_free(&config);
	free(path);
}
END_TEST

START_TEST(override_with_list_and_group_values)
{
	char *path = write_file("postern.conf",
				"modules = (\"x\");\nsmtp = { listen = \"old\"; tls = { a = 1; }; };\n");
	const char *const overrides[] = {
		"modules=(\"smtp\", \"pop3be\")",
		"smtp.listen=[\"1:25\", \"2:25\"]",
		("smtp.tls={ cert = \"c.pem\"; n = 5L; h = 0x1F; f = 2.5; on = true;"
		 " l = ( { k = \"v\"; }, [1, 2], () ); }"),
	};
	struct config *config = load_ok(path, overrides, 3);
	struct core_settings core;
	const char *error = NULL;

	ck_assert_msg(config_core_settings(config, &core, &error) == 0, "%s", error);
	ck_assert_str_eq(core.modules[1], "pop3be");
	config_core_settings_free(&core);

	const struct postern_cfg *smtp = config_module_group(config, "smtp");

	ck_assert_uint_eq(postern_cfg_count(postern_cfg_lookup(smtp, "listen")), 2);
	ck_assert_str_eq(postern_cfg_string(postern_cfg_elem(postern_cfg_lookup(smtp, "listen"), 1)),
			 "2:25");
	const struct postern_cfg *tls = postern_cfg_lookup(smtp, "tls");

	ck_assert(postern_cfg_is_group(tls));
	ck_assert_ptr_null(postern_cfg_lookup(tls, "a")); /* replaced, not merged */
	ck_assert_str_eq(postern_cfg_string(postern_cfg_lookup(tls, "cert")), "c.pem");
	ck_assert_uint_eq(postern_cfg_count(postern_cfg_lookup(tls, "l")), 3);
	const struct postern_cfg *inner = postern_cfg_elem(postern_cfg_lookup(tls, "l"), 0);

	ck_assert_str_eq(postern_cfg_string(postern_cfg_lookup(inner, "k")), "v");

	/* Every type survives the copy: check through a settings table. */
	static const struct postern_setting_def tls_defs[] = {
		{ "cert", POSTERN_SET_STRING, 0, NULL, "", 0, 0 },
		{ "n", POSTERN_SET_INT, sizeof(char *), NULL, "", 0, 0 },
		{ "h", POSTERN_SET_INT, sizeof(char *) + sizeof(int64_t), NULL, "", 0, 0 },
		{ "on", POSTERN_SET_BOOL, sizeof(char *) + 2 * sizeof(int64_t), NULL, "", 0, 0 },
		{ "f", POSTERN_SET_NODE, sizeof(char *) + 3 * sizeof(int64_t), NULL, "", 0, 0 },
		{ "l", POSTERN_SET_NODE, sizeof(char *) + 4 * sizeof(int64_t), NULL, "", 0, 0 },
		POSTERN_SETTING_END
	};
	struct tls_test {
		char *cert;
		int64_t n, h;
		bool on;
		const struct postern_cfg *f, *l;
	} t;
	struct fake fake;

	/* The offsets above assume this layout. */
	ck_assert_uint_eq(offsetof(struct tls_test, on), sizeof(char *) + 2 * sizeof(int64_t));
	ck_assert_uint_eq(offsetof(struct tls_test, l), sizeof(char *) + 4 * sizeof(int64_t));
	fake_init(&fake, config);
	ck_assert_msg(postern_cfg_parse(&fake.mod, tls, tls_defs, &t, &error) == 0, "%s", error);
	ck_assert_int_eq(t.n, 5);
	ck_assert_int_eq(t.h, 31);
	ck_assert(t.on);
	ck_assert_ptr_nonnull(t.f);
	postern_cfg_free(tls_defs, &t);
	fake_deinit(&fake);
	config_free(&config);
	free(path);
}
END_TEST

START_TEST(override_bad_path)
{
	char *path = write_file("postern.conf", "log_level = \"info\";\n");
	static const struct {
		const char *override;
		const char *error;
	} cases[] = {
		{ "noequals", "-o noequals: expected PATH=VALUE" },
		{ "=5", "-o =5: '' is not a valid setting name in ''" },
		{ "smtp..x=1", "-o smtp..x=1: '' is not a valid setting name in 'smtp..x'" },
		{ "smtp.=1", "-o smtp.=1: '' is not a valid setting name in 'smtp.'" },
		{ "1smtp.x=1", "-o 1smtp.x=1: '1smtp' is not a valid setting name in '1smtp.x'" },
		{ "smtp.a b=1", "-o smtp.a b=1: 'a b' is not a valid setting name in 'smtp.a b'" },
		{ "log_level.x=1", "-o log_level.x=1: 'log_level' is a string, not a group" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *error = load_fail(path, &cases[i].override, 1);

		ck_assert_str_eq(error, cases[i].error);
		free(error);
	}
	free(path);
}
END_TEST

START_TEST(override_bad_value)
{
	char *path = write_file("postern.conf", "");
	static const struct {
		const char *override;
		const char *error;
	} cases[] = {
		{ "smtp.listen=(", "-o smtp.listen=(: syntax error" },
		{ "smtp.listen=", "-o smtp.listen=: syntax error" },
		{ "smtp.listen=\"open", "-o smtp.listen=\"open: syntax error" },
		{ "smtp.listen=1; other = 2", "-o smtp.listen=1; other = 2: not a single value" },
		{ "smtp.listen=a b", "-o smtp.listen=a b: syntax error" },
		{ "smtp.n=-99999999999999999999", "-o smtp.n=-99999999999999999999: integer out of range" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *error = load_fail(path, &cases[i].override, 1);

		ck_assert_str_eq(error, cases[i].error);
		free(error);
	}
	free(path);
}
END_TEST

START_TEST(override_value_errors_name_the_option)
{
	struct test_settings set;
	const char *const overrides[] = { "smtp.max_rcpt=\"many\"" };
	char *path = write_file("postern.conf", "smtp = { };\n");
	struct config *config = load_ok(path, overrides, 1);
	struct fake fake;
	const char *error = NULL;

	fake_init(&fake, config);
	ck_assert_int_eq(postern_cfg_parse(&fake.mod, config_module_group(config, "smtp"),
					   test_defs, &set, &error), -1);
	ck_assert_str_eq(error, "-o smtp.max_rcpt=\"many\": 'max_rcpt' must be an integer, "
				"not a string");
	fake_deinit(&fake);
	config_free(&config);
	free(path);
}
END_TEST

/* ---- posternd -n -------------------------------------------------------- */

static char *dump(struct config *config)
{
	struct postern_str *out = postern_str_new();

	config_dump(config, out);
	char *text = xstrdup(postern_str_data(out));

	postern_str_free(&out);
	return text;
}

START_TEST(dump_reparses_to_the_same_values)
{
	char *path = write_file("etc/postern.conf",
				"modules = (\"smtp\", \"weird\");\n"
				"base_dir = \"state\";\n"
				"user = \"mail\";\n"
				"shutdown_timeout = 90;\n"
				"max_connections = 5000000000L;\n"
				"smtp = {\n"
				"  listen = (\"127.0.0.1:25\");\n"
				"  banner = \"say \\\"hi\\\"\\n\\tback\\\\slash \\x01 caf\xc3\xa9\";\n"
				"  big = -9000000000L;\n"
				"  mask = 0xFF00;\n"
				"  ratio = 0.1;\n"
				"  whole = 2.0;\n"
				"  tiny = 1e-300;\n"
				"  on = false;\n"
				"  ports = [25, 587];\n"
				"  empty = ();\n"
				"  nothing = { };\n"
				"  rules = ( { match = \"a\"; to = ( \"x\", { deep = [ 1.5 ]; } ); }, \"s\" );\n"
				"};\n"
				"weird = { };\n");
	const char *const overrides[] = { "weird.added=(\"o\")" };
	struct config *config = load_ok(path, overrides, 1);
	char *first = dump(config);

	/* Read the dump back: it must say exactly the same again. */
	char *again_path = write_file("etc/dumped.conf", first);
	struct config *again = load_ok(again_path, NULL, 0);
	char *second = dump(again);

	/* Only the file name in the first comment line differs. */
	ck_assert_str_eq(strchr(first, '\n'), strchr(second, '\n'));

	/* And the values, seen through the API, are the same. */
	struct core_settings a, b;
	const char *error = NULL;

	ck_assert_msg(config_core_settings(config, &a, &error) == 0, "%s", error);
	ck_assert_msg(config_core_settings(again, &b, &error) == 0, "%s", error);
	ck_assert_str_eq(a.base_dir, b.base_dir);
	ck_assert_str_eq(a.pid_file, b.pid_file);
	ck_assert_str_eq(a.module_dir, b.module_dir);
	ck_assert_str_eq(a.user, b.user);
	ck_assert_ptr_null(b.group);
	ck_assert_uint_eq(b.shutdown_timeout_ms, 90000);
	ck_assert_uint_eq(b.max_connections, 5000000000ULL);
	ck_assert_str_eq(b.modules[1], "weird");
	config_core_settings_free(&a);
	config_core_settings_free(&b);

	const struct postern_cfg *s1 = config_module_group(config, "smtp");
	const struct postern_cfg *s2 = config_module_group(again, "smtp");

	ck_assert_str_eq(postern_cfg_string(postern_cfg_lookup(s1, "banner")),
			 postern_cfg_string(postern_cfg_lookup(s2, "banner")));
	ck_assert_str_eq(postern_cfg_string(postern_cfg_lookup(s2, "banner")),
			 "say \"hi\"\n\tback\\slash \x01 caf\xc3\xa9");
	const struct postern_cfg *rule = postern_cfg_elem(postern_cfg_lookup(s2, "rules"), 0);
	const struct postern_cfg *to = postern_cfg_lookup(rule, "to");

	ck_assert_uint_eq(postern_cfg_count(to), 2);
	ck_assert_str_eq(postern_cfg_string(postern_cfg_elem(to, 0)), "x");
	ck_assert(postern_cfg_is_group(postern_cfg_elem(to, 1)));
	ck_assert_ptr_nonnull(strstr(first, "\tbig = -9000000000L;\n"));
	ck_assert_ptr_nonnull(strstr(first, "\tmask = 0xFF00;\n"));
	ck_assert_ptr_nonnull(strstr(first, "\tratio = 0.1;\n"));
	ck_assert_ptr_nonnull(strstr(first, "\twhole = 2.0;\n"));
	ck_assert_ptr_nonnull(strstr(first, "shutdown_timeout = \"90s\";\n"));
	ck_assert_ptr_nonnull(strstr(first, "max_connections = 5000000000L;\n"));
	ck_assert_ptr_nonnull(strstr(first, "# group is not set\n"));
	ck_assert_ptr_nonnull(strstr(first, "weird = {\n\tadded = ( \"o\" );\n};\n"));
	config_free(&again);
	config_free(&config);
	free(second);
	free(again_path);
	free(first);
	free(path);
}
END_TEST

START_TEST(dump_of_invalid_core_settings_still_shows_them)
{
	char *path = write_file("postern.conf", "log_level = \"loud\";\nsmtp = { a = 1; };\n");
	struct config *config = load_ok(path, NULL, 0);
	char *text = dump(config);

	ck_assert_ptr_nonnull(strstr(text, "# The core settings are not valid: "));
	ck_assert_ptr_nonnull(strstr(text, "\nlog_level = \"loud\";\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nsmtp = {\n\ta = 1;\n};\n"));
	free(text);
	config_free(&config);
	free(path);
}
END_TEST

Suite *config_suite(void)
{
	Suite *suite = suite_create("config");
	TCase *tc;

	tc = tcase_create("load");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, load_good_file_with_core_settings);
	tcase_add_test(tc, core_defaults);
	tcase_add_test(tc, core_settings_are_validated);
	tcase_add_test(tc, group_for_unlisted_module_is_an_error);
	tcase_add_test(tc, syntax_error_has_file_and_line);
	tcase_add_test(tc, missing_file_says_why);
	tcase_add_test(tc, include_is_relative_to_the_config_file);
	tcase_add_test(tc, base_dir_relative_to_the_config_file);
	tcase_add_test(tc, base_dir_must_be_a_string);
	suite_add_tcase(suite, tc);

	tc = tcase_create("settings");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, every_setting_type);
	tcase_add_test(tc, keep_running_values_of_restart_only_settings);
	tcase_add_test(tc, node_setting_walks_the_raw_tree);
	tcase_add_test(tc, defaults_fill_unset_settings);
	tcase_add_test(tc, bad_default_is_reported);
	tcase_add_test(tc, unknown_key_is_an_error);
	tcase_add_test(tc, wrong_types_are_errors);
	tcase_add_test(tc, bounds_are_checked);
	tcase_add_test(tc, durations);
	tcase_add_test(tc, sizes);
	tcase_add_test(tc, duration_from_integer_overflow);
	tcase_add_test(tc, cfg_error_formats_file_and_line);
	suite_add_tcase(suite, tc);

	tc = tcase_create("override");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, override_existing_scalar_and_order);
	tcase_add_test(tc, override_new_key_in_new_group);
	tcase_add_test(tc, override_with_list_and_group_values);
	tcase_add_test(tc, override_bad_path);
	tcase_add_test(tc, override_bad_value);
	tcase_add_test(tc, override_value_errors_name_the_option);
	suite_add_tcase(suite, tc);

	tc = tcase_create("dump");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, dump_reparses_to_the_same_values);
	tcase_add_test(tc, dump_of_invalid_core_settings_still_shows_them);
	suite_add_tcase(suite, tc);
	return suite;
}
