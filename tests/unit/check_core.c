/*
 * The core's unit test runner: every subsystem's suite, in fork mode so
 * that one crashing test cannot hide the others. `check_core SUITE` runs
 * one suite by name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check_main.h"
#include "suites.h"

static const struct {
	const char *name;
	Suite *(*create)(void);
} suites[] = {
	{ "str_json", str_json_suite },
	{ "config", config_suite },
	{ "log", log_suite },
	{ "loop", loop_suite },
	{ "conn", conn_suite },
	{ "tls", tls_suite },
	{ "event_bus", event_bus_suite },
	{ "module_loader", module_loader_suite },
	{ "control", control_suite },
};

int main(int argc, char **argv)
{
	SRunner *runner = NULL;

	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
		if (argc > 1 && strcmp(argv[1], suites[i].name) != 0)
			continue;
		Suite *suite = suites[i].create();

		if (runner == NULL)
			runner = srunner_create(suite);
		else
			srunner_add_suite(runner, suite);
	}
	if (runner == NULL) {
		fprintf(stderr, "no suite named %s\n", argc > 1 ? argv[1] : "");
		return EXIT_FAILURE;
	}
	return check_run(runner, NULL);
}
