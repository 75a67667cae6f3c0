/*
 * The common end of a Check runner's main(): run, report, free, exit
 * status. Fork mode unless CK_FORK=no asks for none (to use a debugger);
 * `tcase` (the runner's first argument, or NULL for all) or the usual
 * CK_RUN_SUITE / CK_RUN_CASE variables pick what runs.
 */
#ifndef POSTERN_TESTS_CHECK_MAIN_H
#define POSTERN_TESTS_CHECK_MAIN_H

#include <check.h>
#include <stdlib.h>

static inline int check_run(SRunner *runner, const char *tcase)
{
	int failed;

	srunner_run(runner, NULL, tcase, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
