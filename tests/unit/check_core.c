/*
 * The core's unit test runner: every subsystem's suite, in fork mode so
 * that one crashing test cannot hide the others. `check_core SUITE` runs
 * one suite by name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "suites.h"

static Suite *(*const suites[])(void) = {
	str_json_suite, config_suite, log_suite, loop_suite, conn_suite, tls_suite,
	event_bus_suite, module_loader_suite, control_suite,
};

int main(int argc, char **argv)
{
	SRunner *runner = NULL;

	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
		Suite *suite = suites[i]();

		if (argc > 1 && strcmp(argv[1], suite_name(suite)) != 0) {
			/* Check has no suite_free(): an unused suite is freed
			 * by a throwaway runner. */
			srunner_free(srunner_create(suite));
			continue;
		}
		if (runner == NULL)
			runner = srunner_create(suite);
		else
			srunner_add_suite(runner, suite);
	}
	if (runner == NULL) {
		fprintf(stderr, "no suite named %s\n", argc > 1 ? argv[1] : "");
		return EXIT_FAILURE;
	}
	srunner_set_fork_status(runner, CK_FORK);
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
